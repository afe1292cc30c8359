"""Shared fixtures: build and start the fake iTerm2 (`termloom-fake-iterm`)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def fake_binary() -> pathlib.Path:
    """The fake's binary: $TERMLOOM_FAKE_ITERM, else built with cargo (debug profile)."""
    explicit = os.environ.get("TERMLOOM_FAKE_ITERM")
    if explicit:
        return pathlib.Path(explicit)
    subprocess.run(
        [
            "cargo", "build", "--quiet", "-p", "termloom-iterm",
            "--features", "fake", "--bin", "termloom-fake-iterm",
        ],
        cwd=WORKSPACE,
        check=True,
    )
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", WORKSPACE / "target"))
    return target / "debug" / "termloom-fake-iterm"


class Fake:
    """A running fake iTerm2 whose socket is at the default place under a temporary HOME."""

    def __init__(self, home: pathlib.Path, cookie: str, key: str) -> None:
        self.home = home
        self.cookie = cookie
        self.key = key
        env = dict(os.environ, HOME=str(home), ITERM2_COOKIE=cookie, ITERM2_KEY=key)
        env.pop("IT2_SUITE", None)
        self.proc = subprocess.Popen(
            [str(fake_binary()), "--exit-on-stdin-eof"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        # The ready line is the first line; readline() returns "" if the fake died.
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"fake iTerm2 exited with {self.proc.returncode} before ready")
        self.ready = json.loads(line)
        assert self.ready["ready"] is True
        self.socket = pathlib.Path(self.ready["socket"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def fake(monkeypatch):
    # A short HOME: unix socket paths are limited to ~107 bytes.
    home = pathlib.Path(tempfile.mkdtemp(prefix="tlfake", dir="/tmp"))
    cookie, key = uuid.uuid4().hex, uuid.uuid4().hex
    f = Fake(home, cookie, key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("IT2_SUITE", raising=False)
    monkeypatch.setenv("ITERM2_COOKIE", cookie)
    monkeypatch.setenv("ITERM2_KEY", key)
    try:
        yield f
    finally:
        f.stop()
        shutil.rmtree(home, ignore_errors=True)


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds
