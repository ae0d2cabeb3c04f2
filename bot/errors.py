"""Errors a chat user can cause: each carries the sentence the user sees."""

from __future__ import annotations

from generator.contract.errors import Refusal


class UserError(Refusal):
    """A refusal the user caused and can fix; nothing was queued or charged."""


class NotAdmin(UserError):
    def __init__(self) -> None:
        super().__init__("Only the bot's admins can do that.")


class QueueUnavailable(UserError):
    def __init__(self) -> None:
        super().__init__("The video queue is unavailable right now; nothing was charged. Please try again soon.")


class RateLimited(UserError):
    def __init__(self, retry_after_s: float, first: bool) -> None:
        super().__init__(f"You're sending commands too fast; please wait {max(1, round(retry_after_s))} s.")
        self.quiet = not first
