"""Benchmark: every built-in fusion strategy on easy-VQA -- test accuracy and training time.

Each fusion (and the ``baseline`` preset) is trained with the same seed, epochs (unless
``--epochs-for`` gives one a longer schedule), batch size and learning rate on the full
easy-VQA train split (validation carved from it by seed, early stopping on validation),
then evaluated on the official test split (9,673 questions). The
table gives test accuracy, macro F1, the best epoch and the wall time of training on this
machine; ``--out DIR`` also keeps each run's checkpoint and metrics.

Usage::

    python benchmarks/bench_fusions_easy_vqa.py --epochs 10            # all fusions
    python benchmarks/bench_fusions_easy_vqa.py --epochs 10 --epochs-for attention=40
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from mmexplain.models import FUSIONS
from mmexplain.training import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fusions", nargs="+", default=[*FUSIONS, "baseline"],
                        help="fusion names or presets (default: all, plus 'baseline')")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--epochs-for", nargs="*", default=[], metavar="FUSION=N",
                        help="a longer (or shorter) schedule for some fusions, e.g. attention=40")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="train/test samples (0: all)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", default=None, help="keep each run under OUT/<fusion>")
    args = parser.parse_args()
    try:
        epochs_for = {k: int(v) for k, v in (item.split("=", 1) for item in args.epochs_for)}
    except ValueError:
        parser.error(f"--epochs-for takes FUSION=N items; got {args.epochs_for}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    print(f"easy-VQA  epochs={args.epochs} seed={args.seed} device={args.device} "
          f"threads={torch.get_num_threads()} cpus={os.cpu_count()} torch={torch.__version__}")
    print(f"{'fusion':<14} {'epochs':>6} {'test_acc':>8} {'macro_f1':>8} {'val_acc':>8} {'best_ep':>7} {'train_s':>8} {'total_s':>8}")
    rows = []
    for fusion in args.fusions:
        start = time.perf_counter()
        epochs = epochs_for.get(fusion, args.epochs)
        run = train_run("easy-vqa", fusion, epochs=epochs, seed=args.seed, limit=args.limit or None,
                        device=args.device, progress=False,
                        out=os.path.join(args.out, fusion) if args.out else None)
        total = time.perf_counter() - start
        m = run.metrics
        rows.append((fusion, m["test"]["accuracy"]))
        print(f"{fusion:<14} {epochs:>6} {m['test']['accuracy']:>8.4f} {m['test']['macro_f1']:>8.4f} "
              f"{m['val']['accuracy']:>8.4f} {m['best_epoch']:>7} {m['train_seconds']:>8.1f} {total:>8.1f}",
              flush=True)
    best = max(rows, key=lambda r: r[1])
    print(f"best: {best[0]} test accuracy {best[1]:.4f}")


if __name__ == "__main__":
    main()
