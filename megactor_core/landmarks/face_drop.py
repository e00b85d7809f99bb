"""Face-drop driving frames (the paper's Eq.1): keep a control region, drop the rest of the face."""

from __future__ import annotations

import numpy as np

from .face import FaceLandmarks
from .regions import region_masks

KEEP_CHOICES = ("eyes", "mouth", "both")


def check_drop_inputs(frames: np.ndarray, landmarks: FaceLandmarks, keep: str) -> None:
    """Fail clearly unless ``frames`` are ``[N, H, W, 3]`` with these landmarks and ``keep`` is known."""
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3], got {frames.shape}")
    if frames.shape[:3] != (landmarks.frames, landmarks.height, landmarks.width):
        raise ValueError(f"frames are {frames.shape[:3]} (N, H, W) but the landmarks were found on "
                         f"{(landmarks.frames, landmarks.height, landmarks.width)}")


def face_drop(frames: np.ndarray, landmarks: FaceLandmarks, keep: str, *, dilate: float = 0.05,
              feather: float = 0.02, fill: float = 0.0, drop_background: bool = False) -> np.ndarray:
    """``[N, H, W, 3]`` float frames in 0..1 -> the same frames with the face blanked to ``fill``
    except the ``keep`` region ("eyes", "mouth" or "both").

    The head outline, hair and background stay (they carry head pose) unless
    ``drop_background``, which blanks everything but the kept region.
    """
    check_drop_inputs(frames, landmarks, keep)
    kept = region_masks(landmarks, keep, dilate=dilate, feather=feather)
    if drop_background:
        dropped = 1.0 - kept
    else:
        face = region_masks(landmarks, "face", dilate=dilate, feather=feather)
        dropped = np.clip(face - kept, 0.0, 1.0)
    dropped = dropped[..., None]
    return (frames * (1.0 - dropped) + fill * dropped).astype(frames.dtype)
