"""The headless command line end to end on tiny files made in the test."""

from __future__ import annotations

import wave

import cv2
import numpy as np
import pytest

from megactor_core import infer
from megactor_core.models import MegActorSigma, save_checkpoint
from megactor_core.video_io import read_video, write_video
from tests.tiny_models import face_dwpose_files, randomize, tiny_config, tiny_vae, tiny_whisper_file


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


def base(d):
    return ["--checkpoint", str(d / "tiny.safetensors"), "--vae", str(d / "vae"), "--reference",
            str(d / "portrait.png"), "--size", "64", "--steps", "2", "--window", "4", "--overlap", "1"]


def test_audio_driven(files, tmp_path, capsys):
    d, _, _ = files
    out = tmp_path / "audio.mp4"
    assert infer.main(base(d) + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                                 "--fps", "20", "--out", str(out)]) == 0
    video = read_video(out)
    assert video.frames.shape == (10, 64, 64, 3) and video.fps == 20  # 0.5 s at 20 fps
    assert video.audio is not None and "wrote" in capsys.readouterr().out


def test_mixed_with_face_drop_and_alpha(files, tmp_path):
    d, detector, pose = files
    out = tmp_path / "mixed.mp4"
    assert infer.main(base(d) + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                                 "--driving", str(d / "driving.mp4"), "--dwpose", str(detector), str(pose),
                                 "--alpha", "0.5", "--out", str(out)]) == 0
    video = read_video(out)
    assert video.frames.shape[0] == 8 and video.fps == 16  # follows the driving video


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
    with pytest.raises(KeyboardInterrupt):
        infer.main(base(d) + ["--driving", str(d / "driving.mp4"), "--out", str(out)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, message", [
    (["--audio", "a.wav"], "--audio needs --whisper"),
    ([], "give --audio, --driving or both"),
    (["--driving", "v.mp4", "--alpha", "2"], "--alpha needs --dwpose"),
])
def test_argument_errors(files, extra, message, capsys):
    d, _, _ = files
    with pytest.raises(SystemExit):
        infer.main(base(d) + extra + ["--out", "x.mp4"])
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
    assert infer.main(base(d) + ["--driving", str(d / "driving.mp4"), "--compile", "--offload",
                                 "--out", str(out)]) == 0
    assert compiled == [1] and decoded_with == [True]
    assert read_video(out).frames.shape == (8, 64, 64, 3)


def test_official_release_with_its_settings(files, tmp_path):
    """The release's .ckpt runs through the same command, its audio cut the release's way."""
    from tests.tiny_models import tiny_release_file

    d, _, _ = files
    checkpoint = tiny_release_file(tmp_path / "megactor-sigma.ckpt", audio_dim=16)
    args = base(d)
    args[args.index("--checkpoint") + 1] = str(checkpoint)
    args[args.index("--size") + 1] = "128"  # the tiny UNet halves the latent three times
    out = tmp_path / "release.mp4"
    assert infer.main(args + ["--audio", str(d / "speech.wav"), "--whisper", str(d / "tiny.pt"),
                              "--release-settings", "--out", str(out)]) == 0
    assert read_video(out).frames.shape == (12, 128, 128, 3)  # 0.5 s at the default 25 fps
