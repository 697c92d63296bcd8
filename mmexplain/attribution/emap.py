"""EMAP: Empirical Multimodally-Additive function Projection (Hessel & Lee, 2020).

EMAP replaces a model ``f`` by its best *additive* approximation on the evaluation set,
``f̂(x) = sum_m g_m(x_m)``, and compares the two models' task metrics: if the projection
scores as well as the model, the model's predictions do not rely on cross-modal
interactions (on this data).

References
----------
.. [1] J. Hessel and L. Lee, "Does my multimodal model learn cross-modal interactions?
   It's harder to tell than you might think!", EMNLP 2020.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..exceptions import ConfigError
from ..validation import batch_size, check_choice, check_inputs, check_positive_int
from .shapley import _gather_outputs

__all__ = ["EMAP_METRICS", "EMAPResult", "emap"]

#: Metrics for classification models; scalar-output (regression) models always use "mse".
EMAP_METRICS = ("accuracy", "macro_f1")


@dataclass
class EMAPResult:
    """Outcome of :func:`emap`.

    Attributes
    ----------
    metric : str
        ``"accuracy"``, ``"macro_f1"`` or ``"mse"`` (scalar-output models).
    model_metric : float
        The metric of the model's own outputs on the samples used.
    projection_metric : float
        The metric of the EMAP projection on the same samples.
    projected_logits : Tensor of shape (n, C), or (n,) for scalar outputs
        The additive projection ``f̂`` (float64).
    model_logits : Tensor of shape (n, C), or (n,) for scalar outputs
        The model's outputs on the samples used (float64).
    indices : Tensor of shape (n,)
        Positions in the caller's batch of the samples used (sorted).
    labels : Tensor of shape (n,)
        Their labels.
    """

    metric: str
    model_metric: float
    projection_metric: float
    projected_logits: torch.Tensor
    model_logits: torch.Tensor
    indices: torch.Tensor
    labels: torch.Tensor

    @property
    def gap(self) -> float:
        """``model_metric - projection_metric`` (for MSE a negative gap favours the model)."""
        return self.model_metric - self.projection_metric

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (metrics and indices; not the logits)."""
        return {
            "metric": self.metric,
            "model_metric": self.model_metric,
            "projection_metric": self.projection_metric,
            "gap": self.gap,
            "indices": self.indices.tolist(),
        }

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per sample used: index, label, the model's and the
        projection's predicted output (class, or value for scalar outputs)."""
        pick = (lambda t: t.argmax(1)) if self.model_logits.dim() == 2 else (lambda t: t)
        return pd.DataFrame({"index": self.indices.tolist(), "label": self.labels.tolist(),
                             "model": pick(self.model_logits).tolist(), "projection": pick(self.projected_logits).tolist()})

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.json`` (summary and logits); returns its path."""
        path = Path(path).with_suffix(".json")
        path.write_text(json.dumps({**self.to_dict(), "schema_version": 2, "labels": self.labels.tolist(),
                                    "projected_logits": self.projected_logits.tolist(),
                                    "model_logits": self.model_logits.tolist()}))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EMAPResult:
        """Read a result written by :meth:`save`."""
        d = json.loads(Path(path).with_suffix(".json").read_text())
        return cls(metric=d["metric"], model_metric=d["model_metric"], projection_metric=d["projection_metric"],
                   projected_logits=torch.tensor(d["projected_logits"], dtype=torch.float64),
                   model_logits=torch.tensor(d["model_logits"], dtype=torch.float64),
                   indices=torch.tensor(d["indices"], dtype=torch.long), labels=torch.tensor(d["labels"]))


def _score(metric: str, outputs: torch.Tensor, labels: torch.Tensor) -> float:
    from sklearn.metrics import (  # ~1 s to import: on use
        accuracy_score,
        f1_score,
        mean_squared_error,
    )

    y = labels.cpu().numpy()
    if metric == "mse":
        return float(mean_squared_error(y.astype(np.float64), outputs.numpy()))
    pred = outputs.argmax(dim=1).numpy()
    if metric == "accuracy":
        return float(accuracy_score(y, pred))
    return float(f1_score(y, pred, average="macro", zero_division=0))


def emap(
    model: Callable[..., Any],
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Sequence[Any] | torch.Tensor | np.ndarray,
    target_metric: str = "accuracy",
    max_samples: int = 256,
    seed: int = 0,
    max_batch_size: int | None = None,
    factorised: bool | None = None,
) -> EMAPResult:
    """Project a multimodal model onto additive functions and score both.

    For two modalities, Hessel & Lee's projection on the logits of n samples is::

        f̂(x_i) = mean_j f(x1_i, x2_j) + mean_j f(x1_j, x2_i) - mean_{j,k} f(x1_j, x2_k)

    computed from all n² cross pairs in batched no-grad forward passes (fusion only, for a
    factorised model). For M > 2
    modalities we use our own generalisation (not from the paper)::

        f̂(x_i) = sum_m mean_j f(x_m^i, x_{-m}^j) - (M - 1) * mean f

    where ``x_{-m}^j`` are all other modalities of sample ``j`` (kept together) and
    ``mean f`` is the mean over all M·n² such evaluations. It reduces to the formula
    above for M = 2 and, like it, reproduces any additive model ``sum_m g_m(x_m)``
    exactly. Cost: n² rows for M = 2, M·n² for M > 2.

    Parameters
    ----------
    model : callable or torch.nn.Module
        Called as ``model(**inputs)``; returns logits (B, C) with C >= 2, or a scalar
        output (B,) / (B, 1), which is treated as regression (for a one-logit binary
        classifier, return the two logits ``[0, z]`` instead). Call ``model.eval()`` first;
        its mode is not changed.
    inputs : dict of str -> Tensor of shape (N, ...)
        At least two modalities, batch first.
    target : sequence or Tensor of shape (N,)
        The true class indices (classification) or values (regression) both the model and
        its additive projection are scored against.
    target_metric : {"accuracy", "macro_f1"}, default="accuracy"
        The classification metric (macro-F1 via scikit-learn). Ignored for scalar-output
        models, which are scored by mean squared error (``metric="mse"``).
    max_samples : int, default=256
        Cap on n. When N > max_samples, a seeded random subset of ``max_samples`` samples
        (returned in ``indices``, sorted) is used, since the cost grows as n².
    seed : int, default=0
        Seed of that subsample.
    max_batch_size : int, optional
        Most rows per forward pass; default as in
        :func:`~mmexplain.attribution.shapley.modality_shapley`.
    factorised : bool, optional
        Run the model's per-modality encoders once per sample (n rows per modality) and
        only its fusion over the n² cross pairs, as
        :func:`~mmexplain.attribution.shapley.modality_shapley` does; exact, and what makes
        EMAP affordable when an encoder is a transformer. Default: when the model declares
        ``modality_factorised = True`` (built-in models do).

    Returns
    -------
    EMAPResult
    """
    if not callable(model):
        raise TypeError(f"model must be callable (model(**inputs)); got {type(model).__name__}.")
    inputs = check_inputs(inputs)
    names = list(inputs)
    m = len(names)
    if m < 2:
        raise ConfigError(f"emap needs at least 2 modalities; inputs has {m} ({names}).")
    check_choice("target_metric", target_metric, EMAP_METRICS)
    check_positive_int("max_samples", max_samples)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int; got {seed!r}.")
    n_total = batch_size(inputs)
    labels = target
    labels_t = torch.as_tensor(labels.detach().cpu() if isinstance(labels, torch.Tensor) else np.asarray(labels))
    labels_t = labels_t.reshape(-1)
    if labels_t.shape[0] != n_total:
        raise ValueError(f"target has {labels_t.shape[0]} entries but the batch has {n_total} samples.")

    device = next(iter(inputs.values())).device
    if n_total > max_samples:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(n_total, generator=gen)[:max_samples].sort().values
    else:
        idx = torch.arange(n_total)
    n = idx.shape[0]
    sources = {name: inputs[name].index_select(0, idx.to(device)) for name in names}

    # Grid G_m[i, j] = f(x_m^i, x_{-m}^j); rows i-major. For M = 2, G_1 = G_0 transposed.
    ar = torch.arange(n, device=device)
    own, other = ar.repeat_interleave(n), ar.repeat(n)
    grids_for = [0] if m == 2 else list(range(m))
    index = {
        name: torch.cat([own if b == g else other for g in grids_for]) for b, name in enumerate(names)
    }
    out = _gather_outputs(model, sources, index, max_batch_size=max_batch_size, factorised=factorised)
    n_out = out.shape[1]
    grids = out.reshape(len(grids_for), n, n, n_out)
    if m == 2:
        grids = torch.stack([grids[0], grids[0].transpose(0, 1)])
    projected = grids.mean(dim=2).sum(dim=0) - (m - 1) * grids.mean(dim=(0, 1, 2))
    # The diagonal of any grid is the model on the unchanged samples.
    model_out = torch.diagonal(grids[0], dim1=0, dim2=1).T

    scalar = n_out == 1
    metric = "mse" if scalar else target_metric
    labels_used = labels_t.index_select(0, idx)
    if not scalar:
        if labels_used.is_floating_point() and not bool((labels_used == labels_used.round()).all()):
            raise TypeError("labels must be integer class indices for a classification model.")
        labels_used = labels_used.long()
    if scalar:
        projected, model_out = projected[:, 0], model_out[:, 0]
    return EMAPResult(
        metric=metric,
        model_metric=_score(metric, model_out, labels_used),
        projection_metric=_score(metric, projected, labels_used),
        projected_logits=projected,
        model_logits=model_out,
        indices=idx,
        labels=labels_used,
    )
