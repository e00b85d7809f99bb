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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import ray

    from benchmarks.curation import add_clip_arguments, clips_per_minute, prepare
    from benchmarks.results import machine, write_section
    from megactor_core.curation import ModelFiles
    from megactor_core.ray_pool import RayCluster

    parser = argparse.ArgumentParser(description=__doc__)
    add_clip_arguments(parser)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips, dwpose, syncnet, what = prepare(tmp, args)
        models = ModelFiles(*dwpose, syncnet=syncnet)
        local = clips_per_minute(clips, tmp / "local.csv", models, args.workers)
        ray.init(num_cpus=args.workers, include_dashboard=False)
        on_ray = clips_per_minute(clips, tmp / "ray.csv", models, 0, RayCluster(workers=args.workers))
        ray.shutdown()
        if (tmp / "local.csv").read_bytes() != (tmp / "ray.csv").read_bytes():
            raise RuntimeError("the Ray scan's manifest differs from the local one")
    row = f"| {args.workers} | {local:.1f} | {on_ray:.1f} | {on_ray / local:.2f} |"
    print(row)
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
