"""One run: a report is current only while its parameters, notebook and input files are;
a failed attempt never replaces an ok report; killed runs' leftovers go, live runs stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _report_fixtures import BODY, live_run, reader_notebook

from mmexplain.exceptions import ConfigError, NotebookExecutionError, RunLockedError
from mmexplain.locks import lock_path, temp_prefix
from mmexplain.report import run_notebook, write_index
from mmexplain.report.results import load_results

pytestmark = pytest.mark.slow


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_changed_input_or_notebook_reruns_and_failure_keeps_ok_report(tmp_path: Path) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "in.txt").write_text("first")
    out = tmp_path / "out"
    first = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert first.ok and first.results == {"text": "first"}
    assert set(first.run_key) == {"params_hash", "notebook_sha256", "inputs_fingerprint"}

    # same parameters, notebook and data: current, skipped (idempotent)
    again = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert again.skipped and again.provenance["finished"] == first.provenance["finished"]

    # the data changed under the same parameters: the stale report is rerun, not kept
    (tmp_path / "in.txt").write_text("second")
    rerun = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert not rerun.skipped and rerun.results == {"text": "second"}
    good = _snapshot(rerun.run_dir)

    # --force with a run that now fails: the ok report stays byte for byte, the failure
    # is written beside it and named in the error
    (tmp_path / "in.txt").write_text("boom")
    with pytest.raises(NotebookExecutionError, match=r"boom from in\.txt.*earlier ok report is kept"):
        run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path, force=True)
    assert _snapshot(rerun.run_dir) == good
    attempt = load_results(rerun.run_dir / "failed" / f"{rerun.run_id}.json")
    assert attempt["status"] == "failed" and "boom from in.txt" in attempt["error"]["evalue"]
    assert _hidden(out) == []  # no temporary folder or lock left
    row = json.loads(write_index(out).with_suffix(".json").read_text())["runs"][0]
    assert row["status"] == "failed" and row["kept"] == f"{rerun.run_id}/{rerun.run_id}.html"
    assert row["files"]["ipynb"] == f"{rerun.run_id}/failed/{rerun.run_id}.ipynb"
    assert "earlier ok report (kept)" in (out / "index.html").read_text()

    # a run whose last attempt failed is not current: the next run tries again; a success
    # replaces the whole folder (the failed attempt goes with it)
    (tmp_path / "in.txt").write_text("third")
    fixed = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert fixed.ok and not fixed.skipped and fixed.results == {"text": "third"}
    assert not (fixed.run_dir / "failed").exists()

    # an edited notebook makes the report stale too
    reader_notebook(nb, BODY.replace("print(text)", "print(text.upper())"))
    edited = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert not edited.skipped and edited.run_key["notebook_sha256"] != fixed.run_key["notebook_sha256"]


def test_explicit_run_id_of_another_ok_run_is_refused(tmp_path: Path) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    out = tmp_path / "out"
    rec = run_notebook(nb, {"data": "a.txt"}, out, run_id="mine", cwd=tmp_path)
    before = _snapshot(rec.run_dir)
    with pytest.raises(ConfigError, match=r"run id 'mine'.*other parameters.*'data': 'a.txt'"):
        run_notebook(nb, {"data": "b.txt"}, out, run_id="mine", cwd=tmp_path)
    assert _snapshot(rec.run_dir) == before
    forced = run_notebook(nb, {"data": "b.txt"}, out, run_id="mine", cwd=tmp_path, force=True)
    assert forced.results == {"text": "b"}


def test_live_lock_is_respected_and_a_killed_runs_leftovers_are_cleaned(tmp_path: Path) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "in.txt").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    from mmexplain.report.records import make_run_id

    run_id = make_run_id(nb, {"data": "in.txt"})
    with live_run(out, run_id, "abc") as pid:  # a run in another process: lock, temp folder, hangs
        with pytest.raises(RunLockedError, match=rf"in progress \(pid {pid} on "):
            run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
        assert lock_path(out, run_id).exists() and not (out / run_id).exists()
        assert (out / f"{temp_prefix(run_id, 'tmp')}abc").is_dir()  # a live run's, kept
    # killed: its lock file and temporary folder are left behind, until the next run
    assert json.loads(lock_path(out, run_id).read_text())["pid"] == pid
    rec = run_notebook(nb, {"data": "in.txt"}, out, cwd=tmp_path)
    assert rec.ok and _hidden(out) == []
