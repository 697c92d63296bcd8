"""Localisation: does the explanation point at the ground-truth evidence?

For inputs with a known evidence region (an object mask in an image, the tokens that
answer a question), these metrics compare an attribution map with a boolean mask:

* :func:`mass_in_mask` -- the share of positive attribution inside the mask (relevance
  mass accuracy, Arras et al. 2022, "CLEVR-XAI"); its chance level for a uniform map is
  :func:`mask_area_fraction`.
* :func:`pointing_game` -- whether the maximum of the map falls inside the mask
  (Zhang et al. 2018).
* :func:`evidence_rank` -- for token maps, the rank of the best-ranked evidence token.

All functions work per sample and return tensors of shape (N,).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = [
    "EvidenceRank",
    "evidence_rank",
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


def mask_area_fraction(mask: Any) -> torch.Tensor:
    """Fraction of units inside the mask: the chance level of :func:`mass_in_mask`.

    Parameters
    ----------
    mask : Tensor of shape (N, ...), bool (or 0/1)

    Returns
    -------
    Tensor of shape (N,), float in [0, 1]
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
    """Pointing game: 1 if the map's maximum lies inside the mask, else 0.

    With ties for the maximum, a hit is any maximal unit inside the mask (as in Quantus'
    ``PointingGame``). No tolerance margin around the mask is applied.

    Parameters
    ----------
    attr : Tensor
        Image (N, C, H, W) (summed over channels) or (N, H, W); otherwise the mask's shape.
    mask : Tensor, bool
        (N, H, W) for images, otherwise the shape of ``attr``.

    Returns
    -------
    Tensor of shape (N,), float
        1.0 hit, 0.0 miss, NaN where the mask is empty (Quantus would count that as a hit).
    """
    a, m = _aligned(attr, mask)
    at_max = a == a.max(dim=1, keepdim=True).values
    hit = (at_max & m).any(dim=1).float()
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
    ev = _as_mask(evidence_mask, "evidence_mask")
    if a.dim() != 2:
        raise ValueError(f"token_attr must be (N, T) per-token scores; got shape {tuple(a.shape)}.")
    if tuple(ev.shape) != tuple(a.shape):
        raise ValueError(
            f"evidence_mask must match token_attr's shape {tuple(a.shape)}; got {tuple(ev.shape)}."
        )
    valid = torch.ones_like(ev) if valid_mask is None else _as_mask(valid_mask, "valid_mask")
    if tuple(valid.shape) != tuple(a.shape):
        raise ValueError(
            f"valid_mask must match token_attr's shape {tuple(a.shape)}; got {tuple(valid.shape)}."
        )
    ev = ev & valid
    best = a.masked_fill(~ev, float("-inf")).max(dim=1, keepdim=True).values  # (N, 1)
    ahead = ((a >= best) & valid & ~ev).sum(
        dim=1
    )  # non-evidence tokens at or above the best evidence
    rank = (ahead + 1).float()
    rank[ev.sum(dim=1) == 0] = float("nan")
    return EvidenceRank(rank=rank, reciprocal_rank=1.0 / rank)
