"""Status messages: one job's throttled (`StatusThrottle`), and every followed job's (`StatusBoard`).

Progress arrives far faster than chat platforms allow edits (Telegram: about one message per
second per chat, 20 a minute in groups). A throttle keeps only the latest view and shows it when
the interval since the last edit has passed (trailing edge), so the final state of a burst is
never dropped, and at most one platform call per job is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from bot.frontend import FrontEnd, StatusView
from bot.jobstore import JobRecord, JobState, JobStore
from bot.queue import Observation
from generator.contract.jobs import Progress, Stage, VideoResult

logger = logging.getLogger("wanbot.status")

ShowStatus = Callable[[StatusView], Awaitable[None]]
ETA_MARGIN = 1.1  # steps late in a clip take as long as early ones, plus the decode


class StatusThrottle:
    def __init__(self, job_id: str, show: ShowStatus, interval_s: float) -> None:
        self.job_id = job_id
        self._show = show
        self._interval_s = interval_s
        self._shown: StatusView | None = None
        self._shown_at = -float("inf")
        self._pending: StatusView | None = None
        self._task: asyncio.Task[None] | None = None
        self._now_wanted = asyncio.Event()

    def offer(self, view: StatusView, *, now: bool = False) -> None:
        """Show `view` when the interval allows (`now`: at once, e.g. the upload starting)."""
        if view in (self._shown, self._pending) and not now:
            return
        self._pending = view
        if now:
            self._now_wanted.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"status {self.job_id}")

    def repeat(self) -> None:
        """Show the last view again (the front end could not show it, e.g. before its message existed)."""
        if self._shown is not None and self._pending is None:
            view, self._shown = self._shown, None
            self.offer(view, now=True)

    async def flush(self) -> None:
        """Wait until the latest offered view has been shown (or failed)."""
        if self._pending is not None:
            self._now_wanted.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while self._pending is not None:
            wait_s = self._shown_at + self._interval_s - time.monotonic()
            if wait_s > 0 and not self._now_wanted.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await self._now_wanted.wait()
            self._now_wanted.clear()
            view, self._pending = self._pending, None
            self._shown, self._shown_at = view, time.monotonic()
            try:
                await self._show(view)
            except Exception as error:  # a status edit is best effort; delivery is what counts
                logger.warning("job %s: status update failed: %s", self.job_id, error)


class StatusBoard:
    """Every followed job's status message: what it shows, how often, and the ETA learned from finished jobs.

    The watcher offers views; the board formats them into `StatusView`s, throttles each job's edits
    to what its platform tolerates and stores a new message handle with the job. It decides nothing
    about a job's state.
    """

    def __init__(self, frontends: Mapping[str, FrontEnd], jobs: JobStore, min_interval_s: float) -> None:
        self._frontends = frontends
        self._jobs = jobs
        self._min_interval_s = min_interval_s
        self._throttles: dict[str, StatusThrottle] = {}
        self._mean_job_s: float | None = None

    def waiting(self, record: JobRecord, observation: Observation) -> None:
        """A job still on the queue (or running, by the poll): its place and how long until it is done."""
        progress = observation.progress
        if progress is not None and progress.stage is not Stage.DONE:
            self.running(record, progress)
            return
        eta = None if self._mean_job_s is None else self._mean_job_s * (observation.position or 1)
        self.show(record, StatusView(record.job_id, record.state, position=observation.position, eta_s=eta))

    def running(self, record: JobRecord, progress: Progress) -> None:
        """A worker's progress: the stage, the step, and the time left at the pace so far."""
        eta = None
        if progress.stage is Stage.DENOISING and progress.step > 0:
            per_step = (progress.updated_at - progress.started_at) / progress.step
            eta = per_step * (progress.total - progress.step) * ETA_MARGIN
        self.show(record, StatusView(record.job_id, JobState.RUNNING, stage=progress.stage, step=progress.step,
                                     total=progress.total, eta_s=eta))

    def learn(self, result: VideoResult) -> None:
        """A finished job's duration: the ETA of jobs waiting is a moving mean of these."""
        seconds = result.pipeline_s + result.encode_s
        self._mean_job_s = seconds if self._mean_job_s is None else 0.8 * self._mean_job_s + 0.2 * seconds

    def show(self, record: JobRecord, view: StatusView, now: bool = False) -> None:
        """Offer `view` to the job's status message (`now`: without waiting out the interval)."""
        frontend = self._frontends.get(record.platform)
        if frontend is None:
            return
        throttle = self._throttles.get(record.job_id)
        if throttle is None:
            interval = max(self._min_interval_s, frontend.status_interval_s(record))

            async def show(view: StatusView, record: JobRecord = record, frontend: FrontEnd = frontend) -> None:
                status_ref = await frontend.show_status(record, view)
                if status_ref is not None and status_ref != record.status_ref:
                    record.status_ref = status_ref
                    await self._jobs.set_status_ref(record.job_id, status_ref)

            throttle = self._throttles[record.job_id] = StatusThrottle(record.job_id, show, interval)
        throttle.offer(view, now=now)

    def repeat(self, job_id: str) -> None:
        """Show the job's latest view again: its message exists only now."""
        throttle = self._throttles.get(job_id)
        if throttle is not None:
            throttle.repeat()

    async def flush(self, job_id: str) -> None:
        """Until the job's latest view is shown (the "uploading" edit lands before the video)."""
        throttle = self._throttles.get(job_id)
        if throttle is not None:
            await throttle.flush()

    async def final(self, record: JobRecord, view: StatusView | None) -> None:
        """Show how the job ended (`view`, if any), then forget its message."""
        if view is not None:
            self.show(record, view, now=True)
        throttle = self._throttles.pop(record.job_id, None)
        if throttle is not None:
            await throttle.flush()
            await throttle.close()

    async def close(self) -> None:
        for throttle in self._throttles.values():
            await throttle.close()
