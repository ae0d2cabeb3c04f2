"""A local emulation of the Discord REST API v10 and its attachment CDN, for tests.

:class:`DiscordRestEmulator` is an aiohttp server on 127.0.0.1 (free port) that answers the HTTP calls a
slash-command bot makes, in the JSON shapes of https://discord.com/developers/docs, and records every call
(method, path, JSON body or multipart parts with file bytes, monotonic time received, status) for assertions.
It knows nothing about any client library; ``tests/emulators/discord_gateway.py`` points discord.py at it.

Emulated, relative to ``/api/v10``:

- ``GET /users/@me``, ``GET /users/{id}``, ``POST /users/@me/channels`` (open a DM),
  ``GET /oauth2/applications/@me``;
- ``GET``/``PUT /applications/{app}/commands`` and ``/applications/{app}/guilds/{guild}/commands``
  (bulk overwrite; a command keeps its id while its name and type stay, every PUT is counted);
- ``POST /interactions/{id}/{token}/callback`` for callback types 1, 4, 5, 6, 7, 8, 9, answering the
  interaction callback response object when ``?with_response`` is set (as discord.py >= 2.5 always asks);
- ``POST /webhooks/{app}/{token}`` (followups, ``?wait``), ``GET``/``PATCH``/``DELETE
  /webhooks/{app}/{token}/messages/{id | @original}``;
- ``GET /channels/{id}``, ``POST /channels/{id}/messages``, ``GET``/``PATCH``/``DELETE
  /channels/{id}/messages/{id}``, JSON or multipart (``payload_json`` + ``files[n]``);
- the CDN: ``GET /cdn/...`` (attachment ``url``) and ``GET /media/...`` (``proxy_url``) serve uploaded bytes.

Discord behaviour kept, because a bot adapter has to live with it:

- an interaction must be acknowledged within 3 s (``response_window``), else its callback answers
  404 ``Unknown interaction`` (10062); a second callback answers 400 (40060);
- interaction tokens live 15 minutes (``token_lifetime``; :meth:`DiscordRestEmulator.expire_token` ends one
  early): afterwards webhook calls answer 401 ``Invalid Webhook Token`` (50027);
- a type 5 (deferred) callback creates a loading ``@original`` (flag 128, plus 64 if the defer was ephemeral);
  the first followup or ``@original`` edit resolves it in place, keeping the ephemerality chosen at defer time;
- for component interactions, types 6 and 7 make ``@original`` the message the component is on;
- files over ``upload_limit`` (default 10 MiB) answer 413 (40005); content over 2000 characters answers 400
  (50035); a message with nothing in it answers 400 (50006);
- bot routes need ``Authorization: Bot <token>`` (401 otherwise), webhook and callback routes need none;
- every API response carries ``Via`` like Discord's, which discord.py requires before it honours a 429.

Fault injection (:meth:`DiscordRestEmulator.fail`) answers a route with 429 (Discord's body and
``X-RateLimit-*`` headers), 5xx or any other error a given number of times.

Left out: the gateway events Discord sends after REST changes (MESSAGE_CREATE and so on), real rate-limit
buckets, permissions and channel visibility checks, threads, reactions, polls, stickers, message
references beyond echoing them, image dimensions, CDN link expiry, and any route not listed above (those
answer 404 and are recorded, so an unexpected call shows up in :meth:`DiscordRestEmulator.describe_calls`).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import math
import mimetypes
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

T = TypeVar("T")
JSON = dict[str, Any]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
LISTEN_BACKLOG = 1024
RESPONSE_WINDOW_S = 3.0
WAIT_S = 120.0  # wait_for's hang guard, not a speed check: a busy machine may take a minute over a tiny job
TOKEN_LIFETIME_S = 15 * 60.0
MAX_CONTENT_LENGTH = 2000

# Message flags: https://discord.com/developers/docs/resources/message#message-object-message-flags
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
CHANNEL_MESSAGE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
WEBHOOK_MESSAGE_FLAGS = CHANNEL_MESSAGE_FLAGS | EPHEMERAL

# Message types: https://discord.com/developers/docs/resources/message#message-object-message-types
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20


class InteractionType(IntEnum):
    """https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-interaction-type"""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(IntEnum):
    """https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object-interaction-callback-type"""

    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


# PING (answered with PONG) only reaches HTTP interaction endpoints, never the gateway.
ALLOWED_CALLBACKS: dict[int, frozenset[CallbackType]] = {
    InteractionType.APPLICATION_COMMAND: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.MODAL,
        }
    ),
    InteractionType.MESSAGE_COMPONENT: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
            CallbackType.UPDATE_MESSAGE,
            CallbackType.MODAL,
        }
    ),
    InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE: frozenset({CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT}),
    InteractionType.MODAL_SUBMIT: frozenset(
        {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
            CallbackType.UPDATE_MESSAGE,
        }
    ),
}

_last_snowflake = 0


def snowflake() -> str:
    """A new, strictly increasing Discord snowflake (its timestamp bits are the current time)."""
    global _last_snowflake
    _last_snowflake = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, _last_snowflake + 1)
    return str(_last_snowflake)


def iso_now() -> str:
    """The current time in Discord's ISO 8601 timestamp format."""
    return dt.datetime.now(dt.UTC).isoformat()


class DiscordError(Exception):
    """An error answered in Discord's JSON error format: ``{"message": ..., "code": ..., "errors": ...}``."""

    def __init__(self, status: int, code: int, message: str, *, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: JSON = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _form_error(field_name: str, code: str, message: str) -> DiscordError:
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return DiscordError(400, 50035, "Invalid Form Body", errors=errors)


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One HTTP request the emulator received, with the status it answered."""

    method: str
    path: str  # relative to /api/v10 for API routes, the full path for CDN routes
    query: dict[str, str]
    json: Any
    uploads: list[Upload]
    received_at: float  # time.monotonic()
    status: int = 0
    response: Any = None

    @property
    def route(self) -> str:
        """``"METHOD /path"``, the string :meth:`DiscordRestEmulator.fail` patterns are matched against."""
        return f"{self.method} {self.path}"

    def __str__(self) -> str:
        files = f" files={[(u.filename, len(u.data)) for u in self.uploads]}" if self.uploads else ""
        body = "" if self.json is None else " " + json.dumps(self.json)[:300]
        return f"{self.route} -> {self.status}{body}{files}"


CALL = web.RequestKey("call", Call)  # the request's Call, set by the middleware for the handlers


@dataclass
class StoredMessage:
    """A message as the emulator holds it: the current object plus every earlier state, oldest first."""

    payload: JSON
    history: list[JSON] = field(default_factory=list)
    deleted: bool = False

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    @property
    def channel_id(self) -> str:
        return str(self.payload["channel_id"])

    @property
    def content(self) -> str:
        return str(self.payload["content"])

    @property
    def attachments(self) -> list[JSON]:
        return list(self.payload["attachments"])

    @property
    def components(self) -> list[JSON]:
        return list(self.payload["components"])

    @property
    def flags(self) -> int:
        return int(self.payload["flags"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)


@dataclass
class InteractionRecord:
    """An interaction delivered through the gateway and what the bot did with it over REST."""

    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user: JSON
    message_id: str | None  # the message a component interaction came from
    authorizing_integration_owners: JSON
    received_at: float
    callback: JSON | None = None  # the callback body: {"type": ..., "data": ...}
    callback_uploads: list[Upload] = field(default_factory=list)
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    loading: bool = False
    expired: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else int(self.callback["type"])


@dataclass
class Fault:
    """An injected error answer for requests whose ``"METHOD /path"`` matches ``pattern``."""

    pattern: re.Pattern[str]
    status: int
    body: JSON
    remaining: int
    retry_after: float
    is_global: bool
    bucket: str = field(default_factory=lambda: secrets.token_hex(16))
    hits: int = 0

    def response(self) -> web.Response:
        headers: dict[str, str] = {}
        if self.status == 429:
            headers = {
                "Retry-After": str(math.ceil(self.retry_after)),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Bucket": self.bucket,
                "X-RateLimit-Scope": "global" if self.is_global else "user",
            }
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
        return _json_response(self.body, self.status, headers)


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # exactly "application/json", no charset: discord.py only decodes JSON under that content type
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers, content_type="application/json")


def _no_content() -> web.Response:
    return web.Response(status=204)


def _flag_set(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in {"1", "true"}


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON body, or for multipart requests ``payload_json`` (plus plain form fields) and the file parts."""
    if request.content_type.startswith("multipart/"):
        payload: JSON = {}
        uploads: list[Upload] = []
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                raise DiscordError(400, 0, "400: Bad Request")
            if part.filename is not None:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                uploads.append(Upload(part.name or "", part.filename, content_type, bytes(await part.read())))
            elif part.name == "payload_json":
                payload.update(json.loads(await part.text()))
            elif part.name:
                payload[part.name] = await part.text()
        return payload, uploads
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


class DiscordRestEmulator:
    """Discord's REST API v10 and attachment CDN on a local port; see the module docstring for the scope.

    Use as ``async with DiscordRestEmulator() as rest:``; ``rest.url`` is the origin to point a client at.
    """

    def __init__(
        self,
        *,
        token: str = "emulated-bot-token",
        bot_name: str = "wanbot",
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        response_window: float = RESPONSE_WINDOW_S,
        token_lifetime: float = TOKEN_LIFETIME_S,
    ) -> None:
        self.token = token
        self.upload_limit = upload_limit
        self.response_window = response_window
        self.token_lifetime = token_lifetime
        self.application_id = snowflake()
        self.bot_user: JSON = {
            "id": self.application_id,  # a bot user shares its application's id
            "username": bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
        }
        self.owner: JSON = {
            "id": snowflake(),
            "username": "owner",
            "discriminator": "0",
            "global_name": "Owner",
            "avatar": None,
            "public_flags": 0,
        }
        self.application: JSON = {
            "id": self.application_id,
            "name": bot_name,
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot_user,
            "owner": self.owner,
            "team": None,
            "verify_key": secrets.token_hex(32),
            "flags": 0,
            "interactions_endpoint_url": None,  # interactions come over the gateway
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 0,
        }
        self.calls: list[Call] = []
        self.command_syncs: list[str | None] = []  # one entry per bulk overwrite: the guild id, None for global
        self._users: dict[str, JSON] = {u["id"]: u for u in (self.bot_user, self.owner)}
        self._channels: dict[str, JSON] = {}
        self._dm_channels: dict[str, str] = {}  # recipient id -> DM channel id
        self._messages: dict[str, StoredMessage] = {}
        self._interactions: dict[str, InteractionRecord] = {}
        self._tokens: dict[str, InteractionRecord] = {}
        self._attachments: dict[str, tuple[JSON, bytes]] = {}
        self._commands: dict[str | None, list[JSON]] = {}
        self._faults: list[Fault] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._started_at = time.monotonic()

    # lifecycle

    @property
    def url(self) -> str:
        """The emulator's origin, e.g. ``http://127.0.0.1:38517``; the API lives under ``/api/v10``."""
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        # A deep accept queue: a burst of new connections must not wait out SYN retransmits (1 s each).
        await web.SockSite(self._runner, sock, backlog=LISTEN_BACKLOG).start()
        self._url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        log.debug("Discord REST emulator listening on %s", self._url)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordRestEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # setup used by tests and the gateway

    def add_user(self, user: JSON) -> None:
        """Make a user object known (for ``GET /users/{id}`` and opening DMs)."""
        self._users[str(user["id"])] = user

    def add_channel(self, channel: JSON) -> None:
        """Make a channel object known; messages can only be posted to known channels."""
        self._channels[str(channel["id"])] = channel

    def add_attachment(self, data: bytes, filename: str, content_type: str | None = None) -> JSON:
        """Store bytes as an uploaded slash-command attachment and return its attachment object.

        The object's ``url`` and ``proxy_url`` are served by the emulator's CDN routes; put it into an
        interaction's ``resolved.attachments`` (``gateway.attachment_option`` does).
        """
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment = self._new_attachment(
            data, filename, content_type, kind="ephemeral-attachments", parent_id=self.application_id
        )
        attachment["ephemeral"] = True
        return attachment

    def register_interaction(self, payload: JSON) -> InteractionRecord:
        """Remember an INTERACTION_CREATE payload the gateway is about to deliver.

        Discord knows every interaction it sends: this makes its id and token valid for callbacks and
        webhooks, starts the 3 s response window and 15 min token lifetime, and makes its channel, users
        and (for component clicks) its message known.
        """
        member = payload.get("member")
        user = member["user"] if member is not None else payload["user"]
        for known in (user, *payload.get("data", {}).get("resolved", {}).get("users", {}).values()):
            self.add_user(known)
        if "channel" in payload and str(payload["channel"]["id"]) not in self._channels:
            self.add_channel(payload["channel"])
        message = payload.get("message")
        if message is not None:
            self._messages.setdefault(str(message["id"]), StoredMessage(copy.deepcopy(message)))
        record = InteractionRecord(
            id=str(payload["id"]),
            token=payload["token"],
            type=int(payload["type"]),
            channel_id=str(payload["channel_id"]),
            guild_id=payload.get("guild_id"),
            user=user,
            message_id=None if message is None else str(message["id"]),
            authorizing_integration_owners=payload.get("authorizing_integration_owners", {}),
            received_at=time.monotonic(),
        )
        self._interactions[record.id] = record
        self._tokens[record.token] = record
        return record

    def expire_token(self, token: str) -> None:
        """End an interaction token's life now, as 15 minutes passing would."""
        self._tokens[token].expired = True

    def fail(
        self,
        route: str,
        status: int = 429,
        *,
        retry_after: float = 0.5,
        times: int = 1,
        is_global: bool = False,
        body: JSON | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests whose ``"METHOD /path"`` fully matches the regex ``route``
        (path relative to ``/api/v10``, e.g. ``r"POST /channels/\\d+/messages"``) with an error.

        A 429 gets Discord's body ``{"message": "You are being rate limited.", "retry_after": ...,
        "global": ...}`` and ``Retry-After``/``X-RateLimit-*`` headers; other statuses get ``body`` or
        ``{"message": "<status>: <reason>", "code": 0}``.
        """
        if body is None and status == 429:
            body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        elif body is None:
            body = {"message": f"{status}: {HTTPStatus(status).phrase}", "code": 0}
        fault = Fault(re.compile(route), status, body, times, retry_after, is_global)
        self._faults.append(fault)
        return fault

    # accessors

    def interaction(self, interaction_id: str | int) -> InteractionRecord:
        return self._interactions[str(interaction_id)]

    def callback(self, interaction_id: str | int) -> JSON | None:
        """The callback body the bot posted for an interaction (``{"type": ..., "data": ...}``), or None."""
        return self.interaction(interaction_id).callback

    def original(self, token: str) -> StoredMessage | None:
        """The interaction's ``@original`` message, or None before a message-producing callback."""
        original_id = self._tokens[token].original_id
        return None if original_id is None else self._messages[original_id]

    def followups(self, token: str) -> list[StoredMessage]:
        """The messages sent through ``POST /webhooks/{app}/{token}``, in order.

        After a deferred (type 5) callback the first followup resolves the loading ``@original``, so it is
        the same message as :meth:`original`.
        """
        return [self._messages[mid] for mid in self._tokens[token].followup_ids]

    def message(self, message_id: str | int) -> StoredMessage:
        return self._messages[str(message_id)]

    def channel_messages(self, channel_id: str | int) -> list[StoredMessage]:
        """The channel's messages that are not deleted, oldest first, ephemeral ones included."""
        return [m for m in self._messages.values() if m.channel_id == str(channel_id) and not m.deleted]

    def attachment_data(self, attachment: str | int | Mapping[str, Any]) -> bytes:
        """The bytes of an attachment, given its id or its attachment object."""
        attachment_id = attachment["id"] if isinstance(attachment, Mapping) else attachment
        return self._attachments[str(attachment_id)][1]

    def commands(self, guild_id: str | int | None = None) -> list[JSON]:
        """The registered application commands, global or for one guild."""
        return list(self._commands.get(None if guild_id is None else str(guild_id), []))

    def calls_to(self, route: str) -> list[Call]:
        """The calls whose ``"METHOD /path"`` fully matches the regex ``route``."""
        pattern = re.compile(route)
        return [call for call in self.calls if pattern.fullmatch(call.route)]

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = WAIT_S) -> T:  # noqa: ASYNC109 (tests' API)
        """Wait until ``predicate()`` is truthy and return its value; it is checked after every call.

        Raises TimeoutError listing the recent calls when ``timeout`` seconds pass first.
        """
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    result = await self._changed.wait_for(predicate)
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s; recent calls:\n{self.describe_calls()}") from None
        assert result is not None  # Condition.wait_for only returns a truthy value
        return result

    def describe_calls(self, limit: int = 25) -> str:
        """The last ``limit`` calls, one a line, with seconds since the emulator started."""
        lines = [f"  +{call.received_at - self._started_at:7.3f}s {call}" for call in self.calls[-limit:]]
        return "\n".join(lines) or "  (no calls)"

    # the HTTP side

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        api = API_PREFIX
        router = app.router
        router.add_get(f"{api}/users/@me", self._get_current_user)
        router.add_post(f"{api}/users/@me/channels", self._open_dm)
        router.add_get(f"{api}/users/{{user_id}}", self._get_user)
        router.add_get(f"{api}/oauth2/applications/@me", self._get_application)
        commands = f"{api}/applications/{{app_id}}/commands"
        guild_commands = f"{api}/applications/{{app_id}}/guilds/{{guild_id}}/commands"
        for path in (commands, guild_commands):
            router.add_get(path, self._get_commands)
            router.add_put(path, self._put_commands)
        router.add_post(f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._interaction_callback)
        router.add_post(f"{api}/webhooks/{{app_id}}/{{token}}", self._execute_webhook)
        webhook_message = f"{api}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}"
        router.add_get(webhook_message, self._get_webhook_message)
        router.add_patch(webhook_message, self._edit_webhook_message)
        router.add_delete(webhook_message, self._delete_webhook_message)
        router.add_get(f"{api}/channels/{{channel_id}}", self._get_channel)
        router.add_post(f"{api}/channels/{{channel_id}}/messages", self._create_channel_message)
        channel_message = f"{api}/channels/{{channel_id}}/messages/{{message_id}}"
        router.add_get(channel_message, self._get_channel_message)
        router.add_patch(channel_message, self._edit_channel_message)
        router.add_delete(channel_message, self._delete_channel_message)
        for host in ("cdn", "media"):
            router.add_get(f"/{host}/{{kind}}/{{parent_id}}/{{attachment_id}}/{{filename}}", self._cdn)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        call = Call(
            method=request.method,
            path=path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX + "/") else path,
            query=dict(request.query),
            json=None,
            uploads=[],
            received_at=time.monotonic(),
        )
        self.calls.append(call)
        request[CALL] = call
        response: web.StreamResponse
        try:
            call.json, call.uploads = await _read_body(request)
            fault_response = self._injected_fault(call)
            if fault_response is not None:
                response = fault_response
            else:
                self._check_request(request, call)
                response = await handler(request)
        except DiscordError as error:
            response = _json_response(error.body, error.status)
        except web.HTTPException as error:  # no such route or method
            response = _json_response({"message": f"{error.status}: {error.reason}", "code": 0}, error.status)
        if path.startswith(API_PREFIX + "/"):
            response.headers["Via"] = "1.1 google"
        call.status = response.status
        body = response.body if isinstance(response, web.Response) else None
        if isinstance(body, bytes) and body and response.content_type == "application/json":
            call.response = json.loads(body)
        log.debug("%s", call)
        async with self._changed:
            self._changed.notify_all()
        return response

    def _injected_fault(self, call: Call) -> web.Response | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.pattern.fullmatch(call.route):
                fault.remaining -= 1
                fault.hits += 1
                return fault.response()
        return None

    def _check_request(self, request: web.Request, call: Call) -> None:
        token_free = call.path.startswith(("/webhooks/", "/interactions/"))  # authorised by the interaction token
        bot_route = request.path.startswith(API_PREFIX + "/") and not token_free
        if bot_route and request.headers.get("Authorization") != f"Bot {self.token}":
            raise DiscordError(401, 0, "401: Unauthorized")
        if any(len(upload.data) > self.upload_limit for upload in call.uploads):
            raise DiscordError(413, 40005, "Request entity too large")

    # users, application, commands

    async def _get_current_user(self, request: web.Request) -> web.Response:
        return _json_response(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self._users.get(request.match_info["user_id"])
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return _json_response(user)

    async def _open_dm(self, request: web.Request) -> web.Response:
        body = request[CALL].json or {}
        user = self._users.get(str(body.get("recipient_id")))
        if user is None:
            raise DiscordError(400, 50033, "Invalid Recipient(s)")
        channel_id = self._dm_channels.get(user["id"])
        if channel_id is None:
            channel_id = snowflake()
            self._dm_channels[user["id"]] = channel_id
            self.add_channel({"id": channel_id, "type": 1, "last_message_id": None, "flags": 0, "recipients": [user]})
        return _json_response(self._channels[channel_id])

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json_response(self.application)

    def _command_scope(self, request: web.Request) -> str | None:
        if request.match_info["app_id"] != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        return request.match_info.get("guild_id")

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json_response(self._commands.get(self._command_scope(request), []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        body = request[CALL].json
        if not isinstance(body, list):
            raise _form_error("_root", "LIST_TYPE_CONVERT", "Must be a list.")
        previous = {(c["name"], c["type"]): c["id"] for c in self._commands.get(guild_id, [])}
        commands = []
        for command in body:
            kind = command.get("type", 1)
            stored = {
                "id": previous.get((command["name"], kind)) or snowflake(),
                "application_id": self.application_id,
                "version": snowflake(),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "options": command.get("options", []),
                "default_member_permissions": command.get("default_member_permissions"),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types", [0]),
                "nsfw": command.get("nsfw", False),
            }
            if guild_id is not None:
                stored["guild_id"] = guild_id
            commands.append(stored)
        self._commands[guild_id] = commands
        self.command_syncs.append(guild_id)
        return _json_response(commands)

    # channels and channel messages

    def _channel(self, channel_id: str) -> JSON:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _channel_message(self, request: web.Request) -> StoredMessage:
        self._channel(request.match_info["channel_id"])
        message = self._messages.get(request.match_info["message_id"])
        if message is None or message.channel_id != request.match_info["channel_id"]:
            raise DiscordError(404, 10008, "Unknown Message")
        if message.deleted or message.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json_response(self._channel(request.match_info["channel_id"]))

    async def _create_channel_message(self, request: web.Request) -> web.Response:
        call: Call = request[CALL]
        channel = self._channel(request.match_info["channel_id"])
        body: JSON = call.json or {}
        reference = body.get("message_reference")
        payload = self._message_payload(
            channel["id"],
            flags=(body.get("flags") or 0) & CHANNEL_MESSAGE_FLAGS,
            message_type=MESSAGE_REPLY if reference else MESSAGE_DEFAULT,
        )
        if reference:
            payload["message_reference"] = {"type": 0, "channel_id": channel["id"], **reference}
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        self._apply_body(payload, body, call.uploads)
        message = self._store(payload)
        channel["last_message_id"] = message.id
        return _json_response(message.payload)

    async def _get_channel_message(self, request: web.Request) -> web.Response:
        return _json_response(self._channel_message(request).payload)

    async def _edit_channel_message(self, request: web.Request) -> web.Response:
        call: Call = request[CALL]
        message = self._channel_message(request)
        self._edit(message, call.json or {}, call.uploads)
        return _json_response(message.payload)

    async def _delete_channel_message(self, request: web.Request) -> web.Response:
        self._channel_message(request).deleted = True
        return _no_content()

    # interactions and their webhooks

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        call: Call = request[CALL]
        record = self._interactions.get(request.match_info["interaction_id"])
        if (
            record is None
            or record.token != request.match_info["token"]
            or not self._token_alive(record)
            or time.monotonic() - record.received_at > self.response_window
        ):
            raise DiscordError(404, 10062, "Unknown interaction")
        if record.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body: JSON = call.json or {}
        if body.get("type") not in ALLOWED_CALLBACKS[record.type]:
            raise _form_error("type", "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid interaction callback type.")
        callback_type = CallbackType(body["type"])
        data: JSON = body.get("data") or {}
        message: StoredMessage | None = None
        if callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = self._interaction_message(record, data, call.uploads)
            record.original_id = message.id
        elif callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            message = self._interaction_message(record, data, [], loading=True)
            record.original_id = message.id
            record.loading = True
        elif callback_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            record.original_id = record.message_id
            if callback_type is CallbackType.UPDATE_MESSAGE:
                message = self._messages[str(record.message_id)]
                self._edit(message, data, call.uploads)
        record.callback = body
        record.callback_uploads = call.uploads
        if not _flag_set(call.query, "with_response"):
            return _no_content()
        response: JSON = {
            "interaction": {
                "id": record.id,
                "type": record.type,
                "response_message_loading": record.loading,
                "response_message_ephemeral": message is not None and message.ephemeral,
            }
        }
        if message is not None:
            response["interaction"]["response_message_id"] = message.id
            response["resource"] = {"type": callback_type, "message": message.payload}
        return _json_response(response)

    def _token_alive(self, record: InteractionRecord) -> bool:
        return not record.expired and time.monotonic() - record.received_at < self.token_lifetime

    def _webhook_interaction(self, request: web.Request) -> InteractionRecord:
        record = self._tokens.get(request.match_info["token"])
        if record is None or request.match_info["app_id"] != self.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if not self._token_alive(record):
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if not record.acknowledged:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return record

    def _webhook_message(self, request: web.Request) -> tuple[InteractionRecord, StoredMessage]:
        record = self._webhook_interaction(request)
        message_id = request.match_info["message_id"]
        if message_id == "@original":
            message_id = record.original_id or ""
        if message_id != record.original_id and message_id not in record.followup_ids:
            raise DiscordError(404, 10008, "Unknown Message")
        message = self._messages[message_id]
        if message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return record, message

    async def _execute_webhook(self, request: web.Request) -> web.Response:
        call: Call = request[CALL]
        record = self._webhook_interaction(request)
        body: JSON = call.json or {}
        if record.loading:  # the first followup after a defer resolves the loading message
            message = self._messages[str(record.original_id)]
            self._edit(message, body, call.uploads, resolving=True)
            record.loading = False
        else:
            message = self._interaction_message(record, body, call.uploads, followup=True)
        record.followup_ids.append(message.id)
        if not _flag_set(call.query, "wait"):
            return _no_content()
        return _json_response(message.payload)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        return _json_response(self._webhook_message(request)[1].payload)

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        call: Call = request[CALL]
        record, message = self._webhook_message(request)
        resolving = record.loading and message.id == record.original_id
        self._edit(message, call.json or {}, call.uploads, resolving=resolving)
        if resolving:
            record.loading = False
        return _json_response(message.payload)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        self._webhook_message(request)[1].deleted = True
        return _no_content()

    # the CDN

    async def _cdn(self, request: web.Request) -> web.Response:
        stored = self._attachments.get(request.match_info["attachment_id"])
        if stored is None or stored[0]["filename"] != unquote(request.match_info["filename"]):
            return web.Response(status=404, text="Not Found")
        attachment, data = stored
        return web.Response(body=data, content_type=attachment["content_type"])

    # messages

    def _message_payload(self, channel_id: str, *, flags: int, message_type: int) -> JSON:
        return {
            "id": snowflake(),
            "type": message_type,
            "channel_id": channel_id,
            "author": self.bot_user,
            "content": "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": flags,
        }

    def _interaction_message(
        self,
        record: InteractionRecord,
        body: JSON,
        uploads: list[Upload],
        *,
        loading: bool = False,
        followup: bool = False,
    ) -> StoredMessage:
        flags = (body.get("flags") or 0) & WEBHOOK_MESSAGE_FLAGS
        command = record.type == InteractionType.APPLICATION_COMMAND
        payload = self._message_payload(
            record.channel_id,
            flags=(flags & EPHEMERAL) | LOADING if loading else flags,
            message_type=MESSAGE_CHAT_INPUT_COMMAND if command else MESSAGE_DEFAULT,
        )
        metadata: JSON = {
            "id": record.id,
            "type": record.type,
            "user": record.user,
            "authorizing_integration_owners": record.authorizing_integration_owners,
        }
        if followup and record.original_id is not None:
            metadata["original_response_message_id"] = record.original_id
        if record.message_id is not None:
            metadata["interacted_message_id"] = record.message_id
        payload.update(
            webhook_id=self.application_id, application_id=self.application_id, interaction_metadata=metadata
        )
        if not loading:
            self._apply_body(payload, body, uploads)
        return self._store(payload)

    def _store(self, payload: JSON) -> StoredMessage:
        message = StoredMessage(payload)
        self._messages[message.id] = message
        return message

    def _edit(self, message: StoredMessage, body: JSON, uploads: list[Upload], *, resolving: bool = False) -> None:
        """Apply an edit body; ``resolving`` turns a deferred loading message into the real response."""
        payload = copy.deepcopy(message.payload)
        requested = body.get("flags") or 0
        if resolving:
            payload["flags"] = (payload["flags"] & EPHEMERAL) | (requested & CHANNEL_MESSAGE_FLAGS)
        elif "flags" in body:
            payload["flags"] = (payload["flags"] & ~SUPPRESS_EMBEDS) | (requested & SUPPRESS_EMBEDS)
        self._apply_body(payload, body, uploads)
        if not resolving:
            payload["edited_timestamp"] = iso_now()
        message.history.append(message.payload)
        message.payload = payload

    def _apply_body(self, payload: JSON, body: JSON, uploads: list[Upload]) -> None:
        """Copy content, embeds, components and attachments from a create/edit body, then validate."""
        for key, empty in (("content", ""), ("embeds", []), ("components", [])):
            if key in body:
                payload[key] = empty if body[key] is None else body[key]
        payload["embeds"] = [{"type": "rich", **embed} for embed in payload["embeds"]]
        if "attachments" in body or uploads:
            payload["attachments"] = self._merge_attachments(
                payload["channel_id"], payload["attachments"], body.get("attachments"), uploads
            )
        if len(payload["content"]) > MAX_CONTENT_LENGTH:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT_LENGTH} or fewer in length.")
        if not (payload["content"] or payload["embeds"] or payload["components"] or payload["attachments"]):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def _merge_attachments(
        self, channel_id: str, current: list[JSON], requested: list[JSON] | None, uploads: list[Upload]
    ) -> list[JSON]:
        """Discord's rule: ``attachments`` lists what the message keeps (existing ids) and describes new
        files (``id`` n for part ``files[n]``); without it existing attachments stay. Unlisted files are added."""
        by_field = {upload.field: upload for upload in uploads}
        kept = {attachment["id"]: attachment for attachment in current}
        result = list(current) if requested is None else []
        used: set[str] = set()
        for entry in requested or []:
            upload = by_field.get(f"files[{entry['id']}]")
            if upload is not None:
                result.append(self._upload_attachment(channel_id, upload, entry.get("description")))
                used.add(upload.field)
            elif str(entry["id"]) in kept:
                result.append(kept[str(entry["id"])])
            else:
                raise _form_error("attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry['id']}.")
        result.extend(self._upload_attachment(channel_id, u, None) for u in uploads if u.field not in used)
        return result

    def _upload_attachment(self, channel_id: str, upload: Upload, description: str | None) -> JSON:
        content_type = mimetypes.guess_type(upload.filename)[0] or upload.content_type
        attachment = self._new_attachment(
            upload.data, upload.filename, content_type, kind="attachments", parent_id=channel_id
        )
        if description is not None:
            attachment["description"] = description
        return attachment

    def _new_attachment(self, data: bytes, filename: str, content_type: str, *, kind: str, parent_id: str) -> JSON:
        attachment_id = snowflake()
        now = int(time.time())
        path = f"{kind}/{parent_id}/{attachment_id}/{quote(filename)}"
        signature = f"?ex={now + 86_400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        attachment: JSON = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": f"{self.url}/cdn/{path}{signature}",
            "proxy_url": f"{self.url}/media/{path}{signature}",
            "content_type": content_type,
        }
        self._attachments[attachment_id] = (attachment, data)
        return copy.deepcopy(attachment)
