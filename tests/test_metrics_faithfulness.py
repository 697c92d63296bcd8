"""Deletion / insertion curves: hand-computed linear cases, units per modality, batching, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _builders import reference_model
from sklearn.metrics import auc as sk_auc
from torch import nn

from mmexplain.exceptions import ConfigError
from mmexplain.kinds import KINDS
from mmexplain.metrics.faithfulness import (
    PerturbationCurve,
    curve_auc,
    deletion_curve,
    expand_unit_mask,
    fill_units,
    insertion_curve,
    perturbation_curve,
    perturbation_curves,
    target_scores,
    unit_count,
    unit_order_ranks,
    unit_scores,
)
from mmexplain.modality import ModalitySpec

TAB = ModalitySpec("tabular", "tabular")


class LinearTab(nn.Module):
    """Two classes: logit_0 = 0, logit_1 = w . tabular + b; ``other`` is ignored.

    p(class 1) = sigmoid(w . x + b) is monotone in w . x, so deleting the largest positive
    contributions w_i x_i first lowers it fastest: attribution order is provably optimal.
    """

    def __init__(self, w: torch.Tensor, b: float = 0.0) -> None:
        super().__init__()
        self.w, self.b = w, b
        self.calls: list[dict[str, torch.Tensor]] = []

    def forward(self, tabular: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        self.calls.append({"tabular": tabular.clone(), "other": other.clone()})
        z = tabular @ self.w + self.b
        return torch.stack([torch.zeros_like(z), z], dim=1)


def _linear_case(n: int = 3, f: int = 6):
    w = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25, 1.5])[:f]
    x = (
        torch.rand(n, f, generator=torch.Generator().manual_seed(0)) + 0.5
    )  # positive: all w_i x_i > 0
    other = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    return LinearTab(w), {"tabular": x, "other": other}, w * x


def test_deletion_logit_curve_matches_hand_computation_and_is_optimal() -> None:
    model, inputs, contrib = _linear_case()
    f = contrib.shape[1]
    res = deletion_curve(
        model, inputs, {"tabular": contrib}, TAB, target=1, steps=f, output="logit"
    )
    # after k deletions the logit is the sum of the f - k smallest contributions
    srt = contrib.sort(dim=1, descending=True).values
    expected = torch.stack([srt[:, k:].sum(dim=1) for k in range(f + 1)], dim=1)
    np.testing.assert_allclose(res.curve, expected.numpy(), rtol=1e-5, atol=1e-6)
    # ... which is pointwise <= the curve of every other deletion order
    for perm in itertools.permutations(range(f)):
        order = list(perm)
        alt = torch.stack([contrib[:, order[k:]].sum(dim=1) for k in range(f + 1)], dim=1)
        assert torch.all(torch.from_numpy(res.curve).float() <= alt + 1e-5)
    assert np.all(res.curve <= res.random_curve + 1e-6)
    assert np.all(res.auc < res.random_auc)


def test_insertion_probability_curve_rises_fastest() -> None:
    model, inputs, contrib = _linear_case()
    f = contrib.shape[1]
    res = insertion_curve(model, inputs, {"tabular": contrib}, TAB, target=1, steps=f)
    srt = contrib.sort(dim=1, descending=True).values
    expected = torch.sigmoid(torch.stack([srt[:, :k].sum(dim=1) for k in range(f + 1)], dim=1))
    np.testing.assert_allclose(res.curve, expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.curve[:, 0], 0.5)  # all-baseline input: logit 0
    assert np.all(res.curve >= res.random_curve - 1e-6)
    assert res.mean_auc > res.mean_random_auc
    assert res.mode == "insertion" and res.modality == "tabular"


def test_endpoints_and_other_modalities_untouched() -> None:
    model, inputs, contrib = _linear_case(n=2)
    res = deletion_curve(model, inputs, {"tabular": contrib}, TAB, target=1, steps=3)
    full = torch.sigmoid(inputs["tabular"] @ model.w).numpy()
    np.testing.assert_allclose(res.curve[:, 0], full, rtol=1e-6)
    np.testing.assert_allclose(res.curve[:, -1], 0.5)
    np.testing.assert_allclose(res.random_curve[:, [0, -1]], res.curve[:, [0, -1]], rtol=1e-6)
    # one batched forward pass for all samples, steps and both orders
    assert len(model.calls) == 1
    seen = model.calls[0]
    assert seen["tabular"].shape[0] == 2 * 2 * 4
    row_sample = torch.arange(2).repeat_interleave(4).repeat(2)
    torch.testing.assert_close(seen["other"], inputs["other"][row_sample])


def test_max_batch_size_chunks_without_changing_results() -> None:
    model, inputs, contrib = _linear_case()
    one = deletion_curve(model, inputs, {"tabular": contrib}, TAB, target=1, steps=4)
    n_calls = len(model.calls)
    chunked = deletion_curve(
        model, inputs, {"tabular": contrib}, TAB, target=1, steps=4, max_batch_size=7
    )
    assert len(model.calls) - n_calls == int(np.ceil(2 * 3 * 5 / 7))
    np.testing.assert_allclose(one.curve, chunked.curve)
    np.testing.assert_allclose(one.random_curve, chunked.random_curve)


def test_auc_is_trapezoid_over_fractions_like_sklearn() -> None:
    model, inputs, contrib = _linear_case()
    res = deletion_curve(model, inputs, {"tabular": contrib}, TAB, target=1, steps=5)
    np.testing.assert_allclose(res.fractions, np.linspace(0, 1, 6))
    for i in range(res.curve.shape[0]):
        assert res.auc[i] == pytest.approx(sk_auc(res.fractions, res.curve[i]))
        assert res.random_auc[i] == pytest.approx(sk_auc(res.fractions, res.random_curve[i]))
    assert res.mean_auc == pytest.approx(float(np.mean(res.auc)))
    assert curve_auc(np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)


def test_random_reference_is_seeded() -> None:
    model, inputs, contrib = _linear_case()
    kw = dict(target=1, steps=6)
    a = deletion_curve(model, inputs, {"tabular": contrib}, TAB, seed=3, **kw)
    b = deletion_curve(model, inputs, {"tabular": contrib}, TAB, seed=3, **kw)
    c = deletion_curve(model, inputs, {"tabular": contrib}, TAB, seed=4, **kw)
    np.testing.assert_array_equal(a.random_curve, b.random_curve)
    assert not np.allclose(a.random_curve, c.random_curve)


def test_random_reference_of_a_sample_does_not_depend_on_its_batch() -> None:
    model, inputs, contrib = _linear_case(n=5)
    batch = deletion_curve(model, inputs, {"tabular": contrib}, TAB, target=1, steps=6, seed=3)
    for i in (0, 3):
        alone = deletion_curve(model, {k: v[i:i + 1] for k, v in inputs.items()}, {"tabular": contrib[i:i + 1]},
                               TAB, target=1, steps=6, seed=3)
        np.testing.assert_allclose(alone.random_curve[0], batch.random_curve[i], rtol=1e-6, atol=1e-7)


def test_signed_versus_absolute_ranking() -> None:
    # contributions +1, -3, +2: signed order deletes +2 first, abs order deletes -3 first
    w = torch.tensor([1.0, -3.0, 2.0])
    model = LinearTab(w)
    inputs = {"tabular": torch.ones(1, 3), "other": torch.zeros(1, 1)}
    attr = {"tabular": w.reshape(1, 3)}
    signed = deletion_curve(model, inputs, attr, TAB, target=1, steps=3, output="logit")
    absolute = deletion_curve(
        model, inputs, attr, TAB, target=1, steps=3, output="logit", use_abs=True
    )
    np.testing.assert_allclose(signed.curve[0], [0.0, -2.0, -3.0, 0.0])
    np.testing.assert_allclose(absolute.curve[0], [0.0, 3.0, 1.0, 0.0])


class PixelModel(nn.Module):
    """Regression: sum of image * weights; records what it saw."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = weights
        self.seen: list[torch.Tensor] = []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.seen.append(image.clone())
        return (image * self.weights).flatten(1).sum(dim=1)


def test_image_pixels_replace_all_channels_together() -> None:
    img = torch.ones(1, 3, 2, 2)
    attr = torch.zeros(1, 3, 2, 2)
    attr[0, :, 1, 0] = torch.tensor([1.0, 1.0, 1.0])  # pixel (1, 0) most attributed in total
    attr[0, 0, 0, 1] = 2.0  # one strong channel, but the pixel's total is lower
    model = PixelModel(torch.ones(1, 3, 2, 2))
    spec = ModalitySpec("image", "image")
    res = deletion_curve(model, {"image": img}, {"image": attr}, spec, steps=4)
    np.testing.assert_allclose(res.curve[0], [12.0, 9.0, 6.0, 3.0, 0.0])  # regression: raw output
    step1 = model.seen[0][1]  # row 1 = sample 0, one pixel deleted
    assert torch.all(step1[:, 1, 0] == 0) and step1.sum() == 9.0


def test_image_patches_and_channel_summed_maps() -> None:
    img = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    attr = torch.zeros(1, 4, 4)
    attr[0, 2:, 2:] = 1.0  # bottom-right patch
    model = PixelModel(torch.ones(1, 1, 4, 4))
    spec = ModalitySpec("image", "image")
    res = deletion_curve(model, {"image": img}, {"image": attr}, spec, steps=4, patch_size=2)
    assert res.curve[0, 0] == 136.0
    assert res.curve[0, 1] == 136.0 - (11 + 12 + 15 + 16)
    assert unit_count((1, 5, 5), "image", patch_size=2) == 9
    scores = unit_scores(torch.ones(1, 1, 5, 5), "image", patch_size=2)
    np.testing.assert_allclose(
        scores[0].numpy(), [4, 4, 2, 4, 4, 2, 2, 2, 1]
    )  # edge patches are smaller
    mask = expand_unit_mask(torch.eye(9, dtype=torch.bool)[[8]], (1, 5, 5), "image", patch_size=2)
    assert mask.shape == (1, 1, 5, 5) and mask.sum() == 1 and mask[0, 0, 4, 4]


class TokenModel(nn.Module):
    """Regression: sum of a per-id value over the sequence; the pad id (0) is worth 0."""

    def __init__(self) -> None:
        super().__init__()
        self.value = torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0])
        self.seen: list[torch.Tensor] = []

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        self.seen.append(text.clone())
        return self.value[text].sum(dim=1)


def test_tokens_replaced_by_pad_and_pads_never_counted() -> None:
    text = torch.tensor([[4, 1, 3, 0, 0], [2, 2, 1, 3, 4]])
    model = TokenModel()
    attr = model.value[text]  # exact per-token contributions
    spec = ModalitySpec("text", "tokens", pad_id=0)
    res = deletion_curve(model, {"text": text}, {"text": attr}, spec, steps=3)
    # sample 0 has 3 real tokens: one per step; sample 1 has 5: round(5/3)=2, round(10/3)=3, 5
    np.testing.assert_allclose(res.curve[0], [13.0, 5.0, 1.0, 0.0])
    np.testing.assert_allclose(res.curve[1], [17.0, 5.0, 3.0, 0.0])
    assert set(model.seen[0].unique().tolist()) <= {0, 1, 2, 3, 4}
    # insertion starts from an all-pad sequence
    ins = insertion_curve(model, {"text": text}, {"text": attr}, spec, steps=3)
    np.testing.assert_allclose(ins.curve[0], [0.0, 8.0, 12.0, 13.0])


def test_tokens_valid_mask_keeps_special_tokens() -> None:
    text = torch.tensor([[1, 4, 3, 1]])  # id 1 at both ends plays CLS / SEP
    valid = torch.tensor([[False, True, True, False]])
    model = TokenModel()
    spec = ModalitySpec("text", "tokens", pad_id=0)
    res = deletion_curve(
        model, {"text": text}, {"text": model.value[text]}, spec, steps=2, valid_mask=valid
    )
    np.testing.assert_allclose(res.curve[0], [14.0, 6.0, 2.0])  # the special tokens stay
    ins = insertion_curve(
        model, {"text": text}, {"text": model.value[text]}, spec, steps=2, valid_mask=valid
    )
    np.testing.assert_allclose(ins.curve[0], [2.0, 10.0, 14.0])


def test_audio_time_steps_and_multi_modal_helper() -> None:
    class AudioTab(nn.Module):
        def forward(self, audio: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
            return audio.sum(dim=(1, 2)) + tabular.sum(dim=1)

    audio = torch.ones(2, 2, 5)
    tab = torch.ones(2, 3)
    attr = {
        "audio": torch.arange(10.0).reshape(1, 2, 5).repeat(2, 1, 1),
        "tabular": torch.ones(2, 3),
    }
    specs = [ModalitySpec("audio", "audio"), TAB]
    curves = perturbation_curves(AudioTab(), {"audio": audio, "tabular": tab}, attr, specs, steps=5)
    assert set(curves) == {"audio", "tabular"}
    assert isinstance(curves["audio"], PerturbationCurve)
    # each audio step removes one time step across both channels; tabular untouched (3)
    np.testing.assert_allclose(curves["audio"].curve[0], [13.0, 11.0, 9.0, 7.0, 5.0, 3.0])
    assert unit_count((2, 5), "audio") == 5 and unit_count((5,), "audio") == 5
    frame = curves["tabular"].to_frame()
    assert len(frame) == 2 * 2 * 6 and set(frame["order"]) == {"attribution", "random"}


def test_unit_order_ranks_is_stable_and_puts_invalid_last() -> None:
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0]])
    valid = torch.tensor([[True, True, False, True]])
    assert unit_order_ranks(scores).tolist() == [[3, 0, 1, 2]]
    assert unit_order_ranks(scores, valid).tolist() == [[2, 0, 3, 1]]


def test_target_scores() -> None:
    logits = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    np.testing.assert_allclose(
        target_scores(logits, torch.tensor([0, 1])).numpy(), [0.5, 1 / (1 + np.e**-2)]
    )
    np.testing.assert_allclose(
        target_scores(logits, torch.tensor([0, 1]), output="logit").numpy(), [0.0, 3.0]
    )
    np.testing.assert_allclose(
        target_scores(torch.tensor([[2.0], [3.0]]), None).numpy(), [2.0, 3.0]
    )
    with pytest.raises(ConfigError, match="target is None"):
        target_scores(logits, None)
    with pytest.raises(ConfigError, match="target must be None"):
        target_scores(torch.tensor([1.0, 2.0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="outside"):
        target_scores(logits, torch.tensor([0, 2]))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"mode": "both"}, ConfigError, "mode"),
        ({"steps": 0}, ConfigError, "steps"),
        ({"output": "odds"}, ConfigError, "output"),
        ({"patch_size": 2}, ConfigError, "patch_size"),
        ({"baseline": torch.zeros(5)}, ValueError, "baseline"),
        ({"baseline": "zero"}, TypeError, "baseline"),
        ({"valid_mask": torch.ones(3, 2, dtype=torch.bool)}, ValueError, "valid_mask"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs: dict, exc: type, match: str) -> None:
    model, inputs, contrib = _linear_case()
    with pytest.raises(exc, match=match):
        perturbation_curve(model, inputs, {"tabular": contrib}, TAB, target=1, **kwargs)


def test_bad_inputs_raise() -> None:
    model, inputs, contrib = _linear_case()
    with pytest.raises(ValueError, match="not in inputs"):
        deletion_curve(
            model, inputs, {"tabular": contrib}, ModalitySpec("image", "image"), target=1
        )
    with pytest.raises(ValueError, match="does not match"):
        deletion_curve(model, inputs, {"tabular": contrib[:, :3]}, TAB, target=1)
    with pytest.raises(ValueError, match="samples"):
        deletion_curve(model, inputs, {"tabular": contrib[:2]}, TAB, target=1)
    with pytest.raises(ConfigError, match="target is None"):
        deletion_curve(model, inputs, {"tabular": contrib}, TAB)
    with pytest.raises(TypeError, match="ModalitySpec"):
        deletion_curve(model, inputs, {"tabular": contrib}, "tabular", target=1)
    with pytest.raises(TypeError, match="integer ids"):
        deletion_curve(
            model,
            {"text": torch.rand(2, 3)},
            {"text": torch.rand(2, 3)},
            ModalitySpec("text", "tokens"),
        )


def test_units_come_from_the_kind() -> None:
    audio = KINDS.get("audio")
    # audio windows (all channels together), by kind name or by the kind itself
    assert unit_count((2, 10), "audio", audio_window=4) == unit_count((2, 10), audio, audio_window=4) == 3
    attr = torch.arange(20.0).reshape(1, 2, 10)
    scores = unit_scores(attr, audio, audio_window=4)
    per_step = attr.sum(dim=1)[0]
    np.testing.assert_allclose(scores[0].numpy(), [per_step[:4].sum(), per_step[4:8].sum(), per_step[8:].sum()])
    mask = expand_unit_mask(torch.tensor([[False, True, False]]), (2, 10), "audio", audio_window=4)
    assert mask.shape == (1, 2, 10) and mask[0, :, 4:8].all() and mask.sum() == 8
    x = torch.ones(1, 2, 10)
    out = fill_units(x, torch.zeros(1, 2, 10), torch.tensor([[False, True, False]]), audio, audio_window=4)
    torch.testing.assert_close(out, mask.float())
    # a token map per embedding dimension scores one unit per token
    emb = torch.ones(2, 5, 3)
    np.testing.assert_allclose(unit_scores(emb, "tokens", sample_shape=(5,)).numpy(), 3.0)
    # patches / windows only for patched kinds
    with pytest.raises(ConfigError, match="audio_window"):
        unit_count((4,), "tabular", audio_window=2)
    with pytest.raises(ConfigError, match="kind"):
        unit_count((4,), "video")


def test_audio_windows_in_curves() -> None:
    class Audio(nn.Module):
        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            return audio.sum(dim=(1, 2))

    audio = torch.ones(1, 1, 6)
    attr = torch.tensor([[[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]]])
    spec = ModalitySpec("audio", "audio")
    res = deletion_curve(Audio(), {"audio": audio}, {"audio": attr}, spec, steps=3, audio_window=2)
    np.testing.assert_allclose(res.curve[0], [6.0, 4.0, 2.0, 0.0])
    curves = perturbation_curves(
        Audio(), {"audio": audio}, {"audio": attr}, [spec], steps=3, audio_window=2
    )
    np.testing.assert_allclose(curves["audio"].curve, res.curve)


def _reference_model():
    """A small built-in regression model with a fitted, clearly non-zero reference."""
    model, draw, g = reference_model()
    x = draw(4)
    attr = {k: torch.randn(v.shape, generator=g) for k, v in x.items()}
    return model, x, attr


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_curves_default_to_the_models_reference(mode: str) -> None:
    model, x, attr = _reference_model()
    specs = model.modality_specs
    ref = model.reference.inputs_like(x)
    assert float(ref["image"].abs().min()) > 0.5 and float(ref["tabular"].abs().min()) > 1.0
    kw = dict(mode=mode, steps=3, patch_size=3)
    default = perturbation_curves(model, x, attr, specs, **kw)
    given = perturbation_curves(model, x, attr, specs, baselines=ref, **kw)
    zeros = perturbation_curves(model, x, attr, specs, baselines={"image": 0.0, "text": 0, "tabular": 0.0}, **kw)
    assert set(default) == {"image", "text", "tabular"}
    for m in default:
        np.testing.assert_allclose(default[m].curve, given[m].curve, rtol=1e-6)
        np.testing.assert_allclose(default[m].random_curve, given[m].random_curve, rtol=1e-6)
    # tokens: the reference is the pad id, exactly zero-filling; the others differ
    np.testing.assert_allclose(default["text"].curve, zeros["text"].curve, rtol=1e-6)
    for m in ("image", "tabular"):
        end = -1 if mode == "deletion" else 0  # the all-absent end of the curve
        assert np.abs(default[m].curve[:, end] - zeros[m].curve[:, end]).max() > 1e-6
    one = perturbation_curve(model, x, attr, specs[2], mode=mode, steps=3)
    np.testing.assert_allclose(one.curve, default["tabular"].curve, rtol=1e-6)


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_factorised_curves_are_the_full_forwards_curves(mode: str) -> None:
    """On a built-in model the kept modalities are encoded once per sample and only the
    perturbed one per row; the curves are the ones full forwards give."""
    from mmexplain.data import load_dataset
    from mmexplain.models import ModelConfig, build_model

    splits, tok = load_dataset("synthetic:additive", limit=64, seed=0, modalities=["image", "text", "tabular"])
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("attention"), splits.train, tok).eval()
    x, y = splits.test.inputs(range(5)), splits.test.target(range(5))
    gen = torch.Generator().manual_seed(0)
    maps = {"image": torch.randn(5, *x["image"].shape[1:], generator=gen),
            "text": torch.randn(*x["text"].shape, generator=gen)}
    specs = [s for s in model.modality_specs if s.name in maps]
    rows: dict[str, list[int]] = {m: [] for m in model.modalities}
    hooks = [model.encoders[m].register_forward_hook(lambda mod, inp, out, m=m: rows[m].append(inp[0].shape[0]))
             for m in model.modalities]
    fast = perturbation_curves(model, x, maps, specs, target=y, mode=mode, steps=4)  # auto: factorised
    # image curve, then text curve: the perturbed modality on 2 orders x 5 samples x 5 steps,
    # the kept ones once per sample
    assert rows == {"image": [50, 5], "text": [5, 50], "tabular": [5, 5]}
    for r in rows.values():
        r.clear()
    full = perturbation_curves(model, x, maps, specs, target=y, mode=mode, steps=4, factorised=False)
    assert rows == {m: [50, 50] for m in model.modalities}
    for h in hooks:
        h.remove()
    for m in maps:
        np.testing.assert_allclose(fast[m].curve, full[m].curve, atol=1e-5)
        np.testing.assert_allclose(fast[m].random_curve, full[m].random_curve, atol=1e-5)
