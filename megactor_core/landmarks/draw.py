"""Landmark previews: the tracked face's points drawn on the frames."""

from __future__ import annotations

import cv2
import numpy as np

from .face import FaceLandmarks


def draw_landmarks(frames: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` copies with the 68 points drawn: green where detected, orange
    where interpolated from neighbouring frames."""
    out = frames.copy()
    radius = max(1, round(min(landmarks.width, landmarks.height) / 256))
    for frame, points, detected in zip(out, landmarks.points, landmarks.detected, strict=True):
        colour = (0, 255, 0) if detected else (255, 160, 0)
        for x, y in np.round(points).astype(int):
            cv2.circle(frame, (int(x), int(y)), radius, colour, -1, lineType=cv2.LINE_AA)
    return out
