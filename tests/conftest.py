"""Shared fixtures: tiny random MegActor-Σ models built with the real code paths."""

from __future__ import annotations

import pytest
import torch

from megactor_core.models import MegActorConfig, MegActorSigma


def tiny_config(**changes) -> MegActorConfig:
    """3 blocks of width 32, 2 heads, reference into blocks 1-2, temporal in block 1."""
    values = dict(num_layers=3, hidden_size=32, num_heads=2, sample_size=8, audio_dim=12,
                  driven_channels=4, driven_encoder_channels=(4, 8, 8), reference_blocks=(1, 2))
    values.update(changes)
    return MegActorConfig(**values)


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    """Give every parameter random values, including the zero-initialised ones, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


@pytest.fixture
def tiny() -> MegActorSigma:
    torch.manual_seed(0)
    return MegActorSigma(tiny_config()).eval()
