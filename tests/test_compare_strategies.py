"""Fusion strategies compared on the same data (:func:`mmexplain.analysis.compare_strategies`)
and its figure (:func:`mmexplain.viz.strategy_comparison`), on planted interaction data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mmexplain import analysis as A
from mmexplain import modality_shapley, viz
from mmexplain.exceptions import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)

# XOR of the image's and the text's planted sign: no single modality predicts the label.
# 1,000 samples, 8 epochs at lr 3e-3 teach the tensor fusion XOR (test accuracy ~0.97) in
# a few seconds; late fusion, additive in the logits, cannot learn it at all (~0.5 after
# 8 epochs), so 2 epochs give the same kind of model. Same dataset, limit and seed: the
# same data fingerprint, whatever the epochs.
DATA = "interaction"
OPTIONS = {"limit": 1000, "lr": 3e-3}
EPOCHS = {"late": 2, "tensor": 8}
# IG without step refinement keeps the file fast; the compared numbers do not depend on it.
IG = {"n_steps": 16, "tolerance": 0}


@pytest.fixture(scope="module")
def runs(trained_synthetic):
    return {f: trained_synthetic(DATA, f, epochs=e, **OPTIONS) for f, e in EPOCHS.items()}


@pytest.fixture(scope="module")
def idx(runs):
    return A.select_samples(runs["late"], 24)


@pytest.fixture(scope="module")
def table(runs, idx):
    return A.compare_strategies(runs, idx, method_options=IG)


def test_one_row_per_run_with_shares_that_sum_to_one(runs, idx, table) -> None:
    assert list(table["fusion"]) == ["late", "tensor"]
    shares = [f"share_{m}" for m in runs["late"].model.modalities]
    assert [c for c in table.columns if c.startswith("share_")] == shares
    assert np.allclose(table[shares].sum(axis=1), 1.0, atol=1e-9)
    for name, run in runs.items():
        assert table.set_index("fusion").loc[name, "test_accuracy"] == run.metrics["test"]["accuracy"]
    assert table.attrs["index"] == idx.tolist() and table.attrs["method"] == "ig"
    assert table.attrs["emap_metric"] == "accuracy"
    # the planted data has image masks and text evidence tokens, no tabular evidence
    loc = [c for c in table.columns if c.endswith("_vs_chance")]
    assert loc == ["image_mass_in_mask_vs_chance", "image_pointing_game_vs_chance",
                   "text_evidence_rank_vs_chance", "text_reciprocal_rank_vs_chance"]
    assert table[loc].notna().all().all()
    assert table.attrs["better"]["text_evidence_rank_vs_chance"] == "lower"
    assert table.attrs["better"]["deletion_auc_vs_random"] == "lower"


def test_numbers_agree_with_the_notebooks_functions(runs, idx, table) -> None:
    """Each number is the one notebooks 02 / 05 show for the same model and samples."""
    rows = table.set_index("fusion")
    for name, run in runs.items():
        sh = A.shapley_analysis(run, idx)
        for m, v in sh["mean_shares"].items():
            assert rows.loc[name, f"share_{m}"] == pytest.approx(float(v), abs=1e-12)
        inter = A.intershap(run.model, run.splits.test.inputs(idx), background=A.background_for(run))
        assert rows.loc[name, "interaction_share"] == pytest.approx(inter["interaction_share"], abs=1e-12)
        em = A.emap_analysis(run, idx)
        assert rows.loc[name, "emap_gap"] == em["model_metric"] - em["projection_metric"]
    run = runs["tensor"]
    results = A.explain(run, idx, ["ig"], ig=IG)
    loc = A.localisation_table(run, idx, results).set_index(["modality", "metric"])
    assert rows.loc["tensor", "image_mass_in_mask_vs_chance"] == pytest.approx(
        loc.loc[("image", "mass_in_mask"), "vs_chance"], abs=1e-12)
    faith, _ = A.faithfulness_table(run, idx, results)
    dele = faith[faith["mode"] == "deletion"]
    assert rows.loc["tensor", "deletion_auc_vs_random"] == pytest.approx(
        float((dele["auc"] - dele["random_auc"]).mean()), abs=1e-12)


def test_late_fusion_is_additive_and_tensor_fusion_uses_the_interaction(runs, idx, table) -> None:
    rows = table.set_index("fusion")
    assert runs["tensor"].metrics["test"]["accuracy"] > 0.9  # it learned XOR
    # Late fusion sums per-modality logits: EMAP's additive projection reproduces its logits
    # (up to float rounding), so no prediction changes and the gap is exactly 0.
    assert rows.loc["late", "emap_gap"] == 0.0
    # XOR is invisible to any additive model: the projection of the tensor model is near
    # chance while the model is not.
    assert rows.loc["tensor", "emap_gap"] > 0.3
    # InterSHAP plays the predicted class's *probability*; the softmax of a sum of logits is
    # not additive, so late fusion's interaction share is small but not 0. In the logit
    # game with the same background it is 0 up to rounding: the residue is the softmax's.
    x = runs["late"].splits.test.inputs(idx)
    with torch.no_grad():
        pred = runs["late"].model(**x).argmax(1)
    logit_game = modality_shapley(runs["late"].model, x, target=pred,
                                  background=A.background_for(runs["late"]))
    assert float(logit_game.interaction_share()) < 1e-5
    assert 0 < rows.loc["late", "interaction_share"] < 0.1
    assert rows.loc["tensor", "interaction_share"] > rows.loc["late", "interaction_share"] + 0.3
    # the tensor model also localises the planted evidence better than chance on both modalities
    assert rows.loc["tensor", "image_mass_in_mask_vs_chance"] > 0
    assert rows.loc["tensor", "text_reciprocal_rank_vs_chance"] > 0
    assert rows.loc["tensor", "deletion_auc_vs_random"] < 0


def test_a_method_whose_rules_fail_leaves_nan_and_says_why(runs, idx) -> None:
    # the synthetic text encoder is a GRU: DeepLift's rules do not hold, it is left out
    t = A.compare_strategies({"late": runs["late"]}, idx[:4], method="deeplift")
    row = t.iloc[0]
    assert "deeplift left out" in row["flags"] and "GRU" in row["flags"]
    assert math.isnan(row["deletion_auc_vs_random"]) and math.isnan(row["insertion_auc_vs_random"])
    assert not math.isnan(row["interaction_share"])  # the method-free columns are still there


def test_runs_on_other_data_are_refused_naming_the_fusion(runs, idx, trained_synthetic) -> None:
    other = trained_synthetic("image_only", "concat", epochs=1, limit=200)  # shared with test_analysis
    with pytest.raises(ConfigError, match=r"runs\['other'\] \(fusion 'concat'\) was trained on other data"):
        A.compare_strategies({"late": runs["late"], "other": other}, idx)


@pytest.mark.parametrize("bad, words", [
    (torch.tensor([0.0, 1.0]), "1-D integer tensor"),
    (torch.tensor([0, 10_000]), "outside the 200 samples"),
    (torch.tensor([], dtype=torch.long), "idx is empty"),
])
def test_bad_sample_indices_are_refused(runs, bad, words) -> None:
    with pytest.raises(ConfigError, match=words):
        A.compare_strategies(runs, bad)


def test_an_unknown_method_is_refused_listing_the_methods(runs, idx) -> None:
    with pytest.raises(ConfigError, match=r"unknown attribution method 'igg'; known: .*\big\b"):
        A.compare_strategies(runs, idx, method="igg")


def test_empty_runs_are_refused() -> None:
    with pytest.raises(ConfigError, match="non-empty mapping"):
        A.compare_strategies({}, torch.arange(2))


# ------------------------------------------------------------------------------ figure


def test_figure_draws_the_table(table) -> None:
    fig = viz.strategy_comparison(table)
    shares = [c for c in table.columns if c.startswith("share_")]
    metrics = [c for c in table.columns if c not in ("fusion", "flags", *shares)]
    assert len(fig.data) == len(shares) + len(metrics)
    for trace in fig.data:
        assert list(trace.x) == list(table["fusion"])
    stacked = {t.name: t for t in fig.data[:len(shares)]}
    assert set(stacked) == {c[len("share_"):] for c in shares}
    assert np.allclose(sum(np.asarray(t.y) for t in stacked.values()), 1.0)
    for c in shares:
        assert np.allclose(stacked[c[len("share_"):]].y, table[c])
    for trace, c in zip(fig.data[len(shares):], metrics):
        assert trace.name == c
        assert np.allclose(np.asarray(trace.y, dtype=float), table[c].to_numpy(dtype=float), equal_nan=True)
    assert fig.layout.barmode == "stack"
    # a dashed zero line on every panel of differences, none elsewhere
    differences = [c for c in metrics if c.endswith(("_vs_chance", "_vs_random", "_gap"))]
    dashed = [s for s in fig.layout.shapes if s.line.dash == "dash" and s.y0 == 0 == s.y1]
    assert len(dashed) == len(differences) == 7
    titles = [a.text for a in fig.layout.annotations]
    assert "text_evidence_rank_vs_chance (lower is better)" in titles and "interaction_share" in titles


def test_figure_escapes_every_label() -> None:
    evil = "<script>alert('x')</script>"
    t = pd.DataFrame({"fusion": [evil, "late"], f"share_{evil}": [0.25, 1.0], "share_text": [0.75, 0.0],
                      "emap_gap": [0.1, 0.0], "flags": ["", ""]})
    fig = viz.strategy_comparison(t, title=evil)
    assert "<script>" not in json.dumps(fig.to_plotly_json(), default=str)
    assert fig.data[0].x[0] == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    with pytest.raises(ValueError, match="'fusion' column"):
        viz.strategy_comparison(t.drop(columns="fusion"))
