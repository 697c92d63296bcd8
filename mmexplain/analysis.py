"""Analyses the notebooks run, as tested library functions returning tidy tables.

Each function takes a trained :class:`~mmexplain.training.Run` and sample indices of one
split, so notebooks stay a sequence of calls and figures. "Absent" is always the model's
stored reference (:func:`reference_table` says what it is in words). :func:`trust_panel`
puts the quality checks of each method side by side; the explanation-quality report shows
it over its samples and every decision-audit card (:mod:`mmexplain.audit`) for its own.
:func:`compare_strategies` puts runs of several fusion strategies on the same data side by
side, one row each, from these same functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .attribution import (
    METHODS,
    AttributionResult,
    attention_flow,
    attribute,
    fusion_level_attribution,
    fusion_level_shares,
    fusion_level_summary,
    modality_shapley,
    share_by_group,
)
from .attribution.emap import emap
from .exceptions import ConfigError
from .metrics import (
    PerturbationCurve,
    agreement_matrix,
    cascading_randomisation,
    chance_level,
    evidence_rank,
    mass_in_mask,
    missing_modality,
    noise_robustness,
    perturbation_curves,
    pointing_game,
    rank_agreement,
)
from .reference import resolve_baselines
from .sharing import shared_attribution
from .training import Run, predict

#: Methods the reports run by default (SHAP partition is slower; add it by name).
DEFAULT_METHODS = ("ig", "saliency", "input_x_gradient", "deeplift", "gradient_shap", "smoothgrad", "occlusion")


def data_provenance(run: Run) -> dict[str, Any]:
    """What was done to the run's data on loading, for a report's provenance: the source file
    and sidecar, the effective options, and which rows (from 1, after the header) were
    imputed, dropped or had their text cut to the token limit. Empty for built-in datasets."""
    meta = run.splits.train.meta
    out: dict[str, Any] = {k: meta[k] for k in ("source", "sidecar", "options") if meta.get(k)}
    missing = meta.get("missing") or {}
    if missing:
        out["missing_policy"] = missing.get("policy")
        out["imputed_rows"] = {c: list(rows) for c, rows in (missing.get("imputed") or {}).items() if rows}
        out["dropped_rows"] = list(missing.get("dropped_rows") or [])
    truncated = meta.get("truncated") or {}
    if truncated:
        out["truncated_rows"] = {"column": truncated.get("column"), "max_tokens": truncated.get("max_tokens"),
                                 "rows": list(truncated.get("rows") or [])}
    return out


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


def reference_table(run: Run) -> pd.DataFrame:
    """What "absent" means for every explanation of this model, in words, per modality.

    The model's stored reference (``run.model.reference``, fitted from training data when
    the model was trained): every baseline-relative method, modality Shapley value,
    faithfulness curve and "prediction without" replaces an absent modality by it.
    """
    words = run.model.reference.describe()
    return pd.DataFrame({"modality": list(words), "absent": list(words.values())})


def modality_figure(spec: Any, x: torch.Tensor, attribution: torch.Tensor, *, title: str,
                    tokens: Sequence[str] | None = None, mask: torch.Tensor | None = None,
                    valid: torch.Tensor | None = None) -> Any:
    """One sample's map of one modality as a figure, drawn as its kind declares.

    Parameters
    ----------
    spec : ModalitySpec
    x : Tensor
        The sample's input (without the batch dimension).
    attribution : Tensor
        Its map (tokens: (T,)).
    tokens : list of str, optional
        Token strings (id modalities); default the ids themselves.
    mask : Tensor, optional
        Ground-truth evidence outlined on an image.
    valid : Tensor of shape (T,), optional
        Real tokens (default: not the pad id).
    """
    from . import viz

    kind = spec.kind_info
    if kind.integer_ids:
        words = list(tokens) if tokens is not None else [str(int(t)) for t in x.flatten()]
        return viz.token_attribution(words, attribution, valid=x != spec.pad_id if valid is None else valid,
                                     title=title)
    if kind.evidence == "mask":  # spatial maps
        return viz.image_attribution(x, attribution, title=title, mask=mask)
    if kind.patched:  # waveforms
        return viz.audio_attribution(x, attribution, title=title)
    a = attribution.flatten()
    return viz.tabular_attribution([f"{spec.name}[{j}]" for j in range(len(a))], a, title=title)


def explanation_figures(run: Run, idx: torch.Tensor, results: dict[str, AttributionResult], *,
                        positions: Sequence[int] = (0,), methods: Sequence[str] | None = None,
                        split: str = "test") -> list:
    """Figures of the maps of the samples at ``positions`` of ``idx``: per sample, method
    (default all in ``results``) and modality, with evidence outlined where the data has it."""
    data = run.splits[split]
    tok = run.tokenizer
    figs = []
    for k in positions:
        i = int(idx[k])
        x = data.inputs([i])
        valid = valid_masks(run, torch.tensor([i]), split=split)
        for name in methods or list(results):
            res = results[name]
            for spec in res.modalities:
                ev = data.evidence_for(spec.name, [i])
                tokens = (tok.convert_ids_to_tokens(x[spec.name][0].tolist())
                          if spec.kind_info.integer_ids and tok is not None else None)
                vm = valid.get(spec.name)
                figs.append(modality_figure(
                    spec, x[spec.name][0], res.maps[spec.name][k], title=f"sample {i} — {name} — {spec.name}",
                    tokens=tokens, mask=None if ev is None or spec.kind_info.evidence != "mask" else ev[0],
                    valid=None if vm is None else vm[0]))
    return figs


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

    def key(m: str) -> dict[str, Any] | None:  # what a result depends on, for sharing in a batch
        if run.checkpoint_sha256 is None:
            return None
        return {"checkpoint": run.checkpoint_sha256, "data": run.data_fingerprint, "split": split,
                "idx": [int(i) for i in torch.as_tensor(idx).flatten()], "target": y.tolist(),
                "method": m, "options": options.get(m, {})}

    return {m: shared_attribution(key(m), lambda m=m: attribute(run.model, x, method=m, target=y,
                                                                  **options.get(m, {})))
            for m in methods if m not in skip}


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
    inter = intershap(run.model, x, background=background_for(run))
    shares = sv.shares()
    names = data.label_names or []
    true = data.target(idx)
    by_class = share_by_group(shares, [names[int(t)] if names else int(t) for t in true], modalities=sv.modalities)
    correct = ["correct" if bool(c) else "incorrect" for c in (pred == true)]
    by_correct = share_by_group(shares, correct, modalities=sv.modalities)
    return {"shapley": sv, "by_class": by_class, "by_correct": by_correct,
            "mean_shares": sv.mean_shares(), **inter}


#: Training samples an interventional game averages over (InterSHAP's background).
BACKGROUND_SIZE = 32


def background_for(run: Run, k: int = BACKGROUND_SIZE, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """``k`` seeded training samples, the background of interventional games (InterSHAP)."""
    train = run.splits.train
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:k].sort().values
    return train.inputs(pick)


def intershap(model: Any, inputs: dict[str, torch.Tensor], *,
              background: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """InterSHAP as published (Wenderoth et al., AAAI 2025): the game is the softmax probability
    of the predicted class with absent modalities drawn from ``background`` samples (the
    interventional game; :func:`background_for` gives K training samples), the global score the
    paper's pooled aggregate; the per-sample scores come beside it. Without ``background`` the
    absent modalities take the model's reference instead. A scalar-output (regression) model's
    game is its raw output (``intershap["intershap"].game`` says which).

    The pooled aggregate with the probability game reproduces the paper's HD-XOR table
    (``benchmarks/intershap_hdxor.py``); with raw logits and a fixed class, interactions of
    opposite sign cancel across samples and synergy is under-reported, so the logit game is
    available only by name (``modality_shapley(..., game="logit")``).

    Returns
    -------
    dict
        ``interaction_share`` (float, pooled), ``interaction_per_sample`` (Tensor (N,)),
        ``interaction_distribution`` (DataFrame: quantiles of the per-sample scores) and
        ``intershap`` (the probability-game :class:`~mmexplain.attribution.ModalityShapley`).
    """
    with torch.no_grad():
        out = model(**{k: v[:1] for k, v in inputs.items()})
    # a scalar-output (regression) model has no class probability: its raw output is the game
    game = "probability" if out.dim() == 2 and out.shape[1] >= 2 else "logit"
    sv = modality_shapley(model, inputs, game=game, background=background)
    per = sv.interaction_share(per_sample=True)
    q = torch.nanquantile(per, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=per.dtype)) if (~per.isnan()).any() \
        else torch.full((5,), float("nan"))
    dist = pd.DataFrame({"quantile": [0.1, 0.25, 0.5, 0.75, 0.9], "interaction_share": q.tolist()})
    return {"interaction_share": float(sv.interaction_share()), "interaction_per_sample": per,
            "interaction_distribution": dist, "intershap": sv}


def valid_masks(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, torch.Tensor]:
    """Per id modality (tokens), which positions of the samples are real tokens, (N, T) bool.

    The dataset's own record (``meta["valid_tokens"]``: no padding, no special tokens) where
    it has one, else the positions that differ from the modality's pad id. Padding is never
    compared (agreement, sanity) nor ranked (evidence rank): every method gives it nothing,
    which would make any two methods look alike.
    """
    data = run.splits[split]
    x = data.inputs(idx)
    out = {}
    for spec in run.model.modality_specs:
        if not spec.kind_info.integer_ids:
            continue
        stored = data.meta.get("valid_tokens", {}).get(spec.name)
        out[spec.name] = (stored[data.rows[spec.name][idx]] if stored is not None
                          else x[spec.name] != spec.pad_id).bool()
    return out


def localisation_table(run: Run, idx: torch.Tensor, results: dict[str, AttributionResult], *,
                       split: str = "test") -> pd.DataFrame:
    """Attribution against ground-truth evidence, per method, modality and metric, with chance.

    Evidence masks (images): ``mass_in_mask`` and ``pointing_game``. Evidence tokens:
    ``evidence_rank`` (1 = best) and ``reciprocal_rank``, over the real tokens only
    (:func:`valid_masks`).

    Returns
    -------
    pandas.DataFrame
        One row per (method, modality, metric). ``value`` averages the samples where the
        metric is defined, ``n_defined`` counts them (mass in mask is undefined for a map
        with no positive mass); ``chance`` is the metric's expected value for a map that
        carries no information (:func:`mmexplain.metrics.chance_level`), averaged over the
        same samples; ``vs_chance`` is ``value − chance``; ``better`` says which direction
        is better (``"lower"`` for the rank, ``"higher"`` otherwise), so a method localises
        only where ``vs_chance`` points that way.
    """
    data = run.splits[split]
    valid = valid_masks(run, idx, split=split)
    rows = []
    for name, res in results.items():
        for spec in res.modalities:
            ev = data.evidence_for(spec.name, idx)
            if ev is None:
                continue
            a = res.maps[spec.name]
            metrics: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            if spec.kind_info.evidence == "tokens":
                vm = valid.get(spec.name)
                r = evidence_rank(a, ev, vm)
                metrics["evidence_rank"] = (r.rank, chance_level("evidence_rank", ev, vm))
                metrics["reciprocal_rank"] = (r.reciprocal_rank, chance_level("reciprocal_rank", ev, vm))
            elif spec.kind_info.evidence == "mask":
                a2 = a if res.signed else a.abs()
                metrics["mass_in_mask"] = (mass_in_mask(a2, ev), chance_level("mass_in_mask", ev))
                metrics["pointing_game"] = (pointing_game(a2, ev), chance_level("pointing_game", ev))
            for metric, (values, chance) in metrics.items():
                rows.append({"method": name, "modality": spec.name, "metric": metric,
                             **_against_chance(values, chance),
                             "better": "lower" if metric == "evidence_rank" else "higher"})
    return pd.DataFrame(rows, columns=["method", "modality", "metric", "value", "n_defined", "chance", "vs_chance",
                                       "better"])


def _against_chance(values: torch.Tensor, chance: torch.Tensor) -> dict[str, float | int]:
    # A metric is undefined for some samples (e.g. no positive attribution mass at all):
    # average it, and its chance level, over the rest and say how many that was.
    v, c = values.double(), chance.double()
    defined = ~torch.isnan(v) & ~torch.isnan(c)
    value = float(v[defined].mean()) if defined.any() else float("nan")
    level = float(c[defined].mean()) if defined.any() else float("nan")
    return {"value": value, "n_defined": int(defined.sum()), "chance": level, "vs_chance": value - level}


def _curves(run: Run, x: dict[str, torch.Tensor], base: dict[str, torch.Tensor], res: AttributionResult, *,
            mode: str, steps: int) -> dict[str, PerturbationCurve]:
    """The deletion / insertion curves of one result: the one place both the faithfulness
    table and the trust panel get them from."""
    return perturbation_curves(run.model, x, res.maps, res.modalities, target=res.target, mode=mode,
                               baselines=base, steps=steps)


def faithfulness_table(run: Run, idx: torch.Tensor, results: dict[str, AttributionResult], *,
                       split: str = "test", steps: int = 10) -> tuple[pd.DataFrame, dict]:
    """Deletion / insertion AUC per method and modality, against a random order.

    Units are deleted to (inserted from) the model's reference (``run.model.reference``).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``method``, ``mode``, ``modality``, ``auc``, ``random_auc`` (means over
        the samples). Deletion: lower than random is faithful; insertion: higher.
    curves : dict of (method, mode) -> dict of modality -> PerturbationCurve
        Pass it to :func:`trust_panel` so the panel shows these same numbers.
    """
    x = run.splits[split].inputs(idx)
    base = baselines_for(run, x)
    rows, curves = [], {}
    for name, res in results.items():
        for mode in ("deletion", "insertion"):
            c = _curves(run, x, base, res, mode=mode, steps=steps)
            curves[(name, mode)] = c
            for m, pc in c.items():
                rows.append({"method": name, "mode": mode, "modality": m, "auc": float(pc.mean_auc),
                             "random_auc": float(pc.mean_random_auc)})
    return pd.DataFrame(rows, columns=["method", "mode", "modality", "auc", "random_auc"]), curves


#: The ``modality`` of a method's overall verdict row in :func:`sanity_table`.
OVERALL = "overall"


def sanity_table(run: Run, idx: torch.Tensor, methods: Sequence[str] = ("ig", "saliency"), *,
                 split: str = "test", max_steps: int = 4) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al.) per method and modality.

    Padding tokens are not compared (:func:`valid_masks`).

    Returns
    -------
    pandas.DataFrame
        Per method, one row per modality (``final_correlation``: the rank correlation with
        the original maps once every layer is randomised, averaged over samples; ``passed``:
        its absolute value is below the threshold), then one row with ``modality`` equal to
        :data:`OVERALL`: the method's verdict, passed only if every modality passed
        (``final_correlation`` there is the mean over modalities, for information).
        Columns ``method``, ``modality``, ``final_correlation``, ``passed``.
    """
    data = run.splits[split]
    x = data.inputs(idx)
    y = data.target(idx)
    vm = valid_masks(run, idx, split=split)
    rows = []
    for m in methods:
        # the check compares the maps' ranks, so a randomised model's path integral need not
        # be refined to completeness (IG would take up to 400 steps on every randomised copy)
        opts = {"tolerance": 0} if "tolerance" in METHODS.get(m).options else {}

        def explain_fn(model, inputs, target, m=m, opts=opts):
            return attribute(model, inputs, method=m, target=target, modalities=run.model.modality_specs, **opts).maps

        r = cascading_randomisation(run.model, explain_fn, x, y, max_steps=max_steps, valid_masks=vm)
        for mod, corr in r.final_by_modality.items():
            rows.append({"method": m, "modality": mod, "final_correlation": float(corr),
                         "passed": bool(r.passed_by_modality[mod])})
        rows.append({"method": m, "modality": OVERALL, "final_correlation": float(r.final_mean),
                     "passed": bool(r.passed)})
    return pd.DataFrame(rows, columns=["method", "modality", "final_correlation", "passed"])


def agreement_table(results: dict[str, AttributionResult], *,
                    valid_masks: dict[str, torch.Tensor] | None = None) -> pd.DataFrame:
    """Rank correlation of per-sample |maps| between every pair of methods.

    ``valid_masks`` (e.g. :func:`valid_masks`) restricts token maps to real tokens.
    """
    return agreement_matrix({k: v.maps for k, v in results.items()}, absolute=True, valid_masks=valid_masks)


# ------------------------------------------------------------------------------ trust panel


@dataclass
class TrustPanel:
    """How far to trust each method's explanations of a set of decisions, check by check.

    Built by :func:`trust_panel`; the explanation-quality report shows :meth:`table` over
    all samples and every decision-audit card the same table for its own sample, so the
    numbers a reader compares come from one computation.

    Attributes
    ----------
    per_sample : pandas.DataFrame
        One row per (method, sample): ``method``, ``sample`` (position in ``index``),
        ``index`` (dataset index), ``relative_completeness_error`` (NaN where the method
        does not promise completeness), ``hit_step_cap`` (IG; NA for methods without a step
        cap), ``agreement`` (mean rank correlation of |map| with every other method over
        the modalities; NaN with one method).
    faithfulness : pandas.DataFrame
        One row per (method, sample, modality): ``deletion_auc`` of the sample's deletion
        curve and ``random_auc`` of its random-order reference.
    methods : pandas.DataFrame
        One row per method, sample-independent: ``method``, ``promises_completeness``,
        ``has_step_cap``, ``rules_hold``, ``rules`` (why not, or ""), ``left_out`` (not
        explained because its rules do not hold), ``sanity_passed`` (NA: not run),
        ``sanity_failed`` (modalities that failed), ``flags`` (the result's flags).
    sanity : pandas.DataFrame
        The :func:`sanity_table` the verdicts come from (empty when not run).
    index : list of int
        The dataset indices of the samples.
    """

    per_sample: pd.DataFrame
    faithfulness: pd.DataFrame
    methods: pd.DataFrame
    sanity: pd.DataFrame
    index: list[int]

    def to_frame(self, sample: int | None = None) -> pd.DataFrame:
        """Numbers, one row per method: for ``sample`` (its position), or over all samples.

        Over all samples: the largest relative completeness error, the number of samples
        that hit the IG step cap, the deletion / random AUC averaged over samples and
        modalities (the mean of :func:`faithfulness_table`'s deletion rows), the modalities
        whose mean deletion AUC is not below random, and the mean agreement over samples.
        ``faithful`` is ``deletion_auc < random_auc``.
        """
        ps, fa = self.per_sample, self.faithfulness
        if sample is not None:
            if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) \
                    or not 0 <= int(sample) < len(self.index):
                raise ValueError(f"sample must be a position 0..{len(self.index) - 1} of the panel's samples "
                                 f"(index {self.index}); got {sample!r}.")
            ps, fa = ps[ps["sample"] == int(sample)], fa[fa["sample"] == int(sample)]
        rows = []
        for _, meta in self.methods.iterrows():
            g, f = ps[ps["method"] == meta["method"]], fa[fa["method"] == meta["method"]]
            by_mod = f.groupby("modality", sort=False)[["deletion_auc", "random_auc"]].mean()
            dele, rnd = (float(by_mod["deletion_auc"].mean()), float(by_mod["random_auc"].mean())) if len(by_mod) \
                else (float("nan"), float("nan"))
            rows.append({
                "method": meta["method"], "n_samples": len(g),
                "promises_completeness": meta["promises_completeness"],
                "relative_completeness_error": _nanmax(g["relative_completeness_error"]),
                "step_cap_hits": int(g["hit_step_cap"].astype(bool).sum()) if meta["has_step_cap"] else pd.NA,
                "deletion_auc": dele, "random_auc": rnd,
                "faithful": bool(dele < rnd) if np.isfinite(dele) and np.isfinite(rnd) else pd.NA,
                "unfaithful_modalities": [str(m) for m, r in by_mod.iterrows()
                                          if not r["deletion_auc"] < r["random_auc"]],
                "agreement": _nanmean_series(g["agreement"]),
                **{k: meta[k] for k in ("rules_hold", "rules", "left_out", "sanity_passed", "sanity_failed",
                                        "flags")},
            })
        return pd.DataFrame(rows, columns=_FRAME_COLUMNS)

    def table(self, sample: int | None = None) -> pd.DataFrame:
        """The panel in words, one row per method (for notebooks and audit cards).

        Columns ``method``, ``completeness``, ``IG step cap``, ``sanity (model)``,
        ``deletion AUC vs random``, ``agreement``, ``rules``.
        """
        frame = self.to_frame(sample)
        one = sample is not None
        rows = []
        for _, r in frame.iterrows():
            if r["left_out"]:
                rows.append({"method": r["method"], "completeness": "—", "IG step cap": "—",
                             "sanity (model)": "—", "deletion AUC vs random": "—", "agreement": "—",
                             "rules": f"left out: {r['rules']}"})
                continue
            rows.append({
                "method": r["method"],
                "completeness": _completeness_words(r, one),
                "IG step cap": _step_cap_words(r, one),
                "sanity (model)": _sanity_words(r),
                "deletion AUC vs random": _faithfulness_words(r),
                "agreement": f"{r['agreement']:.2f}" if np.isfinite(r["agreement"]) else "n/a",
                "rules": "hold" if r["rules_hold"] else r["rules"],
            })
        return pd.DataFrame(rows, columns=["method", "completeness", "IG step cap", "sanity (model)",
                                           "deletion AUC vs random", "agreement", "rules"])

    def summary(self, sample: int | None = None) -> dict[str, dict[str, Any]]:
        """JSON-safe numbers per method (:meth:`to_frame`; NaN and NA become None)."""
        out = {}
        for rec in self.to_frame(sample).to_dict("records"):
            name = rec.pop("method")
            out[name] = {k: _json_safe(v) for k, v in rec.items()}
        return out

    def html(self, sample: int | None = None) -> str:
        """:meth:`table` as an HTML table, every string escaped."""
        return self.table(sample).to_html(index=False, escape=True, border=0, classes="trust-panel")


_FRAME_COLUMNS = ["method", "n_samples", "promises_completeness", "relative_completeness_error", "step_cap_hits",
                  "deletion_auc", "random_auc", "faithful", "unfaithful_modalities", "agreement", "rules_hold",
                  "rules", "left_out", "sanity_passed", "sanity_failed", "flags"]


def _nanmax(s: pd.Series) -> float:
    v = s.astype(float).to_numpy()
    return float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")


def _nanmean_series(s: pd.Series) -> float:
    v = s.astype(float).to_numpy()
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _json_safe(v: Any) -> Any:
    if v is pd.NA or v is None:
        return None
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def _completeness_words(r: pd.Series, one: bool) -> str:
    if not r["promises_completeness"]:
        return "not promised"
    err = r["relative_completeness_error"]
    if not np.isfinite(err):
        return "unknown"
    return f"{100 * err:.2g}% of |f(x) − f(ref)|" + ("" if one else " (max)")


def _step_cap_words(r: pd.Series, one: bool) -> str:
    hits = r["step_cap_hits"]
    if hits is pd.NA or hits is None:
        return "—"
    if one:
        return "hit the cap unconverged" if hits else "converged"
    return f"{hits} of {r['n_samples']} samples hit the cap" if hits else "all converged"


def _sanity_words(r: pd.Series) -> str:
    ok = r["sanity_passed"]
    if ok is pd.NA or ok is None:
        return "not run"
    return "passed" if ok else f"failed on {', '.join(r['sanity_failed']) or 'the overall verdict'}"


def _faithfulness_words(r: pd.Series) -> str:
    d, rnd = r["deletion_auc"], r["random_auc"]
    if not (np.isfinite(d) and np.isfinite(rnd)):
        return "—"
    worse = r["unfaithful_modalities"]
    verdict = "better than random" if d < rnd else "no better than random"
    if worse and d < rnd:
        verdict += f"; not on {', '.join(worse)}"
    elif worse:
        verdict += f" ({', '.join(worse)})"
    return f"{d:.3f} vs {rnd:.3f}: {verdict}"


#: A decision's methods disagree when their mean rank correlation of |map| is below this.
DEFAULT_AGREEMENT_THRESHOLD = 0.3


def _yes(v: Any) -> bool:
    """True for a true value, False for a false or missing (NA / None) one."""
    return v is not None and v is not pd.NA and bool(v)


def _no(v: Any) -> bool:
    """True for a false value that is not missing."""
    return v is not None and v is not pd.NA and not bool(v)


def trust_flags(frame: pd.DataFrame, *, agreement_threshold: float = DEFAULT_AGREEMENT_THRESHOLD) -> list[str]:
    """The quality flags one decision raises, in words: the one place their rules live.

    Rules, in this order: the methods disagree (mean ``agreement`` over the methods not
    left out below ``agreement_threshold``); then per method, deletion no better than
    random (overall or on some modality), the model-level sanity check failed, the
    method's rules do not hold for the model (or it was left out), IG hit its step cap.

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`TrustPanel.to_frame` of one sample (one row per method).
    agreement_threshold : float, default=0.3

    Returns
    -------
    list of str
        Empty when nothing is flagged. Decision-audit cards and streamed audit rows
        (:mod:`mmexplain.auditing`) both carry these.
    """
    flags = []
    agree = frame.loc[~frame["left_out"].astype(bool), "agreement"].astype(float)
    if agree.notna().any() and float(np.nanmean(agree)) < agreement_threshold:
        flags.append(f"methods disagree (mean rank correlation {np.nanmean(agree):.2f})")
    for _, r in frame.iterrows():
        if _no(r["faithful"]) or r["unfaithful_modalities"]:
            flags.append(f"{r['method']}: deletion no better than random on "
                         f"{', '.join(r['unfaithful_modalities']) or 'average'}")
        if _no(r["sanity_passed"]):
            flags.append(f"{r['method']}: sanity check failed on {', '.join(r['sanity_failed']) or 'the model'}")
        if not r["rules_hold"]:
            flags.append(f"{r['method']}: {'left out: ' if r['left_out'] else ''}{r['rules']}")
        if _yes(r["step_cap_hits"]):
            flags.append(f"{r['method']}: hit the step cap unconverged")
    return flags


def trust_panel(
    run: Run,
    idx: torch.Tensor,
    results: dict[str, AttributionResult],
    *,
    split: str = "test",
    methods: Sequence[str] | None = None,
    sanity: pd.DataFrame | None = None,
    curves: dict | None = None,
    steps: int = 10,
) -> TrustPanel:
    """The checks behind each method's explanations of the samples ``idx``, in one panel.

    Per method: its completeness (the largest relative completeness error, or "not
    promised"), how many samples hit IG's step cap unconverged, the randomisation sanity
    verdict with the failing modality, faithfulness (deletion AUC against the random
    order's), agreement with the other methods (mean rank correlation of |map|), and
    whether the method's rules hold for this model. The same panel gives one row per
    method for any single sample (:meth:`TrustPanel.table` with ``sample=``), which is
    what a decision-audit card shows.

    Parameters
    ----------
    run : Run
    idx : LongTensor of shape (N,)
        The samples of ``split`` that ``results`` explain, in their order.
    results : dict of str -> AttributionResult
        From :func:`explain` on ``idx``.
    methods : sequence of str, optional
        The methods asked for; those missing from ``results`` because their rules do not
        hold for the model (:func:`invalid_methods`) get a "left out" row.
    sanity : pandas.DataFrame, optional
        A :func:`sanity_table` (model-level: it may come from other samples). Methods not in
        it show "not run".
    curves : dict, optional
        The curves of :func:`faithfulness_table` on the same ``idx`` and ``results``;
        computed here (deletion, ``steps`` steps) for the methods they lack.
    steps : int, default=10

    Returns
    -------
    TrustPanel
    """
    x = run.splits[split].inputs(idx)
    n = len(idx)
    base = None
    vm = valid_masks(run, idx, split=split)
    curves = dict(curves or {})
    names = list(results)
    # agreement: each pair's per-sample correlation, per shared modality, computed once
    corr: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for m in (m for m in results[a].maps if m in results[b].maps):
                r = rank_agreement(results[a].maps[m], results[b].maps[m], absolute=True,
                                   valid_mask=vm.get(m)).numpy()
                corr[a].append(r)
                corr[b].append(r)
    rows, faith = [], []
    for name, res in results.items():
        if (name, "deletion") not in curves:
            base = base if base is not None else baselines_for(run, x)
            curves[(name, "deletion")] = _curves(run, x, base, res, mode="deletion", steps=steps)
        if any(len(c.auc) != n for c in curves[(name, "deletion")].values()):
            raise ValueError(f"curves[({name!r}, 'deletion')] holds curves of another batch than idx ({n} samples); "
                             "pass the curves of faithfulness_table(run, idx, results).")
        for m, c in curves[(name, "deletion")].items():
            faith += [{"method": name, "sample": k, "modality": m, "deletion_auc": float(c.auc[k]),
                       "random_auc": float(c.random_auc[k])} for k in range(n)]
        rel = res.relative_completeness_error
        caps = res.meta.get("hit_step_cap")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: undefined, on purpose
            agree = np.nanmean(np.stack(corr[name]), axis=0) if corr[name] else np.full(n, np.nan)
        rows += [{
            "method": name, "sample": k, "index": int(idx[k]),
            "relative_completeness_error": float(rel[k]) if rel is not None else float("nan"),
            "hit_step_cap": bool(caps[k]) if caps is not None else pd.NA,
            "agreement": float(agree[k]),
        } for k in range(n)]
    if sanity is None:
        sanity = pd.DataFrame(columns=["method", "modality", "final_correlation", "passed"])
    left_out = {m: why for m, why in invalid_methods(run, [m for m in methods or () if m not in results]).items()}
    meta_rows = []
    for name in [*names, *left_out]:
        res = results.get(name)
        why = left_out.get(name) or (METHODS.get(name).why_not(run.model) if name in METHODS else None)
        s = sanity[sanity["method"] == name]
        overall = s[s["modality"] == OVERALL]
        meta_rows.append({
            "method": name,
            "promises_completeness": bool(res is not None and res.completeness_error is not None),
            "has_step_cap": bool(res is not None and res.meta.get("hit_step_cap") is not None),
            "rules_hold": why is None,
            "rules": why or "",
            "left_out": name in left_out,
            "sanity_passed": bool(overall["passed"].iloc[0]) if len(overall) else pd.NA,
            "sanity_failed": [str(m) for m, ok in zip(s["modality"], s["passed"]) if m != OVERALL and not ok],
            "flags": "; ".join(res.flags) if res is not None else "",
        })
    return TrustPanel(
        per_sample=pd.DataFrame(rows, columns=["method", "sample", "index", "relative_completeness_error",
                                               "hit_step_cap", "agreement"]),
        faithfulness=pd.DataFrame(faith, columns=["method", "sample", "modality", "deletion_auc", "random_auc"]),
        methods=pd.DataFrame(meta_rows, columns=["method", "promises_completeness", "has_step_cap", "rules_hold",
                                                 "rules", "left_out", "sanity_passed", "sanity_failed", "flags"]),
        sanity=sanity,
        index=[int(i) for i in idx],
    )


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
    """EMAP: metric of the model and of its additive projection on the samples, and their
    ``gap`` (:attr:`~mmexplain.attribution.emap.EMAPResult.gap`: model − projection)."""
    data = run.splits[split]
    r = emap(run.model, data.inputs(idx), target=data.target(idx), max_samples=len(idx))
    return {"model_metric": float(r.model_metric), "projection_metric": float(r.projection_metric),
            "gap": float(r.gap), "metric": r.metric}


# --------------------------------------------------------------------------- fusion levels
def _explained_class(run: Run, x: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The predicted class per sample (what a decision-level explanation explains); None for
    a single-output (regression) model."""
    with torch.no_grad():
        out = run.model(**x)
    return out.argmax(1) if out.dim() == 2 and out.shape[1] >= 2 else None


def levels_table(model: Any) -> pd.DataFrame:
    """The model's levels in data-flow order: ``level``, ``stage``, ``kind`` (per-modality
    branches, one joint representation, or the output) and ``about`` (in words)."""
    kinds = {"branches": "per-modality branches", "joint": "joint representation", "output": "the output"}
    return pd.DataFrame([{"level": lv.name, "stage": lv.stage, "kind": kinds[lv.kind], "about": lv.about}
                         for lv in model.fusion_levels()])


def fusion_level_analysis(run: Run, idx: torch.Tensor, *, split: str = "test",
                          method: str = "layer_ig") -> dict[str, Any]:
    """Attribution per fusion level of the model's own decisions (its predicted class) on the
    samples, relative to its reference.

    Returns
    -------
    dict
        ``levels`` (:func:`levels_table`), ``table`` (per level, sample and term, from
        :func:`~mmexplain.attribution.fusion_level_attribution`), ``shares`` (mean share per
        level and term), ``summary`` (per level: cross-modal share, completeness, steps, note)
        and ``story`` (markdown: where the modalities meet and where the decision is made).
    """
    x = run.splits[split].inputs(idx)
    table = fusion_level_attribution(run.model, x, target=_explained_class(run, x), method=method)
    summary = fusion_level_summary(table)
    return {"levels": levels_table(run.model), "table": table, "shares": fusion_level_shares(table),
            "summary": summary, "story": where_modalities_meet(summary)}


def where_modalities_meet(summary: pd.DataFrame) -> str:
    """A reader's account of a :func:`~mmexplain.attribution.fusion_level_summary`: which
    levels keep the modalities apart, where cross-modal terms appear and how much of the
    decision they carry."""
    apart = summary.loc[summary.cross_modal_share <= 1e-12, "level"].tolist()
    mixed = summary[summary.cross_modal_share > 1e-12]
    last = summary.iloc[-1]
    words = []
    if apart:
        words.append(f"At {', '.join(f'`{lv}`' for lv in apart)} nothing is cross-modal: each modality's "
                     "contribution is its own (what the model does with them later is credited back to them).")
    if len(mixed):
        first = mixed.iloc[0]
        words.append(f"The modalities first meet at `{first.level}` ({first.stage}), where cross-modal terms "
                     f"carry {first.cross_modal_share:.0%} of the contributions.")
    words.append(f"At the last level, `{last.level}` ({last.stage}), cross-modal terms carry "
                 f"{last.cross_modal_share:.0%}: " + ("the decision is a sum of per-modality decisions."
                                                     if last.cross_modal_share <= 1e-12 else
                                                     "that much of the decision needs the modalities together."))
    bad = summary[summary.note.str.contains("completeness not reached", regex=False)]
    if len(bad):
        words.append(f"Completeness is not reached at {', '.join(f'`{lv}`' for lv in bad.level)} (see its note).")
    return " ".join(words)


def attention_localisation(run: Run, idx: torch.Tensor, *, split: str = "test") -> dict[str, Any] | None:
    """Where an attention fusion's text tokens look in the image, against the evidence masks.

    For every context modality with a region grid and mask evidence (easy-VQA's shape
    masks), each real query token's attention weights and gradient-weighted flow are spread
    over the pixels (:meth:`~mmexplain.attribution.AttentionFlow.region_map`) and scored by
    :func:`~mmexplain.metrics.mass_in_mask` against the mask, beside its chance level (the
    mask's area fraction). None when the model's fusion does not attend.

    Returns
    -------
    dict or None
        ``flow`` (:class:`~mmexplain.attribution.AttentionFlow`), ``by_token`` (DataFrame:
        ``modality``, ``token``, ``n`` (occurrences), ``weights_in_mask``, ``flow_in_mask``,
        ``chance``), ``overall`` (the same over all real tokens, one row per modality).
    """
    if not getattr(run.model.fusion, "attends", False):
        return None
    data = run.splits[split]
    x = data.inputs(idx)
    flow = attention_flow(run.model, x, target=_explained_class(run, x))
    query = flow.query
    real = valid_masks(run, idx, split=split).get(query, flow.query_valid) & flow.query_valid
    tok = run.tokenizer
    ids = x[query]
    words = np.array([tok.convert_ids_to_tokens(row.tolist()) for row in ids]) if tok is not None and \
        ids.dtype in (torch.int32, torch.int64) else None
    by_token, overall = [], []
    for modality in flow.grids:
        spec = next(s for s in run.model.modality_specs if s.name == modality)
        ev = data.evidence_for(modality, idx)
        if ev is None or spec.kind_info.evidence != "mask":
            continue
        size = tuple(ev.shape[-2:])
        chance = chance_level("mass_in_mask", ev)

        def score(tokens: torch.Tensor, modality: str = modality, size: tuple = size, ev: torch.Tensor = ev,
                  chance: torch.Tensor = chance) -> dict[str, float]:
            has = tokens.any(1)
            out = {}
            for which in ("weights", "flow"):
                v = mass_in_mask(flow.region_map(modality, size, which=which, tokens=tokens), ev)[has]
                out[f"{which}_in_mask"] = float(v.nanmean()) if len(v) else float("nan")
            out["chance"] = float(chance[has].mean()) if has.any() else float("nan")
            return out

        overall.append({"modality": modality, "n": int(real.sum()), **score(real)})
        if words is not None:
            for w in sorted(set(words[real.numpy()].tolist())):
                sel = torch.from_numpy(words == w) & real
                by_token.append({"modality": modality, "token": w, "n": int(sel.sum()), **score(sel)})
    cols = ["modality", "token", "n", "weights_in_mask", "flow_in_mask", "chance"]
    return {"flow": flow, "by_token": pd.DataFrame(by_token, columns=cols).sort_values(["modality", "n"],
                                                                                      ascending=[True, False]),
            "overall": pd.DataFrame(overall, columns=[c for c in cols if c != "token"])}


def compare_levels(runs: dict[str, Run], idx: torch.Tensor, *, split: str = "test",
                   method: str = "layer_ig") -> dict[str, pd.DataFrame]:
    """:func:`fusion_level_analysis` of several runs on the same samples, side by side.

    Returns
    -------
    dict
        ``shares`` and ``summary`` with a leading ``fusion`` column (the keys of ``runs``).
    """
    shares, summaries = [], []
    for name, r in runs.items():
        fl = fusion_level_analysis(r, idx, split=split, method=method)
        shares.append(fl["shares"].assign(fusion=name))
        summaries.append(fl["summary"].assign(fusion=name))

    def first(df: pd.DataFrame) -> pd.DataFrame:
        return df[["fusion", *[c for c in df.columns if c != "fusion"]]]

    return {"shares": first(pd.concat(shares, ignore_index=True)),
            "summary": first(pd.concat(summaries, ignore_index=True))}


def attention_figures(run: Run, idx: torch.Tensor, flow: Any, *, positions: Sequence[int] = (0,),
                      split: str = "test") -> list:
    """For the samples at ``positions`` of ``idx``: the gradient-weighted attention flow of all
    real query tokens, spread over each gridded context modality (the image) and drawn on it,
    with the evidence mask outlined where the data has one."""
    data = run.splits[split]
    specs = {s.name: s for s in run.model.modality_specs}
    real = valid_masks(run, idx, split=split).get(flow.query, flow.query_valid) & flow.query_valid
    figs = []
    for modality in flow.grids:
        x = data.inputs(idx)[modality]
        ev = data.evidence_for(modality, idx) if specs[modality].kind_info.evidence == "mask" else None
        maps = flow.region_map(modality, tuple(x.shape[-2:]), tokens=real)
        for k in positions:
            figs.append(modality_figure(specs[modality], x[k], maps[k],
                                        title=f"sample {int(idx[k])} — attention flow of the {flow.query} to the "
                                              f"{modality}", mask=None if ev is None else ev[k]))
    return figs



# ------------------------------------------------------------------------------ strategies compared


def _check_sample_index(idx: Any, n: int, split: str) -> torch.Tensor:
    """``idx`` as a 1-D LongTensor of distinct positions in a split of ``n`` samples."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ConfigError(f"idx must be a 1-D integer tensor of {split} positions (e.g. select_samples(run, 32)); "
                          f"got {type(idx).__name__}{tuple(idx.shape) if isinstance(idx, torch.Tensor) else ''}.")
    if len(idx) == 0:
        raise ConfigError("idx is empty; pass at least one sample (e.g. select_samples(run, 32)).")
    bad = (idx < 0) | (idx >= n)
    if bool(bad.any()):
        raise ConfigError(f"idx holds {int(idx[bad][0])}, outside the {n} samples of the {split} split.")
    return idx.long()


def compare_strategies(
    runs: Mapping[str, Run],
    idx: torch.Tensor,
    *,
    split: str = "test",
    method: str = "ig",
    steps: int = 10,
    method_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Fusion strategies compared on the same data, the same samples and the same games.

    Every number comes from the function the notebooks show it with, so a row agrees with
    notebook 02 / 05 run on that model and these samples: :func:`shapley_analysis` (shares
    and InterSHAP), :func:`emap_analysis`, :func:`explain` with one method, then
    :func:`localisation_table` and :func:`faithfulness_table` on its maps.

    Every run must come from the same data (same ``run.data_fingerprint``: dataset, limit
    and seed) and is explained on the same samples ``idx`` of ``split``. "Absent" is each
    model's own stored reference (``run.model.reference``, fitted from the training split
    when the model was trained, so from the same training data for every run), except in
    InterSHAP's interventional game, whose background is the same :func:`background_for`
    training samples for every run.

    Parameters
    ----------
    runs : mapping of str -> Run
        The runs to compare, keyed by the label of their row (normally the fusion name).
    idx : LongTensor of shape (N,)
        Positions of the samples in ``split`` (e.g. :func:`select_samples` of one run),
        the same for every run.
    split : str, default="test"
    method : str, default="ig"
        The attribution method whose maps are scored for localisation and faithfulness.
    steps : int, default=10
        Steps of the deletion / insertion curves (:func:`faithfulness_table`).
    method_options : mapping, optional
        Options of ``method`` (e.g. ``{"n_steps": 32}`` for IG), passed to :func:`explain`.

    Returns
    -------
    pandas.DataFrame
        One row per run, in the order of ``runs``. Columns:

        * ``fusion``: the key in ``runs``;
        * ``test_accuracy``: ``run.metrics["test"]["accuracy"]`` (fraction; NaN when the
          run has no stored test accuracy, e.g. regression);
        * ``share_<modality>``: mean MM-SHAP share of the modality (modality Shapley values
          of the predicted class's logit, :func:`shapley_analysis`'s ``mean_shares``); each
          row's shares sum to 1;
        * ``interaction_share``: InterSHAP, pooled, probability game with the background of
          :func:`background_for` (:func:`intershap`), a fraction in [0, 1];
        * ``emap_gap``: EMAP's model metric minus its additive projection's (accuracy for
          a classifier, a difference of fractions; MSE for a regression model, where a
          negative gap favours the model); about 0 when the model's predictions do not use
          cross-modal interactions on these samples;
        * ``<modality>_<metric>_vs_chance``: :func:`localisation_table`'s ``vs_chance`` of
          ``method``'s maps, one column per modality with ground-truth evidence and metric
          (mass in mask, pointing game: fractions, higher is better; evidence rank: lower is
          better; reciprocal rank: higher is better); no such columns when the data has no
          evidence, NaN for a run that ``method`` cannot explain or where the metric is
          undefined on every sample;
        * ``deletion_auc_vs_random``: deletion AUC minus the random order's, averaged over
          modalities (units: the target class's probability × fraction deleted; lower is
          better, below 0 is faithful); ``insertion_auc_vs_random`` likewise (higher is
          better, above 0 is faithful);
        * ``flags``: why ``method`` was left out for the run, and its result's flags.

        ``table.attrs`` holds ``better`` (column -> ``"higher"`` / ``"lower"``, for the
        columns with a direction), ``method``, ``split``, ``index`` (the samples) and
        ``emap_metric``.

    Raises
    ------
    ConfigError
        When ``runs`` is empty, a run was trained on other data than the first, or ``idx``
        is not a 1-D integer tensor of positions in ``split``.

    See Also
    --------
    mmexplain.viz.strategy_comparison : the table as one figure.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ConfigError(f"runs must be a non-empty mapping label -> Run; got {runs!r}.")
    names = list(runs)
    first = runs[names[0]]
    for name in names[1:]:
        if runs[name].data_fingerprint != first.data_fingerprint:
            raise ConfigError(
                f"runs[{name!r}] (fusion {runs[name].params.get('fusion')!r}) was trained on other data than "
                f"runs[{names[0]!r}] (data fingerprints differ); train every run on one dataset, limit and seed.")
    idx = _check_sample_index(idx, len(first.splits[split]), split)
    METHODS.get(method)  # an unknown name fails here, listing the methods there are
    options = {method: dict(method_options or {})}
    better: dict[str, str] = {"test_accuracy": "higher", "deletion_auc_vs_random": "lower",
                              "insertion_auc_vs_random": "higher"}
    rows, loc_columns, emap_metric = [], {}, None
    for name in names:
        run = runs[name]
        sh = shapley_analysis(run, idx, split=split)
        em = emap_analysis(run, idx, split=split)
        emap_metric = em["metric"]
        results = explain(run, idx, [method], split=split, **options)
        why = invalid_methods(run, [method])
        row: dict[str, Any] = {
            "fusion": name,
            "test_accuracy": float(run.metrics.get("test", {}).get("accuracy", float("nan"))),
            **{f"share_{m}": float(v) for m, v in sh["mean_shares"].items()},
            "interaction_share": sh["interaction_share"],
            "emap_gap": em["gap"],
        }
        loc = localisation_table(run, idx, results, split=split)
        for r in loc.itertuples():
            col = f"{r.modality}_{r.metric}_vs_chance"
            loc_columns[col] = None
            better[col] = r.better
            row[col] = float(r.vs_chance)
        faith, _ = faithfulness_table(run, idx, results, split=split, steps=steps)
        for mode in ("deletion", "insertion"):
            f = faith[faith["mode"] == mode]
            # per modality the mean over samples, then the mean over modalities (as the trust panel)
            row[f"{mode}_auc_vs_random"] = float((f["auc"] - f["random_auc"]).mean()) if len(f) else float("nan")
        flags = [f"{method} left out: {why[method]}"] if method in why else []
        row["flags"] = "; ".join(flags + (list(results[method].flags) if method in results else []))
        rows.append(row)
    shares = [c for c in rows[0] if c.startswith("share_")]
    columns = ["fusion", "test_accuracy", *shares, "interaction_share", "emap_gap", *loc_columns,
               "deletion_auc_vs_random", "insertion_auc_vs_random", "flags"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs.update(better=better, method=method, split=split, index=[int(i) for i in idx],
                       emap_metric=emap_metric)
    return table
