"""Caps that hold however many accounts one person makes: jobs waiting in all and per chat, and the image
bytes one account keeps queued in Redis. Every refusal is clear and free; the hot queries use their indexes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from PIL import Image

from bot.commands import Message, handle
from bot.jobstore import UNFINISHED_SQL
from generator.contract.config import Config
from tests.conftest import Stack, running_stack
from tests.generator.test_images import encoded

PHOTO = encoded(Image.new("RGB", (120, 80), (10, 120, 200)))


@pytest.fixture
async def capped(config: Config) -> AsyncIterator[Stack]:
    bot = config.bot.model_copy(update={"max_jobs_waiting": 5, "max_jobs_waiting_per_chat": 3,
                                        "max_queued_image_bytes": 2 * len(PHOTO) + 10})
    credits = config.credits.model_copy(update={"max_jobs_in_flight": 10})
    async with running_stack(config.model_copy(update={"bot": bot, "credits": credits})) as stack:
        yield stack


async def video(stack: Stack, user: str, chat: str, image: bytes | None = None) -> str:
    reply = await handle(stack.service, Message(stack.user(user), "/video a fox", reply_to={"chat_key": chat},
                                                image=image))
    assert reply is not None
    return reply


async def test_a_chat_holds_a_limited_number_of_waiting_jobs_from_any_accounts(capped: Stack) -> None:
    for sybil in ("sybil1", "sybil2", "sybil3"):
        assert "queued" in await video(capped, sybil, "telegram:-100")
    refused = await video(capped, "sybil4", "telegram:-100")
    assert "This chat already has 3 videos in progress; nothing was charged" in refused
    assert (await capped.service.ledger.view("console:sybil4")).available == 200
    assert "queued" in await video(capped, "sybil4", "telegram:-200")  # another chat is not affected


async def test_all_chats_together_hold_a_limited_number_of_waiting_jobs(capped: Stack) -> None:
    for index in range(5):
        assert "queued" in await video(capped, f"sybil{index}", f"telegram:{index}")
    refused = await video(capped, "newcomer", "telegram:99")
    assert "very busy" in refused and "nothing was charged" in refused
    assert (await capped.service.ledger.view("console:newcomer")).reserved == 0
    await handle(capped.service, Message(capped.user("sybil0"), "/cancel"))
    assert "queued" in await video(capped, "newcomer", "telegram:99")  # room again once one ended


async def test_queued_image_bytes_per_account_are_capped(capped: Stack) -> None:
    assert "queued" in await video(capped, "alice", "telegram:1", PHOTO)
    assert "queued" in await video(capped, "alice", "telegram:2", PHOTO)
    refused = await video(capped, "alice", "telegram:3", PHOTO)
    assert "Your images waiting in the queue take" in refused and "Please wait for a job to finish" in refused
    assert (await capped.service.ledger.view("console:alice")).reserved == 20
    assert "queued" in await video(capped, "alice", "telegram:3")  # text-only jobs hold no image
    assert "queued" in await video(capped, "bob", "telegram:3", PHOTO)  # another account has its own share


@pytest.mark.parametrize(("where", "params", "index"), [
    ("", (), "jobs_unfinished"),
    (" AND chat_key = ?", ("telegram:1",), "jobs_unfinished_chat"),
    (" AND account = ?", ("console:alice",), "jobs_unfinished_account"),
])
async def test_the_cap_queries_use_their_partial_indexes(stack: Stack, where: str, params: tuple[str, ...],
                                                         index: str) -> None:
    db = stack.service.jobs._db
    async with db.execute(f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM jobs WHERE {UNFINISHED_SQL}{where}",
                          params) as cursor:
        plan = " ".join(row[3] for row in await cursor.fetchall())
    assert f"USING COVERING INDEX {index}" in plan or f"USING INDEX {index}" in plan, plan
