"""Images users send to Telegram: which file a message carries, checked before it is downloaded.

Photos arrive compressed in several sizes (the largest is last); an image sent as a document keeps
full quality. Sizes are checked against the Bot API's download limit and ours before any download,
so a refused file costs nothing but the answer. A declared type only spares a download: what the
bytes are is sniffed by the service, never taken from a name or a MIME type.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import BadRequest

from bot.errors import UserError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class ImageFile:
    file_id: str
    file_size: int | None  # as Telegram reports it; None when unknown


def image_in(message: Message) -> ImageFile | None:
    """The image a message carries (a photo, or an image document); UserError for another kind of file."""
    if message.photo:
        largest = message.photo[-1]
        return ImageFile(largest.file_id, largest.file_size)
    document = message.document
    if document is not None:
        if document.mime_type not in IMAGE_TYPES:
            kind = document.mime_type or "an unknown type"
            raise UserError(f"That file is {kind}, not an image; please send a JPEG, PNG or WebP.")
        return ImageFile(document.file_id, document.file_size)
    if message.sticker or message.animation or message.video:
        raise UserError("Stickers, GIFs and videos can't be animated; please send a photo (JPEG, PNG or WebP).")
    return None


def image_for(message: Message) -> ImageFile | None:
    """The message's own image, else the image of the message it replies to (`/video` as a reply)."""
    own = image_in(message)
    if own is not None or message.reply_to_message is None:
        return own
    return image_in(message.reply_to_message)


async def download(bot: Bot, image: ImageFile, limit_bytes: int) -> bytes:
    """The image's bytes, refused before the download when it is over `limit_bytes`."""
    if image.file_size is not None and image.file_size > limit_bytes:
        raise _too_large(image.file_size, limit_bytes)
    try:
        file = await bot.get_file(image.file_id)
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise _too_large(image.file_size, limit_bytes) from None
        raise
    if file.file_size is not None and file.file_size > limit_bytes:
        raise _too_large(file.file_size, limit_bytes)
    data = bytes(await file.download_as_bytearray())
    if len(data) > limit_bytes:
        raise _too_large(len(data), limit_bytes)
    return data


def _too_large(size: int | None, limit_bytes: int) -> UserError:
    shown = f"{size / 2**20:.1f} MB" if size else "too large"
    return UserError(f"The image is {shown}; the limit is {limit_bytes / 2**20:.0f} MB. Please send a smaller one.")
