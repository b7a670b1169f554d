"""Frame-exact decoding with PyAV (FFmpeg in its wheels).

Frame numbers: the n-th frame the decoder hands out, in presentation order, counting from 0. Every
part of LabelHub (the stored frames, the API, the workers, the exports) uses these numbers, so they are
fixed once, here, at ingest: the video is decoded from its start and each decoded frame is stored under
its number. Nothing later seeks by timestamp (seeking is where other tools' indices drift from what
OpenCV or FFmpeg decode).

Checks run cheapest first: the container (from the bytes, not the file name), the codec, the declared
duration, resolution and frame count (header only), and only then the full decode, which also counts the
frames for real (a header may lie) and fails on a truncated or corrupt stream.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePosixPath

import numpy as np

# container names FFmpeg reports -> our name (mov/mp4 share one demuxer; webm is matroska)
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "webm"}
CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"}
FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class VideoError(ValueError):
    """The input is not a video (or frame archive) LabelHub accepts; `code` names the problem."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Limits:
    max_seconds: float
    max_frames: int
    max_width: int
    max_height: int


@dataclass
class VideoInfo:
    container: str  # "mp4" (also .mov) | "webm" | "frames" (an archive of images)
    codec: str
    width: int
    height: int
    fps: Fraction
    frame_count: int  # decoded, not declared
    duration: float  # frame_count / fps
    extra: dict = field(default_factory=dict)


def _check_size(width: int, height: int, limits: Limits) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise VideoError(
            f"Resolution {width}x{height} is over the limit {limits.max_width}x{limits.max_height}.",
            "video_too_large",
        )
    if width < 2 or height < 2:
        raise VideoError(f"Resolution {width}x{height} is too small.", "invalid_video")


def probe(data: bytes, limits: Limits) -> tuple[VideoInfo, object]:
    """Open `data` and check what its headers declare (no frame decoded). Returns the info (with the
    declared frame count) and the open container for `decode_frames`."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        if data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3":  # an MP4/MOV or WebM/Matroska start
            raise VideoError(
                f"The file starts as a video but does not open: it is truncated or corrupt ({exc}).",
                "corrupt_video",
            ) from exc
        raise VideoError(f"Not a video FFmpeg can open: {exc}", "not_a_video") from exc
    try:
        kind = CONTAINERS.get(container.format.name)
        if kind is None:
            raise VideoError(
                f"Container {container.format.name!r} is not accepted; send MP4, MOV or WebM.",
                "unsupported_container",
            )
        if not container.streams.video:
            raise VideoError("The file holds no video stream.", "not_a_video")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in CODECS:
            raise VideoError(
                f"Codec {codec!r} is not accepted; use one of {sorted(CODECS)}.", "unsupported_codec"
            )
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_size(width, height, limits)
        rate = stream.average_rate or stream.guessed_rate
        if not rate or rate <= 0:
            raise VideoError("The video declares no frame rate.", "invalid_video")
        fps = Fraction(rate)
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration or 0) / 1e6
        )
        if duration > limits.max_seconds:
            raise VideoError(
                f"The video lasts {duration:.1f} s; the limit is {limits.max_seconds:g} s.", "video_too_long"
            )
        declared = stream.frames or round(duration * fps)
        if declared > limits.max_frames:
            raise VideoError(
                f"The video has {declared} frames; the limit is {limits.max_frames}.", "too_many_frames"
            )
        info = VideoInfo(kind, codec, width, height, fps, declared, duration)
        return info, container
    except BaseException:
        container.close()
        raise


def decode_frames(container, info: VideoInfo, limits: Limits) -> Iterator[np.ndarray]:
    """Decode every frame of the first video stream, in presentation order, as RGB uint8 (H, W, 3).
    Raises VideoError for a truncated/corrupt stream (FFmpeg's error, or frames that stop short of
    the declared count by more than a frame), a frame count over the limit, or a size change."""
    import av

    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = 0
    try:
        for frame in container.decode(stream):
            if frame.width != info.width or frame.height != info.height:
                raise VideoError(
                    f"Frame {count} is {frame.width}x{frame.height}; the video is {info.width}x{info.height}.",
                    "mixed_frame_sizes",
                )
            count += 1
            if count > limits.max_frames:
                raise VideoError(f"The video has more than {limits.max_frames} frames.", "too_many_frames")
            yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise VideoError(f"The video does not decode after frame {count}: {exc}", "corrupt_video") from exc
    finally:
        container.close()
    if count == 0:
        raise VideoError("The video holds no decodable frame.", "corrupt_video")
    # A cut-off file often decodes "cleanly" up to where it stops: compare with what the header said.
    if info.frame_count and count < info.frame_count - 1:
        raise VideoError(
            f"The video stops after {count} of its {info.frame_count} frames: the file is truncated.",
            "truncated_video",
        )
    info.frame_count = count
    info.duration = float(count / info.fps)


def archive_probe(data: bytes, limits: Limits) -> tuple[VideoInfo, list[str]]:
    """A zip of frame images: the member names (sorted naturally, images only) and the info of the
    first; every frame is checked to have the first one's size when decoded."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise VideoError(f"Not a zip archive: {exc}", "not_a_video") from exc
    names = [
        n
        for n in archive.namelist()
        if not n.endswith("/")
        and PurePosixPath(n).suffix.lower() in FRAME_SUFFIXES
        and not PurePosixPath(n).name.startswith(".")
    ]
    if not names:
        raise VideoError("The archive holds no frame images (.jpg, .png, .bmp, .webp).", "empty_archive")
    if len(names) > limits.max_frames:
        raise VideoError(
            f"The archive has {len(names)} frames; the limit is {limits.max_frames}.", "too_many_frames"
        )
    names.sort(key=_natural_key)
    from PIL import Image as PILImage

    with archive.open(names[0]) as fh, PILImage.open(fh) as first:
        width, height = first.size
    _check_size(width, height, limits)
    return VideoInfo("frames", "images", width, height, Fraction(0), len(names), 0.0), names


def archive_frames(data: bytes, names: list[str], info: VideoInfo) -> Iterator[np.ndarray]:
    from PIL import Image as PILImage

    archive = zipfile.ZipFile(io.BytesIO(data))
    for index, name in enumerate(names):
        try:
            with archive.open(name) as fh, PILImage.open(fh) as img:
                img.load()
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise VideoError(f"Frame {index} ({name}) does not decode: {exc}", "corrupt_frame") from exc
        if rgb.shape[:2] != (info.height, info.width):
            raise VideoError(
                f"Frame {index} ({name}) is {rgb.shape[1]}x{rgb.shape[0]}; the first frame is "
                f"{info.width}x{info.height}. All frames of a video have one size.",
                "mixed_frame_sizes",
            )
        yield rgb


def _natural_key(name: str) -> list:
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frames_open(data: bytes, limits: Limits) -> tuple[VideoInfo, Callable[[], Iterator[np.ndarray]]]:
    """Probe `data` (a video or a zip of frames) and return its info and a function that decodes its
    frames (checked as they come). Raises VideoError, cheapest checks first."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (an empty one starts with its directory)
        info, names = archive_probe(data, limits)
        return info, lambda: archive_frames(data, names, info)
    info, container = probe(data, limits)
    return info, lambda: decode_frames(container, info, limits)
