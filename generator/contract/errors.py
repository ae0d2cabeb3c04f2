"""The generator's typed errors; free of torch so the bot process can import and catch them."""

from __future__ import annotations


class GeneratorConfigError(ValueError):
    """A `[generator]` setting this machine cannot run: raised at start-up, never mid-job.

    A ValueError so that pydantic reports it as a configuration error when a validator raises it.
    """


class GenerationCancelled(Exception):
    """The job's cancel event was set: the pipeline stopped at the next step boundary."""


class BadImage(ValueError):
    """An input image the user must replace; `user_message` says why in words a user understands."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NoAudioModel(Exception):
    """A job asked for sound from a worker configured without an audio model."""

    user_message = "this bot's workers make videos without sound; send the command without --audio"

    def __init__(self) -> None:
        super().__init__("no audio model is loaded on this worker ([generator] audio is empty)")


class VideoTooLarge(Exception):
    """The clip cannot be encoded under the byte limit, even at a lower bitrate."""

    user_message = "the video is too large for this chat even after re-encoding"

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(f"video is {size} bytes after re-encoding; the limit is {max_bytes}")
        self.size = size
        self.max_bytes = max_bytes
