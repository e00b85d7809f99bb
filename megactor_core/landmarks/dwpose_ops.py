"""DWPose's array steps, without ONNX: YOLOX letterbox and decoding, NMS, top-down crops, SimCC.

These follow the ONNX pipeline that comfyui_controlnet_aux and the DWPose authors' annotator run
(``dw_onnx/cv_ox_det.py`` and ``dw_onnx/cv_ox_pose.py``), RGB frames into both networks, so our
keypoints are theirs (checked by running their code beside ours on the same files and images).
OpenCV is imported inside the functions that need it, so importing this module stays light.
"""

from __future__ import annotations

import numpy as np

YOLOX_STRIDES = (8, 16, 32)
LETTERBOX_FILL = 114
# ImageNet statistics in RGB order, on 0..255 pixels (DWPose's mmpose data preprocessor).
POSE_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
POSE_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
BOX_PADDING = 1.25  # a person box grows by this much before cropping (mmpose's bbox_xyxy2cs)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``[H, W, 3]`` uint8 -> ``size`` (height, width) uint8 and the scale applied.

    The image keeps its aspect ratio, sits in the top-left corner and the rest is grey 114, so a
    point ``p`` of the result is ``p / scale`` in the image.
    """
    import cv2

    height, width = size
    scale = min(height / image.shape[0], width / image.shape[1])
    new_w, new_h = max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))
    padded = np.full((height, width, 3), LETTERBOX_FILL, dtype=np.uint8)
    padded[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return padded, scale


def detector_batch(frames: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """RGB uint8 frames ``[N, H, W, 3]`` -> YOLOX input ``[N, 3, h, w]`` float32 and the letterbox scale.

    Pixels stay 0..255 with no mean or std. Channels stay RGB, as comfyui_controlnet_aux and the
    DWPose annotator feed them (although mmdet trains YOLOX on OpenCV's BGR), so a workflow finds
    the same people through our node and theirs.
    """
    padded = np.empty((len(frames), *size, 3), dtype=np.uint8)
    scale = 1.0
    for i, frame in enumerate(frames):
        padded[i], scale = letterbox(frame, size)
    return np.ascontiguousarray(padded.transpose(0, 3, 1, 2), dtype=np.float32), scale


def yolox_grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell corners ``[A, 2]`` (x, y in cells) and strides ``[A, 1]`` of YOLOX's anchors, strides 8, 16, 32."""
    cells, strides = [], []
    for stride in YOLOX_STRIDES:
        ys, xs = np.mgrid[:size[0] // stride, :size[1] // stride]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def yolox_decode(raw: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX head output ``[N, A, 5 + classes]`` -> boxes ``[N, A, 4]`` (x0, y0, x1, y1 in input
    pixels) and person scores ``[N, A]`` (objectness x class 0; both already sigmoid-ed in the file)."""
    cells, strides = yolox_grid(size)
    centre = (raw[..., :2] + cells) * strides
    half = np.exp(raw[..., 2:4]) * strides / 2
    return np.concatenate([centre - half, centre + half], axis=-1), raw[..., 4] * raw[..., 5]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes ``[M, 4]`` kept by greedy non-maximum suppression, best score first.

    A box goes when it overlaps a better kept one by more than ``iou``. Areas count pixels
    inclusively (``x1 - x0 + 1``), as YOLOX's demo code does.
    """
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]) + 1)
        overlap = w * h / (areas[best] + areas[rest] - w * h)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def crop_matrix(box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The ``[2, 3]`` affine map from image pixels to a pose-model crop of ``size`` (height, width).

    The box grows by 1.25, then to the crop's aspect ratio, and its centre lands on the crop's
    centre, with no rotation (mmpose's ``bbox_xyxy2cs`` + ``top_down_affine``).
    """
    height, width = size
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    box_w, box_h = (x1 - x0) * BOX_PADDING, (y1 - y0) * BOX_PADDING
    box_w = max(box_w, box_h * width / height)
    scale = width / box_w
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[scale, 0.0, width / 2 - scale * cx], [0.0, scale, height / 2 - scale * cy]])


def pose_batch(frames: np.ndarray, frame_index: np.ndarray, boxes: np.ndarray,
               size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One crop per box -> pose input ``[B, 3, h, w]`` float32 (RGB, ImageNet mean/std) and the
    crop matrices ``[B, 2, 3]``. Box ``b`` is cut from ``frames[frame_index[b]]``."""
    import cv2

    height, width = size
    matrices = np.stack([crop_matrix(box, size) for box in boxes])
    crops = np.stack([cv2.warpAffine(frames[i], m, (width, height), flags=cv2.INTER_LINEAR)
                      for i, m in zip(frame_index, matrices, strict=True)])
    crops = (crops.astype(np.float32) - POSE_MEAN) / POSE_STD
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2)), matrices


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """SimCC ``[B, K, W * r]``, ``[B, K, H * r]`` -> crop points ``[B, K, 2]`` and scores ``[B, K]``.

    A point is the arg-max along each axis divided by the split ratio ``r``; its score is the
    smaller of the two maxima (mmpose's ``get_simcc_maximum``). Where that score is <= 0 the
    point is (-1, -1) / r: there is no keypoint there.
    """
    locs = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], axis=-1).astype(np.float32)
    scores = np.minimum(simcc_x.max(-1), simcc_y.max(-1))
    locs[scores <= 0] = -1
    return locs / split_ratio, scores


def from_crop(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Crop points ``[B, K, 2]`` -> image pixels, through the inverse of each crop matrix ``[B, 2, 3]``."""
    scale, shift = matrices[:, [0, 1], [0, 1]], matrices[:, :, 2]
    return (points - shift[:, None]) / scale[:, None]
