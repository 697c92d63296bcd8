"""Deterministic training with AdamW, a learning-rate schedule, class weights and early
stopping on validation."""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm import tqdm

from ..data.base import MultimodalDataset, Splits
from ..exceptions import ConfigError
from ..models.model import MultimodalModel
from .metrics import classification_metrics, regression_metrics

Schedule = Literal["onecycle", "cosine", "constant"]
#: Learning-rate schedules of :class:`TrainConfig`, each stepped once per batch.
SCHEDULES: tuple[str, ...] = get_args(Schedule)


class TrainConfig(BaseModel):
    """Optimisation settings.

    Parameters
    ----------
    epochs : int, default=10
        Length of training; a decaying schedule is sized for it (it reaches its lowest
        learning rate at the last step of the last epoch). Early stopping may end sooner.
    batch_size : int, default=64
    lr : float, default=5e-4
        AdamW learning rate: the constant rate, or the peak of a warm-up schedule.
    schedule : {"onecycle", "cosine", "constant"}, default="constant"
        How the learning rate moves, stepped once per batch:

        - ``"onecycle"``: :class:`torch.optim.lr_scheduler.OneCycleLR` (Smith's one-cycle
          policy, with its defaults): from ``lr / 25`` up to ``lr`` over the first ``warmup``
          of the steps, then a cosine down to ``lr / 25e4``; Adam's ``beta1`` moves
          the other way between 0.95 and 0.85. A high rate explores, the low rate at the
          end settles into a minimum, so fewer epochs reach a given accuracy than with a
          fixed rate.
        - ``"cosine"``: a linear warm-up from ``lr / warmup_steps`` to ``lr`` over the
          first ``warmup`` of the steps, then a cosine towards 0 (which the step after
          the last would reach); betas stay fixed.
        - ``"constant"``: ``lr`` throughout (the behaviour before schedules existed; the
          default until the default report switches to a schedule measured to converge).
    warmup : float, default=0.3
        Share of all steps spent rising to ``lr`` (``OneCycleLR``'s ``pct_start``);
        unused by ``"constant"``.
    weight_decay : float, default=1e-4
    patience : int, default=4
        Early stopping: end after this many epochs without validation improvement,
        counting only epochs that end after the warm-up. While the rate still rises the
        validation score is expected to wobble, and stopping then would skip the annealing
        the schedule exists for; once it decays, a plateau of ``patience`` epochs means
        the low-rate tail is not helping. With ``"constant"`` every epoch counts. The
        weights of the best validation epoch are kept in every case.
    class_weights : bool, default=True
        Weight the loss by inverse class frequency (scikit-learn's "balanced").
    modality_dropout : float, default=0.0
        Probability that a training sample's modality is replaced by the model's reference
        (its meaning of "absent", ``model.reference``), independently per sample, modality
        and step (ModDrop, Neverova et al. 2016). A model trained so has seen every modality
        absent, so its answers with a modality at the reference -- which every
        reference-based explanation (modality Shapley values, fusion-level blocks, deletion
        curves) reads -- are learned, not extrapolated: on additive data the interaction
        it shows around the reference then shrinks towards the data's own (none).
    seed : int, default=0
    device : str, default="cpu"
        ``cpu`` or ``cuda`` (``cuda:N``).
    """

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-4, gt=0)
    schedule: Schedule = "constant"
    warmup: float = Field(0.3, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(4, ge=1)
    class_weights: bool = True
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    device: str = "cpu"

    def describe_schedule(self) -> dict[str, Any]:
        """The schedule as a JSON-safe dict (what runs record beside their metrics)."""
        out: dict[str, Any] = {"name": self.schedule, "lr": self.lr, "epochs": self.epochs,
                               "batch_size": self.batch_size, "weight_decay": self.weight_decay}
        if self.schedule != "constant":
            out["warmup"] = self.warmup
        if self.modality_dropout:
            out["modality_dropout"] = self.modality_dropout
        return out


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate scheduler of ``config.schedule`` for ``epochs * steps_per_epoch`` steps.

    Call ``step()`` after every ``optimizer.step()``; the rate of step ``k`` (counting from
    0) is then what the optimizer holds before its ``k``-th update.
    """
    total = config.epochs * max(1, steps_per_epoch)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total,
                                                   pct_start=config.warmup)
    if config.schedule == "cosine":
        warm = max(1, round(config.warmup * total)) if config.warmup > 0 else 0

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            # the step after the last would reach 0
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm + 1) / (total - warm + 1))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _warmup_epochs(config: TrainConfig) -> float:
    """Epochs during which the learning rate still rises (0 for a constant rate)."""
    return 0.0 if config.schedule == "constant" else config.warmup * config.epochs


@dataclass
class TrainResult:
    """What training produced: per-epoch history, best epoch, wall time (seconds), the
    schedule (:meth:`TrainConfig.describe_schedule`) and the wall time at the end of each
    epoch (seconds since training started; kept out of ``history``, which repeats exactly)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    schedule: dict[str, Any] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)


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
    """Per-batch encoder outputs, each distinct stored row encoded once per batch; with
    ``frozen=True`` the outputs of frozen pretrained backbones (``frozen_backbone``, e.g. a
    frozen MiniLM's token states) are computed up front, once per distinct input among the
    rows ``data`` uses (easy-VQA's 38,575 training questions are 107 distinct ones), and
    looked up for every batch and epoch. A frozen backbone has no dropout and its outputs
    for one input do not depend on the rest of the batch, so the lookup gives the very
    numbers the backbone would (``tests/test_training.py`` checks them bit for bit)."""

    def __init__(
        self, model: MultimodalModel, data: MultimodalDataset, device: torch.device, *, frozen: bool = True
    ) -> None:
        self.hidden: dict[str, torch.Tensor] = {}  # (distinct inputs, ...) backbone outputs
        self.slot: dict[str, torch.Tensor] = {}  # stored row -> index into hidden (-1: unused)
        for m in model.modalities if frozen else []:
            enc = model.encoders[m]
            if getattr(enc, "frozen_backbone", False):
                used = torch.unique(data.rows[m])
                distinct, inverse = torch.unique(data.stores[m][used], dim=0, return_inverse=True)
                slot = torch.full((len(data.stores[m]),), -1, dtype=torch.long)
                slot[used] = inverse
                x = data._decode(m, distinct).to(device)
                with torch.no_grad():
                    self.hidden[m] = torch.cat([enc.backbone(x[i : i + 256]) for i in range(0, len(x), 256)])
                self.slot[m] = slot.to(device)

    def features(self, model: MultimodalModel, data: MultimodalDataset, idx: torch.Tensor, device: torch.device,
                 absent: dict[str, torch.Tensor] | None = None) -> dict:
        """Encoder outputs for samples ``idx``; ``absent[m]`` (bool, (len(idx),)) marks the
        samples whose modality ``m`` is replaced by the model's reference."""
        seq = model.fusion.needs_sequences
        out = {}
        for m in model.modalities:
            rows = data.rows[m][idx]
            drop = None if absent is None or not bool(absent[m].any()) else absent[m]
            ref_x = None
            if drop is not None:  # (1, ...) for a fixed reference, (k, ...) for a per-sample one
                ref_x = model.reference.fill(m, data._decode(m, data.stores[m][rows[drop]]).to(device))
            if m in self.hidden:
                ids = data._decode(m, data.stores[m][rows]).to(device)
                out[m] = model.encoders[m].head(self.hidden[m][self.slot[m][rows.to(device)]], ids, sequence=seq)
                ref = None if ref_x is None else model.encoders[m](ref_x, sequence=seq)
            else:
                # encode each distinct stored row once: easy-VQA batches share images; the
                # reference joins the same pass, so batch norm sees it among real inputs
                distinct, inverse = torch.unique(rows, return_inverse=True)
                x = data._decode(m, data.stores[m][distinct]).to(device)
                if ref_x is not None:
                    x = torch.cat([x, ref_x.to(x.dtype)])
                encoded = model.encoders[m](x, sequence=seq)
                out[m] = encoded[: len(distinct)][inverse.to(device)]
                ref = None if ref_x is None else encoded[len(distinct):]
            if ref is not None:
                out[m] = out[m].clone()
                out[m][drop.to(device)] = ref.expand(int(drop.sum()), *ref.shape[1:])
        return out


def _absent_draw(model: MultimodalModel, n: int, p: float, gen: torch.Generator) -> dict[str, torch.Tensor] | None:
    """Per modality, which of ``n`` samples see it absent this step (probability ``p``)."""
    if p <= 0:
        return None
    return {m: torch.rand(n, generator=gen) < p for m in model.modalities}


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
    from sklearn.utils.class_weight import compute_class_weight  # ~1 s to import: on use

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
    # once per batch; frozen backbones once over all the data when it spans several batches
    cache = (_FeatureCache(model, data, device, frozen=len(data) > batch_size)
             if isinstance(model, MultimodalModel) else None)
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
        ``history`` has one dict per epoch: ``lr`` (the rate of the epoch's first step),
        ``train_loss``, ``val_loss`` and ``val_accuracy`` (classification) or ``val_mse``
        (regression).
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
    sched = make_scheduler(opt, config, math.ceil(len(train) / config.batch_size))
    warmup_epochs = _warmup_epochs(config)
    start = time.perf_counter()  # the frozen backbones' cache is part of training's cost
    train_cache = _FeatureCache(model, train, device)
    val_cache = _FeatureCache(model, val, device)
    gen = torch.Generator().manual_seed(config.seed)
    drop_gen = torch.Generator().manual_seed(config.seed + 1)  # its own stream: the epoch order stays put
    result = TrainResult(schedule=config.describe_schedule())
    best_score, best_state, since_best = -float("inf"), None, 0
    bar = tqdm(range(config.epochs), desc="train", disable=(not progress) if progress is not None else None)
    for epoch in bar:
        model.train()
        perm = _epoch_order(train, gen)
        epoch_lr = opt.param_groups[0]["lr"]
        total, count = 0.0, 0
        for b in range(0, len(perm), config.batch_size):
            idx = perm[b : b + config.batch_size]
            absent = _absent_draw(model, len(idx), config.modality_dropout, drop_gen)
            out = model.fusion(train_cache.features(model, train, idx, device, absent))
            loss = _loss(loss_fn, out, train.targets[idx].to(device), task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
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
        row = {"epoch": epoch + 1, "lr": epoch_lr, "train_loss": total / max(count, 1), "val_loss": val_loss}
        if task == "classification":
            row["val_accuracy"] = float((vout.argmax(1) == vy).float().mean())
            score = row["val_accuracy"] - 1e-6 * val_loss  # ties go to the lower loss
        else:
            row["val_mse"] = val_loss
            score = -val_loss
        result.history.append(row)
        result.epoch_seconds.append(round(time.perf_counter() - start, 3))
        bar.set_postfix({k: f"{v:.2g}" if k == "lr" else round(v, 4) for k, v in row.items() if k != "epoch"})
        if score > best_score:
            best_score, best_state, since_best = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch + 1
        elif epoch + 1 > warmup_epochs:  # see TrainConfig.patience
            since_best += 1
            if since_best >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
