"""Parse `/video <prompt> [flags]` into a validated request, before anything is priced.

Flags follow the habit of other video bots: `--ar 16:9|9:16|1:1`, `--res 480p|720p`,
`--seconds N`, `--seed N`, `--neg "..."`, and for sound `--audio` (a switch, or `--audio off`)
and `--sound "..."` (what it should sound like). Values may be quoted with straight or curly quotes.
"""

from __future__ import annotations

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


def parse_video_request(text: str, preset: Preset, max_prompt_chars: int,
                        base: VideoRequest | None = None, audio_default: bool = False) -> VideoRequest:
    """Split the prompt from its flags, then check it all with `build_request`."""
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
    return build_request(_FLAG.sub(" ", text), flags, preset, max_prompt_chars, base, audio_default)


def build_request(prompt_text: str, flags: dict[str, str], preset: Preset, max_prompt_chars: int,
                  base: VideoRequest | None = None, audio_default: bool = False) -> VideoRequest:
    """Check a prompt and flag values (as typed, keyed by flag name) against the preset.

    Flags left out take the preset's defaults, or those of `base` (varying an earlier request).
    Front ends with real options (Discord) pass them here too, so every platform refuses alike.
    """
    prompt = clean_text(prompt_text, "prompt")
    if not prompt:
        raise UserError('Please describe the video, e.g. /video a red fox running through snow --ar 16:9')
    if len(prompt) > max_prompt_chars:
        raise UserError(f"The prompt is {len(prompt)} characters long; the limit is {max_prompt_chars}.")
    negative = clean_text(flags["neg"], "negative prompt") if "neg" in flags else None
    if negative is not None and len(negative) > max_prompt_chars:
        raise UserError(f"The negative prompt is too long; the limit is {max_prompt_chars} characters.")
    sound = clean_text(flags["sound"], "sound prompt") if "sound" in flags else None
    if sound is not None and len(sound) > max_prompt_chars:
        raise UserError(f"The sound prompt is too long; the limit is {max_prompt_chars} characters.")
    defaults = base or VideoRequest(prompt="", negative_prompt=None, aspect=ASPECTS[0],
                                    resolution=preset.resolutions[0], seconds=preset.max_seconds, seed=None,
                                    audio=audio_default)
    audio = flags["audio"] in _ON if "audio" in flags else (bool(sound) or defaults.audio)
    return VideoRequest(
        prompt=prompt,
        negative_prompt=(negative or None) if "neg" in flags else defaults.negative_prompt,
        aspect=_choice(flags["ar"], ASPECTS, "--ar") if "ar" in flags else defaults.aspect,
        resolution=(_choice(flags["res"].lower(), preset.resolutions, "--res") if "res" in flags
                    else defaults.resolution),
        seconds=_seconds(flags["seconds"], preset) if "seconds" in flags else defaults.seconds,
        seed=_seed(flags["seed"]) if "seed" in flags else defaults.seed,
        audio=audio,
        sound=(sound or None) if "sound" in flags else defaults.sound,
    )


def _example(name: str) -> str:
    return {"ar": "--ar 16:9", "res": "--res 480p", "seconds": "--seconds 3", "seed": "--seed 42",
            "neg": '--neg "blurry, text"', "sound": '--sound "waves and seagulls"'}[name]


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise UserError(f"{flag} must be one of {', '.join(allowed)} (got {value!r}).")
    return value


def _seconds(value: str, preset: Preset) -> float:
    longest = preset.max_seconds
    try:
        seconds = float(value.rstrip("s"))
    except ValueError:
        raise UserError(f"--seconds must be a number (got {value!r}).") from None
    shortest = round(4 / preset.fps, 2)
    if not shortest <= seconds <= longest:
        raise UserError(f"--seconds must be between {shortest:g} and {longest:g} for this model.")
    return seconds


def _seed(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}.")
    return int(value)
