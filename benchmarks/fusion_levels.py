"""Where do the modalities meet? Fusion-level attribution on planted data and on easy-VQA.

1. Planted data (``synthetic:interaction``: the label is the XOR of the image's and the text's
   planted signs; ``synthetic:additive:regression``: y = Σ w_m s_m): every fusion's levels, with
   the cross-modal share and the largest relative completeness error per level, and tensor
   fusion's share of its bimodal block (the issue asks ≥ 0.5 on XOR, ≤ 0.2 additive).
2. easy-VQA with attention fusion: where the question's tokens look in the image — attention
   weights and gradient-weighted flow inside the ground-truth shape mask, against chance (the
   mask's area), overall and for the colour / shape words.

    python benchmarks/fusion_levels.py [--n 32] [--vqa-epochs 12] [--vqa-limit 0] [--cache reports/models]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from mmexplain import analysis as A
from mmexplain.attribution import (
    fusion_level_attribution,
    fusion_level_shares,
    fusion_level_summary,
)
from mmexplain.training import load_or_train, load_run

WORDS = {"color", "shape", "circle", "rectangle", "triangle", "red", "green", "blue", "yellow", "black", "gray",
         "teal", "brown"}


#: (dataset, fusions, dataset options, training options): the issue's six strategies on the
#: three-modality XOR data, and tensor fusion on image + text (exactly one bimodal block) for
#: XOR and additive data, trained with and without modality dropout (its blocks are taken
#: relative to the reference, which only a model trained with dropout has seen).
TWO = {"modalities": ["image", "text"]}
PLANTED = (
    ("synthetic:interaction", ("early", "concat", "tensor", "gated", "late", "attention"), {}, {}),
    ("synthetic:interaction", ("tensor",), TWO, {}),
    ("synthetic:interaction", ("tensor",), TWO, {"modality_dropout": 0.3}),
    ("synthetic:additive:regression", ("tensor",), TWO, {}),
    ("synthetic:additive:regression", ("tensor",), TWO, {"modality_dropout": 0.3}),
)


def planted(n: int, cache: str) -> None:
    for dataset, fusions, options, training in PLANTED:
        rows, blocks = [], {}
        epochs = 25 if "additive" in dataset else 15
        for fusion in fusions:
            run = load_or_train(cache, dataset=dataset, fusion=fusion, epochs=epochs, seed=0, limit=3000,
                                dataset_options=options, progress=False, **training)
            x = run.splits.test.inputs(range(n))
            y = run.model(**x).argmax(1) if run.splits.test.task == "classification" else None
            start = time.perf_counter()
            table = fusion_level_attribution(run.model, x, target=y)
            seconds = time.perf_counter() - start
            for _, r in fusion_level_summary(table).iterrows():
                rows.append({"fusion": fusion, "level": r.level, "stage": r.stage,
                             "cross_modal_share": round(r.cross_modal_share, 3),
                             "max_rel_completeness": None if r.max_relative_completeness_error is None
                             else f"{r.max_relative_completeness_error:.1e}",
                             "max_steps": r.max_steps_used, "seconds": round(seconds, 1)})
            if fusion == "tensor":
                shares = fusion_level_shares(table)
                blocks[fusion] = shares[shares.level == "fused"].set_index("modality")["share"].round(3)
        print(f"\n## {dataset} {options or ''} {training or ''} — {n} test samples, {epochs} epochs\n")
        print(pd.DataFrame(rows).to_string(index=False))
        if blocks:
            print("\ntensor fusion, fused level (its blocks relative to the reference), pooled share:\n")
            print(blocks["tensor"].to_frame("share").to_string())


def easy_vqa(n: int, epochs: int, limit: int, cache: str, run_dir: str | None = None) -> None:
    start = time.perf_counter()
    if run_dir:
        run = load_run(run_dir)
        epochs = run.params["epochs"]
    else:
        run = load_or_train(cache, dataset="easy-vqa", fusion="attention", epochs=epochs, seed=0,
                            limit=limit or None, progress=False)
    print(f"\n## easy-VQA, attention fusion, {run.params.get('text_encoder') or 'gru'} text encoder — "
          f"{epochs} epochs, test accuracy "
          f"{run.metrics['test']['accuracy']:.3f} (trained or loaded in {time.perf_counter() - start:.0f} s)\n")
    idx = A.select_samples(run, n, seed=0)
    att = A.attention_localisation(run, idx)
    print(att["overall"].round(3).to_string(index=False))
    words = att["by_token"][att["by_token"].token.isin(WORDS)]
    print("\ncolour and shape words:\n")
    print(words.round(3).to_string(index=False))
    levels = A.fusion_level_analysis(run, idx)
    print("\nlevels:\n")
    print(levels["summary"].drop(columns="note").round(4).to_string(index=False))
    print("\n" + levels["story"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="test samples explained")
    ap.add_argument("--vqa-epochs", type=int, default=12)
    ap.add_argument("--vqa-limit", type=int, default=0, help="training questions (0: all)")
    ap.add_argument("--cache", default="reports/models")
    ap.add_argument("--vqa-run", default=None, help="an attention run's folder to load instead of training one")
    ap.add_argument("--skip-planted", action="store_true")
    ap.add_argument("--skip-vqa", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    if not args.skip_planted:
        planted(args.n, args.cache)
    if not args.skip_vqa:
        easy_vqa(args.n, args.vqa_epochs, args.vqa_limit, args.cache, args.vqa_run)


if __name__ == "__main__":
    main()
