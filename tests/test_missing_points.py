"""Face points that were not found (POSE_KEYPOINT's [0, 0, 0], DWPose scores under 0.3) are filled,
never read as pixel (0, 0); faces with too few points count as missing; both landmark paths agree."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from megactor_core.landmarks import DWPose, detect_landmarks, landmarks_from_pose_keypoint
from megactor_core.landmarks.face import JAW, MIN_FOUND_POINTS, MOUTH, fill_missing_points, mean_face
from megactor_core.landmarks.regions import region_masks
from megactor_core.landmarks.similarity import Similarity
from tests.tiny_models import face_dwpose_files

WIDTH, HEIGHT = 640, 480


def moving_face(frames: int) -> np.ndarray:
    """[frames, 68, 2] a 120 px face turning, growing and moving across the frame."""
    return np.stack([Similarity(0.02 * i, 1 + 0.01 * i, np.array([4.0 * i, -2.0 * i]), np.zeros(2))
                     .apply(mean_face() * 120) + [300, 240] for i in range(frames)]).astype(np.float32)


def pose_keypoint(points: np.ndarray, missing: dict[int, list[int]]) -> list[dict]:
    """controlnet_aux's POSE_KEYPOINT of these faces, with the points ``missing[frame]`` as [0, 0, 0]."""
    frames = []
    for i, face in enumerate(points):
        flat = []
        for j, (x, y) in enumerate(face):
            flat += [0.0, 0.0, 0.0] if j in missing.get(i, []) else [float(x), float(y), 1.0]
        flat += [0.0, 0.0, 0.0] * 2  # the two pupils
        frames.append({"people": [{"pose_keypoints_2d": [0.0] * 54, "face_keypoints_2d": flat}],
                       "canvas_width": WIDTH, "canvas_height": HEIGHT})
    return frames


def test_one_missing_mouth_point_is_not_at_the_origin():
    truth = moving_face(5)
    landmarks = landmarks_from_pose_keypoint(pose_keypoint(truth, {2: [55]}))
    assert np.abs(landmarks.points - truth).max() < 0.01  # moved with the head from frames 1 and 3
    assert landmarks.scores[2, 55] == 0 and landmarks.detected.all()
    np.testing.assert_allclose(landmarks.face_size(), [np.ptp(f, axis=0).max() for f in truth], rtol=1e-4)
    exact = landmarks_from_pose_keypoint(pose_keypoint(truth, {}))
    mouth, mouth_exact = region_masks(landmarks, "mouth"), region_masks(exact, "mouth")
    assert abs(mouth[2].sum() - mouth_exact[2].sum()) < 0.01 * mouth_exact[2].sum()


def test_points_no_frame_found_come_from_the_mean_face():
    truth = moving_face(4)
    never = JAW[:6]  # a run of jaw points hidden in every frame (e.g. behind a hand)
    landmarks = landmarks_from_pose_keypoint(pose_keypoint(truth, {i: never for i in range(4)}))
    assert np.abs(landmarks.points - truth).max() < 0.01  # the faces are similarities of the mean face
    assert (landmarks.scores[:, never] == 0).all()


def test_a_frame_with_too_few_points_is_a_frame_without_the_face(caplog):
    truth = moving_face(5)
    everything, most = list(range(68)), list(range(68 - MIN_FOUND_POINTS + 1))
    with caplog.at_level(logging.WARNING):
        landmarks = landmarks_from_pose_keypoint(pose_keypoint(truth, {1: everything, 3: most}))
    assert list(landmarks.detected) == [True, False, True, False, True]
    assert "no face found in 2 of 5 frames (1, 3)" in caplog.text
    np.testing.assert_allclose(landmarks.points[1], (truth[0] + truth[2]) / 2, atol=1e-3)
    with pytest.raises(ValueError, match="with at least 34 of its 68 points in none of them"):
        landmarks_from_pose_keypoint(pose_keypoint(truth[:1], {0: most}))


def test_fill_keeps_found_points():
    truth = moving_face(3)
    found = np.ones((3, 68), bool)
    found[1, MOUTH] = False
    filled = fill_missing_points(truth, found)
    assert np.array_equal(filled[found], truth[found])
    assert np.abs(filled - truth).max() < 0.01


def test_both_landmark_nodes_give_the_same_face(tmp_path):
    """DWPose's own scores (some face points at 0.1) and its POSE_KEYPOINT (those points as [0, 0, 0])
    give the same landmarks."""
    detector, pose = face_dwpose_files(tmp_path, weak_face_points=[50, 51, 52, 8])
    frames = np.random.default_rng(0).integers(0, 256, (3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    direct, poses = detect_landmarks(DWPose(detector, pose), frames)
    assert all(p["people"][0]["face_keypoints_2d"][3 * 51:3 * 51 + 3] == [0, 0, 0] for p in poses)
    via_pose_keypoint = landmarks_from_pose_keypoint(poses)
    np.testing.assert_allclose(via_pose_keypoint.points, direct.points, atol=1e-4)
    assert np.array_equal(via_pose_keypoint.scores == 0, direct.scores == 0)
    assert direct.points[:, 51].min() > 10  # filled, not at the origin
