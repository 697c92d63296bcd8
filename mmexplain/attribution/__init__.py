"""Attribution: Captum and SHAP per modality, per fusion level, modality Shapley values, EMAP."""

from .attention_flow import AttentionFlow, attention_flow
from .emap import EMAPResult, emap
from .fusion_levels import (
    CROSS,
    LAYER_METHODS,
    compare_fusions,
    fusion_level_attribution,
    fusion_level_shares,
    fusion_level_summary,
)
from .methods import METHODS, EmbeddingInputModel, attribute, model_output, resolve_specs
from .result import AttributionResult
from .shap_methods import joint_clustering  # registers shap_partition, shap_gradient
from .shapley import ModalityShapley, modality_shapley, share_by_group

__all__ = [
    "CROSS",
    "LAYER_METHODS",
    "METHODS",
    "AttentionFlow",
    "AttributionResult",
    "EMAPResult",
    "EmbeddingInputModel",
    "ModalityShapley",
    "attention_flow",
    "attribute",
    "compare_fusions",
    "emap",
    "fusion_level_attribution",
    "fusion_level_shares",
    "fusion_level_summary",
    "joint_clustering",
    "model_output",
    "modality_shapley",
    "resolve_specs",
    "share_by_group",
]


def __getattr__(name: str) -> object:
    # JointMasker subclasses SHAP's Masker: importing it imports SHAP, so only on first access
    if name == "JointMasker":
        from ._shap_masker import JointMasker

        return JointMasker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
