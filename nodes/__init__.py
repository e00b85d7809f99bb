"""Thin ComfyUI adapters over ``megactor_core``: types in and out, model paths, progress."""

from .audio import AudioEncode, LoadWhisperModel
from .landmarks import (
    FaceDropFrames,
    FaceLandmarksNode,
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

register_model_folders()

NODE_CLASS_MAPPINGS = {
    "MegActorLoadModel": LoadMegActorModel,
    "MegActorLoadWhisper": LoadWhisperModel,
    "MegActorAudioEncode": AudioEncode,
    "MegActorLoadDWPose": LoadDWPose,
    "MegActorFaceLandmarks": FaceLandmarksNode,
    "MegActorLandmarksFromPoseKeypoint": LandmarksFromPoseKeypoint,
    "MegActorFaceRegionMasks": FaceRegionMasks,
    "MegActorFaceDrop": FaceDropFrames,
    "MegActorReleaseFaceDrop": ReleaseFaceDrop,
    "MegActorMotionAmplitude": MotionAmplitude,
    "MegActorSampler": MegActorSampler,
    "MegActorCropFace": CropFace,
    "MegActorPasteBack": PasteBack,
    "MegActorResampleFrames": ResampleFrames,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MegActorLoadModel": "Load MegActor-Σ Model",
    "MegActorLoadWhisper": "Load Whisper Model",
    "MegActorAudioEncode": "MegActor-Σ Audio Encode",
    "MegActorLoadDWPose": "Load DWPose (MegActor-Σ)",
    "MegActorFaceLandmarks": "MegActor-Σ Face Landmarks",
    "MegActorLandmarksFromPoseKeypoint": "Face Landmarks from POSE_KEYPOINT",
    "MegActorFaceRegionMasks": "Face Region Masks",
    "MegActorFaceDrop": "Face-Drop Driving Frames",
    "MegActorReleaseFaceDrop": "Face-Drop, SD1.5 Release Style",
    "MegActorMotionAmplitude": "Motion Amplitude (α)",
    "MegActorSampler": "MegActor-Σ Sampler",
    "MegActorCropFace": "Crop Face (MegActor-Σ)",
    "MegActorPasteBack": "Paste Back (MegActor-Σ)",
    "MegActorResampleFrames": "Resample Frames to fps",
}
