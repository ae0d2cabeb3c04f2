"""The settler fits a clip at most once: the worker's fitted video is uploaded as it is; only one still
over the job's limit (a worker from before that rule) is re-encoded, once, or the job fails and is released."""

from __future__ import annotations

from typing import Any

import pytest

import bot.settlement
from bot.jobstore import JobRecord, JobState
from bot.settlement import Settler
from generator.contract.errors import VideoTooLarge
from generator.contract.jobs import VideoJob, VideoResult

LIMIT = 1_000


class FakeQueue:
    def __init__(self, video: bytes) -> None:
        self.video = video

    async def fetch_video(self, job_id: str) -> bytes | None:
        return self.video


class FakeJobs:
    def __init__(self) -> None:
        self.states: list[JobState] = []

    async def set_state(self, job_id: str, state: JobState, **_: Any) -> bool:
        self.states.append(state)
        return True


class FakeLedger:
    def __init__(self) -> None:
        self.captured: list[str] = []
        self.released: list[str] = []

    async def capture(self, job_id: str) -> bool:
        self.captured.append(job_id)
        return True

    async def release(self, job_id: str, reason: str) -> None:
        self.released.append(job_id)


class FakeFrontEnd:
    platform = "console"

    def __init__(self) -> None:
        self.uploaded: list[bytes] = []
        self.told: list[str] = []

    async def deliver(self, job: JobRecord, video: bytes, result: VideoResult) -> None:
        self.uploaded.append(video)

    async def notify(self, job: JobRecord, text: str) -> None:
        self.told.append(text)


def delivering(max_bytes: int | None) -> JobRecord:
    job = VideoJob(job_id="settle000001", preset="tiny", prompt="a fox", width=64, height=64, num_frames=17, seed=1,
                   max_bytes=max_bytes)
    result = VideoResult(job_id=job.job_id, seed=1, width=64, height=64, num_frames=17, fps=16, size_bytes=0,
                         pipeline_s=1.0, encode_s=0.1)
    return JobRecord(job.job_id, "console:me", "console", {}, job, 10, JobState.DELIVERING, result=result)


async def settle(video: bytes, max_bytes: int | None) -> tuple[JobState | None, FakeFrontEnd, FakeLedger]:
    frontend, ledger = FakeFrontEnd(), FakeLedger()
    settler = Settler(ledger, FakeJobs(), FakeQueue(video), {"console": frontend})  # type: ignore[arg-type]
    return await settler.deliver(delivering(max_bytes), frontend), frontend, ledger  # type: ignore[arg-type]


@pytest.fixture
def shrinks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The limits the bot re-encoded a clip under; a fake encoder that halves the clip, or cannot."""
    calls: list[int] = []

    def shrink(data: bytes, max_bytes: int) -> bytes:
        calls.append(max_bytes)
        if max_bytes < 100:
            raise VideoTooLarge(len(data), max_bytes)
        return data[: max_bytes // 2]

    monkeypatch.setattr(bot.settlement, "shrink_with_audio", shrink)
    return calls


async def test_a_clip_the_worker_fitted_is_uploaded_as_it_is(shrinks: list[int]) -> None:
    final, frontend, ledger = await settle(b"x" * LIMIT, LIMIT)
    assert (final, frontend.uploaded, ledger.captured, shrinks) == (JobState.DELIVERED, [b"x" * LIMIT],
                                                                     ["settle000001"], [])
    final, frontend, _ = await settle(b"x" * 5 * LIMIT, None)  # no limit: nothing to fit
    assert (final, len(frontend.uploaded[0]), shrinks) == (JobState.DELIVERED, 5 * LIMIT, [])


async def test_a_clip_still_over_the_limit_is_re_encoded_once(shrinks: list[int]) -> None:
    final, frontend, ledger = await settle(b"x" * 3 * LIMIT, LIMIT)
    assert (final, [len(video) for video in frontend.uploaded], ledger.captured) == (JobState.DELIVERED, [LIMIT // 2],
                                                                                     ["settle000001"])
    assert shrinks == [LIMIT]


async def test_a_clip_that_cannot_fit_fails_and_is_released(shrinks: list[int]) -> None:
    final, frontend, ledger = await settle(b"x" * 500, 50)
    assert (final, frontend.uploaded, ledger.captured, ledger.released) == (JobState.FAILED, [], [], ["settle000001"])
    assert shrinks == [50] and "too large for this chat" in frontend.told[0]
