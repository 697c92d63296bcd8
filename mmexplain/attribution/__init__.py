"""Attribution: Captum and SHAP per modality, per fusion level, modality Shapley values, EMAP."""

from .emap import EMAPResult, emap
from .fusion_levels import compare_fusions, fusion_level_attribution, fusion_level_shares
from .methods import METHODS, EmbeddingInputModel, attribute, model_output, resolve_specs
from .result import AttributionResult
from .shap_methods import JointMasker, joint_clustering  # registers shap_partition, shap_gradient
from .shapley import ModalityShapley, modality_shapley, share_by_group

__all__ = [
    "METHODS",
    "AttributionResult",
    "EMAPResult",
    "EmbeddingInputModel",
    "JointMasker",
    "ModalityShapley",
    "attribute",
    "compare_fusions",
    "emap",
    "fusion_level_attribution",
    "fusion_level_shares",
    "joint_clustering",
    "model_output",
    "modality_shapley",
    "resolve_specs",
    "share_by_group",
]
