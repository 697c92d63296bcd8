"""Report batches on Ray: one Ray task per run, the same index as local threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _report_fixtures import reader_notebook

from mmexplain.exceptions import ConfigError
from mmexplain.report import run_batch
from mmexplain.report.cli import main as report_main
from mmexplain.report.engines import BATCH_ENGINES, LocalBatchEngine, make_batch_engine
from mmexplain.report.grid import expand_grid, load_grid

pytestmark = pytest.mark.slow

#: index.json fields that do not depend on where or when a run executed
_STABLE = ("run_id", "notebook", "status", "parameters", "params_hash", "key_results", "error", "files", "kept")


def _grid(tmp_path: Path) -> Path:
    nb = reader_notebook(tmp_path / "reader.ipynb")
    (tmp_path / "a.txt").write_text("from a")
    (tmp_path / "b.txt").write_text("boom in b")  # this run fails
    grid = tmp_path / "g.yaml"
    grid.write_text(f"notebooks: [{nb}]\ngrid: {{data: [a.txt, b.txt]}}\n")
    return grid


def _index(out: Path) -> list[dict]:
    runs = json.loads((out / "index.json").read_text())["runs"]
    return sorted(({k: r[k] for k in _STABLE} for r in runs), key=lambda r: r["run_id"])


def test_report_grid_on_ray_gives_the_index_of_two_local_jobs(
    ray_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _grid(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative ``data`` paths: the kernels start here, on Ray too
    assert report_main(["--grid", str(grid), "--out", "local", "--jobs", "2"]) == 1
    capsys.readouterr()
    assert report_main(["--grid", str(grid), "--out", "ray", "--jobs", "2", "--engine", "ray"]) == 1
    err = capsys.readouterr().err.splitlines()
    local, on_ray = _index(tmp_path / "local"), _index(tmp_path / "ray")
    assert [r["status"] for r in on_ray] == ["ok", "failed"]
    assert on_ray == local
    ids = [s.planned_run_id for s in expand_grid(load_grid(grid))]
    ours = [line for line in err if line.split()[0] in ("ok", "failed", "started")]
    assert sorted(ours) == sorted([f"ok       {ids[0]}", f"failed   {ids[1]}"]), err  # one line per run
    text = json.loads((tmp_path / "ray" / ids[0] / f"{ids[0]}.json").read_text())
    assert text["status"] == "ok" and "from a" in (tmp_path / "ray" / ids[0] / f"{ids[0]}.ipynb").read_text()

    # resuming is the batch's, not the engine's: the ok run is current and skipped on Ray too
    records = run_batch(expand_grid(load_grid(grid)), tmp_path / "ray", jobs=2, engine="ray", progress=False)
    assert [r.skipped for r in records] == [True, False]
    assert _index(tmp_path / "ray") == local


def test_engine_names_and_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert BATCH_ENGINES.names() == ["local", "ray"]
    with pytest.raises(ConfigError, match="unknown report engine 'spark'; known: local, ray"):
        make_batch_engine("spark")
    with pytest.raises(ConfigError, match=r"engine_options \['address'\]: the local report engine takes no"):
        run_batch([], tmp_path / "out", engine_options={"address": "auto"})
    assert not (tmp_path / "out").exists()  # nothing was written
    grid = _grid(tmp_path)
    assert report_main(["--grid", str(grid), "--out", str(tmp_path / "o"), "--address", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--address auto" in err and "local report engine takes no options" in err
    assert report_main(["--grid", str(grid), "--out", str(tmp_path / "o"), "--engine", "spark"]) == 2
    assert "--engine: unknown report engine 'spark'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_run_that_cannot_report_is_yielded_as_its_exception() -> None:
    def work(prep):
        if prep == "b":
            raise RuntimeError("the thread died")
        return prep.upper()

    got = dict(LocalBatchEngine().map_runs(work, ["a", "b", "c"], jobs=2))
    assert got[0] == "A" and got[2] == "C" and isinstance(got[1], RuntimeError)
