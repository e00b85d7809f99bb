"""DWPose with onnxruntime, on stand-in ONNX files with the real signatures and planted outputs.

The detector stand-in emits a fixed raw YOLOX head output holding known boxes; the pose stand-in
emits fixed SimCC vectors with known peaks. So the tests can say exactly which boxes and
keypoints must come out, in original-image pixels, through the letterbox and the crops.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto

from megactor_core import onnx_image_model
from megactor_core.landmarks.dwpose import DWPose, DWPoseError
from megactor_core.landmarks.dwpose_ops import (
    crop_matrix,
    detector_batch,
    from_crop,
    letterbox,
    nms,
    pose_batch,
    simcc_decode,
)
from tests.tiny_models import colour_sensitive_yolox, raw_yolox_output, stand_in_onnx

FRAME_H, FRAME_W = 360, 480
SCALE = 640 / 480  # the letterbox scale of a 360 x 480 frame into 640 x 640
# Planted detections in letterbox pixels: (centre x, centre y, width, height, objectness, class scores).
PERSON_A = (160.0, 200.0, 120.0, 240.0, 0.9, {0: 0.9})
PERSON_A_AGAIN = (170.0, 208.0, 120.0, 236.0, 0.8, {0: 0.75})  # a duplicate of A, weaker: NMS drops it
PERSON_B = (450.0, 240.0, 100.0, 200.0, 0.9, {0: 0.8})
UNSURE = (560.0, 100.0, 60.0, 80.0, 0.5, {0: 0.5})  # 0.25 <= 0.3: not a person
NOT_A_PERSON = (330.0, 500.0, 90.0, 90.0, 0.9, {0: 0.1, 5: 0.9})
# Planted keypoints in crop pixels (288 x 384 crop): keypoint -> (u, v, x peak, y peak).
PEAKS = {0: (144.0, 192.0, 0.9, 0.8), 30: (50.5, 300.0, 0.6, 0.95), 132: (287.5, 0.0, 0.5, 0.5)}


def _simcc(width: int = 288, height: int = 384, keypoints: int = 133) -> dict[str, np.ndarray]:
    simcc_x = np.zeros((1, keypoints, width * 2), np.float32)
    simcc_y = np.zeros((1, keypoints, height * 2), np.float32)
    for k, (u, v, px, py) in PEAKS.items():
        if k < keypoints:
            simcc_x[0, k, int(u * 2)], simcc_y[0, k, int(v * 2)] = px, py
    return {"simcc_x": simcc_x, "simcc_y": simcc_y}


def _detector(path: Path, batch: int | str = 1, input_type: int = TensorProto.FLOAT) -> Path:
    detections = [PERSON_A, PERSON_B, PERSON_A_AGAIN, UNSURE, NOT_A_PERSON]
    return stand_in_onnx(path, [batch, 3, 640, 640], {"output": raw_yolox_output(*detections)}, "images", input_type)


def _pose(path: Path, batch: int | str = "batch", input_type: int = TensorProto.FLOAT) -> Path:
    return stand_in_onnx(path, [batch, 3, 384, 288], _simcc(), input_type=input_type)


def _original_box(detection) -> np.ndarray:
    cx, cy, w, h = detection[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) / SCALE


def _expected_point(box: np.ndarray, u: float, v: float) -> tuple[float, float]:
    """mmpose's top-down mapping written out: crop (u, v) -> image pixels for a person ``box``."""
    w, h = (box[2] - box[0]) * 1.25, (box[3] - box[1]) * 1.25
    w, h = (w, w / 0.75) if w > h * 0.75 else (h * 0.75, h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return cx + (u - 144) * w / 288, cy + (v - 192) * h / 384


def _frames(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, FRAME_H, FRAME_W, 3), dtype=np.uint8)


@pytest.mark.parametrize("det_batch, pose_batch_dim", [(1, 1), (1, "batch"), ("N", "batch"), ("N", 1)])
def test_planted_people_and_keypoints_land_in_image_pixels(tmp_path, monkeypatch, det_batch, pose_batch_dim):
    monkeypatch.setattr(onnx_image_model, "MAX_BATCH", 2)  # dynamic models then run in chunks, as with long videos
    model = DWPose(_detector(tmp_path / "yolox_l.onnx", det_batch), _pose(tmp_path / "dw.onnx", pose_batch_dim))
    result = model(_frames(3))
    assert len(result) == 3
    for people in result:
        assert len(people) == 2  # the duplicate, the unsure box and the non-person are gone
        for person, planted in zip(people, [PERSON_A, PERSON_B], strict=True):  # best score first
            assert person.box.dtype == person.keypoints.dtype == person.scores.dtype == np.float32
            assert person.keypoints.shape == (133, 2) and person.scores.shape == (133,)
            np.testing.assert_allclose(person.box, _original_box(planted), atol=1e-3)
            for k, (u, v, px, py) in PEAKS.items():
                np.testing.assert_allclose(person.keypoints[k], _expected_point(person.box, u, v), atol=1e-3)
                assert person.scores[k] == pytest.approx(min(px, py))
            assert np.all(np.delete(person.scores, list(PEAKS)) == 0)


def test_single_image_float16_models_and_default_provider(tmp_path):
    model = DWPose(_detector(tmp_path / "det.onnx", input_type=TensorProto.FLOAT16),
                   _pose(tmp_path / "pose.onnx", input_type=TensorProto.FLOAT16))
    assert model.detector.session.get_providers() == ["CPUExecutionProvider"]
    (people,) = model(_frames(1)[0])
    np.testing.assert_allclose(people[0].box, _original_box(PERSON_A), atol=1e-3)


def test_no_person_gives_empty_lists(tmp_path):
    empty = stand_in_onnx(tmp_path / "det.onnx", [1, 3, 640, 640], {"output": raw_yolox_output()}, "images")
    model = DWPose(empty, _pose(tmp_path / "pose.onnx"))
    assert model(_frames(2)) == [[], []]
    assert model(_frames(0)) == []


def test_letterbox_round_trip():
    image = np.zeros((300, 500, 3), np.uint8)
    image[100:140, 200:260] = 255
    padded, scale = letterbox(image, (640, 640))
    assert scale == pytest.approx(1.28)
    assert np.all(padded[384:] == 114) and np.all(padded[:384] != 114)
    ys, xs = np.nonzero(padded[..., 0] > 127)
    np.testing.assert_allclose([xs.min() / scale, ys.min() / scale, (xs.max() + 1) / scale, (ys.max() + 1) / scale],
                               [200, 100, 260, 140], atol=1)


def test_detector_and_pose_model_get_rgb():
    red = np.zeros((2, 100, 100, 3), np.uint8)
    red[..., 0] = 255
    batch, scale = detector_batch(red, (64, 32))
    assert batch.shape == (2, 3, 64, 32) and batch.dtype == np.float32 and scale == 0.32
    # 0..255, RGB as comfyui_controlnet_aux feeds it: R is the first channel
    assert np.all(batch[:, 0, :32] == 255) and np.all(batch[:, 1:, :32] == 0)
    assert np.all(batch[:, :, 32:] == 114)
    crops, matrices = pose_batch(red, np.array([1]), np.array([[40.0, 40.0, 60.0, 60.0]]), (384, 288))
    assert crops.shape == (1, 3, 384, 288) and crops.dtype == np.float32 and matrices.shape == (1, 2, 3)
    expected = (np.array([255, 0, 0]) - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    np.testing.assert_allclose(crops[0].mean(axis=(1, 2)), expected, rtol=1e-5)


def test_the_detector_sees_the_frame_in_rgb(tmp_path):
    """Through onnxruntime: a detector whose box moves right with input channel 0 and left with
    channel 2 finds the person 128 px right in a red frame, 64 px left in a blue one."""
    detector = colour_sensitive_yolox(tmp_path / "yolox_l.onnx")
    pose = stand_in_onnx(tmp_path / "dw-ll_ucoco_384.onnx", [1, 3, 384, 288],
                         {"simcc_x": np.zeros((1, 133, 576)), "simcc_y": np.zeros((1, 133, 768))})
    model = DWPose(detector, pose)
    centres = {}
    for name, channel in (("red", 0), ("blue", 2)):
        frame = np.zeros((1, 640, 640, 3), np.uint8)
        frame[..., channel] = 255
        (person,) = model(frame)[0]
        centres[name] = (person.box[0] + person.box[2]) / 2
    assert centres["red"] == pytest.approx(200 + 128, abs=0.5)
    assert centres["blue"] == pytest.approx(200 - 64, abs=0.5)


def test_crop_round_trip():
    box = np.array([120.0, 50.0, 220.0, 110.0])  # wider than 3:4, so the crop grows in height
    m = crop_matrix(box, (384, 288))
    np.testing.assert_allclose(m @ [170, 80, 1], [144, 192])  # box centre -> crop centre
    assert m[0, 0] == pytest.approx(288 / 125) and m[1, 1] == m[0, 0]
    image = np.zeros((200, 300, 3), np.uint8)
    image[70:74, 150:154] = 255  # a marker around (152, 72)
    crop = cv2.warpAffine(image, m, (288, 384), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(crop[..., 0] > 127)
    centre = np.array([[[xs.mean(), ys.mean()]]])
    np.testing.assert_allclose(from_crop(centre, m[None]), [[[151.5, 71.5]]], atol=0.3)


def test_nms_removes_a_duplicate():
    boxes = np.array([[0, 0, 100, 200], [300, 0, 350, 80], [4, 2, 102, 198]], np.float32)
    assert nms(boxes, np.array([0.5, 0.7, 0.9]), 0.45).tolist() == [2, 1]
    assert nms(boxes[:0], np.zeros(0), 0.45).tolist() == []


def test_simcc_decode():
    simcc_x, simcc_y = np.zeros((1, 2, 10), np.float32), np.zeros((1, 2, 12), np.float32)
    simcc_x[0, 0, 3], simcc_y[0, 0, 7] = 0.9, 0.6
    simcc_y[0, 1, 5] = 0.4  # x has no peak: the score is 0, so no keypoint
    points, scores = simcc_decode(simcc_x, simcc_y, 2.0)
    np.testing.assert_allclose(points, [[[1.5, 3.5], [-0.5, -0.5]]])
    np.testing.assert_allclose(scores, [[0.6, 0.0]])


def test_missing_file_says_where_it_belongs(tmp_path):
    with pytest.raises(DWPoseError, match=r"detector model not found: .*nowhere\.onnx.*yolox_l\.onnx in "
                                          r"ComfyUI/models/dwpose/.*yzd-v/DWPose"):
        DWPose(tmp_path / "nowhere.onnx", _pose(tmp_path / "pose.onnx"))
    with pytest.raises(DWPoseError, match=r"pose model not found.*dw-ll_ucoco_384\.onnx"):
        DWPose(_detector(tmp_path / "det.onnx"), tmp_path / "nowhere.onnx")


def test_wrong_files_are_named(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(DWPoseError, match=r"notes\.onnx is not an ONNX model"):
        DWPose(text, _pose(tmp_path / "pose.onnx"))
    flat = stand_in_onnx(tmp_path / "flat.onnx", [1, 3, 640], {"output": raw_yolox_output()}, "images")
    with pytest.raises(DWPoseError, match=r"flat\.onnx takes input \[1, 3, 640\].*\[batch, 3, height, width\]"):
        DWPose(flat, _pose(tmp_path / "pose.onnx"))
    with pytest.raises(DWPoseError, match=r"pose\.onnx gives output .*raw YOLOX head output \[batch, 2268, "):
        DWPose(_pose(tmp_path / "pose.onnx"), _detector(tmp_path / "det.onnx"))  # the two files swapped
    body_only = stand_in_onnx(tmp_path / "body.onnx", [1, 3, 384, 288], _simcc(keypoints=17))
    with pytest.raises(DWPoseError, match=r"body\.onnx gives outputs .*simcc_x \[batch, 133, 576\]"):
        DWPose(_detector(tmp_path / "det.onnx"), body_only)


@pytest.mark.parametrize("frames", [np.zeros((2, 64, 64, 3), np.float32), np.zeros((64, 64, 4), np.uint8),
                                    np.zeros((64, 3), np.uint8), [[0, 0, 0]]])
def test_frames_of_the_wrong_kind_are_named(tmp_path, frames):
    model = DWPose(_detector(tmp_path / "det.onnx"), _pose(tmp_path / "pose.onnx"))
    with pytest.raises(ValueError, match=r"DWPose frames must be uint8 RGB \[N, H, W, 3\]"):
        model(frames)
