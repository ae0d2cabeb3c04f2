"""Do hostile images slow other users down? Other users' /balance reply latency while one user (then four
accounts of one person) sends images built to be slow or costly to read, through the real Telegram front
end on the emulated Bot API, with the deployed defaults: a 10 s decode budget, rate and flood limits.

Each attacker sends, at once: a progressive JPEG whose last scan repeats 10,000 times (280 kB that decodes
for tens of seconds: its child process is killed at the budget), a 16,000-page TIFF named cat.png (Pillow
walks its pages quadratically; refused from its first bytes), a PNG claiming 60,000×60,000 pixels, an
animated GIF named cat.jpg and an animated PNG. Meanwhile 100 other users send /balance, one every 100 ms.
With four accounts both decode slots stay busy for the whole window.

    .venv/bin/python -m benchmarks.hostile_images_bench
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import tempfile

from PIL import Image

from benchmarks.bystanders import balance_latencies, bench_config
from benchmarks.stats import percentile
from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator
from tests.generator.test_images import encoded, many_pages_tiff, many_scans_jpeg, png_header_only
from tests.telegram.conftest import running_telegram
from wanbot.redis_server import LocalRedis

OTHERS = 100
SPACING_S = 0.1
FRAMES = [Image.new("RGB", (64, 64), color) for color in ("red", "blue")]
SLOW = (many_scans_jpeg(), "cat.jpg", "image/jpeg")  # (bytes, file name, declared type)
QUICK = [
    (many_pages_tiff(), "cat.png", "image/png"),
    (png_header_only(60_000, 60_000), "bomb.png", "image/png"),
    (encoded(FRAMES[0], "GIF", save_all=True, append_images=FRAMES[1:]), "cat.jpg", "image/jpeg"),
    (encoded(FRAMES[0], "PNG", save_all=True, append_images=FRAMES[1:]), "dance.png", "image/png"),
]
ANSWERS = {"takes too long": "too slow", "not an image I can read": "not ours", "still checking": "one at a time",
           "megapixels": "too large", "animated": "animated", "too fast": "rate limited"}


def send_image(api: BotApiEmulator, attacker: ApiUser, data: bytes, name: str, mime_type: str) -> str:
    """Push the attacker's /video with the image as a document; its file path, to see it downloaded."""
    file_id, _ = api.add_file(data, file_name=name)
    api.push_update(api.document_message(attacker, ApiChat.private(attacker), file_id, name, mime_type,
                                         caption="/video make it dance"))
    return api.hosted_file(file_id).file_path


async def attack(api: BotApiEmulator, attackers: list[ApiUser]) -> None:
    """The slow JPEGs first, each downloaded before the rest are sent, so they reach the decoder first."""
    slow = [send_image(api, attacker, *SLOW) for attacker in attackers]
    await api.wait_for(lambda: set(slow) <= set(api.downloads))
    for attacker in attackers:
        for image in QUICK:
            send_image(api, attacker, *image)


def kind_of(text: str) -> str:
    return next((kind for phrase, kind in ANSWERS.items() if phrase in text), text[:30])


async def run(attackers: int, redis_url: str) -> tuple[list[float], collections.Counter[str]]:
    """Latencies of the other users' replies, and what the attackers were told (by kind)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with BotApiEmulator() as api:
            config = bench_config(api, redis_url, f"bench:hostile:{attackers}", f"{tmp}/bench.sqlite3")
            async with running_telegram(config):
                hostile = [ApiUser(90_000 + n, f"attacker{n}") for n in range(attackers)]
                await attack(api, hostile)
                latencies = await balance_latencies(api, OTHERS, SPACING_S, timeout_s=120)
                await api.wait_for(lambda: all(len(api.sent(attacker.id)) > len(QUICK) for attacker in hostile),
                                   timeout=120)
            told = collections.Counter(kind_of(message.text or "") for attacker in hostile
                                       for message in api.sent(attacker.id))
            return latencies, told


async def main() -> None:
    redis = LocalRedis().start()
    try:
        runs = [(f"{attackers} hostile account(s)" if attackers else "no attack", await run(attackers, redis.url))
                for attackers in (0, 1, 4)]
    finally:
        redis.cleanup()
    print(f"{OTHERS} users send /balance, one every {SPACING_S * 1000:.0f} ms; reply latency in seconds")
    print(f"{'run':<24}{'median':>9}{'p99':>9}{'max':>9}  attackers were told")
    for name, (latencies, told) in runs:
        answers = ", ".join(f"{kind} ×{count}" for kind, count in sorted(told.items())) or "-"
        print(f"{name:<24}{statistics.median(latencies):>9.3f}{percentile(latencies, 0.99):>9.3f}"
              f"{max(latencies):>9.3f}  {answers}")


if __name__ == "__main__":
    asyncio.run(main())
