"""The denoising transformer of MegActor-Σ."""

from __future__ import annotations

import torch
from torch import nn

from ..layout import fold_frames, repeat_per_frame, unfold_frames, unpatchify
from .backbone import reference_videos
from .config import MegActorConfig
from .dit import DiTTrunk
from .embeddings import modulate
from .reference import ReferenceFeatures
from .temporal import TemporalModulation


class DenoisingTransformer(DiTTrunk):
    """PixArt-α whose patch embedding also takes driven features, with reference injection,
    audio attention and temporal modules as the config says."""

    def __init__(self, config: MegActorConfig) -> None:
        super().__init__(config, config.in_channels, config.num_layers,
                         audio=config.use_audio, temporal=config.use_temporal)
        dim = config.hidden_size
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=config.norm_eps)
        self.final_modulation = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.proj_out = nn.Linear(dim, config.patch_size**2 * config.out_channels)
        modulated = config.use_temporal and config.temporal_modulation
        self.temporal = TemporalModulation(dim) if modulated else None

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        driven: torch.Tensor | None = None,
        reference: ReferenceFeatures | None = None,
        audio: torch.Tensor | None = None,
        audio_scale: torch.Tensor | float = 1.0,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict noise (and variance) for a batch of videos.

        Args:
            latents: noisy scaled latents ``[B, F, latent_channels, h, w]``.
            timestep: diffusion timestep, a number or ``[B]``.
            driven: driven-encoder features ``[B, F, driven_channels, h, w]``; None for no
                visual control (the same as all-zero features).
            reference: features from the reference transformer, batch ``B`` or 1 (or for the
                first videos only: :meth:`ReferenceFeatures.first`).
            audio: per-frame Whisper features ``[B, F, T, audio_dim]``; None for no audio.
            audio_scale: λ of Eq.4, a number or ``[B]``.
            attention_mask: Eq.2 self-attention mask over a frame's own tokens, boolean,
                ``[N, N]``, ``[B, N, N]`` or ``[B, F, N, N]`` with ``N = (h/p)*(w/p)``; True where
                a query may attend a key. Reference tokens stay visible to every query.

        Returns:
            ``[B, F, out_channels, h, w]``.
        """
        if latents.ndim != 5:
            raise ValueError(f"latents must be [batch, frames, channels, height, width], got {tuple(latents.shape)}")
        cfg = self.config
        batch, frames, _, height, width = latents.shape
        if latents.shape[2] != cfg.latent_channels:
            raise ValueError(f"latents have {latents.shape[2]} channels; this model expects "
                             f"{cfg.latent_channels} (shape {tuple(latents.shape)})")
        self.check_size(height, width, "latents")
        x = torch.cat([latents, self._driven(driven, latents)], dim=2)
        rows, cols = height // cfg.patch_size, width // cfg.patch_size

        x = self.patch_embed(fold_frames(x))
        t = self.timesteps(timestep, batch, x.device)
        modulation, embedded = self.time_embed(t, x.dtype)
        modulation = repeat_per_frame(modulation, frames)
        temporal = None if self.temporal is None else repeat_per_frame(self.temporal(embedded), frames)
        refs = self._reference(reference, batch)
        own_mask, ref_mask = self._masks(attention_mask, batch, frames, rows * cols, refs, x)
        audio, audio_scale = self._audio(audio, audio_scale, batch, frames, x)

        for i in range(len(self.blocks)):
            x = self.run_block(
                i, x, modulation, frames=frames,
                reference=refs.get(i),
                mask=ref_mask if i in refs else own_mask, audio=audio, audio_scale=audio_scale,
                temporal_modulation=temporal,
            )

        # Tables used outside a layer follow the input: a memory manager may stream the weights.
        table = self.final_modulation[None].to(embedded.device)
        shift, scale = (table + repeat_per_frame(embedded, frames)[:, None]).chunk(2, dim=1)
        x = self.proj_out(modulate(self.norm_out(x), shift, scale))
        return unfold_frames(unpatchify(x, rows, cols, cfg.patch_size), frames)

    def _driven(self, driven: torch.Tensor | None, latents: torch.Tensor) -> torch.Tensor:
        b, f, _, h, w = latents.shape
        expected = (b, f, self.config.driven_channels, h, w)
        if driven is None:
            return latents.new_zeros(expected)
        if tuple(driven.shape) != expected:
            raise ValueError(f"driven features have shape {tuple(driven.shape)}; expected {expected} "
                             "(same batch, frames and latent size as the latents)")
        return driven.to(latents.dtype)

    def reference_keys_values(self, tokens: dict[int, torch.Tensor]) -> ReferenceFeatures:
        """Reference tokens ``{block: [B, R, D]}`` -> the keys and values each block appends to its
        self-attention (projected once here rather than once per frame and step)."""
        wanted = set(self.config.reference_blocks)
        if set(tokens) != wanted:
            raise ValueError(f"reference tokens are for blocks {sorted(tokens)}; this model injects into "
                             f"blocks {sorted(wanted)}")
        return ReferenceFeatures({i: self.blocks[i].attn.keys_values(t) for i, t in tokens.items()})

    def _reference(self, reference: ReferenceFeatures | None, batch: int
                   ) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Reference keys and values per block for the videos that see them (all, or the first
        ``reference.videos``)."""
        if reference is None:
            return {}
        wanted = set(self.config.reference_blocks)
        if set(reference.keys_values) != wanted:
            raise ValueError(f"reference features are for blocks {sorted(reference.keys_values)}; this "
                             f"model injects into blocks {sorted(wanted)}")
        videos = reference_videos(reference.videos, reference.batch, batch)
        return {i: (k.expand(videos, *k.shape[1:]), v.expand(videos, *v.shape[1:]))
                for i, (k, v) in reference.keys_values.items()}

    def _masks(self, mask: torch.Tensor | None, batch: int, frames: int, tokens: int,
               refs: dict[int, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Additive self-attention masks ``[B*F or 1, 1, N, N(+R)]`` in ``x``'s dtype for blocks
        without / with reference, built once per forward (a boolean mask would be converted by
        every attention call). A mask shared by all frames stays one copy."""
        if mask is None:
            return None, None
        if mask.dtype != torch.bool:
            raise ValueError(f"attention_mask must be boolean (True = may attend), got {mask.dtype}")
        if mask.shape[-2:] != (tokens, tokens) or mask.ndim not in (2, 3, 4):
            raise ValueError(f"attention_mask has shape {tuple(mask.shape)}; expected [N, N], [B, N, N] "
                             f"or [B, F, N, N] with N = {tokens} tokens per frame")
        mask = mask.to(x.device)
        mask = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape)) if mask.ndim != 3 else mask[:, None]
        if mask.shape[:2] != (1, 1):
            try:
                mask = mask.expand(batch, frames, tokens, tokens)
            except RuntimeError:
                raise ValueError(f"attention_mask of shape {tuple(mask.shape)} does not fit batch {batch} "
                                 f"and {frames} frames") from None
        own = fold_frames(mask)[:, None]
        if not bool(own.any(-1).all()):
            raise ValueError("attention_mask leaves a query token with no key to attend")
        own = torch.zeros(own.shape, dtype=x.dtype, device=x.device).masked_fill_(~own, float("-inf"))
        with_ref = None
        if refs:
            ref_tokens = next(iter(refs.values()))[0].shape[2]
            with_ref = torch.cat([own, own.new_zeros(*own.shape[:-1], ref_tokens)], dim=-1)
        return own, with_ref

    def _audio(self, audio: torch.Tensor | None, scale: torch.Tensor | float, batch: int, frames: int,
               x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | float]:
        if audio is None:
            return None, scale
        if not self.config.use_audio:
            raise ValueError("audio features were given, but this model has no audio attention "
                             "(its config has use_audio=False)")
        expected = (batch, frames, self.config.audio_dim)
        if audio.ndim != 4 or (audio.shape[0], audio.shape[1], audio.shape[3]) != expected:
            raise ValueError(f"audio features have shape {tuple(audio.shape)}; expected "
                             f"[{batch}, {frames}, tokens, {self.config.audio_dim}] "
                             f"(batch, frames, tokens, audio_dim)")
        if torch.is_tensor(scale):
            scale = scale.to(device=x.device, dtype=x.dtype).reshape(-1)
            if scale.numel() not in (1, batch):
                raise ValueError(f"audio_scale has {scale.numel()} values for a batch of {batch}")
            scale = repeat_per_frame(scale.expand(batch), frames)[:, None, None]
        return fold_frames(audio.to(x.dtype)), scale
