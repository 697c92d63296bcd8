"""Missing-modality and corruption robustness with models whose reliance is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _builders import reference_model
from sklearn.metrics import f1_score
from torch import nn

from mmexplain.exceptions import ConfigError
from mmexplain.metrics.robustness import (
    NoiseRobustness,
    corrupt,
    missing_modality,
    model_score,
    noise_robustness,
    score_outputs,
)
from mmexplain.modality import ModalitySpec


class UsesTabularOnly(nn.Module):
    """3-class classifier from ``tabular``; ``image`` and ``text`` are accepted and ignored."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(6, 3)
        self.calls = 0

    def forward(
        self, tabular: torch.Tensor, image: torch.Tensor, text: torch.Tensor
    ) -> torch.Tensor:
        self.calls += 1
        return self.lin(tabular) + 0.0 * image.sum() + 0.0 * text.sum()


@pytest.fixture
def case():
    model = UsesTabularOnly().eval()
    g = torch.Generator().manual_seed(1)
    inputs = {
        "tabular": torch.randn(30, 6, generator=g) * 3,
        "image": torch.rand(30, 3, 4, 4, generator=g),
        "text": torch.randint(1, 9, (30, 5), generator=g),
    }
    with torch.no_grad():
        labels = model(**inputs).argmax(dim=1)  # the model is right on every sample
    model.calls = 0
    return model, inputs, labels


BASELINES = {"tabular": 0.0, "image": 0.0, "text": 0}


def test_missing_modality_ignored_modalities_change_nothing(case) -> None:
    model, inputs, labels = case
    df = missing_modality(model, inputs, labels, BASELINES)
    assert list(df.columns) == ["removed", "condition", "n_removed", "metric", "score", "delta"]
    assert df["condition"].tolist() == [
        "all", "-tabular", "-image", "-text", "-tabular-image", "-tabular-text", "-image-text",
    ]  # fmt: skip
    score = df.set_index("condition")["score"]
    assert score["all"] == 1.0
    assert score["-image"] == score["-text"] == score["-image-text"] == 1.0
    # without tabular every logit is the bias: one class for all, accuracy = its share
    bias_class = int(model.lin.bias.argmax())
    expected = float((labels == bias_class).float().mean())
    assert expected < 1.0
    assert score["-tabular"] == pytest.approx(expected)
    assert score["-tabular-image"] == pytest.approx(expected)
    assert df.set_index("condition")["delta"]["-tabular"] == pytest.approx(expected - 1.0)
    assert model.calls == 1  # every condition in one batched pass (1 + 3 + 3 conditions)


def test_missing_modality_batches_pairs_and_macro_f1(case) -> None:
    model, inputs, labels = case
    a = missing_modality(
        model, inputs, labels, BASELINES, metric="macro_f1", pairs=False, max_batch_size=16
    )
    assert len(a) == 4 and model.calls == int(np.ceil(4 * 30 / 16))
    with torch.no_grad():
        pred = model.lin(torch.zeros(30, 6)).argmax(dim=1)
    expected = f1_score(labels.numpy(), pred.numpy(), average="macro", zero_division=0)
    assert a.set_index("condition")["score"]["-tabular"] == pytest.approx(expected)
    five = {**inputs, "a": torch.zeros(30, 1), "b": torch.zeros(30, 1)}

    class Five(nn.Module):
        def forward(self, tabular, image, text, a, b) -> torch.Tensor:
            return model(tabular=tabular, image=image, text=text)

    df = missing_modality(Five(), five, labels, {**BASELINES, "a": 0.0, "b": 0.0})
    assert df["n_removed"].max() == 1  # no pairs by default beyond 4 modalities


def test_missing_modality_regression_mse() -> None:
    class Reg(nn.Module):
        def forward(self, x: torch.Tensor, unused: torch.Tensor) -> torch.Tensor:
            return x.sum(dim=1)

    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = torch.tensor([3.0, 6.0])
    df = missing_modality(
        Reg(), {"x": x, "unused": torch.ones(2, 3)}, y, {"x": 0.0, "unused": 0.0}, metric="mse"
    )
    score = df.set_index("condition")["score"]
    assert score["all"] == pytest.approx(0.5)  # errors 0 and 1
    assert score["-unused"] == pytest.approx(0.5)
    assert score["-x"] == pytest.approx((9 + 36) / 2)


def test_noise_robustness_gaussian(case) -> None:
    model, inputs, labels = case
    flat = noise_robustness(
        model, inputs, labels, modality="image", strengths=[0.0, 1.0, 5.0], seed=0
    )
    assert isinstance(flat, NoiseRobustness)
    np.testing.assert_allclose(flat.scores, 1.0)
    assert flat.clean_score == 1.0 and flat.normalised_auc == pytest.approx(1.0)
    hit = noise_robustness(
        model, inputs, labels, modality="tabular", strengths=[0.0, 0.5, 2.0, 8.0], seed=0
    )
    assert hit.scores[0] == 1.0 and hit.scores[-1] < 0.8
    auc = sum(
        (hit.scores[i] + hit.scores[i + 1]) / 2 * d for i, d in enumerate(np.diff(hit.strengths))
    )
    assert hit.normalised_auc == pytest.approx(auc / 8.0)
    again = noise_robustness(
        model, inputs, labels, modality="tabular", strengths=[0.0, 0.5, 2.0, 8.0], seed=0
    )
    np.testing.assert_array_equal(hit.scores, again.scores)
    frame = hit.to_frame()
    assert len(frame) == 4 and list(frame["strength"]) == [0.0, 0.5, 2.0, 8.0]


def test_noise_robustness_mask_and_dropout_on_ignored_modalities(case) -> None:
    model, inputs, labels = case
    spec = ModalitySpec("image", "image")
    res = noise_robustness(
        model, inputs, labels, modality=spec, strengths=[0.0, 0.5, 1.0], kind="mask"
    )
    np.testing.assert_allclose(res.scores, 1.0)
    res = noise_robustness(
        model, inputs, labels, modality="text", strengths=[0.25, 1.0], kind="token_dropout"
    )
    np.testing.assert_allclose(res.scores, 1.0)
    assert res.normalised_auc == pytest.approx(1.0)


def test_corrupt_token_dropout_counts_and_nesting() -> None:
    text = torch.tensor([[5, 6, 7, 8, 0, 0], [1, 2, 3, 4, 5, 6]])
    out = corrupt(
        text, [0.0, 0.5, 1.0], kind="token_dropout", modality_kind="tokens", pad_id=0, seed=0
    )
    assert out.shape == (3, 2, 6)
    torch.testing.assert_close(out[0], text)
    assert (out[1] == 0).sum(dim=1).tolist() == [2 + 2, 3]  # 2 of 4 real tokens (+2 pads), 3 of 6
    assert (out[2] == 0).all()
    dropped_half = out[1] == 0
    assert torch.all(out[2][dropped_half] == 0)  # a higher strength drops a superset


def test_corrupt_mask_replaces_whole_pixels() -> None:
    img = torch.ones(1, 3, 2, 2)
    out = corrupt(img, [0.5], kind="mask", modality_kind="image", baseline=-1.0, seed=0)
    pixel_masked = (out[0, 0] == -1.0).all(dim=0)
    assert pixel_masked.sum() == 2
    assert torch.all((out[0] == -1.0) == pixel_masked.unsqueeze(0))  # all channels together


def test_corrupt_gaussian_scales_with_modality_std() -> None:
    x = torch.randn(200, 50, generator=torch.Generator().manual_seed(0)) * 4.0
    out = corrupt(x, [0.0, 0.5, 1.0], kind="gaussian", seed=0)
    torch.testing.assert_close(out[0], x)
    assert float((out[2] - x).std()) == pytest.approx(float(x.std()), rel=0.05)
    torch.testing.assert_close(out[2] - x, 2 * (out[1] - x))  # the same draw, scaled


def test_score_outputs_and_model_score(case) -> None:
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert score_outputs(logits, [0, 1, 1]) == pytest.approx(2 / 3)
    assert score_outputs(logits, np.array([0, 1, 1]), metric="macro_f1") == pytest.approx(
        f1_score([0, 1, 1], [0, 1, 0], average="macro")
    )
    assert score_outputs(torch.tensor([1.0, 2.0]), [1.0, 4.0], metric="mse") == pytest.approx(2.0)
    model, inputs, labels = case
    assert model_score(model, inputs, labels, max_batch_size=7) == 1.0


def test_errors(case) -> None:
    model, inputs, labels = case
    with pytest.raises(ConfigError, match="metric"):
        missing_modality(model, inputs, labels, BASELINES, metric="auc")
    with pytest.raises(ConfigError, match="unknown modality"):
        missing_modality(model, inputs, labels, {"audio": 0.0})
    with pytest.raises(ValueError, match="baselines"):
        missing_modality(model, inputs, labels, {"tabular": torch.zeros(4)})
    with pytest.raises(TypeError, match="baselines"):
        missing_modality(model, inputs, labels, [0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="mse"):
        missing_modality(model, inputs, labels, BASELINES, metric="mse")
    with pytest.raises(ConfigError, match="metric='accuracy'"):
        score_outputs(torch.tensor([1.0, 2.0]), [1, 2])
    with pytest.raises(ValueError, match="labels"):
        score_outputs(torch.zeros(3, 2), [0, 1])
    with pytest.raises(TypeError, match="gaussian"):
        noise_robustness(model, inputs, labels, modality="text", strengths=[0.1])
    with pytest.raises(ConfigError, match="token_dropout"):
        noise_robustness(
            model, inputs, labels, modality="tabular", strengths=[0.1], kind="token_dropout"
        )
    with pytest.raises(ConfigError, match="strengths"):
        noise_robustness(
            model, inputs, labels, modality="tabular", strengths=[0.5, 1.5], kind="mask"
        )
    with pytest.raises(ConfigError, match="strengths"):
        noise_robustness(model, inputs, labels, modality="tabular", strengths=[1.0, 0.5])
    with pytest.raises(ConfigError, match="strengths"):
        noise_robustness(model, inputs, labels, modality="tabular", strengths=[])
    with pytest.raises(ConfigError, match="kind"):
        noise_robustness(model, inputs, labels, modality="tabular", strengths=[0.1], kind="blur")
    with pytest.raises(ValueError, match="modality"):
        noise_robustness(model, inputs, labels, modality="audio", strengths=[0.1])
    assert isinstance(missing_modality(model, inputs, labels, BASELINES), pd.DataFrame)


def test_missing_modality_partial_baselines_keep_the_default(case) -> None:
    model, inputs, labels = case
    # a model without specs or reference: the default absent value is zeros of each dtype
    full = missing_modality(model, inputs, labels, BASELINES)
    partial = missing_modality(model, inputs, labels, {"tabular": 0.0})
    default = missing_modality(model, inputs, labels)
    pd.testing.assert_frame_equal(full, partial)
    pd.testing.assert_frame_equal(full, default)
    assert default.attrs["baselines"] == {"tabular": "zeros", "image": "zeros", "text": "zeros"}


def _reference_model():
    """A small built-in regression model with a fitted, clearly non-zero reference."""

    model, draw, g = reference_model()
    x = draw(12)
    y = torch.randn(12, generator=g)
    return model, x, y


def test_missing_modality_and_mask_default_to_the_models_reference() -> None:
    model, x, y = _reference_model()
    ref = model.reference.inputs_like(x)
    assert float(ref["image"].abs().min()) > 0.5 and float(ref["tabular"].abs().min()) > 1.0
    default = missing_modality(model, x, y, metric="mse")
    given = missing_modality(model, x, y, ref, metric="mse")
    as_reference = missing_modality(model, x, y, model.reference, metric="mse")
    pd.testing.assert_frame_equal(default, given, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(default, as_reference, check_exact=False, rtol=1e-6)
    assert default.attrs["baselines"]["image"].startswith("channel_mean")
    zeros = missing_modality(model, x, y, {"image": 0.0, "text": 0, "tabular": 0.0}, metric="mse")
    d, z = default.set_index("condition")["score"], zeros.set_index("condition")["score"]
    assert d["all"] == pytest.approx(z["all"])
    assert abs(d["-image"] - z["-image"]) > 1e-6 and abs(d["-tabular"] - z["-tabular"]) > 1e-6

    # noise_robustness "mask": a bare name found in model.modality_specs, absent = reference
    kw = dict(modality="tabular", strengths=[0.0, 0.5, 1.0], kind="mask", metric="mse")
    nr = noise_robustness(model, x, y, **kw)
    nr_ref = noise_robustness(model, x, y, baseline=ref["tabular"], **kw)
    nr_zero = noise_robustness(model, x, y, baseline=0.0, **kw)
    np.testing.assert_allclose(nr.scores, nr_ref.scores, rtol=1e-6)
    assert nr.scores[0] == pytest.approx(nr_zero.scores[0])
    assert abs(nr.scores[-1] - nr_zero.scores[-1]) > 1e-6
    # a fully masked modality is the missing modality
    assert nr.scores[-1] == pytest.approx(d["-tabular"], rel=1e-5)
