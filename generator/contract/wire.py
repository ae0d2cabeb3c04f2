"""arq's serializer on both sides of the queue: JSON of plain types, never pickle.

arq pickles job definitions and results by default, and unpickling runs whatever a Redis writer
put there. Everything wanbot sends through arq is already plain (the job payload, the small
result dict); the only other thing arq stores is an exception when a job fails, which becomes a
`Failure` (class name, message, user message) here. Torch-free: the bot imports it too.
"""

from __future__ import annotations

import json
from typing import Any

from generator.contract.jobs import Failure


def dumps(data: dict[str, Any]) -> bytes:
    """arq's `job_serializer`: a value that is not plain data raises, and arq stores a failure instead."""
    return json.dumps(data, default=_plain, separators=(",", ":")).encode()


def loads(raw: bytes) -> dict[str, Any]:
    """arq's `job_deserializer`: anything but a JSON object raises, and arq reports it as undecodable."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _plain(value: object) -> Any:
    if isinstance(value, BaseException):
        return Failure.of(value).model_dump()
    raise TypeError(f"a {type(value).__name__} does not travel through Redis")
