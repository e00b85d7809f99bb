"""Estimated GPU memory to sample a 512x512 video with 16-frame windows, per model and precision.

    python benchmarks/infer_memory.py

No GPU is used. Each paper-size model runs its sampling calls on the CPU in fp32 (16-bit
convolutions are too slow on a CPU) for windows of 1 and 2 frames while :class:`PeakTracker`
follows every storage the ops create; the per-window peak is extended linearly to 16 frames
(activations are per frame; frame attention is tiny at 16). The models run in their own dtype
without autocast, so in fp16 / bf16 every weight and activation takes half the bytes. Peak VRAM
= weights + the reference features kept for the video + the largest working set of encoding
the reference, encoding driving frames, one window's call and the VAE decoding a chunk of 8
frames + per-frame sampler state. The formula is checked against the peak tracked through a
real sampling run of a small model. Takes about 10 minutes and 14 GB of RAM; writes its
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import machine, write_section  # noqa: E402
from benchmarks.train_memory import PeakTracker  # noqa: E402
from megactor_core.models import MegActorConfig, MegActorSigma, MegActorSigmaSD15, SD15Config  # noqa: E402
from megactor_core.pipeline import SamplerSettings, sample_video  # noqa: E402
from megactor_core.pipeline.sampler import DRIVING_CHUNK, encode_driving  # noqa: E402

GIB = 2**30
WINDOW = 16
LATENT = 64  # 512 / 8
DECODE_CHUNK = 8  # frames the VAE decodes at a time (megactor_core.pipeline.decode_video)
CARDS = (8, 12, 16, 24)  # GiB


def tracking(*known) -> PeakTracker:
    """A :class:`PeakTracker` that does not count the storages of ``known`` tensors, modules (their
    weights) or containers of tensors, which exist before: views of them allocate nothing."""
    tracker = PeakTracker()
    for item in known:
        tensors = list(item.parameters()) + list(item.buffers()) if isinstance(item, torch.nn.Module) \
            else [t for t in tree_leaves(item) if isinstance(t, torch.Tensor)]
        tracker.live.update(t.untyped_storage().data_ptr() for t in tensors)
    return tracker


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def window_inputs(model, frames: int, batch: int, dtype: torch.dtype) -> dict:
    """One window's inputs as the sampler hands them to the model (guidance batched when ``batch`` is 2)."""
    config = model.config
    g = torch.Generator().manual_seed(0)
    audio_tokens = config.audio_tokens if isinstance(config, SD15Config) else 9 * 5
    driven_channels = config.driven_channels
    return dict(
        latents=torch.randn(batch, frames, config.latent_channels, LATENT, LATENT, generator=g).to(dtype),
        driven=torch.randn(batch, frames, driven_channels, LATENT, LATENT, generator=g).to(dtype),
        audio=torch.randn(batch, frames, audio_tokens, config.audio_dim, generator=g).to(dtype),
        audio_scale=torch.ones(batch, dtype=dtype),
    )


@torch.no_grad()
def call_peak(model, reference, frames: int, batch: int, dtype: torch.dtype) -> int:
    """Peak bytes the ops of one window's model call create, the inputs not counted."""
    x = window_inputs(model, frames, batch, dtype)
    t = torch.tensor([500])
    with tracking(model, x, t) as tracker:
        model(x["latents"], t, reference=reference, driven=x["driven"], audio=x["audio"], audio_scale=x["audio_scale"])
    return tracker.peak


@torch.no_grad()
def reference_cache(model, dtype: torch.dtype, side: int = LATENT):
    """The reference features kept for the whole video, their bytes and the peak of computing them."""
    latents = torch.randn(1, model.config.latent_channels, side, side).to(dtype)
    with tracking(model, latents) as tracker:
        features = model.encode_reference(latents)
    return features, tracker.now, tracker.peak  # what is still alive of what it made: the features


@torch.no_grad()
def driving_peak(model, dtype: torch.dtype, side: int = LATENT) -> int:
    """Peak bytes of encoding one chunk of driving frames as the sampler does (pixels in float32)."""
    frames = torch.rand(DRIVING_CHUNK, side * 8, side * 8, 3)
    with tracking(model, frames) as tracker:
        encode_driving(model, frames, (side * 8, side * 8), torch.device("cpu"), dtype)
    return tracker.peak


@torch.no_grad()
def decode_peak(frames: int, dtype: torch.dtype) -> tuple[int, int]:
    """Peak bytes of the SD VAE (sd-vae-ft-mse's shape) decoding ``frames`` 512x512 latents, and its weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                        sample_size=512).to(dtype).eval()
    latents = torch.randn(frames, 4, LATENT, LATENT).to(dtype)
    with tracking(vae, latents) as tracker:
        vae.decode(latents)
    return tracker.peak, weight_bytes(vae)


def linear(at_1: int, at_2: int, n: int) -> float:
    return at_1 + (at_2 - at_1) * (n - 1)


def estimate(name: str, model, vae_at: tuple[int, int], vae_weights: int) -> dict:
    """Weights, reference cache, window call and decode peaks of one model in fp32, in bytes."""
    dtype = torch.float32
    model = model.to(dtype).eval()
    reference, cache, encode = reference_cache(model, dtype)
    calls = [call_peak(model, reference, f, 2, dtype) for f in (1, 2)]  # guidance's two branches in one batch
    window = linear(*calls, WINDOW)
    decode = linear(*vae_at, DECODE_CHUNK)
    driving = driving_peak(model, dtype)
    # Per frame of the video on the device: latents, the step's prediction and weight, model input
    # (float32), driven features and audio tokens (model dtype).
    per_frame = 3 * 4 * LATENT * LATENT * model.config.latent_channels
    per_frame += 4 * LATENT * LATENT * model.config.driven_channels  # driven features, model dtype
    # Streamed (ComfyUI's --lowvram partial loading): weights stay in CPU memory and each layer's are
    # copied in for its call, two layers in flight at most (its NUM_STREAMS); the small tensors used
    # outside layers (modulation and position tables) are copied too.
    layers = [m for m in model.modules() if not list(m.children()) and list(m.parameters())]
    streamed = 2 * max(weight_bytes(m) for m in layers)
    return dict(name=name, weights=weight_bytes(model), streamed=streamed, vae=vae_weights, cache=cache,
                encode=encode, window=window, decode=decode, driving=driving, per_frame=per_frame, calls=calls)


def phases(row: dict) -> float:
    """The largest working set over sampling's phases: encoding the reference, then with its
    features kept, encoding driving chunks, the window calls and decoding."""
    return max(row["encode"], row["cache"] + max(row["driving"], row["window"], row["decode"]))


def peak(row: dict, frames: int, scale: float = 1.0, streamed: bool = False) -> float:
    """Peak bytes for a ``frames``-frame video in fp32; ``scale`` 0.5 gives fp16 / bf16; ``streamed``:
    the model's weights streamed (low-VRAM mode), the VAE's loaded whole."""
    weights = row["streamed"] if streamed else row["weights"]
    return scale * (weights + row["vae"] + phases(row) + row["per_frame"] * frames)


def check_formula() -> tuple[float, float]:
    """On a small DiT at 128x128: (the formula's peak, the peak tracked through a real sampling run of
    16 frames in one window), weights excluded on both sides."""
    from megactor_core.audio import AudioFeatures
    from megactor_core.pipeline import DiffusersVAE
    from megactor_core.stand_ins import tiny_vae

    dtype, side = torch.bfloat16, 16
    config = MegActorConfig(num_layers=4, hidden_size=128, num_heads=4, sample_size=side, audio_dim=32,
                            reference_blocks=(2, 3), temporal_blocks=(1, 3))
    model = MegActorSigma(config).to(dtype).eval()
    reference, cache, encode = reference_cache(model, dtype, side)
    g = torch.Generator().manual_seed(0)
    calls = []
    with torch.no_grad():
        for f in (1, 2):
            driven = torch.randn(2, f, config.driven_channels, side, side, generator=g).to(dtype)
            latents = torch.randn(2, f, 4, side, side, generator=g).to(dtype)
            audio = torch.randn(2, f, 45, 32, generator=g).to(dtype)
            with tracking(model, latents, driven, audio) as tracker:
                model(latents, torch.tensor([500]), reference=reference, driven=driven, audio=audio,
                      audio_scale=torch.ones(2, dtype=dtype))
            calls.append(tracker.peak)
    row = dict(encode=encode, cache=cache, driving=driving_peak(model, dtype, side), window=linear(*calls, WINDOW),
               decode=0)
    per_frame = 3 * 4 * side * side * 4 + 2 * side * side * config.driven_channels
    formula = phases(row) + per_frame * WINDOW

    codec = DiffusersVAE(tiny_vae())
    audio = AudioFeatures(torch.randn(WINDOW, 45, 32), 25.0, 4, tuple(range(5)))
    settings = SamplerSettings(steps=1, window=WINDOW, overlap=0)
    reference_image, driving = torch.rand(side * 8, side * 8, 3), torch.rand(WINDOW, side * 8, side * 8, 3)
    with torch.no_grad(), tracking(model, codec.vae, reference_image, driving, audio.features) as tracker:
        sample_video(model, codec, reference_image, settings, audio=audio, driving=driving)
    return formula, tracker.peak


def table(rows: list[dict]) -> str:
    lines = ["| model | precision | weights (+ VAE) | reference cache | one window call | VAE decode of 8 frames | "
             "peak, 16 frames | peak, 250 frames (10 s) | peak, 10 s, low-VRAM (weights streamed) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        for precision, scale in (("fp16 / bf16", 0.5), ("fp32", 1.0)):
            lines.append(
                f"| {row['name']} | {precision} | {scale * row['weights'] / GIB:.2f} "
                f"(+{scale * row['vae'] / GIB:.2f}) | "
                f"{scale * row['cache'] / GIB:.2f} | {scale * row['window'] / GIB:.2f} | "
                f"{scale * row['decode'] / GIB:.2f} | {peak(row, WINDOW, scale) / GIB:.1f} | "
                f"{peak(row, 250, scale) / GIB:.1f} | {peak(row, 250, scale, streamed=True) / GIB:.1f} |")
    return "\n".join(lines)


def cards(rows: list[dict]) -> str:
    lines = ["| card | " + " | ".join(r["name"] for r in rows) + " |", "| --- |" + " --- |" * len(rows)]
    for gib in CARDS:
        cells = []
        for row in rows:
            fits = [p for p, s in (("fp16/bf16", 0.5), ("fp32", 1.0)) if peak(row, 250, s) < 0.9 * gib * GIB]
            fits += [f"{p} low-VRAM" for p, s in (("fp16/bf16", 0.5), ("fp32", 1.0))
                     if p not in fits and peak(row, 250, s, streamed=True) < 0.9 * gib * GIB]
            cells.append(", ".join(fits) if fits else "no")
        lines.append(f"| {gib} GB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    torch.manual_seed(0)
    (one, vae_weights), (two, _) = decode_peak(1, torch.float32), decode_peak(2, torch.float32)
    rows = [estimate("DiT (paper size)", MegActorSigma(MegActorConfig()), (one, two), vae_weights),
            estimate("SD1.5 release", MegActorSigmaSD15(SD15Config()), (one, two), vae_weights)]
    formula, tracked = check_formula()
    body = "\n".join([
        "## Inference memory at 512x512, 16-frame windows (`benchmarks/infer_memory.py`)",
        "",
        f"Estimated, not measured on a GPU (none was lent to this task). {machine()}.",
        "Each model's sampling call runs on the CPU in fp32 for windows of 1 and 2 frames while a dispatch "
        "mode tracks every storage the ops create (16-bit: half the bytes, as the models run in their own "
        "dtype); the window peak is extended linearly to 16 frames. Peak = "
        "weights (+ the SD VAE) + reference features kept for the video + the larger of one window's call "
        "(guidance's two branches in one batch) and the VAE decoding 8 "
        "frames + sampler state per frame (latents, prediction, model input). GiB. Kernel workspaces and the "
        "CUDA context (about 0.3-0.5 GiB) are not included. fp8 weights are not supported.",
        "",
        table(rows),
        "",
        "Which card runs what (peak for a 10 s video under 90 % of the card): loaded whole, or \"low-VRAM\": "
        "with the weights streamed, which ComfyUI does by itself when the model does not fit beside the "
        "activations (or always with `--lowvram`); streaming costs a copy of every weight per model call:",
        "",
        cards(rows),
        "",
        f"Check on a small DiT (4 blocks, width 128, 128x128, one 16-frame window, bf16): formula "
        f"{formula / 2**20:.1f} MiB, tracked through a real `sample_video` call {tracked / 2**20:.1f} MiB "
        "(weights excluded on both sides; the tracked run also holds the reference image, its latents and "
        "the tiny VAE's activations).",
    ])
    write_section("infer_memory", body)
    print(body)


if __name__ == "__main__":
    main()
