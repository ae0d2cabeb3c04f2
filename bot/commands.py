"""Chat commands as text, the same words on every platform: `/video`, `/balance`, `/queue`,
`/cancel`, `/help`, `/admin …`. Front ends that receive text (console, Telegram) pass each
message here and post the answer; the Discord adapter calls the same service methods."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.admin import run_admin
from bot.errors import UserError
from bot.frontend import User
from bot.messages import as_typed, balance_text, cancelled_text, submitted_text
from bot.service import BotService
from credits.errors import LedgerError

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\S+)?(?:\s+(.*))?$", re.DOTALL)


@dataclass
class Message:
    """One incoming chat message, already stripped of platform details."""

    user: User
    text: str
    reply_to: dict[str, object] = field(default_factory=dict)
    image: bytes | None = None
    max_upload_bytes: int | None = None
    target_account: str | None = None  # the account of a replied-to user, for admin commands


def split_command(text: str) -> tuple[str, str] | None:
    """('video', 'a red fox …') for '/video@wanbot a red fox …'; None for plain text."""
    match = _COMMAND.match(text.strip())
    return (match.group(1).lower(), (match.group(2) or "").strip()) if match else None


async def handle(service: BotService, message: Message) -> str | None:
    """Run one command and return the reply text (None: not a command for us; empty: say nothing)."""
    parsed = split_command(message.text)
    if parsed is None:
        return None
    word, args = parsed
    try:
        service.admit(message.user)
        if word == "video":
            return await _video(service, message, args)
        if word == "balance":
            return balance_text(await service.balance(message.user))
        if word == "queue":
            return await _queue(service, message.user)
        if word == "cancel":
            record = await service.cancel(message.user, args or None)
            return cancelled_text(record)
        if word in ("help", "start"):
            return await help_text(service, message.user)
        if word == "admin":
            return await run_admin(service, message.user, args, message.target_account)
        return f"Unknown command /{word}. Try /help."
    except (UserError, LedgerError) as error:
        return "" if getattr(error, "quiet", False) else error.user_message


async def _video(service: BotService, message: Message, args: str) -> str:
    submitted = await service.submit(message.user, args, message.reply_to, message.image,
                                     message.max_upload_bytes)
    return submitted_text(submitted, image=message.image is not None)


async def _queue(service: BotService, user: User) -> str:
    view = await service.queue_view(user)
    lines = [f"{view.depth} job(s) waiting for a worker."]
    for job, position in view.jobs:
        where = f"#{position} in queue" if position else job.state.value
        lines.append(f"• {job.job_id}: {where} — {as_typed(job.prompt[:60], job.platform)}")
    if not view.jobs:
        lines.append("You have no job in progress.")
    return "\n".join(lines)


async def help_text(service: BotService, user: User) -> str:
    preset = service.preset
    view = await service.balance(user)
    prices = ", ".join(
        f"{res} {preset.max_seconds:g}s = {service.config.credits.price(preset.name, res, preset.max_seconds)}"
        for res in preset.resolutions
    )
    toy = "\n⚠ This bot runs the tiny test model: it makes noise, not real videos." if preset.is_toy else ""
    image = " Attach an image (or reply to one) to animate it." if preset.image_to_video else ""
    sound = ""
    if service.makes_sound:
        extra = service.config.credits.price(preset.name, preset.resolutions[0], preset.max_seconds, audio=True) - \
            service.config.credits.price(preset.name, preset.resolutions[0], preset.max_seconds)
        default = " (on by default; --audio off for silence)" if service.config.bot.audio_default else ""
        sound = f"\n  --audio for a soundtrack{default}, --sound \"what it sounds like\": +{extra} credits"
    return (
        f"wanbot makes short videos with {preset.name}.{toy}\n"
        f"/video <prompt> [flags] — make a video.{image}\n"
        f"  --ar 16:9|9:16|1:1   --res {'|'.join(preset.resolutions)}   "
        f"--seconds N (up to {preset.max_seconds:g})   --seed N   --neg \"what to avoid\"{sound}\n"
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
