"""One meaning of "absent": the model's reference, the same for every explainer and every batch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mmexplain import KINDS, fit_reference
from mmexplain.analysis import background_for, intershap
from mmexplain.attribution import METHODS, attribute, modality_shapley
from mmexplain.data import make_synthetic
from mmexplain.exceptions import ConfigError
from mmexplain.models import FUSIONS, ModelConfig, build_model, load_checkpoint, save_checkpoint

ALL4 = ("image", "text", "tabular", "audio")
# small budgets for the slow methods: the property tested does not depend on them
FAST = {"shap_partition": {"max_evals": 64}, "shap_gradient": {"n_samples": 8}, "gradient_shap": {"n_samples": 4},
        "smoothgrad": {"nt_samples": 3}, "ig": {"n_steps": 16, "tolerance": 0}}


def _with_padding(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Texts of different lengths: the padding masks then matter."""
    x = dict(x)
    ids = x["text"].clone()
    for i in range(len(ids)):
        ids[i, 3 + i % 5:] = 0
    x["text"] = ids
    return x


@pytest.fixture(scope="module")
def model4():
    data = make_synthetic("additive", n=64, modalities=ALL4, seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("concat"), data).eval()
    return model, _with_padding(data.inputs(range(32))), data


def test_built_models_carry_a_reference_fitted_on_training_data(model4):
    model, x, data = model4
    ref = model.reference
    assert ref.choices == {m: KINDS.get(s.kind).default_reference for m, s in zip(ALL4, data.modalities)}
    assert ref.fitted_on == 64
    train = data.inputs(range(64))
    torch.testing.assert_close(ref.value("tabular"), train["tabular"].mean(0, keepdim=True))
    # a neutral image: each channel at its training mean, uniform over the image
    img = ref.value("image")
    assert torch.allclose(img, train["image"].mean().expand_as(img))
    assert bool((ref.value("text") == model.modality_specs[1].pad_id).all())
    assert bool((ref.value("audio") == 0).all())
    assert "fitted on 64 training samples" in ref.describe()["tabular"]


def test_reference_round_trips_through_the_checkpoint(model4, tmp_path):
    model, x, _ = model4
    save_checkpoint(tmp_path, model)
    back = load_checkpoint(tmp_path).model
    for m in ALL4:
        assert torch.equal(back.reference.value(m), model.reference.value(m))
    assert back.reference.choices == model.reference.choices
    torch.testing.assert_close(attribute(back, x, method="saliency", target=1).maps["image"],
                               attribute(model, x, method="saliency", target=1).maps["image"])


@pytest.mark.parametrize("method", METHODS.names())
def test_a_sample_is_explained_the_same_alone_and_in_batches_of_8_and_32(model4, method):
    model, x, _ = model4
    y = model(**x).argmax(1)
    opts = FAST.get(method, {})
    batch32 = attribute(model, x, method=method, target=y, **opts)
    batch8 = attribute(model, {k: v[:8] for k, v in x.items()}, method=method, target=y[:8], **opts)
    for i in (0, 5):
        alone = attribute(model, {k: v[i:i + 1] for k, v in x.items()}, method=method, target=y[i:i + 1], **opts)
        for m in ALL4:
            torch.testing.assert_close(alone.maps[m][0], batch8.maps[m][i], atol=2e-5, rtol=1e-3, msg=f"{method}/{m}")
            torch.testing.assert_close(alone.maps[m][0], batch32.maps[m][i], atol=2e-5, rtol=1e-3, msg=f"{method}/{m}")
        torch.testing.assert_close(alone.output_delta[0], batch32.output_delta[i], atol=1e-5, rtol=1e-5)


def test_modality_shapley_does_not_depend_on_the_batch(model4):
    model, x, _ = model4
    y = model(**x).argmax(1)
    full = modality_shapley(model, x, target=y)
    eight = modality_shapley(model, {k: v[:8] for k, v in x.items()}, target=y[:8])
    for i in (0, 5):
        alone = modality_shapley(model, {k: v[i:i + 1] for k, v in x.items()}, target=y[i:i + 1])
        torch.testing.assert_close(alone.values[0], full.values[i], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(alone.values[0], eight.values[i], atol=1e-5, rtol=1e-4)


def _own_delta(model, x, y):
    ref = model.reference.inputs_like(x)
    with torch.no_grad():
        return (model(**x).gather(1, y[:, None]) - model(**ref).gather(1, y[:, None])).squeeze(1).double()


@pytest.mark.parametrize("text_encoder", ["gru", "lstm", "minilm"])
def test_recorded_deltas_are_the_models_own_for_every_fusion(text_encoder):
    data = make_synthetic("interaction", n=24, modalities=("image", "text"), seed=1)
    x = _with_padding(data.inputs(range(4)))
    y = torch.tensor([0, 1, 1, 0])
    fusions = FUSIONS.names() if text_encoder != "minilm" else ["concat", "tensor", "late", "attention"]
    for fusion in fusions:
        torch.manual_seed(0)
        model = build_model(ModelConfig.from_name(fusion, text_encoder=text_encoder), data).eval()
        expect = _own_delta(model, x, y)
        sv = modality_shapley(model, x, target=y)
        torch.testing.assert_close(sv.full_value - sv.base_value, expect, atol=1e-5, rtol=1e-4, msg=fusion)
        res = attribute(model, x, method="ig", target=y, n_steps=24, tolerance=0)
        torch.testing.assert_close(res.output_delta, expect, atol=1e-5, rtol=1e-4, msg=fusion)
        # the masks' step is credited, so what is left is exactly IG's own integration error
        torch.testing.assert_close(res.completeness_error, torch.tensor(res.meta["convergence_delta"],
                                   dtype=torch.float64), atol=1e-4, rtol=1e-3, msg=fusion)


def test_every_baseline_relative_method_records_the_models_own_delta(model4):
    model, x, _ = model4
    x = {k: v[:4] for k, v in x.items()}
    y = model(**x).argmax(1)
    expect = _own_delta(model, x, y)
    for method in METHODS.names():
        res = attribute(model, x, method=method, target=y, **FAST.get(method, {}))
        torch.testing.assert_close(res.output_delta, expect, atol=1e-5, rtol=1e-4, msg=method)
        # IG runs here with 16 unrefined steps (FAST): its completeness is tested against its own
        # path error in test_recorded_deltas_are_the_models_own_for_every_fusion
        if METHODS.get(method).complete and not res.flags and "tolerance" not in FAST.get(method, {}):
            rel = res.completeness_error / expect.abs().clamp_min(1e-6)
            assert float(rel.max()) < 0.02, (method, rel)


def test_a_token_at_its_reference_is_the_models_own_absent_token(model4):
    # occluding a token puts the pad id in its place, so the GRU's padding mask drops it
    model, x, _ = model4
    x = {k: v[:2] for k, v in x.items()}
    res = attribute(model, x, method="occlusion", target=1)
    for t in (0, 1):
        removed = dict(x)
        removed["text"] = x["text"].clone()
        removed["text"][:, t] = model.modality_specs[1].pad_id
        with torch.no_grad():
            effect = model(**x)[:, 1] - model(**removed)[:, 1]
        torch.testing.assert_close(res.maps["text"][:, t].double(), effect.double(), atol=1e-5, rtol=1e-4)


def test_data_choices_need_data_and_named_choices_resolve(model4):
    model, x, _ = model4
    with pytest.raises(ConfigError, match="statistic of training data"):
        fit_reference(model, None, {"tabular": "mean"}, sample_shapes={m: x[m].shape[1:] for m in ALL4})
    res = attribute(model, x, method="saliency", target=0, baselines={"image": "blur"})
    assert res.baselines["image"].startswith("blur")
    assert res.baselines["tabular"].startswith("mean")  # the others keep the model's reference


def test_ig_and_shapley_agree_on_planted_additive_data(trained_synthetic):
    run = trained_synthetic("additive:regression", "concat", epochs=25)
    x = run.splits.test.inputs(range(128))
    ig = attribute(run.model, x, method="ig")
    sv = modality_shapley(run.model, x)
    ig_shares = torch.nanmean(ig.shares(), 0)
    sv_shares = torch.tensor(sv.mean_shares().values)
    # the same reference, the same output: the two methods agree
    assert float((ig_shares - sv_shares).abs().max()) <= 0.05, (ig_shares, sv_shares)
    # "as in the data" (K training samples as background) recovers the planted weights; the fixed
    # reference is farther off where it is an input the model never saw (an empty text)
    planted = run.splits.train.meta["planted"]["shares"]
    inter = modality_shapley(run.model, x, background=background_for(run)).mean_shares()
    for j, m in enumerate(sv.modalities):
        assert abs(float(inter[m]) - planted[m]) <= 0.05, (m, inter, planted)
        assert abs(float(ig_shares[j]) - planted[m]) <= 0.1, (m, ig_shares, planted)


def test_intershap_sees_xor_not_additive_and_redundancy_in_between(trained_synthetic):
    xor = trained_synthetic("interaction", "attention")
    assert xor.metrics["test"]["accuracy"] >= 0.9

    def score(run):
        return intershap(run.model, run.splits.test.inputs(range(128)), background=background_for(run))

    synergy = score(xor)
    assert synergy["interaction_share"] >= 0.8
    assert float((synergy["intershap"].interactions[:, 0, 1]).mean()) > 0  # synergy: positive
    # the library's default schedule (15 epochs at 5e-4): one-cycle to 3e-3 leaves this additive
    # model a 0.102 interaction share
    assert score(trained_synthetic("additive", "concat", epochs=15))["interaction_share"] <= 0.1
    # redundancy is an interaction too in this game (either modality alone already decides, so
    # v(ab) − v(a) − v(b) + v(∅) < 0): InterSHAP's paper reports 38.6 % on redundant HD-XOR
    redundant = score(trained_synthetic("redundant", "concat"))
    assert 0.1 < redundant["interaction_share"] < synergy["interaction_share"] - 0.3
    assert float((redundant["intershap"].interactions[:, 0, 1]).mean()) < 0  # redundancy: negative


def test_readme_python_example_prints_comparable_shares(tmp_path):
    text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    ig, sv = scope["ig_shares"], scope["sv_shares"]
    assert (ig - sv).abs().max() <= 0.05, (ig, sv)


def test_intershap_of_a_regression_model_plays_its_raw_output(model4):
    model, x, _ = model4

    class Scalar(torch.nn.Module):  # one output: no class probability to play
        def __init__(self):
            super().__init__()
            self.inner = model
            self.modality_specs = model.modality_specs
            self.reference = model.reference

        def forward(self, **kw):
            return self.inner(**kw)[:, :1]

    res = intershap(Scalar().eval(), {k: v[:6] for k, v in x.items()})
    assert res["intershap"].game == "logit" and 0.0 <= res["interaction_share"] <= 1.0
    direct = modality_shapley(Scalar().eval(), {k: v[:6] for k, v in x.items()})
    assert abs(res["interaction_share"] - direct.interaction_share()) < 1e-12
