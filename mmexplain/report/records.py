"""What a report run is and how it is named: :class:`RunSpec`, :class:`RunRecord`, run ids.

A run writes one folder, atomically::

    <out_dir>/<run_id>/<run_id>.ipynb   the executed (or partially executed) notebook
    <out_dir>/<run_id>/<run_id>.html    standalone HTML, code hidden, provenance on top
    <out_dir>/<run_id>/<run_id>.json    schema-versioned results + provenance + status

The JSON is ``{"schema_version": 1, "run_id", "notebook", "parameters", "params_hash",
"run_key", "results", "provenance", "status": "ok" | "failed", "error": {...} | null,
"files"}``. ``run_key`` holds what decides whether the report is still current: the
parameters' hash, the notebook's SHA-256 and the fingerprint of the input files.

A failed attempt never replaces an ``ok`` report: it is written beside it, to
``<out_dir>/<run_id>/failed/``, and its record's ``kept`` names the report kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .results import SCHEMA_VERSION, load_results, to_jsonable

__all__ = [
    "EXPLORER_PAGE",
    "FAILED_DIR",
    "RESULTS_PARAMETER",
    "RunRecord",
    "RunSpec",
    "check_run_id",
    "error_info",
    "make_run_id",
    "slugify",
]

#: The parameter through which the runner tells a notebook where to record its results.
RESULTS_PARAMETER = "results_path"
#: Sub-folder of a run folder holding a failed attempt that did not replace an ok report.
FAILED_DIR = "failed"
#: A notebook may write this page beside its report (into ``results_path``'s folder): the
#: static explorer (:mod:`mmexplain.explore.static`); the runner shares its plotly.js and
#: links it from the index as ``files["explorer"]``.
EXPLORER_PAGE = "explorer.html"

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")
_MAX_ID = 120
_HASH_LEN = 8


@dataclass(frozen=True)
class RunSpec:
    """One notebook run to do.

    Parameters
    ----------
    notebook : str or Path
        The input notebook.
    parameters : mapping
        Values for names in its ``parameters`` cell.
    run_id : str, optional
        Folder/file stem of the outputs; default :func:`make_run_id` of all parameters.
    kernel_name : str, optional
        Kernel to use; default the notebook's own kernelspec.
    timeout : float, optional
        Per-cell execution timeout in seconds; default none.
    shown : sequence of str, optional
        Parameters spelled out in the readable part of the default run id (a grid passes
        its varying axes); default all of them. The hash always covers every parameter.
    """

    notebook: str | os.PathLike[str]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    kernel_name: str | None = None
    timeout: float | None = None
    shown: Sequence[str] | None = None

    @property
    def planned_run_id(self) -> str:
        """``run_id`` if given, else the default id :func:`make_run_id` makes for this run."""
        if self.run_id is not None:
            return self.run_id
        params = to_jsonable(dict(self.parameters), name="parameters")
        return make_run_id(self.notebook, params, shown=self.shown)


def error_info(
    ename: str,
    evalue: str,
    *,
    cell_index: int | None = None,
    execution_count: int | None = None,
    traceback: str = "",
) -> dict[str, Any]:
    """The ``error`` block of a run record (one shape for every kind of failure).

    Parameters
    ----------
    ename, evalue : str
        Exception class name and message.
    cell_index, execution_count : int, optional
        Where a notebook cell raised; None for kernel, timeout or report-writing errors.
    traceback : str, default=""
        The cell's traceback, colours stripped.

    Returns
    -------
    dict
        ``{"cell_index", "execution_count", "ename", "evalue", "traceback"}``.
    """
    return {
        "cell_index": cell_index,
        "execution_count": execution_count,
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback,
    }


@dataclass
class RunRecord:
    """What one run produced (or, with ``skipped=True``, what an earlier run produced).

    Attributes
    ----------
    run_id : str
    notebook : str
        The input notebook path as given.
    parameters : dict
        Parameters passed (JSON-safe, without ``results_path``).
    status : {"ok", "failed"}
    run_dir : Path
        ``<out_dir>/<run_id>``.
    results : dict
        What the notebook recorded with :func:`mmexplain.report.results.record`.
    provenance : dict
    error : dict or None
        :func:`error_info` on failure.
    params_hash : str
    run_key : dict
        ``params_hash``, ``notebook_sha256`` and ``inputs_fingerprint`` of the run: the
        report is current while all three match.
    skipped : bool
        True when a complete earlier run was reused instead of running again.
    files : dict of str -> Path
        ``"ipynb"``, ``"html"``, ``"json"`` for the files that exist, and ``"explorer"``
        when the notebook wrote :data:`EXPLORER_PAGE`.
    kept : dict of str -> Path
        For a failed attempt written beside an earlier ok report: that report's files,
        which were left in place. Empty otherwise.
    """

    run_id: str
    notebook: str
    parameters: dict[str, Any]
    status: str
    run_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    params_hash: str = ""
    run_key: dict[str, str] = field(default_factory=dict)
    skipped: bool = False
    files: dict[str, Path] = field(default_factory=dict)
    kept: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def failed(
        cls,
        *,
        run_id: str,
        notebook: str,
        parameters: dict[str, Any],
        run_dir: Path,
        error: BaseException | dict[str, Any],
        params_hash: str = "",
        run_key: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """The record of a run that produced no report (or whose report was not written).

        Parameters
        ----------
        run_id, notebook, parameters, run_dir, params_hash, run_key
            As the attributes.
        error : exception or dict
            An exception (its class name and message are kept) or an :func:`error_info`.

        Returns
        -------
        RunRecord
            ``status="failed"``, no files.
        """
        if isinstance(error, BaseException):
            error = error_info(type(error).__name__, str(error))
        return cls(
            run_id=run_id,
            notebook=notebook,
            parameters=parameters,
            status="failed",
            run_dir=run_dir,
            error=error,
            params_hash=params_hash,
            run_key=dict(run_key or {}),
        )

    @property
    def ok(self) -> bool:
        """True when the notebook ran to the end."""
        return self.status == "ok"

    @property
    def ipynb_path(self) -> Path | None:
        return self.files.get("ipynb")

    @property
    def html_path(self) -> Path | None:
        return self.files.get("html")

    @property
    def json_path(self) -> Path | None:
        return self.files.get("json")

    def to_envelope(self) -> dict[str, Any]:
        """The run JSON (schema version :data:`~mmexplain.report.results.SCHEMA_VERSION`)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "notebook": self.notebook,
            "parameters": self.parameters,
            "params_hash": self.params_hash,
            "run_key": self.run_key,
            "results": self.results,
            "provenance": self.provenance,
            "status": self.status,
            "error": self.error,
            "files": {k: p.name for k, p in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], *, skipped: bool = False) -> RunRecord:
        """Load a record from a run JSON written by the runner.

        A failed attempt (``<run_id>/failed/<run_id>.json``) comes back with ``run_dir``
        the run folder and ``kept`` the ok report beside it.
        """
        p = Path(path)
        env = load_results(p)
        files = {k: p.parent / name for k, name in (env.get("files") or {}).items()}
        run_dir = p.parent.parent if p.parent.name == FAILED_DIR else p.parent
        rec = cls(
            run_id=env.get("run_id", p.stem),
            notebook=env.get("notebook", ""),
            parameters=env.get("parameters") or {},
            status=env.get("status", "failed"),
            run_dir=run_dir,
            results=env.get("results") or {},
            provenance=env.get("provenance") or {},
            error=env.get("error"),
            params_hash=env.get("params_hash", ""),
            run_key=env.get("run_key") or {},
            skipped=skipped,
            files={k: f for k, f in files.items() if f.exists()},
        )
        if run_dir != p.parent:
            rec.kept = {
                k: run_dir / f"{rec.run_id}.{k}"
                for k in ("ipynb", "html", "json")
                if (run_dir / f"{rec.run_id}.{k}").exists()
            }
        return rec


# ---------------------------------------------------------------------------------------------
# Run ids
# ---------------------------------------------------------------------------------------------


def slugify(value: Any) -> str:
    """A filename-safe, readable form of ``value`` (letters, digits, ``.``, ``_``, ``-``)."""
    if isinstance(value, (list, tuple)):
        text = "+".join(str(v) for v in value)
    elif isinstance(value, Mapping):
        text = "+".join(f"{k}-{v}" for k, v in value.items())
    else:
        text = str(value)
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    text = re.sub(r"-{2,}", "-", text)
    return text or "x"


def short_hash(obj: Any, length: int = _HASH_LEN) -> str:
    """First ``length`` hex digits of the SHA-256 of ``obj``'s canonical JSON."""
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:length]


def make_run_id(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    shown: Sequence[str] | None = None,
) -> str:
    """Run id: a readable name, then a short hash of the notebook name and *all* parameters.

    Two runs that differ in any parameter (shared grid ``parameters``, ``dataset_options``
    included) get different ids, so they never share a folder.

    Parameters
    ----------
    notebook : str or PathLike
    parameters : mapping
        Every parameter passed to the run.
    shown : sequence of str, optional
        The parameters spelled out as ``name-value`` in the readable part, in this order;
        default all of them, sorted by name (so the order they were given in is no part
        of the id).

    Returns
    -------
    str
        ``<notebook stem>__<name>-<value>__...__<8 hex>``, at most 120 characters (the
        readable part is cut, never the hash).

    Examples
    --------
    >>> make_run_id("notebooks/01_train.ipynb", {"fusion": "late", "seed": 0})
    '01_train__fusion-late__seed-0__b73ddaa2'
    """
    params = dict(parameters)
    names = sorted(params) if shown is None else [n for n in shown if n in params]
    parts = [slugify(Path(notebook).stem)] + [f"{slugify(n)}-{slugify(params[n])}" for n in names]
    digest = short_hash({"notebook": Path(notebook).name, "parameters": params})
    readable = "__".join(parts)
    room = _MAX_ID - len(digest) - 2
    if len(readable) > room:
        readable = readable[:room].rstrip("-._") or "x"
    return f"{readable}__{digest}"


def check_run_id(run_id: Any) -> str:
    """Return ``run_id`` if it is a safe file name, else raise naming it."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ConfigError(
            f"run_id={run_id!r} is not a safe file name; use letters, digits, '.', '_' and '-' "
            "(at most 150 characters, not starting with '.' or '-')."
        )
    return run_id
