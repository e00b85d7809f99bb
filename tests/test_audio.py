"""Whisper features aligned to video frames, on a tiny random Whisper and synthetic sounds."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from megactor_core.audio import (
    WhisperError,
    encode_audio,
    frame_features,
    load_whisper_encoder,
    to_whisper_waveform,
    whisper_states,
)
from tests.tiny_models import tiny_whisper_file

SR = 16000


def background(seconds: float, sr: int = SR, seed: int = 0) -> torch.Tensor:
    """Quiet noise, loud enough that Whisper's log-mel floor (max - 8) never clips it."""
    g = torch.Generator().manual_seed(seed)
    return 0.05 * torch.randn(int(seconds * sr), generator=g)


def tones(seconds: float, sr: int) -> torch.Tensor:
    """A deterministic sound defined in continuous time, so any sample rate renders the same sound."""
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    sound = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * (300 + 400 * t) * t)
    return (sound * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t))).float()


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return load_whisper_encoder(tiny_whisper_file(tmp_path_factory.mktemp("whisper") / "tiny.pt"))


@pytest.mark.parametrize("fps", [24, 25, 29.97, 30, 60])
@pytest.mark.parametrize("event_at", [0.5, 2.3])
def test_event_moves_its_own_frame(whisper, fps, event_at):
    """A 20 ms click at t changes frame t*fps and frames within ~80 ms of it, nothing else.

    Measured on encoder state 0 (convolutions: a ~40 ms receptive field); deeper states mix the
    whole 30 s window through attention, which says nothing about our alignment.
    """
    quiet = background(4.0)
    loud = quiet.clone()
    start = int(event_at * SR)
    loud[start:start + 320] += 0.3 * torch.sin(torch.arange(320) * 0.9)
    a = encode_audio(whisper, quiet[None], SR, fps, context=0, layers=[0]).features
    b = encode_audio(whisper, loud[None], SR, fps, context=0, layers=[0]).features
    changed = [i for i in range(a.shape[0]) if not torch.equal(a[i], b[i])]
    assert int(event_at * fps) in changed
    centres = [(i + 0.5) / fps for i in changed]
    assert all(abs(c - (event_at + 0.01)) < 0.08 for c in centres), (changed, centres)


def test_frame_count_follows_audio(whisper):
    for seconds, fps in [(2.0, 25), (1.0, 29.97), (3.3, 24)]:
        out = encode_audio(whisper, background(seconds)[None], SR, fps)
        assert out.frames == round(seconds * fps)
        assert out.padded_frames == 0
        assert out.features.shape == (out.frames, 9 * whisper.num_states, whisper.width)


def test_short_audio_is_padded_with_silence_and_says_so(whisper, caplog):
    with caplog.at_level(logging.WARNING):
        out = encode_audio(whisper, background(1.0)[None], SR, 25, frames=40)
    assert out.frames == 40 and out.padded_frames == 15
    assert "padding 0.60 s of silence" in caplog.text
    # The padding is silence: the same as giving the audio with 0.6 s of zeros appended.
    explicit = torch.cat([background(1.0), torch.zeros(int(0.6 * SR))])[None]
    assert torch.equal(out.features, encode_audio(whisper, explicit, SR, 25).features)


def test_ordinary_audio_does_not_warn_about_padding(whisper, caplog):
    # 1.03 s at 25 fps rounds to 26 frames, whose end (1.04 s) is less than a frame past the audio.
    with caplog.at_level(logging.WARNING):
        out = encode_audio(whisper, background(1.03)[None], SR, 25)
    assert out.frames == 26 and "padding" not in caplog.text


@pytest.mark.parametrize("style", ["dit", "sd15-release"])
def test_features_padded_later_equal_features_encoded_for_that_length(whisper, style):
    speech = tones(1.0, SR)
    out = encode_audio(whisper, speech[None], SR, 25, style=style)
    padded = out.padded_to(60)
    assert (out.frames, padded.frames, padded.padded_frames) == (25, 60, 35)
    assert torch.equal(padded.features, encode_audio(whisper, speech[None], SR, 25, frames=60, style=style).features)
    cut = out.padded_to(10)
    assert torch.equal(cut.features, out.features[:10]) and cut.padded_frames == 0


def test_context_outside_the_audio_is_zero_not_whisper_padding(whisper):
    samples = background(1.0)
    states = whisper_states(whisper, samples)
    assert states.shape == (whisper.num_states, 50, whisper.width)
    feats = frame_features(states, 25, 25, context=3, layers=[whisper.num_states - 1])
    # Frame 24 is centred on position 49, the last one: positions 50..52 lie past the audio.
    assert torch.equal(feats[24, 4:], torch.zeros(3, whisper.width))
    assert feats[24, :4].abs().sum() > 0
    assert torch.equal(feats[0, :2], torch.zeros(2, whisper.width))  # positions -2, -1
    assert torch.equal(feats[0, 3], states[-1, 1])


def test_windowed_long_audio_matches_single_windows(whisper):
    samples = background(50.0, seed=3)
    long = whisper_states(whisper, samples)
    assert long.shape[1] == 2500
    first = whisper_states(whisper, samples[:30 * SR])
    second = whisper_states(whisper, samples[20 * SR:])
    torch.testing.assert_close(long[:, :1250], first[:, :1250], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(long[:, 1250:], second[:, 250:], rtol=1e-5, atol=1e-5)


def test_progress_is_reported_per_window_batch(whisper):
    calls = []
    whisper_states(whisper, background(100.0), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == 5 and [d for d, _ in calls] == sorted(d for d, _ in calls)

    def cancel(done, total):
        raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        whisper_states(whisper, background(100.0), progress=cancel)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("stereo", [False, True])
def test_same_sound_same_features(whisper, rate, stereo):
    reference = encode_audio(whisper, tones(3.0, SR)[None], SR, 25).features
    wave = tones(3.0, rate)
    wave = torch.stack([wave, wave]) if stereo else wave[None]
    got = encode_audio(whisper, wave, rate, 25).features
    assert got.shape == reference.shape
    rel = (got - reference).norm() / reference.norm()
    assert rel < 0.02, rel


def test_stereo_is_averaged():
    left, right = torch.randn(1000), torch.randn(1000)
    torch.testing.assert_close(to_whisper_waveform(torch.stack([left, right])[None], SR), (left + right) / 2)


def test_deterministic(whisper):
    wave = background(5.0)[None]
    assert torch.equal(encode_audio(whisper, wave, SR, 25).features, encode_audio(whisper, wave, SR, 25).features)


@pytest.mark.parametrize(
    "waveform, rate, fps, message",
    [
        (torch.zeros(1, 0), SR, 25, "audio is empty"),
        (torch.tensor([[0.0, float("nan"), 0.0]]), SR, 25, "NaN or infinite"),
        (torch.zeros(2, 1, 100), SR, 25, "batch of 2 clips"),
        (torch.zeros(1, 1, 1, 100), SR, 25, "must be [samples]"),
        (torch.zeros(1, 100), 0, 25, "sample_rate must be a positive number"),
        (torch.zeros(1, 1600), SR, 0, "fps must be a positive number"),
    ],
)
def test_bad_audio_is_named(whisper, waveform, rate, fps, message):
    with pytest.raises(ValueError) as info:
        encode_audio(whisper, waveform, rate, fps)
    assert message in str(info.value)


def test_bad_layers_and_frames(whisper):
    with pytest.raises(ValueError, match="within 0..2"):
        encode_audio(whisper, background(1.0)[None], SR, 25, layers=[3])
    with pytest.raises(ValueError, match="frame count must be positive"):
        encode_audio(whisper, background(1.0)[None], SR, 25, frames=-1)


def test_not_a_whisper_checkpoint(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(WhisperError, match="not an openai-whisper checkpoint"):
        load_whisper_encoder(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(WhisperError, match="not a readable PyTorch checkpoint"):
        load_whisper_encoder(junk)
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(WhisperError, match="not Whisper"):
        load_whisper_encoder(folder)
    with pytest.raises(WhisperError, match="not found .*tiny.pt.*openai/whisper-tiny"):
        load_whisper_encoder(tmp_path / "missing.pt")


def test_hugging_face_folder_matches_transformers(tmp_path):
    import transformers

    config = transformers.WhisperConfig(
        num_mel_bins=80, max_source_positions=1500, d_model=16, encoder_layers=2, encoder_attention_heads=2,
        decoder_layers=1, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=32, vocab_size=100,
        max_target_positions=8, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    torch.manual_seed(0)
    hf = transformers.WhisperModel(config).eval()
    hf.save_pretrained(tmp_path / "whisper-hf")
    ours = load_whisper_encoder(tmp_path / "whisper-hf")
    from whisper.audio import log_mel_spectrogram, pad_or_trim

    mel = pad_or_trim(log_mel_spectrogram(tones(2.0, SR), 80, padding=480000), 3000)[None]
    with torch.no_grad():
        expected = torch.stack(hf.encoder(mel, output_hidden_states=True).hidden_states, dim=1)
        got = ours(mel)
        # Hugging Face applies the final layer norm to its last state; ours stops before it.
        got[:, -1] = ours.encoder.ln_post(got[:, -1])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_long_audio_for_a_short_video_encodes_only_what_it_needs(whisper):
    calls = []
    out = encode_audio(whisper, background(100.0)[None], SR, 25, frames=50,
                       progress=lambda done, total: calls.append(total))
    assert out.frames == 50 and calls == [1]  # one 30 s window, not five
