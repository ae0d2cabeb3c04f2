"""`wanbot bot`: the chat front ends that have a token configured, sharing one ledger and queue."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from bot.console import ConsoleFrontEnd, run_console
from bot.frontend import User
from wanbot.app import open_service
from wanbot.config import Config

logger = logging.getLogger("wanbot.bot")


async def run_bot(config: Config, console: bool = False) -> int:
    platforms = [name for name in ("telegram", "discord") if getattr(config, name).token.get_secret_value()]
    if platforms:
        logger.error("front ends for %s are not part of this build yet", ", ".join(platforms))
        return 2
    if not console:
        logger.error("no front end configured: set [telegram] or [discord] token, or pass --console")
        return 2
    async with open_service(config) as service:
        frontend = ConsoleFrontEnd(Path(config.bot.output_dir))
        service.add_frontend(frontend)
        await service.start()
        await run_console(service, frontend, User("console", "local", "you"), sys.stdin)
    return 0
