"""Train a toy MegActor-Σ through the three stages on this CPU and measure the paper's claims.

    python -m megactor_core.toy.reproduce --out benchmarks/toy

Everything is rebuilt from the seed: the toy dataset, the four training runs (stages 1, 2, 3
and stage 2 without modality decoupling), the evaluation on held-out identities and held-out
signals, and ``REPORT.md`` with its plots and sample videos. Finished stages are reused when the
command runs again (delete ``--out`` to start over); an interrupted stage resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..landmarks import amplify_motion, face_drop
from ..models import MegActorConfig, MegActorSigma, load_checkpoint, save_checkpoint
from ..pipeline.sampler import SamplerSettings, sample_video
from ..progress import Progress
from ..training.config import TrainConfig
from ..training.train import train
from . import measure
from .codec import CHANNELS, PixelCodec
from .face import Identity, render
from .signals import Signals
from .world import ToyVideo, audio_features, speech, toy_video, toy_whisper, write_dataset

log = logging.getLogger(__name__)
SIZE = 64
ALPHAS = (0.0, 0.5, 1.0, 2.0)
LAMBDAS = (0.0, 0.5, 1.0, 1.5)


def toy_model_config() -> MegActorConfig:
    """The stage-1 model: 6 PixArt-α blocks of width 128 on 8x8 cells of 64x64 frames (patch 1).

    It predicts the clean latents ("sample"): at width 128 it cannot carry the 192 values of
    each cell's noise through, which an epsilon prediction needs at low noise.
    """
    return MegActorConfig(num_layers=6, hidden_size=128, num_heads=4, patch_size=1, latent_channels=CHANNELS,
                          out_channels=CHANNELS, sample_size=SIZE // 8, driven_channels=16,
                          driven_encoder_channels=(16, 32, 64), use_audio=False, use_temporal=False, audio_dim=32,
                          vae_scaling_factor=1.0, prediction_type="sample")


@dataclass(frozen=True)
class Recipe:
    """Data, training and evaluation sizes; the defaults train in about 40 minutes on 2 CPU cores."""

    identities: int = 24
    videos_per_identity: int = 2
    frames: int = 100
    clip_frames: int = 50
    steps: tuple[int, int, int] = (2600, 1000, 300)
    batch_size: int = 16
    learning_rate: float = 5e-4
    stage3_clip_frames: int = 8
    test_identities: int = 3
    leakage_cases: int = 16
    test_frames: int = 50
    sample_steps: int = 15
    guidance: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.steps) != 3 or min(self.steps) < 1:
            raise ValueError(f"steps must be three positive step counts (stages 1, 2, 3), got {self.steps}")


def train_all(out: Path, recipe: Recipe) -> tuple[dict[str, Path], list[str]]:
    """The dataset and the four trained checkpoints (``stage1``, ``stage2``, ``ablation``, ``stage3``),
    and the names of those an earlier run had already finished (reused, not trained again)."""
    data = out / "data"
    if not (data / "index.json").is_file():
        rng = np.random.default_rng(recipe.seed)
        write_dataset(data, [Identity.random(rng) for _ in range(recipe.identities)],
                      videos_per_identity=recipe.videos_per_identity, frames=recipe.frames,
                      clip_frames=recipe.clip_frames, size=SIZE, whisper=toy_whisper(recipe.seed), seed=recipe.seed)
    init = out / "init.safetensors"
    if not init.is_file():
        torch.manual_seed(recipe.seed)
        save_checkpoint(MegActorSigma(toy_model_config()), init)

    reused = []

    def run(stage: int, start: Path, name: str, steps: int, **changes) -> Path:
        if (out / name / f"megactor_sigma_stage{stage}.safetensors").is_file():
            reused.append(name)
        settings = dict(stage=stage, init=str(start), data=str(data), output_dir=str(out / name), steps=steps,
                        batch_size=recipe.batch_size, learning_rate=recipe.learning_rate, weight_decay=0.0,
                        mixed_precision="no", gradient_checkpointing=False, num_workers=0, log_every=50,
                        checkpoint_every=max(steps // 4, 1), preview_every=0, seed=recipe.seed)
        settings.update(changes)
        return train(TrainConfig.from_dict(settings))

    s1, s2, s3 = recipe.steps
    trained = {"stage1": run(1, init, "stage1", s1)}
    trained["stage2"] = run(2, trained["stage1"], "stage2", s2)
    # Without modality decoupling: mixed samples show the whole face (mouth included) beside the audio.
    trained["ablation"] = run(2, trained["stage1"], "ablation", s2, mix=dict(mixed_keep="both"))
    trained["stage3"] = run(3, trained["stage2"], "stage3", s3, batch_size=max(recipe.batch_size // 4, 1),
                            mix=dict(clip_frames=recipe.stage3_clip_frames))
    return trained, reused


@dataclass
class HeldOutCase:
    """One held-out identity with held-out motion and speech, and the truth to compare with."""

    identity: Identity
    reference: np.ndarray  # uint8 [1, S, S, 3]: frontal, eyes open, mouth closed
    driver: ToyVideo  # another held-out person moving, blinking and speaking
    audio: np.ndarray  # held-out speech, unrelated to the driver's mouth
    audio_mouth: np.ndarray  # the mouth opening that speech implies per frame
    truth: np.ndarray  # the identity following the driver's motion and the speech's mouth


def held_out_cases(recipe: Recipe, count: int | None = None) -> list[HeldOutCase]:
    """The evaluation's cases (``count``: all of them, as many as the leakage study or the modes use)."""
    count = count or max(recipe.test_identities, recipe.leakage_cases)
    rng = np.random.default_rng([recipe.seed, 1000])  # apart from every training draw
    people = [Identity.random(rng) for _ in range(count + 1)]
    cases = []
    n = recipe.test_frames
    for k in range(count):
        rest = Signals(*[np.zeros(1)] * 5, eyes=np.ones(1), mouth=np.zeros(1))
        reference, _ = render(people[k], rest, SIZE)
        driver = toy_video(people[k + 1], n, SIZE, rng)
        audio, mouth = speech(n, rng)
        truth, _ = render(people[k], driver.signals.replace(mouth=mouth), SIZE)
        cases.append(HeldOutCase(people[k], reference, driver, audio, mouth, truth))
    return cases


class Sampler:
    """Runs one checkpoint on test cases with the real sampler and the pixel codec."""

    def __init__(self, checkpoint: Path, recipe: Recipe) -> None:
        self.model = load_checkpoint(checkpoint, dtype=torch.float32).eval()  # a shipped fp16 file runs in fp32
        self.recipe = recipe
        self.whisper = toy_whisper(recipe.seed)

    def __call__(self, case: HeldOutCase, *, keep: str | None = None, audio: bool = False, alpha: float = 1.0,
                 audio_scale: float = 1.0, progress: Progress | None = None) -> np.ndarray:
        """Generated uint8 frames; ``keep`` face-drops the driver to that region (None: no driving video)."""
        driving = None
        if keep is not None:
            frames = case.driver.frames.astype(np.float32) / 255
            landmarks = case.driver.face_landmarks
            if alpha != 1.0:
                frames, landmarks = amplify_motion(frames, landmarks, alpha)
            driving = torch.from_numpy(np.ascontiguousarray(face_drop(frames, landmarks, keep)))
        features = None
        if audio:
            video = ToyVideo(case.identity, case.driver.signals, case.driver.frames, case.driver.landmarks, case.audio)
            features = audio_features(self.whisper, video)
        settings = SamplerSettings(steps=self.recipe.sample_steps, guidance_scale=self.recipe.guidance,
                                   audio_scale=audio_scale, seed=self.recipe.seed)
        latents = sample_video(self.model, PixelCodec(), torch.from_numpy(case.reference).float() / 255, settings,
                               audio=features, driving=driving, frames=len(case.truth), progress=progress)
        return (PixelCodec().decode(latents).numpy() * 255).round().astype(np.uint8)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return measure.correlation(np.asarray(a, float), np.asarray(b, float))


def _mean(values: list[float]) -> float:
    """The mean over cases where the measurement is defined (NaN when it never is)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def follows_driver(frames: np.ndarray, case: HeldOutCase) -> dict[str, float]:
    angles = measure.head_angles(frames)
    return {"eyes": _corr(measure.eye_openness(frames), case.driver.signals.eyes),
            "yaw": _corr(angles["yaw"], case.driver.signals.yaw),
            "x": _corr(measure.head_position(frames)[:, 0], case.driver.signals.shift_x)}


def identity_error(frames: np.ndarray, case: HeldOutCase) -> dict[str, float]:
    """Mean absolute error (0..255) against the truth: over the background that never moves, and overall."""
    still = measure.background(case.truth).all(0) & measure.background(case.reference)[0]
    diff = np.abs(frames.astype(np.float32) - case.truth.astype(np.float32)).mean(-1)
    return {"background_mae": float(diff[:, still].mean()), "frame_mae": float(diff.mean())}


def evaluate(trained: dict[str, Path], recipe: Recipe, out: Path) -> dict:
    """Every measurement of the report, on each held-out case; also the samples' frames for the videos."""
    cases = held_out_cases(recipe)
    final = Sampler(trained["stage3"], recipe)
    rows: dict[str, list[dict[str, float]]] = {}
    samples: dict[str, np.ndarray] = {}

    def add(name: str, values: dict[str, float]) -> None:
        rows.setdefault(name, []).append(values)

    for k, case in enumerate(cases[:recipe.test_identities]):
        log.info("evaluating held-out identity %d of %d", k + 1, recipe.test_identities)
        truth_mouth = measure.mouth_opening(case.truth)
        add("truth", {"mouth~audio": _corr(truth_mouth, case.audio_mouth), **follows_driver(case.truth, case),
                      **identity_error(case.truth, case)})
        audio_only = final(case, audio=True)
        add("audio", {"mouth~audio": _corr(measure.mouth_opening(audio_only), case.audio_mouth),
                      "mouth_std": float(measure.mouth_opening(audio_only).std())})
        visual = final(case, keep="both")
        add("visual", {**follows_driver(visual, case), **identity_error(visual, case)})
        mixed = final(case, keep="eyes", audio=True)
        add("mixed", {"mouth~audio": _corr(measure.mouth_opening(mixed), case.audio_mouth),
                      **follows_driver(mixed, case), **identity_error(mixed, case)})
        for alpha in ALPHAS:
            frames = visual if alpha == 1.0 else final(case, keep="both", alpha=alpha)
            add(f"alpha={alpha:g}", {"motion": measure.motion_amplitude(frames)})
        for lam in LAMBDAS:
            frames = audio_only if lam == 1.0 else final(case, audio=True, audio_scale=lam)
            add(f"lambda={lam:g}", {"mouth_std": float(measure.mouth_opening(frames).std())})
        if k == 0:
            samples.update(truth=case.truth, audio=audio_only, visual=visual, mixed=mixed)
    leakage = leakage_study(trained, recipe, cases[:recipe.leakage_cases])
    for name, values in leakage.items():
        rows[name] = [dict(zip(values, case_values, strict=True)) for case_values in zip(*values.values(), strict=True)]
    means = {name: {key: _mean([r[key] for r in values]) for key in values[0]} for name, values in rows.items()}
    return {"means": means, "cases": recipe.test_identities, "samples": samples, "case0": cases[0],
            "leakage": leakage, "leakage_cases": recipe.leakage_cases}


LEAKAGE_ROWS = [f"{name} keep={keep}" for keep in ("eyes", "both") for name in ("decoupled", "ablation")]


def leakage_study(trained: dict[str, Path], recipe: Recipe, cases: list[HeldOutCase]) -> dict[str, dict[str, list]]:
    """Mixed mode with the driver's mouth saying something else than the speech: per case, how much the
    generated mouth follows the speech and the driver, for the decoupled stage-2 model and the ablation,
    with the driver face-dropped to the eyes (the paper's mixed mode) and to eyes and mouth."""
    models = {"decoupled": Sampler(trained["stage2"], recipe), "ablation": Sampler(trained["ablation"], recipe)}
    study: dict[str, dict[str, list]] = {row: {"mouth~audio": [], "mouth~driver": []} for row in LEAKAGE_ROWS}
    for k, case in enumerate(cases):
        log.info("leakage case %d of %d", k + 1, len(cases))
        for row in LEAKAGE_ROWS:
            name, keep = row.split(" keep=")
            opening = measure.mouth_opening(models[name](case, keep=keep, audio=True))
            study[row]["mouth~audio"].append(_corr(opening, case.audio_mouth))
            study[row]["mouth~driver"].append(_corr(opening, case.driver.signals.mouth))
    return study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/toy", help="folder for the runs and the report")
    parser.add_argument("--recipe", help="JSON of Recipe fields to change, e.g. '{\"steps\": [30, 20, 10]}'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        changes = json.loads(args.recipe) if args.recipe else {}
        if "steps" in changes:
            changes["steps"] = tuple(changes["steps"])
        recipe = dataclasses.replace(Recipe(), **changes)
    except (ValueError, TypeError, AttributeError) as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(Recipe))
        parser.error(f"--recipe must be a JSON object of Recipe fields ({fields}): {exc}")
    out = Path(args.out)
    runs = out / "runs"
    started = time.perf_counter()
    trained, reused = train_all(runs, recipe)
    trained_at = time.perf_counter()
    results = evaluate(trained, recipe, out)
    from .report import write_report

    report = write_report(out, recipe, results, train_seconds=trained_at - started, reused=reused,
                          eval_seconds=time.perf_counter() - trained_at)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
