"""The SD1.5 MegActor-Σ behind the same interface as the DiT: ``encode_reference``,
``encode_driving`` and a ``forward`` on ``[batch, frames, ...]`` videos."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ...layout import fold_frames, repeat_per_frame, unfold_frames
from ..backbone import reference_videos
from .config import SD15Config
from .layers import KeysValues, MotionModule, ResnetBlock, SpatialTransformer
from .unet import Context, VideoUNet


@dataclass
class AppearanceReference:
    """The reference portrait's scaled latents ``[B, C, h, w]``. The appearance UNet runs on them
    at each denoising timestep, as the release does; its result is kept for the latest timestep,
    so the windows of one step share one run. ``videos``: see :meth:`first`."""

    latents: torch.Tensor
    videos: int | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def batch(self) -> int:
        return self.latents.shape[0]

    def first(self, videos: int) -> AppearanceReference:
        """This reference for the first ``videos`` videos of a batch only; the others see none (the
        release's unconditional branch, batched with the conditional one). Shares the kept run."""
        return replace(self, videos=videos)

    def keys_values(self, key: tuple, compute: Callable[[], dict[str, KeysValues]]) -> dict[str, KeysValues]:
        """The appearance UNet's keys and values for ``key`` (timesteps and batch): ``compute()`` runs
        once per key, a new key replaces the kept one; always when training (gradients flow)."""
        if key not in self._cache or torch.is_grad_enabled():
            self._cache.clear()
            self._cache[key] = compute()
        return self._cache[key]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> AppearanceReference:
        return AppearanceReference(self.latents.to(device=device, dtype=dtype), self.videos)


class MegActorSigmaSD15(nn.Module):
    """The official SD1.5-based MegActor-Σ: video denoiser + appearance UNet + the empty-prompt
    text embedding its cross-attention was trained with."""

    # As MegActorSigma's (benchmarks/infer_memory.py: 1.99 GiB in 16-bit at 16 x 64 x 64).
    activation_elements = 16300

    def __init__(self, config: SD15Config, empty_text: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.unet = VideoUNet(config, "denoiser")
        self.appearance_encoder = VideoUNet(config, "appearance")
        if empty_text is None:
            empty_text = torch.zeros(config.text_tokens, config.cross_attention_dim)
        if tuple(empty_text.shape) != (config.text_tokens, config.cross_attention_dim):
            raise ValueError(f"the empty-prompt embedding has shape {tuple(empty_text.shape)}; expected "
                             f"[{config.text_tokens}, {config.cross_attention_dim}] (SD1.5 CLIP output for '')")
        self.register_buffer("empty_text", empty_text.float(), persistent=False)
        # Convolution weights channels-last, as the maps: 20-45 % faster convolutions on CPU
        # (benchmarks/sd15_vs_official.py), the layout tensor cores prefer on GPU.
        self.to(memory_format=torch.channels_last)
        self._fused = {m.name: m for m in self.unet.modules()
                       if isinstance(m, SpatialTransformer) and m.name.startswith(("mid_block", "up_blocks"))}

    def encode_reference(self, latents: torch.Tensor) -> AppearanceReference:
        """Scaled reference latents ``[B, C, h, w]`` (used at every step by the appearance UNet)."""
        if latents.ndim != 4 or latents.shape[1] != self.config.latent_channels:
            raise ValueError(f"reference latents must be [batch, {self.config.latent_channels}, height, width], "
                             f"got {tuple(latents.shape)}")
        return AppearanceReference(latents)

    def encode_driving(self, frames: torch.Tensor) -> torch.Tensor:
        """Driving frames ``[B, F, 3, H, W]`` in -1..1 -> driven features ``[B, F, 4, H/8, W/8]``."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"driving frames must be [batch, frames, 3, height, width], got {tuple(frames.shape)}")
        if frames.shape[-1] % 8 or frames.shape[-2] % 8:
            raise ValueError(f"driving frames are {frames.shape[-2]}x{frames.shape[-1]}; height and width must be "
                             "multiples of 8")
        return unfold_frames(self.unet.condition_input_layer(fold_frames(frames)), frames.shape[1])

    def null_controls(self, driven: torch.Tensor | None, audio: torch.Tensor | None
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, float]:
        """"No control" as the release trained it: a black driving video and all-zero Whisper features."""
        if driven is not None:
            b, f, _, h, w = driven.shape
            black = -torch.ones(1, 1, 3, h * 8, w * 8, device=driven.device, dtype=driven.dtype)
            driven = self.encode_driving(black).expand(b, f, -1, -1, -1)
        return driven, None if audio is None else torch.zeros_like(audio), 1.0

    def compile_blocks(self, **options) -> None:
        """``torch.compile`` the repeated units: resnets, transformers and motion modules."""
        for module in self.unet.modules():
            if isinstance(module, (ResnetBlock, SpatialTransformer, MotionModule)):
                module.compile(**options)

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        driven: torch.Tensor | None = None,
        reference: AppearanceReference | None = None,
        audio: torch.Tensor | None = None,
        audio_scale: torch.Tensor | float = 1.0,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise of ``latents`` ``[B, F, 4, h, w]`` -> ``[B, F, 4, h, w]``.

        ``driven``: features from :meth:`encode_driving`; None is a black driving video, what the
        release was trained with for "no visual control". ``reference``: for all videos, or the
        first ones (:meth:`AppearanceReference.first`). ``audio``: ``[B, F, 50, 384]`` Whisper
        tokens; ``audio_scale``: a number or ``[B]``. The Eq.2 mask belongs to the DiT's training.
        """
        if attention_mask is not None:
            raise ValueError("attention_mask (Eq.2) is a DiT training option; the SD1.5 model takes none")
        if latents.ndim != 5 or latents.shape[2] != self.config.latent_channels:
            raise ValueError(f"latents must be [batch, frames, {self.config.latent_channels}, height, width], "
                             f"got {tuple(latents.shape)}")
        batch, frames, _, height, width = latents.shape
        if height % 8 or width % 8:
            raise ValueError(f"latents are {height}x{width}; the UNet needs multiples of 8")
        dtype = self.unet.conv_in.weight.dtype
        # Timesteps are read on the CPU (the reference cache is keyed by their values: no device sync).
        steps = torch.as_tensor(timestep, dtype=torch.float32).cpu().reshape(-1).expand(batch)
        t = steps.to(latents.device)
        if driven is None:
            driven, _, _ = self.null_controls(latents.new_zeros(batch, frames, 1, height, width, dtype=dtype), None)
        x = fold_frames(torch.cat([latents.to(dtype), driven.to(dtype)], dim=2))
        ctx = Context(
            temb=repeat_per_frame(self.unet.time_features(t), frames),
            text=self.empty_text.to(latents.device, dtype)[None],
            frames=frames,
            audio=None if audio is None else fold_frames(audio.to(dtype)),
            audio_scale=self._audio_scale(audio_scale, batch, frames, x),
            reference={} if reference is None else self._reference(reference, steps, batch, latents.device),
        )
        return unfold_frames(self.unet(x, ctx), frames)

    def _audio_scale(self, scale: torch.Tensor | float, batch: int, frames: int, like: torch.Tensor):
        if not torch.is_tensor(scale):
            return scale
        scale = scale.to(like).reshape(-1).expand(batch)
        return repeat_per_frame(scale, frames)[:, None, None]

    def _reference(self, reference: AppearanceReference, t: torch.Tensor, batch: int,
                   device: torch.device) -> dict[str, KeysValues]:
        """Keys and values of the appearance UNet's tokens at timesteps ``t`` (on the CPU) for each fused
        transformer and each video that sees the reference, computed on ``device``."""
        videos = reference_videos(reference.videos, reference.batch, batch)
        t = t[:videos]
        shared = bool((t == t[0]).all())

        def compute() -> dict[str, KeysValues]:
            latents = reference.latents.to(device, self.unet.conv_in.weight.dtype)
            times = (t[:1] if shared else t).to(device)
            if not shared:
                latents = latents.expand(videos, -1, -1, -1)
            recorded: dict[str, torch.Tensor] = {}
            n = latents.shape[0]
            self.appearance_encoder(latents, Context(
                temb=self.appearance_encoder.time_features(times.expand(n)),
                text=self.empty_text.to(latents)[None], frames=1, record=recorded))
            return {name: self._fused[name].transformer_blocks[0].attn1.keys_values(tokens)
                    for name, tokens in recorded.items()}

        kept = reference.keys_values((tuple(t.tolist()), videos), compute)
        return {name: (k.expand(videos, -1, -1, -1), v.expand(videos, -1, -1, -1)) for name, (k, v) in kept.items()}
