"""Streaming decision audits: one Parquet row per decision, written in resumable chunks.

* :mod:`~mmexplain.auditing.schema` -- the row schema (columns, dtypes, units);
* :mod:`~mmexplain.auditing.rows` -- :func:`decision_rows`, the one owner of a decision's row;
* :mod:`~mmexplain.auditing.engines` -- where chunks are computed (``local``; registry for more);
* :mod:`~mmexplain.auditing.stream` -- :func:`audit_run`: chunks, resume, provenance, the file.

``mmexplain audit`` is the command line over :func:`audit_run`.
"""

from .engines import AUDIT_ENGINES, AuditEngine, AuditTask, Chunk, LocalEngine, make_engine
from .rows import decision_rows
from .schema import (
    DECISION_COLUMNS,
    METHOD_COLUMNS,
    METHOD_MODALITY_COLUMNS,
    MODALITY_COLUMNS,
    SCHEMA_VERSION,
    audit_schema,
    column,
)
from .stream import METADATA_KEY, AuditResult, audit_run, read_audit_metadata

__all__ = [
    "AUDIT_ENGINES",
    "DECISION_COLUMNS",
    "METADATA_KEY",
    "METHOD_COLUMNS",
    "METHOD_MODALITY_COLUMNS",
    "MODALITY_COLUMNS",
    "SCHEMA_VERSION",
    "AuditEngine",
    "AuditResult",
    "AuditTask",
    "Chunk",
    "LocalEngine",
    "audit_run",
    "audit_schema",
    "column",
    "decision_rows",
    "make_engine",
    "read_audit_metadata",
]
