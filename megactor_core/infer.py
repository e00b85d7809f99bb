"""Animate a portrait from the command line.

    python -m megactor_core.infer --checkpoint megactor.safetensors --vae sd-vae-ft-mse \\
        --reference photo.jpg --dwpose yolox_l.onnx dw-ll_ucoco_384.onnx \\
        [--audio speech.wav --whisper tiny.pt] [--driving video.mp4] --out out.mp4

``--checkpoint`` is a DiT checkpoint of this project or the official SD1.5 release
(``megactor-sigma.ckpt``, ``sd15_empty_str_embedding.pt`` beside it; ``--release-settings`` samples
as its own script does, driving face aligned to the portrait's). Audio features are cut the way
the model reads them.

Any photo: the face is found with DWPose, a square around it (``--face-scale`` face sizes) is
animated and pasted back, so the video has the photo's size (``--no-crop``: the photo's centre
square, and DWPose is optional). The video runs at the model's frame rate;
a driving video at any rate (also variable) is resampled to it by its frame times. Lengths
need not match: the video is as long as the longer control (``--frames`` to choose), driving
frames that run out are extended (``--extend``), audio that runs out is silence or ends the video
(``--audio-end shortest``).

Audio only: the mouth follows the speech. A driving video only: the face follows it. Both: the
driving frames are face-dropped to the eyes (``--keep``) so the mouth follows the audio. The mp4
carries the audio (the --audio file, else the driving video's) and is written atomically: an
interrupted run (Ctrl-C too) leaves no file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .cli import run_command
from .dtypes import DTYPES, parse_dtype
from .landmarks.crop import FaceCrop, crop_frames, face_box, paste_back, paste_mask
from .landmarks.face import FaceLandmarks
from .landmarks.face_drop import KEEP_CHOICES
from .landmarks.mouth_attention import MouthAttention
from .pipeline import (
    AUDIO_ENDS,
    EXTEND_POLICIES,
    SCHEDULERS,
    DiffusersVAE,
    SamplerSettings,
    decode_video,
    release_settings,
    resample_indices,
    sample_video,
)
from .pipeline.sampler import TOKEN_PIXELS
from .pipeline.vae import load_sd_vae
from .progress import progress_bar


@dataclass
class Reference:
    """The portrait as the model takes it, and how to put the result back into the photo."""

    image: torch.Tensor  # [size, size, 3] in 0..1
    photo: np.ndarray  # uint8 [H, W, 3] RGB, as read
    landmarks: FaceLandmarks | None  # of the face in ``image``, when DWPose was given
    crop: FaceCrop | None  # None with --no-crop


def read_photo(path: str) -> np.ndarray:
    """The photo as uint8 RGB ``[H, W, 3]``."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"--reference {path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def centre_square(photo: np.ndarray, size: int) -> np.ndarray:
    """The photo's centre square resized to ``size`` (``--no-crop``)."""
    h, w = photo.shape[:2]
    side = min(h, w)
    square = photo[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def find_face(dwpose, frames: np.ndarray, what: str) -> FaceLandmarks:
    """One face through ``frames`` (uint8), or an error that names the input without one."""
    from .landmarks import detect_landmarks

    try:
        return detect_landmarks(dwpose, frames)[0]
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def prepare_reference(args, dwpose) -> Reference:
    photo = read_photo(args.reference)
    if args.no_crop:
        image = centre_square(photo, args.size)
        landmarks = None if dwpose is None else find_face(dwpose, image[None], f"--reference {args.reference}")
        return Reference(torch.from_numpy(image).float() / 255, photo, landmarks, None)
    found = find_face(dwpose, photo[None], f"--reference {args.reference}")
    crop = face_box(found, args.face_scale, args.size)
    image, landmarks = crop_frames(photo[None], found, crop)
    return Reference(torch.from_numpy(image[0]).float() / 255, photo, landmarks, crop)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SamplerSettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="MegActor-Σ .safetensors checkpoint, or the official release's megactor-sigma.ckpt")
    p.add_argument("--vae", required=True, help="SD VAE: sd-vae-ft-mse diffusers folder or .safetensors file")
    p.add_argument("--reference", required=True, help="the portrait photo (any size; the face need not be centred)")
    p.add_argument("--out", required=True, help="the mp4 to write")
    p.add_argument("--audio", help="speech (wav, mp3, m4a, flac or a video's audio)")
    p.add_argument("--whisper", help="Whisper tiny.pt or Hugging Face folder (needed with --audio)")
    p.add_argument("--driving", help="a driving video of any face, at any frame rate")
    p.add_argument("--dwpose", nargs=2, metavar=("YOLOX", "POSE"),
                   help="yolox_l.onnx and dw-ll_ucoco_384.onnx: find the faces (crop the photo and the driving "
                        "video around them, face-drop, --alpha)")
    p.add_argument("--no-crop", action="store_true",
                   help="animate the photo's centre square and output it, instead of cropping around the face and "
                        "pasting back")
    p.add_argument("--face-scale", type=float, default=2.0,
                   help="side of the square around the face, in face sizes (default 2.0: the training crop)")
    p.add_argument("--feather", type=float, default=0.1,
                   help="paste-back mask's soft edge, as a fraction of the crop's side (default 0.1)")
    p.add_argument("--keep", choices=KEEP_CHOICES, help="face-drop region (default: eyes with "
                                                                       "--audio, both without)")
    p.add_argument("--alpha", type=float, default=1.0, help="head-motion amplitude α (needs --dwpose)")
    p.add_argument("--frames", type=int, help="frame count (default: the longer control's)")
    p.add_argument("--extend", choices=EXTEND_POLICIES, default=defaults.extend,
                   help="driving frames shorter than the video: pingpong (default), loop, hold or error")
    p.add_argument("--audio-end", choices=AUDIO_ENDS, default=defaults.audio_end,
                   help="audio shorter than the video: silence (default) or shortest (the video ends with it)")
    p.add_argument("--size", type=int, default=512, help="square size the model runs at, a multiple of 16 "
                                                         "(default 512)")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--scheduler", choices=sorted(SCHEDULERS), default=defaults.scheduler)
    p.add_argument("--zero-terminal-snr", action="store_true", help="for models trained with v-prediction")
    p.add_argument("--guidance-scale", type=float, help=f"default {defaults.guidance_scale}, or "
                                                         f"{release_settings().guidance_scale} with --release-settings")
    p.add_argument("--release-settings", action="store_true",
                   help="the official release's sampling (shifting windows without overlap, initial latents from "
                        "the reference, an unconditional branch without the reference, guidance 2) and driving "
                        "frames (its face-drop rectangles, moved onto the portrait's face)")
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
    if args.size <= 0 or args.size % TOKEN_PIXELS:
        p.error(f"--size must be a positive multiple of {TOKEN_PIXELS}")
    for name in ("steps", "window", "frames"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.face_scale <= 0 or not 0 < args.feather <= 0.5:
        p.error("--face-scale must be positive and --feather in (0, 0.5]")
    if args.alpha != 1.0 and not args.dwpose:
        p.error("--alpha needs --dwpose (the landmarks give the head motion)")
    if not args.dwpose and not args.no_crop:
        p.error("--dwpose YOLOX POSE is needed to find the face in --reference (or give --no-crop to animate the "
                "photo's centre square)")
    return args


def prepare_driving(args, video, fps: float, dwpose, reference: Reference
                    ) -> tuple[torch.Tensor, MouthAttention | None]:
    """Driving frames as the model takes them: at its frame rate; with DWPose cropped around the
    face like the portrait, α-scaled and face-dropped (the release's way with --release-settings);
    and, where they hide the mouth, its Eq.2 regions."""
    from .landmarks import amplify_motion, face_drop, release_face_drop

    frames = video.frames[resample_indices(video.frame_times(), fps)]
    if dwpose is None:
        return torch.from_numpy(frames).float() / 255, None
    landmarks = find_face(dwpose, frames, f"--driving {args.driving}")
    frames, landmarks = crop_frames(frames, landmarks, face_box(landmarks, args.face_scale, args.size))
    floats = frames.astype(np.float32) / 255
    if args.alpha != 1.0:
        floats, landmarks = amplify_motion(floats, landmarks, args.alpha)
    keep = args.keep or ("eyes" if args.audio else "both")
    if args.release_settings:
        return torch.from_numpy(release_face_drop(floats, landmarks, keep, reference.landmarks)), None
    return torch.from_numpy(face_drop(floats, landmarks, keep)), MouthAttention.for_face_drop(landmarks, keep)


def run(args: argparse.Namespace) -> Path:
    from .audio import encode_audio, load_whisper_encoder
    from .landmarks import DWPose
    from .models import MegActorSigma, load_model
    from .video_io import read_audio, read_video, write_video

    chosen = dict(steps=args.steps, scheduler=args.scheduler, zero_terminal_snr=args.zero_terminal_snr,
                  audio_scale=args.audio_scale, seed=args.seed, window=args.window, extend=args.extend,
                  audio_end=args.audio_end)
    if args.guidance_scale is not None:
        chosen["guidance_scale"] = args.guidance_scale
    if args.release_settings:
        settings = release_settings(**chosen)
    else:
        settings = SamplerSettings(**chosen, overlap=min(args.overlap, args.window - 1))
    device = torch.device(args.device)
    dtype = parse_dtype(args.dtype) if args.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
    offload = device.type == "cuda" if args.offload is None else args.offload
    model = load_model(args.checkpoint, device="cpu" if offload else device, dtype=dtype)
    settings.check(model.config.noise_schedule)  # before the videos, Whisper and the VAE
    fps = model.config.fps
    dwpose = DWPose(*args.dwpose) if args.dwpose else None
    reference = prepare_reference(args, dwpose)
    driving, mouth, sound, rate = None, None, None, None
    if args.driving:
        video = read_video(args.driving)
        driving, mouth = prepare_driving(args, video, fps, dwpose, reference)
        sound, rate = video.audio, video.sample_rate
    audio = None
    if args.audio:
        sound, rate = read_audio(args.audio)
        whisper = load_whisper_encoder(args.whisper).to(device)
        audio = encode_audio(whisper, torch.from_numpy(sound), rate, fps, style=model.config.audio_style)
        del whisper
    model.to(device)
    if args.compile:
        model.compile_blocks()
    codec = DiffusersVAE(load_sd_vae(args.vae).to(dtype=dtype), device=device, offload=offload)
    with progress_bar("denoising", "window") as progress:

        latents = sample_video(model, codec, reference.image, settings, audio=audio, driving=driving,
                               mouth_attention=mouth if isinstance(model, MegActorSigma) else None,
                               frames=args.frames, device=device, progress=progress)
    if offload:  # the denoiser's memory goes to the VAE decoder
        model.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    with progress_bar("decoding", "frame") as progress:

        images = (decode_video(codec, latents, progress=progress).numpy() * 255).round().astype(np.uint8)
    if reference.crop is not None:
        images = paste_back(reference.photo, images, reference.crop, paste_mask(reference.landmarks, args.feather))
    return write_video(args.out, images, fps, audio=sound, sample_rate=rate)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(lambda: f"wrote {run(args)}", interrupted="interrupted; no video written")


if __name__ == "__main__":
    sys.exit(main())
