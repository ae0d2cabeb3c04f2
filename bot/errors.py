"""Errors a chat user can cause: each carries the sentence the user sees."""

from __future__ import annotations


class UserError(Exception):
    """A refusal the user caused and can fix; nothing was queued or charged.

    A `quiet` refusal is not answered (a flood of commands gets one answer, not one each).
    """

    quiet = False

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


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
