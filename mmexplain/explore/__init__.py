"""Interactive explorer of a run's decisions, and its static counterpart for reports."""
from .views import DEFAULT_POOL, Cancelled, DecisionView, Explorer, as_run, interactive_methods

__all__ = ["DEFAULT_POOL", "Cancelled", "DecisionView", "Explorer", "as_run", "interactive_methods"]
