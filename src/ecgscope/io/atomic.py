"""Atomic writes: a file or directory appears whole under its final name, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ecgscope.errors import EcgscopeError


def _umask() -> int:
    """The process umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: Path) -> None:
    """Remove what a killed writer of ``path`` left beside it (``.NAME.PID.*.partial`` of a dead PID)."""
    for leftover in path.parent.glob(f".{path.name}.*.partial"):
        pid = leftover.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The temporary name carries the writer's PID, so the leftovers of a killed writer are removed by the next."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes it private (0600); give it the mode a plain open() would
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``, on error it is removed.

    Raises ``FileExistsError`` when ``path`` exists and is not empty, unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; choose another --out or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        follow_umask(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def follow_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes a plain mkdir / open would (mkdtemp makes a folder 0700
    and some writers make files 0600, whatever the user's umask says)."""
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(parent, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o666 & ~mask)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (CSV, JSON) atomically and return the path."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_parquet(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` to Parquet atomically (no index column) and return the path."""
    with atomic_file(path) as tmp:
        table.to_parquet(tmp, index=False, engine="pyarrow")
    return Path(path)


class RunInUseError(EcgscopeError, RuntimeError):
    """Another process is writing to the same run directory."""


@contextmanager
def exclusive_run(path: str | Path) -> Iterator[Path]:
    """Hold ``path/.ecgscope.lock`` for the duration: a second run into the same directory fails at once
    instead of deleting and overwriting files the first is still writing."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path / ".ecgscope.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise RunInUseError(f"{path} is in use by another ecgscope run; wait for it or choose another folder") from exc
    try:
        yield path
    finally:
        lock.release()
