"""Deletion and insertion curves: does removing what the explanation ranks first hurt the model?

For one modality at a time, the most-attributed *units* are removed from the real input
(deletion: replaced by the modality's absent value) or restored into the absent input
(insertion), in ``steps`` equal fractions, while every other modality stays untouched.
Absent means the model's reference (``model.reference``, fitted once from training data;
:mod:`mmexplain.reference`) unless a baseline is given; a model without one gets its kinds'
data-free values (zeros, the pad id for tokens).
The model's probability of the target (softmax), or its raw output for a scalar-output
model, is recorded after each step. A faithful explanation gives a deletion curve that
falls faster (lower AUC), and an insertion curve that rises faster (higher AUC), than the
same curve with the units taken in a random order, which is returned alongside as the
reference (Petsiuk et al. 2018, RISE; Samek et al. 2017, region perturbation).

Units are declared by each modality's kind (:meth:`mmexplain.kinds.ModalityKind.unit_ids`):

========  ==============================  ==============================================
kind      input                           one unit
========  ==============================  ==============================================
image     (N, C, H, W)                    one pixel position, all channels together, or
                                          one ``patch_size`` patch
tokens    (N, T) integer ids              one token position (pad positions are skipped)
tabular   (N, F)                          one feature
audio     (N, L) or (N, C, L)             one time step, all channels together, or one
                                          ``audio_window`` window
generic   (N, ...)                        one element
========  ==============================  ==============================================

The unit helpers (:func:`unit_scores`, :func:`unit_count`, :func:`expand_unit_mask`,
:func:`fill_units`) are public so that other metrics can corrupt the same units; they are
thin wrappers of the kind's unit API and take a kind name or a
:class:`~mmexplain.kinds.ModalityKind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..exceptions import ConfigError
from ..factorised import use_factorised
from ..kinds import KINDS, ModalityKind
from ..modality import MODALITY_KINDS, ModalitySpec
from ..reference import resolve_baselines
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


def _kind_info(kind: str | ModalityKind) -> ModalityKind:
    """The :class:`~mmexplain.kinds.ModalityKind` for a kind name (or the kind itself)."""
    if isinstance(kind, ModalityKind):
        return kind
    check_choice("kind", kind, MODALITY_KINDS)
    return KINDS.get(kind)


def _patch(patch_size: Any) -> tuple[int, int] | None:
    """Normalise ``patch_size`` to None or (ph, pw)."""
    if patch_size is None:
        return None
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


def _unit_options(kind: ModalityKind, patch_size: Any, audio_window: Any) -> dict[str, Any]:
    """The keyword options of the kind's unit map; only patched kinds take any."""
    given = {k: v for k, v in (("patch_size", patch_size), ("audio_window", audio_window)) if v is not None}
    if given and not kind.patched:
        patched = [k for k in KINDS.names() if KINDS.get(k).patched]
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
        raise ConfigError(
            f"{shown}: patch_size / audio_window are only for kinds whose units may be patches or "
            f"windows ({patched}), not for kind={kind.name!r}."
        )
    if audio_window is not None:
        audio_window = check_positive_int("audio_window", audio_window)
    return {"patch_size": _patch(patch_size), "audio_window": audio_window}


def unit_count(
    sample_shape: tuple[int, ...],
    kind: str | ModalityKind,
    *,
    patch_size: Any = None,
    audio_window: int | None = None,
) -> int:
    """Number of units U in one sample of shape ``sample_shape`` (the input without N).

    Parameters
    ----------
    sample_shape : tuple of int
        The input's shape without the batch dimension, e.g. (C, H, W) for an image.
    kind : str or ModalityKind
        A registered kind ("image", "tokens", "tabular", "audio", "generic"); the kind
        defines the units (:meth:`mmexplain.kinds.ModalityKind.unit_ids`).
    patch_size : int or (int, int), optional
        Patched kinds only; images: units are ``ph x pw`` patches (edge patches may be smaller).
    audio_window : int, optional
        Patched kinds only; audio: units are windows of this many time steps.

    Returns
    -------
    int
    """
    info = _kind_info(kind)
    sample_shape = tuple(int(s) for s in sample_shape)
    info.check_sample_shape(sample_shape)
    return info.unit_count(sample_shape, **_unit_options(info, patch_size, audio_window))


def _map_shape(attr: torch.Tensor, sample_shape: tuple[int, ...] | None, info: ModalityKind) -> tuple[int, ...]:
    """The sample shape ``attr`` is a map of, checked against the kind."""
    own = tuple(attr.shape[1:])
    if sample_shape is None:
        try:
            info.check_sample_shape(own, "attribution")
            return own
        except ValueError:
            # a map with one leading (channel) axis summed out, e.g. an image map (N, H, W)
            if own and len(own) + 1 in (info.sample_dims or ()):
                return (1, *own)
            raise
    sample_shape = tuple(int(s) for s in sample_shape)
    # the input's own shape; or, where the kind accepts it, a map with the leading (channel)
    # axis summed out, or with trailing per-element axes (a token map per embedding dimension)
    ok = (
        own == sample_shape
        or (len(own) + 1 == len(sample_shape) and own == sample_shape[1:])
        or (len(own) > len(sample_shape) and own[: len(sample_shape)] == sample_shape)
    )
    if not ok:
        raise ValueError(
            f"attribution of shape {tuple(attr.shape)} does not match the input's sample shape "
            f"{sample_shape} for kind={info.name!r}; pass a map of the input's shape (tokens: (N, T))."
        )
    return sample_shape


def unit_scores(
    attr: torch.Tensor,
    kind: str | ModalityKind,
    *,
    sample_shape: tuple[int, ...] | None = None,
    patch_size: Any = None,
    audio_window: int | None = None,
) -> torch.Tensor:
    """Sum an attribution map into one score per unit (:meth:`ModalityKind.unit_scores`).

    Parameters
    ----------
    attr : Tensor
        image (N, C, H, W) or (N, H, W); tokens (N, T); tabular (N, F); audio (N, L) or
        (N, C, L); generic (N, ...).
    kind : str or ModalityKind
    sample_shape : tuple of int, optional
        The input's shape without N; when given, ``attr`` must match it (an image map may
        also come channel-summed as (N, H, W), a token map per embedding dimension as
        (N, T, E)). Default: the map's own shape.
    patch_size : int or (int, int), optional
        Patched kinds only (images): sum the pixel scores over ``ph x pw`` patches.
    audio_window : int, optional
        Patched kinds only (audio): sum the step scores over windows of this many steps.

    Returns
    -------
    Tensor of shape (N, U), float
        Units in row-major order (pixels / patches row by row).
    """
    if not isinstance(attr, torch.Tensor):
        raise TypeError(f"attr must be a torch.Tensor; got {type(attr).__name__}.")
    info = _kind_info(kind)
    options = _unit_options(info, patch_size, audio_window)
    attr = attr.detach().float()
    shape = _map_shape(attr, sample_shape, info)
    info.check_sample_shape(shape, "the input")
    return info.unit_scores(attr, shape, **options)


def expand_unit_mask(
    unit_mask: torch.Tensor,
    sample_shape: tuple[int, ...],
    kind: str | ModalityKind,
    *,
    patch_size: Any = None,
    audio_window: int | None = None,
) -> torch.Tensor:
    """Broadcast a per-unit mask back to the input's element layout.

    Parameters
    ----------
    unit_mask : Tensor of shape (B, U), bool
    sample_shape : tuple of int
        One input sample's shape (without the batch dimension).
    kind : str or ModalityKind
    patch_size, audio_window : optional
        Patched kinds only, as in :func:`unit_scores`.

    Returns
    -------
    Tensor of shape (B, *sample_shape), bool
        Every element carries its unit's flag (all channels of a pixel / time step alike).
    """
    info = _kind_info(kind)
    sample_shape = tuple(int(s) for s in sample_shape)
    u = unit_count(sample_shape, info, patch_size=patch_size, audio_window=audio_window)
    if unit_mask.dim() != 2 or unit_mask.shape[1] != u:
        raise ValueError(
            f"unit_mask must be (B, {u}) for sample shape {sample_shape}; got {tuple(unit_mask.shape)}."
        )
    options = _unit_options(info, patch_size, audio_window)
    return info.expand_units(unit_mask.bool(), sample_shape, **options)


def fill_units(
    x: torch.Tensor,
    baseline: torch.Tensor,
    present: torch.Tensor,
    kind: str | ModalityKind,
    *,
    patch_size: Any = None,
    audio_window: int | None = None,
) -> torch.Tensor:
    """Keep the units where ``present`` is True and take ``baseline`` everywhere else.

    Parameters
    ----------
    x : Tensor of shape (B, ...)
        The real input rows.
    baseline : Tensor
        Broadcastable to ``x``: what an absent unit becomes (normally the model's reference,
        :func:`mmexplain.reference.resolve_baselines`).
    present : Tensor of shape (B, U), bool
    kind : str or ModalityKind
    patch_size, audio_window : optional
        Patched kinds only, as in :func:`unit_scores`.

    Returns
    -------
    Tensor, same shape and dtype as ``x``
    """
    mask = expand_unit_mask(
        present, tuple(x.shape[1:]), kind, patch_size=patch_size, audio_window=audio_window
    )
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
    x: torch.Tensor, baseline: Any, kind: str | ModalityKind, pad_id: int, name: str
) -> torch.Tensor:
    """The full (N, ...) baseline tensor for ``x``, for callers without a model in hand.

    A given number or tensor is broadcast to ``x``; None takes the kind's data-free
    "absent" value (zeros; the pad id for integer-id kinds), which is what
    :func:`mmexplain.reference.resolve_baselines` gives a model without a fitted reference.
    Functions that have the model resolve None to its reference before calling this.
    """
    if baseline is None:
        info = _kind_info(kind)
        baseline = info.fit_reference(
            info.data_free_reference, name, tuple(x.shape[1:]), x.dtype, pad_id=pad_id
        )
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


def _reference_baseline(
    model: Any, spec: ModalitySpec, x: torch.Tensor, baseline: Any
) -> torch.Tensor:
    """``baseline`` broadcast to ``x``; None: the model's reference for ``spec`` (N, ...)."""
    if baseline is None:
        base, _ = resolve_baselines(model, [spec], {spec.name: x})
        return base[spec.name]
    return _baseline_for(x, baseline, spec.kind_info, spec.pad_id, spec.name)


def _valid_units(
    x: torch.Tensor,
    valid_mask: Any,
    kind: str | ModalityKind,
    pad_id: int,
    n_units: int,
    name: str,
    **unit_options: Any,
) -> torch.Tensor:
    """(N, U) bool: the units a curve may touch. Integer-id kinds default to non-pad units."""
    n = x.shape[0]
    if valid_mask is None:
        info = _kind_info(kind)
        if info.integer_ids:
            # pads are already "absent": removing them would be a no-op
            not_pad = (x != pad_id).float().cpu()
            return info.unit_scores(not_pad, tuple(x.shape[1:]), **unit_options) > 0
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
    audio_window: int | None = None,
    valid_mask: Any = None,
    use_abs: bool = False,
    output: str = "probability",
    seed: int = 0,
    max_batch_size: int | None = None,
    factorised: bool | None = None,
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
        What an absent unit becomes; broadcast to the input. Default: absent means the
        model's reference (``model.reference``, fitted from training data; see
        :func:`mmexplain.reference.resolve_baselines`); a model without one gets the kind's
        data-free value (zeros; ``spec.pad_id`` for tokens).
    patch_size : int or (int, int), optional
        Patched kinds (images): perturb ``ph x pw`` patches (ranked by summed attribution)
        instead of pixels.
    audio_window : int, optional
        Patched kinds (audio): perturb windows of this many time steps instead of single steps.
    valid_mask : Tensor of shape (N, U), bool, optional
        Units the curve may touch (for tokens (N, T): the real tokens); the rest keep their
        input value throughout. Default: for integer-id kinds (tokens) the units different
        from ``spec.pad_id``; all units otherwise.
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
    factorised : bool, optional
        Encode the modalities that stay as they are once per sample, and only the perturbed
        one per row, then fuse (:mod:`mmexplain.factorised`); the same curve, for a
        fraction of the cost when another modality's encoder is the expensive one (an
        image's curve on a model with a transformer text encoder). Default: when the model
        declares ``modality_factorised = True`` (built-in models do).

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
    name, info = spec.name, spec.kind_info
    if name not in inputs:
        raise ValueError(f"spec.name={name!r} is not in inputs; inputs have {list(inputs)}.")
    x = inputs[name]
    info.check_sample_shape(tuple(x.shape[1:]), name=f"inputs[{name!r}]")
    if info.integer_ids and x.dtype.is_floating_point:
        raise TypeError(
            f"inputs[{name!r}] has kind {spec.kind!r} and must hold integer ids; got dtype {x.dtype}."
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
    options = _unit_options(info, patch_size, audio_window)
    scores = unit_scores(attr, info, sample_shape=sample_shape, **options).cpu()
    if use_abs:
        scores = scores.abs()
    n_units = scores.shape[1]
    valid = _valid_units(x, valid_mask, info, spec.pad_id, n_units, name, **options).cpu()
    base = _reference_baseline(model, spec, x, baseline)

    # each sample's random order from its own seeded draw: a sample's reference curve never
    # depends on the batch it was computed in
    noise = torch.stack([torch.rand(n_units, generator=torch.Generator().manual_seed(int(seed))) for _ in range(n)])
    ranks = torch.stack([unit_order_ranks(scores, valid), unit_order_ranks(noise, valid)])  # (2 orders, N, U)
    counts = _step_counts(valid.sum(dim=1), steps)  # (N, S+1)
    taken = ranks[:, :, None, :] < counts[None, :, :, None]  # (2, N, S+1, U); only valid units
    present = ~taken if mode == "deletion" else (taken | ~valid[None, :, None, :])
    present = present.reshape(-1, n_units)  # row r = (order, sample, step)
    sample_of_row = torch.arange(n).repeat_interleave(steps + 1).repeat(2)

    def perturbed(rows: torch.Tensor) -> torch.Tensor:
        idx = sample_of_row[rows].to(x.device)
        return fill_units(x[idx], base[idx], present[rows].to(x.device), info, **options)

    if use_factorised(model, factorised):
        with torch.no_grad():  # the kept modalities: encoded once per sample
            kept = model.encode({k: v for k, v in inputs.items() if k != name})

        def build(rows: torch.Tensor) -> dict[str, torch.Tensor]:
            feats = {k: v[sample_of_row[rows].to(v.device)] for k, v in kept.items()}
            return {**feats, **model.encode({name: perturbed(rows)})}

        def run(**feats: torch.Tensor) -> torch.Tensor:
            return model.fuse(feats)

        out = forward_rows(run, build, present.shape[0], max_batch_size=max_batch_size)
    else:
        def build(rows: torch.Tensor) -> dict[str, torch.Tensor]:
            idx = sample_of_row[rows]
            return {**{k: v[idx.to(v.device)] for k, v in inputs.items()}, name: perturbed(rows)}

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
        Per-modality ``valid_mask`` / ``baseline``. A modality without a baseline: absent
        means the model's reference (``model.reference``; see :func:`perturbation_curve`).
    **kwargs
        Passed on to :func:`perturbation_curve` (``steps``, ``seed`` ...); ``patch_size`` and
        ``audio_window`` go to the patched kinds only (each kind uses the one it defines).

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
    # patches / windows only make sense for the patched kinds (images, audio)
    unit_kw = {k: kwargs.pop(k, None) for k in ("patch_size", "audio_window")}
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
            **(unit_kw if spec.kind_info.patched else {}),
            **kwargs,
        )
        for spec in specs
        if spec.name in attributions
    }
