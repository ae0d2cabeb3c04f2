"""The discord.py client: the command handlers (`bot.discord.commands`) on its tree, persistent buttons.

Commands are synced deliberately (`wanbot discord-sync`), never on start, to stay under Discord's
daily limit on command creations. Interactions arrive without privileged intents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord import app_commands

from bot.discord.commands import DiscordCommands
from bot.discord.components import JobButton
from bot.discord.frontend import DiscordFrontEnd
from bot.service import BotService

logger = logging.getLogger("wanbot.discord")

READY_TIMEOUT_S = 60


class WanbotClient(discord.Client):
    def __init__(self, service: BotService, **options: Any) -> None:
        """`options` go to discord.Client (e.g. `guild_ready_timeout`: how long start-up waits for servers).

        No message pings anyone unless it says so: echoed prompts may hold @everyone or <@&role>, and
        only a job's own messages allow its owner (`frontend.owner_only`)."""
        super().__init__(intents=discord.Intents.none(), allowed_mentions=discord.AllowedMentions.none(), **options)
        self.service = service
        self.frontend = DiscordFrontEnd(self)
        self.tree = app_commands.CommandTree(self)
        self.handlers = DiscordCommands(service)  # the buttons find them here (`components.handlers_of`)
        self.handlers.register(self.tree)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)


def build_client(service: BotService, **options: Any) -> WanbotClient:
    return WanbotClient(service, **options)


@contextlib.asynccontextmanager
async def connected(client: WanbotClient, token: str) -> AsyncIterator[None]:
    """Log in, open the gateway and wait until ready; close on exit."""
    await client.login(token)
    gateway = asyncio.create_task(client.connect(reconnect=True), name="discord gateway")
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await client.wait_until_ready()
        logger.info("discord bot %s is connected", client.user)
        yield
    finally:
        await client.close()
        await asyncio.gather(gateway, return_exceptions=True)


async def sync_commands(client: WanbotClient, token: str, guild_id: int | None) -> int:
    """Publish the command definitions once (to one guild at once, or globally within an hour)."""
    await client.login(token)
    try:
        guild = discord.Object(guild_id) if guild_id is not None else None
        if guild is not None:
            client.tree.copy_global_to(guild=guild)
        synced = await client.tree.sync(guild=guild)
        return len(synced)
    finally:
        await client.close()
