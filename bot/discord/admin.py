"""`/admin grant|take|quota|ban|unban|user|stats|refund`, the same actions as on every platform.

Hidden from members without the Administrator permission by default, and checked against
`[admins] discord` in code on every call (server admins may change default permissions).
Each subcommand is turned into the shared admin words, so there is one implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.discord.client import WanbotClient

admin = app_commands.Group(name="admin", description="Credits and moderation (bot admins only)",
                           default_permissions=discord.Permissions(administrator=True))

ACCOUNT = "An account like telegram:12345 (or pick a Discord user)"


def _target(user: discord.User | None, account: str | None) -> str:
    if user is not None:
        return f"discord:{user.id}"
    return account or ""


@admin.command(name="grant", description="Add credits to an account")
@app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
async def grant(interaction: discord.Interaction[WanbotClient], amount: app_commands.Range[int, 1],
                user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
    await interaction.client.answer_command(interaction, f"/admin grant {_target(user, account)} {amount} {note}")


@admin.command(name="take", description="Remove credits from an account")
@app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
async def take(interaction: discord.Interaction[WanbotClient], amount: app_commands.Range[int, 1],
               user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
    await interaction.client.answer_command(interaction, f"/admin take {_target(user, account)} {amount} {note}")


@admin.command(name="quota", description="Set an account's daily grant and jobs in flight (-1: back to default)")
@app_commands.describe(user="A Discord user", account=ACCOUNT, daily="Credits each day", jobs="Jobs at once")
async def quota(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None, daily: app_commands.Range[int, -1] | None = None,
                jobs: app_commands.Range[int, -1] | None = None) -> None:
    words = [f"{name} {'default' if value == -1 else value}"
             for name, value in (("daily", daily), ("jobs", jobs)) if value is not None]
    await interaction.client.answer_command(interaction, f"/admin quota {_target(user, account)} {' '.join(words)}")


@admin.command(name="ban", description="Refuse an account's new jobs")
@app_commands.describe(user="A Discord user", account=ACCOUNT, reason="Why")
async def ban(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
              account: str | None = None, reason: str = "") -> None:
    await interaction.client.answer_command(interaction, f"/admin ban {_target(user, account)} {reason}")


@admin.command(name="unban", description="Lift a ban")
@app_commands.describe(user="A Discord user", account=ACCOUNT)
async def unban(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None) -> None:
    await interaction.client.answer_command(interaction, f"/admin unban {_target(user, account)}")


@admin.command(name="user", description="An account's balance, quotas and latest journal entries")
@app_commands.describe(user="A Discord user", account=ACCOUNT)
async def user_(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None) -> None:
    await interaction.client.answer_command(interaction, f"/admin user {_target(user, account)}")


@admin.command(name="stats", description="Totals over all accounts and jobs")
async def stats(interaction: discord.Interaction[WanbotClient]) -> None:
    await interaction.client.answer_command(interaction, "/admin stats")


@admin.command(name="refund", description="Give a job's credits back (cancels it if it is still running)")
@app_commands.describe(job="The job id")
async def refund(interaction: discord.Interaction[WanbotClient], job: str) -> None:
    await interaction.client.answer_command(interaction, f"/admin refund {job}")
