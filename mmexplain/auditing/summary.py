"""Reading an audit: reliance per class, one-sided errors, the decisions to look at first.

Functions over the rows of a finished audit (:func:`~mmexplain.auditing.audit_run`), each
returning a small table; ``notebooks/06_audit_summary.ipynb`` shows them and renders the
decision-audit card (:func:`mmexplain.audit.decision_cards`) of every decision they list,
under the anchor :func:`card_anchor` names. Every number comes from the audit's columns
(:mod:`~mmexplain.auditing.schema`); nothing is recomputed.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq
import torch

from ..exceptions import ConfigError
from ..training import Run, load_run
from ..validation import check_choice, check_fraction, check_positive_int
from .schema import column
from .stream import checkpoint_hash, read_audit_metadata

if TYPE_CHECKING:
    from ..audit import DecisionCard

__all__ = [
    "Audit",
    "audit_cards",
    "card_anchor",
    "card_html",
    "decisions_html",
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
    """Per decision: the modality with the largest Shapley share, and that share (None and
    NaN where the shares are undefined: every Shapley value zero)."""
    shares = audit.rows[audit.share_columns()].set_axis(audit.modalities, axis=1)
    defined = shares.notna().any(axis=1)
    modality = pd.Series(None, index=shares.index, dtype=object)
    modality[defined] = shares[defined].idxmax(axis=1)
    return modality, shares.max(axis=1)


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


def decisions_html(table: pd.DataFrame) -> str:
    """A decisions table (:func:`interaction_decisions`, :func:`flagged_decisions`) as HTML,
    each ``index`` a link to its card's anchor; every value is escaped."""
    shown = [c for c in table.columns if c != "anchor"]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown)
    body = []
    for _, row in table.iterrows():
        cells = []
        for c in shown:
            value = row[c]
            if c == "index":
                cells.append(f'<td><a href="#{card_anchor(value)}">{int(value)}</a></td>')
            elif isinstance(value, float):
                cells.append(f"<td>{value:.3f}</td>")
            elif isinstance(value, list):
                cells.append(f"<td>{html.escape('; '.join(map(str, value)))}</td>")
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def audit_cards(audit: Audit, run: Run | str | os.PathLike, indices: Sequence[int]) -> list[DecisionCard]:
    """The decision-audit cards of ``indices``, computed as the audit computed their rows.

    Parameters
    ----------
    audit : Audit
    run : Run, or path-like
        The audited model: its checkpoint must be the audit's.
    indices : sequence of int
        Positions in the audited split (e.g. a summary table's ``index`` column).

    Returns
    -------
    list of DecisionCard
        In ``indices`` order, with the audit's split, methods, agreement threshold and
        deletion steps (:func:`mmexplain.audit.decision_cards`).

    Raises
    ------
    ConfigError
        ``run`` is another model than the audited one, or an index is not in the audit.
    """
    from ..audit import decision_cards

    if not isinstance(run, Run):
        if not os.path.isdir(run):
            raise ConfigError(f"run={run}: no such folder; give the folder of the audited run.")
        run = load_run(run)
    if checkpoint_hash(run) != audit.checkpoint_sha256:
        raise ConfigError(f"run: its checkpoint {checkpoint_hash(run)[:16]}... is not the audited model's "
                          f"{audit.checkpoint_sha256[:16]}...; give the run the audit was made from.")
    missing = sorted(set(int(i) for i in indices) - set(audit.rows["index"].tolist()))
    if missing:
        raise ConfigError(f"indices {missing[:10]} are not in the audit.")
    args = audit.metadata["arguments"]
    return decision_cards(run, torch.tensor([int(i) for i in indices], dtype=torch.long), methods=args["methods"],
                          split=args["split"], agreement_threshold=args["agreement_threshold"], steps=args["steps"])


def card_html(card: DecisionCard) -> str:
    """A card's HTML (:meth:`~mmexplain.audit.DecisionCard.html`) under its anchor."""
    return f'<div id="{card_anchor(card.index)}">{card.html()}</div>'
