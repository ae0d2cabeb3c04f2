"""Tests of the Discord emulation itself, driving a minimal real discord.py bot through it."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.emulators.discord_gateway import (
    ADMINISTRATOR,
    MEMBER_PERMISSIONS,
    EmulatedDiscord,
    attachment_option,
    dm_caller,
    emulated_discord,
    guild_caller,
    guild_payload,
    integer_option,
    string_option,
    subcommand,
    subcommand_group,
    text_channel_payload,
    user_option,
    user_payload,
)
from tests.emulators.discord_rest import DEFAULT_UPLOAD_LIMIT

GUILD_ID = "1100000000000000001"
CHANNEL_ID = "1100000000000000002"
ALICE = user_payload("1100000000000000010", "alice", global_name="Alice")
BOB = user_payload("1100000000000000011", "bob")
ALICE_IN_GUILD = guild_caller(ALICE, guild_id=GUILD_ID, channel_id=CHANNEL_ID)


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"job:(?P<id>[0-9]+):(?P<action>cancel|retry)",
):
    """A persistent button whose custom_id carries a job id and an action."""

    def __init__(self, job_id: int, action: str) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=action.title(), style=discord.ButtonStyle.secondary, custom_id=f"job:{job_id}:{action}"
        )
        super().__init__(button)
        self.job_id = job_id
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[discord.ui.View], match: re.Match[str]
    ) -> JobButton:
        return cls(int(match["id"]), match["action"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.action == "cancel":  # answer by updating the message (callback type 7)
            await interaction.response.edit_message(content=f"Job {self.job_id} cancelled", view=None)
        else:  # acknowledge now (type 6), edit the message through @original later
            await interaction.response.defer()
            await interaction.edit_original_response(content=f"Retrying job {self.job_id}")


class EmulatorBot(commands.Bot):
    def __init__(self, intents: discord.Intents | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            guild_ready_timeout=0.05,
        )
        self.filesize_limits: list[int] = []
        self.response_errors: list[discord.HTTPException] = []
        self.release = asyncio.Event()
        self.slow_delay = 0.0

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)
        for command in COMMANDS:
            self.tree.add_command(command)


def _bot(interaction: discord.Interaction) -> EmulatorBot:
    assert isinstance(interaction.client, EmulatorBot)
    return interaction.client


@app_commands.command(description="Animate an image")
async def video(interaction: discord.Interaction, prompt: str, image: discord.Attachment) -> None:
    await interaction.response.defer(thinking=True)
    data = await image.read()
    _bot(interaction).filesize_limits.append(interaction.filesize_limit)
    result = discord.File(io.BytesIO(data[::-1]), filename="result.bin")
    await interaction.followup.send(f"{prompt}: {len(data)} bytes", file=result)


@app_commands.command(description="Show your balance")
async def balance(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("You have 5 credits", ephemeral=True)


admin = app_commands.Group(name="admin", description="Operator commands")
quota = app_commands.Group(name="quota", description="Quotas", parent=admin)


@admin.command(description="Grant credits")
@app_commands.checks.has_permissions(administrator=True)  # checks the member's "permissions" from the payload
async def grant(interaction: discord.Interaction, user: discord.User, amount: int) -> None:
    await interaction.response.send_message(f"Granted {amount} credits to {user.name} ({user.id})")


@grant.error
async def grant_refused(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    await interaction.response.send_message(f"Refused: {type(error).__name__}", ephemeral=True)


@quota.command(name="set", description="Set the daily quota")
async def quota_set(interaction: discord.Interaction, amount: int) -> None:
    await interaction.response.send_message(f"Quota set to {amount}")


PRESETS = ["fast", "fancy", "quality"]


@app_commands.command(description="Pick a preset")
async def preset(interaction: discord.Interaction, name: str) -> None:
    await interaction.response.send_message(f"Preset {name}")


@preset.autocomplete("name")
async def preset_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=p, value=p) for p in PRESETS if p.startswith(current)]


@app_commands.command(description="Queue a job")
async def queue(interaction: discord.Interaction) -> None:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(42, "cancel")).add_item(JobButton(42, "retry"))
    await interaction.response.send_message("Job 42 queued", view=view)


@app_commands.command(description="Rename")
async def rename(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message("Renaming...")
    await interaction.edit_original_response(content=f"Renamed to {text}")
    original = await interaction.original_response()
    note = await interaction.followup.send(f"Original now says: {original.content}", ephemeral=True, wait=True)
    await note.edit(content=f"{note.content}!")
    await interaction.delete_original_response()


@app_commands.command(description="A job longer than the token lives")
async def longjob(interaction: discord.Interaction) -> None:
    await interaction.response.defer()
    await _bot(interaction).release.wait()
    try:
        await interaction.followup.send("done")
    except discord.HTTPException as error:
        _bot(interaction).response_errors.append(error)
        assert isinstance(interaction.channel, discord.abc.Messageable)
        await interaction.channel.send(f"{interaction.user.mention} your job is done")


@app_commands.command(description="Defers, then puts the result into the original response")
async def render(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    result = discord.File(io.BytesIO(b"frames"), filename="render.mp4", description="the render")
    await interaction.edit_original_response(content="Rendered", attachments=[result])


@app_commands.command(description="Defers ephemerally, then sends two followups")
async def secret(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    await interaction.followup.send("only you see this")  # resolves the ephemeral loading message
    await interaction.followup.send("everyone sees this")


@app_commands.command(description="Answers too late")
async def slow(interaction: discord.Interaction) -> None:
    await asyncio.sleep(_bot(interaction).slow_delay)
    try:
        await interaction.response.send_message("late")
    except discord.NotFound as error:
        _bot(interaction).response_errors.append(error)


COMMANDS: tuple[app_commands.Command[Any, Any, None] | app_commands.Group, ...] = (
    video,
    balance,
    admin,
    preset,
    queue,
    rename,
    longjob,
    render,
    secret,
    slow,
)


@pytest.fixture
async def discord_env() -> AsyncIterator[EmulatedDiscord]:
    guild = guild_payload(GUILD_ID, owner_id=ALICE["id"], channels=[text_channel_payload(CHANNEL_ID, GUILD_ID)])
    async with emulated_discord(guilds=[guild]) as env:
        env.rest.add_user(ALICE)
        env.rest.add_user(BOB)
        yield env


@pytest.fixture
async def bot(discord_env: EmulatedDiscord) -> EmulatorBot:
    """A connected bot; the gateway closes it when ``discord_env`` ends."""
    client = EmulatorBot()
    await discord_env.gateway.connect(client)
    return client


def _text_channel(bot: EmulatorBot) -> discord.TextChannel:
    channel = bot.get_channel(int(CHANNEL_ID))
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_login_ready_and_guild_create(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest = discord_env.rest
    assert bot.user is not None and str(bot.user.id) == rest.application_id
    assert str(bot.application_id) == rest.application_id
    assert [c.route for c in rest.calls[:2]] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    session = discord_env.gateway.session(bot)
    assert session.identify is not None and session.identify["intents"] == discord.Intents.default().value
    guild = bot.get_guild(int(GUILD_ID))
    assert guild is not None and guild.me is not None
    assert _text_channel(bot).guild is guild


async def test_deferred_command_reads_attachment_and_sends_file(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    attachment = rest.add_attachment(b"\x89PNG fake image", "cat.png")
    payload = gateway.builder.slash_command(
        ALICE_IN_GUILD, "video", string_option("prompt", "a cat"), attachment_option("image", attachment)
    )
    record = await gateway.interact(bot, payload)
    assert record.callback == {"type": 5}  # what defer(thinking=True) sends for a slash command

    followups = await rest.wait_for(lambda: rest.followups(record.token))
    message = followups[0]
    assert message is rest.original(record.token)  # the first followup resolves the loading message
    assert message.content == "a cat: 15 bytes" and not message.loading and not message.ephemeral
    assert [a["filename"] for a in message.attachments] == ["result.bin"]
    assert rest.attachment_data(message.attachments[0]) == b"\x89PNG fake image"[::-1]
    assert message.history[0]["flags"] == 128  # it was the loading message before
    assert bot.filesize_limits == [DEFAULT_UPLOAD_LIMIT]

    (callback_call,) = rest.calls_to(r"POST /interactions/\d+/.+/callback")
    assert callback_call.query == {"with_response": "1"} and callback_call.status == 200
    assert rest.calls_to(r"GET /cdn/ephemeral-attachments/.+")[0].status == 200
    (followup_call,) = rest.calls_to(r"POST /webhooks/\d+/.+")
    assert followup_call.query["wait"] == "1"
    assert followup_call.json["content"] == "a cat: 15 bytes"
    assert [(u.field, u.filename, u.data) for u in followup_call.uploads] == [
        ("files[0]", "result.bin", b"\x89PNG fake image"[::-1])
    ]


async def test_ephemeral_response_in_dm(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    payload = gateway.builder.slash_command(dm_caller(BOB), "balance")
    assert "user" in payload and "member" not in payload and payload["context"] == 1
    record = await gateway.interact(bot, payload)
    assert record.callback == {"type": 4, "data": {"content": "You have 5 credits", "flags": 64, "tts": False}}
    original = rest.original(record.token)
    assert original is not None and original.ephemeral and original.content == "You have 5 credits"


async def test_deferred_response_resolved_by_editing_the_original(
    discord_env: EmulatedDiscord, bot: EmulatorBot
) -> None:
    rest, gateway = discord_env
    record = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "render"))
    original = rest.original(record.token)
    assert original is not None
    await rest.wait_for(lambda: not original.loading)
    assert original.content == "Rendered"
    (attachment,) = original.attachments
    assert (attachment["filename"], attachment["description"]) == ("render.mp4", "the render")
    assert rest.attachment_data(attachment) == b"frames"
    (edit,) = rest.calls_to(r"PATCH /webhooks/\d+/.+/messages/@original")
    assert edit.json["attachments"] == [{"id": 0, "filename": "render.mp4", "description": "the render"}]
    assert rest.followups(record.token) == []


async def test_deferred_ephemerality_is_kept_by_the_first_followup(
    discord_env: EmulatedDiscord, bot: EmulatorBot
) -> None:
    rest, gateway = discord_env
    record = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "secret"))
    assert record.callback == {"type": 5, "data": {"flags": 64}}
    await rest.wait_for(lambda: len(rest.followups(record.token)) == 2)
    first, second = rest.followups(record.token)
    assert first is rest.original(record.token) and first.ephemeral and first.content == "only you see this"
    assert not second.ephemeral and second.content == "everyone sees this"


async def test_subcommand_and_subcommand_group(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    operator = guild_caller(
        ALICE, guild_id=GUILD_ID, channel_id=CHANNEL_ID, permissions=MEMBER_PERMISSIONS | ADMINISTRATOR
    )
    grant_options = subcommand("grant", user_option("user", BOB), integer_option("amount", 30))
    grant_payload = gateway.builder.slash_command(operator, "admin", grant_options)
    assert grant_payload["data"]["resolved"]["members"][BOB["id"]]["permissions"]
    record = await gateway.interact(bot, grant_payload)
    original = rest.original(record.token)
    assert original is not None and original.content == f"Granted 30 credits to bob ({BOB['id']})"

    refused = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "admin", grant_options))
    original = rest.original(refused.token)
    assert original is not None and original.content == "Refused: MissingPermissions" and original.ephemeral

    quota_payload = gateway.builder.slash_command(
        ALICE_IN_GUILD, "admin", subcommand_group("quota", subcommand("set", integer_option("amount", 3)))
    )
    record = await gateway.interact(bot, quota_payload)
    original = rest.original(record.token)
    assert original is not None and original.content == "Quota set to 3"


async def test_autocomplete(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    payload = gateway.builder.autocomplete(ALICE_IN_GUILD, "preset", string_option("name", "fa", focused=True))
    record = await gateway.interact(bot, payload)
    assert rest.callback(record.id) == {
        "type": 8,
        "data": {"choices": [{"name": "fast", "value": "fast"}, {"name": "fancy", "value": "fancy"}]},
    }
    assert rest.original(record.token) is None
    chosen = await gateway.interact(
        bot, gateway.builder.slash_command(ALICE_IN_GUILD, "preset", string_option("name", "fast"))
    )
    assert chosen.callback == {"type": 4, "data": {"content": "Preset fast", "tts": False}}


async def test_dynamic_buttons_clicked_after_restart(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    record = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "queue"))
    message = rest.original(record.token)
    assert message is not None and message.content == "Job 42 queued"
    buttons = message.components[0]["components"]
    assert [b["custom_id"] for b in buttons] == ["job:42:cancel", "job:42:retry"]
    await gateway.disconnect(bot)

    restarted = EmulatorBot()  # a fresh process: only add_dynamic_items() in setup_hook knows the buttons
    await gateway.connect(restarted)
    retry = await gateway.interact(
        restarted, gateway.builder.button_click(ALICE_IN_GUILD, "job:42:retry", message.payload)
    )
    assert retry.callback == {"type": 6}  # what defer() sends for a component interaction
    await rest.wait_for(lambda: message.content == "Retrying job 42")
    assert rest.original(retry.token) is message  # @original of a component interaction is its message

    cancel = await gateway.interact(
        restarted, gateway.builder.button_click(ALICE_IN_GUILD, "job:42:cancel", message.payload)
    )
    assert cancel.callback_type == 7
    assert message.content == "Job 42 cancelled" and message.components == []
    assert [state["content"] for state in message.history] == ["Job 42 queued", "Retrying job 42"]


async def test_original_response_and_followup_lifecycle(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    payload = gateway.builder.slash_command(ALICE_IN_GUILD, "rename", string_option("text", "x"))
    record = await gateway.interact(bot, payload)
    original = await rest.wait_for(lambda: rest.original(record.token))
    await rest.wait_for(lambda: original.deleted)
    assert original.content == "Renamed to x" and original.payload["edited_timestamp"] is not None
    assert [state["content"] for state in original.history] == ["Renaming..."]
    (note,) = rest.followups(record.token)
    assert note.content == "Original now says: Renamed to x!" and note.ephemeral
    assert note.payload["interaction_metadata"]["original_response_message_id"] == original.id
    webhook_calls = [c.route for c in rest.calls_to(r"\w+ /webhooks/.+")]
    assert [route.split(" ")[0] for route in webhook_calls] == ["PATCH", "GET", "POST", "PATCH", "DELETE"]
    assert webhook_calls[3].endswith(f"/messages/{note.id}") and webhook_calls[4].endswith("/messages/@original")


async def test_channel_message_with_attachment_edit_and_delete(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest = discord_env.rest
    sent = await _text_channel(bot).send("Here is your video", file=discord.File(io.BytesIO(b"mp4 bytes"), "clip.mp4"))
    assert sent.attachments[0].content_type == "video/mp4"
    assert await sent.attachments[0].read() == b"mp4 bytes"

    edited = await sent.edit(content="Here is your video (edited)")
    assert [a.filename for a in edited.attachments] == ["clip.mp4"]  # an edit without attachments keeps them
    stored = rest.message(sent.id)
    assert stored.content == "Here is your video (edited)"
    assert [state["content"] for state in stored.history] == ["Here is your video"]
    assert rest.attachment_data(stored.attachments[0]) == b"mp4 bytes"
    (post,) = rest.calls_to(r"POST /channels/\d+/messages")
    assert post.json["content"] == "Here is your video" and post.uploads[0].filename == "clip.mp4"

    fetched = await _text_channel(bot).fetch_message(sent.id)
    assert fetched.content == "Here is your video (edited)" and fetched.edited_at is not None
    reply = await fetched.reply("Thanks!")
    assert reply.type is discord.MessageType.reply and reply.reference is not None
    assert reply.reference.message_id == sent.id

    kept = stored.attachments[0]
    await edited.edit(attachments=[edited.attachments[0], discord.File(io.BytesIO(b"srt"), "clip.srt")])
    assert [a["filename"] for a in stored.attachments] == ["clip.mp4", "clip.srt"] and stored.attachments[0] == kept
    await edited.edit(attachments=[])
    assert stored.attachments == []
    await edited.delete()
    assert rest.channel_messages(CHANNEL_ID) == [rest.message(reply.id)]


async def test_rate_limits_are_retried_by_discord_py(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    channel_fault = rest.fail(r"POST /channels/\d+/messages", status=429, retry_after=0.2)
    await _text_channel(bot).send("hello")
    first, second = rest.calls_to(r"POST /channels/\d+/messages")
    assert (first.status, second.status) == (429, 200) and channel_fault.hits == 1
    assert first.response == {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
    assert second.received_at - first.received_at >= 0.2

    rest.fail(r"POST /interactions/\d+/.+/callback", status=429, retry_after=0.2)  # the webhook adapter retries too
    record = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "balance"))
    assert [c.status for c in rest.calls_to(r"POST /interactions/.+")] == [429, 200] and record.acknowledged

    rest.fail(r"GET /users/\d+", status=429, retry_after=0.1, is_global=True)
    assert (await bot.fetch_user(int(BOB["id"]))).name == "bob"
    assert [c.status for c in rest.calls_to(r"GET /users/\d+")] == [429, 200]


async def test_server_errors_are_retried_by_discord_py(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest = discord_env.rest
    rest.fail(r"POST /channels/\d+/messages", status=502)
    await _text_channel(bot).send("hello")
    assert [c.status for c in rest.calls_to(r"POST /channels/\d+/messages")] == [502, 200]


async def test_followup_after_token_expiry_fails(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    record = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "longjob"))
    rest.expire_token(record.token)
    bot.release.set()
    messages = await rest.wait_for(
        lambda: [m for m in rest.channel_messages(CHANNEL_ID) if "webhook_id" not in m.payload]
    )
    assert messages[0].content == f"<@{ALICE['id']}> your job is done"  # the bot fell back to the channel
    (error,) = bot.response_errors
    assert (error.status, error.code, error.text) == (401, 50027, "Invalid Webhook Token")
    original = rest.original(record.token)
    assert original is not None and original.loading  # Discord would show "The application did not respond"


async def test_upload_limit(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    rest.upload_limit = 1024
    image = attachment_option("image", rest.add_attachment(b"x", "a.png"))
    payload = gateway.builder.slash_command(ALICE_IN_GUILD, "video", string_option("prompt", "p"), image)
    assert payload["attachment_size_limit"] == 1024
    record = await gateway.interact(bot, payload)
    await rest.wait_for(lambda: rest.followups(record.token))
    assert bot.filesize_limits == [1024]

    with pytest.raises(discord.HTTPException) as raised:
        await _text_channel(bot).send(file=discord.File(io.BytesIO(b"x" * 1025), "big.bin"))
    assert (raised.value.status, raised.value.code) == (413, 40005)


async def test_acknowledging_after_the_response_window_fails() -> None:
    async with emulated_discord(response_window=0.2) as (rest, gateway):
        late = EmulatorBot()
        late.slow_delay = 0.4
        await gateway.connect(late)
        with pytest.raises(TimeoutError, match="not acknowledged"):
            await gateway.interact(late, gateway.builder.slash_command(dm_caller(BOB), "slow"))
        (callback,) = rest.calls_to(r"POST /interactions/.+")
        assert callback.status == 404 and callback.response == {"message": "Unknown interaction", "code": 10062}
        (error,) = late.response_errors
        assert error.code == 10062


async def test_command_sync(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest = discord_env.rest
    synced = await bot.tree.sync()
    assert {c.name for c in synced} == {c.name for c in COMMANDS}
    admin_command = next(c for c in rest.commands() if c["name"] == "admin")
    assert sorted((o["name"], o["type"]) for o in admin_command["options"]) == [("grant", 1), ("quota", 2)]
    again = await bot.tree.sync()
    assert [c.id for c in again] == [c.id for c in synced]  # ids survive a re-sync
    assert [c.id for c in await bot.tree.fetch_commands()] == [c.id for c in synced]

    guild = discord.Object(int(GUILD_ID))
    bot.tree.copy_global_to(guild=guild)
    assert {c.guild_id for c in await bot.tree.sync(guild=guild)} == {guild.id}
    assert rest.command_syncs == [None, None, GUILD_ID]
    guild_balance = next(c for c in rest.commands(GUILD_ID) if c["name"] == "balance")
    payload = discord_env.gateway.builder.slash_command(
        ALICE_IN_GUILD, "balance", command_id=guild_balance["id"], command_guild_id=GUILD_ID
    )
    assert payload["data"]["guild_id"] == GUILD_ID
    record = await discord_env.gateway.interact(bot, payload)
    assert record.callback_type == 4


async def test_direct_message(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest = discord_env.rest
    user = await bot.fetch_user(int(BOB["id"]))
    sent = await user.send("Your video is ready")
    channel = await bot.fetch_channel(sent.channel.id)
    assert isinstance(channel, discord.DMChannel) and channel.recipient is not None and channel.recipient.id == user.id
    assert [m.content for m in rest.channel_messages(sent.channel.id)] == ["Your video is ready"]
    with pytest.raises(discord.NotFound):
        await bot.fetch_user(1)
    rest.fail(r"POST /channels/\d+/messages", 403, body={"message": "Cannot send messages to this user", "code": 50007})
    with pytest.raises(discord.Forbidden) as closed_dms:
        await user.send("again")
    assert closed_dms.value.code == 50007


async def test_client_started_by_its_owner() -> None:
    async with emulated_discord() as (rest, gateway):
        client = EmulatorBot()
        task = asyncio.create_task(client.start(rest.token))  # as a bot adapter would
        await rest.wait_for(lambda: rest.calls_to("GET /users/@me"))  # logging in has begun: now it can be awaited
        await client.wait_until_ready()
        record = await gateway.interact(client, gateway.builder.slash_command(dm_caller(BOB), "balance"))
        assert record.callback_type == 4
    with pytest.raises(discord.ConnectionClosed):  # the gateway went away under a client left running
        await task
    assert client.is_closed()


async def test_login_and_intent_failures(discord_env: EmulatedDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()
    greedy = EmulatorBot(intents=discord.Intents.default() | discord.Intents(message_content=True))
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await discord_env.gateway.connect(greedy)


async def test_discord_rules_are_enforced(discord_env: EmulatedDiscord, bot: EmulatorBot) -> None:
    rest, gateway = discord_env
    answered = await gateway.interact(bot, gateway.builder.slash_command(ALICE_IN_GUILD, "balance"))
    unanswered = gateway.builder.slash_command(ALICE_IN_GUILD, "balance")
    rest.register_interaction(unanswered)  # Discord sent it, the bot has not answered yet
    api = rest.url + "/api/v10"

    async def post(path: str, body: object) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http, http.post(api + path, json=body) as response:
            return response.status, await response.json() if response.status != 204 else None

    again = {"type": 4, "data": {"content": "again"}}
    status, body = await post(f"/interactions/{answered.id}/{answered.token}/callback", again)
    assert (status, body) == (400, {"message": "Interaction has already been acknowledged.", "code": 40060})
    status, body = await post(f"/interactions/{unanswered['id']}/{unanswered['token']}/callback", {"type": 8})
    assert (status, body["code"]) == (400, 50035)  # autocomplete results only answer autocomplete interactions
    status, body = await post(f"/webhooks/{rest.application_id}/{unanswered['token']}", {"content": "x"})
    assert (status, body) == (404, {"message": "Unknown Webhook", "code": 10015})  # no followups before the callback
    status, body = await post("/channels/1/messages", {"content": "x"})
    assert (status, body) == (401, {"message": "401: Unauthorized", "code": 0})  # bot routes need the bot token
    # without ?with_response and ?wait Discord answers 204 and no body
    callback = {"type": 4, "data": {"content": "hi"}}
    assert await post(f"/interactions/{unanswered['id']}/{unanswered['token']}/callback", callback) == (204, None)
    assert await post(f"/webhooks/{rest.application_id}/{unanswered['token']}", {"content": "more"}) == (204, None)
    assert [m.content for m in rest.followups(unanswered["token"])] == ["more"]

    channel = _text_channel(bot)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send()
    assert (empty.value.status, empty.value.code) == (400, 50006)
    with pytest.raises(discord.NotFound) as unknown_channel:
        await bot.get_partial_messageable(1).send("x")
    assert unknown_channel.value.code == 10003
    with pytest.raises(discord.HTTPException) as unknown_user:
        await bot.create_dm(discord.Object(2))
    assert unknown_user.value.code == 50033
    with pytest.raises(TimeoutError, match="recent calls"):
        await rest.wait_for(lambda: False, timeout=0.05)
