"""Our blocks are PixArt-α: same weights, same output as diffusers' PixArtTransformer2DModel."""

from __future__ import annotations

import pytest
import torch
from diffusers import PixArtTransformer2DModel

from megactor_core.models.pixart import config_from_pixart, init_from_pixart, load_pixart
from tests.tiny_models import original_layout, tiny_pixart


def pixart_out(model: PixArtTransformer2DModel, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return model(x, timestep=t, added_cond_kwargs={"resolution": None, "aspect_ratio": None},
                 return_dict=False)[0]


@pytest.mark.parametrize("size", [(8, 8), (12, 8), (6, 10)])
@pytest.mark.parametrize("extras", [False, True], ids=["plain", "fresh-audio-temporal"])
def test_denoiser_equals_pixart(size, extras):
    pixart = tiny_pixart()
    config = config_from_pixart(pixart.state_dict(), dict(pixart.config), audio_dim=12,
                                driven_channels=4, driven_encoder_channels=(4, 8, 8),
                                use_audio=extras, use_temporal=extras)
    ours = init_from_pixart(pixart.state_dict(), config).eval()
    x = torch.randn(2, 4, *size)
    t = torch.tensor([10.0, 700.0])
    with torch.no_grad():
        expected = pixart_out(pixart, x, t)
        audio = torch.randn(2, 1, 5, 12) if extras else None
        got = ours(x[:, None], t, audio=audio)[:, 0]
    assert got.shape == expected.shape == (2, 8, *size)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_text_cross_attention_is_dropped():
    pixart = tiny_pixart(cross_attention=True)
    config = config_from_pixart(pixart.state_dict(), dict(pixart.config), audio_dim=12,
                                driven_channels=4, driven_encoder_channels=(4, 8, 8))
    ours = init_from_pixart(pixart.state_dict(), config)
    assert not any("attn2" in k or "caption" in k for k in ours.state_dict())
    # With the text branch zeroed, PixArt-α and the converted model agree again.
    with torch.no_grad():
        for block in pixart.transformer_blocks:
            block.attn2.to_out[0].weight.zero_()
            block.attn2.to_out[0].bias.zero_()
        x, t = torch.randn(1, 4, 8, 8), torch.tensor([300.0])
        text = torch.randn(1, 3, 24)
        expected = pixart(x, encoder_hidden_states=text, timestep=t,
                          added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)[0]
        torch.testing.assert_close(ours.eval()(x[:, None], t)[:, 0], expected, rtol=1e-5, atol=1e-5)


def test_original_pth_converts_like_diffusers_folder(tmp_path):
    pixart = tiny_pixart(cross_attention=True)
    pth = tmp_path / "PixArt-tiny.pth"
    torch.save({"state_dict": original_layout(pixart)}, pth)
    pixart.save_pretrained(tmp_path / "pipeline" / "transformer")

    from_pth, pth_config = load_pixart(pth)
    from_folder, folder_config = load_pixart(tmp_path / "pipeline")
    assert pth_config["sample_size"] == 8
    assert from_pth.keys() == from_folder.keys()
    for key in from_folder:
        assert torch.equal(from_pth[key], from_folder[key]), key
    overrides = dict(num_heads=2, audio_dim=12, driven_channels=4, driven_encoder_channels=(4, 8, 8))
    a = config_from_pixart(from_pth, pth_config, **overrides)
    b = config_from_pixart(from_folder, folder_config, **overrides)
    assert a == b
