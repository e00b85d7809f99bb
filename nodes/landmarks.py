"""Face landmarks, region masks, face-drop driving frames and motion amplitude (α)."""

from __future__ import annotations

import comfy.model_management as mm
import torch
from comfy_api.latest import io

from ..megactor_core.landmarks.amplitude import amplify_motion
from ..megactor_core.landmarks.detect import detect_landmarks
from ..megactor_core.landmarks.draw import draw_landmarks
from ..megactor_core.landmarks.dwpose import DWPose
from ..megactor_core.landmarks.face import FaceLandmarks
from ..megactor_core.landmarks.face_drop import KEEP_CHOICES, face_drop
from ..megactor_core.landmarks.mouth_attention import MouthAttention
from ..megactor_core.landmarks.pose_keypoint import landmarks_from_pose_keypoint
from ..megactor_core.landmarks.regions import REGIONS, region_masks
from ..megactor_core.landmarks.release_drop import release_face_drop
from ..megactor_core.layout import images_from_numpy, images_to_numpy, images_to_uint8
from .model_paths import model_choices, model_path
from .progress import ComfyProgress

DWPoseType = io.Custom("MEGACTOR_DWPOSE")
LandmarksType = io.Custom("MEGACTOR_LANDMARKS")
MouthAttentionType = io.Custom("MEGACTOR_MOUTH_ATTENTION")
PoseKeypoint = io.Custom("POSE_KEYPOINT")
CATEGORY = "MegActor-Σ/landmarks"


def _model_file(name: str, preferred: str) -> io.Combo.Input:
    choices = model_choices("dwpose")
    return io.Combo.Input(name, options=choices,
                          default=preferred if preferred in choices else (choices[0] if choices else preferred))


def _region_inputs() -> list[io.Input]:
    return [
        io.Float.Input("dilate", default=0.05, min=0.0, max=1.0, step=0.01,
                       tooltip="grow the region by this fraction of the face size"),
        io.Float.Input("feather", default=0.02, min=0.0, max=1.0, step=0.01,
                       tooltip="soften the edge over this fraction of the face size"),
    ]


class LoadDWPose(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorLoadDWPose",
            display_name="Load DWPose (MegActor-Σ)",
            category=CATEGORY,
            description="Loads DWPose's two ONNX files (the YOLOX person detector and the whole-body pose model) "
                        "from ComfyUI/models/dwpose/ — the same files comfyui_controlnet_aux uses.",
            inputs=[_model_file("detector", "yolox_l.onnx"), _model_file("pose_model", "dw-ll_ucoco_384.onnx")],
            outputs=[DWPoseType.Output("dwpose")],
        )

    @classmethod
    def execute(cls, detector: str, pose_model: str) -> io.NodeOutput:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] \
            if mm.get_torch_device().type == "cuda" else ["CPUExecutionProvider"]
        return io.NodeOutput(DWPose(model_path("dwpose", detector), model_path("dwpose", pose_model),
                                    providers=providers))


class DetectFaceLandmarks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorFaceLandmarks",
            display_name="MegActor-Σ Face Landmarks",
            category=CATEGORY,
            description="Finds one face per frame (the largest, or the n-th largest) with DWPose. Frames without "
                        "that face are filled in from their neighbours and listed in the log; a video with no face "
                        "is an error. Also gives every person's keypoints as POSE_KEYPOINT and a preview.",
            inputs=[
                io.Image.Input("images"),
                DWPoseType.Input("dwpose"),
                io.Int.Input("face_index", default=0, min=0, max=16, tooltip="0: the largest face"),
                io.Float.Input("min_score", default=0.3, min=0.0, max=1.0, step=0.01,
                               tooltip="confidence a face point needs to count as found (as comfyui_controlnet_aux's "
                                       "0.3); a face needs half its points, missing ones are filled in"),
            ],
            outputs=[LandmarksType.Output("landmarks"), PoseKeypoint.Output("pose_keypoint"),
                     io.Image.Output("preview")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, dwpose: DWPose, face_index: int, min_score: float) -> io.NodeOutput:
        frames = images_to_uint8(images)
        landmarks, poses = detect_landmarks(dwpose, frames, face_index=face_index, min_score=min_score,
                                            progress=ComfyProgress())
        return io.NodeOutput(landmarks, poses, images_from_numpy(draw_landmarks(frames, landmarks)))


class LandmarksFromPoseKeypoint(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorLandmarksFromPoseKeypoint",
            display_name="Face Landmarks from POSE_KEYPOINT",
            category=CATEGORY,
            description="Takes the face from POSE_KEYPOINT (e.g. comfyui_controlnet_aux's DWPose Estimator) "
                        "instead.",
            inputs=[PoseKeypoint.Input("pose_keypoint"), io.Int.Input("face_index", default=0, min=0, max=16)],
            outputs=[LandmarksType.Output("landmarks")],
        )

    @classmethod
    def execute(cls, pose_keypoint, face_index: int) -> io.NodeOutput:
        return io.NodeOutput(landmarks_from_pose_keypoint(pose_keypoint, face_index=face_index))


class FaceRegionMasks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorFaceRegionMasks",
            display_name="Face Region Masks",
            category=CATEGORY,
            description="Eyes, mouth, both or whole-face masks from the landmarks.",
            inputs=[LandmarksType.Input("landmarks"), io.Combo.Input("region", options=list(REGIONS)),
                    *_region_inputs()],
            outputs=[io.Mask.Output("mask")],
        )

    @classmethod
    def execute(cls, landmarks: FaceLandmarks, region: str, dilate: float, feather: float) -> io.NodeOutput:
        return io.NodeOutput(torch.from_numpy(region_masks(landmarks, region, dilate=dilate, feather=feather)))


class FaceDropFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorFaceDrop",
            display_name="Face-Drop Driving Frames",
            category=CATEGORY,
            description="Face-drop driving frames (paper Eq.1): keeps the eyes, the mouth or both and blanks the "
                        "rest of the face; hair and background stay unless drop_background. Frames that hide the "
                        "mouth also give mouth_attention: connect it to the sampler, which then keeps the mouth "
                        "from reading the kept region, as in training (Eq.2), so it follows the audio.",
            inputs=[io.Image.Input("images"), LandmarksType.Input("landmarks"),
                    io.Combo.Input("keep", options=list(KEEP_CHOICES)), *_region_inputs(),
                    io.Boolean.Input("drop_background", default=False)],
            outputs=[io.Image.Output("images_out", display_name="images"),
                     MouthAttentionType.Output("mouth_attention",
                                               tooltip="for the sampler; empty when keep shows the mouth")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, landmarks: FaceLandmarks, keep: str, dilate: float, feather: float,
                drop_background: bool) -> io.NodeOutput:
        frames = face_drop(images_to_numpy(images), landmarks, keep, dilate=dilate, feather=feather,
                           drop_background=drop_background)
        return io.NodeOutput(images_from_numpy(frames), MouthAttention.for_face_drop(landmarks, keep, dilate=dilate))


class ReleaseFaceDrop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorReleaseFaceDrop",
            display_name="Face-Drop, SD1.5 Release Style",
            category=CATEGORY,
            description="Driving frames as the official SD1.5 release prepares them: black but for a rectangle "
                        "around each brow+eye and/or the mouth (1.5x the feature's landmark box), in grey, and, given "
                        "the reference portrait's landmarks, moved so the first frame's face box lands on the "
                        "reference's.",
            inputs=[io.Image.Input("images"), LandmarksType.Input("landmarks"),
                    io.Combo.Input("keep", options=list(KEEP_CHOICES), default="both"),
                    LandmarksType.Input("reference_landmarks", optional=True,
                                        tooltip="landmarks of the reference portrait (Face Landmarks on it): aligns "
                                                "the face")],
            outputs=[io.Image.Output("images_out", display_name="images")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, landmarks: FaceLandmarks, keep: str,
                reference_landmarks: FaceLandmarks | None = None) -> io.NodeOutput:
        frames = release_face_drop(images_to_numpy(images), landmarks, keep, reference_landmarks)
        return io.NodeOutput(images_from_numpy(frames))


class MotionAmplitude(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorMotionAmplitude",
            display_name="Motion Amplitude (α)",
            category=CATEGORY,
            description="Scales the head motion of driving frames (paper Eq.3): α=1 unchanged, 0 holds the head "
                        "still in frame 1's pose, 2 doubles it. Scale and translation follow α unless given their "
                        "own (≥ 0).",
            inputs=[
                io.Image.Input("images"),
                LandmarksType.Input("landmarks"),
                io.Float.Input("alpha", default=1.0, min=0.0, max=4.0, step=0.05),
                io.Float.Input("alpha_scale", default=-1.0, min=-1.0, max=4.0, step=0.05,
                               tooltip="-1: same as alpha"),
                io.Float.Input("alpha_translation", default=-1.0, min=-1.0, max=4.0, step=0.05,
                               tooltip="-1: same as alpha"),
            ],
            outputs=[io.Image.Output("images_out", display_name="images"),
                     LandmarksType.Output("landmarks_out", display_name="landmarks")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, landmarks: FaceLandmarks, alpha: float, alpha_scale: float,
                alpha_translation: float) -> io.NodeOutput:
        frames, moved = amplify_motion(images_to_numpy(images), landmarks, alpha,
                                       alpha_scale=None if alpha_scale < 0 else alpha_scale,
                                       alpha_translation=None if alpha_translation < 0 else alpha_translation)
        return io.NodeOutput(images_from_numpy(frames), moved)
