"""Ray stays optional: never imported without --ray, a clear error naming the install when it is
missing, and the cluster sizing (no Ray needed for any of these)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from megactor_core import ray_pool
from megactor_core.curation import __main__ as curation_cli
from megactor_core.ray_pool import RayCluster, _size
from megactor_core.training import preprocess
from megactor_core.video_io import write_video
from tests.tiny_models import face_dwpose_files, tiny_vae

ROOT = Path(__file__).resolve().parents[1]

# Runs both commands' local paths in a fresh Python, then says whether Ray was imported.
LOCAL_RUNS = """
import sys
from megactor_core.curation.__main__ import main as curation
from megactor_core.training.preprocess import main as preprocess
videos, out, vae, detector, pose = sys.argv[1:]
assert curation(["scan", videos, "--out", out + "/manifest.csv", "--dwpose", detector, pose]) == 0
assert preprocess([videos, "--out", out + "/dataset", "--vae", vae, "--dwpose", detector, pose, "--size", "64",
                   "--clip-frames", "8", "--device", "cpu"]) == 0
print("ray imported:", "ray" in sys.modules)
"""


@pytest.fixture(scope="module")
def dwpose_files(tmp_path_factory):
    return face_dwpose_files(tmp_path_factory.mktemp("dwpose"))


def test_local_runs_never_import_ray(dwpose_files, tmp_path):
    write_video(tmp_path / "videos" / "a.mp4", np.full((8, 96, 96, 3), 40, np.uint8), 25)
    tiny_vae().save_pretrained(tmp_path / "vae")
    done = subprocess.run([sys.executable, "-c", LOCAL_RUNS, str(tmp_path / "videos"), str(tmp_path),
                           str(tmp_path / "vae"), *map(str, dwpose_files)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ray imported: False" in done.stdout
    assert (tmp_path / "manifest.csv").is_file() and (tmp_path / "dataset" / "index.json").is_file()


def test_ray_option_without_ray_names_the_install(dwpose_files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ray_pool, "ray_installed", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        curation_cli.main(["scan", str(tmp_path), "--out", str(tmp_path / "m.csv"), "--dwpose",
                           *map(str, dwpose_files), "--ray"])
    assert exit_info.value.code == 2
    assert 'pip install "ray[data]"' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        preprocess.main([str(tmp_path), "--out", str(tmp_path / "d"), "--vae", "v", "--dwpose", "a", "b",
                         "--ray", "auto"])
    assert exit_info.value.code == 2
    assert 'pip install "ray[data]"' in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    with pytest.raises(ImportError, match=r'pip install "ray\[data\]"'):
        next(ray_pool.ray_map(RayCluster(), object, lambda device: (), [()], ordered=True))


@pytest.mark.parametrize("argv, message", [
    (["--gpus-per-worker", "1"], "--gpus-per-worker needs --ray"),
    (["--workers", "2"], "--workers needs --ray"),
])
def test_ray_options_need_ray(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        preprocess.parse_args([str(tmp_path), "--out", str(tmp_path / "d"), "--vae", "v", "--dwpose", "a", "b", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("cluster, resources, expected", [
    (RayCluster(), {"CPU": 16.0}, (16, 0.0)),  # CPU-only: one worker per CPU
    (RayCluster(), {"CPU": 64.0, "GPU": 8.0}, (8, 1.0)),  # GPUs: one worker per GPU
    (RayCluster(gpus_per_worker=0.5), {"CPU": 64.0, "GPU": 8.0}, (16, 0.5)),
    (RayCluster(gpus_per_worker=0), {"CPU": 64.0, "GPU": 8.0}, (64, 0)),  # GPUs left alone
    (RayCluster(workers=3), {"CPU": 2.0}, (3, 0.0)),  # more than fit now: they wait for the autoscaler
])
def test_workers_and_gpus_follow_the_cluster(cluster, resources, expected):
    assert _size(cluster, resources) == expected


def test_negative_workers_are_refused():
    with pytest.raises(ValueError, match="Ray workers must be 0"):
        RayCluster(workers=-1)
