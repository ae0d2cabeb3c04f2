"""MP4 in and out with PyAV: H.264 yuv420p, BT.709, faststart; re-encoding under a byte limit.

The bot process imports this module to shrink videos for a platform, so it must not import torch.
"""

from __future__ import annotations

import io
import logging
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from generator.contract.errors import VideoTooLarge

logger = logging.getLogger("wanbot.generator")

CRF = "18"  # visually lossless for generated video
X264_PRESET = "medium"
BUDGET_SHARE = 0.92  # of max_bytes, for the video stream: the rest is container overhead and rate error
ATTEMPTS = 2
MIN_BITS_PER_PIXEL = 0.04  # below this H.264 falls apart: shrink_mp4 scales the picture down instead
MIN_SIDE = 16
MIN_BIT_RATE = 16_000  # x264 refuses rates near zero; below this nothing watchable comes out anyway
BT709 = 1  # the H.264 code for BT.709 in colour primaries, transfer and matrix alike

FrameSource = Callable[[], Iterator[av.VideoFrame]]


@dataclass(frozen=True)
class VideoInfo:
    """What a decoded MP4 really contains (tests and the bot check results against the request)."""

    frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str
    duration_s: float
    faststart: bool


def encode_mp4(frames: np.ndarray, fps: int) -> bytes:
    """uint8 frames (T, H, W, 3) to MP4 bytes at constant quality (`shrink_mp4` fits it under a limit)."""
    frames = _even(frames)
    height, width = frames.shape[1:3]

    def source() -> Iterator[av.VideoFrame]:
        return (av.VideoFrame.from_ndarray(frame, format="rgb24") for frame in frames)

    return _encode(source, fps, (width, height))


def shrink_mp4(data: bytes, max_bytes: int) -> bytes:
    """The same clip under `max_bytes`: a budgeted bitrate, and a smaller picture if that is too few bits."""
    if len(data) <= max_bytes:
        return data
    info = probe_mp4(data)
    bits_per_pixel = _bit_rate(max_bytes, info.duration_s) / (info.width * info.height * info.fps)
    scale = min(1.0, (bits_per_pixel / MIN_BITS_PER_PIXEL) ** 0.5)
    size = (_even_side(info.width * scale), _even_side(info.height * scale))
    logger.info("shrinking a %d-byte video under %d bytes at %dx%d", len(data), max_bytes, *size)

    def source() -> Iterator[av.VideoFrame]:
        return _decoded(data)

    return _encode_within(source, round(info.fps), size, info.duration_s, max_bytes)


def probe_mp4(data: bytes) -> VideoInfo:
    """Decode every frame (so a broken stream fails here) and report what the file holds."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        if stream.duration is not None:
            duration_s = float(stream.duration * stream.time_base)
        else:
            duration_s = (container.duration or 0) / av.time_base
        return VideoInfo(
            frames=frames,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(stream.average_rate or 0),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt or "",
            duration_s=duration_s,
            faststart=_moov_first(data),
        )


def _encode_within(source: FrameSource, fps: int, size: tuple[int, int], duration_s: float, max_bytes: int) -> bytes:
    bit_rate = _bit_rate(max_bytes, duration_s)
    for _ in range(ATTEMPTS):
        data = _encode(source, fps, size, bit_rate=bit_rate)
        if len(data) <= max_bytes:
            return data
        bit_rate = max(MIN_BIT_RATE, int(bit_rate * max_bytes / len(data) * BUDGET_SHARE))  # overshot: aim lower
    raise VideoTooLarge(len(data), max_bytes)


def _bit_rate(max_bytes: int, duration_s: float) -> int:
    return max(MIN_BIT_RATE, int(max_bytes * 8 * BUDGET_SHARE / max(duration_s, 1e-3)))


def _encode(source: FrameSource, fps: int, size: tuple[int, int], *, bit_rate: int | None = None) -> bytes:
    """One encode; constant quality unless a bitrate is given (then capped by a one-second buffer)."""
    width, height = size
    # The mov muxer writes faststart by re-reading its output by name, so it needs a real file.
    with tempfile.TemporaryDirectory(prefix="wanbot-") as folder:
        path = Path(folder) / "video.mp4"
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            context = stream.codec_context
            context.color_primaries = context.color_trc = context.colorspace = BT709
            context.color_range = ColorRange.MPEG
            if bit_rate is None:
                stream.options = {"crf": CRF, "preset": X264_PRESET}
            else:
                stream.bit_rate = bit_rate
                stream.options = {"preset": X264_PRESET, "maxrate": str(bit_rate), "bufsize": str(bit_rate)}
            for index, frame in enumerate(source()):
                converted = frame.reformat(width=width, height=height, format="yuv420p",
                                           dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
                converted.pts, converted.time_base = index, Fraction(1, fps)  # decoded frames bring their own
                container.mux(stream.encode(converted))
            container.mux(stream.encode(None))
        return path.read_bytes()


def _decoded(data: bytes) -> Iterator[av.VideoFrame]:
    with av.open(io.BytesIO(data), mode="r") as container:
        yield from container.decode(video=0)


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row or column where one is odd."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return frames


def _even_side(side: float) -> int:
    return max(MIN_SIDE, int(side) // 2 * 2)


def _moov_first(data: bytes) -> bool:
    """Whether the index ('moov') precedes the media ('mdat'): players can start before the download ends."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack_from(">Q", data, offset + 8)[0]
        elif size == 0:
            size = len(data) - offset
        if kind == b"moov":
            return True
        if kind == b"mdat" or size < 8:
            return False
        offset += size
    return False
