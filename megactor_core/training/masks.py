"""Training masks: cached region coverage, the loss weights of unexplained face parts, and Eq.2.

The loss rule: a face part (eyes or mouth) that no control of a sample explains, neither the
kept region of its face-dropped driving frame nor (for the mouth) its audio, gets the weight
``unexplained_weight`` (0 drops it from the loss), so the model is never trained to guess it
from the reference. A sample without any control (classifier-free guidance's unconditional
branch) is trained everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..landmarks import FaceLandmarks, mouth_attention_mask, region_masks, token_masks
from .shards import REGION_NAMES

LATENT_CELL = 8  # pixels per SD-VAE latent cell
EYES, MOUTH, FACE = (REGION_NAMES.index(n) for n in ("eyes", "mouth", "face"))
# Whether each visual "keep" choice shows (eyes, mouth) in the driving frame.
SHOWN = {"eyes": (True, False), "mouth": (False, True), "both": (True, True), None: (False, False)}


def latent_regions(landmarks: FaceLandmarks, dilate: float = 0.05) -> np.ndarray:
    """uint8 ``[F, 3, H/8, W/8]``: how much of each latent cell the eyes, mouth and face cover (0..255)."""
    maps = [token_masks(region_masks(landmarks, name, dilate=dilate), LATENT_CELL) for name in REGION_NAMES]
    return (torch.stack(maps, dim=1).numpy() * 255).round().astype(np.uint8)


def loss_weights(regions: torch.Tensor, shown: torch.Tensor, audio: torch.Tensor,
                 unexplained_weight: float) -> torch.Tensor:
    """Per-latent-cell loss weights ``[B, F, 1, h, w]`` from region coverage ``[B, F, 3, h, w]``.

    ``shown`` ``[B, 2]`` says whether each sample's driving frames show the eyes and the mouth
    (:data:`SHOWN`); ``audio`` ``[B]`` whether it hears audio (which explains the mouth).
    """
    explained = shown.bool().clone()
    explained[:, 1] |= audio.bool()
    # Parts no control explains, in samples that have some control (the unconditional ones learn everything).
    unexplained = ~explained & explained.any(dim=1, keepdim=True)  # [B, 2]
    parts = regions[:, :, [EYES, MOUTH]] * unexplained[:, None, :, None, None]
    return 1 - (1 - unexplained_weight) * parts.amax(dim=2, keepdim=True)


def patch_tokens(regions: torch.Tensor, patch: int) -> torch.Tensor:
    """Latent-cell coverage ``[..., h, w]`` -> the DiT's token coverage ``[..., h/p * w/p]`` (flattened
    row-major like the denoiser's tokens)."""
    lead = regions.shape[:-2]
    pooled = F.avg_pool2d(regions.reshape(-1, 1, *regions.shape[-2:]), patch)
    return pooled.reshape(*lead, -1)


def eq2_attention_mask(mouth: torch.Tensor, driving: torch.Tensor, applies: torch.Tensor) -> torch.Tensor | None:
    """Eq.2 for a batch: boolean ``[B, F, N, N]`` (True = may attend) where, in samples whose
    driving frames do not show the mouth (``applies[b]``), the target's mouth tokens may not attend
    the tokens of the driving region. ``mouth`` and ``driving`` are boolean ``[B, F, N]``.
    None when no sample needs a mask (the model then skips masking altogether)."""
    if not bool(applies.any()):
        return None
    batch, frames, tokens = mouth.shape
    blocked_mouth = mouth & applies[:, None, None]
    mask = mouth_attention_mask(blocked_mouth.reshape(-1, tokens), driving.reshape(-1, tokens))
    return mask.reshape(batch, frames, tokens, tokens)
