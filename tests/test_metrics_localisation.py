"""Localisation metrics: hand-computed cases and agreement with Quantus on the same arrays."""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

from mmexplain.metrics.localisation import (
    LOCALISATION_METRICS,
    chance_level,
    evidence_rank,
    evidence_rank_chance,
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
    attr = torch.tensor(
        [
            [0.1, 0.9, 0.3],
            [0.5, 0.5, 0.1],
            [0.5, 0.5, 0.1],
            [1.0, 0.0, 0.0],
            [0.7, 0.7, 0.7],
            [float("nan"), 1.0, 0.0],
        ]
    )
    mask = torch.tensor(
        [
            [False, True, False],
            [False, True, False],
            [False, False, True],
            [False] * 3,
            [True, False, True],
            [False, True, False],
        ]
    )
    out = pointing_game(attr, mask)
    # unique maximum inside: 1; two-way tie with one inside: 1/2; tie wholly outside: 0
    assert out[:3].tolist() == [1.0, 0.5, 0.0]
    assert math.isnan(out[3].item())  # empty mask
    assert out[4].item() == pytest.approx(2 / 3)  # three-way tie, two inside
    assert math.isnan(out[5].item())  # a NaN in the map leaves no defined maximum


def test_constant_map_scores_chance_in_the_pointing_game() -> None:
    mask = torch.zeros(3, 4, 5, dtype=torch.bool)
    mask[0, :2, :] = True  # 10 of 20
    mask[1, 0, 0] = True  # 1 of 20
    mask[2, 1:4, 1:4] = True  # 9 of 20
    expected = torch.tensor([0.5, 0.05, 0.45])
    for attr in (torch.zeros(3, 4, 5), torch.full((3, 2, 4, 5), 3.5)):  # all-zero, constant RGB-ish
        out = pointing_game(attr, mask)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(out, chance_level("pointing_game", mask))
        assert out.tolist() != [1.0, 1.0, 1.0]  # the old rule: any tied maximum inside is a hit


def test_pointing_game_matches_quantus_except_on_ties() -> None:
    attr, mask = _random_case(seed=1)
    pixel = attr.sum(axis=1, keepdims=True)
    pixel[0, 0, 2, 2] = pixel[0, 0, 5, 5] = pixel.max() + 1  # a tie across the mask border
    mask[0] = False
    mask[0, 5, 5] = True
    ours = pointing_game(torch.from_numpy(pixel[:, 0]), torch.from_numpy(mask)).numpy()
    theirs = _quantus(quantus.PointingGame, pixel, mask)
    np.testing.assert_array_equal(ours[1:], theirs[1:])  # unique maxima: identical
    assert set(ours[1:].tolist()) <= {0.0, 1.0}
    assert theirs[0] == 1.0  # Quantus: a tie with any maximal unit inside is a hit
    assert ours[0] == 0.5  # we: one of the two maximal units is inside
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


def test_chance_level_of_area_metrics_by_hand() -> None:
    mask = torch.zeros(3, 4, 5, dtype=torch.bool)
    mask[0, :2, :] = True
    mask[1, 0, 0] = True
    for metric in ("mass_in_mask", "pointing_game"):
        out = chance_level(metric, mask)
        np.testing.assert_allclose(out[:2].numpy(), [0.5, 0.05])
        assert math.isnan(out[2].item())  # the metric is undefined for an empty mask
    assert mask_area_fraction(mask)[2].item() == 0.0  # the plain area fraction stays 0


def test_chance_level_of_token_metrics_by_hand() -> None:
    evidence = torch.tensor(
        [
            [False, True, False, False],  # T=4, k=1
            [True, False, False, True],  # T=4, k=2
            [True, True, True, True],  # T=4, k=4: rank 1 for sure
            [False] * 4,  # no evidence
        ]
    )
    chance = evidence_rank_chance(evidence)
    # E[R] = (T + 1) / (k + 1)
    np.testing.assert_allclose(chance.rank[:3].numpy(), [5 / 2, 5 / 3, 1.0])
    # k=1: R uniform on 1..4, E[1/R] = (1 + 1/2 + 1/3 + 1/4) / 4 = 25/48
    # k=2: P(R=1, 2, 3) = 3/6, 2/6, 1/6, E[1/R] = 1/2 + 1/6 + 1/18 = 13/18
    np.testing.assert_allclose(chance.reciprocal_rank[:3].numpy(), [25 / 48, 13 / 18, 1.0])
    assert math.isnan(chance.rank[3].item()) and math.isnan(chance.reciprocal_rank[3].item())
    torch.testing.assert_close(chance_level("evidence_rank", evidence), chance.rank, equal_nan=True)
    torch.testing.assert_close(
        chance_level("reciprocal_rank", evidence), chance.reciprocal_rank, equal_nan=True
    )
    # padding does not compete, and evidence on padding is ignored (as in evidence_rank)
    valid = torch.tensor([[True, True, True, False]] * 4)
    masked = evidence_rank_chance(evidence, valid)
    # rows 0 and 1 now T=3, k=1: E[R] = 2, E[1/R] = (1 + 1/2 + 1/3) / 3 = 11/18
    np.testing.assert_allclose(masked.rank[:3].numpy(), [2.0, 2.0, 1.0])
    np.testing.assert_allclose(masked.reciprocal_rank[:3].numpy(), [11 / 18, 11 / 18, 1.0])
    torch.testing.assert_close(
        chance_level("reciprocal_rank", evidence, valid), masked.reciprocal_rank, equal_nan=True
    )


@pytest.mark.parametrize("n_tokens, n_evidence", [(1, 1), (5, 1), (5, 2), (7, 3), (8, 7)])
def test_reciprocal_rank_chance_matches_enumeration(n_tokens: int, n_evidence: int) -> None:
    # every placement of the k evidence tokens among T positions is equally likely
    placements = list(itertools.combinations(range(1, n_tokens + 1), n_evidence))
    exact_rr = sum(Fraction(1, min(p)) for p in placements) / len(placements)
    exact_rank = sum(Fraction(min(p)) for p in placements) / len(placements)
    evidence = torch.zeros(1, n_tokens, dtype=torch.bool)
    evidence[0, :n_evidence] = True
    chance = evidence_rank_chance(evidence)
    assert chance.rank.item() == pytest.approx(float(exact_rank), rel=1e-6)
    assert chance.reciprocal_rank.item() == pytest.approx(float(exact_rr), rel=1e-6)


def test_chance_of_long_sequences_stays_finite() -> None:
    evidence = torch.zeros(1, 3000, dtype=torch.bool)  # C(3000, 1500) overflows a float
    evidence[0, :1500] = True
    chance = evidence_rank_chance(evidence)
    assert chance.rank.item() == pytest.approx(3001 / 1501)
    assert 0.5 < chance.reciprocal_rank.item() < 1.0  # P(R = 1) alone is 1/2


def _monte_carlo(values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its standard error over draws, per sample; ``values`` is (draws, N)."""
    v = values.double().numpy()
    return v.mean(axis=0), v.std(axis=0, ddof=1) / np.sqrt(v.shape[0])


def test_area_chance_levels_match_random_maps() -> None:
    g = torch.Generator().manual_seed(0)
    draws = 4000
    mask = torch.zeros(3, 4, 5, dtype=torch.bool)
    mask[0, :2, :] = True
    mask[1, 0, 0] = True
    mask[2, 1:4, 1:4] = True
    attr = torch.randn(draws, 3, 2, 4, 5, generator=g)  # i.i.d. two-channel maps
    flat_mask = mask.repeat(draws, 1, 1)
    for metric, fn in (("mass_in_mask", mass_in_mask), ("pointing_game", pointing_game)):
        scores = fn(attr.reshape(draws * 3, 2, 4, 5), flat_mask).reshape(draws, 3)
        mean, se = _monte_carlo(scores)
        chance = chance_level(metric, mask).numpy()
        assert np.all(se < 0.01)  # enough draws for a tight check
        assert np.all(np.abs(mean - chance) < 4 * se), (metric, mean, chance, se)


def test_token_chance_levels_match_random_maps() -> None:
    g = torch.Generator().manual_seed(1)
    draws = 20000
    evidence = torch.zeros(4, 12, dtype=torch.bool)
    evidence[0, 3] = True  # T=12, k=1
    evidence[1, [0, 5, 11]] = True  # T=12, k=3
    evidence[2, [2, 9]] = True  # T=8 (below), k=1: token 9 is padding
    evidence[3, :6] = True  # T=12, k=6
    valid = torch.ones(4, 12, dtype=torch.bool)
    valid[2, 8:] = False
    attr = torch.randn(draws * 4, 12, generator=g)
    out = evidence_rank(attr, evidence.repeat(draws, 1), valid.repeat(draws, 1))
    chance = evidence_rank_chance(evidence, valid)
    np.testing.assert_allclose(chance.rank.numpy(), [13 / 2, 13 / 4, 9 / 2, 13 / 7], rtol=1e-6)
    for got, expected in ((out.rank, chance.rank), (out.reciprocal_rank, chance.reciprocal_rank)):
        mean, se = _monte_carlo(got.reshape(draws, 4))
        assert np.all(se < 0.03)
        assert np.all(np.abs(mean - expected.numpy()) < 4 * se), (mean, expected, se)


def test_chance_level_errors() -> None:
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert set(LOCALISATION_METRICS) == {
        "mass_in_mask",
        "pointing_game",
        "evidence_rank",
        "reciprocal_rank",
    }
    with pytest.raises(ValueError, match="metric must be one of .*'mrr'"):
        chance_level("mrr", mask)
    with pytest.raises(ValueError, match="valid_mask applies to evidence_rank"):
        chance_level("pointing_game", mask, valid_mask=mask)
    with pytest.raises(ValueError, match="mask must be \\(N, T\\)"):
        chance_level("evidence_rank", torch.ones(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid_mask must match mask's shape"):
        chance_level("reciprocal_rank", mask, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="evidence_mask must be \\(N, T\\)"):
        evidence_rank_chance(torch.ones(2, dtype=torch.bool).reshape(1, 1, 2))
    with pytest.raises(ValueError, match="boolean"):
        evidence_rank_chance(torch.tensor([[0.5, 1.0]]))
