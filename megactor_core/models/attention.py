"""Multi-head attention on ``scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections (PixArt-α / diffusers layout; Stable
    Diffusion's projections have no q/k/v bias: ``qkv_bias=False``).

    ``context`` supplies keys and values (self-attention when omitted); its width may differ
    from the query width (``context_dim``), as in audio attention. ``extra_kv``: keys and values
    ``[batch, heads, R, head_dim]`` projected beforehand (:meth:`keys_values`), appended after the
    context's. ``mask`` is broadcastable to ``[batch, heads, queries, keys]``: boolean, True where
    a query may attend a key, or additive in the queries' dtype.
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 zero_init_out: bool = False, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        context_dim = dim if context_dim is None else context_dim
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_out = nn.Linear(dim, dim)
        if zero_init_out:
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, R, context_dim]`` -> keys and values ``[B, heads, R, head_dim]``."""
        return self._split_heads(self.to_k(context)), self._split_heads(self.to_v(context))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None,
                extra_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        q = self._split_heads(self.to_q(x))
        k, v = self.keys_values(x if context is None else context)
        if extra_kv is not None:
            k, v = torch.cat([k, extra_kv[0]], dim=2), torch.cat([v, extra_kv[1]], dim=2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))
