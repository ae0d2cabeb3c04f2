"""Time from a Telegram update arriving to the bot's first reply, with many users at once.

The real bot (python-telegram-bot Application, the service, SQLite ledger, redis-server) polls
the Bot API emulator on loopback. N users each send `/video` at the same moment; for each, the
time from the update being queued on the emulated Telegram to the bot's answer reaching it.
Run twice: with Telegram's flood limits applied (AIORateLimiter, as deployed: Telegram allows
about 30 messages a second) and without (the bot's own processing speed).

    .venv/bin/python -m benchmarks.telegram_bench [--users 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from benchmarks.stats import percentile
from generator.contract.config import Config, RedisSettings, TelegramSettings
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator
from tests.telegram.conftest import running_telegram
from wanbot.redis_server import LocalRedis


async def burst(users: int, flood_limits: bool, redis_url: str) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with BotApiEmulator() as api:
            config = Config(
                redis=RedisSettings(url=redis_url, queue=f"bench:{flood_limits}"),
                credits={"database": f"{tmp}/bench.sqlite3"},
                telegram=TelegramSettings(token=api.token, base_url=api.base_url, base_file_url=api.base_file_url),
            )
            async with running_telegram(config, flood_limits):
                people = [ApiUser(10_000 + n, f"user{n}") for n in range(users)]
                pushed: dict[int, float] = {}
                for person in people:
                    update = api.text_message(person, ApiChat.private(person), "/video a red fox in snow")
                    pushed[person.id] = time.monotonic()
                    api.push_update(update)
                await api.wait_for(lambda: len(api.calls("sendMessage")) >= users, timeout=300)
            return [call.received_at - pushed[int(call.params["chat_id"])] for call in api.calls("sendMessage")]


async def main(users: int) -> None:
    redis = LocalRedis().start()
    try:
        rows = [("flood limits on", await burst(users, True, redis.url)),
                ("flood limits off", await burst(users, False, redis.url))]
    finally:
        redis.cleanup()
    print(f"{users} users send /video at once; update queued -> first reply received, seconds")
    print(f"{'mode':<20}{'median':>10}{'p99':>10}{'max':>10}")
    for name, latencies in rows:
        print(f"{name:<20}{statistics.median(latencies):>10.3f}{percentile(latencies, 0.99):>10.3f}"
              f"{max(latencies):>10.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    asyncio.run(main(parser.parse_args().users))
