"""Multi-head audio attention (MHAA), the paper's Eq.4: ``h = h + λ · MHAA(h, audio)``."""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention


class AudioAttention(nn.Module):
    """Image tokens (queries) attend to their frame's Whisper features (keys/values).

    Takes the place of PixArt-α's text cross-attention. Both inputs are layer-normed (Whisper's
    intermediate layers are not normalised); the output projection starts at zero so a model
    gains audio attention without changing until it is trained.
    """

    def __init__(self, dim: int, heads: int, audio_dim: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.audio_norm = nn.LayerNorm(audio_dim, eps=eps)
        self.attn = Attention(dim, heads, context_dim=audio_dim, zero_init_out=True)

    def forward(self, x: torch.Tensor, audio: torch.Tensor,
                scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``x``: ``[M, N, D]``; ``audio``: ``[M, T, audio_dim]``; ``scale``: λ, a number or ``[M, 1, 1]``."""
        return x + scale * self.attn(self.norm(x), self.audio_norm(audio))
