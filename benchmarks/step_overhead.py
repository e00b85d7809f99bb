"""Cost of one denoising step: MegActor-Σ's denoiser vs plain PixArt-α, reference caching, guidance
batching, fused vs naive attention, fp32 vs bf16, compiled vs eager.

    python benchmarks/step_overhead.py [--width 384 --depth 12 --frames 8 --size 256]

All variants run side by side in one process on random weights, the same tokens and the same
thread count, best of 5 after a warm-up; only ratios are reported (absolute CPU times say nothing
about a GPU). Width and depth are scaled down from PixArt-XL (1152 x 28) so the CPU finishes in
minutes; the reference blocks are the last 4/7 of the depth and temporal modules sit in the odd
blocks, as in the paper's 16 of 28. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUDIO_TOKENS = 45  # Whisper-tiny, 5 states x (2 * 4 + 1) positions per frame
CAPTION_TOKENS = 120  # PixArt-α's T5 caption length


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v with the full score matrix in memory: what SDPA replaces."""
    return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v


def main() -> None:
    from diffusers import PixArtTransformer2DModel

    from benchmarks.results import best_of, machine, write_section

    timed = partial(best_of, repeats=5, warm_up=True)
    from megactor_core.models import MegActorConfig, MegActorSigma

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (latents are 1/8)")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler's operator tables of our step and PixArt-α's, then stop")
    args = parser.parse_args()
    torch.manual_seed(0)
    latent = args.size // 8
    head_dim = args.width // args.heads
    config = MegActorConfig(num_layers=args.depth, hidden_size=args.width, num_heads=args.heads,
                            sample_size=latent, reference_blocks=tuple(range(args.depth * 3 // 7, args.depth)))
    ours = MegActorSigma(config).eval()
    plain = PixArtTransformer2DModel(num_attention_heads=args.heads, attention_head_dim=head_dim, in_channels=4,
                                     out_channels=8, num_layers=args.depth, sample_size=latent, norm_num_groups=1,
                                     cross_attention_dim=None, caption_channels=None).eval()
    texted = PixArtTransformer2DModel(num_attention_heads=args.heads, attention_head_dim=head_dim, in_channels=4,
                                      out_channels=8, num_layers=args.depth, sample_size=latent, norm_num_groups=1,
                                      cross_attention_dim=args.width, caption_channels=4096).eval()
    f = args.frames
    x = torch.randn(1, f, 4, latent, latent)
    t = torch.tensor([500.0])
    ref_latents = torch.randn(1, 4, latent, latent)
    driving = torch.rand(1, f, 3, args.size, args.size) * 2 - 1
    audio = torch.randn(1, f, AUDIO_TOKENS, config.audio_dim)
    caption = torch.randn(f, CAPTION_TOKENS, 4096)
    no_micro = {"resolution": None, "aspect_ratio": None}
    with torch.no_grad():
        reference = ours.encode_reference(ref_latents)
        driven = ours.encode_driving(driving)

        def step(x_in=x, driven_in=driven, audio_in=audio, t_in=t):
            return ours(x_in, t_in, driven=driven_in, reference=reference, audio=audio_in)

        def uncached_step():
            return ours(x, t, driven=driven, reference=ours.encode_reference(ref_latents), audio=audio)

        def sequential_guidance():
            step()
            step(driven_in=torch.zeros_like(driven))

        def batched_guidance():
            step(torch.cat([x, x]), torch.cat([driven, torch.zeros_like(driven)]), torch.cat([audio, audio]),
                 torch.cat([t, t]))

        if args.profile:
            from benchmarks.results import print_profiles

            print_profiles({"ours": step, "PixArt-α backbone": lambda: plain(x[0], timestep=t.expand(f),
                                                                               added_cond_kwargs=no_micro)})
            return
        timings = {
            "plain": timed(lambda: plain(x[0], timestep=t.expand(f), added_cond_kwargs=no_micro)),
            "texted": timed(lambda: texted(x[0], timestep=t.expand(f), encoder_hidden_states=caption,
                                             added_cond_kwargs=no_micro)),
            "ours": timed(step),
            "uncached": timed(uncached_step),
            "sequential": timed(sequential_guidance),
            "batched": timed(batched_guidance),
        }
        # Self-attention of a reference block: each frame's tokens attend to themselves + the reference's.
        tokens = (latent // 2) ** 2
        q = torch.randn(f, args.heads, tokens, head_dim)
        kv = torch.randn(f, args.heads, 2 * tokens, head_dim)
        timings["naive"] = timed(lambda: naive_attention(q, kv, kv))
        timings["sdpa"] = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, kv, kv))
        ours.to(torch.bfloat16)
        reference = ours.encode_reference(ref_latents.bfloat16())
        timings["bf16"] = timed(lambda: ours(x.bfloat16(), t, driven=driven.bfloat16(), reference=reference,
                                               audio=audio.bfloat16()))
        ours.float()
        reference = ours.encode_reference(ref_latents)
        timings["eager"] = timed(step)
        ours.compile_blocks()
        timings["compiled"] = timed(step)  # the warm-up call compiles
    rows = [
        f"| MegActor-Σ denoiser (reference cached, audio, temporal) / PixArt-α backbone without text | "
        f"{timings['ours'] / timings['plain']:.2f} |",
        f"| MegActor-Σ denoiser / PixArt-α with its 120-token T5 cross-attention | "
        f"{timings['ours'] / timings['texted']:.2f} |",
        f"| reference recomputed every step / cached | {timings['uncached'] / timings['ours']:.2f} |",
        f"| guidance as two calls / one batched call | {timings['sequential'] / timings['batched']:.2f} |",
        f"| naive attention / scaled_dot_product_attention (one reference block's self-attention) | "
        f"{timings['naive'] / timings['sdpa']:.2f} |",
        f"| denoiser step in bf16 / fp32 (CPU) | {timings['bf16'] / timings['ours']:.2f} |",
        f"| denoiser step with `torch.compile`d blocks (inductor) / eager | "
        f"{timings['compiled'] / timings['eager']:.2f} |",
    ]
    print("\n".join(rows))
    write_section("step_overhead", "\n".join([
        "## Denoising-step overhead (`python benchmarks/step_overhead.py`)",
        "",
        f"Width {args.width}, depth {args.depth}, {args.heads} heads, {f} frames of {args.size}² ({latent}² latents,"
        f" {(latent // 2) ** 2} tokens per frame), {AUDIO_TOKENS} audio tokens per frame; random weights; time ratios",
        f"measured side by side, best of 5, on this CPU ({machine()}). Goal of issue #10: overhead ≤ 1.3×.",
        "",
        "| comparison | time ratio |",
        "| --- | ---: |",
        *rows,
    ]))


if __name__ == "__main__":
    main()
