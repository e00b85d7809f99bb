"""The analytic FLOP counts of benchmarks/flops.py against torch's counter, and the GPU speed script."""

from __future__ import annotations

import pytest

from benchmarks.flops import (
    Workload,
    count_model,
    count_pixart,
    denoiser_flops,
    driven_flops,
    pixart_flops,
    reference_flops,
)
from tests.tiny_models import tiny_config


@pytest.mark.parametrize("changes, work", [
    ({}, Workload(64, 64, 3, audio_tokens=5)),
    ({"temporal_modulation": True}, Workload(64, 64, 3, audio_tokens=5)),
    ({"use_temporal": False}, Workload(96, 64, 1, audio_tokens=7)),
    ({"num_layers": 4, "reference_blocks": (0, 3), "temporal_blocks": (0, 2)}, Workload(64, 128, 4)),
])
def test_analytic_flops_match_the_counter(changes, work):
    config = tiny_config(**changes)
    counted = count_model(config, work)
    assert denoiser_flops(config, work) == counted["denoiser"]
    assert reference_flops(config, work) == counted["reference"]
    assert driven_flops(config, work) == counted["driven"]


def test_denoiser_without_reference_or_audio_is_cheaper():
    config = tiny_config()
    full = Workload(64, 64, 2, audio_tokens=5)
    bare = Workload(64, 64, 2, reference=False)
    assert count_model(config, bare)["denoiser"] == denoiser_flops(config, bare) < denoiser_flops(config, full)


@pytest.mark.parametrize("caption_tokens", [0, 6])
def test_pixart_flops_match_diffusers(caption_tokens):
    config = tiny_config(hidden_size=32, num_heads=2)
    work = Workload(64, 64, 1)
    assert pixart_flops(config, work, caption_tokens) == count_pixart(config, work, caption_tokens)


def test_gpu_speed_measurement_runs_on_a_tiny_model():
    """The GPU script's measurement path, on a tiny model on the CPU (it times; nothing is asserted about speed)."""
    import torch

    from benchmarks.gpu_speed import measure
    from megactor_core.models import MegActorSigma, MegActorSigmaSD15, SD15Config
    from tests.tiny_models import TINY_SD15, tiny_vae

    for model, size in [(MegActorSigma(tiny_config()), 64), (MegActorSigmaSD15(SD15Config(**TINY_SD15)), 128)]:
        result = measure(model, tiny_vae(), frames=5, size=size, steps=2, dtype=torch.float32,
                         device=torch.device("cpu"))
        assert result["sampling_s"] > 0 and result["decode_s"] > 0
