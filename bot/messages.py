"""The words and bars users read, shared by every front end."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.frontend import StatusView
from bot.jobstore import JobRecord, JobState
from bot.requests import VideoRequest
from credits.models import AccountView
from generator.contract.jobs import Stage

if TYPE_CHECKING:
    from bot.service import Submitted

BAR_WIDTH = 12


def progress_bar(step: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = 0 if total <= 0 else min(width, round(width * step / total))
    return "▰" * filled + "▱" * (width - filled)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


FINAL_STATUS = {
    JobState.DELIVERED: "✅ Job {job_id}: delivered",
    JobState.CANCELLED: "✖ Job {job_id}: cancelled, credits returned",
    JobState.FAILED: "❌ Job {job_id}: failed, credits returned",
    JobState.LOST: "❌ Job {job_id}: lost, credits returned",
}


def status_text(view: StatusView) -> str:
    """One line for the job's status message."""
    if view.state is JobState.CANCELLED and view.charged:
        return f"✖ Job {view.job_id}: cancelled, {view.charged} credits kept"
    if view.state in FINAL_STATUS:
        return FINAL_STATUS[view.state].format(job_id=view.job_id)
    eta = f" · about {duration(view.eta_s)} left" if view.eta_s is not None else ""
    if view.state is JobState.QUEUED and view.stage is None:
        place = f"#{view.position} in queue" if view.position else "waiting for a worker"
        return f"⏳ Job {view.job_id}: {place}{eta}"
    if view.stage is Stage.DENOISING:
        return f"🎬 Job {view.job_id}: {progress_bar(view.step, view.total)} step {view.step}/{view.total}{eta}"
    if view.stage is Stage.AUDIO:
        return f"🔊 Job {view.job_id}: {progress_bar(view.step, view.total)} adding sound {view.step}/{view.total}"
    if view.stage in (Stage.DECODING, Stage.ENCODING):
        return f"🎞 Job {view.job_id}: {progress_bar(1, 1)} {view.stage.value} the video{eta}"
    if view.state is JobState.DELIVERING or view.stage is Stage.DONE:
        return f"📤 Job {view.job_id}: uploading the video"
    return f"🚀 Job {view.job_id}: starting{eta}"


def cancelled_text(job: JobRecord) -> str:
    """The answer to a cancel: what the job cost (its share of steps already rendered) and what came back."""
    if job.charged:
        return (f"Job {job.job_id} cancelled; {job.charged} credits kept for the steps already rendered, "
                f"{job.returned} returned.")
    return f"Job {job.job_id} cancelled; {job.returned} credits returned."


def balance_text(view: AccountView) -> str:
    held = f", {view.reserved} held for jobs in progress" if view.reserved else ""
    text = f"Balance: {view.balance} credits{held}. Available: {view.available}."
    if view.banned:
        text += " This account is banned" + (f": {view.ban_reason}" if view.ban_reason else "") + "."
    return text


# What Discord's markdown gives a meaning: emphasis, code, spoilers, quotes, headings, lists, masked
# links ([text](url)), <@user>, <@&role>, <#channel>, <t:time>, <:emoji:> and </command:id> (all start
# with <), and the ':' that makes a bare URL a link with a preview. A backslash shows the character.
# (discord.utils.escape_markdown leaves URLs and <…> alone; escape_mentions skips <#channel>.)
_DISCORD_MARKUP = re.compile(r"([\\*_~|`>#\-\[\]<:])")
_DISCORD_PINGS = re.compile(r"@(everyone|here)", re.IGNORECASE)
_TELEGRAM_MENTION = re.compile(r"@(?=\w)")


def _discord_literal(text: str) -> str:
    """Every markup character escaped; @everyone and @here broken by a zero-width space (no backslash
    stops Discord from reading them)."""
    return _DISCORD_PINGS.sub("@\u200b\\1", _DISCORD_MARKUP.sub(r"\\\1", text))


def _telegram_literal(text: str) -> str:
    """Messages go out without parse_mode, so markup shows as typed; an @username alone would still
    become a mention that notifies: a zero-width non-joiner after the @ keeps it plain text."""
    return _TELEGRAM_MENTION.sub("@\u200c", text)


_LITERAL: dict[str, Callable[[str], str]] = {"discord": _discord_literal, "telegram": _telegram_literal}


def as_typed(text: str, platform: str) -> str:
    """Text a user wrote (a prompt), to echo on `platform`: shown as typed, never as markup, links or pings."""
    literal = _LITERAL.get(platform)
    return literal(text) if literal else text


def request_summary(request: VideoRequest, seed: int | None = None, max_prompt: int = 120, *,
                    platform: str) -> str:
    """“prompt” · 480p 16:9 · 5s · seed 42: what a job makes, for captions and status messages; the
    prompt is cut first, then escaped for `platform`, so no escape is cut in half."""
    cut = request.prompt if len(request.prompt) <= max_prompt else request.prompt[: max_prompt - 1] + "…"
    prompt = as_typed(cut, platform)
    shown_seed = request.seed if seed is None else seed
    tail = f" · seed {shown_seed}" if shown_seed is not None else ""
    sound = " · 🔊" if request.audio else ""
    return f"“{prompt}” · {request.resolution} {request.aspect} · {request.seconds:g}s{sound}{tail}"


def submitted_text(submitted: Submitted, image: bool) -> str:
    """The immediate answer to /video: job id, what it makes, cost, credits left, place in the queue."""
    place = f"#{submitted.position} in queue" if submitted.position else "starting now"
    kind = "image-to-video" if image else "text-to-video"
    summary = request_summary(submitted.request, submitted.seed, platform=submitted.job.platform)
    return (f"🎬 Job {submitted.job.job_id} queued ({kind}): {summary}\n"
            f"{submitted.cost} credits, {submitted.available} left. {place}.")
