"""How quality falls as sampling steps drop, per scheduler, on the toy model.

    python benchmarks/sampling_steps.py [--checkpoint megactor_core/toy/megactor_sigma_toy.safetensors]

The toy reproduction's held-out cases and measurements (``benchmarks/toy/REPORT.md``): visual mode
(eyes, yaw and horizontal position against the driver, frame error against the ground truth)
and audio mode (mouth against the speech), for DDIM, DPM-Solver++ and Euler at 50, 25, 15, 10 and
6 steps. The noise floor is the spread of the 25-step DDIM result over three sampling seeds: a
setting within it of the 25-step result is as good. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEDULERS = ("ddim", "dpmpp", "euler")
STEPS = (50, 25, 15, 10, 6)
METRICS = ("eyes", "yaw", "x", "frame_mae", "mouth~audio")


def measure_setting(checkpoint: Path, recipe, cases) -> dict[str, float]:
    """The metrics averaged over the cases for one recipe (steps, scheduler, seed)."""
    from megactor_core.toy import measure
    from megactor_core.toy.evaluate import Sampler, follows_driver, identity_error

    sampler = Sampler(checkpoint, recipe)
    rows = []
    for case in cases:
        visual = sampler(case, keep="both")
        audio = sampler(case, audio=True)
        rows.append({**follows_driver(visual, case), **identity_error(visual, case),
                     "mouth~audio": measure.correlation(measure.mouth_opening(audio), case.audio_mouth)})
    return {m: float(np.nanmean([r[m] for r in rows])) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "megactor_core/toy/megactor_sigma_toy.safetensors"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from benchmarks.results import machine, write_section
    from megactor_core.toy.evaluate import held_out_cases
    from megactor_core.toy.recipe import Recipe

    recipe = Recipe()
    cases = held_out_cases(recipe, recipe.test_identities)
    checkpoint = Path(args.checkpoint)
    started = time.perf_counter()
    seeds = [measure_setting(checkpoint, dataclasses.replace(recipe, sample_steps=25, seed=s), cases)
             for s in (recipe.seed, recipe.seed + 1, recipe.seed + 2)]
    noise = {m: float(np.ptp([s[m] for s in seeds]) / 2) for m in METRICS}
    table = {}
    for scheduler in SCHEDULERS:
        for steps in STEPS:
            if scheduler == "ddim" and steps == 25:
                table[scheduler, steps] = seeds[0]
                continue
            table[scheduler, steps] = measure_setting(
                checkpoint, dataclasses.replace(recipe, sample_steps=steps, sample_scheduler=scheduler), cases)
            print(scheduler, steps, {m: round(v, 3) for m, v in table[scheduler, steps].items()}, flush=True)
    base = table["ddim", 25]

    def cell(scheduler: str, steps: int, m: str) -> str:
        value = table[scheduler, steps][m]
        mark = "" if abs(value - base[m]) <= max(noise[m], 1e-9) else " *"
        return f"{value:.2f}{mark}"

    rows = [f"| {s} | {n} | " + " | ".join(cell(s, n, m) for m in METRICS) + " |" for s in SCHEDULERS for n in STEPS]
    body = "\n".join([
        "## Sampling steps vs quality on the toy model (`benchmarks/sampling_steps.py`)", "",
        f"Machine: {machine()}; {time.perf_counter() - started:.0f} s. Checkpoint `{checkpoint.name}`, the toy "
        f"report's {len(cases)} held-out cases; guidance {recipe.guidance:g}. Visual mode: correlation of eyes, yaw "
        "and horizontal position with the driver, frame MAE (0..255) against the ground truth; audio mode: mouth "
        "against the speech. `*`: further from DDIM-25 than the noise floor (half the spread of DDIM-25 over "
        "three seeds: " + ", ".join(f"{m} ±{noise[m]:.2f}" for m in METRICS) + ").", "",
        "| scheduler | steps | " + " | ".join(METRICS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in METRICS) + " |", *rows,
    ])
    if not args.no_write:
        write_section("sampling_steps", body)
    print(body)


if __name__ == "__main__":
    main()
