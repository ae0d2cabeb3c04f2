"""Forged button data through Discord's gateway: a modified client may send any custom_id on any message."""

from __future__ import annotations

from typing import Any

from bot.discord.client import WanbotClient
from tests.discord.conftest import ALICE_HERE, MALLORY, MALLORY_HERE
from tests.discord.test_discord_bot import JOB, answer
from tests.emulators.discord_gateway import EmulatedDiscord, dm_caller, string_option
from tests.emulators.discord_rest import InteractionRecord

MODAL = 9  # the interaction callback that opens a dialog


def carrying(message: dict[str, Any], custom_id: str, channel_id: str) -> dict[str, Any]:
    """`message` as posted in `channel_id` with one button: discord.py dispatches only buttons a message carries,
    so a forgery (or the video message's own re-roll button) brings its message along."""
    button = {"type": 2, "style": 1, "label": "forged", "custom_id": custom_id}
    return {**message, "channel_id": channel_id, "components": [{"type": 1, "components": [button]}]}


async def refusal_of(env: EmulatedDiscord, record: InteractionRecord) -> str:
    """The ephemeral answer to a button press, whether sent as its callback or as a followup."""
    found = await env.rest.wait_for(lambda: record.callback if record.callback_type == 4 else next(
        (message.content for message in env.rest.followups(record.token)), None))
    return str(found)


async def test_forged_vary_and_reroll_reveal_and_reuse_nothing(discord_env: EmulatedDiscord,
                                                               discord_bot: WanbotClient) -> None:
    gateway, rest = discord_env.gateway, discord_env.rest
    made = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "my secret garden")))
    job_id = JOB.search((await answer(discord_env, made)).content).group(1)  # type: ignore[union-attr]
    status = await rest.wait_for(lambda: [m for m in rest.followups(made.token) if not m.ephemeral])
    shown = rest.message(status[0].id).payload
    elsewhere = dm_caller(MALLORY)
    for action in ("vary", "reroll"):
        custom_id = f"wanbot:{action}:{job_id}"
        forged = await gateway.interact(discord_bot, gateway.builder.button_click(
            elsewhere, custom_id, carrying(shown, custom_id, elsewhere.channel["id"])))
        assert f"There is no job {job_id}." in await refusal_of(discord_env, forged)
        assert forged.callback_type != MODAL  # no dialog showing Alice's prompt
    mallory = f"discord:{MALLORY['id']}"
    assert not await discord_bot.service.jobs.unfinished(mallory)

    reroll = f"wanbot:reroll:{job_id}"  # where the video was shown: allowed, Mallory pays
    here = await gateway.interact(discord_bot, gateway.builder.button_click(
        MALLORY_HERE, reroll, carrying(shown, reroll, MALLORY_HERE.channel["id"])))
    assert "queued" in (await answer(discord_env, here)).content
    assert (await discord_bot.service.ledger.view(mallory)).reserved == 10
