"""Figures behind "explanations that agree with each other", measured side by side in one run.

1. Sample independence: per method, the largest difference between a sample explained alone
   and inside batches of 8 and 32 (4-modality concat model, random weights, fitted reference).
2. Delta consistency: per text encoder and fusion, the largest gap between IG's recorded
   f(x) − f(reference), modality Shapley's full − base value and the model's own outputs, and
   the gap between IG's completeness error and its own path-integration error.
3. InterSHAP as published on planted data (synergy, additive, redundant).

    python benchmarks/trust_checks.py [--skip-intershap]
"""

from __future__ import annotations

import argparse

import torch

from mmexplain.analysis import background_for, intershap
from mmexplain.attribution import METHODS, attribute, modality_shapley
from mmexplain.data import make_synthetic
from mmexplain.models import FUSIONS, ModelConfig, build_model
from mmexplain.training import train_run

FAST = {"shap_partition": {"max_evals": 64}, "shap_gradient": {"n_samples": 8}, "gradient_shap": {"n_samples": 4},
        "smoothgrad": {"nt_samples": 3}, "ig": {"n_steps": 16, "tolerance": 0}}


def padded(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = x["text"].clone()
    for i in range(len(ids)):
        ids[i, 3 + i % 5:] = 0
    return {**x, "text": ids}


def sample_independence() -> None:
    data = make_synthetic("additive", n=64, modalities=("image", "text", "tabular", "audio"), seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("concat"), data).eval()
    x = padded(data.inputs(range(32)))
    y = model(**x).argmax(1)
    print("1. sample explained alone vs in batches of 8 and 32: max |difference| over maps (largest |map|)")
    for method in [*METHODS.names(), "modality_shapley"]:
        def run(sub, method=method):
            xs = {k: v[sub] for k, v in x.items()}
            if method == "modality_shapley":
                return {"values": modality_shapley(model, xs, target=y[sub]).values}
            return attribute(model, xs, method=method, target=y[sub], **FAST.get(method, {})).maps

        full, eight = run(slice(0, 32)), run(slice(0, 8))
        gap, size = 0.0, 0.0
        for i in (0, 5):
            alone = run(slice(i, i + 1))
            for m in alone:
                gap = max(gap, float((alone[m][0] - full[m][i]).abs().max()), float((alone[m][0] - eight[m][i]).abs().max()))
                size = max(size, float(full[m][i].abs().max()))
        print(f"   {method:18s} {gap:.2e}  ({size:.2e})")


def delta_consistency() -> None:
    data = make_synthetic("interaction", n=24, modalities=("image", "text"), seed=1)
    x = padded(data.inputs(range(4)))
    y = torch.tensor([0, 1, 1, 0])
    print("2. recorded f(x) - f(reference) vs the model's own; IG completeness error vs its path error")
    for enc in ("gru", "lstm", "minilm"):
        worst = {"ig": 0.0, "shapley": 0.0, "completeness-residual": 0.0, "mask_term": 0.0}
        fusions = FUSIONS.names()
        for fusion in fusions:
            torch.manual_seed(0)
            model = build_model(ModelConfig.from_name(fusion, text_encoder=enc), data).eval()
            ref = model.reference.inputs_like(x)
            with torch.no_grad():
                own = (model(**x).gather(1, y[:, None]) - model(**ref).gather(1, y[:, None])).squeeze(1).double()
            sv = modality_shapley(model, x, target=y)
            res = attribute(model, x, method="ig", target=y, n_steps=24, tolerance=0)
            worst["ig"] = max(worst["ig"], float((res.output_delta - own).abs().max()))
            worst["shapley"] = max(worst["shapley"], float((sv.full_value - sv.base_value - own).abs().max()))
            resid = torch.tensor(res.meta["convergence_delta"], dtype=torch.float64)
            worst["completeness-residual"] = max(worst["completeness-residual"],
                                                 float((res.completeness_error - resid).abs().max()))
            worst["mask_term"] = max(worst["mask_term"], max(abs(v) for v in res.meta["mask_term"]["text"]))
        print(f"   {enc:6s} ({len(fusions)} fusions): " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


def intershap_planted() -> None:
    print("3. InterSHAP (probability of the predicted class, background of 32 training samples, pooled)")
    for mode, fusion in (("interaction", "attention"), ("interaction", "tensor"), ("additive", "concat"),
                         ("redundant", "concat")):
        run = train_run(f"synthetic:{mode}", fusion, epochs=15, progress=False)
        s = intershap(run.model, run.splits.test.inputs(range(128)), background=background_for(run))
        signed = float(s["intershap"].interactions[:, 0, 1].mean())
        q = s["interaction_distribution"].interaction_share.round(2).tolist()
        print(f"   {mode:11s} {fusion:9s} acc {run.metrics['test']['accuracy']:.3f}  InterSHAP {s['interaction_share']:.3f}"
              f"  mean Φ_01 {signed:+.3f}  per-sample q10..q90 {q}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-intershap", action="store_true")
    args = ap.parse_args()
    sample_independence()
    delta_consistency()
    if not args.skip_intershap:
        intershap_planted()


if __name__ == "__main__":
    main()
