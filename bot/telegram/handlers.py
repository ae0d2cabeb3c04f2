"""Telegram update callbacks: small `(update, context)` functions that parse, call the service, answer.

Every refusal a user can cause (bad flags, no credits, a bad image) is a `Refusal`; the callbacks let
it rise to the one error handler (`on_error`), which sends its sentence back as the answer. Nothing is
queued or charged before the service says so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from telegram import ForceReply, Message, Update
from telegram import User as TelegramUser
from telegram.constants import ChatID
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.commands import Message as CommandMessage
from bot.commands import help_text, run_text, split_command
from bot.errors import UserError
from bot.frontend import User
from bot.messages import as_typed, cancelled_text, submitted_text
from bot.requests import VideoRequest, parse_video_options
from bot.service import BotService, Submitted
from bot.telegram.buttons import CANCEL, REROLL, VARY, parse_callback, status_buttons
from bot.telegram.frontend import TelegramFrontEnd, chat_reply_to
from bot.telegram.images import ImageFile, download, image_for
from generator.contract.errors import Refusal

logger = logging.getLogger("wanbot.telegram")

DEPS = "wanbot"
VARY_PROMPT = re.compile(r"^✏️ Vary job ([0-9a-f]{12})")
# Senders Telegram shows in place of the person: anonymous group admins, posts "as a channel",
# and channel posts forwarded into a linked group. One id is shared by everyone behind it.
SHARED_SENDERS = frozenset({ChatID.ANONYMOUS_ADMIN, ChatID.FAKE_CHANNEL, ChatID.SERVICE_CHAT})
ANONYMOUS = ("You're posting as the group or as a channel, so I can't tell who you are, and credits and "
             "jobs belong to a person. Please send the command as yourself.")


@dataclass
class TelegramDeps:
    """The shared objects every callback uses, kept in `application.bot_data`."""

    service: BotService
    frontend: TelegramFrontEnd
    download_limit_bytes: int


def deps(context: ContextTypes.DEFAULT_TYPE) -> TelegramDeps:
    found: TelegramDeps = context.bot_data[DEPS]
    return found


def user_of(telegram_user: TelegramUser) -> User:
    return User("telegram", str(telegram_user.id), telegram_user.full_name)


def is_person(message: Message) -> bool:
    """A message sent by a person under their own id (not hidden behind a group or channel)."""
    sender = message.from_user
    return (message.sender_chat is None and sender is not None and not sender.is_bot
            and sender.id not in SHARED_SENDERS)


def sender_of(context: ContextTypes.DEFAULT_TYPE, message: Message) -> User:
    """The person who sent a command (the caller admits them through the rate limiter).

    Anonymous admins and channel identities are refused, rate limited by the chat they hide behind
    so the refusals cannot flood either: they would otherwise share one account across every group.
    """
    if not is_person(message):
        hider = message.sender_chat.id if message.sender_chat is not None else message.chat_id
        deps(context).service.admit(User("telegram", f"anonymous:{hider}"))
        raise UserError(ANONYMOUS)
    assert message.from_user is not None
    return user_of(message.from_user)


def chat_key(chat_id: int) -> str:
    return f"telegram:{chat_id}"


async def drop_seen_updates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: an update delivered again (same update_id) is ignored."""
    if not await deps(context).service.seen.first_time(f"telegram:{context.bot.id}:{update.update_id}"):
        logger.info("update %d was handled before: ignored", update.update_id)
        raise ApplicationHandlerStop


async def video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/video <prompt> [flags]`, as text or as the caption of an image, or as a reply to an image."""
    message = update.effective_message
    assert message is not None
    parsed = split_command(message.text or message.caption or "")
    if parsed is None or not _addressed_to_us(message.text or message.caption or "", context.bot.username):
        return
    user = sender_of(context, message)
    await deps(context).service.admit_video(user)  # before the download: a banned user's file is never fetched
    options = parse_video_options(parsed[1])
    found = image_for(message)
    image = await _download(context, found)
    reply_to = chat_reply_to(message.chat_id, message.chat.type, message.message_id,
                             found.file_id if found else None)
    submitted = await deps(context).service.submit(user, options, reply_to, image)
    await _answer_submitted(context, message, submitted, image is not None)


async def text_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/balance, /queue, /cancel, /admin: the shared command words, answered as text."""
    message = update.effective_message
    assert message is not None and message.text is not None
    user = sender_of(context, message)
    replied = message.reply_to_message
    target = f"telegram:{replied.from_user.id}" if replied and replied.from_user and is_person(replied) else None
    reply = await run_text(deps(context).service, CommandMessage(user, message.text, target_account=target))
    if reply:
        await message.reply_text(reply, do_quote=True)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: commands, flags, prices and the user's balance."""
    message = update.effective_message
    assert message is not None
    user = sender_of(context, message)
    deps(context).service.admit(user)
    text = await help_text(deps(context).service, user)
    await message.reply_text(text + "\nSend a photo with the caption /video <prompt> to animate it.")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Re-roll, vary and cancel buttons; each query is answered at once, then the work happens."""
    query = update.callback_query
    assert query is not None
    parsed = parse_callback(query.data)
    if parsed is None or not isinstance(query.message, Message):
        await query.answer()
        return
    action, job_id = parsed
    service = deps(context).service
    user = user_of(query.from_user)
    service.admit(user)
    if action == CANCEL:
        record = await service.cancel(user, job_id)
        await query.answer(cancelled_text(record))
        return
    record = await service.job_to_repeat(job_id, user, chat_key(query.message.chat_id))
    if action == REROLL:
        await query.answer("🎲 Re-rolling with a new seed…")
        await _start_variant(context, query.message, user, record.reply_to.get("image_file_id"),
                             service.variant(record))
    elif action == VARY:
        await query.answer()
        await query.message.reply_text(
            f"✏️ Vary job {record.job_id}: reply to this message with a changed prompt (flags optional; "
            f"the rest stays as it was, same seed).\nWas: {as_typed(record.prompt, 'telegram')}",
            reply_markup=ForceReply(selective=True, input_field_placeholder=record.prompt[:64]),
            do_quote=True,
        )


async def vary_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to our “Vary job …” question: the earlier request with the new prompt."""
    message = update.effective_message
    assert message is not None and message.text is not None
    asked = message.reply_to_message
    match = VARY_PROMPT.match(asked.text or "") if asked and asked.from_user and asked.from_user.id == context.bot.id \
        else None
    if match is None:
        return
    service = deps(context).service
    user = sender_of(context, message)
    service.admit(user)
    record = await service.job_to_repeat(match.group(1), user, chat_key(message.chat_id))
    await _start_variant(context, message, user, record.reply_to.get("image_file_id"),
                         service.variant(record, prompt=message.text))


async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private chats only: a nudge towards the commands instead of silence (rate limited like a command)."""
    message = update.effective_message
    if message is None:
        return
    deps(context).service.admit(sender_of(context, message))
    if message.photo or message.document:
        text = "To animate this image, send it again with the caption /video <what should happen>."
    elif message.text and message.text.startswith("/"):
        text = f"Unknown command {message.text.split()[0]}. Try /help."
    else:
        text = "Send /video <prompt> to make a video, or /help for everything I can do."
    await message.reply_text(text)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one error handler: a Refusal is answered with its sentence (a button with an alert; a quiet one
    minimally: a button is always answered), anything else logged with the update's ids and a short apology."""
    error = context.error
    query = update.callback_query if isinstance(update, Update) else None
    message = update.effective_message if isinstance(update, Update) else None
    if isinstance(error, Refusal):
        if query is not None:
            await query.answer(None if error.quiet else error.user_message[:200], show_alert=not error.quiet)
        elif message is not None and not error.quiet:
            await message.reply_text(error.user_message, do_quote=True)
        return
    ids = f"update {update.update_id}" if isinstance(update, Update) else "no update"
    logger.error("telegram handler failed (%s)", ids, exc_info=error)
    try:
        if query is not None:
            await query.answer()
        if message is not None:
            await message.reply_text("Sorry, something went wrong on our side. Please try again.")
    except Exception as failure:  # the platform itself is failing: the log has it
        logger.warning("could not send the apology: %s", failure)


async def _start_variant(context: ContextTypes.DEFAULT_TYPE, answer_to: Message, user: User,
                         image_file_id: str | None, request: VideoRequest) -> None:
    image = await _download(context, ImageFile(image_file_id, None)) if image_file_id else None
    reply_to = chat_reply_to(answer_to.chat_id, answer_to.chat.type, answer_to.message_id, image_file_id)
    submitted = await deps(context).service.submit_request(user, request, reply_to, image)
    await _answer_submitted(context, answer_to, submitted, image is not None)


async def _answer_submitted(context: ContextTypes.DEFAULT_TYPE, message: Message, submitted: Submitted,
                            image: bool) -> None:
    """The answer becomes the job's status message, edited as the job moves."""
    job_id = submitted.job.job_id
    answer = await message.reply_text(submitted_text(submitted, image), reply_markup=status_buttons(job_id),
                                      do_quote=True)
    await deps(context).service.attach_status(job_id, {"chat_id": answer.chat_id, "message_id": answer.message_id})


async def _download(context: ContextTypes.DEFAULT_TYPE, image: ImageFile | None) -> bytes | None:
    if image is None:
        return None
    return await download(context.bot, image, deps(context).download_limit_bytes)


def _addressed_to_us(text: str, username: str) -> bool:
    """`/video@otherbot …` in a group is for another bot."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    _, at, name = first.partition("@")
    return not at or name.lower() == username.lower()
