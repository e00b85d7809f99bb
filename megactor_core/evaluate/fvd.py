"""FVD features: the I3D TorchScript of the common FVD code on non-overlapping 16-frame clips.

The detector is StyleGAN-V's ``i3d_torchscript.pt`` (Kinetics-400 I3D matching the TF-Hub model of
Unterthiner et al.), which StyleGAN-V, DIGAN and common_metrics_on_video_quality load with
``torch.jit.load``. The clip preparation is common_metrics_on_video_quality's (the code most
talking-head papers cite): each clip's shorter side is resized bilinearly to 224, the centre
224x224 is cut, values go to -1..1, and the detector is called as
``detector(videos, rescale=False, resize=False, return_features=True)`` on ``[B, 3, 16, 224, 224]``
giving ``[B, 400]`` logits-layer features. (``resize=True`` would resize to 224 again: a no-op here.)
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .weights import WEIGHT_FILES

CLIP = 16  # frames per clip
SIZE = 224
FEATURES = 400


def load_i3d(path: str | os.PathLike, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The published ``i3d_torchscript.pt`` on ``device``."""
    source = WEIGHT_FILES["i3d"].source
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it should be {source}")
    try:
        with warnings.catch_warnings():  # the published file is TorchScript, whatever torch's plans for the format
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # not a TorchScript archive
        raise ValueError(f"{path} could not be read as {source}: {exc}") from exc


def clips(frames: np.ndarray) -> np.ndarray:
    """``[K, 16, H, W, 3]`` the non-overlapping 16-frame clips of ``[N, H, W, 3]`` frames (a tail shorter
    than 16 is left out)."""
    count = len(frames) // CLIP
    return frames[:count * CLIP].reshape(count, CLIP, *frames.shape[1:])


def prepare(clip: np.ndarray) -> torch.Tensor:
    """uint8 ``[16, H, W, 3]`` -> ``[3, 16, 224, 224]`` in -1..1: shorter side to 224, centre crop."""
    video = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255  # [T, 3, H, W]
    height, width = video.shape[-2:]
    scale = SIZE / min(height, width)
    size = (SIZE, math.ceil(width * scale)) if height < width else (math.ceil(height * scale), SIZE)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    top, left = (video.shape[-2] - SIZE) // 2, (video.shape[-1] - SIZE) // 2
    video = video[..., top:top + SIZE, left:left + SIZE]
    return ((video - 0.5) * 2).permute(1, 0, 2, 3).contiguous()


@torch.inference_mode()
def i3d_features(detector: torch.jit.ScriptModule, frames: np.ndarray, device: torch.device | str = "cpu",
                 batch: int = 4) -> torch.Tensor:
    """``[K, 400]`` features of the video's 16-frame clips (``K`` may be 0 for a short video)."""
    all_clips = clips(frames)
    out = []
    for start in range(0, len(all_clips), batch):
        videos = torch.stack([prepare(c) for c in all_clips[start:start + batch]]).to(device)
        out.append(detector(videos, rescale=False, resize=False, return_features=True).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, FEATURES)
