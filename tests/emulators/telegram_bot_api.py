"""A local emulation of the Telegram Bot API over HTTP, for tests that drive the real python-telegram-bot.

`BotApiEmulator` is an aiohttp server on 127.0.0.1 that speaks the Bot API's wire protocol
(https://core.telegram.org/bots/api): ``/bot<token>/<method>`` answers GET and POST with query, JSON,
form-urlencoded or multipart parameters; ``/file/bot<token>/<file_path>`` serves downloads; results come as
``{"ok": true, "result": ...}`` and errors as ``{"ok": false, "error_code": ..., "description": ...,
"parameters": ...}`` with Telegram's own descriptions. Point python-telegram-bot at it with
``ApplicationBuilder().base_url(api.base_url).base_file_url(api.base_file_url)`` (or the same arguments of
``telegram.Bot``) and the library talks HTTP to it exactly as it would to api.telegram.org.

Emulated methods: getMe, getUpdates, deleteWebhook, setMyCommands, getMyCommands, sendMessage, editMessageText,
editMessageCaption, editMessageReplyMarkup, deleteMessage, sendChatAction, sendVideo, sendDocument,
answerCallbackQuery, getFile. Method names are case-insensitive, as on the real server. Any other method answers
404 "Not Found: method not found" and stays in the record (`unsupported_calls`), so a test sees what the bot needed.

What behaves as on Telegram:
- chats the bot may write to are the ones it has heard from (`add_chat`, or any update built here), else
  "chat not found"; message ids grow per chat and are shared by the users' and the bot's messages;
- sent messages come back as full Message objects (``from`` is the bot); text and captions are trimmed of
  surrounding whitespace; only inline keyboards are echoed in ``reply_markup``; replies nest the replied message;
- edits return the edited Message with ``edit_date``, refuse messages that are missing, deleted or not the bot's,
  and refuse an edit that changes nothing ("message is not modified"); an edit without ``reply_markup`` removes
  the inline keyboard, as on Telegram;
- limits: 4096 characters of text, 1024 of caption (UTF-16 code units), 1-64 bytes of callback_data, 20 MB for
  getFile, 50 MB of upload (HTTP 413), command names, chat actions, one answer per callback query;
- getUpdates: ``offset`` confirms (drops) every update below it, a negative offset keeps only the last ones,
  ``limit``, ``timeout`` as long polling, ``allowed_updates`` remembered between calls (by default without
  chat_member and reactions), and a poll superseded by a newer one ends in 409 Conflict, as when two bot
  instances run; ``deleteWebhook(drop_pending_updates=True)`` drops the queue;
- uploads are kept byte for byte, get a file_id that can be sent again and a file_path that getFile and the
  download route serve; users' photos come in several PhotoSizes, smallest first, scaled with Pillow.

Test-facing side (plain Python, in the test's event loop): records of every call, per-chat message state with
every version of each message, callback query answers, chat actions; `wait_for` to await a condition; builders of
updates exactly as Telegram sends them; `push_update` to queue them; `add_file` / `add_photo` to host users' files;
`fail` and `delay` for fault injection.

Left out: parse_mode (text is stored as sent and no entities are derived from HTML or Markdown; explicit
``entities`` are echoed); automatic entities other than bot_command (mentions, URLs, hashtags); webhooks; inline
mode (``inline_message_id``); business connections, topics, media groups, and every media kind the bot might send
other than video and document; thumbnails (recorded with the call, not echoed); sending files by URL; file-type
checks when a file_id is sent again; content sniffing (a non-video sent with sendVideo stays a video); chat
membership and rights (the bot is never blocked or kicked and may delete any message, whatever its age); flood
limits unless injected with `fail`; expiry of callback queries and of file paths.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from io import BytesIO
from pathlib import PurePosixPath
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from aiohttp import web
from PIL import Image

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]
T = TypeVar("T")
WAIT_S = 120.0  # wait_for's hang guard, not a speed check: a busy machine may take a minute over a tiny job

DEFAULT_TOKEN = "123456789:AAEmulatedBotApiTokenForTests_0123456"

CLIENT_CLOSED = 499  # nginx's status for a request whose client went away: recorded, never answered
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
DOWNLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
MAX_COMMANDS = 100
COMMAND_DESCRIPTION_LIMIT = 256
PHOTO_SIDES = (90, 320, 800)
"""Long sides of the smaller copies Telegram makes of a photo, below the largest one."""

CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice", "upload_document",
    "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
UPDATES_OFF_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
BUTTON_ACTIONS = frozenset({
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
})
MEDIA_FIELDS = ("animation", "audio", "document", "photo", "video", "voice")

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a current "
    "content and reply markup of the message"
)
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

# Form bodies carry every value as a string; these say what the Bot API makes of each parameter.
_INT_PARAMS = frozenset({
    "chat_id", "message_id", "offset", "limit", "timeout", "width", "height", "duration", "cache_time",
    "message_thread_id", "reply_to_message_id",
})
_BOOL_PARAMS = frozenset({
    "show_alert", "disable_notification", "protect_content", "supports_streaming", "has_spoiler",
    "drop_pending_updates", "disable_content_type_detection", "allow_sending_without_reply",
    "show_caption_above_media", "allow_paid_broadcast",
})
_JSON_PARAMS = frozenset({
    "reply_markup", "entities", "caption_entities", "allowed_updates", "commands", "scope", "reply_parameters",
    "link_preview_options",
})

# tdlib's rule (MessageEntity.cpp, match_bot_commands): "/" not after a word character, "/", "<" or ">"; 1-64
# command characters; optionally "@" and a 3-32 character bot username; then no word character, "/", "<" or ">".
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>@])")
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class BotApiError(Exception):
    """An error answer of the Bot API; method handlers raise it and the server sends it as JSON."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(reason: str) -> BotApiError:
    return BotApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {reason}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


def bot_command_entities(text: str) -> list[JSONDict]:
    """The bot_command entities Telegram marks in a text or caption, offsets and lengths in UTF-16 units."""
    return [
        {"offset": utf16_len(text[: match.start()]), "length": utf16_len(match.group()), "type": "bot_command"}
        for match in _BOT_COMMAND.finditer(text)
    ]


@dataclass(frozen=True)
class ApiUser:
    """A person who talks to the bot."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None

    def to_json(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class ApiChat:
    """A chat the bot is in. Build one with `private`, `group` or `supergroup`."""

    id: int
    type: Literal["private", "group", "supergroup"]
    title: str | None = None
    first_name: str | None = None
    username: str | None = None

    @classmethod
    def private(cls, user: ApiUser) -> ApiChat:
        """The one-to-one chat of `user` with the bot: its id is the user's."""
        return cls(user.id, "private", first_name=user.first_name, username=user.username)

    @classmethod
    def group(cls, chat_id: int, title: str) -> ApiChat:
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        return cls(chat_id, "group", title=title)

    @classmethod
    def supergroup(cls, chat_id: int, title: str, username: str | None = None) -> ApiChat:
        if chat_id > -1_000_000_000_000:
            raise ValueError("supergroup chat ids look like -100xxxxxxxxxx")
        return cls(chat_id, "supergroup", title=title, username=username)

    def to_json(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "username"):
            if (value := getattr(self, key)) is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request, as received."""

    name: str
    """The form field: the method's parameter ("video") or an attach:// name."""
    filename: str | None
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class Call:
    """One request to a Bot API method."""

    method: str
    """The canonical name ("sendMessage") when the method is emulated, else the name as requested."""
    params: JSONDict
    """Parameters decoded as the Bot API reads them: numbers, booleans and JSON objects already parsed."""
    files: dict[str, UploadedFile]
    received_at: float
    """`time.monotonic()` when the request arrived."""
    status: int | None = None
    """HTTP status of the answer; None while the call is still being served."""
    response: JSONDict | None = None

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK

    def describe(self, now: float) -> str:
        params = json.dumps(self.params, ensure_ascii=False, default=str)
        if len(params) > 300:
            params = params[:297] + "..."
        files = "".join(f" +{upload.name}({len(upload.data)} bytes)" for upload in self.files.values())
        outcome = "in progress" if self.response is None else self.response.get("description", self.status)
        return f"{self.received_at - now:+8.3f}s {self.method} {params}{files} -> {outcome}"


@dataclass
class HostedFile:
    """A file stored on the emulated Telegram: a user's photo or document, or something the bot uploaded."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)
    file_size: int
    """What Telegram claims (getFile, message objects); `add_file` may make it larger than `data`."""
    mime_type: str | None = None
    file_name: str | None = None
    attributes: JSONDict = field(default_factory=dict)
    """Width, height and duration of a video, reused when the file is sent again by file_id."""


@dataclass
class StoredMessage:
    """A message in a chat, with every version it has had."""

    chat_id: int
    message_id: int
    from_bot: bool
    versions: list[JSONDict]
    """Message objects as the Bot API returns them: the original first, the current one last."""
    file: HostedFile | None = None
    """The video, document or (largest) photo the message carries."""
    deleted: bool = False

    @property
    def current(self) -> JSONDict:
        return self.versions[-1]

    @property
    def edits(self) -> list[JSONDict]:
        return self.versions[1:]

    @property
    def text(self) -> str | None:
        return self.current.get("text")

    @property
    def caption(self) -> str | None:
        return self.current.get("caption")

    @property
    def reply_markup(self) -> JSONDict | None:
        return self.current.get("reply_markup")

    @property
    def video(self) -> JSONDict | None:
        return self.current.get("video")

    @property
    def document(self) -> JSONDict | None:
        return self.current.get("document")

    @property
    def callback_data(self) -> list[str]:
        """The callback_data of the inline buttons the message shows now."""
        return _callback_data(self.current)


@dataclass(frozen=True)
class CallbackAnswer:
    """The bot's answerCallbackQuery."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


MessageLike = StoredMessage | Mapping[str, Any]
"""A stored message, a Message object, or an Update carrying one."""


@dataclass
class _Chat:
    info: ApiChat
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    last_message_id: int = 0
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int

    def error(self) -> BotApiError:
        if self.status == HTTPStatus.TOO_MANY_REQUESTS:
            return BotApiError(
                self.status, f"Too Many Requests: retry after {self.retry_after}", {"retry_after": self.retry_after}
            )
        return BotApiError(self.status, HTTPStatus(self.status).phrase)


_Files = dict[str, UploadedFile]
_Handler = Callable[[JSONDict, _Files], Awaitable[Any]]


def _decode_param(name: str, value: Any) -> Any:
    """Reads one parameter the way the Bot API does; form bodies carry every value as a string."""
    if not isinstance(value, str):
        return value
    if name in _INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            if name == "chat_id":  # "@channelusername"
                return value
            raise _bad_request(f"invalid {name} specified") from None
    if name in _BOOL_PARAMS:
        return value.lower() in ("true", "1")
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise _bad_request(f"can't parse {what} JSON object") from None
    return value


def _decode_params(raw: Mapping[str, Any]) -> tuple[JSONDict, BotApiError | None]:
    """Decodes every parameter; one that does not decode stays as sent, and the first such error is returned."""
    params: JSONDict = {}
    failure: BotApiError | None = None
    for name, value in raw.items():
        try:
            params[name] = _decode_param(name, value)
        except BotApiError as error:
            params[name], failure = value, failure or error
    return params, failure


def _update_type(update: Mapping[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def _message_json(message: StoredMessage | Mapping[str, Any]) -> JSONDict:
    """A Message object from a stored message, a Message object or an Update carrying a message."""
    if isinstance(message, StoredMessage):
        return message.current
    if "message_id" not in message and "message" in message:
        return dict(message["message"])
    return dict(message)


def _quoted(message: JSONDict) -> JSONDict:
    """A message as nested in reply_to_message: the Bot API never nests a second level."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _callback_data(message: Mapping[str, Any]) -> list[str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in keyboard for button in row if "callback_data" in button]


def _chat_instance(chat_id: int) -> str:
    """A stable stand-in for Telegram's opaque chat_instance of callback queries."""
    return str((chat_id * 0x9E3779B97F4A7C15) % 2**63)


def _trimmed(params: JSONDict, name: str) -> str | None:
    value = params.get(name)
    return None if value is None else str(value).strip()


def _message_text(params: JSONDict) -> JSONDict:
    text = _trimmed(params, "text")
    if not text:
        raise _bad_request("message text is empty")
    if utf16_len(text) > TEXT_LIMIT:
        raise _bad_request("message is too long")
    content: JSONDict = {"text": text}
    if params.get("entities"):
        content["entities"] = params["entities"]
    return content


def _caption(params: JSONDict) -> JSONDict:
    caption = _trimmed(params, "caption")
    if not caption:
        return {}
    if utf16_len(caption) > CAPTION_LIMIT:
        raise _bad_request("message caption is too long")
    content: JSONDict = {"caption": caption}
    if params.get("caption_entities"):
        content["caption_entities"] = params["caption_entities"]
    return content


def _inline_keyboard(params: JSONDict) -> JSONDict | None:
    """Checks the request's reply_markup; returns it if it is an inline keyboard (the only kind echoed back)."""
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        return None
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for button in (button for row in keyboard for button in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad_request("can't parse inline keyboard button: Field \"text\" must be of type String")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
            raise _bad_request("BUTTON_DATA_INVALID")
        if not BUTTON_ACTIONS & button.keys():
            raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    return markup


def _commands(params: JSONDict) -> list[JSONDict]:
    commands = params.get("commands")
    if not isinstance(commands, list):
        raise _bad_request("can't parse commands JSON object")
    if len(commands) > MAX_COMMANDS:
        raise _bad_request("BOT_COMMANDS_TOO_MUCH")
    for command in commands:
        for key in ("command", "description"):
            if not isinstance(command, dict) or not isinstance(command.get(key), str):
                raise _bad_request(f'can\'t parse BotCommand: Can\'t find field "{key}"')
        if not _COMMAND_NAME.fullmatch(command["command"]):
            raise _bad_request("BOT_COMMAND_INVALID")
        if not command["description"].strip():
            raise _bad_request("command description must be non-empty")
        if len(command["description"]) > COMMAND_DESCRIPTION_LIMIT:
            raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return [{"command": command["command"], "description": command["description"]} for command in commands]


def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), str(language_code or "")


class BotApiEmulator:
    """The emulated Bot API server and everything it has seen. See the module docstring."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "wanbot_test_bot",
        first_name: str = "WanBot",
        upload_limit: int = UPLOAD_LIMIT,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("a bot token looks like 123456789:secret")
        self.token = token
        self.bot_user: JSONDict = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._upload_limit = upload_limit
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        self._changed = asyncio.Event()
        self._calls: list[Call] = []
        self._downloads: list[str] = []
        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, HostedFile] = {}
        self._files_by_path: dict[str, HostedFile] = {}
        self._file_count = 0
        self._updates: list[JSONDict] = []
        self._last_update_id = 0
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._open_callback_queries: set[str] = set()
        self._callback_count = 0
        self._callback_answers: list[CallbackAnswer] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        handlers: dict[str, _Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "sendVideo": self._send_video,
            "sendDocument": self._send_document,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
        }
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler) for name, handler in handlers.items()
        }

    # ---- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Binds a free port on 127.0.0.1 and starts serving."""
        app = web.Application(client_max_size=self._upload_limit)
        app.router.add_get("/bot{token}/{method}", self._serve_method)
        app.router.add_post("/bot{token}/{method}", self._serve_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._serve_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        # A deep accept queue: a burst of new connections must not wait out SYN retransmits (1 s each).
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self._port = self._runner.addresses[0][1]
        self._closing = False
        logger.info("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Ends long polls and delayed calls at once, then closes the server."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._port = None
            logger.info("Bot API emulator stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """For ``base_url``: python-telegram-bot appends the token, then ``/<method>``."""
        return f"{self._origin()}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url``: python-telegram-bot appends the token, then ``/<file_path>`` from getFile."""
        return f"{self._origin()}/file/bot"

    def _origin(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return f"http://127.0.0.1:{self._port}"

    # ---- records ------------------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every call received, in order; only those of `method` (any case) when given."""
        if method is None:
            return list(self._calls)
        return [call for call in self._calls if call.method.lower() == method.lower()]

    @property
    def unsupported_calls(self) -> list[Call]:
        """Calls of methods the emulator does not implement (answered 404)."""
        return [call for call in self._calls if call.method.lower() not in self._methods]

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """Every message of the chat, the users' and the bot's, deleted ones included, in order."""
        chat = self._chats.get(chat_id)
        return list(chat.messages.values()) if chat else []

    def sent(self, chat_id: int) -> list[StoredMessage]:
        """The bot's messages in the chat, in order; deleted ones stay, flagged `deleted`."""
        return [message for message in self.messages(chat_id) if message.from_bot]

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        return self._chats[chat_id].messages[message_id]

    def videos(self, chat_id: int) -> list[StoredMessage]:
        """The bot's video messages in the chat; ``message.file.data`` holds the uploaded bytes."""
        return [message for message in self.sent(chat_id) if message.video is not None]

    def documents(self, chat_id: int) -> list[StoredMessage]:
        return [message for message in self.sent(chat_id) if message.document is not None]

    def chat_actions(self, chat_id: int) -> list[str]:
        chat = self._chats.get(chat_id)
        return list(chat.actions) if chat else []

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return list(self._callback_answers)

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The commands set for a scope (default scope when None) and language."""
        return list(self._commands.get(_commands_key(scope, language_code), []))

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    @property
    def downloads(self) -> list[str]:
        """The file_path of every file served by the download route, in order."""
        return list(self._downloads)

    def hosted_file(self, file_id: str) -> HostedFile:
        return self._files[file_id]

    def describe_calls(self, last: int = 20) -> str:
        """The last calls, one a line, timed relative to now; what `wait_for` prints when it gives up."""
        now = time.monotonic()
        lines = [call.describe(now) for call in self._calls[-last:]]
        return "\n".join(lines) or "(no calls)"

    async def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_S) -> T:  # noqa: ASYNC109
        """Waits until `predicate()` is truthy and returns its value; checks again on every change of state.

        Raises TimeoutError, listing the recent calls, when `timeout` seconds pass first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition still false after {timeout}s; recent calls:\n{self.describe_calls()}")
            await self._next_change(remaining)
        return result

    def _notify(self) -> None:
        """Wakes everything waiting for a change: `wait_for`, long polls, delayed calls.

        An Event replaced on every change rather than an asyncio.Condition, because sync helpers such as
        `push_update` must notify too and cannot take the condition's lock.
        """
        self._changed.set()
        self._changed = asyncio.Event()

    async def _next_change(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()

    # ---- fault injection ----------------------------------------------------------------------------------------

    def fail(
        self, method: str, status: int = HTTPStatus.TOO_MANY_REQUESTS, retry_after: int = 1, times: int = 1
    ) -> None:
        """Makes the next `times` calls of `method` fail with `status`, doing nothing else.

        429 answers "Too Many Requests: retry after N" with ``parameters.retry_after``, as Telegram's flood control
        does; any other status answers its HTTP phrase ("Internal Server Error", "Bad Gateway").
        """
        if status < 400:
            raise ValueError("a failure needs an error status")
        self._faults.setdefault(method.lower(), deque()).extend([_Fault(status, retry_after)] * times)

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """Holds the next `times` calls of `method` for `seconds` before serving them.

        The call still takes effect after the wait even if the client gave up, as on the real server: a client
        timeout does not mean the message was not sent.
        """
        self._delays.setdefault(method.lower(), deque()).extend([seconds] * times)

    def gate(self, method: str) -> asyncio.Event:
        """Holds every call of `method` until the returned event is set (`.set()` lets them through).

        A call whose client hung up while it was held is dropped, never taking effect: the upload did not
        finish, so Telegram never had it. Calls recorded as dropped have the status 499.
        """
        gate = self._gates[method.lower()] = asyncio.Event()
        return gate

    async def _hold(self, method: str) -> None:
        queue = self._delays.get(method.lower())
        if not queue:
            return
        seconds = queue.popleft()
        logger.info("holding %s for %.2fs", method, seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._closing and (remaining := deadline - loop.time()) > 0:
            await self._next_change(remaining)

    def _injected_fault(self, method: str) -> BotApiError | None:
        queue = self._faults.get(method.lower())
        if not queue:
            return None
        error = queue.popleft().error()
        logger.info("failing %s with %s %s", method, error.status, error.description)
        return error

    # ---- users' side: chats, files, updates ---------------------------------------------------------------------

    def add_chat(self, chat: ApiChat) -> None:
        """Lets the bot write to `chat`, as when its user has started the bot or added it to the group."""
        self._chat_state(chat)

    def add_file(self, data: bytes, file_size: int | None = None, *, file_name: str | None = None) -> tuple[str, str]:
        """Hosts a file a user sent; returns its (file_id, file_unique_id) for getFile and downloads.

        `file_size` is what Telegram will claim, `len(data)` unless given: claim more to test the 20 MB limit.
        """
        suffix = PurePosixPath(file_name).suffix if file_name else ""
        hosted = self._host(data, "documents", suffix, file_size=file_size, file_name=file_name)
        return hosted.file_id, hosted.file_unique_id

    def add_photo(self, image: bytes) -> list[JSONDict]:
        """Hosts a user's photo; returns its PhotoSize objects, smallest first, for `photo_message`.

        The largest size serves `image` byte for byte (Telegram would re-encode it); the smaller ones are JPEG
        copies scaled to a long side of 90, 320 and 800 pixels, those smaller than the image.
        """
        sizes = []
        with Image.open(BytesIO(image)) as picture:
            width, height = picture.size
            for side in PHOTO_SIDES:
                if side >= max(width, height):
                    break
                scale = side / max(width, height)
                small = picture.convert("RGB").resize((max(1, round(width * scale)), max(1, round(height * scale))))
                buffer = BytesIO()
                small.save(buffer, "JPEG")
                sizes.append(self._photo_size(buffer.getvalue(), *small.size))
        sizes.append(self._photo_size(image, width, height))
        return sizes

    def text_message(self, user: ApiUser, chat: ApiChat, text: str, *, reply_to: MessageLike | None = None) -> JSONDict:
        """An update (without update_id) carrying a user's text message, with bot_command entities."""
        content: JSONDict = {"text": text}
        if entities := bot_command_entities(text):
            content["entities"] = entities
        return {"message": self._user_message(user, chat, content, reply_to)}

    def photo_message(
        self,
        user: ApiUser,
        chat: ApiChat,
        photo: Sequence[JSONDict],
        caption: str | None = None,
        *,
        reply_to: MessageLike | None = None,
    ) -> JSONDict:
        """An update carrying a user's photo: `photo` is the PhotoSize list from `add_photo`."""
        content: JSONDict = {"photo": list(photo), **self._user_caption(caption)}
        file = self._files.get(photo[-1]["file_id"])
        return {"message": self._user_message(user, chat, content, reply_to, file)}

    def document_message(
        self,
        user: ApiUser,
        chat: ApiChat,
        file_id: str,
        file_name: str,
        mime_type: str,
        file_size: int | None = None,
        caption: str | None = None,
        *,
        reply_to: MessageLike | None = None,
    ) -> JSONDict:
        """An update carrying a user's document: `file_id` from `add_file`.

        The hosted file takes the name, type and, when given, the claimed `file_size`, so that getFile agrees.
        """
        file = self._files.get(file_id)
        if file is None:
            raise ValueError(f"unknown file_id {file_id!r}: host the file with add_file first")
        file.file_name, file.mime_type = file_name, mime_type
        if file_size is not None:
            file.file_size = file_size
        document = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
        }
        content: JSONDict = {"document": document, **self._user_caption(caption)}
        return {"message": self._user_message(user, chat, content, reply_to, file)}

    def callback_query(self, user: ApiUser, message: MessageLike, data: str, *, forged: bool = False) -> JSONDict:
        """An update carrying a press on an inline button of `message` (a bot message) whose callback_data is `data`.

        Pass an older version (``stored.versions[i]``) to press a button the message no longer shows, or
        `forged=True` for what a modified client may send: any data, whatever the message's buttons say.
        """
        shown = _message_json(message)
        if not forged and data not in _callback_data(shown):
            raise ValueError(f"the message has no button with callback_data {data!r}")
        self._callback_count += 1
        query_id = str(4_000_000_000_000_000_000 + self._callback_count)
        self._open_callback_queries.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_json(),
            "message": shown,
            "chat_instance": _chat_instance(shown["chat"]["id"]),
            "data": data,
        }
        return {"callback_query": query}

    def push_update(self, update: Mapping[str, Any], update_id: int | None = None) -> int:
        """Queues an update for getUpdates and returns its update_id: the next one, or `update_id`.

        Giving `update_id` re-delivers an update the bot already saw, as Telegram does when the bot stopped before
        confirming it; the update is then served in id order to pollers whose offset has not passed it.
        """
        if update_id is None:
            update_id = self._last_update_id + 1
        elif any(pending["update_id"] == update_id for pending in self._updates):
            raise ValueError(f"update {update_id} is already queued")
        self._last_update_id = max(self._last_update_id, update_id)
        queued = {"update_id": update_id, **{key: value for key, value in update.items() if key != "update_id"}}
        bisect.insort(self._updates, queued, key=lambda pending: pending["update_id"])
        logger.debug("queued update %s (%s)", update_id, _update_type(queued))
        self._notify()
        return update_id

    def _chat_state(self, chat: ApiChat) -> _Chat:
        state = self._chats.get(chat.id)
        if state is None:
            state = self._chats[chat.id] = _Chat(chat)
        else:
            state.info = chat
        return state

    def _user_caption(self, caption: str | None) -> JSONDict:
        if caption is None:
            return {}
        content: JSONDict = {"caption": caption}
        if entities := bot_command_entities(caption):
            content["caption_entities"] = entities
        return content

    def _user_message(
        self,
        user: ApiUser,
        chat: ApiChat,
        content: JSONDict,
        reply_to: MessageLike | None,
        file: HostedFile | None = None,
    ) -> JSONDict:
        if reply_to is not None:
            content = {"reply_to_message": _quoted(_message_json(reply_to)), **content}
        return self._store(self._chat_state(chat), user.to_json(), content, from_bot=False, file=file).current

    def _store(
        self, chat: _Chat, sender: JSONDict, content: JSONDict, *, from_bot: bool, file: HostedFile | None = None
    ) -> StoredMessage:
        chat.last_message_id += 1
        message = {
            "message_id": chat.last_message_id,
            "from": sender,
            "chat": chat.info.to_json(),
            "date": int(time.time()),
            **content,
        }
        stored = StoredMessage(chat.info.id, chat.last_message_id, from_bot, [message], file)
        chat.messages[stored.message_id] = stored
        return stored

    def _host(
        self,
        data: bytes,
        folder: str,
        suffix: str,
        *,
        file_size: int | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> HostedFile:
        self._file_count += 1
        number = self._file_count
        hosted = HostedFile(
            file_id=f"{folder}-file-{number}",
            file_unique_id=f"unique-{number}",
            file_path=f"{folder}/file_{number}{suffix}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            mime_type=mime_type,
            file_name=file_name,
        )
        self._files[hosted.file_id] = hosted
        self._files_by_path[hosted.file_path] = hosted
        return hosted

    def _photo_size(self, data: bytes, width: int, height: int) -> JSONDict:
        hosted = self._host(data, "photos", ".jpg", mime_type="image/jpeg")
        return {
            "file_id": hosted.file_id,
            "file_unique_id": hosted.file_unique_id,
            "file_size": hosted.file_size,
            "width": width,
            "height": height,
        }

    # ---- HTTP ---------------------------------------------------------------------------------------------------

    async def _serve_method(self, request: web.Request) -> web.Response:
        requested = request.match_info["method"]
        name, handler = self._methods.get(requested.lower(), (requested, None))
        try:
            raw, files = await self._read_body(request)
            params, failure = _decode_params(raw)
        except BotApiError as error:
            params, files, failure = {}, {}, error
        call = Call(name, params, files, time.monotonic())
        self._calls.append(call)
        self._notify()
        logger.debug("%s %s", name, params)
        try:
            if request.match_info["token"] != self.token:
                raise BotApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            if failure is not None:
                raise failure
            gate = self._gates.get(name.lower())
            if gate is not None:
                await gate.wait()
                if request.transport is None or request.transport.is_closing():
                    logger.info("%s dropped: its client hung up while it was held", name)
                    call.status = CLIENT_CLOSED
                    self._notify()
                    return web.Response(status=CLIENT_CLOSED)
            await self._hold(name)
            if (fault := self._injected_fault(name)) is not None:
                raise fault
            if handler is None:
                logger.warning("the bot called %s, which the emulator does not implement", name)
                raise BotApiError(HTTPStatus.NOT_FOUND, "Not Found: method not found")
            body: JSONDict = {"ok": True, "result": await handler(params, files)}
            status = HTTPStatus.OK
        except BotApiError as error:
            body, status = error.body(), error.status
            logger.debug("%s failed: %s", name, error.description)
        call.status, call.response = status, body
        self._notify()
        return web.json_response(body, status=status)

    async def _read_body(self, request: web.Request) -> tuple[dict[str, Any], _Files]:
        """The parameters as sent (query string and body) and the uploaded files."""
        raw: dict[str, Any] = dict(request.query)
        files: _Files = {}
        try:
            if request.content_type == "application/json" and request.can_read_body:
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    raise _bad_request("can't parse JSON encoded request parameters") from None
                if not isinstance(body, dict):
                    raise _bad_request("JSON object expected as request parameters")
                raw.update(body)
            elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
                    else:
                        raw[key] = value
        except web.HTTPRequestEntityTooLarge:
            raise BotApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large") from None
        return raw, files

    async def _serve_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            error = BotApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            return web.json_response(error.body(), status=error.status)
        file_path = request.match_info["file_path"]
        hosted = self._files_by_path.get(file_path)
        if hosted is None:
            error = BotApiError(HTTPStatus.NOT_FOUND, "Not Found")
            return web.json_response(error.body(), status=error.status)
        self._downloads.append(file_path)
        self._notify()
        return web.Response(body=hosted.data, content_type=hosted.mime_type or "application/octet-stream")

    # ---- methods ------------------------------------------------------------------------------------------------

    async def _get_me(self, params: JSONDict, files: _Files) -> JSONDict:
        return self.bot_user

    async def _get_updates(self, params: JSONDict, files: _Files) -> list[JSONDict]:
        offset = params.get("offset", 0)
        limit = min(max(params.get("limit", 100), 1), 100)
        timeout = max(params.get("timeout", 0), 0)
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"]) or None
        if offset > 0:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # a poll still waiting is now superseded
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise BotApiError(HTTPStatus.CONFLICT, CONFLICT)
            self._updates = [update for update in self._updates if self._wanted(update)]
            if self._updates or self._closing or (remaining := deadline - loop.time()) <= 0:
                return self._updates[:limit]
            await self._next_change(remaining)

    def _wanted(self, update: JSONDict) -> bool:
        kind = _update_type(update)
        wanted = kind not in UPDATES_OFF_BY_DEFAULT if self._allowed_updates is None else kind in self._allowed_updates
        if not wanted:
            logger.debug("dropping update %s: %s not in allowed_updates", update["update_id"], kind)
        return wanted

    async def _delete_webhook(self, params: JSONDict, files: _Files) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _set_my_commands(self, params: JSONDict, files: _Files) -> bool:
        self._commands[_commands_key(params.get("scope"), params.get("language_code"))] = _commands(params)
        return True

    async def _get_my_commands(self, params: JSONDict, files: _Files) -> list[JSONDict]:
        return self.commands(params.get("scope"), params.get("language_code") or "")

    async def _send_message(self, params: JSONDict, files: _Files) -> JSONDict:
        chat, extra = self._outgoing(params)
        return self._store(chat, self.bot_user, {**_message_text(params), **extra}, from_bot=True).current

    async def _send_video(self, params: JSONDict, files: _Files) -> JSONDict:
        chat, extra = self._outgoing(params)
        caption = _caption(params)
        file, uploaded = self._input_file(params, files, "video", "videos")
        if uploaded:
            file.mime_type = file.mime_type if (file.mime_type or "").startswith("video/") else "video/mp4"
            file.attributes = {key: params.get(key, 0) for key in ("width", "height", "duration")}
        video = {
            **{key: file.attributes.get(key, params.get(key, 0)) for key in ("duration", "width", "height")},
            **({"file_name": file.file_name} if file.file_name else {}),
            "mime_type": file.mime_type or "video/mp4",
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
        }
        return self._store(chat, self.bot_user, {"video": video, **caption, **extra}, from_bot=True, file=file).current

    async def _send_document(self, params: JSONDict, files: _Files) -> JSONDict:
        chat, extra = self._outgoing(params)
        caption = _caption(params)
        file, _ = self._input_file(params, files, "document", "documents")
        document = {
            **({"file_name": file.file_name} if file.file_name else {}),
            "mime_type": file.mime_type or "application/octet-stream",
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
        }
        content = {"document": document, **caption, **extra}
        return self._store(chat, self.bot_user, content, from_bot=True, file=file).current

    async def _edit_message_text(self, params: JSONDict, files: _Files) -> JSONDict:
        message = self._editable(params)
        if "text" not in message.current:
            raise _bad_request("there is no text in the message to edit")
        return self._edit(message, ("text", "entities"), _message_text(params), params)

    async def _edit_message_caption(self, params: JSONDict, files: _Files) -> JSONDict:
        message = self._editable(params)
        if not any(media in message.current for media in MEDIA_FIELDS):
            raise _bad_request("there is no caption in the message to edit")
        return self._edit(message, ("caption", "caption_entities"), _caption(params), params)

    async def _edit_message_reply_markup(self, params: JSONDict, files: _Files) -> JSONDict:
        return self._edit(self._editable(params), (), {}, params)

    async def _delete_message(self, params: JSONDict, files: _Files) -> bool:
        message = self._find_message(self._chat(params), params, "message to delete not found")
        message.deleted = True
        return True

    async def _send_chat_action(self, params: JSONDict, files: _Files) -> bool:
        chat = self._chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        chat.actions.append(action)
        return True

    async def _answer_callback_query(self, params: JSONDict, files: _Files) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_callback_queries:
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        self._open_callback_queries.remove(query_id)
        answer = CallbackAnswer(
            query_id, params.get("text"), bool(params.get("show_alert")), params.get("url"), params.get("cache_time", 0)
        )
        self._callback_answers.append(answer)
        return True

    async def _get_file(self, params: JSONDict, files: _Files) -> JSONDict:
        file = self._files.get(str(params.get("file_id", "")))
        if file is None:
            raise _bad_request("invalid file id")
        if file.file_size > DOWNLOAD_LIMIT:
            raise _bad_request("file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
            "file_path": file.file_path,
        }

    # ---- method helpers -----------------------------------------------------------------------------------------

    def _chat(self, params: JSONDict) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            found = [chat for chat in self._chats.values() if f"@{chat.info.username}" == chat_id]
            chat = found[0] if found else None
        else:
            chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _outgoing(self, params: JSONDict) -> tuple[_Chat, JSONDict]:
        """The chat a send method writes to, and what every sent message shares: the replied message, the keyboard."""
        chat = self._chat(params)
        extra: JSONDict = {}
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id", params.get("reply_to_message_id"))
        if reply_id is not None:
            replied = chat.messages.get(reply_id)
            if replied is not None and not replied.deleted:
                extra["reply_to_message"] = _quoted(replied.current)
            elif not (reply.get("allow_sending_without_reply") or params.get("allow_sending_without_reply")):
                raise _bad_request("message to be replied not found")
        if (keyboard := _inline_keyboard(params)) is not None:
            extra["reply_markup"] = keyboard
        return chat, extra

    def _input_file(self, params: JSONDict, files: _Files, name: str, folder: str) -> tuple[HostedFile, bool]:
        """The file a send method carries: a fresh upload (True) or one sent before, named by file_id (False)."""
        value = params.get(name)
        upload = files.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            suffix = ".mp4" if folder == "videos" else PurePosixPath(upload.filename or "").suffix
            hosted = self._host(
                upload.data, folder, suffix, mime_type=upload.content_type, file_name=upload.filename or None
            )
            return hosted, True
        if value is None:
            raise _bad_request(f"there is no {name} in the request")
        hosted = self._files.get(str(value))
        if hosted is None:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        return hosted, False

    def _find_message(self, chat: _Chat, params: JSONDict, missing: str) -> StoredMessage:
        if "inline_message_id" in params:
            raise _bad_request("inline_message_id is not supported by the emulator")
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise _bad_request(missing)
        return message

    def _editable(self, params: JSONDict) -> StoredMessage:
        message = self._find_message(self._chat(params), params, "message to edit not found")
        if not message.from_bot:
            raise _bad_request("message can't be edited")
        return message

    def _edit(self, message: StoredMessage, replaced: tuple[str, ...], content: JSONDict, params: JSONDict) -> JSONDict:
        """Applies an edit: the `replaced` fields give way to `content`, the keyboard to the request's (or none)."""
        before = {key: value for key, value in message.current.items() if key != "edit_date"}
        edited = {key: value for key, value in before.items() if key not in replaced and key != "reply_markup"}
        edited.update(content)
        if (keyboard := _inline_keyboard(params)) is not None:
            edited["reply_markup"] = keyboard
        if edited == before:
            raise _bad_request(NOT_MODIFIED)
        edited["edit_date"] = int(time.time())
        message.versions.append(edited)
        return edited

