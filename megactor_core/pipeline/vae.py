"""The SD VAE from disk, without a model hub: a diffusers folder or a single .safetensors file."""

from __future__ import annotations

from pathlib import Path

# The SD 1.x VAE (sd-vae-ft-mse / -ema, kl-f8): what MegActor-Σ's latents come from.
SD_VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                     block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                     up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512, scaling_factor=0.18215)


def load_sd_vae(path: str | Path):
    """A diffusers ``AutoencoderKL`` (CPU, float32, eval) from a diffusers folder (``config.json``
    + weights, e.g. stabilityai/sd-vae-ft-mse) or one ``.safetensors`` file in the original
    (``vae-ft-mse-840000-ema-pruned.safetensors``, ComfyUI's ``models/vae/``) or diffusers layout."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        return AutoencoderKL.from_pretrained(path, local_files_only=True).eval()
    if not path.is_file():
        raise FileNotFoundError(f"SD VAE not found at {path}: give the sd-vae-ft-mse diffusers folder or its "
                                ".safetensors file (ComfyUI: models/vae/)")
    state = load_file(str(path))
    if not any(k.startswith("encoder.down_blocks.") for k in state):
        state = convert_ldm_vae_checkpoint({k.removeprefix("first_stage_model."): v for k, v in state.items()},
                                           SD_VAE_CONFIG)
    vae = AutoencoderKL(**SD_VAE_CONFIG)
    missing, unexpected = vae.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} is not an SD VAE: {len(missing)} tensors missing (e.g. {missing[:2]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    return vae.eval()
