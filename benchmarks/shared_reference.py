"""Training-step time with ``samples_per_reference`` = 1, 2, 4: the toy recipe's stage 1 and stage 2.

    python -m benchmarks.shared_reference [--steps 60 --repeats 2]

Runs the real trainer (data loading with face swap, forward, backward, Adam, EMA) on a small toy
dataset and the toy recipe's model (random weights, an untrained codec of the recipe's channels:
neither changes the arithmetic), each setting side by side in one process and interleaved, and
reports each one's median step time over the logged windows after the first, as a ratio to
``samples_per_reference`` = 1 (the absolute CPU time is printed, not recorded). Writes its section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = (1, 2, 4)


def main() -> None:
    from benchmarks.results import machine, write_section
    from megactor_core.models import MegActorSigma, save_checkpoint
    from megactor_core.toy.codec import ConvCodec
    from megactor_core.toy.face import Identity
    from megactor_core.toy.recipe import SIZE, Recipe
    from megactor_core.toy.reproduce import FACE_SWAP
    from megactor_core.toy.world import toy_whisper, write_dataset
    from megactor_core.training.config import MODALITIES, TrainConfig
    from megactor_core.training.train import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60, help="steps per timed run (logged every 10)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per setting and stage")
    args = parser.parse_args()
    recipe = Recipe()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        data = write_dataset(folder / "data", [Identity.random(rng) for _ in range(4)], videos_per_identity=1,
                             frames=recipe.frames, clip_frames=recipe.clip_frames, size=SIZE,
                             whisper=toy_whisper(0), seed=0, codec=ConvCodec(recipe.conv_codec).eval())
        init = save_checkpoint(MegActorSigma(recipe.model_config()), folder / "init.safetensors")
        times: dict[tuple[int, int], list[float]] = {}
        for repeat in range(args.repeats):
            for stage in (1, 2):
                for shared in SETTINGS:
                    out = folder / f"stage{stage}-{shared}-{repeat}"
                    config = TrainConfig.from_dict(dict(
                        stage=stage, init=str(init), data=str(data), output_dir=str(out), steps=args.steps,
                        batch_size=recipe.batch_size, samples_per_reference=shared, learning_rate=1e-4,
                        mixed_precision="no", gradient_checkpointing=False, num_workers=0, log_every=10,
                        checkpoint_every=args.steps, preview_every=0, ema_decay=0.99,
                        mix=dict(zip(MODALITIES, recipe.mix, strict=True)),
                        augment=dict(face_swap=FACE_SWAP, face_swap_probability=recipe.face_swap)))
                    train(config)
                    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
                    times.setdefault((stage, shared), []).extend(r["seconds"] / 10 for r in logged[1:])
    step = {key: statistics.median(values) for key, values in times.items()}
    rows = [f"| {stage} | {shared} | {step[stage, shared] / step[stage, 1]:.2f} |"
            for stage in (1, 2) for shared in SETTINGS]
    for (stage, shared), seconds in step.items():
        print(f"stage {stage}, samples_per_reference {shared}: {seconds * 1000:.0f} ms per step")
    write_section("shared_reference", f"""
## Shared references in training (`python -m benchmarks.shared_reference`)

{machine()}.

The toy recipe's model (width {recipe.width}, 6 blocks, 8x8 latent tokens per frame) and batch
({recipe.batch_size} samples of one target frame each), the real trainer with face swap on half the
samples; median step time over {args.repeats} interleaved runs of {args.steps} steps per setting, as a
ratio to every sample encoding its own reference.

| stage | samples_per_reference | step time (ratio) |
| ---: | ---: | ---: |
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
