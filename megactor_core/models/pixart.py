"""PixArt-α weights -> a MegActor-Σ model (denoiser and reference transformer).

Two sources are read: the diffusers ``transformer/`` folder of PixArt-XL-2-512x512 and the
original ``PixArt-XL-2-512x512.pth``. The original layout is first renamed to the diffusers
one, which is then mapped onto ours. Text cross-attention and the caption projection are not
carried over: audio attention takes their place.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..state_dict import rename_prefix
from .config import MegActorConfig
from .megactor import MegActorSigma

# Our name -> diffusers name, by prefix, for everything PixArt-α and MegActor-Σ share.
_TOP = {
    "patch_embed.proj": "pos_embed.proj",
    "time_embed.linear_1": "adaln_single.emb.timestep_embedder.linear_1",
    "time_embed.linear_2": "adaln_single.emb.timestep_embedder.linear_2",
    "time_embed.modulation": "adaln_single.linear",
    "final_modulation": "scale_shift_table",
    "proj_out": "proj_out",
}
_BLOCK = {
    "modulation": "scale_shift_table",
    "attn.to_q": "attn1.to_q",
    "attn.to_k": "attn1.to_k",
    "attn.to_v": "attn1.to_v",
    "attn.to_out": "attn1.to_out.0",
    "mlp.fc1": "ff.net.0.proj",
    "mlp.fc2": "ff.net.2",
}
# Original PixArt-α .pth name -> diffusers name, by prefix (qkv and kv are split separately).
_PTH_TOP = {
    "x_embedder.proj": "pos_embed.proj",
    "t_embedder.mlp.0": "adaln_single.emb.timestep_embedder.linear_1",
    "t_embedder.mlp.2": "adaln_single.emb.timestep_embedder.linear_2",
    "t_block.1": "adaln_single.linear",
    "final_layer.linear": "proj_out",
    "final_layer.scale_shift_table": "scale_shift_table",
    "y_embedder.y_proj.fc1": "caption_projection.linear_1",
    "y_embedder.y_proj.fc2": "caption_projection.linear_2",
    "csize_embedder.mlp.0": "adaln_single.emb.resolution_embedder.linear_1",
    "csize_embedder.mlp.2": "adaln_single.emb.resolution_embedder.linear_2",
    "ar_embedder.mlp.0": "adaln_single.emb.aspect_ratio_embedder.linear_1",
    "ar_embedder.mlp.2": "adaln_single.emb.aspect_ratio_embedder.linear_2",
}
_PTH_BLOCK = {
    "scale_shift_table": "scale_shift_table",
    "attn.proj": "attn1.to_out.0",
    "mlp.fc1": "ff.net.0.proj",
    "mlp.fc2": "ff.net.2",
    "cross_attn.q_linear": "attn2.to_q",
    "cross_attn.proj": "attn2.to_out.0",
}
# Buffers of the original release that have no diffusers counterpart.
_PTH_SKIPPED = {"pos_embed", "y_embedder.y_embedding"}
_FUSED = {"attn.qkv": ("attn1", "qkv"), "cross_attn.kv_linear": ("attn2", "kv")}
_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)")
# Diffusers keys of PixArt-α parts that MegActor-Σ drops on purpose.
_DROPPED = re.compile(r"^(caption_projection\.|transformer_blocks\.\d+\.attn2\.|pos_embed\.pos_embed$)")
_MICRO_CONDITIONS = re.compile(r"^adaln_single\.emb\.(resolution|aspect_ratio)_embedder\.")


class PixArtError(ValueError):
    """Weights that are not the PixArt-α these conversions understand."""


def diffusers_key(ours: str) -> str | None:
    """The diffusers PixArt-α key a trunk parameter of ours comes from; None for new parts."""
    m = _BLOCK_KEY.fullmatch(ours)
    if m is None:
        return rename_prefix(ours, _TOP)
    rest = rename_prefix(m.group(2), _BLOCK)
    return None if rest is None else f"transformer_blocks.{m.group(1)}.{rest}"


def original_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original PixArt-α ``.pth`` state dict to the diffusers layout (splitting qkv)."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in state.items():
        key = key.removeprefix("module.")
        if key in _PTH_SKIPPED:  # the sin-cos table (recomputed) and the null caption
            continue
        m = _BLOCK_KEY.fullmatch(key)
        if m is None:
            renamed = rename_prefix(key, _PTH_TOP)
            if renamed is None:
                unknown.append(key)
            else:
                out[renamed] = tensor
            continue
        block, rest = f"transformer_blocks.{m.group(1)}", m.group(2)
        module, _, leaf = rest.rpartition(".")
        if module in _FUSED:
            attn, parts = _FUSED[module]
            for part, chunk in zip(parts, tensor.chunk(len(parts), dim=0), strict=True):
                out[f"{block}.{attn}.to_{part}.{leaf}"] = chunk
            continue
        renamed = rename_prefix(rest, _PTH_BLOCK)
        if renamed is None:
            unknown.append(key)
        else:
            out[f"{block}.{renamed}"] = tensor
    if unknown:
        raise PixArtError(f"not a PixArt-α checkpoint: unknown tensors {unknown[:5]}")
    return out


def load_pixart(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """PixArt-α weights in the diffusers layout, and what is known of their config.

    ``path`` is a diffusers pipeline folder, its ``transformer/`` folder, or an original
    ``.pth`` / ``.safetensors`` file.
    """
    path = Path(path)
    if path.is_dir():
        folder = path / "transformer" if (path / "transformer" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise PixArtError(f"{path} has no config.json: expected the diffusers PixArt-α 'transformer/' "
                              "folder (or the pipeline folder holding it)")
        config = json.loads((folder / "config.json").read_text())
        if config.get("_class_name") not in (None, "PixArtTransformer2DModel", "Transformer2DModel"):
            raise PixArtError(f"{folder} holds a {config['_class_name']}, not PixArt-α's transformer")
        return _read_weights_folder(folder), config
    if not path.is_file():
        raise PixArtError(f"PixArt-α weights not found at {path}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    if any(k.removeprefix("module.").startswith("x_embedder.") for k in state):
        config: dict[str, Any] = {}
        pos = state.get("pos_embed", state.get("module.pos_embed"))
        if pos is not None:
            patch = state[next(k for k in state if k.endswith("x_embedder.proj.weight"))].shape[-1]
            config["sample_size"] = math.isqrt(pos.shape[-2]) * patch
        return original_to_diffusers(state), config
    return dict(state), {}


def _read_weights_folder(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(str(file)))
        return state
    bins = sorted(folder.glob("diffusion_pytorch_model*.bin"))
    if not bins:
        raise PixArtError(f"{folder} has no diffusion_pytorch_model*.safetensors or .bin weights")
    state = {}
    for file in bins:
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def config_from_pixart(state: Mapping[str, torch.Tensor], pixart_config: Mapping[str, Any],
                       **overrides: Any) -> MegActorConfig:
    """The MegActor-Σ config whose shared parts have PixArt-α's shapes; ``overrides`` set the rest."""
    if any(_MICRO_CONDITIONS.match(k) for k in state):
        raise PixArtError("these PixArt-α weights use resolution/aspect-ratio micro-conditions "
                          "(PixArt-XL-2-1024-MS); MegActor-Σ starts from PixArt-XL-2-512x512")
    try:
        patch_weight = state["pos_embed.proj.weight"]
        proj_out = state["proj_out.weight"]
    except KeyError as exc:
        raise PixArtError(f"not PixArt-α weights: no {exc.args[0]} tensor") from None
    hidden, latent_channels, patch = patch_weight.shape[0], patch_weight.shape[1], patch_weight.shape[-1]
    heads = (overrides.get("num_heads") or pixart_config.get("num_attention_heads")
             or (16 if hidden == 1152 else None))
    if heads is None:
        raise PixArtError(f"cannot tell the number of attention heads of a width-{hidden} PixArt "
                          "without its config.json; give num_heads")
    sample_size = int(pixart_config.get("sample_size") or 64)
    values: dict[str, Any] = dict(
        num_layers=1 + max(int(m.group(1)) for k in state if (m := re.match(r"transformer_blocks\.(\d+)\.", k))),
        hidden_size=hidden,
        num_heads=int(heads),
        patch_size=patch,
        latent_channels=latent_channels,
        out_channels=proj_out.shape[0] // patch**2,
        sample_size=sample_size,
        interpolation_scale=float(pixart_config.get("interpolation_scale") or max(sample_size // 64, 1)),
        norm_eps=float(pixart_config.get("norm_eps", 1e-6)),
    )
    values.update(overrides)
    return MegActorConfig(**values)


def init_from_pixart(state: Mapping[str, torch.Tensor], config: MegActorConfig) -> MegActorSigma:
    """A MegActor-Σ model whose denoiser and reference transformer carry PixArt-α's weights.

    New parts (driven encoder, driven channels of the patch embedding, audio attention, temporal
    modules) keep their initialisation, with zero outputs where that keeps the model equal to
    PixArt-α.
    """
    model = MegActorSigma(config)
    used = set()
    trunks = [("denoiser", model.denoiser), ("reference", model.reference)]
    for trunk_name, trunk in trunks:
        if trunk is None:
            continue
        for key, param in trunk.state_dict(keep_vars=True).items():
            source = diffusers_key(key)
            if source is None:
                continue
            if source not in state:
                raise PixArtError(f"PixArt-α weights have no {source} (needed for {trunk_name}.{key})")
            tensor = state[source]
            target = param.data
            if key == "patch_embed.proj.weight":  # driven channels beyond the latent ones stay zero
                target = target[:, : tensor.shape[1]]
            if target.shape != tensor.shape:
                raise PixArtError(f"{source} has shape {tuple(tensor.shape)}; {trunk_name}.{key} needs "
                                  f"{tuple(target.shape)}")
            target.copy_(tensor)
            used.add(source)
    left = sorted(k for k in state if k not in used and not _DROPPED.match(k))
    if left:
        raise PixArtError(f"PixArt-α weights have tensors this conversion does not place: {left[:5]}")
    return model
