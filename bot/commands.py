"""The chat commands as typed data, one executor, and `/help` written from one command table.

`/video`, `/balance`, `/queue`, `/cancel [job]`, `/help` and `/admin …` are dataclasses. Front ends
that receive text (console, Telegram) build them with `parse_command`; Discord builds them straight
from its typed options. `execute` runs any of them. No front end ever builds command text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot import admin
from bot.admin import AdminCommand, parse_admin
from bot.frontend import User
from bot.messages import as_typed, balance_text, cancelled_text, submitted_text
from bot.requests import VideoOptions, parse_video_options
from bot.service import BotService
from generator.contract.errors import Refusal

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\S+)?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Video:
    options: VideoOptions


@dataclass(frozen=True)
class Balance:
    pass


@dataclass(frozen=True)
class Queue:
    pass


@dataclass(frozen=True)
class Cancel:
    job: str | None = None  # None: the user's newest unfinished job


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Admin:
    command: AdminCommand


@dataclass(frozen=True)
class Unknown:
    word: str


Command = Video | Balance | Queue | Cancel | Help | Admin | Unknown


@dataclass
class Message:
    """One incoming chat message, already stripped of platform details."""

    user: User
    text: str
    reply_to: dict[str, object] = field(default_factory=dict)
    image: bytes | None = None
    target_account: str | None = None  # the account of a replied-to user, for admin commands


def split_command(text: str) -> tuple[str, str] | None:
    """('video', 'a red fox …') for '/video@wanbot a red fox …'; None for plain text."""
    match = _COMMAND.match(text.strip())
    return (match.group(1).lower(), (match.group(2) or "").strip()) if match else None


def parse_command(word: str, args: str, target_account: str | None = None) -> Command:
    """The typed command of one command word and its arguments (a Refusal for bad flags or words)."""
    if word == "video":
        return Video(parse_video_options(args))
    if word == "balance":
        return Balance()
    if word == "queue":
        return Queue()
    if word == "cancel":
        return Cancel(args or None)
    if word in ("help", "start"):
        return Help()
    if word == "admin":
        return Admin(parse_admin(args, target_account))
    return Unknown(word)


async def handle(service: BotService, message: Message) -> str | None:
    """`run_text`, with a refusal as its sentence (quiet: empty): this is the console's error handler."""
    try:
        return await run_text(service, message)
    except Refusal as error:
        return "" if error.quiet else error.user_message


async def run_text(service: BotService, message: Message) -> str | None:
    """A text front end's whole path: admit, parse, run; the reply text (None: not a command for us).
    Raises a Refusal for the front end's error handler."""
    parsed = split_command(message.text)
    if parsed is None:
        return None
    service.admit(message.user)
    word, args = parsed
    if word == "admin":
        admin.require_admin(service, message.user)  # before parsing: a non-admin learns nothing of the syntax
    return await execute(service, message, parse_command(word, args, message.target_account))


async def execute(service: BotService, message: Message, command: Command, style: HelpStyle = "flags") -> str:
    """Run one command for `message.user` (admitted by the caller already); a Refusal is the user's answer."""
    user = message.user
    match command:
        case Video(options):
            submitted = await service.submit(user, options, message.reply_to, message.image)
            return submitted_text(submitted, image=message.image is not None)
        case Balance():
            return balance_text(await service.balance(user))
        case Queue():
            return await _queue(service, user)
        case Cancel(job):
            return cancelled_text(await service.cancel(user, job))
        case Help():
            return await help_text(service, user, style)
        case Admin(action):
            return await admin.run(service, user, action)
        case Unknown(word):
            return f"Unknown command /{word}. Try /help."
    raise AssertionError(f"unhandled command {command!r}")


async def _queue(service: BotService, user: User) -> str:
    view = await service.queue_view(user)
    lines = [f"{view.depth} job(s) waiting for a worker."]
    for job, position in view.jobs:
        where = f"#{position} in queue" if position else job.state.value
        lines.append(f"• {job.job_id}: {where} — {as_typed(job.prompt[:60], job.platform)}")
    if not view.jobs:
        lines.append("You have no job in progress.")
    return "\n".join(lines)


# -- /help, from one table: text front ends show flags, Discord its options -----------------------

HelpStyle = Literal["flags", "options"]


@dataclass(frozen=True)
class VideoOption:
    """One `/video` setting as each kind of front end spells it."""

    flag: str  # --ar, as typed in text
    option: str  # aspect, Discord's option name
    values: str  # what it takes, e.g. 16:9|9:16|1:1


def video_options(service: BotService) -> list[VideoOption]:
    preset = service.preset
    return [
        VideoOption("--ar", "aspect", "16:9|9:16|1:1"),
        VideoOption("--res", "resolution", "|".join(preset.resolutions)),
        VideoOption("--seconds", "seconds", f"N (up to {preset.max_seconds:g})"),
        VideoOption("--seed", "seed", "N"),
        VideoOption("--neg", "negative", '"what to avoid"'),
    ]


async def help_text(service: BotService, user: User, style: HelpStyle = "flags") -> str:
    preset = service.preset
    view = await service.balance(user)
    prices = ", ".join(
        f"{res} {preset.max_seconds:g}s = {service.config.credits.price(preset.name, res, preset.max_seconds)}"
        for res in preset.resolutions
    )
    toy = "\n⚠ This bot runs the tiny test model: it makes noise, not real videos." if preset.is_toy else ""
    flags = style == "flags"
    if flags:
        usage = "/video <prompt> [flags]"
        image = " Attach an image (or reply to one) to animate it." if preset.image_to_video else ""
        settings = "   ".join(f"{option.flag} {option.values}" for option in video_options(service))
    else:
        usage = "/video prompt:… [options]"
        image = " Pick a picture in its image option to animate it." if preset.image_to_video else ""
        settings = " · ".join(f"{option.option}: {option.values.strip(chr(34))}" for option in video_options(service))
    sound = ""
    if service.makes_sound:
        extra = service.config.credits.price(preset.name, preset.resolutions[0], preset.max_seconds, audio=True) - \
            service.config.credits.price(preset.name, preset.resolutions[0], preset.max_seconds)
        if flags:
            default = " (on by default; --audio off for silence)" if service.config.bot.audio_default else ""
            sound = f"\n  --audio for a soundtrack{default}, --sound \"what it sounds like\": +{extra} credits"
        else:
            default = " (on by default; audio: False for silence)" if service.config.bot.audio_default else ""
            sound = f"\n  audio: True for a soundtrack{default}, sound: what it sounds like: +{extra} credits"
    return (
        f"wanbot makes short videos with {preset.name}.{toy}\n"
        f"{usage} — make a video.{image}\n"
        f"  {settings}{sound}\n"
        "/balance — your credits · /queue — your jobs · /cancel [job] — stop a job\n"
        f"{_cancel_terms(service)}\n"
        f"Prices: {prices} credits. New users get {service.config.credits.signup_grant}, "
        f"and {service.config.credits.daily_grant} more each day (UTC).\n"
        f"{balance_text(view)}"
    )


def _cancel_terms(service: BotService) -> str:
    """What a cancel costs, with the numbers of this bot's cheapest clip (`[credits] cancel_charge`)."""
    credits, preset = service.config.credits, service.preset
    if credits.cancel_charge == 0:
        return "Cancelling is always free."
    price = credits.price(preset.name, preset.resolutions[0], preset.max_seconds)
    return (f"Cancelling is free while a job waits; once it renders, the steps already done cost "
            f"{credits.cancel_charge:.0%} of their share of the price (half-way through a {price}-credit "
            f"job: {credits.cancel_share(price, 1, 2)}), and the rest comes back.")
