"""SyncNet: the published weight layout, the MFCC recipe, face crops, the offset search and a scan with it."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from megactor_core.curation import Scorers
from megactor_core.curation import __main__ as cli
from megactor_core.curation.metrics import measure_clip
from megactor_core.curation.syncnet import (
    SyncNet,
    _at_25fps,
    _smooth,
    lip_inputs,
    load_syncnet,
    mfcc,
    offset_search,
    sync_scores,
)
from megactor_core.landmarks import DWPose
from tests.synthetic_faces import frontal_face
from tests.test_curation import clip
from tests.tiny_models import face_dwpose_files


def tiny_syncnet(seed: int = 0) -> SyncNet:
    torch.manual_seed(seed)
    return SyncNet(audio_channels=(4, 6, 8, 8, 8, 8), lip_channels=(4, 6, 6, 6, 6, 8), embedding=16).eval()


@pytest.fixture(scope="module")
def syncnet_file(tmp_path_factory):
    """A random full-size network saved as ``syncnet_v2.model`` is: a bare state dict without BN step counters."""
    torch.manual_seed(1)
    net = SyncNet().eval()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(state, path)
    return path, net


def test_layout_is_syncnet_pythons():
    """The keys and shapes of the public release: convs at these Sequential indices, 1024-wide embeddings."""
    shapes = {k: tuple(v.shape) for k, v in SyncNet().state_dict().items() if k.endswith("weight")}
    convs = {k: v for k, v in shapes.items() if len(v) > 2}
    assert convs == {
        "netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.4.weight": (192, 64, 3, 3),
        "netcnnaud.8.weight": (384, 192, 3, 3), "netcnnaud.11.weight": (256, 384, 3, 3),
        "netcnnaud.14.weight": (256, 256, 3, 3), "netcnnaud.18.weight": (512, 256, 5, 4),
        "netcnnlip.0.weight": (96, 3, 5, 7, 7), "netcnnlip.4.weight": (256, 96, 1, 5, 5),
        "netcnnlip.8.weight": (256, 256, 1, 3, 3), "netcnnlip.11.weight": (256, 256, 1, 3, 3),
        "netcnnlip.14.weight": (256, 256, 1, 3, 3), "netcnnlip.18.weight": (512, 256, 1, 6, 6)}
    for head in ("netfcaud", "netfclip"):
        assert (shapes[f"{head}.0.weight"], shapes[f"{head}.1.weight"], shapes[f"{head}.3.weight"]) == \
            ((512, 512), (512,), (1024, 512))


def test_full_size_network_embeds_windows():
    net = SyncNet().eval()
    with torch.no_grad():
        lips = net.forward_lip(torch.rand(2, 3, 5, 224, 224) * 255)
        sound = net.forward_aud(torch.randn(2, 1, 13, 20))
    assert lips.shape == sound.shape == (2, 1024)


@pytest.mark.parametrize("length", [300, 400, 16000, 16123, 48000])
def test_mfcc_matches_python_speech_features(length):
    """The features SyncNet was trained on: python_speech_features.mfcc at its defaults, 100 frames/s."""
    import python_speech_features as psf  # a test dependency (README), the reference implementation

    samples = (np.random.default_rng(length).standard_normal(length) * 3000).astype(np.int16)
    samples[: length // 3] = 0  # silence: the zero-energy path
    expected = psf.mfcc(samples, 16000).T
    ours = mfcc(samples)
    assert ours.shape == expected.shape == (13, max(1, 1 + math.ceil((length - 400) / 160)))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3)


def test_offset_search_recovers_a_planted_shift():
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((60, 32))).float()
    for shift in (-4, 0, 3, 15):
        video = torch.roll(audio, shift, 0) + 0.1 * torch.randn(60, 32)  # video frame i shows audio frame i - shift
        scores = offset_search(video, audio, vshift=15)
        assert scores.offset == shift
        assert scores.distance < 2.0 < scores.confidence
    unrelated = offset_search(torch.randn(60, 32), audio, vshift=15)
    assert unrelated.confidence < 1.0 < unrelated.distance
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        offset_search(audio[:10], audio)


# How many times each input frame appears after syncnet_python's conversion, captured from the real
# ffmpeg CLI (n9.0.2-17-g2a571b6068-20260930, the static build in imageio-ffmpeg 0.8.1): COUNT frames
# of a binary frame-number pattern at RATE, stored losslessly
# (ffmpeg -f rawvideo -pix_fmt gray -framerate RATE -i - -c:v libx264 -qp 0 -pix_fmt yuv420p in.mp4),
# then run_pipeline.py's two commands: ffmpeg -y -i in.mp4 -qscale:v 2 -async 1 -r 25 video.avi and
# ffmpeg -y -i video.avi -qscale:v 2 -threads 1 -f image2 %06d.jpg, and each jpg's pattern read back.
FFMPEG_COPIES = {
    30: (90, "111111111111011111011111011111011111011111011111011111011111011111011111011111011111011111"),
    Fraction(30000, 1001): (300, "111111111111011111011111011111011111011111011111011111011111011111011111011"
                                 "111011111101111101111101111101111101111101111101111101111101111101111101111"
                                 "101111101111101111101111101111101111101111101111101111101111101111101111101"
                                 "111101111101111101111101111101111101111101111101111101111110111110111110111"),
    50: (60, "111101010101010101010101010101010101010101010101010101010101"),
    60: (60, "111010100101001010100101001010100101001010100101001010100101"),
    24: (50, "11111111111211111111111111111111111211111111111111"),
    25: (30, "111111111111111111111111111111"),
    Fraction(25, 2): (12, "222222222222"),
    15: (20, "21221221221221221221"),
}


@pytest.mark.parametrize("rate", list(FFMPEG_COPIES), ids=str)
def test_frames_at_25fps_are_the_ones_ffmpeg_keeps(rate):
    """The frame-rate conversion picks exactly ffmpeg's frames, and as many: it drops a frame only
    once it lags more than 1.1 output frames (30 fps: frame 12 first), not the frame on screen."""
    count, copies = FFMPEG_COPIES[rate]
    assert len(copies) == count
    expected = np.repeat(np.arange(count), [int(c) for c in copies])
    assert _at_25fps(count, float(rate)).tolist() == expected.tolist()


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")  # scipy's note on the 7-frame case
def test_box_smoothing_is_scipy_medfilt():
    """syncnet_python smooths box centres and sizes with scipy.signal.medfilt(kernel_size=13): zeros past the ends."""
    from scipy.signal import medfilt

    rng = np.random.default_rng(0)
    for length in (7, 13, 14, 40):
        values = rng.uniform(50, 150, length)
        np.testing.assert_array_equal(_smooth(values), medfilt(values, kernel_size=13))
    frames, points = face_frames([(128.0, 128.0)] * 6)
    with pytest.raises(ValueError, match="clip too short for SyncNet's box smoothing: 6 frames, needs at least 7"):
        lip_inputs(frames, points)


def reference_scores(net, crops, samples, vshift=15):
    """syncnet_python's evaluation written plainly: every window separately, then its calc_pdist loop."""
    video = torch.from_numpy(crops).permute(3, 0, 1, 2)[None].float()  # [1, 3, T, H, W]
    cc = torch.from_numpy(mfcc(samples * 32768))[None, None]
    last = min(len(crops), len(samples) // 640) - 5
    with torch.no_grad():
        v = torch.cat([net.forward_lip(video[:, :, i:i + 5]) for i in range(last)])
        a = torch.cat([net.forward_aud(cc[:, :, :, 4 * i:4 * i + 20]) for i in range(last)])
    padded = torch.nn.functional.pad(a, (0, 0, vshift, vshift))
    dists = torch.stack([torch.nn.functional.pairwise_distance(v[[i]].repeat(2 * vshift + 1, 1),
                                                               padded[i:i + 2 * vshift + 1]) for i in range(last)], 1)
    mean = dists.mean(1)
    best, index = torch.min(mean, 0)
    return vshift - int(index), float(torch.median(mean) - best), float(best)


def test_sync_scores_match_the_original_evaluation():
    """Batched windows give the scores of the one-window-at-a-time original; 50 fps is read as ffmpeg -r 25 reads it."""
    net = tiny_syncnet()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (40, 224, 224, 3), dtype=np.uint8)
    samples = rng.uniform(-0.5, 0.5, 40 * 640 + 100).astype(np.float32)
    scores = sync_scores(net, crops, samples, fps=25, batch=7)
    assert (scores.offset, scores.confidence, scores.distance) == pytest.approx(reference_scores(net, crops, samples),
                                                                                rel=1e-4, abs=1e-5)
    at_50 = np.repeat(crops, 2, axis=0)
    kept = np.repeat(np.arange(60), [int(c) for c in FFMPEG_COPIES[50][1]])  # ffmpeg -r 25's choice of them
    assert sync_scores(net, at_50[:60], samples, fps=50) == sync_scores(net, at_50[kept], samples, fps=25)
    shorter_audio = sync_scores(net, crops, samples[: 30 * 640], fps=25)  # audio decides the length
    assert (shorter_audio.offset, shorter_audio.confidence) == pytest.approx(
        reference_scores(net, crops[:30], samples[: 30 * 640])[:2], rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="too short"):
        sync_scores(net, crops[:5], samples, fps=25)


def face_frames(centres, size=80.0, frame=256):
    """RGB frames with a red face box and a blue mouth, and their 68 landmarks."""
    frames = np.zeros((len(centres), frame, frame, 3), np.uint8)
    points = np.stack([frontal_face(c, size) for c in centres]).astype(np.float32)
    for image, p in zip(frames, points, strict=True):
        (x0, y0), (x1, y1) = p.min(0).astype(int), p.max(0).astype(int)
        image[y0:y1, x0:x1] = (255, 0, 0)
        (mx0, my0), (mx1, my1) = p[48:68].min(0).astype(int), p[48:68].max(0).astype(int)
        image[my0:my1, mx0:mx1] = (0, 0, 255)
    return frames, points


def test_lip_inputs_are_bgr_face_crops_with_the_mouth_low():
    """The crop geometry worked by hand for this face: landmarks span x 88..168, y 110..164 (mouth
    145..155); raising the top by 20 % gives a box 80 wide around (128, 131.6), half-size s = 40, so
    the crop covers y 91.6..203.6 and x 72..184, drawn at 2x into 224 px."""
    frames, points = face_frames([(128.0, 128.0)] * 20)
    crops = lip_inputs(frames, points)
    assert crops.shape == (20, 224, 224, 3) and crops.dtype == np.uint8
    red = np.nonzero(crops[0, :, :, 2] > 200)  # RGB red is BGR's last channel
    assert (red[0].min(), red[0].max(), red[1].min(), red[1].max()) == pytest.approx((37, 144, 32, 192), abs=2)
    blue_rows = np.nonzero(crops[0, :, 112, 0] > 200)[0]  # the blue mouth, BGR's first channel
    assert (blue_rows.min(), blue_rows.max()) == pytest.approx((107, 126), abs=2)


def test_lip_inputs_smooth_jitter_and_pad_with_grey():
    centres = [(128.0, 128.0)] * 20
    centres[10] = (150.0, 110.0)  # one frame's landmarks jump
    frames, points = face_frames([(128.0, 128.0)] * 20)
    _, jumped = face_frames(centres)
    steady = lip_inputs(frames, points)
    np.testing.assert_array_equal(lip_inputs(frames, jumped)[10], steady[10])  # the median ignores one outlier
    edge_frames, edge_points = face_frames([(30.0, 30.0)] * 20)  # face at the frame's corner
    corner = lip_inputs(edge_frames, edge_points)[0]
    assert (corner[2, 2] == 110).all()  # the crop reaches past the frame: grey as in syncnet_python
    with pytest.raises(ValueError, match="landmarks must be"):
        lip_inputs(frames, points[:5])


def test_load_syncnet_round_trip_and_errors(syncnet_file, tmp_path):
    path, original = syncnet_file
    net = load_syncnet(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    mfcc_window = torch.randn(3, 1, 13, 20)
    assert torch.equal(net.forward_aud(mfcc_window), original.forward_aud(mfcc_window))
    with pytest.raises(FileNotFoundError, match="download_model.sh"):
        load_syncnet(tmp_path / "nowhere.model")
    torch.save(tiny_syncnet().state_dict(), tmp_path / "tiny.model")
    with pytest.raises(ValueError, match=r"netcnnaud.0.weight is \(4, 1, 3, 3\), expected \(64, 1, 3, 3\)"):
        load_syncnet(tmp_path / "tiny.model")
    state = torch.load(path, weights_only=True)
    del state["netfclip.3.bias"]
    torch.save(state, tmp_path / "partial.model")
    with pytest.raises(ValueError, match="missing netfclip.3.bias"):
        load_syncnet(tmp_path / "partial.model")
    (tmp_path / "junk.model").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_syncnet(tmp_path / "junk.model")


@pytest.fixture(scope="module")
def dwpose_files(tmp_path_factory):
    return face_dwpose_files(tmp_path_factory.mktemp("dwpose"))


def test_measure_clip_records_sync_metrics(dwpose_files, tmp_path):
    record = measure_clip(clip(tmp_path / "talk.mp4", frames=30), Scorers(DWPose(*dwpose_files), tiny_syncnet()))
    assert record.problem == ""
    assert math.isfinite(record.sync_c) and record.sync_c >= 0 and record.sync_d > 0
    assert -15 <= record.sync_offset <= 15
    short = measure_clip(clip(tmp_path / "short.mp4", frames=5), Scorers(DWPose(*dwpose_files), tiny_syncnet()))
    assert "lip sync not measured: clip too short" in short.problem and math.isnan(short.sync_c)


def test_cli_scan_with_syncnet(dwpose_files, syncnet_file, tmp_path, capsys):
    from megactor_core.curation import read_manifest

    (tmp_path / "clips").mkdir()
    clip(tmp_path / "clips" / "a.mp4", frames=12)
    out = tmp_path / "manifest.csv"
    args = ["scan", str(tmp_path / "clips"), "--out", str(out), "--dwpose", *map(str, dwpose_files)]
    assert cli.main(args + ["--syncnet", str(syncnet_file[0])]) == 0
    (record,) = read_manifest(out)
    assert record.problem == "" and math.isfinite(record.sync_c) and math.isfinite(record.sync_d)
    capsys.readouterr()
    assert cli.main(args + ["--syncnet", str(tmp_path / "missing.model")]) == 2
    assert "syncnet_python" in capsys.readouterr().err
