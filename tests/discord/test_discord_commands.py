"""Discord's typed commands through the emulator: /help names options, flags in the prompt count, and
a setting given twice (a flag in the prompt and the option) is refused naming the option to use."""

from __future__ import annotations

import re

from bot.discord.client import WanbotClient
from tests.discord.conftest import ALICE, ALICE_HERE, number_option
from tests.emulators.discord_gateway import EmulatedDiscord, string_option
from tests.emulators.discord_rest import InteractionRecord, StoredMessage

JOB = re.compile(r"Job ([0-9a-f]{12})")


async def answer(env: EmulatedDiscord, record: InteractionRecord) -> StoredMessage:
    """The interaction's @original once it is no longer 'thinking'."""
    return await env.rest.wait_for(lambda: (original := env.rest.original(record.token)) is not None
                                   and not original.loading and original)


async def test_help_lists_discord_options_never_flags(discord_env: EmulatedDiscord, discord_bot: WanbotClient) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(ALICE_HERE,
                                                                                                      "help"))
    text = (await answer(discord_env, record)).content
    assert "--" not in text and "/video prompt:" in text
    assert "aspect: 16:9|9:16|1:1" in text and "seconds: N (up to 5)" in text and "480p 5s = 10" in text


async def test_flags_typed_into_the_prompt_are_what_the_user_pays_for(discord_env: EmulatedDiscord,
                                                                      discord_bot: WanbotClient) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "a red fox --ar 9:16 --seconds 1")))
    ack = await answer(discord_env, record)
    job = await discord_bot.service.jobs.get(JOB.search(ack.content).group(1))  # type: ignore[union-attr]
    assert job is not None and job.request is not None
    assert (job.request.prompt, job.request.aspect, job.request.seconds) == ("a red fox", "9:16", 1.0)
    assert job.cost == 2 and "2 credits, 198 left" in ack.content


async def test_a_flag_and_its_option_together_are_refused_naming_the_option(discord_env: EmulatedDiscord,
                                                                            discord_bot: WanbotClient) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "a red fox --seconds 1"), number_option("seconds", 2)))
    ack = await answer(discord_env, record)
    assert "seconds option" in ack.content and ack.ephemeral
    view = await discord_bot.service.ledger.view(f"discord:{ALICE['id']}")
    assert (view.balance, view.reserved) == (200, 0)
