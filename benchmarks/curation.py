"""Curation scan throughput on this machine: clips per minute, with and without SyncNet, by workers.

    python benchmarks/curation.py [--clips 12] [--seconds 2] [--detector yolox_l.onnx --pose dw-ll_ucoco_384.onnx]

Generated 256x256 25 fps clips with sound are scanned into a fresh manifest each time. SyncNet
is the full-size network with random weights (the same compute as ``syncnet_v2.model``).
Without the real DWPose files, stand-in ONNX files of the real input/output sizes make landmark
inference nearly free, and the section says so. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clips(folder: Path, count: int, seconds: float) -> None:
    from megactor_core.video_io import write_video

    rng = np.random.default_rng(0)
    frames = int(seconds * 25)
    for i in range(count):
        images = rng.integers(0, 256, (frames, 256, 256, 3), dtype=np.uint8)
        audio = rng.uniform(-0.3, 0.3, (1, frames * 640)).astype(np.float32)
        write_video(folder / f"clip{i}.mp4", images, 25, audio=audio, sample_rate=16000)


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the benchmark clips and of the DWPose files."""
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--detector")
    parser.add_argument("--pose")


def prepare(tmp: Path, args: argparse.Namespace) -> tuple[Path, tuple[str, str], str, str]:
    """Benchmark clips in ``tmp/clips``, the DWPose files (given, or stand-ins), a random full-size
    SyncNet file, and the sentence saying which DWPose ran."""
    from megactor_core.curation.syncnet import SyncNet
    from megactor_core.stand_ins import face_dwpose_files

    (tmp / "clips").mkdir()
    make_clips(tmp / "clips", args.clips, args.seconds)
    real = bool(args.detector and args.pose)
    dwpose = (args.detector, args.pose) if real else tuple(map(str, face_dwpose_files(tmp)))
    torch.save(SyncNet().state_dict(), tmp / "syncnet_v2.model")
    what = ("DWPose files given" if real else
            "stand-in DWPose ONNX files (landmark inference nearly free: the real models add their own cost)")
    return tmp / "clips", dwpose, str(tmp / "syncnet_v2.model"), what


def clips_per_minute(folder: Path, out: Path, models, workers: int, ray=None) -> float:
    from megactor_core.curation import scan

    start = time.perf_counter()
    records = scan(folder, out, models, workers=workers, ray=ray)
    elapsed = time.perf_counter() - start
    problems = [r.problem for r in records if r.problem]
    if problems:
        raise RuntimeError(f"benchmark clips were not fully measured: {problems[0]}")
    return len(records) / elapsed * 60


def main() -> None:
    from benchmarks.results import machine, write_section
    from megactor_core.curation import ModelFiles

    parser = argparse.ArgumentParser(description=__doc__)
    add_clip_arguments(parser)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips, dwpose, syncnet_file, what = prepare(Path(tmp), args)
        for label, syncnet in (("landmarks only", None), ("with SyncNet", syncnet_file)):
            models = ModelFiles(*dwpose, syncnet=syncnet)
            speeds = []
            for workers in (0, 1, 2):
                out = Path(tmp) / f"{label[:4]}{workers}.csv"
                speeds.append(clips_per_minute(clips, out, models if workers else models.load(), workers))
            rows.append(f"| {label} | " + " | ".join(f"{s:.1f}" for s in speeds) + " |")
            print(rows[-1])
    write_section("curation", "\n".join([
        "## Curation scan (`python benchmarks/curation.py`)",
        "",
        f"{args.clips} clips of {args.seconds:g} s, 256x256 at 25 fps with sound, clips per minute on this CPU",
        f"({machine()}); {what}; SyncNet full-size with random weights. Workers 0 = one process",
        "with all torch threads; N = N processes of one thread each, models loaded once per process",
        "(their start-up, a few seconds, is inside the time).",
        "",
        "| scan | workers 0 | workers 1 | workers 2 |",
        "| --- | ---: | ---: | ---: |",
        *rows,
    ]))


if __name__ == "__main__":
    main()
