"""Crop Face (a photo or a video, around its face) and Paste Back (generated crops into the photo)."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..megactor_core.landmarks.crop import FaceCrop, crop_frames, face_box, paste_back, paste_mask
from ..megactor_core.landmarks.face import FaceLandmarks
from ..megactor_core.layout import images_from_numpy, images_to_numpy
from .landmarks import LandmarksType

CropType = io.Custom("MEGACTOR_CROP")
CATEGORY = "MegActor-Σ"


class CropFace(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorCropFace",
            display_name="Crop Face (MegActor-Σ)",
            category=CATEGORY,
            description="Crops a square centred on the face (found by MegActor-Σ Face Landmarks) and resizes it to "
                        "the model's size: any photo, any framing. A video gets one square for all its frames, so "
                        "head motion stays in the picture. Parts of the square past the image's edges are padded, "
                        "so the face stays centred. Gives the landmarks in the crop (for face-drop, or the release's "
                        "alignment) and the crop for Paste Back.",
            inputs=[
                io.Image.Input("images", tooltip="a portrait photo, or the frames of a driving video"),
                LandmarksType.Input("landmarks", tooltip="from MegActor-Σ Face Landmarks on these images"),
                io.Int.Input("size", default=512, min=16, max=4096, step=16,
                             tooltip="side of the square crop in pixels (the model's: 512)"),
                io.Float.Input("face_scale", default=2.0, min=1.0, max=6.0, step=0.05,
                               tooltip="the square's side in face sizes (2.0: as the training data is cropped)"),
            ],
            outputs=[io.Image.Output("images_out", display_name="images"),
                     LandmarksType.Output("landmarks_out", display_name="landmarks"), CropType.Output("crop")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, landmarks: FaceLandmarks, size: int, face_scale: float) -> io.NodeOutput:
        box = face_box(landmarks, face_scale, size)
        frames, moved = crop_frames(images_to_numpy(images), landmarks, box)
        return io.NodeOutput(images_from_numpy(frames), moved, box)


class PasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MegActorPasteBack",
            display_name="Paste Back (MegActor-Σ)",
            category=CATEGORY,
            description="Puts every generated frame back into the original photo with a feathered mask around the "
                        "face (as LivePortrait's paste-back does): the video gets the photo's resolution and "
                        "everything outside the face is the photo's.",
            inputs=[
                io.Image.Input("photo", tooltip="the photo Crop Face cropped"),
                io.Image.Input("images", tooltip="the generated frames (the sampler's images)"),
                CropType.Input("crop", tooltip="Crop Face's crop of the photo"),
                LandmarksType.Input("landmarks", tooltip="Crop Face's landmarks of the photo: where the mask goes"),
                io.Float.Input("feather", default=0.1, min=0.01, max=0.5, step=0.01,
                               tooltip="width of the mask's soft edge, as a fraction of the crop's side"),
            ],
            outputs=[io.Image.Output("images_out", display_name="images")],
        )

    @classmethod
    def execute(cls, photo: torch.Tensor, images: torch.Tensor, crop: FaceCrop, landmarks: FaceLandmarks,
                feather: float) -> io.NodeOutput:
        if photo.shape[0] != 1:
            raise ValueError(f"photo must be one image, got a batch of {photo.shape[0]}")
        mask = paste_mask(landmarks, feather)
        return io.NodeOutput(images_from_numpy(paste_back(images_to_numpy(photo)[0], images_to_numpy(images), crop,
                                                          mask)))
