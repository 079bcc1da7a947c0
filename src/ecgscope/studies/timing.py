"""Wall time per stage of a long run (the demo prints its table at the end and keeps it in
``stage_times.csv``), so the slow stages are named by measurement rather than by guess."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd


class StageClock:
    """``lap(name)`` ends the stage that began at the previous lap (or at the clock's start); ``on_lap`` is
    called after each (the demo gives study A all cores back there once study B is done)."""

    def __init__(self, on_lap: Callable[[], None] | None = None):
        self.last = time.perf_counter()
        self.rows: list[tuple[str, float]] = []
        self.on_lap = on_lap

    def __getstate__(self) -> dict:  # a clock crosses processes (the demo's study B) without its callback
        return {**self.__dict__, "on_lap": None}

    def lap(self, name: str) -> None:
        """Record the time since the previous lap as stage ``name``."""
        now = time.perf_counter()
        self.rows.append((name, now - self.last))
        self.last = now
        if self.on_lap is not None:
            self.on_lap()

    def table(self) -> pd.DataFrame:
        """One row per stage: seconds and share of the whole, and a total row."""
        table = pd.DataFrame(self.rows, columns=["stage", "seconds"])
        total = table["seconds"].sum()
        table["share"] = table["seconds"] / total if total else 0.0
        return pd.concat([table, pd.DataFrame([{"stage": "total", "seconds": total, "share": 1.0}])],
                         ignore_index=True)
