"""How the controls map onto the output video's frames: its frame rate and its length.

Generation runs at the model's frame rate. A driving video at another (or a variable) rate is
resampled to it by its frame times before anything else looks at it; audio features are cut at
that rate. When the controls differ in length, the user's policies decide: driving frames
shorter than the video are extended (``EXTEND_POLICIES``); audio shorter than the video is padded
with silence or ends the video (``AUDIO_ENDS``).
"""

from __future__ import annotations

import numpy as np

# Driving frames fewer than the video's: "pingpong" plays them forward then backward (no jump at
# the turn), "loop" starts them again, "hold" repeats the last, "error" refuses.
EXTEND_POLICIES = ("pingpong", "loop", "hold", "error")
# Audio shorter than the video: "silence" pads it with the features of silence, "shortest" ends
# the video where the shorter control ends.
AUDIO_ENDS = ("silence", "shortest")
# Two frame times closer than this (seconds) are the same instant (29.97 fps times are inexact).
_TIME_TOLERANCE = 1e-6


def resample_indices(times: np.ndarray, fps: float) -> np.ndarray:
    """Source frame for each output frame of a video resampled to ``fps``.

    ``times``: the source frames' presentation times in seconds, increasing (uneven for a
    variable frame rate). Output frame ``j`` is at ``j / fps`` after the first source frame and
    shows the source frame nearest that time (the earlier one on a tie). The source lasts until
    its last frame's time plus the gap before it; the output has every frame inside that.
    """
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"frame times must be a non-empty list of seconds, got shape {times.shape}")
    if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
        raise ValueError("frame times must be finite and strictly increasing")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"frame rate must be a positive number, got {fps!r}")
    times = times - times[0]
    last = float(times[-1] - times[-2]) if times.size > 1 else 1.0 / fps
    count = max(1, int(np.ceil((times[-1] + last) * fps - _TIME_TOLERANCE)))
    wanted = np.arange(count) / fps
    after = np.clip(np.searchsorted(times, wanted - _TIME_TOLERANCE, side="left"), 0, times.size - 1)
    before = np.clip(after - 1, 0, times.size - 1)
    nearer_before = (wanted - times[before]) <= (times[after] - wanted) + _TIME_TOLERANCE
    return np.where(nearer_before & (before < after), before, after)


def constant_rate_indices(count: int, source_fps: float, fps: float) -> np.ndarray:
    """:func:`resample_indices` for ``count`` frames at a constant ``source_fps``."""
    if count < 1:
        raise ValueError(f"there must be at least one frame to resample, got {count}")
    if not np.isfinite(source_fps) or source_fps <= 0:
        raise ValueError(f"the source frame rate must be a positive number, got {source_fps!r}")
    return resample_indices(np.arange(count) / source_fps, fps)


def extend_indices(have: int, want: int, policy: str) -> np.ndarray:
    """Indices into ``have`` driving frames for ``want`` output frames: the first ``want`` when
    there are enough, else extended by ``policy`` (one of :data:`EXTEND_POLICIES`)."""
    if policy not in EXTEND_POLICIES:
        raise ValueError(f"extend must be one of {EXTEND_POLICIES}, got {policy!r}")
    if have < 1 or want < 1:
        raise ValueError(f"frame counts must be positive, got {have} driving frames for {want} video frames")
    i = np.arange(want)
    if want <= have:
        return i
    if policy == "error":
        raise ValueError(f"the driving frames cover {have} frames but the video has {want}; choose an extend "
                         "policy (pingpong, loop, hold), give a longer driving video or fewer frames")
    if policy == "hold" or have == 1:
        return np.minimum(i, have - 1)
    if policy == "loop":
        return i % have
    phase = i % (2 * have - 2)  # pingpong: 0 1 .. n-1 n-2 .. 1 0 1 ..
    return np.where(phase < have, phase, 2 * have - 2 - phase)


def video_length(frames: int | None, *, audio: int | None, driving: int | None, audio_end: str) -> int:
    """The output's frame count: ``frames`` when given, else the longest control's; with
    ``audio_end="shortest"`` never longer than any control."""
    if audio_end not in AUDIO_ENDS:
        raise ValueError(f"audio_end must be one of {AUDIO_ENDS}, got {audio_end!r}")
    controls = [n for n in (audio, driving) if n is not None]
    if frames is not None and frames <= 0:
        raise ValueError(f"frame count must be positive, got {frames}")
    if not controls:
        if frames is None:
            raise ValueError("frame count unknown: give audio features, driving frames or both")
        return frames
    if frames is None:
        frames = max(controls)
    return min(frames, *controls) if audio_end == "shortest" else frames
