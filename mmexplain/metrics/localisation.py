"""Localisation: does the explanation point at the ground-truth evidence?

For inputs with a known evidence region (an object mask in an image, the tokens that
answer a question), these metrics compare an attribution map with a boolean mask:

* :func:`mass_in_mask` -- the share of positive attribution inside the mask (relevance
  mass accuracy, Arras et al. 2022, "CLEVR-XAI").
* :func:`pointing_game` -- whether the maximum of the map falls inside the mask
  (Zhang et al. 2018). Ties never count as full hits: a sample scores the *expected* hit
  under uniform random tie-breaking, (maximal units inside the mask) / (maximal units),
  so a constant map scores the mask's area fraction (chance) and a unique maximum 0 or 1.
* :func:`evidence_rank` -- for token maps, the rank of the best-ranked evidence token
  (ties broken against the evidence).

Every metric has a chance level, its expected value for a map that carries no
information (units in uniformly random order), from :func:`chance_level`:

* ``mass_in_mask`` and ``pointing_game`` -- the mask's area fraction
  (:func:`mask_area_fraction`);
* ``evidence_rank`` -- ``(T + 1) / (k + 1)`` for ``T`` valid tokens of which ``k`` are
  evidence, and ``reciprocal_rank`` its exact expected reciprocal
  (:func:`evidence_rank_chance`).

All functions work per sample and return tensors of shape (N,).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

LOCALISATION_METRICS = ("mass_in_mask", "pointing_game", "evidence_rank", "reciprocal_rank")
"""Metric names accepted by :func:`chance_level`."""

__all__ = [
    "LOCALISATION_METRICS",
    "EvidenceRank",
    "chance_level",
    "evidence_rank",
    "evidence_rank_chance",
    "mask_area_fraction",
    "mass_in_mask",
    "pointing_game",
]


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    """Accept a tensor or a numpy array / nested list; reject anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{name} must be a torch.Tensor or an array; got {type(value).__name__}."
        ) from None


def _as_mask(mask: Any, name: str = "mask") -> torch.Tensor:
    m = _as_tensor(mask, name)
    if m.dtype != torch.bool:
        if m.dtype.is_floating_point and not torch.all((m == 0) | (m == 1)):
            raise ValueError(f"{name} must be boolean (or 0/1); got values other than 0 and 1.")
        m = m.bool()
    if m.dim() < 2:
        raise ValueError(f"{name} must be batch first, (N, ...); got shape {tuple(m.shape)}.")
    return m


def _aligned(attr: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten ``attr`` and ``mask`` to (N, U); an image map (N, C, H, W) is summed over C.

    Channels are summed first so that a pixel's relevance is the total over its channels,
    as in Arras et al., before any sign handling.
    """
    a = _as_tensor(attr, "attr").float()
    m = _as_mask(mask)
    if tuple(a.shape) != tuple(m.shape):
        if a.dim() == m.dim() + 1 and a.shape[0] == m.shape[0] and a.shape[2:] == m.shape[1:]:
            a = a.sum(dim=1)  # (N, C, H, W) map against an (N, H, W) mask
        else:
            raise ValueError(
                f"attr of shape {tuple(a.shape)} does not match mask of shape {tuple(m.shape)}; "
                "allowed: the same shape, or an image map (N, C, H, W) with a mask (N, H, W)."
            )
    n = a.shape[0]
    return a.reshape(n, -1), m.reshape(n, -1)


def _token_masks(
    evidence_mask: Any,
    valid_mask: Any,
    shape: tuple[int, ...] | None,
    against: str,
    name: str = "evidence_mask",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (N, T) ``(evidence & valid, valid)`` masks.

    ``shape`` is the (N, T) shape both must have (None: whatever ``evidence_mask`` has,
    which must then be 2-D); ``against`` names where that shape comes from in messages and
    ``name`` the caller's argument for the evidence.
    """
    ev = _as_mask(evidence_mask, name)
    if shape is None:
        if ev.dim() != 2:
            raise ValueError(f"{name} must be (N, T) per-token flags; got shape {tuple(ev.shape)}.")
        shape = tuple(ev.shape)
    elif tuple(ev.shape) != shape:
        raise ValueError(f"{name} must match {against} shape {shape}; got {tuple(ev.shape)}.")
    valid = torch.ones_like(ev) if valid_mask is None else _as_mask(valid_mask, "valid_mask")
    if tuple(valid.shape) != shape:
        raise ValueError(
            f"valid_mask must match {against} shape {shape}; got {tuple(valid.shape)}."
        )
    return ev & valid, valid


def mask_area_fraction(mask: Any) -> torch.Tensor:
    """Fraction of units inside the mask: chance level of mass in mask and pointing game.

    See :func:`chance_level`, which also covers the token metrics.

    Parameters
    ----------
    mask : Tensor of shape (N, ...), bool (or 0/1)

    Returns
    -------
    Tensor of shape (N,), float in [0, 1]
        0 for an empty mask (where :func:`chance_level` gives NaN, like the metrics).
    """
    m = _as_mask(mask)
    return m.reshape(m.shape[0], -1).float().mean(dim=1)


def mass_in_mask(attr: Any, mask: Any) -> torch.Tensor:
    """Relevance mass accuracy: share of the positive attribution that lies inside the mask.

    ``sum(max(a, 0) inside) / sum(max(a, 0))`` per sample (Arras et al. 2022, which keeps
    only positive relevance). Equal to Quantus' ``RelevanceMassAccuracy`` with
    ``normalise=False`` on the clipped map.

    Parameters
    ----------
    attr : Tensor
        Image (N, C, H, W) or (N, H, W); any (N, ...) map of the mask's shape otherwise
        (tokens (N, T), tabular (N, F)).
    mask : Tensor, bool
        Ground-truth evidence: (N, H, W) for images, otherwise the shape of ``attr``.

    Returns
    -------
    Tensor of shape (N,), float in [0, 1]
        NaN where the mask is empty or the map has no positive mass (undefined).
    """
    a, m = _aligned(attr, mask)
    pos = a.clamp(min=0)
    total = pos.sum(dim=1)
    inside = (pos * m).sum(dim=1)
    out = inside / total
    out[(total <= 0) | (m.sum(dim=1) == 0)] = float("nan")
    return out


def pointing_game(attr: Any, mask: Any) -> torch.Tensor:
    """Pointing game: the expected hit of the map's maximum on the mask.

    A unit is maximal when it holds the map's largest value. The score per sample is
    ``(maximal units inside the mask) / (maximal units)``: the probability that the
    maximum lies inside the mask when ties are broken uniformly at random. A unique
    maximum scores 1 (hit) or 0 (miss) as in Zhang et al. 2018; a tie never counts as a
    full hit, so a constant (e.g. all-zero) map scores exactly the mask's area fraction,
    the chance level. Quantus' ``PointingGame`` instead counts a tie as a hit when any
    maximal unit is inside. No tolerance margin around the mask is applied.

    Parameters
    ----------
    attr : Tensor
        Image (N, C, H, W) (summed over channels) or (N, H, W); otherwise the mask's shape.
    mask : Tensor, bool
        (N, H, W) for images, otherwise the shape of ``attr``.

    Returns
    -------
    Tensor of shape (N,), float in [0, 1]
        1.0 hit, 0.0 miss, the inside share of a tie in between; NaN where the mask is
        empty (Quantus would count that as a hit) or the map contains NaN.

    See Also
    --------
    chance_level : the expected score of an uninformative map (the mask's area fraction).
    """
    a, m = _aligned(attr, mask)
    at_max = a == a.max(dim=1, keepdim=True).values  # all False when the map has a NaN
    hit = (at_max & m).sum(dim=1).float() / at_max.sum(dim=1).float()
    hit[m.sum(dim=1) == 0] = float("nan")
    return hit


class EvidenceRank(NamedTuple):
    """Per-sample rank of the best evidence token (1 = the top-attributed valid token)."""

    rank: torch.Tensor
    """(N,) float: 1-based rank; NaN where no valid token is evidence."""
    reciprocal_rank: torch.Tensor
    """(N,) float: ``1 / rank`` in (0, 1]; its mean over samples is the MRR."""


def evidence_rank(token_attr: Any, evidence_mask: Any, valid_mask: Any = None) -> EvidenceRank:
    """Rank of the best-ranked evidence token among the valid tokens, by attribution.

    Tokens are sorted by descending attribution; ties are broken against the evidence
    (a non-evidence token with the same score ranks first), so a constant map gets the
    worst possible rank rather than rank 1.

    Parameters
    ----------
    token_attr : Tensor of shape (N, T)
        Per-token scores (already summed over the embedding dimension).
    evidence_mask : Tensor of shape (N, T), bool
        The tokens that carry the answer.
    valid_mask : Tensor of shape (N, T), bool, optional
        Real tokens (not padding / special tokens); default all. Evidence outside it is ignored.

    Returns
    -------
    EvidenceRank
        ``(rank, reciprocal_rank)``, each (N,) float; NaN where a sample has no valid evidence.
    """
    a = _as_tensor(token_attr, "token_attr").float()
    if a.dim() != 2:
        raise ValueError(f"token_attr must be (N, T) per-token scores; got shape {tuple(a.shape)}.")
    ev, valid = _token_masks(evidence_mask, valid_mask, tuple(a.shape), "token_attr's")
    best = a.masked_fill(~ev, float("-inf")).max(dim=1, keepdim=True).values  # (N, 1)
    ahead = ((a >= best) & valid & ~ev).sum(
        dim=1
    )  # non-evidence tokens at or above the best evidence
    rank = (ahead + 1).float()
    rank[ev.sum(dim=1) == 0] = float("nan")
    return EvidenceRank(rank=rank, reciprocal_rank=1.0 / rank)


def _expected_reciprocal_min_rank(n_tokens: int, n_evidence: int) -> float:
    """``E[1 / R]`` for ``R`` the smallest position of ``k`` marked items among ``T`` shuffled.

    ``P(R = r) = C(T - r, k - 1) / C(T, k)`` for ``r = 1 .. T - k + 1``, evaluated by the
    ratio ``P(r + 1) / P(r) = (T - r - k + 1) / (T - r)`` from ``P(1) = k / T``, which stays
    in floating-point range for any ``T``.
    """
    t, k = n_tokens, n_evidence
    p, total = k / t, 0.0
    for r in range(1, t - k + 2):
        total += p / r
        p *= (t - r - k + 1) / (t - r) if r < t else 0.0
    return total


def evidence_rank_chance(evidence_mask: Any, valid_mask: Any = None) -> EvidenceRank:
    """Chance level of :func:`evidence_rank`: its expected value for a random token order.

    With the ``T`` valid tokens of a sample in uniformly random order (what a map of i.i.d.
    continuous scores gives), ``k`` of them evidence, the best evidence token's rank ``R``
    has ``P(R = r) = C(T - r, k - 1) / C(T, k)``, so

    * ``E[R] = (T + 1) / (k + 1)``;
    * ``E[1 / R] = sum_r P(R = r) / r``, computed exactly (it is not ``1 / E[R]``).

    Parameters
    ----------
    evidence_mask : Tensor of shape (N, T), bool
        The tokens that carry the answer, as given to :func:`evidence_rank`.
    valid_mask : Tensor of shape (N, T), bool, optional
        Real tokens (not padding / special tokens); default all. Evidence outside it is
        ignored, as in :func:`evidence_rank`.

    Returns
    -------
    EvidenceRank
        ``(rank, reciprocal_rank)``, each (N,) float: the expected rank in [1, T] and the
        expected reciprocal rank in (0, 1]; NaN where a sample has no valid evidence.
    """
    ev, valid = _token_masks(evidence_mask, valid_mask, None, "evidence_mask's")
    return _rank_chance(ev, valid)


def _rank_chance(ev: torch.Tensor, valid: torch.Tensor) -> EvidenceRank:
    """:func:`evidence_rank_chance` on validated (N, T) masks (``ev`` already within ``valid``)."""
    n_tokens = valid.sum(dim=1).tolist()
    n_evidence = ev.sum(dim=1).tolist()
    cache: dict[tuple[int, int], float] = {}
    rank, reciprocal = [], []
    for t, k in zip(n_tokens, n_evidence):
        if k == 0:
            rank.append(float("nan"))
            reciprocal.append(float("nan"))
            continue
        if (t, k) not in cache:
            cache[(t, k)] = _expected_reciprocal_min_rank(t, k)
        rank.append((t + 1) / (k + 1))
        reciprocal.append(cache[(t, k)])
    return EvidenceRank(
        rank=torch.tensor(rank, dtype=torch.float32).reshape(-1),
        reciprocal_rank=torch.tensor(reciprocal, dtype=torch.float32).reshape(-1),
    )


def chance_level(metric: str, mask: Any, valid_mask: Any = None) -> torch.Tensor:
    """Per-sample chance level of a localisation metric: its expected value for a random map.

    A random map treats every unit alike: i.i.d. continuous scores, which put the units in
    uniformly random order. A constant map also scores exactly this in ``mass_in_mask`` and
    ``pointing_game`` (ties scored by their expected hit), but the worst rank in
    ``evidence_rank`` (ties broken against the evidence). A method localises the evidence
    only as far as it beats this level.

    * ``"mass_in_mask"`` -- the mask's area fraction (:func:`mask_area_fraction`);
    * ``"pointing_game"`` -- the mask's area fraction: the chance that a uniformly random
      maximal unit lies inside;
    * ``"evidence_rank"`` -- ``(T + 1) / (k + 1)``;
    * ``"reciprocal_rank"`` -- ``sum_r C(T - r, k - 1) / C(T, k) / r``, exactly;

    with ``T`` valid tokens of which ``k`` are evidence (see :func:`evidence_rank_chance`).

    Parameters
    ----------
    metric : {"mass_in_mask", "pointing_game", "evidence_rank", "reciprocal_rank"}
    mask : Tensor of shape (N, ...), bool (or 0/1)
        The ground-truth evidence as given to the metric: (N, H, W) for images, (N, T) for
        tokens (``evidence_mask`` of :func:`evidence_rank`).
    valid_mask : Tensor of shape (N, T), bool, optional
        Token metrics only: the real tokens; default all.

    Returns
    -------
    Tensor of shape (N,), float
        NaN where the metric itself is undefined whatever the map: an empty mask (no valid
        evidence token for the token metrics).

    Raises
    ------
    ValueError
        If ``metric`` is not one of :data:`LOCALISATION_METRICS`, or ``valid_mask`` is
        given for ``mass_in_mask`` / ``pointing_game`` (which compare every unit).
    """
    if metric not in LOCALISATION_METRICS:
        raise ValueError(f"metric must be one of {list(LOCALISATION_METRICS)}; got {metric!r}.")
    if metric in ("evidence_rank", "reciprocal_rank"):
        chance = _rank_chance(*_token_masks(mask, valid_mask, None, "mask's", "mask"))
        return chance.rank if metric == "evidence_rank" else chance.reciprocal_rank
    if valid_mask is not None:
        raise ValueError(
            f"valid_mask applies to evidence_rank / reciprocal_rank only; {metric} compares "
            "every unit of the map, so pass valid_mask=None."
        )
    m = _as_mask(mask)
    area = mask_area_fraction(m)
    area[m.reshape(m.shape[0], -1).sum(dim=1) == 0] = float("nan")
    return area
