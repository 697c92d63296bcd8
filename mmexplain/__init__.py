"""mmexplain: train multimodal fusion models and explain them per modality and per fusion level.

The functional core is importable from the top level::

    import mmexplain
    res = mmexplain.attribute(model, inputs, method="ig", target=y)
    sv = mmexplain.modality_shapley(model, inputs, baselines, target=y)
"""

from .attribution import (
    METHODS,
    AttributionResult,
    ModalityShapley,
    attribute,
    compare_fusions,
    emap,
    fusion_level_attribution,
    make_baselines,
    modality_shapley,
)
from .modality import MODALITY_KINDS, ModalitySpec

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "MODALITY_KINDS",
    "AttributionResult",
    "ModalityShapley",
    "ModalitySpec",
    "__version__",
    "attribute",
    "compare_fusions",
    "emap",
    "fusion_level_attribution",
    "make_baselines",
    "modality_shapley",
]
