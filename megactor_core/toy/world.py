"""Toy talking-portrait videos and the training dataset made of them.

A :class:`ToyVideo` is one person speaking procedural syllables while the head wanders and the
eyes blink; its mouth opens with the sound's loudness. :func:`write_dataset` turns videos into
the trainer's shard format with the real code paths: exact landmarks (the generator knows them),
the toy codec's latents, region maps from the landmarks, and Whisper features from the
project's audio encoder run on a seeded random Whisper (:func:`toy_whisper`), since no trained
Whisper may be downloaded here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import AudioFeatures, encode_audio
from ..audio.whisper_encoder import WhisperEncoder
from ..landmarks import FaceLandmarks
from ..pipeline.codec import LatentCodec
from ..training.masks import latent_regions
from ..training.shards import Clip, write_index, write_shard
from .codec import DctCodec
from .face import Identity, render
from .signals import Signals, random_signals
from .speech import SAMPLE_RATE, envelope_at, syllable_envelope, voice

FPS = 25
AUDIO_CONTEXT = 2  # Whisper positions either side of a frame (40 ms)
MOUTH_GAIN = 1.3  # loudness -> mouth opening (clipped at 1)


@dataclass
class ToyVideo:
    identity: Identity
    signals: Signals
    frames: np.ndarray  # uint8 [N, S, S, 3]
    landmarks: np.ndarray  # float32 [N, 68, 2]
    audio: np.ndarray  # float32 [samples] at 16 kHz

    @property
    def face_landmarks(self) -> FaceLandmarks:
        n, size = len(self.frames), self.frames.shape[1]
        return FaceLandmarks(self.landmarks, np.ones((n, 68), np.float32), np.ones(n, bool), size, size)


def speech(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Audio samples for ``frames`` video frames and the mouth opening it implies per frame."""
    envelope = syllable_envelope(frames / FPS, rng)
    return voice(envelope, rng), np.clip(MOUTH_GAIN * envelope_at(envelope, frames, FPS), 0, 1)


def toy_video(identity: Identity, frames: int, size: int, rng: np.random.Generator, *,
              signals: Signals | None = None, still: bool = False) -> ToyVideo:
    """``identity`` speaking for ``frames`` frames; ``signals`` overrides the motion (its mouth is
    replaced by the speech's unless the speech should be ignored: pass signals with your own mouth)."""
    audio, mouth = speech(frames, rng)
    if signals is None:
        signals = random_signals(frames, FPS, rng, mouth=mouth, still=still)
    images, landmarks = render(identity, signals, size)
    return ToyVideo(identity, signals, images, landmarks, audio)


def toy_whisper(seed: int = 0, width: int = 32, layers: int = 1) -> WhisperEncoder:
    """A Whisper encoder of the real layout (80 mels, 30 s windows) with seeded random weights."""
    from whisper.model import AudioEncoder

    torch.manual_seed(seed)
    return WhisperEncoder(AudioEncoder(n_mels=80, n_ctx=1500, n_state=width, n_head=2, n_layer=layers), 80).eval()


def audio_features(whisper: WhisperEncoder, video: ToyVideo) -> AudioFeatures:
    return encode_audio(whisper, torch.from_numpy(video.audio)[None], SAMPLE_RATE, FPS, frames=len(video.frames),
                        context=AUDIO_CONTEXT)


def codec_frames(identities: int, seed: int, size: int, frames: int = 10) -> np.ndarray:
    """uint8 ``[identities * frames, size, size, 3]``: toy faces drawn apart from the training and held-out
    people (their own random streams), moving, blinking and speaking: a learned codec's training set."""
    videos = []
    for i in range(identities):
        rng = np.random.default_rng([seed, 5000 + i])
        videos.append(toy_video(Identity.random(rng), frames, size, rng).frames)
    return np.concatenate(videos)


def video_clips(video: ToyVideo, key: str, whisper: WhisperEncoder, codec: LatentCodec, clip_frames: int
                ) -> list[Clip]:
    """The video cut into training clips of ``clip_frames`` frames, as the preprocessing would."""
    audio = audio_features(whisper, video)
    latents = codec.encode(torch.from_numpy(video.frames).float() / 255).numpy().astype(np.float16)
    regions = latent_regions(video.face_landmarks)
    clips = []
    for number, start in enumerate(range(0, len(video.frames) - clip_frames + 1, clip_frames)):
        part = slice(start, start + clip_frames)
        clips.append(Clip(f"{key}-{number:03d}", FPS, video.frames[part], latents[part], video.landmarks[part],
                          regions[part], audio=audio.features[part].numpy().astype(np.float16),
                          audio_context=audio.context, audio_layers=audio.layers, source=f"{key}.mp4",
                          first_frame=start))
    return clips


def write_dataset(out: str | os.PathLike, identities: list[Identity], *, videos_per_identity: int, frames: int,
                  clip_frames: int, size: int, whisper: WhisperEncoder, seed: int,
                  codec: LatentCodec | None = None) -> Path:
    """A training dataset folder: one shard per identity, and the index (``codec``: the block DCT by default)."""
    codec = codec or DctCodec()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, identity in enumerate(identities):
        rng = np.random.default_rng([seed, i])
        clips = [clip for v in range(videos_per_identity)
                 for clip in video_clips(toy_video(identity, frames, size, rng), f"id{i:03d}-v{v:02d}", whisper,
                                         codec, clip_frames)]
        write_shard(out / f"shard-{i:05d}.tar", clips)
    write_index(out)
    return out
