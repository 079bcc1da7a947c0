"""Inference batched across concurrent requests, with no added wait.

One worker runs the model; whatever arrived while it ran forms the next batch (up to ``max_batch``), so a lone
request goes straight through and a burst is answered in a few batches instead of one forward pass each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np


class MicroBatcher:
    """Queue model inputs from request handlers; ``infer`` (a batch -> one result per row) runs in a thread."""

    def __init__(self, infer: Callable[[np.ndarray], list], max_batch: int = 32):
        self.infer, self.max_batch = infer, max_batch
        self.batches = self.items = 0
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, x: np.ndarray):
        """The result for one input (leads, samples), computed in a batch with whatever else is waiting."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((x, future))
        return await future

    async def close(self) -> None:
        """Stop the worker (at shutdown)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            live = [(x, f) for x, f in items if not f.done()]  # a timed-out request no longer waits
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self.infer, np.stack([x for x, _ in live]))
            except Exception as exc:  # the requests in this batch fail with it; the worker goes on
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches, self.items = self.batches + 1, self.items + len(live)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
