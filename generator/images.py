"""Input images: open untrusted bytes safely, and size an image for image-to-video.

The bot calls `load_image` to refuse a bad upload before charging; the worker calls it again on the
same bytes. Both run without torch.
"""

from __future__ import annotations

import functools
import io
import math

from PIL import Image, ImageOps, UnidentifiedImageError

from generator.errors import BadImage

# A more elongated image would leave its short side a few pixels (and overrun the model's positional
# tables along the long one): it is centre-cropped to this aspect ratio first.
MAX_ASPECT = 4.0
MIN_SIDE = 32  # smaller pictures hold nothing to animate
_WANTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")


@functools.cache
def _formats() -> tuple[str, ...]:
    """Common photo formats only: some other Pillow plugins run external programs or exotic decoders."""
    Image.init()
    return tuple(name for name in _WANTED_FORMATS if name in Image.OPEN)


def load_image(data: bytes, max_pixels: int) -> Image.Image:
    """A still uploaded image, upright (EXIF orientation applied), fully decoded."""
    if not data:
        raise BadImage("The image is empty (0 bytes). Please send it again.")
    try:
        with Image.open(io.BytesIO(data), formats=_formats()) as header:
            width, height = header.size
            animated = getattr(header, "n_frames", 1) > 1
    except UnidentifiedImageError:
        raise BadImage("That file is not an image I can read; please send a JPEG, PNG or WebP.") from None
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
        with Image.open(io.BytesIO(data), formats=_formats()) as check:
            check.verify()  # checksums and structure, on a copy: verify() leaves its image unusable
        with Image.open(io.BytesIO(data), formats=_formats()) as image:
            image.load()  # decodes fully here, so a truncated file fails here and not in the worker
            return ImageOps.exif_transpose(image)
    except Exception:
        raise BadImage("The image is damaged or incomplete; please send it again.") from None


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
