"""Sampling end to end with tiny random models: modes, determinism, windows, guidance, cancel."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from megactor_core.audio import AudioFeatures
from megactor_core.landmarks import MouthAttention
from megactor_core.models import MegActorSigma
from megactor_core.models.sd15.config import RELEASE_SCHEDULE
from megactor_core.pipeline import (
    SCHEDULERS,
    DiffusersVAE,
    SamplerSettings,
    blend_weights,
    context_windows,
    make_scheduler,
    match_controls,
    sample_video,
)
from tests.synthetic_faces import frontal_face, landmarks_of
from tests.tiny_models import randomize, tiny_config, tiny_vae

SIZE = 64  # pixels: 8x8 latents, 4x4 tokens


@pytest.fixture(scope="module")
def model():
    return randomize(MegActorSigma(tiny_config()), std=0.1).eval()


@pytest.fixture(scope="module")
def codec():
    return DiffusersVAE(tiny_vae())


def reference():
    return torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1))


def audio(frames: int, width: int = 12) -> AudioFeatures:
    g = torch.Generator().manual_seed(2)
    return AudioFeatures(torch.randn(frames, 9, width, generator=g), 25.0, 4, (0,))


def driving(frames: int, size: int = SIZE) -> torch.Tensor:
    return torch.rand(frames, size, size, 3, generator=torch.Generator().manual_seed(3))


FAST = SamplerSettings(steps=3, window=4, overlap=1)


@pytest.mark.parametrize("mode", ["audio", "visual", "mixed"])
def test_modes(model, codec, mode):
    controls = dict(audio=audio(6) if mode != "visual" else None, driving=driving(6) if mode != "audio" else None)
    latents = sample_video(model, codec, reference(), FAST, **controls)
    assert latents.shape == (6, 4, 8, 8) and torch.isfinite(latents).all()
    images = codec.decode(latents)
    assert images.shape == (6, SIZE, SIZE, 3) and 0 <= images.min() and images.max() <= 1


def test_same_seed_same_frames(model, codec):
    a = sample_video(model, codec, reference(), FAST, audio=audio(5))
    b = sample_video(model, codec, reference(), FAST, audio=audio(5))
    c = sample_video(model, codec, reference(), SamplerSettings(steps=3, window=4, overlap=1, seed=1), audio=audio(5))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_window_covering_the_video_is_unwindowed(model, codec):
    one = sample_video(model, codec, reference(), SamplerSettings(steps=3, window=6, overlap=0), driving=driving(6))
    big = sample_video(model, codec, reference(), SamplerSettings(steps=3, window=50, overlap=10), driving=driving(6))
    assert torch.equal(one, big)


def test_long_video_encodes_the_reference_once(model, codec, monkeypatch):
    calls = []
    original = MegActorSigma.encode_reference
    monkeypatch.setattr(MegActorSigma, "encode_reference", lambda self, x: calls.append(1) or original(self, x))
    progress = []
    settings = SamplerSettings(steps=2, window=16, overlap=4)
    latents = sample_video(model, codec, reference(), settings, audio=audio(40), driving=driving(40),
                           progress=lambda done, total: progress.append((done, total)))
    assert latents.shape[0] == 40 and calls == [1]
    windows = len(context_windows(40, 16, 4))
    assert windows == 3 and progress[-1] == (2 * windows, 2 * windows)


def test_cancel_stops_within_a_step(model, codec):
    seen = []

    def cancel(done, total):
        seen.append(done)
        raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        sample_video(model, codec, reference(), SamplerSettings(steps=10, window=4, overlap=1), audio=audio(12),
                     progress=cancel)
    assert seen == [1]


def eyes_only(frames: int) -> MouthAttention:
    """Eq.2 regions of driving frames face-dropped to the eyes: a face filling most of the frame."""
    points = frontal_face((32.0, 30.0), 44.0)[None] + np.arange(frames)[:, None, None] * [1.0, 0.0]
    return MouthAttention.for_face_drop(landmarks_of(points, SIZE, SIZE), "eyes")


@pytest.mark.parametrize("eq2", [False, True], ids=["plain", "mouth attention"])
def test_guidance_batch_equals_separate_branches(model, codec, monkeypatch, eq2):
    """The batched cond/uncond pass gives what two separate passes give; Eq.2's mask applies to the
    conditional branch alone."""
    from megactor_core.pipeline import sampler

    settings = SamplerSettings(steps=2, window=8, guidance_scale=3.0)
    controls = dict(audio=audio(4), driving=driving(4), mouth_attention=eyes_only(4) if eq2 else None)
    batched = sample_video(model, codec, reference(), settings, **controls)

    def separate(model, x, t, reference, driven, audio, idx, settings, guided, dtype, mask):
        masked = {} if mask is None else {"attention_mask": mask[None]}  # [1, W, N, N]
        cond = model(x, t, reference=reference, driven=driven[:, idx], audio=audio[:, idx],
                     audio_scale=settings.audio_scale, **masked)[:, :, :4]
        uncond = model(x, t, reference=reference)[:, :, :4]
        return uncond + settings.guidance_scale * (cond - uncond)

    monkeypatch.setattr(sampler, "_guided_prediction", separate)
    apart = sample_video(model, codec, reference(), settings, **controls)
    torch.testing.assert_close(batched, apart, rtol=1e-4, atol=5e-5)  # one batch of 2 rounds sums otherwise


def test_mouth_attention_changes_the_conditional_prediction_only(model, codec):
    """Without guidance (the conditional branch alone) the mask changes the video; with guidance 0
    (the unconditional branch alone) it changes nothing; driving frames shorter than the video
    extend their masks with them."""
    controls = dict(audio=audio(6), driving=driving(4), frames=6)
    for scale, changed in ((1.0, True), (0.0, False)):
        settings = SamplerSettings(steps=2, window=4, overlap=1, guidance_scale=scale)
        masked = sample_video(model, codec, reference(), settings, mouth_attention=eyes_only(4), **controls)
        plain = sample_video(model, codec, reference(), settings, **controls)
        assert masked.shape == (6, 4, 8, 8)
        assert (masked - plain).abs().max() > 1e-3 if changed else torch.allclose(masked, plain, atol=1e-5)


def test_mouth_attention_must_describe_the_driving_frames(model, codec):
    with pytest.raises(ValueError, match="landmarks for 3 frames but there are 4 driving frames"):
        sample_video(model, codec, reference(), FAST, driving=driving(4), mouth_attention=eyes_only(3))
    with pytest.raises(ValueError, match="mouth_attention was given without driving frames"):
        sample_video(model, codec, reference(), FAST, audio=audio(3), mouth_attention=eyes_only(3))


def test_audio_scale_zero_equals_no_audio(model, codec):
    settings = SamplerSettings(steps=2, window=8, audio_scale=0.0)
    muted = sample_video(model, codec, reference(), settings, audio=audio(4), driving=driving(4))
    silent = sample_video(model, codec, reference(), settings, driving=driving(4))
    # Without audio the unconditional branch differs only by the driving features, as with λ = 0.
    torch.testing.assert_close(muted, silent, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("zero_snr", [False, True])
def test_schedulers(model, codec, name, zero_snr):
    v_model = randomize(MegActorSigma(tiny_config(prediction_type="v_prediction")), std=0.1).eval()
    settings = SamplerSettings(steps=3, scheduler=name, zero_terminal_snr=zero_snr, window=8)
    for m in (model, v_model) if not zero_snr else (v_model,):
        latents = sample_video(m, codec, reference(), settings, audio=audio(3))
        assert torch.isfinite(latents).all()
    if zero_snr:
        with pytest.raises(ValueError, match="zero terminal SNR needs a model that predicts v"):
            sample_video(model, codec, reference(), settings, audio=audio(3))


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("zero_snr", [False, True])
def test_one_step_is_refused_only_where_it_stays_at_t_0(name, zero_snr):
    """diffusers' leading (DDIM) and linspace (Euler) spacings put one step at t = 0; DPM++ and the
    trailing spacing of zero terminal SNR start it at the noisy end, and two steps always do."""
    stuck = name in ("ddim", "euler") and not zero_snr
    one_step = SamplerSettings(steps=1, scheduler=name, zero_terminal_snr=zero_snr)
    for schedule, first in ((None, 0), (RELEASE_SCHEDULE, 1)):  # the release: leading spacing offset by 1
        if stuck:
            with pytest.raises(ValueError, match=f"1 step of the '{name}' scheduler starts at t = {first} of 0..999"):
                one_step.check(schedule)
        else:
            one_step.check(schedule)
        SamplerSettings(steps=2, scheduler=name, zero_terminal_snr=zero_snr).check(schedule)


def test_one_ddim_step_at_t_0_hands_the_noise_back():
    """Why it is refused: whatever the model predicts, the step returns the starting noise almost unchanged."""
    scheduler = make_scheduler("ddim")
    scheduler.set_timesteps(1)
    noise, prediction = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    out = scheduler.step(prediction, scheduler.timesteps[0], noise).prev_sample
    assert (out - noise).abs().max() < 0.02 * prediction.abs().max()


def test_a_vae_of_another_family_is_named(model):
    """A VAE whose latents have other channels (e.g. 16, as SD3's or Flux's) or another scale is refused
    with the shapes, not with a shape error inside the model."""
    from diffusers import AutoencoderKL

    for channels, levels, shape in ((16, 4, (1, 16, 8, 8)), (4, 5, (1, 4, 4, 4))):
        vae = AutoencoderKL(latent_channels=channels, block_out_channels=(8,) * levels, layers_per_block=1,
                            down_block_types=("DownEncoderBlock2D",) * levels, norm_num_groups=4,
                            up_block_types=("UpDecoderBlock2D",) * levels).eval()
        with pytest.raises(ValueError, match=re.escape(f"the VAE encodes the 64x64 reference as latents {shape}; "
                                                       "this model takes (1, 4, 8, 8)")):
            sample_video(model, DiffusersVAE(vae), reference(), FAST, audio=audio(3))


def test_driving_frames_of_another_size_are_resized(model, codec):
    latents = sample_video(model, codec, reference(), FAST, driving=driving(3, size=96))
    assert latents.shape == (3, 4, 8, 8)


@pytest.mark.parametrize("kwargs, settings, message", [
    (dict(driving=driving(3), frames=5), dict(extend="error"), "the driving frames cover 3 frames but the video has 5"),
    (dict(audio=audio(3), driving=driving(5)), {}, "were not made by encode_audio, which could pad them"),
    (dict(), {}, "frame count unknown"),
    (dict(audio=audio(3, width=16)), {}, "16 wide; this model's audio attention takes 12"),
    (dict(audio=AudioFeatures(torch.zeros(3, 9, 12), 30.0, 4, (0,))), {},
     "cut for 30 fps; this model generates at 25 fps"),
    (dict(audio=audio(3)), dict(steps=0), "steps must be at least 1, got 0"),
    (dict(audio=audio(3)), dict(steps=1, scheduler="euler"), "1 step of the 'euler' scheduler starts at t = 0 of"),
    (dict(audio=audio(3)), dict(scheduler="heun"), "unknown scheduler 'heun'"),
    (dict(audio=audio(3)), dict(extend="bounce"), "extend must be one of"),
    (dict(audio=audio(3)), dict(audio_end="loop"), "audio_end must be one of"),
])
def test_mismatched_inputs(model, codec, kwargs, settings, message):
    with pytest.raises(ValueError) as info:
        sample_video(model, codec, reference(), SamplerSettings(**{"steps": 3, "window": 4, "overlap": 1, **settings}),
                     **kwargs)
    assert message in str(info.value)


def silent_audio(frames: int) -> AudioFeatures:
    """Audio features that pad themselves with rows of 7 (encode_audio's would re-encode)."""
    def reencode(frames: int) -> AudioFeatures:
        padding = torch.full((frames - features.frames, *features.features.shape[1:]), 7.0)
        return AudioFeatures(torch.cat([features.features, padding]), 25.0, 4, (0,), frames - features.frames)

    features = audio(frames)
    features.reencode = reencode
    return features


@pytest.mark.parametrize("extend, picked", [("pingpong", [0, 1, 2, 1, 0, 1, 2]), ("loop", [0, 1, 2, 0, 1, 2, 0]),
                                            ("hold", [0, 1, 2, 2, 2, 2, 2])])
def test_speech_longer_than_the_driving_clip_extends_the_clip(extend, picked):
    frames, fitted_audio, fitted = match_controls(None, silent_audio(7), driving(3), SamplerSettings(extend=extend))
    assert frames == 7 and fitted_audio.frames == 7 and fitted_audio.padded_frames == 0
    assert torch.equal(fitted, driving(3)[picked])


def test_driving_clip_longer_than_the_speech_pads_silence_or_ends_with_it():
    frames, fitted_audio, fitted = match_controls(None, silent_audio(3), driving(5), SamplerSettings())
    assert frames == 5 and torch.equal(fitted, driving(5)) and fitted_audio.padded_frames == 2
    assert torch.equal(fitted_audio.features[:3], audio(3).features) and (fitted_audio.features[3:] == 7).all()
    frames, fitted_audio, fitted = match_controls(None, silent_audio(3), driving(5),
                                                  SamplerSettings(audio_end="shortest"))
    assert frames == 3 and fitted.shape[0] == 3 and fitted_audio.frames == 3


def test_longer_controls_are_cut_to_the_frame_count():
    frames, fitted_audio, fitted = match_controls(4, silent_audio(6), driving(9), SamplerSettings())
    assert frames == 4 and fitted_audio.frames == 4 and torch.equal(fitted, driving(9)[:4])


def test_mixed_video_runs_with_speech_longer_and_shorter_than_the_clip(model, codec):
    assert sample_video(model, codec, reference(), FAST, audio=silent_audio(6), driving=driving(4)).shape[0] == 6
    assert sample_video(model, codec, reference(), FAST, audio=silent_audio(3), driving=driving(5)).shape[0] == 5


def test_unknown_window_schedule_fails_before_any_work(model, codec, monkeypatch):
    monkeypatch.setattr(codec, "encode", lambda images: pytest.fail("encoded before checking the settings"))
    with pytest.raises(ValueError, match="window_schedule must be one of \\('blend', 'shift'\\), got 'spiral'"):
        sample_video(model, codec, reference(), SamplerSettings(window_schedule="spiral"), audio=audio(2))


def test_reference_must_tile_into_tokens(model, codec):
    with pytest.raises(ValueError, match="60x64; width and height must be multiples of 16"):
        sample_video(model, codec, torch.rand(64, 60, 3), FAST, audio=audio(2))


def test_context_windows_cover_and_blend():
    windows = context_windows(40, 16, 4)
    assert [(w.start, w.stop) for w in windows] == [(0, 16), (12, 28), (24, 40)]
    assert context_windows(10, 16, 4) == [range(10)]
    total = torch.zeros(40)
    for w in windows:
        total[list(w)] += blend_weights(w, 40, 4)
    assert (total > 0).all()
    first, middle = blend_weights(windows[0], 40, 4), blend_weights(windows[1], 40, 4)
    assert first[0] == 1 and first[-1] < 1 and middle[0] < middle[4] == 1
    with pytest.raises(ValueError, match="overlap in 0..size-1"):
        context_windows(40, 4, 4)


def test_offloaded_vae_visits_the_device_only_while_it_works(model, monkeypatch):
    vae = tiny_vae()
    moves = []
    original_to = type(vae).to
    monkeypatch.setattr(type(vae), "to", lambda self, *a, **k: moves.append(str(a[0])) or original_to(self, *a, **k))
    offloaded = DiffusersVAE(vae, device="cpu", offload=True)
    assert moves == ["cpu"]
    images = reference()[None]
    latents = offloaded.encode(images)
    decoded = offloaded.decode(latents)
    assert moves == ["cpu"] * 5  # stored, then to the device and back around each call
    monkeypatch.undo()
    plain = DiffusersVAE(tiny_vae())
    torch.testing.assert_close(latents, plain.encode(images))
    torch.testing.assert_close(decoded, plain.decode(latents))
