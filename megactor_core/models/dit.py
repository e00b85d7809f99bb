"""The trunk shared by the denoiser and the reference transformer."""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from torch import nn

from .block import DiTBlock
from .config import MegActorConfig
from .embeddings import AdaLNSingle, PatchEmbed


class DiTTrunk(nn.Module):
    """PixArt-α's patch embedding, adaLN-single timestep MLP and a stack of blocks."""

    def __init__(self, config: MegActorConfig, in_channels: int, num_blocks: int, *,
                 audio: bool, temporal: bool) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.patch_embed = PatchEmbed(in_channels, dim, config.patch_size, config.sample_size,
                                      config.interpolation_scale)
        self.time_embed = AdaLNSingle(dim)
        self.blocks = nn.ModuleList(
            DiTBlock(
                dim, config.num_heads, int(dim * config.mlp_ratio), config.norm_eps,
                audio_dim=config.audio_dim if audio else None,
                temporal=temporal and config.has_temporal(i), temporal_modulation=config.temporal_modulation,
            )
            for i in range(num_blocks)
        )
        self.gradient_checkpointing = False

    def check_size(self, height: int, width: int, what: str) -> None:
        """Fail clearly on a latent size the patch does not divide."""
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(f"{what} are {height}x{width} latent cells; height and width must be "
                             f"multiples of the patch size {p}")

    def timesteps(self, timestep: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
        """A scalar or ``[batch]`` timestep as a float ``[batch]`` tensor."""
        t = torch.as_tensor(timestep, device=device, dtype=torch.float32).reshape(-1)
        if t.numel() == 1:
            return t.expand(batch)
        if t.numel() != batch:
            raise ValueError(f"timestep has {t.numel()} values for a batch of {batch}")
        return t

    def run_block(self, index: int, x: torch.Tensor, modulation: torch.Tensor, **kwargs) -> torch.Tensor:
        block = self.blocks[index]
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, x, modulation, use_reentrant=False, **kwargs)
        return block(x, modulation, **kwargs)
