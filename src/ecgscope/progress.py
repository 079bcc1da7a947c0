"""One progress-bar style for all long work: a rich bar in a terminal, a line every tenth of the way (and at
the end) when output goes to a log or a pipe, where a live bar would show nothing."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@dataclass
class _Count:
    description: str
    total: float | None
    done: float = 0
    start: float = field(default_factory=time.monotonic)
    step: int = 0  # tenths (or ten-thousands, with no total) reported so far
    said: float = 0  # the count the last line gave


class LineProgress:
    """The part of rich's ``Progress`` that ecgscope uses, printing plain lines to stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tasks: list[_Count] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        for count in self.tasks:
            if count.done and count.done != count.said:
                self._say(count, final=True)

    def add_task(self, description: str, total: float | None = None) -> int:
        """Start counting ``description``; ``total`` None when unknown."""
        self.tasks.append(_Count(description, total))
        return len(self.tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        """Count ``advance`` more; print a line when another tenth of the total (or 10,000 items) is done."""
        count = self.tasks[task]
        count.done += advance
        step = int(10 * count.done / count.total) if count.total else int(count.done // 10_000)
        if step > count.step:
            count.step = step
            self._say(count)

    def _say(self, count: _Count, final: bool = False) -> None:
        count.said = count.done
        seconds = time.monotonic() - count.start
        of = f" of {count.total:,.0f}" if count.total else ""
        rate = f", {count.done / seconds:,.1f}/s" if seconds > 0 else ""
        print(f"{count.description}: {count.done:,.0f}{of}{' done' if final else ''} ({seconds:,.0f} s{rate})",
              file=self.stream, flush=True)


def progress_bar(enabled: bool = True) -> Progress | LineProgress:
    """A rich progress bar (use as a context manager) in a terminal, plain lines outside one;
    ``enabled=False`` shows nothing."""
    if enabled and not sys.stderr.isatty():
        return LineProgress()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=True)
