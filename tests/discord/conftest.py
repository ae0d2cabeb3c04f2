"""A wanbot Discord bot, built and connected as `wanbot bot` does, against the emulated Discord."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.discord.client import WanbotClient, build_client, connected
from generator.contract.config import AdminSettings, Config, DiscordSettings
from tests.emulators.discord_gateway import (
    EmulatedDiscord,
    Option,
    emulated_discord,
    guild_caller,
    guild_payload,
    text_channel_payload,
    user_payload,
)
from tests.emulators.discord_rest import StoredMessage
from wanbot.app import FrontEndStart, frontends_started, open_service

GUILD_ID = "1200000000000000001"
CHANNEL_ID = "1200000000000000002"
ADMIN = user_payload("1200000000000000010", "ada", global_name="Ada")
ALICE = user_payload("1200000000000000020", "alice", global_name="Alice")
MALLORY = user_payload("1200000000000000030", "mallory")
ALICE_HERE = guild_caller(ALICE, guild_id=GUILD_ID, channel_id=CHANNEL_ID)
ADMIN_HERE = guild_caller(ADMIN, guild_id=GUILD_ID, channel_id=CHANNEL_ID)
MALLORY_HERE = guild_caller(MALLORY, guild_id=GUILD_ID, channel_id=CHANNEL_ID)
NUMBER = 10  # application command option types the emulator's builders leave out
BOOLEAN = 5


@pytest.fixture
async def discord_env() -> AsyncIterator[EmulatedDiscord]:
    guild = guild_payload(GUILD_ID, owner_id=ADMIN["id"], channels=[text_channel_payload(CHANNEL_ID, GUILD_ID)])
    async with emulated_discord(guilds=[guild]) as env:
        for user in (ADMIN, ALICE, MALLORY):
            env.rest.add_user(user)
        yield env


@pytest.fixture
def discord_config(config: Config, discord_env: EmulatedDiscord) -> Config:
    return config.model_copy(update={
        "discord": DiscordSettings(token=discord_env.rest.token),
        "admins": AdminSettings(discord=[ADMIN["id"]]),
        "credits": config.credits.model_copy(update={"max_jobs_in_flight": 4}),
    })


@contextlib.asynccontextmanager
async def running_discord(config: Config) -> AsyncIterator[WanbotClient]:
    """The service and the discord.py client, started in `wanbot bot`'s order."""
    async with open_service(config) as service:
        client = build_client(service, guild_ready_timeout=0.05)
        receiving = connected(client, config.discord.token.get_secret_value())
        async with frontends_started(service, [FrontEndStart(client.frontend, receiving)]):
            yield client


@pytest.fixture
async def discord_bot(discord_config: Config) -> AsyncIterator[WanbotClient]:
    async with running_discord(discord_config) as client:
        yield client


def number_option(name: str, value: float) -> Option:
    return Option({"name": name, "type": NUMBER, "value": value})


def components_of(message: StoredMessage) -> list[str]:
    return [button["custom_id"] for row in message.components for button in row["components"]]


def with_attachments(message: StoredMessage) -> Any:
    return message if message.attachments else None


def boolean_option(name: str, value: bool) -> Option:
    return Option({"name": name, "type": BOOLEAN, "value": value})
