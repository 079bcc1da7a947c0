"""Where batch work runs: this machine, or a Ray cluster (``--engine ray``, extra ``ecgscope[ray]``).

:func:`ray_map` runs a function over jobs as Ray tasks and gives the results back in the jobs' order, with a
bounded number in flight (memory stays flat however many jobs) and each task retried when its worker dies.
The cluster is the one at ``address`` (``auto``: the one this machine belongs to) or, when none is given and
none is running, a local one started for the call and stopped after it. Inputs and outputs on disk must be on a
filesystem every node shares (or on object storage).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from ecgscope.errors import EcgscopeError

#: How many times a task is retried when its worker process dies.
MAX_RETRIES = 3


class EngineError(EcgscopeError, RuntimeError):
    """The requested engine cannot run here (Ray missing, the cluster unreachable)."""


def ray_iter(function: Callable, jobs: Iterable, *, address: str | None = None, num_cpus: int | None = None,
             shared=None) -> Iterator:
    """``function(job)`` for every job on a Ray cluster, yielded in the jobs' order as they complete; with
    ``shared`` (a model, say), ``function(shared, job)``, the object sent to the cluster once for all tasks."""
    try:
        import ray
    except ImportError as exc:
        raise EngineError("--engine ray needs Ray: pip install 'ecgscope[ray]'") from exc
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": num_cpus}
        try:
            ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except ConnectionError as exc:
            raise EngineError(f"cannot reach the Ray cluster at {address} ({exc})") from exc
    try:
        remote = ray.remote(max_retries=MAX_RETRIES)(function)
        in_flight = max(2 * int(ray.cluster_resources().get("CPU", 1)), 2)
        arguments = () if shared is None else (ray.put(shared),)  # a top-level reference: resolved in the task
        pending: deque = deque()
        for job in jobs:
            pending.append(remote.remote(*arguments, job))
            if len(pending) >= in_flight:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
    finally:
        if started:
            ray.shutdown()


def ray_map(function: Callable, jobs: list, *, address: str | None = None, progress: bool = True,
            what: str = "working", shared=None) -> list:
    """:func:`ray_iter` collected into a list, with a progress bar over the jobs."""
    from ecgscope.progress import progress_bar

    out = []
    with progress_bar(progress) as bar:
        task = bar.add_task(f"{what} on Ray", total=len(jobs))
        for result in ray_iter(function, jobs, address=address, shared=shared):
            out.append(result)
            bar.advance(task)
    return out
