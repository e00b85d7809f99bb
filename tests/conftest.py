"""Shared fixtures: tiny random MegActor-Σ models built with the real code paths."""

from __future__ import annotations

import pytest
import torch

from megactor_core.models import MegActorSigma
from tests.tiny_models import tiny_config


@pytest.fixture
def tiny() -> MegActorSigma:
    torch.manual_seed(0)
    return MegActorSigma(tiny_config()).eval()
