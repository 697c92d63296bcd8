"""Input checks shared by the whole library.

Every check raises ``TypeError`` / ``ValueError`` (via :class:`~mmexplain.exceptions.ConfigError`)
naming the argument, the value received, what is allowed and, where useful, the fix.
No ``assert``: checks must survive ``python -O``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from .exceptions import ConfigError


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise naming ``name``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {allowed}.")
    return value


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value}.")
    return value


def check_options(name: str, options: Mapping[str, Any], allowed: Iterable[str], *, owner: str) -> dict[str, Any]:
    """Return ``options`` as a dict if every key is in ``allowed``, else raise naming the others.

    >>> check_options("engine_options", {"address": "auto"}, ["address"], owner="the ray engine")
    {'address': 'auto'}
    """
    allowed = list(allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = f"only {', '.join(allowed)}" if allowed else "no options"
        raise ConfigError(f"{name} {unknown}: {owner} takes {takes}.")
    return dict(options)


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number > 0 (not nan, not inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a finite number > 0; got {value!r} ({type(value).__name__}).")
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be a finite number > 0; got {v}.")
    return v


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as float if ``low <= value <= high``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [{low}, {high}]; got {value!r}.") from None
    if not (low <= v <= high):
        raise ConfigError(f"{name} must be in [{low}, {high}]; got {v}.")
    return v


def check_inputs(
    inputs: Any, *, name: str = "inputs", modalities: Iterable[str] | None = None
) -> dict[str, torch.Tensor]:
    """Check a dict of modality tensors with a shared batch dimension.

    Parameters
    ----------
    inputs : dict of str -> Tensor of shape (N, ...)
    name : str
        The argument's name, used in error messages.
    modalities : iterable of str, optional
        The modality names the model expects; extra or missing keys are errors.

    Returns
    -------
    dict of str -> Tensor
        The same tensors, in ``modalities`` order when given.
    """
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"{name} must be a dict of modality name -> tensor (batch first); got {type(inputs).__name__}."
        )
    if not inputs:
        raise ValueError(f"{name} is empty; pass at least one modality tensor.")
    for key, value in inputs.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a torch.Tensor; got {type(value).__name__}.")
        if value.dim() == 0:
            raise ValueError(f"{name}[{key!r}] must have a batch dimension first; got a scalar.")
    sizes = {k: v.shape[0] for k, v in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{name} tensors disagree on batch size: {sizes}; all must share dimension 0.")
    if modalities is not None:
        modalities = list(modalities)
        unknown = sorted(set(inputs) - set(modalities))
        missing = [m for m in modalities if m not in inputs]
        if unknown:
            raise ValueError(f"{name} has unknown modality {unknown}; the model's modalities are {modalities}.")
        if missing:
            raise ValueError(f"{name} is missing modality {missing}; the model's modalities are {modalities}.")
        return {m: inputs[m] for m in modalities}
    return dict(inputs)


def batch_size(inputs: Mapping[str, torch.Tensor]) -> int:
    """Batch size N of a checked dict of modality tensors."""
    return next(iter(inputs.values())).shape[0]


def check_target(target: Any, n: int, *, name: str = "target") -> torch.Tensor | None:
    """Normalise ``target`` to None or a LongTensor of shape (n,).

    Accepts None (scalar-output models), an int, a sequence of ints, or a tensor of shape (n,).
    """
    if target is None:
        return None
    if isinstance(target, bool):
        raise TypeError(f"{name} must be None, an int or a tensor of {n} class indices; got a bool.")
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long)
    t = torch.as_tensor(target)
    if t.dtype.is_floating_point:
        raise TypeError(f"{name} must hold integer class indices; got dtype {t.dtype}.")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        return t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries but the batch has {n} samples.")
    return t
