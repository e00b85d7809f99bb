"""Landmark metrics: does the generated face move as the driver (the real video) does?

From the 68 DWPose landmarks of both videos, frame by frame: the head-pose error (yaw, pitch, roll)
and how the eyes' and the mouth's opening follow the driver's (Pearson correlation), the measures
the toy report makes on its renders, here on real frames.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import FaceLandmarks, head_angles

RIGHT_EYE, LEFT_EYE = list(range(36, 42)), list(range(42, 48))


def eye_openness(points: np.ndarray) -> np.ndarray:
    """``[N]`` mean eye aspect ratio of both eyes (lid distance over eye width; about 0.3 open, 0 shut)."""
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = points[:, eye]
        lids = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        ratios.append(lids / (2 * np.maximum(np.linalg.norm(p[:, 0] - p[:, 3], axis=-1), 1e-6)))
    return np.mean(ratios, axis=0)


def mouth_openness(points: np.ndarray) -> np.ndarray:
    """``[N]`` inner-lip gap over inner mouth width (points 62-66 over 60-64)."""
    gap = np.linalg.norm(points[:, 62] - points[:, 66], axis=-1)
    return gap / np.maximum(np.linalg.norm(points[:, 60] - points[:, 64], axis=-1), 1e-6)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either series does not vary (nothing to follow)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def motion_metrics(generated: FaceLandmarks, driver: FaceLandmarks) -> dict[str, float]:
    """``pose_error`` (degrees, mean absolute yaw/pitch/roll difference), ``eyes_corr`` and ``mouth_corr``
    over the frames both have."""
    n = min(generated.frames, driver.frames)
    gen, drv = generated.points[:n], driver.points[:n]
    pose = np.abs(head_angles(generated)[:n] - head_angles(driver)[:n]).mean()
    return {"pose_error": float(pose), "eyes_corr": correlation(eye_openness(gen), eye_openness(drv)),
            "mouth_corr": correlation(mouth_openness(gen), mouth_openness(drv))}
