"""The wire contract between the bot and the workers: job payload, progress, result, Redis keys.

Both sides import this module, so it stays free of torch. The payload is versioned: a
worker refuses a payload version it does not know instead of guessing.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from generator.contract.errors import Refusal

PAYLOAD_VERSION = 2  # 2: audio_prompt
JOB_FUNCTION = "generate_video"
PROGRESS_CHANNEL = "wanbot:progress"


def progress_key(job_id: str) -> str:
    return f"wanbot:progress:{job_id}"


def result_key(job_id: str) -> str:
    return f"wanbot:result:{job_id}"


def image_key(job_id: str) -> str:
    return f"wanbot:image:{job_id}"


class VideoJob(BaseModel):
    """What a worker needs to render one clip; the job id is the idempotency key everywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1, 2] = PAYLOAD_VERSION
    job_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    preset: str
    prompt: str
    negative_prompt: str | None = None
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    num_frames: int = Field(gt=0)
    seed: int = Field(ge=0, lt=2**32)
    has_image: bool = False
    max_bytes: int | None = Field(default=None, gt=0)
    audio_prompt: str | None = None  # a soundtrack from this prompt is muxed in; None: a silent clip


class Stage(StrEnum):
    STARTING = "starting"
    DENOISING = "denoising"
    DECODING = "decoding"
    AUDIO = "audio"
    ENCODING = "encoding"
    DONE = "done"


class Progress(BaseModel):
    """The latest state of a running job, kept under `progress_key` and published on the channel."""

    job_id: str
    stage: Stage
    step: int = 0
    total: int = 0
    started_at: float
    updated_at: float = Field(default_factory=time.time)
    worker: str = ""


class VideoResult(BaseModel):
    """The small part of a result returned through arq; the MP4 bytes live under `result_key`."""

    job_id: str
    seed: int
    width: int
    height: int
    num_frames: int
    fps: int
    size_bytes: int
    pipeline_s: float
    encode_s: float
    audio_s: float = 0.0
    has_audio: bool = False
    worker: str = ""


class JobFailed(Exception):
    """How a worker reports a failed render through arq; it reaches the bot as a `Failure`.

    `user_message` is set when the user can act on it (a bad image); otherwise the bot shows
    a short apology with the job id and the operator reads `reason` in the logs.
    """

    def __init__(self, reason: str, user_message: str | None = None) -> None:
        super().__init__(reason, user_message)
        self.reason = reason
        self.user_message = user_message

    def __str__(self) -> str:
        return self.reason


FailureKind = Literal["timeout", "cancelled", "retries_exceeded", "expired", "failed"]


class Failure(BaseModel):
    """A failed job's exception as plain data: what arq stores as the result of a job that raised.

    `kind` is classified once, where the exception becomes data (`Failure.of`, in the worker): arq's
    own failures (`TimeoutError`, `CancelledError`, `JobExecutionFailed`) carry no type to tell them
    apart but their message, so this is the one place that reads it. `error` is the class name and
    `message` its text, for the logs; `user_message` is set when the user can act on it.
    """

    model_config = ConfigDict(frozen=True)

    error: str
    message: str = ""
    user_message: str | None = None
    kind: FailureKind = "failed"

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        user_message = error.user_message if isinstance(error, Refusal | JobFailed) else None
        return cls(error=type(error).__name__, message=str(error), user_message=user_message,
                   kind=failure_kind(type(error).__name__, str(error)))

    @model_validator(mode="before")
    @classmethod
    def _kind_of_older_results(cls, data: Any) -> Any:
        """A result stored by a worker from before `kind` existed: classified on reading, the same way."""
        if isinstance(data, dict) and "kind" not in data and isinstance(data.get("error"), str):
            return {**data, "kind": failure_kind(data["error"], str(data.get("message", "")))}
        return data


def failure_kind(error: str, message: str) -> FailureKind:
    """What kind of failure an exception (class name, message) is."""
    if error == "TimeoutError":
        return "timeout"
    if error == "CancelledError":
        return "cancelled"
    if error == "JobExecutionFailed" and "retries exceeded" in message:
        return "retries_exceeded"
    if error == "JobExecutionFailed" and "expired" in message:
        return "expired"
    return "failed"
