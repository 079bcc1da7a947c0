"""The package a user installs: ``python -m build`` makes a wheel that installs into a clean virtual environment
holding only the CPU torch, and ``ecgscope demo --study a --n 600`` runs from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ecgscope

REPO = Path(__file__).resolve().parents[1]
#: What a source checkout holds that is not the package's source (built, installed or run here).
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "runs", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", "node_modules")


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.long
def test_the_wheel_installs_into_a_clean_environment_and_runs_the_demo(tmp_path):
    source = tmp_path / "source"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", source])
    wheels = list((tmp_path / "dist").glob("ecgscope-*.whl"))
    assert [w.name for w in wheels] == [f"ecgscope-{ecgscope.__version__}-py3-none-any.whl"]

    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", env])
    pip = [env / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-compile"]  # no .pyc: faster, same code
    _run([*pip, "torch==2.13.0"])  # the CPU build, first, as the README says
    _run([*pip, wheels[0]])
    _run([env / "bin" / "python", "-m", "pip", "check"])
    where = _run([env / "bin" / "python", "-c", "import ecgscope, torch; print(ecgscope.__file__, torch.version.cuda)"],
                 cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(env)) and where[1] == "None"  # the installed copy, on the CPU torch

    demo = _run([env / "bin" / "ecgscope", "demo", "--study", "a", "--n", "600", "--epochs", "1", "--n-boot", "20",
                 "--out", tmp_path / "demo"], cwd=tmp_path, timeout=900)
    assert "study A report" in demo.stdout and (tmp_path / "demo" / "report.html").stat().st_size > 0
    assert "Wall time per stage" in demo.stdout
    assert "left out (ecgscope demo --full keeps them)" in demo.stdout  # the default says what it did not run
    assert "computed with torch 2.13.0" in demo.stdout  # and on which kernels (environment.json)
    assert (tmp_path / "demo" / "environment.json").exists()
