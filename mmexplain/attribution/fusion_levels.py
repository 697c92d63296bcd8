"""Attribution per fusion level: where and how the modalities meet inside a model.

A model declares its levels (:meth:`MultimodalModel.fusion_levels`, each a
:class:`~mmexplain.models.FusionLevel`): each encoder's output, the fusion's own levels
(projections, the fused representation) and the decision. At a level with representation
``h``, everything downstream depends on ``h`` only, so the output difference
``f(x) − f(reference)`` is explained at that level in two exact steps:

1. **Split the level's change over modalities.** ``h(S)`` is the level's value when the
   modalities in ``S`` take the sample and the rest the reference. The Möbius transform
   ``u_T = Σ_{S ⊆ T} (−1)^{|T|−|S|} h(S)`` gives one part per non-empty set of modalities
   ``T``, and ``Σ_T u_T = h(x) − h(reference)`` exactly. ``u_{a}`` is what modality ``a``
   changes on its own, ``u_{a,b}`` what ``a`` and ``b`` change only together (for tensor
   fusion these are its unimodal and bimodal blocks, taken relative to the reference). At a
   level of per-modality branches only the single-modality parts exist.
2. **Carry each part to the output.** The mean gradient of the output along the straight
   path from ``h(reference)`` to ``h(x)`` (Captum's ``LayerIntegratedGradients`` without
   multiplying by the change) times each part gives that part's contribution; the
   contributions sum to ``f(x) − f(reference)`` up to the path integral's error, which is
   measured and refined. At the decision level the parts *are* the contributions (no
   integral): the exact main effects and cross-modal terms of the output.

Each term's share is ``|contribution| / Σ |contributions|`` over the level's terms.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..exceptions import AttributionError, ConfigError
from ..modality import ModalitySpec
from ..models.fusion import FusionLevel
from ..reference import resolve_baselines
from ..registry import Registry
from ..validation import batch_size, check_inputs, check_target
from .methods import DEFAULT_INTERNAL_BATCH_SIZE, _target_output, model_output, resolve_specs

#: How a cross-modal term is named: its modalities joined by this sign (``image×question``).
CROSS = "×"


@dataclass(frozen=True)
class LayerMethod:
    """How the output's gradient with respect to a level is averaged.

    ``run(forward, layers, xs, bs, target, *, n_steps, internal_batch_size)`` -> one tensor per
    layer shaped like the layer's output (N, ...); ``complete``: gradient times change sums to
    f(x) − f(reference) (up to the path integral's error, then refined by doubling steps).
    """

    run: Callable[..., list[torch.Tensor]]
    complete: bool


LAYER_METHODS: Registry[LayerMethod] = Registry("layer attribution method")


def _as_list(a: Any) -> list[torch.Tensor]:
    return list(a) if isinstance(a, (list, tuple)) else [a]


def _path_gradient(forward, layers, xs, bs, target, *, n_steps, internal_batch_size):
    from captum.attr import LayerIntegratedGradients

    with warnings.catch_warnings():
        # a branch level's modules are parallel, one per modality: none depends on another
        warnings.filterwarnings("ignore", message="Multiple layers provided")
        lig = LayerIntegratedGradients(forward, layers if len(layers) > 1 else layers[0], multiply_by_inputs=False)
        return _as_list(lig.attribute(xs, baselines=bs, target=target, n_steps=n_steps, method="gausslegendre",
                                      internal_batch_size=internal_batch_size))


def _local_gradient(forward, layers, xs, bs, target, *, n_steps, internal_batch_size):
    from captum.attr import LayerGradientXActivation

    lga = LayerGradientXActivation(forward, layers if len(layers) > 1 else layers[0], multiply_by_inputs=False)
    return _as_list(lga.attribute(xs, target=target))


LAYER_METHODS.register("layer_ig", "mean gradient along the straight path from the reference (LayerIntegratedGradients)")(
    LayerMethod(_path_gradient, complete=True))
LAYER_METHODS.register("layer_gradient_x_activation", "gradient at the sample times the change (first order)")(
    LayerMethod(_local_gradient, complete=False))


def term_name(term: Sequence[str]) -> str:
    """``("image", "question")`` -> ``"image×question"``."""
    return CROSS.join(term)


def _coalitions(names: Sequence[str]) -> list[tuple[str, ...]]:
    return [c for r in range(len(names) + 1) for c in itertools.combinations(names, r)]


class _Capture:
    """Forward hooks that keep the outputs of some modules (detached, float64)."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.modules, self.values = list(modules), [None] * len(modules)

    def __enter__(self) -> _Capture:
        self.hooks = [m.register_forward_hook(self._keep(i)) for i, m in enumerate(self.modules)]
        return self

    def _keep(self, i: int):
        def hook(module, args, out):
            self.values[i] = out.detach().double()
        return hook

    def __exit__(self, *exc: Any) -> None:
        for h in self.hooks:
            h.remove()


def _level_values(model: nn.Module, x: dict, base: dict, level: FusionLevel, names: Sequence[str],
                  coalitions: Sequence[tuple[str, ...]], pick: Callable,
                  features: tuple[dict, dict] | None) -> dict[tuple[str, ...], list[torch.Tensor]]:
    """The level's value per coalition (modalities in it from the sample, the rest from the
    reference): one tensor per module, or the explained output (N,) for the output level.
    ``features``: the encoders' outputs for the sample and the reference, when the model is
    modality-factorised (then only the fusion runs per coalition)."""
    modules = list(level.branches.values()) if level.branches is not None else \
        [level.joint] if level.joint is not None else []

    def run(fast: bool) -> dict[tuple[str, ...], list[torch.Tensor]] | None:
        fx, fb = features if fast else (None, None)
        values = {}
        for s in coalitions:
            with _Capture(modules) as cap:
                if fast:  # encode once, fuse per coalition
                    out = model.fuse({m: fx[m] if m in s else fb[m] for m in names})
                else:
                    out = model(**{m: x[m] if m in s else base[m] for m in names})
            if any(v is None for v in cap.values):
                return None  # a module outside the fusion: run the whole model instead
            values[s] = cap.values if modules else [pick(out).double()]
        return values

    with torch.no_grad():
        values = run(True) if features is not None else None
        values = values if values is not None else run(False)
    if values is None:  # pragma: no cover - a declared module that never runs
        raise ConfigError(f"fusion level {level.name!r}: one of its modules does not run in the model's forward.")
    return values


def _mobius(values: Mapping[tuple[str, ...], list[torch.Tensor]],
            terms: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], list[torch.Tensor]]:
    """``u_T = Σ_{S ⊆ T} (−1)^{|T|−|S|} v(S)`` for each term ``T``."""
    parts = {}
    for t in terms:
        acc = None
        for r in range(len(t) + 1):
            for s in itertools.combinations(t, r):
                sign = (-1) ** (len(t) - r)
                v = [sign * a for a in values[s]]
                acc = v if acc is None else [p + q for p, q in zip(acc, v)]
        parts[t] = acc
    return parts


def fusion_level_attribution(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Any = None,
    baselines: Mapping[str, Any] | None = None,
    method: str = "layer_ig",
    levels: Sequence[str | FusionLevel] | None = None,
    modalities: Sequence[ModalitySpec] | None = None,
    n_steps: int = 32,
    tolerance: float = 0.01,
    max_steps: int = 512,
    internal_batch_size: int | None = DEFAULT_INTERNAL_BATCH_SIZE,
) -> pd.DataFrame:
    """Each modality's, and each cross-modal term's, contribution at each level of a model.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(**inputs)``; built-in models declare their levels
        (``model.fusion_levels()``).
    inputs : dict of str -> Tensor of shape (N, ...)
    target : int, tensor of shape (N,), or None
        The explained output (class index); None for a single-output model.
    baselines : None, Reference or dict, optional
        What "absent" means per modality (default the model's reference, see
        :func:`mmexplain.reference.resolve_baselines`).
    method : {"layer_ig", "layer_gradient_x_activation"}, default="layer_ig"
        How the output's gradient at a level is taken: averaged along the path (complete), or
        at the sample only (a first-order estimate).
    levels : list of str or FusionLevel, optional
        The model's levels to report, by name, or levels of your own model
        (:class:`~mmexplain.models.FusionLevel`). Default: all the model's levels; a model
        that declares none gets its decision level (the output), which needs nothing from it.
    modalities : list of ModalitySpec, optional
        Required for a model without ``modality_specs``.
    n_steps : int, default=32
        First number of path steps (``layer_ig``).
    tolerance : float, default=0.01
        ``layer_ig`` reruns the samples whose completeness error exceeds ``tolerance`` times
        |f(x) − f(reference)| with doubled steps, up to ``max_steps``; 0 turns this off.
    max_steps : int, default=512
    internal_batch_size : int or None, default=DEFAULT_INTERNAL_BATCH_SIZE (128)
        Bounds the path's batch (samples × steps) in memory; None: no bound.

    Returns
    -------
    pandas.DataFrame
        One row per (level, sample, term), levels in data-flow order. ``level``, ``stage``
        (see :data:`mmexplain.models.STAGES`), ``sample``, ``modality`` (a modality, or a
        cross-modal term such as ``image×question``), ``cross_modal`` (bool), ``method``,
        ``total`` (the term's contribution to f(x) − f(reference), in output units),
        ``share`` (|total| / Σ |total| over the level's terms of that sample: they sum to
        1), ``output_delta`` (f(x) − f(reference) as the model computes it),
        ``completeness_error`` (|Σ totals − output_delta|, for complete methods),
        ``n_steps`` (path steps used; 0 where no path is needed), ``note`` (what the
        level's numbers can and cannot say). Levels may add columns (gated fusion:
        ``gate``, ``closed_gate_change``).

    Notes
    -----
    At a level of per-modality branches (the encoders, the projections) there is nothing
    cross-modal yet: interactions further down are credited to the modalities by the path,
    as layer integrated gradients at that layer does. Late fusion's decision level is the
    exception: its output *is* the sum of its branches, so its cross-modal terms are 0 by
    construction and are reported as such.
    """
    entry = LAYER_METHODS.get(method)
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        raise ConfigError(f"n_steps={n_steps!r}; expected an integer >= 1.")
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < n_steps:
        raise ConfigError(f"max_steps={max_steps!r}; expected an integer >= n_steps ({n_steps}).")
    if not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ConfigError(f"tolerance={tolerance!r}; expected a number >= 0.")
    specs = resolve_specs(model, modalities)
    names = [s.name for s in specs]
    inputs = check_inputs(inputs, modalities=names)
    n = batch_size(inputs)
    tgt = check_target(target, n)
    device = next(iter(inputs.values())).device
    if tgt is not None:
        tgt = tgt.to(device)
    chosen = _select_levels(model, levels)
    base, _ = resolve_baselines(model, specs, inputs, baselines)

    def pick(out: torch.Tensor) -> torch.Tensor:
        return _target_output(out, tgt)

    def forward(*xs: torch.Tensor) -> torch.Tensor:
        return model(**dict(zip(names, xs)))

    xs, bs = tuple(inputs[m] for m in names), tuple(base[m] for m in names)
    delta = model_output(model, inputs, tgt) - model_output(model, base, tgt)
    features = None
    if getattr(model, "modality_factorised", False):  # encode once for every level and coalition
        with torch.no_grad():
            features = (model.encode(inputs), model.encode(base))
    singles = [(m,) for m in names]
    crosses = [c for c in _coalitions(names) if len(c) >= 2]
    rows: list[dict[str, Any]] = []
    for level in chosen:
        if level.branches is not None:
            missing = [m for m in names if m not in level.branches]
            if missing:
                raise ConfigError(f"fusion level {level.name!r} has no branch for modality {missing}.")
            layers = [level.branches[m] for m in names]
            values = _level_values(model, inputs, base, level, names, [(), tuple(names)], pick, features)
            # each branch depends on its own modality only: its part is its own change
            parts = {(m,): [values[tuple(names)][i] - values[()][i] if j == i else torch.zeros_like(values[()][i])
                            for i in range(len(names))] for j, m in enumerate(names)}
            terms = singles
            if level.output_is_sum:  # reported, as zeros: nothing downstream mixes the modalities
                terms = singles + crosses
                parts.update({c: [torch.zeros_like(v) for v in values[()]] for c in crosses})
        else:
            layers = [level.joint] if level.joint is not None else []
            values = _level_values(model, inputs, base, level, names, _coalitions(names), pick, features)
            terms = singles + crosses
            parts = _mobius(values, terms)
        totals, err, steps = _carry_to_output(entry, forward, layers, xs, bs, tgt, parts, terms, delta,
                                              n_steps=n_steps, tolerance=tolerance, max_steps=max_steps,
                                              internal_batch_size=internal_batch_size, level=level)
        extras = {}
        if level.extras is not None:
            with torch.no_grad():
                extras = level.extras(features[0] if features is not None else model.encode(inputs), pick)
        note = _note(level, entry, err, delta, tolerance, steps, max_steps)
        shares = totals.abs() / totals.abs().sum(1, keepdim=True).clamp_min(1e-12)
        for i in range(n):
            for j, t in enumerate(terms):
                row = {"level": level.name, "stage": level.stage, "sample": i, "modality": term_name(t),
                       "cross_modal": len(t) > 1, "method": method, "total": float(totals[i, j]),
                       "share": float(shares[i, j]), "output_delta": float(delta[i]),
                       "completeness_error": None if err is None else float(err[i]),
                       "n_steps": int(steps[i]), "note": note}
                for col, per_mod in extras.items():
                    row[col] = float(per_mod[t[0]][i]) if len(t) == 1 else None
                rows.append(row)
    return pd.DataFrame(rows)


def _select_levels(model: nn.Module, levels: Sequence[str | FusionLevel] | None) -> list[FusionLevel]:
    declared = model.fusion_levels() if hasattr(model, "fusion_levels") else []
    if not declared:
        declared = [FusionLevel("decision", "decision", "the output itself: exact main effects and cross-modal terms")]
    if levels is None:
        return declared
    by_name = {lv.name: lv for lv in declared}
    chosen = []
    for lv in levels:
        if isinstance(lv, FusionLevel):
            chosen.append(lv)
        elif lv in by_name:
            chosen.append(by_name[lv])
        else:
            raise ConfigError(f"unknown fusion level {lv!r}; the model's levels are {list(by_name)}.")
    return chosen


def _carry_to_output(entry: LayerMethod, forward, layers, xs, bs, tgt, parts, terms, delta, *, n_steps, tolerance,
                     max_steps, internal_batch_size, level) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Each term's contribution (N, T) float64, the completeness error (N,) and the steps used (N,)."""
    n = len(delta)
    if not layers:  # the output level: the parts are the contributions themselves
        totals = torch.stack([parts[t][0].cpu() for t in terms], dim=1)
        return totals, (totals.sum(1) - delta).abs(), torch.zeros(n, dtype=torch.long)

    def contributions(rows: torch.Tensor | None, steps: int) -> torch.Tensor:
        def sub(t):
            return t if rows is None else t[rows]
        try:
            grads = entry.run(forward, layers, tuple(sub(x) for x in xs), tuple(sub(b) for b in bs),
                              None if tgt is None else sub(tgt), n_steps=steps, internal_batch_size=internal_batch_size)
        except (RuntimeError, AssertionError) as e:
            raise AttributionError(f"fusion level {level.name!r}: the layer gradient failed: {e}") from e
        out = []
        for t in terms:
            acc = 0.0
            for g, u in zip(grads, parts[t]):
                acc = acc + (g.detach().double() * sub(u)).flatten(1).sum(1)
            out.append(acc.cpu())
        return torch.stack(out, dim=1)

    totals = contributions(None, n_steps)
    steps = torch.full((n,), n_steps if entry.complete else 0, dtype=torch.long)
    if not entry.complete:
        return totals, None, steps
    err = (totals.sum(1) - delta).abs()
    current = n_steps
    while tolerance and current < max_steps:
        bad = (err > tolerance * delta.abs().clamp_min(1e-6)).nonzero().flatten()
        if len(bad) == 0:
            break
        current = min(2 * current, max_steps)
        totals[bad] = contributions(bad, current)
        err[bad] = (totals[bad].sum(1) - delta[bad]).abs()
        steps[bad] = current
    return totals, err, steps


def _note(level: FusionLevel, entry: LayerMethod, err, delta, tolerance, steps, max_steps) -> str:
    words = []
    if level.output_is_sum:
        words.append("cross-modal terms are 0 by construction: the output is the sum of per-modality terms")
    elif level.branches is not None:
        words.append("per-modality branches: nothing is cross-modal yet; later mixing is credited to the "
                     "modalities along the path")
    elif level.joint is None:
        words.append("exact: main effects and cross-modal terms of the output itself, no path integral")
    if not entry.complete:
        words.append("first-order estimate: totals need not add up to the output difference")
    elif err is not None and tolerance:
        rel = err / delta.abs().clamp_min(1e-6)
        unconverged = int((rel > tolerance).sum())
        if unconverged:
            words.append(f"completeness not reached for {unconverged} of {len(rel)} samples within {max_steps} steps "
                         f"(largest relative error {float(rel.max()):.3g})")
    return "; ".join(words)


def fusion_level_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each term's share of a level over all the samples, from
    :func:`fusion_level_attribution`'s table: ``Σ_samples |total| / Σ_samples Σ_terms |total|``.

    Pooled, so a sample whose output barely moves from the reference (whose per-sample shares
    are mostly noise) weighs as little as it moves; the shares of each level sum to 1. Levels
    (and fusions) keep their order.
    """
    keys = [k for k in ("fusion", "level", "stage", "modality", "cross_modal") if k in table.columns]
    level_keys = [k for k in ("fusion", "level") if k in table.columns]
    mass = table.assign(share=table["total"].abs())
    per_term = mass.groupby(keys, sort=False)["share"].sum().reset_index()
    per_level = per_term.groupby(level_keys, sort=False)["share"].transform("sum")
    return per_term.assign(share=per_term["share"] / per_level.clip(lower=1e-300))


def fusion_level_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per level: its stage, the cross-modal share (the pooled share of the cross-modal
    terms, as in :func:`fusion_level_shares`), the largest relative completeness error, the
    steps used and the level's note."""
    keys = [k for k in ("fusion", "level") if k in table.columns]
    shares = fusion_level_shares(table)
    rows = []
    for key, g in table.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mine = shares
        for k, v in zip(keys, key):
            mine = mine[mine[k] == v]
        first = g.groupby("sample").first()
        err = pd.to_numeric(first["completeness_error"], errors="coerce")
        rel = (err / first["output_delta"].abs().clip(lower=1e-6)).max()
        rows.append({**dict(zip(keys, key)), "stage": g["stage"].iloc[0],
                     "cross_modal_share": float(mine.loc[mine.cross_modal, "share"].sum()),
                     "max_relative_completeness_error": None if pd.isna(rel) else float(rel),
                     "max_steps_used": int(first["n_steps"].max()), "note": g["note"].iloc[0]})
    return pd.DataFrame(rows)


def compare_fusions(
    models: Mapping[str, nn.Module],
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Any = None,
    baselines: Mapping[str, Any] | None = None,
    method: str = "layer_ig",
    n_steps: int = 32,
) -> pd.DataFrame:
    """Mean share per level and term for several models trained on the same data.

    Returns
    -------
    pandas.DataFrame
        Columns ``fusion``, ``level``, ``stage``, ``modality``, ``cross_modal``, ``share``:
        one tidy table to compare early / intermediate / late / attention fusion side by side.
    """
    tables = []
    for name, model in models.items():
        t = fusion_level_attribution(model, inputs, target=target, baselines=baselines, method=method, n_steps=n_steps)
        t.insert(0, "fusion", name)
        tables.append(t)
    if not tables:
        raise ConfigError("models is empty; pass {name: model, ...}.")
    return fusion_level_shares(pd.concat(tables, ignore_index=True))
