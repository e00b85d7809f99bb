"""Curate talking-head clips as the paper does (Table 2): measure, summarise, select.

    python -m megactor_core.curation scan CLIPS_FOLDER --out manifest.parquet \\
        --dwpose yolox_l.onnx dw-ll_ucoco_384.onnx --syncnet syncnet_v2.model [--workers 4] [--ray [ADDRESS]]
    python -m megactor_core.curation select manifest.parquet --out kept.txt [--min-face 600 ...]

``scan`` measures every video under the folder (face size, head angle, SyncNet Sync-C/Sync-D,
duration, fps, resolution) into a CSV or Parquet manifest and prints a summary per source folder
(the folder's first level). Rerunning it resumes: measured clips are not measured again.
With ``--ray`` the clips are measured on a Ray cluster (``pip install "ray[data]"``); the
manifest, journal and resume are the same.
``select`` writes the clips that pass the thresholds (the paper's by default), one path per line,
for ``python -m megactor_core.training.preprocess kept.txt ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..cli import run_command
from ..progress import progress_bar
from ..ray_pool import add_ray_arguments, ray_cluster
from .manifest import read_manifest
from .metrics import Thresholds
from .scanner import ModelFiles, scan, select, summary_table


def _add_thresholds(p: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    p.add_argument("--min-face", type=float, default=defaults.min_face, help="smallest face box side, px (600)")
    p.add_argument("--min-sync-c", type=float, default=defaults.min_sync_c, help="SyncNet confidence above (6)")
    p.add_argument("--max-sync-d", type=float, default=defaults.max_sync_d, help="SyncNet distance below (8.5)")
    p.add_argument("--max-angle", type=float, default=defaults.max_angle, help="mean head rotation below, ° (30)")


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(args.min_face, args.min_sync_c, args.max_sync_d, args.max_angle)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m megactor_core.curation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="command", required=True)
    s = commands.add_parser("scan", help="measure every clip under a folder into a manifest")
    s.add_argument("folder", help="folder of clips (searched recursively); its subfolders are the sources")
    s.add_argument("--out", required=True, help="manifest.parquet or manifest.csv (a rerun resumes it)")
    s.add_argument("--dwpose", nargs=2, required=True, metavar=("YOLOX", "POSE"),
                   help="yolox_l.onnx and dw-ll_ucoco_384.onnx (Hugging Face yzd-v/DWPose)")
    s.add_argument("--syncnet", help="syncnet_v2.model (the public syncnet_python release); without it no "
                                     "Sync-C/Sync-D is measured and no clip passes the lip-sync thresholds")
    s.add_argument("--workers", type=int, default=0, help="processes measuring in parallel (default 0: this one); "
                                                          "with --ray, Ray workers (default: one per CPU or GPU)")
    s.add_argument("--device", default="cpu", help="cpu or cuda (DWPose and SyncNet); Ray workers use cuda when "
                                                   "they get a GPU, else cpu")
    add_ray_arguments(s)
    _add_thresholds(s)
    c = commands.add_parser("select", help="write the clips a manifest's metrics keep")
    c.add_argument("manifest", help="manifest written by scan")
    c.add_argument("--out", required=True, help="the list of kept clips, one path per line (e.g. kept.txt)")
    _add_thresholds(c)
    args = p.parse_args(argv)
    if args.command == "scan":
        args.ray = ray_cluster(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    thresholds = _thresholds(args)

    def work() -> str:
        if args.command == "scan":
            models = ModelFiles(*args.dwpose, syncnet=args.syncnet, device=args.device)
            models.check()
            with progress_bar("scanning", "clip") as progress:
                records = scan(args.folder, args.out, models, workers=0 if args.ray else args.workers,
                               progress=progress, ray=args.ray)
            done = f"wrote {args.out}"
        else:
            records = read_manifest(args.manifest)
            kept = select(records, thresholds, args.out)
            done = f"kept {len(kept)} of {len(records)} clips: wrote {args.out}"
        return f"{done}\n{summary_table(records, thresholds)}"

    return run_command(work, interrupted="interrupted; the manifest keeps the clips scanned so far and the same "
                                         "command resumes")


if __name__ == "__main__":
    sys.exit(main())
