"""DWPose whole-body keypoints with onnxruntime, from the two ONNX files of comfyui_controlnet_aux.

``yolox_l.onnx`` finds people (YOLOX, raw head output), ``dw-ll_ucoco_384.onnx`` gives 133
COCO-WholeBody keypoints per person (RTMPose / SimCC). Both come from Hugging Face yzd-v/DWPose.
Sizes, batch and input precision are read from the files, not assumed: a model with a dynamic
batch dimension gets many frames (or people) per run, one fixed at 1 gets one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..onnx_image_model import OnnxImageModel
from .dwpose_ops import detector_batch, from_crop, nms, pose_batch, simcc_decode, yolox_decode, yolox_grid

KEYPOINTS = 133
SIMCC_SPLIT_RATIO = 2.0
PERSON_SCORE = 0.3  # objectness x person class, as comfyui_controlnet_aux
NMS_IOU = 0.45
_FILES = {"detector": "yolox_l.onnx", "pose": "dw-ll_ucoco_384.onnx"}


class DWPoseError(ValueError):
    """A DWPose ONNX file that is missing or does not have the inputs and outputs DWPose needs."""


@dataclass
class Person:
    """One detected person."""

    box: np.ndarray  # [4] float32 x0, y0, x1, y1 in input-image pixels (detector box)
    keypoints: np.ndarray  # [133, 2] float32 x, y in input-image pixels
    scores: np.ndarray  # [133] float32 keypoint confidences


class DWPose:
    """Both ONNX sessions; call it on frames."""

    def __init__(self, detector: str | Path, pose: str | Path, providers: Sequence[str] | None = None) -> None:
        providers = list(providers or ["CPUExecutionProvider"])
        self.detector = _open(detector, "detector", providers)
        self.pose = _open(pose, "pose", providers)
        self._anchors = len(yolox_grid(self.detector.size)[0])
        self._check_detector_output()
        self._check_pose_outputs()

    def __call__(self, frames: np.ndarray) -> list[list[Person]]:
        """frames: [N, H, W, 3] uint8 RGB (or a single [H, W, 3] image -> a list of one) -> persons per frame"""
        frames = _check_frames(frames)
        return self.estimate(frames, self.detect(frames)) if len(frames) else []

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """uint8 RGB ``[N, H, W, 3]`` -> person boxes ``[M, 4]`` per frame, best first, in frame pixels."""
        size = self.detector.size
        batch, scale = detector_batch(frames, size)
        raw = self.detector.run(batch, 1)[0]
        if raw.shape[1] != self._anchors or raw.shape[2] < 6:
            raise DWPoseError(f"{self.detector.path} gave output {raw.shape}; {self._detector_expects()}")
        boxes, scores = yolox_decode(raw, size)
        found = []
        for frame_boxes, frame_scores in zip(boxes, scores, strict=True):
            person = frame_scores > PERSON_SCORE
            frame_boxes, frame_scores = frame_boxes[person], frame_scores[person]
            found.append((frame_boxes[nms(frame_boxes, frame_scores, NMS_IOU)] / scale).astype(np.float32))
        return found

    def estimate(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[list[Person]]:
        """Keypoints of the people in ``boxes`` (one ``[M, 4]`` array per frame), all crops batched."""
        frame_index = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes)]).astype(np.int64)
        people: list[list[Person]] = [[] for _ in boxes]
        if frame_index.size == 0:
            return people
        all_boxes = np.concatenate(boxes)
        crops, matrices = pose_batch(frames, frame_index, all_boxes, self.pose.size)
        simcc_x, simcc_y = self.pose.run(crops, 2)
        if simcc_x.shape[1] != KEYPOINTS:
            raise DWPoseError(f"{self.pose.path} gave {simcc_x.shape[1]} keypoints; {self._pose_expects()}")
        points, scores = simcc_decode(simcc_x, simcc_y, SIMCC_SPLIT_RATIO)
        points = from_crop(points, matrices).astype(np.float32)
        for i, box, pts, sc in zip(frame_index, all_boxes, points, scores, strict=True):
            people[i].append(Person(box=box, keypoints=pts, scores=sc))
        return people

    def _detector_expects(self) -> str:
        return (f"the DWPose detector must give the raw YOLOX head output [batch, {self._anchors}, 5 + classes] "
                f"(e.g. [1, {self._anchors}, 85]; {_FILES['detector']}, exported without NMS)")

    def _pose_expects(self) -> str:
        height, width = self.pose.size
        return (f"the DWPose pose model must give simcc_x [batch, {KEYPOINTS}, {int(width * SIMCC_SPLIT_RATIO)}] "
                f"and simcc_y [batch, {KEYPOINTS}, {int(height * SIMCC_SPLIT_RATIO)}] "
                f"(whole-body SimCC, e.g. {_FILES['pose']})")

    def _check_detector_output(self) -> None:
        shape = self.detector.session.get_outputs()[0].shape
        if len(shape) != 3 or not _fits(shape[1], self._anchors) or (isinstance(shape[2], int) and shape[2] < 6):
            raise DWPoseError(f"{self.detector.path} gives output {shape}; {self._detector_expects()}")

    def _check_pose_outputs(self) -> None:
        height, width = self.pose.size
        shapes = [o.shape for o in self.pose.session.get_outputs()[:2]]
        wanted = [(KEYPOINTS, width * SIMCC_SPLIT_RATIO), (KEYPOINTS, height * SIMCC_SPLIT_RATIO)]
        if len(shapes) != 2 or any(len(s) != 3 or not (_fits(s[1], k) and _fits(s[2], n))
                                   for s, (k, n) in zip(shapes, wanted, strict=True)):
            raise DWPoseError(f"{self.pose.path} gives outputs {shapes}; {self._pose_expects()}")


def _open(path: str | Path, role: str, providers: list[str]) -> OnnxImageModel:
    """An onnxruntime session for the DWPose ``role`` file, with its input checked."""
    path = Path(path)
    if not path.is_file():
        raise DWPoseError(f"DWPose {role} model not found: {path}. Put {_FILES[role]} in ComfyUI/models/dwpose/ "
                          "(the file comfyui_controlnet_aux downloads, from Hugging Face yzd-v/DWPose)")
    return OnnxImageModel.open(path, f"DWPose {role} model", providers, DWPoseError)


def _fits(dim: int | str | None, size: float) -> bool:
    """Whether an ONNX dimension (a number, or a name / None when dynamic) can be ``size``."""
    return not isinstance(dim, int) or dim == size


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim not in (3, 4) \
            or frames.shape[-1] != 3 or 0 in frames.shape[-3:-1]:
        shape = getattr(frames, "shape", None)
        raise ValueError(f"DWPose frames must be uint8 RGB [N, H, W, 3] or [H, W, 3], got "
                         f"{getattr(frames, 'dtype', type(frames).__name__)} {shape}")
    return frames[None] if frames.ndim == 3 else frames
