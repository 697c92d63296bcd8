"""mmexplain: train multimodal fusion models and explain them per modality and per fusion level.

The functional core is importable from the top level::

    import mmexplain
    res = mmexplain.attribute(model, inputs, method="ig", target=y)
    sv = mmexplain.modality_shapley(model, inputs, target=y)
    mmexplain.audit_run("runs/my-run", "audit.parquet")  # one row per decision, resumable
    mmexplain.explore(run)  # in JupyterLab: browse decisions, ask what-ifs, export cards
"""

from .attribution import (
    METHODS,
    AttributionResult,
    ModalityShapley,
    attention_flow,
    attribute,
    compare_fusions,
    emap,
    fusion_level_attribution,
    modality_shapley,
)
from .auditing import audit_run
from .explore import explore  # the function; mmexplain.explore.Explorer etc. stay importable
from .kinds import KINDS
from .modality import MODALITY_KINDS, ModalitySpec
from .reference import Reference, fit_reference

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "METHODS",
    "MODALITY_KINDS",
    "AttributionResult",
    "ModalityShapley",
    "ModalitySpec",
    "Reference",
    "__version__",
    "attention_flow",
    "attribute",
    "audit_run",
    "compare_fusions",
    "emap",
    "explore",
    "fit_reference",
    "fusion_level_attribution",
    "modality_shapley",
]
