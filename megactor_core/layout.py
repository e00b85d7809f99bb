"""The one place that knows tensor layouts.

Videos enter the model as ``[batch, frames, channels, height, width]``. Inside, the transformer
works on per-frame token sequences ``[batch * frames, tokens, width]`` (spatial layout) and, in
temporal modules, on per-position frame sequences ``[batch * tokens, frames, width]``. The SD1.5
UNet works on per-frame feature maps ``[batch * frames, channels, height, width]`` stored
channels-last (its convolutions run faster so, and its token views are free), viewed as
``[batch, channels, frames * height, width]`` where a norm spans all frames of a video.
"""

from __future__ import annotations

import numpy as np
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


def maps_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``[M, C, H, W] -> [M, H*W, C]``."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_maps(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[M, H*W, C] -> [M, C, H, W]``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], height, width)


def frames_to_video_map(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B*F, C, H, W] -> [B, C, F*H, W]``: each video's frames stacked into one map, for norms
    over whole videos. A view when ``x`` is channels-last in memory (the SD1.5 UNet's maps are),
    and channels-last itself, which PyTorch's group norm runs on without copying."""
    x = x.contiguous(memory_format=torch.channels_last)
    bf, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(bf // frames, frames * h, w, c).permute(0, 3, 1, 2)


def video_map_to_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, C, F*H, W] -> [B*F, C, H, W]``: the inverse of :func:`frames_to_video_map`."""
    b, c, fh, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b * frames, fh // frames, w, c).permute(0, 3, 1, 2)


def unpatchify(tokens: torch.Tensor, rows: int, cols: int, patch: int) -> torch.Tensor:
    """``[M, rows*cols, patch*patch*C] -> [M, C, rows*patch, cols*patch]`` (PixArt-α order)."""
    m = tokens.shape[0]
    channels = tokens.shape[-1] // (patch * patch)
    x = tokens.reshape(m, rows, cols, patch, patch, channels)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(m, channels, rows * patch, cols * patch)


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """Frames ``[N, H, W, C]`` in 0..1 (ComfyUI's IMAGE) -> uint8 numpy ``[N, H, W, C]``."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def images_to_numpy(images: torch.Tensor) -> np.ndarray:
    """Frames ``[N, H, W, C]`` in 0..1 -> float32 numpy, unchanged in layout."""
    return images.detach().float().cpu().numpy()


def images_from_numpy(frames: np.ndarray) -> torch.Tensor:
    """uint8 or float numpy ``[N, H, W, C]`` -> float32 tensor in 0..1 (ComfyUI's IMAGE)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    return tensor.float() / 255.0 if frames.dtype == np.uint8 else tensor.float()
