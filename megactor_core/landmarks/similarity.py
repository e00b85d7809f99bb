"""Similarity transforms of 2-D points (rotation, uniform scale, translation), fitted by least squares."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * R(angle) (x - centre) + centre + shift``, for 2-D points."""

    angle: float
    scale: float
    shift: np.ndarray
    centre: np.ndarray

    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix (cv2 convention)."""
        c, s = math.cos(self.angle) * self.scale, math.sin(self.angle) * self.scale
        linear = np.array([[c, -s], [s, c]])
        offset = self.centre + self.shift - linear @ self.centre
        return np.concatenate([linear, offset[:, None]], axis=1)

    def scaled(self, rotation: float, scale: float, translation: float) -> Similarity:
        return Similarity(self.angle * rotation, self.scale**scale, self.shift * translation, self.centre)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` points carried by the transform."""
        matrix = self.matrix()
        return points @ matrix[:, :2].T + matrix[:, 2]


def fit_similarity(src: np.ndarray, dst: np.ndarray, centre: np.ndarray) -> Similarity:
    """Least-squares similarity ``src -> dst`` (Umeyama, no reflection), about ``centre``."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - src_mean, dst - dst_mean
    # With complex numbers z = x + iy, a similarity is dst = k * src: k = <a, b> / |a|².
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    k = np.vdot(za, zb) / np.vdot(za, za).real
    linear = np.array([[k.real, -k.imag], [k.imag, k.real]])
    shift = dst_mean - centre - linear @ (src_mean - centre)  # so that src_mean lands on dst_mean
    return Similarity(float(np.angle(k)), float(abs(k)), shift, centre)
