#!/usr/bin/env python3
"""A raw `tmux -C` round trip (`display -p -t %0 x`) against the number of panes on the server.

Starts its own tmux server on a socket in a temporary directory (never the user's), adds panes
running `cat` (10 windows per session) through one raw control client, and times 2,000 round
trips at each size. Shows how much of a call's time at scale is tmux's own (its server loop
visits every pane on each turn). Linux or macOS.

    python3 bench/scripts/rt_vs_panes.py [SIZES...]     (default: 1 10 100 500)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

SIZES = [int(a) for a in sys.argv[1:]] or [1, 10, 100, 500]

d = tempfile.mkdtemp(prefix="rt-panes")
sock = os.path.join(d, "s")
env = dict(os.environ, HOME=d)
env.pop("TMUX", None)
try:
    subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "w0", "cat"],
                   env=env, check=True)
    c = subprocess.Popen(["tmux", "-S", sock, "-C", "attach", "-t", "w0", "-f", "no-output"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def rt(cmd):
        c.stdin.write(cmd + "\n")
        c.stdin.flush()
        while not c.stdout.readline().startswith(("%end", "%error")):
            pass

    rt("display -p x")  # the attach block comes first
    have = 1
    for size in SIZES:
        while have < size:
            s = have // 10
            rt(f"new-session -d -s w{s} cat" if have % 10 == 0 else f"new-window -d -t =w{s}: cat")
            have += 1
        times = []
        for _ in range(2000):
            t = time.perf_counter()
            rt("display -p -t %0 x")
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"{size} panes: raw round trip p50 {times[1000] * 1000:.3f} ms", flush=True)
    c.stdin.close()
    c.wait()
finally:
    subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True, env=env)
    shutil.rmtree(d, ignore_errors=True)
