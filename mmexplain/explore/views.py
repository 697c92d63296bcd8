"""The explorer's state and views, testable without a browser.

:class:`Explorer` holds a run, a pool of decisions and the current what-if edits;
:meth:`Explorer.select` and the edits (:meth:`Explorer.drop`, :meth:`Explorer.replace`,
:meth:`Explorer.edit`) return a :class:`DecisionView`. Every view wraps the
:class:`~mmexplain.audit.DecisionCard` that :func:`~mmexplain.audit.decision_cards` builds
for it -- prediction, each method's maps and shares, modality Shapley values and
interactions, the prediction with each modality absent, the trust panel and its flags -- so
the explorer, the static ``explorer.html``, an exported card and notebook 04's cards show
the same numbers. A what-if is a one-decision dataset built from the edited inputs ("absent"
is the model's reference, :func:`mmexplain.analysis.baselines_for`), audited the same way.

Methods whose :class:`~mmexplain.attribution.methods.Method` is ``single_pass`` (saliency,
input × gradient; DeepLift where its rules hold) run on every selection and edit; the
others (IG through MiniLM is seconds) on demand, :meth:`Explorer.compute`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..analysis import baselines_for, modality_figure, select_samples
from ..attribution import METHODS
from ..audit import DecisionCard, check_card, decision_cards
from ..data import MultimodalDataset, Splits
from ..exceptions import ConfigError
from ..training import Run, load_run
from .edits import DROP, EDITS, KEEP, REPLACE, Edit, WhatIf, free_edit

__all__ = ["DEFAULT_POOL", "Cancelled", "DecisionView", "Explorer", "as_run", "interactive_methods"]

#: Decisions the explorer audits up front (their views are ready; any other is computed on selection).
DEFAULT_POOL = 32


class Cancelled(Exception):
    """An on-demand computation was cancelled; the current view is unchanged."""


def interactive_methods(run: Run) -> list[str]:
    """The registered methods that run on every selection and edit: ``single_pass`` ones whose
    rules hold for the model."""
    return [m for m in METHODS.names() if METHODS.get(m).single_pass and not METHODS.get(m).why_not(run.model)]


def as_run(run_or_model: Any, data: Any = None) -> Run:
    """A :class:`~mmexplain.training.Run` from what :func:`mmexplain.explore` accepts.

    Parameters
    ----------
    run_or_model : Run, str, PathLike or MultimodalModel
        A trained run, a saved run's folder (:func:`~mmexplain.training.load_run`), or a model
        with ``modality_specs`` and a stored reference.
    data : MultimodalDataset, optional
        The decisions to browse (its samples become the ``test`` split); required with a bare
        model, else default the run's test split.

    Raises
    ------
    ConfigError
        ``run_or_model`` is none of these, or a bare model comes without ``data``.
    """
    if isinstance(run_or_model, (str, os.PathLike)):
        run_or_model = load_run(run_or_model)
    if data is not None and not isinstance(data, MultimodalDataset):
        raise ConfigError(f"data must be a MultimodalDataset (e.g. run.splits.test); got {type(data).__name__}.")
    if isinstance(run_or_model, Run):
        if data is None:
            return run_or_model
        return dataclasses.replace(run_or_model, splits=Splits(run_or_model.splits.train,
                                                              run_or_model.splits.val, data))
    if isinstance(run_or_model, torch.nn.Module) and hasattr(run_or_model, "modality_specs"):
        if data is None:
            raise ConfigError("data is required with a bare model: pass the MultimodalDataset to browse.")
        return Run(model=run_or_model.eval(), splits=Splits(data, data, data), metrics={}, params={})
    raise ConfigError(f"run_or_model must be a Run, a saved run's folder or a model with modality_specs; "
                      f"got {type(run_or_model).__name__}.")


@dataclasses.dataclass
class DecisionView:
    """One decision as the explorer shows it: an audit card plus what the explorer adds.

    Attributes
    ----------
    card : DecisionCard
        The decision's audit card (:func:`~mmexplain.audit.decision_cards`); every number
        below is read from it.
    methods : list of str
        The methods computed for this view, in order.
    on_demand : list of str
        Methods that can be computed for it (:meth:`Explorer.compute`).
    seconds : float
        Wall time of building the view, when it was first built (views are cached).
    """

    card: DecisionCard
    methods: list[str]
    on_demand: list[str]
    seconds: float = 0.0

    @property
    def index(self) -> int:
        """Position of the decision in the explored split."""
        return self.card.index

    @property
    def predicted(self) -> str:
        return self.card.predicted

    @property
    def probability(self) -> float:
        return self.card.probability

    @property
    def true(self) -> str:
        return self.card.true

    @property
    def correct(self) -> bool:
        return self.card.predicted == self.card.true

    @property
    def flags(self) -> list[str]:
        """The trust checks' flags of this decision."""
        return list(self.card.flags)

    @property
    def checked(self) -> bool:
        """Whether the trust panel and flags are computed (:meth:`Explorer.check`)."""
        return self.card.trust is not None

    @property
    def what_if(self) -> dict[str, str]:
        return dict(self.card.what_if)

    @property
    def modalities(self) -> list[str]:
        return [s.name for s in self.card.modalities]

    @property
    def maps(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per method, per modality, the map of this decision (one sample, no batch axis)."""
        return {name: {m: v[0] for m, v in res.maps.items()} for name, res in self.card.attributions.items()}

    @property
    def method_shares(self) -> dict[str, dict[str, float | None]]:
        """Per method, each modality's share by the method's own rule (as on the card)."""
        return self.card.summary()["method_shares"]

    @property
    def shapley_shares(self) -> dict[str, float]:
        return dict(self.card.shapley_shares)

    @property
    def interactions(self) -> np.ndarray:
        """The (M, M) InterSHAP interaction matrix of the predicted logit (modalities' order)."""
        sv = self.card.shapley
        return sv.interactions[0].numpy() if sv is not None else np.full((len(self.modalities),) * 2, np.nan)

    @property
    def interaction_share(self) -> float:
        """The decision's InterSHAP interaction share (fraction in [0, 1]; NaN when undefined)."""
        sv = self.card.shapley
        return float(sv.interaction_share(per_sample=True)[0]) if sv is not None else float("nan")

    @property
    def removed(self) -> dict[str, tuple[str, float]]:
        """Per modality, the prediction and its probability with that modality at its reference."""
        return dict(self.card.removed)

    def tokens(self, modality: str) -> list[str]:
        """The real tokens of an id modality (padding and special tokens left out)."""
        words = self.card.tokens.get(modality, [])
        valid = self.card.valid_tokens.get(modality)
        return [w for w, v in zip(words, valid.tolist() if valid is not None else [True] * len(words)) if v]

    def trust_table(self) -> pd.DataFrame:
        """This decision's trust panel, one row per method (the card's)."""
        return self.card.trust_table()

    def summary(self) -> dict[str, Any]:
        """JSON-safe: the audit card's summary (notebook 04's schema) plus ``interaction_share``
        and ``interactions``."""
        out = self.card.summary()
        share = self.interaction_share
        out["interaction_share"] = round(share, 4) if np.isfinite(share) else None
        out["interactions"] = [[round(float(v), 6) for v in row] for row in self.interactions]
        return out

    # -- figures (each drawn by mmexplain.viz, as the cards draw them) --------------------
    def method_figures(self, method: str) -> dict[str, Any]:
        """Per modality, the figure of ``method``'s map (:func:`mmexplain.analysis.modality_figure`)."""
        if method not in self.card.attributions:
            raise ConfigError(f"method={method!r} is not computed for this view; computed: {self.methods}.")
        res = self.card.attributions[method]
        c = self.card
        return {s.name: modality_figure(s, c.inputs[s.name][0], res.maps[s.name][0],
                                        title=f"{method} — {s.name}", tokens=c.tokens.get(s.name),
                                        mask=c.evidence.get(s.name), valid=c.valid_tokens.get(s.name))
                for s in c.modalities}

    def shapley_figure(self) -> Any:
        """Bars of the modality Shapley shares (MM-SHAP rule) of the predicted logit."""
        from .. import viz

        return viz.modality_shares(pd.Series(self.shapley_shares), title="Modality Shapley shares")

    def interaction_figure(self) -> Any:
        """The interaction matrix as a heat map (:func:`mmexplain.viz.interaction_matrix`)."""
        from .. import viz

        return viz.interaction_matrix(self.interactions, self.modalities,
                                      title=f"Interactions (InterSHAP share {self.interaction_share:.2f})")

    def export(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the view as an audit card: ``<path>.html`` and ``<path>.json``.

        The JSON is :meth:`DecisionCard.summary` (notebook 04's ``audited`` entries); the
        HTML is the card's HTML with its figures, plotly.js inline (opens offline). A view
        built without its trust panel (``defer_trust``) is exported without it;
        :meth:`Explorer.export` checks it first.

        Returns
        -------
        (Path, Path)
            The HTML and JSON files.
        """
        import plotly.io as pio

        base = Path(path)
        if base.suffix in (".html", ".json"):
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        figs = "".join(pio.to_html(f, full_html=False, include_plotlyjs=(i == 0))
                       for i, f in enumerate(self.card.figures()))
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Decision {self.index}</title></head>"
                f"<body>{self.card.html()}{figs}</body></html>")
        html_path, json_path = base.with_suffix(".html"), base.with_suffix(".json")
        html_path.write_text(page, encoding="utf-8")
        json_path.write_text(json.dumps(self.card.summary(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return html_path, json_path


def _check_flag(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{name} must be True, False or None; got {value!r}.")


class Explorer:
    """Browse a run's decisions and ask what-ifs; every answer is a :class:`DecisionView`.

    Parameters
    ----------
    run : Run
    ids : sequence of int or LongTensor, optional
        The decisions (positions in ``split``) to browse; default :data:`DEFAULT_POOL`
        seeded samples (:func:`~mmexplain.analysis.select_samples`). Their cards are built
        up front in one batch, so filters by flags and interaction work at once.
    methods : sequence of str, optional
        Methods computed on every selection and edit; default :func:`interactive_methods`.
    split : str, default="test"
    sanity : pandas.DataFrame, optional
        A :func:`~mmexplain.analysis.sanity_table` of the model, for the trust panel.
    steps : int, default=10
        Steps of the trust panel's deletion curves.
    seed : int, default=0
    defer_trust : bool, default=False
        Build views without their trust panel (most of a view's cost: the deletion curves);
        :meth:`check` adds it to the current view. The widget shows a decision first and
        checks it in the background. The views of ``ids`` are always checked.
    cards : sequence of DecisionCard, optional
        Cards of ``ids`` already built by :func:`~mmexplain.audit.decision_cards` with
        ``methods`` (notebook 04's): used as they are instead of building them again.

    Attributes
    ----------
    decisions : pandas.DataFrame
        One row per browsable decision: ``index``, ``true``, ``predicted``, ``probability``,
        ``correct``, ``flagged``, ``flags``, ``interaction_share``.
    current : DecisionView
        The view shown now.
    """

    def __init__(self, run: Run, *, ids: Sequence[int] | torch.Tensor | None = None,
                 methods: Sequence[str] | None = None, split: str = "test", sanity: pd.DataFrame | None = None,
                 steps: int = 10, seed: int = 0, defer_trust: bool = False,
                 cards: Sequence[DecisionCard] | None = None) -> None:
        if not isinstance(run, Run):
            raise ConfigError(f"run must be a Run (see mmexplain.explore.as_run); got {type(run).__name__}.")
        self.run, self.split, self.sanity, self.steps = run, split, sanity, steps
        self.defer_trust = bool(defer_trust)
        # one computation at a time: attribution hooks the model's embedding layers, so a
        # background check or method must not run a forward pass meanwhile
        self._lock = threading.RLock()
        self.data = run.splits[split]
        for m in methods or ():
            METHODS.get(m)  # an unknown name fails here, listing the methods there are
        self.methods = list(methods) if methods is not None else interactive_methods(run)
        if not self.methods:
            raise ConfigError("methods is empty; name at least one (e.g. ['saliency']).")
        try:
            idx = select_samples(run, DEFAULT_POOL, split=split, seed=seed) if ids is None else \
                torch.as_tensor(list(ids) if not isinstance(ids, torch.Tensor) else ids, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"ids must be a sequence of positions in the {split} split; got {ids!r}.") from None
        if idx.dim() != 1 or len(idx) == 0 or int(idx.min()) < 0 or int(idx.max()) >= len(self.data):
            raise ConfigError(f"ids must be positions in the {split} split (0..{len(self.data) - 1}); got "
                              f"{idx.tolist()[:10]}.")
        self._cache: dict[tuple, DecisionView] = {}
        self._sources: dict[tuple, tuple[Run, torch.Tensor]] = {}  # unchecked views: the run and ids they came from
        t0 = time.perf_counter()
        if cards is None:
            cards = decision_cards(run, idx, methods=self.methods, split=split, sanity=sanity, steps=steps)
        elif [c.index for c in cards] != idx.tolist():
            raise ConfigError(f"cards are of decisions {[c.index for c in cards]}, not of ids {idx.tolist()}.")
        per = (time.perf_counter() - t0) / len(cards)
        for card in cards:
            self._cache[self._key(card.index, {}, self.methods, True)] = self._view(card, self.methods, per)
        self.decisions = pd.DataFrame([{
            "index": v.index, "true": v.true, "predicted": v.predicted, "probability": v.probability,
            "correct": v.correct, "flagged": bool(v.flags), "flags": "; ".join(v.flags),
            "interaction_share": v.interaction_share,
        } for v in (self._cache[self._key(i, {}, self.methods, True)] for i in idx.tolist())])
        self._index = int(idx[0])
        self._edits: dict[str, tuple[str, Any]] = {}
        self._extra: list[str] = []
        self.current = self._cache[self._key(self._index, {}, self.methods, True)]

    # -- what can be done -----------------------------------------------------------------
    @property
    def on_demand(self) -> list[str]:
        """Registered methods not run on every selection, whose rules hold for the model."""
        return [m for m in METHODS.names() if m not in self.methods and not METHODS.get(m).why_not(self.run.model)]

    @property
    def labels(self) -> list[str]:
        """Class names of the decisions (for the class filter)."""
        return sorted(set(self.decisions["true"]) | set(self.decisions["predicted"]))

    def edit_kind(self, modality: str) -> str | None:
        """How ``modality`` can be edited beyond drop / replace: the name of its kind's
        free-form edit (:func:`~mmexplain.explore.edits.free_edit`), or None."""
        self._spec(modality)
        edit = free_edit(self.run, modality)
        return None if edit is None else edit.name

    def feature_names(self, modality: str) -> list[str]:
        """Names of the units a ``"values"`` edit can set (``modality[j]``)."""
        n = int(self.data.inputs([self._index])[modality][0].numel())
        return [f"{modality}[{j}]" for j in range(n)]

    def _spec(self, modality: str) -> Any:
        for s in self.run.model.modality_specs:
            if s.name == modality:
                return s
        raise ConfigError(f"modality={modality!r} is not one of the model's {self.run.model.modalities}.")

    # -- browsing ------------------------------------------------------------------------------
    def filter(self, *, label: str | None = None, correct: bool | None = None, min_confidence: float = 0.0,
               max_confidence: float = 1.0, flagged: bool | None = None,
               sort: str = "index") -> pd.DataFrame:
        """The decisions that pass the filters, sorted.

        Parameters
        ----------
        label : str, optional
            Keep decisions whose true or predicted class is ``label``.
        correct : bool, optional
            Keep right (True) or wrong (False) decisions.
        min_confidence, max_confidence : float, default=0, 1
            Keep decisions whose predicted probability is in this range.
        flagged : bool, optional
            Keep decisions the trust checks flagged (True) or did not (False).
        sort : {"index", "interaction", "confidence", "least_confidence"}, default="index"
            ``"interaction"``: highest InterSHAP interaction share first.

        Returns
        -------
        pandas.DataFrame
            Rows of :attr:`decisions`.
        """
        _check_flag("correct", correct)
        _check_flag("flagged", flagged)
        orders = {"index": ("index", True), "interaction": ("interaction_share", False),
                  "confidence": ("probability", False), "least_confidence": ("probability", True)}
        if sort not in orders:
            raise ConfigError(f"sort={sort!r}; choose one of {list(orders)}.")
        if not 0.0 <= min_confidence <= max_confidence <= 1.0:
            raise ConfigError(f"min_confidence={min_confidence!r} and max_confidence={max_confidence!r} must "
                              "satisfy 0 <= min <= max <= 1.")
        d = self.decisions
        keep = (d.probability >= min_confidence) & (d.probability <= max_confidence)
        if label is not None:
            if label not in self.labels:
                raise ConfigError(f"label={label!r} is not a class of these decisions; classes: {self.labels}.")
            keep &= (d.true == label) | (d.predicted == label)
        if correct is not None:
            keep &= d.correct == correct
        if flagged is not None:
            keep &= d.flagged == flagged
        col, asc = orders[sort]
        return d[keep].sort_values(col, ascending=asc, na_position="last", kind="stable")

    def select(self, index: int) -> DecisionView:
        """Show decision ``index`` (a position in the split) without edits."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.data):
            raise ConfigError(f"index must be a position in the {self.split} split (0..{len(self.data) - 1}); "
                              f"got {index!r}.")
        self._index, self._edits, self._extra = int(index), {}, []
        return self._refresh()

    def view(self, index: int) -> DecisionView:
        """The view of decision ``index`` without edits, leaving :attr:`current` as it is."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.data):
            raise ConfigError(f"index must be a position in the {self.split} split (0..{len(self.data) - 1}); "
                              f"got {index!r}.")
        return self._build(int(index), {}, self.methods, trust=True)

    def check(self) -> DecisionView:
        """The current view with its trust panel and flags (built now unless it has them)."""
        current, index, edits, methods = self.current, self._index, dict(self._edits), [*self.methods, *self._extra]
        if current.checked:
            return current
        trusted = self._key(index, edits, methods, True)
        if trusted in self._cache:
            view = self._cache[trusted]
        else:  # the panel on the maps already computed
            run, ids = self._sources[self._key(index, edits, methods, False)]
            t0 = time.perf_counter()
            with self._lock:
                card = check_card(run, ids, current.card, methods=methods, split=self.split,
                                  sanity=self.sanity, steps=self.steps)
            view = self._view(card, methods, current.seconds + time.perf_counter() - t0)
            self._cache[trusted] = view
        if (self._index, self._edits, [*self.methods, *self._extra]) == (index, edits, methods):
            self.current = view
        return view

    def export(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """:meth:`check` the current view, then write it as an audit card (:meth:`DecisionView.export`)."""
        return self.check().export(path)

    def reset(self) -> DecisionView:
        """Undo every edit of the current decision."""
        self._edits = {}
        return self._refresh()

    # -- what-if ------------------------------------------------------------------------------
    def drop(self, modality: str) -> DecisionView:
        """Set ``modality`` to the model's reference ("absent", :mod:`mmexplain.reference`)."""
        return self._apply(modality, DROP, None)

    def replace(self, modality: str, source: int) -> DecisionView:
        """Take ``modality`` from decision ``source`` (a position in the split)."""
        return self._apply(modality, REPLACE, source)

    def edit(self, modality: str, value: Any) -> DecisionView:
        """Edit ``modality`` as its kind allows (:meth:`edit_kind`).

        Parameters
        ----------
        modality : str
        value : str or mapping of int -> float
            ``"text"`` kinds: the new text, tokenized as the model's data was. ``"values"``
            kinds: ``{unit: value}`` (e.g. ``{2: 0.5}`` sets feature 2), on top of the sample's
            own values.

        Raises
        ------
        ConfigError
            The modality cannot be edited so, or ``value`` does not fit it.
        """
        spec = self._spec(modality)
        edit = free_edit(self.run, modality)
        if edit is None:
            no_tokenizer = spec.kind_info.edit is not None
            raise ConfigError(f"modality {modality!r} ({spec.kind}) cannot be edited, only dropped or replaced"
                              + (" (the run has no tokenizer)" if no_tokenizer else "") + ".")
        return self._apply(modality, edit, value)

    def _apply(self, modality: str, edit: Edit, value: Any) -> DecisionView:
        self._spec(modality)
        self._edits[modality] = (edit.name, edit.check(self, modality, value, self._edits.get(modality)))
        return self._refresh()

    def compute(self, method: str, *, cancel: threading.Event | None = None) -> DecisionView:
        """Add ``method`` (one of :attr:`on_demand`) to the current view.

        Parameters
        ----------
        cancel : threading.Event, optional
            Set it (from another thread) to discard the result: the view stays as it was and
            :class:`Cancelled` is raised when the computation returns.

        Returns
        -------
        DecisionView
            The view with ``method`` added; it becomes :attr:`current` only if the decision
            and its edits are still the ones shown when it is done.
        """
        if method not in self.on_demand:
            raise ConfigError(f"method={method!r} is not computed on demand here; choose one of {self.on_demand}.")
        index, edits = self._index, dict(self._edits)
        extra = [*self._extra, method] if method not in self._extra else list(self._extra)
        view = self._build(index, edits, [*self.methods, *extra], cancel=cancel)
        if (self._index, self._edits) == (index, edits):  # still the decision shown (a thread may lag)
            self._extra = extra
            self.current = view
        return view

    # -- internals ----------------------------------------------------------------------------
    def _key(self, index: int, edits: Mapping[str, tuple[str, Any]], methods: Sequence[str], trust: bool) -> tuple:
        return (index, tuple(sorted((m, k, json.dumps(v, sort_keys=True)) for m, (k, v) in edits.items())),
                tuple(methods), trust)

    def _refresh(self) -> DecisionView:
        self.current = self._build(self._index, self._edits, [*self.methods, *self._extra])
        return self.current

    def _view(self, card: DecisionCard, methods: Sequence[str], seconds: float) -> DecisionView:
        return DecisionView(card, [m for m in methods if m in card.attributions],
                            [m for m in METHODS.names() if m not in card.attributions
                             and not METHODS.get(m).why_not(self.run.model)], seconds)

    def _build(self, index: int, edits: Mapping[str, tuple[str, Any]], methods: Sequence[str], *,
               cancel: threading.Event | None = None, trust: bool | None = None) -> DecisionView:
        trust = not self.defer_trust if trust is None else trust
        for k in (self._key(index, edits, methods, True), self._key(index, edits, methods, trust)):
            if k in self._cache:  # a checked view serves an unchecked request too
                return self._cache[k]
        key = self._key(index, edits, methods, trust)
        t0 = time.perf_counter()
        if edits:
            run, ids, words = self._what_if_run(index, edits)
        else:
            run, ids, words = self.run, torch.tensor([index]), {}
        with self._lock:
            card = decision_cards(run, ids, methods=methods, split=self.split, sanity=self.sanity,
                                  steps=self.steps, trust=trust)[0]
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"computing {list(methods)} for decision {index} was cancelled.")
        if edits:
            card = dataclasses.replace(card, index=index, what_if=words)
        view = self._view(card, methods, time.perf_counter() - t0)
        self._cache[key] = view
        if not trust:
            self._sources[key] = (run, ids)
        return view

    def _what_if_run(self, index: int, edits: Mapping[str, tuple[str, Any]]) -> tuple[Run, torch.Tensor, dict]:
        """The run with a one-decision ``split``: decision ``index`` with ``edits`` applied."""
        data = self.data
        x = data.inputs([index])
        state = WhatIf(self.run, data, index, x, baselines_for(self.run, x))
        for m in self.run.model.modalities:
            name, value = edits.get(m, (KEEP.name, None))
            EDITS[name].apply(state, m, value)
        one = MultimodalDataset(
            f"{data.name} (what-if of decision {index})", list(data.modalities), dict(state.x),
            {m: torch.zeros(1, dtype=torch.long) for m in state.x}, data.targets[[index]], data.task, data.label_names,
            state.evidence, {"texts": state.texts, "valid_tokens": state.valid})
        splits = Splits(self.run.splits.train, self.run.splits.val, self.run.splits.test)
        setattr(splits, self.split, one)
        return dataclasses.replace(self.run, splits=splits), torch.tensor([0]), state.words
