"""Attribution per fusion level: distinct levels, exact splits, completeness, planted structure."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mmexplain.attribution import (
    attention_flow,
    fusion_level_attribution,
    fusion_level_shares,
    fusion_level_summary,
)
from mmexplain.data import make_synthetic
from mmexplain.exceptions import ConfigError
from mmexplain.metrics import chance_level, mass_in_mask
from mmexplain.modality import ModalitySpec
from mmexplain.models import FUSIONS, FusionLevel, ModelConfig, build_model


@pytest.fixture(scope="module")
def data3():
    return make_synthetic("interaction", n=64, modalities=("image", "text", "tabular"), seed=0)


def _per_level_sample(table: pd.DataFrame) -> pd.DataFrame:
    return table.groupby(["level", "sample"], sort=False).agg(
        share=("share", "sum"), total=("total", "sum"), delta=("output_delta", "first"), note=("note", "first"))


def _assert_complete_or_says_why(table: pd.DataFrame, tolerance: float = 0.01) -> None:
    g = _per_level_sample(table)
    rel = (g.total - g.delta).abs() / g.delta.abs().clip(lower=1e-6)
    for (level, sample), r in g.assign(rel=rel).iterrows():
        assert r.rel <= tolerance or "completeness not reached" in r.note, (level, sample, r.rel, r.note)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_levels_are_distinct_and_each_splits_the_output(fusion, data3):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(fusion), data3).eval()
    x, y = data3.inputs(range(6)), data3.target(range(6))
    table = fusion_level_attribution(model, x, target=y)
    declared = [lv.name for lv in model.fusion_levels()]
    assert list(dict.fromkeys(table.level)) == declared
    g = _per_level_sample(table)
    np.testing.assert_allclose(g.share.to_numpy(), 1.0, atol=1e-9)
    _assert_complete_or_says_why(table)
    # cross-modal terms are named by their modalities, in the model's order
    crosses = set(table.loc[table.cross_modal, "modality"])
    assert crosses <= {"image×text", "image×tabular", "text×tabular", "image×text×tabular"}
    # no two levels report the same numbers (a level that would is not declared); an untrained
    # head is nearly linear on its tiny inputs, so levels differ little here (more when trained)
    _assert_levels_differ(table, rtol=1e-5)


def _assert_levels_differ(table: pd.DataFrame, rtol: float) -> None:
    singles = table[~table.cross_modal].pivot_table(index="sample", columns=["level", "modality"], values="total")
    for a, b in itertools.combinations(dict.fromkeys(table.level), 2):
        assert not np.allclose(singles[a].to_numpy(), singles[b].to_numpy(), rtol=rtol, atol=1e-9), (a, b)


class _Bilinear(nn.Module):
    """f(a, b) = Σ a·b + 2 Σ a + 3 Σ b through one joint representation [a·b, a, b]."""

    modality_specs = [ModalitySpec("a", "tabular"), ModalitySpec("b", "tabular")]

    def __init__(self) -> None:
        super().__init__()
        self.joint = nn.Identity()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        rep = self.joint(torch.cat([a * b, a, b], dim=1))
        w = torch.cat([torch.ones(a.shape[1]), 2 * torch.ones(a.shape[1]), 3 * torch.ones(b.shape[1])])
        return (rep @ w).unsqueeze(1)


def test_joint_and_output_levels_match_closed_form():
    model = _Bilinear()
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(5, 3, generator=g), "b": torch.randn(5, 3, generator=g)}
    zero = {"a": torch.zeros(1, 3), "b": torch.zeros(1, 3)}
    joint = FusionLevel("joint", "fused representation", "[a·b, a, b]", joint=model.joint)
    table = fusion_level_attribution(model, x, baselines=zero, levels=[joint])
    expect = {"a": 2 * x["a"].sum(1), "b": 3 * x["b"].sum(1), "a×b": (x["a"] * x["b"]).sum(1)}
    for level in ("joint", "decision"):
        t = table if level == "joint" else fusion_level_attribution(model, x, baselines=zero)
        for term, values in expect.items():
            got = t[(t.level == level) & (t.modality == term)].sort_values("sample")["total"].to_numpy()
            np.testing.assert_allclose(got, values.double().numpy(), rtol=1e-5, atol=1e-5, err_msg=(level, term))
    assert set(table.loc[table.cross_modal, "modality"]) == {"a×b"}


def test_late_fusion_decision_terms_are_its_weighted_logits(data3):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("late"), data3).eval()
    x, y = data3.inputs(range(5)), data3.target(range(5))
    table = fusion_level_attribution(model, x, target=y, levels=["decision"])
    ref = model.reference.inputs_like(x)
    with torch.no_grad():
        fx, fr = model.encode(x), model.encode(ref)
        w = model.fusion.weights
        for i, m in enumerate(model.modalities):
            terms = [(w[i] * model.fusion.heads[m](f[m])).gather(1, y.view(-1, 1)).squeeze(1) for f in (fx, fr)]
            got = table[table.modality == m].sort_values("sample")["total"].to_numpy()
            np.testing.assert_allclose(got, (terms[0] - terms[1]).double().numpy(), rtol=0, atol=1e-6)
    cross = table[table.cross_modal]
    assert len(cross) == 5 * 4 and (cross.total == 0).all() and (cross.share == 0).all()
    assert "0 by construction" in table.note.iloc[0]


def test_gated_fusion_reports_gates_and_closing_an_idle_gate_changes_nothing(data3):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("gated"), data3).eval()
    with torch.no_grad():  # the tabular projection outputs tanh(0) = 0: its gate has nothing to let through
        model.fusion.proj["tabular"][0].weight.zero_()
        model.fusion.proj["tabular"][0].bias.zero_()
    x, y = data3.inputs(range(4)), data3.target(range(4))
    table = fusion_level_attribution(model, x, target=y, levels=["fused"])
    rows = table[~table.cross_modal]
    assert rows.gate.between(0, 1).all()
    tab = rows[rows.modality == "tabular"]
    np.testing.assert_allclose(tab.closed_gate_change.to_numpy(), 0.0, atol=1e-7)
    assert (rows[rows.modality == "image"].closed_gate_change.abs() > 0).any()


def test_unknown_level_and_bad_options_are_named(data3):
    model = build_model(ModelConfig.from_name("concat"), data3).eval()
    x = data3.inputs(range(2))
    with pytest.raises(ConfigError, match="unknown fusion level 'nope'; the model's levels are"):
        fusion_level_attribution(model, x, target=0, levels=["nope"])
    with pytest.raises(ConfigError, match="n_steps=0"):
        fusion_level_attribution(model, x, target=0, n_steps=0)
    with pytest.raises(ConfigError, match="unknown layer attribution method"):
        fusion_level_attribution(model, x, target=0, method="layer_conductance_x")


# -- trained models ---------------------------------------------------------------------------
@pytest.mark.parametrize("fusion", ["late", "concat", "attention", "tensor", "early"])
def test_levels_complete_and_find_the_planted_modality(trained_synthetic, fusion):
    run = trained_synthetic("image_only", fusion)
    x, y = run.splits.test.inputs(range(8)), run.splits.test.target(range(8))
    table = fusion_level_attribution(run.model, x, target=y)
    _assert_complete_or_says_why(table)
    _assert_levels_differ(table, rtol=1e-3)
    shares = fusion_level_shares(table)
    # the image alone and every cross-modal term it takes part in: what carries the image
    with_image = shares[shares.modality.str.split("×").apply(lambda t: "image" in t)]
    for level in dict.fromkeys(table.level):
        assert with_image.loc[with_image.level == level, "share"].sum() > 0.5, (fusion, level, shares)


def test_tensor_fusion_bimodal_block_carries_planted_interaction(trained_synthetic):
    # image + text: tensor fusion then has exactly one bimodal block, image×text. The blocks
    # are taken relative to the reference, so the models are trained to have seen it: with
    # modality dropout (TrainConfig.modality_dropout), an absent modality is an input the
    # model learned, not one it extrapolates to. Without it the additive model's block carried
    # 0.237 (R² 0.999 on the data, yet not additive around a reference it never saw).
    two = {"dataset_options": {"modalities": ["image", "text"]}, "modality_dropout": 0.3}
    xor = trained_synthetic("interaction", "tensor", **two)
    additive = trained_synthetic("additive:regression", "tensor", epochs=25, **two)
    assert additive.metrics["test"]["r2"] > 0.98
    found = {}
    for name, run in (("interaction", xor), ("additive", additive)):
        x = run.splits.test.inputs(range(32))
        y = run.model(**x).argmax(1) if run.splits.test.task == "classification" else None
        table = fusion_level_attribution(run.model, x, target=y, levels=["fused"])
        _assert_complete_or_says_why(table)
        found[name] = fusion_level_summary(table)["cross_modal_share"].iloc[0]
        if name == "interaction":
            shares = fusion_level_shares(table).set_index("modality")["share"]
            assert shares["image×text"] >= 0.5, shares
    assert found["additive"] <= 0.2, found  # the bound
    assert found["interaction"] - found["additive"] >= 0.5, found


def test_attention_flow_looks_at_the_planted_patch(trained_synthetic):
    run = trained_synthetic("interaction", "attention")
    te = run.splits.test
    x, y = te.inputs(range(48)), te.target(range(48))
    with torch.no_grad():
        _, out = run.model.fusion.attention(run.model.encode(x))
        torch.testing.assert_close(out, run.model(**x), atol=1e-5, rtol=1e-5)
    flow = attention_flow(run.model, x, target=y)
    valid = flow.query_valid
    np.testing.assert_allclose(flow.weights.sum(-1)[valid].numpy(), 1.0, atol=1e-5)
    assert (flow.weights.sum(-1)[~valid] == 0).all()
    evidence = te.evidence_for("image", range(48))
    chance = float(chance_level("mass_in_mask", evidence).mean())
    for which in ("weights", "flow"):
        maps = flow.region_map("image", tuple(evidence.shape[-2:]), which=which)
        assert float(mass_in_mask(maps, evidence).nanmean()) > 2 * chance, which
    with pytest.raises(ConfigError, match="fusion attends"):
        attention_flow(trained_synthetic("image_only", "concat").model, x)


# -- the notebook's views -----------------------------------------------------------------------
def test_levels_table_and_story_follow_the_summary(data3):
    from mmexplain import analysis as A

    model = build_model(ModelConfig.from_name("tensor"), data3).eval()
    levels = A.levels_table(model)
    assert list(levels.level) == ["encoder", "projection", "fused", "decision"]
    assert list(levels.kind) == ["per-modality branches", "per-modality branches", "joint representation", "the output"]
    summary = pd.DataFrame({
        "level": ["encoder", "fused", "decision"],
        "stage": ["encoder output", "fused representation", "decision"],
        "cross_modal_share": [0.0, 0.42, 0.61],
        "note": ["", "completeness not reached for 1 of 4 samples", ""],
    })
    story = A.where_modalities_meet(summary)
    assert "first meet at `fused`" in story and "42%" in story and "61%" in story
    assert "Completeness is not reached at `fused`" in story
    late = summary.assign(cross_modal_share=[0.0, 0.0, 0.0], note="")
    assert "a sum of per-modality decisions" in A.where_modalities_meet(late)


def test_level_shares_are_pooled_over_samples_and_the_figure_shows_them():
    from mmexplain import viz

    # sample 1 barely moves from the reference: its noisy per-sample shares weigh little
    table = pd.DataFrame({
        "level": ["fused"] * 6, "stage": ["fused representation"] * 6, "sample": [0, 0, 0, 1, 1, 1],
        "modality": ["a", "b", "a×b"] * 2, "cross_modal": [False, False, True] * 2,
        "total": [3.0, 1.0, 0.0, 0.0, 0.001, -0.003], "share": [0.75, 0.25, 0.0, 0.0, 0.25, 0.75],
    })
    shares = fusion_level_shares(table).set_index("modality")["share"]
    np.testing.assert_allclose(shares[["a", "b", "a×b"]].to_numpy(), np.array([3.0, 1.001, 0.003]) / 4.004)
    table = table.assign(completeness_error=0.0, output_delta=table.groupby("sample").total.transform("sum"),
                         n_steps=32, note="")
    assert fusion_level_summary(table)["cross_modal_share"].iloc[0] == pytest.approx(0.003 / 4.004)
    fig = viz.fusion_level_shares(table)
    drawn = {t.name: t.y[0] for t in fig.data}
    np.testing.assert_allclose([drawn["a"], drawn["b"], drawn["a×b"]], shares[["a", "b", "a×b"]].to_numpy())
    assert [t.marker.pattern.shape for t in fig.data] == ["", "", "/"]
