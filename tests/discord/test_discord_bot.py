"""wanbot on Discord, end to end: the real discord.py client fed gateway events by the emulated Discord,
its REST calls answered by the emulated API, with a real redis-server, SQLite and the tiny Wan worker."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable

import pytest
from PIL import Image

import bot.settlement
import generator.worker
from bot.discord.client import WanbotClient, build_client, sync_commands
from bot.jobstore import JobState
from generator.contract.config import Config
from generator.contract.encode import probe_mp4
from generator.contract.mux import probe_audio
from generator.engine.loader import LoadedModels
from tests.conftest import WorkerHandle
from tests.discord.conftest import (
    ADMIN_HERE,
    ALICE,
    ALICE_HERE,
    CHANNEL_ID,
    GUILD_ID,
    MALLORY_HERE,
    boolean_option,
    components_of,
    number_option,
    running_discord,
)
from tests.emulators.discord_gateway import (
    EmulatedDiscord,
    attachment_option,
    dm_caller,
    integer_option,
    string_option,
    subcommand,
    user_option,
)
from tests.emulators.discord_rest import InteractionRecord, StoredMessage
from wanbot.app import open_service

JOB = re.compile(r"Job ([0-9a-f]{12})")
EPHEMERAL = 64
ADMIN_SUBCOMMANDS = [
    subcommand("grant", user_option("user", ALICE), integer_option("amount", 50)),
    subcommand("take", user_option("user", ALICE), integer_option("amount", 5)),
    subcommand("quota", user_option("user", ALICE), integer_option("daily", 300)),
    subcommand("ban", user_option("user", ALICE), string_option("reason", "spam")),
    subcommand("unban", user_option("user", ALICE)),
    subcommand("user", user_option("user", ALICE)),
    subcommand("stats"),
    subcommand("refund", string_option("job", "0123456789ab")),
]


def png(width: int = 120, height: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def answer(env: EmulatedDiscord, record: InteractionRecord) -> StoredMessage:
    """The interaction's @original once it is no longer 'thinking'."""
    return await env.rest.wait_for(lambda: (original := env.rest.original(record.token)) is not None
                                   and not original.loading and original)


async def video_message(env: EmulatedDiscord, record: InteractionRecord) -> StoredMessage:
    return await env.rest.wait_for(lambda: next((m for m in env.rest.followups(record.token) if m.attachments),
                                                None))


def status_message(env: EmulatedDiscord, record: InteractionRecord) -> StoredMessage:
    public = [message for message in env.rest.followups(record.token) if not message.ephemeral]
    return public[0]


async def test_text_to_video_in_a_server(discord_env: EmulatedDiscord, discord_bot: WanbotClient,
                                         worker: WorkerHandle) -> None:
    await worker.start()
    payload = discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "a red fox running through snow"),
        string_option("aspect", "9:16"), integer_option("seed", 7), number_option("seconds", 2.5))
    record = await discord_env.gateway.interact(discord_bot, payload)
    assert record.callback == {"type": 5, "data": {"flags": EPHEMERAL}}  # deferred, only for the user

    ack = await answer(discord_env, record)
    job_id = JOB.search(ack.content).group(1)  # type: ignore[union-attr]
    assert ack.ephemeral and "10 credits" not in ack.content and "5 credits, 195 left" in ack.content

    video = await video_message(discord_env, record)
    info = probe_mp4(discord_env.rest.attachment_data(video.attachments[0]))
    assert (info.width, info.height, info.frames, info.codec) == (32, 64, 41, "h264")
    assert "a red fox running through snow" in video.content and "seed 7" in video.content
    assert components_of(video) == [f"wanbot:{action}:{job_id}" for action in ("reroll", "vary", "delete")]
    status = await discord_env.rest.wait_for(
        lambda: status_message(discord_env, record).content.endswith("delivered") and status_message(discord_env,
                                                                                                     record))
    assert not status.ephemeral and status.components == []
    view = await discord_bot.service.ledger.view(f"discord:{ALICE['id']}")
    assert (view.balance, view.reserved) == (195, 0)


async def test_image_to_video_from_an_attachment_and_in_dms(discord_env: EmulatedDiscord, discord_bot: WanbotClient,
                                                            worker: WorkerHandle) -> None:
    await worker.start()
    picture = discord_env.rest.add_attachment(png(300, 200), "bird.png", "image/png")
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "the bird takes off"), attachment_option("image", picture)))
    video = await video_message(discord_env, record)
    assert probe_mp4(discord_env.rest.attachment_data(video.attachments[0])).frames == 81
    job = await discord_bot.service.jobs.get(JOB.search(video.content).group(1))  # type: ignore[union-attr]
    assert job is not None and job.payload.has_image and "image_url" in job.reply_to

    in_dm = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        dm_caller(ALICE), "video", string_option("prompt", "a quiet pond")))
    assert (await video_message(discord_env, in_dm)).attachments


async def test_bad_attachments_are_refused_before_download(discord_env: EmulatedDiscord,
                                                           discord_bot: WanbotClient) -> None:
    rest, gateway = discord_env
    pdf = rest.add_attachment(b"%PDF-1.7", "notes.pdf", "application/pdf")
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "make it move"), attachment_option("image", pdf)))
    assert record.callback_type == 4 and record.callback["data"]["flags"] == EPHEMERAL  # type: ignore[index]
    assert "not an image" in record.callback["data"]["content"]  # type: ignore[index]

    big = rest.add_attachment(png(), "big.png", "image/png")
    big["size"] = 30 * 2**20  # what Discord declares
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "zoom"), attachment_option("image", big)))
    assert "30.0 MB" in record.callback["data"]["content"]  # type: ignore[index]
    assert rest.calls_to(r"GET /cdn/.+") == []  # neither was downloaded

    broken = rest.add_attachment(b"\x89PNG\r\n\x1a\n broken", "broken.png", "image/png")
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "sway"), attachment_option("image", broken)))
    assert "damaged" in (await answer(discord_env, record)).content or "can read" in (
        await answer(discord_env, record)).content
    account = f"discord:{ALICE['id']}"
    assert await discord_bot.service.ledger.active_reservations(account) == []
    assert await discord_bot.service.jobs.unfinished(account) == []


async def test_a_banned_users_attachment_is_never_downloaded(discord_env: EmulatedDiscord,
                                                             discord_bot: WanbotClient) -> None:
    rest, gateway = discord_env
    await discord_bot.service.ledger.ban(f"discord:{MALLORY_HERE.user['id']}", "test", "spam")
    picture = rest.add_attachment(png(), "cat.png", "image/png")
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        MALLORY_HERE, "video", string_option("prompt", "the cat dances"), attachment_option("image", picture)))
    assert "is banned: spam" in (await answer(discord_env, record)).content
    assert rest.calls_to(r"GET /(cdn|media)/.+") == []  # refused before the download, not after a decode


async def test_not_enough_credits(discord_env: EmulatedDiscord, discord_bot: WanbotClient) -> None:
    await discord_bot.service.ledger.touch(f"discord:{ALICE['id']}")
    await discord_bot.service.ledger.take(f"discord:{ALICE['id']}", 195, "test")
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "a castle"), string_option("resolution", "720p")))
    reply = await answer(discord_env, record)
    assert reply.ephemeral and reply.content == "That needs 25 credits, but only 5 are available."
    assert await discord_bot.service.jobs.unfinished(f"discord:{ALICE['id']}") == []


@pytest.mark.parametrize("options", ADMIN_SUBCOMMANDS, ids=lambda option: option.payload["name"])
async def test_admin_is_refused_for_others(discord_env: EmulatedDiscord, discord_bot: WanbotClient,
                                           options: object) -> None:
    account = f"discord:{ALICE['id']}"
    await discord_bot.service.ledger.touch(account)
    before = await discord_bot.service.ledger.history(account, 50)
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        MALLORY_HERE, "admin", options))
    reply = await answer(discord_env, record)
    assert reply.ephemeral and reply.content == "Only the bot's admins can do that."
    assert await discord_bot.service.ledger.history(account, 50) == before


async def test_admin_grants_and_commands_are_hidden_by_default(discord_env: EmulatedDiscord,
                                                               discord_bot: WanbotClient) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ADMIN_HERE, "admin", subcommand("grant", user_option("user", ALICE), integer_option("amount", 500),
                                        string_option("note", "contest"))))
    reply = await answer(discord_env, record)
    assert reply.content.startswith(f"Granted 500 credits (discord:{ALICE['id']})")
    entry = (await discord_bot.service.ledger.history(f"discord:{ALICE['id']}", 1))[0]
    assert (entry.delta, entry.actor, entry.note) == (500, f"discord:{ADMIN_HERE.user['id']}", "contest")
    by_account = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ADMIN_HERE, "admin", subcommand("grant", string_option("account", "telegram:42"),
                                        integer_option("amount", 7))))
    assert (await answer(discord_env, by_account)).content.startswith("Granted 7 credits (telegram:42)")


@pytest.mark.parametrize(("account", "amount", "refusal"), [
    ("discord:42 1000000", 5, "is not an account"),  # once re-split into words: 1,000,000 granted
    ("telegram:３００３", 5, "is not an account"),      # full-width digits: another account than shown
    ("telegram:42", 1_000_001, "at most 1,000,000 per admin action"),
])
async def test_admin_options_are_passed_as_they_are(discord_env: EmulatedDiscord, discord_bot: WanbotClient,
                                                    account: str, amount: int, refusal: str) -> None:
    record = await discord_env.gateway.interact(discord_bot, discord_env.gateway.builder.slash_command(
        ADMIN_HERE, "admin", subcommand("grant", string_option("account", account), integer_option("amount", amount))))
    reply = await answer(discord_env, record)
    assert reply.ephemeral and refusal in reply.content
    stats = await discord_bot.service.ledger.stats()
    assert (stats.accounts, stats.total_balance) == (0, 0)  # nothing granted, no account made


async def test_admin_quota_and_user_subcommands(discord_env: EmulatedDiscord, discord_bot: WanbotClient) -> None:
    gateway = discord_env.gateway
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ADMIN_HERE, "admin", subcommand("quota", user_option("user", ALICE), integer_option("daily", 300),
                                        integer_option("jobs", -1))))
    assert (await answer(discord_env, record)).content == (
        f"Quota for discord:{ALICE['id']}: daily grant 300, max jobs in flight 4.")
    record = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ADMIN_HERE, "admin", subcommand("user", user_option("user", ALICE))))
    described = (await answer(discord_env, record)).content
    assert "Daily grant 300, max jobs in flight 4" in described and "quota +0 by discord:" in described


async def test_buttons_work_after_a_restart(discord_env: EmulatedDiscord, discord_config: Config,
                                            worker: WorkerHandle) -> None:
    await worker.start()
    gateway, rest = discord_env.gateway, discord_env.rest
    async with running_discord(discord_config) as first:
        record = await gateway.interact(first, gateway.builder.slash_command(
            ALICE_HERE, "video", string_option("prompt", "a paper boat"), integer_option("seed", 11)))
        video = await video_message(discord_env, record)
        job_id = JOB.search(video.content).group(1)  # type: ignore[union-attr]
    async with running_discord(discord_config) as second:
        stranger = await gateway.interact(second, gateway.builder.button_click(
            MALLORY_HERE, f"wanbot:delete:{job_id}", rest.message(video.id).payload))
        refusal = await rest.wait_for(lambda: rest.followups(stranger.token) or (
            stranger.callback if stranger.callback_type == 4 else None))
        assert "Only the person who made this video" in str(refusal)
        assert not rest.message(video.id).deleted

        reroll = await gateway.interact(second, gateway.builder.button_click(
            ALICE_HERE, f"wanbot:reroll:{job_id}", rest.message(video.id).payload))
        again = await video_message(discord_env, reroll)
        second_job = await second.service.jobs.get(JOB.search(again.content).group(1))  # type: ignore[union-attr]
        assert second_job is not None and second_job.request.prompt == "a paper boat"
        assert second_job.payload.seed != 11

        delete = await gateway.interact(second, gateway.builder.button_click(
            ALICE_HERE, f"wanbot:delete:{job_id}", rest.message(video.id).payload))
        assert delete.callback == {"type": 6}
        await rest.wait_for(lambda: rest.message(video.id).deleted)


async def test_a_result_over_the_upload_limit_is_re_encoded_or_refused(
        discord_env: EmulatedDiscord, discord_bot: WanbotClient, worker: WorkerHandle,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shrinks: dict[str, list[int]] = {"worker": [], "bot": []}  # the limits each side fitted a clip under

    def counting(side: str, shrink: Callable[[bytes, int], bytes]) -> Callable[[bytes, int], bytes]:
        def counted(data: bytes, max_bytes: int) -> bytes:
            shrinks[side].append(max_bytes)
            return shrink(data, max_bytes)
        return counted

    monkeypatch.setattr(generator.worker, "shrink_with_audio", counting("worker", generator.worker.shrink_with_audio))
    monkeypatch.setattr(bot.settlement, "shrink_with_audio", counting("bot", bot.settlement.shrink_with_audio))
    await worker.start()
    gateway, rest = discord_env.gateway, discord_env.rest
    small = dataclasses.replace(gateway.builder, attachment_size_limit=20_000)
    record = await gateway.interact(discord_bot, small.slash_command(
        ALICE_HERE, "video", string_option("prompt", "sparkling water"), string_option("resolution", "720p")))
    video = await video_message(discord_env, record)
    data = rest.attachment_data(video.attachments[0])
    assert len(data) <= 20_000 and probe_mp4(data).frames == 81

    tiny = dataclasses.replace(gateway.builder, attachment_size_limit=600)
    hopeless = await gateway.interact(discord_bot, tiny.slash_command(
        ALICE_HERE, "video", string_option("prompt", "a waterfall"), string_option("resolution", "720p")))
    notice = await rest.wait_for(lambda: next((m for m in rest.followups(hopeless.token)
                                               if "too large" in m.content), None))
    assert notice.ephemeral and "credits were returned" in notice.content
    view = await discord_bot.service.ledger.view(f"discord:{ALICE['id']}")
    assert (view.balance, view.reserved) == (175, 0)  # the re-encoded one was charged, the hopeless one not
    # The interaction's limit reached the worker with the job, which fitted the clip: the bot encoded nothing.
    assert shrinks == {"worker": [20_000, 600], "bot": []}


async def test_cancel_with_autocomplete_and_the_status_button(discord_env: EmulatedDiscord,
                                                              discord_bot: WanbotClient) -> None:
    gateway, rest = discord_env.gateway, discord_env.rest
    first = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "one")))
    first_job = JOB.search((await answer(discord_env, first)).content).group(1)  # type: ignore[union-attr]
    second = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "video", string_option("prompt", "two")))
    second_job = JOB.search((await answer(discord_env, second)).content).group(1)  # type: ignore[union-attr]
    status = await rest.wait_for(lambda: [m for m in rest.followups(first.token) if not m.ephemeral])
    assert components_of(status[0]) == [f"wanbot:cancel:{first_job}"]

    suggest = await gateway.interact(discord_bot, gateway.builder.autocomplete(
        ALICE_HERE, "cancel", string_option("job", "", focused=True)))
    assert [choice["value"] for choice in suggest.callback["data"]["choices"]] == [second_job, first_job]  # type: ignore[index]
    others = await gateway.interact(discord_bot, gateway.builder.autocomplete(
        MALLORY_HERE, "cancel", string_option("job", "", focused=True)))
    assert others.callback["data"]["choices"] == []  # type: ignore[index]

    pressed = await gateway.interact(discord_bot, gateway.builder.button_click(
        ALICE_HERE, f"wanbot:cancel:{first_job}", rest.message(status[0].id).payload))
    assert pressed.callback["data"]["content"] == f"Job {first_job} cancelled; 10 credits returned."  # type: ignore[index]
    await rest.wait_for(lambda: rest.message(status[0].id).content.endswith("cancelled, credits returned"))
    by_command = await gateway.interact(discord_bot, gateway.builder.slash_command(
        ALICE_HERE, "cancel", string_option("job", second_job)))
    assert (await answer(discord_env, by_command)).content == f"Job {second_job} cancelled; 10 credits returned."
    assert (await discord_bot.service.jobs.get(second_job)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert (await discord_bot.service.ledger.view(f"discord:{ALICE['id']}")).available == 200


async def test_a_job_outliving_its_token_reports_in_the_channel(
        discord_env: EmulatedDiscord, discord_bot: WanbotClient, config: Config, tiny_models: LoadedModels) -> None:
    gateway, rest = discord_env.gateway, discord_env.rest
    slow = WorkerHandle(config, dataclasses.replace(tiny_models, preset=dataclasses.replace(tiny_models.preset,
                                                                                            steps=60)))
    await slow.start()
    try:
        record = await gateway.interact(discord_bot, gateway.builder.slash_command(
            ALICE_HERE, "video", string_option("prompt", "a long sunset")))
        await rest.wait_for(lambda: [m for m in rest.followups(record.token) if not m.ephemeral])
        rest.expire_token(record.token)  # 15 minutes pass: Discord refuses the token from now on
        posted = await rest.wait_for(lambda: next((m for m in rest.channel_messages(CHANNEL_ID)
                                                   if m.attachments and not m.payload.get("webhook_id")), None),
                                     timeout=60)
        assert "a long sunset" in posted.content and f"<@{ALICE['id']}>" in posted.content
        assert probe_mp4(rest.attachment_data(posted.attachments[0])).frames == 81
    finally:
        await slow.stop()


async def test_commands_are_synced_only_on_request(discord_env: EmulatedDiscord, discord_config: Config,
                                                   discord_bot: WanbotClient) -> None:
    assert discord_env.rest.command_syncs == []  # starting the bot synced nothing
    async with open_service(discord_config) as service:
        count = await sync_commands(build_client(service), discord_config.discord.token.get_secret_value(),
                                    int(GUILD_ID))
    assert discord_env.rest.command_syncs == [GUILD_ID]
    names = {command["name"] for command in discord_env.rest.commands(GUILD_ID)}
    assert names == {"video", "balance", "queue", "cancel", "help", "admin"} and count == 6
    admin = next(command for command in discord_env.rest.commands(GUILD_ID) if command["name"] == "admin")
    assert str(admin["default_member_permissions"]) == "8"  # Administrator: hidden from members by default


async def test_the_audio_option_gives_a_video_with_sound(discord_env: EmulatedDiscord, discord_config: Config,
                                                         tiny_models_with_audio: LoadedModels) -> None:
    sound = discord_config.model_copy(update={"generator": discord_config.generator.model_copy(
        update={"audio": "tiny"})})
    worker = WorkerHandle(sound, tiny_models_with_audio)
    await worker.start()
    try:
        async with running_discord(sound) as client:
            record = await discord_env.gateway.interact(client, discord_env.gateway.builder.slash_command(
                ALICE_HERE, "video", string_option("prompt", "surf at dusk"), boolean_option("audio", True)))
            assert "🔊" in (await answer(discord_env, record)).content
            video = await video_message(discord_env, record)
            audio = probe_audio(discord_env.rest.attachment_data(video.attachments[0]))
            assert audio is not None and audio.channels == 2
    finally:
        await worker.stop()
