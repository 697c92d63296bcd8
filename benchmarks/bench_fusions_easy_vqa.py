"""Benchmark: built-in fusion strategies on easy-VQA -- test accuracy, training time, time to 97 %.

Each fusion (and the ``baseline`` preset) is trained with the same seed, schedule, batch
size and learning rate on the full easy-VQA train split (validation carved from it by
seed; the best validation epoch is kept), then evaluated on the official test split (9,673
questions). One row per fusion and schedule length (``--epochs 4 6 8`` trains each fusion
three times, each with a schedule sized for its own length):

- ``test_acc``, ``macro_f1``, ``val_acc``, ``best_ep``: the kept weights;
- ``train_s``: wall time of training (frozen encoders' caches included), ``total_s`` with
  data loading and evaluation, ``cpu_s`` the CPU time of the whole run (with ``--threads
  1``, about the wall time on one free core: the stable number on a shared machine);
- ``val97_ep`` / ``val97_s``: the first epoch whose validation accuracy reached ``--target``
  (default 0.97) and the training seconds up to its end (``-`` when never).

Under a decaying schedule the epochs to reach the target on *test* are the shortest
schedule whose row has ``test_acc`` >= target: a schedule sized for 8 epochs is not the
first 8 epochs of one sized for 40. The summary names it per fusion.

Usage::

    python benchmarks/bench_fusions_easy_vqa.py --epochs 10                     # all fusions
    python benchmarks/bench_fusions_easy_vqa.py --fusions attention concat --epochs 4 6 8
    python benchmarks/bench_fusions_easy_vqa.py --fusions attention --text-encoder minilm --epochs 6
    python benchmarks/bench_fusions_easy_vqa.py --schedule constant --epochs 10 --epochs-for attention=40

On a shared machine run it as ``nice -n 19`` with ``--threads 1`` (the default uses
torch's own thread count).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from mmexplain.models import FUSIONS
from mmexplain.training import SCHEDULES, train_run


def _first_reaching(history: list[dict], seconds: list[float], target: float) -> tuple[str, str]:
    for row, s in zip(history, seconds):
        if row.get("val_accuracy", 0.0) >= target:
            return str(row["epoch"]), f"{s:.1f}"
    return "-", "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fusions", nargs="+", default=[*FUSIONS, "baseline"],
                        help="fusion names or presets (default: all, plus 'baseline')")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10],
                        help="schedule lengths; each fusion trains once per value (default: 10)")
    parser.add_argument("--epochs-for", nargs="*", default=[], metavar="FUSION=N",
                        help="another schedule length for some fusions, e.g. attention=40")
    parser.add_argument("--schedule", choices=SCHEDULES, default="onecycle")
    parser.add_argument("--lr", type=float, default=5e-4, help="constant or peak learning rate")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-class-weights", action="store_true", help="plain cross-entropy (no balancing)")
    parser.add_argument("--text-encoder", choices=["gru", "lstm", "minilm"], default=None,
                        help="override each fusion's text encoder (default: the fusion's own, GRU)")
    parser.add_argument("--target", type=float, default=0.97, help="accuracy to reach (default: 0.97)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="train/test samples (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--curves", action="store_true", help="also print validation accuracy per epoch")
    parser.add_argument("--out", default=None, help="keep each run under OUT/<fusion>-<epochs>")
    args = parser.parse_args()
    try:
        epochs_for = {k: int(v) for k, v in (item.split("=", 1) for item in args.epochs_for)}
    except ValueError:
        parser.error(f"--epochs-for takes FUSION=N items; got {args.epochs_for}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"easy-VQA  schedule={args.schedule} lr={args.lr} text_encoder={args.text_encoder or 'default'} "
          f"batch_size={args.batch_size} class_weights={not args.no_class_weights} seed={args.seed} device={args.device} threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"torch={torch.__version__}")
    print(f"{'fusion':<14} {'epochs':>6} {'test_acc':>8} {'macro_f1':>8} {'val_acc':>8} {'best_ep':>7} "
          f"{'train_s':>8} {'total_s':>8} {'cpu_s':>8} {'val97_ep':>8} {'val97_s':>8}")
    rows = []
    for fusion in args.fusions:
        for epochs in [epochs_for[fusion]] if fusion in epochs_for else args.epochs:
            start, cpu = time.perf_counter(), time.process_time()
            run = train_run("easy-vqa", fusion, epochs=epochs, seed=args.seed, limit=args.limit or None,
                            device=args.device, text_encoder=args.text_encoder, lr=args.lr, batch_size=args.batch_size,
                            class_weights=not args.no_class_weights,
                            schedule=args.schedule, progress=False,
                            out=os.path.join(args.out, f"{fusion}-{epochs}") if args.out else None)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu
            m = run.metrics
            ep97, s97 = _first_reaching(m["history"], m["epoch_seconds"], args.target)
            rows.append((fusion, epochs, m["test"]["accuracy"], m["train_seconds"]))
            print(f"{fusion:<14} {epochs:>6} {m['test']['accuracy']:>8.4f} {m['test']['macro_f1']:>8.4f} "
                  f"{m['val']['accuracy']:>8.4f} {m['best_epoch']:>7} {m['train_seconds']:>8.1f} {total:>8.1f} {cpu:>8.1f} "
                  f"{ep97:>8} {s97:>8}", flush=True)
            if args.curves and m["history"] and "val_accuracy" in m["history"][0]:
                print("    val_acc by epoch: " + " ".join(f"{r['val_accuracy']:.3f}" for r in m["history"]))
    best = max(rows, key=lambda r: r[2])
    print(f"best: {best[0]} ({best[1]} epochs) test accuracy {best[2]:.4f}")
    for fusion in dict.fromkeys(r[0] for r in rows):
        hits = [r for r in rows if r[0] == fusion and r[2] >= args.target]
        if hits:
            f, e, acc, s = min(hits, key=lambda r: r[1])
            print(f"{fusion}: test >= {args.target:.2f} with the {e}-epoch schedule ({acc:.4f}, {s:.1f} s training)")
        else:
            print(f"{fusion}: no schedule tried reached test >= {args.target:.2f}")


if __name__ == "__main__":
    main()
