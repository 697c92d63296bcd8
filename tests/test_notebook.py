"""``mmexplain.notebook.setup``: the one call behind every notebook's setup cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmexplain.exceptions import ConfigError
from mmexplain.notebook import model_header, run_arguments, setup
from mmexplain.paths import PROJECT_MARKER

TINY = {"dataset": "synthetic:additive", "fusion": "concat", "epochs": 1, "seed": 0, "limit": 120,
        "text_encoder": "", "dataset_options": {}, "device": "cpu"}


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root; the test runs in its notebooks/ folder, as JupyterLab would."""
    (tmp_path / PROJECT_MARKER).parent.mkdir(parents=True)
    (tmp_path / PROJECT_MARKER).write_text("notebooks: []\n")
    monkeypatch.chdir(tmp_path / "notebooks")
    return tmp_path


def test_setup_trains_records_and_shows_the_model_header(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = {**TINY, "model_cache": "reports/models", "results_path": str(project / "r.json"),
                 "unrelated": object()}
    run = setup(namespace)
    # the relative cache is the project root's, not notebooks/reports/models
    assert run.directory is not None and run.directory.parent == project / "reports" / "models"
    assert not (project / "notebooks" / "reports").exists()
    recorded = json.loads((project / "r.json").read_text())
    assert recorded["data_fingerprint"] == run.data_fingerprint
    assert recorded["checkpoint_hash"] == run.checkpoint_sha256
    assert recorded["dataset"] == "synthetic:additive" and recorded["fusion"] == "concat"
    shown = capsys.readouterr().out  # display() outside IPython prints the bundle
    for text in ("Fusion", "concat", "Text encoder", "gru", "synthetic:additive", "Test accuracy",
                 "Training schedule", "constant, lr 0.0005, epochs 1, batch size 64",
                 run.data_fingerprint):
        assert text in shown, text
    # a second notebook with the same parameters opens the same model
    assert setup(namespace).checkpoint_sha256 == run.checkpoint_sha256


def test_setup_passes_schedule_lr_and_batch_size_when_the_parameters_cell_has_them(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = setup({**TINY, "model_cache": "m", "schedule": "cosine", "lr": 1e-3, "batch_size": 32})
    assert (run.params["schedule"], run.params["lr"], run.params["batch_size"]) == ("cosine", 1e-3, 32)
    assert run.metrics["schedule"]["name"] == "cosine"
    assert "cosine, lr 0.001" in capsys.readouterr().out
    # keywords win over the namespace; empty values mean the default
    args = run_arguments({**TINY, "model_cache": "m", "schedule": ""}, epochs=3, limit=0)
    assert args["epochs"] == 3 and "limit" not in args and "schedule" not in args
    assert "text_encoder" not in args and args["results_path"] == ""


def test_model_header_of_a_run_without_a_recorded_schedule(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = setup(model_cache="m", **{**TINY, "dataset": "synthetic:additive"})
    capsys.readouterr()
    del run.metrics["schedule"]  # runs trained before schedules were recorded
    run.metrics["test"] = {"r2": 0.5}
    header = model_header(run, dataset="<b>mine</b>.csv")
    assert "not recorded" in header["text/plain"] and "Test R²: 0.500" in header["text/plain"]
    assert "&lt;b&gt;mine&lt;/b&gt;.csv" in header["text/html"] and "<b>mine" not in header["text/html"]


@pytest.mark.parametrize(
    ("namespace", "keywords", "message"),
    [
        ({**TINY}, {}, "model_cache is missing"),
        ([1, 2], {}, "namespace must be a mapping"),
        (TINY, {"model_cache": "m", "epoch": 2}, "unknown parameter 'epoch'"),
        ({**TINY, "model_cache": "m", "schedule": "warp"}, {}, "schedule='warp'"),
    ],
)
def test_bad_parameters_are_named(project: Path, namespace, keywords, message) -> None:
    with pytest.raises(ConfigError, match=message):
        setup(namespace, **keywords)
    assert not (project / "m").exists() or not any((project / "m").iterdir())


def test_setup_seeds_torch(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup({**TINY, "model_cache": "m", "seed": 5})  # trains: the calls below only load
    setup({**TINY, "model_cache": "m", "seed": 5})
    a = torch.rand(3)
    setup({**TINY, "model_cache": "m", "seed": 5})
    assert torch.equal(a, torch.rand(3))
