"""MegActor-Σ Sampler: reference portrait + audio and/or driving frames -> video latents and frames."""

from __future__ import annotations

import comfy.latent_formats
import comfy.model_management as mm
import latent_preview
import torch
from comfy_api.latest import io

from ..megactor_core.audio import AudioFeatures
from ..megactor_core.landmarks.mouth_attention import MouthAttention
from ..megactor_core.pipeline import (
    AUDIO_ENDS,
    EXTEND_POLICIES,
    SCHEDULERS,
    WINDOW_SCHEDULES,
    SamplerSettings,
    decode_video,
    sample_video,
    window_memory,
)
from .audio import AudioFeaturesType
from .landmarks import MouthAttentionType
from .loader import MegActorModel, MegActorModelType
from .progress import ComfyProgress

DEFAULTS = SamplerSettings()


class ComfyVAE:
    """ComfyUI's ``VAE`` as the pipeline's latent codec (images <-> unscaled latents)."""

    def __init__(self, vae) -> None:
        self.vae = vae

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images[..., :3]).float().cpu()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents).float().cpu()


class MegActorSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorSampler",
            display_name="MegActor-Σ Sampler",
            category="MegActor-Σ",
            description="Animates the reference portrait (Crop Face's crop). Give audio features (mouth follows the "
                        "audio), driving frames at the model's frame rate (face-dropped or α-scaled; face follows "
                        "them) or both. The video is frame_count frames if set, else as long as the longer control: "
                        "driving frames that run out are extended (extend), audio that runs out is padded with "
                        "silence or ends the video (audio_end). Long videos run in windows of frames blended at "
                        "every step, so memory does not grow with length. Outputs per-frame latents (for VAE Decode) "
                        "and the decoded frames.",
            inputs=[
                MegActorModelType.Input("model"),
                io.Vae.Input("vae", tooltip="the SD VAE (sd-vae-ft-mse) from core Load VAE"),
                io.Image.Input("reference", tooltip="the portrait; width and height multiples of 16 (e.g. 512x512)"),
                io.Int.Input("frame_count", default=0, min=0, max=100000,
                             tooltip="0: as long as the longer control (audio or driving frames)"),
                io.Int.Input("steps", default=DEFAULTS.steps, min=1, max=1000),
                io.Combo.Input("scheduler", options=sorted(SCHEDULERS), default=DEFAULTS.scheduler),
                io.Boolean.Input("zero_terminal_snr", default=False, tooltip="only for models trained with "
                                                                             "v-prediction"),
                io.Float.Input("guidance_scale", default=DEFAULTS.guidance_scale, min=1.0, max=20.0, step=0.1,
                               tooltip="strength of audio + driving together (the reference is never dropped)"),
                io.Float.Input("audio_scale", default=DEFAULTS.audio_scale, min=0.0, max=4.0, step=0.05,
                               tooltip="λ of Eq.4: how strongly the mouth follows the audio"),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                io.Int.Input("window", default=DEFAULTS.window, min=1, max=1024, tooltip="frames denoised together"),
                io.Int.Input("overlap", default=DEFAULTS.overlap, min=0, max=1023,
                             tooltip="frames shared by neighbouring windows, cross-faded (at most window - 1; blend "
                                     "windows only)"),
                io.Combo.Input("window_schedule", options=list(WINDOW_SCHEDULES), default=DEFAULTS.window_schedule,
                               tooltip="blend: overlapping windows cross-faded; shift: the official release's "
                                       "windows, not overlapping, moved by one frame every step"),
                io.Boolean.Input("init_from_reference", default=DEFAULTS.init_from_reference,
                                 tooltip="start from the reference portrait noised to the last timestep (the "
                                         "official release) instead of pure noise"),
                io.Boolean.Input("uncond_without_reference", default=DEFAULTS.uncond_without_reference,
                                 tooltip="the guidance's unconditional branch also drops the reference (the official "
                                         "release; costs a second model call per window)"),
                io.Combo.Input("extend", options=list(EXTEND_POLICIES), default=DEFAULTS.extend,
                               tooltip="driving frames shorter than the video: pingpong (forward then backward, no "
                                       "jump), loop, hold the last frame, or error"),
                io.Combo.Input("audio_end", options=list(AUDIO_ENDS), default=DEFAULTS.audio_end,
                               tooltip="audio shorter than the video: silence (the mouth rests) or shortest (the "
                                       "video ends with the shorter control)"),
                AudioFeaturesType.Input("audio_features", optional=True),
                io.Image.Input("driving", optional=True,
                               tooltip="driving frames (e.g. from Face-Drop or Motion Amplitude)"),
                MouthAttentionType.Input("mouth_attention", optional=True,
                                         tooltip="from Face-Drop when its frames hide the mouth: keeps the mouth "
                                                 "from reading the kept region, as in training (Eq.2); DiT only"),
            ],
            outputs=[io.Latent.Output("latent"), io.Image.Output("images")],
        )

    @classmethod
    def execute(cls, model: MegActorModel, vae, reference: torch.Tensor, frame_count: int, steps: int,
                scheduler: str, zero_terminal_snr: bool, guidance_scale: float, audio_scale: float, seed: int,
                window: int, overlap: int, window_schedule: str = DEFAULTS.window_schedule,
                init_from_reference: bool = DEFAULTS.init_from_reference,
                uncond_without_reference: bool = DEFAULTS.uncond_without_reference, extend: str = DEFAULTS.extend,
                audio_end: str = DEFAULTS.audio_end, audio_features: AudioFeatures | None = None,
                driving: torch.Tensor | None = None, mouth_attention: MouthAttention | None = None) -> io.NodeOutput:
        settings = SamplerSettings(steps=steps, scheduler=scheduler, zero_terminal_snr=zero_terminal_snr,
                                   guidance_scale=guidance_scale, audio_scale=audio_scale, seed=seed,
                                   window=window, overlap=min(overlap, window - 1), window_schedule=window_schedule,
                                   init_from_reference=init_from_reference,
                                   uncond_without_reference=uncond_without_reference, extend=extend,
                                   audio_end=audio_end)
        settings.check(model.model.config.noise_schedule)  # before ComfyUI loads the models
        codec = ComfyVAE(vae)
        # Both at once, so encoding the reference with the VAE does not push the model out again; with
        # room kept for a window's activations. Whole if it fits, else (or with --lowvram) ComfyUI
        # streams the weights that do not fit (the loader made the layers streamable).
        height, width = reference.shape[1:3]
        mm.load_models_gpu([model.patcher, vae.patcher],
                           memory_required=window_memory(model.model, height, width, settings))
        progress = ComfyProgress(_previewer(model))
        latents = sample_video(model.model, codec, reference[:1], settings, audio=audio_features, driving=driving,
                               mouth_attention=mouth_attention, frames=frame_count or None,
                               device=model.load_device, progress=progress, preview=progress.preview)
        return io.NodeOutput({"samples": latents}, decode_video(codec, latents, progress=ComfyProgress()))


def _previewer(model: MegActorModel):
    """ComfyUI's latent previewer for SD latents (latent2rgb, or TAESD when the user has it)."""
    if model.model.config.latent_channels != 4:
        return None
    return latent_preview.get_previewer(model.load_device, comfy.latent_formats.SD15())
