"""wanbot on Telegram, end to end: the real python-telegram-bot client against the Bot API emulator,
a real redis-server, the SQLite ledger and an arq worker running the tiny Wan pipelines."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bot.jobstore import JobState
from bot.service import BotService
from generator.contract.config import Config
from generator.contract.encode import probe_mp4
from generator.contract.mux import probe_audio
from generator.engine.loader import LoadedModels
from tests.conftest import WorkerHandle, settled
from tests.emulators.telegram_bot_api import ApiChat, BotApiEmulator, StoredMessage
from tests.telegram.conftest import ADMIN, ALICE, MALLORY, png, running_telegram, say, send

JOB = re.compile(r"Job ([0-9a-f]{12})")
ADMIN_ACTIONS = [
    "grant telegram:2002 50", "take telegram:2002 5", "quota telegram:2002 daily 300 jobs 1",
    "ban telegram:2002 spam", "unban telegram:2002", "user telegram:2002", "stats", "refund 0123456789ab",
]


def job_id_in(message: StoredMessage) -> str:
    match = JOB.search(message.text or message.caption or "")
    assert match is not None, message.current
    return match.group(1)


async def delivered(api: BotApiEmulator, chat: ApiChat, count: int = 1) -> StoredMessage:
    await api.wait_for(lambda: len(api.videos(chat.id)) >= count)
    return api.videos(chat.id)[count - 1]


async def test_text_to_video_end_to_end(api: BotApiEmulator, telegram: BotService, worker: WorkerHandle) -> None:
    await worker.start()
    chat = ApiChat.private(ALICE)
    answer = await say(api, ALICE, "/video a red fox running through snow --ar 9:16 --seed 7")
    job_id = job_id_in(answer)
    assert "10 credits, 190 left" in answer.text and "seed 7" in answer.text and "queue" in answer.text
    assert answer.callback_data == [f"cancel:{job_id}"]

    video = await delivered(api, chat)
    info = probe_mp4(video.file.data)
    assert (info.width, info.height, info.frames, info.codec, info.faststart) == (32, 64, 81, "h264", True)
    assert "a red fox running through snow" in video.caption and "seed 7" in video.caption
    assert video.callback_data == [f"reroll:{job_id}", f"vary:{job_id}"]
    assert video.current["reply_to_message"]["text"].startswith("/video a red fox")
    send_video = api.calls("sendVideo")[-1]
    assert send_video.params["supports_streaming"] is True and send_video.files["video"].filename.endswith(".mp4")

    status = await api.wait_for(lambda: api.message(chat.id, answer.message_id).text.endswith("delivered")
                                and api.message(chat.id, answer.message_id))
    assert status.reply_markup is None  # the cancel button goes once the job is over
    view = await telegram.ledger.view("telegram:2002")
    assert (view.balance, view.reserved) == (190, 0)


async def test_photo_document_and_reply_to_a_photo_make_image_to_video(
        api: BotApiEmulator, telegram: BotService, worker: WorkerHandle) -> None:
    await worker.start()
    chat = ApiChat.private(ALICE)
    photo = api.add_photo(png(300, 200))
    (answer,) = await send(api, api.photo_message(ALICE, chat, photo, "/video the bird takes off --ar 1:1"), chat)
    assert "image-to-video" in answer.text

    file_id, _ = api.add_file(png(64, 96, (10, 200, 10)), file_name="full.png")
    (second,) = await send(api, api.document_message(ALICE, chat, file_id, "full.png", "image/png",
                                                     caption="/video@wanbot_test_bot leaves fall"), chat)
    assert "image-to-video" in second.text

    picture = api.photo_message(ALICE, chat, api.add_photo(png(90, 90)))
    before = len(api.sent(chat.id))
    api.push_update(picture)  # a photo without a caption gets a nudge
    api.push_update(api.text_message(ALICE, chat, "/video it starts to rain", reply_to=picture))
    # The first two videos may land in between: wait for the two text answers themselves.
    nudge, answer = await api.wait_for(lambda: texts if len(texts := [message for message in api.sent(chat.id)[before:]
                                                                      if message.text]) >= 2 else None)
    assert "caption" in nudge.text and "image-to-video" in answer.text

    await api.wait_for(lambda: len(api.videos(chat.id)) == 3)
    for video in api.videos(chat.id):
        info = probe_mp4(video.file.data)
        assert info.frames == 81 and info.width % 16 == 0 and info.height % 16 == 0
    jobs = [await telegram.jobs.get(job_id_in(video)) for video in api.videos(chat.id)]
    assert all(job is not None and job.payload.has_image for job in jobs)
    assert api.downloads  # the images were fetched through getFile and the file route


async def test_not_enough_credits_is_refused_with_the_numbers(api: BotApiEmulator, telegram: BotService) -> None:
    await telegram.ledger.touch("telegram:2002")
    await telegram.ledger.take("telegram:2002", 195, "test")
    refusal = await say(api, ALICE, "/video a castle --res 720p")
    assert refusal.text == "That needs 25 credits, but only 5 are available."
    assert await telegram.jobs.unfinished("telegram:2002") == []
    assert (await telegram.ledger.view("telegram:2002")).available == 5


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
async def test_admin_commands_are_refused_for_others(api: BotApiEmulator, telegram: BotService, action: str) -> None:
    await telegram.ledger.touch("telegram:2002")
    before = await telegram.ledger.history("telegram:2002", 50)
    reply = await say(api, MALLORY, f"/admin {action}")
    assert reply.text == "Only the bot's admins can do that."
    assert await telegram.ledger.history("telegram:2002", 50) == before


async def test_an_admin_grants_credits_by_account_and_by_reply(api: BotApiEmulator, telegram: BotService) -> None:
    reply = await say(api, ADMIN, "/admin grant telegram:2002 500 contest prize")
    assert reply.text.startswith("Granted 500 credits (telegram:2002).")
    group = ApiChat.group(-4242, "fans")
    asked = api.text_message(ALICE, group, "can I have some credits?")
    api.push_update(asked)
    (answer,) = await send(api, api.text_message(ADMIN, group, "/admin grant 50", reply_to=asked), group)
    assert "Granted 50 credits (telegram:2002)" in answer.text
    entry = (await telegram.ledger.history("telegram:2002", 1))[0]
    assert (entry.delta, entry.actor) == (50, "telegram:1001")
    assert (await telegram.ledger.view("telegram:2002")).balance == 750


async def test_bad_attachments_are_refused_before_anything_is_charged(api: BotApiEmulator,
                                                                      telegram: BotService) -> None:
    chat = ApiChat.private(ALICE)
    pdf, _ = api.add_file(b"%PDF-1.7 not a picture", file_name="notes.pdf")
    (reply,) = await send(api, api.document_message(ALICE, chat, pdf, "notes.pdf", "application/pdf",
                                                    caption="/video make it move"), chat)
    assert "not an image" in reply.text and "application/pdf" in reply.text

    huge, _ = api.add_file(png(), file_name="huge.png")
    (reply,) = await send(api, api.document_message(ALICE, chat, huge, "huge.png", "image/png", 25 * 2**20,
                                                    caption="/video zoom in"), chat)
    assert "25.0 MB" in reply.text and "limit is 20 MB" in reply.text
    assert huge not in str(api.calls("getFile"))  # refused on the declared size, never downloaded

    fake, _ = api.add_file(b"\xff\xd8\xff\xe0 truncated jpeg", file_name="broken.jpg")
    (reply,) = await send(api, api.document_message(ALICE, chat, fake, "broken.jpg", "image/jpeg",
                                                    caption="/video sway"), chat)
    assert "not an image I can read" in reply.text or "damaged" in reply.text

    view = await telegram.ledger.view("telegram:2002")
    assert (view.balance, view.reserved) == (200, 0)
    assert await telegram.jobs.unfinished("telegram:2002") == []


async def test_a_redelivered_update_makes_no_second_job(api: BotApiEmulator, telegram_config: Config) -> None:
    chat = ApiChat.private(ALICE)
    update = api.text_message(ALICE, chat, "/video a quiet lake")
    async with running_telegram(telegram_config) as first:
        update_id = api.push_update(update)
        await api.wait_for(lambda: api.sent(chat.id))
        assert len(await first.jobs.unfinished("telegram:2002")) == 1
    # The bot stopped before Telegram knew; the same update comes again to the next run.
    async with running_telegram(telegram_config) as second:
        api.push_update(update, update_id=update_id)
        await api.wait_for(lambda: not api.pending_updates)
        await say(api, ALICE, "/balance")  # processed after the redelivered one
        assert len(await second.jobs.unfinished("telegram:2002")) == 1
        assert len(api.sent(chat.id)) == 2  # one answer to /video, one to /balance
        assert (await second.ledger.view("telegram:2002")).reserved == 10


async def test_re_roll_after_a_restart(api: BotApiEmulator, telegram_config: Config, worker: WorkerHandle) -> None:
    await worker.start()
    chat = ApiChat.private(ALICE)
    async with running_telegram(telegram_config) as service:
        first_job = job_id_in(await say(api, ALICE, "/video a paper boat --seed 11"))
        video = await delivered(api, chat)
        await settled(service, first_job)  # captured before the bot stops
    async with running_telegram(telegram_config) as restarted:
        before = len(api.callback_answers)
        (answer,) = await send(api, api.callback_query(ALICE, video, f"reroll:{first_job}"), chat)
        assert api.callback_answers[before].text.startswith("🎲")
        assert answer.current["reply_to_message"]["message_id"] == video.message_id
        again = await delivered(api, chat, 2)
        second_job = job_id_in(again)
        await settled(restarted, second_job)
        first, second = await restarted.jobs.get(first_job), await restarted.jobs.get(second_job)
        assert first is not None and second is not None and second_job != first_job
        assert second.request.prompt == first.request.prompt == "a paper boat"
        assert second.payload.seed != 11 and first.payload.seed == 11
        assert (await restarted.ledger.view("telegram:2002")).balance == 180


async def test_vary_asks_for_a_prompt_and_keeps_the_seed(api: BotApiEmulator, telegram: BotService,
                                                         worker: WorkerHandle) -> None:
    await worker.start()
    chat = ApiChat.private(ALICE)
    job_id = job_id_in(await say(api, ALICE, "/video a lighthouse --seed 5 --ar 9:16"))
    video = await delivered(api, chat)
    (question,) = await send(api, api.callback_query(ALICE, video, f"vary:{job_id}"), chat)
    assert question.text.startswith(f"✏️ Vary job {job_id}") and question.reply_markup is None
    (answer,) = await send(api, api.text_message(ALICE, chat, "a lighthouse in a storm", reply_to=question), chat)
    varied = await telegram.jobs.get(job_id_in(answer))
    assert varied is not None
    assert (varied.request.prompt, varied.request.aspect, varied.payload.seed) == \
        ("a lighthouse in a storm", "9:16", 5)


async def test_cancel_by_button_and_by_command(api: BotApiEmulator, telegram: BotService) -> None:
    chat = ApiChat.private(ALICE)
    first = await say(api, ALICE, "/video one")
    second = await say(api, ALICE, "/video two")
    api.push_update(api.callback_query(ALICE, first, f"cancel:{job_id_in(first)}"))
    await api.wait_for(lambda: api.callback_answers)
    assert api.message(chat.id, first.message_id).text.endswith("cancelled, credits returned")
    assert api.callback_answers[-1].text == f"Job {job_id_in(first)} cancelled; 10 credits returned."
    reply = await say(api, ALICE, f"/cancel {job_id_in(second)}")
    assert reply.text == f"Job {job_id_in(second)} cancelled; 10 credits returned."
    assert (await telegram.jobs.get(job_id_in(second))).state is JobState.CANCELLED  # type: ignore[union-attr]
    view = await telegram.ledger.view("telegram:2002")
    assert (view.balance, view.reserved) == (200, 0)
    mallory_presses = api.callback_query(MALLORY, second.versions[0], f"cancel:{job_id_in(second)}")
    api.push_update(mallory_presses)
    await api.wait_for(lambda: api.callback_answers[-1].show_alert)
    assert "no job" in api.callback_answers[-1].text.lower() or "already ended" in api.callback_answers[-1].text


async def test_live_progress_then_cancel_mid_run(api: BotApiEmulator, telegram: BotService, config: Config,
                                                 tiny_models: LoadedModels) -> None:
    slow = WorkerHandle(config, dataclasses.replace(tiny_models, preset=dataclasses.replace(tiny_models.preset,
                                                                                            steps=400)))
    await slow.start()
    try:
        chat = ApiChat.private(ALICE)
        answer = await say(api, ALICE, "/video waves on a beach")
        job_id = job_id_in(answer)
        status = await api.wait_for(lambda: "step" in (api.message(chat.id, answer.message_id).text or "")
                                    and api.message(chat.id, answer.message_id))
        assert re.search(r"[▰▱]+ step \d+/400 · about .+ left", status.text), status.text
        api.push_update(api.callback_query(ALICE, status, f"cancel:{job_id}"))
        await api.wait_for(lambda: api.callback_answers)
        kept = re.fullmatch(rf"Job {job_id} cancelled; (\d+) credits kept for the steps already rendered, "
                            r"(\d+) returned\.", api.callback_answers[-1].text or "")
        assert kept is not None and int(kept.group(1)) + int(kept.group(2)) == 10, api.callback_answers[-1].text
        await api.wait_for(lambda: "cancelled" in (api.message(chat.id, answer.message_id).text or ""))
        assert api.message(chat.id, answer.message_id).text.endswith(f"cancelled, {kept.group(1)} credits kept")
        assert (await telegram.ledger.view("telegram:2002")).available == 200 - int(kept.group(1))
    finally:
        await slow.stop()


async def test_groups_address_commands_to_this_bot(api: BotApiEmulator, telegram: BotService) -> None:
    group = ApiChat.supergroup(-1001234567890, "video club")
    ignored = api.text_message(ALICE, group, "/video@some_other_bot a cat")
    api.push_update(ignored)
    reply = await say(api, ALICE, "/video@wanbot_test_bot a cat on a piano", chat=group)
    assert reply.current["reply_to_message"]["text"].startswith("/video@wanbot_test_bot")  # not the other bot's
    assert len(await telegram.jobs.unfinished("telegram:2002")) == 1
    assert len(api.sent(group.id)) == 1


async def test_help_and_balance(api: BotApiEmulator, telegram: BotService) -> None:
    help_text = (await say(api, ALICE, "/start")).text
    assert "/video" in help_text and "480p 5s = 10" in help_text and "Balance: 200 credits" in help_text
    assert (await say(api, ALICE, "/balance")).text == "Balance: 200 credits. Available: 200."
    assert {command["command"] for command in api.commands()} >= {"video", "balance", "queue", "cancel", "help"}


async def test_the_audio_flag_gives_a_video_with_sound(api: BotApiEmulator, telegram_config: Config,
                                                       tiny_models_with_audio: LoadedModels) -> None:
    sound = telegram_config.model_copy(update={"generator": telegram_config.generator.model_copy(
        update={"audio": "tiny"})})
    worker = WorkerHandle(sound, tiny_models_with_audio)
    await worker.start()
    try:
        async with running_telegram(sound):
            answer = await say(api, ALICE, '/video surf at dusk --sound "waves and gulls"')
            assert "🔊" in answer.text and "15 credits" in answer.text
            video = await delivered(api, ApiChat.private(ALICE))
            audio = probe_audio(video.file.data)
            assert audio is not None and audio.channels == 2 and "🔊" in video.caption
    finally:
        await worker.stop()
