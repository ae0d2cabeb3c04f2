"""The words and bars users read, shared by every front end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.frontend import StatusView
from bot.jobstore import JobState
from bot.requests import VideoRequest
from credits.models import AccountView
from generator.jobs import Stage

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


def balance_text(view: AccountView) -> str:
    held = f", {view.reserved} held for jobs in progress" if view.reserved else ""
    text = f"Balance: {view.balance} credits{held}. Available: {view.available}."
    if view.banned:
        text += " This account is banned" + (f": {view.ban_reason}" if view.ban_reason else "") + "."
    return text


def request_summary(request: VideoRequest, seed: int | None = None, max_prompt: int = 120) -> str:
    """“prompt” · 480p 16:9 · 5s · seed 42: what a job makes, for captions and status messages."""
    prompt = request.prompt if len(request.prompt) <= max_prompt else request.prompt[: max_prompt - 1] + "…"
    shown_seed = request.seed if seed is None else seed
    tail = f" · seed {shown_seed}" if shown_seed is not None else ""
    sound = " · 🔊" if request.audio else ""
    return f"“{prompt}” · {request.resolution} {request.aspect} · {request.seconds:g}s{sound}{tail}"


def submitted_text(submitted: Submitted, image: bool) -> str:
    """The immediate answer to /video: job id, what it makes, cost, credits left, place in the queue."""
    place = f"#{submitted.position} in queue" if submitted.position else "starting now"
    kind = "image-to-video" if image else "text-to-video"
    return (f"🎬 Job {submitted.job.job_id} queued ({kind}): {request_summary(submitted.request, submitted.seed)}\n"
            f"{submitted.cost} credits, {submitted.available} left. {place}.")
