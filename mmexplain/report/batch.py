"""Many report runs: validate them all, run them ``jobs`` at a time, then write the index.

Progress goes to stderr: one line when each run starts and ends (unless ``progress=False``),
and, on a terminal (or with ``progress=True``), a bar of runs and, with one job at a time,
papermill's bar of the running notebook's cells.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..exceptions import ConfigError
from ..locks import sweep
from ..sharing import shared_results
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
    out_dir: Path,
    force: bool,
    cwd: str | None,
    *,
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
        state = "skipped (complete)" if rec.skipped else rec.status
        _say(f"{state:<8} {prep.run_id} ({time.perf_counter() - t0:.0f} s)")
    return rec


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


@contextlib.contextmanager
def _kernel_threads(parallel: int) -> Iterator[None]:
    """Kernels started meanwhile share the CPUs: ``parallel`` kernels each running torch's
    default of one thread per core would oversubscribe them, and OpenMP threads that wait
    by spinning then slow every kernel several-fold. Each gets its share of the cores
    (OMP_NUM_THREADS, which torch reads at import), unless the caller set it already."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


def run_batch(
    runs: Sequence[RunSpec],
    out_dir: str | os.PathLike[str] = "reports",
    *,
    jobs: int = 1,
    force: bool = False,
    progress: bool | None = None,
    cwd: str | os.PathLike[str] | None = None,
    self_contained: bool = False,
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
        Runs at a time (worker threads; each run starts its own kernel process).
    force : bool, default False
        Re-run current runs too (a failed forced run keeps the earlier ok report).
    progress : bool, optional
        Progress on stderr. Default None: a line when each run starts and ends, plus, on a
        terminal only, a bar of runs and (with ``jobs=1``) papermill's bar of the cells of
        the running notebook. True: the bars even off a terminal; False: nothing.
    cwd : str or PathLike, optional
        Working directory of the kernels.
    self_contained : bool, default False
        Embed plotly.js in every page; by default the pages share one
        ``plotly-<version>.min.js`` in ``out_dir`` (:mod:`mmexplain.report.plotlyjs`).

    Returns
    -------
    list of RunRecord
        In the order of ``runs``.

    Raises
    ------
    ConfigError
        Invalid parameters, run ids, ``jobs`` or ``out_dir``; nothing ran and nothing
        was written.
    """
    from tqdm.auto import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1; got {jobs!r}.")
    out = Path(out_dir).absolute()  # papermill resolves relative paths via shared state
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out} exists and is not a folder.")
    prepared = _prepare_batch(runs, out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out_dir {out} cannot be created: {err.strerror or err}.") from None
    sweep(out)
    cwd_s = None if cwd is None else str(Path(cwd).absolute())
    records: list[RunRecord | None] = [None] * len(prepared)
    bar = tqdm(
        total=len(prepared),
        desc="reports",
        unit="run",
        disable=None if progress is None else not progress,
    )
    serial = jobs == 1 or len(prepared) <= 1
    options = {
        "lines": progress is not False,
        # several notebooks' cell bars would interleave: per-run lines only then
        "cell_progress": progress if serial else False,
        "self_contained": self_contained,
    }
    # the models the notebooks open, trained first with every core (see .models)
    pending = [p for p in prepared if force or not is_current(p, out, cwd=cwd_s)]
    train_models(model_parameters(pending), cwd=cwd_s, say=_say if options["lines"] else None)
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(shared_results())  # explanations the notebooks share (mmexplain.sharing)
        if serial:
            for i, prep in enumerate(prepared):
                records[i] = _run_one(prep, out, force, cwd_s, **options)
                bar.update()
        else:
            # Threads, not processes: each run's work is in its own kernel process anyway,
            # and a thread pool needs no ``if __name__ == "__main__"`` guard in callers.
            stack.enter_context(_kernel_threads(min(jobs, len(prepared))))
            pool = cf.ThreadPoolExecutor(
                max_workers=min(jobs, len(prepared)), thread_name_prefix="mmexplain-report"
            )
            try:
                futures = {
                    pool.submit(_run_one, prep, out, force, cwd_s, **options): i
                    for i, prep in enumerate(prepared)
                }
                for fut in cf.as_completed(futures):
                    i = futures[fut]
                    try:
                        records[i] = fut.result()
                    except Exception as err:  # e.g. a worker thread that could not start
                        records[i] = _failed(prepared[i], out, err)
                    bar.update()
            finally:
                # On Ctrl-C, runs not started yet are dropped; running kernels finish.
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        stack.close()
        bar.close()
    done = [r for r in records if r is not None]
    write_index(out, done)
    return done
