"""``REPORT.md`` of the toy reproduction: the measurements as tables, plots and sample videos."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write
from ..machine import describe
from ..video_io import write_video
from . import measure
from .evaluate import ALPHAS, LAMBDAS, LEAKAGE_ROWS, HeldOutCase, mean_rows
from .plots import line_plot
from .recipe import Recipe
from .speech import SAMPLE_RATE
from .world import FPS


def _fmt(value: float) -> str:
    """Two decimals, or two significant digits for small values (a mouth's motion is about 0.003)."""
    return "–" if not np.isfinite(value) else f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.2g}"


def _met(value: float, goal: float, at_least: bool) -> bool:
    return value >= goal if at_least else value <= goal


def _fmt_against(value: float, goal: float, at_least: bool) -> str:
    """``_fmt``, with as many more decimals as keep the value on its side of its goal (0.4996 is not 0.50)."""
    text, digits = _fmt(value), 2
    while (np.isfinite(value) and abs(value) >= 0.1 and digits < 6
           and _met(float(text), goal, at_least) != _met(value, goal, at_least)):
        digits += 1
        text = f"{value:.{digits}f}"
    return text


def _codec_text(recipe: Recipe) -> str:
    if recipe.codec == "dct":
        return ("a fixed block DCT (each 8x8 RGB block -> the 32 lowest frequencies of its brightness and 8 of "
                "each opponent colour, 48 channels)")
    return (f"a small convolutional autoencoder ({recipe.codec_channels} channels per 8x8 cell) trained for "
            f"{recipe.codec_steps} steps on {recipe.codec_identities} other toy faces")


def _table(means: dict[str, dict[str, float]], rows: list[str], columns: list[str]) -> list[str]:
    lines = ["| | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for row in rows:
        values = means.get(row, {})
        lines.append(f"| {row} | " + " | ".join(_fmt(values.get(c, float("nan"))) for c in columns) + " |")
    return lines


def side_by_side(*videos: np.ndarray, scale: int = 2, labels: tuple[str, ...] = ()) -> np.ndarray:
    """Frames of the videos next to each other (a single image is held for the whole video), enlarged
    ``scale`` times (nearest, so 64 px stays visible), with a caption bar over each panel if ``labels``."""
    n = min((len(v) for v in videos if len(v) > 1), default=1)
    panels = [np.repeat(v, n, 0) if len(v) == 1 else v[:n] for v in videos]
    panels = [np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for f in v])
              for v in panels]
    if labels:
        if len(labels) != len(videos):
            raise ValueError(f"side_by_side: {len(videos)} videos but {len(labels)} labels")
        panels = [np.concatenate([_caption(label, v.shape[2], n), v], axis=1)
                  for label, v in zip(labels, panels, strict=True)]
    return np.concatenate(panels, axis=2)


def _caption(text: str, width: int, frames: int) -> np.ndarray:
    """``[frames, 24, width, 3]``: white text on black."""
    bar = np.zeros((24, width, 3), np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.repeat(bar[None], frames, 0)


def _plots(out: Path, results: dict) -> list[str]:
    case: HeldOutCase = results["case0"]
    samples, means = results["samples"], results["means"]
    t = np.arange(len(case.truth)) / FPS
    line_plot(out / "audio_mouth.png", {
        "speech loudness": (t, case.audio_mouth),
        "generated mouth (audio mode)": (t, _normalised(measure.mouth_opening(samples["audio"]))),
        "generated mouth (mixed mode)": (t, _normalised(measure.mouth_opening(samples["mixed"])))},
        title="Mouth opening follows the speech (held-out identity and speech)", x_label="seconds",
        y_label="opening (normalised)")
    angles = measure.head_angles(samples["visual"])
    line_plot(out / "visual_pose.png", {
        "driver yaw (deg / 25)": (t, case.driver.signals.yaw / 25),
        "generated yaw proxy (scaled)": (t, _normalised(angles["yaw"], signed=True)),
        "driver eyes": (t, case.driver.signals.eyes),
        "generated eyes": (t, measure.eye_openness(samples["visual"]))},
        title="Visual mode: head turn and blinks follow the driving video", x_label="seconds", y_label="")
    alphas = np.array(ALPHAS)
    line_plot(out / "alpha.png", {"generated head motion": (alphas, np.array(alpha_gains(means))),
                                  "ideal (gain = alpha)": (alphas, alphas)},
              title="Head motion vs alpha", x_label="alpha", y_label="gain on the driver's head motion")
    line_plot(out / "lambda.png", {"mouth motion": (np.array(LAMBDAS), np.array(
        [means[f"lambda={v:g}"]["mouth_std"] for v in LAMBDAS]))},
        title="Mouth-motion amplitude vs lambda (audio mode)", x_label="lambda", y_label="std of mouth opening")
    return ["audio_mouth.png", "visual_pose.png", "alpha.png", "lambda.png"]


def _normalised(values: np.ndarray, signed: bool = False) -> np.ndarray:
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    scale = (np.abs(finite) if signed else finite).max() if finite.size else 0.0
    return values / scale if scale > 0 else values


def _videos(out: Path, results: dict) -> list[str]:
    case: HeldOutCase = results["case0"]
    samples = results["samples"]
    reference = case.reference
    audio = case.audio[None]
    names = []
    for mode in ("audio", "visual", "mixed"):
        panels = [reference, samples[mode]] if mode == "audio" else [reference, case.driver.frames, samples[mode]]
        name = f"sample_{mode}.mp4"
        write_video(out / name, side_by_side(*panels), FPS, audio=None if mode == "visual" else audio,
                    sample_rate=None if mode == "visual" else SAMPLE_RATE)
        names.append(name)
    return names


def findings(means: dict[str, dict[str, float]], leakage: dict[str, dict[str, list]]) -> list[str]:
    """One sentence per claim, its verdict read off the numbers (so a rerun states its own result)."""
    def m(row: str, key: str) -> float:
        return means.get(row, {}).get(key, float("nan"))

    def verdict(holds: bool) -> str:
        return "holds" if holds else "does not hold"

    motion = [m(f"alpha={a:g}", "motion") for a in ALPHAS]
    gain = [m(f"alpha={a:g}", "gain") for a in ALPHAS]
    mouth = [m(f"lambda={v:g}", "mouth_std") for v in LAMBDAS]
    return [
        f"- **Audio drives the mouth** (audio mode): correlation {_fmt(m('audio', 'mouth~audio'))} "
        f"(ground truth {_fmt(m('truth', 'mouth~audio'))}); in mixed mode {_fmt(m('mixed', 'mouth~audio'))}.",
        f"- **Visual control** (visual mode): eyes {_fmt(m('visual', 'eyes'))}, yaw {_fmt(m('visual', 'yaw'))}, "
        f"horizontal position {_fmt(m('visual', 'x'))} (ground truth {_fmt(m('truth', 'eyes'))}, "
        f"{_fmt(m('truth', 'yaw'))}, {_fmt(m('truth', 'x'))}).",
        leakage_finding(leakage),
        f"- **Identity**: background error {_fmt(m('visual', 'background_mae'))} / 255 in visual mode, whole "
        f"frame {_fmt(m('visual', 'frame_mae'))} / 255 against the ground truth (the codec alone: "
        f"{_fmt(m('codec', 'background_mae'))} and {_fmt(m('codec', 'frame_mae'))}; the identity driven by "
        f"itself standing still: {_fmt(m('still', 'frame_mae'))}).",
        f"- **α scales head motion** (claim: motion grows with α): gain on the driver's head motion "
        f"{', '.join(_fmt(v) for v in gain)} for α = {', '.join(f'{a:g}' for a in ALPHAS)} (ideal: equal to α): "
        f"the claim {verdict(bool(np.all(np.diff(gain) > 0)))}. The RMS motion ({', '.join(_fmt(v) for v in motion)}) "
        "also counts the frame-to-frame jitter that follows no driver, all there is at α = 0.",
        f"- **λ scales mouth motion** (claim: it grows with λ): std of mouth opening "
        f"{', '.join(_fmt(v) for v in mouth)} for λ = "
        f"{', '.join(f'{v:g}' for v in LAMBDAS)} (ground truth {_fmt(m('truth', 'mouth_std'))}): the claim "
        f"{verdict(bool(np.all(np.diff(mouth) > 0)))}.",
    ]


def alpha_gains(means: dict[str, dict[str, float]]) -> list[float]:
    """The gain of the head's motion on the driver's at each α of ``ALPHAS`` (ideal: α)."""
    return [means[f"alpha={a:g}"]["gain"] for a in ALPHAS]


def lambda_ratio(means: dict[str, dict[str, float]]) -> float:
    """The mouth's motion at λ = 1 over that at λ = 0 (audio mode)."""
    return means["lambda=1"]["mouth_std"] / max(means["lambda=0"]["mouth_std"], 1e-9)


# (what, row, column, goal, at least): the targets of a toy model that visibly works.
TARGETS = [("frame MAE / 255, visual mode", "visual", "frame_mae", 6.0, False),
           ("eyes ~ driver, visual mode", "visual", "eyes", 0.5, True),
           ("yaw ~ driver, visual mode", "visual", "yaw", 0.5, True),
           ("horizontal position ~ driver, visual mode", "visual", "x", 0.7, True),
           ("mouth ~ audio, audio mode", "audio", "mouth~audio", 0.7, True),
           ("mouth ~ audio, mixed mode", "mixed", "mouth~audio", 0.7, True)]


def targets_table(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    """Each target beside its measurement (the mean over the cases, ``rows``: per row of the report, one dict
    per held-out case), its 95 % bootstrap interval over the cases, and whether the mean meets it."""
    means = mean_rows(rows)

    def per_case(row: str, column: str) -> list[float]:
        return [case.get(column, float("nan")) for case in rows.get(row, [])]

    lines = ["| target | goal | measured | 95 % interval | met |", "| --- | ---: | ---: | ---: | --- |"]
    targets = [(what, f"{'≥' if at_least else '≤'} {goal:g}", means.get(row, {}).get(column, float("nan")),
                measure.bootstrap_interval(per_case(row, column)), goal, at_least)
               for what, row, column, goal, at_least in TARGETS]
    targets.append(("mouth motion, λ = 1 over λ = 0", "≥ 5", lambda_ratio(means),
                    measure.bootstrap_interval(per_case("lambda=1", "mouth_std"),
                                               denominators=per_case("lambda=0", "mouth_std")), 5.0, True))
    for what, goal_text, value, (low, high), goal, at_least in targets:
        met = "yes" if _met(value, goal, at_least) else "no"
        interval = "–" if not np.isfinite(low) else f"[{_fmt(low)}, {_fmt(high)}]"
        lines.append(f"| {what} | {goal_text} | {_fmt_against(value, goal, at_least)} | {interval} | {met} |")
    gain = alpha_gains(means)
    grows = bool(np.all(np.diff(gain) > 0))
    lines.append(f"| head motion (gain on the driver's) grows with α | increasing | "
                 f"{', '.join(_fmt(v) for v in gain)} | – | {'yes' if grows else 'no'} |")
    return lines


def differences(leakage: dict[str, dict[str, list]], keep: str, key: str) -> np.ndarray:
    """Per case: ablation minus decoupled model, for driving frames face-dropped to ``keep``."""
    return (np.asarray(leakage[f"ablation keep={keep}"][key], float)
            - np.asarray(leakage[f"decoupled keep={keep}"][key], float))


def _interval(values) -> str:
    low, high = measure.bootstrap_interval(values)
    return f"{_fmt(measure.finite_mean(values))} [{_fmt(low)}, {_fmt(high)}]"


def leakage_finding(leakage: dict[str, dict[str, list]]) -> str:
    """The paper's claim read off the paired differences in mixed mode (driver face-dropped to the eyes):
    supported when, beyond the 95 % intervals, the ablation follows the driver's mouth more and the
    speech less than the decoupled model; contradicted when an interval lies wholly the other way."""
    cases = len(leakage[LEAKAGE_ROWS[0]]["mouth~audio"])
    driver, audio = differences(leakage, "eyes", "mouth~driver"), differences(leakage, "eyes", "mouth~audio")
    (d_low, d_high), (a_low, a_high) = measure.bootstrap_interval(driver), measure.bootstrap_interval(audio)

    def part(low: float, high: float, claim: str, opposite: str) -> str:
        """``claim`` is about a difference whose 95 % interval is [low, high]."""
        if low > 0:
            return f"{claim}: supported (its interval excludes 0)"
        if high < 0:
            return f"{opposite}: contradicted (its interval excludes 0)"
        return f"no difference shown (its interval includes 0) in whether {claim}"

    leak = part(d_low, d_high, "the driver's mouth leaks in more without decoupling",
                "the driver's mouth leaks in less without decoupling")
    follow = part(-a_high, -a_low, "the speech is followed less without decoupling",
                  "the speech is followed more without decoupling")
    verdict = f"{'supported' if d_low > 0 and a_high < 0 else 'not fully supported'}: {leak}; {follow}"
    return (f"- **Visual leakage without decoupling** (claim: a model trained without modality decoupling lets "
            f"the driving video's mouth leak into the result and follows the audio less). Mixed mode, {cases} "
            f"held-out cases, the driver face-dropped to the eyes (its jaw still moves with its own speech): "
            f"ablation minus decoupled, mouth~driver {_interval(driver)}, mouth~audio {_interval(audio)} "
            f"(mean [95 % bootstrap interval]). The claim is {verdict}.")


def _leakage_table(leakage: dict[str, dict[str, list]]) -> list[str]:
    lines = ["| | mouth~audio | mouth~driver |", "| --- | ---: | ---: |"]
    for row in LEAKAGE_ROWS:
        lines.append(f"| {row} | {_interval(leakage[row]['mouth~audio'])} | "
                     f"{_interval(leakage[row]['mouth~driver'])} |")
    for keep in ("eyes", "both"):
        lines.append(f"| ablation − decoupled, keep={keep} | {_interval(differences(leakage, keep, 'mouth~audio'))} "
                     f"| {_interval(differences(leakage, keep, 'mouth~driver'))} |")
    return lines


def write_report(out: Path, recipe: Recipe, results: dict, *, train_seconds: float, eval_seconds: float,
                 reused: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    means = results["means"]
    plots, videos = _plots(out, results), _videos(out, results)
    recipe_text = ", ".join(f"{f.name}={getattr(recipe, f.name)}" for f in dataclasses.fields(recipe))
    lines = [
        "# Toy-scale reproduction of MegActor-Σ",
        "",
        "Written by `python -m megactor_core.toy.reproduce` (it reruns everything from the seed). The toy",
        "world: procedural 64x64 portraits whose head pose, blinks and mouth follow known signals, the",
        f"mouth driven by procedural speech (`megactor_core/toy`). The latent codec is {_codec_text(recipe)}",
        "(the `codec` row measures what it alone loses), so the rest of every error is the",
        "diffusion model's. Audio",
        "features come from the project's Whisper feature code run on a seeded *random* Whisper",
        "(no trained Whisper may be downloaded here). All numbers below are measured on the generated",
        "pixels (`megactor_core/toy/measure.py`), on held-out identities with held-out motion and speech,",
        f"averaged over {results['cases']} of them.",
        "",
        f"- Machine: {describe()}.",
        "- Training (the codec if learned, the dataset, stages 1, 2, 3 and the leakage study's stage-2 runs): "
        f"{train_seconds / 60:.1f} min"
        + (f" (summed over invocations; this one reused the finished runs {', '.join(reused)})" if reused else "")
        + f"; evaluation {eval_seconds / 60:.1f} min.",
        f"- Recipe: {recipe_text}.",
        "- `truth` rows measure the ground-truth video of the identity following the same signals: the",
        "  best a model can score with these measurements.",
        "",
        "## Findings",
        "",
        *findings(means, results["leakage"]),
        "",
        "## Targets",
        "",
        *targets_table(results["rows"]),
        "",
        "## Audio, visual and mixed modes (final stage-3 model)",
        "",
        "Correlations (Pearson, over frames) of what the generated video shows with what drove it;",
        "MAE in 0..255 against the ground-truth video (background = pixels that never move).",
        "",
        *_table(means, ["truth", "codec", "still", "audio", "visual", "mixed"],
                ["mouth~audio", "eyes", "yaw", "x", "background_mae", "frame_mae"]),
        "",
        "- codec: the visual mode's ground truth encoded and decoded by the codec, the lowest error a",
        "  model with this codec can reach.",
        "- still: reference + the same identity as the driver, frontal and still, face-dropped to eyes and",
        "  mouth; its truth is the reference itself, so this error is the appearance alone, without motion.",
        "- audio: reference + speech. visual: reference + the driver face-dropped to eyes and mouth.",
        "  mixed: reference + the driver face-dropped to the eyes + speech (the paper's mixed mode).",
        "  Frames face-dropped to the eyes are sampled with Eq.2's mask (the mouth may not attend the",
        "  eyes' tokens), as training masked them.",
        "",
        "## Visual leakage: modality decoupling vs the ablation (stage-2 models)",
        "",
        "The driver's mouth says one thing, the speech another. `keep=both` shows the driver's mouth,",
        "`keep=eyes` hides it, but not the jaw, which drops as the driver's mouth opens (the toy face's",
        "leakage channel, as in real faces). The ablation was trained with mixed samples showing the whole",
        "face (`mix.mixed_keep: both`), the decoupled model with eyes only, as the paper does. Both train",
        "every weight in stage 2, as the paper's stage 2 does"
        + (f" (the model's own stage 2 trains only the parameters named {', '.join(recipe.stage2_train_only)}, "
           "`stage2_train_only`)" if recipe.stage2_train_only else " (the model's own stage 2 is the decoupled one)")
        + f". Mean over {results['leakage_cases']} held-out cases [95 % percentile-bootstrap interval of the",
        "mean]; the last rows are paired per case.",
        "",
        *_leakage_table(results["leakage"]),
        "",
        "## Amplitude controls",
        "",
        "`motion`: RMS distance of the head from its mean position (fraction of the frame); `gain`: the",
        "least-squares gain of the head's motion on the ground truth's (the driver's motion at α = 1).",
        "",
        *_table(means, [f"alpha={a:g}" for a in ALPHAS], ["motion", "gain"]),
        "",
        *_table(means, ["truth", *(f"lambda={v:g}" for v in LAMBDAS)], ["mouth_std"]),
        "",
        "## Plots and samples (first held-out identity)",
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        "Videos (reference | driver | generated, 2x): " + ", ".join(f"[{v}]({v})" for v in videos) + ".",
        "",
        "Every measurement of every case: [`results.json`](results.json).",
    ]
    _write_results(out / "results.json", recipe, results, train_seconds=train_seconds, eval_seconds=eval_seconds)
    path = out / "REPORT.md"
    with atomic_write(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return path


def _write_results(path: Path, recipe: Recipe, results: dict, *, train_seconds: float, eval_seconds: float) -> None:
    """The report's numbers per held-out case, so that two runs can be compared case by case (paired):
    ``rows[row]`` lists one mapping of measurements per case (the leakage study's rows too), in the cases'
    order, the same in every run of one seed; an undefined value (NaN) is null."""
    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    data = {"machine": describe(), "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "recipe": dataclasses.asdict(recipe),
            "rows": {row: [{key: finite(value) for key, value in case.items()} for case in cases]
                     for row, cases in results["rows"].items()}}
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
