"""Evaluation of the toy reproduction: held-out identities, motion and speech, measured on the pixels."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..landmarks import MouthAttention, amplify_motion, face_drop
from ..models import load_checkpoint
from ..pipeline.codec import LatentCodec
from ..pipeline.sampler import sample_video
from ..progress import Progress
from . import measure
from .codec import model_codec
from .face import Identity, render
from .recipe import SIZE, Recipe
from .signals import Signals
from .world import ToyVideo, audio_features, speech, toy_video, toy_whisper

log = logging.getLogger(__name__)
ALPHAS = (0.0, 0.5, 1.0, 2.0)
LAMBDAS = (0.0, 0.5, 1.0, 1.5)


@dataclass
class HeldOutCase:
    """One held-out identity with held-out motion and speech, and the truth to compare with."""

    identity: Identity
    reference: np.ndarray  # uint8 [1, S, S, 3]: frontal, eyes open, mouth closed
    driver: ToyVideo  # another held-out person moving, blinking and speaking
    audio: np.ndarray  # held-out speech, unrelated to the driver's mouth
    audio_mouth: np.ndarray  # the mouth opening that speech implies per frame
    truth: np.ndarray  # the identity following the driver's motion and the speech's mouth (audio, mixed)
    visual_truth: np.ndarray  # the identity following all the driver's signals, its mouth too (visual mode)

    def standing_still(self) -> HeldOutCase:
        """This case with the identity itself as the driver, frontal and still, eyes open, mouth shut:
        its truth is the reference in every frame, so the error measures the appearance alone."""
        rest = Signals.rest(len(self.truth))
        frames, landmarks = render(self.identity, rest, SIZE)
        driver = ToyVideo(self.identity, rest, frames, landmarks, self.driver.audio)
        return replace(self, driver=driver, truth=frames, visual_truth=frames)


def held_out_cases(recipe: Recipe, count: int | None = None) -> list[HeldOutCase]:
    """The evaluation's cases (``count``: all of them, as many as the leakage study or the modes use)."""
    count = count or max(recipe.test_identities, recipe.leakage_cases)
    rng = np.random.default_rng([recipe.seed, 1000])  # apart from every training draw
    people = [Identity.random(rng) for _ in range(count + 1)]
    cases = []
    n = recipe.test_frames
    for k in range(count):
        reference, _ = render(people[k], Signals.rest(1), SIZE)
        driver = toy_video(people[k + 1], n, SIZE, rng)
        audio, mouth = speech(n, rng)
        truth, _ = render(people[k], driver.signals.replace(mouth=mouth), SIZE)
        visual_truth, _ = render(people[k], driver.signals, SIZE)
        cases.append(HeldOutCase(people[k], reference, driver, audio, mouth, truth, visual_truth))
    return cases


class Sampler:
    """Runs one checkpoint on test cases with the real sampler and the codec it was trained with."""

    def __init__(self, checkpoint: Path, recipe: Recipe, sample_seed: int | None = None,
                 codec: LatentCodec | None = None) -> None:
        """``sample_seed``: the sampler's noise (default the recipe's seed); the audio features always come
        from the recipe seed's Whisper, the one the model was trained with. ``codec``: unless given, the one
        the file's metadata names (:func:`model_codec`; a trainer's checkpoint names none: the block DCT)."""
        self.model = load_checkpoint(checkpoint, dtype=torch.float32).eval()  # a shipped fp16 file runs in fp32
        self.recipe = recipe
        self.sample_seed = recipe.seed if sample_seed is None else sample_seed
        self.whisper = toy_whisper(recipe.seed)
        self.codec = codec or model_codec(checkpoint)
        channels = self.codec.encode(torch.zeros(1, SIZE, SIZE, 3)).shape[1]
        if channels != self.model.config.latent_channels:
            raise ValueError(f"the codec gives {channels} latent channels but the model {checkpoint} takes "
                             f"{self.model.config.latent_channels}: sample it with the codec it was trained with")

    def __call__(self, case: HeldOutCase, *, keep: str | None = None, audio: bool = False, alpha: float = 1.0,
                 audio_scale: float = 1.0, progress: Progress | None = None) -> np.ndarray:
        """Generated uint8 frames; ``keep`` face-drops the driver to that region (None: no driving video)."""
        driving = mouth = None
        if keep is not None:
            frames = case.driver.frames.astype(np.float32) / 255
            landmarks = case.driver.face_landmarks
            if alpha != 1.0:
                frames, landmarks = amplify_motion(frames, landmarks, alpha)
            driving = torch.from_numpy(np.ascontiguousarray(face_drop(frames, landmarks, keep)))
            mouth = MouthAttention.for_face_drop(landmarks, keep)
        features = None
        if audio:
            video = ToyVideo(case.identity, case.driver.signals, case.driver.frames, case.driver.landmarks, case.audio)
            features = audio_features(self.whisper, video)
        settings = self.recipe.sampler_settings(audio_scale, self.sample_seed)
        latents = sample_video(self.model, self.codec, torch.from_numpy(case.reference).float() / 255, settings,
                               audio=features, driving=driving, mouth_attention=mouth, frames=len(case.truth),
                               progress=progress)
        return self._frames(latents)

    def round_trip(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames through the codec and back: the closest to them any model's output can be."""
        return self._frames(self.codec.encode(torch.from_numpy(frames).float() / 255))

    def _frames(self, latents: torch.Tensor) -> np.ndarray:
        return (self.codec.decode(latents).numpy() * 255).round().astype(np.uint8)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return measure.correlation(np.asarray(a, float), np.asarray(b, float))


def follows_driver(frames: np.ndarray, case: HeldOutCase) -> dict[str, float]:
    angles = measure.head_angles(frames)
    return {"eyes": _corr(measure.eye_openness(frames), case.driver.signals.eyes),
            "yaw": _corr(angles["yaw"], case.driver.signals.yaw),
            "x": _corr(measure.head_position(frames)[:, 0], case.driver.signals.shift_x)}


def identity_error(frames: np.ndarray, truth: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean absolute error (0..255) against ``truth``: over the background that never moves, and overall."""
    still = measure.background(truth).all(0) & measure.background(reference)[0]
    diff = np.abs(frames.astype(np.float32) - truth.astype(np.float32)).mean(-1)
    return {"background_mae": float(diff[:, still].mean()), "frame_mae": float(diff.mean())}


def mean_rows(rows: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each row's measurements averaged over the cases where they are defined."""
    return {name: {key: measure.finite_mean([case[key] for case in cases]) for key in cases[0]}
            for name, cases in rows.items()}


def evaluate(trained: dict[str, Path], recipe: Recipe, codec: LatentCodec) -> dict:
    """Every measurement of the report, on each held-out case; also the samples' frames for the videos."""
    cases = held_out_cases(recipe)
    final = Sampler(trained["stage3"], recipe, codec=codec)
    rows: dict[str, list[dict[str, float]]] = {}
    samples: dict[str, np.ndarray] = {}

    def add(name: str, values: dict[str, float]) -> None:
        rows.setdefault(name, []).append(values)

    for k, case in enumerate(cases[:recipe.test_identities]):
        log.info("evaluating held-out identity %d of %d", k + 1, recipe.test_identities)
        truth_mouth = measure.mouth_opening(case.truth)
        add("truth", {"mouth~audio": _corr(truth_mouth, case.audio_mouth), "mouth_std": float(truth_mouth.std()),
                      **follows_driver(case.truth, case), **identity_error(case.truth, case.truth, case.reference)})
        through_codec = final.round_trip(case.visual_truth)
        add("codec", identity_error(through_codec, case.visual_truth, case.reference))
        audio_only = final(case, audio=True)
        add("audio", {"mouth~audio": _corr(measure.mouth_opening(audio_only), case.audio_mouth),
                      "mouth_std": float(measure.mouth_opening(audio_only).std())})
        visual = final(case, keep="both")
        add("visual", {**follows_driver(visual, case), **identity_error(visual, case.visual_truth, case.reference)})
        still = case.standing_still()
        add("still", identity_error(final(still, keep="both"), still.visual_truth, case.reference))
        mixed = final(case, keep="eyes", audio=True)
        add("mixed", {"mouth~audio": _corr(measure.mouth_opening(mixed), case.audio_mouth),
                      **follows_driver(mixed, case), **identity_error(mixed, case.truth, case.reference)})
        for alpha in ALPHAS:
            frames = visual if alpha == 1.0 else final(case, keep="both", alpha=alpha)
            add(f"alpha={alpha:g}", {"motion": measure.motion_amplitude(frames),
                                     "gain": measure.motion_gain(frames, case.visual_truth)})
        for lam in LAMBDAS:
            frames = audio_only if lam == 1.0 else final(case, audio=True, audio_scale=lam)
            add(f"lambda={lam:g}", {"mouth_std": float(measure.mouth_opening(frames).std())})
        if k == 0:
            samples.update(truth=case.truth, audio=audio_only, visual=visual, mixed=mixed)
    leakage = leakage_study(trained, recipe, cases[:recipe.leakage_cases], codec)
    for name, values in leakage.items():
        rows[name] = [dict(zip(values, case_values, strict=True)) for case_values in zip(*values.values(), strict=True)]
    return {"rows": rows, "means": mean_rows(rows), "cases": recipe.test_identities, "samples": samples,
            "case0": cases[0], "leakage": leakage, "leakage_cases": recipe.leakage_cases}


LEAKAGE_ROWS = [f"{name} keep={keep}" for keep in ("eyes", "both") for name in ("decoupled", "ablation")]


def leakage_study(trained: dict[str, Path], recipe: Recipe, cases: list[HeldOutCase], codec: LatentCodec
                  ) -> dict[str, dict[str, list]]:
    """Mixed mode with the driver's mouth saying something else than the speech: per case, how much the
    generated mouth follows the speech and the driver, for the decoupled stage-2 model and the ablation,
    with the driver face-dropped to the eyes (the paper's mixed mode) and to eyes and mouth."""
    models = {name: Sampler(trained[name], recipe, codec=codec) for name in ("decoupled", "ablation")}
    study: dict[str, dict[str, list]] = {row: {"mouth~audio": [], "mouth~driver": []} for row in LEAKAGE_ROWS}
    for k, case in enumerate(cases):
        log.info("leakage case %d of %d", k + 1, len(cases))
        for row in LEAKAGE_ROWS:
            name, keep = row.split(" keep=")
            opening = measure.mouth_opening(models[name](case, keep=keep, audio=True))
            study[row]["mouth~audio"].append(_corr(opening, case.audio_mouth))
            study[row]["mouth~driver"].append(_corr(opening, case.driver.signals.mouth))
    return study
