"""Decision audit: one card per decision for a reviewer.

A card holds the inputs, prediction and probability, the true label, every method's
attribution, each modality's Shapley share, the prediction with each modality at the
model's reference ("absent", in words on the card), and beside them a trust panel for
this decision (:func:`mmexplain.analysis.trust_panel`, the same numbers the
explanation-quality report aggregates) with the quality flags it raises.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from .analysis import (
    DEFAULT_AGREEMENT_THRESHOLD,
    TrustPanel,
    baselines_for,
    explain,
    modality_figure,
    trust_flags,
    trust_panel,
    valid_masks,
)
from .attribution import AttributionResult, ModalityShapley, modality_shapley
from .exceptions import ConfigError
from .modality import ModalitySpec
from .training import Run, predict

#: Methods a decision audit runs by default (cards and streamed audits alike).
AUDIT_METHODS = ("ig", "saliency", "deeplift", "occlusion")


def choose_audit_samples(
    run: Run, *, sample_ids: Sequence[int] = (), n_errors: int = 3, n_random: int = 3, seed: int = 0,
    split: str = "test",
) -> torch.Tensor:
    """The given ``sample_ids``, or the ``n_errors`` most confident errors plus ``n_random``
    random decisions of ``split`` (seeded)."""
    data = run.splits[split]
    if sample_ids:
        ids = torch.as_tensor(list(sample_ids), dtype=torch.long)
        bad = [int(i) for i in ids if not 0 <= int(i) < len(data)]
        if bad:
            raise ConfigError(f"sample_ids {bad} are outside the {split} split (0..{len(data) - 1}).")
        return ids
    prob = predict(run.model, data).softmax(1)
    conf, pred = prob.max(1)
    wrong = torch.nonzero(pred != data.targets).flatten()
    errors = wrong[conf[wrong].argsort(descending=True)[:n_errors]]
    rest = torch.tensor([i for i in range(len(data)) if i not in set(errors.tolist())])
    g = torch.Generator().manual_seed(seed)
    random = rest[torch.randperm(len(rest), generator=g)[:n_random]]
    return torch.cat([errors, random])


@dataclass
class DecisionCard:
    """Everything a reviewer needs about one decision.

    Attributes
    ----------
    attributions : dict of str -> AttributionResult
        Each method's result for this sample alone (``res.one(k)`` of the batch's).
    shapley_shares : dict of str -> float
        Modality Shapley shares (MM-SHAP rule) of the predicted logit.
    removed : dict of str -> (str, float)
        The prediction and its probability with each modality at its reference.
    reference : dict of str -> str
        What "absent" means per modality, in words.
    trust : TrustPanel
        The panel of the audited batch; :meth:`trust_table` is this sample's row per method.
    position : int
        This sample's position in ``trust``.
    shapley : ModalityShapley or None
        This decision's modality Shapley values and interaction matrix (one sample), from
        which ``shapley_shares`` come.
    what_if : dict of str -> str
        The explorer's edits of the inputs, per modality in words (empty for the data's own
        decisions); ``true`` is then the original sample's label.
    """

    index: int
    inputs: dict[str, torch.Tensor]
    predicted: str
    probability: float
    true: str
    texts: dict[str, str]
    attributions: dict[str, AttributionResult]
    shapley_shares: dict[str, float]
    removed: dict[str, tuple[str, float]]
    flags: list[str] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    evidence: dict[str, torch.Tensor] = field(default_factory=dict)
    valid_tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    modalities: list[ModalitySpec] = field(default_factory=list)
    reference: dict[str, str] = field(default_factory=dict)
    trust: TrustPanel | None = None
    position: int = 0
    shapley: ModalityShapley | None = None
    what_if: dict[str, str] = field(default_factory=dict)

    def trust_table(self) -> pd.DataFrame:
        """This decision's trust panel in words, one row per method (empty without a panel)."""
        return self.trust.table(self.position) if self.trust is not None else pd.DataFrame()

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary for the report's results file."""
        return {"index": self.index, "predicted": self.predicted, "probability": round(self.probability, 4),
                "true": self.true, "correct": self.predicted == self.true, "texts": self.texts,
                "shapley_shares": self.shapley_shares,
                "method_shares": {name: {m: _num(res.shares()[0, j]) for j, m in enumerate(res.modality_names)}
                                  for name, res in self.attributions.items()},
                "removed": {k: list(v) for k, v in self.removed.items()},
                "reference": self.reference,
                "trust": self.trust.summary(self.position) if self.trust is not None else {},
                "flags": self.flags, "what_if": dict(self.what_if)}

    def header_html(self) -> str:
        """Card header; every user-provided string is HTML-escaped."""
        e = html.escape
        verdict = "correct" if self.predicted == self.true else "WRONG"
        texts = "".join(f"<p><b>{e(k)}</b>: {e(v)}</p>" for k, v in self.texts.items())
        flags = "".join(f"<li>{e(f)}</li>" for f in self.flags)
        absent = "; ".join(f"{e(m)} = {e(w)}" for m, w in self.reference.items())
        what_if = ("<p><b>What-if</b> (true label of the original sample): "
                   + "; ".join(f"{e(m)}: {e(w)}" for m, w in self.what_if.items()) + "</p>") if self.what_if else ""
        return (
            f"<div style='border-top:2px solid #888;margin-top:1em'><h3>Sample {self.index}: {verdict}</h3>{what_if}{texts}"
            f"<p>Predicted <b>{e(self.predicted)}</b> with probability {self.probability:.3f}; "
            f"true label <b>{e(self.true)}</b>.</p>"
            f"<p><small>Absent means: {absent or 'the model has no stored reference'}</small></p>"
            f"<p>Quality flags: {'<ul>' + flags + '</ul>' if flags else '<b>none</b>'}</p></div>"
        )

    def trust_html(self) -> str:
        """The trust panel beside the explanation: this decision's per-method checks."""
        if self.trust is None:
            return ""
        return (f"<div><p><b>How far to trust these explanations</b> (this decision; sanity is the "
                f"model-level verdict)</p>{self.trust.html(self.position)}</div>")

    def html(self) -> str:
        """The whole card as HTML: header, shares table and trust panel (figures apart)."""
        shares = self.table().to_html(index=False, escape=True, border=0)
        return f"{self.header_html()}{shares}{self.trust_html()}"

    def table(self) -> pd.DataFrame:
        """Per modality: Shapley share, each method's share (its own rule), prediction without it."""
        rows = []
        for m in self.shapley_shares:
            row: dict[str, Any] = {"modality": m, "shapley_share": round(self.shapley_shares[m], 3)}
            for name, res in self.attributions.items():
                j = res.modality_names.index(m)
                row[f"{name}_share"] = round(float(res.shares()[0, j]), 3)
            label, p = self.removed[m]
            row["prediction_without"] = f"{label} ({p:.2f})"
            rows.append(row)
        return pd.DataFrame(rows)

    def figures(self) -> list:
        """Plotly figures: each method's map of each modality, drawn as its kind declares."""
        figs = []
        for name, res in self.attributions.items():
            for spec in self.modalities:
                figs.append(modality_figure(
                    spec, self.inputs[spec.name][0], res.maps[spec.name][0],
                    title=f"sample {self.index} — {name} — {spec.name}", tokens=self.tokens.get(spec.name),
                    mask=self.evidence.get(spec.name), valid=self.valid_tokens.get(spec.name)))
        return figs


def check_card(
    run: Run, ids: torch.Tensor, card: DecisionCard, *, methods: Sequence[str] = AUDIT_METHODS,
    agreement_threshold: float = DEFAULT_AGREEMENT_THRESHOLD, split: str = "test", sanity: pd.DataFrame | None = None,
    steps: int = 10,
) -> DecisionCard:
    """``card``, built by :func:`decision_cards` with ``trust=False``, with its trust panel and
    flags added; its maps are reused, so it equals the card ``trust=True`` would have built.

    Parameters
    ----------
    ids : LongTensor of shape (1,)
        The sample of ``split`` the card was built for (as passed to :func:`decision_cards`).
    methods, agreement_threshold, split, sanity, steps
        As :func:`decision_cards`.
    """
    panel = trust_panel(run, ids, card.attributions, split=split, methods=methods, sanity=sanity, steps=steps)
    return replace(card, trust=panel, position=0,
                   flags=trust_flags(panel.to_frame(0), agreement_threshold=agreement_threshold))


def _one_sample(sv: ModalityShapley, k: int) -> ModalityShapley:
    """Sample ``k`` of ``sv`` as a one-sample :class:`ModalityShapley`."""
    return ModalityShapley(
        values=sv.values[k : k + 1], interactions=sv.interactions[k : k + 1], modalities=list(sv.modalities),
        base_value=sv.base_value[k : k + 1], full_value=sv.full_value[k : k + 1],
        coalition_values=sv.coalition_values[k : k + 1],
        target=None if sv.target is None else sv.target[k : k + 1], background_size=sv.background_size,
        game=sv.game, reference=dict(sv.reference))


def _num(v: Any) -> float | None:
    v = float(v)
    return round(v, 4) if np.isfinite(v) else None


def decision_cards(
    run: Run, ids: torch.Tensor, *, methods: Sequence[str] = AUDIT_METHODS,
    agreement_threshold: float = DEFAULT_AGREEMENT_THRESHOLD, split: str = "test", sanity: pd.DataFrame | None = None,
    steps: int = 10, trust: bool = True,
) -> list[DecisionCard]:
    """Build one :class:`DecisionCard` per sample index of ``split``.

    Methods whose rules do not hold for the model are left out (:func:`~mmexplain.analysis.explain`)
    and named on every card's trust panel.

    Parameters
    ----------
    sanity : pandas.DataFrame, optional
        A :func:`mmexplain.analysis.sanity_table` of this model; a method that failed it
        flags every card with the failing modality.
    agreement_threshold : float, default=0.3
        Flag a decision whose methods' mean rank correlation is below this
        (:func:`~mmexplain.analysis.trust_flags` states every rule).
    steps : int, default=10
        Steps of the deletion curves (as :func:`~mmexplain.analysis.faithfulness_table`).
    trust : bool, default=True
        Build the trust panel and its flags. False leaves them out (``card.trust`` None, no
        flags): the explorer shows a decision first and checks it next, the panel being
        most of the cost.
    """
    data = run.splits[split]
    names = data.label_names or [str(i) for i in range(run.model.n_outputs)]
    x_all = data.inputs(ids)
    out = predict(run.model, data.subset(ids)).softmax(1)
    pred = out.argmax(1)
    results = explain(run, ids, methods, split=split)
    panel = trust_panel(run, ids, results, split=split, methods=methods, sanity=sanity, steps=steps) if trust else None
    base = baselines_for(run, x_all)
    sv = modality_shapley(run.model, x_all, target=pred)
    sv_shares = sv.shares()
    removed_probs = {}
    with torch.no_grad():
        for m in run.model.modalities:
            x = dict(x_all)
            x[m] = base[m]
            removed_probs[m] = run.model(**x).softmax(1)
    vm = valid_masks(run, ids, split=split)
    reference = run.model.reference.describe()
    tok = run.tokenizer
    cards = []
    for k, i in enumerate(ids.tolist()):
        flags = trust_flags(panel.to_frame(k), agreement_threshold=agreement_threshold) if panel is not None else []
        texts, tokens, evidence, valid = {}, {}, {}, {}
        for spec in run.model.modality_specs:
            if spec.kind_info.integer_ids:
                stored = data.meta.get("texts", {}).get(spec.name)
                if stored is not None:
                    texts[spec.name] = stored[int(data.rows[spec.name][i])]
                if tok is not None:
                    tokens[spec.name] = tok.convert_ids_to_tokens(x_all[spec.name][k].tolist())
                valid[spec.name] = vm[spec.name][k]
            ev = data.evidence_for(spec.name, [i])
            if ev is not None and spec.kind_info.evidence == "mask":
                evidence[spec.name] = ev[0]
        cards.append(DecisionCard(
            index=i,
            inputs={m: v[k : k + 1] for m, v in x_all.items()},
            predicted=names[int(pred[k])],
            probability=float(out[k, pred[k]]),
            true=names[int(data.targets[i])],
            texts=texts,
            attributions={name: res.one(k) for name, res in results.items()},
            shapley_shares={m: float(sv_shares[k, j]) for j, m in enumerate(sv.modalities)},
            removed={m: (names[int(p[k].argmax())], float(p[k].max())) for m, p in removed_probs.items()},
            flags=flags, tokens=tokens, evidence=evidence, valid_tokens=valid,
            modalities=list(run.model.modality_specs), reference=reference, trust=panel, position=k,
            shapley=_one_sample(sv, k),
        ))
    return cards
