"""The audit row schema: one row per decision, its columns, dtypes and units.

Every streamed audit (:func:`mmexplain.auditing.audit_run`) and every consumer of one (the
decision explorer) reads its columns from here. Column names are systematic:

* per decision: ``index``, ``predicted_label``, ... (:data:`DECISION_COLUMNS`);
* per modality ``m``: ``<quantity>__<m>`` (:data:`MODALITY_COLUMNS`), e.g. ``shapley__image``;
* per method ``k``: ``<k>_<quantity>`` (:data:`METHOD_COLUMNS`), e.g. ``ig_agreement``;
* per method and modality: ``<k>_<quantity>__<m>`` (:data:`METHOD_MODALITY_COLUMNS`), e.g.
  ``ig_total__image``.

``__`` separates the modality; method names never contain it. Floats are float64. A null
means "not computed" (a method left out because its rules do not hold for the model); a
NaN means "undefined" (e.g. the share of a decision whose attributions are all zero).
Logit units are those of the predicted class's logit, the output every method and the
Shapley game explain. Each field's description and unit are in its Arrow field metadata
(``description``, ``unit``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from ..exceptions import ConfigError

__all__ = [
    "DECISION_COLUMNS",
    "METHOD_COLUMNS",
    "METHOD_MODALITY_COLUMNS",
    "MODALITY_COLUMNS",
    "SCHEMA_VERSION",
    "audit_schema",
    "column",
]

#: Bumped whenever a column is added, removed, renamed or changes meaning.
SCHEMA_VERSION = 1

#: name -> (Arrow type, unit, description); one value per decision.
DECISION_COLUMNS: dict[str, tuple[pa.DataType, str, str]] = {
    "index": (pa.int64(), "", "position of the sample in the audited split"),
    "true_label": (pa.int64(), "", "true class index"),
    "true_name": (pa.string(), "", "true class name"),
    "predicted_label": (pa.int64(), "", "predicted class index (argmax of the logits)"),
    "predicted_name": (pa.string(), "", "predicted class name"),
    "correct": (pa.bool_(), "", "predicted_label == true_label"),
    "probability": (pa.float64(), "probability", "softmax probability of the predicted class"),
    "output": (pa.float64(), "logit", "f(x): the predicted class's logit"),
    "reference_output": (pa.float64(), "logit", "f(reference): the logit with every modality absent"),
    "interaction_share": (pa.float64(), "fraction",
                          "InterSHAP per decision, of the same game as shapley__*: off-diagonal |interactions| "
                          "over all |interactions|"),
    "trust_flags": (pa.list_(pa.string()), "",
                    "quality flags in words (mmexplain.analysis.trust_flags), empty when none"),
    "n_trust_flags": (pa.int32(), "count", "number of trust_flags"),
}

#: quantity -> (Arrow type, unit, description); one column ``<quantity>__<modality>`` each.
MODALITY_COLUMNS: dict[str, tuple[pa.DataType, str, str]] = {
    "shapley": (pa.float64(), "logit",
                "exact modality Shapley value of the predicted logit, absent = the model's reference; "
                "they sum to output - reference_output"),
    "shapley_share": (pa.float64(), "fraction", "MM-SHAP share |phi_m| / sum |phi|; sums to 1 over modalities"),
    "removed_label": (pa.int64(), "", "predicted class with this modality at its reference"),
    "removed_name": (pa.string(), "", "its name"),
    "removed_probability": (pa.float64(), "probability", "softmax probability of removed_label"),
}

#: quantity -> (Arrow type, unit, description); one column ``<method>_<quantity>`` each.
METHOD_COLUMNS: dict[str, tuple[pa.DataType, str, str]] = {
    "completeness_error": (pa.float64(), "logit",
                           "|sum of attributions - (output - reference_output)|; NaN where not promised"),
    "relative_completeness_error": (pa.float64(), "fraction", "completeness_error / |output - reference_output|"),
    "hit_step_cap": (pa.bool_(), "", "IG: the sample hit the step cap unconverged; null for other methods"),
    "agreement": (pa.float64(), "rank correlation",
                  "mean rank correlation of |map| with every other method, over the modalities"),
    "deletion_auc": (pa.float64(), "probability x fraction of units",
                     "area under the deletion curve (the predicted class's probability as units go to the "
                     "reference in attribution order), mean over modalities"),
    "random_auc": (pa.float64(), "probability x fraction of units", "the same in a seeded random order"),
    "faithful": (pa.bool_(), "", "deletion_auc < random_auc"),
}

#: quantity -> (Arrow type, unit, description); one column ``<method>_<quantity>__<modality>`` each.
METHOD_MODALITY_COLUMNS: dict[str, tuple[pa.DataType, str, str]] = {
    "total": (pa.float64(), "logit (signed methods); method units (magnitude maps)",
              "sum of the modality's attribution map"),
    "share": (pa.float64(), "fraction", "the method's own modality share (AttributionResult.shares)"),
}


def column(quantity: str, *, method: str | None = None, modality: str | None = None) -> str:
    """The column name of ``quantity`` for ``method`` and / or ``modality``.

    >>> column("total", method="ig", modality="image")
    'ig_total__image'
    >>> column("shapley", modality="text")
    'shapley__text'
    """
    name = f"{method}_{quantity}" if method else quantity
    return f"{name}__{modality}" if modality else name


def _field(name: str, spec: tuple[pa.DataType, str, str]) -> pa.Field:
    typ, unit, desc = spec
    return pa.field(name, typ, metadata={"unit": unit, "description": desc})


def audit_schema(methods: Sequence[str], modalities: Sequence[str]) -> pa.Schema:
    """The Arrow schema of audit rows for ``methods`` and ``modalities`` (in that order).

    Parameters
    ----------
    methods : sequence of str
        Attribution method names (:data:`mmexplain.attribution.METHODS`).
    modalities : sequence of str
        The model's modality names.

    Returns
    -------
    pyarrow.Schema
        Decision columns, then per-modality columns (quantity-major), then per method its
        per-decision and per-modality columns. Field metadata holds ``unit`` and
        ``description``.

    Raises
    ------
    ConfigError
        A name contains ``__`` (the modality separator) or two names repeat.
    """
    for what, names in (("methods", methods), ("modalities", modalities)):
        bad = [n for n in names if "__" in n or not n]
        if bad:
            raise ConfigError(f"{what} {bad}: audit column names cannot hold '__' or be empty.")
        if len(set(names)) != len(names):
            raise ConfigError(f"{what} {list(names)} repeat a name.")
    fields = [_field(n, s) for n, s in DECISION_COLUMNS.items()]
    fields += [_field(column(q, modality=m), s) for q, s in MODALITY_COLUMNS.items() for m in modalities]
    for k in methods:
        fields += [_field(column(q, method=k), s) for q, s in METHOD_COLUMNS.items()]
        fields += [_field(column(q, method=k, modality=m), s)
                   for q, s in METHOD_MODALITY_COLUMNS.items() for m in modalities]
    return pa.schema(fields)
