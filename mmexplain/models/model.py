"""The multimodal model: one encoder per modality, then a fusion strategy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from ..exceptions import ConfigError
from ..modality import ModalitySpec
from ..reference import MAX_FIT_SAMPLES, Reference, fit_reference
from ..registry import Registry
from ..validation import check_inputs
from .encoders import AudioCNN, ImageCNN, MiniLMTextEncoder, RNNTextEncoder, TabularMLP
from .fusion import FUSIONS, Fusion, FusionLevel

#: Named configurations beyond the plain fusion names.
PRESETS: dict[str, dict[str, Any]] = {
    "baseline": {
        "fusion": "late",
        "text_encoder": "lstm",
        "late_weights": [0.5, 0.5],
    },
}


#: The built-in encoder of each modality kind: ``build(model, spec, sample_shape, shallow)`` ->
#: (module, dotted path of its embedding layer or None).
ENCODERS: Registry[Callable[..., tuple[nn.Module, str | None]]] = Registry("built-in encoder")


@ENCODERS.register("image", "small CNN")
def _image_encoder(model: MultimodalModel, spec: ModalitySpec, shape: tuple[int, ...], shallow: bool):
    return ImageCNN(shape[0], (shape[1], shape[2]), model.config.dim, max_layers=1 if shallow else None), None


@ENCODERS.register("tokens", "embedding + GRU / LSTM, or pretrained MiniLM")
def _token_encoder(model: MultimodalModel, spec: ModalitySpec, shape: tuple[int, ...], shallow: bool):
    d = model.config.dim
    if model.config.text_encoder == "minilm":
        return MiniLMTextEncoder(d, frozen=model.config.text_frozen), f"encoders.{spec.name}.transformer.embeddings.word_embeddings"
    if spec.name not in model.vocab_sizes:
        raise ConfigError(f"modality {spec.name!r}: an RNN text encoder needs vocab_sizes[{spec.name!r}].")
    enc = RNNTextEncoder(model.vocab_sizes[spec.name], d, rnn=model.config.text_encoder, pad_id=spec.pad_id)
    return enc, f"encoders.{spec.name}.embedding"


@ENCODERS.register("tabular", "two-layer MLP")
def _tabular_encoder(model: MultimodalModel, spec: ModalitySpec, shape: tuple[int, ...], shallow: bool):
    return TabularMLP(shape[0], model.config.dim), None


@ENCODERS.register("audio", "1-D CNN")
def _audio_encoder(model: MultimodalModel, spec: ModalitySpec, shape: tuple[int, ...], shallow: bool):
    return AudioCNN(shape[0] if len(shape) == 2 else 1, model.config.dim, n_layers=1 if shallow else 4), None


class ModelConfig(BaseModel):
    """Architecture of a :class:`MultimodalModel` (saved as JSON with every checkpoint).

    Parameters
    ----------
    fusion : str
        A name from ``mmexplain fusions``.
    dim : int, default=64
        Feature size of every encoder's output.
    hidden : int, default=128
        Width of fusion layers and heads.
    text_encoder : {"gru", "lstm", "minilm"}, default="gru"
        Encoder of ``tokens`` modalities: a light embedding + RNN, or pretrained MiniLM.
    text_frozen : bool, default=True
        MiniLM only: freeze the transformer (its outputs are then cached in training).
    late_weights : list of float, optional
        ``late`` fusion's fixed weights per modality (default equal).
    """

    model_config = ConfigDict(extra="forbid")
    fusion: str
    dim: int = Field(64, ge=4)
    hidden: int = Field(128, ge=4)
    text_encoder: Literal["gru", "lstm", "minilm"] = "gru"
    text_frozen: bool = True
    late_weights: list[float] | None = None

    @field_validator("fusion")
    @classmethod
    def _known_fusion(cls, v: str) -> str:
        if v not in FUSIONS:
            raise ValueError(f"unknown fusion {v!r}; known: {', '.join(FUSIONS.names())}")
        return v

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        """Config for a fusion name or a preset (e.g. ``"baseline"``), with overrides."""
        base = dict(PRESETS.get(name, {"fusion": name}))
        base.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**base)
        except ValidationError as e:
            raise ConfigError(f"invalid model configuration for {name!r}: {_first_error(e)}") from None


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"{loc}: {err['msg']} (got {err.get('input')!r})"


class MultimodalModel(nn.Module):
    """Encoders + fusion; ``forward(**inputs)`` takes modality tensors by keyword.

    Parameters
    ----------
    config : ModelConfig
    modalities : list of ModalitySpec
    input_shapes : dict of str -> tuple
        Per-sample shape of each modality (without the batch dimension).
    n_outputs : int
        Classes, or 1 for regression.
    vocab_sizes : dict of str -> int, optional
        Vocabulary size of each ``tokens`` modality (RNN encoders).

    Attributes
    ----------
    modality_specs : list of ModalitySpec
        With ``embedding_layer`` filled in for token modalities, ready for attribution.
    modality_factorised : bool
        True: ``forward`` is ``fuse(encode(inputs))`` with each modality encoded on its
        own, so explainers that mix rows (modality Shapley values, EMAP, deletion curves)
        may encode once and fuse per mixed row (:mod:`mmexplain.factorised`).
    reference : Reference
        What "absent" means for each modality (every explainer's default baseline). Fitted
        from training data by :func:`build_model`; saved in the checkpoint (buffers).
    """

    modality_factorised = True

    def __init__(
        self,
        config: ModelConfig,
        modalities: list[ModalitySpec],
        input_shapes: dict[str, tuple[int, ...]],
        n_outputs: int,
        vocab_sizes: dict[str, int] | None = None,
        reference: Reference | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.input_shapes = {m: tuple(s) for m, s in input_shapes.items()}
        self.n_outputs = n_outputs
        self.vocab_sizes = dict(vocab_sizes or {})
        fusion_cls = FUSIONS.get(config.fusion)
        shallow = fusion_cls.shallow_encoders
        self.encoders = nn.ModuleDict()
        specs = []
        for spec in modalities:
            enc, emb = self._encoder(spec, self.input_shapes[spec.name], shallow)
            self.encoders[spec.name] = enc
            pad = getattr(enc, "pad_id", spec.pad_id)
            specs.append(ModalitySpec(spec.name, spec.kind, embedding_layer=emb, pad_id=pad))
        self.modality_specs = specs
        names = [s.name for s in specs]
        kwargs: dict[str, Any] = {}
        if fusion_cls.takes_weights and config.late_weights is not None:
            if len(config.late_weights) != len(names):
                raise ConfigError(
                    f"late_weights has {len(config.late_weights)} entries but the model has {len(names)} modalities {names}."
                )
            kwargs["weights"] = config.late_weights
        if fusion_cls.takes_query:
            tokens = [s.name for s in specs if s.kind_info.integer_ids]
            kwargs["query"] = tokens[0] if tokens else names[0]
        self.fusion: Fusion = fusion_cls(names, config.dim, n_outputs, config.hidden, **kwargs)
        # the real pad ids are only known once the encoders exist: (re)bind the reference to these specs
        if reference is None:
            reference = fit_reference(specs, sample_shapes=self.input_shapes)
        self.reference = Reference(specs, {m: reference.value(m) for m in names}, reference.choices,
                                   reference.fitted_on)

    def _encoder(self, spec: ModalitySpec, shape: tuple[int, ...], shallow: bool) -> tuple[nn.Module, str | None]:
        if spec.kind not in ENCODERS:
            raise ConfigError(f"modality {spec.name!r} has kind {spec.kind!r}, which no built-in encoder handles; "
                              f"built-in encoders exist for {ENCODERS.names()}.")
        return ENCODERS.get(spec.kind)(self, spec, shape, shallow)

    @property
    def modalities(self) -> list[str]:
        return [s.name for s in self.modality_specs]

    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-modality features of the modalities in ``inputs`` (all, or any subset; each
        encoded on its own): (N, D), or (N, L, D) for sequence-consuming fusions."""
        seq = self.fusion.needs_sequences
        return {m: self.encoders[m](inputs[m], sequence=seq) for m in self.modalities if m in inputs}

    def fuse(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Outputs from per-modality features (what :meth:`encode` returns)."""
        return self.fusion(features)

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Outputs (N, n_outputs): logits for classification, (N, 1) for regression."""
        inputs = check_inputs(inputs, modalities=self.modalities)
        return self.fuse(self.encode(inputs))

    def fusion_levels(self) -> list[FusionLevel]:
        """The model's levels in data-flow order: each encoder's output, the fusion's own
        levels, and the decision (the output; unless the fusion's levels end with it)."""
        levels = [FusionLevel("encoder", "encoder output", "each modality's encoder output, before any fusion",
                              branches=dict(self.encoders.items()))]
        levels += self.fusion.levels()
        if not self.fusion.decides:
            levels.append(FusionLevel("decision", "decision",
                                      "the output itself: exact main effects of each modality and their cross-modal "
                                      "terms (the Möbius split of f(x) − f(reference) over modalities)"))
        return levels

    def describe(self) -> dict[str, Any]:
        """JSON-safe architecture description (what checkpoints store to rebuild the model)."""
        return {
            "config": self.config.model_dump(),
            "modalities": [s.to_dict() for s in self.modality_specs],
            "input_shapes": {m: list(s) for m, s in self.input_shapes.items()},
            "n_outputs": self.n_outputs,
            "vocab_sizes": self.vocab_sizes,
            "reference": self.reference.to_dict(),
        }

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> MultimodalModel:
        try:
            config = ModelConfig(**desc["config"])
            specs = [ModalitySpec(**{**s, "embedding_layer": None}) for s in desc["modalities"]]
            shapes = {m: tuple(s) for m, s in desc["input_shapes"].items()}
            # placeholder tensors: load_state_dict fills in the fitted values
            reference = Reference.placeholder(specs, shapes, desc["reference"])
            return cls(config, specs, shapes, int(desc["n_outputs"]), desc.get("vocab_sizes") or {}, reference)
        except (KeyError, TypeError, ValidationError) as e:
            raise ConfigError(f"model description is invalid: {e}") from None


def build_model(config: ModelConfig, data: Any, tokenizer: Any = None) -> MultimodalModel:
    """Build a model sized for ``data`` (a :class:`~mmexplain.data.MultimodalDataset`, the
    training split), with its reference fitted from that data."""
    x = data.inputs([0])
    shapes = {m: tuple(v.shape[1:]) for m, v in x.items()}
    vocab = {}
    for spec in data.modalities:
        if spec.kind_info.integer_ids:
            vocab[spec.name] = int(getattr(tokenizer, "vocab_size", 0) or int(data.stores[spec.name].max()) + 1)
    model = MultimodalModel(config, data.modalities, shapes, data.n_outputs, vocab)
    # fit_reference subsamples too; picking first keeps the loaded sample (images) small
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:MAX_FIT_SAMPLES].sort().values
    model.reference = fit_reference(model, data.inputs(pick))
    return model
