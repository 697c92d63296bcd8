"""Training, evaluation and saved runs."""

from .metrics import classification_metrics, regression_metrics
from .run import (
    DEFAULT_RUN,
    Run,
    ensure_trained,
    is_trained,
    load_or_train,
    load_run,
    run_directory,
    run_params,
    save_run,
    train_run,
)
from .trainer import (
    SCHEDULES,
    TrainConfig,
    TrainResult,
    evaluate,
    make_scheduler,
    predict,
    resolve_device,
    seed_everything,
    train_model,
)

__all__ = [
    "DEFAULT_RUN",
    "SCHEDULES",
    "Run",
    "TrainConfig",
    "TrainResult",
    "classification_metrics",
    "ensure_trained",
    "evaluate",
    "is_trained",
    "load_or_train",
    "load_run",
    "make_scheduler",
    "predict",
    "regression_metrics",
    "resolve_device",
    "run_directory",
    "run_params",
    "save_run",
    "seed_everything",
    "train_model",
    "train_run",
]
