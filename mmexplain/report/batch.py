"""Many report runs: validate them all, run them ``jobs`` at a time, then write the index.

Progress goes to stderr: one line when each run starts and ends (unless ``progress=False``),
and, on a terminal (or with ``progress=True``), a bar of runs and, with one job at a time,
papermill's bar of the running notebook's cells.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..locks import sweep
from ..sharing import shared_results
from .engines import make_batch_engine
from .execute import Prepared, check_no_other_run, execute, is_current, prepare
from .index import write_index
from .models import model_parameters, train_models
from .records import RunRecord, RunSpec

__all__ = ["run_batch"]


def _failed(prep: Prepared, out_dir: Path, err: BaseException) -> RunRecord:
    return RunRecord.failed(
        run_id=prep.run_id,
        notebook=prep.notebook_label,
        parameters=prep.parameters,
        run_dir=out_dir / prep.run_id,
        error=err,
        params_hash=prep.params_hash,
    )


def _say(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stderr)  # above any bar, without breaking it


def _run_one(
    prep: Prepared,
    *,
    out_dir: Path,
    force: bool,
    cwd: str | None,
    lines: bool = False,
    cell_progress: bool | None = False,
    self_contained: bool = False,
) -> RunRecord:
    """Worker: never raises for a failed run; a run it could not report becomes a record.

    ``lines``: say when the run starts and how it ended; ``cell_progress``: papermill's bar.
    """
    if lines:
        _say(f"started  {prep.run_id}")
    t0 = time.perf_counter()
    try:
        rec = execute(
            prep, out_dir, force=force, cwd=cwd, raise_on_error=False,
            progress=cell_progress, self_contained=self_contained,
        )
    except Exception as err:  # report not written, run locked by another process...
        rec = _failed(prep, out_dir, err)
    if lines:
        _say(_end_line(rec, time.perf_counter() - t0))
    return rec


def _end_line(rec: RunRecord, seconds: float | None) -> str:
    state = "skipped (complete)" if rec.skipped else rec.status
    return f"{state:<8} {rec.run_id}" + ("" if seconds is None else f" ({seconds:.0f} s)")


def _prepare_batch(runs: Sequence[RunSpec], out_dir: Path, force: bool) -> list[Prepared]:
    """Validate every run (parameters, run ids, duplicates); raise one ConfigError for all."""
    prepared: list[Prepared] = []
    problems: list[str] = []
    for spec in runs:
        try:
            prep = prepare(spec)
            check_no_other_run(out_dir, prep, force=force)
        except ConfigError as err:
            problems.append(str(err))
        else:
            prepared.append(prep)
    seen: dict[str, str] = {}
    for prep in prepared:
        if prep.run_id in seen:
            problems.append(
                f"run id {prep.run_id!r} is used twice ({seen[prep.run_id]} and "
                f"{prep.notebook_label} with {prep.parameters}); give distinct run_id values."
            )
        seen[prep.run_id] = prep.notebook_label
    if len(problems) == 1:
        raise ConfigError(f"invalid run, nothing was run: {problems[0]}")
    if problems:  # one line each
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
    self_contained: bool = False,
    engine: str = "local",
    engine_options: Mapping[str, Any] | None = None,
) -> list[RunRecord]:
    """Run many notebooks (``jobs`` at a time), then write ``index.html`` / ``index.json``.

    Every run is validated first; one invalid run stops the batch before anything runs.
    A failing notebook does not stop the others. What killed runs left in ``out_dir``
    (stale locks, temporary folders) is removed first; live runs' are left alone.

    Parameters
    ----------
    runs : sequence of RunSpec
    out_dir : str or PathLike, default "reports"
    jobs : int, default 1
        Runs at a time (each run starts its own kernel process).
    force : bool, default False
        Re-run current runs too (a failed forced run keeps the earlier ok report).
    progress : bool, optional
        Progress on stderr. Default None: a line when each run starts and ends, plus, on a
        terminal only, a bar of runs and (with ``jobs=1``) papermill's bar of the cells of
        the running notebook. True: the bars even off a terminal; False: nothing.
    cwd : str or PathLike, optional
        Working directory of the kernels (default: the current directory).
    self_contained : bool, default False
        Embed plotly.js in every page; by default the pages share one
        ``plotly-<version>.min.js`` in ``out_dir`` (:mod:`mmexplain.report.plotlyjs`).
    engine : str, default "local"
        Where the runs execute (:data:`~mmexplain.report.engines.BATCH_ENGINES`): ``local``
        (worker threads here) or ``ray`` (one Ray task per run). Validation, run folders,
        resuming and the index are the same whatever the engine.
    engine_options : mapping, optional
        Passed to the engine's factory (``ray``: ``address``).

    Returns
    -------
    list of RunRecord
        In the order of ``runs``.

    Raises
    ------
    ConfigError
        Invalid parameters, run ids, ``jobs``, ``out_dir`` or engine; nothing ran and
        nothing was written.
    """
    from tqdm.auto import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1; got {jobs!r}.")
    runner = make_batch_engine(engine, engine_options)
    out = Path(out_dir).absolute()  # papermill resolves relative paths via shared state
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out} exists and is not a folder.")
    prepared = _prepare_batch(runs, out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out_dir {out} cannot be created: {err.strerror or err}.") from None
    sweep(out)
    # explicit, so that workers in other processes start their kernels where this one would
    cwd_s = str(Path(os.getcwd() if cwd is None else cwd).absolute())
    # the models the notebooks open, trained first with every core (see .models)
    pending = [p for p in prepared if force or not is_current(p, out, cwd=cwd_s)]
    train_models(model_parameters(pending), cwd=cwd_s, say=_say if progress is not False else None)
    records: list[RunRecord | None] = [None] * len(prepared)
    bar = tqdm(
        total=len(prepared),
        desc="reports",
        unit="run",
        disable=None if progress is None else not progress,
    )
    lines = progress is not False
    # several notebooks' cell bars would interleave: per-run lines only then
    serial = (jobs == 1 or len(prepared) <= 1) and not runner.remote
    work = functools.partial(_run_one, out_dir=out, force=force, cwd=cwd_s, lines=lines and not runner.remote,
                             cell_progress=progress if serial else False, self_contained=self_contained)
    try:
        with shared_results():  # explanations the notebooks share (mmexplain.sharing)
            for i, rec in runner.map_runs(work, prepared, jobs=jobs):
                if isinstance(rec, Exception):  # the engine's machinery failed, e.g. a worker died
                    rec = _failed(prepared[i], out, rec)
                records[i] = rec
                if lines and runner.remote:  # its own lines stay on the workers
                    _say(_end_line(rec, None))
                bar.update()
    finally:
        bar.close()
    done = [r for r in records if r is not None]
    write_index(out, done)
    return done
