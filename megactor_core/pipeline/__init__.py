"""Sampling: reference cache, guidance, schedulers, context windows."""

from .codec import DiffusersVAE, LatentCodec
from .sampler import SamplerSettings, resolve_frames, sample_video
from .schedulers import SCHEDULERS, TRAIN_SCHEDULE, make_scheduler
from .windows import blend_weights, context_windows

__all__ = [
    "SCHEDULERS",
    "TRAIN_SCHEDULE",
    "DiffusersVAE",
    "LatentCodec",
    "SamplerSettings",
    "blend_weights",
    "context_windows",
    "make_scheduler",
    "resolve_frames",
    "sample_video",
]
