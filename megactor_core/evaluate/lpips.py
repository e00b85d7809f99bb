"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet backbone: perceptual distance between two frames.

Matches the ``lpips`` package's ``LPIPS(net="alex", version="0.1")``: inputs in -1..1 go through its
scaling layer, AlexNet's five ReLU outputs are normalised to unit length over channels, their
squared differences weighted by the learned 1x1 convolutions, averaged over space and summed.
The backbone is torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``; its classifier is
not run) and the weighting is the package's ``alex.pth``: both load under their own key names.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..state_dict import load_checked
from .weights import WEIGHT_FILES

SHIFT = (-0.030, -0.088, -0.188)  # lpips' ScalingLayer constants
SCALE = (0.458, 0.448, 0.450)
TAPS = (1, 4, 7, 9, 11)  # indices of AlexNet.features whose outputs LPIPS compares (relu1..relu5)
CHANNELS = (64, 192, 384, 256, 256)
NORM_EPS = 1e-10


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet convolutional part, ``features.<index>`` as in its state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        return taps


class LinearLayer(nn.Module):
    """lpips' NetLinLayer: (dropout, unused at inference) then a 1x1 convolution to one channel: ``model.1``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Lins(nn.Module):
    """The five weightings, ``lin0`` .. ``lin4`` as in ``alex.pth``."""

    def __init__(self) -> None:
        super().__init__()
        for k, channels in enumerate(CHANNELS):
            self.add_module(f"lin{k}", LinearLayer(channels))

    def forward(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"lin{k}")(x)


class LPIPS(nn.Module):
    """``(a, b)`` RGB ``[B, 3, H, W]`` in -1..1 -> ``[B]`` distances (0: identical; higher: more different)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        self.lins = Lins()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        taps = self.net((torch.cat([a, b]) - self.shift) / self.scale)  # both in one pass through AlexNet
        total = 0
        for k, tap in enumerate(taps):
            tap = tap / (tap.square().sum(1, keepdim=True).sqrt() + NORM_EPS)
            fa, fb = tap.chunk(2)
            total = total + self.lins(k, (fa - fb).square()).mean((1, 2, 3))
        return total


def load_lpips(lins: str | os.PathLike, alexnet: str | os.PathLike, device: torch.device | str = "cpu") -> LPIPS:
    """LPIPS from the package's ``alex.pth`` and torchvision's ``alexnet-owt-7be5be79.pth``, in eval mode."""
    net = LPIPS()
    load_checked(net.lins, lins, WEIGHT_FILES["lpips"].source)
    load_checked(net.net, alexnet, WEIGHT_FILES["alexnet"].source, ignore=("classifier.",))
    return net.eval().requires_grad_(False).to(device)


@torch.inference_mode()
def lpips_per_frame(net: LPIPS, generated, real, batch: int = 8) -> torch.Tensor:
    """``[N]`` LPIPS of uint8 RGB frame pairs ``[N, H, W, 3]`` (numpy arrays of one size), in -1..1."""
    if generated.shape != real.shape:
        raise ValueError(f"LPIPS compares frames of one size, got {generated.shape} and {real.shape}")
    device = next(net.parameters()).device

    def signed(frames) -> torch.Tensor:
        return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1

    out = [net(signed(generated[s:s + batch]), signed(real[s:s + batch])).float().cpu()
           for s in range(0, len(generated), batch)]
    return torch.cat(out) if out else torch.zeros(0)
