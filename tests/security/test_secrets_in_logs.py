"""No token or Redis password in any log line, even with every library at DEBUG, over a full run on both
platforms; and none in what users are told."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.contract.config import AdminSettings, Config, DiscordSettings, RedisSettings, TelegramSettings
from generator.contract.logs import REDACTED, setup_logging
from generator.engine.loader import LoadedModels
from tests.conftest import WorkerHandle
from tests.discord.conftest import ADMIN, ALICE_HERE, running_discord
from tests.emulators.discord_gateway import emulated_discord, guild_payload, string_option, text_channel_payload
from tests.emulators.telegram_bot_api import ApiChat, BotApiEmulator
from tests.faults.processes import ROOT
from tests.telegram.conftest import ALICE, running_telegram, say
from wanbot.redis_server import LocalRedis

TELEGRAM_TOKEN = "7654321098:AAHsEcReT-telegram-token_Zq8"
DISCORD_TOKEN = "MTIzNDU2.discord-secret-token.Xy9_abcdefghij"
REDIS_PASSWORD = "r3dis/p@ss w0rd"
SECRETS = [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], DISCORD_TOKEN, REDIS_PASSWORD, "r3dis%2Fp%40ss%20w0rd"]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process's logging as `wanbot` sets it up, then every library turned up to DEBUG."""
    lines = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("DEBUG", secrets=SECRETS, handler=logging.StreamHandler(lines))
    for library in ("httpx", "httpcore", "telegram", "discord", "aiohttp", "arq", "redis"):
        logging.getLogger(library).setLevel(logging.DEBUG)
    yield lines
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


async def test_a_full_run_logs_no_secret(log_lines: io.StringIO, config: Config, tmp_path: Path,
                                         tiny_models: LoadedModels) -> None:
    redis = LocalRedis(password=REDIS_PASSWORD).start()
    guild = guild_payload("1400000000000000001", owner_id=ADMIN["id"],
                          channels=[text_channel_payload("1200000000000000002", "1400000000000000001")])
    try:
        async with BotApiEmulator(token=TELEGRAM_TOKEN) as api, emulated_discord(guilds=[guild],
                                                                               token=DISCORD_TOKEN) as discord_env:
            secured = config.model_copy(update={
                "redis": RedisSettings(url=redis.url, queue="wanbot:secrets"),
                "telegram": TelegramSettings(token=TELEGRAM_TOKEN, base_url=api.base_url,
                                             base_file_url=api.base_file_url),
                "discord": DiscordSettings(token=DISCORD_TOKEN),
                "admins": AdminSettings(telegram=["1"]),
            })
            assert sorted(secured.secrets()) == sorted(SECRETS)
            worker = WorkerHandle(secured, tiny_models)
            await worker.start()
            try:
                async with running_telegram(secured):
                    await say(api, ALICE, "/video a lighthouse in fog")
                    await api.wait_for(lambda: api.videos(ApiChat.private(ALICE).id))
                    await say(api, ALICE, "/admin stats")  # a refusal path too
                async with running_discord(secured) as client:
                    record = await discord_env.gateway.interact(client, discord_env.gateway.builder.slash_command(
                        ALICE_HERE, "video", string_option("prompt", "a lighthouse at night")))
                    await discord_env.rest.wait_for(lambda: any(m.attachments for m in
                                                                discord_env.rest.followups(record.token)))
            finally:
                await worker.stop()
            told = [str(message.current) for message in api.messages(ApiChat.private(ALICE).id)]
            told += [str(message.payload) for message in discord_env.rest.followups(record.token)]
    finally:
        redis.cleanup()
    logged = log_lines.getvalue()
    assert "getUpdates" in logged and "INTERACTION_CREATE" in logged  # the libraries did log, at DEBUG
    assert REDACTED in logged  # and what they logged carried the token: it was caught
    for secret in SECRETS:
        assert secret not in logged, secret
        assert not any(secret in text for text in told), secret


def test_a_bad_config_names_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[telegram]\ntoken = "{TELEGRAM_TOKEN}"\nbase_url = 42\n')
    run = subprocess.run([sys.executable, "-m", "wanbot.cli", "--config", str(config), "credits", "stats"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 2 and "base_url" in run.stderr
    assert TELEGRAM_TOKEN not in run.stderr + run.stdout and TELEGRAM_TOKEN.split(":")[1] not in run.stderr
