"""Video/audio files round-trip through write_video and read_video/read_audio, on synthetic data."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from megactor_core import video_io
from megactor_core.video_io import VideoFileError, mono_pcm16, read_audio, read_video, write_video

NTSC = 30000 / 1001


def smooth_frames(n: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Moving colour gradients: smooth enough that H.264 keeps them close to the original."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    red = 128 + 100 * np.sin(x / 16 + t / 5)
    green = 128 + 100 * np.cos(y / 12 - t / 7)
    blue = np.broadcast_to(60 + (x + y), red.shape)
    return np.stack([red, green, blue], -1).round().astype(np.uint8)


def sine(seconds: float, sample_rate: int = 44100, hz: float = 440.0) -> np.ndarray:
    """Stereo [2, samples] float32: the tone in both channels, the right one quieter."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([tone, 0.5 * tone]).astype(np.float32)


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fps", [25, NTSC, Fraction(30000, 1001)])
def test_round_trip_keeps_frames_and_fps(tmp_path, fps):
    frames = smooth_frames(20)
    path = write_video(tmp_path / "out.mp4", frames, fps)
    assert path == tmp_path / "out.mp4" and files_in(tmp_path) == ["out.mp4"]
    video = read_video(path)
    assert video.fps == float(fps)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    assert np.abs(video.frames.astype(np.float32) - frames).mean() < 3.5  # neighbouring frames differ by ~7
    assert video.audio is None and video.sample_rate is None


def test_frame_timestamps_are_index_over_fps(tmp_path):
    write_video(tmp_path / "v.mp4", smooth_frames(12), NTSC)
    with av.open(str(tmp_path / "v.mp4")) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert times == pytest.approx([i / NTSC for i in range(12)], abs=1e-4)


def test_audio_round_trip_is_trimmed_to_the_video(tmp_path):
    frames, fps, sr = smooth_frames(50), 25, 44100  # 2 s of video, 3 s of sound
    original = sine(3.0, sr)
    video = read_video(write_video(tmp_path / "a.mp4", frames, fps, audio=original, sample_rate=sr))
    assert video.sample_rate == sr and video.audio.dtype == np.float32
    assert video.audio.shape == (2, 2 * sr)  # the file's own duration: no AAC priming or end padding
    spectrum = np.abs(np.fft.rfft(video.audio[0]))
    assert np.fft.rfftfreq(video.audio.shape[1], 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=1)
    # Aligned in time, not only the same pitch: AAC's leading priming samples are dropped on reading.
    middle = slice(sr // 2, 3 * sr // 2)
    for got, want in zip(video.audio, original, strict=True):
        assert np.corrcoef(got[middle], want[middle])[0, 1] > 0.99
    assert np.abs(video.audio[1]).max() == pytest.approx(0.25, abs=0.03)
    samples, rate = read_audio(tmp_path / "a.mp4")
    assert rate == sr and np.array_equal(samples, video.audio)


def test_audio_shorter_than_video_and_mono_at_an_unusual_rate(tmp_path):
    mono = sine(1.0, 22000)[:1]
    video = read_video(write_video(tmp_path / "m.mp4", smooth_frames(50), 25, audio=mono, sample_rate=22000))
    assert video.audio.shape[0] == 1 and video.sample_rate == 48000  # AAC has no 22 kHz: resampled
    assert video.audio.shape[1] / video.sample_rate == pytest.approx(1.0, abs=0.03)


def clicked_clip(path, audio_start: float, video_start: float, container: str) -> None:
    """1 s of 16 kHz PCM with a click 0.25 s into the sound, and 25 frames at 25 fps; each stream
    starts at its own time. PCM has no encoder delay, so where the click lands is exact."""
    sr, fps = 16000, 25
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("pcm_s16le", rate=sr, layout="mono")
        click = np.zeros((1, sr), np.int16)
        click[0, sr // 4] = 16000
        frame = av.AudioFrame.from_ndarray(click, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sr, round(audio_start * sr), Fraction(1, sr)
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
        for i in range(fps):
            image = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            image.pts, image.time_base = i + round(video_start * fps), Fraction(1, fps)
            out.mux(video.encode(image))
        out.mux(video.encode(None))


@pytest.mark.parametrize("container", ["mov", "matroska"])
@pytest.mark.parametrize(("audio_start", "video_start", "click"), [
    (0.2, 0.0, 7200),  # the sound starts 0.2 s after the first frame: the click is heard at 0.45 s
    (0.0, 0.2, 800),   # the first frame comes 0.2 s into the sound: at 0.05 s
    (0.0, 0.0, 4000),
])
def test_audio_is_put_on_the_video_clock(tmp_path, container, audio_start, video_start, click):
    """Sample 0 sounds with frame 0, whichever stream starts first (silence before a late sound)."""
    path = tmp_path / f"clicked.{container}"
    clicked_clip(path, audio_start, video_start, container)
    video = read_video(path)
    assert video.times[0] == pytest.approx(video_start)
    assert video.sample_rate == 16000 and np.flatnonzero(video.audio[0]).tolist() == [click]
    assert video.audio.shape[1] == 16000 + round((audio_start - video_start) * 16000)
    cut = read_video(path, max_frames=5)  # 0.2 s
    np.testing.assert_array_equal(cut.audio, video.audio[:, :3200])
    samples, _ = read_audio(path)  # the sound alone keeps its own start
    assert np.flatnonzero(samples[0]).tolist() == [4000]


def test_mono_pcm16_is_ffmpegs_16bit_resampling():
    """Bit for bit (within one step, for other CPUs' rounding) what the ffmpeg CLI writes; a textbook
    resampler (scipy's resample_poly of the channel mean) is hundreds of steps away near 8 kHz."""
    sr = 48000
    t = np.arange(1440) / sr  # 30 ms, stereo, with tones close to 16 kHz's Nyquist
    audio = np.stack([0.4 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 7900 * t),
                      0.4 * np.sin(2 * np.pi * 1000 * t) - 0.3 * np.sin(2 * np.pi * 7700 * t)]).astype(np.float32)
    # Captured from ffmpeg n9.0.2 (imageio-ffmpeg 0.8.1) fed these samples as f32le, 48 kHz, 2 channels:
    # ffmpeg -f f32le -ar 48000 -ac 2 -i - -ac 1 -vn -acodec pcm_s16le -ar 16000 -f s16le -
    # (syncnet_python's audio extraction); its output has 480 samples.
    expected = {0: [670, 3355, 7314, 8618, 11638, 9920, 11583, 7166],
                236: [-5205, -7491, -5977, -5636, -3852, -1954, -1272, 799],
                472: [-2425, -736, -4496, -2456, -3905, -1032, 197, 3390]}
    got = mono_pcm16(audio, sr, 16000)
    assert got.dtype == np.int16 and got.shape == (480,)
    for start, values in expected.items():
        np.testing.assert_allclose(got[start:start + 8], values, atol=1)
    from scipy.signal import resample_poly

    textbook = np.round(resample_poly(audio.mean(0), 1, 3) * 32768)
    assert np.abs(textbook[:8] - expected[0]).max() > 100
    np.testing.assert_array_equal(mono_pcm16(audio[:1], 16000, 16000), np.round(audio[0] * 32768))  # no resampling
    with pytest.raises(ValueError, match="rate must be a positive integer"):
        mono_pcm16(audio, sr, 0)
    with pytest.raises(ValueError, match=r"float numpy array \[channels, samples\]"):
        mono_pcm16(audio[0], sr, 16000)


def test_max_frames_cuts_frames_and_audio(tmp_path):
    path = write_video(tmp_path / "c.mp4", smooth_frames(30), 25, audio=sine(1.2), sample_rate=44100)
    video = read_video(path, max_frames=5)
    assert video.frames.shape[0] == 5 and video.fps == 25
    assert video.audio.shape == (2, 44100 // 5)


@pytest.mark.parametrize(("height", "width"), [(33, 48), (32, 47), (31, 45)])
def test_odd_sizes_are_padded_by_repeating_the_edge(tmp_path, height, width):
    frames = smooth_frames(4, height, width)
    video = read_video(write_video(tmp_path / "odd.mp4", frames, 25))
    assert video.frames.shape == (4, height + height % 2, width + width % 2, 3)
    got = video.frames.astype(np.float32)
    assert np.abs(got[:, :height, :width] - frames).mean() < 4
    assert np.abs(got[:, -1, :width] - frames[:, -1]).mean() < 6  # the repeated row/column
    assert np.abs(got[:, :height, -1] - frames[:, :, -1]).mean() < 6


@pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                    reason="writing rotation metadata needs PyAV >= 18")
def test_rotation_metadata_is_applied(tmp_path):
    """A phone video stored landscape with a 90° display rotation reads upright, as players show it."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:8, :8] = 255  # a white top-left corner
    with av.open(str(tmp_path / "r.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise
        out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    frame = read_video(tmp_path / "r.mp4").frames[0]
    assert frame.shape == (64, 32, 3)
    assert frame[-8:, :8].mean() > 200 and frame[:8, :8].mean() < 50  # top-left went to bottom-left


def test_read_audio_of_a_wav(tmp_path):
    sr = 16000
    pcm = (np.sin(np.arange(sr) * 2 * np.pi * 300 / sr) * 20000).astype(np.int16)
    with wave.open(str(tmp_path / "s.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sr)
        f.writeframes(pcm.tobytes())
    samples, rate = read_audio(tmp_path / "s.wav")
    assert rate == sr and samples.dtype == np.float32
    assert np.array_equal(samples, pcm[None] / np.float32(32768))
    with pytest.raises(VideoFileError, match=r"s\.wav has no video stream"):
        read_video(tmp_path / "s.wav")


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 20)
    for read in (read_video, read_audio):
        with pytest.raises(VideoFileError, match=r"notes\.mp4 could not be read as a video or audio file"):
            read(tmp_path / "notes.mp4")
        with pytest.raises(FileNotFoundError, match=r"missing\.mp4 does not exist"):
            read(tmp_path / "missing.mp4")
    write_video(tmp_path / "silent.mp4", smooth_frames(2), 25)
    with pytest.raises(VideoFileError, match=r"silent\.mp4 has no audio stream"):
        read_audio(tmp_path / "silent.mp4")
    with pytest.raises(ValueError, match="max_frames must be a positive integer"):
        read_video(tmp_path / "silent.mp4", max_frames=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"frames": smooth_frames(2).astype(np.float32)}, r"frames must be \[N, H, W, 3\] uint8"),
    ({"frames": smooth_frames(2)[0]}, r"frames must be \[N, H, W, 3\] uint8"),
    ({"frames": smooth_frames(2)[..., :1]}, r"frames must be \[N, H, W, 3\] uint8"),
    ({"frames": smooth_frames(2)[:0]}, "at least one frame"),
    ({"frames": [[0]]}, "frames must be a numpy array"),
    ({"fps": 0}, "fps must be a positive finite number"),
    ({"fps": float("nan")}, "fps must be a positive finite number"),
    ({"fps": "25"}, "fps must be a positive finite number"),
    ({"fps": 1e-6}, "too small"),
    ({"audio": sine(1.0)}, "without sample_rate"),
    ({"sample_rate": 44100}, "without audio"),
    ({"audio": sine(1.0)[0], "sample_rate": 44100}, r"audio must be \[channels, samples\]"),
    ({"audio": np.zeros((3, 100), np.float32), "sample_rate": 44100}, "1 or 2 channels"),
    ({"audio": (sine(1.0) * 32767).astype(np.int16), "sample_rate": 44100}, "float numpy array"),
    ({"audio": np.full((1, 10), np.nan, np.float32), "sample_rate": 44100}, "NaN"),
    ({"audio": sine(1.0), "sample_rate": 0}, "sample_rate must be a positive integer"),
    ({"crf": 60}, "crf must be an integer in 0..51"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    args = {"frames": smooth_frames(2), "fps": 25, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "bad.mp4", **args)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_writing_is_atomic(tmp_path, monkeypatch, error, existing):
    path = tmp_path / "out.mp4"
    if existing:
        path.write_bytes(b"the previous video")
    real_to_frame = video_io._to_frame

    def failing_to_frame(image, index, rate):
        if index == 3:
            raise error
        return real_to_frame(image, index, rate)

    monkeypatch.setattr(video_io, "_to_frame", failing_to_frame)
    with pytest.raises(type(error)):
        write_video(path, smooth_frames(6), 25, audio=sine(0.3), sample_rate=44100)
    assert files_in(tmp_path) == (["out.mp4"] if existing else [])
    if existing:
        assert path.read_bytes() == b"the previous video"
