"""Reading an audit: reliance per class, one-sided errors, the decisions to look at first.

Functions over the rows of a finished audit (:func:`~mmexplain.auditing.audit_run`), each
returning a small table; ``notebooks/06_audit_summary.ipynb`` shows them and renders the
decision-audit card (:func:`mmexplain.audit.decision_cards`) of every decision they list,
under the anchor :func:`card_anchor` names. Every number comes from the audit's columns
(:mod:`~mmexplain.auditing.schema`); nothing is recomputed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..exceptions import ConfigError
from ..validation import check_choice, check_fraction, check_positive_int
from .schema import column
from .stream import read_audit_metadata

__all__ = [
    "Audit",
    "card_anchor",
    "flagged_decisions",
    "interaction_decisions",
    "one_sided_errors",
    "read_audit",
    "reliance_by_class",
]

#: ``by`` of :func:`reliance_by_class` -> the column it groups on.
_CLASS_COLUMNS = {"predicted": "predicted_name", "true": "true_name"}


@dataclass
class Audit:
    """A finished audit, read back.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per decision, columns as :func:`~mmexplain.auditing.audit_schema`.
    modalities : list of str
        The model's modalities, in column order.
    methods : list of str
        The audited attribution methods.
    metadata : dict
        :func:`~mmexplain.auditing.read_audit_metadata`: arguments and provenance.
    """

    rows: pd.DataFrame
    modalities: list[str]
    methods: list[str]
    metadata: dict[str, Any]

    @property
    def checkpoint_sha256(self) -> str:
        """The audited model's checkpoint hash (to check a run before rendering its cards)."""
        return self.metadata["provenance"]["checkpoint_sha256"]

    def share_columns(self) -> list[str]:
        """The modality Shapley share columns, ``shapley_share__<modality>``."""
        return [column("shapley_share", modality=m) for m in self.modalities]


def read_audit(path: str | os.PathLike) -> Audit:
    """Read an audit file written by :func:`~mmexplain.auditing.audit_run` (``mmexplain audit``).

    Raises
    ------
    ConfigError
        ``path`` does not exist or is not an mmexplain audit.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"audit={path}: no such file; give a .parquet file `mmexplain audit` wrote.")
    metadata = read_audit_metadata(path)
    rows = pq.read_table(path).to_pandas()
    return Audit(rows=rows, modalities=list(metadata["provenance"]["modalities"]),
                 methods=list(metadata["arguments"]["methods"]), metadata=metadata)


def card_anchor(index: int) -> str:
    """The HTML id of decision ``index``'s audit card in a summary page (``decision-<index>``)."""
    return f"decision-{int(index)}"


def _leaning(audit: Audit) -> tuple[pd.Series, pd.Series]:
    """Per decision: the modality with the largest Shapley share, and that share."""
    shares = audit.rows[audit.share_columns()]
    shares.columns = audit.modalities
    return shares.idxmax(axis=1), shares.max(axis=1)


def reliance_by_class(audit: Audit, *, by: str = "predicted") -> pd.DataFrame:
    """Mean modality Shapley shares per class: what the model relies on for each answer.

    Parameters
    ----------
    audit : Audit
    by : {"predicted", "true"}, default="predicted"
        Group decisions by their predicted or their true class.

    Returns
    -------
    pandas.DataFrame
        One row per class (sorted by name): ``n`` decisions, ``accuracy``, then the mean
        ``shapley_share__<m>`` of each modality (each row's shares sum to 1), and the mean
        ``interaction_share``. Decisions with an undefined share (all-zero Shapley values)
        are left out of the share means.
    """
    key = _CLASS_COLUMNS[check_choice("by", by, tuple(_CLASS_COLUMNS))]
    rows = audit.rows
    grouped = rows.groupby(key, sort=True)
    out = pd.DataFrame({"n": grouped.size(), "accuracy": grouped["correct"].mean()})
    for col in [*audit.share_columns(), "interaction_share"]:
        out[col] = grouped[col].mean()
    out.index.name = f"{by}_class"
    return out.reset_index()


def one_sided_errors(audit: Audit, *, threshold: float = 0.8) -> pd.DataFrame:
    """Slices of wrong decisions that lean on one modality.

    A wrong decision *leans* on modality ``m`` when ``m``'s Shapley share is the largest
    and at least ``threshold``. Slices group them by true class, predicted class and the
    modality leaned on.

    Parameters
    ----------
    audit : Audit
    threshold : float, default=0.8
        The share, in [0.5, 1], from which one modality dominates.

    Returns
    -------
    pandas.DataFrame
        Columns ``true_name``, ``predicted_name``, ``leans_on``, ``n`` (wrong decisions in
        the slice), ``share_of_errors`` (of all wrong decisions), ``mean_share`` (of the
        modality leaned on), ``indices`` (the decisions, ascending); largest slices first.
    """
    threshold = check_fraction("threshold", threshold, low=0.5, high=1.0)
    modality, share = _leaning(audit)
    rows = audit.rows.assign(leans_on=modality, lean_share=share)
    wrong = rows[~rows["correct"]]
    picked = wrong[wrong["lean_share"] >= threshold]
    columns = ["true_name", "predicted_name", "leans_on", "n", "share_of_errors", "mean_share", "indices"]
    if picked.empty:
        return pd.DataFrame(columns=columns)
    grouped = picked.groupby(["true_name", "predicted_name", "leans_on"], sort=True)
    out = pd.DataFrame({
        "n": grouped.size(),
        "share_of_errors": grouped.size() / len(wrong),
        "mean_share": grouped["lean_share"].mean(),
        "indices": grouped["index"].agg(lambda s: sorted(int(i) for i in s)),
    }).reset_index()
    return out.sort_values(["n", "true_name", "predicted_name", "leans_on"],
                           ascending=[False, True, True, True], kind="stable").reset_index(drop=True)[columns]


def _decisions(audit: Audit, order: list[str], ascending: list[bool], n: int) -> pd.DataFrame:
    rows = audit.rows.sort_values([*order, "index"], ascending=[*ascending, True], kind="stable").head(n)
    keep = ["index", "true_name", "predicted_name", "correct", "probability", *audit.share_columns(),
            "interaction_share", "n_trust_flags", "trust_flags"]
    out = rows[keep].reset_index(drop=True)
    out["trust_flags"] = out["trust_flags"].map(list)
    out["anchor"] = out["index"].map(card_anchor)
    return out


def interaction_decisions(audit: Audit, *, n: int = 10) -> pd.DataFrame:
    """The ``n`` decisions with the highest interaction share (ties: lower index first).

    A high ``interaction_share`` means the modalities' effects are not additive: per-modality
    shares describe such a decision poorly, and its card deserves a look.

    Returns
    -------
    pandas.DataFrame
        ``index``, ``true_name``, ``predicted_name``, ``correct``, ``probability``, the Shapley
        shares, ``interaction_share``, ``n_trust_flags``, ``trust_flags`` and ``anchor``
        (:func:`card_anchor`). Decisions with an undefined interaction share come last.
    """
    n = check_positive_int("n", n)
    return _decisions(audit, ["interaction_share"], [False], n)


def flagged_decisions(audit: Audit, *, n: int = 10) -> pd.DataFrame:
    """The ``n`` flagged decisions with the most trust flags (ties: wrong first, then the
    more confident, then lower index); columns as :func:`interaction_decisions`. Decisions
    without a flag are never listed."""
    n = check_positive_int("n", n)
    flagged = Audit(audit.rows[audit.rows["n_trust_flags"] > 0], audit.modalities, audit.methods, audit.metadata)
    return _decisions(flagged, ["n_trust_flags", "correct", "probability"], [False, True, False], n)
