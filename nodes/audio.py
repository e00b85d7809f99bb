"""Load Whisper Model and MegActor-Σ Audio Encode."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.model_management as mm
import comfy.model_patcher
import torch
from comfy_api.latest import io

from ..megactor_core.audio import AUDIO_STYLES, AudioFeatures, WhisperEncoder, encode_audio, load_whisper_encoder
from ..megactor_core.dtypes import DTYPES, parse_dtype
from .model_paths import model_choices, model_path
from .progress import ComfyProgress

WhisperType = io.Custom("MEGACTOR_WHISPER")
AudioFeaturesType = io.Custom("MEGACTOR_AUDIO_FEATURES")
log = logging.getLogger(__name__)


@dataclass
class WhisperModel:
    """The frozen encoder in a ComfyUI ModelPatcher (ComfyUI's model management moves it)."""

    patcher: comfy.model_patcher.ModelPatcher
    dtype: torch.dtype

    @property
    def encoder(self) -> WhisperEncoder:
        return self.patcher.model


class LoadWhisperModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorLoadWhisper",
            display_name="Load Whisper Model",
            category="MegActor-Σ",
            description="Loads a Whisper encoder (openai .pt or Hugging Face folder) from ComfyUI/models/whisper/.",
            inputs=[
                io.Combo.Input("model", options=model_choices("whisper", with_subfolders=True),
                               tooltip="tiny.pt (the paper's choice) or a Hugging Face Whisper folder"),
                io.Combo.Input("precision", options=["auto", *DTYPES], default="auto",
                               tooltip="auto: fp16 on GPU, fp32 on CPU"),
            ],
            outputs=[WhisperType.Output("whisper")],
        )

    @classmethod
    def execute(cls, model: str, precision: str) -> io.NodeOutput:
        load_device, offload_device = mm.get_torch_device(), mm.text_encoder_offload_device()
        if precision == "auto":
            dtype = torch.float16 if mm.should_use_fp16(load_device) else torch.float32
        else:
            dtype = parse_dtype(precision)
        encoder = load_whisper_encoder(model_path("whisper", model), dtype)
        patcher = comfy.model_patcher.ModelPatcher(encoder, load_device=load_device, offload_device=offload_device)
        return io.NodeOutput(WhisperModel(patcher, dtype))


class AudioEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorAudioEncode",
            display_name="MegActor-Σ Audio Encode",
            category="MegActor-Σ",
            description="Turns audio into per-frame Whisper features for a video at the given fps (the model's). "
                        "The frame count follows the audio unless given; audio shorter than the frames asked for is "
                        "extended with silence (a warning says so), here or later by the sampler.",
            inputs=[
                io.Audio.Input("audio"),
                WhisperType.Input("whisper"),
                io.Float.Input("fps", default=25.0, min=0.0, max=240.0, step=0.001,
                               tooltip="frame rate of the video to make: the model's (Load MegActor-Σ Model's fps)"),
                io.Int.Input("frame_count", default=0, min=0, max=100000,
                             tooltip="0: as many frames as the audio lasts"),
                io.Int.Input("context", default=4, min=0, max=50,
                             tooltip="Whisper positions (20 ms each) taken on either side of a frame (dit style)"),
                io.Combo.Input("style", options=list(AUDIO_STYLES), default="dit",
                               tooltip="the model the features are for: dit (this project's checkpoints) or "
                                       "sd15-release (the official megactor-sigma.ckpt, whose own feature cutting "
                                       "this reproduces)"),
            ],
            outputs=[AudioFeaturesType.Output("audio_features"),
                     io.Int.Output("frame_count_out", display_name="frame_count")],
        )

    @classmethod
    def execute(cls, audio, whisper: WhisperModel, fps: float, frame_count: int, context: int,
                style: str = "dit") -> io.NodeOutput:
        if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
            raise ValueError("audio must be a ComfyUI AUDIO: a dict with 'waveform' [batch, channels, samples] "
                             f"and 'sample_rate'; got {type(audio).__name__}")
        progress = ComfyProgress()
        mm.load_models_gpu([whisper.patcher], force_full_load=True)
        features: AudioFeatures = encode_audio(
            whisper.encoder, audio["waveform"], audio["sample_rate"], fps,
            frames=frame_count or None, context=context, style=style, progress=progress,
        )
        if features.padded_frames:
            log.warning("MegActor-Σ Audio Encode: the audio covers %d frames; %d more were padded with silence",
                        features.frames - features.padded_frames, features.padded_frames)
        return io.NodeOutput(features, features.frames)
