"""The known signals a toy video follows: head pose, eye openness and mouth opening per frame."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Signals:
    """Per-frame ``[N]`` arrays. Angles in degrees; shifts as fractions of the frame; eyes and mouth 0..1."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    eyes: np.ndarray
    mouth: np.ndarray

    @classmethod
    def rest(cls, frames: int) -> Signals:
        """Frontal and still, eyes open, mouth shut (the pose of a reference portrait)."""
        return cls(*[np.zeros(frames)] * 5, eyes=np.ones(frames), mouth=np.zeros(frames))

    def __len__(self) -> int:
        return len(self.yaw)

    def __getitem__(self, index) -> Signals:
        return Signals(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def replace(self, **changes: np.ndarray) -> Signals:
        return Signals(**{f.name: changes.get(f.name, getattr(self, f.name)) for f in fields(self)})


def _wander(frames: int, fps: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random curve within about ±``amplitude``: three sinusoids of 0.1-0.6 Hz."""
    t = np.arange(frames) / fps
    parts = [rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 2 * np.pi))
             for _ in range(3)]
    curve = np.sum(parts, axis=0)
    return amplitude * curve / max(np.abs(curve).max(), 1.0)


def blinks(frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eye openness: open (0.8-1.0) with a 5-frame blink every 1.5-4 s."""
    eyes = np.full(frames, rng.uniform(0.8, 1.0))
    t = rng.uniform(0.3, 1.5)
    dip = np.array([0.5, 0.1, 0.0, 0.1, 0.5])
    while (start := int(t * fps)) < frames:
        span = eyes[start:start + len(dip)]
        eyes[start:start + len(dip)] = np.minimum(span, dip[:len(span)] * eyes[0])
        t += rng.uniform(1.5, 4.0)
    return eyes


def random_signals(frames: int, fps: float, rng: np.random.Generator, mouth: np.ndarray | None = None,
                   still: bool = False) -> Signals:
    """Natural-looking motion: head wandering (yaw ±25°, pitch ±12°, roll ±10°, shifts ±6 %), blinks,
    and ``mouth`` (e.g. the audio's loudness per frame; closed when None). ``still`` keeps the head
    frontal and centred (blinks and mouth only)."""
    zero = np.zeros(frames)
    motion = [zero] * 5 if still else [_wander(frames, fps, a, rng) for a in (25, 12, 10, 0.06, 0.06)]
    return Signals(*motion, eyes=blinks(frames, fps, rng),
                   mouth=zero if mouth is None else np.clip(np.asarray(mouth, float), 0, 1))
