"""Attribution per fusion level: how much each modality's branch carries where modalities meet.

A model declares its fusion points as ``{level: {modality: module}}`` (built-in models via
``model.fusion_points()``); at each level the modules' outputs together form the
representation there, one branch per modality. Layer attribution on those modules, summed
per module, gives each modality's contribution at that level.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..exceptions import AttributionError, ConfigError
from ..modality import ModalitySpec
from ..reference import resolve_baselines
from ..registry import Registry
from ..validation import batch_size, check_inputs, check_target
from .methods import EmbeddingInputModel, _mask_terms, model_output, resolve_specs


@dataclass(frozen=True)
class LayerMethod:
    """A layer attribution method: ``run(f, layers, xs, bs, target, ids, *, n_steps,
    internal_batch_size)`` -> one attribution per layer; ``complete``: the layers' totals
    sum to the output difference along the path."""

    run: Callable[..., Any]
    complete: bool


LAYER_METHODS: Registry[LayerMethod] = Registry("layer attribution method")


def _layer_ig(f, layers, xs, bs, tgt, ids, *, n_steps, internal_batch_size):
    from captum.attr import LayerIntegratedGradients

    with warnings.catch_warnings():
        # a level's taps are parallel branches, one per modality: none depends on another
        warnings.filterwarnings("ignore", message="Multiple layers provided")
        return LayerIntegratedGradients(f, layers).attribute(
            xs, baselines=bs, target=tgt, additional_forward_args=ids, n_steps=n_steps,
            internal_batch_size=internal_batch_size)


def _layer_gxa(f, layers, xs, bs, tgt, ids, *, n_steps, internal_batch_size):
    from captum.attr import LayerGradientXActivation

    return LayerGradientXActivation(f, layers).attribute(xs, target=tgt, additional_forward_args=ids)


def _layer_conductance(f, layers, xs, bs, tgt, ids, *, n_steps, internal_batch_size):
    from captum.attr import LayerConductance

    return [LayerConductance(f, layer).attribute(xs, baselines=bs, target=tgt, additional_forward_args=ids,
                                                 n_steps=n_steps, internal_batch_size=internal_batch_size)
            for layer in layers]


LAYER_METHODS.register("layer_ig", "LayerIntegratedGradients")(LayerMethod(_layer_ig, complete=True))
LAYER_METHODS.register("layer_conductance", "LayerConductance")(LayerMethod(_layer_conductance, complete=False))
LAYER_METHODS.register("layer_gradient_x_activation", "LayerGradientXActivation")(LayerMethod(_layer_gxa, complete=False))


def _sum_per_sample(a: torch.Tensor | tuple) -> torch.Tensor:
    if isinstance(a, tuple):
        return sum(_sum_per_sample(t) for t in a)
    return a.detach().flatten(1).sum(1).double().cpu()


def fusion_level_attribution(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Any = None,
    baselines: Mapping[str, Any] | None = None,
    method: str = "layer_ig",
    levels: Sequence[str] | None = None,
    fusion_points: Mapping[str, Mapping[str, nn.Module]] | None = None,
    modalities: Sequence[ModalitySpec] | None = None,
    n_steps: int = 32,
    internal_batch_size: int | None = None,
) -> pd.DataFrame:
    """Each modality's contribution at each fusion level.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(**inputs)``.
    inputs : dict of str -> Tensor of shape (N, ...)
    target : int, tensor of shape (N,), or None
    baselines : None, Reference or dict, optional
        What "absent" means per modality (default the model's reference, see
        :func:`mmexplain.reference.resolve_baselines`); a layer's baseline is its
        activation at the reference input.
    method : {"layer_ig", "layer_conductance", "layer_gradient_x_activation"}
        Captum's LayerIntegratedGradients, LayerConductance or LayerGradientXActivation.
    levels : list of str, optional
        Levels to attribute at; default all.
    fusion_points : dict, optional
        ``{level: {modality: module}}``; default ``model.fusion_points()``.
    n_steps : int, default=32
        Integration steps (``layer_ig``, ``layer_conductance``).

    Returns
    -------
    pandas.DataFrame
        One row per (level, sample, modality): ``total`` (signed sum of the attribution over
        the module's output units), ``share`` (|total| / Σ|total| over the level's
        modalities), ``output_delta`` (f(x) − f(reference) as the model computes it), and for
        ``layer_ig`` ``completeness_error`` (per sample and level, |Σ totals − output_delta|).
        A token modality's total includes its padding masks' step (see
        :func:`~mmexplain.attribution.attribute`).
    """
    entry = LAYER_METHODS.get(method)

    specs = resolve_specs(model, modalities)
    names = [s.name for s in specs]
    inputs = check_inputs(inputs, modalities=names)
    n = batch_size(inputs)
    tgt = check_target(target, n)
    device = next(iter(inputs.values())).device
    if tgt is not None:
        tgt = tgt.to(device)
    points = fusion_points if fusion_points is not None else getattr(model, "fusion_points", lambda: None)()
    if not points:
        raise ConfigError("the model declares no fusion points; pass fusion_points={level: {modality: module}}.")
    levels = list(levels) if levels is not None else list(points)
    for lv in levels:
        if lv not in points:
            raise ConfigError(f"unknown fusion level {lv!r}; the model's levels are {list(points)}.")
    base, _ = resolve_baselines(model, specs, inputs, baselines)
    # token ids enter as embeddings, so methods that interpolate inputs (conductance) work too
    f = EmbeddingInputModel(model, specs, reference_ids={t: base[t] for t in
                                                         [s.name for s in specs if s.kind_info.integer_ids]})
    xs, bs = f.embed(inputs), f.embed(base)
    ids = tuple(inputs[name] for name in f.token_names) or None
    # f(x) − f(reference) as the model computes it; the paths below run at the sample's padding
    # masks (as for attribute()), so each token modality is credited its masks' step separately
    reference_output = model_output(model, base, tgt)
    delta = model_output(model, inputs, tgt) - reference_output
    mask_terms = _mask_terms(f, bs, inputs, base, tgt, reference_output) if ids else {}
    f.snap = False
    rows = []
    for lv in levels:
        mods = [m for m in names if m in points[lv]]
        layers = [points[lv][m] for m in mods]
        try:
            attr = entry.run(f, layers, xs, bs, tgt, ids, n_steps=n_steps, internal_batch_size=internal_batch_size)
        except (RuntimeError, AssertionError) as e:
            raise AttributionError(f"{method} failed at fusion level {lv!r}: {e}") from e
        attr = attr if isinstance(attr, list) else [attr]
        totals = torch.stack([_sum_per_sample(a) + mask_terms.get(m, 0.0) for m, a in zip(mods, attr)], dim=1)
        shares = totals.abs() / totals.abs().sum(1, keepdim=True).clamp_min(1e-12)
        err = (totals.sum(1) - delta).abs() if entry.complete else None
        for i in range(n):
            for j, m in enumerate(mods):
                rows.append({
                    "level": lv, "sample": i, "modality": m, "method": method,
                    "total": float(totals[i, j]), "share": float(shares[i, j]),
                    "completeness_error": None if err is None else float(err[i]),
                    "output_delta": float(delta[i]),
                })
    return pd.DataFrame(rows)


def fusion_level_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Mean share per (level, modality) from :func:`fusion_level_attribution`'s table."""
    keys = [k for k in ("fusion", "level", "modality") if k in table.columns]
    return table.groupby(keys, sort=False)["share"].mean().reset_index()


def compare_fusions(
    models: Mapping[str, nn.Module],
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Any = None,
    baselines: Mapping[str, Any] | None = None,
    method: str = "layer_ig",
    n_steps: int = 32,
) -> pd.DataFrame:
    """Mean modality share per fusion level for several models trained on the same data.

    Returns
    -------
    pandas.DataFrame
        Columns ``fusion``, ``level``, ``modality``, ``share``: one tidy table to compare
        early / intermediate / late / attention fusion side by side.
    """
    tables = []
    for name, model in models.items():
        t = fusion_level_attribution(model, inputs, target=target, baselines=baselines, method=method, n_steps=n_steps)
        t.insert(0, "fusion", name)
        tables.append(t)
    if not tables:
        raise ConfigError("models is empty; pass {name: model, ...}.")
    return fusion_level_shares(pd.concat(tables, ignore_index=True))
