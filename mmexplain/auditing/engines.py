"""Engines: where an audit's chunks are computed.

An engine gets the :class:`AuditTask` (everything a chunk's rows depend on, picklable, so a
remote worker can rebuild it) and the chunks still to do, and yields each chunk with its
rows as they finish, in any order. The streaming writer (:mod:`mmexplain.auditing.stream`)
owns the files, resuming and ordering; :func:`~mmexplain.auditing.rows.decision_rows` owns
the rows. An engine only decides where and how many chunks run at once, so any engine
and any worker count give the same rows.

Engines are registered in :data:`AUDIT_ENGINES` as ``factory(options) -> engine``:

* ``local`` -- in this process, one chunk after another (no options);
* ``ray`` -- Ray Data over the chunks with an actor pool: each of ``workers`` actors loads
  the run once from ``task.run_dir`` and computes whole chunks; options ``workers`` and
  ``address`` (:class:`RayEngine`; needs ``pip install "mmexplain[ray]"``).

Threads: every Ray worker reserves one CPU and computes with one torch thread, so
``workers`` workers use ``workers`` cores. Rows do not depend on the engine; they are
bit-identical to the local engine's when it too runs with one torch thread (more threads
may round batched matrix products differently in the last bit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from .._ray import check_address, import_ray, ray_cluster
from ..exceptions import ConfigError
from ..registry import Registry
from ..training import Run, load_run
from ..validation import check_options, check_positive_int
from .rows import decision_rows

__all__ = ["AUDIT_ENGINES", "AuditEngine", "AuditTask", "Chunk", "LocalEngine", "RayEngine", "make_engine"]


@dataclass(frozen=True)
class Chunk:
    """``batch_size`` consecutive decisions of an audit: positions ``start .. stop - 1``.

    Attributes
    ----------
    number : int
        0-based; chunk ``k`` holds positions ``k * batch_size`` up to the next chunk's start.
    start, stop : int
        Sample positions in the audited split, ``stop`` excluded.
    """

    number: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class AuditTask:
    """Everything a chunk's rows depend on besides the chunk (picklable).

    Attributes
    ----------
    run_dir : str or None
        The saved run, for engines whose workers load it themselves (None: an in-memory run,
        which only the local engine can use).
    split : str
    methods : tuple of str
    agreement_threshold : float
    steps : int
        See :func:`~mmexplain.auditing.rows.decision_rows`.
    """

    run_dir: str | None
    split: str
    methods: tuple[str, ...]
    agreement_threshold: float
    steps: int

    def load(self, *, device: str = "cpu") -> Run:
        """The run, loaded from :attr:`run_dir` (a worker's copy)."""
        if self.run_dir is None:
            raise ConfigError("engine: this engine loads the run in its workers; pass a saved run folder, "
                              "not an in-memory Run.")
        return load_run(self.run_dir, device=device)

    def rows(self, run: Run, chunk: Chunk) -> pa.Table:
        """The rows of ``chunk`` (:func:`~mmexplain.auditing.rows.decision_rows`)."""
        return decision_rows(run, range(chunk.start, chunk.stop), methods=self.methods, split=self.split,
                             agreement_threshold=self.agreement_threshold, steps=self.steps)


class AuditEngine(Protocol):
    """Computes chunks; the writer stores them."""

    def map_chunks(self, task: AuditTask, chunks: Iterable[Chunk], *, run: Run | None = None
                   ) -> Iterator[tuple[Chunk, pa.Table]]:
        """Yield ``(chunk, rows)`` for every chunk, in any order, as each finishes.

        ``run`` is the caller's loaded run, which an in-process engine may use instead of
        loading ``task.run_dir`` again.
        """
        ...


#: Engine name -> ``factory(options: Mapping[str, Any]) -> AuditEngine``.
AUDIT_ENGINES: Registry[Callable[[Mapping[str, Any]], AuditEngine]] = Registry("audit engine")


class LocalEngine:
    """Every chunk in this process, one after another, in order."""

    def map_chunks(self, task: AuditTask, chunks: Iterable[Chunk], *, run: Run | None = None
                   ) -> Iterator[tuple[Chunk, pa.Table]]:
        run = run if run is not None else task.load()
        for chunk in chunks:
            yield chunk, task.rows(run, chunk)


def _to_ipc(table: pa.Table) -> bytes:
    """``table`` as Arrow IPC stream bytes: schema (with field metadata) and values exactly."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().combine_chunks()


class _ChunkWorker:
    """A Ray Data actor: loads the run once, then turns batches of chunks into their rows.

    The rows travel as Arrow IPC bytes (one value per chunk) so that Ray Data never
    re-types or re-chunks them: the driver gets back exactly the table the worker computed.
    """

    def __init__(self, task: AuditTask) -> None:
        import torch

        torch.set_num_threads(1)  # one reserved CPU, one thread: workers never oversubscribe
        self.task = task
        self.run = task.load()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = [_to_ipc(self.task.rows(self.run, Chunk(int(n), int(a), int(b))))
                for n, a, b in zip(batch["number"].to_pylist(), batch["start"].to_pylist(),
                                   batch["stop"].to_pylist())]
        return pa.table({"number": batch["number"], "rows": pa.array(rows, pa.large_binary())})


class RayEngine:
    """Chunks on a Ray cluster: Ray Data over the chunks, an actor pool of ``workers``.

    Each actor loads the run once (from :attr:`AuditTask.run_dir`, which every node must
    see) and computes one whole chunk per call; chunks stream back as they finish.

    Parameters
    ----------
    workers : int, optional
        Actors, each reserving one CPU and using one torch thread. Default: every CPU of
        the cluster (at most one per chunk).
    address : str, optional
        A Ray cluster to join (``ray start --head`` prints it; ``"auto"``: the one on this
        machine). None: a new local cluster of ``workers`` CPUs, shut down at the end --
        unless Ray is already initialised in this process, whose session is then used.

    Raises
    ------
    ConfigError
        Ray is not installed (the message names the extra), or a bad option.
    """

    def __init__(self, *, workers: int | None = None, address: str | None = None) -> None:
        import_ray()
        self.workers = None if workers is None else check_positive_int("workers", workers)
        self.address = check_address(address)

    def map_chunks(self, task: AuditTask, chunks: Iterable[Chunk], *, run: Run | None = None
                   ) -> Iterator[tuple[Chunk, pa.Table]]:
        chunks = {c.number: c for c in chunks}
        if not chunks:
            return
        if task.run_dir is None:
            raise ConfigError("run: the ray engine's workers load the run themselves; pass the folder "
                              "`mmexplain train --out` wrote (or a Run loaded from one), not an unsaved Run.")
        with ray_cluster(self.address, num_cpus=self.workers) as ray:
            workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            context = ray.data.DataContext.get_current()
            bars = context.enable_progress_bars
            context.enable_progress_bars = False  # the caller reports progress per chunk
            try:
                items = [{"number": c.number, "start": c.start, "stop": c.stop} for c in chunks.values()]
                dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                    _ChunkWorker, fn_constructor_kwargs={"task": task}, batch_size=1, batch_format="pyarrow",
                    compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))), num_cpus=1)
                for row in dataset.iter_rows():
                    yield chunks[int(row["number"])], _from_ipc(row["rows"])
            finally:
                context.enable_progress_bars = bars


@AUDIT_ENGINES.register("local", "in this process, one chunk after another")
def _local(options: Mapping[str, Any]) -> AuditEngine:
    check_options("engine_options", options, (), owner="the local engine")
    return LocalEngine()


@AUDIT_ENGINES.register("ray", "a Ray cluster: Ray Data over the chunks, one actor per worker")
def _ray(options: Mapping[str, Any]) -> AuditEngine:
    return RayEngine(**check_options("engine_options", options, ("workers", "address"), owner="the ray engine"))


def make_engine(name: str, options: Mapping[str, Any] | None = None) -> AuditEngine:
    """The engine registered as ``name``, built with ``options`` (a wrong name lists the known ones)."""
    return AUDIT_ENGINES.get(name)(dict(options or {}))
