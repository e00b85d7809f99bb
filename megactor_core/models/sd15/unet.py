"""The SD1.5 UNet of the official MegActor-Σ, as the video denoiser and as the appearance UNet.

Module names follow the released checkpoint (``down_blocks.0.resnets.0.conv1``,
``mid_block.motion_modules.0.temporal_transformer...``); only attention output projections are
``to_out`` here where the checkpoint says ``to_out.0`` (see :mod:`.official`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...layout import maps_to_tokens
from ..embeddings import timestep_sinusoid
from .config import SD15Config
from .layers import (
    Downsample,
    DrivenEncoder,
    KeysValues,
    MotionModule,
    ResnetBlock,
    SpatialTransformer,
    Upsample,
    VideoGroupNorm,
)


@dataclass
class Context:
    """What every layer of one UNet call needs besides its input map."""

    temb: torch.Tensor  # [B*F, time_dim]
    text: torch.Tensor  # [1, T, text_dim]: the empty prompt, shared by every frame (its keys projected once)
    frames: int
    audio: torch.Tensor | None = None  # [B*F, tokens, audio_dim]
    audio_scale: torch.Tensor | float = 1.0
    reference: dict[str, KeysValues] = field(default_factory=dict)  # transformer name -> keys/values
    record: dict[str, torch.Tensor] | None = None  # transformer name -> its attention input


class TimeEmbedding(nn.Module):
    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(t)))


class AttentionInputTap(nn.Module):
    """The appearance UNet's last transformer, of which only the input of self-attention is used:
    it records that and leaves the map unchanged (the release keeps only these weights)."""

    def __init__(self, name: str, dim: int, groups: int) -> None:
        super().__init__()
        self.name = name
        self.norm = nn.GroupNorm(groups, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([nn.ModuleDict({"norm1": nn.LayerNorm(dim)})])

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer_blocks[0]["norm1"](maps_to_tokens(self.proj_in(self.norm(x))))


class UNetLevel(nn.Module):
    """One resolution of the UNet: ``layers`` x (resnet -> [transformer] -> [motion module]), then
    a down- or upsampler. Up levels first concatenate the matching skip map."""

    def __init__(self, name: str, config: SD15Config, in_channels: list[int], out_channels: int, *,
                 attention: bool, motion: bool, audio: bool, resample: str | None, tap_last: bool = False) -> None:
        super().__init__()
        c = config
        self.resnets = nn.ModuleList(ResnetBlock(i, out_channels, c.time_embed_dim, c.norm_groups) for i in in_channels)
        if attention:
            self.attentions = nn.ModuleList(
                SpatialTransformer(f"{name}.attentions.{j}", out_channels, c.heads, c.norm_groups,
                                   c.cross_attention_dim, c.audio_dim if audio else None)
                for j in range(len(in_channels)))
            if tap_last:
                self.attentions[-1] = AttentionInputTap(f"{name}.attentions.{len(in_channels) - 1}",
                                                        out_channels, c.norm_groups)
        else:
            self.attentions = None
        self.motion_modules = nn.ModuleList(
            MotionModule(out_channels, c.heads, c.norm_groups, c.motion_max_frames) for _ in in_channels
        ) if motion else None
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample(out_channels)])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample(out_channels)])
        self.resample = resample

    def layer(self, j: int, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        x = self.resnets[j](x, ctx.temb, ctx.frames)
        if self.attentions is not None:
            x = run_transformer(self.attentions[j], x, ctx)
        if self.motion_modules is not None:
            x = self.motion_modules[j](x, ctx.frames)
        return x

    def down(self, x: torch.Tensor, ctx: Context) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for j in range(len(self.resnets)):
            x = self.layer(j, x, ctx)
            skips.append(x)
        if self.resample == "down":
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips

    def up(self, x: torch.Tensor, skips: list[torch.Tensor], ctx: Context) -> torch.Tensor:
        for j in range(len(self.resnets)):
            x = self.layer(j, torch.cat([x, skips.pop()], dim=1), ctx)
        return self.upsamplers[0](x) if self.resample == "up" else x


class MidLevel(nn.Module):
    """resnet -> transformer -> motion module -> resnet at the lowest resolution."""

    def __init__(self, config: SD15Config, channels: int, *, motion: bool, audio: bool) -> None:
        super().__init__()
        c = config
        self.resnets = nn.ModuleList(ResnetBlock(channels, channels, c.time_embed_dim, c.norm_groups) for _ in range(2))
        self.attentions = nn.ModuleList([SpatialTransformer("mid_block.attentions.0", channels, c.heads, c.norm_groups,
                                                            c.cross_attention_dim, c.audio_dim if audio else None)])
        self.motion_modules = nn.ModuleList(
            [MotionModule(channels, c.heads, c.norm_groups, c.motion_max_frames)]) if motion else None

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        x = run_transformer(self.attentions[0], self.resnets[0](x, ctx.temb, ctx.frames), ctx)
        if self.motion_modules is not None:
            x = self.motion_modules[0](x, ctx.frames)
        return self.resnets[1](x, ctx.temb, ctx.frames)


def run_transformer(transformer: SpatialTransformer | AttentionInputTap, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Record the transformer's attention input (appearance UNet) and/or run it with this
    place's reference keys and values (denoiser)."""
    if ctx.record is not None and transformer.name.startswith(("mid_block", "up_blocks")):
        ctx.record[transformer.name] = transformer.attention_input(x)
    if isinstance(transformer, AttentionInputTap):
        return x
    return transformer(x, ctx.text, ctx.frames, reference=ctx.reference.get(transformer.name), audio=ctx.audio,
                       audio_scale=ctx.audio_scale)


class VideoUNet(nn.Module):
    """SD1.5's UNet. As the ``denoiser``: inflated to video (motion modules, norms over frames),
    with Whisper cross-attention and a driving-frame encoder whose features join the noisy
    latent. As the ``appearance`` UNet: 2-D, run on the reference latent to record the inputs of
    its mid and up self-attentions; its output layers are not built."""

    def __init__(self, config: SD15Config, role: str) -> None:
        super().__init__()
        if role not in ("denoiser", "appearance"):
            raise ValueError(f"role must be 'denoiser' or 'appearance', got {role!r}")
        video = role == "denoiser"
        c = config
        widths = c.block_out_channels
        in_channels = c.latent_channels + (c.driven_channels if video else 0)
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.time_embedding = TimeEmbedding(widths[0], c.time_embed_dim)
        self.condition_input_layer = DrivenEncoder(c.driven_widths, c.driven_channels) if video else None
        n = len(widths)
        self.down_blocks = nn.ModuleList(
            UNetLevel(f"down_blocks.{i}", c, [widths[max(i - 1, 0)]] + [widths[i]] * (c.layers_per_block - 1),
                      widths[i], attention=i < n - 1, motion=video, audio=video,
                      resample="down" if i < n - 1 else None)
            for i in range(n))
        self.mid_block = MidLevel(c, widths[-1], motion=video, audio=video)
        up = list(reversed(widths))
        levels = []
        for i in range(n):
            skip_widths = [up[i]] * c.layers_per_block + [up[min(i + 1, n - 1)]]
            inputs = [(up[max(i - 1, 0)] if j == 0 else up[i]) + s for j, s in enumerate(skip_widths)]
            levels.append(UNetLevel(f"up_blocks.{i}", c, inputs, up[i], attention=i > 0, motion=video, audio=video,
                                    resample="up" if i < n - 1 else None, tap_last=not video and i == n - 1))
        self.up_blocks = nn.ModuleList(levels)
        if video:
            self.conv_norm_out = VideoGroupNorm(c.norm_groups, widths[0], eps=1e-5)
            self.conv_out = nn.Conv2d(widths[0], c.latent_channels, 3, padding=1)
        self.video = video

    def time_features(self, timestep: torch.Tensor) -> torch.Tensor:
        """``[B]`` timesteps -> ``[B, time_dim]``."""
        sinusoid = timestep_sinusoid(timestep, self.conv_in.out_channels)
        return self.time_embedding(sinusoid.to(self.conv_in.weight.dtype))

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        """``x``: ``[B*F, C, h, w]`` -> noise prediction ``[B*F, latent, h, w]`` (denoiser) or the
        map after the last level (appearance; its use is ``ctx.record``). Maps are channels-last
        throughout (see :mod:`megactor_core.layout`)."""
        x = self.conv_in(x.contiguous(memory_format=torch.channels_last))
        skips = [x]
        for level in self.down_blocks:
            x, level_skips = level.down(x, ctx)
            skips += level_skips
        x = self.mid_block(x, ctx)
        for level in self.up_blocks:
            x = level.up(x, skips, ctx)
        if not self.video:
            return x
        return self.conv_out(F.silu(self.conv_norm_out(x, ctx.frames)))
