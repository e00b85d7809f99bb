"""Load MegActor-Σ Model."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management as mm
import comfy.model_patcher
import torch
from comfy_api.latest import io

from ..megactor_core.dtypes import DTYPES, parse_dtype
from ..megactor_core.models import AnyMegActor, load_model
from .model_paths import model_choices, model_path
from .streaming import streamable

MegActorModelType = io.Custom("MEGACTOR_MODEL")


@dataclass
class MegActorModel:
    """What the loader gives other nodes: the network in a ComfyUI ModelPatcher, so ComfyUI's model
    management moves it (loads it for sampling, unloads it when another model needs the room)."""

    patcher: comfy.model_patcher.ModelPatcher
    dtype: torch.dtype
    path: str

    @property
    def model(self) -> AnyMegActor:
        return self.patcher.model

    @property
    def load_device(self) -> torch.device:
        return self.patcher.load_device


class LoadMegActorModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorLoadModel",
            display_name="Load MegActor-Σ Model",
            category="MegActor-Σ",
            description="Loads a MegActor-Σ model from ComfyUI/models/megactor/: a DiT checkpoint of this project "
                        "(.safetensors) or the official SD1.5 release (megactor-sigma.ckpt, with "
                        "sd15_empty_str_embedding.pt beside it). Both work with every other MegActor-Σ node. Also "
                        "gives the frame rate the model generates at.",
            inputs=[
                io.Combo.Input("checkpoint", options=model_choices("megactor"),
                               tooltip="a .safetensors DiT checkpoint or the official megactor-sigma.ckpt "
                                       "in ComfyUI/models/megactor/"),
                io.Combo.Input("precision", options=["auto", *DTYPES], default="auto",
                               tooltip="auto: what ComfyUI picks for diffusion models on this device "
                                       "(fp16/bf16 on GPUs that run them well, fp32 on CPU)"),
                io.Boolean.Input("torch_compile", default=False,
                                 tooltip="torch.compile the denoiser's repeated blocks: faster sampling steps after "
                                         "a slow first run while it compiles (needs Triton on GPU, a C++ compiler "
                                         "on CPU)"),
            ],
            outputs=[
                MegActorModelType.Output("model", tooltip="the model"),
                io.Float.Output("fps", tooltip="the frame rate it generates at: give it to Audio Encode, Resample "
                                               "Frames and Create Video"),
            ],
        )

    @classmethod
    def execute(cls, checkpoint: str, precision: str, torch_compile: bool = False) -> io.NodeOutput:
        path = model_path("megactor", checkpoint)
        load_device = mm.get_torch_device()
        offload_device = mm.unet_offload_device()
        if precision == "auto":
            dtype = mm.unet_dtype(device=load_device,
                                  supported_dtypes=[torch.bfloat16, torch.float16, torch.float32])
        else:
            dtype = parse_dtype(precision)
        model = streamable(load_model(path, device=offload_device, dtype=dtype))
        if torch_compile:
            model.compile_blocks()
        patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
        return io.NodeOutput(MegActorModel(patcher, dtype, path), float(model.config.fps))
