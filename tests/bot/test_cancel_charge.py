"""Free GPU time: once a job renders, a cancel keeps a pro-rata share of its price (step/total done);
a job still waiting is free. Real Redis, SQLite and (for the last test) the tiny Wan worker."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from bot.commands import Message, handle
from bot.jobstore import JobRecord
from credits.models import JournalReason
from generator.contract.config import Config
from generator.contract.jobs import Progress, Stage, progress_key
from generator.engine.loader import LoadedModels
from tests.conftest import Stack, WorkerHandle

ALICE = "console:alice"


async def submit(stack: Stack, text: str = "/video waves on a beach") -> str:
    reply = await handle(stack.service, Message(stack.user(), text))
    assert reply is not None and reply.startswith("🎬"), reply
    return reply.split()[2]


async def plant_progress(stack: Stack, job_id: str, stage: Stage, step: int, total: int) -> None:
    """What a worker writes while it renders the job (no worker runs here, so nothing moves)."""
    progress = Progress(job_id=job_id, stage=stage, step=step, total=total, started_at=time.time())
    await stack.service.queue.redis.set(progress_key(job_id), progress.model_dump_json())


async def test_a_cancel_half_way_keeps_half_the_price(stack: Stack) -> None:
    job_id = await submit(stack)
    await plant_progress(stack, job_id, Stage.DENOISING, 100, 200)
    record = await stack.service.cancel(stack.user(), job_id)
    assert (record.charged, record.returned) == (5, 5)
    view = await stack.service.ledger.view(ALICE)
    assert (view.balance, view.reserved, view.available) == (195, 0, 195)
    capture = (await stack.service.ledger.history(ALICE, limit=1))[0]
    assert (capture.reason, capture.delta, capture.job_id) == (JournalReason.CAPTURE, -5, job_id)


async def test_a_cancel_at_step_190_of_200_is_not_free(stack: Stack) -> None:
    job_id = await submit(stack)
    await plant_progress(stack, job_id, Stage.DENOISING, 190, 200)
    record = await stack.service.cancel(stack.user(), job_id)
    assert (record.charged, record.returned) == (10, 0)
    assert (await stack.service.ledger.view(ALICE)).available == 190


async def test_a_cancel_after_the_video_steps_keeps_the_whole_price(stack: Stack) -> None:
    job_id = await submit(stack)
    await plant_progress(stack, job_id, Stage.AUDIO, 3, 100)  # the soundtrack's steps: the video is rendered
    assert (await stack.service.cancel(stack.user(), job_id)).charged == 10


async def test_a_waiting_job_cancels_for_free(stack: Stack) -> None:
    job_id = await submit(stack)
    record = await stack.service.cancel(stack.user(), job_id)
    assert (record.charged, record.returned) == (0, 10)
    starting = await submit(stack)
    await plant_progress(stack, starting, Stage.STARTING, 0, 0)
    assert (await stack.service.cancel(stack.user(), starting)).charged == 0
    assert (await stack.service.ledger.view(ALICE)).available == 200


async def test_the_watcher_returns_the_numbers(stack: Stack) -> None:
    job_id = await submit(stack)
    await plant_progress(stack, job_id, Stage.DENOISING, 1, 40)
    record = await stack.service.jobs.get(job_id)
    assert isinstance(record, JobRecord)
    settlement = await stack.service.watcher.cancel(record, "cancelled by a test")
    assert settlement is not None and (settlement.charged, settlement.returned) == (1, 9)
    assert await stack.service.watcher.cancel(record, "again") is None  # too late: it ended


async def test_an_admin_refund_of_a_running_job_returns_everything(stack: Stack) -> None:
    job_id = await submit(stack)
    await plant_progress(stack, job_id, Stage.DENOISING, 150, 200)
    reply = await handle(stack.service, Message(stack.user("admin"), f"/admin refund {job_id}"))
    assert reply == f"Job {job_id} cancelled; 10 credits returned to {ALICE}."
    assert (await stack.service.ledger.view(ALICE)).available == 200
    assert await stack.service.ledger.journal_sum(ALICE) == 200


async def test_help_says_what_a_cancel_costs(stack: Stack) -> None:
    text = await handle(stack.service, Message(stack.user(), "/help"))
    assert text is not None and "Cancelling is free while a job waits" in text
    assert "half-way through a 10-credit job: 5" in text


async def test_a_real_worker_cancelled_mid_run_charges_its_steps(stack: Stack, config: Config,
                                                                  tiny_models: LoadedModels) -> None:
    slow = WorkerHandle(config, dataclasses.replace(
        tiny_models, preset=dataclasses.replace(tiny_models.preset, steps=400)))
    await slow.start()
    try:
        job_id = await submit(stack)
        async with asyncio.timeout(120):  # a bound on the wait, not a measured speed
            while True:
                raw = await stack.service.queue.redis.get(progress_key(job_id))
                if raw is not None and Progress.model_validate_json(raw).step >= 1:
                    break
                await asyncio.sleep(0.02)
        record = await stack.service.cancel(stack.user(), job_id)
    finally:
        await slow.stop()
    assert 1 <= record.charged <= 10 and record.charged + record.returned == 10
    view = await stack.service.ledger.view(ALICE)
    assert (view.balance, view.reserved) == (200 - record.charged, 0)
    assert await stack.service.ledger.journal_sum(ALICE) == view.balance
