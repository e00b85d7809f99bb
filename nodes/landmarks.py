"""Face landmarks, region masks, face-drop driving frames and motion amplitude (α)."""

from __future__ import annotations

import comfy.model_management as mm
import torch

from ..megactor_core.landmarks.amplitude import amplify_motion
from ..megactor_core.landmarks.detect import detect_landmarks
from ..megactor_core.landmarks.draw import draw_landmarks
from ..megactor_core.landmarks.dwpose import DWPose
from ..megactor_core.landmarks.face import FaceLandmarks
from ..megactor_core.landmarks.face_drop import KEEP_CHOICES, face_drop
from ..megactor_core.landmarks.pose_keypoint import landmarks_from_pose_keypoint
from ..megactor_core.landmarks.regions import REGIONS, region_masks
from ..megactor_core.landmarks.release_drop import release_face_drop
from ..megactor_core.layout import images_from_numpy, images_to_numpy, images_to_uint8
from .model_paths import model_choices, model_path
from .progress import comfy_progress

DWPOSE_TYPE = "MEGACTOR_DWPOSE"
LANDMARKS_TYPE = "MEGACTOR_LANDMARKS"
CATEGORY = "MegActor-Σ/landmarks"


def _choice(folder: str, preferred: str) -> tuple[list[str], dict]:
    choices = model_choices(folder)
    return choices, {"default": preferred if preferred in choices else (choices[0] if choices else preferred)}


class LoadDWPose:
    DESCRIPTION = ("Loads DWPose's two ONNX files (the YOLOX person detector and the whole-body pose model) "
                   "from ComfyUI/models/dwpose/ — the same files comfyui_controlnet_aux uses.")
    CATEGORY = CATEGORY
    RETURN_TYPES = (DWPOSE_TYPE,)
    RETURN_NAMES = ("dwpose",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"detector": _choice("dwpose", "yolox_l.onnx"),
                             "pose_model": _choice("dwpose", "dw-ll_ucoco_384.onnx")}}

    def load(self, detector: str, pose_model: str):
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] \
            if mm.get_torch_device().type == "cuda" else ["CPUExecutionProvider"]
        return (DWPose(model_path("dwpose", detector), model_path("dwpose", pose_model), providers=providers),)


class FaceLandmarksNode:
    DESCRIPTION = ("Finds one face per frame (the largest, or the n-th largest) with DWPose. Frames without "
                   "that face are filled in from their neighbours and listed in the log; a video with no face "
                   "is an error. Also gives every person's keypoints as POSE_KEYPOINT and a preview.")
    CATEGORY = CATEGORY
    RETURN_TYPES = (LANDMARKS_TYPE, "POSE_KEYPOINT", "IMAGE")
    RETURN_NAMES = ("landmarks", "pose_keypoint", "preview")
    FUNCTION = "detect"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",),
            "dwpose": (DWPOSE_TYPE,),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 16, "tooltip": "0: the largest face"}),
            "min_score": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "confidence a face point needs to count as found (as "
                                               "comfyui_controlnet_aux's 0.3); a face needs half its points, "
                                               "missing ones are filled in"}),
        }}

    def detect(self, images: torch.Tensor, dwpose: DWPose, face_index: int, min_score: float):
        frames = images_to_uint8(images)
        progress = comfy_progress()
        landmarks, poses = detect_landmarks(dwpose, frames, face_index=face_index, min_score=min_score,
                                            progress=progress)
        return (landmarks, poses, images_from_numpy(draw_landmarks(frames, landmarks)))


class LandmarksFromPoseKeypoint:
    DESCRIPTION = "Takes the face from POSE_KEYPOINT (e.g. comfyui_controlnet_aux's DWPose Estimator) instead."
    CATEGORY = CATEGORY
    RETURN_TYPES = (LANDMARKS_TYPE,)
    RETURN_NAMES = ("landmarks",)
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pose_keypoint": ("POSE_KEYPOINT",),
                             "face_index": ("INT", {"default": 0, "min": 0, "max": 16})}}

    def convert(self, pose_keypoint, face_index: int):
        return (landmarks_from_pose_keypoint(pose_keypoint, face_index=face_index),)


def _region_inputs() -> dict:
    return {
        "dilate": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 1.0, "step": 0.01,
                             "tooltip": "grow the region by this fraction of the face size"}),
        "feather": ("FLOAT", {"default": 0.02, "min": 0.0, "max": 1.0, "step": 0.01,
                              "tooltip": "soften the edge over this fraction of the face size"}),
    }


class FaceRegionMasks:
    DESCRIPTION = "Eyes, mouth, both or whole-face masks from the landmarks."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    FUNCTION = "masks"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"landmarks": (LANDMARKS_TYPE,), "region": (list(REGIONS),), **_region_inputs()}}

    def masks(self, landmarks: FaceLandmarks, region: str, dilate: float, feather: float):
        return (torch.from_numpy(region_masks(landmarks, region, dilate=dilate, feather=feather)),)


class FaceDropFrames:
    DESCRIPTION = ("Face-drop driving frames (paper Eq.1): keeps the eyes, the mouth or both and blanks the "
                   "rest of the face; hair and background stay unless drop_background.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "drop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "landmarks": (LANDMARKS_TYPE,), "keep": (list(KEEP_CHOICES),),
                             **_region_inputs(), "drop_background": ("BOOLEAN", {"default": False})}}

    def drop(self, images, landmarks: FaceLandmarks, keep: str, dilate: float, feather: float,
             drop_background: bool):
        frames = face_drop(images_to_numpy(images), landmarks, keep, dilate=dilate, feather=feather,
                           drop_background=drop_background)
        return (images_from_numpy(frames),)


class ReleaseFaceDrop:
    DESCRIPTION = ("Driving frames as the official SD1.5 release prepares them: black but for a rectangle around "
                   "each brow+eye and/or the mouth (1.5x the feature's landmark box), in grey, and, given the "
                   "reference portrait's landmarks, moved so the first frame's face box lands on the reference's.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "drop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "landmarks": (LANDMARKS_TYPE,),
                             "keep": (list(KEEP_CHOICES), {"default": "both"})},
                "optional": {"reference_landmarks": (LANDMARKS_TYPE, {
                    "tooltip": "landmarks of the reference portrait (Face Landmarks on it): aligns the face"})}}

    def drop(self, images, landmarks: FaceLandmarks, keep: str, reference_landmarks: FaceLandmarks | None = None):
        return (images_from_numpy(release_face_drop(images_to_numpy(images), landmarks, keep, reference_landmarks)),)


class MotionAmplitude:
    DESCRIPTION = ("Scales the head motion of driving frames (paper Eq.3): α=1 unchanged, 0 holds the head still "
                   "in frame 1's pose, 2 doubles it. Scale and translation follow α unless given their own (≥ 0).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", LANDMARKS_TYPE)
    RETURN_NAMES = ("images", "landmarks")
    FUNCTION = "amplify"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",),
            "landmarks": (LANDMARKS_TYPE,),
            "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0, "step": 0.05}),
            "alpha_scale": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 4.0, "step": 0.05,
                                      "tooltip": "-1: same as alpha"}),
            "alpha_translation": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 4.0, "step": 0.05,
                                            "tooltip": "-1: same as alpha"}),
        }}

    def amplify(self, images, landmarks: FaceLandmarks, alpha: float, alpha_scale: float, alpha_translation: float):
        frames, moved = amplify_motion(images_to_numpy(images), landmarks, alpha,
                                       alpha_scale=None if alpha_scale < 0 else alpha_scale,
                                       alpha_translation=None if alpha_translation < 0 else alpha_translation)
        return (images_from_numpy(frames), moved)
