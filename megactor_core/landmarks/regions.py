"""Eyes, mouth and face regions from 68 landmarks: pixel masks, token masks and the Eq.2 mask."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

from .face import BROWS, JAW, LEFT_EYE, MOUTH, RIGHT_EYE, FaceLandmarks

Region = Literal["eyes", "mouth", "both", "face"]
REGIONS: tuple[str, ...] = ("eyes", "mouth", "both", "face")


def _polygons(points: np.ndarray, region: str) -> list[np.ndarray]:
    """Convex outlines ``[K, 2]`` of a region in one frame's 68 points."""
    eyes = [points[RIGHT_EYE], points[LEFT_EYE]]
    if region == "eyes":
        return eyes
    if region == "mouth":
        return [points[MOUTH]]
    if region == "both":
        return eyes + [points[MOUTH]]
    if region == "face":
        # The 68 points stop at the brows: raise them by half the brow-to-chin height for the forehead.
        brows = points[BROWS]
        lift = 0.5 * (points[JAW].max(axis=0)[1] - brows.mean(axis=0)[1])
        return [np.concatenate([points[JAW], brows - [0, lift]])]
    raise ValueError(f"unknown face region {region!r}; choose one of {REGIONS}")


def region_masks(landmarks: FaceLandmarks, region: Region, *, dilate: float = 0.05,
                 feather: float = 0.0) -> np.ndarray:
    """``[N, H, W]`` float32 masks in 0..1 of a region in each frame.

    ``dilate`` grows the region and ``feather`` blurs its edge, both as fractions of the face
    size, so one setting suits faces of any size.
    """
    if dilate < 0 or feather < 0:
        raise ValueError(f"dilate and feather must be 0 or more, got {dilate} and {feather}")
    sizes = landmarks.face_size()
    masks = np.zeros((landmarks.frames, landmarks.height, landmarks.width), np.float32)
    for i, points in enumerate(landmarks.points):
        for polygon in _polygons(points, region):
            hull = cv2.convexHull(np.round(polygon).astype(np.int32))
            cv2.fillConvexPoly(masks[i], hull, 1.0)
        grow = int(round(dilate * sizes[i]))
        if grow > 0:
            masks[i] = cv2.dilate(masks[i], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        sigma = feather * sizes[i]
        if sigma > 0:
            masks[i] = cv2.GaussianBlur(masks[i], (0, 0), sigma)
    return masks


def token_masks(masks: np.ndarray | torch.Tensor, cell: int = 16) -> torch.Tensor:
    """Pixel masks ``[N, H, W]`` -> the fraction of each ``cell`` x ``cell`` token they cover,
    ``[N, H/cell, W/cell]`` (cell 16 = the SD-VAE's 8 times the DiT's patch 2)."""
    masks = torch.as_tensor(masks, dtype=torch.float32)
    height, width = masks.shape[-2:]
    if height % cell or width % cell:
        raise ValueError(f"masks are {height}x{width}; height and width must be multiples of the token cell {cell}")
    return torch.nn.functional.avg_pool2d(masks[:, None], cell)[:, 0]


def mouth_attention_mask(mouth_tokens: torch.Tensor, driving_tokens: torch.Tensor) -> torch.Tensor:
    """Eq.2: boolean ``[N, T, T]`` self-attention masks where mouth queries may not attend the
    tokens of the driving region (True = may attend).

    ``mouth_tokens`` and ``driving_tokens`` are boolean ``[N, T]`` (flattened token grids). A
    token in both keeps seeing itself, so no query is left without keys.
    """
    blocked = mouth_tokens[:, :, None] & driving_tokens[:, None, :]
    return ~blocked | torch.eye(mouth_tokens.shape[1], dtype=torch.bool, device=mouth_tokens.device)
