"""Hostile images cost their sender a refusal and everyone else nothing: other users are answered while
one decodes, formats other than JPEG, PNG and WebP are refused from their bytes whatever they are called,
and a banned or flooding user's upload is neither downloaded nor decoded.

Driven through the real python-telegram-bot client against the Bot API emulator, with a real
redis-server and SQLite ledger; the decode runs in the child process the bot uses in production.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from PIL import Image

from bot.commands import Message, handle
from bot.service import BotService
from generator.contract.config import Config, TelegramSettings
from tests.conftest import Stack
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator
from tests.generator.test_images import encoded, many_pages_tiff, many_scans_jpeg
from tests.telegram.conftest import ALICE, MALLORY, png, running_telegram, say, send

BUDGET_S = 2.0  # the many-scan JPEG decodes for far longer than this on any machine
NOT_OURS = "not an image I can read; please send a JPEG, PNG or WebP"
MALLORYS_CHAT = ApiChat.private(MALLORY)
SQUARE = Image.new("RGB", (64, 64), "teal")


@pytest.fixture
async def bot(config: Config) -> AsyncIterator[tuple[BotApiEmulator, BotService]]:
    """The Telegram bot as `wanbot bot` runs it, with a short decode budget."""
    async with BotApiEmulator() as api:
        settings = config.model_copy(update={
            "telegram": TelegramSettings(token=api.token, base_url=api.base_url, base_file_url=api.base_file_url),
            "bot": config.bot.model_copy(update={"image_check_timeout_s": BUDGET_S}),
        })
        async with running_telegram(settings) as service:
            yield api, service


class _Decoding(logging.Handler):
    """Sets `started` when the image checker says it is decoding an image of `account`."""

    def __init__(self, account: str) -> None:
        super().__init__(logging.INFO)
        self.account = account
        self.started = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("decoding") and record.getMessage().endswith(self.account):
            self.started.set()


@pytest.fixture
def decoding() -> Iterator[_Decoding]:
    images = logging.getLogger("wanbot.images")
    handler, level = _Decoding(f"telegram:{MALLORY.id}"), images.level
    images.addHandler(handler)
    images.setLevel(logging.INFO)
    yield handler
    images.removeHandler(handler)
    images.setLevel(level)


def send_document(api: BotApiEmulator, user: ApiUser, data: bytes, name: str, mime_type: str, caption: str) -> None:
    file_id, _ = api.add_file(data, file_name=name)
    api.push_update(api.document_message(user, ApiChat.private(user), file_id, name, mime_type, caption=caption))


async def assert_free(service: BotService, user: ApiUser) -> None:
    account = f"telegram:{user.id}"
    view = await service.ledger.view(account)
    assert (view.balance, view.reserved) in ((0, 0), (200, 0))  # untouched, or just the signup grant
    assert await service.jobs.unfinished(account) == []


async def test_other_users_are_answered_while_a_hostile_image_is_decoded(
        bot: tuple[BotApiEmulator, BotService], decoding: _Decoding) -> None:
    api, service = bot
    send_document(api, MALLORY, many_scans_jpeg(), "cat.png", "image/png", "/video the cat dances")
    async with asyncio.timeout(30):  # as long as the emulator's waits
        await decoding.started.wait()
    balance = await say(api, ALICE, "/balance")
    assert balance.text.startswith("Balance: 200 credits")
    assert api.sent(MALLORYS_CHAT.id) == []  # Alice was answered while Mallory's image was still decoding
    refusal = await api.wait_for(lambda: api.sent(MALLORYS_CHAT.id))
    assert f"takes too long to read (over {BUDGET_S:g} s)" in refusal[0].text
    await assert_free(service, MALLORY)


@pytest.mark.parametrize(("data", "name", "mime_type"), [
    (many_pages_tiff(), "cat.png", "image/png"),
    (encoded(SQUARE, "GIF"), "cat.jpg", "image/jpeg"),
    (encoded(SQUARE, "BMP"), "cat.webp", "image/webp"),
], ids=["many-page TIFF named cat.png", "GIF named cat.jpg", "BMP named cat.webp"])
async def test_other_formats_are_refused_from_their_bytes_whatever_their_name(
        bot: tuple[BotApiEmulator, BotService], data: bytes, name: str, mime_type: str) -> None:
    api, service = bot
    send_document(api, MALLORY, data, name, mime_type, "/video the cat dances")
    refusal = await api.wait_for(lambda: api.sent(MALLORYS_CHAT.id))
    assert NOT_OURS in refusal[0].text
    await assert_free(service, MALLORY)


async def test_a_banned_or_flooding_users_upload_is_never_downloaded(bot: tuple[BotApiEmulator, BotService]) -> None:
    api, service = bot
    await service.ledger.ban(f"telegram:{MALLORY.id}", "test", "spam")
    photo = api.add_photo(png(300, 200))
    (refusal,) = await send(api, api.photo_message(MALLORY, MALLORYS_CHAT, photo, "/video the bird flies"),
                            MALLORYS_CHAT)
    assert "is banned: spam" in refusal.text
    flooder = ApiUser(4004, "Flo", "flo")
    for _ in range(service.config.bot.command_burst):
        await say(api, flooder, "/balance")
    (slow_down,) = await send(api, api.photo_message(flooder, ApiChat.private(flooder), photo, "/video again"),
                              ApiChat.private(flooder))
    assert "too fast" in slow_down.text
    assert api.downloads == []


async def test_a_ban_is_checked_before_the_image_is_read(stack: Stack) -> None:
    await stack.service.ledger.ban("console:mallory", "test", "spam")
    reply = await handle(stack.service, Message(stack.user("mallory"), "/video move", image=many_pages_tiff()))
    assert reply is not None and "is banned: spam" in reply
