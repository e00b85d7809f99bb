"""Landmark extraction and α warp throughput on this machine.

    python benchmarks/landmarks.py [--detector yolox_l.onnx --pose dw-ll_ucoco_384.onnx]

With the real DWPose files it times the whole extraction (models included). Without them it
times everything around the models (letterbox, crops, decoding, tracking) with stand-in ONNX
files of the real input/output sizes whose inference is nearly free, and says so. The α warp and
face-drop run on 512x512 frames. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from benchmarks.results import best_of, machine, write_section
    from megactor_core.landmarks import DWPose, amplify_motion, detect_landmarks, face_drop
    from megactor_core.stand_ins import face_dwpose_files

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detector")
    parser.add_argument("--pose")
    args = parser.parse_args()
    real = bool(args.detector and args.pose)
    frames = np.random.default_rng(0).integers(0, 256, (32, 512, 512, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        files = (args.detector, args.pose) if real else face_dwpose_files(Path(tmp))
        dwpose = DWPose(*files)
        detect_landmarks(dwpose, frames[:2])  # warm-up
        extract = best_of(lambda: detect_landmarks(dwpose, frames))
        landmarks, _ = detect_landmarks(dwpose, frames)
    floats = frames.astype(np.float32) / 255
    warp = best_of(lambda: amplify_motion(floats, landmarks, 2.0))
    drop = best_of(lambda: face_drop(floats, landmarks, "eyes"))
    n = len(frames)
    what = "DWPose files given" if real else "stand-in ONNX files: models excluded, pre/post-processing only"
    rows = [f"| landmark extraction ({what}) | {n / extract:.1f} |",
            f"| motion amplitude α warp | {n / warp:.1f} |",
            f"| face-drop (eyes) | {n / drop:.1f} |"]
    print("\n".join(rows))
    write_section("landmarks", "\n".join([
        "## Landmarks, α warp, face-drop (`python benchmarks/landmarks.py`)",
        "",
        f"512x512 frames, {n} per run, best of 3, on this CPU ({machine()}). The real DWPose files are",
        "not on this machine: rerun with `--detector` and `--pose` to time the models themselves.",
        "",
        "| step | frames per second |",
        "| --- | ---: |",
        *rows,
    ]))


if __name__ == "__main__":
    main()
