"""What the abuse benchmarks measure: how long other users wait for a /balance answer meanwhile."""

from __future__ import annotations

import asyncio
import time

from generator.contract.config import Config, RedisSettings, TelegramSettings
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator


def bench_config(api: BotApiEmulator, redis_url: str, queue: str, database: str) -> Config:
    """The deployed defaults, talking to the emulated Bot API, on a queue and database of the run's own."""
    return Config(redis=RedisSettings(url=redis_url, queue=queue), credits={"database": database},
                  telegram=TelegramSettings(token=api.token, base_url=api.base_url, base_file_url=api.base_file_url))


async def balance_latencies(api: BotApiEmulator, users: int, spacing_s: float, timeout_s: float) -> list[float]:
    """`users` people each send /balance, one every `spacing_s`; the seconds until each was answered."""
    sent: dict[int, float] = {}
    for n in range(users):
        person = ApiUser(20_000 + n, f"user{n}")
        sent[person.id] = time.monotonic()
        api.push_update(api.text_message(person, ApiChat.private(person), "/balance"))
        await asyncio.sleep(spacing_s)
    await api.wait_for(lambda: sum(int(call.params["chat_id"]) in sent for call in api.calls("sendMessage")) >= users,
                       timeout=timeout_s)
    return [call.received_at - sent[int(call.params["chat_id"])] for call in api.calls("sendMessage")
            if int(call.params["chat_id"]) in sent]
