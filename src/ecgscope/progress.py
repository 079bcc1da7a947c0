"""One progress-bar style for all long work: a rich bar in a terminal, a line every tenth of the way (and at
the end) when output goes to a log or a pipe, where a live bar would show nothing."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class LineProgress:
    """The part of rich's ``Progress`` that ecgscope uses, printing plain lines to stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tasks: dict[int, list] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        for task in self.tasks:
            self._say(task, final=True)

    def add_task(self, description: str, total: float | None = None) -> int:
        """Start counting ``description``; ``total`` None when unknown."""
        task = len(self.tasks)
        self.tasks[task] = [description, total, 0, time.monotonic(), 0, 0]  # done, start, step and count said
        return task

    def advance(self, task: int, advance: float = 1) -> None:
        """Count ``advance`` more; print a line when another tenth of the total (or 10,000 items) is done."""
        entry = self.tasks[task]
        entry[2] += advance
        step = int(10 * entry[2] / entry[1]) if entry[1] else int(entry[2] // 10_000)
        if step > entry[4]:
            entry[4] = step
            self._say(task)

    def _say(self, task: int, final: bool = False) -> None:
        description, total, done, start, _, said = self.tasks[task]
        if final and (not done or done == said):
            return
        self.tasks[task][5] = done
        seconds = time.monotonic() - start
        of = f" of {total:,.0f}" if total else ""
        rate = f", {done / seconds:,.1f}/s" if seconds > 0 else ""
        print(f"{description}: {done:,.0f}{of}{' done' if final else ''} ({seconds:,.0f} s{rate})",
              file=self.stream, flush=True)


def progress_bar(enabled: bool = True) -> Progress | LineProgress:
    """A rich progress bar (use as a context manager) in a terminal, plain lines outside one;
    ``enabled=False`` shows nothing."""
    if enabled and not sys.stderr.isatty():
        return LineProgress()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=True)
