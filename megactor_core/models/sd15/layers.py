"""Layers of the SD1.5 video UNet: resnets, spatial transformers with audio cross-attention,
AnimateDiff motion modules, resampling and the driving-frame encoder.

Feature maps are per frame, ``[B*F, C, H, W]``; ``frames`` tells a layer how many consecutive
maps make one video.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layout import (
    frames_to_video_map,
    maps_to_tokens,
    spatial_to_temporal,
    temporal_to_spatial,
    tokens_to_maps,
    video_map_to_frames,
)
from ..attention import Attention
from ..embeddings import sincos_1d

KeysValues = tuple[torch.Tensor, torch.Tensor]


class GEGLU(nn.Module):
    """``a * gelu(b)`` of one projection split in two halves."""

    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(b)


class FeedForward(nn.Module):
    """SD's GEGLU MLP (4x wide); ``net`` indices are the checkpoint's (1 was a dropout)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class VideoGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics span all frames of a video, as the inflated UNet's resnets
    compute them on ``[B, C, F, H, W]``."""

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        # Weights moved to the input: they may sit elsewhere while a memory manager streams the model.
        weight, bias = (None, None) if self.weight is None else (self.weight.to(x.device), self.bias.to(x.device))
        out = F.group_norm(frames_to_video_map(x, frames), self.num_groups, weight, bias, self.eps)
        return video_map_to_frames(out, frames)


class ResnetBlock(nn.Module):
    """SD's resnet (GroupNorm-SiLU-conv twice, timestep added in between), norms over the video."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = VideoGroupNorm(groups, in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = VideoGroupNorm(groups, out_channels, eps=1e-5)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, frames: int) -> torch.Tensor:
        """``temb``: ``[B*F, time_dim]``."""
        h = self.conv1(F.silu(self.norm1(x, frames)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h, frames)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class TransformerBlock(nn.Module):
    """SD's transformer block with Whisper cross-attention after the text cross-attention:
    ``h += attn1(norm1 h [+ reference]); h += attn2(norm2 h, text); h += λ·attn_audio(norm_audio h,
    audio); h += ff(norm3 h)``."""

    def __init__(self, dim: int, heads: int, text_dim: int, audio_dim: int | None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, qkv_bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim=text_dim, qkv_bias=False)
        if audio_dim:
            self.norm_audio = nn.LayerNorm(dim)
            self.attn_audio = Attention(dim, heads, context_dim=audio_dim, qkv_bias=False)
        else:
            self.norm_audio = self.attn_audio = None
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, frames: int, *, reference: KeysValues | None = None,
                audio: torch.Tensor | None = None, audio_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn1(h, extra_kv=reference, extra_group=frames)
        x = x + self.attn2(self.norm2(x), text)
        if self.attn_audio is not None and audio is not None:
            x = x + audio_scale * self.attn_audio(self.norm_audio(x), audio)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Per-frame transformer over a feature map (GroupNorm, 1x1 conv in, one block, 1x1 conv out,
    residual). ``name`` pairs it with the appearance UNet's transformer of the same place."""

    def __init__(self, name: str, dim: int, heads: int, groups: int, text_dim: int, audio_dim: int | None) -> None:
        super().__init__()
        self.name = name
        self.norm = nn.GroupNorm(groups, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, heads, text_dim, audio_dim)])
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised tokens entering self-attention (what the appearance UNet shares)."""
        return self.transformer_blocks[0].norm1(maps_to_tokens(self.proj_in(self.norm(x))))

    def forward(self, x: torch.Tensor, text: torch.Tensor, frames: int, *, reference: KeysValues | None = None,
                audio: torch.Tensor | None = None, audio_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``x``: ``[B*F, C, H, W]``; ``text``: ``[B*F or 1, T, text_dim]``; ``reference``: keys/values
        ``[V, heads, R, d]`` of this place's appearance tokens for the first ``V <= B`` videos, shared
        by their frames (the other videos see none)."""
        h = maps_to_tokens(self.proj_in(self.norm(x)))
        h = self.transformer_blocks[0](h, text, frames, reference=reference, audio=audio, audio_scale=audio_scale)
        return x + self.proj_out(tokens_to_maps(h, *x.shape[-2:]))


class MotionAttention(Attention):
    """Self-attention across frames with AnimateDiff's sin-cos frame positions (a fixed table,
    stored in checkpoints as ``pos_encoder.pe``) added to its input."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__(dim, heads, qkv_bias=False)
        self.pos_encoder = FramePositions(dim, max_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B*N, F, C]``."""
        return super().forward(self.pos_encoder(x))


class FramePositions(nn.Module):
    """AnimateDiff's position table: sines on even channels, cosines on odd ones."""

    def __init__(self, dim: int, max_frames: int) -> None:
        super().__init__()
        table = sincos_1d(torch.arange(max_frames), dim).float()  # [F, sines | cosines]
        pe = torch.stack([table[:, :dim // 2], table[:, dim // 2:]], dim=-1).reshape(max_frames, dim)
        self.register_buffer("pe", pe[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"{x.shape[1]} frames in a window; the motion modules know positions of at most "
                             f"{self.pe.shape[1]} (use a smaller window)")
        return x + self.pe[:, :x.shape[1]].to(x)


class MotionBlock(nn.Module):
    """Two frame self-attentions then a GEGLU MLP, each pre-normed and residual."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList([MotionAttention(dim, heads, max_frames) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            x = x + attention(norm(x))
        return x + self.ff(self.ff_norm(x))


class TemporalTransformer(nn.Module):
    """GroupNorm per frame, projection in, one motion block, projection out (zero at init, so a
    fresh module changes nothing, as in AnimateDiff)."""

    def __init__(self, dim: int, heads: int, groups: int, max_frames: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([MotionBlock(dim, heads, max_frames)])
        self.proj_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)


class MotionModule(nn.Module):
    """AnimateDiff's motion module: each position of the map attends across the video's frames."""

    def __init__(self, dim: int, heads: int, groups: int, max_frames: int) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer(dim, heads, groups, max_frames)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        t = self.temporal_transformer
        h = t.proj_in(maps_to_tokens(t.norm(x)))
        h = temporal_to_spatial(t.transformer_blocks[0](spatial_to_temporal(h, frames)), h.shape[1])
        return x + tokens_to_maps(t.proj_out(h), *x.shape[-2:])


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DrivenEncoder(nn.Module):
    """Driving frames -> 4 feature channels at latent resolution, concatenated with the noisy
    latent: per stage a 3x3 conv then a strided conv (4x4 stride 2 three times, then 3x3)."""

    def __init__(self, widths: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        layers, channels = [], 3
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            layers.append(nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(),
                nn.Conv2d(channels, width, 3 if last else 4, stride=1 if last else 2, padding=1), nn.SiLU()))
            channels = width
        self.spatial_conv_layers = nn.ModuleList(layers)
        self.spatial_conv_out = nn.Conv2d(channels, out_channels, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[M, 3, H, W]`` in -1..1 -> ``[M, out_channels, H/8, W/8]``."""
        for layer in self.spatial_conv_layers:
            frames = layer(frames)
        return self.spatial_conv_out(frames)
