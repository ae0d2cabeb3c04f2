"""The Discord side of a job after it was queued: its public status message, the video, failures.

Interaction tokens live 15 minutes, and generation can take longer. While the token is fresh the
status message is an interaction followup (it works wherever the command was used); after that
the status and the video go to the channel as the bot's own messages, or to the user's DMs when
the bot may not post in that channel. Everything the front end needs is in the job's `reply_to`
and `status_ref`, so it carries on after a restart.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import discord

from bot.discord.components import result_view, status_view
from bot.frontend import StatusView
from bot.jobstore import JobRecord, JobState
from bot.messages import request_summary, status_text
from generator.contract.jobs import VideoResult

logger = logging.getLogger("wanbot.discord")

TOKEN_LIFETIME_S = 15 * 60
TOKEN_MARGIN_S = 60  # stop using a token a minute before Discord does
DEFAULT_UPLOAD_LIMIT = 10 * 2**20  # bots without boosts
STATUS_INTERVAL_S = 2.0  # webhook and message edits: well inside Discord's per-route limits
INVALID_WEBHOOK_TOKEN = 50027
MESSAGE_LIMIT = 2000


def channel_key(interaction: discord.Interaction) -> str:
    """`discord:<channel id>`: where a job was asked for (moderation, caps, who may repeat it)."""
    return f"discord:{interaction.channel_id}"


def interaction_reply_to(interaction: discord.Interaction) -> dict[str, Any]:
    """What the service stores about where a job came from (the front end's opaque `reply_to`)."""
    image = interaction.namespace.image if interaction.command is not None else None
    return {
        "application_id": interaction.application_id,
        "token": interaction.token,
        "token_expires_at": interaction.created_at.timestamp() + TOKEN_LIFETIME_S - TOKEN_MARGIN_S,
        "channel_id": interaction.channel_id,
        "chat_key": channel_key(interaction),
        "guild_id": interaction.guild_id,
        "user_id": interaction.user.id,
        "upload_limit": interaction.filesize_limit,
        **({"image_url": image.url} if isinstance(image, discord.Attachment) else {}),
    }


def job_text(job: JobRecord, status: str) -> str:
    """The prompt (escaped: it renders and pings nothing), the owner's mention, then the status."""
    owner = f" — <@{job.reply_to['user_id']}>" if "user_id" in job.reply_to else ""
    if job.request is None:
        return status
    summary = request_summary(job.request, job.payload.seed, platform="discord")
    return _fit(f"{summary}{owner}\n{status}")


def owner_only(job: JobRecord) -> discord.AllowedMentions:
    """Mentions that may ping the job's owner and nobody else: never everyone, here or a role, whatever
    the text holds (the client's default allows nothing at all)."""
    if "user_id" not in job.reply_to:
        return discord.AllowedMentions.none()
    owner = discord.Object(int(job.reply_to["user_id"]))
    return discord.AllowedMentions(everyone=False, users=[owner], roles=False, replied_user=False)


class DiscordFrontEnd:
    platform = "discord"

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    def max_upload_bytes(self, reply_to: dict[str, Any]) -> int | None:
        return int(reply_to.get("upload_limit") or DEFAULT_UPLOAD_LIMIT)  # the interaction's, kept at submit

    def status_interval_s(self, job: JobRecord) -> float:
        return STATUS_INTERVAL_S

    async def show_status(self, job: JobRecord, view: StatusView) -> dict[str, Any] | None:
        if job.status_ref is None:
            return None  # the command's followup is not posted yet; the service repeats the view once it is
        text = job_text(job, status_text(view))
        buttons = None if view.state.finished or view.state is JobState.DELIVERING else status_view(job.job_id)
        ref = job.status_ref
        if ref["via"] == "webhook" and self._fresh(job):
            try:
                await self._webhook(job).edit_message(ref["message_id"], content=text, view=buttons)
                return None
            except discord.HTTPException as error:
                if error.code != INVALID_WEBHOOK_TOKEN:
                    raise
        if ref["via"] == "channel":
            message = self.client.get_partial_messageable(ref["channel_id"]).get_partial_message(ref["message_id"])
            await message.edit(content=text, view=buttons)
            return None
        # the token is too old: a message of our own, which pings nobody (progress, not news)
        posted = await self._post(job, text, discord.AllowedMentions.none(), view=buttons)
        return {"via": "channel", "channel_id": posted.channel.id, "message_id": posted.id}

    async def deliver(self, job: JobRecord, video: bytes, result: VideoResult) -> None:
        text = job_text(job, f"Job {job.job_id} · {result.width}×{result.height}, {result.num_frames} frames at "
                             f"{result.fps} fps")
        if self._fresh(job):
            try:
                await self._webhook(job).send(content=text, file=_video_file(job, video), view=result_view(job.job_id),
                                              wait=True, allowed_mentions=owner_only(job))
                return
            except discord.HTTPException as error:
                if error.code != INVALID_WEBHOOK_TOKEN:
                    raise
        await self._post(job, text, owner_only(job), view=result_view(job.job_id), video=video)

    async def notify(self, job: JobRecord, text: str) -> None:
        if self._fresh(job):
            try:
                await self._webhook(job).send(content=_fit(text), ephemeral=True, wait=True)
                return
            except discord.HTTPException as error:
                if error.code != INVALID_WEBHOOK_TOKEN:
                    raise
        await self._post(job, _fit(f"<@{job.reply_to['user_id']}> {text}"), owner_only(job))

    def _fresh(self, job: JobRecord) -> bool:
        return bool(job.reply_to.get("token")) and time.time() < float(job.reply_to.get("token_expires_at", 0))

    def _webhook(self, job: JobRecord) -> discord.Webhook:
        """The interaction's followup webhook, rebuilt from the stored token as `Interaction.followup` builds it
        (an application webhook: only those may send ephemeral messages)."""
        payload = {"id": job.reply_to["application_id"], "type": 3, "token": job.reply_to["token"]}
        return discord.Webhook.from_state(payload, state=self.client._connection)  # type: ignore[arg-type]

    async def _post(self, job: JobRecord, text: str, mentions: discord.AllowedMentions,
                    view: discord.ui.View | None = None, video: bytes | None = None) -> discord.Message:
        """A message of the bot's own in the job's channel; the user's DMs when the bot may not post there."""
        channel = self.client.get_partial_messageable(job.reply_to["channel_id"])
        try:
            return await channel.send(content=text, view=view or discord.utils.MISSING, allowed_mentions=mentions,
                                      file=_video_file(job, video) if video else discord.utils.MISSING)
        except discord.Forbidden:
            logger.info("job %s: no access to channel %s, sending to DMs", job.job_id, job.reply_to["channel_id"])
        user = await self.client.fetch_user(job.reply_to["user_id"])
        return await user.send(content=text, view=view or discord.utils.MISSING, allowed_mentions=mentions,
                               file=_video_file(job, video) if video else discord.utils.MISSING)


def _video_file(job: JobRecord, video: bytes) -> discord.File:
    return discord.File(io.BytesIO(video), filename=f"wanbot-{job.job_id}.mp4")


def _fit(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
