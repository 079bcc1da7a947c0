"""The ``ecgscope`` command line: a thin typer shell over the library's functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ecgscope.errors import EcgscopeError

app = typer.Typer(help="Cardiac structure, function and risk from the 12-lead ECG.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# Outside a terminal (logs, CI) rich assumes 80 columns and wraps the tables; give them room.
console = Console() if sys.stdout.isatty() else Console(width=120)


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


@app.command()
def presets() -> None:
    """List the simulator's cohort presets."""
    from ecgscope.simulate import get_preset, list_presets

    table = Table("preset", "subjects", "imaging", "fs (Hz)", "formats", "description")
    for name in list_presets():
        p = get_preset(name)
        table.add_row(name, f"{p.n:,}", p.imaging or "-", f"{p.fs:g}", ", ".join(p.formats), p.description)
    console.print(table)


@app.command()
def simulate(
    preset: Annotated[str, typer.Option(help="cohort preset (see `ecgscope presets`)")] = "ukb",
    out: Annotated[Path, typer.Option(help="output directory")] = Path("runs/simulated"),
    n: Annotated[int | None, typer.Option(help="number of subjects (default: the preset's size)")] = None,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same bytes")] = 0,
    fmt: Annotated[list[str] | None, typer.Option("--format", help="wfdb, code15, echonext (repeatable); "
                                                  "default: the preset's")] = None,
    fs: Annotated[float | None, typer.Option(help="sampling rate in Hz (default: the preset's)")] = None,
    duration: Annotated[float | None, typer.Option(help="record length in seconds (default 10)")] = None,
    snr: Annotated[float | None, typer.Option(help="one noise tier in dB for every ECG (default: preset mix)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty output directory")] = False,
) -> None:
    """Simulate a paired ECG / imaging / outcome cohort and write it in real dataset formats."""
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort

    try:
        cohort = simulate_cohort(preset, n=n, seed=seed, fs=fs, duration_s=duration, snr_db=snr)
        path = write_cohort(cohort, out, formats=tuple(fmt) if fmt else None, overwrite=overwrite)
    except (EcgscopeError, ValueError, FileExistsError) as exc:
        _fail(exc)
    console.print(f"[green]wrote[/] {len(cohort.patients):,} subjects, {len(cohort):,} ECGs "
                  f"({preset}, seed {seed}) to [bold]{path}[/]")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where to write the run")] = Path("runs/demo"),
    n: Annotated[int, typer.Option(help="subjects in the simulated ukb-like cohort")] = 6000,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 15,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    model: Annotated[str, typer.Option(help="model architecture from the registry")] = "compact_cnn",
) -> None:
    """Simulate a UK Biobank-like cohort, train an ECG model for RV size and function, and compare to the oracle."""
    from ecgscope.studies.demo import run_demo

    try:
        result = run_demo(out=out, n=n, seed=seed, epochs=epochs, model_name=model)
    except (EcgscopeError, ValueError, KeyError) as exc:
        _fail(exc)
    table = Table("target", "metric", "ECG model [95% CI]", "oracle [95% CI]", "n / pos.",
                  title="Held-out test patients (bootstrap CIs over patients)")
    m = result.metrics
    for (target, metric), group in m.groupby(["target", "metric"], sort=False):
        cells = {r.model: f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" for r in group.itertuples()}
        table.add_row(target, metric, cells["ECG model"], cells["oracle"], str(group.n_or_positives.iloc[0]))
    console.print(table)
    console.print("oracle: gradient boosting on the noise-free waveform parameters, same training patients; "
                  "the reference an ECG model should approach.")
    console.print(f"[green]report:[/] metrics {result.out / 'metrics.json'}, figures {result.out / 'figures'}, "
                  f"model {result.out / 'model'}, simulated cohort {result.out / 'cohort'}")


@app.command()
def version() -> None:
    """Print the ecgscope version."""
    from ecgscope import __version__

    console.print(__version__)


if __name__ == "__main__":
    app()
