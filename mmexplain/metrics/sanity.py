"""Sanity check: does the explanation depend on what the model learned?

Adebayo et al. 2018, "Sanity checks for saliency maps" (NeurIPS): re-initialise the
model's parameterised layers one by one, cascading from the output side to the input
side, and compare each explanation of the progressively randomised model with the
explanation of the original. A method whose maps survive the destruction of the weights
(high rank correlation at the end) explains the input, not the model -- like an edge
detector -- and fails. Quantus implements the same test as ``MPRT``.

Comparisons use Spearman's rank correlation on absolute values (the paper's main
measure), per sample and per modality. A method passes only if *every* modality passes
(its final correlation is finite and below the threshold in absolute value): a map that
ignores the weights in one modality is not rescued by another that follows them. The
overall correlation (the mean over modalities, so a large image does not drown a short
token sequence) is reported for information only.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..exceptions import ConfigError
from ..validation import batch_size, check_fraction, check_inputs, check_positive_int, check_target
from .agreement import rank_agreement

__all__ = [
    "SanityCheckResult",
    "cascading_randomisation",
    "parameterised_layers",
    "randomise_layer",
]

ExplainFn = Callable[[nn.Module, dict[str, torch.Tensor], Any], Mapping[str, torch.Tensor]]


def parameterised_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, from the output side to the input side.

    Order is the reverse of registration order (``model.named_modules()``), which is the
    forward order for models that define their layers in the order they use them. Pass
    ``layers=`` to :func:`cascading_randomisation` when that does not hold.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    list of str
        Dotted module names, top (output) layer first.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    names = [
        name
        for name, mod in model.named_modules()
        if any(True for _ in mod.parameters(recurse=False))
    ]
    return names[::-1]


def randomise_layer(module: nn.Module, *, seed: int) -> None:
    """Re-initialise ``module``'s own parameters in place, deterministically.

    Uses the module's ``reset_parameters()`` when it has one (its own initialisation
    scheme, as Adebayo et al. and Quantus do; normalisation layers thus go back to their
    identity initialisation); otherwise draws each own parameter from a normal with the
    parameter's current standard deviation (1 where that is 0 or undefined). The global
    random state is left untouched.

    Parameters
    ----------
    module : torch.nn.Module
    seed : int
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(seed))
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            return
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, std if np.isfinite(std) and std > 0 else 1.0)


@dataclass(frozen=True)
class SanityCheckResult:
    """Outcome of :func:`cascading_randomisation`.

    Attributes
    ----------
    layers : list of str
        Layers randomised, in order (output side first).
    steps : list of int
        For each evaluation, how many of ``layers`` were randomised (the last is all).
    mean_correlation : ndarray of shape (S,)
        Overall correlation (mean over modalities), averaged over samples, per step.
    modality_correlation : dict of str -> ndarray of shape (S,)
        The same per modality.
    final_correlation : ndarray of shape (N,)
        Per-sample overall correlation after the last step.
    final_mean : float
        Mean of ``final_correlation`` (NaNs skipped). For information only: the verdict
        is per modality.
    threshold : float
    passed : bool
        True only if every modality passed (``all(passed_by_modality.values())``).
    final_by_modality : dict of str -> float
        Per modality, the correlation after the last step averaged over samples (NaNs
        skipped); the last entry of ``modality_correlation``.
    passed_by_modality : dict of str -> bool
        Per modality, ``|final_by_modality[m]| < threshold``; False when it is NaN.
    """

    layers: list[str]
    steps: list[int]
    mean_correlation: np.ndarray
    modality_correlation: dict[str, np.ndarray] = field(default_factory=dict)
    final_correlation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final_mean: float = float("nan")
    threshold: float = 0.5
    passed: bool = False
    final_by_modality: dict[str, float] = field(default_factory=dict)
    passed_by_modality: dict[str, bool] = field(default_factory=dict)

    @property
    def failed_modalities(self) -> list[str]:
        """Modalities whose explanation survived the randomisation (did not pass)."""
        return [m for m, ok in self.passed_by_modality.items() if not ok]

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per evaluation step and modality.

        Returns
        -------
        pandas.DataFrame
            Columns ``step`` (0-based evaluation index), ``n_randomised``, ``last_layer``
            (the last layer randomised), ``modality`` (a modality name, or ``"overall"``
            for the mean over modalities), ``correlation`` (averaged over samples),
            ``final`` (True on the last step's rows) and ``passed`` (nullable boolean: the
            verdict on the last step's rows -- per modality, and for ``"overall"`` the
            method's verdict, that every modality passed; ``<NA>`` on earlier steps,
            which are not judged).
        """
        rows = []
        last = len(self.steps) - 1
        verdict = {"overall": self.passed, **self.passed_by_modality}
        for i, k in enumerate(self.steps):
            series = {"overall": self.mean_correlation, **self.modality_correlation}
            for mod, values in series.items():
                passed = verdict.get(mod, pd.NA) if i == last else pd.NA
                rows.append((i, k, self.layers[k - 1], mod, float(values[i]), i == last, passed))
        frame = pd.DataFrame(
            rows,
            columns=[
                "step",
                "n_randomised",
                "last_layer",
                "modality",
                "correlation",
                "final",
                "passed",
            ],
        )
        return frame.astype({"final": bool, "passed": "boolean"})


def _attr_dict(value: Any, names: list[str] | None) -> dict[str, torch.Tensor]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"explain_fn must return a dict of modality -> attribution tensor; got {type(value).__name__}."
        )
    out = {}
    for k, v in value.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(
                f"explain_fn returned a {type(v).__name__} for {k!r}; expected a torch.Tensor."
            )
        out[k] = v.detach().cpu().float()
    if names is not None and sorted(out) != sorted(names):
        raise ValueError(
            f"explain_fn returned modalities {sorted(out)} after randomisation, but {sorted(names)} before."
        )
    return out


def _is_constant(attr: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """(N,) bool: True where a sample's |map| has one value over its compared units."""
    flat = attr.abs().reshape(attr.shape[0], -1)
    if valid is None:
        return (flat == flat[:, :1]).all(dim=1)
    vm = torch.as_tensor(valid).reshape(attr.shape[0], -1).bool()
    return torch.tensor([bool((f[v] == f[v][:1]).all()) for f, v in zip(flat, vm)])


def _correlations(
    original: Mapping[str, torch.Tensor],
    randomised: Mapping[str, torch.Tensor],
    valid_masks: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """Per-modality (N,) Spearman on |attr|.

    A randomised map that lost all rank structure (constant) while the original had some
    gets 0, not NaN: the explanation clearly changed with the weights.
    """
    out = {}
    for mod, a in original.items():
        b, vm = randomised[mod], valid_masks.get(mod)
        r = rank_agreement(a, b, absolute=True, valid_mask=vm).numpy().copy()
        r[(_is_constant(b, vm) & ~_is_constant(a, vm)).numpy()] = 0.0
        out[mod] = r
    return out


def _eval_points(n_layers: int, max_steps: int | None) -> list[int]:
    """1-based numbers of randomised layers at which to explain; always ends with all layers."""
    if max_steps is None or max_steps >= n_layers:
        return list(range(1, n_layers + 1))
    pts = np.unique(np.round(np.linspace(1, n_layers, max_steps)).astype(int))
    return [int(p) for p in pts]


def cascading_randomisation(
    model: nn.Module,
    explain_fn: ExplainFn,
    inputs: Mapping[str, torch.Tensor],
    target: Any = None,
    *,
    layers: Sequence[str] | None = None,
    max_steps: int | None = None,
    threshold: float = 0.5,
    valid_masks: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> SanityCheckResult:
    """Adebayo et al.'s cascading model-parameter randomisation test.

    Works on a deep copy: the caller's model is never modified. The original maps are
    computed on an untouched copy, then its layers are re-initialised one at a time from
    the output side (``randomise_layer`` with seed ``seed + i`` for the i-th layer), and
    the explanation is recomputed after each (or ``max_steps`` evenly spaced) steps.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(**inputs)``. Its train/eval mode is kept on the copy.
    explain_fn : callable
        ``explain_fn(model, inputs, target) -> dict modality -> attribution tensor`` (tokens
        (N, T), other modalities the input's shape). Must use the model it is given.
    inputs : dict of str -> Tensor of shape (N, ...)
    target : int or Tensor of shape (N,), optional
        Passed to ``explain_fn`` as a (N,) LongTensor (None stays None).
    layers : sequence of str, optional
        Dotted names of the modules to randomise, in the order to randomise them (output
        side first). Default: :func:`parameterised_layers`.
    max_steps : int, optional
        Explain after at most this many steps, evenly spaced and always including the last
        (full randomisation); the cascade itself still goes through every layer.
    threshold : float, default=0.5
        A modality passes if the absolute value of its final correlation (after all
        layers are randomised, averaged over samples) is below ``threshold``; the method
        passes if every modality does. Independent maps give about 0;
        Adebayo et al. show the methods that fail (guided backprop, edge detectors) staying
        near 1 after full randomisation. 0.5 -- at most a moderate monotone relation once
        nothing the model learned is left -- separates the two while allowing for the
        correlation that input-dependent factors (e.g. ``x`` in gradient x input or
        integrated gradients) keep on their own. Tighten it for a stricter test.
    valid_masks : dict of str -> Tensor, optional
        Per-modality masks of units to compare (e.g. real tokens (N, T)); default all.
    seed : int, default=0

    Returns
    -------
    SanityCheckResult
        ``passed`` is True only if every modality passed; ``passed_by_modality`` and
        ``final_by_modality`` say which did.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if not callable(explain_fn):
        raise TypeError(
            f"explain_fn must be callable (model, inputs, target) -> dict; got {type(explain_fn).__name__}."
        )
    threshold = check_fraction("threshold", threshold, low=0.0, high=1.0)
    if max_steps is not None:
        max_steps = check_positive_int("max_steps", max_steps)
    inputs = check_inputs(inputs)
    tgt = check_target(target, batch_size(inputs))
    valid_masks = dict(valid_masks or {})

    work = copy.deepcopy(model)  # never touch the caller's weights
    modules = dict(work.named_modules())
    if layers is None:
        layers = parameterised_layers(work)
    else:
        if isinstance(layers, str) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a list of module names; got {type(layers).__name__}.")
        unknown = [name for name in layers if name not in modules]
        if unknown:
            raise ConfigError(
                f"layers has unknown module names {unknown}; known parameterised modules: {parameterised_layers(work)}."
            )
        layers = list(layers)
    if not layers:
        raise ConfigError("the model has no parameterised layers to randomise (layers is empty).")

    original = _attr_dict(explain_fn(work, dict(inputs), tgt), None)
    mods = list(original)
    points = set(_eval_points(len(layers), max_steps))
    steps: list[int] = []
    per_mod: dict[str, list[float]] = {m: [] for m in mods}
    overall: list[float] = []
    final = np.full(batch_size(inputs), np.nan)
    for i, name in enumerate(layers, start=1):
        randomise_layer(modules[name], seed=seed + i)
        if i not in points:
            continue
        corr = _correlations(
            original, _attr_dict(explain_fn(work, dict(inputs), tgt), mods), valid_masks
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, on purpose
            sample_overall = np.nanmean(np.stack([corr[m] for m in mods]), axis=0)
            steps.append(i)
            for m in mods:
                per_mod[m].append(float(np.nanmean(corr[m])))
            overall.append(float(np.nanmean(sample_overall)))
        final = sample_overall
    final_mean = overall[-1]
    final_by_modality = {m: per_mod[m][-1] for m in mods}
    passed_by_modality = {
        m: bool(np.isfinite(v) and abs(v) < threshold) for m, v in final_by_modality.items()
    }
    return SanityCheckResult(
        layers=list(layers),
        steps=steps,
        mean_correlation=np.asarray(overall),
        modality_correlation={m: np.asarray(v) for m, v in per_mod.items()},
        final_correlation=np.asarray(final),
        final_mean=final_mean,
        threshold=threshold,
        passed=bool(passed_by_modality) and all(passed_by_modality.values()),
        final_by_modality=final_by_modality,
        passed_by_modality=passed_by_modality,
    )
