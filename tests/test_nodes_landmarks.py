"""The landmark nodes as ComfyUI runs them, on stand-in DWPose files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.comfy_stubs import ProgressBar, load_plugin, plugin_nodes
from tests.tiny_models import face_dwpose_files


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    face_dwpose_files(tmp_path / "models" / "dwpose")
    return load_plugin(monkeypatch, tmp_path / "models")


@pytest.fixture
def frames():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 256, 192, 3, generator=g)


def run(plugin, name, *args):
    node = plugin_nodes(plugin)[name]
    return node.execute(*args)


def test_landmarks_then_masks_face_drop_and_amplitude(plugin, frames):
    loader = plugin_nodes(plugin)["MegActorLoadDWPose"].INPUT_TYPES()["required"]
    assert loader["detector"][1]["default"] == "yolox_l.onnx"
    assert loader["pose_model"][1]["default"] == "dw-ll_ucoco_384.onnx"
    (dwpose,) = run(plugin, "MegActorLoadDWPose", "yolox_l.onnx", "dw-ll_ucoco_384.onnx")
    landmarks, poses, preview = run(plugin, "MegActorFaceLandmarks", frames, dwpose, 0, 0.3)
    assert landmarks.frames == 3 and landmarks.detected.all()
    assert (landmarks.width, landmarks.height) == (192, 256)
    assert len(poses) == 3 and len(poses[0]["people"]) == 1 and poses[0]["canvas_width"] == 192
    assert preview.shape == frames.shape and not torch.allclose(preview, frames, atol=1 / 255)
    assert ProgressBar.updates[-1] == (3, 3)

    (again,) = run(plugin, "MegActorLandmarksFromPoseKeypoint", poses, 0)
    np.testing.assert_allclose(again.points, landmarks.points, atol=1e-3)

    (mask,) = run(plugin, "MegActorFaceRegionMasks", landmarks, "mouth", 0.05, 0.0)
    assert mask.shape == (3, 256, 192) and mask.dtype == torch.float32 and 0 < mask.mean() < 0.2

    dropped, mouth = run(plugin, "MegActorFaceDrop", frames, landmarks, "eyes", 0.05, 0.0, False)
    assert dropped.shape == frames.shape
    assert mouth.keep == "eyes" and mouth.landmarks is landmarks  # the mouth is hidden: Eq.2 for the sampler
    assert run(plugin, "MegActorFaceDrop", frames, landmarks, "both", 0.05, 0.0, False)[1] is None
    (face,) = run(plugin, "MegActorFaceRegionMasks", landmarks, "face", 0.05, 0.0)
    (eyes,) = run(plugin, "MegActorFaceRegionMasks", landmarks, "eyes", 0.05, 0.0)
    blank = (face > 0) & (eyes == 0)
    assert torch.all(dropped[blank] == 0) and torch.equal(dropped[face == 0], frames[face == 0])

    same, moved = run(plugin, "MegActorMotionAmplitude", frames, landmarks, 1.0, -1.0, -1.0)
    assert same.shape == frames.shape and torch.allclose(same, frames, atol=1e-4)
    np.testing.assert_allclose(moved.points, landmarks.points, atol=1e-3)


def test_no_face_is_a_clear_error(plugin, frames):
    (dwpose,) = run(plugin, "MegActorLoadDWPose", "yolox_l.onnx", "dw-ll_ucoco_384.onnx")
    with pytest.raises(ValueError, match="no face found in any of the 3 frames"):
        run(plugin, "MegActorFaceLandmarks", frames, dwpose, 1, 0.3)  # there is no second face


def test_missing_dwpose_file_says_where(plugin):
    with pytest.raises(FileNotFoundError, match=r"'yolox_s.onnx' not found .*models/dwpose.*yzd-v/DWPose"):
        run(plugin, "MegActorLoadDWPose", "yolox_s.onnx", "dw-ll_ucoco_384.onnx")
