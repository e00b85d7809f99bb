"""Our LPIPS, FID Inception and Fréchet distance against the reference packages lpips and pytorch-fid.

    PYTHONPATH=. python -m benchmarks.metrics_vs_reference [--no-write]

Run from the repository root with a Python that has ``lpips``, ``pytorch-fid`` and ``torchvision``;
without them it prints why and exits 0. Nothing is downloaded: LPIPS weighs with lpips' bundled
``alex.pth``; the AlexNet backbone and the FID Inception are torchvision's modules with seeded
random weights (the Inception's BatchNorm statistics from a noisy and a smooth image, so features
have a realistic scale), saved to a temporary folder in their published formats, read by ours and
handed to lpips and to pytorch-fid (in place of its download). Reports the largest absolute
differences of LPIPS distances, of the 2048-d Inception features, and of the Fréchet distance:
against pytorch-fid's ``calculate_frechet_distance`` with more samples than dimensions, and with
fewer (where its ``sqrtm`` of a singular product is biased) against an exact float64 value.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REFERENCES = ("lpips", "pytorch_fid", "torchvision")
Row = tuple[str, str, float]  # check, the reference's values, max abs difference of ours from them


def span(values: torch.Tensor) -> str:
    """The smallest and largest of ``values``, as text."""
    return f"{values.min().item():.4g} .. {values.max().item():.4g}"


def lpips_rows(folder: Path) -> list[Row]:
    """Ours vs ``lpips.LPIPS(net="alex", version="0.1")`` on four kinds of image pairs."""
    import lpips
    import torchvision

    from megactor_core.evaluate.lpips import load_lpips, lpips_per_frame

    torch.manual_seed(0)
    state, backbone = torchvision.models.alexnet().state_dict(), folder / "alexnet-owt-7be5be79.pth"
    torch.save(state, backbone)
    ref = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    # lpips keeps AlexNet's layers under their torchvision indices: slice1.0.weight is features.0.weight
    ref.net.load_state_dict({k: state["features." + k.split(".", 1)[1]] for k in ref.net.state_dict()})
    ours = load_lpips(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", backbone)

    g = torch.Generator().manual_seed(1)
    smooth = F.interpolate(torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, size=(64, 64), mode="bilinear")
    pairs = {"identical": (smooth, smooth.clone()),
             "slightly noisy (σ 0.02)": (smooth, (smooth + 0.02 * torch.randn(smooth.shape, generator=g)).clamp(-1, 1)),
             "very different (noise vs smooth)": (torch.rand(smooth.shape, generator=g) * 2 - 1, smooth)}
    rows = []
    for name, (a, b) in pairs.items():
        theirs = ref(a, b).flatten()
        rows.append((f"LPIPS, 4 pairs 64², {name}", span(theirs), (ours(a, b) - theirs).abs().max().item()))
    frames = (torch.rand(2, 72, 90, 3, generator=g) * 255).round()
    noisy = (frames + torch.randint(-40, 41, frames.shape, generator=g)).clamp(0, 255)
    a, b = frames.to(torch.uint8).numpy(), noisy.to(torch.uint8).numpy()
    theirs = ref(frames.permute(0, 3, 1, 2) / 255, noisy.permute(0, 3, 1, 2) / 255, normalize=True).flatten()
    rows.append(("LPIPS, 2 pairs 72x90 uint8 (`lpips_per_frame`), noisy", span(theirs),
                 (lpips_per_frame(ours, a, b) - theirs).abs().max().item()))
    return rows


def inception_rows(folder: Path) -> list[Row]:
    """Ours vs pytorch-fid's ``InceptionV3`` (2048-d block) on small and large uint8 frames."""
    import pytorch_fid.inception as pfi
    import torchvision

    from megactor_core.evaluate.inception import inception_features, load_inception

    torch.manual_seed(2)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True, num_classes=1008)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_(0, 0.2)
        bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
    net.train()(torch.cat([torch.rand(1, 3, 299, 299),  # a noisy and a smooth image
                           F.interpolate(torch.rand(1, 3, 12, 12), size=(299, 299), mode="bicubic")]) * 2 - 1)
    weights = folder / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}, weights)
    pfi.load_state_dict_from_url = lambda *_, **__: torch.load(weights, weights_only=True)  # its weight download
    ref = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ours = load_inception(weights)

    g = torch.Generator().manual_seed(3)
    smooth = F.interpolate(torch.rand(2, 3, 12, 10, generator=g), size=(360, 320), mode="bicubic").clamp(0, 1)
    rows = []
    for name, images in (("2 noise frames 64x80 (upsampled)", torch.rand(2, 3, 64, 80, generator=g)),
                         ("2 smooth frames 360x320 (downsampled)", smooth)):
        frames = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        theirs = ref(torch.from_numpy(frames).permute(0, 3, 1, 2) / 255)[0].flatten(1)  # its ToTensor's 0..1
        rows.append((f"Inception features, {name}", span(theirs),
                     (inception_features(ours, frames) - theirs).abs().max().item()))
    return rows


def exact_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The distance in float64 with ``Tr (S_a S_b)^½`` from the nonzero eigenvalues of ``S_a S_b``, which are
    those of the small symmetric ``B S_a Bᵀ / (n_b - 1)`` (``B``: ``b`` centred); exact for ``n_b <= D``."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    sigma_a, centred = np.cov(a, rowvar=False), b - b.mean(0)
    eigenvalues = np.linalg.eigvalsh(centred @ sigma_a @ centred.T / (len(b) - 1))
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(sigma_a) + np.trace(np.cov(b, rowvar=False))
                 - 2 * np.sqrt(eigenvalues.clip(0)).sum())


def frechet_rows() -> list[Row]:
    """Ours vs pytorch-fid with many samples, vs the exact value with few (pytorch-fid's shown beside it)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    from megactor_core.evaluate.frechet import frechet_distance

    rng = np.random.default_rng(4)

    def features(n: int, d: int, shift: float = 0.0) -> np.ndarray:
        """Non-negative, correlated float32 features, like pooled ReLU outputs."""
        z = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d)
        return np.maximum(z + shift + 0.5, 0).astype(np.float32)

    def theirs(a: np.ndarray, b: np.ndarray) -> float:  # on calculate_activation_statistics' mean and cov
        return float(calculate_frechet_distance(np.mean(a, axis=0), np.cov(a, rowvar=False),
                                                np.mean(b, axis=0), np.cov(b, rowvar=False)))

    rows = []
    for name, a, b in (("N 500, 400, D 64", features(500, 64), features(400, 64, 0.1)),
                       ("N 3000, 2500, D 256", features(3000, 256), features(2500, 256, 0.05)),
                       ("N 70, 66, D 64 (nearly singular)", features(70, 64), features(66, 64, 0.1))):
        reference = theirs(a, b)
        rows.append((f"Fréchet, many samples: {name}", f"pytorch-fid {reference:.10g}",
                     abs(frechet_distance(a, b) - reference)))
    same = features(30, 512)
    for name, a, b in (("N 40, 30, D 512", features(40, 512), features(30, 512, 0.1)),
                       ("one set twice, N 30, D 512", same, same.copy())):
        exact, biased = exact_frechet(a, b), theirs(a, b)
        rows.append((f"Fréchet, few samples: {name}", f"exact {exact:.10g} (pytorch-fid {biased:.10g}, "
                     f"off by {abs(biased - exact):.2g})", abs(frechet_distance(a, b) - exact)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    missing = [name for name in REFERENCES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not importable here; run with a Python that has lpips, "
              "pytorch-fid and torchvision beside our code (pip install lpips pytorch-fid)")
        return
    from benchmarks.results import machine, write_section

    warnings.filterwarnings("ignore", message=".*(pretrained|weight enum|disp)")  # deprecated arguments they pass
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as folder:
        rows = lpips_rows(Path(folder)) + inception_rows(Path(folder)) + frechet_rows()
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                         for name in ("lpips", "pytorch-fid", "torchvision", "scipy"))
    body = "\n".join([
        "## Metrics vs the reference packages (`python -m benchmarks.metrics_vs_reference`)", "",
        f"Machine: {machine()}; {versions}. Both sides run the same random backbone and Inception weights "
        "(files in the published formats; LPIPS's linear layers are the real bundled `alex.pth`) on the same "
        "inputs, fp32 on CPU.", "",
        "| check | reference values | ours − reference (max abs) |", "| --- | --- | ---: |",
        *(f"| {check} | {values} | {diff:.3g} |" for check, values, diff in rows), "",
        "With many samples pytorch-fid's means of float32 features stay float32 (ours are float64), hence "
        "differences near 1e-8 relative. With fewer samples than dimensions the covariances' product is "
        "singular and pytorch-fid's `sqrtm` is biased (on one set twice it gives a nonzero, possibly negative "
        "distance); ours takes the trace from the samples and is compared with the exact float64 value.",
    ])
    if not args.no_write:
        write_section("metrics_vs_reference", body)
    print(body)


if __name__ == "__main__":
    main()
