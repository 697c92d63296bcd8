"""mmexplain: train multimodal fusion models and explain them per modality and per fusion level."""

from .modality import MODALITY_KINDS, ModalitySpec

__version__ = "0.1.0"

__all__ = ["MODALITY_KINDS", "ModalitySpec", "__version__"]
