"""Fidelity check: the OFFICIAL iTerm2 Python client (PyPI `iterm2`) against termloom's fake.

The fake is started with a temporary HOME, so it listens where the official client looks on
any system: `~/Library/Application Support/iTerm2/private/socket` (the client only switches to
TCP when that file does not exist). Credentials travel the official way, in ITERM2_COOKIE and
ITERM2_KEY.

Run (from the workspace root):
    python3 -m venv .venv && .venv/bin/pip install -r tests/iterm_fake/requirements.txt
    .venv/bin/python -m pytest tests/iterm_fake -q
"""

from __future__ import annotations

import asyncio
import shlex
import time

import iterm2
import pytest
import websockets

from conftest import deadline

TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def fresh_client_state():
    """The official client keeps process-wide state (the App singleton, notification
    handlers) that its own `run_until_complete` resets on disconnect. These tests open one
    connection each with `Connection.async_create`, so reset it the same way in between."""
    iterm2.app.invalidate_app()
    iterm2.notifications._handlers.clear()  # noqa: SLF001
    yield
    iterm2.app.invalidate_app()
    iterm2.notifications._handlers.clear()  # noqa: SLF001


async def poll(what: str, probe, seconds: float = TIMEOUT):
    """Calls async `probe` until it returns something truthy, or fails after `seconds`."""
    end = deadline(seconds)
    last = None
    while time.monotonic() < end:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


async def screen_lines(session: iterm2.Session) -> list[str]:
    contents = await session.async_get_screen_contents()
    return [contents.line(i).string for i in range(contents.number_of_lines)]


def test_official_client_end_to_end(fake):
    async def scenario():
        connection = await iterm2.Connection.async_create()
        assert connection.iterm2_protocol_version >= (1, 0)
        app = await iterm2.async_get_app(connection)
        assert app is not None

        new_sessions: list[str] = []
        new_session_seen = asyncio.Event()

        async def on_new_session(_connection, notification):
            new_sessions.append(notification.session_id)
            new_session_seen.set()

        token = await iterm2.notifications.async_subscribe_to_new_session_notification(
            connection, on_new_session
        )

        window = await iterm2.Window.async_create(connection)
        assert window is not None, "CreateTab made no window"
        session = window.current_tab.current_session
        assert session is not None

        # The new-session notification names the session CreateTab returned.
        await asyncio.wait_for(new_session_seen.wait(), TIMEOUT)
        await poll("the new session's notification", _value(session.session_id in new_sessions))

        # Split: a second real shell beside the first.
        right = await session.async_split_pane(vertical=True)
        assert right is not None and right.session_id != session.session_id
        await app.async_refresh()
        tab = app.get_tab_by_id(window.current_tab.tab_id)
        assert tab is not None
        ids = {s.session_id for s in tab.sessions}
        assert ids == {session.session_id, right.session_id}
        assert tab.root.vertical is True

        # Type a command, then find its output on the screen.
        await right.async_send_text("echo hello-fake\n")
        lines = await poll(
            "hello-fake on the screen",
            lambda: _screen_has(right, "hello-fake"),
        )
        assert "hello-fake" in lines

        # user.* variables on the session and the app, values round-trip as JSON.
        await session.async_set_variable("user.fake_test", "v1")
        assert await session.async_get_variable("user.fake_test") == "v1"
        await app.async_set_variable("user.count", 42)
        assert await app.async_get_variable("user.count") == 42
        assert await session.async_get_variable("user.never_set") is None
        with pytest.raises(iterm2.rpc.RPCException, match="INVALID_NAME"):
            await session.async_set_variable("not_user", 1)
        # Built-in variables exist too.
        assert await session.async_get_variable("id") == session.session_id

        await iterm2.notifications.async_unsubscribe(connection, token)
        await window.async_close(force=True)
        await poll("the window to close", lambda: _no_windows(app))

    asyncio.run(scenario())


def test_prompt_notifications_from_osc_133(fake):
    """A shell that prints OSC 133 marks gives real COMMAND_START/COMMAND_END events."""
    shell = (
        "env PS1='\\[\\e]133;D;$?\\a\\e]133;A\\a\\]$ \\[\\e]133;B\\a\\]' "
        "PS0='\\e]133;C\\a' /bin/bash --norc --noprofile"
    )

    async def scenario():
        connection = await iterm2.Connection.async_create()
        app = await iterm2.async_get_app(connection)
        window = await iterm2.Window.async_create(connection, command=shell)
        assert window is not None
        session = window.current_tab.current_session
        modes = [
            iterm2.PromptMonitor.Mode.PROMPT,
            iterm2.PromptMonitor.Mode.COMMAND_START,
            iterm2.PromptMonitor.Mode.COMMAND_END,
        ]
        # Wait for the first prompt before typing, so the shell is ready.
        await poll("the first prompt", lambda: iterm2.async_get_last_prompt(connection, session.session_id))
        async with iterm2.PromptMonitor(connection, session.session_id, modes=modes) as monitor:
            await session.async_send_text("sh -c 'exit 3'\n")
            events = []
            while not any(m == iterm2.PromptMonitor.Mode.COMMAND_END for m, _, _ in events):
                events.append(
                    await asyncio.wait_for(monitor.async_get(include_id=True), TIMEOUT)
                )
        kinds = [m for m, _, _ in events]
        assert iterm2.PromptMonitor.Mode.COMMAND_START in kinds
        start, prompt_id = next(
            (v, i) for m, v, i in events if m == iterm2.PromptMonitor.Mode.COMMAND_START
        )
        assert start == "sh -c 'exit 3'"
        end = next(v for m, v, _ in events if m == iterm2.PromptMonitor.Mode.COMMAND_END)
        assert end == 3
        # That prompt, fetched by id, is finished and remembers its command and status.
        prompt = await iterm2.prompt.async_get_prompt_by_id(
            connection, session.session_id, prompt_id
        )
        assert prompt is not None
        assert prompt.command == "sh -c 'exit 3'"
        assert prompt.state == iterm2.PromptState.FINISHED
        # The latest prompt is the next one, still being edited.
        latest = await iterm2.async_get_last_prompt(connection, session.session_id)
        assert latest is not None and latest.unique_id != prompt_id
        await window.async_close(force=True)
        await poll("the window to close", lambda: _no_windows(app))

    asyncio.run(scenario())


def test_wrong_cookie_is_http_401(fake):
    """The upgrade is refused with 401 for a wrong cookie, as iTerm2 does."""

    async def scenario():
        headers = {
            "origin": "ws://localhost/",
            "x-iterm2-library-version": "python 2.30",
            "x-iterm2-disable-auth-ui": "true",
            "x-iterm2-cookie": "not-the-cookie",
            "x-iterm2-key": fake.key,
        }
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as err:
            async with websockets.legacy.client.unix_connect(
                str(fake.socket),
                "ws://localhost/",
                extra_headers=headers,
                subprotocols=["api.iterm2.com"],
            ):
                pass
        assert err.value.status_code == 401

    asyncio.run(scenario())


def test_socket_is_where_the_official_client_looks(fake):
    conn = iterm2.Connection()
    assert conn._unix_domain_socket_path() == str(fake.socket)  # noqa: SLF001


def _value(v):
    async def probe():
        return v

    return probe


async def _screen_has(session, needle):
    lines = await screen_lines(session)
    # The typed command line also contains the text; look for the output line itself.
    return lines if any(line.strip() == needle for line in lines) else None


async def _no_windows(app):
    await app.async_refresh()
    return not app.terminal_windows
