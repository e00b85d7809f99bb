"""The toy world's face swap: a driving clip re-rendered as another random person, same pose and expression.

The paper trains on face-swapped and stylised driving videos so the model cannot copy the driver's
appearance. Without it the toy model copies the driver's head outline and hair (in training the
driver is always the target itself); with it, cross-identity frame error drops (docs/toy.md).

:func:`fit_face` inverts :func:`.face.render`'s landmarks exactly: from the 68 points of one frame it
solves the face's aspect and the camera (an affine map, linear least squares on the points that do
not move with eyes or mouth), then eye openness and mouth opening (each one linear unknown), so
:func:`face_swap` is a training hook (``augment.face_swap: "megactor_core.toy.swap:face_swap"``) that
needs nothing but the frames' landmarks, as a real face-swap model would.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .face import CENTRE, Identity, face_points, render
from .signals import Signals

_FIXED = np.r_[0, 16, 17:36, 36, 39, 42, 45]  # ears, brows, nose, eye corners: move with neither eyes nor mouth
_EYES = np.r_[36:48]
_MOUTH = np.r_[1:16, 48:68]  # the lower jaw drops as the mouth opens


def _points(aspect: float, eyes: float, mouth: float) -> np.ndarray:
    return face_points(aspect, eyes, mouth)[0]


def _solve_camera(face: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine camera ``flat ≈ face @ A.T + c`` (``A`` 2x3) by least squares."""
    design = np.c_[face, np.ones(len(face))]
    solution = np.linalg.lstsq(design, flat, rcond=None)[0]
    return solution[:3].T, solution[3]


def _aspect(flat: np.ndarray) -> float:
    """The face's height/width from the fixed points, whose face-unit ``y`` is ``u + aspect * v``: with the
    camera's ``y`` column ``A1``, ``flat = A0 x + A1 u + (aspect A1) v + A2 z + c`` is linear in
    ``A0, A1, aspect A1, A2, c``."""
    solution = np.linalg.lstsq(_aspect_design(), flat[_FIXED], rcond=None)[0]
    a1, scaled = solution[1], solution[2]
    return float(scaled @ a1 / (a1 @ a1))


@functools.cache
def _aspect_design() -> np.ndarray:
    """:func:`_aspect`'s least-squares design, the same for every frame (computed once: a third of a fit's time)."""
    one, two = _points(1.0, 1.0, 0.0)[_FIXED], _points(2.0, 1.0, 0.0)[_FIXED]
    base, v = 2 * one - two, two[:, 1] - one[:, 1]
    design = np.c_[base[:, 0], base[:, 1], v, base[:, 2], np.ones(len(base))]
    design.flags.writeable = False
    return design


def _linear(flat: np.ndarray, at0: np.ndarray, at1: np.ndarray) -> float:
    """``t`` with ``flat ≈ at0 + t (at1 - at0)``, least squares."""
    step = (at1 - at0).ravel()
    return float((flat - at0).ravel() @ step / (step @ step))


def _angles(camera: np.ndarray) -> tuple[float, float, float, float]:
    """Scale and yaw, pitch, roll (degrees) of ``camera = scale * R[:2]``, ``R`` as :func:`.face.rotation`."""
    scale = float(np.linalg.norm(camera, axis=1).mean())
    top = camera / scale
    third = np.cross(top[0], top[1])
    yaw = math.asin(float(np.clip(-third[0], -1, 1)))
    pitch = math.atan2(third[1], third[2])
    roll = math.atan2(top[1, 0], top[0, 0])
    return scale, *np.degrees([yaw, pitch, roll])


def fit_face(flat: np.ndarray, size: int) -> tuple[float, float, Signals]:
    """One frame's ``[68, 2]`` pixel landmarks -> (half_width, aspect, its one-frame :class:`Signals`)."""
    flat = np.asarray(flat, np.float64)
    aspect = _aspect(flat)
    camera, centre = _solve_camera(_points(aspect, 1.0, 0.0)[_FIXED], flat[_FIXED])

    def project(face: np.ndarray) -> np.ndarray:
        return face @ camera.T + centre

    shut, opened = project(_points(aspect, 0.0, 0.0)[_EYES]), project(_points(aspect, 1.0, 0.0)[_EYES])
    eyes = _linear(flat[_EYES], shut, opened)
    closed, wide = project(_points(aspect, eyes, 0.0)[_MOUTH]), project(_points(aspect, eyes, 1.0)[_MOUTH])
    mouth = _linear(flat[_MOUTH], closed, wide)
    scale, yaw, pitch, roll = _angles(camera)
    shift = centre / size - CENTRE
    signals = Signals(yaw=np.array([yaw]), pitch=np.array([pitch]), roll=np.array([roll]),
                      shift_x=shift[:1], shift_y=shift[1:],
                      eyes=np.array([eyes]), mouth=np.array([mouth]))
    return scale / size, aspect, signals


def face_swap(frames: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 toy frames ``[F, H, W, 3]`` and their ``[F, 68, 2]`` landmarks -> the same clip as one new random
    person (colours, hair style, background) with the driver's proportions, so every landmark and every
    region cut from the landmarks stays where it was."""
    size = frames.shape[1]
    if frames.shape[1] != frames.shape[2] or points.shape != (len(frames), 68, 2):
        raise ValueError(f"the toy face swap needs square frames and [F, 68, 2] landmarks, got frames "
                         f"{frames.shape} and landmarks {points.shape}")
    fits = [fit_face(p, size) for p in points]
    half_width, aspect = float(np.mean([f[0] for f in fits])), float(np.mean([f[1] for f in fits]))
    signals = Signals(**{field.name: np.concatenate([getattr(f[2], field.name) for f in fits])
                         for field in dataclasses.fields(Signals)})
    other = dataclasses.replace(Identity.random(rng), half_width=half_width, aspect=aspect)
    return render(other, signals, size)[0]
