"""The training dataset on disk: webdataset-style tar shards of preprocessed clips, and an index.

A dataset is a folder of ``shard-NNNNN.tar`` files plus ``index.json``. Each clip is a group of
tar members sharing a key (``<key>.<extension>``, the webdataset convention, so the shards also
stream with the ``webdataset`` package):

============================  ===============================================================
``<key>.json``                ``{"fps", "frames", "height", "width", "source", "first_frame",
                              "audio_context", "audio_layers"}``
``<key>.latents.npy``         float16 ``[F, C, H/8, W/8]`` unscaled SD-VAE latents (posterior mode;
                              C = 4, or another codec's channels)
``<key>.landmarks.npy``       float32 ``[F, 68, 2]`` iBUG-68 face points in pixels of the frames
``<key>.regions.npy``         uint8 ``[F, 3, H/8, W/8]`` eyes / mouth / face coverage per latent
                              cell, 0..255 (:data:`REGION_NAMES`)
``<key>.audio.npy``           float16 ``[F, T, W]`` per-frame Whisper features (absent without audio)
``<key>.NNNNN.jpg``           frame ``NNNNN`` of the clip, RGB JPEG of ``H`` x ``W``
============================  ===============================================================

``index.json`` lists every clip with the byte ranges of its members, so a training step reads
only the frames it uses with one seek each, from any shard.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write

INDEX_NAME = "index.json"
INDEX_VERSION = 1
SHARD_PATTERN = "shard-{:05d}.tar"
REGION_NAMES = ("eyes", "mouth", "face")
JPEG_QUALITY = 95
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Clip:
    """One preprocessed clip of consecutive frames, as stored in a shard."""

    key: str
    fps: float
    frames: np.ndarray  # uint8 [F, H, W, 3] RGB
    latents: np.ndarray  # [F, C, H/8, W/8] unscaled latents (C = 4 for the SD VAE)
    landmarks: np.ndarray  # float32 [F, 68, 2]
    regions: np.ndarray  # uint8 [F, 3, H/8, W/8]
    audio: np.ndarray | None = None  # [F, T, W] Whisper features
    audio_context: int | None = None
    audio_layers: tuple[int, ...] | None = None
    source: str = ""
    first_frame: int = 0

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"clip key {self.key!r} may only hold letters, digits, '_' and '-'")
        n, height, width = self.frames.shape[:3]
        expected = {
            "frames": (self.frames, (n, height, width, 3)),
            "latents": (self.latents, (n, self.latents.shape[1] if self.latents.ndim == 4 else -1, height // 8,
                                       width // 8)),
            "landmarks": (self.landmarks, (n, 68, 2)),
            "regions": (self.regions, (n, len(REGION_NAMES), height // 8, width // 8)),
        }
        for name, (array, shape) in expected.items():
            if tuple(array.shape) != shape:
                raise ValueError(f"clip {self.key}: {name} has shape {tuple(array.shape)}, expected {shape}")
        if self.audio is not None and (self.audio.ndim != 3 or self.audio.shape[0] != n):
            raise ValueError(f"clip {self.key}: audio has shape {tuple(self.audio.shape)}, expected [{n}, T, W]")


# One tar member: its name and content.
Member = tuple[str, bytes]


def clip_members(clip: Clip) -> list[Member]:
    """The tar members of ``clip``: its metadata, arrays and JPEG frames, encoded."""
    meta = {"fps": clip.fps, "frames": int(clip.frames.shape[0]), "height": int(clip.frames.shape[1]),
            "width": int(clip.frames.shape[2]), "source": clip.source, "first_frame": clip.first_frame,
            "audio_context": clip.audio_context,
            "audio_layers": None if clip.audio_layers is None else list(clip.audio_layers)}
    members = [(f"{clip.key}.json", json.dumps(meta).encode())]
    arrays = {"latents": clip.latents.astype(np.float16), "landmarks": clip.landmarks.astype(np.float32),
              "regions": clip.regions.astype(np.uint8)}
    if clip.audio is not None:
        arrays["audio"] = clip.audio.astype(np.float16)
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array))
        members.append((f"{clip.key}.{name}.npy", buffer.getvalue()))
    for i, frame in enumerate(clip.frames):
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"clip {clip.key}: frame {i} could not be JPEG-encoded")
        members.append((f"{clip.key}.{i:05d}.jpg", jpeg.tobytes()))
    return members


def write_shard(path: str | os.PathLike, clips: Iterable[Clip]) -> Path:
    """Write ``clips`` as one tar shard, atomically (an interrupted write leaves no shard). ``clips``
    is read once, so a generator keeps only one video's clips in memory."""
    return write_members(path, (member for clip in clips for member in clip_members(clip)))


def write_members(path: str | os.PathLike, members: Iterable[Member]) -> Path:
    """Write already encoded clips (:func:`clip_members`) as one tar shard, atomically."""
    path = Path(path)
    with atomic_write(path) as tmp, tarfile.open(tmp, "w") as tar:
        for name, data in members:
            _add(tar, name, data)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_index(folder: str | os.PathLike) -> Path:
    """Scan every shard in ``folder`` and write ``index.json`` (atomically); returns its path."""
    folder = Path(folder)
    clips = []
    for shard in sorted(folder.glob("shard-*.tar")):
        groups: dict[str, dict[str, list[int]]] = {}
        with tarfile.open(shard, "r") as tar:
            for member in tar:
                key, _, extension = member.name.partition(".")
                groups.setdefault(key, {})[extension] = [member.offset_data, member.size]
        with open(shard, "rb") as f:
            for key, members in groups.items():
                meta = json.loads(_read_range(f, members["json"]))
                clips.append({"shard": shard.name, "key": key, **meta,
                              "members": {k: v for k, v in members.items() if k != "json"}})
    path = folder / INDEX_NAME
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump({"version": INDEX_VERSION, "clips": clips}, f)
    return path


def _read_range(f, span: Sequence[int]) -> bytes:
    f.seek(span[0])
    return f.read(span[1])


@dataclass
class ClipFrames:
    """Chosen frames of one clip, read back from a shard (arrays indexed like ``frames``)."""

    key: str
    fps: float
    frames: np.ndarray  # uint8 [K, H, W, 3]
    latents: np.ndarray  # float32 [K, C, h, w]
    landmarks: np.ndarray  # float32 [K, 68, 2]
    regions: np.ndarray  # float32 [K, 3, h, w] in 0..1
    audio: np.ndarray | None  # float32 [K, T, W]


class ShardDataset:
    """Random access to the clips of a preprocessed dataset folder, through its ``index.json``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        index = self.folder / INDEX_NAME
        if not index.is_file():
            raise FileNotFoundError(f"{index} not found: {self.folder} is not a preprocessed dataset. Make one with "
                                    "python -m megactor_core.training.preprocess --help")
        data = json.loads(index.read_text())
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"{index} has version {data.get('version')}; this code reads version {INDEX_VERSION}")
        self.clips: list[dict] = data["clips"]
        if not self.clips:
            raise ValueError(f"{index} lists no clips")

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def has_audio(self) -> bool:
        return all("audio.npy" in clip["members"] for clip in self.clips)

    def read(self, clip: int, indices: Sequence[int]) -> ClipFrames:
        """Frames ``indices`` of clip number ``clip``, decoding only those JPEGs."""
        info = self.clips[clip]
        members = info["members"]
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < info["frames"]]
        if bad:
            raise IndexError(f"clip {info['key']} has {info['frames']} frames; asked for frames {bad}")
        with open(self.folder / info["shard"], "rb") as f:
            arrays = {name: np.load(io.BytesIO(_read_range(f, members[f"{name}.npy"])))[indices]
                      for name in ("latents", "landmarks", "regions", "audio") if f"{name}.npy" in members}
            frames = []
            for i in indices:
                jpeg = np.frombuffer(_read_range(f, members[f"{i:05d}.jpg"]), np.uint8)
                frames.append(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        audio = arrays.get("audio")
        return ClipFrames(info["key"], float(info["fps"]), np.stack(frames),
                          arrays["latents"].astype(np.float32), arrays["landmarks"].astype(np.float32),
                          arrays["regions"].astype(np.float32) / 255,
                          None if audio is None else audio.astype(np.float32))
