"""A local chat on stdin/stdout, speaking the same commands as Discord and Telegram.

Used by `wanbot demo`. Finished videos are written to the output folder and their path is
printed. With commands piped on stdin it runs them, waits for their jobs and exits at the
end of input, so a demo can be scripted. Console-only: `--image PATH` attaches a file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.commands import Message, handle
from bot.frontend import StatusView, User
from bot.jobstore import JobRecord
from bot.messages import status_text
from bot.service import BotService
from generator.contract.jobs import VideoResult

logger = logging.getLogger("wanbot.console")

_IMAGE_FLAG = re.compile(r'\s--image\s+("[^"]+"|\S+)')


class ConsoleFrontEnd:
    platform = "console"

    def __init__(self, output_dir: Path, out: TextIO = sys.stdout) -> None:
        self.output_dir = output_dir
        self.out = out
        self.delivered: dict[str, Path] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def max_upload_bytes(self, reply_to: dict[str, Any]) -> int | None:
        return None  # a file on this machine

    def status_interval_s(self, job: JobRecord) -> float:
        return 0.0  # a terminal takes every line

    async def show_status(self, job: JobRecord, view: StatusView) -> None:
        self.say(status_text(view))

    async def deliver(self, job: JobRecord, video: bytes, result: VideoResult) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{job.job_id}.mp4"
        await asyncio.to_thread(path.write_bytes, video)
        self.delivered[job.job_id] = path
        self.say(f"✅ Job {job.job_id} done: {path} ({result.width}x{result.height}, {result.num_frames} frames "
                 f"at {result.fps} fps, seed {result.seed}) — “{job.prompt}”")

    async def notify(self, job: JobRecord, text: str) -> None:
        self.say(f"⚠ {text}")


def take_image(text: str) -> tuple[str, bytes | None]:
    """Strip a console `--image PATH` flag and read the file (errors become a chat answer)."""
    match = _IMAGE_FLAG.search(" " + text)
    if match is None:
        return text, None
    path = Path(match.group(1).strip('"')).expanduser()
    rest = (" " + text)[: match.start()] + (" " + text)[match.end():]
    try:
        return rest.strip(), path.read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"Can't read the image {path}: {error.strerror}.") from None


async def run_console(service: BotService, frontend: ConsoleFrontEnd, user: User, lines: TextIO) -> None:
    """Answer each line; at end of input wait for the user's unfinished jobs, then return."""
    interactive = lines.isatty()
    if interactive:
        frontend.say("wanbot console — type /help. Ctrl-D quits once your jobs are done.")
    while True:
        line = await asyncio.to_thread(lines.readline)
        if not line:
            break
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not interactive:
            frontend.say(f"> {text}")
        try:
            text, image = take_image(text)
        except FileNotFoundError as error:
            frontend.say(str(error))
            continue
        reply = await handle(service, Message(user=user, text=text, image=image,
                                              reply_to={"chat_key": user.account}))
        if reply is None:
            frontend.say("Commands start with /. Try /help.")
        elif reply:
            frontend.say(reply)
    pending = {job.job_id for job in await service.jobs.unfinished(user.account)}
    if pending:
        frontend.say(f"End of input: waiting for {len(pending)} job(s)…")
        await service.watcher.wait_finished(pending)
