#!/usr/bin/env python3
"""Instructions termloom-mcp spends per tool call: callgrind's totals for N and 2N calls, subtracted.

Builds nothing: run `cargo build --profile profiling -p termloom-mcp` first. Starts its own tmux
server on a socket in a temporary directory (never the user's), creates one session through the
server, then makes N (and, in a second run, 2N) calls of one tool over stdio, each under
`valgrind --tool=callgrind`; start-up and the session's creation cancel out in the difference.

    python3 bench/scripts/callgrind_calls.py list|send|read [N]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOOL = sys.argv[1] if len(sys.argv) > 1 else "read"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "profiling", "termloom-mcp")


def run(n: int, d: str) -> int:
    sock = os.path.join(d, f"s{n}")
    out = os.path.join(d, f"cg{n}.out")
    env = dict(os.environ, HOME=d)
    env.pop("TMUX", None)
    subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new", "-d", "-s", "base", "bash --norc"], check=True, env=env)
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", BIN, "-S", sock,
                          "--state-dir", os.path.join(d, f"state{n}")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ids = iter(range(1, 10**9))

    def call(method, params, notify=False):
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            msg["id"] = next(ids)
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        return None if notify else json.loads(p.stdout.readline())

    call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "cg", "version": "0"}})
    call("notifications/initialized", {}, notify=True)
    sid = call("tools/call", {"name": "create_session", "arguments": {"name": "w"}})["result"]["structuredContent"]["id"]
    for i in range(n):
        if TOOL == "list":
            call("tools/call", {"name": "list_sessions", "arguments": {}})
        elif TOOL == "send":
            call("tools/call", {"name": "send_text", "arguments": {"session": sid, "text": "x", "enter": False}})
            if i % 50 == 49:
                call("tools/call", {"name": "send_keys", "arguments": {"session": sid, "keys": ["C-u"]}})
        else:
            call("tools/call", {"name": "read_output", "arguments": {"session": sid, "lines": 20}})
    p.stdin.close()
    p.wait()
    subprocess.run(["tmux", "-S", sock, "kill-server"], env=env)
    totals = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", totals)
    return int(m.group(1).replace(",", ""))


d = tempfile.mkdtemp(prefix="cg-calls")
try:
    a, b = run(N, d), run(2 * N, d)
    print(f"{TOOL}: {(b - a) / N / 1000:.1f}k instructions per call ({N} vs {2 * N} calls)")
finally:
    shutil.rmtree(d, ignore_errors=True)
