"""Streaming decision audits: one Parquet row per decision, written in resumable chunks.

* :mod:`~mmexplain.auditing.schema` -- the row schema (columns, dtypes, units);
* :mod:`~mmexplain.auditing.rows` -- :func:`decision_rows`, the one owner of a decision's row;
* :mod:`~mmexplain.auditing.engines` -- where chunks are computed (``local``, ``ray``; a registry);
* :mod:`~mmexplain.auditing.stream` -- :func:`audit_run`: chunks, resume, provenance, the file;
* :mod:`~mmexplain.auditing.summary` -- reading an audit: reliance per class, one-sided
  errors, the decisions to look at first (``notebooks/06_audit_summary.ipynb``).

``mmexplain audit`` is the command line over :func:`audit_run`.
"""

from .engines import (
    AUDIT_ENGINES,
    AuditEngine,
    AuditTask,
    Chunk,
    LocalEngine,
    RayEngine,
    make_engine,
)
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
from .summary import (
    Audit,
    audit_cards,
    card_anchor,
    card_html,
    decisions_html,
    flagged_decisions,
    interaction_decisions,
    one_sided_errors,
    read_audit,
    reliance_by_class,
)

__all__ = [
    "AUDIT_ENGINES",
    "DECISION_COLUMNS",
    "METADATA_KEY",
    "METHOD_COLUMNS",
    "METHOD_MODALITY_COLUMNS",
    "MODALITY_COLUMNS",
    "SCHEMA_VERSION",
    "Audit",
    "AuditEngine",
    "AuditResult",
    "AuditTask",
    "Chunk",
    "LocalEngine",
    "RayEngine",
    "audit_run",
    "audit_cards",
    "audit_schema",
    "card_anchor",
    "card_html",
    "column",
    "decision_rows",
    "decisions_html",
    "flagged_decisions",
    "interaction_decisions",
    "make_engine",
    "one_sided_errors",
    "read_audit",
    "read_audit_metadata",
    "reliance_by_class",
]
