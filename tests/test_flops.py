"""The analytic FLOP counts of benchmarks/flops.py against torch's counter on real modules."""

from __future__ import annotations

import pytest

from benchmarks.flops import (Workload, count_model, count_pixart, denoiser_flops, driven_flops, pixart_flops,
                              reference_flops)
from tests.tiny_models import tiny_config


@pytest.mark.parametrize("changes, work", [
    ({}, Workload(64, 64, 3, audio_tokens=5)),
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
