"""Attacks through Telegram, at the Bot API: shared identities, paths around the rate limiter, forged buttons.

Each drives the real python-telegram-bot client against the Bot API emulator with a real redis-server and
SQLite ledger; a modified client is emulated by callback data that no button of the message carries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.service import BotService
from generator.contract.config import BotSettings, Config
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator, JSONDict
from tests.telegram.conftest import ADMIN, ALICE, MALLORY, running_telegram, say, send
from tests.telegram.test_telegram_bot import job_id_in

GROUP = ApiChat.supergroup(-1001234567890, "video club")
OTHER_GROUP = ApiChat.supergroup(-1009876543210, "another club")
ANONYMOUS_ADMIN = ApiUser(1087968824, "Group", "GroupAnonymousBot")
CHANNEL_BOT = ApiUser(136817688, "Channel", "Channel_Bot")
MALLORYS_CHANNEL = {"id": -1005555555555, "type": "channel", "title": "mallory's channel"}


def hidden_sender(update: JSONDict, sender_chat: JSONDict) -> JSONDict:
    """The update as Telegram sends a message posted as a group (anonymous admin) or as a channel."""
    update["message"]["sender_chat"] = sender_chat
    update["message"]["from"]["is_bot"] = True
    return update


async def accounts(service: BotService) -> set[str]:
    async with service.ledger._db.execute("SELECT account FROM accounts") as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def test_anonymous_admins_and_channel_identities_are_refused_everywhere(
        api: BotApiEmulator, telegram: BotService) -> None:
    first = await say(api, ALICE, "/video a lighthouse", GROUP)
    job_id = job_id_in(first)
    attempts = [
        (ANONYMOUS_ADMIN, GROUP, GROUP.to_json(), "/video a cat"),
        (ANONYMOUS_ADMIN, OTHER_GROUP, OTHER_GROUP.to_json(), "/queue"),
        (ANONYMOUS_ADMIN, GROUP, GROUP.to_json(), f"/cancel {job_id}"),
        (CHANNEL_BOT, GROUP, MALLORYS_CHANNEL, "/video a banned user's cat"),
        (CHANNEL_BOT, GROUP, MALLORYS_CHANNEL, "/balance"),
        (CHANNEL_BOT, GROUP, MALLORYS_CHANNEL, "/help"),
    ]
    for sender, chat, sender_chat, text in attempts:
        (reply,) = await send(api, hidden_sender(api.text_message(sender, chat, text), sender_chat), chat)
        assert "posting as the group or as a channel" in reply.text, (text, reply.text)
    assert await accounts(telegram) == {f"telegram:{ALICE.id}"}  # no shared account was made
    assert [job.job_id for job in await telegram.jobs.unfinished()] == [job_id]  # nothing queued or cancelled


async def test_a_reply_to_an_anonymous_admin_names_no_account(api: BotApiEmulator, telegram_config: Config) -> None:
    async with running_telegram(telegram_config) as service:
        anonymous = hidden_sender(api.text_message(ANONYMOUS_ADMIN, GROUP, "hello"), GROUP.to_json())
        api.push_update(anonymous)
        reply = (await send(api, api.text_message(ADMIN, GROUP, "/admin grant 50", reply_to=anonymous["message"]),
                            GROUP))[0]
        assert "Name the account" in reply.text
        assert f"telegram:{ANONYMOUS_ADMIN.id}" not in await accounts(service)


@pytest.fixture
async def strict(api: BotApiEmulator, telegram_config: Config) -> AsyncIterator[BotService]:
    """A bot whose limiter allows two commands and then one every 100 minutes."""
    bot = BotSettings(**{**telegram_config.bot.model_dump(), "command_burst": 2, "commands_per_minute": 0.01})
    async with running_telegram(telegram_config.model_copy(update={"bot": bot})) as service:
        yield service


@pytest.mark.parametrize("text", ["/help", "/start", "just some words"])
async def test_help_start_and_plain_text_pass_the_rate_limiter(api: BotApiEmulator, strict: BotService,
                                                               text: str) -> None:
    replies = [(await say(api, MALLORY, text)).text for _ in range(3)]
    assert "too fast" not in replies[0] and "too fast" not in replies[1]
    assert "You're sending commands too fast" in replies[2]


async def test_buttons_pass_the_rate_limiter(api: BotApiEmulator, strict: BotService) -> None:
    status = await say(api, MALLORY, "/video one")  # the first of two commands
    job_id = job_id_in(status)
    assert (await pressed(api, MALLORY, status, f"vary:{job_id}")) == ""  # the second: the vary question
    assert "You're sending commands too fast" in await pressed(api, MALLORY, status, f"vary:{job_id}")
    assert await pressed(api, MALLORY, status, f"cancel:{job_id}") == ""  # answered quietly, not cancelled
    assert (await strict.jobs.get(job_id)).state.value == "queued"  # type: ignore[union-attr]


async def pressed(api: BotApiEmulator, user: ApiUser, message: Any, data: str) -> str:
    """Press a (forged) button and return the answer to the query."""
    before = len(api.callback_answers)
    api.push_update(api.callback_query(user, message, data, forged=True))
    await api.wait_for(lambda: len(api.callback_answers) > before)
    return api.callback_answers[before].text or ""


async def test_forged_buttons_reveal_and_reuse_nothing_of_others(api: BotApiEmulator, telegram: BotService) -> None:
    private = await say(api, ALICE, "/video my secret garden --seed 3")
    secret_job = job_id_in(private)
    own = await say(api, MALLORY, "/help")
    sent_before = len(api.sent(MALLORY.id))
    for action in ("vary", "reroll"):
        answer = await pressed(api, MALLORY, own, f"{action}:{secret_job}")
        assert answer == f"There is no job {secret_job}."
    assert len(api.sent(MALLORY.id)) == sent_before  # no "Was: my secret garden" question, no job answer
    assert not await telegram.jobs.unfinished(f"telegram:{MALLORY.id}")
    assert (await telegram.ledger.view(f"telegram:{MALLORY.id}")).available == 200

    shared = await say(api, ALICE, "/video a public sunset", GROUP)
    answer = await pressed(api, MALLORY, shared, f"reroll:{job_id_in(shared)}")
    assert answer.startswith("🎲")  # a re-roll where the video was shown: allowed, charged to the presser
    await api.wait_for(lambda: any("a public sunset" in (m.text or "") and job_id_in(m) != job_id_in(shared)
                                   for m in api.sent(GROUP.id)))
    assert (await telegram.ledger.view(f"telegram:{MALLORY.id}")).reserved == 10
