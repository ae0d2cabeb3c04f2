"""The per-user token bucket, on a clock the test moves."""

from __future__ import annotations

from bot.commands import Message, handle
from bot.ratelimit import RateLimiter
from tests.conftest import Stack


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.check("telegram:1") for _ in range(3)] == [None, None, None]
    refusal = limiter.check("telegram:1")
    assert refusal is not None and refusal.first and 0.9 < refusal.retry_after_s <= 1.0
    again = limiter.check("telegram:1")
    assert again is not None and not again.first  # the streak is answered once
    assert limiter.check("telegram:2") is None  # others are not affected
    clock.now += 1.0
    assert limiter.check("telegram:1") is None  # one token a second
    later = limiter.check("telegram:1")
    assert later is not None and later.first


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    for user in range(3000):
        limiter.check(f"console:{user}")
        clock.now += 0.01
    assert len(limiter._buckets) < 3000


async def test_a_flood_gets_one_answer_and_admins_are_not_limited(stack: Stack) -> None:
    burst = stack.service.config.bot.command_burst
    replies = [await handle(stack.service, Message(stack.user("flooder"), "/balance")) for _ in range(burst + 20)]
    assert all(reply and reply.startswith("Balance") for reply in replies[:burst])
    assert replies[burst] is not None and "too fast" in replies[burst]
    assert replies[burst + 1:] == [""] * 19  # quiet: nothing to post
    assert (await handle(stack.service, Message(stack.user("alice"), "/balance"))).startswith("Balance")
    admin = [await handle(stack.service, Message(stack.user("admin"), "/balance")) for _ in range(burst + 5)]
    assert all(reply and reply.startswith("Balance") for reply in admin)
