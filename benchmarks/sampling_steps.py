"""How the toy model's quality falls as sampling steps drop, for DDIM, DPM-Solver++ and Euler.

    python -m benchmarks.sampling_steps [--checkpoint megactor_core/toy/megactor_sigma_toy.safetensors]

Runs the toy reproduction's trained model (default: the bundled one) in the paper's mixed mode
(reference + driver face-dropped to the eyes + speech) on held-out toy cases, and measures the
toy report's metrics on the generated pixels (mouth~audio, eyes, yaw, horizontal position, frame
MAE against the ground truth) for each scheduler and step count. The noise floor is the spread
of the DDIM 25-step result over sampling seeds: a setting is "as good as" DDIM 25 when no metric
is worse than DDIM 25's by more than twice that spread (better is fine: fewer steps smooth the
frames, which lowers the frame error and can raise a correlation). Writes its section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

SCHEDULERS = ("ddim", "dpmpp", "euler")
STEPS = (50, 25, 15, 10, 6)
METRICS = ("mouth~audio", "eyes", "yaw", "x", "frame_mae")
LOWER_IS_BETTER = {"frame_mae"}
REFERENCE = ("ddim", 25)


def measure_setting(checkpoint: Path, cases: list, recipe, scheduler: str, steps: int, seed: int) -> dict[str, float]:
    """The case-mean of every metric for one sampler setting."""
    from megactor_core.toy import measure
    from megactor_core.toy.evaluate import Sampler, follows_driver, identity_error

    sampler = Sampler(checkpoint, dataclasses.replace(recipe, sample_scheduler=scheduler, sample_steps=steps),
                      sample_seed=seed)
    rows = []
    for case in cases:
        frames = sampler(case, keep="eyes", audio=True)
        rows.append({"mouth~audio": measure.correlation(measure.mouth_opening(frames), case.audio_mouth),
                     **follows_driver(frames, case), **identity_error(frames, case.truth, case.reference)})
    return {key: float(np.nanmean([row[key] for row in rows])) for key in METRICS}


def as_good(values: dict[str, float], reference: dict[str, float], spread: dict[str, float]) -> bool:
    """No metric worse than the reference's by more than twice the seed spread."""
    return all((reference[key] - values[key]) * (-1 if key in LOWER_IS_BETTER else 1) <= 2 * spread[key]
               for key in METRICS)


def main() -> None:
    from benchmarks.results import machine, write_section
    from megactor_core.demo import TOY_CHECKPOINT
    from megactor_core.toy.evaluate import held_out_cases
    from megactor_core.toy.recipe import Recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(TOY_CHECKPOINT), help="a toy stage-3 model")
    parser.add_argument("--cases", type=int, default=3, help="held-out toy cases per setting (the report's first ones)")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds of DDIM 25 for the noise floor")
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    recipe = Recipe(test_frames=args.frames)
    cases = held_out_cases(recipe)[:args.cases]
    started = time.perf_counter()
    repeats = [measure_setting(Path(args.checkpoint), cases, recipe, *REFERENCE, seed) for seed in range(args.seeds)]
    reference = repeats[0]
    spread = {key: float(np.std([r[key] for r in repeats], ddof=1)) for key in METRICS}
    results = {}
    for scheduler in SCHEDULERS:
        for steps in STEPS:
            results[scheduler, steps] = reference if (scheduler, steps) == REFERENCE else \
                measure_setting(Path(args.checkpoint), cases, recipe, scheduler, steps, 0)
            print(scheduler, steps, {k: round(v, 3) for k, v in results[scheduler, steps].items()}, flush=True)
    lines = [f"Toy model `{Path(args.checkpoint).name}`, mixed mode, {args.cases} held-out cases of "
             f"{args.frames} frames, guidance {recipe.guidance:g}, seed 0; {machine()}; "
             f"{(time.perf_counter() - started) / 60:.1f} min. Noise floor: the standard deviation of DDIM 25 "
             f"over {args.seeds} sampling seeds; ✓ = no metric worse than DDIM 25's by more than twice that "
             "(frame_mae: lower is better; the rest: higher).", "",
             "| scheduler | steps | " + " | ".join(METRICS) + " | as good as DDIM 25 |",
             "| --- | ---: |" + " ---: |" * len(METRICS) + " --- |"]
    lines.append("| DDIM 25, seed spread (std) | | " + " | ".join(f"{spread[k]:.3f}" for k in METRICS) + " | |")
    fewest = {}
    for (scheduler, steps), values in results.items():
        ok = as_good(values, reference, spread)
        if ok:
            fewest[scheduler] = min(fewest.get(scheduler, steps), steps)
        lines.append(f"| {scheduler} | {steps} | " + " | ".join(f"{values[k]:.3f}" for k in METRICS)
                     + f" | {'✓' if ok else ''} |")
    lines += ["", "Fewest steps as good as DDIM 25: " + (", ".join(
        f"{s} {n}" for s, n in fewest.items()) or "none") + "."]
    write_section("sampling_steps", "## Sampling steps vs quality (toy model)\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
