"""The MegActor-Σ transformer block: a PixArt-α block with reference, temporal and audio paths."""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention
from .audio_attention import AudioAttention
from .embeddings import modulate
from .temporal import TemporalAttention


class FeedForward(nn.Module):
    """PixArt-α's MLP: Linear -> GELU (tanh) -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """Self-attention -> (temporal attention) -> (audio attention) -> MLP, adaLN-single modulated.

    Without reference features, temporal and audio modules, this is exactly PixArt-α's block with
    its text cross-attention removed.
    """

    def __init__(self, dim: int, heads: int, mlp_hidden: int, eps: float, *,
                 audio_dim: int | None = None, temporal: bool = False, temporal_modulation: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.attn = Attention(dim, heads)
        self.temporal = TemporalAttention(dim, heads, eps, modulated=temporal_modulation) if temporal else None
        self.audio_attn = AudioAttention(dim, heads, audio_dim, eps) if audio_dim else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.mlp = FeedForward(dim, mlp_hidden)
        # Per-block table added to the shared timestep modulation (PixArt's scale_shift_table).
        self.modulation = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def _chunks(self, modulation: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.modulation[None].to(modulation.device) + modulation).chunk(6, dim=1)

    def attention_input(self, x: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """The modulated, normalised tokens entering self-attention (what the reference shares)."""
        shift, scale = self._chunks(modulation)[:2]
        return modulate(self.norm1(x), shift, scale)

    def forward(
        self,
        x: torch.Tensor,
        modulation: torch.Tensor,
        *,
        frames: int = 1,
        reference: tuple[torch.Tensor, torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        audio_scale: torch.Tensor | float = 1.0,
        temporal_modulation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run one block on ``x``: ``[B*F, N, D]``.

        ``modulation``: ``[B*F, 6, D]`` from adaLN-single. ``reference``: reference keys and values
        ``[V, heads, R, head_dim]`` of the first ``V <= B`` videos, appended to each of their frames'
        own in self-attention (the other videos see none).
        ``mask``: ``[B*F or 1, 1, N, N(+R)]``, boolean (True where a query may attend a key) or
        additive. ``audio``: ``[B*F, T, audio_dim]``. ``temporal_modulation``: ``[B*F, 3, D]`` for a
        modulated temporal module (:class:`TemporalModulation`).
        """
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self._chunks(modulation)
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa * self.attn(h, mask=mask, extra_kv=reference, extra_group=frames)
        if self.temporal is not None:
            x = self.temporal(x, frames, temporal_modulation)
        if self.audio_attn is not None and audio is not None:
            x = self.audio_attn(x, audio, audio_scale)
        h = modulate(self.norm2(x), shift_mlp, scale_mlp)
        return x + gate_mlp * self.mlp(h)
