"""Task metrics, computed with scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def classification_metrics(
    y_true: Any, y_pred: Any, label_names: list[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro precision / recall / F1, confusion matrix and per-class report.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (N,)
        Class indices.
    label_names : list of str, optional
        Names of classes 0..C-1; every class appears in the matrix even when absent.

    Returns
    -------
    dict
        ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1`` (floats in [0, 1]),
        ``confusion_matrix`` (C x C list, rows = true class), ``label_names``, ``per_class``.
    """
    # scikit-learn costs ~1 s to import; notebooks that only read saved metrics never do
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(torch.as_tensor(y_true).cpu())
    y_pred = np.asarray(torch.as_tensor(y_pred).cpu())
    n_classes = len(label_names) if label_names else int(max(y_true.max(), y_pred.max())) + 1
    labels = list(range(n_classes))
    names = list(label_names) if label_names else [str(i) for i in labels]
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "label_names": names,
        "per_class": {k: v for k, v in report.items() if k in names},
        "n": int(len(y_true)),
    }


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MSE, MAE and R² of predictions (N,) against targets (N,)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(torch.as_tensor(y_true).cpu(), dtype=float).reshape(-1)
    y_pred = np.asarray(torch.as_tensor(y_pred).cpu(), dtype=float).reshape(-1)
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        "n": int(len(y_true)),
    }
