"""A wanbot Telegram bot, built as `wanbot bot` builds it, polling the Bot API emulator."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from bot.service import BotService
from bot.telegram.app import build_application, frontend_of, polling
from generator.contract.config import AdminSettings, Config, TelegramSettings
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator, StoredMessage
from wanbot.app import FrontEndStart, frontends_started, open_service

ADMIN = ApiUser(1001, "Ada", "ada")
ALICE = ApiUser(2002, "Alice", "alice")
MALLORY = ApiUser(3003, "Mallory", "mallory")


@pytest.fixture
async def api() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture
def telegram_config(config: Config, api: BotApiEmulator) -> Config:
    return config.model_copy(update={
        "telegram": TelegramSettings(token=api.token, base_url=api.base_url, base_file_url=api.base_file_url),
        "admins": AdminSettings(telegram=[str(ADMIN.id)]),
        "credits": config.credits.model_copy(update={"max_jobs_in_flight": 4}),
    })


@contextlib.asynccontextmanager
async def running_telegram(config: Config, flood_limits: bool = True) -> AsyncIterator[BotService]:
    """The service and the Telegram Application, started in `wanbot bot`'s order."""
    async with open_service(config) as service:
        application = build_application(config.telegram, service, config.bot.max_image_bytes, flood_limits)
        async with application, frontends_started(service, [FrontEndStart(frontend_of(application),
                                                                            polling(application))]):
            yield service


@pytest.fixture
async def telegram(telegram_config: Config) -> AsyncIterator[BotService]:
    async with running_telegram(telegram_config) as service:
        yield service


def png(width: int = 120, height: int = 80, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


async def send(api: BotApiEmulator, update: dict, chat: ApiChat, replies: int = 1) -> list[StoredMessage]:
    """Push a user's update and wait for the bot's next `replies` messages in that chat."""
    before = len(api.sent(chat.id))
    api.push_update(update)
    await api.wait_for(lambda: len(api.sent(chat.id)) >= before + replies)
    return api.sent(chat.id)[before:]


async def say(api: BotApiEmulator, user: ApiUser, text: str, chat: ApiChat | None = None) -> StoredMessage:
    chat = chat or ApiChat.private(user)
    return (await send(api, api.text_message(user, chat, text), chat))[0]
