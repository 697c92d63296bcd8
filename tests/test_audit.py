"""Decision-audit cards: their shares are the method's own, their trust panel the report's."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from mmexplain.analysis import OVERALL, explain, method_shares, trust_panel
from mmexplain.audit import choose_audit_samples, decision_cards

METHODS = ["ig", "saliency", "deeplift", "occlusion"]


@pytest.fixture(scope="module")
def audited(trained_synthetic):
    run = trained_synthetic("image_only", "concat", epochs=1, limit=200)
    ids = torch.tensor([0, 3, 7])
    sanity = pd.DataFrame(
        [{"method": "saliency", "modality": m, "final_correlation": 0.9 if m == "text" else 0.1, "passed": m != "text"}
         for m in run.model.modalities]
        + [{"method": "saliency", "modality": OVERALL, "final_correlation": 0.4, "passed": False}]
    )
    return run, ids, sanity, decision_cards(run, ids, methods=METHODS, sanity=sanity)


def test_card_shares_are_method_shares_of_that_sample(audited) -> None:
    run, ids, _, cards = audited
    results = explain(run, ids, METHODS)
    for k, card in enumerate(cards):
        table = card.table().set_index("modality")
        summary = card.summary()["method_shares"]
        for name, res in results.items():
            expected = method_shares({name: res.one(k)}).set_index("modality")["share"]
            for m, share in expected.items():
                assert math.isclose(table.loc[m, f"{name}_share"], round(share, 3), abs_tol=1e-12)
                assert math.isclose(summary[name][m], round(share, 4), abs_tol=1e-12)
                assert math.isclose(float(card.attributions[name].shares()[0, list(expected.index).index(m)]), share)


def test_card_trust_panel_is_the_panels_row_for_its_sample(audited) -> None:
    run, ids, sanity, cards = audited
    results = explain(run, ids, METHODS)
    panel = trust_panel(run, ids, results, methods=METHODS, sanity=sanity)
    for k, card in enumerate(cards):
        assert card.summary()["trust"] == panel.summary(k)
        pd.testing.assert_frame_equal(card.trust_table(), panel.table(k))
    words = cards[0].trust_table().set_index("method")
    assert words.loc["saliency", "sanity (model)"] == "failed on text"
    assert words.loc["deeplift", "rules"].startswith("left out") and "GRU" in words.loc["deeplift", "rules"]
    assert any("saliency: sanity check failed on text" == f for f in cards[0].flags)
    assert any(f.startswith("deeplift: left out") for f in cards[0].flags)


def test_card_html_and_summary_carry_the_panel_and_the_reference(audited) -> None:
    run, _, _, cards = audited
    card = cards[0]
    page = card.html()
    assert "trust-panel" in page and "deletion AUC vs random" in page and "not promised" in page
    for m, words in run.model.reference.describe().items():
        assert m in card.summary()["reference"] and card.summary()["reference"][m] == words
    assert "Absent means" in page and "channel_mean" in page
    json.dumps(card.summary(), allow_nan=False)  # JSON-safe without NaN
    assert len(card.figures()) == len(card.attributions) * len(run.model.modalities)


def test_choose_audit_samples_rejects_indices_outside_the_split(trained_synthetic) -> None:
    from mmexplain.exceptions import ConfigError

    run = trained_synthetic("image_only", "concat", epochs=1, limit=200)
    with pytest.raises(ConfigError, match="outside the test split"):
        choose_audit_samples(run, sample_ids=[10_000])
