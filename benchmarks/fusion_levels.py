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
from mmexplain.models import FUSIONS
from mmexplain.training import load_or_train, train_run

WORDS = {"color", "shape", "circle", "rectangle", "triangle", "red", "green", "blue", "yellow", "black", "gray",
         "teal", "brown"}


def planted(n: int) -> None:
    for mode, epochs in (("interaction", 15), ("additive:regression", 25)):
        rows, blocks = [], []
        for fusion in FUSIONS.names():
            run = train_run(f"synthetic:{mode}", fusion, epochs=epochs, progress=False)
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
                fused = shares[shares.level == "fused"].set_index("modality")["share"].round(3)
                blocks.append(fused)
        print(f"\n## synthetic:{mode} — {n} test samples\n")
        print(pd.DataFrame(rows).to_string(index=False))
        print("\ntensor fusion, fused level (its blocks relative to the reference), mean share:\n")
        print(blocks[0].to_frame("share").to_string())


def easy_vqa(n: int, epochs: int, limit: int, cache: str) -> None:
    start = time.perf_counter()
    run = load_or_train(cache, dataset="easy-vqa", fusion="attention", epochs=epochs, seed=0, limit=limit or None,
                        progress=False)
    print(f"\n## easy-VQA, attention fusion — {epochs} epochs, test accuracy "
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
    ap.add_argument("--skip-planted", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    if not args.skip_planted:
        planted(args.n)
    easy_vqa(args.n, args.vqa_epochs, args.vqa_limit, args.cache)


if __name__ == "__main__":
    main()
