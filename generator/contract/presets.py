"""Model presets: which diffusers checkpoint to load and the official Wan settings to run it with.

The numbers follow the Wan 2.2 / 2.1 reference configs (steps, guidance per expert, flow shift,
frames and fps). The bot imports this module to size and price requests, so it stays free of torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from generator.contract.errors import GeneratorConfigError

ASPECTS = ("16:9", "9:16", "1:1")

# Wan's VAE packs 4 frames into one latent frame after the first: clips have 4k+1 frames.
TEMPORAL_STRIDE = 4
MIN_FRAMES = 5

# The official negative prompt of Wan 2.1 / 2.2 (shared_config.py); the models were tuned with it.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


WIDE = {"480p": (832, 480), "720p": (1280, 720)}


@dataclass(frozen=True)
class Preset:
    """What to load and how to sample it; sizes are landscape (width, height) per resolution name.

    The defaults are what the Wan 2.2 A14B and 2.1 models share: 81 frames at 16 fps, 480p and
    720p, sides multiples of 16, bf16 weights, the official negative prompt.
    """

    name: str
    description: str
    source: str | None  # diffusers-format hub id; None: built in memory (tiny)
    text_to_video: bool
    image_to_video: bool
    steps: int
    boundary_ratio: float | None  # None: a single expert
    guidance: float  # high-noise expert (or the only one)
    guidance_2: float | None  # low-noise expert
    flow_shift: float
    job_timeout_s: int
    fps: int = 16
    max_frames: int = 81
    sizes: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(WIDE), hash=False)
    size_multiple: int = 16
    default_dtype: str = "bfloat16"
    negative_prompt: str = WAN_NEGATIVE_PROMPT
    is_toy: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not (self.text_to_video or self.image_to_video):
            problems.append("it makes neither text-to-video nor image-to-video")
        if (self.max_frames - 1) % TEMPORAL_STRIDE or self.max_frames < MIN_FRAMES:
            problems.append(f"max_frames {self.max_frames} is not 4k+1 (at least {MIN_FRAMES})")
        if (self.boundary_ratio is None) != (self.guidance_2 is None):
            problems.append("boundary_ratio and guidance_2 go together (two experts) or not at all")
        for resolution, (width, height) in self.sizes.items():
            if width % self.size_multiple or height % self.size_multiple:
                problems.append(f"{resolution} {width}×{height} is not a multiple of {self.size_multiple}")
        if not self.sizes:
            problems.append("it has no sizes")
        if problems:
            raise GeneratorConfigError(f"preset {self.name}: " + "; ".join(problems))

    @property
    def resolutions(self) -> tuple[str, ...]:
        """Resolution names, the default first."""
        return tuple(self.sizes)

    @property
    def max_seconds(self) -> float:
        return (self.max_frames - 1) / self.fps

    def size_for(self, resolution: str, aspect: str) -> tuple[int, int]:
        """(width, height) for a resolution name and an aspect ratio from ASPECTS."""
        if resolution not in self.sizes:
            raise ValueError(
                f"preset {self.name} makes {', '.join(self.resolutions)}; resolution {resolution!r} is not one of them"
            )
        width, height = self.sizes[resolution]
        if aspect == "16:9":
            return width, height
        if aspect == "9:16":
            return height, width
        if aspect == "1:1":
            side = math.isqrt(width * height) // self.size_multiple * self.size_multiple
            return side, side
        raise ValueError(f"aspect ratio {aspect!r} is not one of {', '.join(ASPECTS)}")

    def frames_for(self, seconds: float) -> int:
        """Frames for a duration: 4k+1 (rounded down), at least MIN_FRAMES, at most max_frames."""
        if not math.isfinite(seconds):
            raise ValueError(f"seconds must be a finite number, got {seconds}")
        frames = round(seconds * self.fps) + 1
        frames = (frames - 1) // TEMPORAL_STRIDE * TEMPORAL_STRIDE + 1
        return max(MIN_FRAMES, min(frames, self.max_frames))


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="wan2.2-t2v-a14b",
            description="Wan 2.2 text-to-video, two 14B experts; 480p or 720p, 5 s at 16 fps",
            source="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            text_to_video=True,
            image_to_video=False,
            steps=40,
            boundary_ratio=0.875,
            guidance=4.0,
            guidance_2=3.0,
            flow_shift=12.0,
            job_timeout_s=3600,
        ),
        Preset(
            name="wan2.2-i2v-a14b",
            description="Wan 2.2 image-to-video, two 14B experts; 480p or 720p, 5 s at 16 fps",
            source="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            text_to_video=False,
            image_to_video=True,
            steps=40,
            boundary_ratio=0.9,
            guidance=3.5,
            guidance_2=3.5,
            flow_shift=5.0,
            job_timeout_s=3600,
        ),
        Preset(
            name="wan2.2-ti2v-5b",
            description="Wan 2.2 text- and image-to-video, 5B; 1280×704, 5 s at 24 fps; fits a 24 GB card",
            source="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            text_to_video=True,
            image_to_video=True,
            steps=50,
            boundary_ratio=None,
            guidance=5.0,
            guidance_2=None,
            flow_shift=5.0,
            job_timeout_s=1800,
            fps=24,
            max_frames=121,
            sizes={"720p": (1280, 704)},
            size_multiple=32,
        ),
        Preset(
            name="wan2.1-t2v-1.3b",
            description="Wan 2.1 text-to-video, 1.3B, for 8 GB cards; 480p, 5 s at 16 fps",
            source="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            text_to_video=True,
            image_to_video=False,
            steps=50,
            boundary_ratio=None,
            guidance=5.0,
            guidance_2=None,
            flow_shift=3.0,  # diffusers' recommendation for 480p
            job_timeout_s=1200,
            sizes={"480p": WIDE["480p"]},
        ),
        Preset(
            name="tiny",
            description="the real Wan pipelines on tiny random weights: makes noise, for tests and the demo",
            source=None,
            text_to_video=True,
            image_to_video=True,
            # The shape of a real clip (5 s at 16 fps; 4 steps like a distilled LoRA) at tiny sizes: ~0.2 s on a CPU.
            steps=4,
            boundary_ratio=0.875,
            guidance=4.0,
            guidance_2=3.0,
            flow_shift=5.0,  # low enough that the later steps fall below the boundary: both experts run
            job_timeout_s=120,
            sizes={"480p": (64, 32), "720p": (96, 48)},
            default_dtype="float32",
            negative_prompt="blurry, static",
            is_toy=True,
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise GeneratorConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None
