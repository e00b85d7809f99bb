"""Frames -> DWPose whole-body keypoints -> one tracked face (and POSE_KEYPOINT)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..progress import Progress
from .dwpose import DWPose
from .face import FACE_POINTS, FaceLandmarks, track_face
from .pose_keypoint import to_pose_keypoint


def detect_landmarks(dwpose: DWPose, frames: np.ndarray, *, face_index: int = 0, min_score: float = 0.3,
                     chunk: int = 8, progress: Progress | None = None) -> tuple[FaceLandmarks, list[dict[str, Any]]]:
    """uint8 frames ``[N, H, W, 3]`` -> the ``face_index``-th largest face per frame (gaps
    interpolated) and every person's keypoints as ``POSE_KEYPOINT`` dicts."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    n, height, width = frames.shape[:3]
    faces_per_frame, poses = [], []
    for start in range(0, n, chunk):
        for people in dwpose(frames[start:start + chunk]):
            faces_per_frame.append([(p.keypoints[FACE_POINTS], p.scores[FACE_POINTS]) for p in people])
            poses.append(to_pose_keypoint([p.keypoints for p in people], [p.scores for p in people], width, height))
        if progress is not None:
            progress(min(start + chunk, n), n)
    return track_face(faces_per_frame, width, height, face_index=face_index, min_score=min_score), poses
