"""One call that sets up a report notebook, and the names every notebook uses.

A notebook's setup cell is two lines::

    from mmexplain.notebook import A, HTML, Markdown, display, html, pd, record, setup, viz
    run = setup(globals())

:func:`setup` reads the run parameters from the notebook's parameters cell (its
``globals()``), opens the trained model for them or trains it
(:func:`mmexplain.training.load_or_train`), makes plotly figures render offline, seeds torch,
records provenance in ``results_path`` and shows the model header (fusion, text encoder,
dataset, test accuracy, training schedule, data fingerprint). Relative ``model_cache`` and
manifest paths resolve against the project root (:mod:`mmexplain.paths`), so a notebook opened
in JupyterLab (working directory ``notebooks/``) reuses the model ``mmexplain report
--default`` trained.

The other names are the notebooks' toolkit: ``A`` (:mod:`mmexplain.analysis`), ``viz``,
``record``, IPython's ``display`` / ``HTML`` / ``Markdown``, ``html`` (to escape text shown as
markdown), ``pd`` (pandas) and :func:`load_or_train` (path-resolving, for extra models).
"""

from __future__ import annotations

import os

# before anything imports huggingface_hub, which reads it once: models load from pip packages
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from IPython.display import HTML, Markdown, display

from . import analysis as A
from . import training as _training
from . import viz
from .exceptions import ConfigError
from .paths import resolve_dataset, resolve_path
from .report.results import record

__all__ = [
    "HTML",
    "RUN_PARAMETERS",
    "A",
    "Markdown",
    "display",
    "html",
    "load_or_train",
    "model_header",
    "pd",
    "record",
    "run_arguments",
    "setup",
    "training_arguments",
    "viz",
]

#: Parameters-cell names :func:`setup` passes on to :func:`load_or_train` when present.
RUN_PARAMETERS = (
    "dataset", "fusion", "epochs", "seed", "limit", "text_encoder", "dataset_options",
    "schedule", "lr", "batch_size", "modality_dropout", "class_weights",
    "device",
)
_OTHER = ("model_cache", "results_path")
# the parameters cells' spellings of "the default" (``limit = 0`` means all samples)
_EMPTY: dict[str, tuple[Any, ...]] = {
    "limit": (0, None), "text_encoder": ("", None), "schedule": ("", None), "lr": ("", None),
    "batch_size": ("", None), "modality_dropout": ("", None),
}


def load_or_train(model_cache: str | os.PathLike[str], **params: Any) -> _training.Run:
    """:func:`mmexplain.training.load_or_train` with relative paths resolved.

    Parameters
    ----------
    model_cache : str or PathLike
        Folder of shared trained models; relative to the project root when relative
        (:func:`mmexplain.paths.resolve_path`).
    **params
        As :func:`mmexplain.training.load_or_train`; a relative manifest path in ``dataset``
        is resolved the same way.

    Returns
    -------
    Run
    """
    if "dataset" in params:
        params["dataset"] = resolve_dataset(params["dataset"])
    return _training.load_or_train(resolve_path(model_cache), **params)


def run_arguments(namespace: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments :func:`setup` uses: parameters-cell values, then ``overrides``.

    Empty values keep :func:`~mmexplain.training.run_params`' defaults, as the notebooks'
    comments say: ``limit = 0`` (all samples), ``text_encoder = ""`` (the default encoder),
    and ``schedule`` / ``lr`` / ``batch_size`` set to ``""`` or None.

    Parameters
    ----------
    namespace : mapping, optional
        The notebook's ``globals()``; only the names in :data:`RUN_PARAMETERS`,
        ``model_cache`` and ``results_path`` are read.
    **overrides
        The same names, winning over ``namespace``.

    Returns
    -------
    dict
        ``model_cache`` (required), ``results_path`` (default ``""``) and the run
        parameters that were given.

    Raises
    ------
    ConfigError
        ``namespace`` is not a mapping, an override has an unknown name, or ``model_cache``
        is missing.
    """
    if namespace is not None and not isinstance(namespace, Mapping):
        raise ConfigError(
            f"namespace must be a mapping such as the notebook's globals(); got {type(namespace).__name__}."
        )
    unknown = sorted(set(overrides) - set(RUN_PARAMETERS) - set(_OTHER))
    if unknown:
        raise ConfigError(
            f"setup() got unknown parameter {unknown[0]!r}; known: {', '.join(RUN_PARAMETERS + _OTHER)}."
        )
    given = {k: v for k, v in (namespace or {}).items() if k in RUN_PARAMETERS + _OTHER}
    given.update(overrides)
    if not given.get("model_cache"):
        raise ConfigError(
            "model_cache is missing: set model_cache in the parameters cell or pass setup(model_cache=...)."
        )
    args = {k: v for k, v in given.items() if not (k in _EMPTY and v in _EMPTY[k])}
    args.setdefault("results_path", "")
    return args


def training_arguments(
    namespace: Mapping[str, Any] | None = None, /, *, start: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> tuple[Path, dict[str, Any]]:
    """Where :func:`setup` opens its model, and the arguments it trains it with.

    Parameters
    ----------
    namespace, **overrides
        As :func:`run_arguments`.
    start : str or PathLike, optional
        The kernel's working directory, from which relative paths resolve
        (:mod:`mmexplain.paths`). Default: the current one.

    Returns
    -------
    model_cache : Path
        Absolute.
    params : dict
        Keyword arguments of :func:`mmexplain.training.load_or_train` (the run parameters and
        ``device``), a relative manifest path in ``dataset`` made absolute.
    """
    args = run_arguments(namespace, **overrides)
    model_cache = resolve_path(args.pop("model_cache"), start=start)
    args.pop("results_path")
    if "dataset" in args:
        args["dataset"] = resolve_dataset(args["dataset"], start=start)
    return model_cache, args


def _schedule_text(schedule: Mapping[str, Any] | None) -> str:
    if not schedule:
        return "not recorded (trained before schedules were recorded)"
    named = {"lr": "lr", "epochs": "epochs", "batch_size": "batch size",
             "weight_decay": "weight decay", "warmup": "warm-up"}
    parts = [str(schedule.get("name", "?"))]
    parts += [f"{label} {schedule[k]:g}" if isinstance(schedule[k], float) else f"{label} {schedule[k]}"
              for k, label in named.items() if k in schedule]
    parts += [f"{k} {v}" for k, v in schedule.items() if k not in named and k != "name"]
    return ", ".join(parts)


def _score(test: Mapping[str, Any]) -> tuple[str, str]:
    for key, label in (("accuracy", "Test accuracy"), ("r2", "Test R²"), ("mse", "Test MSE")):
        value = test.get(key)
        if isinstance(value, (int, float)):
            return label, f"{value:.3f}"
    return "Test accuracy", "not recorded"


def _rows(run: _training.Run, dataset: str | None) -> list[tuple[str, str]]:
    tokens = [s for s in run.model.modality_specs if s.kind_info.integer_ids]
    encoder = run.model.config.text_encoder if tokens else "none (no text modality)"
    score = _score(run.metrics.get("test") or {})
    return [
        ("Fusion", run.model.config.fusion),
        ("Text encoder", encoder),
        ("Dataset", dataset if dataset is not None else str(run.params.get("dataset", "?"))),
        score,
        ("Training schedule", _schedule_text(run.metrics.get("schedule"))),
        ("Data fingerprint", run.data_fingerprint),
    ]


def model_header(run: _training.Run, *, dataset: str | None = None) -> dict[str, str]:
    """The model header a notebook shows first, as a mime bundle for ``display(raw=True)``.

    Parameters
    ----------
    run : Run
        The trained run.
    dataset : str, optional
        The dataset as the notebook names it; default ``run.params["dataset"]``.

    Returns
    -------
    dict
        ``{"text/html": ..., "text/plain": ...}``: fusion, text encoder, dataset, the test
        score (accuracy, or R² / MSE for regression), the training schedule (name, peak lr,
        epochs, batch size...; "not recorded" for runs trained before schedules were
        recorded) and the data fingerprint. Every value is HTML-escaped.
    """
    rows = _rows(run, dataset)
    cells = "".join(
        f'<tr><th style="text-align: left; padding-right: 12px;">{html.escape(k)}</th>'
        f"<td><code>{html.escape(v)}</code></td></tr>"
        for k, v in rows
    )
    page = (
        '<div class="mmx-model" style="border: 1px solid #ccc; border-radius: 4px; '
        'padding: 6px 12px; margin: 4px 0 12px 0;"><strong>Model</strong>'
        f"<table>{cells}</table></div>"
    )
    text = "Model\n" + "\n".join(f"  {k}: {v}" for k, v in rows)
    return {"text/html": page, "text/plain": text}


def setup(namespace: Mapping[str, Any] | None = None, /, **overrides: Any) -> _training.Run:
    """Set up a report notebook and return its trained run.

    In order: plotly renders offline (:func:`mmexplain.viz.setup_notebook`), torch is seeded
    with ``seed``, the run for these parameters is opened from ``model_cache`` or trained
    there (:func:`load_or_train`, no progress bar), its data fingerprint, checkpoint hash,
    data provenance, dataset and fusion are recorded in ``results_path``, and the model
    header (:func:`model_header`) is displayed.

    Parameters
    ----------
    namespace : mapping, optional
        The notebook's ``globals()``: the values of its parameters cell. Read: ``dataset``,
        ``fusion``, ``epochs``, ``seed``, ``limit`` (0: all samples), ``text_encoder`` (``""``:
        the default), ``dataset_options``, ``schedule``, ``lr``, ``batch_size`` (when a
        parameters cell has them), ``device``, ``model_cache`` (required) and
        ``results_path`` (``""``: record nothing). Missing run parameters take
        :func:`~mmexplain.training.run_params`' defaults.
    **overrides
        The same names as keywords, winning over ``namespace`` (``setup(model_cache=...,
        dataset="synthetic:additive")`` works without a namespace).

    Returns
    -------
    Run
        The trained model with its data splits and metrics.

    Raises
    ------
    ConfigError
        A bad or missing parameter, named.
    """
    results_path = run_arguments(namespace, **overrides)["results_path"]
    model_cache, args = training_arguments(namespace, **overrides)
    viz.setup_notebook()
    torch.manual_seed(args.get("seed", 0))
    run = _training.load_or_train(model_cache, progress=False, **args)
    dataset = args.get("dataset", run.params["dataset"])
    record(results_path, data_fingerprint=run.data_fingerprint, checkpoint_hash=run.checkpoint_sha256,
           data_provenance=A.data_provenance(run), dataset=dataset, fusion=run.params["fusion"])
    display(model_header(run, dataset=dataset), raw=True)
    return run
