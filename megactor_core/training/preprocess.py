"""Talking-head videos -> the training dataset: face-centred clips with latents, landmarks, regions and audio.

    python -m megactor_core.training.preprocess /data/videos --out datasets/talking_heads \\
        --vae sd-vae-ft-mse --dwpose yolox_l.onnx dw-ll_ucoco_384.onnx [--whisper tiny.pt] [--ray [ADDRESS]]

Each video gets one square crop around its face for all of its frames (so head motion stays in
the picture), resized to ``--size`` and cut into clips of ``--clip-frames`` consecutive frames.
Shard ``k`` holds the clips of videos ``k*n`` to ``k*n + n - 1`` of the sorted video list
(``n = --videos-per-shard``). Shards are written atomically and a rerun skips the ones that
exist, so running the same command again resumes an interrupted run. Videos that cannot be read,
show no face, are shorter than one clip or (with ``--whisper``) have no sound are skipped with a
warning. The dataset format is described in :mod:`megactor_core.training.shards`.

With ``--ray`` the videos are turned into clips on a Ray cluster (``pip install "ray[data]"``),
each worker loading the models once; this process still writes every shard and the index, so
the dataset and resuming are those of a local run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from ..atomic import atomic_write
from ..audio import AudioFeatures
from ..cli import run_command
from ..dtypes import DTYPES, parse_dtype
from ..landmarks import FaceLandmarks
from ..landmarks.crop import crop_frames, face_box
from ..pipeline.codec import LatentCodec
from ..pipeline.timeline import resample_indices
from ..progress import Progress, progress_bar
from ..ray_pool import RayCluster, add_ray_arguments, ray_cluster, ray_map
from ..video_io import VIDEO_SUFFIXES, SourceVideo, find_videos, read_video
from .masks import latent_regions
from .shards import INDEX_NAME, SHARD_PATTERN, Clip, Member, clip_members, write_index, write_members

log = logging.getLogger(__name__)

SETTINGS_NAME = "preprocess.json"
SIZE_MULTIPLE = 16  # the DiT's token: 8 px per latent cell x patch 2
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]+")

Landmarker = Callable[[np.ndarray], FaceLandmarks]  # uint8 frames [N, H, W, 3] -> one face's landmarks


class AudioEncoder(Protocol):
    """A video's sound ``[channels, samples]`` -> per-frame features for ``frames`` frames at ``fps``
    (``functools.partial(encode_audio, whisper)`` is one)."""

    def __call__(self, waveform: torch.Tensor, sample_rate: int, fps: float, *, frames: int) -> AudioFeatures: ...


@dataclass
class PreprocessSummary:
    """What one run did."""

    out: Path
    videos: int = 0  # in the video list
    used: int = 0  # read in this run and cut into clips
    skipped: int = 0  # read in this run and left out, each with a logged warning
    clips: int = 0  # written in this run
    shards_written: int = 0
    shards_kept: int = 0  # complete from an earlier run: left as they were, their videos not read

    @property
    def index(self) -> Path:
        return self.out / INDEX_NAME

    def __str__(self) -> str:
        return (f"{self.used} of {self.videos} videos used, {self.skipped} skipped, {self.clips} clips in "
                f"{self.shards_written} new shards; {self.shards_kept} shards of earlier runs kept; wrote {self.index}")


@dataclass
class VideoClips:
    """What one video gives: its clips as tar members (encoded where the clips are made, so a Ray
    worker, not the writer, does the JPEG work), or why it is left out."""

    clips: list[list[Member]]
    skipped: str = ""  # the reason, when the video gives no clips


# The work of one run on the videos at these positions of the list: their results in that order.
MakeClips = Callable[[list[int]], Generator[VideoClips, None, None]]


@dataclass
class _CroppedVideo:
    """A video ready to cut into clips."""

    source: SourceVideo
    fps: float
    frames: np.ndarray  # uint8 [N, size, size, 3]
    landmarks: FaceLandmarks  # in pixels of ``frames``
    audio: AudioFeatures | None


def check_options(size: int, clip_frames: int, videos_per_shard: int, face_scale: float, fps: float | None = None
                  ) -> None:
    """A clear error for options that cannot make a dataset."""
    if size <= 0 or size % SIZE_MULTIPLE:
        raise ValueError(f"size must be a positive multiple of {SIZE_MULTIPLE} (the model's token size), got {size}")
    if clip_frames < 1 or videos_per_shard < 1:
        raise ValueError(f"clip frames and videos per shard must be at least 1, got {clip_frames} and "
                         f"{videos_per_shard}")
    if face_scale <= 0:
        raise ValueError(f"face scale must be positive, got {face_scale}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive (or None to keep each video's rate), got {fps}")


def clip_key(video: SourceVideo, position: int, clip: int) -> str:
    """``<position in the video list>-<file stem, sanitised>-<clip number>``: unique even for
    videos with the same name in different folders."""
    stem = _UNSAFE_KEY_CHARACTERS.sub("_", Path(video.source).stem)
    return f"{position:06d}-{stem}-{clip:04d}"


def preprocess_videos(
    videos: Sequence[SourceVideo],
    out: str | os.PathLike,
    *,
    landmarker: Landmarker,
    codec: LatentCodec,
    audio_encoder: AudioEncoder | None = None,
    size: int = 512,
    clip_frames: int = 48,
    videos_per_shard: int = 16,
    face_scale: float = 2.0,
    fps: float | None = 25.0,
    progress: Progress | None = None,
) -> PreprocessSummary:
    """Write the shards of ``videos`` (from :func:`find_videos`) that ``out`` lacks, then its index.

    ``landmarker`` finds one face in full frames, ``codec`` gives the latents and
    ``audio_encoder`` (optional) the audio features, for a dataset with sound. Videos are resampled
    to ``fps`` by their frame times (the rate the model will generate at; None keeps each video's
    own). The options and
    the video list are kept in ``out/preprocess.json``; a folder made with others is refused,
    since a shard's videos follow from both. ``progress(done, total)`` counts videos.
    """
    maker = _ClipMaker(landmarker, codec, audio_encoder, size, clip_frames, face_scale, fps)
    return write_dataset(videos, out, lambda todo: (maker(videos[p], p) for p in todo), audio=audio_encoder is not None,
                         size=size, clip_frames=clip_frames, videos_per_shard=videos_per_shard, face_scale=face_scale,
                         fps=fps, progress=progress)


def preprocess_on_ray(videos: Sequence[SourceVideo], out: str | os.PathLike, models: PreprocessModels,
                      cluster: RayCluster, *, size: int = 512, clip_frames: int = 48, videos_per_shard: int = 16,
                      face_scale: float = 2.0, fps: float | None = 25.0,
                      progress: Progress | None = None) -> PreprocessSummary:
    """:func:`preprocess_videos` with the videos turned into clips on a Ray cluster, each worker
    loading ``models`` (files at the same path on every node) once; this process writes the shards."""
    options = dict(size=size, clip_frames=clip_frames, face_scale=face_scale, fps=fps)

    def make_clips(todo: list[int]) -> Generator[VideoClips, None, None]:
        yield from ray_map(cluster, VideoWorker, lambda device: (replace(models, device=device), options),
                           [(videos[p], p) for p in todo], ordered=True)

    return write_dataset(videos, out, make_clips, audio=models.whisper is not None, progress=progress,
                         videos_per_shard=videos_per_shard, **options)


def write_dataset(videos: Sequence[SourceVideo], out: str | os.PathLike, make_clips: MakeClips, *, audio: bool,
                  size: int, clip_frames: int, videos_per_shard: int, face_scale: float, fps: float | None,
                  progress: Progress | None) -> PreprocessSummary:
    """Write the shards ``out`` lacks from ``make_clips``' results for their videos, then the index;
    the options (those ``make_clips`` makes clips with) and the video list are kept in
    ``out/preprocess.json`` and a folder made with others is refused."""
    check_options(size, clip_frames, videos_per_shard, face_scale, fps)
    out = Path(out)
    options = dict(size=size, clip_frames=clip_frames, videos_per_shard=videos_per_shard, face_scale=face_scale,
                   audio=audio, fps=fps)
    _claim_folder(out, options, videos)
    summary = PreprocessSummary(out, videos=len(videos))
    shards = [(out / SHARD_PATTERN.format(number), range(first, min(first + videos_per_shard, len(videos))))
              for number, first in enumerate(range(0, len(videos), videos_per_shard))]
    missing = [(shard, positions) for shard, positions in shards if not shard.is_file()]
    with closing(make_clips([p for _, positions in missing for p in positions])) as results:
        for shard, positions in shards:
            if (shard, positions) not in missing:
                summary.shards_kept += 1
                if progress is not None:
                    progress(positions.stop, len(videos))
                continue
            # The members are written as they come, so memory holds about one video's clips.
            write_members(shard, _shard_members(videos, positions, results, summary, progress))
            summary.shards_written += 1
    write_index(out)
    return summary


def _shard_members(videos: Sequence[SourceVideo], positions: range, results: Iterator[VideoClips],
                   summary: PreprocessSummary, progress: Progress | None) -> Iterator[Member]:
    """The clips of the videos at ``positions``, taken in order from ``results``; skipped videos are logged."""
    for position in positions:
        result = next(results)
        if result.skipped:
            log.warning("skipped %s: %s", videos[position].path, result.skipped)
            summary.skipped += 1
        else:
            summary.used += 1
            summary.clips += len(result.clips)
            for members in result.clips:
                yield from members
        if progress is not None:
            progress(position + 1, len(videos))


def _claim_folder(out: Path, options: dict, videos: Sequence[SourceVideo]) -> None:
    """Record the options and video list in ``out``, or refuse a folder made with others."""
    path = out / SETTINGS_NAME
    listed = [str(video.path) for video in videos]
    if not path.is_file():
        if any(out.glob("shard-*.tar")):
            raise ValueError(f"{out} holds shards but no {SETTINGS_NAME}, so it was not made by this preprocessing; "
                             "use a new --out folder")
        with atomic_write(path) as tmp, open(tmp, "w") as f:
            json.dump({"options": options, "videos": listed}, f, indent=1)
        return
    made = json.loads(path.read_text())
    changed = [f"{name} {made['options'].get(name)!r} (now {value!r})" for name, value in options.items()
               if made["options"].get(name) != value]
    if changed:
        raise ValueError(f"{out} was preprocessed with other options: {', '.join(changed)}. Rerun with the same "
                         "options to continue it, or use a new --out folder")
    if made["videos"] != listed:
        added, missing = sorted(set(listed) - set(made["videos"])), sorted(set(made["videos"]) - set(listed))
        raise ValueError(f"{out} was preprocessed from other videos ({len(added)} new, e.g. {added[:2]}; "
                         f"{len(missing)} gone, e.g. {missing[:2]}); each shard holds fixed videos of the sorted "
                         "list, so rerun with the same inputs to continue it, or use a new --out folder")


@dataclass
class _ClipMaker:
    """Videos -> clips, with the models and options of one run."""

    landmarker: Landmarker
    codec: LatentCodec
    audio_encoder: AudioEncoder | None
    size: int
    clip_frames: int
    face_scale: float
    fps: float | None

    def __call__(self, video: SourceVideo, position: int) -> VideoClips:
        """The clips of ``video`` (at ``position`` of the list), or why it cannot be used."""
        try:
            cropped = self.prepare(video)
        except ValueError as exc:
            return VideoClips([], str(exc))
        return VideoClips([clip_members(clip) for clip in self.clips(cropped, position)])

    def prepare(self, video: SourceVideo) -> _CroppedVideo:
        """Read, find the face, crop and encode the audio; a ValueError says why the video cannot be
        used. Only the cropped frames are kept, so the full-size ones are freed on return."""
        decoded = read_video(video.path)
        fps = decoded.fps if self.fps is None else self.fps
        if self.fps is not None:
            decoded.frames = decoded.frames[resample_indices(decoded.frame_times(), fps)]
        n = len(decoded.frames)
        if n < self.clip_frames:
            raise ValueError(f"{n} frames, fewer than one clip of {self.clip_frames}")
        if self.audio_encoder is not None and decoded.audio is None:
            raise ValueError("no audio track; a dataset with audio features (--whisper) needs sound in every video")
        landmarks = self.landmarker(decoded.frames)
        crop = face_box(landmarks, self.face_scale, self.size, keep_inside=True)
        frames, landmarks = crop_frames(decoded.frames, landmarks, crop)
        audio = None
        if self.audio_encoder is not None:
            audio = self.audio_encoder(torch.from_numpy(decoded.audio), decoded.sample_rate, fps, frames=n)
        return _CroppedVideo(video, fps, frames, landmarks, audio)

    def clips(self, video: _CroppedVideo, position: int) -> Iterator[Clip]:
        """Consecutive clips of ``clip_frames`` frames; a shorter rest at the end is dropped."""
        audio, marks = video.audio, video.landmarks
        for number, start in enumerate(range(0, len(video.frames) - self.clip_frames + 1, self.clip_frames)):
            part = slice(start, start + self.clip_frames)
            frames = video.frames[part]
            landmarks = FaceLandmarks(marks.points[part], marks.scores[part], marks.detected[part], marks.width,
                                      marks.height)
            latents = self.codec.encode(torch.from_numpy(frames).float() / 255).numpy()
            yield Clip(clip_key(video.source, position, number), video.fps, frames, latents, landmarks.points,
                       latent_regions(landmarks), audio=None if audio is None else audio.features[part].numpy(),
                       audio_context=None if audio is None else audio.context,
                       audio_layers=None if audio is None else audio.layers, source=video.source.source,
                       first_frame=start)


# Where each model file comes from, for the error when one is missing.
MODEL_SOURCES = {
    "--vae": "the SD VAE: the sd-vae-ft-mse diffusers folder or its .safetensors file, from Hugging Face "
             "stabilityai/sd-vae-ft-mse",
    "--dwpose": "DWPose yolox_l.onnx and dw-ll_ucoco_384.onnx, from Hugging Face yzd-v/DWPose (the files "
                "comfyui_controlnet_aux downloads)",
    "--whisper": "Whisper: openai-whisper's tiny.pt (from openai) or a Hugging Face openai/whisper-tiny folder",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER",
                   help=f"video files, folders searched recursively for {' '.join(VIDEO_SUFFIXES)}, or .txt lists "
                        "of videos (curation's select writes one)")
    p.add_argument("--out", required=True, help="the dataset folder (a rerun with the same options resumes it)")
    p.add_argument("--vae", required=True, help="SD VAE: sd-vae-ft-mse diffusers folder or .safetensors file")
    p.add_argument("--dwpose", nargs=2, required=True, metavar=("YOLOX", "POSE"),
                   help="yolox_l.onnx and dw-ll_ucoco_384.onnx")
    p.add_argument("--whisper", help="Whisper tiny.pt or Hugging Face folder: store audio features (stages 2, 3)")
    p.add_argument("--size", type=int, default=512, help="square frame size, a multiple of 16 (default 512)")
    p.add_argument("--clip-frames", type=int, default=48, help="frames per clip (default 48)")
    p.add_argument("--videos-per-shard", type=int, default=16, help="videos per tar shard (default 16)")
    p.add_argument("--face-scale", type=float, default=2.0,
                   help="crop side as a multiple of the largest face size in the video (default 2)")
    p.add_argument("--fps", type=float, default=25.0,
                   help="resample every video to this frame rate, the rate the model will generate at (default 25; "
                        "0 keeps each video's own)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where the models run; Ray workers use cuda when they get a GPU, else cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="VAE precision (default: fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--workers", type=int, default=0, help="with --ray: Ray workers (default: one per CPU or GPU)")
    add_ray_arguments(p)
    args = p.parse_args(argv)
    args.fps = args.fps or None
    try:
        check_options(args.size, args.clip_frames, args.videos_per_shard, args.face_scale, args.fps)
    except ValueError as exc:
        p.error(str(exc))
    args.ray = ray_cluster(p, args)
    if args.workers and args.ray is None:
        p.error("--workers needs --ray (without it one process preprocesses, on --device)")
    return args


def _check_model_files(args: argparse.Namespace) -> None:
    """A FileNotFoundError naming the first missing model file and where it comes from."""
    given = [("--vae", args.vae), *(("--dwpose", path) for path in args.dwpose), ("--whisper", args.whisper)]
    for flag, path in given:
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} {path} not found; it is {MODEL_SOURCES[flag]}")


def dwpose_landmarker(detector: str, pose: str, device: torch.device) -> Landmarker:
    """DWPose (onnxruntime, on the GPU when ``device`` is CUDA) as a :data:`Landmarker`."""
    from ..landmarks import DWPose, detect_landmarks

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" \
        else ["CPUExecutionProvider"]
    dwpose = DWPose(detector, pose, providers=providers)
    return lambda frames: detect_landmarks(dwpose, frames)[0]


def whisper_audio_encoder(path: str, device: torch.device) -> AudioEncoder:
    """Whisper as an :class:`AudioEncoder`, with ``encode_audio``'s defaults (which sampling uses too)."""
    from ..audio import encode_audio, load_whisper_encoder

    return partial(encode_audio, load_whisper_encoder(path).to(device))


@dataclass(frozen=True)
class PreprocessModels:
    """The model files of a run and where they run, loaded by :meth:`load` (once per worker on Ray)."""

    vae: str  # sd-vae-ft-mse folder or .safetensors
    dwpose: tuple[str, str]  # yolox_l.onnx, dw-ll_ucoco_384.onnx
    whisper: str | None = None  # None: no audio features
    device: str = "cpu"
    dtype: str | None = None  # the VAE's; None: fp16 on CUDA, fp32 on CPU

    def load(self) -> tuple[Landmarker, LatentCodec, AudioEncoder | None]:
        from ..pipeline.codec import DiffusersVAE
        from ..pipeline.vae import load_sd_vae

        device = torch.device(self.device)
        dtype = parse_dtype(self.dtype) if self.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
        return (dwpose_landmarker(*self.dwpose, device), DiffusersVAE(load_sd_vae(self.vae).to(device, dtype)),
                whisper_audio_encoder(self.whisper, device) if self.whisper else None)


class VideoWorker:
    """A Ray worker: the models loaded once, turning video after video into clips."""

    def __init__(self, models: PreprocessModels, options: dict) -> None:
        self.make = _ClipMaker(*models.load(), **options)

    def __call__(self, video: SourceVideo, position: int) -> VideoClips:
        return self.make(video, position)


def run(args: argparse.Namespace) -> PreprocessSummary:
    videos = find_videos(args.inputs)
    _check_model_files(args)
    models = PreprocessModels(args.vae, tuple(args.dwpose), args.whisper, args.device, args.dtype)
    options = dict(size=args.size, clip_frames=args.clip_frames, videos_per_shard=args.videos_per_shard,
                   face_scale=args.face_scale, fps=args.fps)
    if args.ray is not None:
        with progress_bar("preprocessing", "video", total=len(videos)) as progress:
            return preprocess_on_ray(videos, args.out, models, args.ray, progress=progress, **options)
    landmarker, codec, audio_encoder = models.load()
    with progress_bar("preprocessing", "video", total=len(videos)) as progress:
        return preprocess_videos(videos, args.out, landmarker=landmarker, codec=codec, audio_encoder=audio_encoder,
                                 progress=progress, **options)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def work() -> str:
        with logging_redirect_tqdm():
            return run(args)

    return run_command(work, interrupted="interrupted; finished shards are kept and the same command resumes")


if __name__ == "__main__":
    sys.exit(main())
