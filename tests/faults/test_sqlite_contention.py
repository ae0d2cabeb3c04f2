"""The bot and the operator's CLI writing the same SQLite file at once: both wait their turn (busy
timeout, short transactions), nobody sees "database is locked", and the books still balance."""

from __future__ import annotations

import asyncio
import sys

from bot.commands import Message, handle
from tests.conftest import Stack
from tests.faults.processes import ROOT

GRANTS = 12


async def cli_grant(database: str, note: int) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wanbot.cli", "credits", "--database", database, "grant", "console:bob", "1",
        "--note", f"grant {note}", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode or 0, (out + err).decode()


async def test_bot_and_cli_write_at_once_without_locked_errors(stack: Stack) -> None:
    database = stack.service.config.credits.database
    await stack.service.ledger.touch("console:bob")
    users = [f"user{n}" for n in range(20)]

    async def chat(user: str) -> list[str | None]:
        return [await handle(stack.service, Message(stack.user(user), text))
                for text in ("/video a windmill", "/balance", "/queue", "/video a second windmill")]

    results = await asyncio.gather(*(cli_grant(database, n) for n in range(GRANTS)), *(chat(user) for user in users))
    cli, replies = results[:GRANTS], [reply for answers in results[GRANTS:] for reply in answers]
    assert all(code == 0 and "locked" not in output for code, output in cli), cli
    assert all(reply and "locked" not in reply and "Sorry" not in reply for reply in replies), replies
    assert sum(reply.startswith("🎬") for reply in replies) == 2 * len(users)  # type: ignore[union-attr]
    for account in ["console:bob", *(f"console:{user}" for user in users)]:
        view = await stack.service.ledger.view(account)
        assert view.balance == await stack.service.ledger.journal_sum(account)
    assert (await stack.service.ledger.view("console:bob")).balance == 200 + GRANTS
