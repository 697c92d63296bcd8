"""``mmexplain report``: run notebooks (one, or a YAML grid) into HTML/ipynb/JSON reports.

A thin layer over :func:`mmexplain.report.batch.run_batch` and
:mod:`mmexplain.report.grid`. Exit codes: 0 every run ok (or already complete), 1 some
run failed, 2 bad input (nothing ran). Errors are one line; ``--debug`` adds the traceback.

Usage::

    mmexplain report NOTEBOOK [-p NAME VALUE]... [--out DIR] [--force] [--device DEV]
    mmexplain report --grid GRID.yaml [-p NAME VALUE]... [--out DIR] [--jobs N] [--force]
                     [--engine ray [--address ADDR]]

Pages share one ``plotly-<version>.min.js`` in ``--out`` (``--self-contained``: each page
embeds it). Progress goes to stderr (``--no-progress``: none).

Manifest options go in the notebooks' ``dataset_options`` parameter:
``-p dataset_options '{missing: impute-mean, image_size: 64}'``.

``-p`` values are parsed as YAML (``2`` is an int, ``[1, 2]`` a list, ``null`` None),
except for parameters whose notebook default is a string, which get the text as written.
Also runnable as ``python -m mmexplain.report.cli``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli import _device, _Parser
from ..exceptions import ConfigError, DataError, MMExplainError

_DESCRIPTION = (
    "Run a notebook, or a YAML grid of notebook runs, into HTML/ipynb/JSON reports under "
    "--out (plus index.html). Exit status: 0 all ok, 1 some run failed, 2 bad input."
)

__all__ = ["add_report_arguments", "add_report_subparser", "main", "main_report", "parse_value"]


def parse_value(raw: str, expected: type | None = None) -> Any:
    """Parse a command-line parameter value.

    Parameters
    ----------
    raw : str
        The text after ``-p NAME``.
    expected : type, optional
        The notebook default's type; ``str`` keeps the text verbatim (so ``-p name no``
        stays ``"no"`` rather than YAML's False).

    Returns
    -------
    Any
        YAML-parsed value; strings that read as numbers (``1e-3``) become floats.
    """
    if expected is str:
        return raw
    import yaml
    from papermill.iorw import NoDatesSafeLoader

    try:
        value = yaml.load(raw, Loader=NoDatesSafeLoader)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                continue
    return value


#: The grid the README's main command runs (``mmexplain report --default``).
DEFAULT_GRID = "notebooks/default_report.yaml"


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` options to ``parser`` (used by the subcommand and ``-m``)."""
    parser.add_argument("notebook", nargs="?", metavar="NOTEBOOK", help="notebook to run")
    parser.add_argument(
        "--grid", metavar="FILE.yaml", help="YAML grid of runs (instead of NOTEBOOK)"
    )
    parser.add_argument(
        "--default",
        action="store_true",
        help=f"the default report: the grid {DEFAULT_GRID} (run from the repository root)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a notebook parameter (repeatable; VALUE parsed as YAML)",
    )
    parser.add_argument(
        "--out", default="reports", metavar="DIR", help="output folder (default: reports/)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="runs in parallel (default 1)"
    )
    parser.add_argument(
        "--engine",
        default="local",
        metavar="NAME",
        help="where the runs execute: local (default; --jobs threads here) or ray (one Ray "
        "task per run, --jobs at a time)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="--engine ray: the cluster to join (`ray start --head` prints it; default: a "
        "local cluster for this batch)",
    )
    parser.add_argument(
        "--force", action="store_true", help="re-run runs that are already complete"
    )
    parser.add_argument(
        "--device", type=_device, help="set the 'device' parameter of notebooks that have one"
    )
    parser.add_argument(
        "--run-id", help="run id (single NOTEBOOK only; default from its parameters)"
    )
    parser.add_argument(
        "--kernel", dest="kernel_name", help="kernel name (default: the notebook's)"
    )
    parser.add_argument("--timeout", type=float, help="per-cell timeout in seconds")
    parser.add_argument(
        "--self-contained",
        action="store_true",
        help="embed plotly.js in every HTML page (+4.6 MB each) instead of one shared "
        "plotly-<version>.min.js in --out",
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress on stderr (default: a line per run; bars on a terminal)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps ``mmexplain --debug report ...``
        help="show the full traceback of an unexpected error",
    )
    return parser


def add_report_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an argparse ``subparsers`` object.

    The subparser's ``func`` default is :func:`main_report`.

    Parameters
    ----------
    subparsers
        The object returned by ``ArgumentParser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = subparsers.add_parser(
        "report",
        help="run notebooks into HTML/ipynb/JSON reports",
        description=_DESCRIPTION,
    )
    add_report_arguments(parser)
    parser.set_defaults(func=main_report)
    return parser


def _coerce(raw: dict[str, str], declared: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, text in raw.items():
        param = declared.get(name)
        out[name] = parse_value(text, param.type if param is not None else None)
    return out


def _check_data_options(params: dict[str, Any], declared: dict[str, Any]) -> None:
    """A bad ``dataset_options`` stops the whole report before any run, naming the option."""
    if "dataset_options" not in declared:
        return
    def value(name: str) -> Any:
        return params[name] if name in params else getattr(declared.get(name), "default", None)

    dataset, options = value("dataset"), value("dataset_options")
    if isinstance(dataset, str) and options:
        from ..data import check_dataset_options

        check_dataset_options(dataset, options)


def _build_specs(args: argparse.Namespace) -> list[Any]:
    from .grid import expand_grid, load_grid
    from .inspection import inspect_parameters
    from .records import RunSpec

    raw = {name: value for name, value in args.parameter}
    if getattr(args, "default", False):
        if args.grid or args.notebook:
            raise ConfigError("--default runs its own grid; drop NOTEBOOK / --grid.")
        if not Path(DEFAULT_GRID).exists():
            raise ConfigError(f"--default needs {DEFAULT_GRID}: run it from the repository root.")
        args.grid = DEFAULT_GRID
        # every notebook of the report shares one trained model under the output folder
        raw.setdefault("model_cache", str((Path(args.out) / "models").absolute()))
    if isinstance(args.jobs, bool) or args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1; got {args.jobs}.")
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise ConfigError(f"--timeout must be a positive number of seconds; got {args.timeout}.")
    if bool(args.grid) == bool(args.notebook):
        raise ConfigError("give either NOTEBOOK or --grid FILE.yaml (exactly one).")

    if args.notebook:
        declared = inspect_parameters(args.notebook)
        params = _coerce(raw, declared)
        if args.device is not None:
            if "device" not in declared:
                raise ConfigError(f"--device: {args.notebook} has no 'device' parameter.")
            params["device"] = args.device
        _check_data_options(params, declared)
        return [RunSpec(args.notebook, params, args.run_id, args.kernel_name, args.timeout)]

    if args.run_id:
        raise ConfigError("--run-id applies to a single NOTEBOOK, not to --grid.")
    config = load_grid(args.grid)
    overrides = {name: parse_value(text) for name, text in raw.items()}
    specs = expand_grid(
        config, overrides=overrides, kernel_name=args.kernel_name, timeout=args.timeout
    )
    fixed = []
    with_device = 0
    for spec in specs:
        declared = inspect_parameters(spec.notebook)
        params = {**spec.parameters, **_coerce(raw, declared)}
        if args.device is not None and "device" in declared:
            params["device"] = args.device
            with_device += 1
        _check_data_options(params, declared)
        fixed.append(dataclasses.replace(spec, parameters=params))
    if args.device is not None and not with_device:
        raise ConfigError(f"--device: no notebook in {args.grid} has a 'device' parameter.")
    return fixed


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--address`` as the engine's option; the engine's factory says whether it takes it."""
    from .engines import make_batch_engine

    options = {"address": args.address} if args.address is not None else {}
    try:
        make_batch_engine(args.engine, options)
    except ConfigError as err:
        raise ConfigError(f"--address {args.address}: {err}" if options else f"--engine: {err}") from None
    return options


def main_report(args: argparse.Namespace) -> int:
    """Run the ``report`` command for parsed ``args``; return the exit code (0, 1 or 2)."""
    from .._imports import import_jsonschema_without_iri_parser

    import_jsonschema_without_iri_parser()  # before papermill imports nbformat
    from .batch import run_batch

    try:
        specs = _build_specs(args)
        records = run_batch(
            specs,
            args.out,
            jobs=args.jobs,
            force=args.force,
            progress=args.progress,
            self_contained=args.self_contained,
            engine=args.engine,
            engine_options=_engine_options(args),
        )
    except (ConfigError, DataError) as err:
        print(f"mmexplain report: error: {err}", file=sys.stderr)
        return 2
    except MMExplainError as err:
        print(f"mmexplain report: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug or an OS error: one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(
            f"mmexplain report: error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    for rec in records:
        if rec.ok:
            state = "skipped (complete)" if rec.skipped else "ok"
            print(f"{state:<19} {rec.run_id}  {rec.html_path or ''}")
        else:
            err = rec.error or {}
            partial = f"  partial notebook: {rec.ipynb_path}" if rec.ipynb_path else ""
            kept = f"  earlier ok report kept: {rec.kept['html']}" if "html" in rec.kept else ""
            print(
                f"{'FAILED':<19} {rec.run_id}  {err.get('ename')}: {err.get('evalue')}"
                f"{partial}{kept}"
            )
    index = Path(args.out) / "index.html"
    n_failed = sum(not r.ok for r in records)
    print(f"{len(records) - n_failed}/{len(records)} ok; index: {index}")
    return 1 if n_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mmexplain.report.cli [report] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        argv = argv[1:]
    parser = add_report_arguments(
        _Parser(prog="python -m mmexplain.report.cli", description=_DESCRIPTION)
    )
    return main_report(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
