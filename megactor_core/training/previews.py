"""Sample previews during training: reference | driving | generated | target, one row per frame."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..audio import AudioFeatures
from ..models import MegActorSigma
from ..pipeline import LatentCodec, SamplerSettings, sample_video
from .samples import Preview

MAX_ROWS = 4


def write_preview(path: str | os.PathLike, model: MegActorSigma, codec: LatentCodec, preview: Preview, *,
                  steps: int, device: torch.device) -> Path:
    """Animate ``preview``'s reference with its controls and write the comparison grid as a PNG."""
    frames = preview.targets.shape[0]
    audio = None if preview.audio is None else AudioFeatures(preview.audio, preview.fps, context=0, layers=(0,))
    settings = SamplerSettings(steps=steps, window=max(frames, 1), overlap=0)
    latents = sample_video(model, codec, preview.reference, settings, audio=audio, driving=preview.driving,
                           frames=frames, device=device)
    generated = codec.decode(latents)
    driving = preview.driving if preview.driving is not None else torch.full_like(preview.targets, 0.5)
    rows = [torch.cat([preview.reference, driving[i], generated[i], preview.targets[i]], dim=1)
            for i in range(min(frames, MAX_ROWS))]
    grid = (torch.cat(rows, dim=0).numpy() * 255).round().astype(np.uint8)
    path = Path(path)
    with atomic_write(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write the preview {path}")
    return path
