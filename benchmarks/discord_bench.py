"""Time from a Discord interaction to its deferral reaching Discord, with many users at once.

The real bot (discord.py client, the service, SQLite ledger, redis-server) connects to the
emulated gateway and REST API on loopback. N users run `/video` at the same moment: N
INTERACTION_CREATE events are written to the gateway websocket back to back; for each, the
time from its event being sent to the bot's deferral (callback type 5) arriving at the REST API.
Discord gives a bot 3 seconds.

    .venv/bin/python -m benchmarks.discord_bench [--users 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from benchmarks.stats import percentile
from bot.discord.client import build_client, connected
from generator.contract.config import Config, DiscordSettings, RedisSettings
from tests.emulators.discord_gateway import (
    emulated_discord,
    guild_caller,
    guild_payload,
    string_option,
    text_channel_payload,
    user_payload,
)
from wanbot.app import FrontEndStart, frontends_started, open_service
from wanbot.redis_server import LocalRedis

GUILD, CHANNEL = "1300000000000000001", "1300000000000000002"


async def burst(users: int, redis_url: str) -> list[float]:
    guild = guild_payload(GUILD, owner_id="1300000000000000010", channels=[text_channel_payload(CHANNEL, GUILD)])
    with tempfile.TemporaryDirectory() as tmp:
        async with emulated_discord(guilds=[guild]) as (rest, gateway):
            config = Config(redis=RedisSettings(url=redis_url, queue="bench:discord"),
                            credits={"database": f"{tmp}/bench.sqlite3"},
                            discord=DiscordSettings(token=rest.token))
            async with open_service(config) as service:
                client = build_client(service, guild_ready_timeout=0.05)
                async with frontends_started(service, [FrontEndStart(client.frontend, connected(client, rest.token))]):
                    session = gateway.session(client)
                    sent: dict[str, float] = {}
                    records = []
                    for n in range(users):
                        user = user_payload(str(1_300_000_000_000_100_000 + n), f"user{n}")
                        payload = gateway.builder.slash_command(
                            guild_caller(user, guild_id=GUILD, channel_id=CHANNEL), "video",
                            string_option("prompt", "a red fox in snow"))
                        records.append(rest.register_interaction(payload))
                        sent[payload["id"]] = time.monotonic()
                        await session.send_event("INTERACTION_CREATE", payload)
                    await rest.wait_for(lambda: all(record.acknowledged for record in records), timeout=120)
                    # Let every command finish (job queued, status attached) before the client closes.
                    async with asyncio.timeout(300):
                        while True:
                            jobs = await service.jobs.unfinished()
                            if len(jobs) == users and all(job.status_ref for job in jobs):
                                break
                            await asyncio.sleep(0.05)
                    callbacks = {call.path.split("/")[2]: call.received_at
                                 for call in rest.calls_to(r"POST /interactions/\d+/.+/callback")}
                    await service.stop()
            return [callbacks[interaction_id] - at for interaction_id, at in sent.items()]


async def main(users: int) -> None:
    redis = LocalRedis().start()
    try:
        latencies = await burst(users, redis.url)
    finally:
        redis.cleanup()
    print(f"{users} users run /video at once; interaction sent -> deferral received, seconds")
    print(f"{'median':>10}{'p99':>10}{'max':>10}{'over 3 s':>10}")
    print(f"{statistics.median(latencies):>10.3f}{percentile(latencies, 0.99):>10.3f}{max(latencies):>10.3f}"
          f"{sum(latency > 3 for latency in latencies):>10d}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    asyncio.run(main(parser.parse_args().users))
