"""`wanbot bot`: the chat front ends that have a token configured, sharing one ledger and queue.

Start-up order matters: each front end is initialized and registered with the service, then the
delivery watcher starts (it may deliver at once what a previous run left behind), then the front
ends start receiving (`wanbot.app.frontends_started`). SIGTERM and SIGINT stop it in the reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from bot.console import ConsoleFrontEnd, run_console
from bot.frontend import User
from bot.service import BotService
from generator.contract import metrics
from generator.contract.config import Config
from wanbot.app import FrontEndStart, frontends_started, open_service

logger = logging.getLogger("wanbot.bot")


async def run_bot(config: Config, console: bool = False) -> int:
    telegram = bool(config.telegram.token.get_secret_value())
    discord = bool(config.discord.token.get_secret_value())
    if not (telegram or discord or console):
        logger.error("no front end configured: set [telegram] or [discord] token (or TELEGRAM_TOKEN / "
                     "DISCORD_TOKEN), or pass --console")
        return 2
    async with contextlib.AsyncExitStack() as stack:
        service = await stack.enter_async_context(open_service(config))
        starts: list[FrontEndStart] = []
        if telegram:
            from bot.telegram.app import build_application, frontend_of, polling

            application = build_application(config.telegram, service, config.bot.max_image_bytes)
            await stack.enter_async_context(application)  # closed after the service stops
            starts.append(FrontEndStart(frontend_of(application), polling(application)))
        if discord:
            from bot.discord.client import build_client, connected

            client = build_client(service)
            starts.append(FrontEndStart(client.frontend, connected(client, config.discord.token.get_secret_value())))
        frontend = ConsoleFrontEnd(Path(config.bot.output_dir))
        if console:
            starts.append(FrontEndStart(frontend))
        await stack.enter_async_context(frontends_started(service, starts))
        if config.bot.metrics_port:
            await stack.enter_async_context(metrics.serving(config.bot.metrics_port, health_checks(service),
                                                            config.bot.metrics_host))
        if console:
            await run_console(service, frontend, User("console", "local", "you"), sys.stdin)
        else:
            await _until_signalled()
    return 0


def health_checks(service: BotService) -> dict[str, metrics.HealthCheck]:
    """What the bot cannot work without: its SQLite file and the delivery watcher (Redis may come and go)."""

    async def sqlite() -> str | None:
        await service.jobs.count_by_state()
        return None

    async def delivery() -> str | None:
        return None if service.watcher.running else "the delivery watcher stopped"

    return {"sqlite": sqlite, "delivery": delivery}


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("stopping")
