"""YAML grids, batches in parallel, the index, and re-running only what failed."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import nbformat
import pytest

from mmexplain.exceptions import ConfigError
from mmexplain.report import RunSpec, run_batch
from mmexplain.report.cli import main as cli_main
from mmexplain.report.grid import expand_grid, load_grid

NB = Path(__file__).parent / "fixtures" / "notebooks"
SIMPLE = NB / "simple.ipynb"
XSS = "<script>window.__xss=1</script>"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- grid files


def test_grid_expands_cartesian_product_times_notebooks(tmp_path: Path) -> None:
    grid = write(
        tmp_path / "g.yaml",
        f"""
notebooks: [{SIMPLE}, {NB / "xss.ipynb"}]
parameters: {{alpha: 2}}
grid: {{dataset: [easy-vqa, "synthetic:interaction"], fusion: [late, concat], seed: [0, 1]}}
""",
    )
    config = load_grid(grid)
    specs = expand_grid(config)
    assert len(specs) == 2 * 2 * 2 * 2
    ids = [s.planned_run_id for s in specs]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", i) for i in ids)
    names = [i.rsplit("__", 1)[0] for i in ids]  # readable part: the grid axes
    assert names[0] == "simple__dataset-easy-vqa__fusion-late__seed-0"
    assert "simple__dataset-synthetic-interaction__fusion-concat__seed-1" in names
    assert specs[0].parameters == {"alpha": 2, "dataset": "easy-vqa", "fusion": "late", "seed": 0}


def test_grid_single_notebook_scalar_values_and_overrides(tmp_path: Path) -> None:
    grid = write(tmp_path / "g.yaml", "notebooks: simple.ipynb\ngrid: {n: 2, label: [a, b]}\n")
    specs = expand_grid(load_grid(grid), base_dir=NB)
    names = [s.planned_run_id.rsplit("__", 1)[0] for s in specs]
    assert names == ["simple__n-2__label-a", "simple__n-2__label-b"]
    assert Path(specs[0].notebook) == NB / "simple.ipynb"
    # An override fixes an axis: it is no longer varied nor part of the id.
    specs = expand_grid(load_grid(grid), base_dir=NB, overrides={"label": "c"})
    assert [(s.planned_run_id.rsplit("__", 1)[0], s.parameters["label"]) for s in specs] == [
        ("simple__n-2", "c")
    ]


def test_grid_notebook_entries_carry_their_own_parameters(tmp_path: Path) -> None:
    grid = write(
        tmp_path / "g.yaml",
        f"""
notebooks:
  - {SIMPLE}
  - path: {NB / "xss.ipynb"}
    parameters: {{alpha: 5, only_here: [1, 2]}}
parameters: {{alpha: 2}}
grid: {{seed: [0]}}
""",
    )
    specs = expand_grid(load_grid(grid), overrides={"beta": 1})
    assert specs[0].parameters == {"alpha": 2, "seed": 0, "beta": 1}
    assert specs[1].parameters == {"alpha": 5, "only_here": [1, 2], "seed": 0, "beta": 1}
    bad = write(tmp_path / "b.yaml", f"notebooks: [{{path: {SIMPLE}, params: {{}}}}]\n")
    with pytest.raises(ConfigError, match=r"b.yaml: .*params"):
        load_grid(bad)


def test_grid_colliding_slugs_get_distinct_ids(tmp_path: Path) -> None:
    grid = write(
        tmp_path / "g.yaml", f"notebooks: [{SIMPLE}]\ngrid: {{label: ['a:b', 'a b', a-b]}}\n"
    )
    ids = [s.planned_run_id for s in expand_grid(load_grid(grid))]
    assert len(set(ids)) == 3 and all(i.startswith("simple__label-a-b__") for i in ids)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "notebooks: [a.ipynb]\ngird: {x: [1]}\n",
            r"g\.yaml: unknown key 'gird' \(allowed: notebooks, parameters, grid\)",
        ),
        ("notebooks: [a.ipynb]\ngrid: {x: []}\n", r"g\.yaml: grid.*grid\.x has no values"),
        ("grid: {x: [1]}\n", r"g\.yaml: notebooks: Field required"),
        (
            "notebooks: [a.ipynb]\nparameters: {x: 1}\ngrid: {x: [1, 2]}\n",
            r"\['x'\] appear in both",
        ),
        ("notebooks: [a.ipynb\n", r"g\.yaml is not valid YAML"),
        ("- a\n- b\n", r"must be a mapping"),
    ],
)
def test_bad_grid_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_grid(write(tmp_path / "g.yaml", text))


def test_grid_with_bad_parameter_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = write(
        tmp_path / "g.yaml", f"notebooks: [{SIMPLE}]\ngrid: {{n: [1, two], epochs: [1]}}\n"
    )
    out = tmp_path / "out"
    assert cli_main(["--grid", str(grid), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'epochs'" in err and "'n'='two'" in err and "nothing was run" in err
    assert not out.exists()
    with pytest.raises(ConfigError, match="used twice"):
        run_batch([RunSpec(SIMPLE, {}, "same"), RunSpec(SIMPLE, {"n": 1}, "same")], out)
    assert not out.exists()


# ------------------------------------------------------------------------------- batches


@pytest.mark.slow
def test_batch_in_parallel_one_failure_then_rerun_only_it(tmp_path: Path) -> None:
    grid = write(
        tmp_path / "grid.yaml",
        f"""
notebooks: {SIMPLE}
parameters: {{alpha: 0.25}}
grid:
  n: [1, 2]
  label: [plain, "{XSS} \\"q\\" 'q'"]
""",
    )
    out = tmp_path / "reports"
    specs = expand_grid(load_grid(grid))
    assert len(specs) == 4
    # the same run folder as specs[2], made to fail (a failed run never blocks its folder)
    broken = dataclasses.replace(
        specs[2],
        parameters={**specs[2].parameters, "fail": True},
        run_id=specs[2].planned_run_id,
    )
    records = run_batch([*specs[:2], broken, *specs[3:]], out, jobs=2)

    assert [r.run_id for r in records] == [s.planned_run_id for s in specs]
    assert [r.status for r in records].count("ok") == 3
    failed = records[2]
    assert failed.status == "failed" and failed.error["ename"] == "RuntimeError"
    assert "asked to fail" in failed.error["evalue"] and failed.ipynb_path.is_file()

    index_html = (out / "index.html").read_text()
    index = json.loads((out / "index.json").read_text())
    rows = {r["run_id"]: r for r in index["runs"]}
    assert len(rows) == 4 and rows[failed.run_id]["status"] == "failed"
    assert rows[failed.run_id]["files"]["ipynb"] == f"{failed.run_id}/{failed.run_id}.ipynb"
    assert rows[specs[0].planned_run_id]["key_results"]["accuracy"] == records[0].results["accuracy"]
    assert "RuntimeError: asked to fail" in index_html and "partial notebook" in index_html
    assert f'href="{failed.run_id}/{failed.run_id}.ipynb"' in index_html
    assert (
        "<script" not in index_html and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in index_html
    )
    assert "4 runs: 3 ok, 1 failed." in index_html

    # Fixed: re-running the grid executes only the failed run.
    finished = {r.run_id: r.provenance["finished"] for r in records if r.ok}
    assert cli_main(["--grid", str(grid), "--out", str(out), "--jobs", "2"]) == 0
    rerun = {r["run_id"]: r for r in json.loads((out / "index.json").read_text())["runs"]}
    assert all(r["status"] == "ok" for r in rerun.values())
    assert {k: rerun[k]["finished"] for k in finished} == finished  # untouched
    assert rerun[failed.run_id]["finished"] > max(finished.values())
    again = run_batch(specs, out, jobs=2)
    assert all(r.skipped and r.ok for r in again)

    # The index renders in a browser: nothing executes, the payload shows as text.
    from browser import open_report

    page = open_report(out / "index.html")
    assert not page.xss and page.dialogs == [] and page.console_errors == []
    assert XSS in page.text and "4 runs: 4 ok, 0 failed." in page.text


def test_default_report_grid_is_valid_for_every_notebook() -> None:
    from mmexplain.report import validate_parameters

    root = Path(__file__).resolve().parents[1]
    specs = expand_grid(load_grid(root / "notebooks" / "default_report.yaml"), base_dir=root)
    # every notebook is in it, but those whose metadata say why not (00 needs a live kernel,
    # 06 reads an audit file)
    notebooks = {p.name: nbformat.read(p, as_version=4).metadata for p in (root / "notebooks").glob("*.ipynb")}
    outside = {name for name, meta in notebooks.items()
               if meta.get("mmexplain_notebook", {}).get("in_default_report") is False}
    assert outside == {"00_explore.ipynb", "06_audit_summary.ipynb"}
    assert all(notebooks[name]["mmexplain_notebook"]["reason"] for name in outside)
    assert sorted(Path(s.notebook).name for s in specs) == sorted(set(notebooks) - outside)
    for spec in specs:
        validate_parameters(root / spec.notebook, spec.parameters)  # raises on unknown / mistyped
    compare = next(s for s in specs if Path(s.notebook).stem == "03_fusion_levels")
    # within the budget notebook 03 "compares" the report's own model: the same parameters,
    # so load_or_train reuses it instead of training another
    assert compare.parameters["fusions"] == [compare.parameters["fusion"]]
    assert not compare.parameters.get("compare_epochs") and not compare.parameters.get("compare_limit")
