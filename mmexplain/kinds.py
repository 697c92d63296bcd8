"""Modality kinds, declared once: units, what "absent" means, how to perturb.

Every module that needs to know something about a kind of input asks its
:class:`ModalityKind` here (``spec.kind_info`` or ``KINDS.get(name)``), so no other module
switches on a kind's name:

* **units** -- what one explanation unit is (a pixel or an image patch with all its
  channels, one token with its whole embedding, one tabular feature, one audio step or
  window), as a map from each element of a sample to its unit id (:meth:`unit_ids`); unit
  scores, masks and Captum feature masks all derive from it;
* **reference** -- the named choices of "absent" value (:attr:`reference_choices`), which
  of them need training data, and the default (:attr:`default_reference`);
* **perturbation** -- the corruption noise-robustness curves apply by default;
* **evidence** -- how ground-truth evidence is scored (a spatial mask, or evidence tokens).

======== ============================ ============================== ===================
kind     one sample (without N)       units                          default reference
======== ============================ ============================== ===================
image    (C, H, W) floats             pixels or patches (all C)      ``channel_mean``
tokens   (T,) integer ids             tokens                         ``pad``
tabular  (F,) floats                  features                       ``mean``
audio    (L,) or (C, L) floats        steps or windows (all C)       ``silence``
generic  (...) floats                 elements                       ``mean``
======== ============================ ============================== ===================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .exceptions import ConfigError
from .registry import Registry

__all__ = ["KINDS", "ModalityKind"]


def _blur(x: torch.Tensor, sigma: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of images (N, C, H, W), edges replicated."""
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@dataclass(frozen=True)
class ModalityKind:
    """One kind of modality and everything other modules need to know about it.

    Attributes
    ----------
    name : str
    sample_dims : tuple of int or None
        Allowed numbers of dimensions of one sample (without N); None: any.
    integer_ids : bool
        Inputs are integer ids (tokens): gradients are taken at an embedding layer, and a
        unit is one id position whatever trailing (embedding) dimensions follow.
    reference_choices : dict of str -> str
        Named "absent" values and what each means.
    data_choices : tuple of str
        The choices that are statistics of training data (``fit_reference`` needs data).
    per_sample_choices : tuple of str
        The choices computed from each sample itself (e.g. ``blur``).
    default_reference : str
        Used when a reference is fitted from training data.
    data_free_reference : str
        Used when no training data is given (an unfitted reference).
    corruption : str
        Default corruption of :func:`mmexplain.metrics.noise_robustness`.
    evidence : {"mask", "tokens", None}
        How ground-truth evidence is scored: a spatial mask (mass in mask, pointing game)
        or evidence tokens (rank); None: not scored.
    patched : bool
        Units may be patches (``patch_size``) / windows (``audio_window``).
    edit : {"text", "values", None}
        How the explorer's what-if edits one sample beyond dropping it to its reference:
        ``"text"`` (type new text, tokenized as the model's data was), ``"values"`` (set
        one feature's value); None: drop / replace only.
    """

    name: str
    sample_dims: tuple[int, ...] | None
    reference_choices: Mapping[str, str]
    default_reference: str
    data_free_reference: str
    integer_ids: bool = False
    data_choices: tuple[str, ...] = ()
    per_sample_choices: tuple[str, ...] = ()
    corruption: str = "mask"
    evidence: str | None = None
    patched: bool = False
    edit: str | None = None

    # -- shapes and units ---------------------------------------------------------------------
    def check_sample_shape(self, shape: tuple[int, ...], name: str = "inputs") -> None:
        """Raise ``ValueError`` naming ``name`` if one sample's shape does not fit this kind."""
        if self.sample_dims is not None and len(shape) not in self.sample_dims:
            dims = " or ".join(str(d + 1) for d in self.sample_dims)
            raise ValueError(
                f"{name} for kind={self.name!r} must have {dims} dimensions (batch first); "
                f"got shape (N, {', '.join(map(str, shape))})."
            )

    def unit_ids(self, shape: tuple[int, ...], *, patch_size: int | tuple[int, int] | None = None,
                 audio_window: int | None = None) -> torch.Tensor:
        """The unit id of every element of one sample, ids 0..U-1 in row-major unit order.

        Parameters
        ----------
        shape : tuple of int
            One sample's shape (without N); for tokens ``(T,)`` ids or ``(T, E)`` embeddings.
        patch_size : int or (int, int), optional
            Images: square / rectangular patches (edge patches may be smaller); None: pixels.
        audio_window : int, optional
            Audio: steps per window; None: single steps.

        Returns
        -------
        LongTensor of shape ``shape``
        """
        shape = tuple(int(s) for s in shape)
        if self.name == "image":
            c, h, w = shape
            ph, pw = _pair(patch_size) if patch_size is not None else (1, 1)
            gw = math.ceil(w / pw)
            rows = torch.arange(h) // ph
            cols = torch.arange(w) // pw
            return (rows[:, None] * gw + cols[None, :]).expand(c, h, w).contiguous()
        if self.integer_ids:
            return torch.arange(shape[0]).view(-1, *([1] * (len(shape) - 1))).expand(*shape).contiguous()
        if self.name == "audio":
            steps = torch.arange(shape[-1]) // (audio_window or 1)
            return steps.expand(*shape).contiguous()
        return torch.arange(math.prod(shape)).view(*shape) if shape else torch.zeros((), dtype=torch.long)

    def unit_count(self, shape: tuple[int, ...], **unit_options: int | tuple[int, int] | None) -> int:
        """Number of units U of one sample (see :meth:`unit_ids`)."""
        return int(self.unit_ids(shape, **unit_options).max()) + 1

    def unit_scores(self, attr: torch.Tensor, shape: tuple[int, ...], **unit_options) -> torch.Tensor:
        """Sum a map (N, *shape) into one score per unit (N, U).

        An image map may come channel-summed (N, H, W); a token map may come per id (N, T)
        or per embedding dimension (N, T, E).
        """
        shape = tuple(shape)
        if self.name == "image" and attr.dim() == len(shape):  # channel-summed (N, H, W)
            attr = attr.unsqueeze(1)
            shape = (1, *shape[1:])
        elif self.integer_ids and attr.dim() > 2:
            attr = attr.sum(tuple(range(2, attr.dim())))
            shape = shape[:1]
        ids = self.unit_ids(shape, **unit_options).to(attr.device).flatten()
        a = attr.reshape(attr.shape[0], -1)
        if a.shape[1] != ids.numel():
            raise ValueError(
                f"attribution of shape {tuple(attr.shape)} does not match one {self.name} sample of shape "
                f"{shape}; pass a map of the input's shape (tokens: (N, T))."
            )
        out = torch.zeros(a.shape[0], int(ids.max()) + 1, dtype=a.dtype, device=a.device)
        return out.index_add_(1, ids, a)

    def expand_units(self, unit_values: torch.Tensor, shape: tuple[int, ...], **unit_options) -> torch.Tensor:
        """Per-unit values (B, U) back to every element: (B, *shape)."""
        ids = self.unit_ids(tuple(shape), **unit_options).to(unit_values.device)
        return unit_values[:, ids.flatten()].reshape(unit_values.shape[0], *shape)

    def unit_grid(self, shape: tuple[int, ...], *, patch_size: int | tuple[int, int] | None = None
                  ) -> tuple[int, int] | None:
        """(rows, cols) of units laid out on a 2-D grid (image patches), or None for a sequence."""
        if self.name != "image":
            return None
        ph, pw = _pair(patch_size) if patch_size is not None else (1, 1)
        return math.ceil(shape[1] / ph), math.ceil(shape[2] / pw)

    def occlusion_window(self, shape: tuple[int, ...], *, patch_size: int, audio_window: int) -> tuple[int, ...]:
        """Captum ``sliding_window_shapes`` entry for one unit of this kind."""
        if self.name == "image":
            ph, pw = _pair(patch_size)
            return (shape[0], min(ph, shape[1]), min(pw, shape[2]))
        if self.integer_ids:
            return (1, *shape[1:])  # one token, its whole embedding
        if self.name == "audio":
            return (*shape[:-1], min(audio_window, shape[-1]))
        return tuple(1 for _ in shape)

    def reduce_map(self, attr: torch.Tensor) -> torch.Tensor:
        """A map as stored in results: token maps summed over the embedding dimension."""
        return attr.sum(-1) if self.integer_ids and attr.dim() > 2 else attr

    def unit_name(self, modality: str, unit: int, shape: tuple[int, ...], *, patch_size: int | None = None) -> str:
        """Readable name of a unit: ``image[patch 1,2]``, ``text[3]``, ``audio[window 0]``."""
        if self.name == "image":
            gw = math.ceil(shape[2] / _pair(patch_size or 1)[1])
            return f"{modality}[patch {unit // gw},{unit % gw}]"
        if self.name == "audio":
            return f"{modality}[window {unit}]"
        return f"{modality}[{unit}]"

    # -- "absent" -----------------------------------------------------------------------------
    def check_reference_choice(self, choice: str, modality: str) -> None:
        if choice not in self.reference_choices:
            raise ConfigError(
                f"baselines[{modality!r}]={choice!r} is not a {self.name} reference; choose one of "
                f"{list(self.reference_choices)} or pass a tensor."
            )

    def fit_reference(self, choice: str, modality: str, sample_shape: tuple[int, ...], dtype: torch.dtype,
                      *, data: torch.Tensor | None = None, pad_id: int = 0) -> torch.Tensor:
        """The absent value (1, *sample_shape) for a shared choice.

        Parameters
        ----------
        choice : str
            A key of :attr:`reference_choices` that is not per-sample.
        data : Tensor of shape (K, *sample_shape), optional
            Training samples; required by :attr:`data_choices`.
        pad_id : int
            Tokens: the id the model reads as padding.
        """
        self.check_reference_choice(choice, modality)
        if choice in self.per_sample_choices:
            raise ConfigError(f"reference {choice!r} of {modality!r} is computed per sample, not fitted.")
        shape = (1, *sample_shape)
        if choice in self.data_choices:
            if data is None or len(data) == 0:
                raise ConfigError(
                    f"reference {choice!r} of modality {modality!r} is a statistic of training data; "
                    f"fit it with fit_reference(model, train_inputs) or choose one of "
                    f"{[c for c in self.reference_choices if c not in self.data_choices]}."
                )
            d = data.detach().double()
            if choice == "mean":
                value = d.mean(0, keepdim=True)
            elif choice == "median":
                value = d.median(0, keepdim=True).values
            else:  # channel_mean: each channel's mean, constant over the sample
                value = d.transpose(0, 1).reshape(d.shape[1], -1).mean(1).view(1, -1, *([1] * (d.dim() - 2)))
            return value.expand(shape).to(dtype).contiguous()
        if choice == "pad":
            return torch.full(shape, pad_id, dtype=dtype)
        if choice == "gray":
            return torch.full(shape, 0.5, dtype=dtype)
        return torch.zeros(shape, dtype=dtype)  # black, zero, silence

    def per_sample_reference(self, choice: str, x: torch.Tensor) -> torch.Tensor:
        """A per-sample absent value (N, ...) computed from each sample alone."""
        if choice == "blur":
            return _blur(x.double()).to(x.dtype)
        raise ConfigError(f"reference {choice!r} is not computed per sample.")  # pragma: no cover


def _pair(p: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(p, int) and not isinstance(p, bool):
        p = (p, p)
    if (not isinstance(p, (tuple, list)) or len(p) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in p)):
        raise ConfigError(f"patch_size must be an int >= 1 or a pair (ph, pw) of ints >= 1; got {p!r}.")
    return int(p[0]), int(p[1])


KINDS: Registry[ModalityKind] = Registry("modality kind")

for _kind in (
    ModalityKind(
        "image", (3,),
        {"channel_mean": "each channel at its training mean, uniform over the image (a neutral image "
                         "in the model's own input space)",
         "mean": "the mean training image, pixel by pixel",
         "gray": "uniform 0.5 gray", "black": "all zeros", "blur": "the image itself, Gaussian-blurred (σ = 4 px)"},
        default_reference="channel_mean", data_free_reference="black",
        data_choices=("channel_mean", "mean"), per_sample_choices=("blur",), evidence="mask", patched=True,
    ),
    ModalityKind(
        "tokens", (1,),
        {"pad": "every position the pad id, so the model's padding masks mark the text empty"},
        default_reference="pad", data_free_reference="pad", integer_ids=True,
        corruption="token_dropout", evidence="tokens", edit="text",
    ),
    ModalityKind(
        "tabular", (1,),
        {"mean": "each feature at its training mean", "median": "each feature at its training median",
         "zero": "all zeros"},
        default_reference="mean", data_free_reference="zero", data_choices=("mean", "median"), edit="values",
    ),
    ModalityKind(
        "audio", (1, 2),
        {"silence": "all zeros", "mean": "the mean training waveform"},
        default_reference="silence", data_free_reference="silence", data_choices=("mean",), patched=True,
    ),
    ModalityKind(
        "generic", None,
        {"mean": "the training mean, element by element", "zero": "all zeros"},
        default_reference="mean", data_free_reference="zero", data_choices=("mean",),
    ),
):
    KINDS.register(_kind.name, _kind.reference_choices.get(_kind.default_reference, ""))(_kind)
