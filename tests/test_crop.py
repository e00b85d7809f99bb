"""Face-centred crops of any photo, and pasting generated crops back (landmarks.crop)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from megactor_core.landmarks.crop import FaceCrop, crop_frames, face_box, paste_back, paste_mask
from tests.synthetic_faces import frontal_face, landmarks_of


def smooth_photo(width: int, height: int) -> np.ndarray:
    """A uint8 photo with gentle gradients (so resampling it changes it by well under a level)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    photo = np.stack([xs / width * 200 + 20, ys / height * 200 + 20, 120 + 60 * np.sin(xs / 97 + ys / 131)], -1)
    return photo.round().astype(np.uint8)


def test_off_centre_face_in_a_landscape_photo_is_cropped_around_the_face():
    face = frontal_face((980.0, 300.0), 160.0)  # right of centre in 1280 x 720
    landmarks = landmarks_of(face[None], width=1280, height=720)
    crop = face_box(landmarks, 2.0, 512)
    size = float(landmarks.face_size()[0])
    assert crop.side == round(2 * size) and crop.inside
    centre = (face.min(axis=0) + face.max(axis=0)) / 2
    np.testing.assert_allclose([crop.x + crop.side / 2, crop.y + crop.side / 2], centre, atol=1)
    frames, moved = crop_frames(smooth_photo(1280, 720)[None], landmarks, crop)
    assert frames.shape == (1, 512, 512, 3) and (moved.width, moved.height) == (512, 512)
    moved_centre = (moved.points[0].min(axis=0) + moved.points[0].max(axis=0)) / 2
    np.testing.assert_allclose(moved_centre, [255.5, 255.5], atol=2.5)  # the face in the middle of the crop


def test_face_near_the_border_is_padded_not_pushed_off_centre():
    face = frontal_face((40.0, 650.0), 120.0)  # bottom-left corner of 1280 x 720
    landmarks = landmarks_of(face[None], width=1280, height=720)
    crop = face_box(landmarks, 2.0, 256)
    assert not crop.inside and crop.x < 0 and crop.y + crop.side > 720
    photo = smooth_photo(1280, 720)
    frames, moved = crop_frames(photo[None], landmarks, crop)
    moved_centre = (moved.points[0].min(axis=0) + moved.points[0].max(axis=0)) / 2
    np.testing.assert_allclose(moved_centre, [127.5, 127.5], atol=1.5)
    # Past the photo's left edge the crop repeats the edge column; the kept part is the photo's.
    left = round(-crop.x * 256 / crop.side)
    column = cv2.resize(photo[max(crop.y, 0):, :1], (1, 256 - round((crop.y + crop.side - 720) * 256 / crop.side)),
                        interpolation=cv2.INTER_AREA)
    assert np.abs(frames[0, :column.shape[0], : left - 2].astype(int) - column.astype(int)).max() <= 2


def test_training_crops_stay_inside():
    face = frontal_face((40.0, 650.0), 120.0)
    crop = face_box(landmarks_of(face[None], width=1280, height=720), 2.0, 256, keep_inside=True)
    assert crop.inside


def test_pasting_an_unchanged_crop_gives_the_photo_back():
    photo = smooth_photo(1280, 720)
    landmarks = landmarks_of(frontal_face((900.0, 330.0), 128.0)[None], width=1280, height=720)
    for size in (256, 512):  # the crop's own side (no resampling) and an upscale
        crop = face_box(landmarks, 2.0, size)
        frames, moved = crop_frames(photo[None], landmarks, crop)
        mask = paste_mask(moved, feather=0.1)
        pasted = paste_back(photo, np.repeat(frames, 3, axis=0), crop, mask)
        assert pasted.shape == (3, 720, 1280, 3)
        difference = np.abs(pasted.astype(int) - photo[None].astype(int))
        assert difference.max() <= 1, size  # within 1/255 everywhere, inside the face and out


def test_paste_back_changes_only_the_masked_face():
    photo = smooth_photo(640, 480)
    landmarks = landmarks_of(frontal_face((120.0, 400.0), 100.0)[None], width=640, height=480)  # near a corner
    crop = face_box(landmarks, 2.0, 128)
    _, moved = crop_frames(photo[None], landmarks, crop)
    mask = paste_mask(moved, feather=0.08)
    assert mask.shape == (128, 128) and mask.max() == 1.0
    assert mask[0].max() == 0 and mask[:, -1].max() == 0  # nothing pasted at the crop's edges
    face_centre = np.round((moved.points[0].min(axis=0) + moved.points[0].max(axis=0)) / 2).astype(int)
    assert mask[face_centre[1], face_centre[0]] == 1.0
    white = np.full((2, 128, 128, 3), 255, np.uint8)
    pasted = paste_back(photo, white, crop, mask)
    changed = np.abs(pasted[0].astype(int) - photo.astype(int)).max(axis=-1) > 0
    ys, xs = np.nonzero(changed)
    assert xs.min() >= max(crop.x, 0) and xs.max() < crop.x + crop.side and ys.max() < 480
    assert changed.sum() < 0.9 * crop.side ** 2  # an ellipse, not the square
    assert pasted[0, round(face_centre[1] * crop.side / 128 + crop.y), round(face_centre[0] * crop.side / 128
                                                                              + crop.x)].min() == 255
    floats = paste_back(photo.astype(np.float32) / 255, white.astype(np.float32) / 255, crop, mask)
    np.testing.assert_allclose(floats * 255, pasted, atol=0.51)


def test_bad_inputs_are_named():
    landmarks = landmarks_of(frontal_face((100.0, 100.0), 50.0)[None], width=200, height=200)
    crop = face_box(landmarks, 2.0, 64)
    frames, moved = crop_frames(np.zeros((1, 200, 200, 3), np.uint8), landmarks, crop)
    mask = paste_mask(moved, 0.1)
    with pytest.raises(ValueError, match="the photo is 300x200 but the crop was made on a 200x200 image"):
        paste_back(np.zeros((200, 300, 3), np.uint8), frames, crop, mask)
    with pytest.raises(ValueError, match=r"frames must be \[N, 64, 64, 3\]"):
        paste_back(np.zeros((200, 200, 3), np.uint8), np.zeros((1, 32, 32, 3), np.uint8), crop, mask)
    with pytest.raises(ValueError, match="feather must be in"):
        paste_mask(moved, 0.0)
    with pytest.raises(ValueError, match="face scale must be positive"):
        face_box(landmarks, 0.0, 64)
    with pytest.raises(ValueError, match="landmarks/crop were found on"):
        crop_frames(np.zeros((1, 100, 200, 3), np.uint8), landmarks, crop)
    assert crop == FaceCrop(crop.x, crop.y, crop.side, 200, 200, 64)
