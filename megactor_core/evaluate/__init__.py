"""The field's metrics on generated videos: Sync-C/Sync-D, FID, FVD, LPIPS, identity similarity (CSIM)
and landmark motion metrics, against real videos. See docs/evaluation.md for the protocol."""

from .evaluation import FRAME_METRICS, TOTAL, Row, evaluate, frame_metrics, write_csv
from .inputs import Case, pair_inputs
from .models import METRICS, Models, load_models, plan, prepare_models
from .weights import WEIGHT_FILES, find_weights

__all__ = [
    "FRAME_METRICS",
    "METRICS",
    "TOTAL",
    "WEIGHT_FILES",
    "Case",
    "Models",
    "Row",
    "evaluate",
    "find_weights",
    "frame_metrics",
    "load_models",
    "pair_inputs",
    "plan",
    "prepare_models",
    "write_csv",
]
