"""Synthetic 68-point faces with known pose, and frames drawn from them."""

from __future__ import annotations

import numpy as np

from megactor_core.landmarks.face import FaceLandmarks, mean_face
from megactor_core.landmarks.head_pose import MODEL_POINTS
from megactor_core.toy.face import rotation


def frontal_face(centre=(128.0, 128.0), size=100.0) -> np.ndarray:
    """[68, 2] iBUG-68 points of a plausible frontal face of width ``size`` around ``centre``."""
    return (np.asarray(centre) + size * mean_face()).astype(np.float32)


def posed_face(yaw: float, pitch: float, roll: float, width=512, height=512, distance=1500.0) -> np.ndarray:
    """[68, 2] landmarks whose six PnP points are the generic head seen at the given angles
    (camera axes: x right, y down, z away), the other points on a frontal face around them."""
    pts = frontal_face((width / 2, height / 2), 150.0)
    f = float(width)
    for i, (x, y, z) in MODEL_POINTS.items():
        p = rotation(yaw, pitch, roll) @ np.array([x, -y, -z]) + [0, 0, distance]
        pts[i] = [f * p[0] / p[2] + width / 2, f * p[1] / p[2] + height / 2]
    return pts


def landmarks_of(points: np.ndarray, width=256, height=256) -> FaceLandmarks:
    n = points.shape[0]
    return FaceLandmarks(points.astype(np.float32), np.ones((n, 68), np.float32), np.ones(n, bool), width, height)
