"""`wanbot credits …`: the operator's view of the ledger, safe to run while the bot is up.

Standalone: `python -m credits.cli --database wanbot.sqlite3 balance telegram:12345`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sqlite3
import sys
from pathlib import Path
from typing import Any

from credits.errors import LedgerError
from credits.ledger import UNCHANGED, Ledger, Unchanged
from credits.models import AccountView, parse_account
from generator.contract.credits_config import CreditsSettings


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The `credits` command on the caller's subparsers (what `wanbot` and `main` build on)."""
    parser = subparsers.add_parser("credits", help="read and adjust the credits ledger", description=__doc__)
    _add_arguments(parser)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", default=None, help="the ledger's SQLite file (default: from the config)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    balance = actions.add_parser("balance", help="an account's balance, holds and quotas")
    balance.add_argument("account", help="platform:id, e.g. telegram:12345")

    for name, text in (("grant", "add credits"), ("take", "remove credits (at most what is available)")):
        change = actions.add_parser(name, help=text)
        change.add_argument("account")
        change.add_argument("amount", type=int)
        change.add_argument("--note", default="", help="why, kept in the journal")

    quota = actions.add_parser("quota", help="set or clear an account's daily grant and jobs in flight")
    quota.add_argument("account")
    daily = quota.add_mutually_exclusive_group()
    daily.add_argument("--daily", type=int, help="credits granted each UTC day")
    daily.add_argument("--daily-default", action="store_true", help="back to the configured daily grant")
    jobs = quota.add_mutually_exclusive_group()
    jobs.add_argument("--max-jobs", type=int, help="jobs in flight at once")
    jobs.add_argument("--max-jobs-default", action="store_true", help="back to the configured limit")

    ban = actions.add_parser("ban", help="refuse an account's new jobs")
    ban.add_argument("account")
    ban.add_argument("--reason", default="banned by the operator")

    unban = actions.add_parser("unban", help="lift a ban")
    unban.add_argument("account")

    history = actions.add_parser("history", help="an account's journal, newest first")
    history.add_argument("account")
    history.add_argument("--limit", type=int, default=20)

    actions.add_parser("stats", help="totals over all accounts")

    copy = actions.add_parser("backup", help="a consistent copy of the database, safe while the bot runs")
    copy.add_argument("destination", type=Path, help="the file to write (replaced when the copy is complete)")


async def run(args: argparse.Namespace, settings: CreditsSettings) -> int:
    """Run one action; 0 on success, 1 with the reason on stderr."""
    database = Path(args.database or settings.database)
    if not database.exists():  # noqa: ASYNC240 (one stat before anything runs; a typo must not make a new ledger)
        print(f"credits: no ledger at {database} (check --database or the config)", file=sys.stderr)
        return 1
    try:
        async with await Ledger.open(database, settings) as ledger:
            for line in await _act(ledger, args):
                print(line)
    except LedgerError as error:
        print(f"credits: {error.user_message}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"credits: {error}", file=sys.stderr)
        return 1
    return 0


async def _act(ledger: Ledger, args: argparse.Namespace) -> list[str]:
    if args.action == "backup":
        await ledger.backup(args.destination)
        return [f"Backed up the database to {args.destination}."]
    if args.action == "stats":
        stats = await ledger.stats()
        return [
            f"accounts          {stats.accounts} ({stats.banned} banned)",
            f"balances          {stats.total_balance}",
            f"reserved          {stats.reserved_credits} by {stats.active_reservations} jobs",
            f"captured today    {stats.captured_today}",
            f"granted today     {stats.granted_today}",
        ]
    account = parse_account(args.account)
    actor = _actor()
    if args.action == "balance":
        return _describe(await ledger.view(account))
    if args.action == "grant":
        view = await ledger.grant(account, args.amount, actor, args.note)
        return [f"Granted {args.amount} credits to {account}.", *_describe(view)]
    if args.action == "take":
        view = await ledger.take(account, args.amount, actor, args.note)
        return [f"Took {args.amount} credits from {account}.", *_describe(view)]
    if args.action == "quota":
        view = await ledger.set_quota(account, actor, daily_grant=_override(args.daily, args.daily_default),
                                      max_in_flight=_override(args.max_jobs, args.max_jobs_default))
        return _describe(view)
    if args.action == "ban":
        await ledger.ban(account, actor, args.reason)
        return [f"Banned {account}: {args.reason}."]
    if args.action == "unban":
        await ledger.unban(account, actor)
        return [f"Unbanned {account}."]
    if args.action == "history":
        entries = await ledger.history(account, args.limit)
        return [
            f"{entry.created_at:%Y-%m-%d %H:%M:%S}  {entry.delta:+7d}  {entry.reason:<8} "
            f"{entry.job_id or '-':<14} {entry.actor}" + (f"  ({entry.note})" if entry.note else "")
            for entry in entries
        ] or [f"{account}: no journal entries."]
    raise AssertionError(args.action)


def _override(value: int | None, back_to_default: bool) -> int | Unchanged | None:
    """A quota option as `set_quota` takes it: a number, None (the default again) or unchanged."""
    if back_to_default:
        return None
    return UNCHANGED if value is None else value


def _describe(view: AccountView) -> list[str]:
    if view.created_at is None:
        return [f"{view.account}: never seen (no account yet)."]
    lines = [
        f"{view.account}: balance {view.balance}, reserved {view.reserved}, available {view.available}",
        f"  daily grant {view.daily_grant}, max jobs in flight {view.max_in_flight}, {view.in_flight} in flight",
        f"  since {view.created_at:%Y-%m-%d %H:%M} UTC",
    ]
    if view.banned:
        lines.append(f"  BANNED: {view.ban_reason or 'no reason given'}")
    return lines


def _actor() -> str:
    """Admin actions are journaled with who ran them."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return "cli:unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m credits.cli", description=__doc__)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    settings = CreditsSettings()
    return asyncio.run(run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
