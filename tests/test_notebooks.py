"""Every notebook runs through papermill with small parameters; its HTML report renders in
headless Chromium with no console error, every plotly figure drawn, hostile text escaped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from _page_checks import page_noise
from browser import open_report
from PIL import Image

from mmexplain.report import RunSpec, run_batch
from mmexplain.report.plotlyjs import page_plotlyjs, plotlyjs_name

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
XSS = "is there a <script>window.__xss=1</script> \"red\" & 'blue' shape?"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    # the GRU text encoder keeps this quick; MiniLM (the notebooks' default) runs through every
    # notebook in tests/test_user_data_e2e.py and the default report
    common = {"dataset": "easy-vqa", "fusion": "concat", "text_encoder": "gru", "epochs": 1, "limit": 400,
              "seed": 0, "model_cache": str(out / "models")}
    runs = [
        RunSpec(str(NB / "01_train_evaluate.ipynb"), dict(common)),
        RunSpec(str(NB / "02_modality_attribution.ipynb"),
                {**common, "n_samples": 3, "n_shapley": 32, "show": 1, "methods": ["ig", "saliency", "occlusion"]}),
        RunSpec(str(NB / "03_fusion_levels.ipynb"), {**common, "fusions": ["late", "concat"], "n_samples": 4}),
        RunSpec(str(NB / "04_decision_audit.ipynb"),
                {**common, "n_errors": 1, "n_random": 1, "methods": ["ig", "saliency"], "sanity_samples": 2}),
        RunSpec(str(NB / "05_explanation_quality.ipynb"),
                {**common, "n_samples": 4, "n_robust": 32, "methods": ["ig", "saliency"], "sanity_methods": ["saliency"]}),
    ]
    records = run_batch(runs, out, jobs=2, cwd=ROOT)
    return out, {Path(r.notebook).stem: r for r in records}


@pytest.mark.parametrize("name", ["01_train_evaluate", "02_modality_attribution", "03_fusion_levels",
                                  "04_decision_audit", "05_explanation_quality"])
def test_notebook_runs_and_renders(executed, name):
    out, records = executed
    rec = records[name]
    assert rec.ok, rec.error
    results = json.loads(Path(rec.json_path).read_text())
    assert results["status"] == "ok" and results["schema_version"] == 1
    assert results["results"]["data_fingerprint"] and results["results"]["checkpoint_hash"]
    page = open_report(rec.html_path)
    assert page.console_errors == []
    assert page.figures >= 1 and page.rendered == page.figures
    assert not page.xss and not page.dialogs
    assert "load_or_train(" not in page.text  # code cells are hidden


@pytest.mark.parametrize("name", ["01_train_evaluate", "02_modality_attribution", "03_fusion_levels",
                                  "04_decision_audit", "05_explanation_quality"])
def test_report_pages_read_cleanly(executed, name):
    """No stderr, warning or printed dict in a page; the model header comes before any result;
    plotly.js is the report folder's one shared file."""
    out, records = executed
    document = Path(records[name].html_path).read_text()
    assert page_noise(document) == []
    header = document.index('class="mmx-model"')  # after the provenance table, which has a fingerprint too
    for text in ("Text encoder", "Test accuracy", "Training schedule", "Data fingerprint"):
        assert document.find(text, header) > header, text
    later = [document.find(t, header) for t in ('class="dataframe', 'class="plotly-graph-div"')]
    assert header < min(i for i in later if i >= 0) and document.find('class="dataframe') > header
    assert page_plotlyjs(document) == "shared" and (out / plotlyjs_name()).is_file()


def test_key_results_are_recorded(executed):
    _, records = executed
    r = {k: json.loads(Path(v.json_path).read_text())["results"] for k, v in records.items()}
    assert 0.0 <= r["01_train_evaluate"]["accuracy"] <= 1.0
    assert set(r["02_modality_attribution"]["method_shares"]) == {"ig", "saliency", "occlusion"}
    assert 0.0 <= r["02_modality_attribution"]["interaction_share"] <= 1.0
    assert set(r["03_fusion_levels"]["fusion_accuracy"]) == {"late", "concat"}
    assert {row["metric"] for row in r["05_explanation_quality"]["localisation"]} >= {"mass_in_mask", "evidence_rank"}
    assert r["05_explanation_quality"]["sanity"][0]["method"] == "saliency"
    # every notebook of the run used the same trained model
    assert len({v["checkpoint_hash"] for v in r.values()}) == 1


def test_hostile_question_is_displayed_escaped(tmp_path):
    rows = []
    for i in range(12):
        arr = np.full((64, 64, 3), 240, dtype=np.uint8)
        arr[20:40, 20:40] = (200, 30, 30) if i % 2 else (30, 30, 200)
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "text": XSS if i == 11 else "what color is the shape?",
                     "label": "red" if i % 2 else "blue", "split": "test" if i >= 9 else ("val" if i == 8 else "train")})
    pd.DataFrame(rows).to_csv(tmp_path / "hostile.csv", index=False)
    out = tmp_path / "reports"
    rec = run_batch([RunSpec(str(NB / "04_decision_audit.ipynb"), {
        "dataset": str(tmp_path / "hostile.csv"), "fusion": "concat", "epochs": 1, "seed": 0,
        "model_cache": str(out / "models"), "sample_ids": [2], "methods": ["saliency"], "sanity_samples": 0,
    })], out, cwd=ROOT)[0]
    assert rec.ok, rec.error
    page = open_report(rec.html_path)
    assert not page.xss and not page.dialogs and page.console_errors == []
    assert "<script>window.__xss=1</script>" in page.text  # shown as text, not run


def test_plain_papermill_cli_runs_a_notebook(tmp_path):
    out, results = tmp_path / "out.ipynb", tmp_path / "results.json"
    cmd = [sys.executable, "-m", "papermill", str(NB / "02_modality_attribution.ipynb"), str(out),
           "-p", "dataset", "synthetic:additive", "-p", "epochs", "1", "-p", "limit", "200",
           "-p", "n_samples", "2", "-p", "n_shapley", "16", "-p", "show", "1",
           "-y", "methods: [ig, saliency]", "-p", "model_cache", str(tmp_path / "models"),
           "-p", "results_path", str(results)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    assert set(json.loads(results.read_text())["method_shares"]) == {"ig", "saliency"}


def test_notebook_defaults_and_the_default_report_name_the_default_run():
    """Papermill needs literals in parameters cells: they repeat DEFAULT_RUN, and must agree."""
    import ast

    import papermill
    import yaml

    from mmexplain.training import DEFAULT_RUN

    for path in sorted(NB.glob("0*.ipynb")):
        meta = nbformat.read(path, as_version=4).metadata.get("mmexplain_notebook", {})
        if meta.get("in_default_report") is False:  # e.g. 06 reads an audit: no model parameters
            continue
        params = papermill.inspect_notebook(str(path))
        got = {k: ast.literal_eval(params[k]["default"]) for k in DEFAULT_RUN if k in params}
        assert got == DEFAULT_RUN, path.name
    grid = yaml.safe_load((NB / "default_report.yaml").read_text())
    named = {**grid["parameters"], **{k: v[0] for k, v in grid["grid"].items() if len(v) == 1}}
    assert {k: named[k] for k in DEFAULT_RUN} == DEFAULT_RUN
