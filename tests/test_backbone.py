"""Each backbone offers what models/backbone.py says a backbone offers, with the same call signatures."""

from __future__ import annotations

import inspect

import pytest
import torch

from megactor_core.models import Backbone, BackboneConfig, MegActorSigma, MegActorSigmaSD15, SD15Config
from megactor_core.models.load import AnyMegActor
from tests.tiny_models import TINY_SD15, randomize, tiny_config

BACKBONES = {"dit": lambda: MegActorSigma(tiny_config()), "sd15": lambda: MegActorSigmaSD15(SD15Config(**TINY_SD15))}
METHODS = ["encode_reference", "encode_driving", "null_controls", "forward", "compile_blocks"]


def test_every_backbone_is_listed():
    assert set(AnyMegActor.__args__) == {MegActorSigma, MegActorSigmaSD15}


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_follows_the_protocol(name):
    model = BACKBONES[name]()
    assert isinstance(model, Backbone) and isinstance(model.config, BackboneConfig)
    for method in METHODS:
        wanted = inspect.signature(getattr(Backbone, method)).parameters
        given = inspect.signature(getattr(type(model), method)).parameters
        assert list(wanted) == list(given), (method, list(given))
        assert [p.kind for p in wanted.values()] == [p.kind for p in given.values()], method
    config = model.config
    assert isinstance(config.use_audio, bool) and isinstance(config.audio_style, str)
    assert isinstance(config.noise_schedule, dict) and config.to_dict()["latent_channels"] == config.latent_channels
    assert model.activation_elements > 0


@torch.no_grad()
def random_inputs(name: str, batch: int, frames: int):
    """A backbone with every weight random (no zero-initialised control paths), noisy latents, an
    encoded reference, encoded driving frames and audio tokens, built through the protocol only."""
    torch.manual_seed(0)
    model: Backbone = randomize(BACKBONES[name]()).eval()
    config = model.config
    reference = model.encode_reference(torch.randn(1, config.latent_channels, 8, 8))
    driven = model.encode_driving(torch.rand(batch, frames, 3, 64, 64) * 2 - 1)
    audio = torch.randn(batch, frames, getattr(config, "audio_tokens", 45), config.audio_dim)
    return model, torch.randn(batch, frames, config.latent_channels, 8, 8), reference, driven, audio


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_denoises_a_video_through_the_protocol(name):
    """Only the protocol's calls: reference and driving encoded once, null controls, one step."""
    model, latents, reference, driven, audio = random_inputs(name, batch=1, frames=2)
    with torch.no_grad():
        no_driven, no_audio, no_scale = model.null_controls(driven, audio)
        out = model(latents, 500, reference=reference, driven=driven, audio=audio)
        null = model(latents, 500, reference=reference, driven=no_driven, audio=no_audio, audio_scale=no_scale)
    assert out.shape[:2] == (1, 2) and out.shape[-2:] == (8, 8) and out.shape == null.shape
    assert not torch.allclose(out, null)


@pytest.mark.parametrize("name", BACKBONES)
def test_reference_for_the_first_videos_only(name):
    """``reference.first(1)`` in a batch of two = the first video with the reference and the second
    without, each run alone (the release's guidance in one batch); a reference that does not fit
    the batch is refused."""
    model, latents, reference, driven, audio = random_inputs(name, batch=2, frames=3)
    with torch.no_grad():
        both = model(latents, 500, reference=reference.first(1), driven=driven, audio=audio)
        with_ref = model(latents[:1], 500, reference=reference, driven=driven[:1], audio=audio[:1])
        without = model(latents[1:], 500, driven=driven[1:], audio=audio[1:])
        shared = model(latents, 500, reference=reference, driven=driven, audio=audio)
        torch.testing.assert_close(both[:1], with_ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(both[1:], without, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(shared[:1], with_ref, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(shared[1:], without, atol=1e-3)
        with pytest.raises(ValueError, match="does not fit a batch of 2"):
            model(latents, 500, reference=reference.first(3), driven=driven, audio=audio)
