"""Both backbones run with their weights on another device than their inputs, as when ComfyUI's
partial loading (``--lowvram``) streams them: its layers copy their weights to the input's device for
each call, and every tensor used outside a layer must follow the input too. Here the weights stay
on the CPU and the inputs are on the ``meta`` device, so anything left behind raises."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from megactor_core.models import MegActorSigma, MegActorSigmaSD15, SD15Config
from tests.tiny_models import TINY_SD15, randomize, tiny_config


class StreamedLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight.to(x.device), None if self.bias is None else self.bias.to(x.device))


class StreamedConv2d(nn.Conv2d):
    def forward(self, x):
        return self._conv_forward(x, self.weight.to(x.device), None if self.bias is None else self.bias.to(x.device))


class StreamedLayerNorm(nn.LayerNorm):
    def forward(self, x):
        weight, bias = (None, None) if self.weight is None else (self.weight.to(x.device), self.bias.to(x.device))
        return F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)


class StreamedGroupNorm(nn.GroupNorm):
    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight.to(x.device), self.bias.to(x.device), self.eps)


STREAMED = {nn.Linear: StreamedLinear, nn.Conv2d: StreamedConv2d, nn.LayerNorm: StreamedLayerNorm,
            nn.GroupNorm: StreamedGroupNorm}


def stream(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if type(module) in STREAMED:
            module.__class__ = STREAMED[type(module)]
    return model


@pytest.mark.parametrize("backbone", ["dit", "sd15"])
def test_runs_with_streamed_weights(backbone):
    torch.manual_seed(0)
    if backbone == "dit":
        model, tokens = randomize(MegActorSigma(tiny_config())), 45
    else:
        model, tokens = randomize(MegActorSigmaSD15(SD15Config(**TINY_SD15))), None
    model = stream(model.eval())
    config, meta = model.config, torch.device("meta")
    tokens = tokens or config.audio_tokens
    with torch.no_grad():
        reference = model.encode_reference(torch.randn(1, config.latent_channels, 8, 8, device=meta))
        driven = model.encode_driving(torch.rand(1, 3, 3, 64, 64, device=meta))
        out = model(torch.randn(1, 3, config.latent_channels, 8, 8, device=meta), 500, reference=reference,
                    driven=driven, audio=torch.randn(1, 3, tokens, config.audio_dim, device=meta),
                    audio_scale=torch.ones(1, device=meta))
    assert out.device == meta and out.shape[:2] == (1, 3) and out.shape[-2:] == (8, 8)
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_an_unmoved_weight_is_caught():
    """The check bites: a layer that is not streamed has its weight on the CPU and fails on meta inputs."""
    model = stream(randomize(MegActorSigma(tiny_config())).eval())
    model.denoiser.blocks[0].mlp.fc1.__class__ = nn.Linear
    config, meta = model.config, torch.device("meta")
    with torch.no_grad(), pytest.raises((RuntimeError, NotImplementedError)):
        reference = model.encode_reference(torch.randn(1, config.latent_channels, 8, 8, device=meta))
        model(torch.randn(1, 3, config.latent_channels, 8, 8, device=meta), 500, reference=reference)
