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
    AttributionResult,
    attribute,
    make_baselines,
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
    """Default baselines, with tabular means taken from the training data."""
    ref = run.splits.train.inputs(torch.arange(min(len(run.splits.train), 2000)))
    return make_baselines(inputs, run.model.modality_specs, reference=ref)[0]


def explain(
    run: Run, idx: torch.Tensor, methods: Sequence[str] = DEFAULT_METHODS, *, split: str = "test",
    target: str = "predicted", **options: Any,
) -> dict[str, AttributionResult]:
    """Attribute the chosen samples with each method; ``target`` is ``predicted`` or ``true``."""
    data = run.splits[split]
    x = data.inputs(idx)
    y = predict(run.model, data.subset(idx)).argmax(1) if target == "predicted" else data.target(idx)
    ref = run.splits.train.inputs(torch.arange(min(len(run.splits.train), 2000)))
    return {m: attribute(run.model, x, method=m, target=y, reference=ref, **options.get(m, {})) for m in methods}


def method_shares(results: dict[str, AttributionResult]) -> pd.DataFrame:
    """Mean modality share per method (rows: method, modality, share)."""
    rows = []
    for name, res in results.items():
        shares = res.shares(absolute_maps=not res.params or name in ("saliency", "smoothgrad"))
        for j, m in enumerate(res.modality_names):
            rows.append({"method": name, "modality": m, "share": float(shares[:, j].mean())})
    return pd.DataFrame(rows)


def completeness_table(results: dict[str, AttributionResult]) -> pd.DataFrame:
    """Relative completeness error per method that promises completeness (mean and max)."""
    rows = []
    for name, res in results.items():
        rel = res.relative_completeness_error
        if rel is not None:
            rows.append({"method": name, "mean_relative_error": float(rel.mean()), "max_relative_error": float(rel.max())})
    return pd.DataFrame(rows, columns=["method", "mean_relative_error", "max_relative_error"])


def shapley_analysis(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, Any]:
    """Modality Shapley values on the samples, with shares by class and by correctness."""
    data = run.splits[split]
    x = data.inputs(idx)
    pred = predict(run.model, data.subset(idx)).argmax(1)
    sv = modality_shapley(run.model, x, baselines_for(run, x), target=pred)
    shares = sv.shares()
    names = data.label_names or []
    true = data.target(idx)
    by_class = share_by_group(shares, [names[int(t)] if names else int(t) for t in true], modalities=sv.modalities)
    correct = ["correct" if bool(c) else "incorrect" for c in (pred == true)]
    by_correct = share_by_group(shares, correct, modalities=sv.modalities)
    return {"shapley": sv, "by_class": by_class, "by_correct": by_correct,
            "mean_shares": sv.mean_shares(), "interaction_share": float(sv.interaction_share())}


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
            if spec.kind == "tokens":
                valid = data.meta.get("valid_tokens", {}).get(spec.name)
                valid = valid[data.rows[spec.name][idx]] if valid is not None else None
                r = evidence_rank(a, ev, valid)
                rows.append({"method": name, "modality": spec.name, "metric": "evidence_rank",
                             **_nanmean(r.rank), "chance": None})
                rows.append({"method": name, "modality": spec.name, "metric": "reciprocal_rank",
                             **_nanmean(r.reciprocal_rank), "chance": None})
            elif spec.kind in ("image", "audio", "tabular"):
                a2 = a.abs() if name in ("saliency", "smoothgrad") else a
                if spec.kind == "image":
                    rows.append({"method": name, "modality": spec.name, "metric": "mass_in_mask",
                                 **_nanmean(mass_in_mask(a2, ev)),
                                 "chance": float(mask_area_fraction(ev).mean())})
                    rows.append({"method": name, "modality": spec.name, "metric": "pointing_game",
                                 **_nanmean(pointing_game(a2, ev)), "chance": None})
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
        kind = "token_dropout" if spec.kind == "tokens" else "mask"
        noise[spec.name] = noise_robustness(run.model, x, y, modality=spec, strengths=strengths, kind=kind,
                                            baseline=base[spec.name])
    return {"missing": missing, "noise": noise}


def emap_analysis(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, float]:
    """EMAP: metric of the model and of its additive projection on the samples."""
    data = run.splits[split]
    r = emap(run.model, data.inputs(idx), data.target(idx), max_samples=len(idx))
    return {"model_metric": float(r.model_metric), "projection_metric": float(r.projection_metric),
            "metric": r.metric}
