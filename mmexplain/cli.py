"""``mmexplain`` command line: a thin layer over the Python API.

Exit codes: 0 success, 1 a run failed, 2 bad input (with a message naming what is wrong).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .exceptions import MMExplainError


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train_run

    run = train_run(
        args.dataset, args.fusion, out=args.out, epochs=args.epochs, seed=args.seed, limit=args.limit,
        device=args.device, text_encoder=args.text_encoder, progress=not args.quiet, lr=args.lr,
        batch_size=args.batch_size,
    )
    test = run.metrics["test"]
    keys = ("accuracy", "macro_f1", "macro_precision", "macro_recall") if "accuracy" in test else ("mse", "mae", "r2")
    summary = {k: round(test[k], 4) for k in keys}
    print(json.dumps({"out": str(args.out), "test": summary, "train_seconds": run.metrics["train_seconds"],
                      "best_epoch": run.metrics["best_epoch"]}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate, load_run

    run = load_run(args.run, device=args.device)
    metrics = evaluate(run.model, run.splits[args.split], device=args.device)
    print(json.dumps({"split": args.split, **metrics}))
    return 0


def _cmd_fusions(args: argparse.Namespace) -> int:
    from .models import FUSIONS, PRESETS

    width = max(len(n) for n in [*FUSIONS.names(), *PRESETS])
    for name in FUSIONS.names():
        print(f"{name:<{width}}  {FUSIONS.help(name)}")
    for name, preset in PRESETS.items():
        desc = ", ".join(f"{k}={v}" for k, v in preset.items())
        print(f"{name:<{width}}  preset: {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmexplain",
        description="Train multimodal fusion models and explain them per modality and per fusion level.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a fusion model; writes model.safetensors, config.json, metrics.json")
    p.add_argument("--dataset", default="easy-vqa",
                   help="easy-vqa, synthetic:<mode>[:regression], or a .csv/.parquet manifest (default: easy-vqa)")
    p.add_argument("--fusion", default="concat", help="fusion strategy or preset; see `mmexplain fusions`")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="at most N train / test samples (quick runs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (default: 5e-4)")
    p.add_argument("--batch-size", type=int, default=64, help="default: 64")
    p.add_argument("--text-encoder", choices=["gru", "lstm", "minilm"], default=None,
                   help="encoder for text; minilm = the pretrained all-MiniLM-L6-v2 transformer")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained run on a split")
    p.add_argument("--run", required=True, help="directory written by `mmexplain train`")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("fusions", help="list fusion strategies and presets")
    p.set_defaults(func=_cmd_fusions)

    try:
        from .report.cli import add_report_subparser
    except ImportError:  # pragma: no cover - the report extra is part of the package
        pass
    else:
        add_report_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MMExplainError as e:
        print(f"mmexplain {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
