"""``mmexplain`` command line: a thin layer over the Python API.

Exit codes: 0 success, 1 a run failed, 2 bad input (with a message naming what is wrong).
Every error is one line; ``--debug`` (before or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .exceptions import ConfigError, DataError, MMExplainError
from .training.trainer import SCHEDULES

__all__ = ["add_dataset_option_arguments", "build_parser", "dataset_options", "main"]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line naming the argument."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------- value types


def _int_at_least(minimum: int, note: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}{note}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}{note}; got {value}")
        return value

    return parse


def _float_where(ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse type: a float for which ``ok`` holds, else a message saying ``what``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
        return value

    return parse


_positive_float = _float_where(lambda v: v > 0 and math.isfinite(v), "a finite number > 0")
_fraction = _float_where(lambda v: 0 <= v < 1, "a number in [0, 1)")


def _device(text: str) -> str:
    head, _, index = text.partition(":")
    if head not in ("cpu", "cuda") or (index and (head == "cpu" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"use cpu, cuda or cuda:N; got {text!r}")
    return text


def _json_text(text: str) -> str:
    # Checked here so that the message names the flag; the data layer parses the text.
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg} at character {err.pos}): {text!r}") from None
    return text


# ------------------------------------------------------------------------ manifest options

#: CLI flag -> key of ``dataset_options`` (what :func:`mmexplain.data.load_dataset` takes).
_DATASET_FLAGS = {
    "columns": "--columns",
    "missing": "--missing",
    "image_size": "--image-size",
    "max_tokens": "--max-tokens",
    "labels": "--labels",
    "allow_outside_paths": "--allow-outside-paths",
}


def add_dataset_option_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the manifest options (``--columns`` ... ``--allow-outside-paths``) to ``parser``."""
    group = parser.add_argument_group("manifest options (a .csv/.parquet --dataset only)")
    group.add_argument("--columns", type=_json_text, metavar="JSON",
                       help='column mapping, e.g. \'{"image": "path", "text": "question", '
                            '"tabular": ["age", "bmi"], "target": "label"}\'')
    group.add_argument("--missing", metavar="POLICY", help="error (default), impute-mean or drop")
    group.add_argument("--image-size", metavar="N[,M]", help="image height[,width] (default 64)")
    group.add_argument("--max-tokens", metavar="N", help="texts are cut to N tokens")
    group.add_argument("--labels", metavar="A,B,...", help="allowed labels, in index order")
    group.add_argument("--allow-outside-paths", action="store_true", default=None,
                       help="allow image paths outside the manifest's folder")


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest options given on the command line, raw (the data layer checks them)."""
    return {key: getattr(args, key) for key in _DATASET_FLAGS if getattr(args, key, None) is not None}


# -------------------------------------------------------------------------------- commands


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train_run

    run = train_run(
        args.dataset, args.fusion, out=args.out, epochs=args.epochs, seed=args.seed, limit=args.limit or None,
        device=args.device, text_encoder=args.text_encoder, progress=not args.quiet, lr=args.lr,
        batch_size=args.batch_size, schedule=args.schedule, modality_dropout=args.modality_dropout,
        class_weights=args.class_weights,
        dataset_options=dataset_options(args), force=args.force,
    )
    test = run.metrics["test"]
    keys = ("accuracy", "macro_f1", "macro_precision", "macro_recall") if "accuracy" in test else ("mse", "mae", "r2")
    summary = {k: round(test[k], 4) for k in keys}
    print(json.dumps({"out": str(args.out), "test": summary, "train_seconds": run.metrics["train_seconds"],
                      "best_epoch": run.metrics["best_epoch"]}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate, load_run

    if not os.path.isdir(args.run):
        raise ConfigError(f"--run {args.run}: no such folder; give a folder written by `mmexplain train`.")
    run = load_run(args.run, device=args.device)
    metrics = evaluate(run.model, run.splits[args.split], device=args.device)
    print(json.dumps({"split": args.split, **metrics}))
    return 0


def _methods(text: str) -> list[str]:
    from .attribution import METHODS

    names = [m.strip() for m in text.split(",")]
    bad = [m for m in names if m not in METHODS]
    if bad or not all(names):
        raise argparse.ArgumentTypeError(
            f"unknown method {bad[0] if bad else ''!r}; known: {', '.join(sorted(METHODS.names()))}")
    return names


def _cmd_audit(args: argparse.Namespace) -> int:
    from .auditing import audit_run, make_engine

    if not os.path.isdir(args.run):
        raise ConfigError(f"--run {args.run}: no such folder; give a folder written by `mmexplain train`.")
    if not args.out.endswith(".parquet"):
        raise ConfigError(f"--out {args.out}: give a file name ending in .parquet.")
    # flag -> engine option; the engine's factory says which it takes
    options = {key: getattr(args, key) for key in ("address", "workers") if getattr(args, key) is not None}
    try:
        make_engine(args.engine, options)
    except ConfigError as err:
        given = " ".join(f"--{key} {value}" for key, value in options.items())
        raise ConfigError(f"{given}: {err}" if options else str(err)) from None
    result = audit_run(
        args.run, args.out, split=args.split, limit=args.limit or None, methods=args.methods,
        batch_size=args.batch_size, engine=args.engine, engine_options=options, force=args.force,
        on_chunk=None if args.quiet else lambda c: print(f"chunk {c.number}: decisions {c.start}..{c.stop - 1}",
                                                           file=sys.stderr),
    )
    print(json.dumps({"out": str(result.path), "rows": result.n_rows, "chunks_computed": result.chunks_computed,
                      "chunks_reused": result.chunks_reused}))
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
    """The ``mmexplain`` parser with every subcommand."""
    parser = _Parser(
        prog="mmexplain",
        description="Train multimodal fusion models and explain them per modality and per fusion level.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of unexpected errors")

    p = sub.add_parser("train", parents=[debug],
                       help="train a fusion model; writes model.safetensors, config.json, metrics.json")
    p.add_argument("--dataset", default="easy-vqa",
                   help="easy-vqa, synthetic:<mode>[:regression], or a .csv/.parquet manifest (default: easy-vqa)")
    p.add_argument("--fusion", default="concat", help="fusion strategy or preset; see `mmexplain fusions`")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="replace --out even if it holds another run")
    p.add_argument("--epochs", type=_int_at_least(1), default=10)
    p.add_argument("--seed", type=_int_at_least(0), default=0)
    p.add_argument("--limit", type=_int_at_least(0, " (0: all)"), default=None,
                   help="at most N train / test samples (quick runs)")
    p.add_argument("--device", type=_device, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--lr", type=_positive_float, default=5e-4, help="AdamW learning rate (default: 5e-4)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=64, help="default: 64")
    p.add_argument("--schedule", choices=SCHEDULES, default="constant",
                   help="learning-rate schedule: onecycle, cosine or constant (default: constant)")
    p.add_argument("--modality-dropout", type=_fraction, default=0.0, metavar="P",
                   help="train with each modality at the model's reference with probability P (default: 0)")
    p.add_argument("--no-class-weights", dest="class_weights", action="store_false",
                   help="plain cross-entropy (default: weighted by inverse class frequency)")
    p.add_argument("--text-encoder", choices=["gru", "lstm", "minilm"], default=None,
                   help="encoder for text; minilm = the pretrained all-MiniLM-L6-v2 transformer")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataset_option_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", parents=[debug], help="evaluate a trained run on a split")
    p.add_argument("--run", required=True, help="directory written by `mmexplain train`")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--device", type=_device, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.set_defaults(func=_cmd_evaluate)

    from .audit import AUDIT_METHODS
    from .auditing import AUDIT_ENGINES

    p = sub.add_parser("audit", parents=[debug],
                       help="audit every decision of a split into one Parquet file, in resumable chunks")
    p.add_argument("--run", required=True, help="directory written by `mmexplain train`")
    p.add_argument("--out", required=True, metavar="FILE.parquet",
                   help="output file; <FILE>.parquet.parts/ holds finished chunks until it is done")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--limit", type=_int_at_least(0, " (0: all)"), default=None,
                   help="audit the first N decisions of the split (default: all)")
    p.add_argument("--methods", type=_methods, default=list(AUDIT_METHODS), metavar="M1,M2,...",
                   help=f"attribution methods (default: {','.join(AUDIT_METHODS)})")
    p.add_argument("--batch-size", type=_int_at_least(1), default=64,
                   help="decisions per chunk: the unit of writing and resuming (default: 64)")
    p.add_argument("--engine", choices=AUDIT_ENGINES.names(), default="local",
                   help="where chunks are computed (default: local)")
    p.add_argument("--workers", type=_int_at_least(1), default=None, metavar="N",
                   help="--engine ray: workers, one CPU and one torch thread each (default: every CPU)")
    p.add_argument("--address", default=None,
                   help="--engine ray: the cluster to join (`ray start --head` prints it; default: "
                        "a local cluster for this audit)")
    p.add_argument("--force", action="store_true", help="replace a finished --out, or start a partial one over")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("fusions", parents=[debug], help="list fusion strategies and presets")
    p.set_defaults(func=_cmd_fusions)

    try:
        from .report.cli import add_report_subparser
    except ImportError:  # pragma: no cover - the report extra is part of the package
        pass
    else:
        add_report_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mmexplain`` / ``python -m mmexplain``; returns the exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # a usage error (already printed, one line) or --help
        return exit_.code if isinstance(exit_.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prefix = f"mmexplain {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataError) as e:  # bad input: the message names the culprit
        print(f"{prefix} {e}", file=sys.stderr)
        return 2
    except MMExplainError as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return 2 if args.command in ("train", "evaluate", "audit") else 1
    except KeyboardInterrupt:
        print(f"{prefix} interrupted.", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an OS error: one line unless --debug
        if args.debug:
            raise
        print(f"{prefix} {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
