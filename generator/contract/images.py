"""Input images: open untrusted bytes safely, and size an image for image-to-video.

Only JPEG, PNG and WebP are read, recognised by their first bytes (never by a file's name or
declared type): other Pillow plugins parse exotic containers, some slowly (a many-page TIFF),
some with external programs. The bot checks an upload with `ImageChecker` before charging: the
decode runs in a child process, a few at a time, killed when it takes longer than its budget,
so a hostile picture costs its sender a refusal and other users nothing. The worker calls
`load_image` again on the same bytes. Both run without torch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import resource
import signal
import sys
import time
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from generator.contract.errors import BadImage

logger = logging.getLogger("wanbot.images")

# A more elongated image would leave its short side a few pixels (and overrun the model's positional
# tables along the long one): it is centre-cropped to this aspect ratio first.
MAX_ASPECT = 4.0
MIN_SIDE = 32  # smaller pictures hold nothing to animate
CHECKS_AT_ONCE = 2  # child processes decoding uploads at the same time, whoever sent them
REFUSED_EXIT = 3  # the child's exit status for a BadImage; its message is on stdout
WALL_LIMIT_FACTOR = 10  # a child still running after this many times its CPU budget gets no CPU: killed
NOT_READABLE = "That file is not an image I can read; please send a JPEG, PNG or WebP."
EMPTY = "The image is empty (0 bytes). Please send it again."


def sniff(data: bytes) -> str | None:
    """The Pillow format the bytes' magic number names (JPEG, PNG or WEBP), or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _format_of(data: bytes) -> str:
    """The sniffed format, or the refusal of bytes that cannot be a picture we read."""
    if not data:
        raise BadImage(EMPTY)
    found = sniff(data)
    if found is None:
        raise BadImage(NOT_READABLE)
    return found


def load_image(data: bytes, max_pixels: int) -> Image.Image:
    """A still uploaded image, upright (EXIF orientation applied), fully decoded."""
    formats = (_format_of(data),)  # the one plugin the magic number names, and no other
    try:
        with Image.open(BytesIO(data), formats=formats) as header:
            width, height = header.size
            animated = getattr(header, "is_animated", False)  # read from the header: no frame is walked
    except UnidentifiedImageError:
        raise BadImage(NOT_READABLE) from None
    except Image.DecompressionBombError:
        raise _too_large(None, None, max_pixels) from None
    except Exception:  # a hostile header can make any decoder raise anything
        raise BadImage("The image could not be read; it may be damaged. Please send it again.") from None
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)
    if min(width, height) < MIN_SIDE:
        raise BadImage(f"The image is {width}×{height} pixels; please send one at least {MIN_SIDE}×{MIN_SIDE}.")
    if animated:
        raise BadImage("That image is animated; please send a still picture (JPEG, PNG or WebP).")
    try:
        with Image.open(BytesIO(data), formats=formats) as check:
            check.verify()  # checksums and structure, on a copy: verify() leaves its image unusable
        with Image.open(BytesIO(data), formats=formats) as image:
            image.load()  # decodes fully here, so a truncated file fails here and not in the worker
            return ImageOps.exif_transpose(image)
    except Exception:
        raise BadImage("The image is damaged or incomplete; please send it again.") from None


class ImageChecker:
    """Decodes uploads off the event loop: in a child process, `CHECKS_AT_ONCE` at a time, each within
    `timeout_s` seconds of CPU time, and one at a time per sender, so nobody can take every slot.

    The budget is CPU time (the kernel stops the child at it), not wall time: what a hostile image costs
    is CPU, and a busy machine stretches a harmless decode's wall time without making it any costlier.
    A child that gets no CPU at all is still killed after `WALL_LIMIT_FACTOR` times the budget.
    """

    def __init__(self, max_pixels: int, timeout_s: float) -> None:
        self.max_pixels = max_pixels
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(CHECKS_AT_ONCE)
        self._senders: set[str] = set()

    async def check(self, data: bytes, sender: str) -> None:
        """Return when `data` is an image the worker will load; BadImage (the sentence to show) otherwise."""
        _format_of(data)  # no process for what cannot be a picture at all
        if sender in self._senders:
            raise BadImage("I'm still checking your previous image; please wait for its answer, then send this one.")
        self._senders.add(sender)
        try:
            async with self._slots:
                await self._in_child(data, sender)
        finally:
            self._senders.discard(sender)

    async def _in_child(self, data: bytes, sender: str) -> None:
        logger.info("decoding a %d-byte %s image of %s", len(data), sniff(data), sender)
        started = time.monotonic()
        child = await asyncio.create_subprocess_exec(  # no token in its environment, no data dir as its cwd
            sys.executable, "-I", "-m", "generator.contract.images", str(self.max_pixels), str(self.timeout_s),
            env=_child_env(), cwd="/",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(self.timeout_s * WALL_LIMIT_FACTOR):
                verdict, stderr = await child.communicate(data)
        except TimeoutError:
            raise self._too_slow(sender, data) from None
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        if child.returncode == -signal.SIGXCPU:  # the kernel stopped it at its CPU budget
            raise self._too_slow(sender, data)
        if child.returncode == REFUSED_EXIT:
            raise BadImage(verdict.decode())
        if child.returncode != 0:
            last = stderr.decode(errors="replace").strip().splitlines()[-1:]
            logger.warning("image check of %s (%d bytes) died with status %s: %s", sender, len(data),
                           child.returncode, last[0] if last else "no output")
            raise BadImage("The image could not be read; it may be damaged. Please send it again.")
        logger.debug("image of %s (%d bytes) checked in %.2fs", sender, len(data), time.monotonic() - started)

    def _too_slow(self, sender: str, data: bytes) -> BadImage:
        logger.warning("image of %s (%d bytes) still decoding after its %.1fs budget: refused", sender, len(data),
                       self.timeout_s)
        return BadImage(f"That image takes too long to read (over {self.timeout_s:g} s); "
                        "please send a simpler JPEG, PNG or WebP.")


def _child_env() -> dict[str, str]:
    """Only what loading shared libraries may need: the bot's environment holds its tokens."""
    return {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}


def _check_stdin(max_pixels: int, cpu_budget_s: float) -> int:
    """The child's side: the image on stdin, at a low CPU priority and within its CPU budget (SIGXCPU
    past it); its exit status is the verdict."""
    budget = math.ceil(cpu_budget_s)  # the kernel counts whole seconds
    resource.setrlimit(resource.RLIMIT_CPU, (budget, budget + 1))
    os.nice(10)  # the bot's event loop comes first when the cores are busy
    try:
        load_image(sys.stdin.buffer.read(), max_pixels)
    except BadImage as error:
        sys.stdout.buffer.write(error.user_message.encode())
        return REFUSED_EXIT
    return 0


def _too_large(width: int | None, height: int | None, max_pixels: int) -> BadImage:
    size = f"{width}×{height} pixels" if width and height else "too large"
    return BadImage(f"The image is {size}; the limit is {max_pixels / 1e6:g} megapixels.")


def fit_image(image: Image.Image, width: int, height: int, multiple: int) -> Image.Image:
    """Resize to about width*height pixels keeping the aspect ratio, sides multiples of `multiple`.

    As the official Wan image-to-video code does: both sides are rounded down, so the area never
    exceeds the target. Transparency is flattened onto white; the result is RGB.
    """
    image = _crop_aspect(_rgb(image))
    area = width * height
    aspect = image.height / image.width
    fitted_height = max(multiple, int(math.sqrt(area * aspect)) // multiple * multiple)
    fitted_width = max(multiple, int(math.sqrt(area / aspect)) // multiple * multiple)
    return image.resize((fitted_width, fitted_height), Image.Resampling.LANCZOS)


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _crop_aspect(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width > height * MAX_ASPECT:
        keep = round(height * MAX_ASPECT)
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    if height > width * MAX_ASPECT:
        keep = round(width * MAX_ASPECT)
        top = (height - keep) // 2
        return image.crop((0, top, width, top + keep))
    return image


if __name__ == "__main__":
    sys.exit(_check_stdin(int(sys.argv[1]), float(sys.argv[2])))
