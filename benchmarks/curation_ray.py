"""Curation scan throughput, local processes against Ray actors on this machine: clips per minute.

    python benchmarks/curation_ray.py [--clips 12] [--seconds 2] [--workers 2]

The clips and models of ``benchmarks/curation.py`` (SyncNet full-size with random weights,
stand-in DWPose files unless ``--detector``/``--pose`` are given), scanned with SyncNet by
``--workers`` local processes and by as many Ray actors on a local Ray started here (Ray's own
start-up is outside the time, its actors' model loading inside, as the processes' is). Needs
``pip install "ray[data]"``. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import ray

    from benchmarks.curation import clips_per_minute, make_clips
    from benchmarks.results import machine, write_section
    from megactor_core.curation import ModelFiles
    from megactor_core.curation.syncnet import SyncNet
    from megactor_core.ray_pool import RayCluster
    from megactor_core.stand_ins import face_dwpose_files

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detector")
    parser.add_argument("--pose")
    args = parser.parse_args()
    real = bool(args.detector and args.pose)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        make_clips(tmp / "clips", args.clips, args.seconds)
        dwpose = (args.detector, args.pose) if real else tuple(map(str, face_dwpose_files(tmp)))
        torch.save(SyncNet().state_dict(), tmp / "syncnet_v2.model")
        models = ModelFiles(*dwpose, syncnet=str(tmp / "syncnet_v2.model"))
        local = clips_per_minute(tmp / "clips", tmp / "local.csv", models, args.workers)
        ray.init(num_cpus=args.workers, include_dashboard=False)
        on_ray = clips_per_minute(tmp / "clips", tmp / "ray.csv", models, 0, RayCluster(workers=args.workers))
        ray.shutdown()
        if (tmp / "local.csv").read_bytes() != (tmp / "ray.csv").read_bytes():
            raise RuntimeError("the Ray scan's manifest differs from the local one")
    row = f"| {args.workers} | {local:.1f} | {on_ray:.1f} | {on_ray / local:.2f} |"
    print(row)
    what = "DWPose files given" if real else "stand-in DWPose ONNX files (landmark inference nearly free)"
    write_section("curation_ray", "\n".join([
        "## Curation scan on Ray (`python benchmarks/curation_ray.py`)",
        "",
        f"{args.clips} clips of {args.seconds:g} s, 256x256 at 25 fps with sound, with SyncNet (full size, random",
        f"weights); {what}; one run on this CPU ({machine()}). Local: N processes of one thread;",
        "Ray: N actors of one CPU on a local Ray (same manifest, checked). Clips per minute.",
        "",
        "| workers | local processes | Ray actors | Ray / local |",
        "| ---: | ---: | ---: | ---: |",
        row,
    ]))


if __name__ == "__main__":
    main()
