"""Sampling a video: reference portrait + audio and/or driving frames -> per-frame latents.

Guidance: the unconditional branch drops both controls (what "no audio" and "no driving video"
are is the model's :meth:`null_controls`), so one scale strengthens lip-sync and motion together.
By default it keeps the reference, so the identity, which both branches share, is never
extrapolated, and both branches run as one batch; the official release also drops the
reference there (``uncond_without_reference``, two calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..audio import AudioFeatures
from ..landmarks import MouthAttention, mouth_attention_mask
from ..models import AnyMegActor, MegActorSigma
from ..progress import Progress
from .codec import LatentCodec
from .schedulers import make_scheduler, steps_problem
from .timeline import AUDIO_ENDS, EXTEND_POLICIES, extend_indices, video_length
from .windows import blend_weights, context_windows, shifted_windows

# preview(step, steps, x0): after each denoising step, the current estimate of the clean latent of
# the video's middle frame, [1, C, h, w] in the model's (scaled) latent space.
Preview = Callable[[int, int, torch.Tensor], None]
# Pixels per DiT token: the SD VAE's 8 times the patch size 2.
TOKEN_PIXELS = 16
DRIVING_CHUNK = 16


WINDOW_SCHEDULES = ("blend", "shift")


@dataclass
class SamplerSettings:
    """What the user chooses. The defaults are this project's; :func:`release_settings` gives
    those of the official SD1.5 release's inference script."""

    steps: int = 25
    scheduler: str = "ddim"
    zero_terminal_snr: bool = False
    guidance_scale: float = 4.5
    audio_scale: float = 1.0  # λ of Eq.4
    seed: int = 0
    window: int = 16
    overlap: int = 4
    # "blend": windows overlapping by `overlap`, cross-faded; "shift": the release's windows that
    # do not overlap but move by one frame every step (wrapping around the video's end).
    window_schedule: str = "blend"
    init_from_reference: bool = False  # start from the reference latent noised to t = T-1 (the release)
    uncond_without_reference: bool = False  # the release's unconditional branch drops the reference too
    # Lengths (see pipeline.timeline): driving frames shorter than the video are extended by
    # `extend`; audio shorter than the video is padded with silence, or ends it ("shortest").
    extend: str = "pingpong"
    audio_end: str = "silence"

    def check(self, schedule: dict | None = None) -> None:
        """A clear error for a setting no run can use, on a model with this ``noise_schedule``
        (default PixArt-α's)."""
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be at least 1, got {self.steps}")
        elif problem := steps_problem(self.scheduler, self.steps, zero_terminal_snr=self.zero_terminal_snr,
                                      schedule=schedule):
            problems.append(problem)
        if self.window < 1 or not 0 <= self.overlap < self.window:
            problems.append(f"window must be at least 1 and overlap within 0..window-1, got window {self.window}, "
                            f"overlap {self.overlap}")
        for name, value, known in (("window_schedule", self.window_schedule, WINDOW_SCHEDULES),
                                   ("extend", self.extend, EXTEND_POLICIES), ("audio_end", self.audio_end, AUDIO_ENDS)):
            if value not in known:
                problems.append(f"{name} must be one of {known}, got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))


def release_settings(**changes) -> SamplerSettings:
    """The official release's inference: DDIM 25 steps (on the model's schedule), guidance 2 with
    an unconditional branch without controls or reference, shifting 16-frame windows, and
    initial latents that carry the reference."""
    values = dict(steps=25, scheduler="ddim", guidance_scale=2.0, window=16, overlap=0, window_schedule="shift",
                  init_from_reference=True, uncond_without_reference=True)
    return SamplerSettings(**(values | changes))


def match_controls(frames: int | None, audio: AudioFeatures | None, driving: torch.Tensor | None,
                   settings: SamplerSettings) -> tuple[int, AudioFeatures | None, torch.Tensor | None]:
    """The video's frame count (as given, else the longest control's; ``audio_end="shortest"``
    cuts it to the shortest) and the controls fitted to it: driving frames cut or extended by
    ``settings.extend``, audio cut or padded with silence."""
    frames = video_length(frames, audio=None if audio is None else audio.frames,
                          driving=None if driving is None else driving.shape[0], audio_end=settings.audio_end)
    if driving is not None:
        driving = fit_frames(driving, frames, settings.extend)
    if audio is not None:
        audio = audio.padded_to(frames)
    return frames, audio, driving


def fit_frames(per_frame: torch.Tensor, frames: int, extend: str) -> torch.Tensor:
    """Per-driving-frame values ``[F, ...]`` cut to ``frames`` (a view) or extended by the ``extend`` policy."""
    if per_frame.shape[0] >= frames:
        return per_frame[:frames]
    return per_frame[torch.from_numpy(extend_indices(per_frame.shape[0], frames, extend))]


def window_memory(model: AnyMegActor, height: int, width: int, settings: SamplerSettings) -> int:
    """Bytes of activations one window's model call holds at its peak for a ``height`` x ``width``
    video (weights not included): what a memory manager must keep free beside the model."""
    itemsize = next(model.parameters()).element_size()
    return model.activation_elements * settings.window * (height // 8) * (width // 8) * itemsize


def check_reference(reference: torch.Tensor) -> torch.Tensor:
    """A reference image ``[H, W, 3]`` or ``[1, H, W, 3]`` in 0..1, its sides multiples of 16."""
    if reference.ndim == 3:
        reference = reference[None]
    if reference.ndim != 4 or reference.shape[0] != 1 or reference.shape[-1] != 3:
        raise ValueError(f"reference must be one RGB image [H, W, 3] or [1, H, W, 3], got {tuple(reference.shape)}")
    height, width = reference.shape[1:3]
    if height % TOKEN_PIXELS or width % TOKEN_PIXELS:
        raise ValueError(f"reference image is {width}x{height}; width and height must be multiples of "
                         f"{TOKEN_PIXELS} (resize or crop it, e.g. to 512x512)")
    return reference


@torch.no_grad()
def encode_driving(model: AnyMegActor, driving: torch.Tensor, size: tuple[int, int], device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """Driving frames ``[F, H, W, 3]`` in 0..1 -> driven features ``[1, F, C, h, w]``, resized to
    the reference's ``size`` and encoded a few frames at a time."""
    parts = []
    for chunk in driving.split(DRIVING_CHUNK):
        x = chunk.permute(0, 3, 1, 2).to(device, torch.float32)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        parts.append(model.encode_driving((x * 2 - 1).to(dtype)[None]).float())
    return torch.cat(parts, dim=1)


@torch.no_grad()
def sample_video(
    model: AnyMegActor,
    codec: LatentCodec,
    reference: torch.Tensor,
    settings: SamplerSettings,
    *,
    audio: AudioFeatures | None = None,
    driving: torch.Tensor | None = None,
    mouth_attention: MouthAttention | None = None,
    frames: int | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    preview: Preview | None = None,
) -> torch.Tensor:
    """Denoise a video and return its unscaled latents ``[F, C, h, w]`` (float32, CPU).

    ``model`` must already be on ``device`` in the dtype to run in. ``driving``: ``[F, H, W, 3]``
    frames in 0..1 at the model's frame rate (face-dropped or α-scaled as chosen), resized to the
    reference's size. Audio features must be cut at the model's frame rate. The frame count is
    ``frames``, else the longest control's; see :func:`match_controls` for the rest.
    ``progress(done, total)`` is called after each window of each step; raising from it cancels.
    ``mouth_attention``: where the driving frames' mouth and kept region are, when they hide the
    mouth (:meth:`MouthAttention.for_face_drop`): the conditional branch then masks self-attention
    as training did (Eq.2); DiT models only.
    ``preview`` (see :data:`Preview`) shows the video taking shape.
    """
    device = torch.device(device)
    dtype = next(model.parameters()).dtype
    settings.check(model.config.noise_schedule)
    reference = check_reference(reference)
    if audio is not None and abs(audio.fps - model.config.fps) > 1e-3:
        raise ValueError(f"the audio features were cut for {audio.fps:g} fps; this model generates at "
                         f"{model.config.fps:g} fps: encode the audio at the model's frame rate (and resample "
                         "driving frames to it)")
    h, w = reference.shape[1] // 8, reference.shape[2] // 8
    mouth_tokens = _mouth_tokens(model, mouth_attention, driving, (h, w))
    frames, audio, driving = match_controls(frames, audio, driving, settings)
    if mouth_tokens is not None:
        mouth_tokens = tuple(fit_frames(t, frames, settings.extend) for t in mouth_tokens)
    if audio is not None and not model.config.use_audio:
        raise ValueError("audio features were given but this model has no audio attention (use_audio=False)")
    if audio is not None and audio.style != model.config.audio_style:
        raise ValueError(f"the audio features were cut for {audio.style!r} models; this model reads "
                         f"{model.config.audio_style!r} features: encode the audio with that style")
    if audio is not None and audio.features.shape[-1] != model.config.audio_dim:
        raise ValueError(f"audio features are {audio.features.shape[-1]} wide; this model's audio attention takes "
                         f"{model.config.audio_dim} (encode with the Whisper size it was trained with)")
    reference_latents = codec.encode(reference)
    expected = (1, model.config.latent_channels, h, w)
    if tuple(reference_latents.shape) != expected:
        raise ValueError(f"the VAE encodes the {w * 8}x{h * 8} reference as latents {tuple(reference_latents.shape)}; "
                         f"this model takes {expected}, {expected[1]} channels at 1/8 of the size: use the VAE it was "
                         "trained with (the SD VAE, sd-vae-ft-mse, for MegActor-Σ), not one of another model family")
    scale = model.config.vae_scaling_factor
    reference_latents = reference_latents.to(device) * scale
    ref_features = model.encode_reference(reference_latents.to(dtype))
    driven = None if driving is None else encode_driving(model, driving, (h * 8, w * 8), device, dtype)
    audio_tokens = None if audio is None else audio.features.to(device, dtype)[None]
    guided = settings.guidance_scale != 1.0 and (driven is not None or audio_tokens is not None
                                                  or settings.uncond_without_reference)

    scheduler = make_scheduler(settings.scheduler, prediction_type=model.config.prediction_type,
                               zero_terminal_snr=settings.zero_terminal_snr, schedule=model.config.noise_schedule)
    scheduler.set_timesteps(settings.steps, device=device)
    noise = torch.randn((1, frames, model.config.latent_channels, h, w),
                        generator=torch.Generator().manual_seed(settings.seed)).to(device)
    if settings.init_from_reference:
        noise = _noised_reference(scheduler, reference_latents, noise)
    latents = noise * scheduler.init_noise_sigma
    windows = [_windows(settings, frames, step) for step in range(len(scheduler.timesteps))]
    total, done = sum(len(w) for w in windows), 0

    for step, t in enumerate(scheduler.timesteps):
        model_in = scheduler.scale_model_input(latents, t)
        pred = torch.zeros_like(latents)
        weight = torch.zeros(frames, device=device)
        for idx, wts in windows[step]:
            wts = wts.to(device)
            mask = None if mouth_tokens is None else mouth_attention_mask(mouth_tokens[0][idx], mouth_tokens[1][idx])
            pred[:, idx] += _guided_prediction(model, model_in[:, idx], t, ref_features, driven, audio_tokens, idx,
                                               settings, guided, dtype, mask) * wts[None, :, None, None, None]
            weight[idx] += wts
            done += 1
            if progress is not None:
                progress(done, total)
        out = scheduler.step(pred / weight[None, :, None, None, None], t, latents)
        latents = out.prev_sample
        if preview is not None:
            estimate = getattr(out, "pred_original_sample", None)
            preview(step + 1, len(scheduler.timesteps), (latents if estimate is None else estimate)[:, frames // 2])
    return (latents[0] / scale).float().cpu()


def _mouth_tokens(model: AnyMegActor, mouth_attention: MouthAttention | None, driving: torch.Tensor | None,
                  latent_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Eq.2's token masks ``[F, N]`` (mouth, kept region) of the driving frames, checked against them."""
    if mouth_attention is None:
        return None
    if driving is None:
        raise ValueError("mouth_attention was given without driving frames; it describes face-dropped driving frames")
    if mouth_attention.frames != driving.shape[0]:
        raise ValueError(f"mouth_attention has landmarks for {mouth_attention.frames} frames but there are "
                         f"{driving.shape[0]} driving frames: use the landmarks the frames were face-dropped with")
    if not isinstance(model, MegActorSigma):
        raise ValueError("mouth_attention (Eq.2) is for the DiT model; the SD1.5 release samples without it")
    patch = model.config.patch_size
    return mouth_attention.tokens(latent_size[0] // patch, latent_size[1] // patch)


def _windows(settings: SamplerSettings, frames: int, step: int) -> list[tuple[list[int], torch.Tensor]]:
    """The windows of one step, each as frame indices and blending weights."""
    if settings.window_schedule == "shift":
        return [(w, torch.ones(len(w))) for w in shifted_windows(frames, settings.window, step)]
    return [(list(w), blend_weights(w, frames, settings.overlap))
            for w in context_windows(frames, settings.window, settings.overlap)]


def _noised_reference(scheduler, reference_latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The release's starting point: the reference latent in every frame, noised to the schedule's
    last training timestep (variance-preserving: sqrt(ᾱ)·ref + sqrt(1-ᾱ)·noise)."""
    alpha = scheduler.alphas_cumprod[-1].to(noise.device, torch.float32)
    return alpha.sqrt() * reference_latents[:, None].float() + (1 - alpha).sqrt() * noise


def _stack(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None else torch.cat([a, b])


def _guided_prediction(model, x, t, reference, driven, audio, idx, settings: SamplerSettings, guided: bool, dtype,
                       mask: torch.Tensor | None = None):
    """The guided prediction (noise or v) for one window ``x`` ``[1, W, C, h, w]`` (float32);
    ``mask``, Eq.2's ``[W, N, N]``, applies to the conditional branch (the other has no driving frames)."""
    driven_w = None if driven is None else driven[:, idx].to(dtype)
    audio_w = None if audio is None else audio[:, idx]
    lam = torch.tensor([settings.audio_scale], device=x.device, dtype=dtype)
    channels = x.shape[2]

    def run(latents, reference_in, driven_in, audio_in, scale, mask_in=None):
        masked = {} if mask_in is None else {"attention_mask": mask_in}
        out = model(latents.to(dtype), t, reference=reference_in, driven=driven_in, audio=audio_in,
                    audio_scale=scale if audio_in is not None else 1.0, **masked)
        return out[:, :, :channels].float()  # the other channels are PixArt-α's learned variance

    if not guided:
        return run(x, reference, driven_w, audio_w, lam, None if mask is None else mask[None])
    null_driven, null_audio, null_scale = model.null_controls(driven_w, audio_w)
    null_scale = torch.tensor([null_scale], device=x.device, dtype=dtype)
    if settings.uncond_without_reference and reference is not None:
        reference = reference.first(1)  # the release: the unconditional branch has no reference either
    # Conditional and unconditional branches as one batch (SD1.5 on the CPU: 0.79x two calls at 128², equal at 256²).
    if mask is not None:
        mask = torch.stack([mask, torch.ones_like(mask)])
    cond, uncond = run(torch.cat([x, x]), reference, _stack(driven_w, null_driven), _stack(audio_w, null_audio),
                       torch.cat([lam, null_scale]), mask).chunk(2)
    return uncond + settings.guidance_scale * (cond - uncond)
