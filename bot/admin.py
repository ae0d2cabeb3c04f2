"""`/admin grant|take|quota|ban|unban|user|stats|refund`: checked against the configured admin ids
on every call, whatever the front end, and journaled with the admin as actor.

Each action is a typed command (`Grant(account, amount, note)`, …) run by `run`: `parse_admin`
builds them from chat text and Discord's subcommands from their options, so an option's value is
never re-split into words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from bot.errors import NotAdmin, UserError
from bot.frontend import User
from bot.messages import balance_text
from credits.ledger import UNCHANGED, Unchanged
from credits.models import parse_account
from generator.contract import metrics

if TYPE_CHECKING:
    from bot.service import BotService

logger = logging.getLogger("wanbot.admin")

USAGE = (
    "Admin commands: grant ACCOUNT N [note] · take ACCOUNT N [note] · "
    "quota ACCOUNT [daily N|default] [jobs N|default] · ban ACCOUNT [reason] · unban ACCOUNT · "
    "user ACCOUNT · stats · refund JOB. ACCOUNT looks like telegram:12345 (or reply to the user)."
)
QUOTA_USAGE = "Usage: /admin quota ACCOUNT [daily N|default] [jobs N|default]"

Override = int | Unchanged | None  # a quota: a number, None (back to the configured default) or unchanged


@dataclass(frozen=True)
class Grant:
    account: str
    amount: int
    note: str = ""


@dataclass(frozen=True)
class Take:
    account: str
    amount: int
    note: str = ""


@dataclass(frozen=True)
class Quota:
    account: str
    daily: Override = UNCHANGED
    jobs: Override = UNCHANGED


@dataclass(frozen=True)
class Ban:
    account: str
    reason: str = ""


@dataclass(frozen=True)
class Unban:
    account: str


@dataclass(frozen=True)
class UserInfo:
    account: str


@dataclass(frozen=True)
class Stats:
    pass


@dataclass(frozen=True)
class Refund:
    job: str


@dataclass(frozen=True)
class Usage:
    """`/admin` alone: the list of admin commands."""


AdminCommand = Grant | Take | Quota | Ban | Unban | UserInfo | Stats | Refund | Usage


async def run(service: BotService, admin: User, command: AdminCommand) -> str:
    """The one executor of admin commands, however they were built (text or Discord's options)."""
    require_admin(service, admin)
    match command:
        case Grant(account, amount, note):
            return await grant(service, admin, account, amount, note)
        case Take(account, amount, note):
            return await take(service, admin, account, amount, note)
        case Quota(account, daily, jobs):
            return await quota(service, admin, account, daily=daily, jobs=jobs)
        case Ban(account, reason):
            return await ban(service, admin, account, reason)
        case Unban(account):
            return await unban(service, admin, account)
        case UserInfo(account):
            return await user_info(service, admin, account)
        case Stats():
            return await stats(service, admin)
        case Refund(job):
            return await refund(service, admin, job)
        case Usage():
            return USAGE
    raise AssertionError(f"unhandled admin command {command!r}")


def parse_admin(args: str, target_account: str | None) -> AdminCommand:
    """The text form, `grant ACCOUNT N [note]` and so on, as a typed command."""
    words = args.split()
    if not words:
        return Usage()
    action, rest = words[0].lower(), words[1:]
    if action == "stats":
        return Stats()
    if action == "refund":
        if len(rest) != 1:
            raise UserError("Usage: /admin refund JOB")
        return Refund(rest[0])
    if action not in ("grant", "take", "quota", "ban", "unban", "user"):
        raise UserError(f"Unknown admin command {action!r}. {USAGE}")
    account, rest = _account(rest, target_account)
    if action in ("grant", "take"):
        change = Grant if action == "grant" else Take
        return change(account, _amount(rest), " ".join(rest[1:]))
    if action == "quota":
        daily, jobs = _quota_words(rest)
        return Quota(account, daily=daily, jobs=jobs)
    if action == "ban":
        return Ban(account, " ".join(rest))
    if action == "unban":
        return Unban(account)
    return UserInfo(account)


async def stats(service: BotService, admin: User) -> str:
    """Totals over all accounts and jobs, and Redis' memory."""
    require_admin(service, admin)
    ledger = service.ledger
    totals = await ledger.stats()
    by_state = await service.jobs.count_by_state()
    jobs = ", ".join(f"{state} {count}" for state, count in sorted(by_state.items())) or "none"
    return (f"{totals.accounts} accounts ({totals.banned} banned), {totals.total_balance} credits held by users, "
            f"{totals.reserved_credits} reserved by {totals.active_reservations} jobs; today "
            f"{totals.captured_today} spent, {totals.granted_today} granted. Jobs: {jobs}. "
            f"{await _redis_memory(service)}")


async def _redis_memory(service: BotService) -> str:
    """Redis memory next to the ledger's numbers: a Redis near its maxmemory refuses new jobs."""
    try:
        memory = await service.queue.memory()
    except (RedisError, OSError):
        return "Redis memory: unknown (Redis unreachable)."
    limit = f"of {memory.limit} ({memory.policy})" if memory.limit else "(no maxmemory set)"
    return f"Redis memory: {memory.used} {limit}."


# -- the actions, typed: the text parser above and Discord's subcommands both call these ------------


async def grant(service: BotService, admin: User, account: str, amount: int, note: str = "") -> str:
    """Add credits; `account` is checked here whoever typed it (platform:id, ASCII digits)."""
    account = _authorised(service, admin, account)
    await service.ledger.grant(account, amount, admin.account, note)
    metrics.CREDITS_GRANTED.inc(amount)
    return f"Granted {amount} credits ({account}). {balance_text(await service.ledger.view(account))}"


async def take(service: BotService, admin: User, account: str, amount: int, note: str = "") -> str:
    account = _authorised(service, admin, account)
    await service.ledger.take(account, amount, admin.account, note)
    return f"Took {amount} credits ({account}). {balance_text(await service.ledger.view(account))}"


async def quota(service: BotService, admin: User, account: str, *, daily: Override = UNCHANGED,
                jobs: Override = UNCHANGED) -> str:
    """Set (a number) or clear (None: the configured default) an account's daily grant and jobs in flight."""
    account = _authorised(service, admin, account)
    if daily is UNCHANGED and jobs is UNCHANGED:
        raise UserError(QUOTA_USAGE)
    await service.ledger.set_quota(account, admin.account, daily_grant=daily, max_in_flight=jobs)
    view = await service.ledger.view(account)
    return f"Quota for {account}: daily grant {view.daily_grant}, max jobs in flight {view.max_in_flight}."


async def ban(service: BotService, admin: User, account: str, reason: str = "") -> str:
    account = _authorised(service, admin, account)
    reason = reason.strip() or "no reason given"
    await service.ledger.ban(account, admin.account, reason)
    return f"Banned {account}: {reason}."


async def unban(service: BotService, admin: User, account: str) -> str:
    account = _authorised(service, admin, account)
    await service.ledger.unban(account, admin.account)
    return f"Unbanned {account}."


async def user_info(service: BotService, admin: User, account: str) -> str:
    """Balance, quotas and the latest journal entries of one account."""
    account = _authorised(service, admin, account)
    view = await service.ledger.view(account)
    history = await service.ledger.history(account, limit=5)
    lines = [f"{account}: {balance_text(view)} Daily grant {view.daily_grant}, "
             f"max jobs in flight {view.max_in_flight}, {view.in_flight} in flight."]
    lines += [f"• {entry.created_at} {entry.reason} {entry.delta:+d}"
              + (f" job {entry.job_id}" if entry.job_id else "") + f" by {entry.actor}" for entry in history]
    return "\n".join(lines)


async def refund(service: BotService, admin: User, job_id: str) -> str:
    """Give a job's credits back: a charged job is refunded, an unfinished one cancelled at no cost."""
    require_admin(service, admin)
    record = await service.jobs.get(job_id.strip())
    if record is None:
        raise UserError(f"There is no job {job_id}.")
    if not record.state.finished:
        cancelled = await service.cancel(admin, record.job_id)
        if cancelled.charged:  # the share a cancel keeps for rendered steps: an admin refund returns it too
            await service.ledger.refund(record.job_id, admin.account)
        return f"Job {record.job_id} cancelled; {record.cost} credits returned to {record.account}."
    amount = await service.ledger.refund(record.job_id, admin.account)
    if amount == 0:
        return f"Job {record.job_id} was already refunded."
    return f"Refunded {amount} credits of job {record.job_id} to {record.account}."


def require_admin(service: BotService, admin: User) -> None:
    """Every action checks the caller itself, whichever front end or parser called it."""
    if not service.is_admin(admin):
        logger.warning("refused /admin from %s", admin.account)
        raise NotAdmin()


def _authorised(service: BotService, admin: User, account: str) -> str:
    """The admin check, then the account as the ledger stores it (InvalidAccount tells the admin why not)."""
    require_admin(service, admin)
    return parse_account(account)


# -- parsing the text form ----------------------------------------------------------------


def _account(words: list[str], target_account: str | None) -> tuple[str, list[str]]:
    if words and ":" in words[0]:
        return words[0], words[1:]
    if target_account is not None:
        return target_account, words
    raise UserError("Name the account (e.g. telegram:12345) or reply to the user's message.")


def _amount(words: list[str]) -> int:
    if not words or not _is_number(words[0]) or int(words[0]) <= 0:
        raise UserError("Give the amount as a positive whole number, e.g. /admin grant telegram:12345 500")
    return int(words[0])


def _quota_words(words: list[str]) -> tuple[Override, Override]:
    """`daily N|default` and `jobs N|default`, in any order."""
    changes: dict[str, int | None] = {}
    for name, value in zip(words[::2], words[1::2], strict=False):
        if name not in ("daily", "jobs") or not (value == "default" or _is_number(value)):
            raise UserError(QUOTA_USAGE)
        changes[name] = None if value == "default" else int(value)
    if len(words) % 2:
        raise UserError(QUOTA_USAGE)
    return changes.get("daily", UNCHANGED), changes.get("jobs", UNCHANGED)


def _is_number(word: str) -> bool:
    """ASCII digits only: `isdigit` alone accepts other scripts' digits."""
    return word.isascii() and word.isdigit()
