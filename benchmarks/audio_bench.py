"""Seconds a soundtrack adds to a clip: generating it, normalising it, muxing it, and overlapping it.

Runs the worker's own stages on the configured presets (default: the tiny video and audio presets on
the CPU): the video pipeline, `make_soundtrack` (Stable Audio + loudness), H.264 encode and AAC mux.
Then the same clip with the soundtrack sampled in a second thread while the video renders (the
`audio_overlap` setting). Medians of N runs after one warm-up.

    .venv/bin/python -m benchmarks.audio_bench [--runs 7] [--preset tiny] [--audio tiny]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from generator.contract.encode import encode_mp4
from generator.contract.mux import mux_audio
from generator.contract.options import GeneratorSettings
from generator.contract.presets import get_preset
from generator.engine.loader import LoadedModels, load_models
from generator.engine.run import GenerationSpec, generate, make_soundtrack


def one_clip(models: LoadedModels, seed: int, overlap: ThreadPoolExecutor | None) -> dict[str, float]:
    preset = models.preset
    width, height = preset.size_for(preset.resolutions[0], "16:9")
    frames = preset.frames_for(preset.max_seconds)
    spec = GenerationSpec("waves break on a rocky shore", None, width, height, frames, seed)
    seconds = frames / preset.fps
    cancel = threading.Event()
    started = time.perf_counter()
    future = overlap.submit(make_soundtrack, models, spec.prompt, seconds, seed, None, cancel) if overlap else None
    video = generate(models, spec, lambda step, total: None, cancel)
    video_done = time.perf_counter()
    soundtrack = future.result() if future else make_soundtrack(models, spec.prompt, seconds, seed, None, cancel)
    audio_done = time.perf_counter()
    silent = encode_mp4(video.frames, video.fps)
    encoded = time.perf_counter()
    mux_audio(silent, soundtrack)
    muxed = time.perf_counter()
    return {"video pipeline s": video_done - started, "soundtrack s (after video)": audio_done - video_done,
            "H.264 encode s": encoded - audio_done, "AAC mux s": muxed - encoded,
            "clip total s": muxed - started, "added by sound s": (audio_done - video_done) + (muxed - encoded)}


def main(runs: int, preset_name: str, audio: str) -> None:
    settings = GeneratorSettings(preset=preset_name, audio=audio)
    models = load_models(get_preset(preset_name), settings)
    table: dict[str, dict[str, float]] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio") as second_thread:
        for mode, overlap in (("sequential", None), ("overlapped", second_thread)):
            one_clip(models, 0, overlap)  # warm-up
            samples = [one_clip(models, seed, overlap) for seed in range(1, runs + 1)]
            table[mode] = {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}
    print(f"{preset_name} video + {audio} audio on {models.device}: medians of {runs} clips")
    print(f"{'stage':<28}" + "".join(f"{mode:>14}" for mode in table))
    for name in table["sequential"]:
        print(f"{name:<28}" + "".join(f"{table[mode][name]:>14.3f}" for mode in table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--audio", default="tiny")
    args = parser.parse_args()
    main(args.runs, args.preset, args.audio)
