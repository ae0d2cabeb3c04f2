"""`/admin grant|take|quota|ban|unban|user|stats|refund`: checked against the configured admin ids
on every call, whatever the front end, and journaled with the admin as actor."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.errors import NotAdmin, UserError
from bot.frontend import User
from bot.messages import balance_text
from credits.ledger import UNCHANGED
from credits.models import parse_account
from wanbot import metrics

if TYPE_CHECKING:
    from bot.service import BotService

logger = logging.getLogger("wanbot.admin")

USAGE = (
    "Admin commands: grant ACCOUNT N [note] · take ACCOUNT N [note] · "
    "quota ACCOUNT [daily N|default] [jobs N|default] · ban ACCOUNT [reason] · unban ACCOUNT · "
    "user ACCOUNT · stats · refund JOB. ACCOUNT looks like telegram:12345 (or reply to the user)."
)


async def run_admin(service: BotService, admin: User, args: str, target_account: str | None) -> str:
    if not service.is_admin(admin):
        logger.warning("refused /admin from %s", admin.account)
        raise NotAdmin()
    words = args.split()
    if not words:
        return USAGE
    action, rest = words[0].lower(), words[1:]
    actor = admin.account
    ledger = service.ledger
    if action == "stats":
        stats = await ledger.stats()
        by_state = await service.jobs.count_by_state()
        jobs = ", ".join(f"{state} {count}" for state, count in sorted(by_state.items())) or "none"
        return (f"{stats.accounts} accounts ({stats.banned} banned), {stats.total_balance} credits held by users, "
                f"{stats.reserved_credits} reserved by {stats.active_reservations} jobs; today "
                f"{stats.captured_today} spent, {stats.granted_today} granted. Jobs: {jobs}.")
    if action == "refund":
        return await _refund(service, admin, rest)
    account, rest = _account(rest, target_account)
    if action in ("grant", "take"):
        amount = _amount(rest)
        note = " ".join(rest[1:])
        if action == "grant":
            await ledger.grant(account, amount, actor, note)
            metrics.CREDITS_GRANTED.inc(amount)
        else:
            await ledger.take(account, amount, actor, note)
        view = await ledger.view(account)
        return f"{'Granted' if action == 'grant' else 'Took'} {amount} credits ({account}). {balance_text(view)}"
    if action == "quota":
        return await _quota(service, account, rest, actor)
    if action == "ban":
        reason = " ".join(rest) or "no reason given"
        await ledger.ban(account, actor, reason)
        return f"Banned {account}: {reason}."
    if action == "unban":
        await ledger.unban(account, actor)
        return f"Unbanned {account}."
    if action == "user":
        view = await ledger.view(account)
        history = await ledger.history(account, limit=5)
        lines = [f"{account}: {balance_text(view)} Daily grant {view.daily_grant}, "
                 f"max jobs in flight {view.max_in_flight}, {view.in_flight} in flight."]
        lines += [f"• {entry.created_at} {entry.reason} {entry.delta:+d}"
                  + (f" job {entry.job_id}" if entry.job_id else "") + f" by {entry.actor}" for entry in history]
        return "\n".join(lines)
    raise UserError(f"Unknown admin command {action!r}. {USAGE}")


def _account(words: list[str], target_account: str | None) -> tuple[str, list[str]]:
    if words and ":" in words[0]:
        return parse_account(words[0]), words[1:]
    if target_account is not None:
        return target_account, words
    raise UserError("Name the account (e.g. telegram:12345) or reply to the user's message.")


def _amount(words: list[str]) -> int:
    if not words or not words[0].isdigit() or not words[0].isascii() or int(words[0]) <= 0:
        raise UserError("Give the amount as a positive whole number, e.g. /admin grant telegram:12345 500")
    return int(words[0])


async def _quota(service: BotService, account: str, words: list[str], actor: str) -> str:
    changes: dict[str, int | None] = {}
    names = {"daily": "daily_grant", "jobs": "max_in_flight"}
    for name, value in zip(words[::2], words[1::2], strict=False):
        if name not in names or not (value == "default" or (value.isascii() and value.isdigit())):
            raise UserError("Usage: /admin quota ACCOUNT [daily N|default] [jobs N|default]")
        changes[names[name]] = None if value == "default" else int(value)
    if not changes or len(words) % 2:
        raise UserError("Usage: /admin quota ACCOUNT [daily N|default] [jobs N|default]")
    await service.ledger.set_quota(account, actor, daily_grant=changes.get("daily_grant", UNCHANGED),
                                   max_in_flight=changes.get("max_in_flight", UNCHANGED))
    view = await service.ledger.view(account)
    return f"Quota for {account}: daily grant {view.daily_grant}, max jobs in flight {view.max_in_flight}."


async def _refund(service: BotService, admin: User, words: list[str]) -> str:
    if len(words) != 1:
        raise UserError("Usage: /admin refund JOB")
    record = await service.jobs.get(words[0])
    if record is None:
        raise UserError(f"There is no job {words[0]}.")
    if not record.state.finished:
        await service.cancel(admin, record.job_id)
        return f"Job {record.job_id} cancelled; {record.cost} credits returned to {record.account}."
    amount = await service.ledger.refund(record.job_id, admin.account)
    if amount == 0:
        return f"Job {record.job_id} was already refunded."
    return f"Refunded {amount} credits of job {record.job_id} to {record.account}."
