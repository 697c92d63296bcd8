"""Decision audit: one card per decision for a reviewer.

A card holds the inputs, prediction and probability, the true label, every method's
attribution, each modality's Shapley share, the prediction with each modality removed,
and quality flags (methods disagree, low faithfulness, sanity failure).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .analysis import baselines_for, explain
from .attribution import AttributionResult, modality_shapley
from .exceptions import ConfigError
from .kinds import KINDS
from .metrics import agreement_matrix, perturbation_curves
from .training import Run, predict


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
    """Everything a reviewer needs about one decision."""

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
    kinds: dict[str, str] = field(default_factory=dict)
    valid_tokens: dict[str, torch.Tensor] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary for the report's results file."""
        return {"index": self.index, "predicted": self.predicted, "probability": round(self.probability, 4),
                "true": self.true, "correct": self.predicted == self.true, "texts": self.texts,
                "shapley_shares": self.shapley_shares, "removed": {k: list(v) for k, v in self.removed.items()},
                "flags": self.flags}

    def header_html(self) -> str:
        """Card header; every user-provided string is HTML-escaped."""
        e = html.escape
        verdict = "correct" if self.predicted == self.true else "WRONG"
        texts = "".join(f"<p><b>{e(k)}</b>: {e(v)}</p>" for k, v in self.texts.items())
        flags = ", ".join(e(f) for f in self.flags) or "none"
        return (
            f"<div style='border-top:2px solid #888;margin-top:1em'><h3>Sample {self.index}: {verdict}</h3>{texts}"
            f"<p>Predicted <b>{e(self.predicted)}</b> with probability {self.probability:.3f}; "
            f"true label <b>{e(self.true)}</b>.</p><p>Quality flags: <b>{flags}</b></p></div>"
        )

    def table(self) -> pd.DataFrame:
        """Per modality: Shapley share, each method's share, prediction without it."""
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
        """Plotly figures: each method's image overlay and token highlight."""
        from . import viz

        figs = []
        for name, res in self.attributions.items():
            for m, kind in self.kinds.items():
                title = f"sample {self.index} — {name} — {m}"
                info = KINDS.get(kind)
                if info.evidence == "mask":
                    figs.append(viz.image_attribution(self.inputs[m][0], res.maps[m][0], title=title,
                                                      mask=self.evidence.get(m)))
                elif info.integer_ids and m in self.tokens:
                    figs.append(viz.token_attribution(self.tokens[m], res.maps[m][0], title=title,
                                                      valid=self.valid_tokens.get(m)))
        return figs


def decision_cards(
    run: Run, ids: torch.Tensor, *, methods: Sequence[str] = ("ig", "saliency", "deeplift", "occlusion"),
    agreement_threshold: float = 0.3, split: str = "test", sanity: dict[str, bool] | None = None,
) -> list[DecisionCard]:
    """Build one :class:`DecisionCard` per sample index of ``split``.

    Parameters
    ----------
    sanity : dict of str -> bool, optional
        Whether each method passed the randomisation sanity check on this model
        (:func:`mmexplain.analysis.sanity_table`); a failed method flags every card.
    """
    data = run.splits[split]
    names = data.label_names or [str(i) for i in range(run.model.n_outputs)]
    x_all = data.inputs(ids)
    out = predict(run.model, data.subset(ids)).softmax(1)
    pred = out.argmax(1)
    results = explain(run, ids, methods, split=split)
    base = baselines_for(run, x_all)
    sv = modality_shapley(run.model, x_all, target=pred)
    sv_shares = sv.shares()
    removed_probs = {}
    with torch.no_grad():
        for m in run.model.modalities:
            x = dict(x_all)
            x[m] = base[m]
            removed_probs[m] = run.model(**x).softmax(1)
    del_curves = {name: perturbation_curves(run.model, x_all, res.maps, res.modalities, res.target,
                                            baselines=base, steps=8) for name, res in results.items()}
    tok = run.tokenizer
    cards = []
    for k, i in enumerate(ids.tolist()):
        flags = []
        one = {name: {m: v[k : k + 1] for m, v in res.maps.items()} for name, res in results.items()}
        agree = agreement_matrix(one, absolute=True)
        pairs = agree[agree.method_a < agree.method_b]
        if len(pairs) and float(np.nanmean(pairs.correlation)) < agreement_threshold:
            flags.append(f"methods disagree (mean rank correlation {np.nanmean(pairs.correlation):.2f})")
        for name, curves in del_curves.items():
            worse = [m for m, c in curves.items() if c.auc[k] >= c.random_auc[k]]
            if name == methods[0] and worse:
                flags.append(f"low faithfulness of {name} on {', '.join(worse)} (deletion no better than random)")
        flags += [f"sanity check failed for {m}" for m, ok in (sanity or {}).items() if not ok]
        texts, tokens, evidence, kinds, valid = {}, {}, {}, {}, {}
        for spec in run.model.modality_specs:
            kinds[spec.name] = spec.kind
            if spec.kind_info.integer_ids:
                stored = data.meta.get("texts", {}).get(spec.name)
                if stored is not None:
                    texts[spec.name] = stored[int(data.rows[spec.name][i])]
                if tok is not None:
                    tokens[spec.name] = tok.convert_ids_to_tokens(x_all[spec.name][k].tolist())
                    valid[spec.name] = x_all[spec.name][k] != spec.pad_id
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
            flags=flags, tokens=tokens, evidence=evidence, kinds=kinds, valid_tokens=valid,
        ))
    return cards
