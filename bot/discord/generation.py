"""What `/video` and the jobs started from buttons (re-roll, vary) share: attachment checks, the
image of an earlier job, and posting the job's answer and public status message.

Every path acknowledges the interaction before anything slow (an ephemeral defer), says what the
job costs to the user alone, then posts the public status message that the service edits as the
job moves. Before an attachment is downloaded the user is admitted (rate limit, ban) and its declared
type and size are checked; what the bytes really are is the service's check (sniffed, decoded off the loop).
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.discord.components import status_view
from bot.discord.frontend import interaction_reply_to, job_text
from bot.errors import UserError
from bot.frontend import StatusView, User
from bot.jobstore import JobRecord
from bot.messages import status_text, submitted_text
from bot.requests import FLAG_OF, VideoOptions, VideoRequest
from bot.service import BotService, Submitted

logger = logging.getLogger("wanbot.discord")

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def with_options(from_prompt: VideoOptions, options: VideoOptions) -> VideoOptions:
    """Flags typed into the prompt, as the text front ends read them, plus Discord's own options.

    People paste what other platforms' help shows (`--ar 9:16 --seconds 1`): those count as the
    matching option. The same setting given both ways is refused, naming the option to keep.
    """
    typed, chosen = from_prompt.given(), options.given()
    for name in typed.keys() & chosen.keys():
        raise UserError(f"{FLAG_OF[name]} is in the prompt and the {name} option is set too; "
                        f"please use the {name} option alone.")
    return VideoOptions(**{**typed, **chosen, "prompt": from_prompt.prompt})  # type: ignore[arg-type]


async def image_of(interaction: discord.Interaction[Any], record: JobRecord) -> bytes | None:
    """An earlier job's image, downloaded again from Discord's CDN (None: it had none)."""
    if "image_url" not in record.reply_to:
        return None
    try:
        return await interaction.client.http.get_from_cdn(record.reply_to["image_url"])
    except discord.HTTPException:
        raise UserError("The original image is no longer available; please run /video with it again.") from None


async def start_variant(interaction: discord.Interaction[Any], service: BotService, user: User, record: JobRecord,
                        request: VideoRequest) -> None:
    """Re-roll or vary an earlier job: the same image (downloaded again) with the new request."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    image = await image_of(interaction, record)
    reply_to = interaction_reply_to(interaction)
    if image is not None:
        reply_to["image_url"] = record.reply_to["image_url"]
    submitted = await service.submit_request(user, request, reply_to, image)
    await post_submitted(interaction, service, submitted, image is not None)


async def post_submitted(interaction: discord.Interaction[Any], service: BotService, submitted: Submitted,
                         image: bool) -> None:
    """The cost to the user alone, then the public status message the service edits as the job moves."""
    await interaction.edit_original_response(content=submitted_text(submitted, image))
    record = submitted.job
    first = job_text(record, status_text(_queued_view(submitted)))
    status = await interaction.followup.send(first, view=status_view(record.job_id), wait=True,
                                             allowed_mentions=discord.AllowedMentions.none())
    await service.attach_status(record.job_id, {"via": "webhook", "message_id": status.id})


def _queued_view(submitted: Submitted) -> StatusView:
    return StatusView(submitted.job.job_id, submitted.job.state, position=submitted.position)


def attachment_refusal(image: discord.Attachment, limit_bytes: int) -> str | None:
    """Checked on what Discord declares, before downloading anything."""
    if (image.content_type or "").split(";")[0] not in IMAGE_TYPES:
        return f"{image.filename} is not an image I can animate; please attach a JPEG, PNG or WebP."
    if image.size > limit_bytes:
        return (f"{image.filename} is {image.size / 2**20:.1f} MB; the limit is {limit_bytes / 2**20:.0f} MB. "
                "Please attach a smaller image.")
    return None
