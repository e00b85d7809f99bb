"""Driving-frame augmentations: face swap (a user hook), size, resolution and colour.

They make the driving frame look unlike the target, so the model learns to take motion from it
and identity from the reference. One set of random parameters is drawn per sample and applied to
all its frames, so a stage-3 clip stays temporally consistent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import cv2
import numpy as np

from .config import AugmentConfig

FaceSwap = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def load_face_swap(spec: str) -> FaceSwap:
    """``"package.module:function"`` -> the function, with a clear error when it cannot be found."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"augment.face_swap must look like 'package.module:function', got {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"augment.face_swap {spec!r} cannot be loaded: {exc}") from exc
    if not callable(function):
        raise ValueError(f"augment.face_swap {spec!r} is not callable")
    return function


def augment_driving(frames: np.ndarray, points: np.ndarray, config: AugmentConfig, rng: np.random.Generator,
                    face_swap: FaceSwap | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames ``[F, H, W, 3]`` and their landmarks ``[F, 68, 2]`` -> augmented float frames
    in 0..1 and the landmarks moved with them."""
    if face_swap is not None and rng.random() < config.face_swap_probability:
        swapped = face_swap(frames, points, rng)
        if not isinstance(swapped, np.ndarray) or swapped.shape != frames.shape or swapped.dtype != np.uint8:
            raise ValueError(f"augment.face_swap must return uint8 frames of shape {frames.shape}, got "
                             f"{getattr(swapped, 'dtype', type(swapped))} {getattr(swapped, 'shape', '')}")
        frames = swapped
    out = frames.astype(np.float32) / 255
    height, width = out.shape[1:3]
    if rng.random() < config.probability:
        out, points = _resize_about_face(out, points, config, rng)
    if rng.random() < config.probability:
        factor = rng.uniform(config.min_resolution, 1.0)
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        out = np.stack([cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (width, height),
                                   interpolation=cv2.INTER_LINEAR) for f in out])
    if rng.random() < config.probability:
        out = _colour(out, config, rng)
    return np.clip(out, 0, 1), points


def _resize_about_face(frames: np.ndarray, points: np.ndarray, config: AugmentConfig,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Zoom about the face centre of the first frame and shift: the face gets another size and place."""
    height, width = frames.shape[1:3]
    scale = rng.uniform(*config.scale)
    shift = rng.uniform(-config.shift, config.shift, 2) * [width, height]
    cx, cy = points[0].mean(axis=0)
    matrix = np.array([[scale, 0, (1 - scale) * cx + shift[0]], [0, scale, (1 - scale) * cy + shift[1]]])
    warped = np.stack([cv2.warpAffine(f, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT) for f in frames])
    return warped, (points * scale + matrix[:, 2]).astype(np.float32)


def _colour(frames: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter."""
    brightness, contrast, saturation = (1 + rng.uniform(-s, s) for s in
                                        (config.brightness, config.contrast, config.saturation))
    hue = rng.uniform(-config.hue, config.hue)
    out = frames * brightness
    out = (out - out.mean(axis=(1, 2, 3), keepdims=True)) * contrast + out.mean(axis=(1, 2, 3), keepdims=True)
    grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
    out = grey[..., None] + (out - grey[..., None]) * saturation
    out = np.clip(out, 0, 1).astype(np.float32)
    if hue:
        hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in out])  # float H in 0..360
        hsv[..., 0] = (hsv[..., 0] + hue) % 360
        out = np.stack([cv2.cvtColor(f, cv2.COLOR_HSV2RGB) for f in hsv])
    return out
