"""The Bot API emulator, driven by python-telegram-bot's real `telegram.Bot` and `Application` over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import os
import time
from collections.abc import AsyncIterator
from io import BytesIO

import httpx
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.emulators.telegram_bot_api import ApiChat, ApiUser, BotApiEmulator, CallbackAnswer

ALICE = ApiUser(1001, "Alice", username="alice")
BOB = ApiUser(1002, "Bob")
DM = ApiChat.private(ALICE)
GROUP = ApiChat.supergroup(-1001234567890, "Render farm")
CANCEL = InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data="cancel:job1")]])
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(4000)


@pytest.fixture
async def api() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as api:
        api.add_chat(DM)
        api.add_chat(GROUP)
        yield api


@pytest.fixture
async def bot(api: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
        yield bot


def png(width: int, height: int) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_get_me_answers_as_the_bot_and_urls_take_the_token(api: BotApiEmulator, bot: Bot) -> None:
    assert (bot.id, bot.username) == (123456789, "wanbot_test_bot")
    assert bot.base_url == f"{api.base_url}{api.token}"
    assert bot.base_file_url == f"{api.base_file_url}{api.token}"
    [call] = api.calls("getMe")
    assert call.ok
    assert call.response == {"ok": True, "result": api.bot_user}


async def test_a_wrong_token_is_unauthorized(api: BotApiEmulator) -> None:
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with Bot("42:wrong", base_url=api.base_url, base_file_url=api.base_file_url):
            pass
    [call] = api.calls("getMe")
    assert call.response == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_send_message_numbers_messages_per_chat_and_echoes_the_inline_keyboard(
    api: BotApiEmulator, bot: Bot
) -> None:
    first = await bot.send_message(DM.id, "Queued", reply_markup=CANCEL)
    second = await bot.send_message(DM.id, "  Done  ")
    in_group = await bot.send_message(GROUP.id, "hello")

    assert (first.message_id, second.message_id, in_group.message_id) == (1, 2, 1)
    assert first.from_user.id == bot.id and first.from_user.is_bot
    assert (first.chat.id, first.chat.type, in_group.chat.title) == (DM.id, "private", "Render farm")
    assert first.reply_markup == CANCEL
    assert second.text == "Done"  # Telegram trims text
    assert [message.text for message in api.sent(DM.id)] == ["Queued", "Done"]
    call = api.calls("sendMessage")[0]
    assert call.params == {
        "chat_id": DM.id,
        "text": "Queued",
        "reply_markup": {"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel:job1"}]]},
    }
    assert api.sent(DM.id)[0].callback_data == ["cancel:job1"]


async def test_send_message_refuses_what_telegram_refuses(api: BotApiEmulator, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "who?")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(DM.id, "   ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(DM.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="x" * 65)]])
        await bot.send_message(DM.id, "hi", reply_markup=too_long)
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(DM.id, "re", reply_to_message_id=77)
    assert api.sent(DM.id) == []
    # 4096 UTF-16 units fit; an emoji counts two
    assert await bot.send_message(DM.id, "🦊" * 2048)


async def test_replies_nest_the_replied_message_one_level_deep(api: BotApiEmulator, bot: Bot) -> None:
    photo = api.photo_message(ALICE, DM, api.add_photo(png(64, 48)), caption="a fox")
    question = api.text_message(ALICE, DM, "/video a fox", reply_to=photo)
    answer = await bot.send_message(DM.id, "Queued", reply_to_message_id=question["message"]["message_id"])
    assert answer.reply_to_message.text == "/video a fox"
    assert answer.reply_to_message.reply_to_message is None
    assert "reply_to_message" not in answer.api_kwargs


async def test_edits_return_the_message_and_keep_every_version(api: BotApiEmulator, bot: Bot) -> None:
    status = await bot.send_message(DM.id, "Queued", reply_markup=CANCEL)

    edited = await bot.edit_message_text("Rendering 10%", DM.id, status.message_id, reply_markup=CANCEL)
    assert (edited.message_id, edited.text, edited.reply_markup) == (status.message_id, "Rendering 10%", CANCEL)
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Rendering 10%", DM.id, status.message_id, reply_markup=CANCEL)

    without_keyboard = await bot.edit_message_text("Rendering 10%", DM.id, status.message_id)
    assert without_keyboard.reply_markup is None
    back = await bot.edit_message_reply_markup(DM.id, status.message_id, reply_markup=CANCEL)
    assert back.reply_markup == CANCEL
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(DM.id, status.message_id, reply_markup=CANCEL)

    stored = api.message(DM.id, status.message_id)
    assert [(version["text"], "reply_markup" in version) for version in stored.versions] == [
        ("Queued", True),
        ("Rendering 10%", True),
        ("Rendering 10%", False),
        ("Rendering 10%", True),
    ]
    assert len(stored.edits) == 3

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", DM.id, 99)
    with pytest.raises(BadRequest, match="There is no caption in the message to edit"):
        await bot.edit_message_caption(DM.id, status.message_id, caption="x")
    users = api.text_message(ALICE, DM, "hello")["message"]
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("hijacked", DM.id, users["message_id"])


async def test_edit_caption_of_a_video(api: BotApiEmulator, bot: Bot) -> None:
    sent = await bot.send_video(DM.id, MP4, caption="Done: a fox", filename="fox.mp4")
    edited = await bot.edit_message_caption(DM.id, sent.message_id, caption="Done: a fox (expired)")
    assert (edited.caption, edited.video.file_id) == ("Done: a fox (expired)", sent.video.file_id)
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await bot.edit_message_text("x", DM.id, sent.message_id)
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.edit_message_caption(DM.id, sent.message_id, caption="y" * 1025)
    removed = await bot.edit_message_caption(DM.id, sent.message_id)
    assert removed.caption is None


async def test_delete_message_flags_it_and_then_it_is_gone(api: BotApiEmulator, bot: Bot) -> None:
    status = await bot.send_message(DM.id, "Queued")
    assert await bot.delete_message(DM.id, status.message_id) is True
    assert api.sent(DM.id)[0].deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(DM.id, status.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", DM.id, status.message_id)


async def test_chat_actions_are_recorded_and_checked(api: BotApiEmulator, bot: Bot) -> None:
    assert await bot.send_chat_action(DM.id, ChatAction.UPLOAD_VIDEO) is True
    assert await bot.send_chat_action(GROUP.id, ChatAction.TYPING) is True
    assert (api.chat_actions(DM.id), api.chat_actions(GROUP.id)) == (["upload_video"], ["typing"])
    with pytest.raises(BadRequest, match="Wrong parameter action in request"):
        await bot.send_chat_action(DM.id, "dancing")


async def test_commands_are_kept_per_scope_and_language(api: BotApiEmulator, bot: Bot) -> None:
    assert await bot.set_my_commands([("video", "Make a video"), ("balance", "Show your credits")]) is True
    assert await bot.set_my_commands([("video", "Ein Video")], language_code="de") is True
    assert await bot.set_my_commands([("admin", "Admin tools")], scope=BotCommandScopeAllGroupChats()) is True

    default = (BotCommand("video", "Make a video"), BotCommand("balance", "Show your credits"))
    assert await bot.get_my_commands() == default
    assert await bot.get_my_commands(language_code="de") == (BotCommand("video", "Ein Video"),)
    assert await bot.get_my_commands(scope=BotCommandScopeAllGroupChats()) == (BotCommand("admin", "Admin tools"),)
    assert api.commands({"type": "all_group_chats"}) == [{"command": "admin", "description": "Admin tools"}]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("Video", "upper case is not allowed")])
    with pytest.raises(BadRequest, match=r"(?i)command description must be non-empty"):
        await bot.set_my_commands([("video", " ")])


async def test_send_video_uploads_multipart_and_keeps_the_bytes(api: BotApiEmulator, bot: Bot) -> None:
    sent = await bot.send_video(
        DM.id,
        MP4,
        filename="fox.mp4",
        caption="Done: a fox",
        width=832,
        height=480,
        duration=5,
        supports_streaming=True,
        reply_markup=CANCEL,
    )
    video = sent.video
    assert (video.width, video.height, video.file_size) == (832, 480, len(MP4))
    assert (video.mime_type, video.file_name, sent.caption, sent.reply_markup) == (
        "video/mp4",
        "fox.mp4",
        "Done: a fox",
        CANCEL,
    )
    [stored] = api.videos(DM.id)
    assert stored.file is not None and stored.file.data == MP4
    assert stored.video == sent.video.to_dict()
    assert stored.video["duration"] == 5

    [call] = api.calls("sendVideo")
    upload = call.files["video"]
    assert (upload.filename, upload.content_type, upload.data) == ("fox.mp4", "video/mp4", MP4)
    assert "video" not in call.params
    assert call.params["width"] == 832 and call.params["supports_streaming"] is True
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel:job1"}]]}

    again = await bot.send_video(GROUP.id, video.file_id, caption="shared")
    assert (again.video.file_unique_id, again.video.width) == (video.file_unique_id, 832)
    assert api.videos(GROUP.id)[0].file.data == MP4
    assert api.calls("sendVideo")[1].files == {}

    file = await bot.get_file(video.file_id)
    assert file.file_path == f"{api.base_file_url}{api.token}/videos/file_1.mp4"
    assert bytes(await file.download_as_bytearray()) == MP4
    assert api.downloads == ["videos/file_1.mp4"]


async def test_send_video_refuses_what_telegram_refuses(api: BotApiEmulator, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_video(DM.id, MP4, caption="c" * 1025)
    with pytest.raises(BadRequest, match="Wrong file identifier/http url specified"):
        await bot.send_video(DM.id, "no-such-file-id")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="é" * 33)]])  # 66 bytes
        await bot.send_video(DM.id, MP4, reply_markup=keyboard)
    assert api.videos(DM.id) == []
    assert [call.status for call in api.calls("sendVideo")] == [400, 400, 400]


async def test_send_document(api: BotApiEmulator, bot: Bot) -> None:
    sent = await bot.send_document(DM.id, b"frame,ms\n1,33\n", filename="timings.csv", caption="timings")
    assert (sent.document.file_name, sent.document.mime_type, sent.caption) == ("timings.csv", "text/csv", "timings")
    assert api.documents(DM.id)[0].file.data == b"frame,ms\n1,33\n"
    file = await bot.get_file(sent.document.file_id)
    assert file.file_path.endswith("/documents/file_1.csv")


async def test_users_photos_and_documents_are_fetched_with_get_file(api: BotApiEmulator, bot: Bot) -> None:
    image = png(1280, 720)
    sizes = api.add_photo(image)
    assert [(size["width"], size["height"]) for size in sizes] == [(90, 51), (320, 180), (800, 450), (1280, 720)]
    api.push_update(api.photo_message(ALICE, DM, sizes, caption="/video@wanbot_test_bot a fox --ar 16:9"))
    pdf_id, _ = api.add_file(b"%PDF-1.4 reference", file_name="ref.pdf")
    api.push_update(api.document_message(ALICE, DM, pdf_id, "ref.pdf", "application/pdf", caption="style"))

    photo_update, document_update = await bot.get_updates()
    message = photo_update.message
    assert message.caption_entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 22),)
    largest = await message.photo[-1].get_file()
    assert bytes(await largest.download_as_bytearray()) == image
    smallest = await message.photo[0].get_file()
    with Image.open(BytesIO(await smallest.download_as_bytearray())) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (90, 51))

    document = document_update.message.document
    assert (document.file_name, document.mime_type, document.file_size) == ("ref.pdf", "application/pdf", 18)
    fetched = await document.get_file()
    assert bytes(await fetched.download_as_bytearray()) == b"%PDF-1.4 reference"
    assert fetched.file_path.endswith("/documents/file_5.pdf")


async def test_get_file_refuses_big_and_unknown_files(api: BotApiEmulator, bot: Bot) -> None:
    big_id, _ = api.add_file(b"pretend this is 25 MB", file_size=25 * 1024 * 1024)
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big_id)
    video_id, _ = api.add_file(b"a long video")
    api.push_update(api.document_message(ALICE, DM, video_id, "long.mp4", "video/mp4", 21 * 1024 * 1024))
    [update] = await bot.get_updates()
    assert update.message.document.file_size == 21 * 1024 * 1024
    with pytest.raises(BadRequest, match="File is too big"):
        await update.message.document.get_file()
    with pytest.raises(BadRequest, match="Invalid file id"):
        await bot.get_file("nope")


async def test_downloads_need_the_right_token_and_path(api: BotApiEmulator) -> None:
    api.add_file(b"data")
    async with httpx.AsyncClient() as client:
        good = await client.get(f"{api.base_file_url}{api.token}/documents/file_1")
        wrong_token = await client.get(f"{api.base_file_url}1:bad/documents/file_1")
        missing = await client.get(f"{api.base_file_url}{api.token}/documents/file_2")
    assert (good.status_code, good.content) == (200, b"data")
    assert wrong_token.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert missing.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_get_updates_keeps_updates_until_an_offset_confirms_them(api: BotApiEmulator, bot: Bot) -> None:
    ids = [api.push_update(api.text_message(ALICE, DM, f"message {n}")) for n in range(3)]
    assert ids == [1, 2, 3]

    assert [update.update_id for update in await bot.get_updates(limit=2)] == [1, 2]
    assert [update.update_id for update in await bot.get_updates(limit=2)] == [1, 2]  # not confirmed yet
    [third] = await bot.get_updates(offset=3)
    assert (third.update_id, third.message.text, third.message.message_id) == (3, "message 2", 3)
    assert [update["update_id"] for update in api.pending_updates] == [3]
    assert await bot.get_updates(offset=4) == ()
    assert api.pending_updates == []

    for n in range(3):
        api.push_update(api.text_message(BOB, GROUP, f"group {n}"))
    [last] = await bot.get_updates(offset=-1)
    assert (last.update_id, last.message.text) == (6, "group 2")
    assert [update["update_id"] for update in api.pending_updates] == [6]


async def test_get_updates_long_polls(api: BotApiEmulator, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3

    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for(lambda: api.calls("getUpdates")[1:])
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    api.push_update(api.text_message(ALICE, DM, "/start"))
    [update] = await poll
    assert update.message.text == "/start"
    assert time.monotonic() - started < 1
    assert api.calls("getUpdates")[1].params == {"timeout": 10}


async def test_an_update_can_be_delivered_again(api: BotApiEmulator, bot: Bot) -> None:
    update = api.text_message(ALICE, DM, "/video a fox")
    update_id = api.push_update(update)
    [first] = await bot.get_updates()
    assert await bot.get_updates(offset=update_id + 1) == ()

    api.push_update(update, update_id=update_id)  # the bot crashed before its offset reached Telegram
    [again] = await bot.get_updates()
    assert (again.update_id, again.message.message_id) == (first.update_id, first.message.message_id)
    with pytest.raises(ValueError, match="already queued"):
        api.push_update(update, update_id=update_id)
    assert api.push_update(api.text_message(ALICE, DM, "next")) == update_id + 1


async def test_allowed_updates_filters_and_is_remembered(api: BotApiEmulator, bot: Bot) -> None:
    status = await bot.send_message(DM.id, "Queued", reply_markup=CANCEL)
    api.push_update(api.text_message(ALICE, DM, "hello"))
    api.push_update(api.callback_query(ALICE, api.message(DM.id, status.message_id), "cancel:job1"))

    [update] = await bot.get_updates(allowed_updates=["callback_query"])
    assert update.callback_query.data == "cancel:job1"
    assert api.calls("getUpdates")[0].params["allowed_updates"] == ["callback_query"]
    api.push_update(api.text_message(ALICE, DM, "ignored too"))
    assert [update.update_id for update in await bot.get_updates()] == [2]


async def test_a_second_poller_ends_the_first_with_conflict(api: BotApiEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for(lambda: api.calls("getUpdates"))
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_delete_webhook_can_drop_pending_updates(api: BotApiEmulator, bot: Bot) -> None:
    api.push_update(api.text_message(ALICE, DM, "old"))
    assert await bot.delete_webhook() is True
    assert len(api.pending_updates) == 1
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert api.pending_updates == []


async def test_callback_queries_are_answered_once(api: BotApiEmulator, bot: Bot) -> None:
    status = await bot.send_message(DM.id, "Rendering", reply_markup=CANCEL)
    stored = api.message(DM.id, status.message_id)
    api.push_update(api.callback_query(ALICE, stored, "cancel:job1"))
    [update] = await bot.get_updates()
    query = update.callback_query
    assert (query.from_user.id, query.message.message_id, query.message.reply_markup) == (
        ALICE.id,
        status.message_id,
        CANCEL,
    )
    assert query.chat_instance

    assert await query.answer("Cancelled", show_alert=True) is True
    assert api.callback_answers == [CallbackAnswer(query.id, "Cancelled", True, None, 0)]
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()
    with pytest.raises(ValueError, match="no button"):
        api.callback_query(ALICE, stored, "delete:everything")


async def test_update_builders_write_what_telegram_sends(api: BotApiEmulator, bot: Bot) -> None:
    update = api.text_message(ALICE, DM, "/video a fox")
    assert update == {
        "message": {
            "message_id": 1,
            "from": {"id": 1001, "is_bot": False, "first_name": "Alice", "username": "alice"},
            "chat": {"id": 1001, "type": "private", "first_name": "Alice", "username": "alice"},
            "date": update["message"]["date"],
            "text": "/video a fox",
            "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
        }
    }
    assert abs(update["message"]["date"] - time.time()) < 5

    def commands(text: str) -> list[tuple[int, int]]:
        entities = api.text_message(BOB, GROUP, text)["message"].get("entities", [])
        return [(entity["offset"], entity["length"]) for entity in entities]

    assert commands("🦊 /video@wanbot_test_bot fox") == [(3, 22)]  # the fox is two UTF-16 units
    assert commands("/help /balance") == [(0, 5), (6, 8)]
    assert commands("no/command, //twice, /x@ab, https://host/start") == []

    group_update = api.text_message(BOB, GROUP, "/video@wanbot_test_bot a fox")
    assert group_update["message"]["chat"] == {"id": GROUP.id, "type": "supergroup", "title": "Render farm"}
    assert group_update["message"]["from"] == {"id": 1002, "is_bot": False, "first_name": "Bob"}
    parsed = Update.de_json({"update_id": 1, **group_update}, bot)
    handler = CommandHandler("video", lambda update, context: None)
    assert handler.check_update(parsed)
    assert handler.check_update(Update.de_json({"update_id": 2, **update}, bot))

    photo = api.photo_message(ALICE, DM, api.add_photo(png(100, 50)), caption="/video the same, but at night")
    reply = api.text_message(ALICE, DM, "/video again", reply_to=photo)
    nested = reply["message"]["reply_to_message"]
    assert nested == photo["message"]
    assert [(size["width"], size["height"]) for size in nested["photo"]] == [(90, 45), (100, 50)]
    assert nested["caption_entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    reply_to_reply = api.text_message(ALICE, DM, "and again", reply_to=reply)
    assert "reply_to_message" not in reply_to_reply["message"]["reply_to_message"]
    assert [message.message_id for message in api.messages(DM.id)] == [1, 2, 3, 4]


async def test_unknown_methods_answer_404_and_are_recorded(api: BotApiEmulator, bot: Bot) -> None:
    with pytest.raises(InvalidToken, match="Not Found: method not found"):  # PTB reads any 404 as a bad token
        await bot.send_poll(DM.id, "Which preset?", ["fast", "quality"])
    [call] = api.unsupported_calls
    assert (call.method, call.params["question"]) == ("sendPoll", "Which preset?")
    assert call.params["options"] == '[{"text": "fast"}, {"text": "quality"}]'  # undecoded: unknown to the emulator
    assert call.response == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


async def test_json_query_and_form_bodies_and_method_case(api: BotApiEmulator) -> None:
    url = f"{api.base_url}{api.token}"
    keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    async with httpx.AsyncClient() as client:
        as_json = await client.post(
            f"{url}/sendMessage", json={"chat_id": DM.id, "text": "json", "reply_markup": keyboard}
        )
        as_query = await client.get(f"{url}/sendmessage", params={"chat_id": str(DM.id), "text": "query"})
        as_form = await client.post(f"{url}/SENDMESSAGE", data={"chat_id": str(DM.id), "text": "42"})
        broken = await client.post(f"{url}/sendMessage", content=b"{", headers={"Content-Type": "application/json"})
        bad_markup = await client.post(f"{url}/sendMessage", data={"chat_id": DM.id, "text": "x", "reply_markup": "{"})
    assert as_json.json()["result"]["reply_markup"] == keyboard
    assert as_query.json()["result"]["text"] == "query"
    assert as_form.json()["result"]["text"] == "42"  # a text that looks like a number stays text
    assert broken.status_code == 400 and broken.json()["ok"] is False
    assert bad_markup.json()["description"] == "Bad Request: can't parse reply keyboard markup JSON object"
    assert api.calls()[-1].params == {"chat_id": DM.id, "text": "x", "reply_markup": "{"}
    assert [call.method for call in api.calls()] == ["sendMessage"] * 5
    assert [message.text for message in api.sent(DM.id)] == ["json", "query", "42"]


# RetryAfter's own constructor reads its deprecated int-valued retry_after
@pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")
async def test_injected_failures_answer_like_telegram_then_clear(api: BotApiEmulator, bot: Bot) -> None:
    api.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter, match="Retry in 3"):
        await bot.send_message(DM.id, "flood")
    assert api.calls("sendMessage")[0].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert api.sent(DM.id) == []
    assert (await bot.send_message(DM.id, "after the wait")).message_id == 1

    api.fail("sendVideo", status=500)
    api.fail("sendVideo", status=502, times=2)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_video(DM.id, MP4)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_video(DM.id, MP4)
    assert (await bot.send_video(DM.id, MP4)).video.file_size == len(MP4)
    assert [call.status for call in api.calls("sendVideo")] == [500, 502, 502, 200]


async def test_a_delayed_call_times_the_client_out_but_still_takes_effect(api: BotApiEmulator, bot: Bot) -> None:
    api.delay("sendMessage", 0.6)
    with pytest.raises(TimedOut):
        await bot.send_message(DM.id, "slow", read_timeout=0.1)
    assert api.sent(DM.id) == []
    [message] = await api.wait_for(lambda: api.sent(DM.id), timeout=5)
    assert message.text == "slow"
    assert (await bot.send_message(DM.id, "fast", read_timeout=0.5)).message_id == 2


async def test_wait_for_gives_up_with_the_recent_calls(api: BotApiEmulator, bot: Bot) -> None:
    await bot.send_message(DM.id, "hello")
    with pytest.raises(TimeoutError, match=r'(?s)sendMessage \{"chat_id": 1001, "text": "hello"\} -> 200'):
        await api.wait_for(lambda: api.videos(DM.id), timeout=0.2)


async def test_uploads_over_the_limit_are_refused_with_413() -> None:
    async with (
        BotApiEmulator(upload_limit=64 * 1024) as api,
        Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot,
    ):
        api.add_chat(DM)
        with pytest.raises(NetworkError, match="Request Entity Too Large"):
            await bot.send_video(DM.id, os.urandom(256 * 1024))
        assert api.calls("sendVideo")[0].status == 413
        assert (await bot.send_video(DM.id, MP4)).video.file_size == len(MP4)


async def test_an_application_polls_handles_a_command_and_confirms_it(api: BotApiEmulator) -> None:
    async def video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"Queued: {' '.join(context.args)}", reply_markup=CANCEL)

    app = ApplicationBuilder().token(api.token).base_url(api.base_url).base_file_url(api.base_file_url).build()
    app.add_handler(CommandHandler("video", video))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=1))
        command = api.text_message(ALICE, DM, "/video a red fox")
        api.push_update(command)
        [reply] = await api.wait_for(lambda: api.sent(DM.id), timeout=10)
        await app.updater.stop()
        await app.stop()

    assert (reply.text, reply.callback_data) == ("Queued: a red fox", ["cancel:job1"])
    assert api.pending_updates == []  # the updater's last getUpdates confirmed the offset
    assert api.calls("deleteWebhook") and api.calls("getMe")
