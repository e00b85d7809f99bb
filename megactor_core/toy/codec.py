"""The toy world's latent codecs in place of a VAE: a fixed block-DCT projection, or a small learned
autoencoder trained on toy faces as the SD VAE was on real images."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_write

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


@dataclass(frozen=True)
class ConvCodecConfig:
    """A :class:`ConvCodec`'s shape: ``channels`` per latent cell, conv widths from the pixels down to the cells."""

    channels: int = 16
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)


class ConvCodec(nn.Module):
    """A small learned autoencoder, images ``[N, H, W, 3]`` in 0..1 <-> ``[N, channels, H/8, W/8]``, as the
    SD VAE is for real frames: three stride-2 convolutions down, nearest upsampling and convolutions up.

    Unlike the block DCT, its decoder sees each cell's neighbours (no 8x8 seams) and draws detail the
    latents only hint at. ``scale`` (a buffer, set by :func:`train_conv_codec`) brings the latents to unit
    std, the role of the VAE's scaling factor.
    """

    def __init__(self, config: ConvCodecConfig = ConvCodecConfig()) -> None:
        super().__init__()
        self.config = config
        a, b, c, d = config.widths
        self.encoder = nn.Sequential(
            nn.Conv2d(3, a, 3, padding=1), nn.GELU(), nn.Conv2d(a, b, 4, 2, 1), nn.GELU(),
            nn.Conv2d(b, c, 4, 2, 1), nn.GELU(), nn.Conv2d(c, d, 4, 2, 1), nn.GELU(),
            nn.Conv2d(d, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, config.channels, 3, padding=1))
        up = partial(nn.Upsample, scale_factor=2, mode="nearest")
        self.decoder = nn.Sequential(
            nn.Conv2d(config.channels, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, d, 3, padding=1), nn.GELU(), up(),
            nn.Conv2d(d, c, 3, padding=1), nn.GELU(), up(), nn.Conv2d(c, b, 3, padding=1), nn.GELU(), up(),
            nn.Conv2d(b, a, 3, padding=1), nn.GELU(), nn.Conv2d(a, 3, 3, padding=1))
        self.register_buffer("scale", torch.ones(()))

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """Unscaled latents of images ``[N, H, W, 3]`` in 0..1 (with gradients, for training)."""
        return self.encoder(images.permute(0, 3, 1, 2).float() * 2 - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._encode(part) for part in images.split(_CHUNK)]) * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        pixels = torch.cat([self.decoder(part.float() / self.scale) for part in latents.split(_CHUNK)])
        return ((pixels + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)


_CHUNK = 64  # frames per encoder / decoder call: memory stays flat however long the video


def train_conv_codec(frames: np.ndarray, config: ConvCodecConfig, *, steps: int, seed: int, batch_size: int = 32,
                     learning_rate: float = 2e-3, latent_noise: float = 0.1) -> ConvCodec:
    """A :class:`ConvCodec` trained to reconstruct uint8 ``frames`` ``[N, S, S, 3]`` (L1, AdamW, cosine decay
    after up to 100 warm-up steps). Noise of ``latent_noise`` times the latents' std is added before decoding, so
    the decoder also draws latents that are a little off (a diffusion model's) as clean frames."""
    torch.manual_seed(seed)
    codec = ConvCodec(config)
    images = torch.from_numpy(frames)
    optimizer = torch.optim.AdamW(codec.parameters(), learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    warmup = min(100, max(steps // 10, 1))
    for step in tqdm(range(steps), desc="codec", unit="step"):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)].float() / 255
        latents = codec._encode(batch)
        noisy = latents + latent_noise * latents.detach().std() * torch.randn(latents.shape, generator=generator)
        target = batch.permute(0, 3, 1, 2) * 2 - 1
        loss = F.l1_loss(codec.decoder(noisy), target) + 1e-4 * latents.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    codec.eval()
    latents = codec.encode(images.float() / 255)
    codec.scale.fill_(1.0 / float(latents.std()))
    return codec


def save_conv_codec(codec: ConvCodec, path: str | os.PathLike) -> Path:
    """Write ``codec`` (weights and config) to a safetensors file, atomically."""
    path = Path(path)
    metadata = {"format": "megactor-toy-conv-codec", "config": json.dumps(dataclasses.asdict(codec.config))}
    with atomic_write(path, ".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, tmp, metadata=metadata)
    return path


def load_conv_codec(path: str | os.PathLike) -> ConvCodec:
    """A codec written by :func:`save_conv_codec`, ready to encode and decode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"toy codec {path} not found: `python -m megactor_core.toy.reproduce` writes it "
                                "beside the model it trains")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != "megactor-toy-conv-codec":
            raise ValueError(f"{path} is not a toy codec file (no 'megactor-toy-conv-codec' format in its metadata)")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    codec = ConvCodec(ConvCodecConfig(config["channels"], tuple(config["widths"])))
    codec.load_state_dict(tensors)
    return codec.eval()


def codec_path(model: str | os.PathLike) -> Path:
    """Where the learned codec of a toy model file lives: beside it, ``<name>.codec.safetensors``."""
    model = Path(model)
    return model.with_name(model.name.removesuffix(".safetensors") + ".codec.safetensors")


def model_codec(model: str | os.PathLike) -> DctCodec | ConvCodec:
    """The codec a toy model file was trained with, as the recipe in its metadata names it (the block DCT
    when it names none, as files from before the learned codec)."""
    from ..models import read_checkpoint

    recipe = json.loads(read_checkpoint(model, tensors=False)[2].get("recipe", "{}"))
    return load_conv_codec(codec_path(model)) if recipe.get("codec", "dct") == "conv" else DctCodec()
