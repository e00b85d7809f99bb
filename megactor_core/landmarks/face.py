"""One face's 68 landmarks per frame, picked from whole-body detections."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .similarity import fit_similarity

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


# A face counts as found only with at least this many of its 68 points found (score >= min_score);
# fewer, and the frame is treated as one without the face.
MIN_FOUND_POINTS = 34


def mean_face() -> np.ndarray:
    """``[68, 2]`` a frontal iBUG-68 face one unit wide, centred on the origin (y down): where the
    points of a face sit relative to each other, to place points that were never found."""
    r = 0.5
    pts = np.zeros((68, 2))
    t = np.linspace(math.pi, 0, 17)  # jaw: a U from ear to ear, chin at the bottom
    pts[0:17] = np.stack([r * np.cos(t), -0.1 * r + r * np.sin(t)], 1)
    pts[17:22] = np.stack([np.linspace(-0.75 * r, -0.15 * r, 5), np.full(5, -0.45 * r)], 1)
    pts[22:27] = np.stack([np.linspace(0.15 * r, 0.75 * r, 5), np.full(5, -0.45 * r)], 1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.3 * r, 0.15 * r, 4)], 1)
    pts[31:36] = np.stack([np.linspace(-0.2 * r, 0.2 * r, 5), np.full(5, 0.25 * r)], 1)
    for start, ex in ((36, -0.4 * r), (42, 0.4 * r)):
        a = np.linspace(0, 2 * math.pi, 7)[:-1]
        pts[start:start + 6] = np.stack([ex - 0.18 * r * np.cos(a), -0.25 * r - 0.07 * r * np.sin(a)], 1)
    a = np.linspace(0, 2 * math.pi, 13)[:-1]
    pts[48:60] = np.stack([-0.35 * r * np.cos(a), 0.55 * r - 0.12 * r * np.sin(a)], 1)
    a = np.linspace(0, 2 * math.pi, 9)[:-1]
    pts[60:68] = np.stack([-0.25 * r * np.cos(a), 0.55 * r - 0.05 * r * np.sin(a)], 1)
    return pts


def pick_face(faces: Sequence[tuple[np.ndarray, np.ndarray]], face_index: int,
              min_score: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``face_index``-th largest of one frame's faces ``(points [68, 2], scores [68])`` that
    has at least :data:`MIN_FOUND_POINTS` points scored ``min_score`` or more, its size measured on
    those points; None if there is no such face. The same decision whether the scores are
    DWPose's or POSE_KEYPOINT's (1 for a found point, 0 for a missing one)."""
    usable = [(p, s) for p, s in faces if int((s >= min_score).sum()) >= MIN_FOUND_POINTS]
    usable.sort(key=lambda f: -_box_area(f[0][f[1] >= min_score]))
    return usable[face_index] if face_index < len(usable) else None


def _box_area(points: np.ndarray) -> float:
    return float(np.prod(points.max(axis=0) - points.min(axis=0)))


def fill_missing_points(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``[N, 68, 2]`` points of frames that have the face, with ``found`` ``[N, 68]``: each missing
    point is the same point of the nearest frame that found it, carried by the similarity between
    the two frames' common found points (so it moves with the head); a point no frame found
    comes from :func:`mean_face` fitted to the frame's found points."""
    points = points.astype(np.float64)
    template = mean_face()
    filled = points.copy()
    for i in np.flatnonzero(~found.all(axis=1)):
        moves = {}  # source frame (-1: the mean face) -> its similarity onto frame i, fitted once
        for j in np.flatnonzero(~found[i]):
            sources = np.flatnonzero(found[:, j])
            k = int(sources[np.argmin(np.abs(sources - i))]) if sources.size else -1
            if k not in moves:
                source, common = (template, found[i]) if k < 0 else (points[k], found[i] & found[k])
                moves[k] = fit_similarity(source[common], points[i, common], np.zeros(2))
            filled[i, j] = moves[k].apply(template[j] if k < 0 else points[k, j])
    return filled.astype(np.float32)


def track_face(faces_per_frame: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], width: int, height: int,
               *, face_index: int = 0, min_score: float = 0.3) -> FaceLandmarks:
    """One face through a video. Its points scored under ``min_score`` (POSE_KEYPOINT's ``[0, 0,
    0]``) are missing and filled by :func:`fill_missing_points` (their scores become 0); frames
    where the face is missing, or has fewer than :data:`MIN_FOUND_POINTS` points, are
    interpolated from the nearest frames that have it (and logged); a video with no face at all
    is an error."""
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
        raise ValueError(f"no face found in any of the {n} frames: DWPose found {which} with at least "
                         f"{MIN_FOUND_POINTS} of its 68 points in none of them (point threshold {min_score})")
    found = scores >= min_score
    if not found[detected].all():
        log.info("%d face points scored under %g in %d frames: filled from neighbouring frames and the face's "
                 "other points", int((~found[detected]).sum()), min_score, int((~found[detected].all(axis=1)).sum()))
        points[detected] = fill_missing_points(points[detected], found[detected])
        scores[~found] = 0.0
    missing = np.flatnonzero(~detected)
    if missing.size:
        log.warning("no face found in %d of %d frames (%s%s); interpolated from neighbouring frames",
                    missing.size, n, ", ".join(str(i) for i in missing[:10]), "..." if missing.size > 10 else "")
        present = np.flatnonzero(detected)
        flat = points.reshape(n, -1)
        for j in range(flat.shape[1]):
            flat[missing, j] = np.interp(missing, present, flat[present, j])
    return FaceLandmarks(points, scores, detected, width, height)
