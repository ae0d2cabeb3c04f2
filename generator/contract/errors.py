"""The generator's typed errors, and `Refusal`, the root of everything a user may be told.

Free of torch so the bot process can import and catch them; the bottom layer, so the ledger,
the bot and the worker all derive their refusals from the one class here.
"""

from __future__ import annotations


class Refusal(Exception):
    """Something a user (or an admin) caused and may be told: `user_message` is a sentence safe to show
    in the chat. A `quiet` refusal gets a minimal answer, not a sentence (a flood of commands gets one
    answer, not one each). Every front end has one error handler that turns a Refusal into its message.
    """

    quiet = False

    def __init__(self, user_message: str, *args: object) -> None:
        super().__init__(user_message, *args)
        self.user_message = user_message

    def __str__(self) -> str:
        return self.user_message


class GeneratorConfigError(ValueError):
    """A `[generator]` setting this machine cannot run: raised at start-up, never mid-job.

    A ValueError so that pydantic reports it as a configuration error when a validator raises it.
    """


class GenerationCancelled(Exception):
    """The job's cancel event was set: the pipeline stopped at the next step boundary."""


class BadImage(Refusal, ValueError):
    """An input image the user must replace; `user_message` says why in words a user understands."""


class NoAudioModel(Refusal):
    """A job asked for sound from a worker configured without an audio model."""

    user_message = "this bot's workers make videos without sound; send the command without --audio"

    def __init__(self) -> None:
        super().__init__(type(self).user_message)
        self.reason = "no audio model is loaded on this worker ([generator] audio is empty)"

    def __str__(self) -> str:
        return self.reason


class VideoTooLarge(Refusal):
    """The clip cannot be encoded under the byte limit, even at a lower bitrate."""

    user_message = "the video is too large for this chat even after re-encoding"

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(type(self).user_message)
        self.size = size
        self.max_bytes = max_bytes

    def __str__(self) -> str:
        return f"video is {self.size} bytes after re-encoding; the limit is {self.max_bytes}"
