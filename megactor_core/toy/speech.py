"""Speech-like sound with a known loudness envelope: syllables of a buzzing voice through two formants.

The envelope is what drives the toy faces' mouths, so a model that learned lip sync from this
audio should open the mouth where the envelope is high.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SAMPLE_RATE = 16000


def syllable_envelope(seconds: float, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[seconds * rate]`` loudness in 0..1: raised-cosine syllables of 100-300 ms with pauses of 40-300 ms."""
    total = int(round(seconds * rate))
    envelope = np.zeros(total)
    t = int(rng.uniform(0.0, 0.2) * rate)
    while t < total:
        length = int(rng.uniform(0.10, 0.30) * rate)
        peak = rng.uniform(0.5, 1.0)
        shape = np.sin(np.linspace(0, np.pi, length)) ** 2 * peak
        envelope[t:t + length] = shape[:max(0, total - t)]
        t += length + int(rng.uniform(0.04, 0.30) * rate)
    return envelope


def voice(envelope: np.ndarray, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono samples in -1..1: a glottal buzz (f0 100-220 Hz with vibrato) shaped by two formants,
    plus a little breath noise, all scaled by ``envelope``."""
    n = len(envelope)
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 220) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 25))
    sound = np.zeros(n)
    for formant in (rng.uniform(500, 900), rng.uniform(1100, 2200)):
        b, a = scipy.signal.iirpeak(formant, 4.0, fs=rate)
        sound += scipy.signal.lfilter(b, a, buzz)
    sound = sound / (np.abs(sound).max() + 1e-9) + 0.05 * rng.standard_normal(n)
    return (0.8 * envelope * sound / (np.abs(sound).max() + 1e-9)).astype(np.float32)


def envelope_at(envelope: np.ndarray, frames: int, fps: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[frames]`` mean loudness over each video frame's time span."""
    edges = np.minimum((np.arange(frames + 1) * rate / fps).astype(int), len(envelope))
    sums = np.concatenate([[0.0], np.cumsum(envelope)])
    return (sums[edges[1:]] - sums[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)
