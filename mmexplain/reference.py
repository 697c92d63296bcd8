"""The reference: one fixed meaning of "absent" per modality, shared by every explainer.

Every baseline-relative explanation in mmexplain -- gradient paths, DeepLift, occlusion,
SHAP masking, modality Shapley values, faithfulness curves, "prediction without this
modality" -- replaces an absent modality (or unit) by the same reference input. It is fitted
once from training data (:func:`fit_reference`), stored with the model's checkpoint, and never
depends on the batch being explained. For token modalities it is the model's actual input for
an empty text: pad ids, so the padding masks the model derives from ids mark it empty.

What each choice means is declared by the modality's kind (:mod:`mmexplain.kinds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .exceptions import ConfigError
from .modality import ModalitySpec

__all__ = ["Reference", "fit_reference", "resolve_baselines"]

#: Training samples a reference statistic is computed from, at most (seeded subset).
MAX_FIT_SAMPLES = 1024  # a mean of 1,024 samples is stable to ~3 % of a feature's spread


class Reference(nn.Module):
    """The absent value of each modality of one model.

    Held by a built-in model as ``model.reference`` (its tensors are buffers, so they are
    saved in the checkpoint and covered by its hash); any other model may carry one the same
    way, or it may be passed as ``baselines=`` to any explainer.

    Parameters
    ----------
    specs : list of ModalitySpec
    values : dict of str -> Tensor of shape (1, ...)
        Per modality, the absent sample (batch dimension 1); ignored for per-sample choices.
    choices : dict of str -> str
        Per modality, the kind's reference choice the value came from (``"tensor"`` for one
        given directly).
    fitted_on : int, default=0
        Number of training samples the statistics were computed from (0: data-free).
    """

    def __init__(self, specs: Sequence[ModalitySpec], values: Mapping[str, torch.Tensor],
                 choices: Mapping[str, str], fitted_on: int = 0) -> None:
        super().__init__()
        self.specs = list(specs)
        self.choices = {s.name: str(choices[s.name]) for s in self.specs}
        self.fitted_on = int(fitted_on)
        for s in self.specs:
            self.register_buffer(_buffer(s.name), values[s.name].detach().clone())

    @property
    def modalities(self) -> list[str]:
        return [s.name for s in self.specs]

    def value(self, name: str) -> torch.Tensor:
        """The stored absent sample of modality ``name``, (1, ...)."""
        return getattr(self, _buffer(name))

    def fill(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The absent value for inputs ``x`` (N, ...) of modality ``name``: (1, ...) when it is
        the same for every sample, (N, ...) when computed per sample (e.g. ``blur``)."""
        spec = self._spec(name)
        choice = self.choices[name]
        if choice in spec.kind_info.per_sample_choices:
            return spec.kind_info.per_sample_reference(choice, x)
        v = self.value(name)
        if tuple(v.shape[1:]) != tuple(x.shape[1:]):
            raise ConfigError(
                f"the reference of {name!r} has sample shape {tuple(v.shape[1:])} but inputs[{name!r}] has "
                f"{tuple(x.shape[1:])}; refit it with fit_reference for inputs of this shape."
            )
        return v.to(device=x.device, dtype=x.dtype)

    def inputs_like(self, inputs: Mapping[str, torch.Tensor], *, expand: bool = True) -> dict[str, torch.Tensor]:
        """The reference inputs for a batch: one tensor per modality, (N, ...) with ``expand``,
        else as :meth:`fill` returns them."""
        out = {}
        for s in self.specs:
            f = self.fill(s.name, inputs[s.name])
            out[s.name] = f.expand_as(inputs[s.name]).contiguous() if expand else f
        return out

    def describe(self) -> dict[str, str]:
        """Per modality, what "absent" means here, in words (for reports and results)."""
        out = {}
        for s in self.specs:
            c = self.choices[s.name]
            words = s.kind_info.reference_choices.get(c, "a given tensor")
            fitted = f", fitted on {self.fitted_on} training samples" if (
                c in s.kind_info.data_choices and self.fitted_on) else ""
            out[s.name] = f"{c}: {words}{fitted}"
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the choices and the sample count (the tensors live in the checkpoint)."""
        return {"choices": dict(self.choices), "fitted_on": self.fitted_on}

    @classmethod
    def placeholder(cls, specs: Sequence[ModalitySpec], shapes: Mapping[str, Sequence[int]],
                    info: Mapping[str, Any], dtypes: Mapping[str, torch.dtype] | None = None) -> Reference:
        """Zeros of the right shapes, to be filled by ``load_state_dict`` (checkpoint loading)."""
        values = {s.name: torch.zeros((1, *shapes[s.name]), dtype=(dtypes or {}).get(s.name, _dtype(s)))
                  for s in specs}
        return cls(specs, values, info["choices"], info.get("fitted_on", 0))

    def _spec(self, name: str) -> ModalitySpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise ConfigError(f"the reference has no modality {name!r}; it has {self.modalities}.")


def _buffer(name: str) -> str:
    return f"value_{name}"


def _dtype(spec: ModalitySpec) -> torch.dtype:
    return torch.long if spec.kind_info.integer_ids else torch.float32


def _specs_of(model_or_specs: Any) -> list[ModalitySpec]:
    if isinstance(model_or_specs, Sequence) and all(isinstance(s, ModalitySpec) for s in model_or_specs):
        return list(model_or_specs)
    specs = getattr(model_or_specs, "modality_specs", None)
    if specs is None:
        raise ConfigError(
            "fit_reference needs modality specs: pass a model with modality_specs or a list of ModalitySpec."
        )
    return list(specs)


def fit_reference(
    model_or_specs: nn.Module | Sequence[ModalitySpec],
    train_inputs: Mapping[str, torch.Tensor] | None = None,
    choices: Mapping[str, str] | None = None,
    *,
    sample_shapes: Mapping[str, Sequence[int]] | None = None,
    max_samples: int = MAX_FIT_SAMPLES,
    seed: int = 0,
) -> Reference:
    """Fit each modality's absent value, once, from training data.

    Parameters
    ----------
    model_or_specs : nn.Module with ``modality_specs``, or list of ModalitySpec
    train_inputs : dict of str -> Tensor of shape (K, ...), optional
        Training samples (a seeded subset of at most ``max_samples`` is used). Without
        them each kind's data-free choice is used (black image, pad tokens, zero features,
        silence): correct but not neutral for every model -- fit from data when you can.
    choices : dict of str -> str, optional
        Per modality, a choice of its kind (``mmexplain.kinds``); default the kind's
        ``default_reference`` (``data_free_reference`` without data).
    sample_shapes : dict of str -> tuple, optional
        One sample's shape per modality; needed only without ``train_inputs``.

    Returns
    -------
    Reference
    """
    specs = _specs_of(model_or_specs)
    choices = dict(choices or {})
    unknown = sorted(set(choices) - {s.name for s in specs})
    if unknown:
        raise ConfigError(f"choices has unknown modality {unknown}; modalities are {[s.name for s in specs]}.")
    data = None
    if train_inputs is not None:
        k = len(next(iter(train_inputs.values())))
        pick = torch.randperm(k, generator=torch.Generator().manual_seed(seed))[:max_samples].sort().values
        data = {s.name: train_inputs[s.name][pick.to(train_inputs[s.name].device)] for s in specs}
    values, used = {}, {}
    for s in specs:
        kind = s.kind_info
        choice = choices.get(s.name, kind.default_reference if data is not None else kind.data_free_reference)
        kind.check_reference_choice(choice, s.name)
        if data is not None:
            shape, dtype = tuple(data[s.name].shape[1:]), data[s.name].dtype
        elif sample_shapes is not None and s.name in sample_shapes:
            shape, dtype = tuple(sample_shapes[s.name]), _dtype(s)
        else:
            raise ConfigError(f"fit_reference needs train_inputs or sample_shapes[{s.name!r}].")
        if choice in kind.per_sample_choices:
            values[s.name] = torch.zeros((1, *shape), dtype=dtype)  # unused: computed per sample
        else:
            values[s.name] = kind.fit_reference(choice, s.name, shape, dtype, data=None if data is None else data[s.name],
                                                pad_id=s.pad_id)
        used[s.name] = choice
    return Reference(specs, values, used, fitted_on=0 if data is None else len(next(iter(data.values()))))


def resolve_baselines(
    model: Any,
    specs: Sequence[ModalitySpec] | None,
    inputs: Mapping[str, torch.Tensor],
    baselines: Any = None,
    *,
    expand: bool = True,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The absent value of every modality for ``inputs``, and what each one is, in words.

    This is the one place that decides what "absent" means for an explanation.

    Parameters
    ----------
    model : nn.Module or callable
        Its ``reference`` (a :class:`Reference`) is the default.
    specs : list of ModalitySpec or None
        The model's modalities; None only for a bare callable without specs, whose absent
        modalities are then zeros of the input's dtype.
    inputs : dict of str -> Tensor of shape (N, ...)
    baselines : None, Reference, or dict of str -> str / Tensor / number
        None: the model's reference (a data-free one when the model has none). A dict
        overrides single modalities by a choice name of the kind or a tensor broadcastable to
        the input; the other modalities keep the default.
    expand : bool, default=True
        Return (N, ...) tensors; otherwise (1, ...) where the value is shared by all samples.

    Returns
    -------
    baselines : dict of str -> Tensor
    description : dict of str -> str
    """
    names = list(inputs)
    if isinstance(baselines, Reference):
        ref, baselines = baselines, None
    elif specs is None:
        ref = None
    else:
        ref = getattr(model, "reference", None)
        if not isinstance(ref, Reference):
            ref = fit_reference(list(specs), sample_shapes={s.name: tuple(inputs[s.name].shape[1:]) for s in specs})
    if baselines is not None and not isinstance(baselines, Mapping):
        raise TypeError(
            f"baselines must be None, a Reference or a dict of modality name -> choice or tensor; "
            f"got {type(baselines).__name__}."
        )
    given = dict(baselines or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"baselines has unknown modality {unknown}; modalities are {names}.")
    by_name = {s.name: s for s in specs or ()}
    out, desc = {}, {}
    for name in names:
        x = inputs[name]
        b = given.get(name)
        if b is None:
            if ref is None:
                fill, words = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device), "zeros"
            else:
                fill, words = ref.fill(name, x), ref.describe()[name]
        elif isinstance(b, str):
            spec = by_name.get(name)
            if spec is None:
                raise ConfigError(f"baselines[{name!r}]={b!r}: a named choice needs the model's modality specs.")
            kind = spec.kind_info
            kind.check_reference_choice(b, name)
            if ref is not None and ref.choices.get(name) == b:
                fill, words = ref.fill(name, x), ref.describe()[name]
            elif b in kind.per_sample_choices:
                fill, words = kind.per_sample_reference(b, x), f"{b}: {kind.reference_choices[b]}"
            else:
                fill = kind.fit_reference(b, name, tuple(x.shape[1:]), x.dtype, pad_id=spec.pad_id).to(x.device)
                words = f"{b}: {kind.reference_choices[b]}"
        else:
            if isinstance(b, bool) or not isinstance(b, (torch.Tensor, int, float)):
                raise TypeError(f"baselines[{name!r}] must be a choice name, a tensor or a number; got {type(b).__name__}.")
            t = torch.as_tensor(b, device=x.device)
            if t.is_floating_point() and not x.is_floating_point():
                raise TypeError(
                    f"baselines[{name!r}] is floating point ({t.dtype}) but inputs[{name!r}] holds {x.dtype} "
                    "(e.g. token ids); pass integer ids such as the pad id."
                )
            t = t.to(x.dtype)
            try:
                torch.broadcast_shapes(t.shape, x.shape)
                ok = t.dim() <= x.dim() and torch.broadcast_shapes(t.shape, x.shape) == x.shape
            except RuntimeError:
                ok = False
            if not ok:
                raise ValueError(
                    f"baselines[{name!r}] has shape {tuple(t.shape)}, which does not broadcast to inputs[{name!r}] "
                    f"of shape {tuple(x.shape)}; use (1, ...), (N, ...) or one sample's shape."
                )
            fill, words = t.reshape(*([1] * (x.dim() - t.dim())), *t.shape), "tensor"
        out[name] = fill.expand_as(x).contiguous() if expand else fill
        desc[name] = words
    return out, desc
