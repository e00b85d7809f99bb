"""The sampler node with the audio and landmark nodes, as ComfyUI chains them."""

from __future__ import annotations

import sys

import pytest
import torch

from tests.comfy_stubs import ProgressBar, VAEStub, load_plugin, plugin_nodes
from tests.tiny_models import tiny_model_folders, tiny_vae


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    return load_plugin(monkeypatch, tiny_model_folders(tmp_path / "models", "tiny.safetensors"))


def run(plugin, name, *args, **kwargs):
    node = plugin_nodes(plugin)[name]
    return node.execute(*args, **kwargs)


SETTINGS = dict(steps=2, scheduler="ddim", zero_terminal_snr=False, guidance_scale=3.0, audio_scale=1.0,
                seed=0, window=4, overlap=1)


def test_audio_and_driving_to_frames(plugin):
    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    (whisper,) = run(plugin, "MegActorLoadWhisper", "tiny.pt", "auto")
    audio = {"waveform": 0.05 * torch.randn(1, 1, 3840), "sample_rate": 16000}  # 0.24 s
    features, count = run(plugin, "MegActorAudioEncode", audio, whisper, 25.0, 0, 4)
    reference = torch.rand(1, 64, 64, 3)
    driving = torch.rand(count, 64, 64, 3)
    vae = VAEStub(tiny_vae())
    latent, images = run(plugin, "MegActorSampler", model, vae, reference, 0, **SETTINGS,
                         audio_features=features, driving=driving)
    assert latent["samples"].shape == (6, 4, 8, 8)
    assert images.shape == (6, 64, 64, 3)
    assert (2 * 2, 2 * 2) in ProgressBar.updates  # sampling: steps x windows
    assert ProgressBar.updates[-1] == (6, 6)  # then decoding, a chunk of frames at a time
    # A live preview per step: the middle frame's latent, through ComfyUI's previewer.
    assert ProgressBar.previews == [("JPEG", (1, 4, 8, 8), 512)] * 2
    # The model and Whisper were loaded by ComfyUI's model management, not moved by hand.
    loaded = [patcher.model for patcher in sys.modules["comfy.model_management"].loaded]
    assert loaded == [whisper.encoder, model.model, vae.vae]  # the VAE with the model: neither evicts the other
    # Room kept for one window's activations (4 frames of 8x8 latents, fp32), and every layer of the model
    # is one ComfyUI can stream (--lowvram) but does not yet.
    assert sys.modules["comfy.model_management"].memory_required[-1] == model.model.activation_elements * 4 * 8 * 8 * 4
    layers = [m for m in model.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.LayerNorm))]
    assert layers and all(m.comfy_cast_weights is False for m in layers)


def test_face_drop_to_the_eyes_gives_the_sampler_its_eq2_mask(plugin):
    from tests.synthetic_faces import frontal_face, landmarks_of

    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    landmarks = landmarks_of(frontal_face((32.0, 30.0), 44.0)[None].repeat(4, 0), 64, 64)
    driving, mouth = run(plugin, "MegActorFaceDrop", torch.rand(4, 64, 64, 3), landmarks, "eyes", 0.05, 0.0, False)
    reference, vae = torch.rand(1, 64, 64, 3), VAEStub(tiny_vae())
    masked, _ = run(plugin, "MegActorSampler", model, vae, reference, 0, **SETTINGS, driving=driving,
                    mouth_attention=mouth)
    plain, _ = run(plugin, "MegActorSampler", model, vae, reference, 0, **SETTINGS, driving=driving)
    assert masked["samples"].shape == (4, 4, 8, 8)
    assert (masked["samples"] - plain["samples"]).abs().max() > 1e-3


def test_cancel_during_decode_stops_within_a_chunk(plugin, monkeypatch):
    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    vae, decoded = VAEStub(tiny_vae()), []
    original = vae.decode

    def decode(samples):
        decoded.append(samples.shape[0])
        sys.modules["comfy.model_management"].interrupted = True  # the user cancels during the first chunk
        return original(samples)

    monkeypatch.setattr(vae, "decode", decode)
    with pytest.raises(InterruptedError):
        run(plugin, "MegActorSampler", model, vae, torch.rand(1, 64, 64, 3), 20, **SETTINGS,
            driving=torch.rand(20, 64, 64, 3))
    assert decoded == [8]  # one chunk of 8 frames, not the other 12


def test_cancel_from_comfyui(plugin):
    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    sys.modules["comfy.model_management"].interrupted = True
    with pytest.raises(InterruptedError):
        run(plugin, "MegActorSampler", model, VAEStub(tiny_vae()), torch.rand(1, 64, 64, 3), 0, **SETTINGS,
            driving=torch.rand(3, 64, 64, 3))


def test_mismatch_is_explained(plugin):
    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    with pytest.raises(ValueError, match="driving frames cover 3 frames but the video has 8; choose an extend"):
        run(plugin, "MegActorSampler", model, VAEStub(tiny_vae()), torch.rand(1, 64, 64, 3), 8, **SETTINGS,
            extend="error", driving=torch.rand(3, 64, 64, 3))
    (whisper,) = run(plugin, "MegActorLoadWhisper", "tiny.pt", "auto")
    audio = {"waveform": 0.05 * torch.randn(1, 1, 8000), "sample_rate": 16000}
    features, _ = run(plugin, "MegActorAudioEncode", audio, whisper, 30.0, 0, 4)
    with pytest.raises(ValueError, match="cut for 30 fps; this model generates at 25 fps"):
        run(plugin, "MegActorSampler", model, VAEStub(tiny_vae()), torch.rand(1, 64, 64, 3), 0, **SETTINGS,
            audio_features=features)


def test_one_step_that_never_leaves_t_0_is_refused_before_loading(plugin):
    """DDIM's single step sits at t = 0 (diffusers' leading spacing): refused before ComfyUI loads anything."""
    model, _ = run(plugin, "MegActorLoadModel", "tiny.safetensors", "auto")
    with pytest.raises(ValueError, match="1 step of the 'ddim' scheduler starts at t = 0 of 0..999"):
        run(plugin, "MegActorSampler", model, VAEStub(tiny_vae()), torch.rand(1, 64, 64, 3), 0,
            **{**SETTINGS, "steps": 1}, driving=torch.rand(3, 64, 64, 3))
    assert sys.modules["comfy.model_management"].loaded == []
