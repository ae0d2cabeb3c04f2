"""Logging for every wanbot process: job id and account on every line, secrets never.

The job and account a line is about come from a context variable (`log_context`), so deep code
(the pipeline's thread, the ledger) need not pass them along; `--log-json` writes one JSON
object per line for log collectors. Whatever the libraries log (httpx puts the Telegram token in
its request URLs), the configured tokens and Redis password are replaced before a line is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s"
REDACTED = "[redacted]"

_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("wanbot_log_context",
                                                                                       default=())


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Fields (job_id, account) added to every line logged inside the block, in this task or thread."""
    token = _context.set(tuple({**dict(_context.get()), **fields}.items()))
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(_context.get())
        record.fields = fields
        record.context = "".join(f" [{key}={value}]" for key, value in fields.items())
        return True


class _Redactor:
    """Blanks every configured secret out of a text, longest first (a token contains its own tail)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class _Redacting(logging.Formatter):
    """Formats with `inner`, then blanks every secret out of the finished line (message, arguments, traceback)."""

    def __init__(self, inner: logging.Formatter, redact: _Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, each value redacted before encoding: once encoded, a secret holding
    `"` or `\\` reads `\\"` or `\\\\` and would no longer match."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps({key: self.redact(str(value)) for key, value in entry.items()}, ensure_ascii=False)


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), json_lines: bool = False,
                  handler: logging.Handler | None = None) -> logging.Handler:
    """Configure the root logger once per process; returns the handler (tests pass their own)."""
    handler = handler or logging.StreamHandler()
    redact = _Redactor(secrets)
    handler.setFormatter(_JsonFormatter(redact) if json_lines else _Redacting(logging.Formatter(TEXT_FORMAT), redact))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log every request at INFO would drown the job lines.
    for noisy in ("httpx", "arq.worker", "arq.jobs", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "CLIPImageProcessor requires torchvision": the Wan image pipelines import it, wanbot never uses it.
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    return handler
