"""The headless demo: a portrait animated by speech and a driving video, on a CPU, in about a minute.

    python -m megactor_core.demo [--out outputs/demo.mp4]

By default it runs the toy MegActor-Σ that ships with the repository (trained on this project's
toy world by ``python -m megactor_core.toy.reproduce``; see ``benchmarks/toy/REPORT.md``) on
inputs made on the spot from a fixed seed: a held-out toy portrait, another toy person's video
face-dropped to the eyes, and procedural speech. The mp4 shows reference | driving video |
result, with the speech as its sound.

With ``--checkpoint`` of a real model (a DiT checkpoint, or the official release's
``megactor-sigma.ckpt``) the same command runs it through
:mod:`megactor_core.infer`; give that command's options too (``--vae``, ``--reference``,
``--audio`` and ``--whisper`` and/or ``--driving``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .progress import progress_bar

TOY_CHECKPOINT = Path(__file__).resolve().parent / "toy" / "megactor_sigma_toy.safetensors"


def run_toy(checkpoint: Path, out: str, frames: int) -> Path:
    from .toy.evaluate import Sampler, held_out_cases
    from .toy.recipe import Recipe
    from .toy.report import side_by_side
    from .toy.speech import SAMPLE_RATE
    from .toy.world import FPS
    from .video_io import write_video

    recipe = Recipe(test_identities=1, test_frames=frames)
    case = held_out_cases(recipe)[0]
    with progress_bar("denoising", "window") as progress:
        generated = Sampler(checkpoint, recipe)(case, keep="eyes", audio=True, progress=progress)
    panels = side_by_side(case.reference, case.driver.frames, generated, scale=4,
                          labels=("reference", "driving video", "result"))
    return write_video(out, panels, FPS, audio=case.audio[None], sample_rate=SAMPLE_RATE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(TOY_CHECKPOINT), help="default: the bundled toy model")
    parser.add_argument("--out", default="outputs/demo.mp4", help="the mp4 to write (default outputs/demo.mp4)")
    parser.add_argument("--frames", type=int, default=75, help="toy model: frames to render (default 75, 3 s)")
    args, rest = parser.parse_known_args(argv)
    from .models import read_checkpoint
    from .toy.codec import CHANNELS

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        print(f"error: {checkpoint} not found. The toy model ships in megactor_core/toy/; rebuild it with "
              "`python -m megactor_core.toy.reproduce` and copy the megactor_sigma_toy*.safetensors it writes "
              "there, or give --checkpoint of a trained MegActor-Σ", file=sys.stderr)
        return 2
    # A toy model: the reproduction's export (its recipe in the metadata) or any file on the DCT's latents.
    toy = checkpoint.suffix == ".safetensors" and (
        "recipe" in (meta := read_checkpoint(checkpoint, tensors=False))[2] or meta[0].latent_channels == CHANNELS)
    if not toy:  # a real model (a DiT checkpoint or the official release): the full command-line inference
        from .infer import main as infer_main

        return infer_main(["--checkpoint", str(checkpoint), "--out", args.out, *rest])
    if rest:
        parser.error(f"the toy model takes no other inputs: {' '.join(rest)}")
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    print(f"wrote {run_toy(checkpoint, args.out, args.frames)} (reference | driving video | result; the mouth "
          "follows the speech, eyes and head the driving video)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
