"""Loading the released MegActor-Σ weights (``megactor-sigma.ckpt``) into :class:`MegActorSigmaSD15`.

The release (megvii-research/megactor, 2024-10; files on Hugging Face ``HVSiniX/RawVideoDriven``,
folder ``weights/``) is a PyTorch pickle ``{"epoch", "global_step", "state_dict"}`` whose tensors
are named ``module.unet.*`` (the video denoiser), ``module.appearance_encoder.*`` (the appearance
UNet) and ``module.vae.*`` (not used: the SD VAE is loaded on its own). Its text cross-attention
always sees the empty prompt, stored beside it as ``sd15_empty_str_embedding.pt`` ([77, 768]).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .config import SD15Config
from .layers import FramePositions
from .model import MegActorSigmaSD15

SUFFIXES = (".ckpt", ".pt", ".pth")
EMPTY_PROMPT = "sd15_empty_str_embedding.pt"
SOURCE = "Hugging Face HVSiniX/RawVideoDriven, folder weights/ (the official MegActor-Σ release)"
_PARTS = ("unet.", "appearance_encoder.")
_MOTION_TABLE = ("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0."
                 "attention_blocks.0.pos_encoder.pe")


class OfficialCheckpointError(ValueError):
    """A file that is not the official MegActor-Σ release, or not of a shape it can have."""


def own_name(name: str) -> str:
    """Official tensor name -> ours: attention output projections are ``to_out``, not ``to_out.0``."""
    return name.replace(".to_out.0.", ".to_out.")


def release_name(name: str) -> str:
    """Our tensor name -> the release's (the inverse of :func:`own_name`)."""
    return name.replace(".to_out.", ".to_out.0.")


def read_official(path: str | os.PathLike) -> dict[str, dict[str, torch.Tensor]]:
    """``{"unet": ..., "appearance_encoder": ...}`` tensors of a release file, named as our modules."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: put megactor-sigma.ckpt from {SOURCE} there")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle, zip and unpickler errors all mean "not this file"
        raise OfficialCheckpointError(f"{path} is not a PyTorch checkpoint ({exc.__class__.__name__}: {exc})") from None
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise OfficialCheckpointError(f"{path} holds no state dict")
    parts: dict[str, dict[str, torch.Tensor]] = {p[:-1]: {} for p in _PARTS}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        for prefix in _PARTS:
            if name.startswith(prefix):
                parts[prefix[:-1]][own_name(name[len(prefix):])] = tensor
    if not parts["unet"] or not parts["appearance_encoder"]:
        raise OfficialCheckpointError(
            f"{path} has no 'unet.' and 'appearance_encoder.' tensors: it is not the official MegActor-Σ release "
            f"(megactor-sigma.ckpt from {SOURCE})")
    return parts


def config_from_state(unet: dict[str, torch.Tensor], empty_text: torch.Tensor) -> SD15Config:
    """The shapes of a release file (the release's own, or smaller ones made in tests)."""
    try:
        widths, i = [], 0
        while f"down_blocks.{i}.resnets.0.conv1.weight" in unet:
            widths.append(unet[f"down_blocks.{i}.resnets.0.conv1.weight"].shape[0])
            i += 1
        layers = len({k.split(".")[3] for k in unet if k.startswith("down_blocks.0.resnets.")})
        block = "down_blocks.0.attentions.0.transformer_blocks.0."
        driven = [unet[f"condition_input_layer.spatial_conv_layers.{j}.2.weight"].shape[0]
                  for j in range(len([k for k in unet if k.endswith(".2.weight")
                                      and k.startswith("condition_input_layer.spatial_conv_layers.")]))]
        return SD15Config(
            block_out_channels=tuple(widths), layers_per_block=layers,
            cross_attention_dim=unet[block + "attn2.to_k.weight"].shape[1],
            text_tokens=empty_text.shape[0],
            audio_dim=unet[block + "attn_audio.to_k.weight"].shape[1],
            motion_max_frames=unet.get(_MOTION_TABLE, torch.empty(1, SD15Config.motion_max_frames)).shape[1],
            latent_channels=unet["conv_out.weight"].shape[0],
            driven_channels=unet["condition_input_layer.spatial_conv_out.weight"].shape[0],
            driven_widths=tuple(driven),
        )
    except KeyError as exc:
        raise OfficialCheckpointError(f"the checkpoint lacks {release_name(exc.args[0])!r}, which the MegActor-Σ "
                                      "release has") from None


def load_empty_prompt(path: str | os.PathLike) -> torch.Tensor:
    """The empty-prompt CLIP embedding ``[77, 768]`` (a leading batch of 1 is dropped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the SD1.5 model needs {EMPTY_PROMPT} ({SOURCE}) beside "
                                "its checkpoint")
    tensor = torch.load(path, map_location="cpu", weights_only=True)
    if not torch.is_tensor(tensor) or tensor.squeeze(0).ndim != 2:
        raise OfficialCheckpointError(f"{path} is not a text embedding [tokens, width]")
    return tensor.squeeze(0).float()


def load_official(path: str | os.PathLike, *, empty_prompt: str | os.PathLike | None = None,
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> MegActorSigmaSD15:
    """The release as a :class:`MegActorSigmaSD15`; every tensor must fit (no missing or
    unexpected ones). ``empty_prompt`` defaults to ``sd15_empty_str_embedding.pt`` beside ``path``."""
    path = Path(path)
    parts = read_official(path)
    empty_text = load_empty_prompt(empty_prompt or path.with_name(EMPTY_PROMPT))
    config = config_from_state(parts["unet"], empty_text)
    with torch.device("meta"):  # shapes only: the file gives every value
        model = MegActorSigmaSD15(config)
    for name in ("unet", "appearance_encoder"):
        module = getattr(model, name)
        expected = module.state_dict()
        # The motion modules' position tables are fixed sinusoids: a file without them is complete.
        tables = {k: FramePositions(v.shape[-1], v.shape[1]).pe for k, v in expected.items()
                  if k.endswith(".pos_encoder.pe")}
        parts[name] = tables | parts[name]
        missing = sorted(set(expected) - set(parts[name]))
        unexpected = sorted(set(parts[name]) - set(expected))
        wrong = sorted(k for k in set(expected) & set(parts[name]) if expected[k].shape != parts[name][k].shape)
        if missing or unexpected or wrong:
            raise OfficialCheckpointError(
                f"{path} does not fit the MegActor-Σ release's {name}: {len(missing)} tensors missing "
                f"(e.g. {[release_name(k) for k in missing[:2]]}), {len(unexpected)} unexpected "
                f"(e.g. {[release_name(k) for k in unexpected[:2]]}), {len(wrong)} of another shape "
                f"(e.g. {[release_name(k) for k in wrong[:2]]})")
        module.load_state_dict(parts[name], assign=True)
    model.empty_text = empty_text
    return model.to(device=device, dtype=dtype, memory_format=torch.channels_last).eval()  # as built
