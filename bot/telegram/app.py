"""Build the python-telegram-bot Application: every handler registered in one readable block.

`[telegram] base_url` / `base_file_url` point the client at a self-hosted Bot API server (which
lifts the 20 MB download and 50 MB upload limits); the token never reaches the logs (httpx's
request log, which prints URLs with the token in them, is kept at WARNING).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.service import BotService
from bot.telegram import handlers
from bot.telegram.frontend import TelegramFrontEnd
from bot.telegram.handlers import DEPS, TelegramDeps
from generator.contract.config import TelegramSettings

logger = logging.getLogger("wanbot.telegram")

VIDEO_CAPTION = filters.CaptionRegex(r"^/video(@\w+)?(\s|$)")
COMMANDS = [
    BotCommand("video", "make a video: /video <prompt> [--ar 16:9] [--res 480p] [--seconds N] [--seed N]"),
    BotCommand("balance", "your credits"),
    BotCommand("queue", "your jobs and their places in the queue"),
    BotCommand("cancel", "stop a job: /cancel [job]"),
    BotCommand("help", "commands, flags and prices"),
]


def build_application(settings: TelegramSettings, service: BotService, max_image_bytes: int,
                      flood_limits: bool = True) -> Application:
    """The bot's Application; `flood_limits=False` only to measure the bot's own speed in benchmarks."""
    builder = (
        ApplicationBuilder()
        .token(settings.token.get_secret_value())
        .concurrent_updates(True)
        .media_write_timeout(settings.upload_timeout_s)
    )
    if flood_limits:  # Telegram's limits (30 messages/s, 20/min per group), and retries after a 429
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    if settings.base_url:
        builder = builder.base_url(settings.base_url)
    if settings.base_file_url:
        builder = builder.base_file_url(settings.base_file_url)
    application = builder.build()
    frontend = TelegramFrontEnd(application.bot, settings.upload_limit_mb * 2**20)
    application.bot_data[DEPS] = TelegramDeps(
        service=service,
        frontend=frontend,
        download_limit_bytes=min(max_image_bytes, settings.download_limit_mb * 2**20),
    )

    application.add_handler(TypeHandler(Update, handlers.drop_seen_updates), group=-1)
    application.add_handler(CommandHandler(["start", "help"], handlers.help_command))
    application.add_handler(CommandHandler("video", handlers.video))
    application.add_handler(MessageHandler(filters.CAPTION & VIDEO_CAPTION, handlers.video))  # refuses non-images
    application.add_handler(CommandHandler(["balance", "queue", "cancel", "admin"], handlers.text_command))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, handlers.vary_reply))
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE, handlers.unknown))
    application.add_error_handler(handlers.on_error)
    return application


def frontend_of(application: Application) -> TelegramFrontEnd:
    deps: TelegramDeps = application.bot_data[DEPS]
    return deps.frontend


@contextlib.asynccontextmanager
async def polling(application: Application) -> AsyncIterator[None]:
    """Receive updates until the block ends (the Application must be initialized: `async with application`)."""
    await application.bot.set_my_commands(COMMANDS)
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
    logger.info("telegram bot @%s is polling", application.bot.username)
    try:
        yield
    finally:
        await application.updater.stop()
        await application.stop()
