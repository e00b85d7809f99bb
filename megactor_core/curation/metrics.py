"""Per-clip quality metrics of the paper's data recipe (Table 2): face size, head angle, lip sync.

A clip that cannot be measured fully is never an exception: its record says why in ``problem``
and the metrics it could not get are NaN, so one bad file never stops a scan.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..landmarks import DWPose, FaceLandmarks, detect_landmarks, head_angles
from ..landmarks.head_pose import rotation_angle
from ..video_io import Video, VideoFileError, frame_times, mono_pcm16, read_video

if TYPE_CHECKING:
    from .syncnet import SyncScores

NAN = float("nan")
# Gaps between frame times may differ by this fraction of the median gap in a constant-rate file
# (container time bases round the stamps).
FRAME_GAP_TOLERANCE = 0.1


@dataclass
class Thresholds:
    """The paper's selection (Table 2), each bound configurable."""

    min_face: float = 600.0  # px: the face box's smaller side, median over frames
    min_sync_c: float = 6.0  # SyncNet confidence
    max_sync_d: float = 8.5  # SyncNet distance
    max_angle: float = 30.0  # degrees: mean head rotation away from frontal

    def reasons(self, record: ClipRecord) -> list[str]:
        """Why ``record`` is not kept (empty if it is)."""
        if record.problem:
            return [record.problem]
        checks = [
            (record.face_size >= self.min_face, f"face {record.face_size:.0f} px < {self.min_face:g}"),
            (record.sync_c > self.min_sync_c, f"Sync-C {record.sync_c:.2f} <= {self.min_sync_c:g}"),
            (record.sync_d < self.max_sync_d, f"Sync-D {record.sync_d:.2f} >= {self.max_sync_d:g}"),
            (record.angle_mean < self.max_angle, f"head angle {record.angle_mean:.1f} >= {self.max_angle:g}"),
        ]
        return [why for ok, why in checks if not ok]  # NaN fails every comparison, so unmeasured fails


@dataclass
class ClipRecord:
    """One row of the manifest."""

    path: str
    source: str = ""  # the top folder under the scanned root: a "dataset" of the summary
    problem: str = ""  # why a metric could not be measured; empty when all were
    duration: float = NAN  # seconds
    fps: float = NAN
    width: int = 0
    height: int = 0
    frames: int = 0
    variable_fps: bool = False
    has_audio: bool = False
    face_size: float = NAN  # px, smaller side of the face box, median over frames
    face_size_min: float = NAN  # px, the smallest over frames
    angle_mean: float = NAN  # degrees of head rotation away from frontal
    angle_max: float = NAN
    sync_offset: float = NAN  # frames, SyncNet's best audio-video offset
    sync_c: float = NAN
    sync_d: float = NAN


@dataclass
class Scorers:
    """The models a measurement runs: DWPose always, SyncNet when lip sync is measured."""

    dwpose: DWPose
    syncnet: torch.nn.Module | None = None  # measured on its own device


def face_sizes(landmarks: FaceLandmarks) -> np.ndarray:
    """``[N]`` the smaller side of each frame's face box (the 68 landmarks' bounding box), px."""
    extent = landmarks.points.max(axis=1) - landmarks.points.min(axis=1)
    return extent.min(axis=1)


def is_variable_rate(times: np.ndarray) -> bool:
    """True when the gaps between frame times are uneven beyond container rounding."""
    gaps = np.diff(times)
    if gaps.size < 2:
        return False
    median = float(np.median(gaps))
    return median <= 0 or bool(np.abs(gaps - median).max() > FRAME_GAP_TOLERANCE * median)


def measure_clip(path: str | os.PathLike, scorers: Scorers, source: str = "") -> ClipRecord:
    """Every metric of one video file, or as many as it allows (see ``problem``)."""
    record = ClipRecord(str(path), source)
    try:
        record.variable_fps = is_variable_rate(frame_times(path))
        video = read_video(path)
    except (VideoFileError, FileNotFoundError) as exc:
        record.problem = f"unreadable: {exc}"
        return record
    record.frames, record.height, record.width = video.frames.shape[:3]
    record.fps, record.has_audio = video.fps, video.audio is not None
    record.duration = record.frames / video.fps
    try:
        landmarks, _ = detect_landmarks(scorers.dwpose, video.frames)
    except ValueError as exc:
        record.problem = f"no face: {exc}"
        return record
    sizes = face_sizes(landmarks)
    record.face_size, record.face_size_min = float(np.median(sizes)), float(sizes.min())
    angles = rotation_angle(head_angles(landmarks))
    record.angle_mean, record.angle_max = float(angles.mean()), float(angles.max())
    problems = []
    if record.variable_fps:
        problems.append("variable frame rate (lip sync not measured: SyncNet needs evenly spaced frames)")
    if not record.has_audio:
        problems.append("no audio track")
    if not problems and scorers.syncnet is not None:
        try:
            scores = video_sync(video, landmarks, scorers.syncnet)
            record.sync_offset, record.sync_c, record.sync_d = float(scores.offset), scores.confidence, scores.distance
        except ValueError as exc:
            problems.append(f"lip sync not measured: {exc}")
    record.problem = "; ".join(problems)
    return record


def video_sync(video: Video, landmarks: FaceLandmarks, syncnet: torch.nn.Module) -> SyncScores:
    """SyncNet's scores of a video with sound, measured as syncnet_python measures a file: the face
    crops at 25 fps and ffmpeg's 16-bit mono 16 kHz resampling (-ac 1 -ar 16000 -acodec pcm_s16le)."""
    from .syncnet import SAMPLE_RATE, lip_inputs, sync_scores

    if video.audio is None:
        raise ValueError("the video has no audio track")
    samples = mono_pcm16(video.audio, video.sample_rate, SAMPLE_RATE) / np.float32(32768)
    return sync_scores(syncnet, lip_inputs(video.frames, landmarks.points), samples, video.fps)


def source_of(path: Path, root: Path) -> str:
    """The first folder of ``path`` under ``root`` ("." for files directly in it)."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else "."


def hours(records: list[ClipRecord]) -> float:
    return sum(r.duration for r in records if not math.isnan(r.duration)) / 3600
