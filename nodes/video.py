"""Resample Frames: a driving video at any frame rate brought to the model's."""

from __future__ import annotations

import torch

from ..megactor_core.pipeline.timeline import constant_rate_indices


class ResampleFrames:
    DESCRIPTION = ("Brings frames to another frame rate by their times (each output frame shows the source frame "
                   "nearest its time): a 30, 24 or 29.97 fps driving video becomes the model's 25 fps before "
                   "face-drop, so its motion keeps its timing against the audio. Same rate: unchanged.")
    CATEGORY = "MegActor-Σ"
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("images", "fps")
    FUNCTION = "resample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",),
            "fps": ("FLOAT", {"default": 30.0, "min": 0.01, "max": 1000.0, "step": 0.001,
                              "tooltip": "the frames' own rate (Get Video Components' fps)"}),
            "target_fps": ("FLOAT", {"default": 25.0, "min": 0.01, "max": 1000.0, "step": 0.001,
                                     "tooltip": "the rate to make (Load MegActor-Σ Model's fps)"}),
        }}

    def resample(self, images: torch.Tensor, fps: float, target_fps: float):
        picked = constant_rate_indices(images.shape[0], fps, target_fps)
        return (images[torch.from_numpy(picked)], target_fps)
