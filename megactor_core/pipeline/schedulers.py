"""Diffusion schedules: the one MegActor-Σ trains with and the samplers that run it."""

from __future__ import annotations

from ..models.config import PIXART_SCHEDULE as TRAIN_SCHEDULE

# Names users choose -> diffusers classes (imported when used, so importing us stays light).
SCHEDULERS = {"ddim": "DDIMScheduler", "dpmpp": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler"}


def make_scheduler(name: str, *, prediction_type: str = "epsilon", zero_terminal_snr: bool = False,
                   schedule: dict | None = None):
    """A fresh diffusers scheduler for a model that predicts ``prediction_type`` on ``schedule``
    (its ``noise_schedule``; default PixArt-α's, :data:`TRAIN_SCHEDULE`).

    ``zero_terminal_snr`` rescales the betas so the last timestep is pure noise and spaces
    timesteps "trailing" (Lin et al. 2023), as the official MegActor-Σ training config does. At
    zero SNR an epsilon prediction says nothing about the image, so it needs a v-prediction
    model trained that way.
    """
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}")
    if zero_terminal_snr and prediction_type != "v_prediction":
        raise ValueError(f"zero terminal SNR needs a model that predicts v (prediction_type 'v_prediction'); "
                         f"this one predicts {prediction_type!r}")
    options = dict(schedule or TRAIN_SCHEDULE, prediction_type=prediction_type)
    final_alpha_one = options.pop("set_alpha_to_one", False)  # a DDIM option
    if zero_terminal_snr:
        options.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    if name == "ddim":
        options.update(clip_sample=False, set_alpha_to_one=final_alpha_one)
    import diffusers

    return getattr(diffusers, SCHEDULERS[name])(**options)
