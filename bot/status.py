"""One job's status message, throttled: the newest view is shown, at most once per interval.

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
from collections.abc import Awaitable, Callable

from bot.frontend import StatusView

logger = logging.getLogger("wanbot.status")

ShowStatus = Callable[[StatusView], Awaitable[None]]


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
