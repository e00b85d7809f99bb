"""Measuring generated videos against real ones: one row per video, a total row, and the CSV."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..curation.metrics import video_sync
from ..landmarks import FaceLandmarks, detect_landmarks
from ..progress import Progress
from ..video_io import Video, read_audio, read_video
from .frechet import frechet_distance
from .fvd import i3d_features
from .identity import identity_similarity
from .inception import inception_features
from .inputs import Case, read_image
from .lpips import lpips_per_frame
from .models import Models
from .motion import motion_metrics

NAN = float("nan")
TOTAL = "TOTAL"
# The CSV's metric columns of each metric, in order.
COLUMNS = {"sync": ("sync_offset", "sync_c", "sync_d"), "fid": ("fid",), "fvd": ("fvd",), "efid": ("efid",),
           "lpips": ("lpips",), "csim": ("csim",), "motion": ("pose_error", "eyes_corr", "mouth_corr")}
# Distribution metrics: measured over every video's frames together, so only in the total row.
POOLED = ("fid", "fvd", "efid")


@dataclass
class Row:
    """One line of the CSV: a video (or the total) and its metrics (NaN: not measured, see ``problem``)."""

    video: str
    frames: int = 0
    problem: str = ""
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class _Features:
    """Features pooled over all videos for the distribution metrics, as ``(metric, [K, D])`` pairs."""

    generated: list[tuple[str, torch.Tensor]] = field(default_factory=list)
    real: list[tuple[str, torch.Tensor]] = field(default_factory=list)


def _resized(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _landmarks(models: Models, frames: np.ndarray, what: str) -> FaceLandmarks:
    try:
        return detect_landmarks(models.dwpose, frames)[0]
    except ValueError as exc:
        raise ValueError(f"no face in the {what}: {exc}") from exc


def _sync(models: Models, video: Video, landmarks: FaceLandmarks, case: Case) -> dict[str, float]:
    if case.audio is not None:
        audio, rate = read_audio(case.audio)
        video = dataclasses.replace(video, audio=audio, sample_rate=rate)
    if video.audio is None:
        raise ValueError("no audio: the generated video has no soundtrack and no --audio was given")
    scores = video_sync(video, landmarks, models.syncnet)
    return {"sync_offset": float(scores.offset), "sync_c": scores.confidence, "sync_d": scores.distance}


def measure_case(case: Case, models: Models, features: _Features) -> Row:
    """Every per-video metric of ``case``; the frames' Inception / I3D features and expression coefficients
    go into ``features``."""
    metrics = models.metrics()
    row = Row(case.name, values={c: NAN for m in metrics if m not in POOLED for c in COLUMNS[m]})
    generated, real = read_video(case.generated), read_video(case.real)
    row.frames = n = min(len(generated.frames), len(real.frames))
    problems = [] if len(generated.frames) == len(real.frames) else [
        f"{len(generated.frames)} generated vs {len(real.frames)} real frames: paired metrics use the first {n}"]
    if "fid" in metrics:
        features.generated.append(("fid", inception_features(models.inception, generated.frames)))
        features.real.append(("fid", inception_features(models.inception, real.frames)))
    if "fvd" in metrics:
        features.generated.append(("fvd", i3d_features(models.i3d, generated.frames, models.device)))
        features.real.append(("fvd", i3d_features(models.i3d, real.frames, models.device)))
    if "lpips" in metrics:
        row.values["lpips"] = _lpips(models, generated.frames, real.frames)
    if models.dwpose is None:
        row.problem = "; ".join(problems)
        return row
    try:
        landmarks = _landmarks(models, generated.frames, "generated video")
        if "sync" in metrics:
            try:
                row.values.update(_sync(models, generated, landmarks, case))
            except ValueError as exc:
                problems.append(f"lip sync not measured: {exc}")
        real_landmarks = _landmarks(models, real.frames, "real video")
        if "efid" in metrics:
            generated_expressions = models.expression(generated.frames, landmarks.points)
            features.real.append(("efid", models.expression(real.frames, real_landmarks.points)))
            features.generated.append(("efid", generated_expressions))
        reference = None if case.reference is None else (read_image(case.reference), f"reference {case.reference}")
        row.values.update(_face_metrics(models, generated.frames, landmarks, real.frames, real_landmarks, reference))
    except ValueError as exc:
        problems.append(str(exc))
    row.problem = "; ".join(problems)
    return row


def _lpips(models: Models, generated: np.ndarray, real: np.ndarray) -> float:
    """Mean LPIPS over the frame pairs both have, the real frames resized to the generated ones."""
    n = min(len(generated), len(real))
    return float(lpips_per_frame(models.lpips, generated[:n], _resized(real[:n], *generated.shape[1:3])).mean())


def _face_metrics(models: Models, generated: np.ndarray, landmarks: FaceLandmarks, real: np.ndarray,
                  real_landmarks: FaceLandmarks, reference: tuple[np.ndarray, str] | None) -> dict[str, float]:
    """CSIM and landmark motion, whichever ``models`` measure; ``reference``: the image CSIM compares with
    and what to call it (default: the first real frame). A ValueError when a face is not found."""
    metrics = models.metrics()
    values: dict[str, float] = {}
    if "csim" in metrics:
        if reference is None:
            image, points = real[0], real_landmarks.points[0]
        else:
            image, points = reference[0], _landmarks(models, reference[0][None], reference[1]).points[0]
        values["csim"] = float(identity_similarity(models.arcface, image, points, generated, landmarks.points).mean())
    if "motion" in metrics:
        values.update(motion_metrics(landmarks, real_landmarks))
    return values


# What one short generated clip can be measured with: FID, FVD and E-FID compare distributions over
# many videos, Sync-C/D needs the clip's sound.
FRAME_METRICS = ("lpips", "csim", "motion")


def frame_metrics(models: Models, generated: np.ndarray, real: np.ndarray, reference: np.ndarray | None = None
                  ) -> tuple[dict[str, float], str]:
    """:data:`FRAME_METRICS` that ``models`` measure, of generated frames against the real frames they
    stand for (uint8 RGB ``[N, H, W, 3]``, paired by index), CSIM against ``reference`` (default: the
    first real frame); and the problem met, if any (no face found: those metrics are left out)."""
    metrics = models.metrics()
    values = {"lpips": _lpips(models, generated, real)} if "lpips" in metrics else {}
    if models.dwpose is None:
        return values, ""
    try:
        landmarks = _landmarks(models, generated, "generated frames")
        values.update(_face_metrics(models, generated, landmarks, real, _landmarks(models, real, "real video"),
                                    None if reference is None else (reference, "reference image")))
    except ValueError as exc:
        return values, str(exc)
    return values, ""


def _pooled(features: _Features, metric: str) -> tuple[float, str]:
    generated = [f for m, f in features.generated if m == metric]
    real = [f for m, f in features.real if m == metric]
    a, b = torch.cat(generated).numpy(), torch.cat(real).numpy()
    unit = "16-frame clips" if metric == "fvd" else "frames"
    if min(len(a), len(b)) < 2:
        return NAN, f"{metric} not measured: {len(a)} generated and {len(b)} real {unit}, needs at least 2 of each"
    return frechet_distance(a, b), ""


def total_row(rows: Sequence[Row], features: _Features, metrics: Sequence[str]) -> Row:
    """Per-video metrics averaged over the videos that have them; FID, FVD and E-FID over all frames / clips."""
    total = Row(TOTAL, sum(r.frames for r in rows))
    problems = []
    for metric in metrics:
        if metric in POOLED:
            total.values[metric], problem = _pooled(features, metric)
            problems += [problem] if problem else []
            continue
        for column in COLUMNS[metric]:
            finite = [r.values[column] for r in rows if math.isfinite(r.values.get(column, NAN))]
            total.values[column] = float(np.mean(finite)) if finite else NAN
    total.problem = "; ".join(problems)
    return total


def evaluate(cases: Sequence[Case], models: Models, progress: Progress | None = None) -> list[Row]:
    """One row per case, then the total row. ``progress(done, total)`` counts videos; raising in it stops."""
    if not cases:
        raise ValueError("nothing to evaluate: no generated videos")
    features = _Features()
    rows = []
    if progress is not None:
        progress(0, len(cases))
    for done, case in enumerate(cases, 1):
        rows.append(measure_case(case, models, features))
        if progress is not None:
            progress(done, len(cases))
    return rows + [total_row(rows, features, models.metrics())]


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"


def write_csv(rows: Sequence[Row], path: str | os.PathLike, metrics: Sequence[str]) -> None:
    """The rows as CSV (empty cells: not measured), written atomically."""
    columns = [c for m in metrics for c in COLUMNS[m]]
    with atomic_write(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "frames", *columns, "problem"])
        for row in rows:
            writer.writerow([row.video, row.frames, *(_cell(row.values.get(c, NAN)) for c in columns), row.problem])
