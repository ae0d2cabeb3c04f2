"""MP4 encoding: H.264 yuv420p with faststart, even sides, and byte limits met or refused."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from generator.contract.encode import encode_mp4, probe_mp4, shrink_mp4
from generator.contract.errors import VideoTooLarge


def noise(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random pixels: the worst case for a video encoder, so limits bite on tiny clips."""
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def first_frame(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_encode_makes_a_faststart_h264_clip() -> None:
    data = encode_mp4(noise(17, 32, 64), 8)
    info = probe_mp4(data)
    assert (info.frames, info.width, info.height, info.fps) == (17, 64, 32, 8.0)
    assert (info.codec, info.pix_fmt, info.faststart) == ("h264", "yuv420p", True)
    assert info.duration_s == pytest.approx(17 / 8)


def test_colours_survive_the_round_trip() -> None:
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    frames[...] = (200, 60, 30)
    assert np.abs(first_frame(encode_mp4(frames, 16)).astype(int) - (200, 60, 30)).max() <= 3


def test_odd_sides_are_padded_to_even() -> None:
    info = probe_mp4(encode_mp4(noise(5, 31, 45), 16))
    assert (info.width, info.height, info.frames) == (46, 32, 5)


def test_frames_must_be_uint8_rgb() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_mp4(np.zeros((5, 32, 32, 3), np.float32), 16)


def test_over_the_limit_it_re_encodes_smaller() -> None:
    unlimited = encode_mp4(noise(17, 32, 64), 8)
    limit = len(unlimited) // 2
    data = shrink_mp4(unlimited, limit)
    assert len(data) <= limit
    info = probe_mp4(data)
    assert (info.frames, info.width, info.height, info.faststart) == (17, 64, 32, True)
    assert shrink_mp4(unlimited, 2 * len(unlimited)) is unlimited  # under the limit: kept as it is


def test_an_impossible_limit_raises_video_too_large() -> None:
    with pytest.raises(VideoTooLarge) as caught:
        shrink_mp4(encode_mp4(noise(17, 32, 64), 8), 500)
    assert caught.value.max_bytes == 500 and caught.value.size > 500
    assert "too large" in caught.value.user_message


def test_shrink_meets_the_limit_and_scales_down_when_bits_are_scarce() -> None:
    big = np.repeat(np.repeat(noise(17, 32, 64), 8, axis=1), 8, axis=2)  # 512×256 blocks of noise
    data = encode_mp4(big, 8)
    assert shrink_mp4(data, len(data)) == data
    for limit in (len(data) // 4, 10_000):
        shrunk = shrink_mp4(data, limit)
        info = probe_mp4(shrunk)
        assert len(shrunk) <= limit
        assert (info.frames, info.fps, info.codec, info.pix_fmt, info.faststart) == (17, 8.0, "h264", "yuv420p", True)
        assert info.width % 2 == 0 and info.height % 2 == 0
    assert probe_mp4(shrink_mp4(data, 10_000)).width < 512  # too few bits for 512×256: a smaller picture


def test_shrink_raises_when_nothing_fits() -> None:
    with pytest.raises(VideoTooLarge):
        shrink_mp4(encode_mp4(noise(17, 32, 64), 8), 300)


def test_probe_sees_a_file_without_faststart() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in noise(5, 32, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe_mp4(buffer.getvalue())
    assert info.frames == 5 and not info.faststart
