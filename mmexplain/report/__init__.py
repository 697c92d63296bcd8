"""Reports: run parameterised notebooks with papermill into auditable HTML/ipynb/JSON.

Public API (imported lazily, so that notebooks can ``from mmexplain.report.results import
record`` without loading papermill/nbconvert into the kernel):

* :func:`inspect_parameters`, :func:`validate_parameters` (:mod:`mmexplain.report.inspection`);
* :class:`RunSpec`, :class:`RunRecord`, :func:`make_run_id` (:mod:`mmexplain.report.records`);
* :func:`run_notebook` (:mod:`mmexplain.report.execute`), :func:`run_batch`
  (:mod:`mmexplain.report.batch`);
* :func:`load_grid`, :func:`expand_grid`, :class:`GridConfig` (:mod:`mmexplain.report.grid`);
* :func:`record`, :func:`load_results` (:mod:`mmexplain.report.results`);
* :func:`write_index` (:mod:`mmexplain.report.index`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_notebook": "execute",
    "run_batch": "batch",
    "RunSpec": "records",
    "RunRecord": "records",
    "NotebookParameter": "inspection",
    "inspect_parameters": "inspection",
    "validate_parameters": "inspection",
    "make_run_id": "records",
    "load_grid": "grid",
    "expand_grid": "grid",
    "GridConfig": "grid",
    "record": "results",
    "load_results": "results",
    "SCHEMA_VERSION": "results",
    "write_index": "index",
    "notebook_to_html": "html",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mmexplain.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
