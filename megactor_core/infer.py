"""Animate a portrait from the command line.

    python -m megactor_core.infer --checkpoint megactor.safetensors --vae sd-vae-ft-mse \\
        --reference portrait.png [--audio speech.wav --whisper tiny.pt] [--driving video.mp4] --out out.mp4

``--checkpoint`` is a DiT checkpoint of this project or the official SD1.5 release
(``megactor-sigma.ckpt``, ``sd15_empty_str_embedding.pt`` beside it; ``--release-settings`` samples
as its own script does). Audio features are cut the way the model reads them.

Audio only: the mouth follows the speech. A driving video only: the face follows it. Both: with
DWPose files (``--dwpose``) the driving frames are face-dropped to the eyes (``--keep``) so the
mouth follows the audio. The mp4 carries the audio (the --audio file, else the driving video's)
and is written atomically: an interrupted run leaves no file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from .dtypes import DTYPES, parse_dtype
from .pipeline import SCHEDULERS, DiffusersVAE, SamplerSettings, release_settings, sample_video
from .pipeline.sampler import TOKEN_PIXELS
from .pipeline.vae import load_sd_vae
from .progress import progress_bar


def load_reference(path: str, size: int) -> torch.Tensor:
    """The portrait, centre-cropped to a square and resized to ``size`` (a multiple of 16): ``[H, W, 3]``."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"--reference {path} is not a readable image")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    side = min(h, w)
    image = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image).float() / 255


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SamplerSettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="MegActor-Σ .safetensors checkpoint, or the official release's megactor-sigma.ckpt")
    p.add_argument("--vae", required=True, help="SD VAE: sd-vae-ft-mse diffusers folder or .safetensors file")
    p.add_argument("--reference", required=True, help="the portrait image")
    p.add_argument("--out", required=True, help="the mp4 to write")
    p.add_argument("--audio", help="speech (wav, mp3, m4a, flac or a video's audio)")
    p.add_argument("--whisper", help="Whisper tiny.pt or Hugging Face folder (needed with --audio)")
    p.add_argument("--driving", help="a driving video of any face")
    p.add_argument("--dwpose", nargs=2, metavar=("YOLOX", "POSE"),
                   help="yolox_l.onnx and dw-ll_ucoco_384.onnx: face-drop the driving frames (and allow --alpha)")
    p.add_argument("--keep", choices=("eyes", "mouth", "both"), help="face-drop region (default: eyes with "
                                                                       "--audio, both without)")
    p.add_argument("--alpha", type=float, default=1.0, help="head-motion amplitude α (needs --dwpose)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate without a driving video (default 25)")
    p.add_argument("--frames", type=int, help="frame count (default: the driving video's, else the audio's)")
    p.add_argument("--size", type=int, default=512, help="square output size, a multiple of 16 (default 512)")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--scheduler", choices=sorted(SCHEDULERS), default=defaults.scheduler)
    p.add_argument("--zero-terminal-snr", action="store_true", help="for models trained with v-prediction")
    p.add_argument("--guidance-scale", type=float, help=f"default {defaults.guidance_scale}, or "
                                                         f"{release_settings().guidance_scale} with --release-settings")
    p.add_argument("--release-settings", action="store_true",
                   help="the official release's sampling: shifting windows without overlap, initial latents from "
                        "the reference, an unconditional branch without the reference, guidance 2")
    p.add_argument("--audio-scale", type=float, default=defaults.audio_scale, help="λ of Eq.4")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--window", type=int, default=defaults.window)
    p.add_argument("--overlap", type=int, default=defaults.overlap)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="default: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--offload", action=argparse.BooleanOptionalAction,
                   help="keep each network on the CPU except while it runs (default: on with CUDA)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the denoiser's blocks (faster steps after a slow first one)")
    args = p.parse_args(argv)
    if args.audio and not args.whisper:
        p.error("--audio needs --whisper")
    if not args.audio and not args.driving:
        p.error("give --audio, --driving or both")
    if args.size % TOKEN_PIXELS:
        p.error(f"--size must be a multiple of {TOKEN_PIXELS}")
    if args.alpha != 1.0 and not args.dwpose:
        p.error("--alpha needs --dwpose (the landmarks give the head motion)")
    return args


def prepare_driving(args, frames: np.ndarray) -> torch.Tensor:
    """Driving frames as the model takes them: α-scaled and face-dropped when DWPose is given."""
    if not args.dwpose:
        return torch.from_numpy(frames).float() / 255
    from .landmarks import DWPose, amplify_motion, detect_landmarks, face_drop

    landmarks, _ = detect_landmarks(DWPose(*args.dwpose), frames)
    floats = frames.astype(np.float32) / 255
    if args.alpha != 1.0:
        floats, landmarks = amplify_motion(floats, landmarks, args.alpha)
    keep = args.keep or ("eyes" if args.audio else "both")
    return torch.from_numpy(face_drop(floats, landmarks, keep))


def run(args: argparse.Namespace) -> Path:
    from .audio import encode_audio, load_whisper_encoder
    from .models import load_model
    from .video_io import read_audio, read_video, write_video

    device = torch.device(args.device)
    dtype = parse_dtype(args.dtype) if args.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
    offload = device.type == "cuda" if args.offload is None else args.offload
    model = load_model(args.checkpoint, device="cpu" if offload else device, dtype=dtype)
    reference = load_reference(args.reference, args.size)
    driving, fps, sound, rate = None, args.fps, None, None
    if args.driving:
        video = read_video(args.driving, max_frames=args.frames)
        driving, fps, sound, rate = prepare_driving(args, video.frames), video.fps, video.audio, video.sample_rate
    frames = args.frames or (None if driving is None else driving.shape[0])
    audio = None
    if args.audio:
        sound, rate = read_audio(args.audio)
        whisper = load_whisper_encoder(args.whisper).to(device)
        audio = encode_audio(whisper, torch.from_numpy(sound), rate, fps, frames=frames,
                             style=model.config.audio_style)
        del whisper
    model.to(device)
    if args.compile:
        model.compile_blocks()
    codec = DiffusersVAE(load_sd_vae(args.vae).to(dtype=dtype), device=device, offload=offload)
    chosen = dict(steps=args.steps, scheduler=args.scheduler, zero_terminal_snr=args.zero_terminal_snr,
                  audio_scale=args.audio_scale, seed=args.seed, window=args.window)
    if args.guidance_scale is not None:
        chosen["guidance_scale"] = args.guidance_scale
    if args.release_settings:
        settings = release_settings(**chosen)
    else:
        settings = SamplerSettings(**chosen, overlap=min(args.overlap, args.window - 1))
    with progress_bar("denoising", "window") as progress:

        latents = sample_video(model, codec, reference, settings, audio=audio, driving=driving, frames=frames,
                               device=device, progress=progress)
    if offload:  # the denoiser's memory goes to the VAE decoder
        model.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    images = (codec.decode(latents).numpy() * 255).round().astype(np.uint8)
    return write_video(args.out, images, fps, audio=sound, sample_rate=rate)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
