"""Scanning a folder of clips into a manifest (in parallel, resumable), summarising and selecting it."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..progress import Progress
from ..ray_pool import RayCluster, ray_map
from ..video_io import find_videos
from .manifest import Journal, read_manifest, write_manifest
from .metrics import ClipRecord, Scorers, Thresholds, hours, measure_clip, source_of


@dataclass(frozen=True)
class ModelFiles:
    """Where the scan's models are: each worker process loads them once."""

    detector: str  # yolox_l.onnx
    pose: str  # dw-ll_ucoco_384.onnx
    syncnet: str | None = None  # syncnet_v2.model; None = no lip-sync metrics
    device: str = "cpu"

    def check(self) -> None:
        """A clear error for a missing file, before any worker starts."""
        sources = {self.detector: "yolox_l.onnx, from Hugging Face yzd-v/DWPose",
                   self.pose: "dw-ll_ucoco_384.onnx, from Hugging Face yzd-v/DWPose",
                   self.syncnet: "syncnet_v2.model, from the public syncnet_python release (its download_model.sh)"}
        for path, what in sources.items():
            if path and not Path(path).is_file():
                raise FileNotFoundError(f"{path} not found: it should be {what}")

    def load(self) -> Scorers:
        from ..landmarks import DWPose

        device = torch.device(self.device)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else None
        dwpose = DWPose(self.detector, self.pose, providers)
        syncnet = None
        if self.syncnet:
            from .syncnet import load_syncnet

            syncnet = load_syncnet(self.syncnet, device=device)
        return Scorers(dwpose, syncnet)


class ClipMeter:
    """One worker's models, loaded once, measuring clip after clip (in a process or a Ray actor)."""

    def __init__(self, models: ModelFiles) -> None:
        torch.set_num_threads(1)  # parallelism comes from the workers
        self.scorers = models.load()

    def __call__(self, path: str, source: str) -> ClipRecord:
        return measure_clip(path, self.scorers, source)


_worker_meter: ClipMeter | None = None


def _start_worker(models: ModelFiles) -> None:
    global _worker_meter
    _worker_meter = ClipMeter(models)


def _measure_in_worker(path: str, source: str) -> ClipRecord:
    return _worker_meter(path, source)


def scan(root: str | os.PathLike, out: str | os.PathLike, models: ModelFiles | Scorers, *, workers: int = 0,
         progress: Progress | None = None, ray: RayCluster | None = None) -> list[ClipRecord]:
    """Measure every video under ``root`` and write the manifest ``out`` (``.csv`` or ``.parquet``).

    Clips already in ``out`` or in its journal (left by a scan that was killed) are not measured
    again. ``workers`` > 0 measures in that many processes, each loading ``models`` (a
    :class:`ModelFiles`) once; 0 measures here, with ``models`` loaded or given as :class:`Scorers`.
    ``ray`` measures on that Ray cluster instead, in actors loading ``models`` once each (its
    files at the same path on every node); this process still writes the journal and manifest.
    ``progress(done, total)`` counts clips; raising from it stops the scan (what is done is kept).
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of clips")
    clips = [(str(v.path), source_of(v.path, root.resolve())) for v in find_videos([root])]
    journal = Journal(out)
    done = {r.path: r for r in [*(read_manifest(out) if out.is_file() else []), *journal.read()]}
    todo = [(path, source) for path, source in clips if path not in done]
    total, finished = len(clips), len(clips) - len(todo)
    if progress is not None:
        progress(finished, total)
    with closing(_measure_all(todo, models, workers, ray)) as measured:
        for record in measured:
            journal.append(record)
            done[record.path] = record
            finished += 1
            if progress is not None:
                progress(finished, total)
    records = [done[path] for path, _ in clips]
    write_manifest(out, records)
    journal.remove()
    return records


def _measure_all(todo: Sequence[tuple[str, str]], models: ModelFiles | Scorers, workers: int,
                 ray: RayCluster | None) -> Iterator[ClipRecord]:
    """Records as they finish, in this process, in ``workers`` processes or on a Ray cluster."""
    if ray is not None:
        if not isinstance(models, ModelFiles):
            raise ValueError("a scan on Ray loads the models in each worker: give ModelFiles, not loaded Scorers")
        yield from ray_map(ray, ClipMeter, lambda device: (dataclasses.replace(models, device=device),), todo,
                           ordered=False)
        return
    if workers <= 0:
        scorers = models.load() if isinstance(models, ModelFiles) else models
        for path, source in todo:
            yield measure_clip(path, scorers, source)
        return
    if not isinstance(models, ModelFiles):
        raise ValueError("parallel scans load the models in each worker: give ModelFiles, not loaded Scorers")
    context = multiprocessing.get_context("spawn")  # onnxruntime and torch threads do not survive fork
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                initargs=(models,)) as pool:
        futures = [pool.submit(_measure_in_worker, path, source) for path, source in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def summary_table(records: Sequence[ClipRecord], thresholds: Thresholds) -> str:
    """Table 2 of the paper for these clips: per source folder, hours, mean metrics and what is kept."""
    header = ("source", "clips", "hours", "face px", "Sync-C", "Sync-D", "angle °", "kept h", "kept %")
    rows = []
    sources = sorted({r.source for r in records})
    for name, group in [*((s, [r for r in records if r.source == s]) for s in sources), ("all", list(records))]:
        kept = [r for r in group if not thresholds.reasons(r)]
        total, kept_hours = hours(group), hours(kept)
        rows.append((name, str(len(group)), f"{total:.2f}", *(_mean(group, k) for k in
                     ("face_size", "sync_c", "sync_d", "angle_mean")), f"{kept_hours:.2f}",
                     f"{100 * kept_hours / total:.1f}" if total else "-"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _mean(records: Sequence[ClipRecord], name: str) -> str:
    values = [getattr(r, name) for r in records if not math.isnan(getattr(r, name))]
    return f"{sum(values) / len(values):.1f}" if values else "-"


def select(records: Sequence[ClipRecord], thresholds: Thresholds, out: str | os.PathLike) -> list[ClipRecord]:
    """Write the paths of the clips ``thresholds`` keep, one per line (atomically), for
    ``python -m megactor_core.training.preprocess kept.txt ...``; returns them."""
    kept = [r for r in records if not thresholds.reasons(r)]
    with atomic_write(out) as tmp, open(tmp, "w") as f:
        f.writelines(f"{r.path}\n" for r in kept)
    return kept
