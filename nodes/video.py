"""Resample Frames: a driving video at any frame rate brought to the model's."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..megactor_core.pipeline.timeline import constant_rate_indices


class ResampleFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorResampleFrames",
            display_name="Resample Frames to fps",
            category="MegActor-Σ",
            description="Brings frames to another frame rate by their times (each output frame shows the source "
                        "frame nearest its time): a 30, 24 or 29.97 fps driving video becomes the model's 25 fps "
                        "before face-drop, so its motion keeps its timing against the audio. Same rate: unchanged.",
            inputs=[
                io.Image.Input("images"),
                io.Float.Input("fps", default=30.0, min=0.01, max=1000.0, step=0.001,
                               tooltip="the frames' own rate (Get Video Components' fps)"),
                io.Float.Input("target_fps", default=25.0, min=0.01, max=1000.0, step=0.001,
                               tooltip="the rate to make (Load MegActor-Σ Model's fps)"),
            ],
            outputs=[io.Image.Output("images_out", display_name="images"),
                     io.Float.Output("fps_out", display_name="fps")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, fps: float, target_fps: float) -> io.NodeOutput:
        picked = constant_rate_indices(images.shape[0], fps, target_fps)
        return io.NodeOutput(images[torch.from_numpy(picked)], target_fps)
