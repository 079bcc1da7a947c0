"""Wall time per stage of a long run (the demo prints its table at the end and keeps it in
``stage_times.csv``), so the slow stages are named by measurement rather than by guess."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


class StageClock:
    """``lap(name)`` ends the stage that began at the previous lap (or at the clock's start)."""

    def __init__(self):
        self.last = time.perf_counter()
        self.rows: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        """Record the time since the previous lap as stage ``name``."""
        now = time.perf_counter()
        self.rows.append((name, now - self.last))
        self.last = now

    def table(self) -> pd.DataFrame:
        """One row per stage: seconds and share of the whole, and a total row."""
        table = pd.DataFrame(self.rows, columns=["stage", "seconds"])
        total = table["seconds"].sum()
        table["share"] = table["seconds"] / total if total else 0.0
        return pd.concat([table, pd.DataFrame([{"stage": "total", "seconds": total, "share": 1.0}])],
                         ignore_index=True)

    def write(self, path: str | Path) -> None:
        """Write :meth:`table` as CSV."""
        from ecgscope.io import write_text

        write_text(Path(path), self.table().round({"seconds": 1, "share": 3}).to_csv(index=False))
