"""Encoders, fusion strategies, the multimodal model and checkpoints."""

from .checkpoint import Checkpoint, load_checkpoint, package_versions, save_checkpoint
from .encoders import AudioCNN, ImageCNN, MiniLMTextEncoder, RNNTextEncoder, TabularMLP
from .fusion import FUSIONS, STAGES, Fusion, FusionLevel
from .model import PRESETS, ModelConfig, MultimodalModel, build_model

__all__ = [
    "FUSIONS",
    "PRESETS",
    "STAGES",
    "AudioCNN",
    "Checkpoint",
    "Fusion",
    "FusionLevel",
    "ImageCNN",
    "MiniLMTextEncoder",
    "ModelConfig",
    "MultimodalModel",
    "RNNTextEncoder",
    "TabularMLP",
    "build_model",
    "load_checkpoint",
    "package_versions",
    "save_checkpoint",
]
