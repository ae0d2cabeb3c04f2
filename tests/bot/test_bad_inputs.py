"""A corpus of bad inputs through the shared command path every front end uses: each gets a clear
answer, none a traceback or an apology for an internal error, and none costs a credit."""

from __future__ import annotations

import pytest
from PIL import Image

from bot.commands import Message, handle
from tests.conftest import Stack
from tests.generator.test_images import encoded, many_pages_tiff, png_header_only

PHOTO = encoded(Image.new("RGB", (120, 80), (10, 120, 200)))
JPEG = encoded(Image.new("RGB", (120, 80), (10, 120, 200)), "JPEG")
FRAMES = [Image.new("RGB", (64, 64), color) for color in ("red", "blue")]
NOT_OURS = "not an image I can read; please send a JPEG, PNG or WebP"
BAD_CRC = PHOTO[:-20] + bytes([PHOTO[-20] ^ 0xFF]) + PHOTO[-19:]  # a flipped bit in the pixel data

# (what it is, the command text, an attached image or None, a phrase the answer must contain)
CORPUS: list[tuple[str, str, bytes | None, str]] = [
    ("no prompt", "/video", None, "Please describe the video"),
    ("only spaces", "/video      ", None, "Please describe the video"),
    ("only zero-width characters", "/video \u200b\u200c\u200d\ufeff", None, "Please describe the video"),
    ("NUL byte", "/video a fox\x00 in snow", None, "control character"),
    ("bell", "/video a fox\x07", None, "control character"),
    ("terminal escape", "/video \x1b[31mred fox", None, "control character"),
    ("lone surrogate", "/video a fox \ud800", None, "control character"),
    ("right-to-left override", "/video a fox \u202egnineve", None, "text-direction control"),
    ("bidi isolate", "/video \u2066a fox\u2069", None, "text-direction control"),
    ("prompt too long", "/video " + "fox " * 250, None, "the limit is 800"),
    ("negative prompt too long", '/video a fox --neg "' + "x" * 900 + '"', None, "negative prompt is too long"),
    ("sound prompt too long", '/video a fox --sound "' + "x" * 900 + '"', None, "sound prompt is too long"),
    ("sound from a silent deployment", "/video a fox --audio", None, "without sound"),
    ("unknown aspect", "/video a fox --ar 4:3", None, "--ar must be one of"),
    ("aspect without value", "/video a fox --ar", None, "--ar needs a value"),
    ("aspect twice", "/video a fox --ar 16:9 --ar 9:16", None, "given twice"),
    ("unknown resolution", "/video a fox --res 1080p", None, "--res must be one of"),
    ("seconds not a number", "/video a fox --seconds abc", None, "--seconds must be a number"),
    ("negative seconds", "/video a fox --seconds -1", None, "--seconds must be between"),
    ("zero seconds", "/video a fox --seconds 0", None, "--seconds must be between"),
    ("infinite seconds", "/video a fox --seconds 1e999", None, "--seconds must be between"),
    ("NaN seconds", "/video a fox --seconds nan", None, "--seconds must be between"),
    ("too many seconds", "/video a fox --seconds 99", None, "--seconds must be between"),
    ("negative seed", "/video a fox --seed -1", None, "--seed must be a whole number"),
    ("seed past 32 bits", "/video a fox --seed 4294967296", None, "--seed must be a whole number"),
    ("fractional seed", "/video a fox --seed 1.5", None, "--seed must be a whole number"),
    ("non-ASCII digits seed", "/video a fox --seed ١٢٣", None, "--seed must be a whole number"),
    ("unknown flag", "/video a fox --fps 60", None, "Unknown flag --fps"),
    ("negative prompt flag without value", "/video a fox --neg", None, "--neg needs a value"),
    ("text with an image's name", "/video move", b"GIF89a? not really", "not an image I can read"),
    ("plain text as an image", "/video move", b"hello, I am a cat.png", "not an image I can read"),
    ("a PDF", "/video move", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not an image I can read"),
    ("an SVG", "/video move", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not an image I can read"),
    ("HTML", "/video move", b"<!doctype html><img src=x onerror=alert(1)>", "not an image I can read"),
    ("zero bytes", "/video move", b"", "empty (0 bytes)"),
    ("JPEG start only", "/video move", b"\xff\xd8\xff", "not an image I can read"),
    ("truncated PNG", "/video move", PHOTO[: len(PHOTO) // 2], "damaged"),
    ("truncated JPEG", "/video move", JPEG[: len(JPEG) // 2], "damaged"),
    ("PNG with a bad checksum", "/video move", BAD_CRC, "damaged"),
    ("decompression bomb", "/video move", png_header_only(60_000, 60_000), "the limit is 40 megapixels"),
    ("huge dimensions", "/video move", encoded(Image.new("1", (7_000, 6_000))), "7000×6000 pixels"),
    ("animated GIF", "/video move", encoded(FRAMES[0], "GIF", save_all=True, append_images=FRAMES[1:]), NOT_OURS),
    ("animated PNG", "/video move", encoded(FRAMES[0], "PNG", save_all=True, append_images=FRAMES[1:]), "animated"),
    ("animated WebP", "/video move", encoded(FRAMES[0], "WEBP", save_all=True, append_images=FRAMES[1:]), "animated"),
    ("a many-page TIFF", "/video move", many_pages_tiff(20), NOT_OURS),
    ("a BMP", "/video move", encoded(FRAMES[0], "BMP"), NOT_OURS),
    ("a 1×1 picture", "/video move", encoded(Image.new("RGB", (1, 1))), "at least 32×32"),
    ("over 20 MB", "/video move", PHOTO + b"\0" * (20 * 2**20), "the limit is 20 MB"),
    ("cancel an unknown job", "/cancel 0123456789ab", None, "There is no job 0123456789ab"),
    ("cancel a path", "/cancel ../../etc/passwd", None, "There is no job"),
    ("admin from a user", "/admin grant console:alice 1000000", None, "Only the bot's admins"),
    ("unknown command", "/videoo a fox", None, "Unknown command /videoo"),
]


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40 and len({label for label, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("label", "text", "image", "expected"), CORPUS, ids=[entry[0] for entry in CORPUS])
async def test_a_bad_input_gets_a_clear_answer_and_costs_nothing(stack: Stack, label: str, text: str,
                                                                 image: bytes | None, expected: str) -> None:
    reply = await handle(stack.service, Message(stack.user(), text, image=image))
    assert reply is not None and expected in reply, (label, reply)
    assert not reply.startswith("🎬") and "Traceback" not in reply and "Sorry, something went wrong" not in reply
    assert await stack.service.jobs.unfinished("console:alice") == []
    assert await stack.service.ledger.active_reservations("console:alice") == []
    view = await stack.service.ledger.view("console:alice")
    assert view.balance in (0, 200) and view.reserved == 0  # untouched, or just the signup grant
