"""`wanbot discord-sync`: publish the slash commands once, on purpose.

Discord allows 200 command creations per day per guild, so the bot never syncs on start; run this
after installing or upgrading (with `--guild ID` it applies to that server at once).
"""

from __future__ import annotations

import logging

from bot.discord.client import build_client, sync_commands
from generator.contract.config import Config
from wanbot.app import open_service

logger = logging.getLogger("wanbot.discord")


async def run_sync(config: Config, guild_id: int | None) -> int:
    token = config.discord.token.get_secret_value()
    if not token:
        logger.error("no Discord token: set [discord] token or DISCORD_TOKEN")
        return 2
    async with open_service(config) as service:
        count = await sync_commands(build_client(service), token, guild_id)
    where = f"guild {guild_id}" if guild_id is not None else "all servers (may take up to an hour to show)"
    print(f"synced {count} commands to {where}")
    return 0
