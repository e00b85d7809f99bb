"""Load Whisper Model and MegActor-Σ Audio Encode, as ComfyUI runs them."""

from __future__ import annotations

import sys

import pytest
import torch

from tests.comfy_stubs import ProgressBar, load_plugin, plugin_nodes
from tests.tiny_models import tiny_whisper_file


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    (tmp_path / "models" / "whisper").mkdir(parents=True)
    tiny_whisper_file(tmp_path / "models" / "whisper" / "tiny.pt")
    return load_plugin(monkeypatch, tmp_path / "models")


def comfy_audio(seconds: float, rate: int = 44100, channels: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"waveform": 0.05 * torch.randn(1, channels, int(seconds * rate), generator=g), "sample_rate": rate}


def test_load_and_encode(plugin):
    nodes = plugin_nodes(plugin)
    assert nodes["MegActorLoadWhisper"].INPUT_TYPES()["required"]["model"][1]["options"] == ["tiny.pt"]
    (whisper,) = nodes["MegActorLoadWhisper"].execute("tiny.pt", "auto")
    assert whisper.dtype == torch.float32
    features, frames = nodes["MegActorAudioEncode"].execute(comfy_audio(2.0), whisper, 25.0, 0, 2)
    assert frames == 50 == features.frames
    assert features.features.shape == (50, 5 * 3, 16)
    assert ProgressBar.updates[-1] == (1, 1)
    features, frames = nodes["MegActorAudioEncode"].execute(comfy_audio(2.0), whisper, 30.0, 70, 1)
    assert frames == 70 and features.padded_frames == 10


def test_hugging_face_folder_is_listed(plugin, tmp_path):
    folder = tmp_path / "models" / "whisper" / "whisper-tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    choices = plugin_nodes(plugin)["MegActorLoadWhisper"].INPUT_TYPES()["required"]["model"][1]["options"]
    assert choices == ["tiny.pt", "whisper-tiny"]


def test_cancel_stops_encoding(plugin):
    nodes = plugin_nodes(plugin)
    (whisper,) = nodes["MegActorLoadWhisper"].execute("tiny.pt", "fp32")
    sys.modules["comfy.model_management"].interrupted = True
    with pytest.raises(InterruptedError):
        nodes["MegActorAudioEncode"].execute(comfy_audio(1.0), whisper, 25.0, 0, 2)


@pytest.mark.parametrize("audio, message", [
    ({"samples": torch.zeros(1, 1, 10)}, "must be a ComfyUI AUDIO"),
    ({"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}, "audio is empty"),
])
def test_bad_audio(plugin, audio, message):
    nodes = plugin_nodes(plugin)
    (whisper,) = nodes["MegActorLoadWhisper"].execute("tiny.pt", "fp32")
    with pytest.raises(ValueError, match=message):
        nodes["MegActorAudioEncode"].execute(audio, whisper, 25.0, 0, 2)


def test_missing_whisper_file_says_where(plugin):
    with pytest.raises(FileNotFoundError, match=r"'base.pt' not found .*models/whisper.*tiny.pt"):
        plugin_nodes(plugin)["MegActorLoadWhisper"].execute("base.pt", "auto")
