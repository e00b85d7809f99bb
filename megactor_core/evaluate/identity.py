"""Identity similarity (CSIM): ArcFace cosine between the reference portrait and each generated frame.

The network is insightface's ``w600k_r50.onnx`` (buffalo_l), run as insightface runs it: faces
warped onto its 112x112 five-point template by a least-squares similarity transform, RGB, values
``(x - 127.5) / 127.5``, a 512-d embedding. The five points come from the 68 DWPose landmarks:
the eye centres (means of the six points of each eye), the nose tip and the mouth corners.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..landmarks.similarity import fit_similarity
from ..onnx_image_model import OnnxImageModel
from .weights import WEIGHT_FILES

CROP = 112
# insightface's arcface_dst: left eye, right eye (as seen), nose tip, left and right mouth corner.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                     [70.7299, 92.2041]], np.float64)


def five_points(points: np.ndarray) -> np.ndarray:
    """``[..., 68, 2]`` iBUG-68 landmarks -> ``[..., 5, 2]`` insightface's five points."""
    return np.stack([points[..., 36:42, :].mean(-2), points[..., 42:48, :].mean(-2), points[..., 30, :],
                     points[..., 48, :], points[..., 54, :]], axis=-2)


def align(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The 112x112 ArcFace crop of an RGB frame with its 68 landmarks (black outside the frame)."""
    matrix = fit_similarity(five_points(points).astype(np.float64), TEMPLATE, np.zeros(2)).matrix()
    return cv2.warpAffine(frame, matrix, (CROP, CROP), borderValue=0.0)


class ArcFace:
    """An onnxruntime session of ``w600k_r50.onnx``: aligned RGB crops -> unit 512-d embeddings."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None) -> None:
        source = WEIGHT_FILES["arcface"].source
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: it should be {source}")
        self.model = OnnxImageModel.open(path, f"ArcFace model ({source})", providers or ["CPUExecutionProvider"],
                                         ValueError)
        if self.model.size != (CROP, CROP):
            raise ValueError(f"{path} takes {self.model.size[0]}x{self.model.size[1]} images, not 112x112 faces; "
                             f"it should be {source}")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """uint8 RGB ``[N, 112, 112, 3]`` -> ``[N, D]`` embeddings of unit length."""
        out = self.model.run(((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))[0]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def identity_similarity(arcface: ArcFace, reference: np.ndarray, reference_points: np.ndarray,
                        frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[N]`` cosine similarity of each frame's face to the reference face (1: same embedding)."""
    ref = arcface(align(reference, reference_points)[None])[0]
    crops = np.stack([align(f, p) for f, p in zip(frames, points, strict=True)])
    return arcface(crops) @ ref
