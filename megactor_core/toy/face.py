"""Procedural cartoon portraits with exact iBUG-68 landmarks, posed and animated by :class:`Signals`.

A face is a 3-D point set in face units (half-width 1, y down, z towards the camera): an outline
ring and the 68 landmarks, whose eye lids and lips move with eye openness and mouth opening. As in
real faces, an open mouth also drops the jaw: the chin and the lower cheeks move down, so the face's
outline (and the face region found from the landmarks) tells how open the mouth is even where the
mouth itself is hidden, e.g. in driving frames face-dropped to the eyes. It is
rotated by yaw, pitch and roll, projected orthographically and drawn flat: background, hair, face,
brows, eyes, nose, lips. The sclera (near white) and the open mouth (near black) have colours no
other part uses, so :mod:`.measure` can read eyes and mouth back from any frame's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .signals import Signals

SCLERA = (245, 245, 245)
JAW_DROP = 0.15  # how far the chin drops (face units) when the mouth opens fully
MOUTH_INSIDE = (25, 5, 10)
CENTRE = (0.5, 0.53)  # where an unshifted face's centre sits, as fractions of the frame (x, y)
OUTLINE_POINTS = 36
_SUBPIXEL = 4  # cv2 drawing shift: coordinates in 1/16 px


@dataclass(frozen=True)
class Identity:
    """What stays the same in one person's videos: proportions and colours (RGB)."""

    half_width: float  # face half-width as a fraction of the frame size
    aspect: float  # face height / width
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    background: tuple[int, int, int]
    lips: tuple[int, int, int]
    iris: tuple[int, int, int]
    hair_style: int  # 0 short, 1 long, 2 bald

    @classmethod
    def random(cls, rng: np.random.Generator) -> Identity:
        """A random person whose colours stay clear of the sclera's white and the mouth's black."""
        def colour(low: int, high: int) -> tuple[int, int, int]:
            return tuple(int(c) for c in rng.integers(low, high, 3))

        tone = rng.uniform(0.45, 1.0)
        skin = tuple(int(c * tone) for c in (235, 190 + rng.integers(-20, 20), 160 + rng.integers(-30, 20)))
        return cls(half_width=float(rng.uniform(0.27, 0.31)), aspect=float(rng.uniform(1.15, 1.35)), skin=skin,
                   hair=colour(50, 200), background=colour(40, 210), lips=(int(rng.integers(150, 220)),
                                                                             int(rng.integers(40, 100)),
                                                                             int(rng.integers(50, 110))),
                   iris=colour(80, 170), hair_style=int(rng.integers(0, 3)))


def _ellipse(centre: tuple[float, float], rx: float, ry: float, start: float, stop: float, count: int,
             z: float = 0.0) -> np.ndarray:
    """``[count, 3]`` points on an axis-aligned ellipse from angle ``start`` to ``stop`` (0 = +x, π/2 = down)."""
    a = np.linspace(start, stop, count)
    return np.stack([centre[0] + rx * np.cos(a), centre[1] + ry * np.sin(a), np.full(count, z)], 1)


def face_points(aspect: float, eyes: float, mouth: float) -> tuple[np.ndarray, np.ndarray]:
    """The 3-D ``[68, 3]`` landmarks and ``[OUTLINE_POINTS, 3]`` face outline of a frontal face."""
    a = aspect
    drop = JAW_DROP * float(np.clip(mouth, 0, 1))
    pts = np.zeros((68, 3))
    pts[0:17] = _jaw_drop(_ellipse((0, 0), 1, a, math.pi, 0, 17), a, drop)  # jaw: ear, chin (down), ear
    for first, side in ((17, -1), (22, 1)):
        xs = np.linspace(0.75, 0.15, 5) if side < 0 else np.linspace(0.15, 0.75, 5)
        pts[first:first + 5] = np.stack([side * xs, np.full(5, -0.45 * a) - 0.04 * np.sin(np.linspace(0, math.pi, 5)),
                                         np.full(5, 0.5)], 1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.3 * a, 0.15 * a, 4), np.linspace(0.6, 0.9, 4)], 1)
    pts[31:36] = np.stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.25 * a), np.full(5, 0.7)], 1)
    lid = 0.01 + 0.13 * float(np.clip(eyes, 0, 1))
    angles = np.linspace(0, 2 * math.pi, 7)[:-1]
    for first, ex in ((36, -0.42), (42, 0.42)):
        pts[first:first + 6] = np.stack([ex - 0.24 * np.cos(angles), -0.22 * a - lid * np.sin(angles),
                                         np.full(6, 0.7)], 1)
    gap = 0.2 * float(np.clip(mouth, 0, 1))
    my = 0.55 * a
    outer = np.linspace(0, 2 * math.pi, 13)[:-1]
    pts[48:60] = np.stack([-0.35 * np.cos(outer), my - (0.07 + gap / 2) * np.sin(outer), np.full(12, 0.55)], 1)
    inner = np.linspace(0, 2 * math.pi, 9)[:-1]
    pts[60:68] = np.stack([-0.25 * np.cos(inner), my - (0.005 + gap / 2) * np.sin(inner), np.full(8, 0.6)], 1)
    outline = _jaw_drop(_ellipse((0, 0), 1, a, 0, 2 * math.pi, OUTLINE_POINTS), a, drop)
    return pts, outline


def _jaw_drop(points: np.ndarray, aspect: float, drop: float) -> np.ndarray:
    """``points`` with those below the ears moved down by ``drop`` at the chin, less towards the ears."""
    below = np.clip(points[:, 1] / aspect, 0, 1)  # 0 at the ears' height, 1 at the chin
    moved = points.copy()
    moved[:, 1] += drop * below
    return moved


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


class _Projector:
    """Face units -> pixels for one frame's pose."""

    def __init__(self, identity: Identity, signals: Signals, i: int, size: int) -> None:
        self.rotation = rotation(signals.yaw[i], signals.pitch[i], signals.roll[i])
        self.scale = identity.half_width * size
        self.centre = size * (np.array(CENTRE) + [signals.shift_x[i], signals.shift_y[i]])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return (points @ self.rotation.T)[:, :2] * self.scale + self.centre


def _fill(image: np.ndarray, points: np.ndarray, colour) -> None:
    cv2.fillPoly(image, [np.round(points * (1 << _SUBPIXEL)).astype(np.int32)], colour, cv2.LINE_AA, _SUBPIXEL)


def _line(image: np.ndarray, points: np.ndarray, colour, width: int) -> None:
    cv2.polylines(image, [np.round(points * (1 << _SUBPIXEL)).astype(np.int32)], False, colour, width, cv2.LINE_AA,
                  _SUBPIXEL)


def _darker(colour, factor: float) -> tuple[int, ...]:
    return tuple(int(c * factor) for c in colour)


def render(identity: Identity, signals: Signals, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, size, size, 3]`` RGB uint8 and their landmarks ``[N, 68, 2]`` in pixels."""
    frames = np.empty((len(signals), size, size, 3), np.uint8)
    landmarks = np.empty((len(signals), 68, 2), np.float32)
    a = identity.aspect
    hair_back = _ellipse((0, -0.15 * a), 1.15, 1.05 * a, 0, 2 * math.pi, OUTLINE_POINTS, z=-0.3)
    if identity.hair_style == 1:  # long: the back hair reaches below the chin
        hair_back = np.concatenate([_ellipse((0, -0.15 * a), 1.2, 1.05 * a, math.pi, 2 * math.pi, 18, z=-0.3),
                                    [[1.25, 1.2 * a, -0.3], [-1.25, 1.2 * a, -0.3]]])
    fringe = _ellipse((0, -0.12 * a), 1.06, 0.98 * a, math.pi * 1.05, math.pi * 1.95, 16, z=0.2)
    fringe = np.concatenate([fringe, [[0.6, -0.62 * a, 0.45], [-0.6, -0.62 * a, 0.45]]])
    for i in range(len(signals)):
        project = _Projector(identity, signals, i, size)
        points, outline = face_points(a, signals.eyes[i], signals.mouth[i])
        image = frames[i]
        image[:] = identity.background
        if identity.hair_style != 2:
            _fill(image, project(hair_back), identity.hair)
        _fill(image, project(outline), identity.skin)
        if identity.hair_style != 2:
            _fill(image, project(fringe), identity.hair)
        flat = project(points)
        width = max(1, size // 64)
        _line(image, flat[17:22], _darker(identity.hair, 0.7), width)
        _line(image, flat[22:27], _darker(identity.hair, 0.7), width)
        for eye in (flat[36:42], flat[42:48]):
            if np.ptp(eye[:, 1]) < 1.0:  # shut: a lid line (a filled sliver would still draw white edges)
                _line(image, eye[:4], _darker(identity.skin, 0.6), width)
                continue
            _fill(image, eye, SCLERA)
            centre = eye.mean(0)
            radius = min(np.ptp(eye[:, 1]) * 0.3, np.ptp(eye[:, 0]) / 6)  # sclera shows round it
            if radius > 0.5:
                cv2.circle(image, tuple(np.round(centre * (1 << _SUBPIXEL)).astype(int)),
                           int(radius * (1 << _SUBPIXEL)), identity.iris, -1, cv2.LINE_AA, _SUBPIXEL)
        _line(image, flat[27:31], _darker(identity.skin, 0.75), width)
        _line(image, flat[31:36], _darker(identity.skin, 0.75), width)
        _fill(image, flat[48:60], identity.lips)
        if np.ptp(flat[60:68, 1]) >= 1.0:  # open
            _fill(image, flat[60:68], MOUTH_INSIDE)
        else:
            _line(image, flat[60:65], _darker(identity.lips, 0.6), width)
        landmarks[i] = flat
    return frames, landmarks
