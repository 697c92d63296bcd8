"""Analyses the notebooks run, as tested library functions returning tidy tables.

Each function takes a trained :class:`~mmexplain.training.Run` and sample indices of one
split, so notebooks stay a sequence of calls and figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from .attribution import (
    METHODS,
    AttributionResult,
    attribute,
    modality_shapley,
    share_by_group,
)
from .attribution.emap import emap
from .metrics import (
    agreement_matrix,
    cascading_randomisation,
    evidence_rank,
    mask_area_fraction,
    mass_in_mask,
    missing_modality,
    noise_robustness,
    perturbation_curves,
    pointing_game,
)
from .reference import resolve_baselines
from .training import Run, predict

#: Methods the reports run by default (SHAP partition is slower; add it by name).
DEFAULT_METHODS = ("ig", "saliency", "input_x_gradient", "deeplift", "gradient_shap", "smoothgrad", "occlusion")


def select_samples(run: Run, n: int, *, split: str = "test", seed: int = 0) -> torch.Tensor:
    """``n`` sample indices of ``split``, drawn by seed (all samples if ``n`` exceeds them)."""
    data = run.splits[split]
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(len(data), generator=g)[: min(n, len(data))].sort().values


def predictions(run: Run, idx: torch.Tensor, *, split: str = "test") -> pd.DataFrame:
    """Prediction, probability and truth per sample (classification)."""
    data = run.splits[split].subset(idx)
    out = predict(run.model, data)
    prob = out.softmax(1)
    pred = prob.argmax(1)
    names = data.label_names or [str(i) for i in range(out.shape[1])]
    return pd.DataFrame({
        "index": idx.tolist(),
        "true": [names[int(t)] for t in data.targets],
        "predicted": [names[int(p)] for p in pred],
        "probability": prob.max(1).values.tolist(),
        "correct": (pred == data.targets).tolist(),
    })


def baselines_for(run: Run, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's reference inputs for ``inputs`` (what "absent" means for every analysis)."""
    return resolve_baselines(run.model, run.model.modality_specs, inputs)[0]


def invalid_methods(run: Run, methods: Sequence[str]) -> dict[str, str]:
    """The methods whose rules do not hold for this model, with the reason."""
    return {m: why for m in methods if (why := METHODS.get(m).why_not(run.model))}


def explain(
    run: Run, idx: torch.Tensor, methods: Sequence[str] = DEFAULT_METHODS, *, split: str = "test",
    target: str = "predicted", include_invalid: bool = False, **options: Any,
) -> dict[str, AttributionResult]:
    """Attribute the chosen samples with each method; ``target`` is ``predicted`` or ``true``.

    Methods whose rules do not hold for the model (:func:`invalid_methods`, e.g. DeepLift on
    a recurrent encoder) are left out unless ``include_invalid``; their results then carry
    the reason in ``flags``.
    """
    data = run.splits[split]
    x = data.inputs(idx)
    y = predict(run.model, data.subset(idx)).argmax(1) if target == "predicted" else data.target(idx)
    skip = {} if include_invalid else invalid_methods(run, methods)
    return {m: attribute(run.model, x, method=m, target=y, **options.get(m, {})) for m in methods if m not in skip}


def method_shares(results: dict[str, AttributionResult]) -> pd.DataFrame:
    """Mean modality share per method (rows: method, modality, share, flags).

    Each result aggregates by its own method's rule (:meth:`AttributionResult.shares`), the
    same numbers an audit card shows.
    """
    rows = []
    for name, res in results.items():
        shares = torch.nanmean(res.shares(), dim=0)
        for j, m in enumerate(res.modality_names):
            rows.append({"method": name, "modality": m, "share": float(shares[j]), "flags": "; ".join(res.flags)})
    return pd.DataFrame(rows, columns=["method", "modality", "share", "flags"])


def completeness_table(results: dict[str, AttributionResult]) -> pd.DataFrame:
    """Relative completeness error per method that promises completeness (mean and max)."""
    rows = []
    for name, res in results.items():
        rel = res.relative_completeness_error
        if rel is not None:
            rows.append({"method": name, "mean_relative_error": float(rel.mean()), "max_relative_error": float(rel.max())})
    return pd.DataFrame(rows, columns=["method", "mean_relative_error", "max_relative_error"])


def shapley_analysis(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, Any]:
    """Modality Shapley values on the samples, with shares by class and by correctness, and
    InterSHAP as published (the predicted class's probability; pooled and per sample)."""
    data = run.splits[split]
    x = data.inputs(idx)
    pred = predict(run.model, data.subset(idx)).argmax(1)
    sv = modality_shapley(run.model, x, target=pred)
    inter = intershap(run.model, x)
    shares = sv.shares()
    names = data.label_names or []
    true = data.target(idx)
    by_class = share_by_group(shares, [names[int(t)] if names else int(t) for t in true], modalities=sv.modalities)
    correct = ["correct" if bool(c) else "incorrect" for c in (pred == true)]
    by_correct = share_by_group(shares, correct, modalities=sv.modalities)
    return {"shapley": sv, "by_class": by_class, "by_correct": by_correct,
            "mean_shares": sv.mean_shares(), **inter}


def intershap(model: Any, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """InterSHAP as published: the game is the softmax probability of the predicted class,
    the global score the paper's pooled aggregate; the per-sample scores come beside it.

    Returns
    -------
    dict
        ``interaction_share`` (float, pooled), ``interaction_per_sample`` (Tensor (N,)),
        ``interaction_distribution`` (DataFrame: quantiles of the per-sample scores) and
        ``intershap`` (the probability-game :class:`~mmexplain.attribution.ModalityShapley`).
    """
    sv = modality_shapley(model, inputs, game="probability")
    per = sv.interaction_share(per_sample=True)
    q = torch.nanquantile(per, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=per.dtype)) if (~per.isnan()).any() \
        else torch.full((5,), float("nan"))
    dist = pd.DataFrame({"quantile": [0.1, 0.25, 0.5, 0.75, 0.9], "interaction_share": q.tolist()})
    return {"interaction_share": float(sv.interaction_share()), "interaction_per_sample": per,
            "interaction_distribution": dist, "intershap": sv}


def localisation_table(run: Run, idx: torch.Tensor, results: dict[str, AttributionResult], *,
                       split: str = "test") -> pd.DataFrame:
    """Attribution against ground-truth evidence, per method and modality.

    Image-like modalities: mass inside the mask vs the mask's area fraction (chance), and
    the pointing game. Tokens: rank (1 = best) and reciprocal rank of the evidence token.
    ``value`` averages the samples where the metric is defined; ``n_defined`` counts them
    (mass in mask is undefined for a map with no positive mass).
    """
    data = run.splits[split]
    rows = []
    for name, res in results.items():
        for spec in res.modalities:
            ev = data.evidence_for(spec.name, idx)
            if ev is None:
                continue
            a = res.maps[spec.name]
            if spec.kind_info.evidence == "tokens":
                valid = data.meta.get("valid_tokens", {}).get(spec.name)
                valid = valid[data.rows[spec.name][idx]] if valid is not None else None
                r = evidence_rank(a, ev, valid)
                rows.append({"method": name, "modality": spec.name, "metric": "evidence_rank",
                             **_nanmean(r.rank), "chance": None})
                rows.append({"method": name, "modality": spec.name, "metric": "reciprocal_rank",
                             **_nanmean(r.reciprocal_rank), "chance": None})
            elif spec.kind_info.evidence == "mask":
                a2 = a if res.signed else a.abs()
                rows.append({"method": name, "modality": spec.name, "metric": "mass_in_mask",
                             **_nanmean(mass_in_mask(a2, ev)), "chance": float(mask_area_fraction(ev).mean())})
                rows.append({"method": name, "modality": spec.name, "metric": "pointing_game",
                             **_nanmean(pointing_game(a2, ev)), "chance": float(mask_area_fraction(ev).mean())})
    return pd.DataFrame(rows)


def _nanmean(values: torch.Tensor) -> dict[str, float | int]:
    # A metric is undefined for some samples (e.g. no positive attribution mass at all):
    # average over the rest and say how many that was.
    v = values.double()
    defined = ~torch.isnan(v)
    return {"value": float(v[defined].mean()) if defined.any() else float("nan"), "n_defined": int(defined.sum())}


def faithfulness_table(run: Run, idx: torch.Tensor, results: dict[str, AttributionResult], *,
                       split: str = "test", steps: int = 10) -> tuple[pd.DataFrame, dict]:
    """Deletion / insertion AUC per method and modality, against a random order."""
    data = run.splits[split]
    x = data.inputs(idx)
    base = baselines_for(run, x)
    rows, curves = [], {}
    for name, res in results.items():
        for mode in ("deletion", "insertion"):
            c = perturbation_curves(run.model, x, res.maps, res.modalities, res.target, mode=mode,
                                    baselines=base, steps=steps)
            curves[(name, mode)] = c
            for m, pc in c.items():
                rows.append({"method": name, "mode": mode, "modality": m, "auc": float(pc.mean_auc),
                             "random_auc": float(pc.mean_random_auc)})
    return pd.DataFrame(rows), curves


def sanity_table(run: Run, idx: torch.Tensor, methods: Sequence[str] = ("ig", "saliency"), *,
                 split: str = "test", max_steps: int = 4) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al.) per method."""
    data = run.splits[split]
    x = data.inputs(idx)
    y = data.target(idx)
    rows = []
    for m in methods:
        def explain_fn(model, inputs, target, m=m):
            return attribute(model, inputs, method=m, target=target, modalities=run.model.modality_specs).maps

        r = cascading_randomisation(run.model, explain_fn, x, y, max_steps=max_steps)
        rows.append({"method": m, "final_correlation": float(r.final_mean), "passed": bool(r.passed)})
    return pd.DataFrame(rows)


def agreement_table(results: dict[str, AttributionResult]) -> pd.DataFrame:
    """Rank correlation of per-sample maps between every pair of methods."""
    return agreement_matrix({k: v.maps for k, v in results.items()}, absolute=True)


def robustness_tables(run: Run, idx: torch.Tensor, *, split: str = "test",
                      strengths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> dict[str, Any]:
    """Missing-modality table and noise-robustness curves (one per modality)."""
    data = run.splits[split]
    x = data.inputs(idx)
    y = data.target(idx)
    base = baselines_for(run, x)
    missing = missing_modality(run.model, x, y, base)
    noise = {}
    for spec in run.model.modality_specs:
        noise[spec.name] = noise_robustness(run.model, x, y, modality=spec, strengths=strengths,
                                            kind=spec.kind_info.corruption,
                                            baseline=base[spec.name])
    return {"missing": missing, "noise": noise}


def emap_analysis(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, float]:
    """EMAP: metric of the model and of its additive projection on the samples."""
    data = run.splits[split]
    r = emap(run.model, data.inputs(idx), target=data.target(idx), max_samples=len(idx))
    return {"model_metric": float(r.model_metric), "projection_metric": float(r.projection_metric),
            "metric": r.metric}
