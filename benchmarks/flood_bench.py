"""Does one user flooding the bot slow everyone else down? Reply latency of other users, with and without
a flood of 500 commands from one account, through the real Telegram front end on the emulated Bot API.

Other users send /balance one every 50 ms (40 users); in the flood run one user sends 500 /video at once
at the start. The per-user rate limit answers the flooder a handful of times and then stays quiet; jobs
in flight are capped. Flood limits (Telegram's 30 messages/s) are applied, as deployed.

    .venv/bin/python -m benchmarks.flood_bench
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile

from benchmarks.bystanders import balance_latencies, bench_config
from benchmarks.stats import percentile
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator
from tests.telegram.conftest import running_telegram
from wanbot.redis_server import LocalRedis

OTHERS = 40
SPACING_S = 0.05
FLOOD = 500
FLOODER = ApiUser(99_999, "flooder")


async def run(flood: bool, redis_url: str) -> tuple[list[float], int, int]:
    """Latencies of the other users' replies; replies the flooder got; jobs the flooder has queued."""
    with tempfile.TemporaryDirectory() as tmp:
        async with BotApiEmulator() as api:
            config = bench_config(api, redis_url, f"bench:flood:{flood}", f"{tmp}/bench.sqlite3")
            async with running_telegram(config) as service:
                if flood:
                    for _ in range(FLOOD):
                        api.push_update(api.text_message(FLOODER, ApiChat.private(FLOODER), "/video spam"))
                latencies = await balance_latencies(api, OTHERS, SPACING_S, timeout_s=300)
                queued = len(await service.jobs.unfinished(f"telegram:{FLOODER.id}"))
            answered = len(api.sent(FLOODER.id)) if flood else 0
            return latencies, answered, queued


async def main() -> None:
    redis = LocalRedis().start()
    try:
        quiet = await run(False, redis.url)
        flooded = await run(True, redis.url)
    finally:
        redis.cleanup()
    print(f"{OTHERS} users send /balance, one every {SPACING_S * 1000:.0f} ms; reply latency in seconds")
    print(f"{'run':<28}{'median':>9}{'p99':>9}{'flooder answered':>18}{'flooder jobs':>14}")
    for name, (latencies, answered, queued) in (("no flood", quiet), (f"{FLOOD} /video from one user", flooded)):
        p99 = percentile(latencies, 0.99)
        print(f"{name:<28}{statistics.median(latencies):>9.3f}{p99:>9.3f}{answered:>18}{queued:>14}")


if __name__ == "__main__":
    asyncio.run(main())
