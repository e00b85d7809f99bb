"""Tiny random models built with the real code paths, and PixArt-α stand-ins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from diffusers import PixArtTransformer2DModel
from onnx import TensorProto, helper, numpy_helper

from megactor_core.models import MegActorConfig
from megactor_core.stand_ins import face_dwpose_files, raw_yolox_output, stand_in_onnx, tiny_vae  # noqa: F401


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


def tiny_pixart(cross_attention: bool = False) -> PixArtTransformer2DModel:
    torch.manual_seed(0)
    model = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=3,
        sample_size=8, patch_size=2, norm_num_groups=1,
        cross_attention_dim=32 if cross_attention else None,
        caption_channels=24 if cross_attention else None,
    )
    return randomize(model, seed=1).eval()


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


def tiny_whisper_file(path: Path) -> Path:
    """A random openai-whisper checkpoint with the real layout: 80 mels, 30 s windows, width 16, 2 layers."""
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
                           n_vocab=100, n_text_ctx=8, n_text_state=16, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    model = Whisper(dims)
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


def colour_sensitive_yolox(path: Path) -> Path:
    """A stand-in ``yolox_l.onnx`` whose one person box moves right with the mean of input channel
    0 (up to 8 stride-16 cells, 128 px, for a channel at 255) and left with channel 2: where it
    finds the person tells which colour order it was fed."""
    base = raw_yolox_output((200.0, 320.0, 200.0, 300.0, 0.95, {0: 0.95}))
    anchor = 6400 + (320 // 16) * 40 + 200 // 16  # the stride-16 anchor holding the box
    weights = np.zeros((3, base.size), np.float32)
    weights[0, anchor * 85] = 8 / 255  # channel 0 shifts the centre's x offset right (in cells)
    weights[2, anchor * 85] = -4 / 255  # channel 2 shifts it left
    nodes = [helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["means", "weights"], ["shift"]),
             helper.make_node("Add", ["shift", "base"], ["flat"]),
             helper.make_node("Reshape", ["flat", "shape"], ["output"])]
    inits = [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(base.reshape(1, -1), "base"),
             numpy_helper.from_array(np.array([1, 8400, 85], np.int64), "shape")]
    graph = helper.make_graph(nodes, "colour_sensitive_yolox",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def tiny_model_folders(models: Path, checkpoint: str = "megactor_sigma.safetensors") -> Path:
    """ComfyUI model folders holding a tiny MegActor-Σ (audio width 16), a tiny official SD1.5
    release (megactor-sigma.ckpt), a tiny Whisper (width 16) and the stand-in DWPose files, under
    the names the examples use."""
    from megactor_core.models import MegActorSigma, save_checkpoint

    save_checkpoint(randomize(MegActorSigma(tiny_config(audio_dim=16)), std=0.1), models / "megactor" / checkpoint)
    tiny_release_file(models / "megactor" / "megactor-sigma.ckpt", audio_dim=16)
    (models / "whisper").mkdir(parents=True, exist_ok=True)
    tiny_whisper_file(models / "whisper" / "tiny.pt")
    face_dwpose_files(models / "dwpose")
    return models


TINY_SD15 = dict(block_out_channels=(32, 64, 64, 64), cross_attention_dim=16, audio_dim=12, driven_widths=(4, 8, 8, 8))


def save_release_file(model, path: Path, empty_text: torch.Tensor) -> Path:
    """Store ``model`` as the official release stores megactor-sigma.ckpt (DeepSpeed's ``module.``
    prefix, ``to_out.0`` names, fp16, a VAE that loading ignores, the training step), with its
    empty-prompt embedding beside it."""
    from megactor_core.models.sd15.official import EMPTY_PROMPT, release_name

    state = {f"module.{part}.{release_name(k)}": v.half() for part in ("unet", "appearance_encoder")
             for k, v in getattr(model, part).state_dict().items()}
    state["module.vae.decoder.conv_out.weight"] = torch.zeros(3, 128, 3, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "global_step": 9000, "state_dict": state}, path)
    torch.save(empty_text[None], path.with_name(EMPTY_PROMPT))
    return path


def tiny_release_file(path: Path, **changes) -> Path:
    """A tiny random model saved as the official release (see :func:`save_release_file`)."""
    from megactor_core.models import MegActorSigmaSD15, SD15Config

    torch.manual_seed(0)
    config = SD15Config(**(TINY_SD15 | changes))
    empty_text = torch.randn(config.text_tokens, config.cross_attention_dim)
    return save_release_file(randomize(MegActorSigmaSD15(config, empty_text), std=0.05), path, empty_text)


def save_lpips_files(folder: Path) -> tuple[Path, Path]:
    """Stand-ins for alex.pth (lpips' five non-negative 1x1 weightings) and torchvision's AlexNet features;
    of its classifier only the bias vectors are stored (its 58M weights would only be ignored)."""
    from megactor_core.evaluate.lpips import LPIPS, Lins

    torch.manual_seed(1)
    lins = Lins()
    with torch.no_grad():
        for p in lins.parameters():
            p.uniform_(0, 0.1)
    torch.save(lins.state_dict(), folder / "alex.pth")
    backbone = LPIPS().net.state_dict()
    backbone.update({"classifier.1.bias": torch.zeros(4096), "classifier.4.bias": torch.zeros(4096),
                     "classifier.6.bias": torch.zeros(1000)})
    torch.save(backbone, folder / "alexnet-owt-7be5be79.pth")
    return folder / "alex.pth", folder / "alexnet-owt-7be5be79.pth"
