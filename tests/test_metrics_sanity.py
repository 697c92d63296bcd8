"""Cascading model-parameter randomisation (Adebayo et al. 2018) with real Captum methods."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from torch import nn

from mmexplain.exceptions import ConfigError
from mmexplain.metrics.sanity import (
    SanityCheckResult,
    cascading_randomisation,
    parameterised_layers,
    randomise_layer,
)

NAMES = ["image", "tabular"]


class Fusion(nn.Module):
    """Tiny late-fusion classifier: a conv branch for 1x8x8 images, a linear branch for 10 features."""

    def __init__(self) -> None:
        super().__init__()
        self.img = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 16)
        )
        self.tab = nn.Linear(10, 16)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, image: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.img(image), self.tab(tabular)], dim=1))


@pytest.fixture
def setup() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = Fusion().eval()
    g = torch.Generator().manual_seed(1)
    inputs = {
        "image": torch.randn(8, 1, 8, 8, generator=g),
        "tabular": torch.randn(8, 10, generator=g),
    }
    return model, inputs


def captum_explainer(cls, **kwargs):
    """explain_fn for a Captum attribution class over all modalities at once."""

    def explain(
        model: nn.Module, inputs: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        def forward(*xs: torch.Tensor) -> torch.Tensor:
            return model(**dict(zip(NAMES, xs)))

        xs = tuple(inputs[k].clone().requires_grad_(True) for k in NAMES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attrs = cls(forward).attribute(xs, target=target, **kwargs)
        return dict(zip(NAMES, attrs))

    return explain


def edge_detector(
    model: nn.Module, inputs: dict[str, torch.Tensor], target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Ignores the model entirely: a map of the input itself."""
    return {k: v.clone() for k, v in inputs.items()}


def test_parameterised_layers_top_first(setup) -> None:
    model, _ = setup
    assert parameterised_layers(model) == ["head.3", "head.1", "tab", "img.3", "img.0"]


@pytest.mark.parametrize(
    "explain",
    [captum_explainer(Saliency), captum_explainer(IntegratedGradients, n_steps=16)],
    ids=["saliency", "ig"],
)
def test_model_dependent_methods_pass(setup, explain) -> None:
    model, inputs = setup
    res = cascading_randomisation(model, explain, inputs, target=0, seed=0)
    assert isinstance(res, SanityCheckResult)
    assert res.layers == parameterised_layers(model) and res.steps == [1, 2, 3, 4, 5]
    assert res.mean_correlation.shape == (5,) and set(res.modality_correlation) == set(NAMES)
    assert res.final_correlation.shape == (8,)
    assert res.passed and abs(res.final_mean) < 0.5
    assert res.final_mean == pytest.approx(res.mean_correlation[-1])
    # every modality passes on its own, which is what the verdict requires
    assert res.passed_by_modality == {"image": True, "tabular": True}
    assert res.failed_modalities == []
    for m in NAMES:
        assert res.final_by_modality[m] == pytest.approx(res.modality_correlation[m][-1])
        assert abs(res.final_by_modality[m]) < 0.5
    # no NaN here, so the overall mean is the mean of the per-modality means
    assert res.final_mean == pytest.approx(np.mean(list(res.final_by_modality.values())))


def test_edge_detector_fails(setup) -> None:
    model, inputs = setup
    res = cascading_randomisation(model, edge_detector, inputs, target=0)
    assert not res.passed
    np.testing.assert_allclose(res.mean_correlation, 1.0)
    np.testing.assert_allclose(res.final_correlation, 1.0)
    assert res.passed_by_modality == {"image": False, "tabular": False}
    assert res.final_by_modality == pytest.approx({"image": 1.0, "tabular": 1.0})


def test_one_modality_ignoring_the_model_fails_the_method(setup) -> None:
    model, inputs = setup
    saliency = captum_explainer(Saliency)
    fixed = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(5))

    def image_fixed(
        m: nn.Module, x: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        # the image map never changes with the weights; the tabular one is the real gradient
        return {"image": fixed.clone(), "tabular": saliency(m, x, target)["tabular"]}

    res = cascading_randomisation(model, image_fixed, inputs, target=0)
    assert not res.passed
    assert res.passed_by_modality == {"image": False, "tabular": True}
    assert res.failed_modalities == ["image"]
    assert res.final_by_modality["image"] == pytest.approx(1.0)
    np.testing.assert_allclose(res.modality_correlation["image"], 1.0)
    assert abs(res.final_by_modality["tabular"]) < 0.5
    # the mean over modalities alone would have let the method through
    assert abs(res.final_mean) < res.threshold
    final = res.to_frame().query("final").set_index("modality")
    assert final["passed"].to_dict() == {"overall": False, "image": False, "tabular": True}
    assert final.loc["image", "correlation"] == pytest.approx(1.0)


def test_modality_with_undefined_correlation_fails(setup) -> None:
    model, inputs = setup
    saliency = captum_explainer(Saliency)

    def image_blank(
        m: nn.Module, x: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        # an all-zero image map before and after: no ranking to compare, correlation NaN
        return {"image": torch.zeros(8, 1, 8, 8), "tabular": saliency(m, x, target)["tabular"]}

    res = cascading_randomisation(model, image_blank, inputs, target=0)
    assert np.isnan(res.final_by_modality["image"])
    assert res.passed_by_modality == {"image": False, "tabular": True}
    assert not res.passed


def test_caller_model_and_global_rng_untouched_and_deterministic(setup) -> None:
    model, inputs = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    explain = captum_explainer(Saliency)
    a = cascading_randomisation(model, explain, inputs, target=torch.tensor([0, 1] * 4), seed=7)
    b = cascading_randomisation(model, explain, inputs, target=torch.tensor([0, 1] * 4), seed=7)
    c = cascading_randomisation(model, explain, inputs, target=torch.tensor([0, 1] * 4), seed=8)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    torch.testing.assert_close(torch.get_rng_state(), rng_state)
    np.testing.assert_array_equal(a.mean_correlation, b.mean_correlation)
    assert not np.allclose(a.mean_correlation, c.mean_correlation)


def test_layers_and_max_steps(setup) -> None:
    model, inputs = setup
    explain = captum_explainer(Saliency)
    full = cascading_randomisation(model, explain, inputs, target=0)
    sub = cascading_randomisation(model, explain, inputs, target=0, max_steps=2)
    assert sub.steps == [1, 5]
    np.testing.assert_allclose(sub.mean_correlation, full.mean_correlation[[0, 4]])
    only_head = cascading_randomisation(model, explain, inputs, target=0, layers=["head.3"])
    assert only_head.layers == ["head.3"] and only_head.steps == [1]
    np.testing.assert_allclose(only_head.mean_correlation, full.mean_correlation[:1])
    frame = full.to_frame()
    assert len(frame) == 5 * 3 and set(frame["modality"]) == {"overall", *NAMES}
    assert frame["last_layer"].iloc[-1] == "img.0"
    assert frame["final"].sum() == 3 and frame["final"].iloc[-3:].all()
    assert frame["passed"].iloc[:-3].isna().all()  # earlier steps are not judged
    assert frame["passed"].iloc[-3:].tolist() == [True, True, True]


def test_to_frame_by_hand() -> None:
    res = SanityCheckResult(
        layers=["head", "body"],
        steps=[1, 2],
        mean_correlation=np.array([0.8, 0.3]),
        modality_correlation={"image": np.array([0.9, 0.55]), "text": np.array([0.7, 0.05])},
        final_correlation=np.array([0.3]),
        final_mean=0.3,
        threshold=0.5,
        passed=False,
        final_by_modality={"image": 0.55, "text": 0.05},
        passed_by_modality={"image": False, "text": True},
    )
    frame = res.to_frame()
    assert list(frame.columns) == [
        "step",
        "n_randomised",
        "last_layer",
        "modality",
        "correlation",
        "final",
        "passed",
    ]
    assert frame["modality"].tolist() == ["overall", "image", "text"] * 2
    assert frame["last_layer"].tolist() == ["head"] * 3 + ["body"] * 3
    assert frame["correlation"].tolist() == [0.8, 0.9, 0.7, 0.3, 0.55, 0.05]
    assert frame["final"].tolist() == [False] * 3 + [True] * 3
    assert frame["passed"].iloc[3:].tolist() == [False, False, True]
    assert frame["passed"].iloc[:3].isna().all()
    assert res.failed_modalities == ["image"]


def test_randomise_layer_fallback_and_seed() -> None:
    class Scale(nn.Module):  # no reset_parameters
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.linspace(-1, 1, 20))

    a, b = Scale(), Scale()
    original = a.weight.detach().clone()
    randomise_layer(a, seed=3)
    randomise_layer(b, seed=3)
    assert not torch.allclose(a.weight, original)
    torch.testing.assert_close(a.weight, b.weight)
    lin = nn.Linear(4, 4)
    w = lin.weight.detach().clone()
    randomise_layer(lin, seed=0)
    assert not torch.allclose(lin.weight, w)


def test_constant_map_after_randomisation_counts_as_zero(setup) -> None:
    model, inputs = setup
    calls = {"n": 0}

    def collapses(
        m: nn.Module, x: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == 1:
            return {k: v.clone() for k, v in x.items()}
        return {k: torch.zeros_like(v) for k, v in x.items()}

    res = cascading_randomisation(model, collapses, inputs, target=0, layers=["head.3"])
    np.testing.assert_allclose(res.final_correlation, 0.0)
    assert res.passed
    assert res.passed_by_modality == {"image": True, "tabular": True}


def test_valid_masks_restrict_compared_units(setup) -> None:
    model, inputs = setup
    valid = torch.zeros(8, 10, dtype=torch.bool)
    valid[:, :5] = True
    calls = {"n": 0}

    def half_changes(
        m: nn.Module, x: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        tab = x["tabular"].clone()
        if calls["n"] > 1:
            tab[:, 5:] = torch.randn(8, 5, generator=torch.Generator().manual_seed(calls["n"]))
        return {"tabular": tab}

    res = cascading_randomisation(
        model, half_changes, inputs, target=0, layers=["tab"], valid_masks={"tabular": valid}
    )
    np.testing.assert_allclose(res.final_correlation, 1.0)  # the compared half never changed
    assert res.passed_by_modality == {"tabular": False} and not res.passed


def test_errors(setup) -> None:
    model, inputs = setup
    with pytest.raises(ConfigError, match="layers"):
        cascading_randomisation(model, edge_detector, inputs, target=0, layers=["nope"])
    with pytest.raises(ConfigError, match="threshold"):
        cascading_randomisation(model, edge_detector, inputs, target=0, threshold=2.0)
    with pytest.raises(ConfigError, match="max_steps"):
        cascading_randomisation(model, edge_detector, inputs, target=0, max_steps=0)
    with pytest.raises(TypeError, match="explain_fn"):
        cascading_randomisation(model, lambda m, x, t: [1], inputs, target=0)
    with pytest.raises(TypeError, match="explain_fn"):
        cascading_randomisation(model, "saliency", inputs, target=0)
    with pytest.raises(TypeError, match="model"):
        cascading_randomisation(lambda **kw: None, edge_detector, inputs, target=0)
    with pytest.raises(TypeError, match="layers"):
        cascading_randomisation(model, edge_detector, inputs, target=0, layers="head.3")
