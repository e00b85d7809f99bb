"""Train a toy MegActor-Σ through the three stages on this CPU and measure the paper's claims.

    python -m megactor_core.toy.reproduce --out benchmarks/toy

Everything is rebuilt from the seed: the latent codec when the recipe learns one, the toy dataset,
the training runs (stages 1, 2, 3, and the leakage study's stage 2 with and without modality
decoupling, both training every weight), the evaluation on held-out identities and held-out signals,
and ``REPORT.md`` with its plots and sample videos, beside the stage-3 model as the demo ships it
(``megactor_sigma_toy.safetensors``, and its ``megactor_sigma_toy.codec.safetensors`` when the codec
is learned: copy them to ``megactor_core/toy/`` to make them the demo's). Finished stages are reused
when the command runs again and an interrupted stage resumes; a stage whose settings the new ``--recipe`` changes
is refused, naming them (delete its folder under ``--out/runs``, or ``--out``, to train it again).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..cli import run_command
from ..demo import TOY_CHECKPOINT
from ..models import MegActorSigma, load_checkpoint, read_checkpoint, save_checkpoint
from ..pipeline.codec import LatentCodec
from ..training.config import MODALITIES, NOT_SET, TrainConfig
from ..training.train import train
from .codec import DctCodec, codec_path, load_conv_codec, save_conv_codec, train_conv_codec
from .evaluate import evaluate
from .face import Identity
from .recipe import SIZE, Recipe
from .report import write_report
from .world import codec_frames, toy_whisper, write_dataset

log = logging.getLogger(__name__)
FACE_SWAP = "megactor_core.toy.swap:face_swap"
# The recipe fields that shape the codec, the dataset and the initial model, which train_all builds once and then
# reuses; the trainer compares each stage's own settings with those its folder was trained with.
BUILT_FROM = ("seed", "codec", "codec_channels", "codec_steps", "codec_identities", "identities",
              "videos_per_identity", "frames", "clip_frames", "width", "heads", "temporal_modulation")


def toy_codec(out: Path, recipe: Recipe) -> LatentCodec:
    """The recipe's codec; a learned one is trained once into ``out/codec.safetensors`` and reused."""
    if recipe.codec == "dct":
        return DctCodec()
    path = out / "codec.safetensors"
    if not path.is_file():
        frames = codec_frames(recipe.codec_identities, recipe.seed, SIZE)
        save_conv_codec(train_conv_codec(frames, recipe.conv_codec, steps=recipe.codec_steps, seed=recipe.seed), path)
    return load_conv_codec(path)


def train_all(out: Path, recipe: Recipe) -> tuple[dict[str, Path], LatentCodec, list[str]]:
    """The codec, the dataset and the trained checkpoints (``stage1``, ``stage2``, ``stage3``, and the leakage
    study's stage-2 pair ``decoupled``, the same file as ``stage2`` when that trains every weight, and
    ``ablation``), and the names of the runs an earlier invocation had already finished (reused, not trained
    again)."""
    _check_built_from(out, recipe)
    codec = toy_codec(out, recipe)
    data = out / "data"
    if not (data / "index.json").is_file():
        rng = np.random.default_rng(recipe.seed)
        write_dataset(data, [Identity.random(rng) for _ in range(recipe.identities)],
                      videos_per_identity=recipe.videos_per_identity, frames=recipe.frames,
                      clip_frames=recipe.clip_frames, size=SIZE, whisper=toy_whisper(recipe.seed), seed=recipe.seed,
                      codec=codec)
    init = out / "init.safetensors"
    if not init.is_file():
        torch.manual_seed(recipe.seed)
        save_checkpoint(MegActorSigma(recipe.model_config()), init)

    reused = []

    def run(stage: int, start: Path, name: str, steps: int, **changes) -> Path:
        if (out / name / f"megactor_sigma_stage{stage}.safetensors").is_file():
            reused.append(name)
        settings = dict(stage=stage, init=str(start), data=str(data), output_dir=str(out / name), steps=steps,
                        batch_size=recipe.batch_size, learning_rate=recipe.learning_rate, weight_decay=0.0,
                        lr_schedule=recipe.lr_schedule, warmup_steps=recipe.warmup_steps, snr_gamma=recipe.snr_gamma,
                        mixed_precision="no", gradient_checkpointing=False, num_workers=0, log_every=50,
                        checkpoint_every=max(steps // 4, 1), preview_every=0, seed=recipe.seed,
                        ema_decay=1 - 5 / max(steps, 10),  # exports the average over about the last fifth of the run
                        augment=dict(face_swap=FACE_SWAP if recipe.face_swap else None,
                                     face_swap_probability=recipe.face_swap))
        settings.update(changes)
        return train(TrainConfig.from_dict(settings))

    s1, s2, s3 = recipe.steps
    mix = dict(zip(MODALITIES, recipe.mix, strict=True))
    k1, k2 = recipe.samples_per_reference  # stages 1 and 2, one target frame each
    trained = {"stage1": run(1, init, "stage1", s1, samples_per_reference=k1)}
    trained["stage2"] = run(2, trained["stage1"], "stage2", s2, mix=mix, train_only=recipe.stage2_train_only,
                            samples_per_reference=k2)
    # The leakage study's pair trains every weight, as the paper's stage 2 does; without modality decoupling
    # the mixed samples show the whole face (mouth included) beside the audio.
    trained["decoupled"] = (run(2, trained["stage1"], "decoupled", s2, mix=mix, samples_per_reference=k2)
                            if recipe.stage2_train_only else trained["stage2"])
    trained["ablation"] = run(2, trained["stage1"], "ablation", s2, mix=dict(mix, mixed_keep="both"),
                              samples_per_reference=k2)
    trained["stage3"] = run(3, trained["stage2"], "stage3", s3, batch_size=max(recipe.batch_size // 4, 1),
                            learning_rate=recipe.stage3_learning_rate,
                            mix=dict(mix, clip_frames=recipe.stage3_clip_frames))
    return trained, codec, reused


def _check_built_from(out: Path, recipe: Recipe) -> None:
    """Record the recipe ``out`` is built from (``recipe.json``) or refuse one that would reuse another's codec,
    dataset or initial model, naming the fields."""
    recorded = out / "recipe.json"
    now = dataclasses.asdict(recipe)
    if recorded.is_file():
        then = json.loads(recorded.read_text())
        changed = "; ".join(f"{name}: {then.get(name, NOT_SET)!r} -> {now[name]!r}" for name in BUILT_FROM
                            if then.get(name, NOT_SET) != now[name])
        if changed:
            raise ValueError(f"{out} holds the codec, dataset and initial model of another recipe ({changed}); "
                             "use another --out, or delete it to start over")
    else:
        with atomic_write(recorded) as tmp:
            Path(tmp).write_text(json.dumps(now, indent=2))


def export_model(stage3: Path, recipe: Recipe, codec: LatentCodec, path: Path) -> Path:
    """The stage-3 model in the demo's form: fp16 (half the size) with the recipe that trained it in
    its metadata, so the bundled file says which run it comes from and which codec it needs (a learned
    one is written beside it, :func:`codec_path`)."""
    _, _, metadata = read_checkpoint(stage3, tensors=False)
    if recipe.codec == "conv":
        save_conv_codec(codec, codec_path(path))
    return save_checkpoint(load_checkpoint(stage3), path, dtype=torch.float16,
                           metadata={**metadata, "recipe": json.dumps(dataclasses.asdict(recipe))})


def reproduce(out: Path, recipe: Recipe) -> str:
    """Train what ``out`` does not hold yet, evaluate, and write the report and the demo's model."""
    runs = out / "runs"
    started = time.perf_counter()
    trained, codec, reused = train_all(runs, recipe)
    trained_at = time.perf_counter()
    # Training time summed over the invocations that trained, so a rerun reusing the runs still reports it
    # (one that only found all its runs finished adds nothing).
    timing = runs / "train_seconds.json"
    train_seconds = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
    if len(reused) < len(set(trained.values())):
        train_seconds += trained_at - started
        timing.write_text(json.dumps({"seconds": train_seconds}))
    results = evaluate(trained, recipe, codec)
    report = write_report(out, recipe, results, train_seconds=train_seconds, reused=reused,
                          eval_seconds=time.perf_counter() - trained_at)
    model = export_model(trained["stage3"], recipe, codec, out / TOY_CHECKPOINT.name)
    return f"wrote {report} and {model}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/toy", help="folder for the runs and the report")
    parser.add_argument("--recipe", help="JSON of Recipe fields to change, "
                        "e.g. '{\"steps\": [30, 20, 10], \"warmup_steps\": 5}'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        changes = json.loads(args.recipe) if args.recipe else {}
        changes = {name: tuple(value) if isinstance(value, list) else value for name, value in changes.items()}
        recipe = dataclasses.replace(Recipe(), **changes)
    except (ValueError, TypeError, AttributeError) as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(Recipe))
        parser.error(f"--recipe must be a JSON object of Recipe fields ({fields}): {exc}")
    return run_command(lambda: reproduce(Path(args.out), recipe))


if __name__ == "__main__":
    sys.exit(main())
