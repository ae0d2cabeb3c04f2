"""The delivery watcher: follows every unfinished job until its credits are captured or released.

Two loops. The tick loop reads the state of every followed job from Redis in one batch every
`poll_interval_s`, moves jobs along (running, finished, failed, lost) and hands finished videos
to a delivery task. The listener receives the workers' progress messages and updates status
messages between ticks. The jobs table is the truth, so a restarted bot resumes every
unfinished job and settles every reservation left behind.

The watcher decides when a job moves; what its status message shows is the `StatusBoard`'s
(bot/status.py), and what an ending does to the credits and the chat is the `Settler`'s
(bot/settlement.py). Every ending passes through `_end`, which stops following the job and frees
its Redis keys.

Both loops also stop on a flag, not only on cancellation: redis-py can swallow a
cancellation that lands at the wrong moment (redis/redis-py#2028), and a loop that relied on
it would then never end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from arq.jobs import JobStatus
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.frontend import FrontEnd, StatusView
from bot.jobstore import JobRecord, JobState, JobStore
from bot.queue import Observation, VideoQueue, describe_failure
from bot.settlement import LIVE, Settler
from bot.status import StatusBoard
from credits.ledger import Ledger
from credits.models import Settlement
from generator.contract import metrics
from generator.contract.config import BotSettings
from generator.contract.jobs import PROGRESS_CHANNEL, Progress, Stage, VideoResult
from generator.contract.logs import log_context

logger = logging.getLogger("wanbot.delivery")


class DeliveryWatcher:
    def __init__(self, ledger: Ledger, jobs: JobStore, queue: VideoQueue, settings: BotSettings) -> None:
        self.jobs = jobs
        self.queue = queue
        self.settings = settings
        self.frontends: dict[str, FrontEnd] = {}
        self.board = StatusBoard(self.frontends, jobs, settings.status_interval_s)
        self.settler = Settler(ledger, jobs, queue, self.frontends)
        self._records: dict[str, JobRecord] = {}  # every unfinished job this bot follows
        self._delivering: dict[str, asyncio.Task[None]] = {}
        self._finished = asyncio.Condition()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def add_frontend(self, frontend: FrontEnd) -> None:
        self.frontends[frontend.platform] = frontend

    async def start(self) -> None:
        """Settle what a previous run left behind, then follow every unfinished job."""
        self._stopping = False
        await self.settler.reconcile()
        for record in await self.jobs.unfinished():
            if record.state is JobState.RESERVED:
                await self._enqueue_again(record)
            self._records[record.job_id] = record
        logger.info("watching %d unfinished jobs", len(self._records))
        self._tasks = [asyncio.create_task(self._tick_loop(), name="delivery ticks"),
                       asyncio.create_task(self._listen(), name="progress listener")]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        tasks = [*self._tasks, *self._delivering.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.board.close()
        self._tasks.clear()

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def watch(self, record: JobRecord) -> None:
        self._records[record.job_id] = record
        metrics.JOBS_FOLLOWED.set(len(self._records))
        self._wake.set()

    def status_attached(self, job_id: str, status_ref: dict[str, Any]) -> None:
        """The front end made the job's status message: show the latest state in it."""
        record = self._records.get(job_id)
        if record is not None:
            record.status_ref = status_ref
            self.board.repeat(job_id)

    async def wait_finished(self, job_ids: set[str]) -> None:
        """Until none of `job_ids` is still followed (the console waits on this at end of input)."""
        async with self._finished:
            await self._finished.wait_for(lambda: not job_ids & self._records.keys())

    async def cancel(self, record: JobRecord, reason: str) -> Settlement | None:
        """Cancel a job that has not produced its video yet (see `Settler.cancel`); None when it is too late."""
        settlement = await self.settler.cancel(record, reason)
        if settlement is not None:
            await self._end(record, JobState.CANCELLED)
        return settlement

    # -- the loops ------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while not self._stopping:
            try:
                await self._tick()
            except (RedisError, OSError) as error:
                logger.warning("queue unreachable, retrying: %s", error)
            except Exception:
                logger.exception("delivery tick failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as its timeout fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_s):
                    await self._wake.wait()
            self._wake.clear()

    async def _listen(self) -> None:
        """Show workers' progress as it is published, not a poll late."""
        while not self._stopping:
            try:
                async with self.queue.redis.pubsub() as pubsub:
                    await pubsub.subscribe(PROGRESS_CHANNEL)
                    while not self._stopping:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self._on_progress(message["data"])
            except (RedisError, OSError):
                await asyncio.sleep(max(1.0, self.settings.poll_interval_s))

    def _on_progress(self, data: bytes) -> None:
        try:
            progress = Progress.model_validate_json(data)
        except ValidationError:
            logger.warning("ignoring a malformed progress message")
            return
        record = self._records.get(progress.job_id)
        if record is not None and record.state in LIVE and progress.job_id not in self._delivering:
            self.board.running(record, progress)

    async def _tick(self) -> None:
        await self.jobs.drop_expired_tokens(time.time())
        pending = [record for job_id, record in self._records.items() if job_id not in self._delivering]
        if not pending:
            return
        observations = await self.queue.observe([record.job_id for record in pending])
        for record in pending:
            if record.job_id in self._records:  # not cancelled meanwhile
                with log_context(job_id=record.job_id, account=record.account):
                    await self._follow(record, observations[record.job_id])

    async def _follow(self, record: JobRecord, observation: Observation) -> None:
        if record.state is JobState.DELIVERING:
            self._start_delivery(record)
        elif observation.unreadable is not None:
            await self._fail(record, JobState.FAILED, observation.unreadable, None)
        elif observation.status is JobStatus.complete and observation.result is not None:
            await self._completed(record, observation)
        elif observation.status is JobStatus.not_found:
            await self._fail(record, JobState.LOST, "lost from the queue", "the queue lost it (was Redis restarted?)")
        else:
            if observation.status is JobStatus.in_progress and record.state is JobState.QUEUED:
                await self.jobs.set_state(record.job_id, JobState.RUNNING, only_from=(JobState.QUEUED,))
                record.state = JobState.RUNNING
            self.board.waiting(record, observation)

    async def _completed(self, record: JobRecord, observation: Observation) -> None:
        assert observation.result is not None
        if not observation.result.success:
            reason, user_message = describe_failure(observation.result)
            await self._fail(record, JobState.FAILED, reason, user_message)
            return
        try:
            result = VideoResult.model_validate(observation.result.result)
        except ValidationError:
            await self._fail(record, JobState.FAILED, "malformed result in Redis", None)
            return
        self.board.learn(result)
        if await self.jobs.set_state(record.job_id, JobState.DELIVERING, only_from=LIVE, result=result):
            record.state, record.result = JobState.DELIVERING, result
            self._start_delivery(record)

    # -- delivery -------------------------------------------------------------------------

    def _start_delivery(self, record: JobRecord) -> None:
        frontend = self.frontends.get(record.platform)
        if frontend is None or record.job_id in self._delivering:
            return  # that front end is not running in this process (yet): keep the job pending
        with log_context(job_id=record.job_id, account=record.account):  # the task copies the context
            self._delivering[record.job_id] = asyncio.create_task(self._deliver(record, frontend),
                                                                  name=f"deliver {record.job_id}")

    async def _deliver(self, record: JobRecord, frontend: FrontEnd) -> None:
        try:
            self.board.show(record, StatusView(record.job_id, JobState.DELIVERING, stage=Stage.DONE), now=True)
            await self.board.flush(record.job_id)  # the "uploading" edit lands before the front end finishes it
            final = await self.settler.deliver(record, frontend)
        except (RedisError, OSError) as error:
            logger.warning("job %s: delivery paused, queue unreachable: %s", record.job_id, error)
        else:
            await self._end(record, final)
        finally:
            self._delivering.pop(record.job_id, None)
            await self._notify_finished()

    # -- endings --------------------------------------------------------------------------

    async def _fail(self, record: JobRecord, state: JobState, reason: str, user_message: str | None) -> None:
        await self._end(record, await self.settler.fail(record, state, reason, user_message))

    async def _end(self, record: JobRecord, final: JobState | None) -> None:
        """Stop following the job; its status message shows how it ended (`final`: None if another path ended it).

        Every ending passes here (delivered, cancelled, failed, expired, lost), so this is where the
        job's bulky Redis keys go: an input image or an MP4 nobody will fetch is memory for free.
        """
        self._records.pop(record.job_id, None)
        with contextlib.suppress(RedisError, OSError):
            await self.queue.forget(record.job_id)
        metrics.JOBS_FOLLOWED.set(len(self._records))
        view = None
        if final is not None:
            metrics.JOBS_FINISHED.labels(final.value).inc()
            view = StatusView(record.job_id, final, charged=record.charged)
        await self.board.final(record, view)
        await self._notify_finished()

    async def _notify_finished(self) -> None:
        async with self._finished:
            self._finished.notify_all()

    async def _enqueue_again(self, record: JobRecord) -> None:
        """A job recorded but not queued when the bot stopped: queue it now (idempotent by job id)."""
        with contextlib.suppress(RedisError, OSError):
            await self.queue.enqueue(record.payload, None)
            if await self.jobs.set_state(record.job_id, JobState.QUEUED, only_from=(JobState.RESERVED,)):
                record.state = JobState.QUEUED
