"""Dataset preprocessing on tiny synthetic videos, with the stand-in DWPose, a tiny VAE and a tiny Whisper."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from megactor_core.audio import encode_audio, load_whisper_encoder
from megactor_core.landmarks import DWPose, FaceLandmarks, detect_landmarks
from megactor_core.landmarks.crop import FaceCrop, crop_frames, face_box
from megactor_core.pipeline.codec import DiffusersVAE
from megactor_core.training import preprocess
from megactor_core.training.preprocess import (
    preprocess_videos,
)
from megactor_core.training.shards import ShardDataset
from megactor_core.video_io import find_videos, read_video, write_video
from tests.synthetic_faces import landmarks_of
from tests.tiny_models import face_dwpose_files, raw_yolox_output, stand_in_onnx, tiny_vae, tiny_whisper_file

FPS = 25  # the model's rate, so preprocessing keeps every frame
SIZE = 64
SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    tiny_vae().save_pretrained(folder / "vae")
    tiny_whisper_file(folder / "tiny.pt")
    detector, pose = face_dwpose_files(folder / "dwpose")
    return {"vae": folder / "vae", "whisper": folder / "tiny.pt", "dwpose": (detector, pose),
            "no_person": stand_in_onnx(folder / "empty.onnx", [1, 3, 640, 640], {"output": raw_yolox_output()},
                                       "images")}


@pytest.fixture(scope="module")
def dwpose(models):
    return DWPose(*models["dwpose"])


@pytest.fixture(scope="module")
def codec():
    return DiffusersVAE(tiny_vae())


def landmarker_of(dwpose):
    return lambda frames: detect_landmarks(dwpose, frames)[0]


def stand_in_face(dwpose, height: int, width: int) -> np.ndarray:
    """[68, 2] where the stand-in DWPose finds the face in any frame of this size."""
    return detect_landmarks(dwpose, np.zeros((1, height, width, 3), np.uint8))[0].points[0]


def talking_video(path, dwpose, frames: int, *, height: int = 96, width: int = 96, sound: bool = True):
    """A video of a bright face (the stand-in DWPose's jaw and brows, filled) on a dark background,
    with a sine tone."""
    hull = cv2.convexHull(np.round(stand_in_face(dwpose, height, width)[:27]).astype(np.int32))
    images = np.full((frames, height, width, 3), 30, np.uint8)
    for image in images:
        cv2.fillConvexPoly(image, hull, (230, 210, 190))
    audio = None
    if sound:
        t = np.arange(round(frames / FPS * SAMPLE_RATE)) / SAMPLE_RATE
        audio = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, images, FPS, audio=audio, sample_rate=SAMPLE_RATE if sound else None)


def cli(models, inputs, out, *extra, whisper: bool = False) -> int:
    args = [*map(str, inputs), "--out", str(out), "--vae", str(models["vae"]), "--dwpose",
            *map(str, models["dwpose"]), "--size", str(SIZE), "--clip-frames", "8", "--device", "cpu", *extra]
    return preprocess.main(args + (["--whisper", str(models["whisper"])] if whisper else []))


def test_cli_end_to_end_with_audio(models, dwpose, tmp_path, caplog, capsys):
    videos = tmp_path / "videos"
    talking_video(videos / "a" / "talk.mp4", dwpose, 20)  # two clips, the last 4 frames dropped
    talking_video(videos / "b" / "talk.mp4", dwpose, 16)  # the same name elsewhere: two clips
    talking_video(videos / "short.mkv", dwpose, 5)  # shorter than a clip
    (videos / "notes.txt").write_text("not a video")
    out = tmp_path / "dataset"

    assert cli(models, [videos], out, "--videos-per-shard", "2", whisper=True) == 0

    assert sorted(p.name for p in out.glob("shard-*.tar")) == ["shard-00000.tar", "shard-00001.tar"]
    assert "2 of 3 videos used, 1 skipped, 4 clips in 2 new shards" in capsys.readouterr().out
    assert any("short.mkv" in r.message and "fewer than one clip of 8" in r.message for r in caplog.records)
    data = ShardDataset(out)
    assert data.has_audio
    found = {(c["key"], c["source"], c["first_frame"]) for c in data.clips}
    assert found == {("000000-talk-0000", "a/talk.mp4", 0), ("000000-talk-0001", "a/talk.mp4", 8),
                     ("000001-talk-0000", "b/talk.mp4", 0), ("000001-talk-0001", "b/talk.mp4", 8)}
    whisper = load_whisper_encoder(models["whisper"])
    for number, info in enumerate(data.clips):
        assert (info["fps"], info["frames"], info["height"], info["width"]) == (FPS, 8, SIZE, SIZE)
        assert info["audio_context"] == 4 and info["audio_layers"] == [0, 1, 2]  # tiny Whisper: 2 layers + input
        clip = data.read(number, range(8))
        assert clip.frames.shape == (8, SIZE, SIZE, 3) and clip.latents.shape == (8, 4, SIZE // 8, SIZE // 8)
        assert clip.regions.shape == (8, 3, SIZE // 8, SIZE // 8) and clip.regions[:, 2].max() == 1  # face cells
        assert clip.landmarks.shape == (8, 68, 2) and 0 < clip.landmarks.min() < clip.landmarks.max() < SIZE
        # Each clip holds its own frames' slice of the whole video's audio features.
        video = read_video(videos / info["source"])
        whole = encode_audio(whisper, torch.from_numpy(video.audio), video.sample_rate, video.fps,
                             frames=len(video.frames)).features
        start = info["first_frame"]
        assert clip.audio.shape == (8, 27, 16)
        np.testing.assert_allclose(clip.audio, whole[start:start + 8].numpy(), rtol=2e-3, atol=2e-3)


def test_crop_shifted_inside_frame_keeps_landmarks_on_the_face(dwpose, codec, tmp_path):
    # In a tall 128 x 96 frame the stand-in finds the face right of centre, at x = 64: a crop of
    # 2.8 face sizes (88 px) centred on it would leave the frame, so it is shifted left to x = 8.
    talking_video(tmp_path / "tall.mp4", dwpose, 8, height=128, width=96, sound=False)
    face = stand_in_face(dwpose, 128, 96)
    box = face_box(landmarks_of(face[None], width=96, height=128), 2.8, SIZE, keep_inside=True)
    assert (box.x, box.y, box.side) == (8, 10, 88)

    summary = preprocess_videos(find_videos([tmp_path / "tall.mp4"]), tmp_path / "out",
                                landmarker=landmarker_of(dwpose), codec=codec, size=SIZE, clip_frames=8,
                                face_scale=2.8)

    assert (summary.used, summary.skipped, summary.clips) == (1, 0, 1)
    data = ShardDataset(tmp_path / "out")
    assert not data.has_audio and data.clips[0]["audio_context"] is None
    clip = data.read(0, [0, 7])
    ys, xs = np.nonzero(clip.frames[0].mean(axis=-1) > 128)  # the drawn face
    outline = clip.landmarks[0, :27]
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()],
                               [*outline.min(axis=0), *outline.max(axis=0)], atol=1.5)
    expected = (face - [box.x, box.y] + 0.5) * SIZE / box.side - 0.5
    np.testing.assert_allclose(clip.landmarks[1], expected, atol=1e-4)


def test_face_crop_centre_size_shift_and_shrink():
    def faces(centres, sizes, width=200, height=100) -> FaceLandmarks:
        unit = np.array([[-0.5, -0.4], [0.5, 0.4]])  # a face box's corners, for size 1
        points = [np.tile(np.array(c) + unit * s, (34, 1)) for c, s in zip(centres, sizes, strict=True)]
        return landmarks_of(np.stack(points), width=width, height=height)

    def box(landmarks: FaceLandmarks, scale: float) -> tuple[int, int, int]:
        crop = face_box(landmarks, scale, 64, keep_inside=True)
        assert crop.inside
        return crop.x, crop.y, crop.side

    assert box(faces([(100, 50)], [20]), 2.0) == (80, 30, 40)
    # The median centre (an outlier frame does not move the crop), the largest size.
    assert box(faces([(60, 50), (100, 50), (102, 50)], [10, 20, 10]), 2.0) == (80, 30, 40)
    assert box(faces([(190, 95)], [20]), 2.0) == (160, 60, 40)  # shifted inside, not padded
    assert box(faces([(30, 50)], [20]), 10.0) == (0, 0, 100)  # shrunk to the frame


def test_crop_frames_maps_pixel_centres_like_resize():
    frame = np.zeros((1, 40, 50, 3), np.uint8)
    frame[0, 21, 17] = 255
    points = np.full((1, 68, 2), [17.0, 21.0], np.float32)
    frames, landmarks = crop_frames(frame, landmarks_of(points, width=50, height=40), FaceCrop(10, 15, 16, 50, 40, 64))
    assert frames.shape == (1, 64, 64, 3) and (landmarks.width, landmarks.height) == (64, 64)
    weights = frames[0, ..., 0].astype(float)
    ys, xs = np.mgrid[:64, :64]
    centroid = [(xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()]
    np.testing.assert_allclose(landmarks.points[0, 0], centroid, atol=0.05)


def test_find_videos_sorted_once_with_sources(tmp_path):
    for name in ("b/clip.MP4", "a.webm", "c/d/e.avi", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    videos = find_videos([tmp_path / "a.webm", tmp_path])
    assert [v.source for v in videos] == ["a.webm", "b/clip.MP4", "c/d/e.avi"]
    assert all(v.path.is_absolute() for v in videos)


def test_rerun_skips_shards_and_rebuilds_a_missing_one(dwpose, codec, tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        talking_video(tmp_path / "videos" / f"{name}.mp4", dwpose, 8, sound=False)
    videos = find_videos([tmp_path / "videos"])
    out = tmp_path / "out"
    read = []

    def counting_read_video(path):
        read.append(path.name)
        return read_video(path)

    monkeypatch.setattr(preprocess, "read_video", counting_read_video)

    def run(**changes):
        options = dict(landmarker=landmarker_of(dwpose), codec=codec, size=SIZE, clip_frames=8, videos_per_shard=1)
        return preprocess_videos(videos, out, **{**options, **changes})

    run()
    shards = sorted(out.glob("shard-*.tar"))
    assert len(shards) == 3 and read == ["a.mp4", "b.mp4", "c.mp4"]
    stamps = [s.stat().st_mtime_ns for s in shards]
    contents = [s.read_bytes() for s in shards]
    index = json.loads((out / "index.json").read_text())

    read.clear()
    summary = run()
    assert read == [] and (summary.shards_kept, summary.shards_written) == (3, 0)
    assert [s.stat().st_mtime_ns for s in shards] == stamps

    shards[1].unlink()
    summary = run()
    assert read == ["b.mp4"] and (summary.shards_kept, summary.shards_written, summary.clips) == (2, 1, 1)
    assert [s.read_bytes() for s in shards] == contents
    assert json.loads((out / "index.json").read_text()) == index


def test_other_options_or_videos_are_refused(models, dwpose, codec, tmp_path, capsys):
    talking_video(tmp_path / "videos" / "a.mp4", dwpose, 8, sound=False)
    out = tmp_path / "out"
    assert cli(models, [tmp_path / "videos"], out) == 0
    made = (out / "preprocess.json").read_text()

    assert cli(models, [tmp_path / "videos"], out, "--clip-frames", "4") == 2
    assert "clip_frames 8 (now 4)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="audio False \\(now True\\)"):
        preprocess_videos(find_videos([tmp_path / "videos"]), out, landmarker=landmarker_of(dwpose), codec=codec,
                          audio_encoder=lambda *args, **kwargs: None, size=SIZE, clip_frames=8)
    talking_video(tmp_path / "videos" / "b.mp4", dwpose, 8, sound=False)
    assert cli(models, [tmp_path / "videos"], out) == 2
    assert "other videos (1 new" in capsys.readouterr().err
    assert (out / "preprocess.json").read_text() == made


def test_videos_are_resampled_to_the_model_rate(models, dwpose, tmp_path):
    """A 10 fps video becomes 25 fps clips (its 1.6 s: 40 frames, 5 clips of 8); --fps 0 keeps 10 fps."""
    hull = cv2.convexHull(np.round(stand_in_face(dwpose, 96, 96)[:27]).astype(np.int32))
    images = np.zeros((16, 96, 96, 3), np.uint8)
    for k, image in enumerate(images):
        image[:] = 10 * k  # the background tells the frame's number
        cv2.fillConvexPoly(image, hull, (230, 210, 190))
    write_video(tmp_path / "videos" / "slow.mp4", images, 10.0)
    assert cli(models, [tmp_path / "videos"], tmp_path / "at25") == 0
    data = ShardDataset(tmp_path / "at25")
    assert len(data.clips) == 5 and {c["fps"] for c in data.clips} == {25.0}
    order = sorted(range(5), key=lambda c: data.clips[c]["first_frame"])
    corner = [data.read(c, list(range(8))).frames[:, :4, :4].mean(axis=(1, 2, 3)) for c in order]
    numbers = np.round(np.concatenate(corner) / 10).astype(int)
    assert list(numbers[:10]) == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4]  # output frame j shows source frame round(j * 0.4)
    assert cli(models, [tmp_path / "videos"], tmp_path / "own", "--fps", "0") == 0
    data = ShardDataset(tmp_path / "own")
    assert len(data.clips) == 2 and {c["fps"] for c in data.clips} == {10.0}


def test_unreadable_and_faceless_videos_are_skipped(models, dwpose, codec, tmp_path, caplog):
    folder = tmp_path / "videos"
    talking_video(folder / "good.mp4", dwpose, 8, sound=False)
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    write_video(folder / "dark.mp4", np.zeros((8, 96, 96, 3), np.uint8), FPS)
    nobody = DWPose(models["no_person"], models["dwpose"][1])

    def landmarker(frames):  # the stand-in finds a face in any frame: here only in frames that show one
        return detect_landmarks(dwpose if frames.mean() > 10 else nobody, frames)[0]

    with caplog.at_level(logging.WARNING):
        summary = preprocess_videos(find_videos([folder]), tmp_path / "out", landmarker=landmarker, codec=codec,
                                    size=SIZE, clip_frames=8)

    assert (summary.used, summary.skipped, summary.clips) == (1, 2, 1)
    warnings = "\n".join(r.message for r in caplog.records if r.levelno == logging.WARNING)
    assert "broken.mp4 could not be read" in warnings
    assert "dark.mp4: no face found" in warnings
    assert [c["source"] for c in ShardDataset(tmp_path / "out").clips] == ["good.mp4"]


def test_whisper_skips_a_video_without_sound(models, dwpose, tmp_path, caplog):
    talking_video(tmp_path / "videos" / "loud.mp4", dwpose, 8)
    talking_video(tmp_path / "videos" / "silent.mp4", dwpose, 8, sound=False)

    assert cli(models, [tmp_path / "videos"], tmp_path / "out", whisper=True) == 0

    assert any("silent.mp4: no audio track" in r.message for r in caplog.records)
    data = ShardDataset(tmp_path / "out")
    assert data.has_audio and [c["source"] for c in data.clips] == ["loud.mp4"]


@pytest.mark.parametrize("flag, source", [("--vae", "stabilityai/sd-vae-ft-mse"), ("--dwpose", "yzd-v/DWPose"),
                                          ("--whisper", "openai")])
def test_missing_model_file_says_where_it_comes_from(models, tmp_path, capsys, flag, source):
    (tmp_path / "v.mp4").write_bytes(b"")
    args = [str(tmp_path / "v.mp4"), "--out", str(tmp_path / "out"), "--vae", str(models["vae"]),
            "--dwpose", *map(str, models["dwpose"]), "--whisper", str(models["whisper"])]
    missing = tmp_path / "missing.file"
    args[args.index(flag) + 1] = str(missing)

    assert preprocess.main(args) == 2

    err = capsys.readouterr().err
    assert f"{flag} {missing} not found" in err and source in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, message", [
    (["--size", "60"], "multiple of 16"),
    (["--clip-frames", "0"], "at least 1"),
    (["--face-scale", "0"], "face scale must be positive"),
])
def test_bad_options_exit_2(models, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        cli(models, [tmp_path], tmp_path / "out", *extra)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_inputs_exit_2(models, tmp_path, capsys):
    assert cli(models, [tmp_path / "nowhere"], tmp_path / "out") == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert cli(models, [tmp_path], tmp_path / "out") == 2
    assert "no videos" in capsys.readouterr().err


def test_preprocessed_videos_train(models, dwpose, tmp_path):
    """The whole path: videos -> preprocess (DWPose, VAE, Whisper stand-ins) -> a stage-2 run."""
    from megactor_core.models import MegActorSigma, read_checkpoint, save_checkpoint
    from megactor_core.training.config import TrainConfig
    from megactor_core.training.train import train
    from tests.tiny_models import tiny_config

    talking_video(tmp_path / "videos" / "talk.mp4", dwpose, 16)
    assert cli(models, [tmp_path / "videos"], tmp_path / "dataset", whisper=True) == 0
    start = save_checkpoint(MegActorSigma(tiny_config(audio_dim=16, use_temporal=False)), tmp_path / "s1.safetensors")
    config = TrainConfig.from_dict(dict(stage=2, init=str(start), data=str(tmp_path / "dataset"),
                                        output_dir=str(tmp_path / "run"), steps=2, batch_size=2,
                                        mixed_precision="no", num_workers=0, preview_every=0))
    exported = train(config)
    assert read_checkpoint(exported)[2]["step"] == "2"
