"""`wanbot generate "prompt" --out clip.mp4`: one clip straight through the pipeline, no queue or credits.

Every `wanbot` command builds this parser, so torch and diffusers are imported only when a clip is made.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from PIL import Image

from generator.contract.errors import BadImage, GeneratorConfigError
from generator.contract.images import load_image
from generator.contract.options import GeneratorSettings
from generator.contract.presets import ASPECTS, get_preset

logger = logging.getLogger("wanbot.generator")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="render one clip with the configured preset (no queue)")
    parser.add_argument("prompt", help="what the video shows")
    parser.add_argument("--image", type=Path, help="first frame: makes it image-to-video")
    parser.add_argument("--res", help="resolution name, e.g. 480p (default: the preset's first)")
    parser.add_argument("--ar", default="16:9", choices=ASPECTS, help="aspect ratio (default 16:9)")
    parser.add_argument("--seconds", type=float, help="duration (default: the preset's longest)")
    parser.add_argument("--seed", type=_seed, help="0 to 4294967295 (default: random, printed)")
    parser.add_argument("--neg", help="negative prompt (default: the preset's)")
    parser.add_argument("--audio", action="store_true", help="add a soundtrack from the prompt ([generator] audio)")
    parser.add_argument("--sound", help="add a soundtrack from this prompt instead")
    parser.add_argument("--out", type=Path, required=True, help="where to write the MP4")


def _seed(text: str) -> int:
    seed = int(text)
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"{seed} is not between 0 and {2**32 - 1}")
    return seed


def run(args: argparse.Namespace, settings: GeneratorSettings) -> int:
    from generator.contract.encode import encode_mp4
    from generator.contract.mux import mux_audio
    from generator.engine.loader import load_models
    from generator.engine.run import GenerationSpec, generate, make_soundtrack, random_seed

    try:
        preset = get_preset(settings.preset)
        width, height = preset.size_for(args.res or preset.resolutions[0], args.ar)
        seconds = preset.max_seconds if args.seconds is None else args.seconds
        image = None
        if args.image is not None:
            if not preset.image_to_video:
                raise ValueError(f"preset {preset.name} makes videos from text only; leave out --image")
            # The operator's own file: Pillow's decompression-bomb limit is the only size limit.
            image = load_image(args.image.read_bytes(), Image.MAX_IMAGE_PIXELS)
        spec = GenerationSpec(
            prompt=args.prompt,
            negative_prompt=args.neg,
            width=width,
            height=height,
            num_frames=preset.frames_for(seconds),
            seed=random_seed() if args.seed is None else args.seed,
            image=image,
        )
        if (args.audio or args.sound) and not settings.audio:
            raise ValueError("--audio and --sound need a soundtrack preset: set [generator] audio")
        if preset.is_toy:
            logger.warning("preset %s has random weights: the video will be noise", preset.name)
        models = load_models(preset, settings)
    except BadImage as error:
        print(f"wanbot generate: {args.image}: {error.user_message}", file=sys.stderr)
        return 2
    except (GeneratorConfigError, ValueError, OSError) as error:
        print(f"wanbot generate: {error}", file=sys.stderr)
        return 2

    def on_step(step: int, total: int) -> None:
        logger.info("step %d/%d", step, total)

    video = generate(models, spec, on_step, threading.Event())
    data = encode_mp4(video.frames, video.fps)
    if args.audio or args.sound:
        soundtrack = make_soundtrack(models, args.sound or args.prompt, spec.num_frames / video.fps, video.seed,
                                     on_step, threading.Event())
        data = mux_audio(data, soundtrack)
    args.out.write_bytes(data)
    logger.info("wrote %s (seed %d, %.1fs)", args.out, video.seed, video.seconds)
    print(f"{args.out} (seed {video.seed})")
    return 0
