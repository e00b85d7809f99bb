"""The official SD1.5 MegActor-Σ: the release's tensor layout, loading, behaviour, sampling."""

from __future__ import annotations

import pytest
import torch

from megactor_core.models import MegActorSigmaSD15, SD15Config, load_model
from megactor_core.models.sd15.official import EMPTY_PROMPT, OfficialCheckpointError, release_name
from megactor_core.pipeline import DiffusersVAE, SamplerSettings, sample_video
from tests.tiny_models import TINY_SD15, randomize, save_release_file, tiny_vae

TINY = SD15Config(**TINY_SD15)


def official_keys(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {release_name(k): tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def full():
    with torch.device("meta"):
        return MegActorSigmaSD15(SD15Config())


def test_full_size_matches_the_release_layout(full):
    """Counts and shapes read from the release's code (animate/megactor-sigma, motion_module.py):
    SD1.5's 686 UNet tensors with an 8-channel conv_in, 16 x 7 audio-attention tensors, 21 motion
    modules x 28 and an 18-tensor driving encoder; the appearance UNet is SD1.5's without its
    output layers and with its last transformer cut to what feeds the reference (662)."""
    unet, appearance = official_keys(full.unet), official_keys(full.appearance_encoder)
    assert len(unet) == 686 + 16 * 7 + 21 * 28 + 18 == 1404
    assert len(appearance) == 662
    assert sum("attn_audio" in k or "norm_audio" in k for k in unet) == 16 * 7
    assert sum(".motion_modules." in k for k in unet) == 21 * 28
    assert sum(k.startswith("condition_input_layer.") for k in unet) == 18
    expected = {
        "conv_in.weight": (320, 8, 3, 3),
        "time_embedding.linear_1.weight": (1280, 320),
        "down_blocks.1.resnets.0.conv_shortcut.weight": (640, 320, 1, 1),
        "down_blocks.0.attentions.0.proj_in.weight": (320, 320, 1, 1),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (320, 768),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias": (320,),
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight": (320, 1280),
        "down_blocks.0.attentions.1.transformer_blocks.0.attn_audio.to_k.weight": (320, 384),
        "mid_block.attentions.0.transformer_blocks.0.attn_audio.to_v.weight": (1280, 384),
        "up_blocks.2.attentions.2.transformer_blocks.0.attn_audio.to_q.weight": (640, 640),
        "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe":
            (1, 32, 1280),
        "down_blocks.3.motion_modules.1.temporal_transformer.proj_in.weight": (1280, 1280),
        "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
        "up_blocks.0.upsamplers.0.conv.weight": (1280, 1280, 3, 3),
        "condition_input_layer.spatial_conv_layers.0.2.weight": (16, 3, 4, 4),
        "condition_input_layer.spatial_conv_layers.3.2.weight": (128, 64, 3, 3),
        "condition_input_layer.spatial_conv_out.weight": (4, 128, 1, 1),
        "conv_out.weight": (4, 320, 3, 3),
    }
    assert {k: unet.get(k) for k in expected} == expected
    assert not any(k.endswith("attn1.to_q.bias") or "attn_temp" in k for k in unet)
    assert appearance["conv_in.weight"] == (320, 4, 3, 3)
    assert not any(k.startswith(("conv_out", "conv_norm_out")) or "audio" in k or "motion" in k for k in appearance)
    last = sorted(k for k in appearance if k.startswith("up_blocks.3.attentions.2."))
    assert last == [f"up_blocks.3.attentions.2.{k}" for k in (
        "norm.bias", "norm.weight", "proj_in.bias", "proj_in.weight",
        "transformer_blocks.0.norm1.bias", "transformer_blocks.0.norm1.weight")]


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    torch.manual_seed(0)
    empty_text = torch.randn(77, 16)
    model = randomize(MegActorSigmaSD15(TINY, empty_text), std=0.05).half().float().eval()
    path = save_release_file(model, tmp_path_factory.mktemp("release") / "megactor-sigma.ckpt", empty_text)
    return model, path


def inputs(batch: int = 1, frames: int = 3):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(batch, frames, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g),
            torch.rand(batch, frames, 3, 128, 128, generator=g) * 2 - 1,
            torch.randn(batch, frames, 50, 12, generator=g))


def test_release_file_loads_with_every_tensor(tiny_release):
    model, path = tiny_release
    loaded = load_model(path)
    assert isinstance(loaded, MegActorSigmaSD15) and loaded.config == TINY
    x, ref, driving, audio = inputs()
    with torch.no_grad():
        expected = model(x, 500, driven=model.encode_driving(driving), reference=model.encode_reference(ref),
                         audio=audio)
        got = loaded(x, 500, driven=loaded.encode_driving(driving), reference=loaded.encode_reference(ref),
                     audio=audio)
    torch.testing.assert_close(got, expected)
    assert loaded(x, 500).shape == x.shape


def test_release_file_errors_name_the_tensor_and_the_source(tiny_release, tmp_path):
    _, path = tiny_release
    raw = torch.load(path, weights_only=True)
    del raw["state_dict"]["module.unet.mid_block.attentions.0.transformer_blocks.0.attn_audio.to_out.0.bias"]
    broken = tmp_path / "megactor-sigma.ckpt"
    torch.save(raw, broken)
    torch.save(torch.zeros(77, 16), tmp_path / EMPTY_PROMPT)
    with pytest.raises(OfficialCheckpointError, match=r"1 tensors missing .*attn_audio\.to_out\.0\.bias"):
        load_model(broken)
    torch.save({"state_dict": {"weight": torch.zeros(1)}}, broken)
    with pytest.raises(OfficialCheckpointError, match="not the official MegActor-Σ release.*RawVideoDriven"):
        load_model(broken)
    (tmp_path / EMPTY_PROMPT).unlink()
    torch.save(raw, broken)
    with pytest.raises(FileNotFoundError, match=f"{EMPTY_PROMPT}.*RawVideoDriven"):
        load_model(broken)
    with pytest.raises(ValueError, match="expected a MegActor-Σ .safetensors checkpoint or"):
        load_model(tmp_path / "model.bin")


def test_frames_interact_through_motion_modules_and_audio_scale_gates_audio(tiny_release):
    model, _ = tiny_release
    x, ref, driving, audio = inputs(frames=2)
    reference = model.encode_reference(ref)
    with torch.no_grad():
        base = model(x, 300, reference=reference, audio=audio)
        moved = x.clone()
        moved[:, 0] += 1
        assert not torch.allclose(model(moved, 300, reference=reference, audio=audio)[:, 1], base[:, 1])
        silent = model(x, 300, reference=reference, audio=audio, audio_scale=torch.tensor([0.0]))
        torch.testing.assert_close(silent, model(x, 300, reference=reference))
        other = model(x, 300, reference=model.encode_reference(ref + 1), audio=audio)
        assert not torch.allclose(other, base)


def test_the_reference_runs_once_per_timestep(tiny_release, monkeypatch):
    """Windows of one denoising step share one appearance-UNet run."""
    model, _ = tiny_release
    calls = []
    original = model.appearance_encoder.forward
    monkeypatch.setattr(model.appearance_encoder, "forward", lambda *a: calls.append(1) or original(*a))
    x, ref, _, _ = inputs()
    reference = model.encode_reference(ref)
    with torch.no_grad():
        model(x, 300, reference=reference)
        model(x[:, :2], 300, reference=reference)
        model(x, 200, reference=reference)
    assert len(calls) == 2


def test_samples_through_the_pipeline(tiny_release):
    model, _ = tiny_release
    from megactor_core.audio import AudioFeatures

    g = torch.Generator().manual_seed(2)
    audio = AudioFeatures(torch.randn(5, 50, 12, generator=g), 25.0, 4, (0, 1, 2, 3, 4), style="sd15-release")
    frames = sample_video(model, DiffusersVAE(tiny_vae()), torch.rand(128, 128, 3, generator=g),
                          SamplerSettings(steps=2, window=4, overlap=1), audio=audio,
                          driving=torch.rand(5, 128, 128, 3, generator=g))
    assert frames.shape == (5, 4, 16, 16) and torch.isfinite(frames).all()


def diffusers_sd_unet():
    """diffusers' SD1.5 UNet2DConditionModel at the tiny widths, random weights: the reference
    implementation of everything in the release's UNet but its video, audio and driving parts."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(3)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=TINY.block_out_channels,
        layers_per_block=2, cross_attention_dim=16, attention_head_dim=8, norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    return randomize(unet, seed=4, std=0.05).eval()


def test_one_frame_without_motion_audio_or_driving_is_stable_diffusion():
    """With motion modules at their zero init, no audio, driving channels unused and one frame,
    the denoiser computes exactly diffusers' SD1.5 UNet."""
    reference = diffusers_sd_unet()
    ours = MegActorSigmaSD15(TINY, torch.randn(77, 16)).eval()
    state = {k: v for k, v in ours.unet.state_dict().items()}
    for name, tensor in reference.state_dict().items():
        key = name.replace(".to_out.0.", ".to_out.")
        if name == "conv_in.weight":
            tensor = torch.cat([tensor, torch.zeros_like(tensor)], dim=1)
        assert state[key].shape == tensor.shape, name
        state[key] = tensor
    ours.unet.load_state_dict(state)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 4, 16, 16, generator=g)
    with torch.no_grad():
        got = ours(x, torch.tensor([10.0, 700.0]), driven=torch.zeros(2, 1, 4, 16, 16))
        want = reference(x[:, 0], torch.tensor([10.0, 700.0]),
                         encoder_hidden_states=ours.empty_text[None].expand(2, -1, -1)).sample
    torch.testing.assert_close(got[:, 0], want, rtol=1e-4, atol=1e-5)


def test_appearance_tokens_are_the_inputs_of_sd_mid_and_up_self_attention():
    reference = diffusers_sd_unet()
    ours = MegActorSigmaSD15(TINY, torch.randn(77, 16)).eval()
    own = ours.appearance_encoder.state_dict()
    ours.appearance_encoder.load_state_dict({k.replace(".to_out.0.", ".to_out."): v
                                             for k, v in reference.state_dict().items()
                                             if k.replace(".to_out.0.", ".to_out.") in own})
    captured = {}
    hooks = [m.transformer_blocks[0].norm1.register_forward_hook(
        lambda mod, i, o, name=name: captured.setdefault(name, o))
        for name, m in reference.named_modules() if name.startswith(("mid_block.attentions.", "up_blocks."))
        and name.count(".") == 3 - name.startswith("mid_block") and hasattr(m, "transformer_blocks")]
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        reference(latents, torch.tensor([400.0]), encoder_hidden_states=ours.empty_text[None])
        recorded = {}
        from megactor_core.models.sd15.unet import Context

        ours.appearance_encoder(latents, Context(temb=ours.appearance_encoder.time_features(torch.tensor([400.0])),
                                                 text=ours.empty_text[None], frames=1, record=recorded))
    for h in hooks:
        h.remove()
    assert sorted(recorded) == sorted(captured) and len(recorded) == 10
    for name, tokens in recorded.items():
        torch.testing.assert_close(tokens, captured[name], rtol=1e-4, atol=1e-5)


def release_uniform(step_offset_frames: int, size: int):
    """The release's context scheduler (animate/context.py ``uniform`` at step 0, overlap 0,
    stride 1, closed loop), re-stated from its definition."""
    n = step_offset_frames
    if n <= size:
        yield list(range(n))
        return
    for j in range(0, n, size):
        yield [e % n for e in range(j, j + size)]


@pytest.mark.parametrize("frames", [5, 16, 17, 40, 62])
def test_shifted_windows_are_the_release_schedule(frames):
    from megactor_core.pipeline import shifted_windows

    for step in range(25):
        offset = step % 16
        expected = [[k - offset for k in w if 0 <= k - offset < frames]
                    for w in release_uniform(frames + offset, 16)]
        got = shifted_windows(frames, 16, step)
        assert got == [w for w in expected if w]
        assert sorted({k for w in got for k in w}) == list(range(frames))  # every frame at every step


def test_release_settings_start_from_the_noised_reference_and_guide_without_it(tiny_release, monkeypatch):
    from megactor_core.pipeline import release_settings
    from megactor_core.pipeline.schedulers import make_scheduler

    model, _ = tiny_release
    codec = DiffusersVAE(tiny_vae())
    calls = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda x, t, **kw: calls.append((x.clone(), kw)) or original(x, t, **kw))
    image = torch.rand(128, 128, 3, generator=torch.Generator().manual_seed(7))
    settings = release_settings(steps=2, seed=3)
    sample_video(model, codec, image, settings, driving=torch.rand(18, 128, 128, 3), frames=18)
    alpha = make_scheduler("ddim", schedule=model.config.noise_schedule).alphas_cumprod[-1]
    noise = torch.randn((1, 18, 4, 16, 16), generator=torch.Generator().manual_seed(3))
    start = alpha.sqrt() * codec.encode(image[None])[:, None] * model.config.vae_scaling_factor \
        + (1 - alpha).sqrt() * noise
    first_window = calls[0][0]
    assert first_window.shape[0] == 2  # conditional and unconditional branches in one batch
    torch.testing.assert_close(first_window[:1], start[:, :first_window.shape[1]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first_window[1:], first_window[:1])
    assert all(kw["reference"].videos == 1 for _, kw in calls)  # the unconditional branch without it
    windows = [x.shape[1] for x, _ in calls]
    assert windows == [16, 16, 15, 15]


def test_the_release_model_refuses_the_eq2_mask(tiny_release):
    from megactor_core.landmarks import MouthAttention

    model, _ = tiny_release
    eyes = MouthAttention.for_face_drop(synthetic_landmarks(2, 128), "eyes")
    with pytest.raises(ValueError, match="is for the DiT model; the SD1.5 release samples without it"):
        sample_video(model, DiffusersVAE(tiny_vae()), torch.rand(128, 128, 3), SamplerSettings(steps=2),
                     driving=torch.rand(2, 128, 128, 3), mouth_attention=eyes)


def release_audio2feature(audio_encoder, audio: torch.Tensor, fps: float, frames: int) -> torch.Tensor:
    """The release's feature preparation (whisper/audio2feature.py: transcribe's segments with
    include_embeddings, audio2feat, feature2chunks with audio_feat_length [2, 2]), restated
    independently of our code from its definition."""
    import torch.nn.functional as F
    from whisper.audio import log_mel_spectrogram, pad_or_trim

    mel = log_mel_spectrogram(audio)
    segments, seek = [], 0
    while seek < mel.shape[1]:
        end_seek = min(seek + 3000, mel.shape[1])
        segment = pad_or_trim(mel[:, seek:seek + 3000], 3000)
        x = F.gelu(audio_encoder.conv1(segment[None]))
        x = F.gelu(audio_encoder.conv2(x)).permute(0, 2, 1) + audio_encoder.positional_embedding
        embeddings = [x]
        for block in audio_encoder.blocks:
            x = block(x)
            embeddings.append(x)
        segments.append((seek, end_seek, torch.stack(embeddings, dim=1)))  # (1, 5, 1500, W)
        seek += 3000
    feature_array = torch.cat([e.permute(0, 2, 1, 3)[0][:int((end - start) / 2)] for start, end, e in segments])
    length, width = feature_array.shape[0], feature_array.shape[-1]
    chunks = []
    for i in range(frames):
        center = int(i * 50 / fps)
        picked = [feature_array[min(max(j, 0), length - 1)] for j in range(center - 2 * 2, center + (2 + 1) * 2)]
        chunks.append(torch.cat(picked).reshape(-1, width))
    return torch.stack(chunks)


@pytest.mark.parametrize("seconds, fps", [(2.5, 25.0), (31.3, 30.0)])
def test_release_audio_features_match_the_release_definition(tmp_path, seconds, fps):
    from megactor_core.audio import encode_audio, load_whisper_encoder
    from tests.tiny_models import tiny_whisper_file

    encoder = load_whisper_encoder(tiny_whisper_file(tmp_path / "tiny.pt")).eval()
    t = torch.arange(int(seconds * 16000)) / 16000
    wave = 0.3 * torch.sin(2 * torch.pi * (200 + 150 * t) * t) * (1 + torch.sin(2 * torch.pi * 3 * t)) / 2
    wave = wave + 0.01 * torch.randn(t.shape, generator=torch.Generator().manual_seed(8))
    frames = round(seconds * fps)
    features = encode_audio(encoder, wave[None], 16000, fps, style="sd15-release")
    assert features.frames == frames and features.style == "sd15-release"
    assert features.features.shape == (frames, 10 * encoder.num_states, encoder.width)
    with torch.no_grad():
        expected = release_audio2feature(encoder.encoder, wave, fps, frames)
    torch.testing.assert_close(features.features, expected, rtol=1e-4, atol=1e-5)


def test_the_sampler_refuses_audio_cut_for_the_other_model(tiny_release):
    from megactor_core.audio import AudioFeatures

    model, _ = tiny_release
    dit_style = AudioFeatures(torch.randn(3, 50, 12), 25.0, 4, (0, 1, 2, 3, 4))
    with pytest.raises(ValueError, match="cut for 'dit' models; this model reads 'sd15-release'"):
        sample_video(model, DiffusersVAE(tiny_vae()), torch.rand(128, 128, 3), SamplerSettings(steps=2),
                     audio=dit_style)


def synthetic_landmarks(n: int, size: int, shift: tuple[float, float] = (0.0, 0.0)):
    """68 points of a face filling the middle of a ``size`` square (brows, eyes, mouth placed as iBUG-68)."""
    import numpy as np

    from megactor_core.landmarks.face import FaceLandmarks

    rng = np.random.default_rng(0)
    points = rng.uniform(0.3 * size, 0.7 * size, (n, 68, 2)).astype(np.float32)
    points[:, 17:27] = [[0.30 * size + 4 * i, 0.35 * size] for i in range(10)]  # brows
    points[:, 36:42] = [[0.35 * size + 2 * i, 0.40 * size + i % 2] for i in range(6)]  # right eye
    points[:, 42:48] = [[0.55 * size + 2 * i, 0.40 * size + i % 2] for i in range(6)]  # left eye
    points[:, 48:68] = [[0.42 * size + i, 0.65 * size + (i % 4)] for i in range(20)]  # mouth
    points += np.float32(shift)
    return FaceLandmarks(points, np.ones((n, 68), np.float32), np.ones(n, bool), size, size)


def test_release_face_drop_keeps_grey_rectangles_and_aligns_to_the_reference():
    import numpy as np

    from megactor_core.landmarks import release_face_drop

    frames = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    marks = synthetic_landmarks(2, 64)
    out = release_face_drop(frames, marks, "mouth")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])  # grey
    mouth = marks.points[0, 48:68]
    (x0, y0), (x1, y1) = mouth.min(0), mouth.max(0)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * (x1 - x0), 0.75 * (y1 - y0)
    top, bottom, left, right = int(cy - hh), int(cy + hh), int(cx - hw), int(cx + hw)
    grey = frames[0] @ np.float32([0.2989, 0.5870, 0.1140])
    np.testing.assert_allclose(out[0, top:bottom, left:right, 0], grey[top:bottom, left:right], rtol=1e-6)
    outside = np.ones((64, 64), bool)
    outside[top:bottom, left:right] = False
    assert not out[0][outside].any()
    assert release_face_drop(frames, marks, "both").astype(bool).sum() > out.astype(bool).sum()
    same = release_face_drop(frames, marks, "mouth", reference=synthetic_landmarks(1, 64))
    np.testing.assert_allclose(same, out, atol=1e-6)  # the reference's face box is the first frame's
    moved = release_face_drop(frames, marks, "mouth", reference=synthetic_landmarks(1, 64, shift=(5, 0)))
    np.testing.assert_allclose(moved[:, :, 5:], out[:, :, :-5], atol=1e-5)


def test_position_tables_may_be_absent_from_the_file(tiny_release, tmp_path):
    """The motion modules' sin-cos tables are fixed, so a file without them still loads, equal."""
    model, path = tiny_release
    raw = torch.load(path, weights_only=True)
    raw["state_dict"] = {k: v for k, v in raw["state_dict"].items() if not k.endswith("pos_encoder.pe")}
    torch.save(raw, tmp_path / "megactor-sigma.ckpt")
    torch.save(model.empty_text, tmp_path / EMPTY_PROMPT)
    loaded = load_model(tmp_path / "megactor-sigma.ckpt")
    x = torch.randn(1, 2, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, 100), model(x, 100))
