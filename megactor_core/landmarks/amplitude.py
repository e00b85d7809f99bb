"""Motion amplitude α (the paper's Eq.3): scale the head motion of a driving video.

Each frame's head motion is the similarity transform ``T_i`` (rotation, scale, translation) that
carries frame 1's stable landmarks onto frame ``i``'s. ``T'_i`` scales its rotation angle and
translation by α and its scale by ``s^α``; the frame is warped back by ``T_i⁻¹`` (keeping its
own appearance and expression) and forward by ``T'_i``. α=1 leaves frames unchanged, α=0 holds
the head still in frame 1's pose, α=2 doubles the motion.
"""

from __future__ import annotations

import cv2
import numpy as np

from .face import STABLE, FaceLandmarks
from .similarity import Similarity, fit_similarity


def head_motion(landmarks: FaceLandmarks, anchor: int = 0) -> list[Similarity]:
    """``T_i`` for every frame: the similarity from frame ``anchor``'s stable points to frame ``i``'s."""
    src = landmarks.points[anchor, STABLE].astype(np.float64)
    centre = src.mean(axis=0)
    return [fit_similarity(src, frame[STABLE].astype(np.float64), centre) for frame in landmarks.points]


def amplify_motion(frames: np.ndarray, landmarks: FaceLandmarks, alpha: float, *,
                   alpha_scale: float | None = None, alpha_translation: float | None = None,
                   anchor: int = 0) -> tuple[np.ndarray, FaceLandmarks]:
    """Frames ``[N, H, W, C]`` with their head motion scaled by α (rotation; scale and
    translation too unless given their own α). Returns the frames and their moved landmarks."""
    if frames.shape[0] != landmarks.frames or frames.shape[1:3] != (landmarks.height, landmarks.width):
        raise ValueError(f"frames are {frames.shape[:3]} (N, H, W) but the landmarks were found on "
                         f"{(landmarks.frames, landmarks.height, landmarks.width)}")
    scale_alpha = alpha if alpha_scale is None else alpha_scale
    shift_alpha = alpha if alpha_translation is None else alpha_translation
    out = np.empty_like(frames)
    points = np.empty_like(landmarks.points)
    height, width = frames.shape[1:3]
    for i, motion in enumerate(head_motion(landmarks, anchor)):
        back = cv2.invertAffineTransform(motion.matrix())
        forward = motion.scaled(alpha, scale_alpha, shift_alpha).matrix()
        warp = forward[:, :2] @ back[:, :2], forward[:, :2] @ back[:, 2] + forward[:, 2]
        matrix = np.concatenate([warp[0], warp[1][:, None]], axis=1)
        out[i] = cv2.warpAffine(frames[i], matrix, (width, height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE).reshape(frames.shape[1:])
        points[i] = landmarks.points[i] @ matrix[:, :2].T + matrix[:, 2]
    return out, landmarks.with_points(points)
