"""Curation scans and preprocessing on a local Ray: the same manifest, shards and index as the local
path, and the same resume after a run stopped part-way."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read at import: Ray keeps to 127.0.0.1
ray = pytest.importorskip("ray")

from megactor_core.curation import ModelFiles, scan  # noqa: E402
from megactor_core.curation.manifest import Journal  # noqa: E402
from megactor_core.ray_pool import RayCluster  # noqa: E402
from megactor_core.training import preprocess  # noqa: E402
from megactor_core.training.preprocess import PreprocessModels, preprocess_on_ray  # noqa: E402
from megactor_core.video_io import find_videos  # noqa: E402
from tests.test_curation import make_folder  # noqa: E402
from tests.test_preprocess import talking_video  # noqa: E402
from tests.tiny_models import face_dwpose_files, tiny_vae, tiny_whisper_file  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> PreprocessModels:
    folder = tmp_path_factory.mktemp("models")
    tiny_vae().save_pretrained(folder / "vae")
    return PreprocessModels(str(folder / "vae"), tuple(map(str, face_dwpose_files(folder / "dwpose"))),
                            str(tiny_whisper_file(folder / "tiny.pt")))


def stop_after(count: int):
    """A progress callback that stops the run, as a kill would, once ``count`` items are done."""
    def progress(done: int, total: int) -> None:
        if done >= count:
            raise KeyboardInterrupt
    return progress


def test_scan_on_ray_equals_local_and_resumes(models, tmp_path):
    root = make_folder(tmp_path / "clips")  # two good clips, one silent, one unreadable
    files = ModelFiles(*models.dwpose)
    scan(root, tmp_path / "local.csv", files.load())
    expected = (tmp_path / "local.csv").read_bytes()

    scan(root, tmp_path / "ray.csv", files, ray=RayCluster(workers=2))
    assert (tmp_path / "ray.csv").read_bytes() == expected  # problems included, rows in the same order

    out = tmp_path / "resumed.csv"
    with pytest.raises(KeyboardInterrupt):
        scan(root, out, files, ray=RayCluster(workers=2), progress=stop_after(2))
    assert not out.exists() and len(Journal(out).read()) == 2
    seen = []
    scan(root, out, files, ray=RayCluster(workers=1), progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (2, 4) and seen[-1] == (4, 4)  # the journal's clips are not measured again
    assert out.read_bytes() == expected and not Journal(out).path.exists()


def dataset_files(folder) -> dict[str, object]:
    """Each file's bytes, a shard as its members: arrays for ``.npy`` members (compared within float
    rounding: another process may round a sum differently), bytes for the rest."""
    files: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".tar":
            files[path.name] = path.read_bytes()
            continue
        with tarfile.open(path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        files[path.name] = {name: np.load(io.BytesIO(data)) if name.endswith(".npy") else data
                            for name, data in members.items()}
    return files


def assert_same_dataset(found: dict[str, object], expected: dict[str, object]) -> None:
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        if not isinstance(value, dict):
            assert found[name] == value, name
            continue
        assert found[name].keys() == value.keys(), name
        for member, data in value.items():
            if isinstance(data, np.ndarray):
                np.testing.assert_allclose(found[name][member].astype(np.float64), data.astype(np.float64),
                                           rtol=1e-3, atol=1e-6, err_msg=f"{name}/{member}")
            else:
                assert found[name][member] == data, f"{name}/{member}"


def test_preprocess_on_ray_equals_local_and_resumes(models, tmp_path):
    from megactor_core.landmarks import DWPose

    dwpose = DWPose(*models.dwpose)
    for name, frames in (("a", 16), ("b", 8), ("c", 20)):
        talking_video(tmp_path / "videos" / f"{name}.mp4", dwpose, frames)
    talking_video(tmp_path / "videos" / "silent.mp4", dwpose, 8, sound=False)  # skipped: no sound
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")  # skipped: unreadable
    common = ["--vae", models.vae, "--dwpose", *models.dwpose, "--whisper", models.whisper, "--size", str(SIZE),
              "--clip-frames", "8", "--videos-per-shard", "2", "--device", "cpu"]
    assert preprocess.main([str(tmp_path / "videos"), "--out", str(tmp_path / "local"), *common]) == 0
    assert preprocess.main([str(tmp_path / "videos"), "--out", str(tmp_path / "ray"), *common, "--ray",
                            "--workers", "2"]) == 0
    expected = dataset_files(tmp_path / "local")
    assert sorted(expected) == ["index.json", "preprocess.json", "shard-00000.tar", "shard-00001.tar",
                                "shard-00002.tar"]
    assert_same_dataset(dataset_files(tmp_path / "ray"), expected)

    videos = find_videos([tmp_path / "videos"])
    out = tmp_path / "resumed"
    options = dict(size=SIZE, clip_frames=8, videos_per_shard=2)
    with pytest.raises(KeyboardInterrupt):  # stopped during the second shard
        preprocess_on_ray(videos, out, models, RayCluster(workers=2), progress=stop_after(3), **options)
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.tar"]
    summary = preprocess_on_ray(videos, out, models, RayCluster(workers=2), **options)
    assert (summary.shards_kept, summary.shards_written, summary.used, summary.skipped) == (1, 2, 1, 2)
    assert_same_dataset(dataset_files(out), expected)
