"""Log lines: the job and account they are about, JSON on request, secrets removed even from tracebacks."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from contextvars import copy_context

import pytest

from generator.contract.logs import REDACTED, log_context, setup_logging

SECRET = "123456:super-secret-token"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_context_fields_and_redaction_in_text(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", secrets=[SECRET], handler=logging.StreamHandler(out))
    log = logging.getLogger("wanbot.test")
    with log_context(job_id="0123456789ab", account="telegram:42"):
        log.info("calling https://api.telegram.org/bot%s/getMe", SECRET)
        try:
            raise RuntimeError(f"refused {SECRET}")
        except RuntimeError:
            log.exception("failed")
    log.info("outside")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(f"/bot{REDACTED}/getMe [job_id=0123456789ab] [account=telegram:42]")
    assert SECRET not in out.getvalue() and f"RuntimeError: refused {REDACTED}" in out.getvalue()
    assert lines[-1].endswith("wanbot.test: outside")


def test_json_lines_carry_the_context_into_threads(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", secrets=[SECRET], json_lines=True, handler=logging.StreamHandler(out))
    log = logging.getLogger("wanbot.worker")
    with log_context(job_id="feedfacecafe"):
        worker = threading.Thread(target=copy_context().run, args=(log.info, "step %d of %d", 3, 40))
        worker.start()
        worker.join()
    entry = json.loads(out.getvalue())
    assert entry["message"] == "step 3 of 40" and entry["job_id"] == "feedfacecafe" and entry["level"] == "INFO"
    assert entry["logger"] == "wanbot.worker" and entry["time"].endswith("+00:00")


@pytest.mark.parametrize("password", ['pa"ss-word', "pa\\ss-word", 'q"u\\ote\u00e9'])
def test_json_lines_redact_secrets_that_json_escapes(restore_logging: None, password: str) -> None:
    out = io.StringIO()
    setup_logging("INFO", secrets=[password], json_lines=True, handler=logging.StreamHandler(out))
    log = logging.getLogger("wanbot.test")
    with log_context(account=f"x{password}"):
        log.info("connecting with %s", password)
        try:
            raise ConnectionError(f"AUTH {password} refused")
        except ConnectionError:
            log.exception("redis said no")
    first, second = (json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{"))
    assert first["message"] == f"connecting with {REDACTED}" and first["account"] == f"x{REDACTED}"
    assert f"AUTH {REDACTED} refused" in second["exception"]
    assert password not in out.getvalue() and json.dumps(password)[1:-1] not in out.getvalue()
