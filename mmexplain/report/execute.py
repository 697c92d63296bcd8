"""Execute one notebook run with papermill and write its report, atomically.

The steps, in order: prepare (check parameters, name the run) -> lock the run folder and
clear what a killed run left -> skip if the report is current -> run papermill -> write
ipynb, HTML and JSON into a temporary folder -> rename it into place. A failed attempt
never replaces an ``ok`` report: it goes beside it, to ``<run_id>/failed/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, NotebookExecutionError, ReportError
from ..locks import make_temp_dir, run_lock, swap_into_place
from .inspection import NotebookParameter, escape_format, validate_parameters
from .plotlyjs import page_plotlyjs, plotlyjs_src, share_plotlyjs, write_plotlyjs
from .provenance import collect_provenance, file_sha256, inputs_fingerprint, params_hash, utc_now
from .records import (
    EXPLORER_PAGE,
    FAILED_DIR,
    RESULTS_PARAMETER,
    RunRecord,
    RunSpec,
    check_run_id,
    error_info,
)
from .results import atomic_write_text, load_results, to_jsonable

__all__ = ["Prepared", "check_no_other_run", "execute", "prepare", "run_notebook"]


@dataclass(frozen=True)
class Prepared:
    """A checked run: what :func:`execute` needs, all validated up front."""

    notebook: Path
    notebook_label: str
    parameters: dict[str, Any]
    declared: dict[str, NotebookParameter]
    run_id: str
    params_hash: str
    kernel_name: str | None = None
    timeout: float | None = None


def prepare(spec: RunSpec) -> Prepared:
    """Check a :class:`RunSpec` (notebook, parameters, run id, timeout) without running it.

    Raises
    ------
    ConfigError
        Naming the notebook and the parameter or value at fault.
    """
    notebook = Path(spec.notebook)
    try:
        params = to_jsonable(dict(spec.parameters), name="parameters")
    except ReportError as err:
        raise ConfigError(f"{notebook}: {err}") from None
    if spec.timeout is not None and not (
        isinstance(spec.timeout, (int, float)) and spec.timeout > 0 and spec.timeout < float("inf")
    ):
        raise ConfigError(f"timeout must be a positive number of seconds; got {spec.timeout!r}.")
    declared = validate_parameters(notebook, params)
    if spec.kernel_name is not None:
        _check_kernel(spec.kernel_name)
    run_id = check_run_id(spec.run_id) if spec.run_id is not None else spec.planned_run_id
    return Prepared(
        notebook=notebook,
        notebook_label=str(spec.notebook),
        parameters=params,
        declared=declared,
        run_id=run_id,
        params_hash=params_hash(notebook.name, params),
        kernel_name=spec.kernel_name,
        timeout=spec.timeout,
    )


def _check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel:
        installed = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise ConfigError(
            f"kernel_name={name!r} is not installed; installed kernels: {installed}."
        ) from None


def _run_key(prep: Prepared, cwd: str | None) -> dict[str, str]:
    # What makes a report current: same parameters, same notebook, same input files.
    return {
        "params_hash": prep.params_hash,
        "notebook_sha256": file_sha256(prep.notebook),
        "inputs_fingerprint": inputs_fingerprint(prep.parameters, cwd),
    }


def _existing(run_dir: Path, run_id: str) -> RunRecord | None:
    path = run_dir / f"{run_id}.json"
    if not path.is_file():
        return None
    try:
        return RunRecord.from_json(path, skipped=True)
    except ReportError:
        return None


def check_no_other_run(out_dir: Path, prep: Prepared, *, force: bool) -> None:
    """Refuse to put ``prep`` into a folder that holds an ok run with other parameters.

    Default run ids hash every parameter, so this guards explicit ``run_id`` values. A
    failed run with other parameters may be replaced (nothing of value is lost).

    Raises
    ------
    ConfigError
        Unless ``force``; nothing is touched.
    """
    if force:
        return
    old = _existing(out_dir / prep.run_id, prep.run_id)
    if old is not None and old.ok and old.params_hash != prep.params_hash:
        raise ConfigError(
            f"run id {prep.run_id!r}: {old.run_dir} already holds a run of {old.notebook} with "
            f"other parameters ({old.parameters}); choose another run id, or force to replace it."
        )


def _current(old: RunRecord | None, key: Mapping[str, str]) -> bool:
    if old is None or old.status != "ok" or old.run_key != dict(key):
        return False
    if (old.run_dir / FAILED_DIR).exists():  # its last attempt failed: try again
        return False
    return all(k in old.files for k in ("ipynb", "html", "json"))


def _error_from_exception(err: BaseException) -> dict[str, Any]:
    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(err, PapermillExecutionError):
        return error_info(
            err.ename,
            err.evalue,
            cell_index=err.cell_index,
            execution_count=err.exec_count,
            traceback=strip_color("\n".join(err.traceback or [])),
        )
    return error_info(type(err).__name__, str(err))


def _progress_bar(prep: Prepared, progress: bool | None) -> bool | dict[str, Any]:
    """papermill's per-cell tqdm bar: off, or labelled by the notebook (run ids are long)."""
    if progress is False:
        return False
    # disable=None: tqdm shows it on a terminal only, so logs are not flooded
    return {"desc": prep.notebook.stem, "leave": False, "disable": None if progress is None else False}


def _papermill(
    prep: Prepared, ipynb: Path, injected: dict[str, Any], cwd: str | None, progress: bool | None
) -> dict | None:
    import papermill

    try:
        papermill.execute_notebook(
            escape_format(prep.notebook.resolve()),
            escape_format(ipynb),
            parameters=injected,
            kernel_name=prep.kernel_name,
            progress_bar=_progress_bar(prep, progress),
            log_output=False,  # cell outputs belong in the report, not in the terminal
            request_save_on_cell_execute=True,
            execution_timeout=prep.timeout,
            # nbclient starts the kernel in resources.metadata.path; papermill's own
            # ``cwd`` would chdir the whole process, which races between batch threads.
            resources={"metadata": {"path": cwd}} if cwd else {},
        )
    except Exception as err:  # a cell error, a dead kernel, a timeout...
        return _error_from_exception(err)
    return None


def _render_page(
    nb: Any, title: str, envelope: Mapping[str, Any], out_dir: Path, page_dir: Path,
    self_contained: bool,
) -> str:
    """The HTML of one page; writes the report folder's shared plotly.js when it needs it.

    The shared file is written before the page is moved into place, so a page never points
    at a missing file.
    """
    from .html import notebook_to_html, provenance_table_html

    src = None if self_contained else plotlyjs_src(out_dir, page_dir)
    document = notebook_to_html(
        nb, title=title, header_html=provenance_table_html(envelope), plotlyjs_src=src
    )
    if page_plotlyjs(document) == "shared":
        write_plotlyjs(out_dir)
    return document


def _extra_pages(tmp_dir: Path, out_dir: Path, page_dir: Path, self_contained: bool) -> dict[str, Path]:
    """Pages the notebook wrote beside its results (the static explorer): pointed at the
    report folder's shared plotly.js unless ``self_contained``. Returns them by files key."""
    page = tmp_dir / EXPLORER_PAGE
    if not page.is_file():
        return {}
    if not self_contained:
        document = page.read_text(encoding="utf-8")
        if page_plotlyjs(document) == "inline":
            write_plotlyjs(out_dir)
            atomic_write_text(page, share_plotlyjs(document, plotlyjs_src(out_dir, page_dir)))
    return {"explorer": page}


def _restyle(old: RunRecord, out_dir: Path, self_contained: bool) -> RunRecord:
    """A current run's page, re-rendered from its notebook when it was written in the other
    plotly.js mode (embedded vs shared): switching ``self_contained`` never re-executes."""
    import nbformat

    page = old.files.get("html")
    if page is None or "ipynb" not in old.files:
        return old
    mode = page_plotlyjs(page.read_text(encoding="utf-8", errors="replace"))
    if mode == "none" or (mode == "inline") == self_contained:
        return old
    nb = nbformat.read(old.files["ipynb"], as_version=4)
    envelope = nb.metadata.get("mmexplain")
    if not isinstance(envelope, Mapping):
        return old  # not written by this runner: leave it as it is
    atomic_write_text(
        page, _render_page(nb, old.run_id, envelope, out_dir, page.parent, self_contained)
    )
    return old


def _write_report(
    prep: Prepared,
    out_dir: Path,
    key: dict[str, str],
    cwd: str | None,
    old: RunRecord | None,
    *,
    progress: bool | None = False,
    self_contained: bool = False,
) -> RunRecord:
    import nbformat

    run_dir = out_dir / prep.run_id
    tmp_dir = make_temp_dir(out_dir, prep.run_id)
    try:
        ipynb = tmp_dir / f"{prep.run_id}.ipynb"
        results_file = tmp_dir / "_results.json"
        injected = dict(prep.parameters)
        if RESULTS_PARAMETER in prep.declared:
            injected[RESULTS_PARAMETER] = str(results_file)

        started, t0 = utc_now(), time.perf_counter()
        error = _papermill(prep, ipynb, injected, cwd, progress)
        seconds, finished = time.perf_counter() - t0, utc_now()

        results: dict[str, Any] = {}
        if results_file.exists():
            try:
                results = to_jsonable(load_results(results_file), name="results")  # nan -> None
            except ReportError as err:
                error = error or error_info("ReportError", str(err))
            results_file.unlink()
        # the kernel never started: report on the input notebook
        nb = nbformat.read(ipynb if ipynb.exists() else prep.notebook, as_version=4)

        defaults = {
            n: (p.default if p.literal else p.default_source)
            for n, p in prep.declared.items()
            if n != RESULTS_PARAMETER
        }
        # A failed attempt goes beside an ok report, which stays where it is.
        keep_old = error is not None and old is not None and old.ok
        dest = run_dir / FAILED_DIR if keep_old else run_dir
        extra = _extra_pages(tmp_dir, out_dir, dest, self_contained)
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
                kernel_name=prep.kernel_name or nb.metadata.get("kernelspec", {}).get("name"),
                cwd=cwd,
            ),
            error=error,
            params_hash=prep.params_hash,
            run_key=key,
            files={**{k: dest / f"{prep.run_id}.{k}" for k in ("ipynb", "html", "json")},
                   **{k: dest / p.name for k, p in extra.items()}},
            kept=dict(old.files) if keep_old and old is not None else {},
        )
        envelope = record.to_envelope()

        nb.metadata["mmexplain"] = {k: v for k, v in envelope.items() if k != "files"}
        nbformat.write(nb, ipynb)
        document = _render_page(nb, prep.run_id, envelope, out_dir, dest, self_contained)
        (tmp_dir / f"{prep.run_id}.html").write_text(document, encoding="utf-8")
        atomic_write_text(
            tmp_dir / f"{prep.run_id}.json",
            json.dumps(envelope, indent=2, sort_keys=True, allow_nan=False) + "\n",
        )
        swap_into_place(tmp_dir, dest, prep.run_id)
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
    return record


def _raise_for_error(prep: Prepared, record: RunRecord) -> None:
    error = record.error or {}
    idx = error.get("cell_index")
    where = f"cell {idx}" if idx is not None else "an unknown cell (kernel or timeout error)"
    kept = (
        f" The earlier ok report is kept: {record.kept['html']}." if "html" in record.kept else ""
    )
    raise NotebookExecutionError(
        f"{prep.notebook} (run {prep.run_id!r}) failed at {where}: "
        f"{error.get('ename')}: {error.get('evalue')}. Partial notebook: {record.files['ipynb']}."
        + kept,
        output_path=str(record.files["ipynb"]),
        cell_index=idx,
        ename=error.get("ename"),
        evalue=error.get("evalue"),
    )


def is_current(prep: Prepared, out_dir: Path, *, cwd: str | None = None) -> bool:
    """Whether ``out_dir`` holds an ok report of ``prep`` that :func:`execute` would reuse
    (same parameters, notebook and input files) rather than run again (unless forced)."""
    return _current(_existing(out_dir / prep.run_id, prep.run_id), _run_key(prep, cwd))


def execute(
    prep: Prepared,
    out_dir: Path,
    *,
    force: bool = False,
    cwd: str | None = None,
    raise_on_error: bool = True,
    progress: bool | None = False,
    self_contained: bool = False,
) -> RunRecord:
    """Execute a prepared run into ``out_dir`` (an absolute, existing folder).

    Returns the earlier record (``skipped=True``) when it is current and ``force`` is off;
    its page is re-rendered (not re-run) if it was written in the other plotly.js mode.
    ``progress`` is papermill's per-cell bar (None: on a terminal only); ``self_contained``
    embeds plotly.js in the page instead of sharing one file per ``out_dir``
    (:mod:`mmexplain.report.plotlyjs`).

    Raises
    ------
    RunLockedError
        Another live process is running the same run id in ``out_dir``.
    NotebookExecutionError
        A cell raised and ``raise_on_error``; the failed report is written.
    ReportError
        The report could not be written; an earlier report is untouched.
    """
    with run_lock(out_dir, prep.run_id):
        old = _existing(out_dir / prep.run_id, prep.run_id)
        key = _run_key(prep, cwd)
        if not force and _current(old, key):
            return _restyle(old, out_dir, self_contained)  # type: ignore[arg-type]
        record = _write_report(
            prep, out_dir, key, cwd, old, progress=progress, self_contained=self_contained
        )
    if not record.ok and raise_on_error:
        _raise_for_error(prep, record)
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
    progress: bool | None = None,
    self_contained: bool = False,
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
        Default :func:`~mmexplain.report.records.make_run_id` of the notebook and
        ``parameters``.
    kernel_name : str, optional
        Default: the notebook's kernelspec (``python3`` is the running interpreter).
    force : bool, default False
        Run even when a current report exists, and allow a ``run_id`` whose folder holds
        a run with other parameters. A failed forced run still keeps an ok report.
    timeout : float, optional
        Per-cell timeout in seconds.
    raise_on_error : bool, default True
        On a notebook error, raise :class:`NotebookExecutionError` after writing the
        failed report; with False, return the record with ``status="failed"``.
    cwd : str or PathLike, optional
        Working directory of the kernel (and of relative input paths); default the
        current directory.
    progress : bool, optional
        papermill's per-cell progress bar on stderr; default only on a terminal.
    self_contained : bool, default False
        Embed plotly.js in the HTML page (about 4.6 MB) so it works alone; by default
        pages load one shared ``plotly-<version>.min.js`` written into ``out_dir``.

    Returns
    -------
    RunRecord
        ``skipped=True`` when an earlier report was current: same parameters, notebook
        and input files, status ok.

    Raises
    ------
    ConfigError
        Bad notebook path, unknown parameter or wrong type, unsafe ``run_id``, or a
        ``run_id`` taken by another run: nothing ran and nothing was written.
    RunLockedError
        The same run is in progress in another process.
    NotebookExecutionError
        A cell raised (only with ``raise_on_error=True``); the failed report is written,
        beside an earlier ok report rather than over it.
    ReportError
        The report could not be written; an earlier report of the same run is untouched.
    """
    prep = prepare(RunSpec(notebook, parameters or {}, run_id, kernel_name, timeout))
    out = Path(out_dir).absolute()  # papermill resolves relative paths via shared state
    check_no_other_run(out, prep, force=force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out_dir {out} cannot be created: {err.strerror or err}.") from None
    return execute(
        prep,
        out,
        force=force,
        cwd=None if cwd is None else str(Path(cwd).absolute()),
        raise_on_error=raise_on_error,
        progress=progress,
        self_contained=self_contained,
    )
