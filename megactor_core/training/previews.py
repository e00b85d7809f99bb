"""Sample previews during training: reference | driving | generated | target, one row per frame,
and, with the evaluation's weight files at hand, their metrics against the target frames."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..audio import AudioFeatures
from ..models import MegActorSigma
from ..pipeline import LatentCodec, sample_video
from .config import TrainConfig
from .samples import Preview

MAX_ROWS = 4


def sample_preview(model: MegActorSigma, codec: LatentCodec, preview: Preview, config: TrainConfig, *,
                   device: torch.device) -> torch.Tensor:
    """Animate ``preview``'s reference with its controls: frames ``[F, H, W, 3]`` in 0..1."""
    frames = preview.targets.shape[0]
    audio = None if preview.audio is None else AudioFeatures(preview.audio, preview.fps, context=0, layers=(0,))
    settings = config.preview_settings(frames)
    latents = sample_video(model, codec, preview.reference, settings, audio=audio, driving=preview.driving,
                           mouth_attention=preview.mouth_attention, frames=frames, device=device)
    return codec.decode(latents)


def write_preview(path: str | os.PathLike, preview: Preview, generated: torch.Tensor) -> Path:
    """Write the comparison grid of ``preview`` and its ``generated`` frames as a PNG."""
    driving = preview.driving if preview.driving is not None else torch.full_like(preview.targets, 0.5)
    rows = [torch.cat([preview.reference, driving[i], generated[i], preview.targets[i]], dim=1)
            for i in range(min(len(generated), MAX_ROWS))]
    grid = to_uint8(torch.cat(rows, dim=0))
    path = Path(path)
    with atomic_write(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write the preview {path}")
    return path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in 0..1 (any leading shape, channels last) as uint8."""
    return (images.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
