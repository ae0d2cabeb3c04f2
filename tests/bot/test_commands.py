"""Commands through the shared router with a real ledger and Redis: balance, queue, help, admin."""

from __future__ import annotations

import pytest

from bot import admin
from bot.commands import Message, handle
from bot.errors import NotAdmin
from credits.errors import InvalidAccount
from credits.models import JournalReason
from tests.conftest import Stack

ADMIN_ACTIONS = [
    "grant console:bob 50",
    "take console:bob 5",
    "quota console:bob daily 300 jobs 1",
    "ban console:bob spam",
    "unban console:bob",
    "user console:bob",
    "stats",
    "refund 0123456789ab",
]


async def say(stack: Stack, user_id: str, text: str, target: str | None = None) -> str:
    reply = await handle(stack.service, Message(stack.user(user_id), text, target_account=target))
    assert reply is not None
    return reply


async def test_balance_shows_the_signup_grant(stack: Stack) -> None:
    assert await say(stack, "alice", "/balance") == "Balance: 200 credits. Available: 200."


async def test_help_lists_flags_prices_and_says_the_tiny_model_makes_noise(stack: Stack) -> None:
    text = await say(stack, "alice", "/help")
    assert "--ar 16:9|9:16|1:1" in text and "480p 5s = 10" in text and "makes noise" in text


async def test_queue_lists_my_waiting_jobs_with_their_place(stack: Stack) -> None:
    first = (await say(stack, "alice", "/video one")).split()[2]
    second = (await say(stack, "alice", "/video two")).split()[2]
    text = await say(stack, "alice", "/queue")
    assert text.startswith("2 job(s) waiting")
    assert f"{first}: #1 in queue" in text and f"{second}: #2 in queue" in text


async def test_max_jobs_in_flight_is_enforced(stack: Stack) -> None:
    for prompt in ("one", "two"):
        assert (await say(stack, "alice", f"/video {prompt}")).startswith("🎬")
    refused = await say(stack, "alice", "/video three")
    assert "2" in refused and not refused.startswith("🎬")
    assert (await stack.service.ledger.view("console:alice")).reserved == 20


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
async def test_every_admin_command_is_refused_for_non_admins(stack: Stack, action: str) -> None:
    await stack.service.ledger.touch("console:bob")
    before = await stack.service.ledger.history("console:bob", limit=50)
    assert await say(stack, "mallory", f"/admin {action}") == "Only the bot's admins can do that."
    assert await stack.service.ledger.history("console:bob", limit=50) == before


async def test_admin_grant_is_journaled_with_the_admin_as_actor(stack: Stack) -> None:
    reply = await say(stack, "admin", "/admin grant console:bob 500 contest prize")
    assert reply.startswith("Granted 500 credits (console:bob).") and "Available: 700" in reply
    entry = (await stack.service.ledger.history("console:bob", limit=1))[0]
    assert (entry.reason, entry.delta, entry.actor) == (JournalReason.GRANT, 500, "console:admin")


async def test_admin_names_the_account_by_reply_too(stack: Stack) -> None:
    reply = await say(stack, "admin", "/admin take 50", target="console:bob")
    assert "Available: 150" in reply


async def test_ban_blocks_videos_until_unban(stack: Stack) -> None:
    await say(stack, "admin", "/admin ban console:bob spamming")
    refused = await say(stack, "bob", "/video a fox")
    assert "banned" in refused.lower()
    assert await stack.service.jobs.unfinished("console:bob") == []
    await say(stack, "admin", "/admin unban console:bob")
    assert (await say(stack, "bob", "/video a fox")).startswith("🎬")


async def test_quota_and_user_view(stack: Stack) -> None:
    reply = await say(stack, "admin", "/admin quota console:bob daily 300 jobs 1")
    assert reply == "Quota for console:bob: daily grant 300, max jobs in flight 1."
    assert (await say(stack, "bob", "/video one")).startswith("🎬")
    assert not (await say(stack, "bob", "/video two")).startswith("🎬")
    user = await say(stack, "admin", "/admin user console:bob")
    assert "1 in flight" in user and "quota" in user


async def test_admin_refund_of_a_waiting_job_cancels_and_releases(stack: Stack) -> None:
    job_id = (await say(stack, "bob", "/video a fox")).split()[2]
    reply = await say(stack, "admin", f"/admin refund {job_id}")
    assert reply == f"Job {job_id} cancelled; 10 credits returned to console:bob."
    assert (await stack.service.ledger.view("console:bob")).available == 200


async def test_bad_admin_input_is_explained(stack: Stack) -> None:
    assert "positive whole number" in await say(stack, "admin", "/admin grant console:bob -5")
    assert "Name the account" in await say(stack, "admin", "/admin grant 5")
    assert "Unknown admin command" in await say(stack, "admin", "/admin nuke console:bob")
    assert "Usage: /admin quota" in await say(stack, "admin", "/admin quota console:bob daily")


@pytest.mark.parametrize("amount", [str(2**63 - 1), str(2**63), "1000001"])
async def test_admin_amounts_are_bounded(stack: Stack, amount: str) -> None:
    await stack.service.ledger.touch("console:bob")
    for action in ("grant", "take"):
        reply = await say(stack, "admin", f"/admin {action} console:bob {amount}")
        assert "at most 1,000,000 per admin action" in reply
    assert "at most 1,000,000" in await say(stack, "admin", f"/admin quota console:bob daily {amount}")
    assert (await stack.service.ledger.view("console:bob")).balance == 200
    assert "200 credits held by users" in await say(stack, "admin", "/admin stats")


@pytest.mark.parametrize("account", ["telegram:３００３", "discord:٤٢", "telegram:30O3"])
async def test_admin_accounts_take_ascii_digits_only(stack: Stack, account: str) -> None:
    reply = await say(stack, "admin", f"/admin ban {account} spam")
    assert "is not an account" in reply
    assert (await stack.service.ledger.stats()).banned == 0


async def test_typed_admin_actions_check_the_caller_and_the_account(stack: Stack) -> None:
    with pytest.raises(NotAdmin):
        await admin.grant(stack.service, stack.user("mallory"), "console:mallory", 5)
    with pytest.raises(InvalidAccount):
        await admin.grant(stack.service, stack.user("admin"), "console:bob 1000000", 5)
    reply = await admin.quota(stack.service, stack.user("admin"), "console:bob", jobs=None)
    assert reply == "Quota for console:bob: daily grant 100, max jobs in flight 2."
