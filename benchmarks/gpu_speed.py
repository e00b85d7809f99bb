"""Seconds per frame and peak VRAM of the paper-size model on a GPU (random weights).

    python benchmarks/gpu_speed.py [--frames 48 --steps 25 --size 512 --dtypes fp16 bf16 --compile --sd15]

Mixed-modal sampling (audio + driving frames, guidance batched, windows of 16 with overlap 4)
of ``--frames`` frames, then the SD VAE decode; random weights, since speed does not depend on
them. Times are taken after a warm-up run; peak VRAM is ``torch.cuda.max_memory_allocated``.
Achieved TFLOP/s come from the analytic counts of benchmarks/flops.py. ``--sd15`` adds the official
SD1.5 release's architecture (random weights), sampled with its own settings. Without a CUDA
device it says so in its section of benchmarks/RESULTS.md and measures nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from megactor_core.audio import AudioFeatures  # noqa: E402
from megactor_core.models import AnyMegActor, MegActorConfig, MegActorSigma, MegActorSigmaSD15, SD15Config  # noqa: E402
from megactor_core.pipeline import DiffusersVAE, SamplerSettings, release_settings, sample_video  # noqa: E402

AUDIO_CONTEXT, AUDIO_LAYERS = 4, (0, 1, 2, 3, 4)  # Whisper-tiny, all five states: 45 tokens per frame
# Published speeds to compare with (the papers' own GPUs and settings, not measured here).
PUBLISHED = [
    ("EchoMimic (SD1.5 UNet), README 2024-07: original pipeline", "V100", "~7 min / 240 frames ≈ 1.75 s"),
    ("EchoMimic, README 2024-07: accelerated models and pipeline", "V100", "~50 s / 240 frames ≈ 0.21 s"),
]


def measure(model: AnyMegActor, vae, *, frames: int, size: int, steps: int, dtype: torch.dtype,
            device: torch.device, compile_blocks: bool = False) -> dict[str, float]:
    """Sample and decode ``frames`` frames twice (warm-up, then timed); seconds and peak memory. The
    SD1.5 release model samples with the release's settings."""
    model = model.to(device, dtype).eval()
    if compile_blocks:
        model.compile_blocks()
    codec = DiffusersVAE(vae.to(device, dtype))
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(size, size, 3, generator=g)
    driving = torch.rand(frames, size, size, 3, generator=g)
    release = isinstance(model, MegActorSigmaSD15)
    tokens = model.config.audio_tokens if release else (2 * AUDIO_CONTEXT + 1) * len(AUDIO_LAYERS)
    audio = AudioFeatures(torch.randn(frames, tokens, model.config.audio_dim, generator=g), 25.0, AUDIO_CONTEXT,
                          AUDIO_LAYERS, style=model.config.audio_style)
    settings = release_settings(steps=steps) if release else SamplerSettings(steps=steps)

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        latents = sample_video(model, codec, reference, settings, audio=audio, driving=driving, device=device)
        _synchronize(device)
        sampled = time.perf_counter()
        codec.decode(latents)
        _synchronize(device)
        return sampled - start, time.perf_counter() - sampled

    run()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sampling, decoding = run()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"sampling_s": sampling, "decode_s": decoding, "peak_gib": peak}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    from diffusers import AutoencoderKL

    from benchmarks.flops import Workload, denoiser_flops
    from benchmarks.results import write_section
    from megactor_core.dtypes import parse_dtype
    from megactor_core.pipeline.vae import SD_VAE_CONFIG

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtypes", nargs="+", default=["fp16", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time with compiled blocks")
    parser.add_argument("--sd15", action="store_true", help="also time the official SD1.5 release's architecture")
    args = parser.parse_args()
    published = "\n".join(f"| {what} | {gpu} | {speed} |" for what, gpu, speed in PUBLISHED)
    header = f"## GPU speed at {args.size}² (`python benchmarks/gpu_speed.py`)\n\n"
    comparison = ("Published figures to compare with (their GPUs and settings; the official MegActor-Σ\n"
                  "release publishes no speed):\n\n| model | GPU | seconds per frame |\n| --- | --- | --- |\n"
                  + published)
    if not torch.cuda.is_available():
        write_section("gpu_speed", header + "**Not measured: no GPU was lent to the task that wrote this.** Run the "
                      "script on a CUDA machine to fill in seconds per frame and peak VRAM for fp16 and bf16.\n\n"
                      + comparison)
        print("no CUDA device: nothing measured")
        return
    device = torch.device("cuda")
    config = MegActorConfig()
    window = SamplerSettings().window
    work = Workload(args.size, args.size, window, (2 * AUDIO_CONTEXT + 1) * len(AUDIO_LAYERS))
    windows = -(-(args.frames - window) // (window - SamplerSettings().overlap)) + 1
    flops = denoiser_flops(config, work) * 2 * windows * args.steps  # guidance doubles the batch
    rows = []
    for backbone in ["DiT", "SD1.5 release"] if args.sd15 else ["DiT"]:
        for name in args.dtypes:
            for compiled in ([False, True] if args.compile else [False]):
                torch.manual_seed(0)
                model = MegActorSigma(config) if backbone == "DiT" else MegActorSigmaSD15(SD15Config())
                r = measure(model, AutoencoderKL(**SD_VAE_CONFIG), frames=args.frames, size=args.size,
                            steps=args.steps, dtype=parse_dtype(name), device=device, compile_blocks=compiled)
                per_frame = (r["sampling_s"] + r["decode_s"]) / args.frames
                achieved = f"{flops / r['sampling_s'] / 1e12:.0f}" if backbone == "DiT" else "–"
                rows.append(f"| {backbone} | {name}{' + compile' if compiled else ''} | {per_frame:.3f} | "
                            f"{r['sampling_s']:.1f} | {r['decode_s']:.1f} | {achieved} | {r['peak_gib']:.1f} |")
                print(rows[-1])
    write_section("gpu_speed", header + f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}; paper-size "
                  f"model, random weights, {args.frames} frames, {args.steps} steps, audio + driving, guidance "
                  "batched, windows of 16 with overlap 4, then the SD VAE decode.\n\n"
                  "| model | precision | seconds per frame | sampling (s) | VAE decode (s) | sampling TFLOP/s | "
                  "peak VRAM (GiB) |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows)
                  + "\n\n" + comparison)


if __name__ == "__main__":
    main()
