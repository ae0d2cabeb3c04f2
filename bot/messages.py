"""The words and bars users read, shared by every front end."""

from __future__ import annotations

from bot.frontend import StatusView
from bot.jobstore import JobState
from credits.models import AccountView
from generator.jobs import Stage

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


def status_text(view: StatusView) -> str:
    """One line (or two) for the job's status message."""
    eta = f" · about {duration(view.eta_s)} left" if view.eta_s is not None else ""
    if view.state is JobState.QUEUED and view.stage is None:
        place = f"#{view.position} in queue" if view.position else "waiting for a worker"
        return f"⏳ Job {view.job_id}: {place}{eta}"
    if view.stage is Stage.DENOISING:
        return f"🎬 Job {view.job_id}: {progress_bar(view.step, view.total)} step {view.step}/{view.total}{eta}"
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
