"""Our blocks are PixArt-α: same weights, same output as diffusers' PixArtTransformer2DModel."""

from __future__ import annotations

import pytest
import torch
from diffusers import PixArtTransformer2DModel

from megactor_core.models import MegActorSigma
from megactor_core.models.pixart import config_from_pixart, init_from_pixart, load_pixart
from tests.conftest import randomize


def tiny_pixart(cross_attention: bool = False) -> PixArtTransformer2DModel:
    torch.manual_seed(0)
    model = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=3,
        sample_size=8, patch_size=2, norm_num_groups=1,
        cross_attention_dim=32 if cross_attention else None,
        caption_channels=24 if cross_attention else None,
    )
    return randomize(model, seed=1).eval()


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


def original_layout(pixart: PixArtTransformer2DModel) -> dict[str, torch.Tensor]:
    """The tiny diffusers model written with the key names of PixArt-α's own ``.pth`` release."""
    sd = pixart.state_dict()
    out = {
        "pos_embed": torch.zeros(1, 16, 32),  # buffer of a 4x4 token grid (sample_size 8, patch 2)
        "x_embedder.proj.weight": sd["pos_embed.proj.weight"],
        "x_embedder.proj.bias": sd["pos_embed.proj.bias"],
        "t_embedder.mlp.0.weight": sd["adaln_single.emb.timestep_embedder.linear_1.weight"],
        "t_embedder.mlp.0.bias": sd["adaln_single.emb.timestep_embedder.linear_1.bias"],
        "t_embedder.mlp.2.weight": sd["adaln_single.emb.timestep_embedder.linear_2.weight"],
        "t_embedder.mlp.2.bias": sd["adaln_single.emb.timestep_embedder.linear_2.bias"],
        "t_block.1.weight": sd["adaln_single.linear.weight"],
        "t_block.1.bias": sd["adaln_single.linear.bias"],
        "y_embedder.y_embedding": torch.zeros(120, 24),
        "y_embedder.y_proj.fc1.weight": sd["caption_projection.linear_1.weight"],
        "y_embedder.y_proj.fc1.bias": sd["caption_projection.linear_1.bias"],
        "y_embedder.y_proj.fc2.weight": sd["caption_projection.linear_2.weight"],
        "y_embedder.y_proj.fc2.bias": sd["caption_projection.linear_2.bias"],
        "final_layer.scale_shift_table": sd["scale_shift_table"],
        "final_layer.linear.weight": sd["proj_out.weight"],
        "final_layer.linear.bias": sd["proj_out.bias"],
    }
    for i in range(len(pixart.transformer_blocks)):
        d, o = f"transformer_blocks.{i}.", f"blocks.{i}."
        out[o + "scale_shift_table"] = sd[d + "scale_shift_table"]
        for leaf in ("weight", "bias"):
            out[o + f"attn.qkv.{leaf}"] = torch.cat([sd[d + f"attn1.to_{p}.{leaf}"] for p in "qkv"])
            out[o + f"attn.proj.{leaf}"] = sd[d + f"attn1.to_out.0.{leaf}"]
            out[o + f"cross_attn.q_linear.{leaf}"] = sd[d + f"attn2.to_q.{leaf}"]
            out[o + f"cross_attn.kv_linear.{leaf}"] = torch.cat([sd[d + f"attn2.to_{p}.{leaf}"] for p in "kv"])
            out[o + f"cross_attn.proj.{leaf}"] = sd[d + f"attn2.to_out.0.{leaf}"]
            out[o + f"mlp.fc1.{leaf}"] = sd[d + f"ff.net.0.proj.{leaf}"]
            out[o + f"mlp.fc2.{leaf}"] = sd[d + f"ff.net.2.{leaf}"]
    return out


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
