"""Driving frames prepared as the official SD1.5 release prepares them."""

from __future__ import annotations

import cv2
import numpy as np

from .face import BROWS, LEFT_EYE, MOUTH, RIGHT_EYE, FaceLandmarks
from .face_drop import check_drop_inputs

# Rectangles the release keeps: each brow with its eye, and the mouth.
_FEATURES = {"eyes": [BROWS[5:] + LEFT_EYE, BROWS[:5] + RIGHT_EYE], "mouth": [MOUTH]}
_HALF_SIZE = 0.75  # half a rectangle's side, in units of its feature's landmark box: 1.5x the box
_GRAY = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)


def release_face_drop(frames: np.ndarray, landmarks: FaceLandmarks, keep: str,
                      reference: FaceLandmarks | None = None) -> np.ndarray:
    """``[N, H, W, 3]`` float frames in 0..1 -> the release's driving frames: black but for a
    rectangle 1.5 times the landmark box of each kept feature ("eyes": each brow with its eye,
    "mouth", or "both"), grey, and, given the reference portrait's ``reference`` landmarks, moved
    by the one affine map that takes the first frame's face box onto the reference's."""
    check_drop_inputs(frames, landmarks, keep)
    groups = _FEATURES["eyes"] + _FEATURES["mouth"] if keep == "both" else _FEATURES[keep]
    n, height, width = frames.shape[:3]
    out = np.zeros_like(frames)
    for i in range(n):
        for group in groups:
            (x0, y0), (x1, y1) = landmarks.points[i, group].min(axis=0), landmarks.points[i, group].max(axis=0)
            cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, _HALF_SIZE * (x1 - x0), _HALF_SIZE * (y1 - y0)
            left, right = int(max(cx - hw, 0)), int(min(cx + hw, width))
            top, bottom = int(max(cy - hh, 0)), int(min(cy + hh, height))
            out[i, top:bottom, left:right] = frames[i, top:bottom, left:right]
    if reference is not None:
        move = cv2.getAffineTransform(_box_corners(landmarks.points[0]), _box_corners(reference.points[0]))
        out = np.stack([cv2.warpAffine(frame, move, (width, height)) for frame in out])
    return np.repeat((out @ _GRAY)[..., None], 3, axis=-1).clip(0, 1).astype(frames.dtype)


def _box_corners(points: np.ndarray) -> np.ndarray:
    """Top-left, bottom-right and bottom-left corners of the landmarks' box, in whole pixels."""
    (left, top), (right, bottom) = points.min(axis=0).astype(np.int32), points.max(axis=0).astype(np.int32)
    return np.float32([[left, top], [right, bottom], [left, bottom]])
