"""Thin ComfyUI adapters over ``megactor_core``: types in and out, model paths, progress."""

from comfy_api.latest import ComfyExtension, io

from .audio import AudioEncode, LoadWhisperModel
from .landmarks import (
    DetectFaceLandmarks,
    FaceDropFrames,
    FaceRegionMasks,
    LandmarksFromPoseKeypoint,
    LoadDWPose,
    MotionAmplitude,
    ReleaseFaceDrop,
)
from .loader import LoadMegActorModel
from .model_paths import register_model_folders
from .portrait import CropFace, PasteBack
from .sampler import MegActorSampler
from .video import ResampleFrames

NODES: list[type[io.ComfyNode]] = [
    LoadMegActorModel,
    LoadWhisperModel,
    AudioEncode,
    LoadDWPose,
    DetectFaceLandmarks,
    LandmarksFromPoseKeypoint,
    FaceRegionMasks,
    FaceDropFrames,
    ReleaseFaceDrop,
    MotionAmplitude,
    MegActorSampler,
    CropFace,
    PasteBack,
    ResampleFrames,
]


class MegActorExtension(ComfyExtension):
    """The plugin as ComfyUI's extension API sees it: our nodes."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> MegActorExtension:
    """Called by ComfyUI (0.3.48 or newer) when it loads the plugin: registers our model folders
    (``ComfyExtension.on_load`` is not called by ComfyUI 0.8.0, so this is the place)."""
    register_model_folders()
    return MegActorExtension()
