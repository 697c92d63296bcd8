"""Localisation metrics: hand-computed cases and agreement with Quantus on the same arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from mmexplain.metrics.localisation import (
    evidence_rank,
    mask_area_fraction,
    mass_in_mask,
    pointing_game,
)

quantus = pytest.importorskip("quantus")


def _quantus(metric_cls, attr_nchw: np.ndarray, mask_nhw: np.ndarray) -> np.ndarray:
    """Run a Quantus localisation metric on precomputed maps (no model needed).

    Quantus wants (N, 1, H, W) maps and masks next to an (N, C, H, W) input from which it
    infers channel order: it cannot when H or W equals C, hence the 3-channel 7x6 images.
    ``normalise=False`` because Quantus' default divides by the max, which changes neither
    metric's value for non-negative maps but would hide a sign bug.
    """
    n, _, h, w = attr_nchw.shape
    x = np.zeros((n, 3, h, w), dtype=np.float32)
    metric = metric_cls(normalise=False, abs=False, disable_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric(
            model=None,
            x_batch=x,
            y_batch=np.zeros(n, dtype=int),
            a_batch=attr_nchw.astype(np.float32),
            s_batch=mask_nhw[:, None].astype(np.float32),
        )
    return np.asarray(scores, dtype=float)


def _random_case(seed: int = 0):
    rng = np.random.default_rng(seed)
    attr = rng.normal(size=(5, 3, 7, 6)).astype(np.float32)  # signed, 3 channels
    mask = np.zeros((5, 7, 6), dtype=bool)
    for i in range(5):
        r, c = rng.integers(0, 4), rng.integers(0, 3)
        mask[i, r : r + 3, c : c + 3] = True
    return attr, mask


def test_mass_in_mask_by_hand() -> None:
    attr = torch.tensor([[[1.0, 2.0], [3.0, -4.0]]])  # (1, 2, 2)
    mask = torch.tensor([[[True, False], [False, True]]])
    # positive mass 1 + 2 + 3 = 6; inside: 1 (the -4 counts as 0)
    assert mass_in_mask(attr, mask).item() == pytest.approx(1 / 6)
    assert mass_in_mask(attr.abs(), mask).item() == pytest.approx(5 / 10)
    # channels are summed before the sign is handled
    two_channels = torch.stack([attr, torch.tensor([[[0.0, 0.0], [0.0, 5.0]]])], dim=1)
    # pixel sums [[1, 2], [3, 1]]: positive mass 7, inside 1 + 1
    assert mass_in_mask(two_channels, mask).item() == pytest.approx(2 / 7)


def test_mass_in_mask_matches_quantus_relevance_mass_accuracy() -> None:
    attr, mask = _random_case()
    ours = mass_in_mask(torch.from_numpy(attr), torch.from_numpy(mask)).numpy()
    pixel = np.clip(attr.sum(axis=1, keepdims=True), 0, None)  # what Arras et al. score
    theirs = _quantus(quantus.RelevanceMassAccuracy, pixel, mask)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    # numpy arrays are accepted as they are
    np.testing.assert_allclose(mass_in_mask(attr, mask).numpy(), ours)


def test_mass_in_mask_undefined_cases_are_nan() -> None:
    attr = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    mask = torch.tensor([[False, False], [True, False]])
    out = mass_in_mask(attr, mask)
    assert math.isnan(out[0].item())  # empty mask
    assert math.isnan(out[1].item())  # no positive mass


def test_mask_area_fraction_is_chance_level_of_a_uniform_map() -> None:
    mask = torch.zeros(2, 4, 5, dtype=torch.bool)
    mask[0, :2, :] = True
    mask[1, 0, 0] = True
    area = mask_area_fraction(mask)
    np.testing.assert_allclose(area.numpy(), [0.5, 0.05])
    torch.testing.assert_close(mass_in_mask(torch.ones(2, 4, 5), mask), area)


def test_pointing_game_by_hand_with_ties() -> None:
    attr = torch.tensor([[0.1, 0.9, 0.3], [0.5, 0.5, 0.1], [0.5, 0.5, 0.1], [1.0, 0.0, 0.0]])
    mask = torch.tensor(
        [[False, True, False], [False, True, False], [False, False, True], [False] * 3]
    )
    out = pointing_game(attr, mask)
    assert out[:3].tolist() == [1.0, 1.0, 0.0]  # a tie for the maximum counts if any is inside
    assert math.isnan(out[3].item())


def test_pointing_game_matches_quantus() -> None:
    attr, mask = _random_case(seed=1)
    pixel = attr.sum(axis=1, keepdims=True)
    pixel[0, 0, 2, 2] = pixel[0, 0, 5, 5] = pixel.max() + 1  # a tie across the mask border
    mask[0] = False
    mask[0, 5, 5] = True
    ours = pointing_game(torch.from_numpy(pixel[:, 0]), torch.from_numpy(mask)).numpy()
    theirs = _quantus(quantus.PointingGame, pixel, mask)
    np.testing.assert_array_equal(ours, theirs)
    # (N, C, H, W) maps are summed over channels first
    np.testing.assert_array_equal(pointing_game(attr, mask).numpy()[1:], ours[1:])


def test_quantus_counts_an_empty_mask_as_a_hit_we_return_nan() -> None:
    attr, mask = _random_case(seed=2)
    pixel = attr.sum(axis=1, keepdims=True)
    mask[0] = False
    theirs = _quantus(quantus.PointingGame, pixel, mask)
    assert theirs[0] == 1.0  # Quantus 0.6 assigns NaN into a bool array, which reads True
    assert math.isnan(pointing_game(pixel[:, 0], mask)[0].item())


def test_evidence_rank_by_hand() -> None:
    attr = torch.tensor(
        [[0.1, 0.5, 0.3, 0.9], [0.1, 0.5, 0.3, 0.9], [0.2, 0.2, 0.2, 0.2], [1.0, 2.0, 3.0, 4.0]]
    )
    evidence = torch.tensor(
        [
            [False, False, True, False],
            [False, False, True, True],
            [True, False, False, False],
            [False] * 4,
        ]
    )
    rank, rr = evidence_rank(attr, evidence)
    assert rank[:3].tolist() == [3.0, 1.0, 4.0]  # a constant map ranks the evidence last
    np.testing.assert_allclose(rr[:3].numpy(), [1 / 3, 1.0, 0.25])
    assert math.isnan(rank[3].item()) and math.isnan(rr[3].item())
    # padding / special tokens do not compete
    valid = torch.tensor([[True, True, True, False]] * 4)
    out = evidence_rank(attr, evidence, valid)
    assert out.rank[0].item() == 2.0
    assert (
        out.rank[1].item() == 2.0
    )  # evidence token 3 is invalid; token 2 (0.3) trails token 1 (0.5)


def test_shape_and_type_errors() -> None:
    with pytest.raises(ValueError, match="does not match"):
        mass_in_mask(torch.ones(2, 3, 4, 4), torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean"):
        pointing_game(torch.ones(1, 3), torch.tensor([[0.5, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="batch first"):
        mask_area_fraction(torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="attr"):
        mass_in_mask(object(), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="token_attr"):
        evidence_rank(torch.ones(1, 2, 3), torch.ones(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="evidence_mask"):
        evidence_rank(torch.ones(1, 3), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid_mask"):
        evidence_rank(
            torch.ones(1, 3), torch.ones(1, 3, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)
        )
