"""Run parameterised notebooks with papermill and turn each run into an auditable report.

A run writes one folder, atomically::

    <out_dir>/<run_id>/<run_id>.ipynb   the executed (or partially executed) notebook
    <out_dir>/<run_id>/<run_id>.html    standalone HTML, code hidden, provenance on top
    <out_dir>/<run_id>/<run_id>.json    schema-versioned results + provenance + status

The JSON is ``{"schema_version": 1, "run_id", "notebook", "parameters", "params_hash",
"results", "provenance", "status": "ok" | "failed", "error": {...} | null, "files"}``.
A run is *complete* when that JSON says ``ok`` and its ``params_hash`` matches; complete
runs are skipped unless ``force=True``.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import functools
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, NotebookExecutionError, ReportError
from .provenance import collect_provenance, params_hash, utc_now
from .results import DIR_MODE, SCHEMA_VERSION, atomic_write_text, load_results, to_jsonable

__all__ = [
    "NotebookParameter",
    "RunRecord",
    "RunSpec",
    "inspect_parameters",
    "make_run_id",
    "run_batch",
    "run_notebook",
    "slugify",
    "validate_parameters",
]

RESULTS_PARAMETER = "results_path"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")
_MAX_ID = 120


# ---------------------------------------------------------------------------------------------
# Specs and records
# ---------------------------------------------------------------------------------------------


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
        Folder/file stem of the outputs; default :func:`make_run_id`.
    kernel_name : str, optional
        Kernel to use; default the notebook's own kernelspec.
    timeout : float, optional
        Per-cell execution timeout in seconds; default none.
    """

    notebook: str | os.PathLike[str]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    kernel_name: str | None = None
    timeout: float | None = None


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
        ``{"cell_index", "execution_count", "ename", "evalue", "traceback"}`` on failure.
    params_hash : str
    skipped : bool
        True when a complete earlier run was reused instead of running again.
    files : dict of str -> Path
        ``"ipynb"``, ``"html"``, ``"json"`` for the files that exist.
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
    skipped: bool = False
    files: dict[str, Path] = field(default_factory=dict)

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
            "results": self.results,
            "provenance": self.provenance,
            "status": self.status,
            "error": self.error,
            "files": {k: p.name for k, p in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], *, skipped: bool = False) -> RunRecord:
        """Load a record from a run JSON written by :func:`run_notebook`."""
        p = Path(path)
        env = load_results(p)
        files = {k: p.parent / name for k, name in (env.get("files") or {}).items()}
        return cls(
            run_id=env.get("run_id", p.stem),
            notebook=env.get("notebook", ""),
            parameters=env.get("parameters") or {},
            status=env.get("status", "failed"),
            run_dir=p.parent,
            results=env.get("results") or {},
            provenance=env.get("provenance") or {},
            error=env.get("error"),
            params_hash=env.get("params_hash", ""),
            skipped=skipped,
            files={k: f for k, f in files.items() if f.exists()},
        )


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------

_MISSING = object()
_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "tuple": list,
    "dict": dict,
}


@dataclass(frozen=True)
class NotebookParameter:
    """One name of a notebook's ``parameters`` cell, as papermill inspects it.

    Attributes
    ----------
    name : str
    type : type or None
        int, float, str, bool, list or dict, inferred from the annotation or the literal
        default; None when unknown (e.g. a default of ``None`` or an expression).
    default_source : str
        The default as written in the cell.
    default : Any
        The literal default, or None when it is not a literal.
    help : str
    literal : bool
        Whether the default is a Python literal (``default`` holds its value).
    """

    name: str
    type: type | None
    default_source: str
    default: Any
    help: str = ""
    literal: bool = True

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` can stand for this parameter's default."""
        t = self.type
        if t is None:
            return True
        if t is bool:
            return isinstance(value, bool)
        if t is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if t is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if t is list:
            return isinstance(value, (list, tuple))
        if t is dict:
            return isinstance(value, Mapping)
        return isinstance(value, t)


def _infer_type(annotation: str, default: Any) -> type | None:
    if annotation and annotation != "None":
        base = annotation.split("[", 1)[0].strip().lower()
        if base in _TYPES:
            return _TYPES[base]
        return None
    if default is _MISSING or default is None:
        return None
    return _TYPES.get(type(default).__name__)


@functools.lru_cache(maxsize=64)
def _inspect_cached(
    path: str, mtime_ns: int, size: int
) -> tuple[bool, tuple[NotebookParameter, ...]]:
    import nbformat
    import papermill

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several types for unreadable files
        raise ConfigError(f"notebook {path} is not a readable .ipynb file: {err}") from None
    has_cell = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    raw = papermill.inspect_notebook(_escape_format(Path(path))) if has_cell else {}
    params = []
    for name, info in raw.items():
        source = info.get("default") or ""
        try:
            default = ast.literal_eval(source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = _MISSING
        params.append(
            NotebookParameter(
                name=name,
                type=_infer_type(info.get("inferred_type_name") or "", default),
                default_source=source,
                default=None if default is _MISSING else default,
                help=info.get("help") or "",
                literal=default is not _MISSING,
            )
        )
    return has_cell, tuple(params)


def inspect_parameters(notebook: str | os.PathLike[str]) -> dict[str, NotebookParameter]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    Parameters
    ----------
    notebook : str or PathLike

    Returns
    -------
    dict of str -> NotebookParameter
        Empty when the notebook has no parameters cell.

    Raises
    ------
    ConfigError
        If the file does not exist or is not a notebook.
    """
    path = Path(notebook)
    try:
        st = path.stat()
    except OSError:
        raise ConfigError(f"notebook {path} does not exist.") from None
    if not path.is_file():
        raise ConfigError(f"notebook {path} is not a file.")
    _, params = _inspect_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
    return {p.name: p for p in params}


def validate_parameters(
    notebook: str | os.PathLike[str], parameters: Mapping[str, Any]
) -> dict[str, NotebookParameter]:
    """Check ``parameters`` against the notebook's parameters cell, before running anything.

    Parameters
    ----------
    notebook : str or PathLike
    parameters : mapping
        Name -> value to inject.

    Returns
    -------
    dict of str -> NotebookParameter
        The notebook's declared parameters.

    Raises
    ------
    ConfigError
        For an unknown name (listing the known ones), ``results_path`` (set by the runner),
        or a value whose type cannot stand for the default's (naming parameter, value and
        expected type).
    """
    declared = inspect_parameters(notebook)
    problems = []
    for name, value in parameters.items():
        if name == RESULTS_PARAMETER:
            problems.append(f"parameter {name!r} is set by the report runner; do not pass it.")
            continue
        param = declared.get(name)
        if param is None:
            known = ", ".join(n for n in declared if n != RESULTS_PARAMETER) or "none"
            if not declared:
                problems.append(
                    f"unknown parameter {name!r}: the notebook has no cell tagged 'parameters'."
                )
            else:
                problems.append(f"unknown parameter {name!r}; known parameters: {known}.")
            continue
        if not param.accepts(value):
            problems.append(
                f"parameter {name!r}={value!r} is a {type(value).__name__}, but the notebook "
                f"expects {param.type.__name__ if param.type else 'any'} "
                f"(default {param.default_source})."
            )
    if problems:
        raise ConfigError(f"{notebook}: " + " ".join(problems))
    return declared


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


def _short_hash(obj: Any) -> str:
    import hashlib

    payload = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:8]


def make_run_id(notebook: str | os.PathLike[str], parameters: Mapping[str, Any]) -> str:
    """Readable run id: notebook stem, then ``name-value`` for each parameter, ``__``-joined.

    Ids longer than 120 characters are cut and suffixed with a hash of the parameters.

    Examples
    --------
    >>> make_run_id("notebooks/01_train.ipynb", {"fusion": "late", "seed": 0})
    '01_train__fusion-late__seed-0'
    """
    stem = slugify(Path(notebook).stem)
    parts = [stem] + [f"{slugify(k)}-{slugify(v)}" for k, v in parameters.items()]
    run_id = "__".join(parts)
    if len(run_id) > _MAX_ID:
        run_id = run_id[: _MAX_ID - 10].rstrip("-._") + "__" + _short_hash(dict(parameters))
    return run_id


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ConfigError(
            f"run_id={run_id!r} is not a safe file name; use letters, digits, '.', '_' and '-' "
            "(at most 150 characters, not starting with '.' or '-')."
        )
    return run_id


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    notebook: Path
    notebook_label: str
    parameters: dict[str, Any]
    declared: dict[str, NotebookParameter]
    run_id: str
    params_hash: str


def _prepare(spec: RunSpec) -> _Prepared:
    notebook = Path(spec.notebook)
    try:
        params = to_jsonable(dict(spec.parameters), name="parameters")
    except ReportError as err:
        raise ConfigError(f"{notebook}: {err}") from None
    declared = validate_parameters(notebook, params)
    run_id = (
        _check_run_id(spec.run_id) if spec.run_id is not None else make_run_id(notebook, params)
    )
    return _Prepared(
        notebook=notebook,
        notebook_label=str(spec.notebook),
        parameters=params,
        declared=declared,
        run_id=run_id,
        params_hash=params_hash(notebook.name, params),
    )


def _complete_record(run_dir: Path, run_id: str, phash: str) -> RunRecord | None:
    path = run_dir / f"{run_id}.json"
    if not path.is_file():
        return None
    try:
        rec = RunRecord.from_json(path, skipped=True)
    except ReportError:
        return None
    if rec.status != "ok" or rec.params_hash != phash:
        return None
    if not all(k in rec.files for k in ("ipynb", "html", "json")):
        return None
    return rec


def _escape_format(path: Path) -> str:
    # papermill str.format()s input and output paths with the parameters.
    return str(path).replace("{", "{{").replace("}", "}}")


def _error_from_exception(err: BaseException) -> dict[str, Any]:
    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(err, PapermillExecutionError):
        return {
            "cell_index": err.cell_index,
            "execution_count": err.exec_count,
            "ename": err.ename,
            "evalue": err.evalue,
            "traceback": strip_color("\n".join(err.traceback or [])),
        }
    return {
        "cell_index": None,
        "execution_count": None,
        "ename": type(err).__name__,
        "evalue": str(err),
        "traceback": "",
    }


def _swap_into_place(tmp_dir: Path, run_dir: Path) -> None:
    """Replace ``run_dir`` by ``tmp_dir`` with renames only (never a half-written folder)."""
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".{run_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(run_dir, old)
    try:
        os.replace(tmp_dir, run_dir)
    except BaseException:
        if old is not None:
            os.replace(old, run_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _execute(
    prep: _Prepared,
    out_dir: Path,
    *,
    kernel_name: str | None,
    timeout: float | None,
    cwd: str | None,
    raise_on_error: bool,
) -> RunRecord:
    import nbformat
    import papermill

    from .html import notebook_to_html, provenance_table_html

    run_dir = out_dir / prep.run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{prep.run_id}.", suffix=".tmp", dir=out_dir))
    os.chmod(tmp_dir, DIR_MODE)  # mkdtemp makes 0700
    try:
        ipynb = tmp_dir / f"{prep.run_id}.ipynb"
        results_file = tmp_dir / "_results.json"
        injected = dict(prep.parameters)
        if RESULTS_PARAMETER in prep.declared:
            injected[RESULTS_PARAMETER] = str(results_file)

        started, t0 = utc_now(), time.perf_counter()
        error = None
        try:
            papermill.execute_notebook(
                _escape_format(prep.notebook.resolve()),
                _escape_format(ipynb),
                parameters=injected,
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=True,
                execution_timeout=timeout,
                # nbclient starts the kernel in resources.metadata.path; papermill's own
                # ``cwd`` would chdir the whole process, which races between batch threads.
                resources={"metadata": {"path": cwd}} if cwd else {},
            )
        except Exception as err:  # a cell error, a dead kernel, a timeout...
            error = _error_from_exception(err)
        seconds = time.perf_counter() - t0
        finished = utc_now()

        results: dict[str, Any] = {}
        if results_file.exists():
            try:
                results = to_jsonable(load_results(results_file), name="results")  # nan -> None
            except ReportError as err:
                error = error or {
                    "cell_index": None,
                    "execution_count": None,
                    "ename": "ReportError",
                    "evalue": str(err),
                    "traceback": "",
                }
            results_file.unlink()
        if ipynb.exists():
            nb = nbformat.read(ipynb, as_version=4)
        else:  # the kernel never started: report on the input notebook
            nb = nbformat.read(prep.notebook, as_version=4)

        defaults = {
            n: (p.default if p.literal else p.default_source)
            for n, p in prep.declared.items()
            if n != RESULTS_PARAMETER
        }
        record = RunRecord(
            run_id=prep.run_id,
            notebook=prep.notebook_label,
            parameters=prep.parameters,
            status="failed" if error else "ok",
            run_dir=run_dir,
            results=results,
            provenance=collect_provenance(
                notebook=prep.notebook,
                parameters=prep.parameters,
                defaults=defaults,
                results=results,
                started=started,
                finished=finished,
                seconds=seconds,
                kernel_name=kernel_name or nb.metadata.get("kernelspec", {}).get("name"),
                cwd=cwd,
            ),
            error=error,
            params_hash=prep.params_hash,
        )
        record.files = {k: run_dir / f"{prep.run_id}.{k}" for k in ("ipynb", "html", "json")}
        envelope = record.to_envelope()

        nb.metadata["mmexplain"] = {k: v for k, v in envelope.items() if k != "files"}
        nbformat.write(nb, ipynb)
        document = notebook_to_html(
            nb, title=prep.run_id, header_html=provenance_table_html(envelope)
        )
        (tmp_dir / f"{prep.run_id}.html").write_text(document, encoding="utf-8")
        atomic_write_text(
            tmp_dir / f"{prep.run_id}.json",
            json.dumps(envelope, indent=2, sort_keys=True, allow_nan=False) + "\n",
        )
        _swap_into_place(tmp_dir, run_dir)
    except ReportError:
        raise
    except Exception as err:
        raise ReportError(
            f"report for run {prep.run_id!r} ({prep.notebook}) could not be written: "
            f"{type(err).__name__}: {err}; any earlier report in {run_dir} is unchanged."
        ) from err
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)

    if error and raise_on_error:
        idx = error["cell_index"]
        where = f"cell {idx}" if idx is not None else "an unknown cell (kernel or timeout error)"
        raise NotebookExecutionError(
            f"{prep.notebook} (run {prep.run_id!r}) failed at {where}: "
            f"{error['ename']}: {error['evalue']}. Partial notebook: {record.files['ipynb']}",
            output_path=str(record.files["ipynb"]),
            cell_index=error["cell_index"],
            ename=error["ename"],
            evalue=error["evalue"],
        )
    return record


def run_notebook(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str] = "reports",
    *,
    run_id: str | None = None,
    kernel_name: str | None = None,
    force: bool = False,
    timeout: float | None = None,
    raise_on_error: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> RunRecord:
    """Run one notebook with papermill and write its ipynb, HTML and JSON report.

    Parameters
    ----------
    notebook : str or PathLike
        Input notebook; its cell tagged ``parameters`` defines what may be passed.
    parameters : mapping, optional
        Values to inject. Checked before anything runs.
    out_dir : str or PathLike, default "reports"
        Reports go to ``out_dir/<run_id>/``.
    run_id : str, optional
        Default :func:`make_run_id` of the notebook and ``parameters``.
    kernel_name : str, optional
        Default: the notebook's kernelspec (``python3`` is the running interpreter).
    force : bool, default False
        Run even when a complete report with the same parameters exists.
    timeout : float, optional
        Per-cell timeout in seconds.
    raise_on_error : bool, default True
        On a notebook error, raise :class:`NotebookExecutionError` after writing the
        failed report; with False, return the record with ``status="failed"``.
    cwd : str or PathLike, optional
        Working directory of the kernel; default the current directory.

    Returns
    -------
    RunRecord
        ``skipped=True`` when an earlier complete run was reused.

    Raises
    ------
    ConfigError
        Bad notebook path, unknown parameter or wrong type, unsafe ``run_id``: nothing ran
        and nothing was written.
    NotebookExecutionError
        A cell raised (only with ``raise_on_error=True``); the failed report is written.
    ReportError
        The report could not be written; an earlier report of the same run is untouched.
    """
    prep = _prepare(RunSpec(notebook, parameters or {}, run_id, kernel_name, timeout))
    out = Path(out_dir).absolute()
    if not force:
        done = _complete_record(out / prep.run_id, prep.run_id, prep.params_hash)
        if done is not None:
            return done
    return _execute(
        prep,
        out,
        kernel_name=kernel_name,
        timeout=timeout,
        cwd=None if cwd is None else str(Path(cwd).absolute()),
        raise_on_error=raise_on_error,
    )


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


def _run_prepared(
    prep: _Prepared, out_dir: Path, spec: RunSpec, force: bool, cwd: str | None
) -> RunRecord:
    """Worker: never raises for a failed run; a report-writing failure becomes a record."""
    if not force:
        done = _complete_record(out_dir / prep.run_id, prep.run_id, prep.params_hash)
        if done is not None:
            return done
    try:
        return _execute(
            prep,
            out_dir,
            kernel_name=spec.kernel_name,
            timeout=spec.timeout,
            cwd=cwd,
            raise_on_error=False,
        )
    except Exception as err:
        return RunRecord(
            run_id=prep.run_id,
            notebook=prep.notebook_label,
            parameters=prep.parameters,
            status="failed",
            run_dir=out_dir / prep.run_id,
            error={
                "cell_index": None,
                "execution_count": None,
                "ename": type(err).__name__,
                "evalue": str(err),
                "traceback": "",
            },
            params_hash=prep.params_hash,
        )


def _prepare_batch(runs: Sequence[RunSpec]) -> list[_Prepared]:
    """Validate every run (parameters, run ids, duplicates); raise one ConfigError for all."""
    prepared: list[_Prepared] = []
    problems: list[str] = []
    for spec in runs:
        try:
            prepared.append(_prepare(spec))
        except ConfigError as err:
            problems.append(str(err))
    seen: dict[str, str] = {}
    for prep in prepared:
        if prep.run_id in seen:
            problems.append(
                f"run id {prep.run_id!r} is used twice ({seen[prep.run_id]} and "
                f"{prep.notebook_label} with {prep.parameters}); give distinct run_id values."
            )
        seen[prep.run_id] = prep.notebook_label
    if problems:
        raise ConfigError("invalid runs, nothing was run:\n  " + "\n  ".join(problems))
    return prepared


def run_batch(
    runs: Sequence[RunSpec],
    out_dir: str | os.PathLike[str] = "reports",
    *,
    jobs: int = 1,
    force: bool = False,
    progress: bool | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> list[RunRecord]:
    """Run many notebooks (``jobs`` at a time), then write ``index.html`` / ``index.json``.

    Every run is validated first; one invalid run stops the batch before anything runs.
    A failing notebook does not stop the others.

    Parameters
    ----------
    runs : sequence of RunSpec
    out_dir : str or PathLike, default "reports"
    jobs : int, default 1
        Runs at a time (worker threads; each run starts its own kernel process).
    force : bool, default False
        Re-run complete runs too.
    progress : bool, optional
        Show a tqdm bar; default only on a terminal.
    cwd : str or PathLike, optional
        Working directory of the kernels.

    Returns
    -------
    list of RunRecord
        In the order of ``runs``.

    Raises
    ------
    ConfigError
        Invalid parameters, run ids or ``jobs``; nothing ran and nothing was written.
    """
    from tqdm.auto import tqdm

    from .index import write_index

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1; got {jobs!r}.")
    prepared = _prepare_batch(runs)
    out = Path(out_dir).absolute()  # papermill resolves relative paths via shared state
    out.mkdir(parents=True, exist_ok=True)
    cwd_s = None if cwd is None else str(Path(cwd).absolute())
    records: list[RunRecord | None] = [None] * len(prepared)
    bar = tqdm(
        total=len(prepared),
        desc="reports",
        unit="run",
        disable=None if progress is None else not progress,
    )
    try:
        if jobs == 1 or len(prepared) <= 1:
            for i, (prep, spec) in enumerate(zip(prepared, runs)):
                records[i] = _run_prepared(prep, out, spec, force, cwd_s)
                bar.update()
        else:
            # Threads, not processes: each run's work is in its own kernel process anyway,
            # and a thread pool needs no ``if __name__ == "__main__"`` guard in callers.
            pool = cf.ThreadPoolExecutor(
                max_workers=min(jobs, len(prepared)), thread_name_prefix="mmexplain-report"
            )
            try:
                futures = {
                    pool.submit(_run_prepared, prep, out, spec, force, cwd_s): i
                    for i, (prep, spec) in enumerate(zip(prepared, runs))
                }
                for fut in cf.as_completed(futures):
                    i = futures[fut]
                    try:
                        records[i] = fut.result()
                    except Exception as err:  # e.g. a worker process killed
                        prep = prepared[i]
                        records[i] = RunRecord(
                            run_id=prep.run_id,
                            notebook=prep.notebook_label,
                            parameters=prep.parameters,
                            status="failed",
                            run_dir=out / prep.run_id,
                            params_hash=prep.params_hash,
                            error={
                                "cell_index": None,
                                "execution_count": None,
                                "ename": type(err).__name__,
                                "evalue": str(err),
                                "traceback": "",
                            },
                        )
                    bar.update()
            finally:
                # On Ctrl-C, runs not started yet are dropped; running kernels finish.
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    done = [r for r in records if r is not None]
    write_index(out, done)
    return done
