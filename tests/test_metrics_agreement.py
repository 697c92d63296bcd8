"""Agreement between explanation maps: scipy as the reference, hand cases, the tidy matrix."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from mmexplain.exceptions import ConfigError
from mmexplain.metrics.agreement import agreement_matrix, rank_agreement, top_k_overlap


def test_identical_and_reversed_maps() -> None:
    a = torch.arange(12.0).reshape(2, 2, 3)
    for method in ("spearman", "kendall"):
        np.testing.assert_allclose(rank_agreement(a, a, method=method).numpy(), [1.0, 1.0])
        reversed_ = -a
        np.testing.assert_allclose(
            rank_agreement(a, reversed_, method=method).numpy(), [-1.0, -1.0]
        )


def test_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(4, 3, 5)).astype(float)  # many ties
    b = rng.integers(0, 4, size=(4, 3, 5)).astype(float)
    rho = rank_agreement(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    tau = rank_agreement(a, b, method="kendall").numpy()
    for i in range(4):
        assert rho[i] == pytest.approx(stats.spearmanr(a[i].ravel(), b[i].ravel()).statistic)
        assert tau[i] == pytest.approx(stats.kendalltau(a[i].ravel(), b[i].ravel()).statistic)


def test_absolute_and_valid_mask() -> None:
    a = torch.tensor([[1.0, -2.0, 3.0, 100.0]])
    b = torch.tensor([[1.0, 2.0, 3.0, -50.0]])
    assert rank_agreement(a, b, absolute=True).item() == pytest.approx(1.0)
    valid = torch.tensor([[True, True, True, False]])
    assert rank_agreement(a.abs(), b, valid_mask=valid).item() == pytest.approx(1.0)
    expected = stats.spearmanr([1, -2, 3], [1, 2, 3]).statistic
    assert rank_agreement(a, b, valid_mask=valid).item() == pytest.approx(expected)


def test_constant_map_is_nan() -> None:
    a = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    b = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    out = rank_agreement(a, b)
    assert math.isnan(out[0].item()) and out[1].item() == pytest.approx(1.0)


def test_top_k_overlap_by_hand() -> None:
    a = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    b = torch.tensor([[4.0, 1.0, 3.0, 2.0]])
    assert top_k_overlap(a, b, 2).item() == pytest.approx(0.5)  # {0, 1} vs {0, 2}
    assert top_k_overlap(a, b, 0.5).item() == pytest.approx(0.5)
    assert top_k_overlap(a, b, 3).item() == pytest.approx(2 / 3)  # {0, 1, 2} vs {0, 2, 3}
    assert top_k_overlap(a, b, 10).item() == pytest.approx(1.0)  # k capped at the unit count
    assert top_k_overlap(a, a, 1).item() == 1.0
    assert top_k_overlap(a, -a, 2).item() == 0.0
    assert top_k_overlap(-a, b, 1, absolute=True).item() == 1.0
    valid = torch.tensor([[False, True, True, True]])
    assert top_k_overlap(a, b, 1, valid_mask=valid).item() == 0.0  # 1 vs 2


def test_agreement_matrix_is_tidy_and_symmetric() -> None:
    base = torch.arange(10.0).reshape(2, 5)
    maps = {
        "ig": {"text": base, "image": torch.arange(24.0).reshape(2, 3, 2, 2)},
        "shap": {"text": base * 2, "image": torch.arange(24.0).reshape(2, 3, 2, 2).flip(-1)},
        "rev": {"text": -base},
    }
    df = agreement_matrix(maps)
    assert list(df.columns) == [
        "method_a",
        "method_b",
        "modality",
        "correlation",
        "std",
        "n_samples",
    ]
    assert len(df) == 3 * 3 + 2 * 2  # text for every ordered pair, image only between ig and shap
    lookup = df.set_index(["method_a", "method_b", "modality"])["correlation"]
    assert lookup[("ig", "shap", "text")] == pytest.approx(1.0)
    assert lookup[("ig", "rev", "text")] == pytest.approx(-1.0)
    assert lookup[("rev", "ig", "text")] == pytest.approx(-1.0)
    assert lookup[("rev", "rev", "text")] == pytest.approx(1.0)
    assert ("rev", "ig", "image") not in lookup.index
    pivot = df[df.modality == "text"].pivot(
        index="method_a", columns="method_b", values="correlation"
    )
    pd.testing.assert_frame_equal(pivot, pivot.T, check_names=False)
    expected = float(rank_agreement(maps["ig"]["image"], maps["shap"]["image"]).mean())
    assert lookup[("ig", "shap", "image")] == pytest.approx(expected)
    kendall = agreement_matrix(maps, method="kendall")
    assert kendall.set_index(["method_a", "method_b", "modality"]).loc[
        ("ig", "rev", "text"), "correlation"
    ] == pytest.approx(-1.0)


def test_errors_name_the_argument() -> None:
    a = torch.ones(2, 3)
    with pytest.raises(ConfigError, match="method"):
        rank_agreement(a, a, method="pearson")
    with pytest.raises(ValueError, match="attr_b"):
        rank_agreement(a, torch.ones(2, 4))
    with pytest.raises(ValueError, match="batch first"):
        rank_agreement(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="valid_mask"):
        rank_agreement(a, a, valid_mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="k"):
        top_k_overlap(a, a, 0)
    with pytest.raises(ConfigError, match="k"):
        top_k_overlap(a, a, 1.5)
    with pytest.raises(TypeError, match="maps"):
        agreement_matrix({})
    with pytest.raises(TypeError, match="maps\\['x'\\]"):
        agreement_matrix({"x": a})
