"""`/admin grant|take|quota|ban|unban|user|stats|refund`, the same actions as on every platform.

Hidden from members without the Administrator permission by default, and checked against
`[admins] discord` in code on every call (server admins may change default permissions).
Each subcommand passes its options as they are to the typed actions of `bot.admin`: an option
is never joined into text and split again, so `account: "discord:42 1000000"` stays one (invalid) account.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot import admin as actions
from bot.errors import UserError
from bot.frontend import User
from credits.errors import LedgerError
from credits.ledger import UNCHANGED

if TYPE_CHECKING:
    from bot.discord.client import WanbotClient
    from bot.service import BotService

Action = Callable[["BotService", User], Awaitable[str]]  # an admin action with all but service and caller bound

admin = app_commands.Group(name="admin", description="Credits and moderation (bot admins only)",
                           default_permissions=discord.Permissions(administrator=True))

ACCOUNT = "An account like telegram:12345 (or pick a Discord user)"


async def _answer(interaction: discord.Interaction[WanbotClient], action: Action) -> None:
    """Like every command: defer at once, once per interaction, rate limited; the answer is the caller's alone."""
    client = interaction.client
    await interaction.response.defer(ephemeral=True, thinking=True)
    if not await client.service.seen.first_time(f"discord:interaction:{interaction.id}"):
        return
    caller = client.user_of(interaction.user)
    try:
        client.service.admit(caller)
        reply = await action(client.service, caller)
    except (UserError, LedgerError) as error:
        reply = "" if getattr(error, "quiet", False) else error.user_message
    await interaction.edit_original_response(content=(reply or "Slow down, please.")[:2000])


def _target(user: discord.User | None, account: str | None) -> str:
    """The picked user, else the account as typed (checked by the action, like any admin's text)."""
    if user is not None:
        return f"discord:{user.id}"
    return account or ""


def _quota_value(value: int | None) -> actions.Override:
    """A quota option: left out is unchanged, -1 is back to the configured default."""
    if value is None:
        return UNCHANGED
    return None if value == -1 else value


@admin.command(name="grant", description="Add credits to an account")
@app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
async def grant(interaction: discord.Interaction[WanbotClient], amount: app_commands.Range[int, 1],
                user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
    await _answer(interaction, functools.partial(actions.grant, account=_target(user, account), amount=amount,
                                                 note=note))


@admin.command(name="take", description="Remove credits from an account")
@app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
async def take(interaction: discord.Interaction[WanbotClient], amount: app_commands.Range[int, 1],
               user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
    await _answer(interaction, functools.partial(actions.take, account=_target(user, account), amount=amount,
                                                 note=note))


@admin.command(name="quota", description="Set an account's daily grant and jobs in flight (-1: back to default)")
@app_commands.describe(user="A Discord user", account=ACCOUNT, daily="Credits each day", jobs="Jobs at once")
async def quota(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None, daily: app_commands.Range[int, -1] | None = None,
                jobs: app_commands.Range[int, -1] | None = None) -> None:
    await _answer(interaction, functools.partial(actions.quota, account=_target(user, account),
                                                 daily=_quota_value(daily), jobs=_quota_value(jobs)))


@admin.command(name="ban", description="Refuse an account's new jobs")
@app_commands.describe(user="A Discord user", account=ACCOUNT, reason="Why")
async def ban(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
              account: str | None = None, reason: str = "") -> None:
    await _answer(interaction, functools.partial(actions.ban, account=_target(user, account), reason=reason))


@admin.command(name="unban", description="Lift a ban")
@app_commands.describe(user="A Discord user", account=ACCOUNT)
async def unban(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None) -> None:
    await _answer(interaction, functools.partial(actions.unban, account=_target(user, account)))


@admin.command(name="user", description="An account's balance, quotas and latest journal entries")
@app_commands.describe(user="A Discord user", account=ACCOUNT)
async def user_(interaction: discord.Interaction[WanbotClient], user: discord.User | None = None,
                account: str | None = None) -> None:
    await _answer(interaction, functools.partial(actions.user_info, account=_target(user, account)))


@admin.command(name="stats", description="Totals over all accounts and jobs")
async def stats(interaction: discord.Interaction[WanbotClient]) -> None:
    await _answer(interaction, functools.partial(actions.run_admin, args="stats", target_account=None))


@admin.command(name="refund", description="Give a job's credits back (cancels it if it is still running)")
@app_commands.describe(job="The job id")
async def refund(interaction: discord.Interaction[WanbotClient], job: str) -> None:
    await _answer(interaction, functools.partial(actions.refund, job_id=job))
