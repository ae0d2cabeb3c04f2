"""The chat platforms failing: rate limits, server errors, timeouts on upload, and a bot killed mid-upload.

Retries are bounded and back off; a delivery that finally fails releases the credits and says so;
a video is delivered once and charged once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.jobstore import JobState
from bot.service import BotService
from credits.ledger import Ledger
from credits.models import JournalReason
from generator.contract.config import Config, load_config
from generator.contract.credits_config import CreditsSettings
from generator.engine.loader import LoadedModels
from tests.conftest import WorkerHandle
from tests.discord.conftest import ALICE_HERE, running_discord
from tests.discord.test_discord_bot import video_message
from tests.emulators.discord_gateway import EmulatedDiscord, string_option
from tests.emulators.telegram_bot_api import ApiChat, BotApiEmulator
from tests.faults.conftest import wait_state
from tests.faults.processes import WanbotProcess, write_config
from tests.telegram.conftest import ALICE, running_telegram, say
from wanbot.redis_server import LocalRedis

CHAT = ApiChat.private(ALICE)


async def captures(ledger: Ledger, account: str, job_id: str) -> int:
    return sum(entry.reason is JournalReason.CAPTURE and entry.job_id == job_id
               for entry in await ledger.history(account, 100))


async def telegram_job(api: BotApiEmulator, service: BotService, text: str = "/video a paper lantern") -> str:
    answer = await say(api, ALICE, text)
    return answer.text.split()[2]


async def test_telegram_rate_limits_and_server_errors_are_retried(api: BotApiEmulator, telegram: BotService,
                                                                  worker: WorkerHandle) -> None:
    await worker.start()
    api.fail("sendVideo", 429, retry_after=1)  # flood control: python-telegram-bot's limiter waits it out
    first = await telegram_job(api, telegram)
    await api.wait_for(lambda: len(api.videos(CHAT.id)) == 1)
    api.fail("sendVideo", 502, times=2)  # a flaky gateway: wanbot tries again, 2 s then 4 s later
    second = await telegram_job(api, telegram, "/video a second lantern")
    await api.wait_for(lambda: len(api.videos(CHAT.id)) == 2, timeout=60)
    statuses = [call.status for call in api.calls("sendVideo")]
    assert statuses == [429, 200, 502, 502, 200]
    for job_id in (first, second):
        assert await wait_state(telegram, job_id) is JobState.DELIVERED
        assert await captures(telegram.ledger, "telegram:2002", job_id) == 1


async def test_an_upload_failing_for_good_releases_the_credits_and_says_so(api: BotApiEmulator, telegram: BotService,
                                                                          worker: WorkerHandle) -> None:
    await worker.start()
    api.fail("sendVideo", 500, times=10)
    job_id = await telegram_job(api, telegram)
    notice = await api.wait_for(lambda: next((m for m in api.sent(CHAT.id) if "refused the video" in (m.text or "")),
                                             None), timeout=60)
    assert "Your 10 credits were returned" in notice.text
    assert len(api.calls("sendVideo")) == 3  # bounded: three attempts
    assert (await telegram.jobs.get(job_id)).state is JobState.FAILED  # type: ignore[union-attr]
    view = await telegram.ledger.view("telegram:2002")
    assert (view.balance, view.reserved) == (200, 0)


async def test_an_upload_timing_out_is_tried_again_and_charged_once(api: BotApiEmulator, telegram_config: Config,
                                                                     worker: WorkerHandle) -> None:
    impatient = telegram_config.model_copy(update={"telegram": telegram_config.telegram.model_copy(
        update={"upload_timeout_s": 1.0})})
    await worker.start()
    api.delay("sendVideo", 3)  # the first upload outlasts the client's timeout (and still arrives, later)
    async with running_telegram(impatient) as service:
        job_id = await telegram_job(api, service)
        await api.wait_for(lambda: api.videos(CHAT.id), timeout=60)
        assert await wait_state(service, job_id) is JobState.DELIVERED
        assert await captures(service.ledger, "telegram:2002", job_id) == 1
    # Telegram had both uploads: a timed-out request may have arrived. wanbot prefers a possible second copy
    # to a lost video, and charges once either way.
    assert 1 <= len(api.videos(CHAT.id)) <= 2


async def test_discord_rate_limits_and_server_errors_are_retried(discord_env: EmulatedDiscord,
                                                                 discord_config: Config,
                                                                 worker: WorkerHandle) -> None:
    await worker.start()
    discord_env.rest.fail(r"POST /webhooks/\d+/[^/]+", status=500, times=2)
    async with running_discord(discord_config) as client:
        record = await discord_env.gateway.interact(client, discord_env.gateway.builder.slash_command(
            ALICE_HERE, "video", string_option("prompt", "a lighthouse")))
        discord_env.rest.fail(r"POST /webhooks/\d+/[^/]+", status=429, retry_after=0.5)
        video = await video_message(discord_env, record)
        assert video.attachments
        job_id = video.content.split("Job ")[1].split()[0]
        assert await wait_state(client.service, job_id) is JobState.DELIVERED
        assert await captures(client.service.ledger, f"discord:{ALICE_HERE.user['id']}", job_id) == 1


async def test_a_bot_killed_mid_upload_delivers_once_after_restart(tmp_path: Path, own_redis: LocalRedis,
                                                                   api: BotApiEmulator,
                                                                   tiny_models: LoadedModels) -> None:
    database = tmp_path / "bot.sqlite3"
    path = write_config(tmp_path / "config.toml", redis_url=own_redis.url, database=database, extra=(
        f'[telegram]\ntoken = "{api.token}"\nbase_url = "{api.base_url}"\nbase_file_url = "{api.base_file_url}"\n'))
    worker = WorkerHandle(load_config(path), tiny_models)
    await worker.start()
    held = api.gate("sendVideo")
    first = WanbotProcess(path, "bot", tmp_path / "bot-1.log").start()
    second = WanbotProcess(path, "bot", tmp_path / "bot-2.log")
    try:
        await first.wait_for_log("is polling")
        api.push_update(api.text_message(ALICE, CHAT, "/video a paper lantern"))
        await api.wait_for(lambda: api.calls("sendVideo"), timeout=60)  # video ready, upload under way
        first.kill()
        await asyncio.sleep(0.5)  # the dead bot's connection closes
        held.set()
        await api.wait_for(lambda: api.calls("sendVideo")[0].status == 499)  # Telegram never got it
        second.start()
        await api.wait_for(lambda: api.videos(CHAT.id), timeout=60)
        await second.wait_for_log(r"delivered to telegram:2002")
        await asyncio.sleep(1)  # nothing else comes
        assert len(api.videos(CHAT.id)) == 1
        job_id = (await second.wait_for_log(r"job (\w+): delivered")).group(1)
    finally:
        first.kill()
        second.stop()
        await worker.stop()
    async with await Ledger.open(database, CreditsSettings()) as ledger:
        assert await captures(ledger, "telegram:2002", job_id) == 1
        assert (await ledger.view("telegram:2002")).balance == 190
