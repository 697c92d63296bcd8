"""A user's own data end to end: a manifest with image, free-text and numeric columns goes
through ``mmexplain train``, every notebook and ``mmexplain report`` with its column mapping
given on the command line; every modality is used and explained, and the HTML keeps the
users' text inert in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from browser import open_report
from fixtures.user_dataset import write_user_dataset

from mmexplain.cli import main

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
COLUMNS = {"image": "path", "text": "question", "tabular": ["age", "bmi"], "target": "label"}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    manifest = write_user_dataset(root / "data", n=96)
    assert main(["train", "--dataset", str(manifest), "--columns", json.dumps(COLUMNS), "--epochs", "4",
                 "--quiet", "--out", str(root / "run")]) == 0
    small = {"n_samples": 4}
    grid = {
        "notebooks": [
            str(NB / "01_train_evaluate.ipynb"),
            {"path": str(NB / "02_modality_attribution.ipynb"),
             "parameters": {**small, "n_shapley": 16, "show": 1, "methods": ["ig", "saliency"]}},
            {"path": str(NB / "03_fusion_levels.ipynb"), "parameters": {**small, "fusions": ["concat"]}},
            {"path": str(NB / "04_decision_audit.ipynb"),
             "parameters": {"n_errors": 1, "n_random": 1, "methods": ["ig", "saliency"], "sanity_samples": 2}},
            {"path": str(NB / "05_explanation_quality.ipynb"),
             "parameters": {**small, "n_robust": 8, "methods": ["ig", "saliency"], "sanity_methods": ["saliency"]}},
        ],
        "parameters": {"epochs": 4, "seed": 0, "model_cache": str(root / "models")},
    }
    (root / "grid.yaml").write_text(yaml.safe_dump(grid))
    rc = main(["report", "--grid", str(root / "grid.yaml"), "--out", str(root / "reports"), "--jobs", "2",
               "-p", "dataset", str(manifest), "-p", "dataset_options", json.dumps({"columns": COLUMNS})])
    runs = {}
    for path in (root / "reports").glob("*/*.json"):
        envelope = json.loads(path.read_text())
        runs[Path(envelope["notebook"]).stem] = (envelope, path.with_suffix(".html"))
    return root, rc, runs


def test_train_from_the_command_line_uses_every_modality(reported):
    root, _, _ = reported
    config = json.loads((root / "run" / "config.json").read_text())
    assert json.loads(config["params"]["dataset_options"]["columns"]) == COLUMNS
    names = [m["name"] for m in config["model"]["modalities"]]
    assert len(names) == 3, names


def test_every_notebook_runs_on_the_users_data(reported):
    _, rc, runs = reported
    assert set(runs) == {"01_train_evaluate", "02_modality_attribution", "03_fusion_levels",
                         "04_decision_audit", "05_explanation_quality"}
    for name, (envelope, _) in runs.items():
        assert envelope["status"] == "ok", (name, envelope.get("error"))
    assert rc == 0


def test_each_modality_has_a_shapley_share_and_the_provenance_lists_cut_texts(reported):
    _, _, runs = reported
    results = runs["02_modality_attribution"][0]["results"]
    shares = results["shapley_mean_shares"]
    assert len(shares) == 3 and all(v > 0 for v in shares.values()), shares
    data = runs["01_train_evaluate"][0]["provenance"]["data_provenance"]
    assert data["options"]["columns"]["text"] == "question"
    assert 6 in data["truncated_rows"]["rows"]  # the 120 kB text (row 6 of the file)


@pytest.mark.parametrize("name", ["02_modality_attribution", "04_decision_audit"])
def test_users_text_is_shown_escaped_and_inert(reported, name):
    _, _, runs = reported
    page = open_report(runs[name][1])
    assert not page.xss and page.dialogs == [] and page.console_errors == []
    assert page.figures >= 1 and page.rendered == page.figures
    assert "Texts cut to" in open_report(runs["01_train_evaluate"][1]).text
