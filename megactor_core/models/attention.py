"""Multi-head attention on ``scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections (PixArt-α / diffusers layout; Stable
    Diffusion's projections have no q/k/v bias: ``qkv_bias=False``).

    ``context`` supplies keys and values (self-attention when omitted); its width may differ
    from the query width (``context_dim``), as in audio attention. A context of batch 1 is shared
    by every batch item and projected once (SD's empty-prompt text for all frames). ``extra_kv``: keys and values
    ``[groups, heads, R, head_dim]`` projected beforehand (:meth:`keys_values`), appended after the
    context's: each group's by ``extra_group`` consecutive batch items (the frames of a video;
    default ``batch / groups``), and none by the items past ``groups * extra_group`` (guidance's
    unconditional branch when it drops the reference, batched with the conditional one).
    ``mask`` is broadcastable to ``[batch, heads, queries, keys]``: boolean, True where a query may
    attend a key, or additive in the queries' dtype.
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
                extra_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                extra_group: int | None = None) -> torch.Tensor:
        q = self._split_heads(self.to_q(x))
        k, v = self.keys_values(x if context is None else context)
        if k.shape[0] == 1 < q.shape[0]:
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
        if extra_kv is None:
            out = attend(q, k, v, mask)
        else:
            group = extra_group or q.shape[0] // extra_kv[0].shape[0]
            m = extra_kv[0].shape[0] * group  # the items that see the extra keys
            if m < q.shape[0] and mask is not None:
                raise ValueError(f"a mask cannot be combined with extra keys for only {m} of {q.shape[0]} batch items")
            out = attend(q[:m], append_shared(k[:m], extra_kv[0], group), append_shared(v[:m], extra_kv[1], group),
                         mask)
            if m < q.shape[0]:
                out = torch.cat([out, attend(q[m:], k[m:], v[m:])])
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


# Up to this many keys (attention across a window's frames) the explicit product is used.
FEW_KEYS = 32


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q kᵀ / √d) v over ``[batch, heads, tokens, d]``. ``scaled_dot_product_attention``,
    except for a handful of keys without a mask (temporal attention: one query per frame, for
    thousands of positions), where the fused kernel's tiling costs more than the tiny product
    itself: 14x on the CPU for a 16-frame window at 256² (benchmarks/sd15_vs_official.py --profile)."""
    if mask is not None or k.shape[-2] > FEW_KEYS:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    return scores.softmax(-1) @ v


def append_shared(x: torch.Tensor, extra: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` ``[G*n, heads, N, d]`` with ``extra`` ``[G, heads, R, d]`` appended along the tokens,
    group ``g``'s to items ``g*n .. g*n+n-1``: ``[G*n, heads, N+R, d]`` in one copy (no repeat)."""
    groups = extra.shape[0]
    if x.shape[0] != groups * n:
        raise ValueError(f"{groups} groups of extra keys/values for {n} items each cannot be shared by a batch "
                         f"of {x.shape[0]}")
    return torch.cat([x.unflatten(0, (groups, n)), extra[:, None].expand(-1, n, -1, -1, -1)], dim=3).flatten(0, 1)
