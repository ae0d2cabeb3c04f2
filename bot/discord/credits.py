"""`/balance`, `/queue`, `/cancel` (autocomplete over the user's own jobs) and `/help`.

Answers concern only the user, so they are ephemeral; each command defers first and then edits
its answer in, so the 3-second acknowledgement never depends on Redis or SQLite being quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.commands import help_text
from bot.errors import UserError

if TYPE_CHECKING:
    from bot.discord.client import WanbotClient


@app_commands.command(name="balance", description="Your credits")
async def balance(interaction: discord.Interaction[WanbotClient]) -> None:
    await interaction.client.answer_command(interaction, "/balance")


@app_commands.command(name="queue", description="Your jobs and their places in the queue")
async def queue(interaction: discord.Interaction[WanbotClient]) -> None:
    await interaction.client.answer_command(interaction, "/queue")


@app_commands.command(name="cancel", description="Stop one of your jobs (the newest if none is chosen)")
@app_commands.describe(job="The job to stop")
async def cancel(interaction: discord.Interaction[WanbotClient], job: str | None = None) -> None:
    await interaction.client.answer_command(interaction, f"/cancel {job or ''}")


@cancel.autocomplete("job")
async def own_jobs(interaction: discord.Interaction[WanbotClient], current: str) -> list[app_commands.Choice[str]]:
    client = interaction.client
    mine = await client.service.jobs.unfinished(client.user_of(interaction.user).account)
    return [app_commands.Choice(name=f"{job.job_id} · {job.state.value} · {job.prompt}"[:100], value=job.job_id)
            for job in reversed(mine) if current.lower() in f"{job.job_id} {job.prompt}".lower()][:25]


@app_commands.command(name="help", description="Commands, options and prices")
async def help_(interaction: discord.Interaction[WanbotClient]) -> None:
    client = interaction.client
    await interaction.response.defer(ephemeral=True, thinking=True)
    user = client.user_of(interaction.user)
    try:
        client.service.admit(user)
    except UserError as error:
        await interaction.edit_original_response(content=error.user_message)
        return
    text = await help_text(client.service, user)
    await interaction.edit_original_response(content=text.replace("/video <prompt> [flags]", "/video prompt:…"))


COMMANDS: list[app_commands.Command[Any, Any, Any]] = [balance, queue, cancel, help_]
