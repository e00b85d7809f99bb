"""Training masks and the diffusion objective: which cells and tokens they cover, what they compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from megactor_core.landmarks import FaceLandmarks
from megactor_core.pipeline import TRAIN_SCHEDULE
from megactor_core.training.losses import DiffusionObjective
from megactor_core.training.masks import (
    EYES,
    FACE,
    MOUTH,
    SHOWN,
    eq2_attention_mask,
    latent_regions,
    loss_weights,
    patch_tokens,
)
from tests.synthetic_faces import frontal_face


def face_regions() -> torch.Tensor:
    """Region coverage ``[1, 3, 16, 16]`` of a face filling a 128x128 frame."""
    points = frontal_face((64.0, 60.0), 90.0)[None]
    landmarks = FaceLandmarks(points, np.ones((1, 68), np.float32), np.ones(1, bool), 128, 128)
    return torch.from_numpy(latent_regions(landmarks)).float() / 255


def test_latent_regions_cover_the_eyes_mouth_and_face():
    regions = face_regions()[0]
    # frontal_face puts the eyes at y ~ 49, the mouth at y ~ 85 (latent rows 6 and 10).
    assert regions[EYES, 6].max() > 0.5 and regions[EYES, 10].max() == 0
    assert regions[MOUTH, 10].max() > 0.5 and regions[MOUTH, 6].max() == 0
    assert regions[FACE].sum() > regions[EYES].sum() + regions[MOUTH].sum()
    assert regions[:, :, 0].max() == 0 and regions[:, :, -1].max() == 0  # nothing at the left and right edges


@pytest.mark.parametrize(("keep", "audio", "eyes_weight", "mouth_weight"), [
    ("eyes", False, 1, 0),  # visual, eyes only: the mouth is unexplained
    ("mouth", False, 0, 1),
    ("both", False, 1, 1),
    ("eyes", True, 1, 1),  # mixed: audio explains the mouth
    (None, True, 0, 1),  # audio only: the eyes are unexplained
    (None, False, 1, 1),  # no control (unconditional): everything is learned
])
def test_loss_weights_drop_unexplained_face_parts(keep, audio, eyes_weight, mouth_weight):
    regions = face_regions()[:, None]  # [B=1, F=1, 3, h, w]
    weights = loss_weights(regions, torch.tensor([SHOWN[keep]]), torch.tensor([audio]), 0.0)[0, 0, 0]
    eyes, mouth = regions[0, 0, EYES] == 1, regions[0, 0, MOUTH] == 1
    assert eyes.any() and mouth.any()
    assert torch.all(weights[eyes] == eyes_weight) and torch.all(weights[mouth] == mouth_weight)
    outside = regions[0, 0].amax(0) == 0
    assert torch.all(weights[outside] == 1)


def test_eq2_mask_blocks_mouth_queries_from_the_driving_region_only_where_it_applies():
    regions = face_regions()[:, None].expand(2, 1, 3, 16, 16)
    mouth = patch_tokens(regions[:, :, MOUTH], 2) > 0  # [2, 1, 64]
    eyes = patch_tokens(regions[:, :, EYES], 2) > 0
    mask = eq2_attention_mask(mouth, eyes, torch.tensor([True, False]))
    assert mask.shape == (2, 1, 64, 64)
    m, e = mouth[0, 0], eyes[0, 0]
    assert m.any() and e.any() and not (m & e).any()
    blocked = ~mask[0, 0]
    assert torch.equal(blocked, m[:, None] & e[None, :])  # exactly mouth rows x driving-region columns
    assert mask[1].all()  # the second sample's driving frame shows the mouth: no mask
    assert mask.any(-1).all()  # every query keeps keys
    assert eq2_attention_mask(mouth, eyes, torch.tensor([False, False])) is None


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_noising_and_targets_match_diffusers(prediction_type):
    objective = DiffusionObjective(prediction_type)
    scheduler = DDPMScheduler(**TRAIN_SCHEDULE, prediction_type=prediction_type)
    x0, noise = torch.randn(3, 2, 4, 8, 8), torch.randn(3, 2, 4, 8, 8)
    t = torch.tensor([0, 500, 999])
    xt = objective.add_noise(x0, noise, t)
    assert torch.allclose(xt, scheduler.add_noise(x0, noise, t), atol=1e-5)
    expected = {"epsilon": noise, "sample": x0}.get(prediction_type, scheduler.get_velocity(x0, noise, t))
    target = objective.target(x0, noise, t)
    assert torch.allclose(target, expected, atol=1e-5)
    # The exact target of every parametrisation names the same clean latents (t = 999 loses
    # precision in epsilon's division by sqrt(alpha_bar)).
    assert torch.allclose(objective._x0(target, xt, t)[:2], x0[:2], atol=1e-3)


def test_zero_terminal_snr_needs_v_prediction():
    with pytest.raises(ValueError, match="v-prediction"):
        DiffusionObjective("epsilon", zero_terminal_snr=True)
    objective = DiffusionObjective("v_prediction", zero_terminal_snr=True)
    x0, noise = torch.randn(1, 1, 4, 2, 2), torch.randn(1, 1, 4, 2, 2)
    assert torch.allclose(objective.add_noise(x0, noise, torch.tensor([999])), noise, atol=1e-6)


def test_vlb_is_zero_for_the_true_posterior_and_trains_only_the_variance():
    objective = DiffusionObjective("epsilon")
    x0, noise = torch.randn(4, 1, 4, 8, 8), torch.randn(4, 1, 4, 8, 8)
    t = torch.tensor([1, 10, 300, 900])
    xt = objective.add_noise(x0, noise, t)
    weights = torch.ones(4, 1, 1, 8, 8)
    # Exact noise and variance output -1 (the posterior's own variance): the KL vanishes.
    exact = torch.cat([noise, -torch.ones_like(noise)], dim=2)
    assert objective.loss(exact, x0, noise, xt, t, weights)["vlb"].abs() < 1e-4
    output = torch.cat([noise + 0.3 * torch.randn_like(noise), torch.zeros_like(noise)], dim=2).requires_grad_()
    terms = objective.loss(output, x0, noise, xt, t, weights)
    assert terms["vlb"] > 1e-3
    (grad,) = torch.autograd.grad(terms["vlb"], output)
    assert grad[:, :, :4].abs().max() == 0 and grad[:, :, 4:].abs().max() > 0
    at_zero = objective.loss(output, x0, noise, xt, torch.zeros(4, dtype=torch.long), weights)["vlb"]
    assert torch.isfinite(at_zero)


def test_masked_cells_do_not_count():
    objective = DiffusionObjective("epsilon", vlb_weight=1.0)
    x0, noise = torch.randn(1, 1, 4, 4, 4), torch.randn(1, 1, 4, 4, 4)
    t = torch.tensor([200])
    xt = objective.add_noise(x0, noise, t)
    weights = torch.ones(1, 1, 1, 4, 4)
    weights[..., :2, :] = 0
    output = torch.randn(1, 1, 8, 4, 4)
    changed = output.clone()
    changed[..., :2, :] += 5.0  # only in masked cells
    a = objective.loss(output, x0, noise, xt, t, weights)["loss"]
    assert torch.allclose(a, objective.loss(changed, x0, noise, xt, t, weights)["loss"])
    changed[..., 3, 3] += 1.0
    assert not torch.allclose(a, objective.loss(changed, x0, noise, xt, t, weights)["loss"])
    kept = objective.loss(output, x0, noise, xt, t, weights)["mse"]
    expected = ((output[:, :, :4] - noise)[..., 2:, :] ** 2).mean()
    assert torch.allclose(kept, expected)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_min_snr_weighs_the_clean_latents_error_by_min_snr_gamma(prediction_type):
    gamma = 5.0
    objective = DiffusionObjective(prediction_type, snr_gamma=gamma, vlb_weight=0.0)
    x0, noise = torch.randn(4, 1, 4, 8, 8), torch.randn(4, 1, 4, 8, 8)
    t = torch.tensor([5, 150, 400, 800])
    xt = objective.add_noise(x0, noise, t)
    weights = torch.ones(4, 1, 1, 8, 8)
    x0_guess = x0 + 0.2 * torch.randn_like(x0)
    # The output that names x0_guess as the clean latents, in each parametrisation.
    a, s = objective._at("sqrt_ac", t, xt), objective._at("sqrt_one_minus_ac", t, xt)
    implied_noise = (xt - a * x0_guess) / s
    output = {"sample": x0_guess, "epsilon": implied_noise, "v_prediction": a * implied_noise - s * x0_guess}
    per_sample = torch.stack([objective.loss(output[prediction_type][i:i + 1], x0[i:i + 1], noise[i:i + 1],
                                             xt[i:i + 1], t[i:i + 1], weights[i:i + 1])["mse"] for i in range(4)])
    x0_error = ((x0_guess - x0) ** 2).flatten(1).mean(1)
    snr = (a / s).flatten() ** 2
    ratio = per_sample / (snr.clamp(max=gamma) * x0_error)
    assert torch.allclose(ratio, ratio[0].expand(4), rtol=1e-3)  # one shared normalisation
    weight_table = objective._table["mse_weight"]
    assert torch.isclose(weight_table.mean(), torch.tensor(1.0, dtype=weight_table.dtype))
    assert torch.equal(DiffusionObjective(prediction_type)._table["mse_weight"], torch.ones(1000, dtype=torch.float64))
    with pytest.raises(ValueError, match="snr_gamma"):
        DiffusionObjective(prediction_type, snr_gamma=-1.0)
