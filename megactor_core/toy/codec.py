"""The toy world's latent codec: an exact, fixed pixel rearrangement instead of a trained VAE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

CELL = 8  # pixels per latent cell side, as the SD VAE
CHANNELS = 3 * CELL * CELL  # the model's latent_channels for this codec


class PixelCodec:
    """Images ``[N, H, W, 3]`` in 0..1 <-> ``[N, 192, H/8, W/8]``: each 8x8 RGB block, scaled to
    -1..1, becomes one latent cell. Lossless, free and deterministic, so every error in a toy
    result is the diffusion model's, not an autoencoder's."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(images.permute(0, 3, 1, 2).float() * 2 - 1, CELL)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((F.pixel_shuffle(latents.float(), CELL) + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
