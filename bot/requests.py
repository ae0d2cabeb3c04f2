"""Parse `/video <prompt> [flags]` into a validated request, before anything is priced.

Flags follow the habit of other video bots: `--ar 16:9|9:16|1:1`, `--res 480p|720p`,
`--seconds N`, `--seed N`, `--neg "..."`, and for sound `--audio` (a switch, or `--audio off`)
and `--sound "..."` (what it should sound like). Values may be quoted with straight or curly quotes.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass

from bot.errors import UserError
from generator.contract.presets import ASPECTS, Preset

FLAGS = ("ar", "res", "seconds", "seed", "neg", "audio", "sound")
SWITCHES = ("audio",)  # flags that need no value: a following word is the prompt's unless it is on/off
MAX_SEED = 2**32 - 1
_SWITCH = re.compile(r"(?:^|\s)--(audio)(?:[ \t=]+(on|off|yes|no|true|false)(?=\s|$))?", re.IGNORECASE)
_FLAG = re.compile(r'(?:^|\s)--([A-Za-z_-]+)(?:[ \t=]+("[^"]*"|“[^”]*”|\'[^\']*\'|(?!--)\S+))?')
_ON = ("on", "yes", "true")
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
# Bidirectional embeddings, overrides and isolates: they make text display other than it reads.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class VideoRequest:
    """A request as the user meant it; sizes and frames are derived from the preset."""

    prompt: str
    negative_prompt: str | None
    aspect: str
    resolution: str
    seconds: float
    seed: int | None
    audio: bool = False  # a soundtrack is generated and muxed in
    sound: str | None = None  # what the soundtrack should sound like; None: the video's prompt

    @property
    def audio_prompt(self) -> str | None:
        """The soundtrack's prompt, or None for a silent clip."""
        return (self.sound or self.prompt) if self.audio else None


def clean_text(text: str, what: str) -> str:
    """Normalise unicode and whitespace; refuse control characters instead of passing them on."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch not in _INVISIBLE)
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\t\n\r":
            raise UserError(f"The {what} contains a control character; please use plain text.")
        if ch in _BIDI_CONTROLS:
            raise UserError(f"The {what} contains text-direction control characters; please use plain text.")
    return " ".join(text.split())


@dataclass(frozen=True)
class VideoOptions:
    """`/video` as the user gave it, typed but not yet checked against the preset: None is left out.

    The text parser builds it from flags (`parse_video_options`), Discord straight from its typed
    options; `build_request` checks either against the preset, so every platform refuses alike.
    """

    prompt: str
    aspect: str | None = None
    resolution: str | None = None
    seconds: float | None = None
    seed: int | None = None
    negative: str | None = None  # "" (given empty) clears an earlier request's
    audio: bool | None = None
    sound: str | None = None

    def given(self) -> dict[str, object]:
        """The options that were given, by field name."""
        return {name: value for name, value in dataclasses.asdict(self).items()
                if name != "prompt" and value is not None}


FLAG_OF = {"aspect": "ar", "resolution": "res", "seconds": "seconds", "seed": "seed", "negative": "neg",
           "audio": "audio", "sound": "sound"}  # VideoOptions field → its text flag


def parse_video_request(text: str, preset: Preset, max_prompt_chars: int,
                        base: VideoRequest | None = None, audio_default: bool = False) -> VideoRequest:
    """Split the prompt from its flags, then check it all with `build_request`."""
    return build_request(parse_video_options(text), preset, max_prompt_chars, base, audio_default)


def parse_video_options(text: str) -> VideoOptions:
    """The prompt and its flags as typed values; the flags' syntax is checked here, their ranges later."""
    flags: dict[str, str] = {}
    for match in _SWITCH.finditer(text):
        name = match.group(1).lower()
        if name in flags:
            raise UserError(f"The flag --{name} is given twice.")
        flags[name] = (match.group(2) or "on").lower()
    text = _SWITCH.sub(" ", text)
    for match in _FLAG.finditer(text):
        name, value = match.group(1).lower(), match.group(2)
        if name not in FLAGS:
            raise UserError(f"Unknown flag --{name}. Flags: " + ", ".join(f"--{f}" for f in FLAGS) + ".")
        if value is None:
            raise UserError(f"The flag --{name} needs a value, e.g. {_example(name)}.")
        if name in flags:
            raise UserError(f"The flag --{name} is given twice.")
        flags[name] = value.strip("\"'“”")
    return VideoOptions(
        prompt=_FLAG.sub(" ", text),
        aspect=flags.get("ar"),
        resolution=flags["res"].lower() if "res" in flags else None,
        seconds=_number(flags["seconds"]) if "seconds" in flags else None,
        seed=_whole(flags["seed"]) if "seed" in flags else None,
        negative=flags.get("neg"),
        audio=flags["audio"] in _ON if "audio" in flags else None,
        sound=flags.get("sound"),
    )


def build_request(options: VideoOptions, preset: Preset, max_prompt_chars: int,
                  base: VideoRequest | None = None, audio_default: bool = False) -> VideoRequest:
    """Check a prompt and typed option values against the preset.

    Options left out take the preset's defaults, or those of `base` (varying an earlier request).
    """
    prompt = clean_text(options.prompt, "prompt")
    if not prompt:
        raise UserError('Please describe the video, e.g. /video a red fox running through snow --ar 16:9')
    if len(prompt) > max_prompt_chars:
        raise UserError(f"The prompt is {len(prompt)} characters long; the limit is {max_prompt_chars}.")
    negative = clean_text(options.negative, "negative prompt") if options.negative is not None else None
    if negative is not None and len(negative) > max_prompt_chars:
        raise UserError(f"The negative prompt is too long; the limit is {max_prompt_chars} characters.")
    sound = clean_text(options.sound, "sound prompt") if options.sound is not None else None
    if sound is not None and len(sound) > max_prompt_chars:
        raise UserError(f"The sound prompt is too long; the limit is {max_prompt_chars} characters.")
    defaults = base or VideoRequest(prompt="", negative_prompt=None, aspect=ASPECTS[0],
                                    resolution=preset.resolutions[0], seconds=preset.max_seconds, seed=None,
                                    audio=audio_default)
    audio = options.audio if options.audio is not None else (bool(sound) or defaults.audio)
    return VideoRequest(
        prompt=prompt,
        negative_prompt=(negative or None) if negative is not None else defaults.negative_prompt,
        aspect=_choice(options.aspect, ASPECTS, "--ar") if options.aspect is not None else defaults.aspect,
        resolution=(_choice(options.resolution, preset.resolutions, "--res") if options.resolution is not None
                    else defaults.resolution),
        seconds=_seconds(options.seconds, preset) if options.seconds is not None else defaults.seconds,
        seed=_seed(options.seed) if options.seed is not None else defaults.seed,
        audio=audio,
        sound=(sound or None) if sound is not None else defaults.sound,
    )


def _example(name: str) -> str:
    return {"ar": "--ar 16:9", "res": "--res 480p", "seconds": "--seconds 3", "seed": "--seed 42",
            "neg": '--neg "blurry, text"', "sound": '--sound "waves and seagulls"'}[name]


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise UserError(f"{flag} must be one of {', '.join(allowed)} (got {value!r}).")
    return value


def _number(value: str) -> float:
    try:
        return float(value.rstrip("s"))
    except ValueError:
        raise UserError(f"--seconds must be a number (got {value!r}).") from None


def _seconds(seconds: float, preset: Preset) -> float:
    longest = preset.max_seconds
    shortest = round(4 / preset.fps, 2)
    if not shortest <= seconds <= longest:
        raise UserError(f"--seconds must be between {shortest:g} and {longest:g} for this model.")
    return seconds


def _whole(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}.")
    return int(value)


def _seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}.")
    return seed
