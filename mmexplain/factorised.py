"""Factorised models: ``forward`` is ``fuse(encode(inputs))``, each modality encoded alone.

Explainers that run a model on many rows mixing a few inputs -- modality Shapley values'
coalitions, EMAP's cross pairs, deletion and insertion curves (one modality perturbed, the
others kept) -- encode each distinct row of each modality once and run only the fusion
per mixed row, when the model declares ``modality_factorised = True`` (built-in models
do). The protocol:

- ``model.encode(inputs)``: a dict of per-modality features for the modalities given
  (any subset of the model's), row ``i`` of a modality depending on row ``i`` of that
  modality only;
- ``model.fuse(features)``: the outputs from one feature tensor per modality.
"""

from __future__ import annotations

from typing import Any

from .exceptions import AttributionError


def use_factorised(model: Any, factorised: bool | None) -> bool:
    """Whether to evaluate ``model`` factorised: ``factorised`` when given (True checks the
    protocol is there), else what the model declares (``modality_factorised``)."""
    if factorised is None:
        return bool(getattr(model, "modality_factorised", False))
    if factorised:
        for attr in ("encode", "fuse"):
            if not callable(getattr(model, attr, None)):
                raise AttributionError(
                    f"factorised=True needs model.{attr}(...); {type(model).__name__} has none. "
                    "Pass factorised=False to evaluate model(**inputs) on every row."
                )
    return bool(factorised)
