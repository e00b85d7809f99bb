"""Eq.2 at inference: the generated mouth may not attend the region the driving frames show.

Training masks every sample whose driving frames hide the mouth this way (``training.masks``),
so the mouth learns to follow the audio alone; sampling such frames without the mask puts the
model where it was never trained, and its mouth barely moves (the toy reproduction's mixed mode:
lip-sync 0.45 without, 0.79 with; docs/toy.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .face import FaceLandmarks
from .face_drop import KEEP_CHOICES
from .regions import region_masks

CHUNK = 64  # frames rasterised at once: memory stays flat however long the video


@dataclass(frozen=True)
class MouthAttention:
    """Where the mouth and the kept region of each face-dropped driving frame are.

    The driving frames carry the target's motion, so their mouth region is where the generated
    mouth will be. Landmarks are in the driving frames' pixels (after α scaling); the token grids
    are made at whatever size the sampler runs.
    """

    landmarks: FaceLandmarks
    keep: str
    dilate: float = 0.05

    @classmethod
    def for_face_drop(cls, landmarks: FaceLandmarks, keep: str, *, dilate: float = 0.05) -> MouthAttention | None:
        """The Eq.2 regions of frames face-dropped to ``keep``; None when they show the mouth (no mask)."""
        if keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
        return None if keep in ("mouth", "both") else cls(landmarks, keep, dilate)

    @property
    def frames(self) -> int:
        return self.landmarks.frames

    def tokens(self, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Boolean ``[F, rows * cols]`` each, row-major as the denoiser's tokens: the tokens the
        mouth touches and those the kept region touches, on a ``rows`` x ``cols`` token grid over
        the frame."""
        mouth, kept = [], []
        for start in range(0, self.frames, CHUNK):
            part = _frames(self.landmarks, slice(start, start + CHUNK))
            for out, region in ((mouth, "mouth"), (kept, self.keep)):
                masks = torch.from_numpy(region_masks(part, region, dilate=self.dilate))[:, None]
                out.append(F.adaptive_avg_pool2d(masks, (rows, cols)).flatten(1) > 0)
        return torch.cat(mouth), torch.cat(kept)


def _frames(landmarks: FaceLandmarks, frames: slice) -> FaceLandmarks:
    return FaceLandmarks(landmarks.points[frames], landmarks.scores[frames], landmarks.detected[frames],
                         landmarks.width, landmarks.height)

