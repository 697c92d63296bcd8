"""Plotly figures for mmexplain: attribution maps, modality shares and quality metrics.

Call :func:`setup_notebook` once in a notebook so figures render offline and survive the
HTML export; every other function is pure and returns a :class:`plotly.graph_objects.Figure`.
"""

from .figures import (
    DIVERGING,
    NOTEBOOK_RENDERER,
    TEMPLATE,
    audio_attribution,
    confusion_matrix,
    fusion_level_shares,
    image_attribution,
    interaction_matrix,
    learning_curves,
    modality_shares,
    perturbation_curves,
    robustness_curve,
    setup_notebook,
    strategy_comparison,
    tabular_attribution,
    token_attribution,
)

__all__ = [
    "DIVERGING",
    "NOTEBOOK_RENDERER",
    "TEMPLATE",
    "audio_attribution",
    "confusion_matrix",
    "fusion_level_shares",
    "image_attribution",
    "interaction_matrix",
    "learning_curves",
    "modality_shares",
    "perturbation_curves",
    "robustness_curve",
    "setup_notebook",
    "strategy_comparison",
    "tabular_attribution",
    "token_attribution",
]
