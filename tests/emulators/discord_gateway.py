"""A local Discord gateway, payload builders and a harness for driving a real discord.py client in tests.

How discord.py is connected, using only the two places where traffic leaves it:

- **HTTP**: every REST call (including interaction callbacks and followups, which discord.py's webhook
  adapter builds from the same :class:`discord.http.Route`) is addressed from ``Route.BASE``, the attribute
  discord.py's own ``_set_api_version`` writes; attachment downloads use the URLs in the payloads and
  avatar/icon assets use ``Asset.BASE``. :func:`redirect_discord` points these at :class:`DiscordRestEmulator`.
- **Gateway**: discord.py 2.7 opens ``DiscordWebSocket.DEFAULT_GATEWAY`` (it does not ask ``GET /gateway/bot``)
  and reconnects to READY's ``resume_gateway_url``. :class:`DiscordGateway` is a websocket server speaking
  gateway v10 (HELLO, IDENTIFY, heartbeats and ACKs, READY, GUILD_CREATE, DISPATCH, zlib-stream transport
  compression), so events reach discord.py's own ``DiscordWebSocket.received_message`` and
  ``ConnectionState.parse_*`` exactly as on a live connection: no client internals are replaced.

Determinism: :meth:`DiscordGateway.dispatch` sends an event, then requests a heartbeat (opcode 1, as Discord
may); discord.py handles gateway messages one at a time and answers with the last sequence it saw, so once
that answer arrives the event has been parsed and its handlers scheduled. :meth:`DiscordGateway.interact`
additionally waits until the bot acknowledged the interaction over REST (Discord's 3 s window).

The builders produce INTERACTION_CREATE ``d`` payloads as documented in
https://discord.com/developers/docs/interactions/receiving-and-responding (guild use: ``guild_id``,
``member`` with ``permissions``; DMs: ``user``; both: ``channel``, ``token``, ``version``,
``app_permissions``, ``locale``, ``entitlements``, ``authorizing_integration_owners``, ``context``,
``attachment_size_limit``) and GUILD_CREATE payloads for guilds the bot is in.

Left out: RESUME (the emulated connection never drops), INVALID_SESSION and RECONNECT, sharding (READY carries
no ``shard``),
request-guild-members chunking, voice, ETF encoding, zstd-stream compression (frames go uncompressed, which
discord.py accepts), and gateway events that real Discord would send as a result of REST calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import socket
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import discord
import yarl
from aiohttp import WSMsgType, web
from discord.asset import Asset
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.emulators.discord_rest import (
    API_PREFIX,
    DEFAULT_UPLOAD_LIMIT,
    JSON,
    DiscordRestEmulator,
    InteractionRecord,
    InteractionType,
    iso_now,
    snowflake,
)

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41_250
DISPATCH_TIMEOUT_S = 10.0  # for the client to confirm an event
CONNECT_TIMEOUT_S = 10.0  # for a client to log in, connect and become ready
ACK_GRACE_S = 1.0  # how much longer than the response window interact() waits before reporting no answer


class Opcode(IntEnum):
    """https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-opcodes"""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    HELLO = 10
    HEARTBEAT_ACK = 11


class OptionType(IntEnum):
    """https://discord.com/developers/docs/interactions/application-commands#application-command-object-application-command-option-type"""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    USER = 6
    ATTACHMENT = 11


# Channel types, interaction context types, component types.
GUILD_TEXT = 0
DM = 1
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1
COMPONENT_BUTTON = 2

# Permission bits: https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags
ADMINISTRATOR = 1 << 3
MEMBER_PERMISSIONS = (
    (1 << 6)  # ADD_REACTIONS
    | (1 << 10)  # VIEW_CHANNEL
    | (1 << 11)  # SEND_MESSAGES
    | (1 << 14)  # EMBED_LINKS
    | (1 << 15)  # ATTACH_FILES
    | (1 << 16)  # READ_MESSAGE_HISTORY
    | (1 << 31)  # USE_APPLICATION_COMMANDS
)
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT


# payload builders


def user_payload(user_id: str | int, username: str, *, global_name: str | None = None, bot: bool = False) -> JSON:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def text_channel_payload(channel_id: str | int, guild_id: str | int, name: str = "general") -> JSON:
    """A guild text channel object (type 0)."""
    return {
        "id": str(channel_id),
        "type": GUILD_TEXT,
        "guild_id": str(guild_id),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "parent_id": None,
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def dm_channel_payload(channel_id: str | int, recipient: JSON) -> JSON:
    """A DM channel object (type 1) with the bot."""
    return {"id": str(channel_id), "type": DM, "last_message_id": None, "flags": 0, "recipients": [recipient]}


def member_payload(user: JSON, *, roles: Sequence[str] = (), permissions: int = MEMBER_PERMISSIONS) -> JSON:
    """A guild member object as interactions carry it (with ``user`` and the ``permissions`` string)."""
    return {
        "user": user,
        "roles": list(roles),
        "nick": None,
        "avatar": None,
        "banner": None,
        "joined_at": iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "permissions": str(permissions),
    }


def guild_payload(
    guild_id: str | int,
    *,
    name: str = "Test Guild",
    owner_id: str | int,
    channels: Sequence[JSON] = (),
    members: Sequence[JSON] = (),
) -> JSON:
    """The ``d`` of a GUILD_CREATE for an available guild (the gateway adds the bot's own member)."""
    guild_id = str(guild_id)
    everyone = {
        "id": guild_id,
        "name": "@everyone",
        "permissions": str(MEMBER_PERMISSIONS),
        "position": 0,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }
    return {
        "id": guild_id,
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "features": [],
        "roles": [everyone],
        "emojis": [],
        "stickers": [],
        "joined_at": iso_now(),
        "large": False,
        "unavailable": False,
        "member_count": len(members) + 1,
        "members": list(members),
        "channels": [{k: v for k, v in channel.items() if k != "guild_id"} for channel in channels],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


@dataclass(frozen=True)
class Caller:
    """Who triggers an interaction and where: a guild member in a text channel, or a user in a DM."""

    user: JSON
    channel: JSON
    guild_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = MEMBER_PERMISSIONS
    app_permissions: int = MEMBER_PERMISSIONS
    locale: str = "en-US"


def guild_caller(
    user: JSON,
    *,
    guild_id: str | int,
    channel_id: str | int,
    roles: Sequence[str] = (),
    permissions: int = MEMBER_PERMISSIONS,
) -> Caller:
    """A member of ``guild_id`` using the bot in text channel ``channel_id``."""
    channel = {**text_channel_payload(channel_id, guild_id), "permissions": str(permissions)}
    return Caller(user, channel, str(guild_id), tuple(roles), permissions)


def dm_caller(user: JSON, *, channel_id: str | int | None = None) -> Caller:
    """A user using the bot in their DM with it."""
    return Caller(user, dm_channel_payload(channel_id or snowflake(), user))


@dataclass(frozen=True)
class Option:
    """One entry of an interaction's ``data.options``, with the objects it adds to ``data.resolved``."""

    payload: JSON
    users: tuple[JSON, ...] = ()
    attachments: tuple[JSON, ...] = ()


def _value_option(name: str, option_type: OptionType, value: Any, focused: bool) -> Option:
    payload: JSON = {"name": name, "type": option_type, "value": value}
    if focused:
        payload["focused"] = True
    return Option(payload)


def string_option(name: str, value: str, *, focused: bool = False) -> Option:
    """A string option (type 3); ``focused`` marks the one being autocompleted."""
    return _value_option(name, OptionType.STRING, value, focused)


def integer_option(name: str, value: int, *, focused: bool = False) -> Option:
    """An integer option (type 4)."""
    return _value_option(name, OptionType.INTEGER, value, focused)


def user_option(name: str, user: JSON) -> Option:
    """A user option (type 6): the value is the id, the user goes to ``resolved.users`` (and ``members``)."""
    return Option({"name": name, "type": OptionType.USER, "value": user["id"]}, users=(user,))


def attachment_option(name: str, attachment: JSON) -> Option:
    """An attachment option (type 11), e.g. with an object from ``DiscordRestEmulator.add_attachment``."""
    return Option({"name": name, "type": OptionType.ATTACHMENT, "value": attachment["id"]}, attachments=(attachment,))


def _nested(name: str, option_type: OptionType, children: Sequence[Option]) -> Option:
    return Option(
        {"name": name, "type": option_type, "options": [child.payload for child in children]},
        users=tuple(user for child in children for user in child.users),
        attachments=tuple(attachment for child in children for attachment in child.attachments),
    )


def subcommand(name: str, *options: Option) -> Option:
    """A subcommand (type 1) with its options."""
    return _nested(name, OptionType.SUB_COMMAND, options)


def subcommand_group(name: str, *subcommands: Option) -> Option:
    """A subcommand group (type 2) holding one subcommand."""
    return _nested(name, OptionType.SUB_COMMAND_GROUP, subcommands)


def _interaction_token(interaction_id: str) -> str:
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class InteractionBuilder:
    """Builds INTERACTION_CREATE ``d`` payloads for one application; see :attr:`DiscordGateway.builder`."""

    application_id: str
    attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT

    def slash_command(
        self,
        caller: Caller,
        name: str,
        *options: Option,
        command_id: str | None = None,
        command_guild_id: str | int | None = None,
    ) -> JSON:
        """A chat-input command (interaction type 2); ``command_guild_id`` for guild-registered commands."""
        return self._command(InteractionType.APPLICATION_COMMAND, caller, name, options, command_id, command_guild_id)

    def autocomplete(
        self,
        caller: Caller,
        name: str,
        *options: Option,
        command_id: str | None = None,
        command_guild_id: str | int | None = None,
    ) -> JSON:
        """An autocomplete request (interaction type 4); exactly one option should be ``focused``."""
        return self._command(
            InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE, caller, name, options, command_id, command_guild_id
        )

    def button_click(self, caller: Caller, custom_id: str, message: JSON) -> JSON:
        """A button click (interaction type 3) on ``message``, which must hold the button in its components."""
        payload = self._base(InteractionType.MESSAGE_COMPONENT, caller)
        payload["data"] = {"custom_id": custom_id, "component_type": COMPONENT_BUTTON}
        payload["message"] = message
        return payload

    def _command(
        self,
        interaction_type: InteractionType,
        caller: Caller,
        name: str,
        options: Sequence[Option],
        command_id: str | None,
        command_guild_id: str | int | None,
    ) -> JSON:
        data: JSON = {"id": command_id or snowflake(), "name": name, "type": 1}
        if options:
            data["options"] = [option.payload for option in options]
        resolved: JSON = {}
        users = {user["id"]: user for option in options for user in option.users}
        if users:
            resolved["users"] = users
            if caller.guild_id is not None:
                resolved["members"] = {
                    uid: {k: v for k, v in member_payload(user).items() if k not in ("user", "deaf", "mute")}
                    for uid, user in users.items()
                }
        attachments = {a["id"]: a for option in options for a in option.attachments}
        if attachments:
            resolved["attachments"] = attachments
        if resolved:
            data["resolved"] = resolved
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        payload = self._base(interaction_type, caller)
        payload["data"] = data
        return payload

    def _base(self, interaction_type: InteractionType, caller: Caller) -> JSON:
        interaction_id = snowflake()
        payload: JSON = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": interaction_type,
            "token": _interaction_token(interaction_id),
            "version": 1,
            "channel_id": caller.channel["id"],
            "channel": caller.channel,
            "app_permissions": str(caller.app_permissions),
            "locale": caller.locale,
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if caller.guild_id is not None:
            payload.update(
                guild_id=caller.guild_id,
                guild={"id": caller.guild_id, "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member_payload(caller.user, roles=caller.roles, permissions=caller.permissions),
                authorizing_integration_owners={"0": caller.guild_id},
                context=CONTEXT_GUILD,
            )
        else:
            payload.update(user=caller.user, authorizing_integration_owners={"0": "0"}, context=CONTEXT_BOT_DM)
        return payload


# pointing discord.py at the emulators


@contextlib.contextmanager
def redirect_discord(rest_url: str, gateway_url: str) -> Iterator[None]:
    """Point discord.py at emulators for the duration of the block, restoring the real addresses after.

    Sets ``discord.http.Route.BASE`` (all REST calls, interaction callbacks and webhook followups included),
    ``discord.asset.Asset.BASE`` (avatars and icons; the emulator CDN answers 404 for them) and
    ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``. These are process-wide class attributes.
    """
    saved = (Route.BASE, Asset.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    Route.BASE = rest_url + API_PREFIX
    Asset.BASE = rest_url + "/cdn"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE, Asset.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


# the gateway


class GatewaySession:
    """One client's websocket connection to :class:`DiscordGateway`."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        self.session_id = secrets.token_hex(16)
        self.sequence = 0  # of the last dispatch sent
        self.acknowledged_sequence = 0  # the highest sequence the client reported in a heartbeat
        self.identify: JSON | None = None
        self.closed = False
        self._deflate = zlib.compressobj() if compress else None
        self._send_lock = asyncio.Lock()
        self._heartbeats = asyncio.Condition()

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload)
        async with self._send_lock:
            if self._deflate is None:
                await self.ws.send_str(text)
            else:  # zlib-stream: one shared context, every message ends with a Z_SYNC_FLUSH
                await self.ws.send_bytes(self._deflate.compress(text.encode()) + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    async def send_event(self, event: str, data: JSON) -> int:
        """Send a DISPATCH and return its sequence number."""
        self.sequence += 1
        sequence = self.sequence
        await self.send({"op": Opcode.DISPATCH, "t": event, "s": sequence, "d": data})
        return sequence

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an event and return once the client has handled it (see the module docstring)."""
        sequence = await self.send_event(event, data)
        await self.send({"op": Opcode.HEARTBEAT, "d": None})
        try:
            async with asyncio.timeout(DISPATCH_TIMEOUT_S):
                async with self._heartbeats:
                    await self._heartbeats.wait_for(lambda: self.acknowledged_sequence >= sequence or self.closed)
        except TimeoutError:
            raise TimeoutError(f"the client did not confirm {event} (sequence {sequence}) in time") from None
        if self.acknowledged_sequence < sequence:
            raise ConnectionError(f"the client disconnected before confirming {event}")

    async def heartbeat(self, sequence: int | None) -> None:
        async with self._heartbeats:
            self.acknowledged_sequence = max(self.acknowledged_sequence, sequence or 0)
            self._heartbeats.notify_all()
        await self.send({"op": Opcode.HEARTBEAT_ACK})

    async def mark_closed(self) -> None:
        async with self._heartbeats:
            self.closed = True
            self._heartbeats.notify_all()


class DiscordGateway:
    """Discord's gateway v10 on a local websocket, plus a harness for discord.py clients.

    ``guilds`` are GUILD_CREATE payloads (:func:`guild_payload`) sent after READY; their channels are made
    known to the REST emulator. An IDENTIFY asking for privileged intents beyond ``privileged_intents`` is
    closed with 4014, as Discord does when they are not enabled for the application.
    """

    def __init__(self, rest: DiscordRestEmulator, *, guilds: Sequence[JSON] = (), privileged_intents: int = 0) -> None:
        self.rest = rest
        self.guilds = list(guilds)
        self.privileged_intents = privileged_intents
        self.sessions: list[GatewaySession] = []
        self._clients: dict[discord.Client, asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        for guild in self.guilds:
            for channel in guild["channels"]:
                rest.add_channel({**channel, "guild_id": guild["id"]})

    @property
    def url(self) -> str:
        """The websocket URL, e.g. ``ws://127.0.0.1:40123/``."""
        if self._url is None:
            raise RuntimeError("the gateway is not started")
        return self._url

    @property
    def builder(self) -> InteractionBuilder:
        """Interaction payload builder for the emulated application and its upload limit."""
        return InteractionBuilder(self.rest.application_id, self.rest.upload_limit)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._url = f"ws://127.0.0.1:{sock.getsockname()[1]}/"
        log.debug("Discord gateway emulator listening on %s", self._url)

    async def close(self) -> None:
        """Disconnect the clients :meth:`connect` started, then close any other connection and the server."""
        for client in list(self._clients):
            await self.disconnect(client)
        for session in self.sessions:
            if not session.closed:  # a client its owner did not close: end it with a code it won't reconnect on
                log.warning("closing gateway session %s of a client that is still connected", session.session_id)
                await session.ws.close(code=4004, message=b"Authentication failed.")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # the harness

    async def connect(self, client: discord.Client) -> None:
        """Do what ``client.start(token)`` does (login over REST, then the gateway connection in a task)
        and return once the client is ready. Needs :func:`redirect_discord` to be active.

        discord.py fires ``on_ready`` only after ``guild_ready_timeout`` (2 s unless the client was built with
        another) has passed without a GUILD_CREATE, so test clients should pass a small one.
        """
        await client.login(self.rest.token)
        task = asyncio.create_task(client.connect(), name=f"discord-client-{id(client):x}")
        self._clients[client] = task
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            await self.disconnect(client)  # raises what stopped the connection (e.g. PrivilegedIntentsRequired)
            raise TimeoutError(f"the client was not ready within {CONNECT_TIMEOUT_S}s")

    async def disconnect(self, client: discord.Client) -> None:
        """Close a client and wait for the connection task :meth:`connect` started."""
        await client.close()
        task = self._clients.pop(client, None)
        if task is not None:
            await task

    def session(self, client: discord.Client) -> GatewaySession:
        """The open session of a connected client (however it was started)."""
        ws = client.ws
        for session in reversed(self.sessions):
            if ws is not None and not session.closed and session.session_id == ws.session_id:
                return session
        raise LookupError("the client is not connected to this gateway")

    async def dispatch(self, client: discord.Client, event: str, data: JSON) -> None:
        """Deliver a DISPATCH event and return once the client has parsed it."""
        await self.session(client).dispatch(event, data)

    async def interact(self, client: discord.Client, payload: JSON) -> InteractionRecord:
        """Deliver an INTERACTION_CREATE, wait until the bot acknowledged it, and return its REST record.

        Raises TimeoutError if no callback succeeded within the response window (Discord would tell the
        user "The application did not respond"). Later calls (followups, edits) are awaited with
        ``rest.wait_for(...)``.
        """
        record = self.rest.register_interaction(payload)
        await self.dispatch(client, "INTERACTION_CREATE", payload)
        try:
            await self.rest.wait_for(lambda: record.acknowledged, timeout=self.rest.response_window + ACK_GRACE_S)
        except TimeoutError as error:
            raise TimeoutError(f"interaction {record.id} was not acknowledged in time; {error}") from None
        return record

    # the server side

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        session = GatewaySession(ws, compress=request.query.get("compress") == "zlib-stream")
        self.sessions.append(session)
        await session.send({"op": Opcode.HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._receive(session, json.loads(message.data))
        finally:
            await session.mark_closed()
        return ws

    async def _receive(self, session: GatewaySession, payload: JSON) -> None:
        op = payload.get("op")
        if op == Opcode.HEARTBEAT:
            await session.heartbeat(payload.get("d"))
        elif op == Opcode.IDENTIFY:
            await self._identify(session, payload["d"])
        else:
            log.debug("ignoring gateway opcode %s (presence updates, member requests, voice ...)", op)

    async def _identify(self, session: GatewaySession, identify: JSON) -> None:
        if identify.get("intents", 0) & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.identify = identify
        ready: JSON = {
            "v": 10,
            "user": self.rest.bot_user,
            "guilds": [{"id": guild["id"], "unavailable": True} for guild in self.guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": self.rest.application_id, "flags": self.rest.application["flags"]},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "auth": {},
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
        }
        await session.send_event("READY", ready)
        bot_member = member_payload(self.rest.bot_user)
        for guild in self.guilds:
            await session.send_event("GUILD_CREATE", {**guild, "members": [bot_member, *guild["members"]]})


class EmulatedDiscord(NamedTuple):
    rest: DiscordRestEmulator
    gateway: DiscordGateway


@contextlib.asynccontextmanager
async def emulated_discord(
    *, guilds: Sequence[JSON] = (), privileged_intents: int = 0, **rest_options: Any
) -> AsyncIterator[EmulatedDiscord]:
    """A started REST emulator and gateway with discord.py redirected to them; everything is closed after.

    ``rest_options`` go to :class:`DiscordRestEmulator` (``token``, ``upload_limit``, ``response_window`` ...).
    """
    async with (
        DiscordRestEmulator(**rest_options) as rest,
        DiscordGateway(rest, guilds=guilds, privileged_intents=privileged_intents) as gateway,
    ):
        with redirect_discord(rest.url, gateway.url):
            yield EmulatedDiscord(rest, gateway)
