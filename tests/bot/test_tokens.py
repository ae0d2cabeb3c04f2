"""Discord interaction tokens are dropped from the jobs table once they expire (a live token lets its
holder post as the bot in that channel; an expired one is only a liability in the file and its backups)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.jobstore import JobRecord, JobState, JobStore
from generator.contract.config import Config
from generator.contract.jobs import VideoJob
from tests.conftest import running_stack

NOW = 1_750_000_000.0


def discord_job(job_id: str, expires_at: float, state: JobState = JobState.DELIVERED) -> JobRecord:
    reply_to = {"application_id": 7, "token": f"secret-token-{job_id}", "token_expires_at": expires_at,
                "channel_id": 9, "chat_key": "discord:9"}
    job = VideoJob(job_id=job_id, preset="tiny", prompt="a fox", width=64, height=64, num_frames=17, seed=1)
    return JobRecord(job_id, "discord:42", "discord", reply_to, job, 10, state)


async def test_expired_tokens_are_blanked_and_live_ones_kept(tmp_path: Path) -> None:
    database = tmp_path / "wanbot.sqlite3"
    jobs = await JobStore.open(database)
    try:
        await jobs.insert(discord_job("expired00001", NOW - 1))
        await jobs.insert(discord_job("live00000001", NOW + 600, JobState.RUNNING))
        assert await jobs.drop_expired_tokens(NOW) == 1
        expired, live = await jobs.get("expired00001"), await jobs.get("live00000001")
        assert expired is not None and expired.reply_to["token"] == "" and expired.reply_to["channel_id"] == 9
        assert live is not None and live.reply_to["token"] == "secret-token-live00000001"
        assert await jobs.drop_expired_tokens(NOW + 10) == 0  # one sweep a minute at most
        assert await jobs.drop_expired_tokens(NOW + 700) == 1
    finally:
        await jobs.close()
    assert b"secret-token" not in database.read_bytes()  # not left in a page's free space either


async def test_the_delivery_watcher_drops_them(config: Config) -> None:
    jobs = await JobStore.open(config.credits.database)
    await jobs.insert(discord_job("expired00002", 1.0))  # delivered long ago
    await jobs.close()
    async with running_stack(config) as stack:
        async with asyncio.timeout(30):  # the watcher's first tick sweeps; this bounds the wait only
            while True:
                record = await stack.service.jobs.get("expired00002")
                if record is not None and record.reply_to["token"] == "":
                    break
                await asyncio.sleep(0.05)
