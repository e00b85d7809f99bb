"""The training objective: PixArt-α's masked noise (or v) MSE plus its learned-variance term.

The variance term is IDDPM's variational bound: the KL between the true posterior
``q(x_{t-1} | x_t, x_0)`` and the model's ``p(x_{t-1} | x_t)``, whose mean is built from the
model's own (detached) noise prediction so the term trains only the variance channels; at
``t = 0`` it is the discretised Gaussian likelihood of ``x_0``. Both terms are averaged with the
same per-cell loss weights.
"""

from __future__ import annotations

import math

import torch

from ..pipeline.schedulers import TRAIN_SCHEDULE


class DiffusionObjective:
    """Noising, targets and loss of the model's schedule (PixArt-α's linear betas, optionally
    rescaled to zero terminal SNR) for a model that predicts ``prediction_type``."""

    def __init__(self, prediction_type: str = "epsilon", *, zero_terminal_snr: bool = False,
                 vlb_weight: float = 1.0, snr_gamma: float = 0.0) -> None:
        """``snr_gamma`` > 0 weighs each timestep's MSE by Min-SNR-γ (Hang et al. 2023): as a loss on the
        clean latents, ``min(SNR, γ)``, so noisy steps count less and nearly clean ones (where the
        details are drawn) more; the weights are divided by their mean over the timesteps, so the loss
        keeps its scale and gradient clipping its meaning."""
        from diffusers import DDPMScheduler

        if snr_gamma < 0:
            raise ValueError(f"snr_gamma must be >= 0 (0: every timestep weighs the same), got {snr_gamma}")
        if zero_terminal_snr and prediction_type != "v_prediction":
            raise ValueError("zero_terminal_snr needs a v-prediction model (prediction_type 'v_prediction'); "
                             f"this one predicts {prediction_type!r}")
        betas = DDPMScheduler(**TRAIN_SCHEDULE, rescale_betas_zero_snr=zero_terminal_snr).betas.double()
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        previous = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
        posterior_variance = betas * (1 - previous) / (1 - alphas_cumprod)
        self.prediction_type = prediction_type
        self.vlb_weight = vlb_weight
        self.num_timesteps = len(betas)
        self._table = {
            "sqrt_ac": alphas_cumprod.sqrt(),
            "sqrt_one_minus_ac": (1 - alphas_cumprod).sqrt(),
            "log_beta": betas.log(),
            # The posterior variance is 0 at t = 0: IDDPM uses the t = 1 value there.
            "posterior_log_var": torch.cat([posterior_variance[1:2], posterior_variance[1:]]).log(),
            "mean_coef_x0": betas * previous.sqrt() / (1 - alphas_cumprod),
            "mean_coef_xt": (1 - previous) * (1 - betas).sqrt() / (1 - alphas_cumprod),
            "mse_weight": _min_snr_weights(alphas_cumprod, prediction_type, snr_gamma),
        }

    def _at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Table ``name`` at timesteps ``t`` ``[B]``, shaped to broadcast over ``like`` ``[B, ...]``."""
        values = self._table[name].to(t.device)[t].to(like.dtype)
        return values.reshape(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._at("sqrt_ac", t, x0) * x0 + self._at("sqrt_one_minus_ac", t, x0) * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return x0
        return self._at("sqrt_ac", t, x0) * noise - self._at("sqrt_one_minus_ac", t, x0) * x0

    def _x0(self, prediction: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self._at("sqrt_ac", t, xt), self._at("sqrt_one_minus_ac", t, xt)
        if self.prediction_type == "epsilon":
            return (xt - s * prediction) / a
        if self.prediction_type == "sample":
            return prediction
        return a * xt - s * prediction

    def loss(self, output: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, xt: torch.Tensor,
             t: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "mse", "vlb"}`` for model ``output`` ``[B, F, C or 2C, h, w]`` on latents
        ``x0`` ``[B, F, C, h, w]``; ``weights`` ``[B, F, 1, h, w]`` weigh every latent cell."""
        channels = x0.shape[2]
        output = output.float()
        prediction = output[:, :, :channels]
        weights = weights.expand_as(x0)
        total = weights.sum().clamp_min(1e-8)
        squared = (prediction - self.target(x0, noise, t)) ** 2
        mse = (weights * self._at("mse_weight", t, x0) * squared).sum() / total
        terms = {"mse": mse}
        if output.shape[2] == 2 * channels and self.vlb_weight:
            vlb = self._vlb(prediction.detach(), output[:, :, channels:], x0, xt, t)
            terms["vlb"] = (weights * vlb).sum() / total
        terms["loss"] = mse + self.vlb_weight * terms.get("vlb", 0.0)
        return terms

    def _vlb(self, prediction: torch.Tensor, variance: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
        """Per-element variational bound in bits (KL for t > 0, decoder likelihood at t = 0)."""
        coef_x0, coef_xt = self._at("mean_coef_x0", t, xt), self._at("mean_coef_xt", t, xt)
        true_mean = coef_x0 * x0 + coef_xt * xt
        true_log_var = self._at("posterior_log_var", t, xt)
        model_mean = coef_x0 * self._x0(prediction, xt, t) + coef_xt * xt
        fraction = (variance + 1) / 2  # the model interpolates between the two bounds of the variance
        model_log_var = fraction * self._at("log_beta", t, xt) + (1 - fraction) * true_log_var
        kl = 0.5 * (-1 + model_log_var - true_log_var + (true_log_var - model_log_var).exp()
                    + (true_mean - model_mean) ** 2 * (-model_log_var).exp())
        nll = -_discretised_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)
        first = (t == 0).reshape(-1, *([1] * (xt.ndim - 1)))
        return torch.where(first, nll, kl) / math.log(2.0)


def _min_snr_weights(alphas_cumprod: torch.Tensor, prediction_type: str, gamma: float) -> torch.Tensor:
    """Per-timestep weights of the MSE on ``prediction_type``'s target that make it Min-SNR-γ's loss
    on the clean latents, ``min(SNR, γ)`` (ε: divided by SNR, v: by SNR + 1), normalised to mean 1;
    all ones when ``gamma`` is 0."""
    if not gamma:
        return torch.ones_like(alphas_cumprod)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    on_x0 = snr.clamp(max=gamma)
    weights = {"sample": on_x0, "epsilon": on_x0 / snr, "v_prediction": on_x0 / (snr + 1)}[prediction_type]
    return weights / weights.mean()


def _discretised_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
                                         ) -> torch.Tensor:
    """Log-likelihood of ``x`` in -1..1 under a Gaussian discretised to 256 bins (IDDPM)."""
    centred = x - mean
    inv_std = (-log_scale).exp()
    cdf_plus = _normal_cdf(inv_std * (centred + 1 / 255))
    cdf_minus = _normal_cdf(inv_std * (centred - 1 / 255))
    log_cdf_plus = cdf_plus.clamp_min(1e-12).log()
    log_one_minus_cdf_minus = (1 - cdf_minus).clamp_min(1e-12).log()
    log_delta = (cdf_plus - cdf_minus).clamp_min(1e-12).log()
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, log_delta))


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))
