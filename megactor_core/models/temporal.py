"""Temporal attention: each spatial position attends across the frames of its video."""

from __future__ import annotations

import torch
from torch import nn

from ..layout import spatial_to_temporal, temporal_to_spatial
from .attention import Attention
from .embeddings import sincos_1d


class TemporalAttention(nn.Module):
    """EasyAnimate-V1 / AnimateDiff-style motion module on DiT tokens.

    Pre-norm self-attention over the frame axis with sin-cos frame positions. The output
    projection starts at zero, so inserting the module leaves a trained model unchanged.
    """

    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, zero_init_out=True)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """``x``: ``[B*F, N, D]`` tokens of ``frames`` consecutive frames per video."""
        tokens = x.shape[1]
        seq = spatial_to_temporal(self.norm(x), frames)
        positions = torch.arange(frames, device=x.device)
        seq = seq + sincos_1d(positions, seq.shape[-1]).to(seq.dtype)
        return x + temporal_to_spatial(self.attn(seq), tokens)
