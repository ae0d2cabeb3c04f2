"""The Telegram side of a job after it was queued: its status message, the video, failure notices.

The status message is the bot's answer to the `/video` command (its handle is stored with the
job), edited in place as the job moves; Telegram refuses an edit that changes nothing, which is
not an error here. Videos go out with `sendVideo` as a reply to the command, with the prompt and
seed in the caption and re-roll / vary buttons under them.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest

from bot.frontend import StatusView
from bot.jobstore import JobRecord, JobState
from bot.messages import request_summary, status_text
from bot.telegram.buttons import result_buttons, status_buttons
from generator.contract.jobs import VideoResult

logger = logging.getLogger("wanbot.telegram")

PRIVATE_STATUS_INTERVAL_S = 1.0  # Telegram: about one message per second in a chat
GROUP_STATUS_INTERVAL_S = 3.0  # and 20 a minute in a group


def chat_reply_to(chat_id: int, chat_type: str, message_id: int, image_file_id: str | None = None) -> dict[str, Any]:
    """What the service stores about where a job came from (the front end's opaque `reply_to`)."""
    reply_to: dict[str, Any] = {"chat_id": chat_id, "chat_type": chat_type, "message_id": message_id,
                                "chat_key": f"telegram:{chat_id}"}
    if image_file_id is not None:
        reply_to["image_file_id"] = image_file_id  # re-roll downloads it again
    return reply_to


def job_text(job: JobRecord, status: str) -> str:
    """The status message: what the job makes (sent without parse_mode, @mentions broken), then where it is."""
    if job.request is None:
        return status
    return f"{request_summary(job.request, job.payload.seed, platform='telegram')}\n{status}"


class TelegramFrontEnd:
    platform = "telegram"

    def __init__(self, bot: Bot, upload_limit_bytes: int) -> None:
        self.bot = bot
        self.upload_limit_bytes = upload_limit_bytes

    def max_upload_bytes(self, reply_to: dict[str, Any]) -> int | None:
        return self.upload_limit_bytes

    def status_interval_s(self, job: JobRecord) -> float:
        private = job.reply_to.get("chat_type") == "private"
        return PRIVATE_STATUS_INTERVAL_S if private else GROUP_STATUS_INTERVAL_S

    async def show_status(self, job: JobRecord, view: StatusView) -> None:
        if job.status_ref is None:
            return  # the answer to the command is not sent yet; the service repeats the view once it is
        buttons = None if view.state.finished or view.state is JobState.DELIVERING else status_buttons(job.job_id)
        await self._edit(job.status_ref, job_text(job, status_text(view)), buttons)

    async def deliver(self, job: JobRecord, video: bytes, result: VideoResult) -> None:
        caption = job_text(job, f"Job {job.job_id} · {result.width}×{result.height}, {result.num_frames} frames "
                                f"at {result.fps} fps")
        await self.bot.send_video(
            chat_id=job.reply_to["chat_id"],
            video=video,
            filename=f"wanbot-{job.job_id}.mp4",
            caption=_fit(caption, MessageLimit.CAPTION_LENGTH),
            supports_streaming=True,
            width=result.width,
            height=result.height,
            duration=round(result.num_frames / result.fps),
            reply_parameters=self._reply(job),
            reply_markup=result_buttons(job.job_id),
        )

    async def notify(self, job: JobRecord, text: str) -> None:
        await self.bot.send_message(chat_id=job.reply_to["chat_id"], text=_fit(text, MessageLimit.MAX_TEXT_LENGTH),
                                    reply_parameters=self._reply(job))

    async def _edit(self, ref: dict[str, Any], text: str, buttons: InlineKeyboardMarkup | None) -> None:
        try:
            await self.bot.edit_message_text(chat_id=ref["chat_id"], message_id=ref["message_id"],
                                             text=_fit(text, MessageLimit.MAX_TEXT_LENGTH), reply_markup=buttons)
        except BadRequest as error:
            if "not modified" in error.message:
                return
            if "not found" in error.message:  # the user deleted it: nothing left to edit
                logger.info("status message %s in chat %s is gone", ref["message_id"], ref["chat_id"])
                return
            raise

    @staticmethod
    def _reply(job: JobRecord) -> ReplyParameters:
        return ReplyParameters(message_id=job.reply_to["message_id"], allow_sending_without_reply=True)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
