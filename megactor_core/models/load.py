"""One entry point for every model file: our DiT checkpoints and the official SD1.5 release."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint import load_checkpoint
from .megactor import MegActorSigma
from .sd15 import MegActorSigmaSD15, load_official
from .sd15.official import SUFFIXES as OFFICIAL_SUFFIXES

MODEL_SUFFIXES = (".safetensors", *OFFICIAL_SUFFIXES)
# Every backbone (each a models.backbone.Backbone); a new one is one more member here and in load_model.
AnyMegActor = MegActorSigma | MegActorSigmaSD15


def load_model(path: str | os.PathLike, *, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> AnyMegActor:
    """A MegActor-Σ DiT checkpoint (``.safetensors``, this project's format) or the official
    SD1.5 release (``megactor-sigma.ckpt``, with ``sd15_empty_str_embedding.pt`` beside it),
    told apart by the file type; both load with every tensor checked."""
    path = Path(path)
    if path.suffix in OFFICIAL_SUFFIXES:
        return load_official(path, device=device, dtype=dtype or torch.float32)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path.name}: expected a MegActor-Σ .safetensors checkpoint or the official "
                         f"release's .ckpt ({', '.join(MODEL_SUFFIXES)})")
    return load_checkpoint(path, device=device, dtype=dtype)
