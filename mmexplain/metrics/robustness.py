"""Robustness of the model itself: how much does performance rely on each modality?

These metrics frame how far to trust a per-modality explanation: if the score does not
move when a modality is removed, an explanation that credits that modality is suspect.

* :func:`missing_modality` -- the metric with all modalities, with each one replaced by
  its absent value, and (for up to 4 modalities) with each pair replaced.
* :func:`noise_robustness` -- the metric as one modality is corrupted more and more
  (Gaussian noise, token dropout, or masking units), and the normalised area under that
  curve.

Absent (a missing modality, a masked unit) means the model's reference unless baselines are
given: ``model.reference``, fitted once from training data (:mod:`mmexplain.reference`); a
model without one gets its kinds' data-free values (zeros, the pad id for tokens).

Metrics: ``"accuracy"`` and ``"macro_f1"`` (scikit-learn) for classifiers, whose
prediction is the arg-max logit; ``"mse"`` for scalar-output (regression) models.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..exceptions import ConfigError
from ..kinds import KINDS, ModalityKind
from ..modality import ModalitySpec
from ..reference import Reference, resolve_baselines
from ..validation import batch_size, check_choice, check_inputs, check_positive_int
from .faithfulness import (
    _baseline_for,
    _kind_info,
    _reference_baseline,
    _valid_units,
    fill_units,
    forward_rows,
    unit_count,
    unit_order_ranks,
)

__all__ = [
    "NoiseRobustness",
    "corrupt",
    "missing_modality",
    "model_score",
    "noise_robustness",
    "score_outputs",
]

METRICS = ("accuracy", "macro_f1", "mse")
NOISE_KINDS = ("gaussian", "token_dropout", "mask")


def score_outputs(outputs: torch.Tensor, labels: Any, *, metric: str = "accuracy") -> float:
    """Score model outputs against labels.

    Parameters
    ----------
    outputs : Tensor of shape (N, C) logits, or (N,) / (N, 1) for regression
    labels : array-like of shape (N,)
        Class indices (classification) or targets (regression).
    metric : {"accuracy", "macro_f1", "mse"}
        accuracy / macro-F1 of the arg-max prediction (``zero_division=0``), or the mean
        squared error of the raw output (in squared label units).

    Returns
    -------
    float
    """
    check_choice("metric", metric, METRICS)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    y = y.reshape(-1)
    out = outputs.detach().cpu().float()
    if y.shape[0] != out.shape[0]:
        raise ValueError(
            f"labels has {y.shape[0]} entries but the model returned {out.shape[0]} outputs."
        )
    from sklearn.metrics import (  # ~1 s to import: on use
        accuracy_score,
        f1_score,
        mean_squared_error,
    )

    scalar = out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1)
    if metric == "mse":
        if not scalar:
            raise ConfigError(
                f"metric='mse' needs a scalar-output model (N,) or (N, 1); got outputs of shape "
                f"{tuple(out.shape)}. Use 'accuracy' or 'macro_f1' for classifiers."
            )
        return float(mean_squared_error(y.astype(float), out.reshape(-1).numpy()))
    if scalar or out.dim() != 2:
        raise ConfigError(
            f"metric={metric!r} needs classifier logits (N, C) with C >= 2; got outputs of shape "
            f"{tuple(out.shape)}. Use metric='mse' for regression."
        )
    pred = out.argmax(dim=1).numpy()
    if metric == "accuracy":
        return float(accuracy_score(y, pred))
    return float(f1_score(y, pred, average="macro", zero_division=0))


def model_score(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    labels: Any,
    *,
    metric: str = "accuracy",
    max_batch_size: int | None = None,
) -> float:
    """``score_outputs(model(**inputs), labels, metric=metric)``, run without gradients in chunks."""
    inputs = check_inputs(inputs)
    out = forward_rows(
        model,
        lambda rows: {k: v[rows.to(v.device)] for k, v in inputs.items()},
        batch_size(inputs),
        max_batch_size=max_batch_size,
    )
    return score_outputs(out, labels, metric=metric)


def _specs_for(
    model: Any, inputs: Mapping[str, torch.Tensor], specs: Any, baselines: Any
) -> list[ModalitySpec] | None:
    """The modality specs of ``inputs``: given, else the model's (or a given Reference's)."""
    if specs is None and isinstance(baselines, Reference):
        specs = baselines.specs
    if specs is None:
        specs = getattr(model, "modality_specs", None)
    if specs is None:
        return None
    return [s for s in specs if s.name in inputs]


def missing_modality(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    labels: Any,
    baselines: Mapping[str, Any] | Reference | None = None,
    *,
    specs: Sequence[ModalitySpec] | None = None,
    metric: str = "accuracy",
    pairs: bool | None = None,
    max_batch_size: int | None = None,
) -> pd.DataFrame:
    """Score the model with all modalities, then with modalities replaced by their absent value.

    Parameters
    ----------
    model : callable
        Called as ``model(**inputs)``, returns logits (N, C) or outputs (N,).
    inputs : dict of str -> Tensor of shape (N, ...)
    labels : array-like of shape (N,)
    baselines : None, Reference, or dict of str -> choice name, number or Tensor, optional
        What a "missing" modality becomes (replacing every position, padding included).
        Default: absent means the model's reference (``model.reference``, fitted from
        training data); a model without one gets each kind's data-free value (zeros, the
        pad id for tokens). A dict overrides single modalities, the others keep the
        default (see :func:`mmexplain.reference.resolve_baselines`).
    specs : list of ModalitySpec, optional
        The modalities' specs; default ``model.modality_specs``. Without any, the default
        absent value is zeros of each input's dtype.
    metric : {"accuracy", "macro_f1", "mse"}
    pairs : bool, optional
        Also remove each pair of modalities. Default: only when there are at most 4
        modalities (at most 6 pairs).
    max_batch_size : int, optional
        Rows per forward pass. All conditions are evaluated in batched passes.

    Returns
    -------
    pandas.DataFrame
        One row per condition: ``removed`` (tuple of modality names, empty for the full
        input), ``condition`` ("all" or e.g. "-image", "-image-text"), ``n_removed``,
        ``metric``, ``score``, and ``delta`` = score - full score (negative for a drop in
        accuracy / F1, positive for a rise in MSE). ``df.attrs["baselines"]`` says, per
        modality, what "missing" meant.
    """
    check_choice("metric", metric, METRICS)
    inputs = check_inputs(inputs)
    base, described = resolve_baselines(model, _specs_for(model, inputs, specs, baselines), inputs, baselines)
    mods = list(inputs)
    n = batch_size(inputs)
    if pairs is None:
        pairs = len(mods) <= 4
    conditions: list[tuple[str, ...]] = [()] + [(m,) for m in mods]
    if pairs and len(mods) >= 2:
        conditions += list(itertools.combinations(mods, 2))

    n_cond = len(conditions)
    removed = torch.tensor([[m in c for m in mods] for c in conditions])  # (n_cond, M)

    def build(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        cond, idx = rows // n, rows % n  # row = condition * n + sample
        batch = {}
        for j, m in enumerate(mods):
            x, b = inputs[m], base[m]
            gone = removed[cond, j].to(x.device).reshape(-1, *([1] * (x.dim() - 1)))
            batch[m] = torch.where(gone, b[idx.to(x.device)], x[idx.to(x.device)])
        return batch

    out = forward_rows(model, build, n_cond * n, max_batch_size=max_batch_size)
    scores = [score_outputs(out[i * n : (i + 1) * n], labels, metric=metric) for i in range(n_cond)]
    df = pd.DataFrame(
        {
            "removed": conditions,
            "condition": ["all" if not c else "".join(f"-{m}" for m in c) for c in conditions],
            "n_removed": [len(c) for c in conditions],
            "metric": metric,
            "score": scores,
            "delta": [s - scores[0] for s in scores],
        }
    )
    df.attrs["baselines"] = described
    return df


@dataclass(frozen=True)
class NoiseRobustness:
    """Outcome of :func:`noise_robustness`.

    Attributes
    ----------
    modality : str
    kind : {"gaussian", "token_dropout", "mask"}
    metric : str
    strengths : ndarray of shape (S,)
        Noise std in units of the modality's std (gaussian), or fraction of units corrupted.
    scores : ndarray of shape (S,)
        The metric at each strength.
    clean_score : float
        The metric on the uncorrupted inputs.
    normalised_auc : float
        Trapezoid area under ``scores`` over ``strengths`` divided by the strength range:
        the average score over the range, in the metric's units (the score itself when a
        single strength is given). Compare with ``clean_score``.
    """

    modality: str
    kind: str
    metric: str
    strengths: np.ndarray
    scores: np.ndarray
    clean_score: float
    normalised_auc: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: modality, kind, metric, strength, score."""
        return pd.DataFrame(
            {
                "modality": self.modality,
                "kind": self.kind,
                "metric": self.metric,
                "strength": self.strengths,
                "score": self.scores,
            }
        )


def _resolve_spec(model: Any, modality: str | ModalitySpec, x: torch.Tensor) -> tuple[ModalitySpec, bool]:
    """The spec of ``modality`` and whether it is known (given, or one of the model's).

    A bare name the model does not declare gets the registered integer-id kind (tokens,
    pad id 0) for integer tensors and ``generic`` (one unit per element) otherwise.
    """
    if isinstance(modality, ModalitySpec):
        return modality, True
    for spec in getattr(model, "modality_specs", None) or ():
        if spec.name == modality:
            return spec, True
    if x.dtype.is_floating_point:
        return ModalitySpec(modality, "generic"), False
    ids = next(k for k in KINDS.names() if KINDS.get(k).integer_ids)
    return ModalitySpec(modality, ids), False


def corrupt(
    x: torch.Tensor,
    strengths: Sequence[float],
    *,
    kind: str,
    modality_kind: str | ModalityKind = "generic",
    baseline: Any = None,
    pad_id: int = 0,
    valid_mask: Any = None,
    seed: int = 0,
) -> torch.Tensor:
    """Corrupted copies of ``x`` at each strength, with common random numbers.

    One noise draw (or one random unit order) is shared by all strengths, so a higher
    strength corrupts a superset of the units (mask / dropout) or scales the same noise
    (gaussian); curves are then monotone up to the model's behaviour.

    Parameters
    ----------
    x : Tensor of shape (N, ...)
    strengths : sequence of float, length S
        gaussian: noise std relative to ``x.std()`` (over the whole batch), >= 0;
        token_dropout / mask: fraction of units in [0, 1] (rounded half up per sample).
    kind : {"gaussian", "token_dropout", "mask"}
        token_dropout replaces valid tokens by ``pad_id`` (integer-id kinds only); mask
        replaces units (the units of ``modality_kind``, see
        :meth:`mmexplain.kinds.ModalityKind.unit_ids`) by ``baseline``.
    modality_kind : str or ModalityKind, default="generic"
    baseline : float or Tensor, optional
        For ``mask``. This function has no model: pass the model's reference for the
        modality (as :func:`noise_robustness` does); None takes the kind's data-free value
        (``pad_id`` for integer-id kinds, zeros otherwise).
    pad_id : int, default=0
    valid_mask : Tensor of shape (N, U), bool, optional
        Units that may be corrupted; integer-id kinds default to those different from ``pad_id``.
    seed : int, default=0

    Returns
    -------
    Tensor of shape (S, N, ...)
    """
    check_choice("kind", kind, NOISE_KINDS)
    corruption = kind  # the corruption's name, not a modality kind's
    info = _kind_info(modality_kind)
    s = np.asarray(strengths, dtype=float)
    gen = torch.Generator().manual_seed(int(seed))
    if corruption == "gaussian":
        if not x.dtype.is_floating_point:
            raise TypeError(
                f"kind='gaussian' needs a float tensor; got dtype {x.dtype}. Use kind='token_dropout' for token ids."
            )
        eps = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        std = x.float().std() if x.numel() > 1 else torch.tensor(0.0)
        std = float(std) if float(std) > 0 else 1.0  # a constant tensor: use absolute noise
        return torch.stack([x + float(si) * std * eps for si in s])
    if corruption == "token_dropout":
        if not info.integer_ids or x.dtype.is_floating_point:
            raise ConfigError(
                f"kind='token_dropout' is for integer-id modalities (tokens, integer (N, T)); got modality "
                f"kind {info.name!r} with dtype {x.dtype}."
            )
        baseline = pad_id
    n_units = unit_count(tuple(x.shape[1:]), info)
    valid = _valid_units(x, valid_mask, info, pad_id, n_units, "x").cpu()
    base = _baseline_for(x, baseline, info, pad_id, "x")
    ranks = unit_order_ranks(torch.rand(x.shape[0], n_units, generator=gen), valid)
    n_valid = valid.sum(dim=1)
    out = []
    for si in s:
        # units corrupted = round(si * n_valid), halves up
        count = torch.floor(torch.as_tensor(si, dtype=torch.float64) * n_valid + 0.5).long()
        present = ~(ranks < count[:, None])
        out.append(fill_units(x, base, present.to(x.device), info))
    return torch.stack(out)


def noise_robustness(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    labels: Any,
    *,
    modality: str | ModalitySpec,
    strengths: Sequence[float],
    kind: str = "gaussian",
    metric: str = "accuracy",
    baseline: Any = None,
    valid_mask: Any = None,
    seed: int = 0,
    max_batch_size: int | None = None,
) -> NoiseRobustness:
    """The metric as one modality is corrupted at increasing strengths.

    Parameters
    ----------
    model : callable
        Called as ``model(**inputs)``.
    inputs : dict of str -> Tensor of shape (N, ...)
    labels : array-like of shape (N,)
    modality : str or ModalitySpec
        The modality to corrupt. A spec gives its kind (the units for ``mask``) and pad id;
        a bare name is looked up in ``model.modality_specs``, and otherwise treated as kind
        "tokens" (pad id 0) for integer tensors and "generic" (one unit per element).
    strengths : sequence of float
        Increasing; gaussian: noise std relative to the modality's std (>= 0);
        token_dropout / mask: fraction of (valid) units corrupted, in [0, 1].
    kind : {"gaussian", "token_dropout", "mask"}
        The corruption; each modality kind declares its usual one
        (``spec.kind_info.corruption``).
    metric : {"accuracy", "macro_f1", "mse"}
    baseline : float or Tensor, optional
        For ``mask``: what a masked unit becomes. Default: absent means the model's
        reference for the modality (``model.reference``, fitted from training data); a
        model without one, or a modality it does not declare, gets the kind's data-free
        value (zeros, the pad id for tokens).
    valid_mask : Tensor of shape (N, U), bool, optional
        Units that may be corrupted (tokens default to the non-pad positions).
    seed : int, default=0
    max_batch_size : int, optional
        Rows per forward pass; all strengths are evaluated in batched passes.

    Returns
    -------
    NoiseRobustness
    """
    check_choice("kind", kind, NOISE_KINDS)
    check_choice("metric", metric, METRICS)
    inputs = check_inputs(inputs)
    name = modality.name if isinstance(modality, ModalitySpec) else modality
    if name not in inputs:
        raise ValueError(f"modality={name!r} is not in inputs; inputs have {list(inputs)}.")
    spec, known = _resolve_spec(model, modality, inputs[name])
    s = np.asarray(list(strengths), dtype=float).reshape(-1)
    if s.size == 0:
        raise ConfigError("strengths is empty; pass at least one corruption strength.")
    if np.any(~np.isfinite(s)) or np.any(s < 0) or np.any(np.diff(s) < 0):
        raise ConfigError(f"strengths must be finite, >= 0 and non-decreasing; got {s.tolist()}.")
    corruption = kind  # the corruption's name, not a modality kind's
    if corruption != "gaussian" and np.any(s > 1):
        raise ConfigError(
            f"strengths for kind={kind!r} are fractions of units and must be <= 1; got {s.tolist()}."
        )
    if max_batch_size is not None:
        check_positive_int("max_batch_size", max_batch_size)

    n = batch_size(inputs)
    x = inputs[name]
    if corruption == "mask":
        baseline = (
            _reference_baseline(model, spec, x, baseline)
            if known
            else _baseline_for(x, baseline, spec.kind_info, spec.pad_id, name)
        )
    corrupted = corrupt(
        x,
        s,
        kind=corruption,
        modality_kind=spec.kind_info,
        baseline=baseline,
        pad_id=spec.pad_id,
        valid_mask=valid_mask,
        seed=seed,
    ).reshape(s.size * n, *inputs[name].shape[1:])  # row = strength * n + sample

    def build(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {k: v[(rows % n).to(v.device)] for k, v in inputs.items()}
        batch[name] = corrupted[rows.to(corrupted.device)]
        return batch

    out = forward_rows(model, build, s.size * n, max_batch_size=max_batch_size)
    scores = np.array(
        [score_outputs(out[i * n : (i + 1) * n], labels, metric=metric) for i in range(s.size)]
    )
    clean = model_score(model, inputs, labels, metric=metric, max_batch_size=max_batch_size)
    span = float(s[-1] - s[0])
    if span > 0:
        trapezoid = getattr(np, "trapezoid", None) or np.trapz
        auc = float(trapezoid(scores, s)) / span
    else:
        auc = float(scores.mean())
    return NoiseRobustness(
        modality=name,
        kind=kind,
        metric=metric,
        strengths=s,
        scores=scores,
        clean_score=clean,
        normalised_auc=auc,
    )
