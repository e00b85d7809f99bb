"""Sampling: reference cache, guidance, schedulers, context windows."""

from .codec import DiffusersVAE, LatentCodec, decode_video
from .sampler import (
    WINDOW_SCHEDULES,
    SamplerSettings,
    match_controls,
    release_settings,
    sample_video,
    window_memory,
)
from .schedulers import SCHEDULERS, TRAIN_SCHEDULE, make_scheduler
from .timeline import AUDIO_ENDS, EXTEND_POLICIES, constant_rate_indices, extend_indices, resample_indices
from .windows import blend_weights, context_windows, shifted_windows

__all__ = [
    "AUDIO_ENDS",
    "EXTEND_POLICIES",
    "SCHEDULERS",
    "WINDOW_SCHEDULES",
    "TRAIN_SCHEDULE",
    "DiffusersVAE",
    "LatentCodec",
    "SamplerSettings",
    "blend_weights",
    "constant_rate_indices",
    "context_windows",
    "decode_video",
    "extend_indices",
    "make_scheduler",
    "match_controls",
    "release_settings",
    "resample_indices",
    "sample_video",
    "shifted_windows",
    "window_memory",
]
