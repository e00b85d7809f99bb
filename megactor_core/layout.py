"""The one place that knows tensor layouts.

Videos enter the model as ``[batch, frames, channels, height, width]``. Inside, the transformer
works on per-frame token sequences ``[batch * frames, tokens, width]`` (spatial layout) and, in
temporal modules, on per-position frame sequences ``[batch * tokens, frames, width]``.
"""

from __future__ import annotations

import torch


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, F, ...] -> [B*F, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def unfold_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B*F, ...] -> [B, F, ...]``."""
    return x.reshape(x.shape[0] // frames, frames, *x.shape[1:])


def repeat_per_frame(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, ...] -> [B*F, ...]``: one copy of a per-video tensor for each of its frames."""
    return x.repeat_interleave(frames, dim=0) if frames > 1 else x


def spatial_to_temporal(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B*F, N, D] -> [B*N, F, D]``."""
    bf, n, d = x.shape
    return x.reshape(bf // frames, frames, n, d).transpose(1, 2).reshape(-1, frames, d)


def temporal_to_spatial(x: torch.Tensor, tokens: int) -> torch.Tensor:
    """``[B*N, F, D] -> [B*F, N, D]``."""
    bn, f, d = x.shape
    return x.reshape(bn // tokens, tokens, f, d).transpose(1, 2).reshape(-1, tokens, d)


def unpatchify(tokens: torch.Tensor, rows: int, cols: int, patch: int) -> torch.Tensor:
    """``[M, rows*cols, patch*patch*C] -> [M, C, rows*patch, cols*patch]`` (PixArt-α order)."""
    m = tokens.shape[0]
    channels = tokens.shape[-1] // (patch * patch)
    x = tokens.reshape(m, rows, cols, patch, patch, channels)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(m, channels, rows * patch, cols * patch)
