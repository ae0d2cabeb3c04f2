"""`/video` and the jobs started from buttons (re-roll, vary): acknowledge, submit, post the status.

Every path acknowledges the interaction before anything slow (an ephemeral defer), says what the
job costs to the user alone, then posts the public status message that the service edits as the
job moves. Before an attachment is downloaded the user is admitted (rate limit, ban) and its declared
type and size are checked; what the bytes really are is the service's check (sniffed, decoded off the loop).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord.components import status_view
from bot.discord.frontend import interaction_reply_to, job_text
from bot.errors import UserError
from bot.frontend import StatusView
from bot.messages import status_text, submitted_text
from bot.requests import VideoRequest, build_request
from bot.service import Submitted
from credits.errors import LedgerError
from generator.contract.presets import ASPECTS, Preset

if TYPE_CHECKING:
    from bot.discord.client import WanbotClient
    from bot.jobstore import JobRecord

logger = logging.getLogger("wanbot.discord")

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def video_command(preset: Preset) -> app_commands.Command[Any, Any, None]:
    """The `/video` slash command, its options fitted to the preset the workers run."""

    @app_commands.command(name="video", description="Make a video from a prompt; attach an image to animate it")
    @app_commands.describe(
        prompt="What the video shows", image="A picture to animate (JPEG, PNG or WebP)",
        aspect="Aspect ratio", resolution="Resolution", seconds=f"Length, up to {preset.max_seconds:g} s",
        seed="Same seed, same video", negative="What to avoid",
        audio="Add a soundtrack made from the prompt", sound="What the soundtrack should sound like",
    )
    @app_commands.choices(
        aspect=[app_commands.Choice(name=aspect, value=aspect) for aspect in ASPECTS],
        resolution=[app_commands.Choice(name=name, value=name) for name in preset.resolutions],
    )
    async def video(
        interaction: discord.Interaction[WanbotClient],
        prompt: app_commands.Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        aspect: app_commands.Choice[str] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        seconds: app_commands.Range[float, 0.1, 60.0] | None = None,
        seed: app_commands.Range[int, 0, 2**32 - 1] | None = None,
        negative: app_commands.Range[str, 1, 2000] | None = None,
        audio: bool | None = None,
        sound: app_commands.Range[str, 1, 2000] | None = None,
    ) -> None:
        client = interaction.client
        if image is not None:
            refusal = _attachment_refusal(image, client.service.config.bot.max_image_bytes)
            if refusal is not None:
                await interaction.response.send_message(refusal, ephemeral=True)
                return
        await interaction.response.defer(ephemeral=True, thinking=True)  # first: Discord waits 3 s at most
        if not await client.service.seen.first_time(f"discord:interaction:{interaction.id}"):
            return
        given = {"ar": aspect.value if aspect else None, "res": resolution.value if resolution else None,
                 "seconds": None if seconds is None else str(seconds), "seed": None if seed is None else str(seed),
                 "neg": negative, "audio": None if audio is None else ("on" if audio else "off"), "sound": sound}
        service = client.service
        try:
            await service.admit_video(client.user_of(interaction.user))  # before the attachment is downloaded
            request = build_request(prompt, {name: value for name, value in given.items() if value is not None},
                                    service.preset, service.config.bot.max_prompt_chars,
                                    audio_default=service.config.bot.audio_default and service.makes_sound)
            data = await image.read() if image is not None else None
            await _start(interaction, request, data)
        except (UserError, LedgerError) as error:
            await interaction.edit_original_response(content=error.user_message)

    return video


async def start_variant(interaction: discord.Interaction[WanbotClient], record: JobRecord,
                        request: VideoRequest) -> None:
    """Re-roll or vary an earlier job: the same image (downloaded again) with the new request."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    image = None
    if "image_url" in record.reply_to:
        try:
            image = await interaction.client.http.get_from_cdn(record.reply_to["image_url"])
        except discord.HTTPException:
            raise UserError("The original image is no longer available; please run /video with it again.") from None
    await _start(interaction, request, image, image_url=record.reply_to.get("image_url"))


async def _start(interaction: discord.Interaction[WanbotClient], request: VideoRequest, image: bytes | None,
                 image_url: str | None = None) -> None:
    client = interaction.client
    reply_to = interaction_reply_to(interaction)
    if image_url is not None:
        reply_to["image_url"] = image_url
    submitted: Submitted = await client.service.submit_request(
        client.user_of(interaction.user), request, reply_to, image, interaction.filesize_limit)
    await interaction.edit_original_response(content=submitted_text(submitted, image is not None))
    record = submitted.job
    first = job_text(record, status_text(_queued_view(submitted)))
    status = await interaction.followup.send(first, view=status_view(record.job_id), wait=True,
                                             allowed_mentions=discord.AllowedMentions.none())
    await client.service.attach_status(record.job_id, {"via": "webhook", "message_id": status.id})


def _queued_view(submitted: Submitted) -> StatusView:
    return StatusView(submitted.job.job_id, submitted.job.state, position=submitted.position)


def _attachment_refusal(image: discord.Attachment, limit_bytes: int) -> str | None:
    """Checked on what Discord declares, before downloading anything."""
    if (image.content_type or "").split(";")[0] not in IMAGE_TYPES:
        return f"{image.filename} is not an image I can animate; please attach a JPEG, PNG or WebP."
    if image.size > limit_bytes:
        return (f"{image.filename} is {image.size / 2**20:.1f} MB; the limit is {limit_bytes / 2**20:.0f} MB. "
                "Please attach a smaller image.")
    return None
