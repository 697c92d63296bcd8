"""A training run end to end: data -> model -> training -> test metrics -> checkpoint.

``train_run`` is what ``mmexplain train`` and the notebooks call; ``load_run`` brings a
saved run back with the exact same data splits; ``load_or_train`` lets every notebook of a
report share one trained model instead of retraining it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Splits, load_dataset, tokenizer_from_config
from ..exceptions import CheckpointError, ConfigError, DataChangedError
from ..locks import make_temp_dir, run_lock, swap_into_place
from ..models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint, write_json_atomic
from ..models.model import ModelConfig, MultimodalModel, build_model
from ..validation import check_positive_float, check_positive_int
from .trainer import (
    SCHEDULES,
    TrainConfig,
    TrainResult,
    evaluate,
    resolve_device,
    seed_everything,
    train_model,
)

METRICS = "metrics.json"

#: The model the default report explains (``mmexplain report --default``, and every notebook's
#: defaults): attention fusion with the pretrained MiniLM as text encoder (frozen, its token
#: states cached once per distinct question) reaches 0.997 on easy-VQA's test split after
#: this 10-epoch one-cycle schedule, 110-133 s of training on 2 CPU cores
#: (``benchmarks/bench_fusions_easy_vqa.py``; 0.999 on 1 and 2 threads before the image
#: encoder went channels-last; a fine-tuned MiniLM costs 24x more per epoch). Peak 2e-3 at batch 128 rather than 3e-3 at 256, for the same time:
#: validation accuracy jumps past 0.97 at epoch 7 of 10 on either thread count, while with
#: the larger rate and batch that jump came late or not at all -- test 0.992 on one thread,
#: 0.945 on two, from float rounding alone.
#: Notebooks' parameters cells and ``notebooks/default_report.yaml`` repeat these values
#: (papermill needs literals there); ``tests/test_notebooks.py`` keeps them equal.
DEFAULT_RUN: dict[str, Any] = {
    "fusion": "attention",
    "text_encoder": "minilm",
    "epochs": 10,
    "schedule": "onecycle",
    "lr": 2e-3,
    "batch_size": 128,
    # easy-VQA's answers are skewed towards yes / no; balancing the loss by class frequency
    # (the library's default, for users' imbalanced data) weakens exactly those questions:
    # with it 0.888 after a 12-epoch schedule, without it 0.968 after an 8-epoch one (lr 2e-3,
    # batch 128)
    "class_weights": False,
}


@dataclass
class Run:
    """A trained model with its data, metrics and where it lives.

    Attributes
    ----------
    model : MultimodalModel
        In eval mode, on ``device``.
    splits : Splits
    metrics : dict
        ``test`` and ``val`` metrics, ``history``, ``best_epoch``, ``train_seconds`` and
        ``schedule`` (:meth:`TrainConfig.describe_schedule`: name, peak lr, epochs, ...).
    params : dict
        The parameters that define the run (dataset, fusion, seed, ...).
    directory : Path or None
    tokenizer : the text tokenizer, or None
    checkpoint_sha256 : str or None
    """

    model: MultimodalModel
    splits: Splits
    metrics: dict[str, Any]
    params: dict[str, Any]
    directory: Path | None = None
    tokenizer: Any = None
    checkpoint_sha256: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def data_fingerprint(self) -> str:
        return "-".join(self.splits[s].fingerprint() for s in ("train", "val", "test"))


def run_params(
    dataset: str = "easy-vqa",
    fusion: str = "concat",
    *,
    epochs: int = 10,
    seed: int = 0,
    limit: int | None = None,
    text_encoder: str | None = None,
    batch_size: int = 64,
    lr: float = 5e-4,
    schedule: str = "constant",
    modality_dropout: float = 0.0,
    class_weights: bool = True,
    dataset_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical, JSON-safe parameter dict of a run (used for caching and provenance).

    Every value is checked here, before any data is read or model built.

    Raises
    ------
    ConfigError
        Naming the parameter, the value received and what is allowed.
    """
    for name, value in (("dataset", dataset), ("fusion", fusion)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string; got {value!r}.")
    if text_encoder is not None and not isinstance(text_encoder, str):
        raise ConfigError(f"text_encoder must be a string or None; got {text_encoder!r}.")
    if limit is not None:
        check_positive_int("limit", limit, minimum=0)  # 0 means all
    if dataset_options is not None and not isinstance(dataset_options, dict):
        raise ConfigError(
            f"dataset_options must be a dict of manifest options; got {type(dataset_options).__name__}."
        )
    options = json.loads(json.dumps(dataset_options or {}, default=str))  # as stored in config.json
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule={schedule!r}; expected one of {', '.join(SCHEDULES)}.")
    if isinstance(modality_dropout, bool) or not isinstance(modality_dropout, (int, float)) \
            or not 0 <= modality_dropout < 1:
        raise ConfigError(f"modality_dropout must be a number in [0, 1); got {modality_dropout!r}.")
    if not isinstance(class_weights, bool):
        raise ConfigError(f"class_weights must be True or False; got {class_weights!r}.")
    return {
        "dataset": dataset,
        "fusion": fusion,
        "epochs": check_positive_int("epochs", epochs),
        "seed": check_positive_int("seed", seed, minimum=0),
        "limit": None if limit in (None, 0) else int(limit),
        "text_encoder": text_encoder,
        "batch_size": check_positive_int("batch_size", batch_size),
        "lr": check_positive_float("lr", lr),
        "schedule": schedule,
        "modality_dropout": float(modality_dropout),
        "class_weights": class_weights,
        "dataset_options": options,
    }


def _load_splits(params: dict[str, Any], tokenizer: Any = None) -> tuple[Splits, Any]:
    model_cfg = ModelConfig.from_name(params["fusion"], text_encoder=params.get("text_encoder"))
    tok_kind = "minilm" if model_cfg.text_encoder == "minilm" else "word"
    return load_dataset(
        params["dataset"], seed=params["seed"], limit=params["limit"], text_encoder=tok_kind,
        tokenizer=tokenizer, **params.get("dataset_options", {}),
    )


def train_run(
    dataset: str = "easy-vqa",
    fusion: str = "concat",
    *,
    out: str | os.PathLike | None = None,
    epochs: int = 10,
    seed: int = 0,
    limit: int | None = None,
    device: str = "cpu",
    text_encoder: str | None = None,
    batch_size: int = 64,
    lr: float = 5e-4,
    schedule: str = "constant",
    modality_dropout: float = 0.0,
    class_weights: bool = True,
    dataset_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> Run:
    """Train one model and evaluate it on the test split.

    Parameters
    ----------
    dataset : str, default="easy-vqa"
        See :func:`mmexplain.data.load_dataset`.
    fusion : str, default="concat"
        A fusion name or preset (``mmexplain fusions``).
    out : path-like, optional
        Write ``model.safetensors``, ``config.json`` and ``metrics.json`` here. The folder
        is replaced in one rename once training succeeded; a folder that holds a run with
        other parameters (or anything else) is refused unless ``force``.
    epochs, seed, limit, device, batch_size, lr, schedule, modality_dropout, class_weights
        See :class:`TrainConfig` and :func:`~mmexplain.data.load_dataset`.
    text_encoder : {"gru", "lstm", "minilm"}, optional
        Override the fusion's default text encoder.
    dataset_options : dict, optional
        Manifest options passed to :func:`~mmexplain.data.load_dataset` (``columns``,
        ``missing``, ``image_size``, ``max_tokens``, ``labels``, ``allow_outside_paths``).
    force : bool, default=False
        Replace ``out`` even when it holds a run with other parameters.

    Returns
    -------
    Run

    Raises
    ------
    ConfigError
        A bad parameter, or ``out`` taken by another run; nothing was written.
    RunLockedError
        Another process is training into ``out`` right now.
    """
    params = run_params(dataset, fusion, epochs=epochs, seed=seed, limit=limit, text_encoder=text_encoder,
                        batch_size=batch_size, lr=lr, schedule=schedule,
                        modality_dropout=modality_dropout, class_weights=class_weights,
                        dataset_options=dataset_options)
    resolve_device(device)
    if out is None:
        return _train(params, device, progress)
    out = Path(out).absolute()
    check_out(out, params, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(out.parent, out.name):  # also clears what a killed run into ``out`` left
        run = _train(params, device, progress)
        check_out(out, params, force=force)  # written meanwhile by someone without the lock?
        tmp = make_temp_dir(out.parent, out.name)
        try:
            save_run(run, tmp)
            swap_into_place(tmp, out, out.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        run.directory = out
    return run


def check_out(out: Path, params: dict[str, Any], *, force: bool = False) -> None:
    """Refuse to train into ``out`` when it holds something other than this very run.

    Parameters
    ----------
    out : Path
        The output folder of :func:`train_run`.
    params : dict
        :func:`run_params` of the new run.
    force : bool, default=False
        Skip the check.

    Raises
    ------
    ConfigError
        ``out`` is a file, a folder of other files, or a run with other parameters (the
        message lists them).
    """
    if force or not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"out={out} exists and is not a folder.")
    config = out / "config.json"
    if not config.is_file():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise ConfigError(
                f"out={out} is a folder of other files, not a run; choose a new folder, or force to replace it."
            )
        return
    try:
        stored = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        stored = None
    old = stored.get("params") if isinstance(stored, dict) else None
    if old == params:
        return  # the same run again: retrained and replaced (seeded, so the same model)
    if isinstance(old, dict):
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {params.get(k)!r}"
                         for k in sorted(set(old) | set(params)) if old.get(k) != params.get(k))
        what = f"a run with other parameters ({diff})"
    else:
        what = f"a run whose {config.name} is unreadable"
    raise ConfigError(f"out={out} already holds {what}; choose another folder, or force to replace it.")


def _train(params: dict[str, Any], device: str, progress: bool | None) -> Run:
    seed, fusion, text_encoder = params["seed"], params["fusion"], params["text_encoder"]
    epochs, batch_size, lr = params["epochs"], params["batch_size"], params["lr"]
    schedule = params.get("schedule", "constant")
    modality_dropout = params.get("modality_dropout", 0.0)
    class_weights = params.get("class_weights", True)
    splits, tokenizer = _load_splits(params)
    seed_everything(seed)
    model_cfg = ModelConfig.from_name(fusion, text_encoder=text_encoder)
    model = build_model(model_cfg, splits.train, tokenizer)
    tcfg = TrainConfig(epochs=epochs, seed=seed, device=device, batch_size=batch_size, lr=lr, schedule=schedule,
                       modality_dropout=modality_dropout, class_weights=class_weights)
    result: TrainResult = train_model(model, splits, tcfg, progress=progress)
    metrics = {
        "test": evaluate(model, splits.test, device=device),
        "val": evaluate(model, splits.val, device=device),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 3),
        "schedule": result.schedule,
        "epoch_seconds": result.epoch_seconds,
        "device": device,
    }
    return Run(model, splits, metrics, params, tokenizer=tokenizer, history=result.history)


def save_run(run: Run, out: str | os.PathLike) -> Path:
    """Save ``run``'s checkpoint and metrics into ``out``; returns the directory."""
    out = Path(out)
    save_checkpoint(
        out,
        run.model,
        params=run.params,
        tokenizer=run.tokenizer.to_config() if run.tokenizer is not None else None,
        label_names=run.splits.test.label_names,
        task=run.splits.test.task,
        data_fingerprint=run.data_fingerprint,
    )
    run.directory = out
    run.checkpoint_sha256 = json.loads((out / "config.json").read_text())["weights_sha256"]
    # flat copy of the test metrics at the top for scripts; the rest under keys
    write_json_atomic(out / METRICS, {**run.metrics["test"], **run.metrics, "params": run.params})
    return out


def load_run(directory: str | os.PathLike, *, device: str = "cpu") -> Run:
    """Load a saved run: its model and the very same data splits (checked by fingerprint).

    Raises
    ------
    CheckpointError
        When files are missing or corrupt.
    DataChangedError
        When the data no longer match the stored fingerprint.
    """
    directory = Path(directory)
    resolve_device(device)
    ckpt = load_checkpoint(directory, device=device)
    params = ckpt.config.get("params")
    if not isinstance(params, dict) or not params:
        raise CheckpointError(f"checkpoint {directory}: config.json has no 'params'; it was not saved by train_run.")
    missing = [k for k in ("dataset", "fusion", "seed", "limit") if k not in params]
    if missing:
        raise CheckpointError(f"checkpoint {directory}: config.json's params lack {missing}; it was not saved by train_run.")
    tok_cfg = ckpt.config.get("tokenizer")
    splits, tokenizer = _load_splits(params, tokenizer_from_config(tok_cfg) if tok_cfg else None)
    run = Run(ckpt.model, splits, {}, params, directory, tokenizer, ckpt.weights_sha256)
    if run.data_fingerprint != ckpt.config.get("data_fingerprint"):
        raise DataChangedError(
            f"checkpoint {directory}: data fingerprint {run.data_fingerprint} differs from the stored "
            f"{ckpt.config.get('data_fingerprint')}; the dataset changed since training."
        )
    metrics_path = directory / METRICS
    if metrics_path.exists():
        m = json.loads(metrics_path.read_text())
        run.metrics = {k: m[k] for k in ("test", "val", "history", "best_epoch", "train_seconds", "schedule",
                                                 "epoch_seconds")
                       if k in m}
        run.history = run.metrics.get("history", [])
    return run


def run_directory(cache_dir: str | os.PathLike, **params: Any) -> Path:
    """Where :func:`load_or_train` keeps the run with these parameters.

    ``cache_dir/<fusion>-<hash>``, the hash over :func:`run_params` (``device`` is not part
    of it). Nothing is read or created.
    """
    params.pop("device", None)
    p = run_params(**params)
    # the checkpoint format is part of the key: a cache written by an older format retrains
    key = hashlib.sha256(json.dumps({**p, "format": FORMAT_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{p['fusion']}-{key}"


def is_trained(cache_dir: str | os.PathLike, **params: Any) -> bool:
    """Whether ``cache_dir`` holds a finished run with these parameters (its metrics are written
    last); a model trained on data that has changed since still counts: loading it retrains."""
    return (run_directory(cache_dir, **params) / METRICS).exists()


@contextlib.contextmanager
def _holding(directory: Path) -> Iterator[None]:
    """Hold the run folder's lock (waiting for a notebook training the same model; a killed
    holder's lock is released by the kernel) and clear what a killed training left."""
    directory.mkdir(parents=True, exist_ok=True)
    with run_lock(directory.parent, directory.name, wait=True):
        (directory / ".lock").unlink(missing_ok=True)  # where older versions locked
        for tmp in directory.glob(".*.tmp"):  # half-written files of a killed training
            tmp.unlink(missing_ok=True)
        yield


def load_or_train(cache_dir: str | os.PathLike, *, device: str = "cpu", progress: bool | None = None,
                  **params: Any) -> Run:
    """Load the run with these parameters from ``cache_dir``, training it first if needed.

    The run lives in ``cache_dir/<fusion>-<hash of the parameters>``
    (:func:`run_directory`); a file lock makes notebooks running in parallel train it once
    and share it. A cached model trained on data that has changed since is retrained in
    place.
    """
    p = run_params(**params)
    directory = run_directory(cache_dir, **p)
    with _holding(directory):
        if (directory / METRICS).exists():
            try:
                return load_run(directory, device=device)
            except DataChangedError:
                pass  # the data changed since this model was trained: train it again
        save_run(_train(p, device, progress), directory)
        return load_run(directory, device=device)


def ensure_trained(cache_dir: str | os.PathLike, *, device: str = "cpu", progress: bool | None = None,
                   **params: Any) -> Path:
    """Train the run with these parameters into ``cache_dir`` unless it is there already.

    :func:`load_or_train` without loading the result (nor checking a cached run against
    changed data, which loading does): for a process that trains models for others.

    Returns
    -------
    Path
        The run's folder (:func:`run_directory`).
    """
    p = run_params(**params)
    directory = run_directory(cache_dir, **p)
    with _holding(directory):
        if not (directory / METRICS).exists():
            save_run(_train(p, device, progress), directory)
    return directory
