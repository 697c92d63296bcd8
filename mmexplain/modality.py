"""What mmexplain needs to know about each input of a multimodal model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .exceptions import ConfigError
from .kinds import KINDS, ModalityKind

MODALITY_KINDS = tuple(KINDS.names())


@dataclass(frozen=True)
class ModalitySpec:
    """One input of a multimodal model.

    Parameters
    ----------
    name : str
        The keyword under which the model's ``forward`` takes this modality's tensor.
    kind : {"image", "tokens", "tabular", "audio", "generic"}
        Shapes by kind: image (N, C, H, W) floats; tokens (N, T) integer ids;
        tabular (N, F) floats; audio (N, 1, L) or (N, L) floats; generic (N, ...) floats.
    embedding_layer : str, optional
        For ``tokens`` only: dotted path, inside the model, of the embedding module to
        attribute at (token ids are not differentiable). Required for gradient methods.
    pad_id : int, default=0
        For ``tokens``: the id used as the "absent" baseline token.
    """

    name: str
    kind: str
    embedding_layer: str | None = None
    pad_id: int = 0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"ModalitySpec.name must be a non-empty string; got {self.name!r}.")
        if self.kind not in MODALITY_KINDS:
            raise ConfigError(
                f"ModalitySpec(name={self.name!r}).kind={self.kind!r} is not allowed; "
                f"choose one of {list(MODALITY_KINDS)}."
            )
        if self.embedding_layer is not None and not self.kind_info.integer_ids:
            raise ConfigError(
                f"ModalitySpec(name={self.name!r}): embedding_layer is only for kinds with integer "
                f"ids ({[k for k in MODALITY_KINDS if KINDS.get(k).integer_ids]})."
            )

    @property
    def kind_info(self) -> ModalityKind:
        """What this modality's kind declares: units, reference choices, perturbation."""
        return KINDS.get(self.kind)

    def to_dict(self) -> dict:
        return asdict(self)
