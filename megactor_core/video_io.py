"""Video and audio files <-> numpy arrays through PyAV (FFmpeg): read any common format, write H.264 MP4."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from numbers import Integral, Real
from pathlib import Path

import av
import numpy as np

from .atomic import atomic_write

# Denominator limit when snapping fps to a fraction: 1001 keeps NTSC rates (30000/1001, 24000/1001) exact.
_MAX_FPS_DENOMINATOR = 1001
_AUDIO_LAYOUTS = {1: "mono", 2: "stereo"}
_AAC_FALLBACK_RATE = 48000
_RESAMPLE_CHUNK = 1 << 16  # samples per frame handed to FFmpeg's resampler (its output does not depend on it)
# FFmpeg's codes for BT.709 primaries, transfer and matrix (all 1) and for limited ("MPEG", TV) range.
_BT709 = 1
_LIMITED_RANGE = 1


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
LIST_SUFFIX = ".txt"


class VideoFileError(ValueError):
    """A file that cannot be read as the video or audio that was asked for."""


@dataclass
class Video:
    """Decoded frames with their rate, and the file's first audio track (``None`` when it has none)."""

    frames: np.ndarray  # [N, H, W, 3] uint8 RGB
    fps: float
    audio: np.ndarray | None  # [channels, samples] float32 in -1..1; sample 0 sounds with frame 0
    sample_rate: int | None
    times: np.ndarray | None = None  # [N] presentation times in seconds (uneven for a variable rate)

    def frame_times(self) -> np.ndarray:
        """The frames' times in seconds: as decoded, else evenly ``1 / fps`` apart."""
        return np.arange(len(self.frames)) / self.fps if self.times is None else self.times


@dataclass(frozen=True)
class SourceVideo:
    """A video file to preprocess and its name in the dataset (its path under the input it was found in)."""

    path: Path  # absolute
    source: str


def find_videos(inputs: Sequence[str | os.PathLike]) -> list[SourceVideo]:
    """Video files given directly, found in folders (recursively, by :data:`VIDEO_SUFFIXES`) or
    listed one per line in ``.txt`` files (as curation's ``select`` writes them), sorted by
    absolute path, each once."""
    found: dict[Path, str] = {}
    for given in map(Path, inputs):
        if given.suffix.lower() == LIST_SUFFIX and given.is_file():
            listed = [Path(line.strip()) for line in given.read_text().splitlines() if line.strip()]
            absent = [str(p) for p in listed if not p.is_file()]
            if absent:
                raise FileNotFoundError(f"{given} lists {len(absent)} videos that do not exist, e.g. {absent[:2]}")
            files = [(p, p.name) for p in listed]
        elif given.is_dir():
            files = [(p, p.relative_to(given).as_posix()) for p in given.rglob("*")
                     if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
        elif given.is_file():
            files = [(given, given.name)]
        else:
            raise FileNotFoundError(f"input {given} does not exist")
        for path, source in files:
            found.setdefault(path.resolve(), source)
    if not found:
        raise ValueError(f"no videos ({' '.join(VIDEO_SUFFIXES)}) found in {', '.join(map(str, inputs))}")
    return [SourceVideo(path, found[path]) for path in sorted(found)]


def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> Video:
    """All frames of the first video stream (or the first ``max_frames``) as RGB, plus its audio.

    Frames are converted with the file's own colour matrix and range and turned upright by its
    rotation metadata (phone videos), so they look as a player shows them. ``fps`` is the stream's
    average rate and ``times`` each frame's presentation time (uneven for a variable frame rate;
    resample with :func:`megactor_core.pipeline.resample_indices`). The audio is put on the
    video's clock, as a player plays them together: its first sample sounds with the first frame
    (silence fills the time before a later audio start; sound before the first frame is dropped).
    With ``max_frames`` the audio is cut to the duration of the frames returned.
    """
    path = _existing_file(path, "video")
    if max_frames is not None and not (_is_integer(max_frames) and max_frames >= 1):
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
    with _open_input(path) as container:
        if not container.streams.video:
            raise VideoFileError(f"{path} has no video stream; expected a video file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise VideoFileError(f"{path}: its video stream has no frame rate")
        frames, times, start = [], [], None
        for frame in islice(container.decode(stream), max_frames):
            if not frames:
                start = _exact_time(frame)
            frames.append(_upright_rgb(frame))
            times.append(frame.time)
        has_audio = bool(container.streams.audio)
    if not frames:
        raise VideoFileError(f"{path} has a video stream but no decodable frames")
    audio = sample_rate = None
    if has_audio:
        cut = Fraction(len(frames)) / rate if max_frames is not None else None
        audio, sample_rate = _read_audio(path, start=start, seconds=cut)
    stamps = np.asarray(times, np.float64) if all(t is not None for t in times) else None
    if stamps is not None and (np.diff(stamps) <= 0).any():  # unordered or repeated stamps: trust the rate
        stamps = None
    return Video(np.stack(frames), float(rate), audio, sample_rate, stamps)


def frame_times(path: str | os.PathLike) -> np.ndarray:
    """Presentation times in seconds of the first video stream's frames, sorted, read from the
    container's packets without decoding (cheap); a variable frame rate shows as uneven gaps."""
    path = _existing_file(path, "video")
    with _open_input(path) as container:
        if not container.streams.video:
            raise VideoFileError(f"{path} has no video stream; expected a video file")
        stream = container.streams.video[0]
        stamps = [packet.pts for packet in container.demux(stream) if packet.pts is not None]
        base = stream.time_base
    return np.sort(np.asarray(stamps, np.float64)) * float(base)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The first audio stream of any audio file (wav, mp3, m4a, flac, ...) or video.

    Returns ``[channels, samples]`` float32 in -1..1 at the stream's own sample rate, and that rate.
    """
    return _read_audio(_existing_file(path, "audio"))


def mono_pcm16(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """``[channels, samples]`` float audio in -1..1 at ``sample_rate`` -> ``[samples']`` int16 mono at ``rate``.

    What ``ffmpeg -ac 1 -ar RATE -acodec pcm_s16le`` writes, bit for bit: the same resampler
    (libswresample, through PyAV) with its downmix, anti-alias filter and rounding. Scores
    defined on that output (SyncNet's) need it: a textbook resampler's filter differs near the
    new Nyquist frequency. Channels are read in FFmpeg's default layout for their count (stereo:
    the mean of the two).
    """
    if not isinstance(audio, np.ndarray) or not np.issubdtype(audio.dtype, np.floating) or audio.ndim != 2:
        got = f"{audio.dtype} of shape {audio.shape}" if isinstance(audio, np.ndarray) else type(audio).__name__
        raise ValueError(f"audio must be a float numpy array [channels, samples], got {got}")
    for name, value in (("sample_rate", sample_rate), ("rate", rate)):
        if not (_is_integer(value) and value > 0):
            raise ValueError(f"{name} must be a positive integer (Hz), got {value!r}")
    layout = f"{len(audio)}c"  # FFmpeg's default layout for that many channels: mono, stereo, 5.1, ...
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frames = []
    for begin in range(0, audio.shape[1], _RESAMPLE_CHUNK):
        chunk = np.ascontiguousarray(audio[:, begin:begin + _RESAMPLE_CHUNK], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frames += resampler.resample(frame)
    frames += resampler.resample(None)
    return np.concatenate([np.zeros(0, np.int16)] + [frame.to_ndarray()[0] for frame in frames])


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, *, audio: np.ndarray | None = None,
                sample_rate: int | None = None, crf: int = 18) -> Path:
    """Write ``frames`` ([N, H, W, 3] uint8 RGB) as an H.264 (yuv420p, BT.709) MP4 file, atomically.

    Frame ``i`` is shown at ``i / fps``; ``fps`` is snapped to the nearest fraction with a
    denominator up to 1001, so ``30000 / 1001`` is stored exactly. H.264 4:2:0 needs even sizes:
    an odd width or height is padded on the right or bottom edge by repeating the last column or
    row, so the file is one pixel larger there. ``audio`` ([channels, samples] float in -1..1,
    mono or stereo, at ``sample_rate``) is muxed as AAC, cut at the video's end if longer; a rate
    AAC does not support is resampled to 48 kHz. The container is always MP4, whatever the suffix.
    The file is written next to ``path`` under a temporary name and renamed only once complete:
    after any error or interrupt, ``path`` is absent or still holds its old content.
    """
    path = Path(path)
    _check_frames(frames)
    rate = _frame_rate(fps)
    if audio is not None:
        audio, sample_rate = _checked_audio(audio, sample_rate)
        audio = audio[:, :math.floor(len(frames) * sample_rate / rate)]
    elif sample_rate is not None:
        raise ValueError(f"sample_rate={sample_rate!r} was given without audio")
    if not (_is_integer(crf) and 0 <= crf <= 51):
        raise ValueError(f"crf must be an integer in 0..51 (lower is better quality), got {crf!r}")
    with atomic_write(path, suffix=".mp4") as tmp:
        _encode(tmp, frames, rate, audio, sample_rate, crf)
    return path


def _is_integer(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist or is not a file")
    return path


@contextmanager
def _open_input(path: Path) -> Iterator[av.container.InputContainer]:
    """``av.open`` for reading, with FFmpeg's errors (not a media file, corrupt data) naming the file."""
    try:
        with av.open(str(path)) as container:
            yield container
    except av.FFmpegError as exc:
        raise VideoFileError(f"{path} could not be read as a video or audio file: {exc}") from exc


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB as a player shows the frame: its colour matrix, range and rotation applied."""
    rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
    return np.rot90(rgb, round(frame.rotation / 90) % 4)  # counter-clockwise, as frame.rotation is


def _exact_time(frame: av.AudioFrame | av.VideoFrame) -> Fraction | None:
    """The frame's presentation time in seconds, exactly (``None`` when it has none)."""
    return None if frame.pts is None or frame.time_base is None else frame.pts * frame.time_base


def _read_audio(path: Path, start: Fraction | None = None,
                seconds: Fraction | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to float32 planar.

    With ``start`` (a time in seconds on the file's clock) sample 0 is the sound at ``start``:
    silence before a later first sample, sound before ``start`` dropped. With ``seconds`` the
    result is cut to that duration and decoding stops once it has enough.
    """
    with _open_input(path) as container:
        if not container.streams.audio:
            raise VideoFileError(f"{path} has no audio stream; expected an audio file or a video with sound")
        stream = container.streams.audio[0]
        rate = stream.rate
        limit = None if seconds is None else math.ceil(seconds * rate)
        # The container counts the real samples (MP4/M4A): drop the encoder's padding after them.
        counted = stream.duration if stream.duration and stream.time_base == Fraction(1, rate) else None
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
        chunks, total, lead, wanted = [], 0, 0, counted
        for index, frame in enumerate(container.decode(stream)):
            if index == 0:
                first = _exact_time(frame)
                lead = 0 if start is None or first is None else round((first - start) * rate)  # silence to add
                if limit is not None:  # the file's samples that reach the cut
                    needed = max(limit - lead, 0)
                    wanted = needed if counted is None else min(needed, counted)
            new = [out.to_ndarray() for out in resampler.resample(frame)]
            chunks += new
            total += sum(chunk.shape[1] for chunk in new)
            if wanted is not None and total >= wanted:
                break
        else:
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks:
        raise VideoFileError(f"{path} has an audio stream but no decodable samples")
    samples = np.concatenate(chunks, axis=1)[:, :wanted]
    samples = np.pad(samples, ((0, 0), (lead, 0))) if lead > 0 else samples[:, -lead:]
    if samples.shape[1] == 0:
        raise VideoFileError(f"{path}: its audio ends before its video starts")
    return np.ascontiguousarray(samples[:, :limit], dtype=np.float32), rate


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array [N, H, W, 3] uint8, got {type(frames).__name__}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3] uint8 RGB, got shape {frames.shape} {frames.dtype}")
    if 0 in frames.shape:
        raise ValueError(f"frames must hold at least one frame of at least 1x1 pixels, got shape {frames.shape}")


def _frame_rate(fps: float) -> Fraction:
    """``fps`` as the exact fraction the file will store."""
    if isinstance(fps, bool) or not isinstance(fps, Real) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    rate = fps if isinstance(fps, Fraction) else Fraction(float(fps))
    rate = rate.limit_denominator(_MAX_FPS_DENOMINATOR)
    if rate <= 0:
        raise ValueError(f"fps={fps!r} is too small for a video frame rate")
    return rate


def _checked_audio(audio: np.ndarray, sample_rate: int | None) -> tuple[np.ndarray, int]:
    """``audio`` as contiguous float32 ``[channels, samples]`` and its rate as an int, or a clear error."""
    if not isinstance(audio, np.ndarray) or not np.issubdtype(audio.dtype, np.floating):
        kind = audio.dtype if isinstance(audio, np.ndarray) else type(audio).__name__
        raise ValueError(f"audio must be a float numpy array [channels, samples] in -1..1, got {kind}")
    if audio.ndim != 2 or audio.shape[0] not in _AUDIO_LAYOUTS or audio.shape[1] == 0:
        raise ValueError(f"audio must be [channels, samples] with 1 or 2 channels and at least one sample, "
                         f"got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio has NaN or infinite samples")
    if sample_rate is None:
        raise ValueError("audio was given without sample_rate")
    if not (_is_integer(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return np.ascontiguousarray(audio, dtype=np.float32), int(sample_rate)


def _encode(filename: str, frames: np.ndarray, rate: Fraction, audio: np.ndarray | None,
            sample_rate: int | None, crf: int) -> None:
    height, width = frames.shape[1:3]
    with av.open(filename, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": str(crf)})
        video.width, video.height, video.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        # Tag what _to_frame converts to, so players do not have to guess the colour matrix.
        context = video.codec_context
        context.colorspace = context.color_primaries = context.color_trc = _BT709
        context.color_range = _LIMITED_RANGE
        if audio is not None and audio.shape[1] > 0:
            layout = _AUDIO_LAYOUTS[audio.shape[0]]
            aac_rate = sample_rate if sample_rate in av.Codec("aac", "w").audio_rates else _AAC_FALLBACK_RATE
            sound = out.add_stream("aac", rate=aac_rate, layout=layout)
            clip = av.AudioFrame.from_ndarray(audio, format="fltp", layout=layout)
            clip.sample_rate, clip.pts, clip.time_base = sample_rate, 0, Fraction(1, sample_rate)
            out.mux(sound.encode(clip))  # PyAV splits it into AAC frames, resampling if needed
            out.mux(sound.encode(None))
        for i, image in enumerate(frames):
            out.mux(video.encode(_to_frame(image, i, rate)))
        out.mux(video.encode(None))


def _to_frame(image: np.ndarray, index: int, rate: Fraction) -> av.VideoFrame:
    """One RGB image as a BT.709 yuv420p frame at ``index / rate`` seconds, padded to even sides."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    frame = frame.reformat(format="yuv420p", dst_colorspace=_BT709, dst_color_range=_LIMITED_RANGE)
    frame.pts, frame.time_base = index, 1 / rate
    return frame
