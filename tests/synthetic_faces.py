"""Synthetic 68-point faces with known pose, and frames drawn from them."""

from __future__ import annotations

import math

import numpy as np

from megactor_core.landmarks.face import FaceLandmarks
from megactor_core.landmarks.head_pose import MODEL_POINTS
from megactor_core.toy.face import rotation


def frontal_face(centre=(128.0, 128.0), size=100.0) -> np.ndarray:
    """[68, 2] iBUG-68 points of a plausible frontal face of width ``size`` around ``centre``."""
    cx, cy = centre
    r = size / 2
    pts = np.zeros((68, 2))
    t = np.linspace(math.pi, 0, 17)  # jaw: a U from ear to ear, chin at the bottom
    pts[0:17] = np.stack([cx + r * np.cos(t), cy - 0.1 * r + r * np.sin(t)], 1)
    pts[17:22] = np.stack([np.linspace(cx - 0.75 * r, cx - 0.15 * r, 5), np.full(5, cy - 0.45 * r)], 1)
    pts[22:27] = np.stack([np.linspace(cx + 0.15 * r, cx + 0.75 * r, 5), np.full(5, cy - 0.45 * r)], 1)
    pts[27:31] = np.stack([np.full(4, cx), np.linspace(cy - 0.3 * r, cy + 0.15 * r, 4)], 1)
    pts[31:36] = np.stack([np.linspace(cx - 0.2 * r, cx + 0.2 * r, 5), np.full(5, cy + 0.25 * r)], 1)
    for start, ex in ((36, cx - 0.4 * r), (42, cx + 0.4 * r)):
        a = np.linspace(0, 2 * math.pi, 7)[:-1]
        pts[start:start + 6] = np.stack([ex - 0.18 * r * np.cos(a), cy - 0.25 * r - 0.07 * r * np.sin(a)], 1)
    a = np.linspace(0, 2 * math.pi, 13)[:-1]
    pts[48:60] = np.stack([cx - 0.35 * r * np.cos(a), cy + 0.55 * r - 0.12 * r * np.sin(a)], 1)
    a = np.linspace(0, 2 * math.pi, 9)[:-1]
    pts[60:68] = np.stack([cx - 0.25 * r * np.cos(a), cy + 0.55 * r - 0.05 * r * np.sin(a)], 1)
    return pts.astype(np.float32)


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
