"""Engines: where an audit's chunks are computed.

An engine gets the :class:`AuditTask` (everything a chunk's rows depend on, picklable, so a
remote worker can rebuild it) and the chunks still to do, and yields each chunk with its
rows as they finish, in any order. The streaming writer (:mod:`mmexplain.auditing.stream`)
owns the files, resuming and ordering; :func:`~mmexplain.auditing.rows.decision_rows` owns
the rows. An engine only decides where and how many chunks run at once, so any engine
and any worker count give the same rows.

Engines are registered in :data:`AUDIT_ENGINES` as ``factory(options) -> engine``. Only
``local`` (in this process, one chunk after another) exists so far; a Ray engine (Ray Data
batches over an actor pool that loads the run once per worker from ``task.run_dir``)
registers itself the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from ..exceptions import ConfigError
from ..registry import Registry
from ..training import Run, load_run
from .rows import decision_rows

__all__ = ["AUDIT_ENGINES", "AuditEngine", "AuditTask", "Chunk", "LocalEngine", "make_engine"]


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


@AUDIT_ENGINES.register("local", "in this process, one chunk after another")
def _local(options: Mapping[str, Any]) -> AuditEngine:
    if options:
        raise ConfigError(f"engine_options {sorted(options)}: the local engine takes no options.")
    return LocalEngine()


def make_engine(name: str, options: Mapping[str, Any] | None = None) -> AuditEngine:
    """The engine registered as ``name``, built with ``options`` (a wrong name lists the known ones)."""
    return AUDIT_ENGINES.get(name)(dict(options or {}))
