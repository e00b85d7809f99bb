"""ComfyUI's ``POSE_KEYPOINT`` (the OpenPose JSON of comfyui_controlnet_aux) in and out.

One dict per frame: ``{"people": [{"pose_keypoints_2d", "face_keypoints_2d",
"hand_left_keypoints_2d", "hand_right_keypoints_2d"}], "canvas_width", "canvas_height"}``, each
keypoint list flat ``[x, y, c, ...]`` in pixels; controlnet_aux writes ``c = 1`` for a found point
and ``[0, 0, 0]`` for a missing one, and 70 face points (iBUG-68 plus the two pupils).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .face import FACE_POINTS, FaceLandmarks, track_face

# OpenPose-18 body order from COCO-17 (None = the neck, the mean of the shoulders).
_OPENPOSE_BODY = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
_LEFT_HAND, _RIGHT_HAND = slice(91, 112), slice(112, 133)


def _flat(points: np.ndarray, found: np.ndarray) -> list[float] | None:
    if not found.any():
        return None
    return [float(v) for p, ok in zip(points, found, strict=True) for v in ((p[0], p[1], 1.0) if ok else (0, 0, 0))]


def to_pose_keypoint(keypoints: Sequence[np.ndarray], scores: Sequence[np.ndarray], width: int, height: int,
                     threshold: float = 0.3) -> dict[str, Any]:
    """One frame's people (133 whole-body keypoints ``[133, 2]`` and scores ``[133]`` each) -> the dict."""
    people = []
    for kp, sc in zip(keypoints, scores, strict=True):
        shoulders_found = bool(sc[5] >= threshold and sc[6] >= threshold)
        body = np.array([kp[[5, 6]].mean(axis=0) if i is None else kp[i] for i in _OPENPOSE_BODY])
        body_found = np.array([shoulders_found if i is None else sc[i] >= threshold for i in _OPENPOSE_BODY])
        face_found = sc[FACE_POINTS] >= threshold
        face = _flat(np.concatenate([kp[FACE_POINTS], body[[14, 15]]]),
                     np.concatenate([face_found, body_found[[14, 15]]])) if face_found.any() else None
        people.append({
            "pose_keypoints_2d": _flat(body, body_found) or [0.0] * 54,
            "face_keypoints_2d": face,
            "hand_left_keypoints_2d": _flat(kp[_LEFT_HAND], sc[_LEFT_HAND] >= threshold),
            "hand_right_keypoints_2d": _flat(kp[_RIGHT_HAND], sc[_RIGHT_HAND] >= threshold),
        })
    return {"people": people, "canvas_width": int(width), "canvas_height": int(height)}


def landmarks_from_pose_keypoint(poses: Sequence[dict[str, Any]], *, face_index: int = 0,
                                 min_score: float = 0.3) -> FaceLandmarks:
    """``POSE_KEYPOINT`` frames -> one tracked face. Coordinates all within 0..1 are taken as
    normalised to the canvas (as some pose nodes write them)."""
    if isinstance(poses, dict):
        poses = [poses]
    if not poses:
        raise ValueError("POSE_KEYPOINT is empty: it holds no frames")
    sizes = set()
    faces_per_frame = []
    for i, frame in enumerate(poses):
        if not isinstance(frame, dict) or "canvas_width" not in frame or "canvas_height" not in frame:
            raise ValueError(f"POSE_KEYPOINT frame {i} is not an OpenPose dict with canvas_width/canvas_height")
        width, height = int(frame["canvas_width"]), int(frame["canvas_height"])
        sizes.add((width, height))
        faces = []
        for person in frame.get("people", []):
            flat = person.get("face_keypoints_2d")
            if not flat:
                continue
            values = np.asarray(flat, np.float32).reshape(-1, 3)
            if values.shape[0] < 68:
                raise ValueError(f"POSE_KEYPOINT frame {i} has a face of {values.shape[0]} points; expected 68 or 70")
            points, conf = values[:68, :2], values[:68, 2]
            if points.max() <= 1.0:
                points = points * [width, height]
            faces.append((points, conf))
        faces_per_frame.append(faces)
    if len(sizes) != 1:
        raise ValueError(f"POSE_KEYPOINT frames have different canvas sizes {sorted(sizes)}")
    width, height = sizes.pop()
    return track_face(faces_per_frame, width, height, face_index=face_index, min_score=min_score)
