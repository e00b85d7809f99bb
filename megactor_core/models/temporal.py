"""Temporal attention: each spatial position attends across the frames of its video."""

from __future__ import annotations

import torch
from torch import nn

from ..layout import spatial_to_temporal, temporal_to_spatial
from .attention import Attention
from .embeddings import modulate, sincos_1d


class TemporalModulation(nn.Module):
    """adaLN-single for the temporal modules: one timestep MLP shared by all of them, giving each
    the shift and scale of its norm and the gate of its output ``[B, 3, dim]`` (added to the
    module's own table). It starts at zero, so the tables alone modulate a freshly added module."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 3 * dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        """``embedded``: the timestep embedding ``[B, dim]`` (:class:`AdaLNSingle`'s second output)."""
        return self.linear(nn.functional.silu(embedded)).unflatten(1, (3, -1))


class TemporalAttention(nn.Module):
    """EasyAnimate-V1 / AnimateDiff-style motion module on DiT tokens.

    Pre-norm self-attention over the frame axis with sin-cos frame positions. The output
    projection starts at zero, so inserting the module leaves a trained model unchanged.
    ``modulated``: the norm's shift and scale and the output's gate (``1 + gate``) come from
    :class:`TemporalModulation` plus a per-module table, as PixArt-α's blocks are modulated, instead
    of a fixed affine norm: the module can act differently on noisy and on nearly clean steps.
    """

    def __init__(self, dim: int, heads: int, eps: float, *, modulated: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=not modulated, eps=eps)
        self.attn = Attention(dim, heads, zero_init_out=True)
        self.modulation = nn.Parameter(torch.randn(3, dim) / dim**0.5) if modulated else None

    def forward(self, x: torch.Tensor, frames: int, modulation: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``[B*F, N, D]`` tokens of ``frames`` consecutive frames per video; ``modulation``:
        :class:`TemporalModulation`'s ``[B*F, 3, D]`` (required when modulated)."""
        tokens = x.shape[1]
        h = self.norm(x)
        gate = None
        if self.modulation is not None:
            if modulation is None:
                raise ValueError("a modulated temporal module needs the temporal modulation of the timestep")
            shift, scale, gate = (self.modulation[None].to(modulation.device) + modulation).chunk(3, dim=1)
            h = modulate(h, shift, scale)
        seq = spatial_to_temporal(h, frames)
        positions = torch.arange(frames, device=x.device)
        seq = seq + sincos_1d(positions, seq.shape[-1]).to(seq.dtype)
        out = temporal_to_spatial(self.attn(seq), tokens)
        return x + (out if gate is None else (1 + gate) * out)
