"""The official MCP Python SDK (PyPI `mcp`) drives the real `termloom-mcp` binary over stdio.

It lists the tools and calls list_sessions, read_output and run_command against a private tmux
server that this file starts on its own `-S` socket in a temp dir and kills afterwards.

The binary is $TERMLOOM_MCP_BIN, else it is built with cargo (debug profile).

`test_run_command` needs tmux control mode (run and exit codes): it fails with "cannot run
commands" until that lands.

Run: .venv/bin/python -m pytest -q tests/mcp_python   (scripts/test does)
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = float(os.environ.get("TERMLOOM_TEST_TIMEOUT", "20"))


@functools.lru_cache(maxsize=1)
def server_binary() -> str:
    explicit = os.environ.get("TERMLOOM_MCP_BIN")
    if explicit:
        return explicit
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "termloom-mcp", "--bin", "termloom-mcp"],
        cwd=WORKSPACE,
        check=True,
    )
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", WORKSPACE / "target"))
    return str(target / "debug" / "termloom-mcp")


class Tmux:
    """A private tmux server on a `-S` socket in a short temp dir, with one session `py`."""

    def __init__(self) -> None:
        assert shutil.which("tmux"), "tmux is not installed: run scripts/setup"
        self.dir = tempfile.mkdtemp(prefix="tlpy", dir="/tmp")
        self.socket = os.path.join(self.dir, "s")
        self.state = os.path.join(self.dir, "state")
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.config = os.path.join(self.dir, "tmux.conf")
        with open(self.config, "w") as f:
            f.write("set -g default-terminal screen\nset -g status off\n")
        self.env = {
            "HOME": self.home,
            "SHELL": "/bin/bash",
            "TERM": "xterm-256color",
            "PS1": "$ ",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        self.tmux("new-session", "-d", "-s", "py", "-x", "120", "-y", "30",
                  "/bin/bash", "--norc", "--noprofile")

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, "-f", self.config, *args],
            env=self.env, capture_output=True, text=True, check=True,
        )
        return out.stdout

    def close(self) -> None:
        # The server and its shells are waited for (bounded), so that what they write on the way
        # out (bash's history) does not land in the temp dir after it is removed.
        try:
            pids = [int(p) for p in self.tmux("list-panes", "-a", "-F", "#{pid} #{pane_pid}").split()]
        except subprocess.CalledProcessError:
            pids = []
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie, or none at all, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().rsplit(")", 1)[1].lstrip().startswith("Z")
    except (OSError, IndexError):
        return False


@pytest.fixture
def tmux():
    t = Tmux()
    try:
        yield t
    finally:
        t.close()


def params(t: Tmux) -> StdioServerParameters:
    env = dict(t.env)
    env["RUST_LOG"] = "warn"
    env["TERMLOOM_TMUX_CONFIG"] = t.config
    env["TERMLOOM_SHELL"] = "/bin/bash --norc --noprofile"
    # The pane was started by tmux directly, not by termloom: let the server write to it.
    return StdioServerParameters(
        command=server_binary(),
        args=["-S", t.socket, "--state-dir", t.state, "--scope", "all"],
        env=env,
    )


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None, result
    return result.structured_content


async def with_session(t: Tmux, body) -> None:
    async with stdio_client(params(t)) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "termloom"
            await body(session)


async def poll(what: str, check):
    deadline = time.monotonic() + TIMEOUT
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.05)


def test_lists_tools(tmux):
    async def body(session: ClientSession):
        tools = (await session.list_tools()).tools
        names = {t.name for t in tools}
        for name in ["list_sessions", "read_output", "run_command", "send_text", "create_session"]:
            assert name in names, names
        assert "close_session" not in names, "destructive tools are hidden under the default tier"
        for t in tools:
            assert t.description and t.input_schema["type"] == "object", t.name
            assert t.output_schema is not None, t.name
            assert t.annotations is not None, t.name
        ro = {t.name: t.annotations.read_only_hint for t in tools}
        assert ro["list_sessions"] is True and ro["send_text"] is False

    anyio.run(with_session, tmux, body)


def test_list_sessions_and_read_output(tmux):
    async def body(session: ClientSession):
        listed = structured(await session.call_tool("list_sessions", {}))
        assert listed["count"] == 1, listed
        s = listed["sessions"][0]
        assert s["workspace"] == "py"
        tmux.tmux("send-keys", "-t", "=py:", "-l", "echo from-python-$((6*7))")
        tmux.tmux("send-keys", "-t", "=py:", "Enter")

        async def printed():
            out = structured(await session.call_tool("read_output", {"session": s["id"], "lines": 20}))
            return out if "\nfrom-python-42" in "\n" + out["text"] else None

        out = await poll("the echo in read_output", printed)
        assert out["cursor"], out
        bad = await session.call_tool("read_output", {"session": "no-such-session"})
        assert bad.is_error
        assert "list_sessions" in bad.content[0].text

    anyio.run(with_session, tmux, body)


def test_run_command(tmux):
    """NEEDS TMUX CONTROL MODE (issue 3): run_command returns the exit code and only the output."""

    async def body(session: ClientSession):
        created = structured(await session.call_tool("create_session", {"name": "py-run"}))
        r = structured(await session.call_tool(
            "run_command", {"session": created["id"], "command": "echo sdk-$((40+2))"}))
        assert r["exit_code"] == 0, r
        assert r["output"].strip() == "sdk-42", r
        assert r["timed_out"] is False
        r = structured(await session.call_tool(
            "run_command", {"session": created["id"], "command": "(exit 3)"}))
        assert r["exit_code"] == 3, r

    anyio.run(with_session, tmux, body)


def test_output_changes_reach_a_listen_stream_at_the_newest_protocol(tmux):
    """The SDK's own client negotiates the newest protocol (2026-07-28), where resource updates come
    over `subscriptions/listen`, not `resources/subscribe`."""
    from mcp import Client

    async def main():
        async with Client(params(tmux)) as c:
            assert c.protocol_version >= "2026", c.protocol_version
            created = (await c.call_tool("create_session", {"name": "py-listen"})).structured_content
            uri = f"terminal://{created['id']}/output"
            mon = (await c.call_tool("start_monitoring", {"session": created["id"]})).structured_content
            assert mon["resource"] == uri, mon
            got = []
            async with c.listen(resource_subscriptions=[uri, "terminal://py-listen/output"]) as sub:
                assert list(sub.honored.resource_subscriptions or []) == [uri], sub.honored
                await c.call_tool("send_text", {"session": created["id"], "text": "echo listened-$((6*7))"})
                with anyio.fail_after(TIMEOUT):
                    async for ev in sub:
                        got.append(ev)
                        break
            assert got and uri in str(got[0]), got
            await c.call_tool("stop_monitoring", {"monitor_id": mon["monitor_id"]})

    anyio.run(main)
