"""Deletion and insertion curves: does removing what the explanation ranks first hurt the model?

For one modality at a time, the most-attributed *units* are removed from the real input
(deletion: replaced by the modality's baseline) or restored into the baseline input
(insertion), in ``steps`` equal fractions, while every other modality stays untouched.
The model's probability of the target (softmax), or its raw output for a scalar-output
model, is recorded after each step. A faithful explanation gives a deletion curve that
falls faster (lower AUC), and an insertion curve that rises faster (higher AUC), than the
same curve with the units taken in a random order, which is returned alongside as the
reference (Petsiuk et al. 2018, RISE; Samek et al. 2017, region perturbation).

Units by modality kind:

========  ==============================  ==============================================
kind      input                           one unit
========  ==============================  ==============================================
image     (N, C, H, W)                    one pixel position, all channels together, or
                                          one ``patch_size`` patch
tokens    (N, T) integer ids              one token position (replaced by ``pad_id``)
tabular   (N, F)                          one feature
audio     (N, L) or (N, C, L)             one time step, all channels together
generic   (N, ...)                        one element
========  ==============================  ==============================================

The unit helpers (:func:`unit_scores`, :func:`unit_count`, :func:`expand_unit_mask`,
:func:`fill_units`) are public so that other metrics can corrupt the same units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..exceptions import ConfigError
from ..modality import MODALITY_KINDS, ModalitySpec
from ..validation import (
    batch_size,
    check_choice,
    check_inputs,
    check_positive_int,
    check_target,
)

__all__ = [
    "PerturbationCurve",
    "curve_auc",
    "deletion_curve",
    "expand_unit_mask",
    "fill_units",
    "forward_rows",
    "insertion_curve",
    "perturbation_curve",
    "perturbation_curves",
    "target_scores",
    "unit_count",
    "unit_order_ranks",
    "unit_scores",
]

MODES = ("deletion", "insertion")
OUTPUTS = ("probability", "logit")


# --------------------------------------------------------------------------- units


def _patch(patch_size: Any, kind: str) -> tuple[int, int] | None:
    """Normalise ``patch_size`` to None or (ph, pw); only images have patches."""
    if patch_size is None:
        return None
    if kind != "image":
        raise ConfigError(
            f"patch_size is only for kind='image'; got patch_size={patch_size!r} for kind={kind!r}."
        )
    if isinstance(patch_size, int) and not isinstance(patch_size, bool):
        patch_size = (patch_size, patch_size)
    if (
        not isinstance(patch_size, tuple | list)
        or len(patch_size) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in patch_size)
    ):
        raise ConfigError(
            f"patch_size must be an int >= 1 or a pair (ph, pw) of ints >= 1; got {patch_size!r}."
        )
    return int(patch_size[0]), int(patch_size[1])


def _check_sample_shape(shape: tuple[int, ...], kind: str, name: str = "inputs") -> None:
    """Raise if one sample's shape does not fit ``kind`` (see the module table)."""
    check_choice("kind", kind, MODALITY_KINDS)
    ndim = len(shape) + 1
    allowed = {"image": (4,), "tokens": (2,), "tabular": (2,), "audio": (2, 3)}.get(kind)
    if allowed is not None and ndim not in allowed:
        raise ValueError(
            f"{name} for kind={kind!r} must have {' or '.join(map(str, allowed))} dimensions "
            f"(batch first); got shape (N, {', '.join(map(str, shape))})."
        )


def unit_count(sample_shape: tuple[int, ...], kind: str, *, patch_size: Any = None) -> int:
    """Number of units U in one sample of shape ``sample_shape`` (the input without N).

    Parameters
    ----------
    sample_shape : tuple of int
        The input's shape without the batch dimension, e.g. (C, H, W) for an image.
    kind : {"image", "tokens", "tabular", "audio", "generic"}
    patch_size : int or (int, int), optional
        Images only: units are ``ph x pw`` patches (edge patches may be smaller).

    Returns
    -------
    int
    """
    sample_shape = tuple(sample_shape)
    _check_sample_shape(sample_shape, kind)
    patch = _patch(patch_size, kind)
    if kind == "image":
        h, w = sample_shape[-2:]
        if patch is None:
            return h * w
        return math.ceil(h / patch[0]) * math.ceil(w / patch[1])
    if kind == "audio":
        return sample_shape[-1]
    return math.prod(sample_shape)


def unit_scores(
    attr: torch.Tensor,
    kind: str,
    *,
    sample_shape: tuple[int, ...] | None = None,
    patch_size: Any = None,
) -> torch.Tensor:
    """Sum an attribution map into one score per unit.

    Parameters
    ----------
    attr : Tensor
        image (N, C, H, W) or (N, H, W); tokens (N, T); tabular (N, F); audio (N, L) or
        (N, C, L); generic (N, ...).
    kind : {"image", "tokens", "tabular", "audio", "generic"}
    sample_shape : tuple of int, optional
        The input's shape without N; when given, ``attr`` must match it (an image map may
        also come channel-summed as (N, H, W)).
    patch_size : int or (int, int), optional
        Images only: sum the pixel scores over ``ph x pw`` patches.

    Returns
    -------
    Tensor of shape (N, U), float
        Units in row-major order (pixels / patches row by row).
    """
    if not isinstance(attr, torch.Tensor):
        raise TypeError(f"attr must be a torch.Tensor; got {type(attr).__name__}.")
    check_choice("kind", kind, MODALITY_KINDS)
    patch = _patch(patch_size, kind)
    attr = attr.detach().float()
    if sample_shape is not None:
        sample_shape = tuple(sample_shape)
        ok = tuple(attr.shape[1:]) == sample_shape or (
            kind == "image" and len(sample_shape) == 3 and tuple(attr.shape[1:]) == sample_shape[1:]
        )
        if not ok:
            raise ValueError(
                f"attribution of shape {tuple(attr.shape)} does not match the input's sample shape "
                f"{sample_shape} for kind={kind!r}; pass a map of the input's shape (tokens: (N, T))."
            )
    n = attr.shape[0]
    if kind == "image":
        if attr.dim() == 4:
            attr = attr.sum(dim=1)  # all channels of a pixel move together, so score them together
        elif attr.dim() != 3:
            raise ValueError(
                f"image attribution must be (N, C, H, W) or (N, H, W); got {tuple(attr.shape)}."
            )
        if patch is None:
            return attr.reshape(n, -1)
        h, w = attr.shape[-2:]
        ph, pw = patch
        nh, nw = math.ceil(h / ph), math.ceil(w / pw)
        # zero-pad so edge patches sum only their real pixels
        padded = torch.nn.functional.pad(attr, (0, nw * pw - w, 0, nh * ph - h))
        return padded.reshape(n, nh, ph, nw, pw).sum(dim=(2, 4)).reshape(n, nh * nw)
    if kind == "audio":
        if attr.dim() == 3:
            attr = attr.sum(dim=1)
        elif attr.dim() != 2:
            raise ValueError(
                f"audio attribution must be (N, L) or (N, C, L); got {tuple(attr.shape)}."
            )
        return attr
    if kind in ("tokens", "tabular") and attr.dim() != 2:
        raise ValueError(
            f"{kind} attribution must be (N, {'T' if kind == 'tokens' else 'F'}); got {tuple(attr.shape)}."
        )
    return attr.reshape(n, -1)


def expand_unit_mask(
    unit_mask: torch.Tensor, sample_shape: tuple[int, ...], kind: str, *, patch_size: Any = None
) -> torch.Tensor:
    """Broadcast a per-unit mask back to the input's element layout.

    Parameters
    ----------
    unit_mask : Tensor of shape (B, U), bool
    sample_shape : tuple of int
        One input sample's shape (without the batch dimension).
    kind : {"image", "tokens", "tabular", "audio", "generic"}
    patch_size : int or (int, int), optional
        Images only, as in :func:`unit_scores`.

    Returns
    -------
    Tensor, bool
        Broadcastable to (B, *sample_shape): image (B, 1, H, W), audio (B, 1, L) for a
        3-D input, otherwise exactly (B, *sample_shape).
    """
    sample_shape = tuple(sample_shape)
    u = unit_count(sample_shape, kind, patch_size=patch_size)
    if unit_mask.dim() != 2 or unit_mask.shape[1] != u:
        raise ValueError(
            f"unit_mask must be (B, {u}) for sample shape {sample_shape}; got {tuple(unit_mask.shape)}."
        )
    b = unit_mask.shape[0]
    if kind == "image":
        h, w = sample_shape[-2:]
        patch = _patch(patch_size, kind)
        if patch is None:
            return unit_mask.reshape(b, 1, h, w)
        ph, pw = patch
        nh, nw = math.ceil(h / ph), math.ceil(w / pw)
        grid = (
            unit_mask.reshape(b, nh, nw).repeat_interleave(ph, dim=1).repeat_interleave(pw, dim=2)
        )
        return grid[:, :h, :w].unsqueeze(1)
    if kind == "audio" and len(sample_shape) == 2:
        return unit_mask.unsqueeze(1)
    return unit_mask.reshape(b, *sample_shape)


def fill_units(
    x: torch.Tensor,
    baseline: torch.Tensor,
    present: torch.Tensor,
    kind: str,
    *,
    patch_size: Any = None,
) -> torch.Tensor:
    """Keep the units where ``present`` is True and take ``baseline`` everywhere else.

    Parameters
    ----------
    x : Tensor of shape (B, ...)
        The real input rows.
    baseline : Tensor
        Broadcastable to ``x``: what an absent unit becomes.
    present : Tensor of shape (B, U), bool
    kind : {"image", "tokens", "tabular", "audio", "generic"}
    patch_size : int or (int, int), optional

    Returns
    -------
    Tensor, same shape and dtype as ``x``
    """
    mask = expand_unit_mask(present, tuple(x.shape[1:]), kind, patch_size=patch_size)
    return torch.where(mask, x, baseline.to(dtype=x.dtype))


def unit_order_ranks(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Rank units by descending score (0 = taken first); invalid units rank last.

    Ties keep the lower unit index first (stable sort), so results are deterministic.

    Parameters
    ----------
    scores : Tensor of shape (N, U)
    valid : Tensor of shape (N, U), bool, optional

    Returns
    -------
    Tensor of shape (N, U), long
    """
    scores = scores.float()
    if valid is not None:
        scores = scores.masked_fill(~valid, float("-inf"))
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return ranks


def curve_auc(fractions: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule over the fraction axis.

    Parameters
    ----------
    fractions : ndarray of shape (S,)
        Increasing x values, here in [0, 1].
    curve : ndarray of shape (..., S)

    Returns
    -------
    ndarray of shape (...,)
        In the curve's units (probability for probability curves).
    """
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 only has trapz
    return np.asarray(
        trapezoid(np.asarray(curve, dtype=float), np.asarray(fractions, dtype=float), axis=-1)
    )


# --------------------------------------------------------------------------- model outputs


def forward_rows(
    model: Callable[..., torch.Tensor],
    build: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    n_rows: int,
    *,
    max_batch_size: int | None = None,
) -> torch.Tensor:
    """Run ``model(**build(rows))`` over ``n_rows`` rows in chunks, without gradients.

    Parameters
    ----------
    model : callable
        Called as ``model(**inputs)``.
    build : callable
        Maps a LongTensor of row indices to the input dict for those rows.
    n_rows : int
    max_batch_size : int, optional
        Rows per forward pass; None runs all rows in one pass.

    Returns
    -------
    Tensor of shape (n_rows, ...)
        The model outputs, concatenated, detached, on CPU.
    """
    chunk = (
        n_rows if max_batch_size is None else check_positive_int("max_batch_size", max_batch_size)
    )
    outs = []
    with torch.no_grad():
        for start in range(0, n_rows, max(chunk, 1)):
            rows = torch.arange(start, min(start + chunk, n_rows))
            out = model(**build(rows))
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"model must return a tensor of logits (N, C) or outputs (N,); got {type(out).__name__}."
                )
            outs.append(out.detach().cpu())
    return torch.cat(outs, dim=0)


def target_scores(
    outputs: torch.Tensor, target: torch.Tensor | None, *, output: str = "probability"
) -> torch.Tensor:
    """The score a curve records: target probability, target logit, or the raw output.

    Parameters
    ----------
    outputs : Tensor of shape (N, C) logits, or (N,) / (N, 1) for a scalar-output model
    target : LongTensor of shape (N,), or None for a scalar-output model
    output : {"probability", "logit"}
        For classifiers: softmax probability of the target, or its raw logit.

    Returns
    -------
    Tensor of shape (N,), float
    """
    check_choice("output", output, OUTPUTS)
    outputs = outputs.float()
    scalar = outputs.dim() == 1 or (outputs.dim() == 2 and outputs.shape[1] == 1)
    if scalar:
        if target is not None:
            raise ConfigError(
                f"target must be None for a scalar-output (regression) model; the model returned shape "
                f"{tuple(outputs.shape)} and target={target.tolist()[:5]}..."
            )
        return outputs.reshape(-1)
    if outputs.dim() != 2:
        raise ValueError(
            f"model output must be (N, C) logits or (N,) outputs; got shape {tuple(outputs.shape)}."
        )
    if target is None:
        raise ConfigError(
            f"target is None but the model returns {outputs.shape[1]} logits per sample; pass the class "
            "index (int or (N,) tensor) whose probability to track."
        )
    if int(target.max()) >= outputs.shape[1] or int(target.min()) < 0:
        raise ValueError(
            f"target holds class indices outside [0, {outputs.shape[1] - 1}]: {target.tolist()}."
        )
    scores = outputs.softmax(dim=1) if output == "probability" else outputs
    return scores.gather(1, target.reshape(-1, 1)).reshape(-1)


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class PerturbationCurve:
    """A deletion or insertion curve for one modality, with its random-order reference.

    Attributes
    ----------
    modality : str
    mode : {"deletion", "insertion"}
    fractions : ndarray of shape (steps + 1,)
        Fraction of the modality's units removed (deletion) or restored (insertion): 0 .. 1.
    curve : ndarray of shape (N, steps + 1)
        Target probability (or logit / raw output) with units taken in attribution order.
    random_curve : ndarray of shape (N, steps + 1)
        The same with units taken in a seeded random order.
    auc, random_auc : ndarray of shape (N,)
        Trapezoid areas under ``curve`` / ``random_curve`` over ``fractions``.
        Deletion: lower is better; insertion: higher is better.
    """

    modality: str
    mode: str
    fractions: np.ndarray
    curve: np.ndarray
    random_curve: np.ndarray
    auc: np.ndarray
    random_auc: np.ndarray

    @property
    def mean_auc(self) -> float:
        """Mean of :attr:`auc` over samples."""
        return float(np.mean(self.auc))

    @property
    def mean_random_auc(self) -> float:
        """Mean of :attr:`random_auc` over samples."""
        return float(np.mean(self.random_auc))

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: modality, mode, order ("attribution" | "random"), sample, fraction, score."""
        n, s = self.curve.shape
        frames = []
        for order, values in (("attribution", self.curve), ("random", self.random_curve)):
            frames.append(
                pd.DataFrame(
                    {
                        "modality": self.modality,
                        "mode": self.mode,
                        "order": order,
                        "sample": np.repeat(np.arange(n), s),
                        "fraction": np.tile(self.fractions, n),
                        "score": values.reshape(-1),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def _baseline_for(
    x: torch.Tensor, baseline: Any, kind: str, pad_id: int, name: str
) -> torch.Tensor:
    """The full (N, ...) baseline tensor for ``x``: pad id for tokens, 0 otherwise, unless given."""
    if baseline is None:
        baseline = pad_id if kind == "tokens" else 0.0
    if isinstance(baseline, bool) or not isinstance(baseline, int | float | torch.Tensor):
        raise TypeError(
            f"baseline for {name!r} must be a number or a tensor; got {type(baseline).__name__}."
        )
    b = torch.as_tensor(baseline, dtype=x.dtype).to(x.device)
    try:
        return torch.broadcast_to(b, x.shape)
    except RuntimeError:
        raise ValueError(
            f"baseline for {name!r} of shape {tuple(b.shape)} cannot broadcast to the input's shape "
            f"{tuple(x.shape)}; pass a scalar, one sample's shape {tuple(x.shape[1:])} or the full shape."
        ) from None


def _valid_units(
    x: torch.Tensor, valid_mask: Any, kind: str, pad_id: int, n_units: int, name: str
) -> torch.Tensor:
    """(N, U) bool: the units a curve may touch. Tokens default to the non-pad positions."""
    n = x.shape[0]
    if valid_mask is None:
        if kind == "tokens":
            return x != pad_id  # pads are already "absent": removing them would be a no-op
        return torch.ones(n, n_units, dtype=torch.bool)
    vm = torch.as_tensor(valid_mask)
    if tuple(vm.shape) != (n, n_units):
        raise ValueError(
            f"valid_mask for {name!r} must be (N, U) = ({n}, {n_units}) (one flag per unit); got {tuple(vm.shape)}."
        )
    return vm.bool()


def _step_counts(n_valid: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, steps+1) number of units taken at fraction k/steps, rounded half up, exactly."""
    k = torch.arange(steps + 1)
    # integer arithmetic: round(k * n / steps) with halves rounded up, free of float error
    return (2 * k[None, :] * n_valid[:, None] + steps) // (2 * steps)


def perturbation_curve(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    attributions: Mapping[str, torch.Tensor] | torch.Tensor,
    spec: ModalitySpec,
    target: Any = None,
    *,
    mode: str = "deletion",
    steps: int = 10,
    baseline: Any = None,
    patch_size: Any = None,
    valid_mask: Any = None,
    use_abs: bool = False,
    output: str = "probability",
    seed: int = 0,
    max_batch_size: int | None = None,
) -> PerturbationCurve:
    """Deletion or insertion curve of one modality, plus its random-order reference.

    Parameters
    ----------
    model : callable
        Called as ``model(**inputs)``; returns logits (N, C) or outputs (N,). Put it in
        ``eval()`` mode first: dropout would make the curve random.
    inputs : dict of str -> Tensor of shape (N, ...)
    attributions : dict of str -> Tensor, or Tensor
        The map for ``spec.name`` (other keys are ignored): the input's shape, except tokens
        (N, T) per-token scores; an image map may also be channel-summed (N, H, W).
    spec : ModalitySpec
        Which modality to perturb, its kind (sets the units) and, for tokens, ``pad_id``.
    target : int or Tensor of shape (N,), optional
        Class whose probability is tracked; None for scalar-output models.
    mode : {"deletion", "insertion"}
        deletion: start from the full input, replace the top units by the baseline;
        insertion: start from the baseline (for this modality only), restore the top units.
    steps : int, default=10
        The curve has ``steps + 1`` points at fractions 0, 1/steps, ..., 1 of the units.
    baseline : float or Tensor, optional
        What an absent unit becomes; broadcast to the input. Default: ``spec.pad_id`` for
        tokens, 0 otherwise.
    patch_size : int or (int, int), optional
        Images only: perturb ``ph x pw`` patches (ranked by summed attribution) instead of pixels.
    valid_mask : Tensor of shape (N, U), bool, optional
        Units the curve may touch (for tokens (N, T): the real tokens); the rest keep their
        input value throughout. Default: tokens different from ``pad_id``; all units otherwise.
    use_abs : bool, default=False
        Rank units by absolute attribution. The default ranks by signed attribution, so the
        evidence *for* the target goes first, which is what the curves test.
    output : {"probability", "logit"}, default="probability"
        For classifiers: record the softmax probability of the target, or its logit.
    seed : int, default=0
        Seeds the random reference order.
    max_batch_size : int, optional
        Rows per forward pass. All ``2 * N * (steps + 1)`` perturbed inputs are evaluated in
        batched passes of this size; None means one pass.

    Returns
    -------
    PerturbationCurve
    """
    check_choice("mode", mode, MODES)
    check_choice("output", output, OUTPUTS)
    steps = check_positive_int("steps", steps)
    if not isinstance(spec, ModalitySpec):
        raise TypeError(f"spec must be a ModalitySpec; got {type(spec).__name__}.")
    inputs = check_inputs(inputs)
    name, kind = spec.name, spec.kind
    if name not in inputs:
        raise ValueError(f"spec.name={name!r} is not in inputs; inputs have {list(inputs)}.")
    x = inputs[name]
    _check_sample_shape(tuple(x.shape[1:]), kind, name=f"inputs[{name!r}]")
    if kind == "tokens" and x.dtype.is_floating_point:
        raise TypeError(
            f"inputs[{name!r}] has kind 'tokens' and must hold integer ids; got dtype {x.dtype}."
        )
    attr = attributions[name] if isinstance(attributions, Mapping) else attributions
    if not isinstance(attr, torch.Tensor):
        raise TypeError(
            f"attributions[{name!r}] must be a torch.Tensor; got {type(attr).__name__}."
        )
    n = batch_size(inputs)
    if attr.shape[0] != n:
        raise ValueError(f"attributions[{name!r}] has {attr.shape[0]} samples but inputs have {n}.")
    tgt = check_target(target, n)

    sample_shape = tuple(x.shape[1:])
    scores = unit_scores(attr, kind, sample_shape=sample_shape, patch_size=patch_size).cpu()
    if use_abs:
        scores = scores.abs()
    n_units = scores.shape[1]
    valid = _valid_units(x, valid_mask, kind, spec.pad_id, n_units, name).cpu()
    base = _baseline_for(x, baseline, kind, spec.pad_id, name)

    gen = torch.Generator().manual_seed(int(seed))
    ranks = torch.stack(
        [
            unit_order_ranks(scores, valid),
            unit_order_ranks(torch.rand(scores.shape, generator=gen), valid),
        ]
    )  # (2 orders, N, U)
    counts = _step_counts(valid.sum(dim=1), steps)  # (N, S+1)
    taken = ranks[:, :, None, :] < counts[None, :, :, None]  # (2, N, S+1, U); only valid units
    present = ~taken if mode == "deletion" else (taken | ~valid[None, :, None, :])
    present = present.reshape(-1, n_units)  # row r = (order, sample, step)
    sample_of_row = torch.arange(n).repeat_interleave(steps + 1).repeat(2)

    def build(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = sample_of_row[rows]
        batch = {k: v[idx.to(v.device)] for k, v in inputs.items()}
        p = present[rows].to(x.device)
        batch[name] = fill_units(
            x[idx.to(x.device)], base[idx.to(x.device)], p, kind, patch_size=patch_size
        )
        return batch

    out = forward_rows(model, build, present.shape[0], max_batch_size=max_batch_size)
    row_target = None if tgt is None else tgt[sample_of_row]
    values = (
        target_scores(out, row_target, output=output).reshape(2, n, steps + 1).numpy().astype(float)
    )
    fractions = np.linspace(0.0, 1.0, steps + 1)
    return PerturbationCurve(
        modality=name,
        mode=mode,
        fractions=fractions,
        curve=values[0],
        random_curve=values[1],
        auc=curve_auc(fractions, values[0]),
        random_auc=curve_auc(fractions, values[1]),
    )


def deletion_curve(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    attributions: Mapping[str, torch.Tensor] | torch.Tensor,
    spec: ModalitySpec,
    target: Any = None,
    **kwargs: Any,
) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="deletion"`` (lower AUC = more faithful)."""
    return perturbation_curve(model, inputs, attributions, spec, target, mode="deletion", **kwargs)


def insertion_curve(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    attributions: Mapping[str, torch.Tensor] | torch.Tensor,
    spec: ModalitySpec,
    target: Any = None,
    **kwargs: Any,
) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="insertion"`` (higher AUC = more faithful)."""
    return perturbation_curve(model, inputs, attributions, spec, target, mode="insertion", **kwargs)


def perturbation_curves(
    model: Callable[..., torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    attributions: Mapping[str, torch.Tensor],
    specs: list[ModalitySpec] | tuple[ModalitySpec, ...],
    target: Any = None,
    *,
    mode: str = "deletion",
    valid_masks: Mapping[str, torch.Tensor] | None = None,
    baselines: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, PerturbationCurve]:
    """One :func:`perturbation_curve` per modality in ``specs`` that has an attribution.

    Parameters
    ----------
    specs : sequence of ModalitySpec
    valid_masks, baselines : dict of str -> value, optional
        Per-modality ``valid_mask`` / ``baseline``.
    **kwargs
        Passed on to :func:`perturbation_curve` (``steps``, ``patch_size``, ``seed`` ...).

    Returns
    -------
    dict of str -> PerturbationCurve
    """
    if not isinstance(attributions, Mapping):
        raise TypeError(
            f"attributions must be a dict of modality -> tensor; got {type(attributions).__name__}."
        )
    valid_masks = dict(valid_masks or {})
    baselines = dict(baselines or {})
    patch_size = kwargs.pop("patch_size", None)  # patches only make sense for the image modalities
    return {
        spec.name: perturbation_curve(
            model,
            inputs,
            attributions,
            spec,
            target,
            mode=mode,
            valid_mask=valid_masks.get(spec.name),
            baseline=baselines.get(spec.name),
            patch_size=patch_size if spec.kind == "image" else None,
            **kwargs,
        )
        for spec in specs
        if spec.name in attributions
    }
