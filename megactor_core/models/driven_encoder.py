"""Driven encoder: driving frames -> motion feature maps at latent resolution."""

from __future__ import annotations

import torch
from torch import nn

from ..layout import fold_frames, unfold_frames

# Pixels per latent cell of the SD VAE; the three stride-2 convs match it.
DOWNSAMPLE = 8


class DrivenEncoder(nn.Module):
    """Four small 2-D convs (three stride-2, one output) over each driving frame.

    Its output is concatenated with the noisy latent on channels; the denoiser's patch embedding
    weights for these channels start at zero, so this encoder starts with ordinary init.
    """

    def __init__(self, widths: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.SiLU()]
            channels = width
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, F, 3, H, W]`` in -1..1 -> ``[B, F, out_channels, H/8, W/8]``."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(
                f"driving frames must be [batch, frames, 3, height, width], got {tuple(frames.shape)}"
            )
        height, width = frames.shape[-2:]
        if height % DOWNSAMPLE or width % DOWNSAMPLE:
            raise ValueError(
                f"driving frames are {height}x{width}; height and width must be multiples of {DOWNSAMPLE}"
            )
        return unfold_frames(self.net(fold_frames(frames)), frames.shape[1])
