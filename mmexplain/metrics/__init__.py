"""Explanation-quality metrics: how far to trust an explanation.

* :mod:`.faithfulness` -- deletion / insertion curves per modality, against a random order.
* :mod:`.localisation` -- relevance mass in a ground-truth mask, pointing game, evidence rank.
* :mod:`.sanity` -- Adebayo et al.'s cascading model-parameter randomisation test.
* :mod:`.agreement` -- rank agreement and top-k overlap between explanation methods.
* :mod:`.robustness` -- missing-modality and corruption robustness of the model.
"""

from .agreement import agreement_matrix, rank_agreement, top_k_overlap
from .faithfulness import (
    PerturbationCurve,
    curve_auc,
    deletion_curve,
    expand_unit_mask,
    fill_units,
    insertion_curve,
    perturbation_curve,
    perturbation_curves,
    target_scores,
    unit_count,
    unit_order_ranks,
    unit_scores,
)
from .localisation import (
    LOCALISATION_METRICS,
    EvidenceRank,
    chance_level,
    evidence_rank,
    evidence_rank_chance,
    mask_area_fraction,
    mass_in_mask,
    pointing_game,
)
from .robustness import (
    NoiseRobustness,
    corrupt,
    missing_modality,
    model_score,
    noise_robustness,
    score_outputs,
)
from .sanity import (
    SanityCheckResult,
    cascading_randomisation,
    parameterised_layers,
    randomise_layer,
)

__all__ = [
    "LOCALISATION_METRICS",
    "EvidenceRank",
    "NoiseRobustness",
    "PerturbationCurve",
    "SanityCheckResult",
    "agreement_matrix",
    "cascading_randomisation",
    "chance_level",
    "corrupt",
    "curve_auc",
    "deletion_curve",
    "evidence_rank",
    "evidence_rank_chance",
    "expand_unit_mask",
    "fill_units",
    "insertion_curve",
    "mask_area_fraction",
    "mass_in_mask",
    "missing_modality",
    "model_score",
    "noise_robustness",
    "parameterised_layers",
    "perturbation_curve",
    "perturbation_curves",
    "pointing_game",
    "randomise_layer",
    "rank_agreement",
    "score_outputs",
    "target_scores",
    "top_k_overlap",
    "unit_count",
    "unit_order_ranks",
    "unit_scores",
]
