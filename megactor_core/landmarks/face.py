"""One face's 68 landmarks per frame, picked from whole-body detections."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# The 68 face points (iBUG-68 order) inside the 133 COCO-WholeBody keypoints.
FACE_POINTS = slice(23, 91)
JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE = list(range(27, 36))
RIGHT_EYE = list(range(36, 42))
LEFT_EYE = list(range(42, 48))
MOUTH = list(range(48, 68))
# Points that move with the head, not with expression: nose, eye corners, upper jaw line.
STABLE = NOSE + [36, 39, 42, 45] + [0, 1, 2, 14, 15, 16]


@dataclass
class FaceLandmarks:
    """68 face points per frame of one video, in pixels of frames ``width`` x ``height``."""

    points: np.ndarray  # [N, 68, 2] float32 x, y
    scores: np.ndarray  # [N, 68] float32 confidences (0 where interpolated)
    detected: np.ndarray  # [N] bool; False where interpolated from neighbouring frames
    width: int
    height: int

    def __post_init__(self) -> None:
        n = self.points.shape[0]
        if self.points.shape != (n, 68, 2) or self.scores.shape != (n, 68) or self.detected.shape != (n,):
            raise ValueError(f"face landmarks need points [N, 68, 2], scores [N, 68], detected [N]; got "
                             f"{self.points.shape}, {self.scores.shape}, {self.detected.shape}")

    @property
    def frames(self) -> int:
        return self.points.shape[0]

    def face_size(self) -> np.ndarray:
        """``[N]`` a face scale in pixels: the larger side of the landmarks' box."""
        extent = self.points.max(axis=1) - self.points.min(axis=1)
        return extent.max(axis=1)

    def with_points(self, points: np.ndarray) -> FaceLandmarks:
        return FaceLandmarks(points.astype(np.float32), self.scores, self.detected, self.width, self.height)


def pick_face(faces: Sequence[tuple[np.ndarray, np.ndarray]], face_index: int,
              min_score: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``face_index``-th largest of one frame's faces ``(points [68, 2], scores [68])``
    whose mean confidence reaches ``min_score``; None if there is no such face."""
    usable = [(p, s) for p, s in faces if float(np.mean(s)) >= min_score]
    usable.sort(key=lambda f: -float(np.prod(f[0].max(axis=0) - f[0].min(axis=0))))
    return usable[face_index] if face_index < len(usable) else None


def track_face(faces_per_frame: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], width: int, height: int,
               *, face_index: int = 0, min_score: float = 0.3) -> FaceLandmarks:
    """One face through a video: frames where it is missing are interpolated from the nearest
    frames that have it (and logged); a video with no face at all is an error."""
    n = len(faces_per_frame)
    points = np.zeros((n, 68, 2), np.float32)
    scores = np.zeros((n, 68), np.float32)
    detected = np.zeros(n, bool)
    for i, faces in enumerate(faces_per_frame):
        face = pick_face(faces, face_index, min_score)
        if face is not None:
            points[i], scores[i], detected[i] = face[0], face[1], True
    if not detected.any():
        which = "a face" if face_index == 0 else f"face number {face_index + 1} (by size)"
        raise ValueError(f"no face found in any of the {n} frames: DWPose found {which} in none of them "
                         f"(confidence threshold {min_score})")
    missing = np.flatnonzero(~detected)
    if missing.size:
        log.warning("no face found in %d of %d frames (%s%s); interpolated from neighbouring frames",
                    missing.size, n, ", ".join(str(i) for i in missing[:10]), "..." if missing.size > 10 else "")
        found = np.flatnonzero(detected)
        flat = points.reshape(n, -1)
        for j in range(flat.shape[1]):
            flat[missing, j] = np.interp(missing, found, flat[found, j])
    return FaceLandmarks(points, scores, detected, width, height)
