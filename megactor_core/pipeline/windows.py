"""Context windows over frames, with the weights that blend their overlaps."""

from __future__ import annotations

import torch


def context_windows(frames: int, size: int, overlap: int) -> list[range]:
    """Windows of ``size`` frames covering ``0..frames-1``, consecutive ones sharing ``overlap``
    frames (the last window is moved back to end at the last frame). One window if it fits."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"window size must be positive and overlap in 0..size-1, got size {size}, overlap {overlap}")
    if frames <= size:
        return [range(frames)]
    starts = list(range(0, frames - size, size - overlap)) + [frames - size]
    return [range(s, s + size) for s in dict.fromkeys(starts)]


def blend_weights(window: range, frames: int, overlap: int) -> torch.Tensor:
    """``[len(window)]`` weights rising linearly over ``overlap`` frames at inner window edges, 1
    at the video's own first and last frames, so overlapping predictions cross-fade."""
    n = len(window)
    j = torch.arange(n, dtype=torch.float32)
    ramp = float(overlap + 1)
    rise = torch.ones(n) if window.start == 0 else ((j + 1) / ramp).clamp(max=1)
    fall = torch.ones(n) if window.stop == frames else ((n - j) / ramp).clamp(max=1)
    return torch.minimum(rise, fall)


def shifted_windows(frames: int, size: int, step: int) -> list[list[int]]:
    """The official release's windows for denoising step ``step``: non-overlapping windows of
    ``size`` frames on a grid moved back by ``step % size`` frames, so window edges fall elsewhere
    at every step; the last window wraps around to the video's first frames (in that order), which
    it may cover a second time (their predictions are then averaged)."""
    if size <= 0:
        raise ValueError(f"window size must be positive, got {size}")
    offset = step % size
    total = frames + offset
    grid = [list(range(total))] if total <= size else [
        [k % total for k in range(start, start + size)] for start in range(0, total, size)]
    windows = [[k - offset for k in window if offset <= k < frames + offset] for window in grid]
    return [w for w in windows if w]
