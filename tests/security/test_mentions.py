"""Messages never ping anyone they shouldn't, and an echoed prompt is shown as typed, on both platforms.

A prompt like `/video @everyone <@&role> …` is echoed in the job's status message and the video's
caption. On Discord, asserted at the wire (the JSON the emulated REST API received, from the real
discord.py client): every message allows no mentions except the job's owner where it should ping them,
and the prompt's mentions, markdown and masked links arrive escaped. On Telegram (the real
python-telegram-bot client against the Bot API emulator): nothing is sent with a parse_mode, so markup
stays text, and an @username in a prompt is broken so it notifies nobody.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.discord.client import WanbotClient
from bot.messages import as_typed
from generator.contract.config import Config, DiscordSettings, TelegramSettings
from tests.conftest import WorkerHandle
from tests.discord.conftest import ALICE, ALICE_HERE, CHANNEL_ID, running_discord
from tests.emulators.discord_gateway import (
    EmulatedDiscord,
    string_option,
)
from tests.emulators.discord_rest import Call, StoredMessage
from tests.emulators.telegram_bot_api import ApiChat, BotApiEmulator
from tests.telegram.conftest import ALICE as TELEGRAM_ALICE
from tests.telegram.conftest import running_telegram, say

ROLE_ID = "1200000000000000099"
# Within the 120 characters of a prompt that messages echo.
HOSTILE_PROMPT = f"@everyone @here <@&{ROLE_ID}> <#{CHANNEL_ID}> **free** ||now|| [click](https://evil.example) a fox"
ESCAPED = ("“@\u200beveryone @\u200bhere " + rf"\<@&{ROLE_ID}\> \<\#{CHANNEL_ID}\> \*\*free\*\* \|\|now\|\| "
           r"\[click\](https\://evil.example) a fox”")
NOTHING = {"parse": []}
OWNER = {"parse": [], "users": [int(ALICE["id"])]}


@pytest.fixture
async def discord_bot(config: Config, discord_env: EmulatedDiscord) -> AsyncIterator[WanbotClient]:
    async with running_discord(config.model_copy(update={"discord": DiscordSettings(token=discord_env.rest.token)})) \
            as client:
        yield client


def messages_sent(env: EmulatedDiscord) -> list[Call]:
    """Every call that posted or edited a message (webhook followups, @original, channel messages)."""
    return [call for call in env.rest.calls_to(r"(POST|PATCH) /(webhooks|channels)/.*")
            if isinstance(call.json, dict) and "content" in call.json]


def assert_pings_at_most_the_owner(calls: list[Call]) -> None:
    assert calls
    for call in calls:
        assert call.json["allowed_mentions"] in (NOTHING, OWNER), call


def assert_escaped(message: StoredMessage | None) -> None:
    assert message is not None and ESCAPED in message.content, message


async def delivered(env: EmulatedDiscord, where: Any) -> StoredMessage:
    return await env.rest.wait_for(lambda: next((message for message in where() if message.attachments), None),
                                   timeout=60)


async def test_discord_echoes_the_prompt_escaped_and_pings_only_the_owner(
        discord_env: EmulatedDiscord, discord_bot: WanbotClient, worker: WorkerHandle) -> None:
    await worker.start()
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", HOSTILE_PROMPT)))
    video = await delivered(discord_env, lambda: discord_env.rest.followups(record.token))
    calls = messages_sent(discord_env)
    assert_pings_at_most_the_owner(calls)
    (delivery,) = [call for call in calls if call.uploads]
    assert delivery.json["allowed_mentions"] == OWNER  # the video tells its owner, and nobody else
    status = next(message for message in discord_env.rest.followups(record.token) if not message.ephemeral)
    for message in (discord_env.rest.original(record.token), status, video):  # the answer, status and video
        assert_escaped(message)
    assert f"<@{ALICE['id']}>" in video.content  # the owner's own mention is real


async def test_discord_channel_posts_after_the_token_expires_ping_only_the_owner(
        discord_env: EmulatedDiscord, discord_bot: WanbotClient, worker: WorkerHandle) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", HOSTILE_PROMPT)))
    await discord_env.rest.wait_for(lambda: [m for m in discord_env.rest.followups(record.token) if not m.ephemeral])
    discord_env.rest.expire_token(record.token)  # 15 minutes pass before a worker takes the job
    await worker.start()
    video = await delivered(discord_env, lambda: discord_env.rest.channel_messages(CHANNEL_ID))
    posts = [call for call in messages_sent(discord_env) if call.path.startswith("/channels/")]
    assert_pings_at_most_the_owner(posts)
    assert [call.json["allowed_mentions"] for call in posts if call.uploads] == [OWNER]
    assert_escaped(video)


async def test_telegram_sends_plain_text_and_breaks_mentions(config: Config, worker: WorkerHandle) -> None:
    group = ApiChat.supergroup(-1001234567890, "video club")
    async with BotApiEmulator() as api:
        settings = config.model_copy(update={"telegram": TelegramSettings(
            token=api.token, base_url=api.base_url, base_file_url=api.base_file_url)})
        async with running_telegram(settings):
            await worker.start()
            answer = await say(api, TELEGRAM_ALICE, "/video @durov *free* _nitro_ [click](https://evil.example) "
                                                    "<b>now</b> a fox", group)
            video = await api.wait_for(lambda: next(iter(api.videos(group.id)), None), timeout=60)
            sent = [call for call in api.calls() if call.method in ("sendMessage", "editMessageText", "sendVideo")]
    assert not [call for call in sent if {"parse_mode", "entities", "caption_entities"} & call.params.keys()]
    for text in (answer.text, video.caption):
        assert "“@\u200cdurov *free* _nitro_ [click](https://evil.example) <b>now</b> a fox”" in text, text
        assert "@durov" not in text


@pytest.mark.parametrize(("typed", "sent"), [
    ("@everyone and @Here", "@\u200beveryone and @\u200bHere"),
    ("<@42> <@!42> <@&42> <#42> <t:1700000000:R> <:pog:42> </video:42>",
     r"\<@42\> \<@!42\> \<@&42\> \<\#42\> \<t\:1700000000\:R\> \<\:pog\:42\> \</video\:42\>"),
    ("*a* **b** _c_ __d__ ~~e~~ ||f|| `g` ```h```",
     r"\*a\* \*\*b\*\* \_c\_ \_\_d\_\_ \~\~e\~\~ \|\|f\|\| \`g\` \`\`\`h\`\`\`"),
    ("# big\n-# small\n> quote\n- item", "\\# big\n\\-\\# small\n\\> quote\n\\- item"),
    (r"[free nitro](https://evil.example) \@everyone", r"\[free nitro\](https\://evil.example) \\@" + "\u200beveryone"),
], ids=["everyone and here", "mentions, channels, timestamps, emoji, commands", "inline markdown",
        "headings, subtext, quotes, lists", "masked links and a backslash"])
def test_discord_escapes_every_kind_of_markup(typed: str, sent: str) -> None:
    assert as_typed(typed, "discord") == sent


def test_telegram_and_the_console_keep_text_as_typed_but_for_mentions() -> None:
    assert as_typed("@durov *b* <i>i</i> [x](https://e.example)", "telegram") == \
        "@\u200cdurov *b* <i>i</i> [x](https://e.example)"
    assert as_typed("@everyone *b*", "console") == "@everyone *b*"
