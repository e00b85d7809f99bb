"""Face landmarks (DWPose), face regions, face-drop, motion amplitude and head angle."""

from .amplitude import amplify_motion, head_motion
from .detect import detect_landmarks
from .dwpose import DWPose, DWPoseError, Person
from .face import FaceLandmarks, track_face
from .face_drop import face_drop
from .head_pose import head_angles
from .mouth_attention import MouthAttention
from .pose_keypoint import landmarks_from_pose_keypoint, to_pose_keypoint
from .regions import mouth_attention_mask, region_masks, token_masks
from .release_drop import release_face_drop

__all__ = [
    "DWPose",
    "DWPoseError",
    "FaceLandmarks",
    "MouthAttention",
    "Person",
    "amplify_motion",
    "detect_landmarks",
    "face_drop",
    "release_face_drop",
    "head_angles",
    "head_motion",
    "landmarks_from_pose_keypoint",
    "mouth_attention_mask",
    "region_masks",
    "to_pose_keypoint",
    "token_masks",
    "track_face",
]
