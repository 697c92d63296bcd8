"""What-if edits of one decision: one class per edit, the one place that checks and applies it.

Every modality can be kept (:class:`Keep`), dropped to the model's reference (:class:`Drop`)
or taken from another decision (:class:`Replace`). Beyond those, a modality kind names the
free-form edit it allows in its ``edit`` flag (:class:`~mmexplain.kinds.ModalityKind`):
``"text"`` (:class:`TextEdit`) or ``"values"`` (:class:`ValuesEdit`), looked up in
:data:`EDITS`. The explorer (:mod:`.views`) stores ``(edit name, value)`` per modality and
asks the edit to check and to apply it; the widget (:mod:`.widget`) asks the edit for its
controls and reads the value back from them. Nothing else switches on an edit's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..exceptions import ConfigError

if TYPE_CHECKING:  # the widget's controls import ipywidgets only when a widget is built
    import ipywidgets

    from ..data import MultimodalDataset
    from ..training import Run

__all__ = ["DROP", "EDITS", "KEEP", "REPLACE", "Edit", "WhatIf", "free_edit"]


@dataclass
class WhatIf:
    """One decision of ``data`` while its edits are applied, modality by modality.

    Attributes
    ----------
    run : Run
    data : MultimodalDataset
        The split the decision is in.
    index : int
        Its position in ``data``.
    x : dict of str -> Tensor of shape (1, ...)
        The inputs, edited in place by each :meth:`Edit.apply`.
    base : dict of str -> Tensor of shape (1, ...)
        The model's reference ("absent") for each modality.
    texts, valid, evidence
        What the one-decision dataset's card shows: the text of each text modality, its
        valid-token mask, and ground-truth evidence (only for unedited modalities).
    words : dict of str -> str
        Each edit in words, for the card ("text edited to ...").
    """

    run: Run
    data: MultimodalDataset
    index: int
    x: dict[str, torch.Tensor]
    base: dict[str, torch.Tensor]
    texts: dict[str, list[str]] = field(default_factory=dict)
    valid: dict[str, torch.Tensor] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)

    def take_text(self, modality: str, position: int) -> None:
        """Show the stored text (and valid tokens) of decision ``position`` for ``modality``."""
        row = self.data.rows[modality][[position]]
        texts, valid = self.data.meta.get("texts", {}), self.data.meta.get("valid_tokens", {})
        if modality in texts:
            self.texts[modality] = [texts[modality][int(row[0])]]
        if modality in valid:
            self.valid[modality] = valid[modality][row]


class Edit:
    """One way to change a modality of a decision.

    Attributes
    ----------
    name : str
        How the explorer stores it (``(name, value)``) and how a kind's ``edit`` flag names it.
    """

    name: str = ""

    def available(self, run: Run, modality: str) -> bool:
        """Whether ``run`` can apply this edit to ``modality`` (e.g. text needs a tokenizer)."""
        return True

    def check(self, explorer: Any, modality: str, value: Any, previous: tuple[str, Any] | None) -> Any:
        """``value`` as stored, or a one-line ConfigError; ``previous`` is the modality's
        current ``(name, value)`` edit, if any (edits may build on it)."""
        return value

    def apply(self, state: WhatIf, modality: str, value: Any) -> None:
        """Change ``state.x[modality]`` (and what the card shows of it)."""
        raise NotImplementedError

    def controls(self, explorer: Any, modality: str) -> dict[str, ipywidgets.Widget]:
        """The widget's input controls for this edit, by role (``"edit"``, ``"feature"``)."""
        return {}

    def read(self, controls: Mapping[str, Any]) -> Any | None:
        """The value the controls hold, or None when they hold nothing to apply."""
        return None


class Keep(Edit):
    """The modality as the decision has it (no edit): its text and ground-truth evidence shown."""

    name = "keep"

    def apply(self, state: WhatIf, modality: str, value: Any) -> None:
        evidence = state.data.evidence_for(modality, [state.index])
        if evidence is not None:
            state.evidence[modality] = evidence
        state.take_text(modality, state.index)


class Drop(Edit):
    """The modality at the model's reference ("absent", :mod:`mmexplain.reference`)."""

    name = "drop"

    def apply(self, state: WhatIf, modality: str, value: Any) -> None:
        x = state.x[modality]
        state.x[modality] = state.base[modality].expand_as(x).clone()
        state.words[modality] = f"absent ({state.run.model.reference.describe().get(modality, 'the reference')})"
        if _spec(state.run, modality).kind_info.integer_ids:  # no text left to show
            state.texts[modality], state.valid[modality] = [""], torch.zeros_like(x, dtype=torch.bool)


class Replace(Edit):
    """The modality taken from another decision of the same split (value: its position)."""

    name = "replace"

    def check(self, explorer: Any, modality: str, value: Any, previous: tuple[str, Any] | None) -> int:
        n = len(explorer.data)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
            raise ConfigError(f"source must be a position in the {explorer.split} split (0..{n - 1}); "
                              f"got {value!r}.")
        return int(value)

    def apply(self, state: WhatIf, modality: str, value: int) -> None:
        state.x[modality] = state.data.inputs([value])[modality]
        state.words[modality] = f"replaced by decision {value}'s"
        state.take_text(modality, value)


class TextEdit(Edit):
    """New text, tokenized as the model's data was (value: the text)."""

    name = "text"

    def available(self, run: Run, modality: str) -> bool:
        return run.tokenizer is not None

    def check(self, explorer: Any, modality: str, value: Any, previous: tuple[str, Any] | None) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"value for {modality!r} must be the new text (a str); got {type(value).__name__}.")
        return value

    def apply(self, state: WhatIf, modality: str, value: str) -> None:
        enc = state.run.tokenizer.encode([value])
        state.x[modality] = enc.ids.to(state.x[modality].dtype)
        state.valid[modality], state.texts[modality] = enc.valid, [value]
        state.words[modality] = f"text edited to {value!r}"

    def controls(self, explorer: Any, modality: str) -> dict[str, ipywidgets.Widget]:
        import ipywidgets as W

        return {"edit": W.Text(description=f"{modality} text", layout=W.Layout(width="420px"),
                               continuous_update=False)}

    def read(self, controls: Mapping[str, Any]) -> str | None:
        text = controls["edit"].value
        return text if text.strip() else None


class ValuesEdit(Edit):
    """Some features set to new values, on top of the sample's own (value: ``{position: value}``)."""

    name = "values"

    def check(self, explorer: Any, modality: str, value: Any, previous: tuple[str, Any] | None) -> dict[int, float]:
        n = len(explorer.feature_names(modality))
        if not isinstance(value, Mapping) or not all(
                isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < n
                and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                for k, v in value.items()):
            raise ConfigError(f"value for {modality!r} must map feature positions 0..{n - 1} to finite numbers; "
                              f"got {value!r}.")
        merged = dict(previous[1]) if previous and previous[0] == self.name else {}
        return {**merged, **{int(k): float(v) for k, v in value.items()}}

    def apply(self, state: WhatIf, modality: str, value: dict[int, float]) -> None:
        x = state.x[modality] = state.x[modality].clone()
        flat = x.view(1, -1)
        for j, v in value.items():
            flat[0, j] = v
        state.words[modality] = "set " + ", ".join(f"{modality}[{j}] = {v:g}" for j, v in sorted(value.items()))

    def controls(self, explorer: Any, modality: str) -> dict[str, ipywidgets.Widget]:
        import ipywidgets as W

        names = explorer.feature_names(modality)
        return {"feature": W.Dropdown(options=[(s, j) for j, s in enumerate(names)], description="feature"),
                "edit": W.FloatText(description="value")}

    def read(self, controls: Mapping[str, Any]) -> dict[int, float]:
        return {int(controls["feature"].value): float(controls["edit"].value)}


def _spec(run: Run, modality: str) -> Any:
    return next(s for s in run.model.modality_specs if s.name == modality)


KEEP, DROP, REPLACE = Keep(), Drop(), Replace()

#: Edit name -> edit: every edit the explorer stores (``keep`` is the absence of one).
EDITS: dict[str, Edit] = {e.name: e for e in (KEEP, DROP, REPLACE, TextEdit(), ValuesEdit())}


def free_edit(run: Run, modality: str) -> Edit | None:
    """The free-form edit ``modality``'s kind allows (its ``edit`` flag), if ``run`` can apply it."""
    name = _spec(run, modality).kind_info.edit
    edit = EDITS[name] if name is not None else None
    return edit if edit is not None and edit.available(run, modality) else None
