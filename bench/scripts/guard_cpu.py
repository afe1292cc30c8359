#!/usr/bin/env python3
"""tmux CPU per command line: what termloom's input guard and reads cost the tmux server.

Starts its own tmux server on a socket in a temporary directory (never the user's), puts a pane
running `cat > /dev/null`, and sends each command line through one raw `tmux -C` client, counting
the tmux server's CPU time (utime + stime from /proc) over N calls. Rounds alternate the variants,
because the machine's speed drifts. Linux only.

    python3 bench/scripts/guard_cpu.py [N] [ROUNDS] [guard|parts]

`guard` (the default): the input guard as a tree of `#{&&:}` against one `#{==:}`.
`parts`: a guarded send taken apart (bare send-keys, `if-shell` around it, its target, its
condition, its refusal branch) and termloom's read (the check's display-message, the capture).
"""
import os
import shutil
import subprocess
import sys
import tempfile

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
SET = sys.argv[3] if len(sys.argv) > 3 else "guard"
ID = "4040ba7f-c07a-4879-b314-957d8ee94161"

d = tempfile.mkdtemp(prefix="guard-cpu")
sock = os.path.join(d, "s")
env = dict(os.environ, HOME=d)
env.pop("TMUX", None)


def tmux(*args):
    return subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", *args],
                          capture_output=True, text=True, env=env, check=True).stdout


try:
    tmux("new-session", "-d", "-s", "g", "cat > /dev/null")
    pane = tmux("display", "-p", "-t", "g", "#{pane_id}").strip()
    pid = int(tmux("display", "-p", "#{pid}"))
    tmux("set", "-p", "-t", pane, "@termloom_id", ID)
    tmux("set", "-p", "-t", pane, "@termloom_managed", "1")
    c = subprocess.Popen(["tmux", "-S", sock, "-C", "attach", "-t", "g", "-f", "no-output"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    out = c.stdout

    def send(line, blocks):
        c.stdin.write((line + "\n").encode())
        c.stdin.flush()
        while blocks:
            if out.readline().startswith((b"%end", b"%error")):
                blocks -= 1

    send("display -p x", 2)  # the attach block, then this one

    def cpu():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    typed = f'"send-keys -t \\"{pane}\\" -l -- \\": ping\\""'
    refused = f'"display-message -p -t \\"{pane}\\" R"'
    tree = (f"#{{&&:#{{&&:#{{&&:#{{&&:#{{==:#{{pane_id}},{pane}}},#{{==:#{{@termloom_id}},{ID}}}}},"
            f"#{{==:#{{pane_dead}},0}}}},#{{==:#{{pane_in_mode}},0}}}},#{{==:#{{@termloom_managed}},1}}}}")
    one = (f"#{{==:#{{pane_id}}#{{pane_dead}}#{{pane_in_mode}}/#{{@termloom_managed}}/#{{@termloom_id}},"
           f"{pane}00/1/{ID}}}")
    check = f'"S\\037#{{pane_id}}\\037#{{@termloom_id}}\\037#{{history_size}}\\037#{{pane_height}}"'
    capture = f'capture-pane -p -t "{pane}" -S -20 -E -'
    variants = {
        "guard": {
            "bare send-keys": (f"send-keys -t {pane} -l ': ping'", 1),
            "guard: tree of &&": (f'if-shell -F -t "{pane}" "{tree}" {typed} {refused}', 2),
            "guard: one ==": (f'if-shell -F -t "{pane}" "{one}" {typed} {refused}', 2),
        },
        "parts": {
            "display -p x": ("display -p x", 1),
            "bare send-keys": (f"send-keys -t {pane} -l ': ping'", 1),
            "if-shell -F 1": (f'if-shell -F 1 {typed}', 2),
            "+ -t": (f'if-shell -F -t "{pane}" 1 {typed}', 2),
            "+ pane_id ==": (f'if-shell -F -t "{pane}" "#{{==:#{{pane_id}},{pane}}}" {typed}', 2),
            "+ whole condition": (f'if-shell -F -t "{pane}" "{one}" {typed}', 2),
            "+ refusal branch (the guard)": (f'if-shell -F -t "{pane}" "{one}" {typed} {refused}', 2),
            "read: check": (f'display-message -p -t "{pane}" {check}', 1),
            "read: capture 20": (capture, 1),
            "read: check ; capture": (f'display-message -p -t "{pane}" {check} ; {capture}', 2),
        },
    }[SET]
    print(f"tmux CPU per command, ms ({N} calls each, clock tick {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms)")
    for r in range(ROUNDS):
        row = []
        for name, (line, blocks) in variants.items():
            for _ in range(100):
                send(line, blocks)
            a = cpu()
            for _ in range(N):
                send(line, blocks)
            row.append(f"{name} {(cpu() - a) / N * 1000:.3f}")
        print(f"round {r + 1}: " + " | ".join(row), flush=True)
    c.stdin.close()
    c.wait()
finally:
    subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True, env=env)
    shutil.rmtree(d, ignore_errors=True)
