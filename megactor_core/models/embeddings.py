"""Patch, position and timestep embeddings of PixArt-α."""

from __future__ import annotations

import math

import torch
from torch import nn


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """``[M] -> [M, dim]``: sines then cosines of ``positions`` at 10000^(-2i/dim) frequencies."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    angles = positions.to(torch.float64)[:, None] * (1.0 / 10000**omega)[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim: int, rows: int, cols: int, base_size: int, interpolation_scale: float,
              device: torch.device | None = None) -> torch.Tensor:
    """PixArt-α's 2-D position table ``[rows*cols, dim]`` (row-major), in float32.

    Coordinates are stretched so that any grid spans ``base_size`` units (the training grid), as
    PixArt-α does for resolutions other than its training one. The first half of the channels
    encodes the column, the second half the row.
    """
    y = torch.arange(rows, dtype=torch.float64, device=device) / (rows / base_size)
    x = torch.arange(cols, dtype=torch.float64, device=device) / (cols / base_size)
    y, x = y / interpolation_scale, x / interpolation_scale
    xx = x[None, :].expand(rows, cols).reshape(-1)
    yy = y[:, None].expand(rows, cols).reshape(-1)
    return torch.cat([sincos_1d(xx, dim // 2), sincos_1d(yy, dim // 2)], dim=1).float()


def timestep_sinusoid(timesteps: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """``[B] -> [B, dim]`` cosines then sines of the (float) diffusion timestep, in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=timesteps.device) / half)
    angles = timesteps.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch × patch`` convolution to tokens, plus sin-cos positions."""

    def __init__(self, in_channels: int, dim: int, patch: int, sample_size: int,
                 interpolation_scale: float) -> None:
        super().__init__()
        self.patch = patch
        self.base_size = sample_size // patch
        self.interpolation_scale = interpolation_scale
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self._positions: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def positions(self, rows: int, cols: int, device: torch.device) -> torch.Tensor:
        key = (rows, cols, device)
        if key not in self._positions:
            self._positions[key] = sincos_2d(self.proj.out_channels, rows, cols, self.base_size,
                                             self.interpolation_scale, device)
        return self._positions[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[M, C, H, W] -> [M, (H/p)*(W/p), dim]``."""
        rows, cols = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return (tokens + self.positions(rows, cols, x.device)).to(tokens.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift``."""
    return x * (1 + scale) + shift


class AdaLNSingle(nn.Module):
    """adaLN-single: one timestep MLP shared by all blocks.

    Returns the per-block modulation ``[B, 6, dim]`` (added to each block's own table) and the
    timestep embedding ``[B, dim]`` used by the final layer.
    """

    frequency_dim = 256

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(self.frequency_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)
        self.modulation = nn.Linear(dim, 6 * dim)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freq = timestep_sinusoid(timesteps, self.frequency_dim).to(dtype)
        emb = self.linear_2(nn.functional.silu(self.linear_1(freq)))
        modulation = self.modulation(nn.functional.silu(emb))
        return modulation.unflatten(1, (6, -1)), emb
