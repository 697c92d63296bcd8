"""Single notebook runs: parameters, outputs, provenance, failures, skipping, atomicity, CLI."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmexplain.exceptions import ConfigError, NotebookExecutionError, ReportError
from mmexplain.report import (
    RunRecord,
    inspect_parameters,
    make_run_id,
    run_notebook,
    validate_parameters,
)
from mmexplain.report import html as report_html
from mmexplain.report.cli import main as cli_main
from mmexplain.report.cli import parse_value
from mmexplain.report.html import external_resources
from mmexplain.report.plotlyjs import page_plotlyjs, plotlyjs_name
from mmexplain.report.results import SCHEMA_VERSION, load_results, record

pytestmark = pytest.mark.slow

NB = Path(__file__).parent / "fixtures" / "notebooks"
SIMPLE = NB / "simple.ipynb"
RAISES = NB / "raises.ipynb"
NO_PARAMS = NB / "no_params.ipynb"


@pytest.fixture(scope="module")
def simple_run(tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """One executed run of simple.ipynb, shared by the read-only checks below."""
    out = tmp_path_factory.mktemp("reports")
    return run_notebook(SIMPLE, {"n": 4, "label": "first"}, out)


# --------------------------------------------------------------------------------- results


def test_record_converts_and_merges(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record(path, accuracy=np.float32(0.5), n=np.int64(3), arr=np.arange(3), nan=float("nan"))
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    # None: a record(...) ending a notebook cell must not print a dict into the report
    assert record(str(path), table=df, accuracy=0.75, nested={"t": (1, 2), 3: np.bool_(True)}) is None
    on_disk = json.loads(path.read_text())
    assert load_results(path) == on_disk
    assert on_disk["accuracy"] == 0.75 and on_disk["n"] == 3 and on_disk["arr"] == [0, 1, 2]
    assert on_disk["nan"] is None
    assert on_disk["table"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert on_disk["nested"] == {"t": [1, 2], "3": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp files left


def test_record_without_path_writes_nothing(tmp_path: Path) -> None:
    assert record("", x=np.float64(1.5)) is None
    assert record(None, y=[1]) is None
    assert list(tmp_path.iterdir()) == []


def test_record_rejects_unserialisable_value() -> None:
    with pytest.raises(ReportError, match=r"record\(bad=...\).*object"):
        record("", bad=object())


def test_load_results_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReportError, match="bad.json"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "new.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ReportError, match="schema_version"):
        load_results(tmp_path / "new.json")


# ------------------------------------------------------------------------------ parameters


def test_inspect_parameters_infers_types() -> None:
    params = inspect_parameters(SIMPLE)
    assert list(params) == [
        "n",
        "alpha",
        "label",
        "seed",
        "device",
        "fail",
        "renderer",
        "results_path",
    ]
    assert (
        params["n"].type is int
        and params["n"].default == 3
        and params["n"].help == "number of points"
    )
    assert params["alpha"].type is float and params["label"].type is str
    assert params["fail"].type is bool
    assert inspect_parameters(NO_PARAMS) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 2}, r"unknown parameter 'epochs'; known parameters: n, alpha, label"),
        (
            {"n": "four"},
            r"parameter 'n'='four' is a str, but the notebook expects int \(default 3\)",
        ),
        ({"n": 2.5}, r"expects int"),
        ({"fail": 1}, r"expects bool"),
        ({"alpha": True}, r"expects float"),
        ({"results_path": "x.json"}, r"set by the report runner"),
    ],
)
def test_bad_parameters_fail_before_running(tmp_path: Path, params: dict, message: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message) as info:
        run_notebook(SIMPLE, params, out)
    assert str(SIMPLE) in str(info.value)  # names the file
    assert not out.exists()  # nothing ran, nothing was written


def test_int_is_accepted_for_float_parameter() -> None:
    validate_parameters(SIMPLE, {"alpha": 2, "label": "x", "fail": False})


def test_parameters_for_notebook_without_parameters_cell(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no cell tagged 'parameters'"):
        run_notebook(NO_PARAMS, {"x": 1}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_notebook_and_unsafe_run_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        run_notebook(tmp_path / "nope.ipynb", {}, tmp_path / "out")
    with pytest.raises(ConfigError, match="safe file name"):
        run_notebook(SIMPLE, {}, tmp_path / "out", run_id="../escape")
    assert not (tmp_path / "out").exists()


def test_make_run_id_is_readable_hashed_and_bounded() -> None:
    rid = make_run_id("nb/01_train.ipynb", {"fusion": "late", "seed": 0})
    assert re.fullmatch(r"01_train__fusion-late__seed-0__[0-9a-f]{8}", rid)
    assert make_run_id("x.ipynb", {"d": "synthetic:interaction"}).startswith(
        "x__d-synthetic-interaction__"
    )
    # the hash covers every parameter, also those not spelled out, and the notebook name
    shown = make_run_id("x.ipynb", {"a": 1, "b": 2}, shown=["a"])
    assert shown.startswith("x__a-1__") and shown != make_run_id("x.ipynb", {"a": 1, "b": 3}, shown=["a"])
    assert make_run_id("x.ipynb", {"a": 1}) != make_run_id("y/x.ipynb", {"a": 2})
    assert make_run_id("x.ipynb", {"a": 1, "b": 2}) == make_run_id("x.ipynb", {"b": 2, "a": 1})
    long = make_run_id("x.ipynb", {"label": "y" * 300})
    assert len(long) <= 120 and long != make_run_id("x.ipynb", {"label": "y" * 301})


def test_parse_value_like_yaml() -> None:
    assert parse_value("2") == 2 and parse_value("1e-3") == 0.001 and parse_value("0.5") == 0.5
    assert parse_value("[1, 2]") == [1, 2] and parse_value("true") is True
    assert parse_value("null") is None and parse_value("easy-vqa") == "easy-vqa"
    assert parse_value("no", str) == "no" and parse_value("2", str) == "2"


# ---------------------------------------------------------------------------------- a run


def test_run_writes_three_files_with_provenance(simple_run: RunRecord) -> None:
    rec = simple_run
    assert rec.ok and not rec.skipped
    assert rec.run_id == make_run_id(SIMPLE, {"n": 4, "label": "first"})
    assert rec.run_id.startswith("simple__label-first__n-4__")
    assert rec.run_dir.name == rec.run_id
    assert sorted(p.name for p in rec.run_dir.iterdir()) == [
        f"{rec.run_id}.html",
        f"{rec.run_id}.ipynb",
        f"{rec.run_id}.json",
    ]
    assert not [p for p in rec.run_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs
    env = load_results(rec.run_dir)
    assert (
        env["schema_version"] == SCHEMA_VERSION and env["status"] == "ok" and env["error"] is None
    )
    assert env["notebook"] == str(SIMPLE) and env["parameters"] == {"n": 4, "label": "first"}
    assert env["results"]["accuracy"] == pytest.approx(1 - 0.5 / 5)
    assert env["results"]["ys"] == [0.0, 0.5, 2.0, 4.5]
    prov = env["provenance"]
    assert prov["seed"] == 0 and prov["device"] == "cpu"  # from the notebook's defaults
    assert prov["parameters"] == {
        "n": 4,
        "alpha": 0.5,
        "label": "first",
        "seed": 0,
        "device": "cpu",
        "fail": False,
        "renderer": "notebook",
    }
    assert prov["defaults_used"] == ["alpha", "device", "fail", "renderer", "seed"]
    assert prov["data_fingerprint"] == "fp-4"
    assert prov["git_commit"] == "unknown" or len(prov["git_commit"]) == 40
    assert prov["packages"]["papermill"] and prov["packages"]["plotly"]
    assert prov["python"] == ".".join(map(str, sys.version_info[:3]))
    assert prov["started"] < prov["finished"] and prov["seconds"] > 0
    assert all(v != os.uname().nodename for v in map(str, prov.values()))  # no host name
    # The executed notebook has the injected parameters and the provenance in its metadata.
    nb = json.loads(rec.ipynb_path.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "n = 4" in "".join(injected[0]["source"])
    assert nb["metadata"]["mmexplain"]["params_hash"] == rec.params_hash


def test_html_hides_code_is_offline_and_shows_provenance(simple_run: RunRecord) -> None:
    page = simple_run.html_path.read_text()
    for code in (
        "import plotly.graph_objects",
        "pio.renderers.default",
        "record(results_path",
        "n = 4",
    ):
        assert code not in page
    assert external_resources(page) == []
    assert "cdnjs" not in page and "require.min.js" not in page and "unpkg.com" not in page
    # plotly.js is not in the page: loaded once, from the file beside the run folders
    assert "plotly.js v" not in page and page.count(f'src="../{plotlyjs_name()}"') == 1
    assert (simple_run.run_dir.parent / plotlyjs_name()).is_file()
    assert page.count('class="plotly-graph-div"') == 1
    assert "Report provenance" in page and "Parameter label" in page and "fp-4" in page
    assert "Defaults used" in page and "alpha=0.5" in page
    assert simple_run.provenance["git_commit"] in page


def test_complete_run_is_skipped_unless_forced(simple_run: RunRecord) -> None:
    out = simple_run.run_dir.parent
    again = run_notebook(SIMPLE, {"n": 4, "label": "first"}, out)
    assert again.skipped and again.ok and again.results == simple_run.results
    assert again.provenance["finished"] == simple_run.provenance["finished"]
    forced = run_notebook(SIMPLE, {"label": "first", "n": 4}, out, force=True)
    assert not forced.skipped and forced.provenance["finished"] > simple_run.provenance["finished"]


def test_switching_self_contained_rerenders_the_page_without_running_again(tmp_path: Path) -> None:
    first = run_notebook(SIMPLE, {"n": 2}, tmp_path, progress=False)
    assert page_plotlyjs(first.html_path.read_text()) == "shared"
    alone = run_notebook(SIMPLE, {"n": 2}, tmp_path, progress=False, self_contained=True)
    page = alone.html_path.read_text()
    assert alone.skipped and alone.provenance["finished"] == first.provenance["finished"]
    assert page_plotlyjs(page) == "inline" and page.count("* plotly.js v") == 1
    assert "Report provenance" in page and 'class="plotly-graph-div"' in page
    back = run_notebook(SIMPLE, {"n": 2}, tmp_path, progress=False)
    assert back.skipped and page_plotlyjs(back.html_path.read_text()) == "shared"


def test_failed_run_writes_partial_report_and_raises(tmp_path: Path) -> None:
    with pytest.raises(NotebookExecutionError, match="ValueError: boom x=7") as info:
        run_notebook(RAISES, {"x": 7}, tmp_path)
    err = info.value
    assert err.ename == "ValueError" and err.evalue == "boom x=7" and err.cell_index == 3
    assert Path(err.output_path).is_file()
    run_dir = Path(err.output_path).parent
    env = load_results(run_dir)
    assert env["status"] == "failed"
    assert env["error"]["ename"] == "ValueError" and env["error"]["cell_index"] == 3
    assert "boom x=7" in env["error"]["traceback"]
    assert env["results"] == {"before_error": 7}  # recorded before the failing cell
    page = (run_dir / f"{run_dir.name}.html").read_text()
    assert "boom x=7" in page and "failed" in page and 'raise ValueError(f"boom' not in page
    nb = json.loads(Path(err.output_path).read_text())
    assert not any(
        "never runs" in "".join(o.get("text", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )

    # raise_on_error=False returns the record; a failed run is never "complete".
    rec = run_notebook(RAISES, {"x": 7}, tmp_path, raise_on_error=False)
    assert rec.status == "failed" and not rec.skipped and rec.error["evalue"] == "boom x=7"


def test_export_failure_keeps_previous_report(
    simple_run: RunRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = simple_run.run_dir.parent
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in simple_run.run_dir.iterdir()}

    def broken_export(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk full while exporting")

    monkeypatch.setattr(report_html, "notebook_to_html", broken_export)
    with pytest.raises(ReportError, match="disk full while exporting.*unchanged"):
        run_notebook(SIMPLE, {"n": 4, "label": "first"}, out, force=True)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in simple_run.run_dir.iterdir()}
    assert after == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # temp folder cleaned up


def test_notebook_without_parameters_runs_on_this_interpreter(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    rec = run_notebook(NO_PARAMS, None, tmp_path / "out", cwd=workdir)
    assert rec.ok and rec.results == {} and rec.run_id == make_run_id(NO_PARAMS, {})
    nb = json.loads(rec.ipynb_path.read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    *_, kernel_cwd, kernel_python = printed.strip().splitlines()
    # kernel "python3" runs on the interpreter running the tests (the venv), in ``cwd``
    assert Path(kernel_python).resolve() == Path(sys.executable).resolve()
    assert Path(kernel_cwd).resolve() == workdir.resolve()
    assert Path.cwd() != workdir  # the test process itself did not move


# ----------------------------------------------------------------------------------- CLIs


def test_plain_papermill_cli_runs_a_fixture(tmp_path: Path) -> None:
    papermill = Path(sys.executable).with_name("papermill")
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [
            str(papermill),
            str(SIMPLE),
            str(out),
            "-p",
            "n",
            "2",
            "-p",
            "renderer",
            "plotly_mimetype",
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)


def test_report_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert cli_main([str(SIMPLE), "-p", "n", "two", "--out", out]) == 2
    assert "expects int" in capsys.readouterr().err and not Path(out).exists()
    assert cli_main([str(NO_PARAMS), "--device", "cuda", "--out", out]) == 2
    assert cli_main(["--out", out]) == 2
    assert cli_main(["report", str(RAISES), "--out", out]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert cli_main([str(NO_PARAMS), "--out", out]) == 0
    assert (Path(out) / "index.html").is_file()
    index = json.loads((Path(out) / "index.json").read_text())
    assert {r["run_id"].split("__")[0]: r["status"] for r in index["runs"]} == {
        "raises": "failed",
        "no_params": "ok",
    }


def test_result_values_are_finite_json(simple_run: RunRecord) -> None:
    text = simple_run.json_path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert not math.isnan(simple_run.results["accuracy"])
