"""The ``ecgscope`` command line: a thin typer shell over the library's functions."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ecgscope.config import DEFAULT_MODEL, SMALL_HOSPITAL_TRAIN
from ecgscope.errors import EcgscopeError

#: every command that writes a file or folder refuses to replace one unless given --overwrite
Overwrite = Annotated[bool, typer.Option(help="replace an existing output")]

app = typer.Typer(help="Cardiac structure, function and risk from the 12-lead ECG.", no_args_is_help=True,
                  rich_markup_mode="markdown",
                  pretty_exceptions_enable=False)
# Outside a terminal (logs, CI) rich assumes 80 columns and wraps the tables; give them room.
console = Console() if sys.stdout.isatty() else Console(width=120)


def headline_table(study_json: Path) -> Table:
    """The headline rows a study wrote (estimate with CI, truth or oracle, published) as a rich table."""
    from ecgscope.report.html import headline_digits

    def cell(value, digits: int | None = None) -> str:
        if value is None:
            return "-"
        return value if isinstance(value, str) else f"{value:.{digits or headline_digits(value)}f}"

    table = Table("measure", "ecgscope [95% CI]", "interval", "truth / oracle", "published",
                  title="Headline (the report's first table)")
    for row in json.loads(Path(study_json).read_text())["headline"]:
        digits = headline_digits(row["estimate"])
        table.add_row(row["measure"], f"{cell(row['estimate'], digits)} [{cell(row['ci_low'], digits)}, "
                                      f"{cell(row['ci_high'], digits)}]", row.get("interval") or "-",
                      cell(row["oracle"]), cell(row["published"]))
    return table


def _fail(exc: Exception | str) -> None:
    """One line on what went wrong, exit status 2 (no traceback: the message says what to do)."""
    if isinstance(exc, OSError) and exc.strerror:
        exc = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(code=2)


def _require(ok: bool, message: str) -> None:
    """Refuse an argument at the boundary with a one-line error (exit 2)."""
    if not ok:
        _fail(message)


def _finite(value: float | None, name: str, low: float, high: float) -> None:
    """Refuse ``value`` unless it is a finite number in [low, high] (None: not given)."""
    if value is not None:
        _require(math.isfinite(value) and low <= value <= high, f"{name} must be a number from {low:g} to {high:g}, "
                                                                 f"not {value:g}")


def _writable_target(path: Path, name: str, folder: bool, overwrite: bool | None = None) -> None:
    """Refuse an output path that cannot be written: a file where a folder is wanted (or the reverse), a
    location this user may not write, or (``overwrite`` False) an existing file or non-empty folder."""
    if path.exists():
        _require(path.is_dir() == folder, f"{name} {path} is a {'file' if folder else 'folder'}, not a "
                                          f"{'folder' if folder else 'file'}")
        filled = path.is_file() or any(path.iterdir())
        _require(overwrite is not False or not filled, f"{name} {path} already exists; pass --overwrite to "
                                                       "replace what this command writes there")
    parent = path if path.exists() and folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    _require(parent.is_dir() and os.access(parent, os.W_OK | os.X_OK), f"{name} {path}: {parent} is not writable")


@contextmanager
def _removed_on_failure(*paths: Path | None) -> Iterator[None]:
    """Remove the outputs a failed command created (those that did not exist before it ran)."""
    fresh = [p for p in paths if p is not None and not p.exists()]
    try:
        yield
    except BaseException:
        for path in fresh:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        raise


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
    electrode_reversal: Annotated[float, typer.Option(help="share of ECGs with two limb electrodes exchanged "
                                                           "(truth in truth/ecgs.parquet)")] = 0.0,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty output directory")] = False,
) -> None:
    """Simulate a paired ECG / imaging / outcome cohort and write it in real dataset formats."""
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort

    _require(n is None or 1 <= n <= 10_000_000, f"--n must be from 1 to 10,000,000, not {n}")
    _finite(fs, "--fs", 50, 20_000)
    _finite(duration, "--duration", 1, 600)
    _finite(snr, "--snr", -20, 80)
    _finite(electrode_reversal, "--electrode-reversal", 0, 1)
    _writable_target(out, "--out", folder=True)
    try:
        cohort = simulate_cohort(preset, n=n, seed=seed, fs=fs, duration_s=duration, snr_db=snr,
                                 electrode_reversal=electrode_reversal)
        path = write_cohort(cohort, out, formats=tuple(fmt) if fmt else None, overwrite=overwrite)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(f"[green]wrote[/] {len(cohort.patients):,} subjects, {len(cohort):,} ECGs "
                  f"({preset}, seed {seed}) to [bold]{path}[/]")


#: Study B's training lengths under `demo --full`, and in the default run (a third: its headline moves by a few
#: hundredths and no finding changes; docs/benchmarks/transfer.md has both runs).
FULL_PRETRAIN_EPOCHS, FULL_MOTION_EPOCHS = 10, 30
DEMO_PRETRAIN_EPOCHS, DEMO_MOTION_EPOCHS = 3, 10
#: How much lower study B's process runs than study A's when they run side by side (see ``_study_b``).
STUDY_B_NICENESS = 3


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where to write the run")] = Path("runs/demo"),
    n: Annotated[int, typer.Option(help="subjects in the simulated ukb-like cohort")] = 6000,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 15,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    model: Annotated[str, typer.Option(help="model architecture from the registry")] = DEFAULT_MODEL,
    study: Annotated[str, typer.Option(help="a (RV from MRI), b (diastolic risk from echo) or both")] = "both",
    full: Annotated[bool, typer.Option("--full", help="the longer run: every study-A model's learning rate "
                                       "chosen from a grid on validation loss, the transfer step run again with "
                                       f"{SMALL_HOSPITAL_TRAIN} hospital training patients, and study B's encoder "
                                       f"pretrained for {FULL_PRETRAIN_EPOCHS} epochs and its motion GAN trained "
                                       f"for {FULL_MOTION_EPOCHS}")] = False,
    n_boot: Annotated[int, typer.Option("--n-boot", help="bootstrap resamples behind every confidence "
                                        "interval")] = 500,
    overwrite: Overwrite = False,
) -> None:
    """Reproduce the two studies on simulated cohorts: A, RV size and function (ukb -> hospital -> prospective,
    survival); B, diastolic risk with foundation embeddings and synthetic motion (written to OUT/echo).

    With both, study B runs in a second process beside study A, each on half the cores. Without --full every
    study-A model trains once at the learning rate validation chose for the ukb model when the grid ran
    (3e-3), so the ukb figures match (the transfer's two arms share that rate instead of each choosing from
    the grid), the transfer step runs once, with all the hospital's training patients, and study B pretrains its
    encoder for 3 epochs and trains its motion GAN for 10."""
    from ecgscope.io.atomic import RunInUseError, exclusive_run

    if study not in ("a", "b", "both"):
        _fail(ValueError(f"--study must be a, b or both, not {study!r}"))
    _require(n >= 100, f"--n must be at least 100 subjects (the study splits them three ways), not {n}")
    _require(epochs >= 1, f"--epochs must be at least 1, not {epochs}")
    _require(n_boot >= 20, f"--n-boot must be at least 20 resamples, not {n_boot}")
    _writable_target(out, "--out", folder=True, overwrite=overwrite)
    try:
        with exclusive_run(out):
            _demo(out, n, epochs, seed, model, study, full, n_boot)
    except RunInUseError as exc:
        _fail(exc)


def _cpu_seconds() -> float:
    """User and system CPU time of this process and of every child it has waited for (pool workers, study B)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _stage_times(clocks: list, out: Path, wall_s: float, cpu_s: float | None = None) -> None:
    """Print the demo's wall time per stage and keep it in OUT/stage_times.csv (studies run side by side are
    timed apart; ``cpu_s``, when given, is a row of the CPU time of every process, its share that of all the
    cores' time; the last row is the whole run's wall time)."""
    import pandas as pd

    tables = [clock.table() for clock in clocks]
    cores = os.cpu_count() or 1
    cpu = [] if cpu_s is None else [{"stage": f"CPU time, every process (share: of {cores} cores)",
                                     "seconds": cpu_s, "share": cpu_s / (wall_s * cores)}]
    table = pd.concat([t[t.stage != "total"] for t in tables] + [pd.DataFrame(
        [*cpu, {"stage": "total wall time" + (" (A and B side by side)" if len(clocks) > 1 else ""),
                "seconds": wall_s, "share": 1.0}])], ignore_index=True)
    from ecgscope.io import write_text

    table = table.round({"seconds": 1, "share": 3})  # printed as kept, so the screen and the file agree
    write_text(out / "stage_times.csv", table.to_csv(index=False))
    shown = Table("stage", "seconds", "share of its study", title="Wall time per stage")
    for r in table.itertuples():
        shown.add_row(r.stage, f"{r.seconds:,.0f}", "" if r.stage.startswith("total") else f"{r.share:.0%}")
    console.print(shown)


def _use_threads(n: int) -> None:
    """Run torch and the native thread pools (OpenBLAS under NumPy and scikit-learn, OpenMP) on ``n`` threads.
    Side by side, each study gets half the cores: a pool left at every core spins on cores the other study is
    using, so scikit-learn's fits cost far more CPU time for little less wall time (and give the same
    predictions on one thread as on two)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


def _study_b(out: Path, seed: int, model: str, threads: int | None, progress: bool, full: bool, n_boot: int = 500):
    """Study B, in this process or a second one: its report and its stage clock."""
    from ecgscope.studies.echo_study import run_echo_study
    from ecgscope.studies.timing import StageClock

    if threads:  # the second process, started by spawn
        import multiprocessing

        _use_threads(threads)
        # study A is the longer of the two: where both want a core, A's stage goes first and B's waits
        # (scheduling only; each study's figures are the same)
        os.nice(STUDY_B_NICENESS)
        # a spawned process inherits spawn as its start method, so each of study B's ingest and simulation
        # pools would start its workers afresh (importing scipy and the readers, ~2 s each); back to the
        # platform's default, as study A's process has
        multiprocessing.set_start_method(None, force=True)
    clock = StageClock()
    epochs = ({"pretrain_epochs": FULL_PRETRAIN_EPOCHS, "motion_epochs": FULL_MOTION_EPOCHS} if full else
              {"pretrain_epochs": DEMO_PRETRAIN_EPOCHS, "motion_epochs": DEMO_MOTION_EPOCHS})
    return (run_echo_study(out, seed=seed, encoder_model=model, clock=clock, progress=progress, n_boot=n_boot,
                           **epochs), clock)


def _demo(out: Path, n: int, epochs: int, seed: int, model: str, study: str, full: bool = False,
          n_boot: int = 500) -> None:
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from ecgscope.studies.demo import run_demo
    from ecgscope.studies.timing import StageClock

    started = time.perf_counter()
    if study == "b":
        try:
            report_b, clock_b = _study_b(Path(out) / "echo", seed, model, None, True, full, n_boot)
        except (EcgscopeError, ValueError, KeyError) as exc:
            _fail(exc)
        console.print(headline_table(report_b.parent / "study.json"))
        console.print(f"[green bold]study B report:[/] [bold]{report_b}[/]")
        _stage_times([clock_b], Path(out), time.perf_counter() - started, _cpu_seconds())
        return
    pool = b_running = None
    if study == "both":  # side by side: both studies' single-threaded stages overlap, and neither waits
        half = max(1, (os.cpu_count() or 2) // 2)
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        b_running = pool.submit(_study_b, Path(out) / "echo", seed, model, half, False, full, n_boot)
        _use_threads(half)
        console.print(f"study B runs in a second process beside study A ({half} thread(s) each); its results "
                      "follow study A's")

    def all_cores_once_b_is_done() -> None:
        if b_running is not None and b_running.done():
            _use_threads(os.cpu_count() or 1)

    clock = StageClock(on_lap=all_cores_once_b_is_done)
    finished = False
    try:
        result = run_demo(out=out, n=n, seed=seed, epochs=epochs, model_name=model, clock=clock, lr_grid=full,
                          small_hospital_train=SMALL_HOSPITAL_TRAIN if full else None, n_boot=n_boot)
        report_b, clock_b = b_running.result() if b_running else (None, None)
        finished = True
    except (EcgscopeError, ValueError, KeyError) as exc:
        _fail(exc)
    finally:
        if pool is not None and not finished:  # study A failed or was interrupted: stop B, do not wait for it
            for process in list(getattr(pool, "_processes", {}).values()):  # the executor has no public kill
                process.terminate()
        if pool is not None:
            pool.shutdown(wait=finished, cancel_futures=True)
    table = Table("target", "metric", "ECG model [95% CI]", "oracle [95% CI]", "n / pos.",
                  title="Held-out test patients (bootstrap CIs over patients)")
    m = result.metrics
    for (target, metric), group in m.groupby(["target", "metric"], sort=False):
        cells = {r.model: f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" for r in group.itertuples()}
        table.add_row(target, metric, cells["ECG model"], cells.get("oracle", "-"), str(group.n_or_positives.iloc[0]))
    console.print(table)
    console.print("oracle: gradient boosting on the noise-free waveform parameters, same training patients; "
                  "the reference an ECG model should approach.")
    transfer = Table("hospital training patients", "cohort", "target", "metric", *result.transfer.model.unique(),
                     title="Taking the ukb model to a hospital (CIs over patients)")
    keys = ["hospital_training_patients", "cohort", "target", "metric"]
    for (n_train, cohort, target, metric), group in result.transfer.groupby(keys, sort=False):
        transfer.add_row(str(n_train), cohort, target, metric,
                         *(f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" for r in group.itertuples()))
    console.print(transfer)
    differences = Table("hospital training patients", "cohort", "comparison", "target", "metric",
                        "difference [95% CI]",
                        title="Fine-tuned minus the others, same patients (paired bootstrap; MAE: negative is better)")
    for r in result.transfer_differences.itertuples():
        differences.add_row(str(r.hospital_training_patients), r.cohort, r.comparison, r.target, r.metric,
                            f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]")
    console.print(differences)
    console.print(headline_table(result.out / "study.json"))
    console.print(f"[green bold]study A report:[/] [bold]{result.report}[/] (every number: "
                  f"{result.report.with_suffix('.json')})")
    if report_b is not None:
        console.print(headline_table(report_b.parent / "study.json"))
        console.print(f"[green bold]study B report:[/] [bold]{report_b}[/]")
    console.print(f"[green]outputs:[/] metrics {result.out / 'metrics.json'}, figures {result.out / 'figures'}, "
                  f"model {result.out / 'model'}; data: simulated files {result.out / 'cohort'}, store "
                  f"{result.out / 'store'}, paired cohort {result.out / 'cohort.parquet'}, transfer study "
                  f"{result.out / 'transfer' / 'transfer_metrics.csv'}"
                  + (" (and transfer_small/, the smaller hospital)" if (result.out / "transfer_small").is_dir()
                     else ""))
    console.print(f"[green]try the model in the viewer:[/] ecgscope serve {result.out / 'model'} --no-auth, then "
                  "open http://127.0.0.1:8000/ and drop an ECG file in")
    if not full:
        console.print("left out (ecgscope demo --full keeps them): choosing each study-A model's learning rate "
                      "from the grid 1e-3 / 3e-3 on validation loss, which trains every model twice; the transfer "
                      f"step with {SMALL_HOSPITAL_TRAIN} hospital training patients (transfer_small/, where training "
                      "from scratch is data-limited); study B's encoder pretrained for "
                      f"{FULL_PRETRAIN_EPOCHS} epochs and motion GAN trained for {FULL_MOTION_EPOCHS} (here "
                      f"{DEMO_PRETRAIN_EPOCHS} and {DEMO_MOTION_EPOCHS})")
    _stage_times([clock] + ([clock_b] if clock_b else []), Path(out), time.perf_counter() - started, _cpu_seconds())
    _print_environment(Path(out))


def _print_environment(out: Path) -> None:
    """Keep the run's versions and CPU kernels in OUT/environment.json and name the kernels in one line."""
    from ecgscope.provenance import environment, write_environment

    env = environment()
    path = write_environment(out, env)
    blas = ", ".join(dict.fromkeys(f"{p['internal_api']} {p['architecture']}" for p in env["thread_pools"]
                                   if p["architecture"]))  # NumPy and SciPy each load an OpenBLAS
    console.print(f"computed with torch {env['versions']['torch']} on {env['torch_cpu_capability']} kernels"
                  + (f", {blas}" if blas else "") + (f", GPU {env['gpu']}" if env["gpu"] else "")
                  + f" ({path}; the same seed on other kernels moves the last digits)")


#: Exit status of `ingest` when some inputs were rejected and the rest stored.
EXIT_SOME_REJECTED = 3


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="files or folders (any mix of formats) to read")],
    store: Annotated[str, typer.Option(help="store folder or object-store URL, e.g. s3://bucket/stores/x "
                                           "(created if missing)")],
    fs: Annotated[float, typer.Option(help="store sampling rate, Hz")] = 500.0,
    seconds: Annotated[float, typer.Option(help="store record length, s (longer cropped, shorter padded)")] = 10.0,
    units: Annotated[str, typer.Option(help="mV, or z-score for already normalised data (EchoNext)")] = "mV",
    dtype: Annotated[str, typer.Option(help="storage: float16 (compact, fast) or float32 (exact)")] = "float16",
    fmt: Annotated[str | None, typer.Option("--format", help="skip detection and read as this format")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (default: all cores)", min=1, max=512)] = None,
    input_fs: Annotated[float | None, typer.Option(help="sampling rate of CSV / .npy inputs, Hz")] = None,
    input_units: Annotated[str | None, typer.Option(help="units of CSV / .npy inputs: mV, uV or V")] = None,
    input_leads: Annotated[str | None, typer.Option(help="lead order of .npy rows (or CSV columns), comma-"
                                                          "separated, e.g. I,II,III,aVR,aVF,aVL,V1,V2,V3,V4,V5,V6; "
                                                          ".npy default: the standard order")] = None,
    rate: Annotated[int | None, typer.Option(help="PTB-XL tree to read: 500 or 100 Hz (default: the tree "
                                                  "closest to --fs)")] = None,
    keep_identifiers: Annotated[bool, typer.Option(help="keep patient and record ids as read (only where the "
                                                        "site may); default: keyed pseudonyms")] = False,
    shift_dates: Annotated[bool, typer.Option(help="shift each patient's dates by a keyed offset (up to a "
                                                   "year either way)")] = False,
    pseudonym_key: Annotated[Path | None, typer.Option(help="the site's key file (default: "
                                                            "$ECGSCOPE_PSEUDONYM_KEY_FILE or "
                                                            "~/.config/ecgscope/pseudonym.key, made if missing); "
                                                            "keep it outside the store")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list the files that are not ECGs")] = False,
    engine: Annotated[str, typer.Option(help="local (this machine's processes) or ray (a Ray cluster; extra "
                                             "ecgscope[ray])")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="with --engine ray: the cluster's address (auto: the one "
                                                         "this machine belongs to); default: a local one")] = None,
) -> None:
    """Read ECGs from files and folders into a store; broken inputs go to its quarantine with their reason.

    Every file under the given paths ends stored, already stored, quarantined, or counted as not an ECG.
    Patient and record ids are stored as keyed pseudonyms unless --keep-identifiers.

    Exit status: 0 all stored, 3 some inputs rejected (the rest stored), 2 nothing could be done.
    """
    from ecgscope.io import input_exists
    from ecgscope.store import ingest as run_ingest
    from ecgscope.store.location import is_url

    _finite(fs, "--fs", 50, 20_000)
    _finite(seconds, "--seconds", 1, 3600)
    _finite(input_fs, "--input-fs", 50, 20_000)
    _require(engine in ("local", "ray"), f"--engine must be local or ray, not {engine!r}")
    missing = [str(p) for p in sources if not input_exists(p)]
    _require(len(missing) < len(sources), f"nothing to ingest: {', '.join(missing[:3])} not found")
    if not is_url(store):
        _writable_target(Path(store), "--store", folder=True)
    try:
        report = run_ingest(sources, store, fs=fs, seconds=seconds, units=units, dtype=dtype, format=fmt,
                            workers=workers, input_fs=input_fs, input_units=input_units,
                            input_leads=tuple(input_leads.split(",")) if input_leads else None, rate=rate,
                            identifiers="keep" if keep_identifiers else "pseudonymize", shift_dates=shift_dates,
                            pseudonym_key=pseudonym_key, engine=engine, ray_address=ray_address)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(("[yellow]" if report.rejected else "[green]") + report.summary + "[/]", soft_wrap=True)
    if verbose:
        for path, what in report.not_ecg:
            console.print(f"  not an ECG: {path} ({what})", soft_wrap=True, markup=False)
    elif report.not_ecg:
        console.print("(--verbose lists the files that are not ECGs)")
    if report.nothing_done:
        _fail("nothing was stored: " + ("every input was rejected (see the quarantine)" if report.rejected
                                        else "no ECG file among the inputs"))
    if report.rejected:
        raise typer.Exit(code=EXIT_SOME_REJECTED)


@app.command()
def pseudonymize(
    table: Annotated[Path, typer.Argument(help="a site table (CSV or Parquet) with patient_id: imaging, outcomes")],
    store: Annotated[str, typer.Option(help="the store (folder or URL) whose pseudonyms (and date shifts) to apply")],
    out: Annotated[Path, typer.Option(help="output table (.parquet or .csv)")],
    pseudonym_key: Annotated[Path | None, typer.Option(help="the key the store was made with")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Map a table's patient ids (and dates) as ingest mapped the store's, so it links to the store."""
    from ecgscope.cohort import load_table
    from ecgscope.io import write_parquet, write_text
    from ecgscope.store import Store

    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    try:
        mapped = Store(store).site_table(load_table(table), pseudonym_key)
    except (EcgscopeError, ValueError, OSError, KeyError) as exc:
        _fail(exc)
    if out.suffix.lower() == ".csv":
        write_text(out, mapped.to_csv(index=False))
    else:
        write_parquet(mapped, out)
    console.print(f"[green]wrote[/] {len(mapped):,} rows with pseudonymous patient ids to [bold]{out}[/]")


store_app = typer.Typer(help="Inspect a store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("info")
def store_info(path: Annotated[str, typer.Argument(help="store folder or URL")]) -> None:
    """Print a store's settings, sizes, formats and rejected inputs."""
    from ecgscope.store import Store

    try:
        st = Store(path)
    except EcgscopeError as exc:
        _fail(exc)
    table = Table("", "", title=str(path))
    for key, value in st.info().items():
        table.add_row(key, ", ".join(value) if key == "leads" else str(value))
    console.print(table)
    if len(st.quarantine):
        reasons = st.quarantine.reason.str.slice(0, 90).value_counts().head(10)
        console.print("most frequent rejection reasons:")
        for reason, count in reasons.items():
            console.print(f"  {count:>6}  {reason}")


cohort_app = typer.Typer(help="Pair ECGs with imaging and outcomes, label, split.", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")


@cohort_app.command("build")
def cohort_build(
    store: Annotated[str, typer.Option(help="store folder or URL")],
    imaging: Annotated[Path, typer.Option(help="imaging studies (CSV or Parquet): patient_id, study_date, ...")],
    out: Annotated[Path, typer.Option(help="output Parquet table")],
    days_before: Annotated[float, typer.Option(help="ECG at most this many days before the study")] = 30,
    days_after: Annotated[float, typer.Option(help="ECG at most this many days after the study")] = 30,
    outcomes: Annotated[Path | None, typer.Option(help="outcomes table: adds time_years and event")] = None,
    label: Annotated[list[str] | None, typer.Option(help="rv_dysfunction, rv_dilation, ... or NAME=COL<=VALUE")] = None,
    diastolic: Annotated[bool, typer.Option(help="add ASE 2016 and 2025 diastolic function and grade (echo)")] = False,
    phenogroups: Annotated[Path | None, typer.Option(help="phenogroups JSON (`cohort phenogroups`) to assign")] = None,
    stratify: Annotated[str | None, typer.Option(help="label to balance across splits")] = None,
    split: Annotated[str, typer.Option(help="train,val,test fractions")] = "0.7,0.1,0.2",
    seed: Annotated[int, typer.Option(help="random seed of the split")] = 0,
    pseudonym_key: Annotated[Path | None, typer.Option(help="the key a pseudonymized store was made with "
                                                            "(default: as ingest)")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Pair each imaging study with its nearest ECG in the window, add outcomes and labels, split by patient.

    The imaging and outcome tables carry the site's own patient ids: for a pseudonymized store they are
    mapped with the same key (and date shift) first."""
    from ecgscope.cohort import build_cohort
    from ecgscope.io import write_parquet

    _finite(days_before, "--days-before", 0, 36_500)
    _finite(days_after, "--days-after", 0, 36_500)
    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    try:
        cohort = build_cohort(store, imaging, outcomes=outcomes, labels=list(label or []), diastolic=diastolic,
                              phenogroups=phenogroups, days_before=days_before, days_after=days_after,
                              split=tuple(float(f) for f in split.split(",")), stratify=stratify, seed=seed,
                              pseudonym_key=pseudonym_key)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    write_parquet(cohort.table, out)
    counts = cohort.table["split"].value_counts().to_dict()
    console.print(f"[green]{cohort.summary()}[/]; splits {counts} -> [bold]{out}[/]", soft_wrap=True)


@cohort_app.command("phenogroups")
def cohort_phenogroups(
    imaging: Annotated[Path, typer.Option(help="echo studies (CSV or Parquet) with the clustered measurements")],
    out: Annotated[Path, typer.Option(help="output JSON: scaling, centres, rates")],
    outcomes: Annotated[Path | None, typer.Option(help="outcomes (patient_id, followup_years, event) to rank "
                                                       "the groups by HF death (event 1)")] = None,
    k: Annotated[int, typer.Option(help="number of groups")] = 2,
    seed: Annotated[int, typer.Option(help="k-means seed")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Cluster echo measurements into phenogroups, numbered by risk; assign them with `cohort build --phenogroups`."""
    from ecgscope.cohort import Phenogroups, load_table
    from ecgscope.cohort.phenogroups import hf_death_followup
    from ecgscope.io import write_text

    _require(k >= 2, f"--k must be at least 2 groups, not {k}")
    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    try:
        echo = load_table(imaging)
        time, event = hf_death_followup(echo, load_table(outcomes)) if outcomes is not None else (None, None)
        groups = Phenogroups.fit(echo, time, event, k=k, seed=seed)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    write_text(out, json.dumps(groups.to_dict(), indent=2) + "\n")
    assigned = groups.assign(echo)
    for g, rate in enumerate(groups.rates):
        size = int((assigned == g).sum())
        tag = "  [bold red]high risk[/]" if g == groups.high_risk else ""
        console.print(f"  group {g}: {size:,} studies, {rate:.2f} HF deaths per 100 person-years{tag}")
    console.print(f"[green]phenogroups ranked by {groups.ranked_by}[/] -> [bold]{out}[/]")


Devices = Annotated[str | None, typer.Option(help="training processes per machine: a number (GPUs, or CPU processes "
                                                  "with --accelerator cpu) or auto; overrides trainer.devices")]
NumNodes = Annotated[int | None, typer.Option(help="machines (trainer.num_nodes)", min=1, max=4096)]
Strategy = Annotated[str | None, typer.Option(help="auto (one process) or ddp (trainer.strategy)")]
Accelerator = Annotated[str | None, typer.Option(help="auto, cpu or gpu (trainer.accelerator)")]
NumWorkers = Annotated[int | None, typer.Option(help="data-loading processes (default: up to 8 with a GPU, none "
                                                   "without)")]
ResumeOut = Annotated[bool, typer.Option(help="continue the run in --out")]


def _trainer(base, devices: str | None, num_nodes: int | None, strategy: str | None, accelerator: str | None):
    """The run's trainer settings with the command line's overrides, validated (exit 2 on a bad value)."""
    from pydantic import ValidationError

    from ecgscope.config import TrainerConfig

    given = {"devices": None if devices is None else (devices if devices == "auto" else _integer(devices)),
             "num_nodes": num_nodes, "strategy": strategy, "accelerator": accelerator}
    try:
        return TrainerConfig.model_validate({**(base.model_dump() if base is not None else {}),
                                             **{k: v for k, v in given.items() if v is not None}})
    except ValidationError as exc:
        _fail("; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors()))


def _integer(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


config_app = typer.Typer(help="The run configuration that train, finetune and es.train read.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("schema")
def config_schema() -> None:
    """Print the run configuration's JSON Schema: every key, its type, default and meaning."""
    from ecgscope.config import RunConfig

    print(json.dumps(RunConfig.model_json_schema(), indent=2))


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="run configuration (YAML)", exists=True, dir_okay=False)],
    resume: Annotated[bool, typer.Option(help="continue the run in the config's out directory")] = False,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    accelerator: Accelerator = None,
) -> None:
    """Train a model from a store and a cohort table; checkpoints every epoch, resumable (on any number of
    processes: --devices 2 --strategy ddp, or under torchrun / SLURM).

    CONFIG is a YAML run configuration: out, data (store, cohort, regression and binary targets), model, train
    (epochs, batch size, learning rate, augmentation, conformal level, ...) and trainer (devices, nodes,
    strategy). Every key with its default and meaning: `ecgscope config schema`, or the run configuration page
    of the documentation (docs/reference/config.md when built)."""
    from ecgscope.config import load_config
    from ecgscope.train.module import is_global_zero
    from ecgscope.train.run import train_model

    try:
        cfg = load_config(config)
        cfg = cfg.model_copy(update={"trainer": _trainer(cfg.trainer, devices, num_nodes, strategy, accelerator)})
        model_dir = train_model(cfg, resume=resume)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    if not is_global_zero():  # under DDP the other ranks end quietly; rank 0 reports
        return
    metrics = json.loads((model_dir.parent / "test_metrics.json").read_text())
    for name, value in metrics.items():
        console.print(f"  {name:32s} {value:.3f}")
    console.print(f"[green]model:[/] {model_dir}")


@app.command()
def finetune(
    config: Annotated[Path, typer.Argument(help="run configuration (YAML); train.finetune picks the mode")],
    from_model: Annotated[Path, typer.Option("--from", help="saved model directory to start from")],
    resume: Annotated[bool, typer.Option(help="continue the run in the config's out directory")] = False,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    accelerator: Accelerator = None,
) -> None:
    """Fine-tune a saved model on another cohort: full, linear probe, gradual unfreezing or discriminative LRs."""
    from ecgscope.config import load_config
    from ecgscope.train.module import is_global_zero
    from ecgscope.train.run import train_model

    try:
        cfg = load_config(config)
        cfg = cfg.model_copy(update={"trainer": _trainer(cfg.trainer, devices, num_nodes, strategy, accelerator)})
        model_dir = train_model(cfg, resume=resume, init_from=from_model)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    if not is_global_zero():
        return
    for name, value in json.loads((model_dir.parent / "test_metrics.json").read_text()).items():
        console.print(f"  {name:32s} {value:.3f}")
    console.print(f"[green]model:[/] {model_dir}")


@app.command()
def explain(
    model: Annotated[Path, typer.Argument(help="model directory")],
    ecg: Annotated[Path, typer.Argument(help="one ECG file in any format ecgscope reads")],
    target: Annotated[str, typer.Option(help="the target to explain, e.g. rvef or rv_dysfunction")],
    out: Annotated[Path, typer.Option(help="output folder (attributions, importance tables, figure)")],
    method: Annotated[str, typer.Option(help="integrated_gradients or occlusion")] = "integrated_gradients",
    window_s: Annotated[float, typer.Option(help="occlusion window, s")] = 0.25,
    overwrite: Overwrite = False,
) -> None:
    """Why the model predicts what it does for one ECG: attribution per sample, per lead and per 0.5 s window,
    drawn over the 12 leads and the median beat."""
    from ecgscope.explain import explain_file

    _finite(window_s, "--window-s", 0.01, 10)
    _writable_target(out, "--out", folder=True, overwrite=overwrite)
    try:
        path = explain_file(model, ecg, target, out, method=method, window_s=window_s)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    shares = json.loads((path / "explanation.json").read_text())["lead_importance"]
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    console.print(f"{target}: most attribution in " + ", ".join(f"{lead} {share:.0%}" for lead, share in top))
    console.print(f"[green]wrote[/] {path / 'explanation.png'} and the tables beside it")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model directory")],
    store: Annotated[str | None, typer.Option(help="store (folder or URL) whose ECGs to predict")] = None,
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="ECG files or folders (any mix of formats), "
                                                                      "assessed as the service does; no store")] = None,
    out: Annotated[Path, typer.Option(help="output table: .parquet, or .csv")] = Path("predictions.parquet"),
    pages: Annotated[Path | None, typer.Option(help="with --input: a folder for one printable HTML page per "
                                                    "ECG")] = None,
    input_fs: Annotated[float | None, typer.Option(help="sampling rate of CSV / .npy inputs, Hz")] = None,
    input_units: Annotated[str | None, typer.Option(help="units of CSV / .npy inputs: mV, uV or V")] = None,
    input_leads: Annotated[str | None, typer.Option(help="lead order of .npy rows, comma-separated")] = None,
    engine: Annotated[str, typer.Option(help="with --store: local, or ray (shards of the store as Ray tasks; "
                                             "extra ecgscope[ray])")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="with --engine ray: the cluster's address; default: a "
                                                         "local one")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Predict every ECG in a store (values with conformal intervals, probabilities, risks), or assess ECG files
    as the service does (--input): each row `result`, `cannot_assess` or `unreadable`, with its reasons."""
    from ecgscope.io import input_exists, write_parquet

    _require((store is None) != (not inputs), "give either --store or --input (files or folders)")
    _require(out.suffix.lower() in (".parquet", ".csv"), f"--out {out}: name a .parquet or .csv file")
    _require(pages is None or bool(inputs), "--pages needs --input")
    _require(engine in ("local", "ray"), f"--engine must be local or ray, not {engine!r}")
    _require(engine == "local" or store is not None, "--engine ray works on a --store")
    _finite(input_fs, "--input-fs", 50, 20_000)
    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    if pages is not None:
        _writable_target(pages, "--pages", folder=True, overwrite=overwrite)
    if inputs:
        missing = [str(p) for p in inputs if not input_exists(p)]
        _require(not missing, f"not found: {', '.join(missing[:3])}")
    try:
        if inputs:
            from ecgscope.serve.clinic import predict_files

            table = predict_files(model, inputs, pages=pages, fs=input_fs, units=input_units,
                                  leads=tuple(input_leads.split(",")) if input_leads else None)
        else:
            from ecgscope.train.predict import predict_store

            table = predict_store(model, store, engine=engine, ray_address=ray_address)
        if out.suffix.lower() == ".csv":
            from ecgscope.io import write_text

            write_text(out, table.to_csv(index=False))
        else:
            write_parquet(table, out)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    if inputs:
        counts = table["status"].value_counts().to_dict() if len(table) else {}
        console.print(f"[green]wrote[/] {len(table):,} rows to [bold]{out}[/]: " +
                      ", ".join(f"{counts.get(s, 0)} {s}" for s in ("result", "cannot_assess", "unreadable")),
                      soft_wrap=True)
        if pages is not None:
            console.print(f"printable pages in [bold]{pages}[/]")
    else:
        console.print(f"[green]wrote[/] {len(table):,} predictions ({', '.join(table.columns[2:])}) to [bold]{out}[/]")


@app.command()
def serve(
    models: Annotated[list[Path], typer.Argument(help="model directories (each served under its folder name)")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port", min=1, max=65535)] = 8000,
    api_keys: Annotated[Path | None, typer.Option(help="file of API keys, one per line (also: "
                                                       "$ECGSCOPE_API_KEYS, comma-separated)")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="serve without keys (loopback only)")] = False,
    max_upload_mb: Annotated[float, typer.Option(help="largest upload, MiB")] = 16.0,
    time_limit_s: Annotated[float, typer.Option(help="time limit per request, s")] = 30.0,
    cors_origin: Annotated[list[str] | None, typer.Option(help="allow browser calls from this origin "
                                                               "(repeatable); default: none")] = None,
    runtime: Annotated[str, typer.Option(help="auto (the faster of torch and onnxruntime), torch, "
                                              "onnxruntime")] = "auto",
) -> None:
    """Serve models over HTTP: POST /v1/predict and /v1/explain, GET /v1/models and /health, the API docs at
    /docs and the web viewer at /. Every route but /health and the viewer needs a bearer key."""
    import ipaddress
    import logging

    try:
        import uvicorn

        from ecgscope.serve.app import create_app, read_api_keys
    except ImportError as exc:
        _fail(f"the service needs its extra: pip install 'ecgscope[serve]' ({exc})")
    _finite(max_upload_mb, "--max-upload-mb", 0.01, 1024)
    _finite(time_limit_s, "--time-limit-s", 0.1, 3600)
    _require(runtime in ("auto", "torch", "onnxruntime"), "--runtime must be auto, torch or onnxruntime")
    try:
        keys = read_api_keys(api_keys, os.environ.get("ECGSCOPE_API_KEYS"))
    except (EcgscopeError, OSError) as exc:
        _fail(exc)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    _require(bool(keys) or no_auth, "no API key: give --api-keys FILE or set ECGSCOPE_API_KEYS (or --no-auth, "
                                    "on loopback only)")
    _require(not (no_auth and not keys and not loopback), f"--no-auth is allowed on loopback only, not on {host}")
    try:
        service = create_app(models, api_keys=keys or None, max_upload_bytes=int(max_upload_mb * 2**20),
                             time_limit_s=time_limit_s, cors_origins=cors_origin, runtime=runtime)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name, assessor in service.state.assessors.items():
        console.print(f"model [bold]{name}[/] ({assessor.identity['version']}, {assessor.runtime.name})")
    console.print(f"serving on http://{host}:{port} (viewer at /, API docs at /docs)"
                  + ("" if keys else " [yellow]without authentication[/]"))
    uvicorn.run(service, host=host, port=port, access_log=False, log_level="warning")


@app.command()
def pretrain(
    store: Annotated[str, typer.Option(help="store (folder or URL) of unlabeled ECGs")],
    out: Annotated[Path, typer.Option(help="run directory (checkpoints, logs, model/)")],
    model: Annotated[str, typer.Option(help="registry architecture of the encoder")] = DEFAULT_MODEL,
    epochs: Annotated[int, typer.Option(help="passes over the store")] = 10,
    batch_size: Annotated[int, typer.Option(help="ECGs per batch (each gives two views)")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine schedule)")] = 1e-3,
    view_s: Annotated[float, typer.Option(help="seconds per view (two windows of each ECG)")] = 5.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    num_workers: NumWorkers = None,
    resume: ResumeOut = False,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    accelerator: Accelerator = None,
) -> None:
    """Self-supervised pretraining: contrast two windows of each ECG (leads dropped, noise added) with NT-Xent;
    under DDP (--devices N --strategy ddp) the negatives come from every process."""
    from ecgscope.foundation import pretrain_encoder
    from ecgscope.train.module import is_global_zero

    _require(epochs >= 1 and batch_size >= 2, f"--epochs must be >= 1 and --batch-size >= 2 (NT-Xent needs "
                                              f"negatives), not {epochs} and {batch_size}")
    _finite(lr, "--lr", 1e-8, 10)
    _finite(view_s, "--view-s", 0.5, 60)
    _writable_target(out, "--out", folder=True)
    try:
        model_dir = pretrain_encoder(store, out, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                                     view_s=view_s, seed=seed, num_workers=num_workers, resume=resume,
                                     trainer=_trainer(None, devices, num_nodes, strategy, accelerator))
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    if not is_global_zero():
        return
    console.print(f"[green]encoder:[/] {model_dir}  (embed with `ecgscope embed {model_dir} --store ...`)")


@app.command()
def embed(
    store: Annotated[str, typer.Option(help="store (folder or URL) whose ECGs to embed")],
    model: Annotated[Path | None, typer.Argument(help="model directory (pretrained or trained)")] = None,
    out: Annotated[Path, typer.Option(help="output Parquet: ecg_id, patient_id, emb_0 ...")] = Path(
        "embeddings.parquet"),
    ecgfounder: Annotated[Path | None, typer.Option(help="an ECGFounder checkpoint (.pth) instead of MODEL")] = None,
    batch_size: Annotated[int, typer.Option(help="ECGs per batch")] = 64,
    engine: Annotated[str, typer.Option(help="local, or ray (shards of the store as Ray tasks; extra "
                                             "ecgscope[ray])")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="with --engine ray: the cluster's address; default: a "
                                                         "local one")] = None,
    overwrite: Overwrite = False,
) -> None:
    """One embedding per ECG of a store, from a saved encoder or a downloaded ECGFounder checkpoint."""
    from ecgscope.foundation import ecgfounder_encoder, embed_store, load_encoder
    from ecgscope.store import Store

    if (model is None) == (ecgfounder is None):
        _fail(ValueError("give either a MODEL directory or --ecgfounder CHECKPOINT"))
    _require(batch_size >= 1, f"--batch-size must be at least 1, not {batch_size}")
    _require(engine in ("local", "ray"), f"--engine must be local or ray, not {engine!r}")
    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    try:
        encoder = ecgfounder_encoder(ecgfounder) if ecgfounder is not None else load_encoder(model)
        embed_store(encoder, store, out, batch_size=batch_size, engine=engine, ray_address=ray_address)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(f"[green]wrote[/] {encoder.dim}-d embeddings of {len(Store(store)):,} ECGs to [bold]{out}[/]")


@app.command("import-ecgfounder")
def import_ecgfounder(
    checkpoint: Annotated[Path, typer.Argument(help="downloaded ECGFounder checkpoint (.pth, weights only)")],
    out: Annotated[Path, typer.Option(help="model directory to write")],
) -> None:
    """Make a model directory of ECGFounder's weights and its documented input contract (500 Hz x 10 s, notch,
    band-pass, median baseline, global z-score), to fine-tune with `ecgscope finetune --from OUT`."""
    from ecgscope.foundation import save_ecgfounder

    try:
        path = save_ecgfounder(checkpoint, out)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(f"[green]model:[/] {path} (fine-tune with `ecgscope finetune CONFIG --from {path}`)")


motion_app = typer.Typer(help="Synthetic echo motion: ECG -> tissue Doppler cycle (conditional GAN).",
                         no_args_is_help=True)
app.add_typer(motion_app, name="motion")


@motion_app.command("train")
def motion_train(
    store: Annotated[str, typer.Option(help="store (folder or URL) with the paired ECGs")],
    cohort: Annotated[Path, typer.Option(help="cohort table: ecg_row, patient_id, split (train/val/test)")],
    motion: Annotated[Path, typer.Option(help="motion table: patient_id, rr_ms, tdi_velocity_cm_s, "
                                              "annular_displacement_mm (e.g. the simulator's truth/motion.parquet)")],
    out: Annotated[Path, typer.Option(help="run directory (checkpoints, logs, model/)")],
    encoder: Annotated[str, typer.Option(help="registry architecture that reads the ECG")] = DEFAULT_MODEL,
    init_encoder: Annotated[Path | None, typer.Option(help="start the encoder from a saved model (e.g. "
                                                           "`ecgscope pretrain`'s)")] = None,
    epochs: Annotated[int, typer.Option(help="passes over the training pairs")] = 30,
    batch_size: Annotated[int, typer.Option(help="pairs per batch")] = 64,
    recon_weight: Annotated[float, typer.Option(help="weight of the L1 term against the adversarial one")] = 20.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    num_workers: NumWorkers = None,
    resume: ResumeOut = False,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    accelerator: Accelerator = None,
) -> None:
    """Train the generator adversarially with a reconstruction term; report generated vs true on the test split.

    Under DDP (--devices N --strategy ddp) each process trains on its shard and rank 0 writes the generator."""
    from ecgscope.cohort import load_table
    from ecgscope.motion import train_motion
    from ecgscope.train.module import is_global_zero

    _require(epochs >= 1 and batch_size >= 1, f"--epochs and --batch-size must be at least 1, not {epochs} and "
                                              f"{batch_size}")
    _finite(recon_weight, "--recon-weight", 0, 1e6)
    _writable_target(out, "--out", folder=True)
    try:
        model_dir = train_motion(store, load_table(cohort), load_table(motion), out, encoder=encoder,
                                 init_encoder=init_encoder, epochs=epochs, batch_size=batch_size,
                                 recon_weight=recon_weight, seed=seed, num_workers=num_workers, resume=resume,
                                 trainer=_trainer(None, devices, num_nodes, strategy, accelerator))
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    if not is_global_zero():  # under DDP the other ranks end quietly; rank 0 reports
        return
    for name, value in json.loads((model_dir / "metrics.json").read_text()).items():
        console.print(f"  {name:24s} {value:.3f}")
    console.print(f"[green]generator:[/] {model_dir}")


@motion_app.command("generate")
def motion_generate(
    model: Annotated[Path, typer.Argument(help="generator directory from `motion train`")],
    store: Annotated[str, typer.Option(help="store (folder or URL) whose ECGs to turn into motion")],
    out: Annotated[Path, typer.Option(help="output Parquet: ids, features, curves")] = Path("motion.parquet"),
    engine: Annotated[str, typer.Option(help="local, or ray (shards of the store as Ray tasks; extra "
                                             "ecgscope[ray])")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="with --engine ray: the cluster's address; default: a "
                                                         "local one")] = None,
    overwrite: Overwrite = False,
) -> None:
    """One generated cycle per ECG: velocity and displacement curves with s', e', a', e'/a', displacement, timing."""
    from ecgscope.motion import generate_motion

    _require(engine in ("local", "ray"), f"--engine must be local or ray, not {engine!r}")
    _writable_target(out, "--out", folder=False, overwrite=overwrite)
    try:
        table = generate_motion(model, store, out, engine=engine, ray_address=ray_address)
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(f"[green]wrote[/] generated motion of {len(table):,} ECGs to [bold]{out}[/]")


@motion_app.command("features")
def motion_features_command(
    curves: Annotated[Path, typer.Argument(help="motion table: rr_ms, tdi_velocity_cm_s, annular_displacement_mm "
                                                "(measured, or from `motion generate`)")],
    out: Annotated[Path, typer.Option(help="output Parquet: the table's id columns and the features")],
) -> None:
    """Measure s', e', a', e'/a', displacement and timing on every cycle of a motion table."""
    import numpy as np

    from ecgscope.cohort import load_table
    from ecgscope.io import write_parquet
    from ecgscope.motion import motion_features
    from ecgscope.motion.generate import MOTION_COLUMNS

    try:
        table = load_table(curves)
        missing = [c for c in MOTION_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{curves} lacks column(s) {missing}")
        features = motion_features(np.stack(table["tdi_velocity_cm_s"].to_numpy()),
                                   np.stack(table["annular_displacement_mm"].to_numpy()), table["rr_ms"].to_numpy())
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    ids = [c for c in ("ecg_id", "patient_id") if c in table.columns]
    write_parquet(table[ids].reset_index(drop=True).join(features), out)
    console.print(f"[green]wrote[/] features of {len(features):,} cycles to [bold]{out}[/]")


def _named_paths(items: list[str] | None) -> dict[str, Path]:
    """``NAME=PATH`` options (or bare paths, named by their file stem)."""
    out = {}
    for item in items or []:
        name, _, path = item.rpartition("=")
        out[name or Path(path).stem] = Path(path)
    return out


@app.command()
def ensemble(
    cohort: Annotated[Path, typer.Option(help="development cohort (Parquet/CSV): ecg_id, patient_id, the label")],
    label: Annotated[str, typer.Option(help="binary label column, e.g. diastolic_risk_phenogroup")],
    out: Annotated[Path, typer.Option(help="output folder")],
    features: Annotated[list[str] | None, typer.Option(help="NAME=PATH of a feature table keyed by ecg_id "
                                                            "(embeddings, generated motion; repeat)")] = None,
    covariate: Annotated[list[str] | None, typer.Option(help="cohort column used as a covariate (repeat)")] = None,
    apply: Annotated[Path | None, typer.Option(help="a second cohort to predict with the model fitted on all of "
                                                    "the development cohort")] = None,
    apply_features: Annotated[list[str] | None, typer.Option(help="NAME=PATH feature tables of --apply, the "
                                                                  "same names as --features")] = None,
    folds: Annotated[int, typer.Option(help="cross-fitting folds (grouped by patient)")] = 5,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Stack the feature blocks into one calibrated probability, cross-fitted on the development cohort; each block
    alone is fitted the same way, so `ecgscope evaluate --baseline` compares the whole with a part."""
    from ecgscope.cohort import load_table
    from ecgscope.ensemble import cross_fitted, fit_ensemble, join_blocks
    from ecgscope.io import write_parquet, write_text

    def write(table, probabilities, stem: str) -> None:
        """One predictions file per model (the ensemble, then each block alone), in `evaluate`'s columns."""
        for name in probabilities.columns:
            frame = table[["ecg_id", "patient_id"]].reset_index(drop=True).astype(str)
            if label in table.columns:
                frame[f"{label}_true"] = table[label].to_numpy(float)
            frame[f"{label}_pred"] = probabilities[name].to_numpy()
            write_parquet(frame, out / (f"{stem}.parquet" if name == "ensemble" else f"{stem}_{name}.parquet"))

    _require(folds >= 2, f"--folds must be at least 2, not {folds}")
    _writable_target(out, "--out", folder=True, overwrite=overwrite)
    try:
        dev = load_table(cohort)
        if label not in dev.columns:
            raise ValueError(f"{cohort} has no column {label!r}")
        dev = dev[dev[label].notna()].reset_index(drop=True)
        x, blocks = join_blocks(dev, _named_paths(features), list(covariate or []))
        oof = cross_fitted(x, dev[label].to_numpy(float), dev["patient_id"], blocks, seed=seed, folds=folds)
        fitted = fit_ensemble(x, dev[label].to_numpy(float), blocks, seed=seed, folds=folds, groups=dev["patient_id"])
        other = x_other = None
        if apply is not None:
            other = load_table(apply)
            x_other, _ = join_blocks(other, _named_paths(apply_features), list(covariate or []))
    except (EcgscopeError, ValueError, OSError) as exc:
        _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    write(dev, oof, "cross_fitted")
    write_text(out / "weights.json", json.dumps({"blocks": blocks, "meta_weights": fitted.weights}, indent=2) + "\n")
    from ecgscope.evaluate import auroc

    y = dev[label].to_numpy(float)
    for name in oof.columns:
        console.print(f"  {name:12s} cross-fitted AUROC {auroc(y, oof[name].to_numpy()):.3f}")
    console.print(f"[green]wrote[/] {out}/cross_fitted*.parquet ({len(dev):,} rows; one file per model)")
    if other is not None:
        write(other, fitted.predict(x_other), "applied")
        console.print(f"[green]wrote[/] {out}/applied*.parquet ({len(other):,} rows)")


@app.command()
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="predictions (Parquet/CSV), e.g. from ecgscope predict")],
    out: Annotated[Path, typer.Option(help="folder for the tables")],
    labels: Annotated[Path | None, typer.Option(help="measured values per ecg_id (Parquet/CSV); omit when the "
                                                     "predictions already hold NAME_true / NAME_pred")] = None,
    target: Annotated[list[str] | None, typer.Option(help="target to evaluate (repeat; default: all shared)")] = None,
    subgroup: Annotated[list[str] | None, typer.Option(help="column to split by (repeat), e.g. sex")] = None,
    age_bands: Annotated[bool, typer.Option(help="add an age_band subgroup (<50, 50-64, 65-74, 75+)")] = True,
    operating_point: Annotated[str, typer.Option(help="youden, sensitivity:0.9, specificity:0.9, threshold:0.5")]
    = "youden",
    baseline: Annotated[Path | None, typer.Option(help="a second model's predictions: DeLong, NRI, IDI")] = None,
    split: Annotated[str | None, typer.Option(help="score only rows of this split (default: 'test' when the "
                                                   "labels carry a split column); 'all' scores every row")] = None,
    model: Annotated[Path | None, typer.Option(help="model directory whose operating thresholds (chosen on its "
                                                    "validation patients) to report at")] = None,
    n_boot: Annotated[int, typer.Option(help="patient bootstrap resamples for the CIs")] = 500,
    title: Annotated[str | None, typer.Option(help="section title in the report")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Metrics with patient-bootstrap CIs, overall and by subgroup, and the curves behind the figures.

    Scores the test split when the labels carry one; binary operating points come from --model, else from
    the validation split, else (flagged apparent) from the scored rows themselves."""
    from ecgscope.cohort import load_table
    from ecgscope.evaluate import age_bands as bands
    from ecgscope.evaluate.evaluation import prediction_frame, run_evaluation, scored_rows

    _require(n_boot >= 10, f"--n-boot must be at least 10, not {n_boot}")
    _writable_target(out, "--out", folder=True, overwrite=overwrite)
    with _removed_on_failure(out):
        try:
            frame = prediction_frame(load_table(predictions), load_table(labels) if labels else None, target)
            frame, thresholds, said = scored_rows(frame, split, operating_point,
                                                  json.loads((model / "model.json").read_text()) if model else None)
            console.print(said)
            groups = list(subgroup or [])
            if age_bands and "age" in frame.columns and frame["age"].notna().any():
                frame["age_band"] = bands(frame["age"])
                groups.append("age_band")
            missing = [g for g in groups if g not in frame.columns]
            if missing:
                raise ValueError(f"subgroup column(s) {missing} not found; columns: {list(frame.columns)}")
            base = prediction_frame(load_table(baseline), load_table(labels) if labels else None, target) \
                if baseline else None
            metrics = run_evaluation(frame, out, subgroups=groups, baseline=base, operating_point=operating_point,
                                     thresholds=thresholds, n_boot=n_boot, title=title)
        except (EcgscopeError, OSError, ValueError, KeyError) as exc:
            _fail(exc)
    overall = metrics[(metrics.subgroup == "all") & metrics.metric.isin(["AUROC", "MAE", "R2", "Brier"])]
    table = Table("target", "metric", "estimate [95% CI]", "n", title="Overall (patient-bootstrap CIs)")
    for r in overall.itertuples():
        table.add_row(r.target, r.metric, f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", str(r.n))
    console.print(table)
    console.print(f"[green]wrote[/] {len(metrics):,} metric rows and curves to [bold]{out}[/]")


@app.command()
def survival(
    predictions: Annotated[Path, typer.Argument(help="predictions with ecg_id, patient_id, acquired_at")],
    outcomes: Annotated[Path, typer.Option(help="follow-up per patient (Parquet/CSV; see README)")],
    predictor: Annotated[str, typer.Option(help="prediction column to analyse, e.g. rvef")],
    out: Annotated[Path, typer.Option(help="folder for the tables")],
    per: Annotated[float, typer.Option(help="HR per this change of the predictor (-10: per 10 decrease)")] = 1.0,
    covariate: Annotated[list[str] | None, typer.Option(help="adjust for this column (repeat)")] = None,
    lower_is_riskier: Annotated[bool, typer.Option(help="lower values mean more risk (as for RVEF)")] = False,
    threshold: Annotated[list[float] | None, typer.Option(help="risk group cut on the predictor (repeat)")] = None,
    quantile: Annotated[list[float] | None, typer.Option(help="risk group cut at this quantile of risk (repeat; "
                                                              "default: 0.8, the top fifth)")] = None,
    horizon: Annotated[float, typer.Option(help="years at which to report event rates")] = 4.0,
    cause: Annotated[int, typer.Option(help="event code of the cause of interest (others compete)")] = 1,
    title: Annotated[str | None, typer.Option(help="section title in the report")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Cox HR per unit, Fine-Gray, Kaplan-Meier, cumulative incidence, concordance and risk groups."""
    from ecgscope.cohort import load_table
    from ecgscope.survival.analysis import run_survival, survival_frame

    _require(math.isfinite(per) and per != 0, f"--per must be a finite, non-zero change, not {per:g}")
    _finite(horizon, "--horizon", 0.01, 100)
    _writable_target(out, "--out", folder=True, overwrite=overwrite)
    with _removed_on_failure(out):
        try:
            frame = survival_frame(load_table(predictions), outcomes)
            summary = run_survival(frame, out, predictor, per=per, covariates=list(covariate or []),
                                   higher_is_riskier=not lower_is_riskier, thresholds=threshold,
                                   quantiles=None if threshold else quantile, horizon=horizon,
                                   cause=cause, title=title)
        except (EcgscopeError, OSError, ValueError, KeyError) as exc:
            _fail(exc)
    console.print(f"{summary['n']:,} patients, {summary['events_any']:,} deaths ({summary['events_cause']:,} of "
                  f"cause {cause}); Harrell C {summary['harrell_c_any']:.3f}, Uno C {summary['uno_c_any']:.3f}")
    named = [("Cox HR, any death, unadjusted", "cox_any_unadjusted", "hr"),
             (f"Cox HR, any death, adjusted for {', '.join(covariate or [])}", "cox_any_adjusted", "hr"),
             (f"Fine-Gray SHR, cause {cause}, " + (f"adjusted for {', '.join(covariate)}" if covariate
                                                   else "unadjusted"), "fine_gray", "shr")]
    for label, key, ratio in named:
        if key in summary:
            r = summary[key]
            console.print(f"  {label}, per {per:g} of {predictor}: {r[ratio]:.2f} [{r['ci_low']:.2f}, "
                          f"{r['ci_high']:.2f}] ({r['interval']}), p = {r['p']:.3g}")
    for g in summary["risk_groups"]:
        console.print(f"  {g['group']}: {g['rate']:.1%} [{g['ci_low']:.1%}, {g['ci_high']:.1%}] by {horizon:g} y "
                      f"(n = {g['n']:,})")
    console.print(f"[green]wrote[/] survival tables to [bold]{out}[/]")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="run directory with evaluation / survival folders")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default RUN_DIR/report.html)")] = None,
    overwrite: Overwrite = False,
) -> None:
    """One self-contained HTML report (figures embedded) and a JSON of every number in it."""
    from ecgscope.report.html import build_report

    _writable_target(out or run_dir / "report.html", "--out", folder=False, overwrite=overwrite)
    try:
        path = build_report(run_dir, out)
    except (EcgscopeError, OSError, ValueError, KeyError) as exc:
        _fail(exc)
    console.print(f"[green]report:[/] [bold]{path}[/] (numbers: {path.with_suffix('.json')})")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="model directory (weights.safetensors, model.json, ...)")],
    onnx: Annotated[bool, typer.Option("--onnx", help="write an ONNX model checked against onnxruntime")] = False,
    out: Annotated[Path | None, typer.Option(help="output file (default MODEL/model.onnx)")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Export a model directory (today: to ONNX, verified to match PyTorch within 1e-4)."""
    if not onnx:
        _fail(ValueError("choose an export format: --onnx"))
    _writable_target(out or model / "model.onnx", "--out", folder=False, overwrite=overwrite)
    from ecgscope.train import export_onnx

    try:
        path = export_onnx(model, out)
    except (EcgscopeError, OSError) as exc:
        _fail(exc)
    console.print(f"[green]wrote[/] {path} (onnxruntime matches PyTorch within 1e-4)")


@app.command()
def version() -> None:
    """Print the ecgscope version."""
    from ecgscope import __version__

    console.print(__version__)


if __name__ == "__main__":
    app()
