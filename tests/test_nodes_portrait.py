"""Crop Face, Paste Back and Resample Frames as ComfyUI calls them."""

from __future__ import annotations

import pytest
import torch

from tests.comfy_stubs import load_plugin, plugin_nodes
from tests.synthetic_faces import frontal_face, landmarks_of
from tests.tiny_models import tiny_model_folders


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    return load_plugin(monkeypatch, tiny_model_folders(tmp_path / "models"))


def run(plugin, name, *args, **kwargs):
    node = plugin_nodes(plugin)[name]
    return node.execute(*args, **kwargs)


def test_crop_then_paste_back_gives_the_photo_size(plugin):
    photo = torch.rand(1, 360, 640, 3)
    landmarks = landmarks_of(frontal_face((500.0, 120.0), 90.0)[None], width=640, height=360)
    crop_image, crop_landmarks, crop = run(plugin, "MegActorCropFace", photo, landmarks, 64, 2.0)
    assert crop_image.shape == (1, 64, 64, 3) and crop_landmarks.width == 64
    generated = torch.rand(5, 64, 64, 3)
    (video,) = run(plugin, "MegActorPasteBack", photo, generated, crop, crop_landmarks, 0.1)
    assert video.shape == (5, 360, 640, 3) and video.dtype == torch.float32
    assert torch.equal(video[:, :, :300], photo.expand(5, -1, -1, -1)[:, :, :300])  # far from the face: the photo
    with pytest.raises(ValueError, match="photo must be one image"):
        run(plugin, "MegActorPasteBack", photo.expand(2, -1, -1, -1), generated, crop, crop_landmarks, 0.1)


def test_resample_frames_to_the_model_rate(plugin):
    frames = torch.arange(90.0)[:, None, None, None].expand(90, 4, 4, 3)  # 3 s at 30 fps, frame k holds k
    images, fps = run(plugin, "MegActorResampleFrames", frames, 30.0, 25.0)
    assert fps == 25.0 and images.shape[0] == 75 and images[25, 0, 0, 0] == 30  # t = 1.0 s
    same, _ = run(plugin, "MegActorResampleFrames", frames, 25.0, 25.0)
    assert torch.equal(same, frames)
