"""What a chat front end offers the shared service: one status message, the video, a notice.

Each front end (console, Telegram, Discord) implements this; the service never knows which
platform it talks to, and a front end never decides prices or touches SQL. Where a front end
must remember a platform handle (the status message's id), it returns it and the service
stores it with the job, so it survives a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.jobstore import JobRecord, JobState
from generator.contract.jobs import Stage, VideoResult


@dataclass(frozen=True)
class User:
    """A chat user as the platform names them; the ledger account is `platform:user_id`."""

    platform: str
    user_id: str
    name: str = ""

    @property
    def account(self) -> str:
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class StatusView:
    """What the status message shows about one job at one moment."""

    job_id: str
    state: JobState
    position: int | None = None
    stage: Stage | None = None
    step: int = 0
    total: int = 0
    eta_s: float | None = None
    charged: int = 0  # a cancelled job's credits kept for the steps already rendered


class FrontEnd(Protocol):
    platform: str

    def max_upload_bytes(self, reply_to: dict[str, Any]) -> int | None:
        """The largest video the chat a job came from (its `reply_to`) accepts; None: no limit.

        The one owner of the limit: the service asks once, at submit, and the job carries the answer
        (`VideoJob.max_bytes`) to the worker, which fits the clip under it.
        """

    def status_interval_s(self, job: JobRecord) -> float:
        """The least time between two edits of this job's status message the platform tolerates."""

    async def show_status(self, job: JobRecord, view: StatusView) -> dict[str, Any] | None:
        """Create or edit the job's one status message; a new handle to store with the job, or None."""

    async def deliver(self, job: JobRecord, video: bytes, result: VideoResult) -> None:
        """Post the finished MP4 with its prompt and seed; raise if the platform refused it."""

    async def notify(self, job: JobRecord, text: str) -> None:
        """Tell the job's owner something final: failure, cancellation, lost job."""
