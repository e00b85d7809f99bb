"""Face tracking, regions, face-drop, motion amplitude and head angle on synthetic landmarks."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from megactor_core.landmarks import MouthAttention
from megactor_core.landmarks.amplitude import amplify_motion, head_motion
from megactor_core.landmarks.face import MOUTH, RIGHT_EYE, track_face
from megactor_core.landmarks.face_drop import face_drop
from megactor_core.landmarks.head_pose import head_angles
from megactor_core.landmarks.pose_keypoint import landmarks_from_pose_keypoint, to_pose_keypoint
from megactor_core.landmarks.regions import mouth_attention_mask, region_masks, token_masks
from megactor_core.landmarks.similarity import fit_similarity
from megactor_core.training.masks import MOUTH as MOUTH_REGION
from megactor_core.training.masks import latent_regions, patch_tokens
from tests.synthetic_faces import frontal_face, landmarks_of, posed_face


def face(scale=1.0, centre=(128.0, 128.0)):
    return frontal_face(centre, 100.0 * scale), np.full(68, 0.9, np.float32)


def test_track_picks_the_largest_face_and_interpolates_gaps(caplog):
    small, big = face(0.5, (60.0, 60.0)), face(1.0)
    moved = (big[0] + [10.0, 0.0], big[1])
    frames = [[small, big], [small], [], [small, moved]]
    with caplog.at_level(logging.WARNING):
        track = track_face(frames, 256, 256, min_score=0.3)
    assert track.detected.tolist() == [True, True, False, True]
    np.testing.assert_allclose(track.points[0], big[0])
    np.testing.assert_allclose(track.points[1], small[0])  # the only face there
    np.testing.assert_allclose(track.points[2], (small[0] + moved[0]) / 2, atol=1e-4)
    assert "no face found in 1 of 4 frames (2)" in caplog.text
    second = track_face(frames, 256, 256, face_index=1)
    np.testing.assert_allclose(second.points[0], small[0])


def test_no_face_anywhere_is_an_error():
    weak = (frontal_face(), np.full(68, 0.1, np.float32))
    with pytest.raises(ValueError, match="no face found in any of the 3 frames"):
        track_face([[weak], [], []], 256, 256)


def test_region_masks_cover_their_landmarks():
    lm = landmarks_of(frontal_face()[None])
    eyes, mouth, face_mask = (region_masks(lm, r, dilate=0.0) for r in ("eyes", "mouth", "face"))
    for idx, mask in ((RIGHT_EYE, eyes), (MOUTH, mouth)):
        x, y = lm.points[0, idx].mean(axis=0).round().astype(int)
        assert mask[0, y, x] == 1.0
    assert (eyes * mouth).sum() == 0
    assert face_mask.sum() > 4 * (eyes.sum() + mouth.sum())
    assert ((eyes <= face_mask) & (mouth <= face_mask)).all()
    grown = region_masks(lm, "mouth", dilate=0.1)
    assert grown.sum() > mouth.sum() and (grown >= mouth).all()
    soft = region_masks(lm, "mouth", dilate=0.0, feather=0.05)
    assert 0 < soft[(soft > 0) & (soft < 1)].size and soft.max() <= 1.0
    with pytest.raises(ValueError, match="unknown face region"):
        region_masks(lm, "nose")


def test_token_masks_and_eq2_mask():
    lm = landmarks_of(frontal_face((128.0, 128.0))[None])
    mouth = token_masks(region_masks(lm, "mouth")) > 0
    eyes = token_masks(region_masks(lm, "eyes")) > 0
    assert mouth.shape == (1, 16, 16)
    rows = mouth[0].any(dim=1).nonzero().flatten()
    assert rows.min() * 16 <= lm.points[0, MOUTH, 1].min() and (rows.max() + 1) * 16 >= lm.points[0, MOUTH, 1].max()
    m, e = mouth.flatten(1), eyes.flatten(1)
    mask = mouth_attention_mask(m, e)
    q, k = m[0].nonzero().flatten(), e[0].nonzero().flatten()
    assert not mask[0][q][:, k].any()  # mouth queries never see the eyes
    assert mask[0][~m[0]].all()  # every other query sees everything
    assert mask[0].any(-1).all()
    with pytest.raises(ValueError, match="multiples of the token cell 16"):
        token_masks(np.zeros((1, 30, 32)))


def test_face_drop_keeps_only_the_chosen_region():
    lm = landmarks_of(frontal_face()[None])
    frames = np.full((1, 256, 256, 3), 0.8, np.float32)
    for keep in ("eyes", "mouth", "both"):
        out = face_drop(frames, lm, keep, feather=0.0)
        kept = region_masks(lm, keep)[0] > 0
        face_mask = region_masks(lm, "face")[0] > 0
        assert np.all(out[0][kept] == 0.8)
        assert np.all(out[0][face_mask & ~kept] == 0.0)
        assert np.all(out[0][~face_mask] == 0.8)  # hair and background keep the head pose
    only = face_drop(frames, lm, "mouth", feather=0.0, drop_background=True)
    assert np.all(only[0][region_masks(lm, "mouth")[0] == 0] == 0.0)
    with pytest.raises(ValueError, match="keep must be one of"):
        face_drop(frames, lm, "nose")
    with pytest.raises(ValueError, match="landmarks were found on"):
        face_drop(frames[:, :128], lm, "eyes")


def rotate_points(points, degrees, centre, scale=1.0, shift=(0.0, 0.0)):
    m = cv2.getRotationMatrix2D(tuple(map(float, centre)), degrees, scale)
    return points @ m[:, :2].T + m[:, 2] + shift


def video_with_head_motion():
    """A textured frame whose head rotates 0, 10, 20 degrees about the face centre and shifts."""
    base = frontal_face()
    centre = base.mean(axis=0)
    g = np.random.default_rng(0)
    texture = cv2.GaussianBlur(g.random((256, 256, 3)).astype(np.float32), (0, 0), 3)
    points, frames = [], []
    for deg, shift in ((0, (0, 0)), (10, (4, -2)), (20, (8, -4))):
        m = cv2.getRotationMatrix2D(tuple(map(float, centre)), deg, 1.0)
        m[:, 2] += shift
        frames.append(cv2.warpAffine(texture, m, (256, 256), borderMode=cv2.BORDER_REFLECT))
        points.append(base @ m[:, :2].T + m[:, 2])
    return np.stack(frames), landmarks_of(np.stack(points))


def test_fit_similarity_recovers_a_known_transform():
    src = frontal_face().astype(np.float64)
    centre = src.mean(axis=0)
    dst = rotate_points(src, 15.0, centre, 1.2, (5.0, -3.0))
    t = fit_similarity(src, dst, centre)
    # cv2 angles are counter-clockwise on screen (y down), i.e. -15 degrees in x-right/y-down maths.
    assert t.angle == pytest.approx(np.radians(-15.0)) and t.scale == pytest.approx(1.2)
    np.testing.assert_allclose(t.shift, [5.0, -3.0], atol=1e-9)
    np.testing.assert_allclose(src @ t.matrix()[:, :2].T + t.matrix()[:, 2], dst, atol=1e-9)
    # About any other centre the fitted transform is the same map.
    for other in (np.zeros(2), np.array([400.0, -50.0])):
        np.testing.assert_allclose(fit_similarity(src, dst, other).apply(src), dst, atol=1e-9)


def test_alpha_one_changes_nothing():
    frames, lm = video_with_head_motion()
    out, moved = amplify_motion(frames, lm, 1.0)
    np.testing.assert_allclose(moved.points, lm.points, atol=1e-3)
    assert np.abs(out - frames).max() < 1e-3


def test_alpha_zero_holds_frame_one_pose():
    frames, lm = video_with_head_motion()
    out, moved = amplify_motion(frames, lm, 0.0)
    for i in range(3):
        np.testing.assert_allclose(moved.points[i], lm.points[0], atol=1e-3)
    inner = (slice(None), slice(64, 192), slice(64, 192))
    held = np.abs(out[inner][2] - frames[inner][0]).mean()
    moving = np.abs(frames[inner][2] - frames[inner][0]).mean()
    assert held < 0.1 * moving, (held, moving)


def test_alpha_two_doubles_rotation_and_separate_alphas():
    frames, lm = video_with_head_motion()
    _, moved = amplify_motion(frames, lm, 2.0)
    angles = [np.degrees(m.angle) for m in head_motion(moved)]
    np.testing.assert_allclose(angles, [0.0, -20.0, -40.0], atol=1e-3)
    _, still = amplify_motion(frames, lm, 1.0, alpha_translation=0.0)
    motion = head_motion(still)
    np.testing.assert_allclose([np.degrees(m.angle) for m in motion], [0.0, -10.0, -20.0], atol=1e-3)
    np.testing.assert_allclose(motion[2].shift, [0.0, 0.0], atol=1e-3)


@pytest.mark.parametrize("angles", [(0, 0, 0), (20, 0, 0), (-30, 10, 0), (10, -15, 20), (0, 0, -25)])
def test_head_angles_of_a_posed_head(angles):
    lm = landmarks_of(posed_face(*angles)[None], 512, 512)
    np.testing.assert_allclose(head_angles(lm)[0], angles, atol=2.0)


def wholebody(face_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """133 whole-body keypoints with the given face, a plausible body and all scores 0.9."""
    kp = np.zeros((133, 2), np.float32)
    kp[:17] = np.linspace([100, 50], [160, 250], 17)
    kp[23:91] = face_points
    kp[91:133] = np.linspace([20, 200], [240, 220], 42)
    return kp, np.full(133, 0.9, np.float32)


def test_pose_keypoint_round_trip():
    big, small = frontal_face((128.0, 128.0), 100.0), frontal_face((40.0, 40.0), 30.0)
    people = [wholebody(big), wholebody(small)]
    people[1][1][23:91] = 0.1  # the small face is not confident enough
    frame = to_pose_keypoint([p[0] for p in people], [p[1] for p in people], 256, 256)
    json.dumps(frame)  # plain JSON, as ComfyUI passes POSE_KEYPOINT around
    assert len(frame["people"][0]["face_keypoints_2d"]) == 70 * 3
    assert len(frame["people"][0]["pose_keypoints_2d"]) == 18 * 3
    assert frame["people"][1]["face_keypoints_2d"] is None
    neck = frame["people"][0]["pose_keypoints_2d"][3:6]
    np.testing.assert_allclose(neck[:2], people[0][0][[5, 6]].mean(axis=0))
    lm = landmarks_from_pose_keypoint([frame, frame])
    assert (lm.width, lm.height, lm.frames) == (256, 256, 2)
    np.testing.assert_allclose(lm.points[0], big, atol=1e-4)


def test_pose_keypoint_normalised_coordinates_and_errors():
    points = frontal_face((128.0, 64.0), 60.0)
    flat = np.concatenate([points / [256, 128], np.ones((68, 1))], axis=1).flatten().tolist()
    frame = {"people": [{"face_keypoints_2d": flat}], "canvas_width": 256, "canvas_height": 128}
    np.testing.assert_allclose(landmarks_from_pose_keypoint([frame]).points[0], points, atol=1e-3)
    with pytest.raises(ValueError, match="holds no frames"):
        landmarks_from_pose_keypoint([])
    with pytest.raises(ValueError, match="frame 0 is not an OpenPose dict"):
        landmarks_from_pose_keypoint([{"people": []}])
    with pytest.raises(ValueError, match="different canvas sizes"):
        landmarks_from_pose_keypoint([frame, {**frame, "canvas_width": 512}])
    with pytest.raises(ValueError, match="no face found in any of the 1 frames"):
        landmarks_from_pose_keypoint([{"people": [], "canvas_width": 8, "canvas_height": 8}])


def test_mouth_attention_tokens_are_the_ones_training_masks():
    """Eq.2 at inference blocks the very tokens a training sample with these landmarks blocks, for
    videos longer than one rasterised chunk too."""
    wobble = np.sin(np.arange(70))[:, None, None] * [6.0, 3.0]
    lm = landmarks_of(frontal_face((128.0, 140.0), 120.0)[None] + wobble)
    assert MouthAttention.for_face_drop(lm, "both") is None and MouthAttention.for_face_drop(lm, "mouth") is None
    with pytest.raises(ValueError, match="keep must be one of"):
        MouthAttention.for_face_drop(lm, "nose")
    mouth, kept = MouthAttention.for_face_drop(lm, "eyes").tokens(16, 16)
    assert mouth.shape == kept.shape == (70, 256) and mouth.dtype == torch.bool
    trained_mouth = patch_tokens(torch.from_numpy(latent_regions(lm)[:, MOUTH_REGION]).float(), 2) > 0
    trained_kept = token_masks(region_masks(lm, "eyes"), 16).flatten(1) > 0
    assert torch.equal(mouth, trained_mouth) and torch.equal(kept, trained_kept)
    assert not torch.equal(mouth[0], mouth[1])  # each frame its own place
