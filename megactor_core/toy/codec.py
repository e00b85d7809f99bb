"""The toy world's latent codec: a fixed block-DCT projection instead of a trained VAE."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CELL = 8  # pixels per latent cell side, as the SD VAE
# Opponent colours (orthonormal): brightness, red-green, yellow-blue.
COLOURS = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]])
FREQUENCIES = (32, 8, 8)  # DCT coefficients kept per 8x8 block for each opponent colour, lowest first
CHANNELS = sum(FREQUENCIES)  # the model's latent_channels for this codec


def _dct_basis() -> torch.Tensor:
    """``[CHANNELS, 3 * CELL * CELL]``: orthonormal rows in ``pixel_unshuffle``'s (RGB, y, x) order,
    each one 2-D DCT-II basis image of one opponent colour, ordered by frequency (u + v, then u) as
    JPEG's zig-zag."""
    k, i = torch.meshgrid(torch.arange(CELL), torch.arange(CELL), indexing="ij")
    dct = torch.cos(math.pi * (2 * i + 1) * k / (2 * CELL)) * math.sqrt(2 / CELL)
    dct[0] /= math.sqrt(2)
    order = sorted(((u, v) for u in range(CELL) for v in range(CELL)), key=lambda f: (f[0] + f[1], f[0]))
    images = torch.stack([torch.outer(dct[u], dct[v]).flatten() for u, v in order])  # [64, 64]
    colours = COLOURS / COLOURS.norm(dim=1, keepdim=True)
    return torch.cat([torch.kron(colour[None], images[:count])
                      for colour, count in zip(colours, FREQUENCIES, strict=True)])


class DctCodec:
    """Images ``[N, H, W, 3]`` in 0..1 <-> ``[N, 48, H/8, W/8]``: each 8x8 RGB block, scaled to -1..1,
    becomes the 32 lowest DCT frequencies of its brightness and the 8 lowest of each of its two
    opponent colours (as JPEG, detail is kept where the eye sees it: in brightness).

    Fixed and deterministic, so every error beyond the projection's own (1.6–2.6 / 255 on toy
    frames) is the diffusion model's. The basis is orthonormal, so diffusing these latents is
    pixel-space diffusion restricted to smooth blocks: the noise level per pixel and the loss
    (pixel MSE) are those of the pixels, with 4x fewer values to predict.
    """

    def __init__(self) -> None:
        self.basis = _dct_basis()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        blocks = F.pixel_unshuffle(images.permute(0, 3, 1, 2).float() * 2 - 1, CELL)
        return torch.einsum("kc,nchw->nkhw", self.basis, blocks)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        blocks = torch.einsum("kc,nkhw->nchw", self.basis, latents.float())
        return ((F.pixel_shuffle(blocks, CELL) + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
