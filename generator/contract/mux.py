"""Soundtracks into MP4s: the H.264 packets copied untouched, an AAC-LC stereo track beside them, faststart.

Like encode.py, the bot process may import this module (to fit a clip with sound under a platform's
limit), so it must not import torch.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from generator.contract.encode import BUDGET_SHARE, shrink_mp4
from generator.contract.errors import VideoTooLarge

logger = logging.getLogger("wanbot.generator")

AUDIO_BIT_RATE = 128_000  # AAC-LC stereo: clean for generated sound and music, about 1 MB a minute
MIN_AUDIO_BIT_RATE = 32_000  # below this AAC-LC stereo smears; the video gives up bits instead
AUDIO_SHARE = 0.1  # of a byte budget: a shrunk clip's audio keeps its bitrate up to this share, then drops to it
FALLBACK_RATE = 48_000  # for a soundtrack whose rate AAC does not have
AAC_RATES = frozenset(av.codec.Codec("aac", "w").audio_rates or ())
LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class Soundtrack:
    """Audio ready to mux: float32 samples (n, channels) nominally in [-1, 1] (louder is clipped)."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[1] not in LAYOUTS:
            raise ValueError(f"samples must be (n, 1 or 2 channels), got {self.samples.shape}")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """What an MP4's audio stream really decodes to (tests and the shrinking check results against it)."""

    codec: str
    profile: str
    sample_rate: int
    channels: int
    duration_s: float  # decoded samples / rate: AAC pads its last frame, so up to 1024 samples over the source
    bit_rate: int  # from the packet sizes


def mux_audio(mp4: bytes, soundtrack: Soundtrack | None, bit_rate: int = AUDIO_BIT_RATE) -> bytes:
    """The MP4's video stream, packet for packet, with `soundtrack` as its only audio (None: no audio).

    The soundtrack is cut or padded with silence to the video's duration, so players end both together.
    """
    if soundtrack is None:
        return _remux(mp4, None)
    fitted = fit_duration(soundtrack, _video_duration(mp4))
    return _remux(mp4, _encode_aac(fitted, bit_rate))


def fit_duration(soundtrack: Soundtrack, duration_s: float) -> Soundtrack:
    """Exactly round(duration_s * rate) samples: cut, or padded with silence."""
    wanted = round(duration_s * soundtrack.sample_rate)
    samples = soundtrack.samples[:wanted]
    if len(samples) < wanted:
        samples = np.pad(samples, ((0, wanted - len(samples)), (0, 0)))
    return Soundtrack(samples, soundtrack.sample_rate)


def probe_audio(data: bytes) -> AudioInfo | None:
    """Decode every audio frame (so a broken stream fails here) and report it; None when there is no audio."""
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        samples = size = 0
        for packet in container.demux(stream):
            size += packet.size
            samples += sum(frame.samples for frame in packet.decode())
        context = stream.codec_context
        duration_s = samples / context.sample_rate
        return AudioInfo(
            codec=context.name,
            profile=context.profile or "",
            sample_rate=context.sample_rate,
            channels=context.channels,
            duration_s=duration_s,
            bit_rate=round(size * 8 / duration_s) if samples else 0,
        )


def shrink_with_audio(data: bytes, max_bytes: int) -> bytes:
    """encode.shrink_mp4 for clips that may have sound: both tracks share `max_bytes`.

    The audio keeps its packets while its bitrate fits AUDIO_SHARE of the budget (and is re-encoded
    lower, not under MIN_AUDIO_BIT_RATE, when not); the video gets exactly what the audio leaves.
    """
    if len(data) <= max_bytes:
        return data
    audio = probe_audio(data)
    if audio is None:
        return shrink_mp4(data, max_bytes)
    video = _remux(data, None)
    duration_s = _video_duration(video)
    bit_rate = max(MIN_AUDIO_BIT_RATE, int(max_bytes * 8 * BUDGET_SHARE * AUDIO_SHARE / duration_s))
    track = data if audio.bit_rate <= bit_rate else _encode_aac(fit_duration(_decoded(data), duration_s), bit_rate)
    audio_bytes = len(_remux(video, track)) - len(video)  # the packets and their share of the index
    logger.info("shrinking a %d-byte video with audio under %d bytes: %d for the audio (%s)", len(data), max_bytes,
                audio_bytes, "kept" if track is data else f"re-encoded at {bit_rate // 1000} kb/s")
    if audio_bytes >= max_bytes:
        raise VideoTooLarge(audio_bytes, max_bytes)
    result = _remux(shrink_mp4(video, max_bytes - audio_bytes), track)
    if len(result) > max_bytes:
        raise VideoTooLarge(len(result), max_bytes)
    return result


def _encode_aac(soundtrack: Soundtrack, bit_rate: int) -> bytes:
    """An audio-only MP4 to copy packets from; PyAV's encoder resamples and cuts AAC's 1024-sample frames."""
    channels = soundtrack.samples.shape[1]
    planar = np.ascontiguousarray(np.clip(soundtrack.samples, -1.0, 1.0).T, dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=LAYOUTS[channels])
    frame.sample_rate, frame.pts, frame.time_base = soundtrack.sample_rate, 0, Fraction(1, soundtrack.sample_rate)
    rate = soundtrack.sample_rate if soundtrack.sample_rate in AAC_RATES else FALLBACK_RATE
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="stereo")
        stream.bit_rate = bit_rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _remux(video: bytes, audio: bytes | None) -> bytes:
    """The first video stream of `video` and the first audio stream of `audio`, copied, interleaved, faststart."""
    # The mov muxer writes faststart by re-reading its output by name, so it needs a real file.
    with tempfile.TemporaryDirectory(prefix="wanbot-") as folder:
        path = Path(folder) / "muxed.mp4"
        with contextlib.ExitStack() as stack:
            output = stack.enter_context(av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}))
            streams = [_first(stack.enter_context(av.open(io.BytesIO(video), mode="r")), "video")]
            if audio is not None:
                streams.append(_first(stack.enter_context(av.open(io.BytesIO(audio), mode="r")), "audio"))
            copies = [output.add_stream_from_template(stream) for stream in streams]
            # In time order, as players read them; the muxer alone would hold back only 10 s of one stream.
            for packet in heapq.merge(*map(_copied, streams, copies), key=lambda packet: packet.dts * packet.time_base):
                output.mux(packet)
        return path.read_bytes()


def _first(container: av.container.InputContainer, kind: str) -> av.stream.Stream:
    streams = getattr(container.streams, kind)
    if not streams:
        raise ValueError(f"the MP4 has no {kind} stream")
    return streams[0]


def _copied(stream: av.stream.Stream, copy: av.stream.Stream) -> Iterator[av.Packet]:
    for packet in stream.container.demux(stream):
        if packet.dts is None:  # the demuxer's empty flush packet
            continue
        packet.stream = copy
        yield packet


def _video_duration(data: bytes) -> float:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = _first(container, "video")
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return (container.duration or 0) / av.time_base


def _decoded(data: bytes) -> Soundtrack:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = _first(container, "audio")
        planes = [frame.to_ndarray() for frame in container.decode(stream)]  # fltp: (channels, samples)
        return Soundtrack(np.concatenate(planes, axis=1).T.astype(np.float32), stream.codec_context.sample_rate)
