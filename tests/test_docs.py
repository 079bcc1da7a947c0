"""The documentation runs: every shell and Python block of Getting started and the tutorials is executed, in
order, in an empty folder, so a page cannot drift from the code; and the site builds with --strict."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXECUTED = sorted([*DOCS.glob("getting-started/*.md"), *DOCS.glob("tutorials/*.md")])
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: pages that show how to install: the wheel test (tests/test_wheel.py) does what they say, not here
INSTALL_PAGES = {"install.md"}


def blocks(page: Path) -> list[tuple[str, str]]:
    """The page's ``bash`` and ``python`` blocks in order."""
    return BLOCK.findall(page.read_text())


def test_every_getting_started_and_tutorial_page_has_code_to_run():
    assert {p.name for p in EXECUTED} >= {"cli.md", "notebook.md", "install.md"}
    for page in EXECUTED:
        assert blocks(page), f"{page.relative_to(ROOT)} has no bash or python block"


def _environment(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `ecgscope` of this interpreter
    env["ECGSCOPE_PSEUDONYM_KEY_FILE"] = str(tmp_path / "pseudonym.key")
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.mark.long
@pytest.mark.parametrize("page", [p for p in EXECUTED if p.name not in INSTALL_PAGES],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_page_runs_as_written(page, tmp_path):
    """A page's Python blocks run as one script (a notebook's shared state), its shell blocks one by one."""
    found = blocks(page)
    kinds = {kind for kind, _ in found}
    assert len(kinds) == 1, f"{page.name} mixes bash and python blocks; keep one kind per page"
    env = _environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    if kinds == {"python"}:
        script = "\n\n".join(code for _, code in found)
        commands = [[sys.executable, "-c", script]]
    else:
        commands = [["bash", "-euo", "pipefail", "-c", code] for _, code in found]
    for command in commands:
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{page.name}: {command[-1][:300]}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_site_builds_with_strict(tmp_path):
    """`mkdocs build --strict`: no broken link, anchor or API reference, and the generated pages build."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is not installed: pip install -e '.[docs]' (make test installs it)"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert (tmp_path / "site" / "reference" / "config" / "index.html").exists()
