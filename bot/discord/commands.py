"""The Discord app commands and what buttons do, as one class holding the service (a cog's shape).

Each method builds the typed command of `bot.commands` (or `bot.admin`) from Discord's typed
options and runs it; nothing is turned back into command text. Answers concern only the user, so
they are ephemeral; each command defers first and then edits its answer in, so the 3-second
acknowledgement never depends on Redis or SQLite being quick. What a command or a button raises
goes to `on_error`, the one error handler: a Refusal becomes its sentence, anything else an apology.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord
from discord import app_commands

from bot import admin as admin_actions
from bot.commands import Admin, Balance, Cancel, Command, Help, Message, Queue, execute
from bot.discord.admin import AdminCommands
from bot.discord.components import CANCEL, DELETE, REROLL, VARY, VaryModal
from bot.discord.frontend import channel_key, interaction_reply_to
from bot.discord.generation import attachment_refusal, post_submitted, start_variant, with_options
from bot.errors import UserError
from bot.frontend import User
from bot.messages import cancelled_text
from bot.requests import VideoOptions, parse_video_options
from bot.service import BotService
from generator.contract.errors import Refusal
from generator.contract.presets import ASPECTS

logger = logging.getLogger("wanbot.discord")

MESSAGE_LIMIT = 2000
QUIET_ANSWER = "Slow down, please."  # a quiet refusal: an interaction is always answered, if only briefly


def user_of(user: discord.User | discord.Member) -> User:
    return User("discord", str(user.id), user.display_name)


class DiscordCommands:
    def __init__(self, service: BotService) -> None:
        self.service = service

    def commands(self) -> list[app_commands.Command[Any, Any, Any] | app_commands.Group]:
        """The app commands, bound to these handlers; `/video`'s options fitted to the preset the workers run."""
        preset = self.service.preset
        video = app_commands.Command(name="video", callback=self.video,
                                     description="Make a video from a prompt; attach an image to animate it")
        app_commands.describe(seconds=f"Length, up to {preset.max_seconds:g} s")(video)
        app_commands.choices(
            aspect=[app_commands.Choice(name=aspect, value=aspect) for aspect in ASPECTS],
            resolution=[app_commands.Choice(name=name, value=name) for name in preset.resolutions],
        )(video)
        cancel = app_commands.Command(name="cancel", callback=self.cancel,
                                      description="Stop one of your jobs (the newest if none is chosen)")
        cancel.autocomplete("job")(self.own_jobs)
        return [
            video,
            app_commands.Command(name="balance", description="Your credits", callback=self.balance),
            app_commands.Command(name="queue", description="Your jobs and their places in the queue",
                                 callback=self.queue),
            cancel,
            app_commands.Command(name="help", description="Commands, options and prices", callback=self.help),
            AdminCommands(self.answer_admin),
        ]

    def register(self, tree: app_commands.CommandTree[Any]) -> None:
        for command in self.commands():
            tree.add_command(command)
        tree.on_error = self.on_error  # type: ignore[method-assign,assignment]

    # -- the commands ---------------------------------------------------------------------------

    @app_commands.describe(
        prompt="What the video shows", image="A picture to animate (JPEG, PNG or WebP)",
        aspect="Aspect ratio", resolution="Resolution", seed="Same seed, same video", negative="What to avoid",
        audio="Add a soundtrack made from the prompt", sound="What the soundtrack should sound like",
    )
    async def video(
        self,
        interaction: discord.Interaction[Any],
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
        service = self.service
        if image is not None:
            refusal = attachment_refusal(image, service.config.bot.max_image_bytes)
            if refusal is not None:
                await interaction.response.send_message(refusal, ephemeral=True)
                return
        await interaction.response.defer(ephemeral=True, thinking=True)  # first: Discord waits 3 s at most
        if not await self._first_time(interaction):
            return
        user = user_of(interaction.user)
        await service.admit_video(user)  # before the attachment is downloaded
        options = with_options(parse_video_options(prompt), VideoOptions(
            prompt="", aspect=aspect.value if aspect else None, resolution=resolution.value if resolution else None,
            seconds=seconds, seed=seed, negative=negative, audio=audio, sound=sound))
        data = await image.read() if image is not None else None
        submitted = await service.submit(user, options, interaction_reply_to(interaction), data)
        await post_submitted(interaction, service, submitted, data is not None)

    async def balance(self, interaction: discord.Interaction[Any]) -> None:
        await self.answer(interaction, Balance())

    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        await self.answer(interaction, Queue())

    @app_commands.describe(job="The job to stop")
    async def cancel(self, interaction: discord.Interaction[Any], job: str | None = None) -> None:
        await self.answer(interaction, Cancel(job.strip() or None if job else None))

    async def own_jobs(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        mine = await self.service.jobs.unfinished(user_of(interaction.user).account)
        return [app_commands.Choice(name=f"{job.job_id} · {job.state.value} · {job.prompt}"[:100], value=job.job_id)
                for job in reversed(mine) if current.lower() in f"{job.job_id} {job.prompt}".lower()][:25]

    async def help(self, interaction: discord.Interaction[Any]) -> None:
        await self.answer(interaction, Help())

    async def answer_admin(self, interaction: discord.Interaction[Any], command: admin_actions.AdminCommand) -> None:
        await self.answer(interaction, Admin(command))

    async def answer(self, interaction: discord.Interaction[Any], command: Command) -> None:
        """A command that answers the user alone: defer at once, once per interaction, rate limited; then run
        the typed command and edit its answer in (a refusal: `on_error`)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not await self._first_time(interaction):
            return
        user = user_of(interaction.user)
        self.service.admit(user)
        reply = await execute(self.service, Message(user, ""), command, style="options")
        await interaction.edit_original_response(content=(reply or QUIET_ANSWER)[:MESSAGE_LIMIT])

    # -- buttons and the vary dialog ---------------------------------------------------------------

    async def button_pressed(self, interaction: discord.Interaction[Any], action: str, job_id: str) -> None:
        if not await self._first_time(interaction):
            return
        user = user_of(interaction.user)
        self.service.admit(user)
        if action == CANCEL:
            record = await self.service.cancel(user, job_id)
            await _say(interaction, cancelled_text(record))
            return
        record = await self.service.job_to_repeat(job_id, user, channel_key(interaction))
        if action == DELETE:
            if record.account != user.account:
                raise UserError("Only the person who made this video can delete it.")
            await interaction.response.defer()
            await interaction.delete_original_response()
        elif action == REROLL:
            await start_variant(interaction, self.service, user, record, self.service.variant(record))
        elif action == VARY:
            await interaction.response.send_modal(VaryModal(record.job_id, record.prompt))

    async def vary_submitted(self, interaction: discord.Interaction[Any], job_id: str, prompt: str) -> None:
        user = user_of(interaction.user)
        self.service.admit(user)
        record = await self.service.job_to_repeat(job_id, user, channel_key(interaction))
        await start_variant(interaction, self.service, user, record, self.service.variant(record, prompt=prompt))

    # -- the one error handler ------------------------------------------------------------------------

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception) -> None:
        """`CommandTree.on_error`, and the buttons' and dialog's: a Refusal is the user's answer (ephemeral),
        anything else is logged and answered with a short apology."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, Refusal):
            await _tell(interaction, QUIET_ANSWER if original.quiet else original.user_message)
            return
        logger.error("discord %s failed (interaction %s)",
                     f"command {interaction.command.name}" if interaction.command else "component", interaction.id,
                     exc_info=original)
        with contextlib.suppress(discord.HTTPException):
            await _tell(interaction, "Sorry, something went wrong on our side. Please try again.")

    async def _first_time(self, interaction: discord.Interaction[Any]) -> bool:
        """An interaction delivered again (a gateway resume) is handled once."""
        return await self.service.seen.first_time(f"discord:interaction:{interaction.id}")


async def _tell(interaction: discord.Interaction[Any], text: str) -> None:
    """A command's deferred answer is edited in; a button's or dialog's goes as an ephemeral message."""
    if interaction.type is discord.InteractionType.application_command and interaction.response.is_done():
        await interaction.edit_original_response(content=text[:MESSAGE_LIMIT])
    else:
        await _say(interaction, text)


async def _say(interaction: discord.Interaction[Any], text: str) -> None:
    """An ephemeral answer, whether or not the interaction was acknowledged already."""
    if interaction.response.is_done():
        await interaction.followup.send(text[:MESSAGE_LIMIT], ephemeral=True)
    else:
        await interaction.response.send_message(text[:MESSAGE_LIMIT], ephemeral=True)
