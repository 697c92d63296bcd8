"""Batch engines: where the runs of a report batch execute.

:func:`~mmexplain.report.batch.run_batch` owns everything about a batch -- validating every
run first, the run folders, locks, resuming (a current report is skipped), the index; an
engine only calls ``work(prepared_run)`` for every run, ``jobs`` at a time, and yields each
``(position, record)`` as it finishes, in any order. ``work`` never raises for a failed
run (it returns a failed record); where the machinery around it fails (a thread that could
not start, a Ray worker that died) the engine yields the exception instead of a record,
and the batch records the run as failed.

Engines are registered in :data:`BATCH_ENGINES` as ``factory(options) -> engine``:

* ``local`` -- threads in this process, each run in its own kernel process (no options);
* ``ray`` -- one Ray task per run (option ``address``); every node must see the notebooks,
  the report folder and the inputs at the same paths (one machine, or a shared file
  system), and have mmexplain and a Jupyter kernel installed.

Threads: ``jobs`` kernels at a time share the cores. Locally each kernel gets
``OMP_NUM_THREADS = cores // jobs`` unless set; on Ray each task reserves one CPU and Ray
sets ``OMP_NUM_THREADS=1`` in its workers, which the kernels inherit.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from .._ray import check_address, import_ray, ray_cluster
from ..registry import Registry
from ..validation import check_options
from .execute import Prepared
from .records import RunRecord

__all__ = ["BATCH_ENGINES", "BatchEngine", "LocalBatchEngine", "RayBatchEngine", "make_batch_engine"]

#: What an engine runs: one prepared run -> its record (never raises for a failed run).
Work = Callable[[Prepared], RunRecord]


class BatchEngine(Protocol):
    """Runs ``work`` over the prepared runs of a batch."""

    #: True when ``work`` runs in other processes, whose output does not reach this
    #: terminal: the caller then reports each run's end itself.
    remote: bool

    def map_runs(self, work: Work, prepared: Sequence[Prepared], *, jobs: int
                 ) -> Iterator[tuple[int, RunRecord | Exception]]:
        """Yield ``(i, work(prepared[i]))`` for every run, at most ``jobs`` at a time (or
        ``(i, exception)`` when the run could not even report)."""
        ...


#: Engine name -> ``factory(options: Mapping[str, Any]) -> BatchEngine``.
BATCH_ENGINES: Registry[Callable[[Mapping[str, Any]], BatchEngine]] = Registry("report engine")


@contextlib.contextmanager
def _kernel_threads(parallel: int) -> Iterator[None]:
    """Kernels started meanwhile share the CPUs: ``parallel`` kernels each running torch's
    default of one thread per core would oversubscribe them, and OpenMP threads that wait
    by spinning then slow every kernel several-fold. Each gets its share of the cores
    (OMP_NUM_THREADS, which torch reads at import), unless the caller set it already."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


class LocalBatchEngine:
    """Runs in this process: one after another, or ``jobs`` worker threads (each run's
    work is in its own kernel process anyway, and threads need no ``__main__`` guard)."""

    remote = False

    def map_runs(self, work: Work, prepared: Sequence[Prepared], *, jobs: int
                 ) -> Iterator[tuple[int, RunRecord | Exception]]:
        if jobs == 1 or len(prepared) <= 1:
            for i, prep in enumerate(prepared):
                yield i, work(prep)
            return
        parallel = min(jobs, len(prepared))
        with _kernel_threads(parallel):
            pool = cf.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="mmexplain-report")
            try:
                futures = {pool.submit(work, prep): i for i, prep in enumerate(prepared)}
                for fut in cf.as_completed(futures):
                    try:
                        result: RunRecord | Exception = fut.result()
                    except Exception as err:  # e.g. a worker thread that could not start
                        result = err
                    yield futures[fut], result
            finally:
                # On Ctrl-C, runs not started yet are dropped; running kernels finish.
                pool.shutdown(wait=True, cancel_futures=True)


def _call(work: Work, prep: Prepared) -> RunRecord:
    """A Ray task's body (module level, so workers import it rather than unpickle code)."""
    return work(prep)


class RayBatchEngine:
    """One Ray task per run, ``jobs`` in flight, each reserving one CPU.

    Parameters
    ----------
    address : str, optional
        A Ray cluster to join (``ray start --head`` prints it; ``"auto"``: the one on this
        machine). None: a new local cluster of ``jobs`` CPUs, shut down at the end --
        unless Ray is already initialised in this process, whose session is then used.
    """

    remote = True

    def __init__(self, *, address: str | None = None) -> None:
        import_ray()
        self.address = check_address(address)

    def map_runs(self, work: Work, prepared: Sequence[Prepared], *, jobs: int
                 ) -> Iterator[tuple[int, RunRecord | Exception]]:
        if not prepared:
            return
        with ray_cluster(self.address, num_cpus=min(jobs, len(prepared))) as ray:
            task = ray.remote(num_cpus=1, max_retries=0)(_call)
            work_ref = ray.put(work)
            waiting = list(enumerate(prepared))[::-1]
            running: dict[Any, int] = {}
            try:
                while waiting or running:
                    while waiting and len(running) < jobs:
                        i, prep = waiting.pop()
                        running[task.remote(work_ref, prep)] = i
                    done, _ = ray.wait(list(running), num_returns=1)
                    i = running.pop(done[0])
                    try:
                        result: RunRecord | Exception = ray.get(done[0])
                    except Exception as err:  # the worker died, or the task could not run
                        result = err
                    yield i, result
            finally:
                for ref in running:  # interrupted: stop what still runs
                    ray.cancel(ref, force=True)


@BATCH_ENGINES.register("local", "threads in this process, a kernel process per run")
def _local(options: Mapping[str, Any]) -> BatchEngine:
    check_options("engine_options", options, (), owner="the local report engine")
    return LocalBatchEngine()


@BATCH_ENGINES.register("ray", "a Ray cluster: one task per run")
def _ray(options: Mapping[str, Any]) -> BatchEngine:
    return RayBatchEngine(**check_options("engine_options", options, ("address",), owner="the ray report engine"))


def make_batch_engine(name: str, options: Mapping[str, Any] | None = None) -> BatchEngine:
    """The engine registered as ``name``, built with ``options`` (a wrong name lists the known ones)."""
    return BATCH_ENGINES.get(name)(dict(options or {}))
