"""Face-centred square crops of photos and videos, and pasting generated crops back.

The model sees square crops around the face (``face_scale`` times the face size, as the
training data is cut by ``training.preprocess``). A photo of any size and framing is cropped
to that square, the square is animated, and every generated frame is pasted back into the
photo with a feathered mask around the face, so the output has the photo's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face import FaceLandmarks

# The paste-back mask: an ellipse around the face, in units of the face size (the 68 points'
# box), its centre raised a little so the forehead, which the points do not reach, is inside.
_MASK_HALF_WIDTH = 0.8
_MASK_HALF_HEIGHT = 0.95
_MASK_RAISE = 0.15


@dataclass(frozen=True)
class FaceCrop:
    """A square of a ``width`` x ``height`` image or video, in its pixels, and the size it was
    resized to. The square may reach past the image's edges (those parts were padded)."""

    x: int
    y: int
    side: int
    width: int
    height: int
    size: int

    @property
    def inside(self) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.side <= self.width and self.y + self.side <= self.height


def face_box(landmarks: FaceLandmarks, face_scale: float, size: int, *, keep_inside: bool = False) -> FaceCrop:
    """One square for all frames: centred on the median face centre, ``face_scale`` times the
    largest face size. By default it stays centred on the face and may reach past the image's
    edges (they are padded); with ``keep_inside`` (the training data's crops) it is shifted, and
    shrunk to the shorter side if larger, to lie inside the image."""
    if not face_scale > 0:
        raise ValueError(f"face scale must be positive, got {face_scale}")
    if size < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    centres = (landmarks.points.min(axis=1) + landmarks.points.max(axis=1)) / 2
    cx, cy = np.median(centres, axis=0)
    side = max(1, round(face_scale * float(landmarks.face_size().max())))
    if keep_inside:
        side = min(side, landmarks.width, landmarks.height)
        x = int(np.clip(round(cx - side / 2), 0, landmarks.width - side))
        y = int(np.clip(round(cy - side / 2), 0, landmarks.height - side))
    else:
        x, y = round(cx - side / 2), round(cy - side / 2)
    return FaceCrop(int(x), int(y), int(side), landmarks.width, landmarks.height, size)


def crop_frames(frames: np.ndarray, landmarks: FaceLandmarks, crop: FaceCrop) -> tuple[np.ndarray, FaceLandmarks]:
    """Frames ``[N, H, W, 3]`` (uint8 or float) cut to ``crop`` (edges replicated where it reaches
    past them) and resized to ``crop.size`` squared (INTER_AREA), and the landmarks moved with them
    (pixel centres map as in ``cv2.resize``)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3], got {frames.shape}")
    if frames.shape[1:3] != (crop.height, crop.width) or landmarks.frames != frames.shape[0]:
        raise ValueError(f"frames are {frames.shape[:3]} (N, H, W) but the landmarks/crop were found on "
                         f"{(landmarks.frames, crop.height, crop.width)}")
    out = np.empty((len(frames), crop.size, crop.size, 3), frames.dtype)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(_square(frame, crop), (crop.size, crop.size), interpolation=cv2.INTER_AREA)
    scale = crop.size / crop.side
    points = (landmarks.points - np.array([crop.x, crop.y], np.float32) + 0.5) * scale - 0.5
    return out, FaceLandmarks(points.astype(np.float32), landmarks.scores, landmarks.detected, crop.size, crop.size)


def paste_mask(landmarks: FaceLandmarks, feather: float) -> np.ndarray:
    """``[size, size]`` float32 weights of the generated crop when pasted back: 1 on an ellipse
    around the (cropped) reference face, falling smoothly to 0 over ``feather`` times the crop's
    side, and 0 at the crop's edges."""
    if not 0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5] of the crop's side, got {feather}")
    size = landmarks.width
    points = landmarks.points[0]
    face = float(landmarks.face_size()[0])
    cx, cy = (points.min(axis=0) + points.max(axis=0)) / 2
    cy -= _MASK_RAISE * face
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ellipse = np.hypot((xs - cx) / (_MASK_HALF_WIDTH * face), (ys - cy) / (_MASK_HALF_HEIGHT * face))
    width = feather * size
    inside = (1 - ellipse) * min(_MASK_HALF_WIDTH, _MASK_HALF_HEIGHT) * face / width + 0.5  # >1 well inside
    edge = np.minimum(np.minimum(xs, size - 1 - xs), np.minimum(ys, size - 1 - ys)) / width
    t = np.clip(np.minimum(inside, edge), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep: no visible seam


def paste_back(photo: np.ndarray, frames: np.ndarray, crop: FaceCrop, mask: np.ndarray) -> np.ndarray:
    """Generated crops ``[N, size, size, 3]`` pasted into ``photo`` ``[H, W, 3]`` (same dtype kind)
    with ``mask`` (:func:`paste_mask`): ``[N, H, W, 3]`` at the photo's resolution."""
    if photo.shape != (crop.height, crop.width, 3):
        raise ValueError(f"the photo is {photo.shape[1]}x{photo.shape[0]} but the crop was made on a "
                         f"{crop.width}x{crop.height} image; paste back into the photo that was cropped")
    if frames.ndim != 4 or frames.shape[1:] != (crop.size, crop.size, 3):
        raise ValueError(f"frames must be [N, {crop.size}, {crop.size}, 3] (the crop's size), got {frames.shape}")
    # The part of the square that lies inside the photo, in photo and in square coordinates.
    x0, y0 = max(crop.x, 0), max(crop.y, 0)
    x1, y1 = min(crop.x + crop.side, crop.width), min(crop.y + crop.side, crop.height)
    sx, sy = x0 - crop.x, y0 - crop.y
    weight = _resized(mask, crop.side)[sy:sy + y1 - y0, sx:sx + x1 - x0, None]
    out = np.repeat(photo[None], len(frames), axis=0)
    for i, frame in enumerate(frames):
        square = _resized(frame.astype(np.float32), crop.side)[sy:sy + y1 - y0, sx:sx + x1 - x0]
        region = out[i, y0:y1, x0:x1].astype(np.float32)
        blended = region + weight * (square - region)
        out[i, y0:y1, x0:x1] = blended.round().clip(0, 255) if photo.dtype == np.uint8 else blended
    return out


def _square(frame: np.ndarray, crop: FaceCrop) -> np.ndarray:
    """The crop's square of one frame, its parts past the frame's edges filled by replicating them."""
    pad = [max(0, -crop.y), max(0, crop.y + crop.side - crop.height),
           max(0, -crop.x), max(0, crop.x + crop.side - crop.width)]
    if any(pad):
        frame = cv2.copyMakeBorder(frame, *pad, cv2.BORDER_REPLICATE)
    x, y = crop.x + pad[2], crop.y + pad[0]
    return frame[y:y + crop.side, x:x + crop.side]


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` resized to ``side`` squared: INTER_AREA when shrinking, INTER_LINEAR when growing."""
    if image.shape[0] == side:
        return image
    method = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=method)
