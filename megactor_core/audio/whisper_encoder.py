"""The frozen Whisper encoder, loaded from disk, returning the hidden states of every layer.

Two file layouts are read into openai-whisper's ``AudioEncoder``: the openai checkpoints
(``tiny.pt``, ``base.pt``, ...) and Hugging Face Whisper folders (``config.json`` +
``model.safetensors``/``pytorch_model.bin``, e.g. ``openai/whisper-tiny``). Only the encoder is
kept; the text decoder is never built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..state_dict import rename_prefix

# Hugging Face encoder name -> openai-whisper encoder name, by prefix.
_HF_TO_OPENAI = {
    "conv1": "conv1",
    "conv2": "conv2",
    "layer_norm": "ln_post",
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_HF_PREFIX = re.compile(r"^(model\.)?encoder\.")


class WhisperError(ValueError):
    """A file that is not a Whisper checkpoint this loader understands."""


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder; ``forward`` returns all hidden states, not only the last.

    State 0 is the input embedding (convolutions + positions), state ``i`` the output of block
    ``i``, all before Whisper's final layer norm: the states the official MegActor-Σ code feeds
    its audio attention. (Hugging Face's ``output_hidden_states`` differs only in applying the
    final layer norm to the last one.)
    """

    positions_per_second = 50  # 16 kHz, hop 160, then a stride-2 conv

    def __init__(self, encoder: nn.Module, n_mels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_mels = n_mels

    @property
    def num_states(self) -> int:
        return len(self.encoder.blocks) + 1

    @property
    def width(self) -> int:
        return self.encoder.ln_post.normalized_shape[0]

    @property
    def window_positions(self) -> int:
        return self.encoder.positional_embedding.shape[0]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, 2 * window_positions]`` log-mel -> ``[B, num_states, window_positions, width]``."""
        enc = self.encoder
        x = F.gelu(enc.conv1(mel))
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = (x + enc.positional_embedding).to(x.dtype)
        states = [x]
        for block in enc.blocks:
            x = block(x)
            states.append(x)
        return torch.stack(states, dim=1)


def load_whisper_encoder(path: str | Path, dtype: torch.dtype = torch.float32) -> WhisperEncoder:
    """Load an openai-whisper ``.pt`` file or a Hugging Face Whisper folder (CPU, eval, in ``dtype``)."""
    from whisper.model import AudioEncoder  # openai-whisper; imported here so importing us stays light

    path = Path(path)
    if path.is_dir():
        dims, state = _read_hf_folder(path)
    elif path.is_file():
        dims, state = _read_openai_file(path)
    else:
        raise WhisperError(f"Whisper model not found at {path}: give openai-whisper's tiny.pt (the checkpoint "
                           "`whisper.load_model('tiny')` downloads; MegActor-Σ uses tiny) or a Hugging Face "
                           "folder such as openai/whisper-tiny (config.json + model.safetensors)")
    encoder = AudioEncoder(dims["n_mels"], dims["n_audio_ctx"], dims["n_audio_state"],
                           dims["n_audio_head"], dims["n_audio_layer"])
    own = encoder.state_dict()
    state.setdefault("positional_embedding", own["positional_embedding"])  # a fixed sinusoid table
    missing = sorted(set(own) - set(state))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own if k in state
             and state[k].shape != own[k].shape]
    if missing or wrong:
        raise WhisperError(f"{path} does not fit a Whisper encoder of its own dimensions {dims}: "
                           f"missing {missing[:3]}, wrong shapes {wrong[:3]}")
    encoder.load_state_dict({k: state[k].float() for k in own})
    return WhisperEncoder(encoder, dims["n_mels"]).to(dtype).eval().requires_grad_(False)


def _read_openai_file(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise WhisperError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(checkpoint, dict) or "dims" not in checkpoint or "model_state_dict" not in checkpoint:
        raise WhisperError(f"{path} is not an openai-whisper checkpoint (no 'dims' and 'model_state_dict'); "
                           "expected tiny.pt, base.pt, ... or a Hugging Face Whisper folder")
    state = {k.removeprefix("encoder."): v for k, v in checkpoint["model_state_dict"].items()
             if k.startswith("encoder.")}
    return dict(checkpoint["dims"]), state


def _read_hf_folder(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WhisperError(f"{path} is a folder without config.json: not a Hugging Face Whisper model")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != "whisper":
        raise WhisperError(f"{path} holds a {config.get('model_type')!r} model, not Whisper")
    dims = dict(n_mels=config["num_mel_bins"], n_audio_ctx=config["max_source_positions"],
                n_audio_state=config["d_model"], n_audio_head=config["encoder_attention_heads"],
                n_audio_layer=config["encoder_layers"])
    weights = sorted(path.glob("model*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not weights:
        raise WhisperError(f"{path} has no model*.safetensors or pytorch_model*.bin weights")
    state: dict[str, torch.Tensor] = {}
    for file in weights:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file
            part = load_file(str(file))
        else:
            part = torch.load(file, map_location="cpu", weights_only=True)
        for key, tensor in part.items():
            if _HF_PREFIX.match(key):
                state[_hf_to_openai(_HF_PREFIX.sub("", key))] = tensor
    return dims, state


def _hf_to_openai(key: str) -> str:
    if key == "embed_positions.weight":
        return "positional_embedding"
    match = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
    prefix, rest = (f"blocks.{match.group(1)}.", match.group(2)) if match else ("", key)
    renamed = rename_prefix(rest, _HF_TO_OPENAI)
    return key if renamed is None else prefix + renamed
