"""The headless command line end to end on tiny files made in the test."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch

from megactor_core import infer
from megactor_core.models import MegActorSigma, save_checkpoint
from megactor_core.video_io import read_video, write_video
from tests.tiny_models import (
    face_dwpose_files,
    randomize,
    raw_yolox_output,
    stand_in_onnx,
    tiny_config,
    tiny_vae,
    tiny_whisper_file,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("infer")
    save_checkpoint(randomize(MegActorSigma(tiny_config(audio_dim=16)), std=0.1), d / "tiny.safetensors")
    tiny_vae().save_pretrained(d / "vae")
    tiny_whisper_file(d / "tiny.pt")
    detector, pose = face_dwpose_files(d / "dwpose")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(d / "portrait.png"), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    with wave.open(str(d / "speech.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((rng.normal(0, 2000, 8000)).astype(np.int16).tobytes())  # 0.5 s
    write_video(d / "driving.mp4", rng.integers(0, 256, (8, 96, 96, 3), dtype=np.uint8), 16.0)
    return d, detector, pose


def base(d, *, crop: bool = True):
    args = ["--checkpoint", str(d / "tiny.safetensors"), "--vae", str(d / "vae"), "--reference",
            str(d / "portrait.png"), "--size", "64", "--steps", "2", "--window", "4", "--overlap", "1"]
    return args + (["--dwpose", str(d / "dwpose" / "yolox_l.onnx"), str(d / "dwpose" / "dw-ll_ucoco_384.onnx")]
                   if crop else ["--no-crop"])


def test_audio_driven_photo_is_cropped_and_pasted_back(files, tmp_path, capsys):
    d, _, _ = files
    out = tmp_path / "audio.mp4"
    assert infer.main(base(d) + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                                 "--out", str(out)]) == 0
    video = read_video(out)
    assert video.frames.shape == (12, 80, 100, 3) and video.fps == 25  # 0.5 s at the model's 25 fps, photo size
    assert video.audio is not None and "wrote" in capsys.readouterr().out


def test_mixed_with_face_drop_and_alpha(files, tmp_path, monkeypatch):
    d, detector, pose = files
    out = tmp_path / "mixed.mp4"
    given = []
    original = infer.sample_video
    monkeypatch.setattr(infer, "sample_video",
                        lambda *a, **kw: given.append(kw["mouth_attention"]) or original(*a, **kw))
    assert infer.main(base(d) + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                                 "--driving", str(d / "driving.mp4"), "--alpha", "0.5", "--out", str(out)]) == 0
    video = read_video(out)
    # The 16 fps clip (0.5 s) becomes 13 frames at 25 fps, one more than the speech's 12: silence follows.
    assert video.frames.shape == (13, 80, 100, 3) and video.fps == 25
    # Face-dropped to the eyes (the default with audio): the mouth may not read them (Eq.2), as in training.
    assert given[-1].keep == "eyes" and given[-1].frames == 13
    shortest = tmp_path / "shortest.mp4"
    assert infer.main(base(d) + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                                 "--driving", str(d / "driving.mp4"), "--audio-end", "shortest",
                                 "--out", str(shortest)]) == 0
    assert read_video(shortest).frames.shape[0] == 12
    assert infer.main(base(d) + ["--driving", str(d / "driving.mp4"), "--keep", "both", "--out", str(shortest)]) == 0
    assert given[-1] is None  # the mouth is in the driving frames


def test_driving_video_is_resampled_to_the_model_rate_by_its_times(files, tmp_path):
    """An event at t = 1.0 s of a 30 fps clip lands on frame 25; a variable-rate clip follows its stamps."""
    d, _, _ = files
    frames = np.zeros((60, 32, 32, 3), np.uint8)
    frames[30] = 255  # shown from t = 1.0 s
    write_video(tmp_path / "30fps.mp4", frames, 30.0)
    args = infer.parse_args(base(d, crop=False) + ["--driving", str(tmp_path / "30fps.mp4"), "--out", "x.mp4"])
    reference = infer.Reference(torch.zeros(64, 64, 3), np.zeros((64, 64, 3), np.uint8), None, None)
    driving, mouth = infer.prepare_driving(args, read_video(tmp_path / "30fps.mp4"), 25.0, None, reference)
    assert mouth is None  # frames that were not face-dropped
    brightness = driving.mean(dim=(1, 2, 3))
    assert driving.shape[0] == 50 and int(brightness.argmax()) == 25 and brightness[24] < 0.1 < 0.9 < brightness[25]

    variable = tmp_path / "variable.mp4"
    stamps = [0, 20, 40, 60, 80, 100, 300, 500, 700, 900]  # ms: 50 fps for 0.1 s, then 5 fps
    with av.open(str(variable), "w") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for k, ms in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 25 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    decoded = read_video(variable)
    np.testing.assert_allclose(decoded.frame_times(), np.array(stamps) / 1000, atol=1e-3)
    driving, _ = infer.prepare_driving(args, decoded, 25.0, None, reference)
    levels = np.round(driving.mean(dim=(1, 2, 3)).numpy() * 255 / 25).astype(int)
    assert len(levels) == 28  # 0.9 s + the last gap (0.2 s) at 25 fps
    # t = 0.32 .. 0.48 s: nearest stamp 0.3 s, a tie at 0.4 s (the earlier wins), then 0.5 s
    assert list(levels[:3]) == [0, 2, 4] and list(levels[8:13]) == [6, 6, 6, 7, 7]


def test_failure_leaves_no_file(files, tmp_path, capsys, monkeypatch):
    d, _, _ = files
    out = tmp_path / "never.mp4"
    bad = base(d)
    bad[bad.index("--reference") + 1] = str(d / "speech.wav")
    assert infer.main(bad + ["--driving", str(d / "driving.mp4"), "--out", str(out)]) == 2
    assert "is not a readable image" in capsys.readouterr().err and not out.exists()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(infer, "sample_video", interrupt)
    assert infer.main(base(d) + ["--driving", str(d / "driving.mp4"), "--out", str(out)]) == 130
    assert "interrupted; no video written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sampler_settings_are_refused_before_the_inputs_are_read(files, tmp_path, capsys, monkeypatch):
    d, _, _ = files

    def read_video(*args, **kwargs):
        raise AssertionError("the driving video was read for settings that cannot run")

    monkeypatch.setattr("megactor_core.video_io.read_video", read_video)
    args = base(d)
    args[args.index("--steps") + 1] = "1"
    assert infer.main(args + ["--driving", str(d / "driving.mp4"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "error: 1 step of the 'ddim' scheduler starts at t = 0 of 0..999" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_photo_without_a_face_is_named(files, tmp_path, capsys):
    d, _, _ = files
    nobody = stand_in_onnx(tmp_path / "nobody.onnx", [1, 3, 640, 640], {"output": raw_yolox_output()}, "images")
    args = base(d)
    args[args.index("--dwpose") + 1] = str(nobody)
    assert infer.main(args + ["--driving", str(d / "driving.mp4"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert f"--reference {d / 'portrait.png'}: no face found" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--audio", "a.wav"], "--audio needs --whisper"),
    ([], "give --audio, --driving or both"),
    (["--driving", "v.mp4", "--steps", "0"], "--steps must be at least 1, got 0"),
    (["--driving", "v.mp4", "--frames", "0"], "--frames must be at least 1"),
    (["--driving", "v.mp4", "--extend", "bounce"], "invalid choice: 'bounce'"),
])
def test_argument_errors(files, extra, message, capsys):
    d, _, _ = files
    with pytest.raises(SystemExit):
        infer.main(base(d) + extra + ["--out", "x.mp4"])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--driving", "v.mp4", "--alpha", "2"], "--alpha needs --dwpose"),
    (["--driving", "v.mp4"], "--dwpose YOLOX POSE is needed to find the face in --reference"),
])
def test_argument_errors_without_dwpose(files, extra, message, capsys):
    d, _, _ = files
    args = base(d)[:-3]  # no --dwpose
    with pytest.raises(SystemExit):
        infer.main(args + extra + ["--out", "x.mp4"])
    assert message in capsys.readouterr().err


def test_compile_and_offload(files, tmp_path, monkeypatch):
    """--compile compiles the denoiser's blocks; --offload keeps the VAE on the CPU between its calls."""
    d, _, _ = files
    compiled, decoded_with = [], []
    original_compile = MegActorSigma.compile_blocks
    monkeypatch.setattr(MegActorSigma, "compile_blocks",
                        lambda self: compiled.append(1) or original_compile(self, backend="aot_eager"))
    original_decode = infer.DiffusersVAE.decode
    monkeypatch.setattr(infer.DiffusersVAE, "decode", lambda self, latents: decoded_with.append(self.offload)
                        or original_decode(self, latents))
    out = tmp_path / "compiled.mp4"
    assert infer.main(base(d, crop=False) + ["--driving", str(d / "driving.mp4"), "--compile", "--offload",
                                             "--out", str(out)]) == 0
    assert compiled == [1] and decoded_with == [True, True]  # two chunks of frames, each with the VAE offloaded between
    assert read_video(out).frames.shape == (13, 64, 64, 3)  # --no-crop: the centre square


def test_official_release_with_its_settings(files, tmp_path, monkeypatch):
    """The release's .ckpt runs through the same command, its audio cut the release's way and its
    driving rectangles moved onto the portrait's face."""
    from megactor_core.landmarks import release_drop
    from tests.tiny_models import tiny_release_file

    d, _, _ = files
    aligned_to = []
    original = release_drop.release_face_drop
    monkeypatch.setattr("megactor_core.landmarks.release_face_drop",
                        lambda frames, landmarks, keep, reference=None: aligned_to.append(reference)
                        or original(frames, landmarks, keep, reference))
    checkpoint = tiny_release_file(tmp_path / "megactor-sigma.ckpt", audio_dim=16)
    args = base(d)
    args[args.index("--checkpoint") + 1] = str(checkpoint)
    args[args.index("--size") + 1] = "128"  # the tiny UNet halves the latent three times
    out = tmp_path / "release.mp4"
    assert infer.main(args + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"), "--driving",
                              str(d / "driving.mp4"), "--release-settings", "--out", str(out)]) == 0
    assert read_video(out).frames.shape == (13, 80, 100, 3)
    assert len(aligned_to) == 1 and aligned_to[0].width == 128  # the cropped portrait's landmarks
