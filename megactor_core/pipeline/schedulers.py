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


def steps_problem(name: str, steps: int, *, zero_terminal_snr: bool = False,
                  schedule: dict | None = None) -> str | None:
    """Why ``steps`` steps of scheduler ``name`` on ``schedule`` cannot sample from noise, or None.

    Sampling starts from pure noise, so its first step must lie in the schedule's noisy half.
    diffusers' "leading" (DDIM) and "linspace" (Euler) spacings put a single step at t = 0 (t = 1
    with the SD1.5 release's offset), where the model takes the noise for an almost clean latent
    and hands it back; two steps or more, DPM-Solver++ and trailing spacing start at t >= T/2.
    """
    # The prediction type does not move the timesteps; v only lets make_scheduler accept zero terminal SNR
    # (a model that predicts epsilon is refused there when sampling, with its own message).
    scheduler = make_scheduler(name, prediction_type="v_prediction" if zero_terminal_snr else "epsilon",
                               zero_terminal_snr=zero_terminal_snr, schedule=schedule)
    scheduler.set_timesteps(steps)
    first, last = int(scheduler.timesteps[0]), scheduler.config.num_train_timesteps - 1
    if first >= last / 2:
        return None
    return (f"{steps} step{'s' * (steps > 1)} of the {name!r} scheduler start{'s' * (steps == 1)} at t = {first} of "
            f"0..{last} (diffusers' {scheduler.config.timestep_spacing!r} timestep spacing), where the latent is "
            "almost clean, so the starting noise comes back as noise: use at least 2 steps, or the 'dpmpp' scheduler")
