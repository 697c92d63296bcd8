"""Fusion strategies compared on the same data: one table per dataset (issue 9, item 2).

Trains (or reuses, via ``load_or_train`` in ``--cache``) early / concat / tensor / gated /
late / attention fusion with one seed on planted XOR data (``synthetic:interaction``: the
label is the XOR of the image's and the text's sign, the tabular modality is noise) and on
easy-VQA, then runs :func:`mmexplain.analysis.compare_strategies` on the same ``--n`` test
samples for every fusion and prints the tables as markdown, with the legend of the columns.

Defaults, chosen to finish in a few minutes per dataset on two shared CPU cores:

* ``synthetic:interaction``: 3,000 samples (the generator's default ``n``: 2,040 train,
  360 val, 600 test), 15 epochs; on 3,000 samples the tensor and concat fusions learn XOR
  (test accuracy 1.0 in a probe), on 1,000 they need a larger learning rate and on 600
  none of them learns it in 10 epochs.
* ``easy-vqa``: 2,000 train and 2,000 test questions, 6 epochs (``--limit`` / ``--epochs``
  change both; the notebooks' default is all questions and 8 epochs).

Reading the tables: on 32 samples EMAP's gap is bounded by the XOR cells they happen to
fill, since an additive projection can still get 3 of the 4 (sign, sign) cells right (with
3 of the 32 samples in one cell, a perfect XOR model's gap can be as small as 3/32); pass a
larger ``--n`` for a steadier gap. InterSHAP plays the predicted class's probability, so a
late (logit-additive) model shows interaction through the softmax, the more so the more
classes and the more saturated its outputs (easy-VQA has 13 answers).

Usage::

    python benchmarks/compare_fusions.py                                # both datasets
    python benchmarks/compare_fusions.py --dataset synthetic:interaction --threads 1
    python benchmarks/compare_fusions.py --dataset easy-vqa --limit 2000 --epochs 6
"""

from __future__ import annotations

import argparse
import math
import os
import time

import pandas as pd
import torch

from mmexplain.analysis import compare_strategies, reference_table, select_samples
from mmexplain.training import load_or_train

FUSIONS = ("early", "concat", "tensor", "gated", "late", "attention")
#: Per dataset: (limit, epochs) when --limit / --epochs are not given (see the module docstring).
DEFAULTS = {"synthetic:interaction": (3000, 15), "easy-vqa": (2000, 6)}


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """``table`` as a GitHub markdown table (floats to ``digits`` decimals, NaN as ``—``)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "—" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" if table[c].dtype == object else "---:" for c in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", choices=list(DEFAULTS),
                    help="a dataset to compare on (repeatable; default: all)")
    ap.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    ap.add_argument("--limit", type=int, default=None, help="samples (default: per dataset, see above)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: per dataset, see above)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=32, help="test samples explained (the same for every fusion)")
    ap.add_argument("--method", default="ig", help="attribution method scored for localisation and faithfulness")
    ap.add_argument("--cache", default="reports/models", help="trained runs are kept (and reused) here")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (1 is much faster for these small models on a busy 2-core box)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    pd.set_option("display.width", 250)

    for dataset in args.dataset or list(DEFAULTS):
        limit, epochs = DEFAULTS[dataset]
        limit = args.limit if args.limit is not None else limit
        epochs = args.epochs if args.epochs is not None else epochs
        start = time.perf_counter()
        runs = {}
        for fusion in args.fusions:
            t = time.perf_counter()
            runs[fusion] = load_or_train(args.cache, device=args.device, progress=False, dataset=dataset,
                                         fusion=fusion, epochs=epochs, seed=args.seed, limit=limit)
            print(f"  {dataset} {fusion}: ready in {time.perf_counter() - t:.1f} s "
                  f"({runs[fusion].directory})", flush=True)
        trained = time.perf_counter() - start
        first = next(iter(runs.values()))
        idx = select_samples(first, args.n, seed=args.seed)
        t = time.perf_counter()
        table = compare_strategies(runs, idx, method=args.method)
        compared = time.perf_counter() - t
        print(f"\n### {dataset}: limit={limit} epochs={epochs} seed={args.seed}, {len(idx)} test samples, "
              f"method={args.method}, EMAP metric={table.attrs['emap_metric']}")
        print(f"train/load {trained:.0f} s, compare {compared:.0f} s, threads={torch.get_num_threads()}\n")
        print(markdown(table.drop(columns="flags")))
        flags = table[table["flags"] != ""]
        for _, r in flags.iterrows():
            print(f"\n* {r['fusion']}: {r['flags']}")
        better = table.attrs["better"]
        print("\nBetter: " + ", ".join(f"{c} {d}" for c, d in better.items()))
        print("Absent (first run's reference; each model uses its own, fitted on the same training data): "
              + "; ".join(f"{m}: {a}" for m, a in reference_table(first).itertuples(index=False)), flush=True)


if __name__ == "__main__":
    main()
