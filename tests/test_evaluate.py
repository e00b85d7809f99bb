"""Evaluation: each metric on stand-in weights in the published file formats, the CSV and the errors."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import scipy.io.wavfile
import torch
from scipy import linalg

from megactor_core.evaluate import Case, Models, evaluate, find_weights, pair_inputs, plan, prepare_models, write_csv
from megactor_core.evaluate import __main__ as cli
from megactor_core.evaluate.expression import FaceRegressor, align_face, corner_five_points, load_expression
from megactor_core.evaluate.frechet import frechet_distance
from megactor_core.evaluate.fvd import i3d_features, load_i3d
from megactor_core.evaluate.identity import ArcFace, five_points
from megactor_core.evaluate.inception import FidInception, inception_features, load_inception
from megactor_core.evaluate.lpips import load_lpips, lpips_per_frame
from megactor_core.evaluate.motion import motion_metrics
from megactor_core.landmarks import DWPose
from megactor_core.landmarks.face import mean_face
from megactor_core.stand_ins import random_face_regressor
from megactor_core.video_io import write_video
from tests.synthetic_faces import frontal_face, landmarks_of
from tests.tiny_models import face_dwpose_files, save_lpips_files

FPS = 25
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # the I3D stand-in's format


# ---------------------------------------------------------------- stand-in weight files, real formats


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    """A random full-size pt_inception-2015-12-05-6726825d.pth: the state dict with its 1008-class fc, no BN
    step counters."""
    torch.manual_seed(0)
    net = FidInception().eval()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048) * 0.01, torch.zeros(1008)
    path = tmp_path_factory.mktemp("weights") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path, net


class StandInI3D(torch.nn.Module):
    """I3D's call signature and output: [B, 3, 16, 224, 224] in -1..1 -> [B, 400]. Its features are random
    projections of the clip's mean colour per frame and of its frame-to-frame changes, so frame order matters."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.register_buffer("still", torch.randn(3 * 16, 400, generator=g))
        self.register_buffer("moving", torch.randn(3 * 15, 400, generator=g) * 4)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale or resize or not return_features:
            raise ValueError("FVD runs the detector as rescale=False, resize=False, return_features=True")
        if x.shape[1:] != (3, 16, 224, 224) or float(x.min()) < -1.0 or float(x.max()) > 1.0:
            raise ValueError("expected [B, 3, 16, 224, 224] in -1..1")
        colour = x.mean((3, 4))  # [B, 3, 16]
        changes = (x[:, :, 1:] - x[:, :, :-1]).abs().mean((3, 4))
        return colour.flatten(1) @ self.still + changes.flatten(1) @ self.moving


def save_i3d(folder):
    path = folder / "i3d_torchscript.pt"
    torch.jit.script(StandInI3D()).save(str(path))
    return path


def save_arcface(folder):
    """w600k_r50.onnx's signature (input.1 [N, 3, 112, 112] -> 683 [N, 512]); the embedding is a random
    projection of the face's 14x14-pixel cell means, so different faces embed differently."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(3).standard_normal((3 * 8 * 8, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["cells"], kernel_shape=[14, 14], strides=[14, 14]),
         helper.make_node("Flatten", ["cells"], ["flat"]),
         helper.make_node("MatMul", ["flat", "weight"], ["683"])],
        "arcface_stand_in", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [None, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [None, 512])],
        [numpy_helper.from_array(weight, "weight")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "w600k_r50.onnx")
    return folder / "w600k_r50.onnx"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """Every stand-in but SyncNet's and Inception's, by its published name in one folder."""
    folder = tmp_path_factory.mktemp("weights_dir")
    save_lpips_files(folder)
    save_i3d(folder)
    save_arcface(folder)
    face_dwpose_files(folder)
    return folder


# ---------------------------------------------------------------- synthetic videos


def textured(seed: int, frames: int, size=96, motion=0.0) -> np.ndarray:
    """Smooth random colour texture, drifting ``motion`` px per frame (a face stand-in with content)."""
    import cv2

    base = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    big = cv2.resize(base, (size * 2, size * 2), interpolation=cv2.INTER_CUBIC)
    return np.stack([big[int(k * motion):int(k * motion) + size, :size] for k in range(frames)])


# ---------------------------------------------------------------- FID


def pytorch_fid_formula(a, b):
    """pytorch-fid's calculate_frechet_distance written plainly, the reference."""
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("counts", [(40, 50), (7, 9)])
def test_frechet_distance_is_pytorch_fids(counts):
    """Both branches (sqrtm with more samples than dimensions, the exact low-rank trace with fewer) give its value."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((counts[0], 12)) @ rng.standard_normal((12, 12))
    b = rng.standard_normal((counts[1], 12)) * 1.5 + 0.3
    assert frechet_distance(a, b) == pytest.approx(pytorch_fid_formula(a, b), rel=1e-5)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], b)


def test_inception_loads_the_published_layout_and_gives_fid(inception_file, tmp_path):
    path, original = inception_file
    shapes = {k: tuple(v.shape) for k, v in torch.load(path, weights_only=True).items()}
    assert {k: shapes[k] for k in ["Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var",
                                   "Mixed_5b.branch_pool.conv.weight", "Mixed_6e.branch7x7dbl_5.conv.weight",
                                   "Mixed_7c.branch3x3dbl_3b.conv.weight", "Mixed_7c.branch_pool.conv.weight"]} == {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1), "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1)}
    assert 23.5e6 < sum(v.numel() for k, v in torch.load(path, weights_only=True).items()) < 24.0e6  # the 95.6 MB file
    net = load_inception(path)
    frames = np.concatenate([textured(seed, 3, size=48) for seed in range(2)])
    features = inception_features(net, frames, batch=4)
    assert features.shape == (6, 2048)
    torch.testing.assert_close(features, original(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255))
    other = inception_features(net, np.concatenate([textured(seed, 3, size=48) for seed in (5, 6)]))
    same = frechet_distance(features.numpy(), features.numpy())
    assert abs(same) < 1e-6 * frechet_distance(features.numpy(), other.numpy())
    with pytest.raises(FileNotFoundError, match="pytorch-fid/releases"):
        load_inception(tmp_path / "missing.pth")
    for name in ("a", "b"):  # through the evaluation: FID in the total row, ~0 for identical frames
        write_video(tmp_path / f"{name}.mp4", textured(ord(name), 3, size=48), FPS)
    rows = evaluate([Case(n, tmp_path / f"{n}.mp4", tmp_path / f"{n}.mp4") for n in ("a", "b")], Models(inception=net))
    assert "fid" not in rows[0].values and rows[2].values["fid"] == pytest.approx(0, abs=1e-6 * frechet_distance(
        features.numpy(), other.numpy()))
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"is \(1,\), expected \(32, 3, 3, 3\)"):
        load_inception(tmp_path / "wrong.pth")


# ---------------------------------------------------------------- LPIPS


def test_lpips_loads_both_files_and_measures_distance(weights_dir, tmp_path):
    net = load_lpips(weights_dir / "alex.pth", weights_dir / "alexnet-owt-7be5be79.pth")
    keys = torch.load(weights_dir / "alex.pth", weights_only=True)
    assert {k: tuple(v.shape) for k, v in keys.items()} == {
        "lin0.model.1.weight": (1, 64, 1, 1), "lin1.model.1.weight": (1, 192, 1, 1),
        "lin2.model.1.weight": (1, 384, 1, 1), "lin3.model.1.weight": (1, 256, 1, 1),
        "lin4.model.1.weight": (1, 256, 1, 1)}
    frames = textured(0, 2, size=64)
    noise = np.random.default_rng(0).normal(0, 1, frames.shape)
    slightly, much = (np.clip(frames + s * noise, 0, 255).astype(np.uint8) for s in (8, 60))
    same = lpips_per_frame(net, frames, frames)
    assert torch.all(same == 0)
    near, far = lpips_per_frame(net, frames, slightly), lpips_per_frame(net, frames, much)
    assert torch.all(near > 0) and torch.all(far > near)
    torch.testing.assert_close(lpips_per_frame(net, much, frames), far)
    with pytest.raises(FileNotFoundError, match="PerceptualSimilarity"):
        load_lpips(tmp_path / "alex.pth", weights_dir / "alexnet-owt-7be5be79.pth")
    with pytest.raises(ValueError, match="missing lin0.model.1.weight"):
        load_lpips(weights_dir / "alexnet-owt-7be5be79.pth", weights_dir / "alexnet-owt-7be5be79.pth")


# ---------------------------------------------------------------- FVD


def test_fvd_rises_when_frames_are_shuffled(weights_dir, tmp_path):
    detector = load_i3d(weights_dir / "i3d_torchscript.pt")
    real = np.concatenate([textured(seed, 48, size=72, motion=1.0) for seed in range(3)])
    noisy = np.clip(real + np.random.default_rng(0).normal(0, 2, real.shape), 0, 255).astype(np.uint8)
    shuffled = noisy[np.random.default_rng(1).permutation(len(noisy))]
    features = {name: i3d_features(detector, v[:, :, :64]).numpy()  # 72x64: shorter side to 224, centre crop
                for name, v in {"real": real, "noisy": noisy, "shuffled": shuffled}.items()}
    assert features["real"].shape == (9, 400)
    assert frechet_distance(features["real"], features["real"]) == pytest.approx(0, abs=1e-3)
    assert frechet_distance(features["shuffled"], features["real"]) > 5 * frechet_distance(features["noisy"],
                                                                                         features["real"])
    assert i3d_features(detector, real[:15]).shape == (0, 400)  # no full 16-frame clip
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could not be read as the FVD I3D"):
        load_i3d(tmp_path / "junk.pt")


# ---------------------------------------------------------------- lip sync


class LoudnessSyncNet(torch.nn.Module):
    """A SyncNet whose embeddings are the 5 frames' brightness and the 5 frames' MFCC log energy, each
    standardised: they match where the picture brightens as the sound gets louder."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # sync_scores asks the parameters for the device

    @staticmethod
    def _standard(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(1, keepdim=True)
        return x / (x.std(1, keepdim=True) + 1e-3)

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        return self._standard(frames.mean((1, 3, 4)))

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self._standard(mfcc[:, 0, 0].reshape(-1, 5, 4).mean(-1))


def loud_video(path, loudness: np.ndarray, shift: int = 0):
    """Grey frames as bright as the sound ``shift`` frames earlier is loud (a tone of amplitude e^(3u))."""
    frames = np.repeat((60 + 150 * loudness)[:, None, None, None], 96 * 96 * 3, 1).reshape(-1, 96, 96, 3)
    amplitude = np.repeat(0.01 * np.exp(3 * np.roll(loudness, -shift)), 640)
    tone = (amplitude * np.sin(np.arange(len(amplitude)) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    write_video(path, frames.astype(np.uint8), FPS, audio=tone[None], sample_rate=16000)
    return tone


def test_sync_finds_an_audio_shift_of_five_frames(weights_dir, tmp_path):
    loudness = np.random.default_rng(0).uniform(0, 1, 50)
    tone = loud_video(tmp_path / "talk.mp4", loudness)
    delayed = np.concatenate([tone[-5 * 640:], tone[:-5 * 640]])  # the sound comes 5 frames late
    scipy.io.wavfile.write(tmp_path / "late.wav", 16000, (delayed * 32767).astype(np.int16))
    models = Models(dwpose=DWPose(weights_dir / "yolox_l.onnx", weights_dir / "dw-ll_ucoco_384.onnx"),
                    syncnet=LoudnessSyncNet())
    talk = tmp_path / "talk.mp4"
    in_sync, late, _ = evaluate([Case("talk", talk, talk), Case("late", talk, talk, audio=tmp_path / "late.wav")],
                                models)
    assert in_sync.problem == late.problem == ""
    assert in_sync.values["sync_offset"] == 0 and late.values["sync_offset"] == -5
    assert late.values["sync_c"] < in_sync.values["sync_c"] - 0.1
    assert late.values["sync_d"] > in_sync.values["sync_d"]
    assert in_sync.values["pose_error"] == 0 and math.isnan(in_sync.values["eyes_corr"])  # a still stand-in face


# ---------------------------------------------------------------- E-FID


def face_3d() -> np.ndarray:
    """[68, 3] a standard 3D face stand-in: the unit frontal face with y up and a rounded depth."""
    xy = mean_face() * [1.0, -1.0]
    return np.concatenate([xy, 0.3 - (xy ** 2).sum(1, keepdims=True)], 1)


def save_deep3d_files(folder):
    """A random epoch_20.pth as Deep3DFaceRecon_pytorch saves it (the network under net_recon, beside its
    optimizer's and scheduler's states and without BN step counters) and a similarity_Lm3D_all.mat."""
    import scipy.io

    net = random_face_regressor(seed=4)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    checkpoint = {"net_recon": state, "opt_00": optimizer.state_dict(),
                  "sched_00": torch.optim.lr_scheduler.StepLR(optimizer, 10).state_dict()}
    torch.save(checkpoint, folder / "epoch_20.pth")
    scipy.io.savemat(folder / "similarity_Lm3D_all.mat", {"lm": face_3d()})
    return folder / "epoch_20.pth", folder / "similarity_Lm3D_all.mat"


def test_the_regressor_is_resnet50_with_seven_heads(tmp_path):
    net = FaceRegressor()
    # torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in its 1000-class fc
    assert sum(p.numel() for p in net.backbone.parameters()) == 25_557_032 - 2_049_000
    assert net(torch.rand(2, 3, 224, 224)).shape == (2, 257)
    checkpoint, template = save_deep3d_files(tmp_path)
    regressor = load_expression(checkpoint, template)
    np.testing.assert_allclose(regressor.template, corner_five_points(face_3d()))
    torch.save({"net_recon": {k: v for k, v in torch.load(checkpoint)["net_recon"].items() if "layer4" not in k}},
               tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"short\.pth is not Deep3DFaceRecon_pytorch.*missing backbone\.layer4"):
        load_expression(tmp_path / "short.pth", template)
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth has no 'net_recon' entry: it should be Deep3DFaceRecon"):
        load_expression(tmp_path / "other.pth", template)
    import scipy.io

    scipy.io.savemat(tmp_path / "five.mat", {"lm": np.zeros((5, 3))})
    with pytest.raises(ValueError, match=r"five\.mat holds 'lm' of shape \(5, 3\), expected 68x3"):
        load_expression(checkpoint, tmp_path / "five.mat")
    with pytest.raises(FileNotFoundError, match=r"absent\.mat not found: .*similarity_Lm3D_all\.mat"):
        load_expression(checkpoint, tmp_path / "absent.mat")


def test_alignment_puts_the_standard_face_at_scale_102_in_the_centre():
    import cv2

    # An off-centre face 120 px per unit near the top of a 640x360 frame, seen from the front.
    k, centre, height = 120.0, np.array([470.0, 100.0]), 360
    shape = face_3d()
    points = centre + k * shape[:, :2] * [1.0, -1.0]
    frame = np.full((height, 640, 3), 60, np.uint8)
    five = corner_five_points(points)
    for x, y in five:
        cv2.circle(frame, (round(x), round(y)), 4, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    crop = align_face(frame, points, corner_five_points(shape))
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # The standard face's point (X, Y) lands at 112 + 102 (X, -Y): y flips, and the frame's pixel
    # row y counts from the top, Deep3DFaceRecon's y-up landmarks from height - 1, one pixel (at
    # this scale 102 / 120 of a crop pixel) above.
    expected = 112 + 102 * corner_five_points(shape)[:, :2] * [1.0, -1.0] - [0.0, 102 / k]
    bright = crop[..., 0].astype(float) - 60
    ys, xs = np.mgrid[:224, :224]
    for ex, ey in expected:
        near = ((xs - ex) ** 2 + (ys - ey) ** 2 < 8 ** 2) & (bright > 0)
        centroid = np.array([(xs * bright)[near].sum(), (ys * bright)[near].sum()]) / bright[near].sum()
        np.testing.assert_allclose(centroid, [ex, ey], atol=1.0)
    assert crop[:20].max() == 0  # above the frame: black
    assert (crop[40:] == 60).mean() > 0.9  # inside it: the frame


def test_efid_compares_expression_distributions(tmp_path):
    save_deep3d_files(tmp_path)
    face_dwpose_files(tmp_path)
    models, skipped = prepare_models(tmp_path, {}, ["efid"])
    assert models.metrics() == ["efid", "motion"] and skipped == []
    person, stranger = textured(1, 8, size=96, motion=0.5), textured(2, 8, size=96, motion=0.5)
    for name, frames in {"person": person, "shuffled": person[::-1], "stranger": stranger}.items():
        write_video(tmp_path / f"{name}.mp4", frames, FPS)
    person_file = tmp_path / "person.mp4"

    def efid(name: str) -> float:
        rows = evaluate([Case(name, tmp_path / f"{name}.mp4", person_file)], models)
        assert math.isnan(rows[0].values.get("efid", math.nan)) and rows[1].problem == ""
        return rows[1].values["efid"]

    same, shuffled, stranger = efid("person"), efid("shuffled"), efid("stranger")
    assert abs(same) < 1e-6 and stranger > 0.1
    assert abs(shuffled) < stranger / 100  # frames, not clips: the order does not matter (up to the codec)
    with pytest.raises(FileNotFoundError, match=r"epoch_20\.pth not found in .*Deep3DFaceRecon_pytorch"):
        (tmp_path / "epoch_20.pth").unlink()
        prepare_models(tmp_path, {}, ["efid"])


# ---------------------------------------------------------------- identity


def test_a_different_identity_scores_lower(weights_dir, tmp_path):
    import cv2

    arcface = ArcFace(weights_dir / "w600k_r50.onnx")
    dwpose = DWPose(weights_dir / "yolox_l.onnx", weights_dir / "dw-ll_ucoco_384.onnx")
    person, stranger = textured(1, 20, size=128, motion=0.2), textured(2, 20, size=128, motion=0.2)
    for name, frames in {"person": person, "stranger": stranger}.items():
        write_video(tmp_path / f"{name}.mp4", frames, FPS)
    cv2.imwrite(str(tmp_path / "portrait.png"), cv2.cvtColor(person[0], cv2.COLOR_RGB2BGR))
    rows = evaluate([Case(name, tmp_path / f"{name}.mp4", tmp_path / "person.mp4", reference=tmp_path / "portrait.png")
                     for name in ("person", "stranger")], Models(dwpose=dwpose, arcface=arcface))
    same, other = rows[0].values["csim"], rows[1].values["csim"]
    assert 0.95 < same <= 1.0 + 1e-6 and other < same - 0.1
    assert rows[2].values["csim"] == pytest.approx((same + other) / 2)
    with pytest.raises(FileNotFoundError, match="buffalo_l"):
        ArcFace(tmp_path / "w600k_r50.onnx")
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ValueError, match=r"notes\.onnx is not an ONNX model onnxruntime can open \(ArcFace"):
        ArcFace(tmp_path / "notes.onnx")
    with pytest.raises(ValueError, match=r"dw-ll_ucoco_384\.onnx takes \d+x\d+ images, not 112x112 faces.*buffalo_l"):
        ArcFace(weights_dir / "dw-ll_ucoco_384.onnx")


def test_five_points_are_insightfaces_from_the_68():
    points = frontal_face((100.0, 100.0), 80.0)
    eyes, nose, mouth = five_points(points)[:2], five_points(points)[2], five_points(points)[3:]
    np.testing.assert_allclose(eyes, [points[36:42].mean(0), points[42:48].mean(0)])
    np.testing.assert_allclose(nose, points[30])
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]  # as seen: left before right, like the template


# ---------------------------------------------------------------- landmark motion


def test_motion_metrics_follow_the_driver():
    rng = np.random.default_rng(0)
    base = np.repeat(frontal_face()[None], 30, 0)
    driver = base.copy()
    opening = rng.uniform(0, 10, 30)
    driver[:, 66, 1] += opening  # the lower inner lip drops
    driver[:, [37, 38, 43, 44], 1] -= opening[:, None] / 5  # the upper lids rise
    follows = motion_metrics(landmarks_of(driver), landmarks_of(driver))
    assert follows == {"pose_error": 0.0, "eyes_corr": pytest.approx(1.0), "mouth_corr": pytest.approx(1.0)}
    opposite = driver.copy()
    opposite[:, 66, 1] = base[:, 66, 1] + opening[::-1]
    assert motion_metrics(landmarks_of(opposite), landmarks_of(driver))["mouth_corr"] < 0.5


# ---------------------------------------------------------------- files, CLI, CSV


def test_weights_are_found_by_name_and_missing_ones_named(weights_dir, tmp_path):
    files = find_weights(weights_dir, {})
    assert set(files) == {"lpips", "alexnet", "i3d", "arcface", "yolox", "dwpose"}
    chosen, skipped = plan(files, None, weights_dir)
    assert chosen == ["fvd", "lpips", "csim", "motion"]
    assert any("skipped sync: needs syncnet_v2.model" in line for line in skipped)
    assert any("skipped fid: needs pt_inception-2015-12-05-6726825d.pth" in line for line in skipped)
    assert any(line.startswith("skipped efid: needs epoch_20.pth (--deep3d PATH") and "similarity_Lm3D_all.mat" in line
               for line in skipped)
    with pytest.raises(FileNotFoundError, match=r"pt_inception-2015-12-05-6726825d.pth not found in .*put it at "
                                                r".*pt_inception-2015-12-05-6726825d.pth or pass --inception PATH"):
        plan(files, ["fid"], weights_dir)
    with pytest.raises(FileNotFoundError, match=r"elsewhere.pt not found: .*dropbox"):
        find_weights(None, {"i3d": tmp_path / "elsewhere.pt"})
    with pytest.raises(ValueError, match="unknown metrics"):
        plan(files, ["psnr"], weights_dir)


def test_inputs_are_matched_by_name(tmp_path):
    for folder in ("gen", "real"):
        for name in ("a", "b"):
            (tmp_path / folder).mkdir(exist_ok=True)
            write_video(tmp_path / folder / f"{name}.mp4", textured(0, 2, size=32), FPS)
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a.png").write_bytes(b"")
    cases = pair_inputs(tmp_path / "gen", tmp_path / "real")
    assert [(c.name, c.generated.name, c.real.name) for c in cases] == [("a", "a.mp4", "a.mp4"),
                                                                         ("b", "b.mp4", "b.mp4")]
    with pytest.raises(FileNotFoundError, match="no reference image named b"):
        pair_inputs(tmp_path / "gen", tmp_path / "real", reference=tmp_path / "refs")
    (tmp_path / "real" / "b.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"no real video of the same name .*\['b'\]"):
        pair_inputs(tmp_path / "gen", tmp_path / "real")
    with pytest.raises(ValueError, match="both be video files or both folders"):
        pair_inputs(tmp_path / "gen" / "a.mp4", tmp_path / "real")


def test_cli_writes_one_row_per_video_and_a_total(weights_dir, tmp_path, capsys):
    for name, seed in (("a", 0), ("b", 1)):
        frames = textured(seed, 32, size=64, motion=0.5)
        write_video(tmp_path / "real" / f"{name}.mp4", frames, FPS)
        write_video(tmp_path / "gen" / f"{name}.mp4", np.clip(frames.astype(int) + 20, 0, 255).astype(np.uint8), FPS)
    out = tmp_path / "out" / "metrics.csv"
    args = [str(tmp_path / "gen"), "--real", str(tmp_path / "real"), "--out", str(out), "--weights", str(weights_dir)]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "skipped sync: needs syncnet_v2.model" in captured.err and "wrote" in captured.out
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["video"] for r in rows] == ["a", "b", "TOTAL"]
    assert list(rows[0]) == ["video", "frames", "fvd", "lpips", "csim", "pose_error", "eyes_corr", "mouth_corr",
                             "problem"]
    assert rows[0]["fvd"] == "" and float(rows[2]["fvd"]) > 0  # a distribution metric: the total row only
    lpips = [float(r["lpips"]) for r in rows]
    assert lpips[2] == pytest.approx((lpips[0] + lpips[1]) / 2, rel=1e-4) and min(lpips) > 0
    assert rows[2]["frames"] == "64"
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.csv"]  # no temporary file left

    (tmp_path / "gen" / "b.mp4").write_bytes(b"broken")  # a failure half way writes nothing
    out.write_text("old")
    assert cli.main(args) == 2
    assert out.read_text() == "old" and sorted(p.name for p in out.parent.iterdir()) == ["metrics.csv"]
    assert cli.main(args + ["--metrics", "sync"]) == 2
    assert "syncnet_v2.model not found" in capsys.readouterr().err


def test_csv_cells_are_empty_when_not_measured(tmp_path):
    from megactor_core.evaluate import Row

    write_csv([Row("a", 3, "no face", {"lpips": float("nan")}), Row("TOTAL", 3, "", {"lpips": 0.25})],
              tmp_path / "m.csv", ["lpips"])
    assert (tmp_path / "m.csv").read_text().splitlines() == ["video,frames,lpips,problem", "a,3,,no face",
                                                              "TOTAL,3,0.25,"]
