"""Deterministic training with AdamW, class weights and early stopping on validation."""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from tqdm import tqdm

from ..data.base import MultimodalDataset, Splits
from ..exceptions import ConfigError
from ..models.model import MultimodalModel
from .metrics import classification_metrics, regression_metrics


class TrainConfig(BaseModel):
    """Optimisation settings.

    Parameters
    ----------
    epochs : int, default=10
        Upper bound; early stopping usually ends sooner.
    batch_size : int, default=64
    lr : float, default=5e-4
        AdamW learning rate.
    weight_decay : float, default=1e-4
    patience : int, default=4
        Epochs without validation improvement before stopping.
    class_weights : bool, default=True
        Weight the loss by inverse class frequency (scikit-learn's "balanced").
    seed : int, default=0
    device : str, default="cpu"
        ``cpu`` or ``cuda`` (``cuda:N``).
    """

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(4, ge=1)
    class_weights: bool = True
    seed: int = 0
    device: str = "cpu"


@dataclass
class TrainResult:
    """What training produced: per-epoch history, best epoch and wall time (seconds)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run repeats exactly on the same device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a clear error when CUDA is asked for but absent."""
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"device={device!r}; use 'cpu', 'cuda' or 'cuda:N'.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available here; use device='cpu'.")
    return torch.device(device)


class _FeatureCache:
    """Per-batch encoder outputs, each distinct stored row encoded once; with
    ``frozen=True`` also the outputs of frozen pretrained backbones over the whole store,
    computed once up front (worth it across epochs, not to predict a few samples)."""

    def __init__(
        self, model: MultimodalModel, data: MultimodalDataset, device: torch.device, *, frozen: bool = True
    ) -> None:
        self.hidden: dict[str, torch.Tensor] = {}
        for m in model.modalities if frozen else []:
            enc = model.encoders[m]
            if getattr(enc, "frozen_backbone", False):
                store = data.stores[m].to(device)
                with torch.no_grad():
                    self.hidden[m] = torch.cat([enc.backbone(store[i : i + 256]) for i in range(0, len(store), 256)])

    def features(self, model: MultimodalModel, data: MultimodalDataset, idx: torch.Tensor, device: torch.device) -> dict:
        seq = model.fusion.needs_sequences
        out = {}
        for m in model.modalities:
            rows = data.rows[m][idx]
            if m in self.hidden:
                ids = data.stores[m][rows].to(device)
                out[m] = model.encoders[m].head(self.hidden[m][rows.to(device)], ids, sequence=seq)
                continue
            # encode each distinct stored row once: easy-VQA batches share images
            distinct, inverse = torch.unique(rows, return_inverse=True)
            x = data._decode(m, data.stores[m][distinct]).to(device)
            out[m] = model.encoders[m](x, sequence=seq)[inverse.to(device)]
        return out


def _epoch_order(data: MultimodalDataset, gen: torch.Generator) -> torch.Tensor:
    """A seeded shuffle; when samples share stored rows (questions about one image), keep
    each row's samples together so a batch encodes few distinct images."""
    n = len(data)
    best, ratio = None, 1.0
    for spec in data.modalities:
        if spec.kind_info.patched:  # dense signals (images, audio) cost the most to encode
            r = n / max(1, len(torch.unique(data.rows[spec.name])))
            if r > ratio:
                best, ratio = spec.name, r
    if best is None or ratio < 2:
        return torch.randperm(n, generator=gen)
    rows = data.rows[best]
    rank = torch.randperm(int(rows.max()) + 1, generator=gen)[rows]  # random order of rows
    jitter = torch.rand(n, generator=gen)  # random order within a row
    return torch.argsort(rank.double() + jitter.double() * 0.5)


def _loss_fn(data: MultimodalDataset, n_outputs: int, use_weights: bool, device: torch.device) -> nn.Module:
    if data.task == "regression":
        return nn.MSELoss()
    if not use_weights:
        return nn.CrossEntropyLoss()
    y = data.targets.numpy()
    present = np.unique(y)
    w = np.ones(n_outputs, dtype=np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return nn.CrossEntropyLoss(weight=torch.tensor(w, device=device))


def _loss(loss_fn: nn.Module, out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    return loss_fn(out.squeeze(-1), y.float()) if task == "regression" else loss_fn(out, y)


@torch.no_grad()
def predict(
    model: nn.Module, data: MultimodalDataset, *, batch_size: int = 512, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Model outputs (N, n_outputs) for every sample of ``data``, in eval mode, on CPU."""
    device = torch.device(device)
    model.eval()
    outs = []
    # built-in models: encode each distinct stored row (an image shared by many questions)
    # once per batch
    cache = _FeatureCache(model, data, device, frozen=False) if isinstance(model, MultimodalModel) else None
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        if cache is not None:
            out = model.fuse(cache.features(model, data, idx, device))
        else:
            out = model(**{m: v.to(device) for m, v in data.inputs(idx).items()})
        outs.append(out.cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def evaluate(model: nn.Module, data: MultimodalDataset, *, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Metrics of ``model`` on ``data``: classification or regression, by ``data.task``."""
    out = predict(model, data, device=device)
    if data.task == "regression":
        return regression_metrics(data.targets, out.squeeze(-1))
    return classification_metrics(data.targets, out.argmax(1), data.label_names)


def train_model(
    model: MultimodalModel, splits: Splits, config: TrainConfig | None = None, *, progress: bool | None = None
) -> TrainResult:
    """Train ``model`` in place on ``splits.train``, keeping the best weights on ``splits.val``.

    Parameters
    ----------
    model : MultimodalModel
    splits : Splits
    config : TrainConfig, optional
    progress : bool, optional
        Show a progress bar; default: only on a terminal.

    Returns
    -------
    TrainResult
        ``history`` has one dict per epoch: ``train_loss``, ``val_loss`` and ``val_accuracy``
        (classification) or ``val_mse`` (regression).
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    train, val = splits.train, splits.val
    task = train.task
    loss_fn = _loss_fn(train, model.n_outputs, config.class_weights, device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    train_cache = _FeatureCache(model, train, device)
    val_cache = _FeatureCache(model, val, device)
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    best_score, best_state, since_best = -float("inf"), None, 0
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc="train", disable=(not progress) if progress is not None else None)
    for epoch in bar:
        model.train()
        perm = _epoch_order(train, gen)
        total, count = 0.0, 0
        for b in range(0, len(perm), config.batch_size):
            idx = perm[b : b + config.batch_size]
            out = model.fusion(train_cache.features(model, train, idx, device))
            loss = _loss(loss_fn, out, train.targets[idx].to(device), task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        model.eval()
        with torch.no_grad():
            outs = []
            for b in range(0, len(val), 512):
                idx = torch.arange(b, min(b + 512, len(val)))
                outs.append(model.fusion(val_cache.features(model, val, idx, device)))
            vout = torch.cat(outs)
            vy = val.targets.to(device)
            val_loss = float(_loss(loss_fn, vout, vy, task))
        row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "val_loss": val_loss}
        if task == "classification":
            row["val_accuracy"] = float((vout.argmax(1) == vy).float().mean())
            score = row["val_accuracy"] - 1e-6 * val_loss  # ties go to the lower loss
        else:
            row["val_mse"] = val_loss
            score = -val_loss
        result.history.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if score > best_score:
            best_score, best_state, since_best = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch + 1
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
