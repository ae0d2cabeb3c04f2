"""Errors a chat user can cause: each carries the sentence the user sees."""

from __future__ import annotations


class UserError(Exception):
    """A refusal the user caused and can fix; nothing was queued or charged."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NotAdmin(UserError):
    def __init__(self) -> None:
        super().__init__("Only the bot's admins can do that.")


class QueueUnavailable(UserError):
    def __init__(self) -> None:
        super().__init__("The video queue is unavailable right now; nothing was charged. Please try again soon.")
