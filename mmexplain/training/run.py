"""A training run end to end: data -> model -> training -> test metrics -> checkpoint.

``train_run`` is what ``mmexplain train`` and the notebooks call; ``load_run`` brings a
saved run back with the exact same data splits; ``load_or_train`` lets every notebook of a
report share one trained model instead of retraining it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Splits, load_dataset, tokenizer_from_config
from ..exceptions import CheckpointError, ConfigError
from ..models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint, write_json_atomic
from ..models.model import ModelConfig, MultimodalModel, build_model
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
    dataset_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical, JSON-safe parameter dict of a run (used for caching and provenance)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule={schedule!r}; expected one of {', '.join(SCHEDULES)}.")
    return {
        "dataset": dataset,
        "fusion": fusion,
        "epochs": int(epochs),
        "seed": int(seed),
        "limit": None if limit in (None, 0) else int(limit),
        "text_encoder": text_encoder,
        "batch_size": int(batch_size),
        "lr": float(lr),
        "schedule": schedule,
        "dataset_options": dict(dataset_options or {}),
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
    dataset_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Run:
    """Train one model and evaluate it on the test split.

    Parameters
    ----------
    dataset : str, default="easy-vqa"
        See :func:`mmexplain.data.load_dataset`.
    fusion : str, default="concat"
        A fusion name or preset (``mmexplain fusions``).
    out : path-like, optional
        Write ``model.safetensors``, ``config.json`` and ``metrics.json`` here.
    epochs, seed, limit, device, batch_size, lr, schedule
        See :class:`TrainConfig` and :func:`~mmexplain.data.load_dataset`.
    text_encoder : {"gru", "lstm", "minilm"}, optional
        Override the fusion's default text encoder.

    Returns
    -------
    Run
    """
    params = run_params(dataset, fusion, epochs=epochs, seed=seed, limit=limit, text_encoder=text_encoder,
                        batch_size=batch_size, lr=lr, schedule=schedule, dataset_options=dataset_options)
    resolve_device(device)
    splits, tokenizer = _load_splits(params)
    seed_everything(seed)
    model_cfg = ModelConfig.from_name(fusion, text_encoder=text_encoder)
    model = build_model(model_cfg, splits.train, tokenizer)
    tcfg = TrainConfig(epochs=epochs, seed=seed, device=device, batch_size=batch_size, lr=lr, schedule=schedule)
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
    run = Run(model, splits, metrics, params, tokenizer=tokenizer, history=result.history)
    if out is not None:
        save_run(run, out)
    return run


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
        When files are missing or the data no longer match the stored fingerprint.
    """
    directory = Path(directory)
    ckpt = load_checkpoint(directory, device=device)
    params = ckpt.config.get("params")
    if not params:
        raise CheckpointError(f"checkpoint {directory}: config.json has no 'params'; it was not saved by train_run.")
    tok_cfg = ckpt.config.get("tokenizer")
    splits, tokenizer = _load_splits(params, tokenizer_from_config(tok_cfg) if tok_cfg else None)
    run = Run(ckpt.model, splits, {}, params, directory, tokenizer, ckpt.weights_sha256)
    if run.data_fingerprint != ckpt.config.get("data_fingerprint"):
        raise CheckpointError(
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


def load_or_train(cache_dir: str | os.PathLike, *, device: str = "cpu", progress: bool | None = None,
                  **params: Any) -> Run:
    """Load the run with these parameters from ``cache_dir``, training it first if needed.

    The run lives in ``cache_dir/<fusion>-<hash of the parameters>``; a file lock makes
    notebooks running in parallel train it once and share it.
    """
    p = run_params(**params)
    # the checkpoint format is part of the key: a cache written by an older format retrains
    key = hashlib.sha256(json.dumps({**p, "format": FORMAT_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    directory = Path(cache_dir) / f"{p['fusion']}-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / METRICS).exists():
            train_run(**{k: v for k, v in p.items()}, out=directory, device=device, progress=progress)
    return load_run(directory, device=device)
