"""Agreement between explanation methods: do two maps rank the units alike?

Explanations that disagree cannot all be right; agreement is a cheap warning light, not
proof of correctness (two methods can agree on the same artefact). Maps are compared per
sample, after flattening each sample's map of one modality.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..exceptions import ConfigError
from ..validation import check_choice

__all__ = ["agreement_matrix", "rank_agreement", "top_k_overlap"]

_CORRELATION_FNS = {"spearman": stats.spearmanr, "kendall": stats.kendalltau}
CORRELATIONS = tuple(_CORRELATION_FNS)


def _flat_pair(
    attr_a: Any, attr_b: Any, valid_mask: Any, absolute: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, U) float arrays for both maps and an (N, U) bool array of units to compare."""
    arrays = []
    for name, value in (("attr_a", attr_a), ("attr_b", attr_b)):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().float().numpy()
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a tensor or an array; got {type(value).__name__}."
            ) from None
        if arr.ndim < 2:
            raise ValueError(f"{name} must be batch first, (N, ...); got shape {arr.shape}.")
        arrays.append(arr)
    a, b = arrays
    if a.shape != b.shape:
        raise ValueError(
            f"attr_a has shape {a.shape} but attr_b has shape {b.shape}; they must match."
        )
    n = a.shape[0]
    a, b = a.reshape(n, -1), b.reshape(n, -1)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if valid_mask is None:
        valid = np.ones_like(a, dtype=bool)
    else:
        vm = (
            valid_mask.detach().cpu().numpy()
            if isinstance(valid_mask, torch.Tensor)
            else np.asarray(valid_mask)
        )
        if vm.size != a.size or vm.shape[0] != n:
            raise ValueError(
                f"valid_mask must have the maps' shape {arrays[0].shape}; got {vm.shape}."
            )
        valid = vm.reshape(n, -1).astype(bool)
    return a, b, valid


def rank_agreement(
    attr_a: Any,
    attr_b: Any,
    *,
    method: str = "spearman",
    absolute: bool = False,
    valid_mask: Any = None,
) -> torch.Tensor:
    """Per-sample rank correlation between two attribution maps of one modality.

    Parameters
    ----------
    attr_a, attr_b : Tensor of shape (N, ...)
        Two maps of the same shape (e.g. (N, C, H, W) images, (N, T) token scores).
    method : {"spearman", "kendall"}, default="spearman"
        Spearman's rho or Kendall's tau-b (``scipy.stats``), ties averaged.
    absolute : bool, default=False
        Compare ``|attr|``: importance regardless of sign (e.g. for sanity checks).
    valid_mask : Tensor of the maps' shape, bool, optional
        Compare only these units (e.g. real tokens, not padding).

    Returns
    -------
    Tensor of shape (N,), float64 in [-1, 1]
        NaN where a sample has fewer than 2 units or either map is constant (undefined).
    """
    check_choice("method", method, CORRELATIONS)
    a, b, valid = _flat_pair(attr_a, attr_b, valid_mask, absolute)
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        x, y = a[i][valid[i]], b[i][valid[i]]
        if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
            continue  # scipy would warn and return NaN: the correlation is undefined
        out[i] = _CORRELATION_FNS[method](x, y).statistic
    return torch.from_numpy(out)


def top_k_overlap(
    attr_a: Any,
    attr_b: Any,
    k: int | float,
    *,
    absolute: bool = False,
    valid_mask: Any = None,
) -> torch.Tensor:
    """Fraction of the top-k units of ``attr_a`` that are also in the top-k of ``attr_b``.

    Parameters
    ----------
    attr_a, attr_b : Tensor of shape (N, ...)
    k : int or float
        An int >= 1 is a unit count; a float in (0, 1) is a fraction of the (valid) units,
        rounded up. k is capped at the number of valid units.
    absolute : bool, default=False
        Rank by ``|attr|``.
    valid_mask : Tensor of the maps' shape, bool, optional

    Returns
    -------
    Tensor of shape (N,), float64 in [0, 1]
        ``|top_k(a) & top_k(b)| / k``. Ties are broken by the lower unit index (stable sort).
        NaN where a sample has no valid unit.
    """
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise ConfigError(f"k must be an int >= 1 or a float in (0, 1); got {k!r}.")
    if isinstance(k, float) and not 0.0 < k < 1.0:
        raise ConfigError(f"k as a float is a fraction of units and must be in (0, 1); got {k}.")
    if isinstance(k, int) and k < 1:
        raise ConfigError(f"k as an int is a unit count and must be >= 1; got {k}.")
    a, b, valid = _flat_pair(attr_a, attr_b, valid_mask, absolute)
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        idx = np.flatnonzero(valid[i])
        if idx.size == 0:
            continue
        kk = int(np.ceil(k * idx.size)) if isinstance(k, float) else min(k, idx.size)
        top_a = idx[np.argsort(-a[i][idx], kind="stable")[:kk]]
        top_b = idx[np.argsort(-b[i][idx], kind="stable")[:kk]]
        out[i] = np.intersect1d(top_a, top_b).size / kk
    return torch.from_numpy(out)


def agreement_matrix(
    maps: Mapping[str, Mapping[str, Any]],
    *,
    method: str = "spearman",
    absolute: bool = False,
    valid_masks: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Mean rank agreement for every pair of explanation methods and every shared modality.

    Parameters
    ----------
    maps : dict of str -> dict of str -> Tensor
        ``{method name: {modality: map (N, ...)}}``, all methods explaining the same samples.
    method : {"spearman", "kendall"}
    absolute : bool, default=False
    valid_masks : dict of str -> Tensor, optional
        Per-modality unit masks, as ``valid_mask`` in :func:`rank_agreement`.

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per (method_a, method_b, modality) for every ordered pair including
        a method with itself, so ``pivot`` gives a symmetric matrix. Columns: ``method_a``,
        ``method_b``, ``modality``, ``correlation`` (mean over samples, NaNs skipped),
        ``std``, ``n_samples`` (samples with a defined correlation).
    """
    check_choice("method", method, CORRELATIONS)
    if not isinstance(maps, Mapping) or not maps:
        raise TypeError(
            "maps must be a non-empty dict of method name -> dict of modality -> tensor."
        )
    for name, per_mod in maps.items():
        if not isinstance(per_mod, Mapping):
            raise TypeError(
                f"maps[{name!r}] must be a dict of modality -> tensor; got {type(per_mod).__name__}."
            )
    valid_masks = dict(valid_masks or {})
    names = list(maps)
    cache: dict[tuple[str, str, str], np.ndarray] = {}
    rows = []
    for ma in names:
        for mb in names:
            shared = [m for m in maps[ma] if m in maps[mb]]
            for mod in shared:
                key = (min(ma, mb), max(ma, mb), mod)
                if key not in cache:  # the correlation is symmetric: compute each pair once
                    cache[key] = rank_agreement(
                        maps[ma][mod],
                        maps[mb][mod],
                        method=method,
                        absolute=absolute,
                        valid_mask=valid_masks.get(mod),
                    ).numpy()
                r = cache[key]
                ok = ~np.isnan(r)
                rows.append(
                    {
                        "method_a": ma,
                        "method_b": mb,
                        "modality": mod,
                        "correlation": float(r[ok].mean()) if ok.any() else float("nan"),
                        "std": float(r[ok].std()) if ok.any() else float("nan"),
                        "n_samples": int(ok.sum()),
                    }
                )
    return pd.DataFrame(
        rows, columns=["method_a", "method_b", "modality", "correlation", "std", "n_samples"]
    )
