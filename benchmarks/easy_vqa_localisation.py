"""easy-VQA ground truth: does each attribution method point at the shape and the evidence word?

For a trained easy-VQA run (``mmexplain train --dataset easy-vqa --fusion attention --out DIR``)
this explains N test samples (the model's predicted answer) with every registered method and
prints, per method:

* ``mass_in_mask``: the share of positive image attribution inside the shape's pixels,
  averaged over the ``n_defined`` samples whose map has any positive image attribution;
* ``pointing_game``: how often the most-attributed pixel lies on the shape (ties scored as
  the expected hit);
* ``evidence_rank``: the mean rank (1 = first) of the question's evidence word (the colour or
  shape word the answer hinges on) among the question's real tokens, and ``reciprocal_rank``;

each beside its chance level (``<metric>_chance``: what a map carrying no information scores
on the same samples, :func:`mmexplain.metrics.chance_level`), then the cascading-randomisation
sanity check (Adebayo et al., 2018) for IG and Saliency, per modality.

Usage::

    python benchmarks/easy_vqa_localisation.py --run runs/att --n 64
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmexplain import analysis as A  # noqa: E402
from mmexplain.attribution import METHODS  # noqa: E402
from mmexplain.training import load_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained easy-VQA run directory")
    parser.add_argument("--n", type=int, default=64, help="test samples explained")
    parser.add_argument("--sanity-n", type=int, default=16, help="samples for the sanity check")
    parser.add_argument("--methods", nargs="+", default=METHODS.names())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    pd.set_option("display.width", 200)

    run = load_run(args.run, device=args.device)
    torch.manual_seed(args.seed)
    idx = A.select_samples(run, args.n, seed=args.seed)
    print(f"run={args.run} fusion={run.params['fusion']} test accuracy={run.metrics['test']['accuracy']:.4f} "
          f"N={len(idx)}")
    tables, seconds = [], {}
    for m in args.methods:
        start = time.perf_counter()
        results = A.explain(run, idx, [m])
        seconds[m] = time.perf_counter() - start
        tables.append(A.localisation_table(run, idx, results))
    table = pd.concat(tables, ignore_index=True)
    metrics = ["mass_in_mask", "pointing_game", "evidence_rank", "reciprocal_rank"]
    value = table.pivot_table(index="method", columns="metric", values="value", sort=False)[metrics]
    chance = table.pivot_table(index="method", columns="metric", values="chance", sort=False)[metrics]
    wide = pd.concat([value, chance.add_suffix("_chance")], axis=1)  # each metric beside its chance level
    defined = table[table.metric == "mass_in_mask"].set_index("method")["n_defined"]
    wide.insert(2, "n_defined", defined)  # samples with any positive image attribution
    wide["seconds"] = pd.Series(seconds)
    order = [c for m in metrics for c in (m, f"{m}_chance")]
    print(wide[[order[0], order[1], "n_defined", *order[2:], "seconds"]].round(3).to_string())
    sanity_idx = idx[: args.sanity_n]
    print("\nsanity (cascading randomisation; passes when the final rank correlation is low):")
    print(A.sanity_table(run, sanity_idx, ("ig", "saliency")).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
