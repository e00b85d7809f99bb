"""Curation: metrics per clip, the manifest, resumable parallel scans, summary and selection."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import pytest

from megactor_core.curation import ClipRecord, ModelFiles, Scorers, Thresholds, read_manifest, scan, select
from megactor_core.curation import __main__ as cli
from megactor_core.curation.metrics import face_sizes, is_variable_rate, measure_clip
from megactor_core.landmarks import DWPose
from megactor_core.landmarks.head_pose import rotation_angle
from megactor_core.video_io import find_videos, write_video
from tests.synthetic_faces import landmarks_of, posed_face, rotation
from tests.tiny_models import face_dwpose_files

FPS = 25


@pytest.fixture(scope="module")
def dwpose_files(tmp_path_factory):
    return face_dwpose_files(tmp_path_factory.mktemp("dwpose"))


@pytest.fixture(scope="module")
def scorers(dwpose_files):
    return Scorers(DWPose(*dwpose_files))


def clip(path, frames=30, size=96, sound=True):
    images = np.full((frames, size, size, 3), 40, np.uint8)
    audio = (0.2 * np.sin(np.arange(frames * 16000 // FPS) / 10))[None].astype(np.float32) if sound else None
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, images, FPS, audio=audio, sample_rate=16000 if sound else None)


def variable_rate_clip(path, size=64):
    """Frames at 0, 40, 80, 200, 240 ... ms: one long gap."""
    stamps = [0, 1, 2, 5, 6, 7, 8, 9]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 25)
        for t in stamps:
            frame = av.VideoFrame.from_ndarray(np.zeros((size, size, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_face_size_is_the_smaller_side_of_the_face_box():
    points = np.zeros((2, 68, 2), np.float32)
    points[0, :, 0], points[0, :, 1] = np.linspace(10, 710, 68), np.linspace(0, 650, 68)
    points[1] = points[0] * 0.5
    assert face_sizes(landmarks_of(points)).tolist() == [650.0, 325.0]


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (0, -20, 0), (15, 10, 20), (-35, 5, -10)])
def test_head_rotation_from_landmarks(angles):
    """Landmarks of a head turned by known angles give its total rotation (the angle of R) within 2°."""
    from megactor_core.landmarks import head_angles

    landmarks = landmarks_of(posed_face(*angles)[None], width=512, height=512)
    expected = math.degrees(math.acos(np.clip((np.trace(rotation(*angles)) - 1) / 2, -1, 1)))
    assert rotation_angle(head_angles(landmarks))[0] == pytest.approx(expected, abs=2.0)


def test_a_frontal_face_is_not_read_as_a_head_facing_away():
    """The PnP solver starts from a frontal head, so it never returns the 180° mirror solution."""
    from megactor_core.landmarks import head_angles
    from tests.synthetic_faces import frontal_face

    for size, frame in ((16.0, 96), (100.0, 512), (150.0, 512)):
        landmarks = landmarks_of(frontal_face((frame / 2, frame / 2), size)[None], width=frame, height=frame)
        assert rotation_angle(head_angles(landmarks))[0] < 15


def test_variable_frame_rate_is_detected(tmp_path):
    from megactor_core.video_io import frame_times

    assert not is_variable_rate(frame_times(clip(tmp_path / "even.mp4", frames=10)))
    assert is_variable_rate(frame_times(variable_rate_clip(tmp_path / "vfr.mp4")))


def test_measure_clip_and_its_problems(scorers, tmp_path):
    good = measure_clip(clip(tmp_path / "good.mp4"), scorers)
    assert good.problem == ""  # no SyncNet given: the lip-sync metrics are simply absent
    assert (good.frames, good.width, good.height, good.fps, good.has_audio) == (30, 96, 96, 25.0, True)
    assert good.duration == pytest.approx(1.2)
    assert good.face_size > 10 and good.face_size_min <= good.face_size
    assert 0 <= good.angle_mean <= good.angle_max + 1e-12 and good.angle_max < 90  # a mean may round past its max
    assert math.isnan(good.sync_c)
    silent = measure_clip(clip(tmp_path / "silent.mp4", sound=False), scorers)
    assert silent.problem == "no audio track" and not math.isnan(silent.face_size)
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    broken = measure_clip(tmp_path / "broken.mp4", scorers)
    assert broken.problem.startswith("unreadable") and math.isnan(broken.face_size)
    vfr = measure_clip(variable_rate_clip(tmp_path / "vfr.mp4"), scorers)
    assert vfr.variable_fps and "variable frame rate" in vfr.problem


def test_thresholds_follow_the_paper():
    ok = ClipRecord("a", face_size=700, sync_c=7, sync_d=7, angle_mean=10)
    assert Thresholds().reasons(ok) == []
    bad = ClipRecord("b", face_size=500, sync_c=5, sync_d=9, angle_mean=35)
    assert len(Thresholds().reasons(bad)) == 4
    assert Thresholds(min_face=400, min_sync_c=4, max_sync_d=10, max_angle=40).reasons(bad) == []
    assert Thresholds().reasons(ClipRecord("c", face_size=700, angle_mean=10)) != []  # unmeasured sync fails
    assert Thresholds().reasons(ClipRecord("d", problem="no audio track")) == ["no audio track"]


def make_folder(root):
    clip(root / "hdtf" / "a.mp4")
    clip(root / "hdtf" / "b.mp4", frames=50)
    clip(root / "celebv" / "c.mp4", sound=False)
    (root / "celebv" / "broken.mp4").write_bytes(b"garbage" * 50)
    return root


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_scan_writes_the_manifest_and_resumes(scorers, tmp_path, monkeypatch, suffix):
    root = make_folder(tmp_path / "clips")
    out = tmp_path / f"manifest{suffix}"
    measured, kill = [], [True]
    real = measure_clip

    def counting(path, scorers, source=""):
        measured.append(path)
        if kill[0] and len(measured) == 2:
            kill[0] = False
            raise KeyboardInterrupt  # killed after one clip was recorded
        return real(path, scorers, source)

    monkeypatch.setattr("megactor_core.curation.scanner.measure_clip", counting)
    with pytest.raises(KeyboardInterrupt):
        scan(root, out, scorers)
    assert not out.exists()
    first = measured[0]
    measured.clear()
    records = scan(root, out, scorers)
    assert first not in measured and len(measured) == 3  # the recorded clip is not measured again
    assert [r.path for r in records] == [str(v.path) for v in find_videos([root])]
    assert {r.source for r in records} == {"hdtf", "celebv"}
    again = read_manifest(out)
    assert [(r.path, r.problem, r.frames) for r in again] == [(r.path, r.problem, r.frames) for r in records]
    assert [r.face_size for r in again] == pytest.approx([r.face_size for r in records], nan_ok=True)
    by_name = {r.path.split("/")[-1]: r for r in again}
    assert by_name["broken.mp4"].problem.startswith("unreadable")
    assert by_name["c.mp4"].problem == "no audio track"
    measured.clear()
    scan(root, out, scorers)
    assert measured == []  # everything is in the manifest


def test_parallel_scan_equals_serial(dwpose_files, scorers, tmp_path):
    root = make_folder(tmp_path / "clips")
    serial = scan(root, tmp_path / "serial.csv", scorers)
    parallel = scan(root, tmp_path / "parallel.csv", ModelFiles(*map(str, dwpose_files)), workers=2)
    assert [(r.path, r.problem, r.frames) for r in serial] == [(r.path, r.problem, r.frames) for r in parallel]
    assert [r.face_size for r in serial] == pytest.approx([r.face_size for r in parallel], nan_ok=True)


def test_select_writes_a_list_the_preprocessing_reads(tmp_path):
    records = [ClipRecord(str(tmp_path / "a.mp4"), "x", face_size=700, sync_c=7, sync_d=7, angle_mean=10,
                          duration=3600),
               ClipRecord(str(tmp_path / "b.mp4"), "y", face_size=300, sync_c=7, sync_d=7, angle_mean=10,
                          duration=1800)]
    for r in records:
        clip(__import__("pathlib").Path(r.path), frames=5)
    kept = select(records, Thresholds(), tmp_path / "kept.txt")
    assert [r.path for r in kept] == [records[0].path]
    assert [str(v.path) for v in find_videos([tmp_path / "kept.txt"])] == [records[0].path]


def test_summary_table_has_hours_means_and_kept_share():
    from megactor_core.curation import summary_table

    records = [ClipRecord("a", "hdtf", face_size=700, sync_c=7, sync_d=7, angle_mean=10, duration=3600),
               ClipRecord("b", "hdtf", face_size=300, sync_c=5, sync_d=9, angle_mean=20, duration=3600),
               ClipRecord("c", "vox", problem="unreadable", duration=math.nan)]
    table = summary_table(records, Thresholds()).splitlines()
    assert table[0].split(" | ")[0].strip() == "source"
    hdtf = [c.strip() for c in table[2].split("|")]
    assert hdtf == ["hdtf", "2", "2.00", "500.0", "6.0", "8.0", "15.0", "1.00", "50.0"]
    total = [c.strip() for c in table[-1].split("|")]
    assert total[:3] == ["all", "3", "2.00"] and total[-1] == "50.0"


def test_cli_scan_and_select(dwpose_files, tmp_path, capsys):
    root = make_folder(tmp_path / "clips")
    out = tmp_path / "manifest.csv"
    assert cli.main(["scan", str(root), "--out", str(out), "--dwpose", *map(str, dwpose_files)]) == 0
    printed = capsys.readouterr().out
    assert "hdtf" in printed and "celebv" in printed and "kept %" in printed
    assert cli.main(["select", str(out), "--out", str(tmp_path / "kept.txt")]) == 0
    assert "kept 0 of 4 clips" in capsys.readouterr().out  # no SyncNet: nothing passes the lip-sync bounds
    assert cli.main(["scan", str(root), "--out", str(out), "--dwpose", "missing.onnx", "x.onnx"]) == 2
    assert "yzd-v/DWPose" in capsys.readouterr().err
