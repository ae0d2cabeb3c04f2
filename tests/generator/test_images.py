"""Input images: hostile or broken uploads are refused with a message; good ones are sized for Wan."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from generator.contract.errors import BadImage
from generator.contract.images import MAX_ASPECT, ImageChecker, fit_image, load_image, sniff

LIMIT = 40_000_000


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a size, with one tiny compressed IDAT: a bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + \
        chunk(b"IEND", b"")


def many_scans_jpeg(side: int = 2000, repeats: int = 10_000) -> bytes:
    """A progressive JPEG whose last scan is repeated: a few hundred kB that libjpeg accepts, each repeat one
    more pass over every block, so it decodes for many seconds (side² × repeats) within any pixel limit."""
    data = encoded(Image.new("RGB", (side, side), "gray"), "JPEG", progressive=True, quality=50)
    last_scan, end = data.rindex(b"\xff\xda"), len(data) - 2  # the last SOS marker; EOI closes the file
    return data[:end] + data[last_scan:end] * repeats + data[end:]


def many_pages_tiff(pages: int = 16_000) -> bytes:
    """A TIFF of `pages` pages sharing one 32×32 strip, 114 bytes a page: Pillow's `n_frames` checks each page
    against all before it (quadratic), about 2 s on a laptop core for the default 1.8 MB."""
    data = bytearray(encoded(Image.new("L", (32, 32), 9), "TIFF"))
    first = struct.unpack_from("<I", data, 4)[0]  # little-endian ("II*\0"), the first IFD's offset
    entries = bytes(data[first:first + 2 + 12 * struct.unpack_from("<H", data, first)[0]])
    size, start = len(entries) + 4, len(data)
    struct.pack_into("<I", data, first + size - 4, start)  # the first page's next-IFD pointer: the chain
    pointers = [start + size * (page + 1) for page in range(pages - 2)] + [0]  # pages 2 … pages
    return bytes(data) + b"".join(entries + struct.pack("<I", pointer) for pointer in pointers)


def test_a_good_image_loads_fully() -> None:
    image = load_image(encoded(Image.new("RGB", (300, 200), "red"), "JPEG"), LIMIT)
    assert image.size == (300, 200) and image.getpixel((10, 10))[0] > 200


def corrupted(data: bytes) -> bytes:
    """Flip a byte inside the first IDAT chunk: the CRC no longer matches."""
    at = data.index(b"IDAT") + 8
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


BLUE_PNG = encoded(Image.new("RGB", (64, 64), "blue"))
BAD_UPLOADS = {
    "zero bytes": (b"", "The image is empty"),
    "text named .png": (b"hello, this is a text file named cat.png\n", "not an image I can read"),
    "truncated png": (BLUE_PNG[:-40], "damaged or incomplete"),
    "truncated jpeg": (encoded(Image.effect_noise((256, 256), 50).convert("RGB"), "JPEG")[:2000],
                       "damaged or incomplete"),
    "bad checksum": (corrupted(BLUE_PNG), "damaged or incomplete"),
    "decompression bomb": (png_header_only(30_000, 30_000), "too large; the limit is 40 megapixels"),
    "huge dimensions": (png_header_only(8_000, 6_000), "The image is 8000×6000 pixels; the limit is 40 megapixels"),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image I can read"),  # no Ghostscript
}


@pytest.mark.parametrize(("data", "message"), list(BAD_UPLOADS.values()), ids=list(BAD_UPLOADS))
def test_bad_uploads_are_refused_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(BadImage) as caught:
        load_image(data, LIMIT)
    assert message in caught.value.user_message


def test_the_pixel_limit_is_the_callers() -> None:
    data = encoded(Image.new("RGB", (200, 100)))
    assert load_image(data, 20_000).size == (200, 100)
    with pytest.raises(BadImage, match=r"200×100 pixels; the limit is 0\.0199 megapixels"):
        load_image(data, 19_900)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image = load_image(encoded(Image.new("RGB", (300, 200)), "JPEG", exif=exif.tobytes()), LIMIT)
    assert image.size == (200, 300)


def test_animations_and_tiny_pictures_are_refused() -> None:
    frames = [Image.new("RGB", (40, 40), color) for color in ("red", "blue", "green")]
    for fmt in ("PNG", "WEBP"):  # APNG and animated WebP: `is_animated` reads the frame count from the header
        with pytest.raises(BadImage, match="animated; please send a still picture"):
            load_image(encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0), LIMIT)
    still = load_image(encoded(frames[0], "WEBP", lossless=True), LIMIT)
    assert still.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    with pytest.raises(BadImage, match="1×1 pixels; please send one at least 32×32"):
        load_image(encoded(Image.new("RGB", (1, 1))), LIMIT)


OTHER_FORMATS = {
    "still GIF": encoded(Image.new("RGB", (64, 64)), "GIF"),
    "BMP": encoded(Image.new("RGB", (64, 64)), "BMP"),
    "TIFF": encoded(Image.new("RGB", (64, 64)), "TIFF"),
    "many-page TIFF": many_pages_tiff(50),
    "AVIF": encoded(Image.new("RGB", (64, 64)), "AVIF"),
    "ICO": encoded(Image.new("RGB", (64, 64)), "ICO"),
    "PPM": encoded(Image.new("RGB", (64, 64)), "PPM"),
    "PSD-like header": b"8BPS\x00\x01" + b"\x00" * 40,
}


@pytest.mark.parametrize("data", list(OTHER_FORMATS.values()), ids=list(OTHER_FORMATS))
def test_only_jpeg_png_and_webp_are_read(data: bytes) -> None:
    """Pillow could open each of these; the magic number says it is none of the three, so none is parsed."""
    assert sniff(data) is None
    with pytest.raises(BadImage, match="not an image I can read; please send a JPEG, PNG or WebP"):
        load_image(data, LIMIT)


def test_the_magic_number_picks_the_one_plugin_tried() -> None:
    photo = encoded(Image.new("RGB", (64, 64)), "WEBP")
    assert [sniff(data) for data in (encoded(Image.new("RGB", (64, 64)), "JPEG"), BLUE_PNG, photo)] == \
        ["JPEG", "PNG", "WEBP"]
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None  # a RIFF that is not a WebP
    with pytest.raises(BadImage, match="not an image I can read"):  # only the PNG plugin looks at it
        load_image(b"\x89PNG\r\n\x1a\n" + encoded(Image.new("RGB", (64, 64)), "TIFF"), LIMIT)


def test_fit_image_keeps_aspect_multiples_and_area() -> None:
    fitted = fit_image(Image.new("RGB", (1920, 1080)), 832, 480, 16)
    assert fitted.size == (832, 464)  # 16:9 into 480p's area: both sides rounded down to 16
    portrait = fit_image(Image.new("RGB", (300, 400)), 832, 480, 16)
    assert portrait.size == (544, 720)
    assert fit_image(Image.new("RGB", (500, 500)), 1280, 704, 32).size == (928, 928)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(1, 2000),
    height=st.integers(1, 2000),
    target=st.sampled_from([(832, 480), (1280, 720), (1280, 704), (64, 32), (96, 48)]),
    multiple=st.sampled_from([16, 32]),
)
def test_fit_image_properties(width: int, height: int, target: tuple[int, int], multiple: int) -> None:
    if target[0] % multiple or target[1] % multiple:
        return
    fitted = fit_image(Image.new("RGB", (width, height)), *target, multiple)
    w, h = fitted.size
    assert w % multiple == 0 and h % multiple == 0 and w >= multiple and h >= multiple
    assert w * h <= target[0] * target[1]
    kept = min(max(width / height, 1 / MAX_ASPECT), MAX_ASPECT)
    # Rounding down by up to one multiple per side bends the aspect a little, never more.
    assert (w - multiple) / (h + multiple) <= kept <= (w + multiple) / max(h - multiple, 1)


def test_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 32, 64))
    fitted = fit_image(image, 64, 64, 16)
    assert fitted.mode == "RGB"
    assert fitted.getpixel((8, 32)) == (0, 0, 255) and fitted.getpixel((56, 32)) == (255, 255, 255)
    palette = Image.new("P", (32, 32), 0)
    palette.info["transparency"] = 0
    assert fit_image(palette, 32, 32, 16).getpixel((4, 4)) == (255, 255, 255)


def test_a_panorama_is_centre_cropped_to_the_widest_aspect() -> None:
    panorama = Image.new("RGB", (1000, 100), "red")
    panorama.paste("blue", (450, 0, 550, 100))
    fitted = fit_image(panorama, 832, 480, 16)
    assert fitted.size == (1248, 304)
    assert fitted.getpixel((624, 150))[2] > 200  # the middle survives the crop


async def test_the_checker_refuses_what_load_image_refuses_in_a_child_process() -> None:
    checker = ImageChecker(LIMIT, timeout_s=60)
    await checker.check(encoded(Image.new("RGB", (300, 200), "red"), "JPEG"), "console:alice")
    for data, message in (BAD_UPLOADS["bad checksum"], BAD_UPLOADS["huge dimensions"], BAD_UPLOADS["zero bytes"]):
        with pytest.raises(BadImage) as caught:
            await checker.check(data, "console:alice")
        assert message in caught.value.user_message


async def test_a_slow_image_is_refused_at_its_time_budget_while_others_are_checked() -> None:
    """The many-scan JPEG would decode for many seconds: its child is killed at the budget. Meanwhile its
    sender may not start a second check, and another sender's image is checked in the other slot."""
    checker = ImageChecker(LIMIT, timeout_s=1)
    slow = asyncio.create_task(checker.check(many_scans_jpeg(), "console:mallory"))
    await asyncio.sleep(0)  # let it take its slot
    with pytest.raises(BadImage, match="still checking your previous image"):
        await checker.check(BLUE_PNG, "console:mallory")
    await checker.check(BLUE_PNG, "console:alice")
    assert not slow.done()
    with pytest.raises(BadImage, match=r"takes too long to read \(over 1 s\)"):
        await slow
    await checker.check(BLUE_PNG, "console:mallory")  # the refusal frees the sender's turn
