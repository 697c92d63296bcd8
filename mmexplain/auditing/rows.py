"""A decision's audit row: the one function that computes it.

:func:`decision_rows` turns a batch of sample indices into rows of
:func:`~mmexplain.auditing.schema.audit_schema`, from the library's own pieces: the
prediction (:func:`~mmexplain.training.predict`), exact modality Shapley values
(:func:`~mmexplain.attribution.modality_shapley`), each method's attribution
(:func:`~mmexplain.analysis.explain`), the trust panel and its flags
(:func:`~mmexplain.analysis.trust_panel`, :func:`~mmexplain.analysis.trust_flags`) and the
prediction with each modality at the model's reference. A decision-audit card
(:func:`mmexplain.audit.decision_cards`) shows the same numbers for its sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ..analysis import DEFAULT_AGREEMENT_THRESHOLD, explain, trust_flags, trust_panel
from ..attribution import modality_shapley
from ..exceptions import ConfigError
from ..training import Run, predict
from .schema import audit_schema, column

__all__ = ["decision_rows"]


def _nullable(value: Any, kind: type) -> Any:
    """``value`` as ``kind``, or None for NA / None (a check that was not run)."""
    if value is None or value is pd.NA:
        return None
    return kind(value)


def decision_rows(
    run: Run,
    idx: Sequence[int] | torch.Tensor,
    *,
    methods: Sequence[str],
    split: str = "test",
    agreement_threshold: float = DEFAULT_AGREEMENT_THRESHOLD,
    steps: int = 10,
    sanity: pd.DataFrame | None = None,
) -> pa.Table:
    """Audit rows of the decisions ``idx`` of ``split``, one row each, in ``idx`` order.

    Each decision is explained as if alone: every method attributes per sample (stochastic
    ones under their own per-sample seed), the Shapley game and the "removed" predictions
    use the model's fixed reference, so a row depends only on its sample and the
    arguments -- not on the other indices in ``idx`` -- up to float rounding of batched
    matrix products. Streamed audits therefore always batch the same chunks.

    Parameters
    ----------
    run : Run
        A trained classifier (regression runs are refused).
    idx : sequence of int or LongTensor of shape (N,)
        Positions in ``split``.
    methods : sequence of str
        Attribution methods (``mmexplain.attribution.METHODS``). A method whose rules do not
        hold for the model is left out (:func:`~mmexplain.analysis.invalid_methods`): its
        columns are null and every row carries the flag.
    split : {"train", "val", "test"}, default="test"
    agreement_threshold : float, default=0.3
        See :func:`~mmexplain.analysis.trust_flags`.
    steps : int, default=10
        Steps of the deletion curves behind ``<method>_deletion_auc``.
    sanity : pandas.DataFrame, optional
        A model-level :func:`~mmexplain.analysis.sanity_table`; a failed method flags every row.

    Returns
    -------
    pyarrow.Table
        N rows of ``audit_schema(methods, run.model.modalities)``.
    """
    data = run.splits[split]
    if data.task != "classification":
        raise ConfigError(f"run: decision audits need a classifier; this run's task is {data.task!r}.")
    methods = list(methods)
    modalities = list(run.model.modalities)
    schema = audit_schema(methods, modalities)
    idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
    n = len(idx)
    names = data.label_names or [str(i) for i in range(run.model.n_outputs)]
    x = data.inputs(idx)
    logits = predict(run.model, data.subset(idx)).double()
    prob = logits.softmax(1)
    pred = prob.argmax(1)
    true = data.targets[idx]

    cols: dict[str, Any] = {
        "index": idx.numpy(),
        "true_label": true.numpy().astype(np.int64),
        "true_name": [names[int(t)] for t in true],
        "predicted_label": pred.numpy().astype(np.int64),
        "predicted_name": [names[int(p)] for p in pred],
        "correct": (pred == true).numpy(),
        "probability": prob.gather(1, pred[:, None]).squeeze(1).numpy(),
    }

    sv = modality_shapley(run.model, x, target=pred)
    cols["output"] = sv.full_value.numpy()
    cols["reference_output"] = sv.base_value.numpy()
    cols["interaction_share"] = sv.interaction_share(per_sample=True).numpy()
    shares = sv.shares()
    for j, m in enumerate(sv.modalities):
        cols[column("shapley", modality=m)] = sv.values[:, j].numpy()
        cols[column("shapley_share", modality=m)] = shares[:, j].numpy()

    reference = run.model.reference
    with torch.no_grad():
        for m in modalities:
            absent = dict(x)
            absent[m] = reference.fill(m, x[m]).expand_as(x[m])
            p = run.model(**absent).double().softmax(1)
            label = p.argmax(1)
            cols[column("removed_label", modality=m)] = label.numpy().astype(np.int64)
            cols[column("removed_name", modality=m)] = [names[int(k)] for k in label]
            cols[column("removed_probability", modality=m)] = p.gather(1, label[:, None]).squeeze(1).numpy()

    results = explain(run, idx, methods, split=split)
    panel = trust_panel(run, idx, results, split=split, methods=methods, sanity=sanity, steps=steps)
    frames = [panel.to_frame(k).set_index("method") for k in range(n)]
    flags = [trust_flags(f.reset_index(), agreement_threshold=agreement_threshold) for f in frames]
    cols["trust_flags"] = flags
    cols["n_trust_flags"] = np.array([len(f) for f in flags], dtype=np.int32)
    for k in methods:
        res = results.get(k)
        if res is None:  # left out: its rules do not hold for this model
            for q in ("completeness_error", "relative_completeness_error", "hit_step_cap", "agreement",
                      "deletion_auc", "random_auc", "faithful"):
                cols[column(q, method=k)] = [None] * n
            for q in ("total", "share"):
                for m in modalities:
                    cols[column(q, method=k, modality=m)] = [None] * n
            continue
        err = res.completeness_error
        cols[column("completeness_error", method=k)] = (err.double().numpy() if err is not None
                                                        else np.full(n, np.nan))
        rows = [f.loc[k] for f in frames]
        cols[column("relative_completeness_error", method=k)] = np.array(
            [float(r["relative_completeness_error"]) for r in rows])
        cols[column("hit_step_cap", method=k)] = [_nullable(r["step_cap_hits"], bool) for r in rows]
        for q in ("agreement", "deletion_auc", "random_auc"):
            cols[column(q, method=k)] = np.array([float(r[q]) for r in rows])
        cols[column("faithful", method=k)] = [_nullable(r["faithful"], bool) for r in rows]
        totals, method_shares = res.totals, res.shares()
        for j, m in enumerate(res.modality_names):
            cols[column("total", method=k, modality=m)] = totals[:, j].numpy()
            cols[column("share", method=k, modality=m)] = method_shares[:, j].numpy()
    return pa.Table.from_pydict({f.name: cols[f.name] for f in schema}, schema=schema)
