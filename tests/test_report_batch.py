"""Batches: distinct runs never share a folder; a batch first clears what killed runs left."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from _report_fixtures import live_run, reader_notebook

from mmexplain.locks import lock_path, temp_prefix
from mmexplain.report import RunSpec, run_batch
from mmexplain.report.cli import main as report_main
from mmexplain.report.grid import expand_grid, load_grid

pytestmark = pytest.mark.slow


def test_grids_differing_only_in_shared_parameters_keep_both_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "a.txt").write_text("from a")
    (tmp_path / "b.txt").write_text("from b")
    grids = []
    for name in ("a", "b"):
        grids.append(tmp_path / f"{name}.yaml")
        grids[-1].write_text(
            f"notebooks: [{nb}]\nparameters: {{data: {name}.txt}}\ngrid: {{fail: [false]}}\n"
        )
    ids = [expand_grid(load_grid(g))[0].planned_run_id for g in grids]
    assert ids[0] != ids[1] and all(i.startswith("reader__fail-False__") for i in ids)

    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # the kernels' cwd: relative ``data`` paths
    for g in grids:
        assert report_main(["--grid", str(g), "--out", str(out)]) == 0
    index = json.loads((out / "index.json").read_text())["runs"]
    texts = {r["run_id"]: json.loads((out / r["run_id"] / f"{r['run_id']}.json").read_text())
             for r in index}
    assert sorted(texts) == sorted(ids)  # the second grid did not replace the first
    assert {t["results"]["text"] for t in texts.values()} == {"from a", "from b"}
    capsys.readouterr()


def test_batch_sweeps_stale_locks_and_temporaries_but_not_a_live_run(tmp_path: Path) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "in.txt").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    # left by killed runs: a lock of a dead process, temporary folders of two runs,
    # a temp folder of the runner before locks (older than an hour)
    dead = lock_path(out, "gone__12345678")
    dead.write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename, "start": "1"}))
    for name in (f"{temp_prefix('gone__12345678', 'tmp')}x1", f"{temp_prefix('other', 'old')}x2"):
        (out / name).mkdir()
        (out / name / "half.ipynb").write_text("{")
    legacy = out / ".old_run.abcd.tmp"
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))

    with live_run(out, "busy", "x3"):  # a live run of another batch
        records = run_batch([expand_grid(load_grid(_grid(tmp_path, nb)))[0]], out, cwd=tmp_path)
        assert records[0].ok
        left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        assert left == [".busy+tmp.x3", ".busy.lock"]  # the live run's, untouched


def _grid(tmp_path: Path, nb: Path) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(f"notebooks: [{nb}]\nparameters: {{data: in.txt}}\n")
    return path


def test_progress_says_when_each_run_starts_and_ends_without_flooding_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "in.txt").write_text("x")
    grid = tmp_path / "g.yaml"
    grid.write_text(f"notebooks: [{nb}]\nparameters: {{data: in.txt}}\ngrid: {{fail: [false, true]}}\n")
    monkeypatch.chdir(tmp_path)
    # not a terminal (captured): a line per run start and end, no bars
    assert report_main(["--grid", str(grid), "--out", "out", "--jobs", "2"]) == 1
    err = capsys.readouterr().err.splitlines()
    ids = [s.planned_run_id for s in expand_grid(load_grid(grid))]
    for run_id in ids:
        assert f"started  {run_id}" in err
    assert any(line.startswith(f"ok       {ids[0]} (") for line in err), err
    assert any(line.startswith(f"failed   {ids[1]} (") for line in err), err
    assert len(err) == 4 and not any("%|" in line for line in err), err
    # again: both current or failed; --no-progress says nothing at all
    assert report_main(["--grid", str(grid), "--out", "out", "--no-progress"]) == 1
    assert capsys.readouterr().err == ""
    # one job, progress forced on: papermill's bar of the notebook's cells
    run_batch([expand_grid(load_grid(grid))[0]], tmp_path / "out2", progress=True, cwd=tmp_path)
    err = capsys.readouterr().err
    assert "reader:" in err and "cell" in err and "started  " in err


def test_parallel_kernels_share_the_cores(monkeypatch):
    from mmexplain.report.engines import _kernel_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    with _kernel_threads(3):
        assert os.environ["OMP_NUM_THREADS"] == "2"  # 8 cores, 3 kernels at a time
    assert "OMP_NUM_THREADS" not in os.environ
    with _kernel_threads(16):
        assert os.environ["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # the caller's choice wins
    with _kernel_threads(2):
        assert os.environ["OMP_NUM_THREADS"] == "5"


MODEL_PARAMETERS = '''dataset = "synthetic:additive"
fusion = "concat"
epochs = 1
limit = 64
seed = 0
model_cache = "models"
results_path = ""
label = "a"
'''
MODEL_BODY = '''from mmexplain.notebook import record, setup, training_arguments
from mmexplain.training import is_trained
cache, params = training_arguments(globals())
record(results_path, trained_before_setup=is_trained(cache, **params))
run = setup(globals())
'''


def test_models_the_notebooks_open_are_trained_once_before_they_run(tmp_path, capsys, monkeypatch):
    """Two notebooks in parallel open one model: the runner trains it first (with every core,
    in a child process), so neither kernel trains nor waits for the other."""
    nb = reader_notebook(tmp_path / "model.ipynb", body=MODEL_BODY)
    book = nbformat.read(nb, as_version=4)
    book.cells[0].source = MODEL_PARAMETERS
    nbformat.write(book, nb)
    monkeypatch.chdir(tmp_path)  # relative model_cache: resolved from the kernels' cwd
    runs = [RunSpec(str(nb), {"label": x}) for x in ("a", "b")]
    records = run_batch(runs, tmp_path / "out", jobs=2, cwd=tmp_path)
    assert all(r.ok for r in records), [r.error for r in records]
    for r in records:
        assert json.loads(Path(r.json_path).read_text())["results"]["trained_before_setup"] is True
    err = capsys.readouterr().err
    assert err.count("training concat on synthetic:additive (1/1), before the notebooks") == 1
    assert "trained  concat on synthetic:additive" in err
    assert len(list((tmp_path / "models").glob("concat-*"))) == 1
    # current reports are not rerun, so nothing is trained for them either
    (tmp_path / "models").rename(tmp_path / "moved")
    run_batch(runs, tmp_path / "out", jobs=2, cwd=tmp_path)
    assert "training" not in capsys.readouterr().err and not (tmp_path / "models").exists()
