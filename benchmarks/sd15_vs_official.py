"""Our SD1.5 release path against the official megvii-research/megactor code, side by side.

    python benchmarks/sd15_vs_official.py --official PATH [--size 256 --frames 8 --repeats 5]

``PATH`` is a checkout of github.com/megvii-research/megactor (only ``animate/`` is read). Run it
with a Python that has the official code's requirements beside ours (its ``env_sigma.yml`` pins
``diffusers==0.27.2``, ``einops==0.7.0``, ``huggingface_hub<0.26``); our core runs there too.

Both implementations get the same random weights in the release's layout (ours converted by
``models/sd15/official.py``'s names, loaded strictly into the official modules) and the same
inputs; before timing, their outputs are compared. Each measurement alternates the two
(ours, theirs, theirs, ours, ...) on the same thread count and reports the median of the
per-pair ratios (each pair ran back to back) and their range:
the reference pass, one conditional denoiser call, one guidance step (the release's: an
unconditional branch without controls or reference) and a whole sampling loop over one
16-frame window. Absolute CPU seconds are printed but only ratios are recorded.
Without ``--official`` (or with a path that lacks the code) it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OFFICIAL_PACKAGE = "animate.megactor-sigma"
# The release's UNet (SD1.5's config with the video and audio additions of its inference.yaml).
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
                 layers_per_block=2, cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
                 down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
                 up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3)
RELEASE_VIDEO = dict(unet_use_cross_frame_attention=False, unet_use_temporal_attention=False, use_motion_module=True,
                     motion_module_resolutions=(1, 2, 4, 8), motion_module_mid_block=True,
                     motion_module_decoder_only=False, motion_module_type="Vanilla",
                     motion_module_kwargs=dict(num_attention_heads=8, num_transformer_block=1,
                                               attention_block_types=("Temporal_Self", "Temporal_Self"),
                                               temporal_position_encoding=True,
                                               temporal_position_encoding_max_len=32,
                                               temporal_attention_dim_div=1))
APPEARANCE_2D = dict(SD15_UNET, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)


def official_code(path: str | None):
    """The official modules (unet, appearance encoder, reference control, conv) or None with a reason."""
    if not path:
        return None, "no --official PATH given (a checkout of github.com/megvii-research/megactor)"
    root = Path(path)
    if not (root / "animate" / "megactor-sigma" / "unet_controlnet.py").is_file():
        return None, f"{root} has no animate/megactor-sigma/unet_controlnet.py: not a megactor checkout"
    sys.path.insert(0, str(root))
    try:
        code = {name: importlib.import_module(f"{OFFICIAL_PACKAGE}.{name}") for name in
                ("unet_controlnet", "appearance_encoder", "mutual_self_attention", "resnet")}
        return code | {"context": importlib.import_module("animate.context")}, ""
    except ImportError as exc:
        return None, (f"the official code does not import here ({exc}): run with its requirements "
                      "(diffusers==0.27.2, einops==0.7.0, huggingface_hub<0.26)")


def random_release(seed: int):
    """Our release model with every weight random (the motion modules' zero-initialised output
    projections too, so they take part in the comparison)."""
    from megactor_core.models.sd15 import MegActorSigmaSD15, SD15Config

    torch.manual_seed(seed)
    model = MegActorSigmaSD15(SD15Config(), empty_text=torch.randn(77, 768))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "motion_modules" in name and "proj_out" in name:
                p.normal_(0, 0.02)
    return model.eval()


def official_twin(code: dict, model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The official denoiser and appearance encoder holding ``model``'s weights (strict load)."""
    from megactor_core.models.sd15.official import release_name

    unet = code["unet_controlnet"].UNet3DConditionModel(**SD15_UNET, **RELEASE_VIDEO)
    unet.conv_in = code["resnet"].InflatedConv3d(8, 320, kernel_size=3, padding=(1, 1))
    appearance = code["appearance_encoder"].AppearanceEncoderModel(**APPEARANCE_2D)
    appearance.set_last_layer()
    for theirs, ours in ((unet, model.unet), (appearance, model.appearance_encoder)):
        state = {release_name(k): v for k, v in ours.state_dict().items()}
        missing, unexpected = theirs.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("pos_encoder.pe")]
        if missing or unexpected:
            raise SystemExit(f"weights do not line up: {len(missing)} missing (e.g. {missing[:3]}), "
                             f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    return unet.eval(), appearance.eval()


class Official:
    """The official inference's calls (its pipeline's loop body), on its own modules."""

    def __init__(self, code: dict, unet, appearance, empty_text: torch.Tensor) -> None:
        self.control = code["mutual_self_attention"].ReferenceAttentionControl
        self.unet, self.appearance, self.text = unet, appearance, empty_text[None]
        self.context = code["context"]
        self.guided: bool | None = None

    def _hooks(self, guided: bool) -> None:
        """Its reference hooks for guided or plain calls (they replace each other's forwards)."""
        if guided != self.guided:
            self.writer = self.control(self.appearance, do_classifier_free_guidance=guided, mode="write",
                                       batch_size=1, clip_length=16)
            self.reader = self.control(self.unet, do_classifier_free_guidance=guided, mode="read", batch_size=1,
                                       clip_length=16)
            self.guided = guided

    def reference(self, ref: torch.Tensor, t: torch.Tensor, guided: bool) -> None:
        """The appearance encoder on the reference latent (``[1, 4, h, w]``), hooks writing its banks."""
        self._hooks(guided)
        self.writer.clear()
        n = 2 if guided else 1
        self.appearance(ref.repeat(n, 1, 1, 1), t, encoder_hidden_states=self.text.repeat(n, 1, 1), return_dict=False)

    def denoise(self, latents: torch.Tensor, t: torch.Tensor, driving: torch.Tensor, audio: torch.Tensor,
                guided: bool) -> torch.Tensor:
        """``latents`` ``[1, 4, F, h, w]``, ``driving`` ``[1, 3, F, H, W]`` in 0..1, ``audio``
        ``[F, 50, 384]`` -> the (guided, scale 2) noise prediction ``[1, 4, F, h, w]``."""
        self._hooks(guided)
        self.reader.update(self.writer, dtype=latents.dtype)
        text = self.text.repeat(2 if guided else 1, 1, 1)
        if guided:
            latents, audio = latents.repeat(2, 1, 1, 1, 1), torch.cat([torch.zeros_like(audio), audio])
            driving = torch.cat([torch.zeros_like(driving), driving])
        pred = self.unet(latents, t, encoder_hidden_states=text, audio_hidden_states=audio, return_dict=False,
                         pose_guide_conditions=driving, audio_attn_weight=1.0)[0]
        self.reader.clear()
        if not guided:
            return pred
        uncond, cond = pred.chunk(2)
        return uncond + 2.0 * (cond - uncond)


@dataclass
class Pairs:
    """Seconds of alternating runs: ``ours[i]`` and ``theirs[i]`` ran back to back, so their ratio is
    measured under the same load even when the machine's speed drifts between pairs."""

    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.theirs, strict=True)]

    def cell(self) -> str:
        """The median per-pair ratio and its range over the pairs."""
        r = self.ratios()
        return f"{statistics.median(r):.2f} | {min(r):.2f}–{max(r):.2f}"


def alternate(ours: Callable[[], object], theirs: Callable[[], object], repeats: int,
              warm_up: bool = True) -> Pairs:
    """Seconds of each, timed in alternating order (after one untimed warm-up each)."""
    if warm_up:
        ours(), theirs()
    pairs = Pairs()
    for r in range(repeats):
        order = [(pairs.ours, ours), (pairs.theirs, theirs)]
        for times, fn in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", help="checkout of github.com/megvii-research/megactor")
    parser.add_argument("--size", type=int, default=256, help="frame size in pixels")
    parser.add_argument("--frames", type=int, default=8, help="frames of one denoiser call")
    parser.add_argument("--loop-frames", type=int, default=16, help="frames of the sampling loop (one window)")
    parser.add_argument("--loop-steps", type=int, default=2, help="DDIM steps of the sampling loop")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler's operator tables of one conditional call and one guidance step "
                        "of each, then stop")
    args = parser.parse_args()
    code, why = official_code(args.official)
    if code is None:
        print(f"skipped: {why}")
        return
    from benchmarks.results import machine, write_section
    from megactor_core.pipeline.sampler import release_settings

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    model = random_release(seed=0)
    unet, appearance = official_twin(code, model)
    official = Official(code, unet, appearance, model.empty_text)
    g = torch.Generator().manual_seed(1)
    h = args.size // 8

    frames = args.frames
    latents = torch.randn(1, frames, 4, h, h, generator=g)
    driving = torch.rand(1, frames, 3, args.size, args.size, generator=g)
    audio = torch.randn(1, frames, 50, 384, generator=g)
    ref = torch.randn(1, 4, h, h, generator=g)
    t = torch.tensor([500])
    reference = model.encode_reference(ref)
    driven = model.encode_driving(driving * 2 - 1)  # once per video (the official code does it in every call)
    theirs_latents, theirs_driving = latents.transpose(1, 2), driving.transpose(1, 2)

    def ours_call(guided: bool) -> torch.Tensor:
        from megactor_core.pipeline.sampler import _guided_prediction

        return _guided_prediction(model, latents, t, reference, driven, audio, list(range(args.frames)),
                                  release_settings(), guided, torch.float32)

    def theirs_call(guided: bool) -> torch.Tensor:
        official.reference(ref, t, guided)
        return official.denoise(theirs_latents, t, theirs_driving, audio[0], guided).transpose(1, 2)

    def fresh_reference() -> None:  # our pass: the appearance UNet and its keys/values
        model._reference(model.encode_reference(ref), t.float(), 1, ref.device)

    # Same numbers first: otherwise the timings compare different work.
    rows, checks = [], []  # checks: the largest difference of the outputs
    for guided in (False, True):
        diff = (ours_call(guided) - theirs_call(guided)).abs().max().item()
        checks.append(f"{'guidance step' if guided else 'conditional call'}: {diff:.2e}")
        print(checks[-1], flush=True)

    if args.profile:
        from benchmarks.results import print_profiles

        print_profiles({"ours": lambda: ours_call(False), "official": lambda: official.denoise(
            theirs_latents, t, theirs_driving, audio[0], False),
            "ours, guidance step": lambda: (fresh_reference(), ours_call(True)),
            "official, guidance step": lambda: theirs_call(True)})
        return

    measured = {
        "reference pass (appearance UNet)": alternate(fresh_reference, lambda: official.reference(ref, t, False),
                                                      args.repeats),
        f"conditional denoiser call ({args.frames} frames, reference ready)": alternate(
            lambda: ours_call(False),
            lambda: official.denoise(theirs_latents, t, theirs_driving, audio[0], False), args.repeats),
        f"guidance step ({args.frames} frames, with its reference pass)": alternate(
            lambda: (fresh_reference(), ours_call(True)), lambda: theirs_call(True), args.repeats),
    }
    loop, difference = _loops(model, official, args)
    measured[f"sampling loop ({args.loop_frames} frames, {args.loop_steps} DDIM steps)"] = loop
    checks.append(f"sampling loop: {difference:.2e}")
    for name, pairs in measured.items():
        print(f"{name}: ours {[round(t, 2) for t in pairs.ours]} s, official {[round(t, 2) for t in pairs.theirs]} s")
        rows.append(f"| {name} | {pairs.cell()} |")
    body = "\n".join([
        "## SD1.5 release: ours vs the official code (`benchmarks/sd15_vs_official.py`)", "",
        f"Machine: {machine()}. fp32, random weights in the release's layout loaded by both, {args.size}² "
        f"frames, {args.repeats} pairs of alternating runs (the loop: 2). Ratio = our time / the official code's "
        "in each pair, run back to back (below 1: we are faster); the median and the range over the pairs.", "",
        "| measurement | ours / official | range |", "| --- | ---: | ---: |", *rows, "",
        "Outputs compared (largest absolute difference, ours vs official): " + "; ".join(checks) + ".",
    ])
    if not args.no_write:
        write_section("sd15_vs_official", body)
    print(body)


def _loops(model, official: Official, args) -> tuple[Pairs, float]:
    """Two pairs of timings of a whole release-settings sampling loop (no VAE: a stand-in codec), ours
    and theirs, and the largest difference of their final latents."""
    from diffusers import DDIMScheduler

    from megactor_core.audio.features import AudioFeatures
    from megactor_core.models.sd15.config import RELEASE_SCHEDULE
    from megactor_core.pipeline.sampler import release_settings, sample_video

    size, frames, steps = args.size, args.loop_frames, args.loop_steps
    g = torch.Generator().manual_seed(2)
    driving = torch.rand(frames, size, size, 3, generator=g)
    features = torch.randn(frames, 50, 384, generator=g)
    audio = AudioFeatures(features=features, fps=25.0, context=4, layers=(0, 1, 2, 3, 4), style="sd15-release")
    reference = torch.rand(1, size, size, 3, generator=g)
    codec = PixelStandIn()

    def ours() -> torch.Tensor:
        return sample_video(model, codec, reference, release_settings(steps=steps, seed=0), audio=audio,
                            driving=driving)

    def theirs() -> None:  # its pipeline's loop: 16-frame windows whose grid moves one frame per step
        scheduler = DDIMScheduler(**RELEASE_SCHEDULE, clip_sample=False)  # as its pipeline's __init__ sets it
        scheduler.set_timesteps(steps)
        ref = codec.encode(reference) * 0.18215
        noise = torch.randn(1, frames, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
        latents = scheduler.add_noise(ref[:, :, None].repeat(1, 1, frames, 1, 1), noise.transpose(1, 2),
                                        torch.tensor([999]))
        cond = driving.permute(3, 0, 1, 2)[None]
        uniform = official.context.get_context_scheduler("uniform")
        for i, t in enumerate(scheduler.timesteps):
            official.reference(ref, t, True)
            pred, count = torch.zeros_like(latents), torch.zeros(1, 1, frames, 1, 1)
            offset = i % 16
            for window in uniform(0, steps, frames + offset, 16, 1, 0):
                c = [k - offset for k in window if 0 <= k - offset < frames]
                pred[:, :, c] += official.denoise(scheduler.scale_model_input(latents[:, :, c], t), t, cond[:, :, c],
                                                  features[c], True)
                count[:, :, c] += 1
            latents = scheduler.step(pred / count, t, latents).prev_sample
        return latents[0].transpose(0, 1) / 0.18215

    # Long enough to need no warm-up; the first run of each also gives the outputs to compare.
    outputs: dict[str, torch.Tensor] = {}

    def keeping_first(name: str, fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        return lambda: outputs.setdefault(name, fn())

    pairs = alternate(keeping_first("ours", ours), keeping_first("theirs", theirs), repeats=2, warm_up=False)
    return pairs, (outputs["ours"] - outputs["theirs"]).abs().max().item()


class PixelStandIn:
    """A free stand-in for the VAE (both loops skip decoding): 8x8 average pooling to 4 channels."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.avg_pool2d(images.permute(0, 3, 1, 2), 8)
        return torch.cat([x, x.mean(1, keepdim=True)], dim=1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents[:, :3].repeat_interleave(8, -1).repeat_interleave(8, -2).permute(0, 2, 3, 1)


if __name__ == "__main__":
    main()
