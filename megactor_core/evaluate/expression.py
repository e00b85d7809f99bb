"""Expression coefficients for E-FID: the face regressor of Deep3DFaceRecon_pytorch (Deng et al. 2019).

E-FID (introduced with EMO, Tian et al. 2024) is the Fréchet distance between the 3DMM expression
coefficients of generated and of real frames, as Deep3DFaceRecon_pytorch regresses them. Only its
regressor runs here: a ResNet-50 whose seven 1x1 heads give 257 coefficients (identity 80,
expression 64, texture 80, angles 3, lighting 27, translation 3); E-FID takes the 64 expression
ones. The regressor needs no face model (the Basel Face Model that the reconstruction renders with
is licence-gated): it needs the face cut as that project's ``align_img`` cuts it. Five points (the
eye centres as the means of the eye corners, the nose tip, the mouth corners; image y pointing up)
are fitted by least squares to the same points of a standard 3D face (``similarity_Lm3D_all.mat``)
under an affine camera; the frame is scaled (PIL bicubic) so that face has scale 102, and the
224x224 window around it is cut (black outside the frame); RGB values 0..1.

Module names follow the published checkpoint (``epoch_20.pth``: ``net_recon`` holds
``backbone.*``, torchvision's ResNet-50 without its classifier, and ``final_layers.0-6``), so it
loads without renaming, every key and shape checked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..state_dict import load_checked
from .weights import WEIGHT_FILES

SIZE = 224  # the regressor's input side
FACE_SCALE = 102.0  # align_img's rescale_factor: the standard face's scale in the crop
HEADS = (80, 64, 80, 3, 27, 2, 1)  # identity, expression, texture, angles, lighting, tx/ty, tz
EXPRESSION = slice(80, 144)


def corner_five_points(points: np.ndarray) -> np.ndarray:
    """``[..., 68, D]`` iBUG-68 points -> ``[..., 5, D]``: both eye centres as the means of their corners
    (36/39, 42/45), the nose tip (30), the mouth corners (48, 54) -- Deep3DFaceRecon's five points."""
    return np.stack([points[..., [36, 39], :].mean(-2), points[..., [42, 45], :].mean(-2), points[..., 30, :],
                     points[..., 48, :], points[..., 54, :]], axis=-2)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 block: 1x1, 3x3 (carrying the stride), 1x1 expanding 4x, residual."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """torchvision's ResNet-50 up to its global average pool: ``[B, 3, H, W]`` -> ``[B, 2048, 1, 1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for index, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * 4
            setattr(self, f"layer{index}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1)


class FaceRegressor(nn.Module):
    """Deep3DFaceRecon's ``ReconNetWrapper`` (resnet50): aligned 224x224 RGB in 0..1 -> ``[B, 257]``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, n, 1) for n in HEADS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        return torch.cat([head(features) for head in self.final_layers], 1).flatten(1)


def load_regressor(path: str | os.PathLike, device: torch.device | str = "cpu") -> FaceRegressor:
    """The regressor of the published checkpoint (its ``net_recon``; optimizer states are ignored)."""
    net = load_checked(FaceRegressor(), path, WEIGHT_FILES["deep3d"].source, entry="net_recon")
    return net.to(device)


def load_template(path: str | os.PathLike) -> np.ndarray:
    """The standard face's five 3D points ``[5, 3]`` from ``similarity_Lm3D_all.mat`` (68 points, ``lm``)."""
    from scipy.io import loadmat

    source = WEIGHT_FILES["lm3d"].source
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it should be {source}")
    try:
        points = np.asarray(loadmat(path)["lm"])
    except Exception as exc:  # not a MATLAB file, or without "lm"
        raise ValueError(f"{path} could not be read as {source} (a MATLAB file with 68x3 'lm'): {exc}") from exc
    if points.shape != (68, 3):
        raise ValueError(f"{path} holds 'lm' of shape {points.shape}, expected 68x3: it should be {source}")
    return corner_five_points(points).astype(np.float64)  # the means in the file's precision, as load_lm3d


def fit_scale_translation(points: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares affine camera ``points ≈ [r1·X + tx, r2·X + ty]`` for five image points (y up) and
    the template's 3D points; its translation and scale ``(|r1| + |r2|) / 2``."""
    design = np.zeros((len(points), 2, 8))
    design[:, 0, :3], design[:, 0, 3] = template, 1.0
    design[:, 1, 4:7], design[:, 1, 7] = template, 1.0
    k = np.linalg.lstsq(design.reshape(-1, 8), points.reshape(-1), rcond=None)[0]
    return k[[3, 7]], float(np.linalg.norm(k[:3]) + np.linalg.norm(k[4:7])) / 2


def align_face(frame: np.ndarray, points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The 224x224 uint8 RGB input of the regressor cut from a uint8 RGB frame with its 68 landmarks."""
    from PIL import Image

    height, width = frame.shape[:2]
    five = corner_five_points(np.asarray(points, np.float64))
    five[:, 1] = height - 1 - five[:, 1]  # Deep3DFaceRecon's landmarks have y pointing up
    (tx, ty), scale = fit_scale_translation(five, template)
    scale = FACE_SCALE / scale
    w, h = int(width * scale), int(height * scale)  # truncated, as align_img does
    left = int(w / 2 - SIZE / 2 + (tx - width / 2) * scale)
    top = int(h / 2 - SIZE / 2 + (height / 2 - ty) * scale)
    image = Image.fromarray(frame).resize((w, h), resample=Image.Resampling.BICUBIC)
    return np.asarray(image.crop((left, top, left + SIZE, top + SIZE)))


@dataclass
class ExpressionRegressor:
    """The regressor and the standard face it aligns to: frames with landmarks -> expression coefficients."""

    net: FaceRegressor
    template: np.ndarray  # [5, 3], from load_template

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray, points: Sequence[np.ndarray], batch: int = 16) -> torch.Tensor:
        """``[N, 64]`` expression coefficients of uint8 RGB frames ``[N, H, W, 3]`` with their 68 landmarks."""
        device = next(self.net.parameters()).device
        out = []
        for start in range(0, len(frames), batch):
            crops = np.stack([align_face(f, p, self.template) for f, p in
                              zip(frames[start:start + batch], points[start:start + batch], strict=True)])
            x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255
            out.append(self.net(x)[:, EXPRESSION].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, HEADS[1])


def load_expression(checkpoint: str | os.PathLike, template: str | os.PathLike,
                    device: torch.device | str = "cpu") -> ExpressionRegressor:
    """``epoch_20.pth`` and ``similarity_Lm3D_all.mat`` loaded and checked."""
    return ExpressionRegressor(load_regressor(checkpoint, device), load_template(template))
