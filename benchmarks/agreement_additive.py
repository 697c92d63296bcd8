"""Do the explainers agree where they should? Every method's modality shares on planted additive data.

On ``synthetic:additive`` (regression, y = Σ w_m s_m) a concat model learns a nearly additive
function, so with one shared reference every baseline-relative method should give each modality
the share the data planted (w_m), and exact modality Shapley values should agree with them.
Prints, per method: mean share per modality, the largest gap to modality Shapley and to the
planted weights, and the completeness error where the method promises it.

    python benchmarks/agreement_additive.py [--n 128] [--epochs 25]
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from mmexplain import attribute, modality_shapley
from mmexplain.attribution import METHODS
from mmexplain.training import train_run

SLOW = {"shap_partition": {"max_evals": 200}, "shap_gradient": {"n_samples": 50}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128, help="test samples explained")
    ap.add_argument("--epochs", type=int, default=25)
    args = ap.parse_args()
    run = train_run("synthetic:additive:regression", "concat", epochs=args.epochs, progress=False)
    x = run.splits.test.inputs(range(args.n))
    planted = run.splits.train.meta["planted"]["shares"]
    sv = modality_shapley(run.model, x)
    shapley = sv.mean_shares()
    rows = [{"method": "modality_shapley", **shapley.round(3).to_dict(), "max_gap_shapley": 0.0,
             "max_gap_planted": round(max(abs(shapley[m] - w) for m, w in planted.items()), 3),
             "max_rel_completeness": None, "flags": ""}]
    for name in METHODS.names():
        res = attribute(run.model, x, method=name, **SLOW.get(name, {}))
        shares = pd.Series(torch.nanmean(res.shares(), 0).numpy(), index=res.modality_names)
        rel = res.relative_completeness_error
        rows.append({"method": name, **shares.round(3).to_dict(),
                     "max_gap_shapley": round(float((shares - shapley).abs().max()), 3),
                     "max_gap_planted": round(max(abs(shares[m] - w) for m, w in planted.items()), 3),
                     "max_rel_completeness": None if rel is None else round(float(rel.max()), 4),
                     "flags": "; ".join(res.flags)})
    print(f"planted weights: {planted}; reference: {run.model.reference.describe()}")
    print(f"model test metrics: {run.metrics['test']}")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
