"""The VAE as the pipeline sees it: images <-> unscaled SD latents, whatever library holds it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch

from ..progress import Progress


class LatentCodec(Protocol):
    """Images ``[N, H, W, 3]`` in 0..1 <-> unscaled latents ``[N, C, H/8, W/8]``.

    ``C`` is the model's ``latent_channels``: 4 for the SD VAE of the real model (the toy world's
    block-DCT codec, :class:`megactor_core.toy.DctCodec`, has 48).

    Unscaled: as the VAE gives them, before the model's ``vae_scaling_factor`` (ComfyUI's
    ``LATENT`` convention).
    """

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


def decode_video(codec: LatentCodec, latents: torch.Tensor, *, chunk: int = 8,
                 progress: Progress | None = None) -> torch.Tensor:
    """Unscaled latents ``[N, C, h, w]`` -> frames ``[N, H, W, 3]`` in 0..1 (float32, CPU), ``chunk``
    frames at a time, so the decoder's memory does not grow with the video; ``progress(done,
    total)`` after each chunk (raising from it cancels)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 frame, got {chunk}")
    frames = []
    for start in range(0, latents.shape[0], chunk):
        frames.append(codec.decode(latents[start:start + chunk]).float().cpu())
        if progress is not None:
            progress(min(start + chunk, latents.shape[0]), latents.shape[0])
    return torch.cat(frames)


class DiffusersVAE:
    """A diffusers ``AutoencoderKL`` as a :class:`LatentCodec`, decoding a few frames at a time so
    memory does not grow with video length.

    It runs on ``device`` (default: where its weights are). With ``offload`` its weights stay on
    the CPU and visit ``device`` only while encoding or decoding, so on a GPU they do not take
    memory from the denoiser in between.
    """

    def __init__(self, vae, chunk: int = 8, *, device: torch.device | str | None = None,
                 offload: bool = False) -> None:
        self.vae = vae.to("cpu") if offload else vae
        self.chunk = chunk
        self.device = torch.device(device) if device is not None else next(vae.parameters()).device
        self.offload = offload

    @contextmanager
    def _loaded(self) -> Iterator[torch.dtype]:
        if self.offload:
            self.vae.to(self.device)
        try:
            yield next(self.vae.parameters()).dtype
        finally:
            if self.offload:
                self.vae.to("cpu")

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with self._loaded() as dtype:
            x = images.permute(0, 3, 1, 2).to(self.device, dtype) * 2 - 1
            return torch.cat([self.vae.encode(part).latent_dist.mode().float().cpu()
                              for part in x.split(self.chunk)])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        with self._loaded() as dtype:
            out = [self.vae.decode(part.to(self.device, dtype)).sample.float().cpu()
                   for part in latents.split(self.chunk)]
        return ((torch.cat(out) + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
