"""Reference transformer: encodes the reference portrait once per video."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .config import MegActorConfig
from .dit import DiTTrunk


@dataclass
class ReferenceFeatures:
    """Per-block reference keys and values ``{block: (k, v)}``, each ``[B, heads, R, head_dim]``,
    already projected by that block's self-attention in the denoiser: they depend on neither the
    frame nor the timestep, so one video computes them once (:meth:`MegActorSigma.encode_reference`).
    ``videos``: see :meth:`first`."""

    keys_values: dict[int, tuple[torch.Tensor, torch.Tensor]]
    videos: int | None = None

    @property
    def batch(self) -> int:
        return next(iter(self.keys_values.values()))[0].shape[0]

    def first(self, videos: int) -> ReferenceFeatures:
        """These features for the first ``videos`` videos of a batch only; the others see no
        reference (guidance's unconditional branch when it drops the reference, in one batch)."""
        return replace(self, videos=videos)

    def repeat_interleave(self, repeats: int) -> ReferenceFeatures:
        """Each video's features for the ``repeats`` consecutive videos of a batch that share its reference."""
        if repeats == 1:
            return self
        return ReferenceFeatures({i: (k.repeat_interleave(repeats, 0), v.repeat_interleave(repeats, 0))
                                  for i, (k, v) in self.keys_values.items()}, self.videos)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> ReferenceFeatures:
        return ReferenceFeatures({i: (k.to(device=device, dtype=dtype), v.to(device=device, dtype=dtype))
                                  for i, (k, v) in self.keys_values.items()}, self.videos)


class ReferenceTransformer(DiTTrunk):
    """Same blocks as the denoiser (no audio, no temporal) run at a fixed clean timestep.

    The tokens entering self-attention of block ``i`` (normalised and modulated) are kept for
    the denoiser's block ``i``, AnimateAnyone-style. Blocks past the last one needed are not
    built, and of that last block only its modulation is used.
    """

    def __init__(self, config: MegActorConfig) -> None:
        super().__init__(config, config.latent_channels, max(config.reference_blocks) + 1,
                         audio=False, temporal=False)
        # Only the input of the last block's self-attention is read: its attention and MLP
        # would be weights that never receive a gradient.
        self.blocks[-1].attn = None
        self.blocks[-1].mlp = None

    def forward(self, latents: torch.Tensor) -> dict[int, torch.Tensor]:
        """Scaled reference latents ``[B, C, h, w]`` -> the tokens ``{block: [B, R, D]}`` entering
        self-attention of each block in ``config.reference_blocks``."""
        if latents.ndim != 4:
            raise ValueError(f"reference latents must be [batch, channels, height, width], got {tuple(latents.shape)}")
        if latents.shape[1] != self.config.latent_channels:
            raise ValueError(f"reference latents have {latents.shape[1]} channels; this model expects "
                             f"{self.config.latent_channels} (shape {tuple(latents.shape)})")
        self.check_size(*latents.shape[-2:], "reference latents")
        x = self.patch_embed(latents)
        t = self.timesteps(self.config.reference_timestep, x.shape[0], x.device)
        modulation, _ = self.time_embed(t, x.dtype)
        wanted = set(self.config.reference_blocks)
        tokens = {}
        for i, block in enumerate(self.blocks):
            if i in wanted:
                tokens[i] = block.attention_input(x, modulation)
            if i == len(self.blocks) - 1:
                break
            x = self.run_block(i, x, modulation)
        return tokens
