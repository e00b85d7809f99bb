"""Tiny synthetic talking-head clips written in the training dataset format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from megactor_core.landmarks import FaceLandmarks
from megactor_core.training.masks import latent_regions
from megactor_core.training.shards import Clip, write_index, write_shard
from tests.synthetic_faces import frontal_face

SIZE = 64
AUDIO_TOKENS = 3


def talking_face(opening: float, shift: float, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A 64x64 frame of a cartoon face with its mouth ``opening`` (0..1) and its 68 landmarks."""
    points = frontal_face((32.0 + shift, 30.0), 40.0)
    mouth_centre = points[48:68].mean(axis=0)
    points[48:68, 1] = mouth_centre[1] + (points[48:68, 1] - mouth_centre[1]) * (0.5 + 2.5 * opening)
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    cv2.fillConvexPoly(frame, cv2.convexHull(np.round(points[:27]).astype(np.int32)), colour)
    for part in (slice(36, 42), slice(42, 48)):
        cv2.fillConvexPoly(frame, cv2.convexHull(np.round(points[part]).astype(np.int32)), (255, 255, 255))
    cv2.fillConvexPoly(frame, cv2.convexHull(np.round(points[48:60]).astype(np.int32)), (120, 0, 0))
    return frame, points


def synthetic_clip(key: str, frames: int, seed: int, audio_dim: int | None) -> Clip:
    """A clip whose mouth opens with a sine that its audio features carry; latents are the frames,
    pooled to the latent grid (a stand-in VAE: a function of the image, as a real one is)."""
    rng = np.random.default_rng(seed)
    colour = tuple(int(c) for c in rng.integers(90, 230, 3))
    openings = 0.5 + 0.5 * np.sin(np.arange(frames) * 0.9 + seed)
    shifts = 2 * np.sin(np.arange(frames) * 0.3 + seed)
    images, points = zip(*(talking_face(o, s, colour) for o, s in zip(openings, shifts, strict=True)), strict=True)
    images, points = np.stack(images), np.stack(points).astype(np.float32)
    pooled = images.reshape(frames, SIZE // 8, 8, SIZE // 8, 8, 3).mean(axis=(2, 4)) / 127.5 - 1
    latents = np.concatenate([pooled, pooled.mean(axis=-1, keepdims=True)], axis=-1).transpose(0, 3, 1, 2) / 0.18215
    landmarks = FaceLandmarks(points, np.ones((frames, 68), np.float32), np.ones(frames, bool), SIZE, SIZE)
    audio = None
    if audio_dim:
        direction = np.random.default_rng(99).standard_normal(audio_dim)
        audio = openings[:, None, None] * direction + 0.05 * rng.standard_normal((frames, AUDIO_TOKENS, audio_dim))
    return Clip(key, 25.0, images, latents.astype(np.float32), points, latent_regions(landmarks),
                audio=audio, audio_context=1 if audio_dim else None, audio_layers=(0,) if audio_dim else None,
                source=f"{key}.mp4")


def write_dataset(folder: Path, *, clips: int = 4, frames: int = 8, audio_dim: int | None = 12,
                  clips_per_shard: int = 2) -> Path:
    """A dataset folder of ``clips`` synthetic clips in shards, with its index."""
    made = [synthetic_clip(f"clip{i:03d}", frames, i, audio_dim) for i in range(clips)]
    for shard, start in enumerate(range(0, clips, clips_per_shard)):
        write_shard(folder / f"shard-{shard:05d}.tar", made[start:start + clips_per_shard])
    write_index(folder)
    return folder
