"""Sampling: reference cache, guidance, schedulers, context windows."""

from .codec import DiffusersVAE, LatentCodec
from .sampler import WINDOW_SCHEDULES, SamplerSettings, release_settings, resolve_frames, sample_video
from .schedulers import SCHEDULERS, TRAIN_SCHEDULE, make_scheduler
from .windows import blend_weights, context_windows, shifted_windows

__all__ = [
    "SCHEDULERS",
    "WINDOW_SCHEDULES",
    "TRAIN_SCHEDULE",
    "DiffusersVAE",
    "LatentCodec",
    "SamplerSettings",
    "blend_weights",
    "context_windows",
    "make_scheduler",
    "release_settings",
    "resolve_frames",
    "sample_video",
    "shifted_windows",
]
