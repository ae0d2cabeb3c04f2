"""The operator CLI as an operator runs it: a separate process on the bot's database file."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from credits.cli import add_parser, run
from credits.ledger import Ledger
from credits.models import JournalReason
from generator.contract.credits_config import CreditsSettings


def credits_cli(db_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "credits.cli", "--database", str(db_path), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
async def bot_ledger(db_path: Path) -> AsyncIterator[Ledger]:
    """The bot's own ledger, open while the CLI writes to the same file."""
    ledger = await Ledger.open(db_path, CreditsSettings())
    await ledger.touch("telegram:1")
    yield ledger
    await ledger.close()


async def test_grant_balance_and_history(db_path: Path, bot_ledger: Ledger) -> None:
    done = credits_cli(db_path, "grant", "telegram:1", "500", "--note", "contest prize")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "Granted 500 credits to telegram:1.\ntelegram:1: balance 700, reserved 0, available 700\n"
    )

    entry = (await bot_ledger.history("telegram:1", limit=1))[0]
    assert (entry.reason, entry.delta, entry.actor, entry.note) == (JournalReason.GRANT, 500,
                                                                     f"cli:{getpass.getuser()}", "contest prize")
    await bot_ledger.reserve("telegram:1", "job1", 10)

    balance = credits_cli(db_path, "balance", "telegram:1")
    assert "balance 700, reserved 10, available 690" in balance.stdout
    assert "max jobs in flight 2, 1 in flight" in balance.stdout

    history = credits_cli(db_path, "history", "telegram:1", "--limit", "5").stdout.splitlines()
    assert len(history) == 2
    assert "+500  grant" in history[0] and "(contest prize)" in history[0]
    assert "+200  signup" in history[1] and "system" in history[1]


async def test_ban_is_seen_by_the_running_bot(db_path: Path, bot_ledger: Ledger) -> None:
    done = credits_cli(db_path, "ban", "telegram:1", "--reason", "spam")
    assert (done.returncode, done.stdout) == (0, "Banned telegram:1: spam.\n")
    view = await bot_ledger.view("telegram:1")
    assert (view.banned, view.ban_reason) == (True, "spam")
    assert "BANNED: spam" in credits_cli(db_path, "balance", "telegram:1").stdout
    assert credits_cli(db_path, "unban", "telegram:1").returncode == 0
    assert not (await bot_ledger.view("telegram:1")).banned


async def test_errors_go_to_stderr_with_exit_code_1(db_path: Path, bot_ledger: Ledger) -> None:
    too_much = credits_cli(db_path, "take", "telegram:1", "1000")
    assert (too_much.returncode, too_much.stdout) == (1, "")
    assert "needs 1000 credits, but only 200 are available" in too_much.stderr
    bad_account = credits_cli(db_path, "grant", "12345", "5")
    assert bad_account.returncode == 1 and "platform:id" in bad_account.stderr
    assert (await bot_ledger.view("telegram:1")).balance == 200


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    done = credits_cli(missing, "stats")
    assert done.returncode == 1 and "no ledger at" in done.stderr
    assert not missing.exists()


async def test_wanbot_wiring_add_parser_and_run(db_path: Path, bot_ledger: Ledger,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """What `wanbot credits …` does: our subcommand on its parser, run with the config's settings."""
    parser = argparse.ArgumentParser(prog="wanbot")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["credits", "quota", "telegram:1", "--daily", "300", "--max-jobs-default"])
    assert await run(args, CreditsSettings(database=str(db_path))) == 0
    assert "daily grant 300, max jobs in flight 2" in capsys.readouterr().out
    assert (await bot_ledger.view("telegram:1")).daily_grant == 300


async def test_backup_while_the_bot_writes_is_consistent(tmp_path: Path) -> None:
    database = tmp_path / "live.sqlite3"
    copy = tmp_path / "backup.sqlite3"
    async with await Ledger.open(database, CreditsSettings()) as ledger:
        accounts = [f"telegram:{n}" for n in range(30)]

        done = asyncio.Event()

        async def busy() -> int:
            rounds = 0
            while not done.is_set():
                for account in accounts:
                    await ledger.grant(account, 1, "test", f"round {rounds}")
                rounds += 1
            return rounds

        writer = asyncio.create_task(busy())
        run = await asyncio.to_thread(credits_cli, database, "backup", str(copy))  # another process, mid-writes
        done.set()
        assert await writer > 1
    assert run.returncode == 0 and run.stdout.strip() == f"Backed up the database to {copy}."
    assert not copy.with_name(copy.name + ".partial").exists()
    async with await Ledger.open(copy, CreditsSettings()) as restored:
        for account in accounts:
            view = await restored.view(account)
            assert view.balance == await restored.journal_sum(account)  # a snapshot of one moment
        assert (await restored.stats()).accounts >= 1


@pytest.mark.parametrize("amount", [str(2**63 - 1), str(2**63), "1000001"])
async def test_huge_amounts_are_refused_and_stats_still_add_up(db_path: Path, bot_ledger: Ledger,
                                                               amount: str) -> None:
    for action in ("grant", "take"):
        done = credits_cli(db_path, action, "telegram:1", amount)
        assert (done.returncode, done.stdout) == (1, "")
        assert "at most 1,000,000 per admin action" in done.stderr and "Traceback" not in done.stderr
    quota = credits_cli(db_path, "quota", "telegram:1", "--daily", amount)
    assert quota.returncode == 1 and "Traceback" not in quota.stderr
    stats = credits_cli(db_path, "stats")
    assert stats.returncode == 0 and "balances          200" in stats.stdout
    assert await bot_ledger.journal_sum("telegram:1") == 200


async def test_full_width_digits_name_no_account(db_path: Path, bot_ledger: Ledger) -> None:
    done = credits_cli(db_path, "ban", "telegram:３００３")
    assert done.returncode == 1 and "is not an account" in done.stderr
    assert (await bot_ledger.stats()).banned == 0
