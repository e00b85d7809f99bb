"""The Fréchet distance between two feature sets (FID on Inception features, FVD on I3D features)."""

from __future__ import annotations

import numpy as np
from scipy import linalg

EPS = 1e-6  # pytorch-fid's diagonal offset when the product of covariances has no finite square root


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|² + Tr(S_a + S_b - 2 (S_a S_b)^½)`` of ``[N, D]`` features, as pytorch-fid computes it.

    With more samples than dimensions in both sets this is pytorch-fid's computation: sample
    covariances (``np.cov``), ``scipy.linalg.sqrtm`` of their product, a ``1e-6`` diagonal offset
    when that square root is not finite, and an error when its diagonal is not real to 1e-3. With
    fewer samples the product is singular and ``sqrtm`` is unreliable (and slow for 2048-d), so the
    trace comes exactly from the samples: ``Tr (S_a S_b)^½`` is the nuclear norm of
    ``A Bᵀ / sqrt((n_a - 1)(n_b - 1))`` for the centred feature matrices ``A``, ``B``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError(f"a Fréchet distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    diff = mu_a - mu_b
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if min(len(a), len(b)) > a.shape[1]:
        covmean = linalg.sqrtm(sigma_a @ sigma_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma_a)) * EPS
            covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(f"the covariances' product has a complex square root "
                                 f"(imaginary part {np.abs(covmean.imag).max():.3g})")
            covmean = covmean.real
        trace_covmean = float(np.trace(covmean))
    else:
        cross = (a - mu_a) @ (b - mu_b).T / np.sqrt((len(a) - 1) * (len(b) - 1))
        trace_covmean = float(np.linalg.svd(cross, compute_uv=False).sum())
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_covmean)
