"""Measure generated videos against real ones with the field's metrics, into one CSV.

    python -m megactor_core.evaluate GENERATED --real REAL --out metrics.csv --weights WEIGHTS_DIR \\
        [--reference PORTRAIT] [--audio AUDIO] [--metrics sync,fid,lpips] [--device cuda]

GENERATED and REAL are two video files or two folders of videos matched by name. The CSV has one
row per video and a TOTAL row (FID, FVD and E-FID exist only there). Weight files are found in
``--weights DIR`` under their published names or named one by one; a metric whose files are missing
is skipped with a line saying which file enables it, unless it was asked for with ``--metrics``
(then it is an error). Nothing is downloaded. The protocol is in docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import run_command
from ..progress import progress_bar
from .evaluation import evaluate, write_csv
from .inputs import pair_inputs
from .models import METRICS, prepare_models
from .weights import WEIGHT_FILES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m megactor_core.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generated", help="a generated video, or a folder of them")
    p.add_argument("--real", required=True, help="the ground-truth video, or a folder of them with the same names")
    p.add_argument("--out", required=True, help="the CSV to write (e.g. metrics.csv)")
    p.add_argument("--reference", help="the reference portrait for CSIM: an image, or a folder of images named as "
                                       "the videos (default: each real video's first frame)")
    p.add_argument("--audio", help="the audio for Sync-C/Sync-D: a file, or a folder of files named as the videos "
                                   "(default: each generated video's own soundtrack)")
    p.add_argument("--metrics", help=f"comma-separated, from {','.join(METRICS)} (default: every metric whose "
                                     "weight files are found); a chosen metric's missing file is an error")
    p.add_argument("--weights", help="a folder holding the weight files by their published names")
    for weight in WEIGHT_FILES.values():
        if weight.key not in ("yolox", "dwpose"):
            p.add_argument(f"--{weight.key}", help=f"{weight.name}: {weight.source}")
    p.add_argument("--dwpose", nargs=2, metavar=("YOLOX", "POSE"),
                   help="yolox_l.onnx and dw-ll_ucoco_384.onnx (Hugging Face yzd-v/DWPose)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> str:
        given = {w.key: getattr(args, w.key) for w in WEIGHT_FILES.values() if w.key not in ("yolox", "dwpose")}
        given["yolox"], given["dwpose"] = args.dwpose or (None, None)
        requested = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
        cases = pair_inputs(args.generated, args.real, reference=args.reference, audio=args.audio)
        models, skipped = prepare_models(args.weights, given, requested, args.device)
        for line in skipped:
            print(line, file=sys.stderr)
        with progress_bar("evaluating", "video", len(cases)) as progress:
            rows = evaluate(cases, models, progress)
        write_csv(rows, args.out, models.metrics())
        total = rows[-1]
        summary = ", ".join(f"{k} {v:.4g}" for k, v in total.values.items())
        return f"wrote {args.out}: {len(cases)} videos; total: {summary}" + (
            f" ({total.problem})" if total.problem else "")

    return run_command(work, interrupted="interrupted: no CSV written")


if __name__ == "__main__":
    sys.exit(main())
