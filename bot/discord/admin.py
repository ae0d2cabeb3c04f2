"""`/admin grant|take|quota|ban|unban|user|stats|refund`, the same actions as on every platform.

Hidden from members without the Administrator permission by default, and checked against
`[admins] discord` in code on every call (server admins may change default permissions).
Each subcommand builds the typed command of `bot.admin` from its options as they are: an option
is never joined into text and split again, so `account: "discord:42 1000000"` stays one (invalid) account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot import admin as actions
from credits.ledger import UNCHANGED

Answer = Callable[[discord.Interaction[Any], actions.AdminCommand], Awaitable[None]]

ACCOUNT = "An account like telegram:12345 (or pick a Discord user)"


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


class AdminCommands(app_commands.Group):
    """The `/admin` group; `answer` runs a typed admin command and edits the answer in (the handlers')."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(name="admin", description="Credits and moderation (bot admins only)",
                         default_permissions=discord.Permissions(administrator=True))
        self.answer = answer

    @app_commands.command(name="grant", description="Add credits to an account")
    @app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
    async def grant(self, interaction: discord.Interaction[Any], amount: app_commands.Range[int, 1],
                    user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
        await self.answer(interaction, actions.Grant(_target(user, account), amount, note))

    @app_commands.command(name="take", description="Remove credits from an account")
    @app_commands.describe(user="A Discord user", account=ACCOUNT, amount="Credits", note="Why (kept in the journal)")
    async def take(self, interaction: discord.Interaction[Any], amount: app_commands.Range[int, 1],
                   user: discord.User | None = None, account: str | None = None, note: str = "") -> None:
        await self.answer(interaction, actions.Take(_target(user, account), amount, note))

    @app_commands.command(name="quota",
                          description="Set an account's daily grant and jobs in flight (-1: back to default)")
    @app_commands.describe(user="A Discord user", account=ACCOUNT, daily="Credits each day", jobs="Jobs at once")
    async def quota(self, interaction: discord.Interaction[Any], user: discord.User | None = None,
                    account: str | None = None, daily: app_commands.Range[int, -1] | None = None,
                    jobs: app_commands.Range[int, -1] | None = None) -> None:
        await self.answer(interaction, actions.Quota(_target(user, account), daily=_quota_value(daily),
                                                     jobs=_quota_value(jobs)))

    @app_commands.command(name="ban", description="Refuse an account's new jobs")
    @app_commands.describe(user="A Discord user", account=ACCOUNT, reason="Why")
    async def ban(self, interaction: discord.Interaction[Any], user: discord.User | None = None,
                  account: str | None = None, reason: str = "") -> None:
        await self.answer(interaction, actions.Ban(_target(user, account), reason))

    @app_commands.command(name="unban", description="Lift a ban")
    @app_commands.describe(user="A Discord user", account=ACCOUNT)
    async def unban(self, interaction: discord.Interaction[Any], user: discord.User | None = None,
                    account: str | None = None) -> None:
        await self.answer(interaction, actions.Unban(_target(user, account)))

    @app_commands.command(name="user", description="An account's balance, quotas and latest journal entries")
    @app_commands.describe(user="A Discord user", account=ACCOUNT)
    async def user_(self, interaction: discord.Interaction[Any], user: discord.User | None = None,
                    account: str | None = None) -> None:
        await self.answer(interaction, actions.UserInfo(_target(user, account)))

    @app_commands.command(name="stats", description="Totals over all accounts and jobs")
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        await self.answer(interaction, actions.Stats())

    @app_commands.command(name="refund", description="Give a job's credits back (cancels it if it is still running)")
    @app_commands.describe(job="The job id")
    async def refund(self, interaction: discord.Interaction[Any], job: str) -> None:
        await self.answer(interaction, actions.Refund(job))
