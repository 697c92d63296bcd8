"""Streaming audits: chunks of decisions written as they finish, resumed after interruption.

Layout while an audit runs, for ``out = audit.parquet``::

    audit.parquet.parts/manifest.json      the audit's identity (arguments, checkpoint,
                                           data, package versions) and the file metadata
    audit.parquet.parts/part-000000.parquet  chunk 0's rows, written to a temporary name
    audit.parquet.parts/part-000001.parquet  and renamed, so a part that exists is complete
    ...

When every chunk is done the parts are copied, one at a time and in order, into one Parquet
file (one row group per chunk) that is renamed onto ``out``; then the parts go. Memory
holds one chunk at a time however many decisions are audited. Rerunning the same audit
skips the chunks whose part exists; other arguments are refused, naming the first that
differs; a finished ``out`` is replaced only with ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..analysis import DEFAULT_AGREEMENT_THRESHOLD
from ..attribution import METHODS
from ..audit import AUDIT_METHODS
from ..exceptions import ConfigError
from ..locks import make_temp_dir, run_lock
from ..models.checkpoint import write_json_atomic
from ..report.provenance import DEFAULT_PACKAGES, package_versions
from ..training import Run, load_run
from ..validation import check_choice, check_fraction, check_positive_int
from .engines import AuditTask, Chunk, make_engine
from .schema import SCHEMA_VERSION, audit_schema

__all__ = ["METADATA_KEY", "AuditResult", "audit_run", "checkpoint_hash", "read_audit_metadata"]

#: Key of the audit's JSON metadata in the Parquet file's schema metadata.
METADATA_KEY = b"mmexplain.audit"
_MANIFEST = "manifest.json"


@dataclass
class AuditResult:
    """What :func:`audit_run` did.

    Attributes
    ----------
    path : Path
        The finished Parquet file.
    n_rows : int
        Decisions audited.
    chunks_computed, chunks_reused : int
        Chunks computed now, and finished chunks of an interrupted run that were kept.
    metadata : dict
        The file's audit metadata (:func:`read_audit_metadata`).
    """

    path: Path
    n_rows: int
    chunks_computed: int
    chunks_reused: int
    metadata: dict[str, Any]


def read_audit_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The audit metadata of a finished audit file: ``schema_version``, ``arguments``, ``provenance``."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ConfigError(f"{path} is not an mmexplain audit (no {METADATA_KEY.decode()} metadata).")
    return json.loads(meta[METADATA_KEY])


def checkpoint_hash(run: Run) -> str:
    """The run's checkpoint SHA-256, or for an unsaved run a SHA-256 over its state dict."""
    if run.checkpoint_sha256:
        return run.checkpoint_sha256
    h = hashlib.sha256()
    for k, v in sorted(run.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return "state_dict:" + h.hexdigest()


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = [m for m in methods.split(",") if m]
    methods = tuple(methods)
    if not methods:
        raise ConfigError("methods is empty; name at least one of " + ", ".join(METHODS.names()) + ".")
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"methods: unknown method {m!r}; known: {', '.join(sorted(METHODS.names()))}.")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"methods {list(methods)} name a method twice.")
    return methods


def _chunks(n: int, batch_size: int) -> list[Chunk]:
    return [Chunk(k, start, min(start + batch_size, n)) for k, start in enumerate(range(0, n, batch_size))]


def _part(parts: Path, chunk: Chunk) -> Path:
    return parts / f"part-{chunk.number:06d}.parquet"


def _part_done(path: Path, chunk: Chunk, schema: pa.Schema) -> bool:
    """A part exists, is readable, and holds this chunk's rows in this schema."""
    if not path.is_file():
        return False
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return meta.num_rows == len(chunk) and meta.schema.to_arrow_schema().equals(schema)


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for key in new:
        if old.get(key) != new[key]:
            if isinstance(old.get(key), dict) and isinstance(new[key], dict):
                inner = _first_difference(old[key], new[key])
                return f"{key} ({inner})" if inner else key
            return f"{key}: {old.get(key)!r} -> {new[key]!r}"
    extra = sorted(set(old) - set(new))
    return f"{extra[0]}: {old[extra[0]]!r} -> absent" if extra else None


def _open_parts(parts: Path, identity: dict[str, Any], metadata: dict[str, Any], out: Path) -> None:
    """Create the parts folder with its manifest, or check that the one there is this audit's."""
    manifest = parts / _MANIFEST
    if parts.is_dir() and manifest.is_file():
        try:
            stored = json.loads(manifest.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            stored = None
        old = stored.get("identity") if isinstance(stored, dict) else None
        if not isinstance(old, dict):
            raise ConfigError(f"out={out}: {manifest} is unreadable; pass force=True (--force) to start over.")
        diff = _first_difference(old, identity)
        if diff:
            raise ConfigError(
                f"out={out} holds a partial audit with other arguments ({diff}); rerun with the same "
                "arguments to resume it, or pass force=True (--force) to start over.")
        return
    if parts.exists():
        shutil.rmtree(parts)  # a folder without a manifest: nothing in it can be trusted
    parts.mkdir(parents=True)
    write_json_atomic(manifest, {"identity": identity, "metadata": metadata})


def _write_part(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _combine(parts: Path, chunks: Sequence[Chunk], schema: pa.Schema, out: Path) -> None:
    """Copy the parts, in order and one at a time, into ``out`` (one rename at the end)."""
    tmp_dir = make_temp_dir(out.parent, out.name)
    try:
        tmp = tmp_dir / out.name
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in chunks:
                writer.write_table(pq.read_table(_part(parts, chunk)).replace_schema_metadata(schema.metadata))
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def audit_run(
    run: Run | str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "test",
    limit: int | None = None,
    methods: Sequence[str] | str = AUDIT_METHODS,
    batch_size: int = 64,
    engine: str = "local",
    engine_options: Mapping[str, Any] | None = None,
    agreement_threshold: float = DEFAULT_AGREEMENT_THRESHOLD,
    steps: int = 10,
    force: bool = False,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> AuditResult:
    """Audit every decision of a split into one Parquet file, chunk by chunk, resumably.

    Rows are :func:`~mmexplain.auditing.rows.decision_rows` of the positions
    ``0 .. limit - 1`` of ``split``, in order, in chunks of ``batch_size`` decisions;
    columns as :func:`~mmexplain.auditing.schema.audit_schema` documents.

    Parameters
    ----------
    run : Run, or path-like
        A trained classifier, or the folder ``mmexplain train --out`` wrote.
    out : path-like
        The Parquet file to write. While the audit runs, ``<out>.parts/`` holds the finished
        chunks; rerunning with the same arguments resumes from them.
    split : {"train", "val", "test"}, default="test"
    limit : int, optional
        Audit the first ``limit`` decisions of ``split`` (default: all).
    methods : sequence of str, or a comma-separated str, default=("ig", "saliency", "deeplift", "occlusion")
        Attribution methods, each with its columns (see :mod:`mmexplain.auditing.schema`).
    batch_size : int, default=64
        Decisions per chunk: the unit of memory, of writing and of resuming. Part of the
        audit's identity (a chunk's rows are computed as one batch).
    engine : str, default="local"
        Where chunks are computed (:data:`~mmexplain.auditing.engines.AUDIT_ENGINES`):
        ``local`` or ``ray``. Engines do not change the rows, so an audit started on one
        resumes on another.
    engine_options : dict, optional
        Passed to the engine's factory: the local engine takes none; ``ray`` takes
        ``workers`` and ``address`` (:class:`~mmexplain.auditing.engines.RayEngine`).
    agreement_threshold, steps
        See :func:`~mmexplain.auditing.rows.decision_rows`.
    force : bool, default=False
        Replace a finished ``out``, or a partial audit with other arguments, starting over.
    on_chunk : callable, optional
        ``on_chunk(chunk)`` after each computed chunk is stored (progress; tests interrupt here).

    Returns
    -------
    AuditResult

    Raises
    ------
    ConfigError
        A bad argument, ``out`` already finished (without ``force``), or a partial audit in
        ``out`` with other arguments; the message names the argument.
    RunLockedError
        Another process is writing this audit.

    Notes
    -----
    The file's schema metadata (``read_audit_metadata``) records the arguments and the
    provenance: checkpoint SHA-256, data fingerprint, the model's reference, label names and
    package versions. Nothing time- or host-dependent is recorded, so the same audit always
    gives the same bytes, whether it ran in one go or was interrupted and resumed.
    """
    split = check_choice("split", split, ("train", "val", "test"))
    methods = _check_methods(methods)
    batch_size = check_positive_int("batch_size", batch_size)
    if limit is not None:
        limit = check_positive_int("limit", limit)
    agreement_threshold = check_fraction("agreement_threshold", agreement_threshold, low=-1.0, high=1.0)
    steps = check_positive_int("steps", steps)
    worker = make_engine(engine, engine_options)

    run_dir: str | None = None
    if not isinstance(run, Run):
        if not Path(run).is_dir():
            raise ConfigError(f"run={run}: no such folder; give a folder written by `mmexplain train`.")
        run = load_run(run)
    if run.directory is not None:
        run_dir = str(Path(run.directory).absolute())
    n = len(run.splits[split]) if limit is None else min(limit, len(run.splits[split]))
    chunks = _chunks(n, batch_size)
    modalities = list(run.model.modalities)
    arguments = {"split": split, "limit": limit, "n_decisions": n, "methods": list(methods),
                 "batch_size": batch_size, "agreement_threshold": agreement_threshold, "steps": steps}
    versions = package_versions((*DEFAULT_PACKAGES, "pyarrow"))
    provenance = {
        "checkpoint_sha256": checkpoint_hash(run),
        "data_fingerprint": run.data_fingerprint,
        "reference": {"absent": run.model.reference.describe(), **run.model.reference.to_dict()},
        "modalities": modalities,
        "label_names": list(run.splits[split].label_names or []),
        "run_params": run.params,
        "package_versions": versions,
    }
    metadata = {"schema_version": SCHEMA_VERSION, "arguments": arguments, "provenance": provenance}
    identity = {"schema_version": SCHEMA_VERSION, **arguments,
                "checkpoint_sha256": provenance["checkpoint_sha256"],
                "data_fingerprint": provenance["data_fingerprint"], "package_versions": versions}
    schema = audit_schema(methods, modalities).with_metadata(
        {METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str).encode()})
    part_schema = schema.remove_metadata()

    out = Path(out).absolute()
    parts = out.with_name(out.name + ".parts")
    if out.is_dir():
        raise ConfigError(f"out={out} is a folder; give a .parquet file path.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(out.parent, out.name):
        if force:
            shutil.rmtree(parts, ignore_errors=True)
        elif out.exists():
            raise ConfigError(f"out={out} already holds a finished audit; choose another file, "
                              "or pass force=True (--force) to replace it.")
        _open_parts(parts, identity, metadata, out)
        todo = [c for c in chunks if not _part_done(_part(parts, c), c, part_schema)]
        task = AuditTask(run_dir=run_dir, split=split, methods=methods,
                         agreement_threshold=agreement_threshold, steps=steps)
        for chunk, table in worker.map_chunks(task, todo, run=run):
            if not table.schema.equals(part_schema):
                raise ConfigError(f"engine={engine!r} returned rows of another schema for chunk {chunk.number}.")
            _write_part(_part(parts, chunk), table)
            if on_chunk is not None:
                on_chunk(chunk)
        missing = [c.number for c in chunks if not _part_done(_part(parts, c), c, part_schema)]
        if missing:
            raise ConfigError(f"engine={engine!r} did not return chunks {missing[:10]}; rerun to resume.")
        _combine(parts, chunks, schema, out)
        shutil.rmtree(parts, ignore_errors=True)
    return AuditResult(path=out, n_rows=n, chunks_computed=len(todo), chunks_reused=len(chunks) - len(todo),
                       metadata=metadata)
