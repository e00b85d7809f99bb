"""Head angles (yaw, pitch, roll) per frame from 68 face landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from .face import FaceLandmarks

# A generic head in millimetres (x right, y up, z towards the camera), at six iBUG-68 points:
# nose tip, chin, outer eye corners, mouth corners. Widely used for PnP head pose.
MODEL_POINTS = {
    30: (0.0, 0.0, 0.0),
    8: (0.0, -330.0, -65.0),
    36: (-225.0, 170.0, -135.0),
    45: (225.0, 170.0, -135.0),
    48: (-150.0, -150.0, -125.0),
    54: (150.0, -150.0, -125.0),
}


def head_angles(landmarks: FaceLandmarks) -> np.ndarray:
    """``[N, 3]`` yaw, pitch, roll in degrees (0 = facing the camera), by PnP on a pinhole
    camera with focal length = image width, centred on the image."""
    index = list(MODEL_POINTS)
    model = np.array([MODEL_POINTS[i] for i in index], np.float64) * [1.0, -1.0, -1.0]  # to image axes
    f = float(landmarks.width)
    camera = np.array([[f, 0, landmarks.width / 2], [0, f, landmarks.height / 2], [0, 0, 1]], np.float64)
    angles = np.zeros((landmarks.frames, 3), np.float32)
    eye_span = np.ptp(model[[2, 3], 0])
    for i, points in enumerate(landmarks.points):
        image = points[index].astype(np.float64)
        # Start from a head facing the camera at the distance its eye span implies: without a
        # start, the solver can land on the mirror solution of a head facing away (180° off).
        depth = f * eye_span / max(float(np.linalg.norm(image[3] - image[2])), 1e-6)
        tvec = np.array([(image[0, 0] - camera[0, 2]) * depth / f, (image[0, 1] - camera[1, 2]) * depth / f, depth])
        _, rvec, _ = cv2.solvePnP(model, image, camera, None, rvec=np.zeros(3), tvec=tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
        angles[i] = _euler(cv2.Rodrigues(rvec)[0])
    return angles


def _euler(rotation: np.ndarray) -> np.ndarray:
    """Yaw (about y), pitch (about x), roll (about z) in degrees of ``R = Rz(roll) Ry(yaw) Rx(pitch)``."""
    yaw = np.arcsin(-np.clip(rotation[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    return np.degrees([yaw, pitch, roll])


def rotation_angle(angles: np.ndarray) -> np.ndarray:
    """``[N, 3]`` yaw, pitch, roll in degrees -> ``[N]`` the head's total rotation away from facing
    the camera, in degrees (the angle of the one rotation that takes a frontal head there)."""
    yaw, pitch, roll = np.radians(np.asarray(angles, np.float64)).T
    # trace(Rz(roll) Ry(yaw) Rx(pitch)) written out.
    trace = (np.cos(roll) * np.cos(yaw) + np.sin(roll) * np.sin(yaw) * np.sin(pitch) + np.cos(roll) * np.cos(pitch)
             + np.cos(yaw) * np.cos(pitch))
    return np.degrees(np.arccos(np.clip((trace - 1) / 2, -1.0, 1.0)))
