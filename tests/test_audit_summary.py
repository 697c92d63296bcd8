"""Reading an audit: hand-made rows with known answers, and notebook 06 on a real tiny audit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmexplain.auditing import (
    Audit,
    audit_run,
    card_anchor,
    flagged_decisions,
    interaction_decisions,
    one_sided_errors,
    read_audit,
    reliance_by_class,
)
from mmexplain.exceptions import ConfigError
from mmexplain.report import RunSpec, run_batch
from mmexplain.training import train_run

ROOT = Path(__file__).resolve().parents[1]


def _audit() -> Audit:
    """Six decisions, two modalities, answers worked out by hand."""
    rows = pd.DataFrame({
        "index": [0, 1, 2, 3, 4, 5],
        "true_name": ["red", "red", "blue", "blue", "blue", "red"],
        "predicted_name": ["red", "blue", "blue", "red", "red", "red"],
        "correct": [True, False, True, False, False, True],
        "probability": [0.9, 0.8, 0.7, 0.6, 0.95, 0.5],
        "shapley_share__image": [0.5, 0.9, 0.2, 0.85, 0.95, np.nan],
        "shapley_share__text": [0.5, 0.1, 0.8, 0.15, 0.05, np.nan],
        "interaction_share": [0.1, 0.4, 0.0, 0.4, 0.2, np.nan],
        "n_trust_flags": [0, 2, 1, 2, 0, 2],
        "trust_flags": [[], ["a", "b"], ["c"], ["a", "d"], [], ["e", "f"]],
    })
    return Audit(rows=rows, modalities=["image", "text"], methods=["ig"],
                 metadata={"provenance": {"checkpoint_sha256": "x"}})


def test_reliance_by_class() -> None:
    by_pred = reliance_by_class(_audit())
    assert by_pred["predicted_class"].tolist() == ["blue", "red"]
    assert by_pred["n"].tolist() == [2, 4]
    assert by_pred["accuracy"].tolist() == [0.5, 0.5]
    # blue: decisions 1, 2; red: 0, 3, 4 (5's share is undefined and left out of the mean)
    np.testing.assert_allclose(by_pred["shapley_share__image"], [(0.9 + 0.2) / 2, (0.5 + 0.85 + 0.95) / 3])
    np.testing.assert_allclose(by_pred["shapley_share__image"] + by_pred["shapley_share__text"], 1.0)
    by_true = reliance_by_class(_audit(), by="true")
    assert by_true["true_class"].tolist() == ["blue", "red"] and by_true["n"].tolist() == [3, 3]
    with pytest.raises(ConfigError, match="by='class' is not allowed"):
        reliance_by_class(_audit(), by="class")


def test_one_sided_errors() -> None:
    slices = one_sided_errors(_audit(), threshold=0.8)
    # wrong: 1 (red->blue, image 0.9), 3 (blue->red, image 0.85), 4 (blue->red, image 0.95)
    assert slices[["true_name", "predicted_name", "leans_on", "n"]].values.tolist() == [
        ["blue", "red", "image", 2], ["red", "blue", "image", 1]]
    assert slices["indices"].tolist() == [[3, 4], [1]]
    np.testing.assert_allclose(slices["share_of_errors"], [2 / 3, 1 / 3])
    np.testing.assert_allclose(slices["mean_share"], [0.9, 0.9])
    assert one_sided_errors(_audit(), threshold=0.92)["indices"].tolist() == [[4]]
    assert one_sided_errors(_audit(), threshold=1.0).empty
    with pytest.raises(ConfigError, match=r"threshold must be in \[0.5, 1.0\]"):
        one_sided_errors(_audit(), threshold=0.3)


def test_decisions_to_look_at_first() -> None:
    top = interaction_decisions(_audit(), n=3)
    assert top["index"].tolist() == [1, 3, 4]  # 0.4, 0.4 (lower index first), 0.2; NaN last
    assert top["anchor"].tolist() == ["decision-1", "decision-3", "decision-4"]
    assert interaction_decisions(_audit(), n=10)["index"].tolist()[-1] == 5
    flagged = flagged_decisions(_audit(), n=10)
    # two flags: wrong first (1 at 0.8, 3 at 0.6), then correct 5; then one flag; never unflagged
    assert flagged["index"].tolist() == [1, 3, 5, 2]
    assert flagged["trust_flags"].tolist()[0] == ["a", "b"]
    assert card_anchor(np.int64(7)) == "decision-7"
    with pytest.raises(ConfigError, match="n must be an integer >= 1; got 0"):
        flagged_decisions(_audit(), n=0)


@pytest.fixture(scope="module")
def tiny_audit(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("summary")
        run_dir = folder / "run"
        train_run("synthetic:additive", "concat", epochs=1, limit=120, progress=False, out=run_dir)
        audit = audit_run(run_dir, folder / "audit.parquet", limit=24, batch_size=12,
                          methods=["ig", "saliency"], steps=4)
    finally:
        torch.set_num_threads(before)
    return run_dir, audit.path


def test_read_audit_is_the_file(tiny_audit, tmp_path) -> None:
    _, path = tiny_audit
    audit = read_audit(path)
    assert len(audit.rows) == 24 and audit.methods == ["ig", "saliency"]
    assert audit.share_columns() == [f"shapley_share__{m}" for m in audit.modalities]
    table = reliance_by_class(audit)
    assert table["n"].sum() == 24
    assert math.isclose(table["accuracy"].mul(table["n"]).sum() / 24, audit.rows["correct"].mean())
    with pytest.raises(ConfigError, match="audit=.*no such file"):
        read_audit(tmp_path / "none.parquet")


@pytest.mark.slow
def test_notebook_06_summarises_an_audit(tiny_audit, tmp_path) -> None:
    run_dir, path = tiny_audit
    spec = RunSpec(str(ROOT / "notebooks" / "06_audit_summary.ipynb"),
                   {"audit": str(path), "run": str(run_dir), "n_top": 3, "lean_threshold": 0.5})
    (rec,) = run_batch([spec], tmp_path / "reports", progress=False, cwd=ROOT)
    assert rec.ok, rec.error
    results = json.loads(Path(rec.json_path).read_text())["results"]
    audit = read_audit(path)
    assert results["n_decisions"] == 24
    assert results["accuracy"] == pytest.approx(audit.rows["correct"].mean())
    assert results["top_interaction"] == interaction_decisions(audit, n=3)["index"].tolist()
    assert results["one_sided_error_slices"] == len(one_sided_errors(audit, threshold=0.5))
    page = Path(rec.html_path).read_text()
    for index in results["top_interaction"]:  # every listed decision links to its card
        assert f'href="#{card_anchor(index)}"' in page and f'id="{card_anchor(index)}"' in page
