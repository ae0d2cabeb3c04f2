"""The discord.py client: app commands, persistent buttons, and what a pressed button does.

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

from bot.commands import Message, handle
from bot.discord import credits
from bot.discord.admin import admin
from bot.discord.components import CANCEL, DELETE, REROLL, VARY, JobButton, VaryModal
from bot.discord.frontend import DiscordFrontEnd, channel_key
from bot.discord.generation import start_variant, video_command
from bot.errors import UserError
from bot.frontend import User
from bot.messages import cancelled_text
from bot.service import BotService
from credits.errors import LedgerError

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
        self.tree.on_error = self._command_failed  # type: ignore[method-assign]
        self.tree.add_command(video_command(service.preset))
        for command in credits.COMMANDS:
            self.tree.add_command(command)
        self.tree.add_command(admin)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)

    @staticmethod
    def user_of(user: discord.User | discord.Member) -> User:
        return User("discord", str(user.id), user.display_name)

    async def answer_command(self, interaction: discord.Interaction[Any], text: str) -> None:
        """A command that answers the user alone: defer at once, then edit the shared command's answer in."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not await self.service.seen.first_time(f"discord:interaction:{interaction.id}"):
            return
        reply = await handle(self.service, Message(self.user_of(interaction.user), text.strip()))
        await interaction.edit_original_response(content=(reply or "Slow down, please.")[:2000])

    async def button_pressed(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        if not await self.service.seen.first_time(f"discord:interaction:{interaction.id}"):
            return
        user = self.user_of(interaction.user)
        try:
            self.service.admit(user)
            if action == CANCEL:
                record = await self.service.cancel(user, job_id)
                await _say(interaction, cancelled_text(record))
                return
            record = await self.service.job_to_repeat(job_id, user, channel_key(interaction))
            if action == DELETE:
                if record.account != user.account:
                    raise UserError("Only the person who made this video can delete it.")
                await interaction.response.defer()
                await interaction.delete_original_response()
            elif action == REROLL:
                await start_variant(interaction, record, self.service.variant(record))
            elif action == VARY:
                await interaction.response.send_modal(VaryModal(record.job_id, record.prompt))
        except (UserError, LedgerError) as error:
            await _say(interaction, error.user_message)

    async def vary_submitted(self, interaction: discord.Interaction[Any], job_id: str, prompt: str) -> None:
        user = self.user_of(interaction.user)
        try:
            self.service.admit(user)
            record = await self.service.job_to_repeat(job_id, user, channel_key(interaction))
            await start_variant(interaction, record, self.service.variant(record, prompt=prompt))
        except (UserError, LedgerError) as error:
            await _say(interaction, error.user_message)

    async def _command_failed(self, interaction: discord.Interaction[Any],
                              error: app_commands.AppCommandError) -> None:
        logger.error("discord command %s failed (interaction %s)", interaction.command and interaction.command.name,
                     interaction.id, exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            await _say(interaction, "Sorry, something went wrong on our side. Please try again.")


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


async def _say(interaction: discord.Interaction[Any], text: str) -> None:
    """An ephemeral answer, whether or not the interaction was acknowledged already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)
