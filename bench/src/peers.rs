//! Peers side by side in one run, on one private tmux server: termloom-mcp against tmux-mcp-rs
//! (installed by the harness from crates.io into `target/peers/`) and against two floors, one
//! spawned `tmux` per operation and one raw `tmux -C` round trip. The same operations for each:
//! list sessions, list every pane, send text, read 20 lines, and "run `echo X` and know it
//! finished".
//!
//! The words differ: a tmux *session* is what tmux-mcp-rs's `list-sessions` lists and what
//! termloom calls a workspace (`list_workspaces`); termloom's `list_sessions` lists every *pane*,
//! which tmux-mcp-rs does with `list-sessions`, then `list-windows` per session and `list-panes`
//! per window. Each row names the tool calls it makes.
//!
//! No Node tmux MCP server is served by the npm registry here (`npm view tmux-mcp` answers 404), so
//! tmux-mcp-rs is the only peer.
//!
//! Every server gets its own session on the same private server. tmux-mcp-rs is pointed at the
//! private socket with its `--socket` flag (it then passes `-S <socket>` to every `tmux` it spawns),
//! and it also runs with `TMUX_TMPDIR` set to the private directory and `TMUX`/`TMUX_PANE` removed,
//! so even a call that ignored the flag could only reach the private server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::mcp::{RawMcp, rss_mib, termloom_mcp};
use crate::stats::{CLEAR_EVERY, Config, Row, Section, measure_timed};
use crate::tmux::{PrivateServer, RawControl};

/// The tmux-mcp-rs release measured (the newest 0.x on crates.io when this was written).
pub const TMUX_MCP_RS_VERSION: &str = "0.6.0";

/// How long "run `echo X`" may take before the measurement fails.
const RUN_DEADLINE: Duration = Duration::from_secs(10);

/// The workspace's `target/` directory (the bench binary lives in `target/<profile>/`).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().context("exe dir")?;
    Ok(profile_dir.parent().context("target dir")?.to_path_buf())
}

/// The tmux-mcp-rs binary, installed with `cargo install --locked` into `target/peers/` if missing.
pub fn ensure_tmux_mcp_rs() -> Result<PathBuf> {
    let root = target_dir()?.join("peers");
    let bin = root.join("bin").join("tmux-mcp-rs");
    let version_ok = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(TMUX_MCP_RS_VERSION))
        .unwrap_or(false);
    if version_ok {
        return Ok(bin);
    }
    eprintln!(
        "installing tmux-mcp-rs {TMUX_MCP_RS_VERSION} into {} (a few minutes, once)…",
        root.display()
    );
    let status = std::process::Command::new("cargo")
        .args([
            "install",
            "tmux-mcp-rs",
            "--version",
            TMUX_MCP_RS_VERSION,
            "--locked",
        ])
        .arg("--root")
        .arg(&root)
        .status()
        .context("cannot run cargo install")?;
    anyhow::ensure!(status.success(), "cargo install tmux-mcp-rs failed");
    anyhow::ensure!(bin.exists(), "{} missing after install", bin.display());
    Ok(bin)
}

fn tmux_mcp_rs(bin: &Path, srv: &PrivateServer) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin);
    c.arg("--socket")
        .arg(&srv.socket)
        .envs(srv.env())
        .env("TMUX_TMPDIR", srv.dir.path())
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TMUX_MCP_SSH")
        .env_remove("RUST_LOG");
    c
}

/// A session on the private server, created with a spawned `tmux`; returns its pane id.
fn new_session(srv: &PrivateServer, name: &str) -> Result<String> {
    let out = srv
        .tmux()
        .arg("-f")
        .arg(srv.config())
        .args(["new-session", "-d", "-s", name, "-x", "120", "-y", "40"])
        .args(["-P", "-F", "#{pane_id}", "/bin/bash --norc --noprofile"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "new-session {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The fields tmux-mcp-rs's `list-sessions` asks tmux for; the floors ask for the same.
const SESSION_FIELDS: &str =
    "#{session_id}\t#{session_name}\t#{?session_attached,1,0}\t#{session_windows}";

/// The operations, as one backend does them.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    /// tmux sessions (termloom: workspaces).
    List,
    /// Every pane, with what termloom lists for each.
    Panes,
    Send,
    Read,
    Run,
}

impl Op {
    const ALL: [Op; 5] = [Op::List, Op::Panes, Op::Send, Op::Read, Op::Run];

    fn label(self) -> &'static str {
        match self {
            Op::List => "list sessions (tmux sessions)",
            Op::Panes => "list every pane",
            Op::Send => "send text",
            Op::Read => "read 20 lines",
            Op::Run => "run `echo X`, know it finished",
        }
    }
}

/// Spawned-`tmux` floor: one process per tmux command.
async fn spawn_tmux(srv: &PrivateServer, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("tmux")
        .arg("-S")
        .arg(&srv.socket)
        .args(args)
        .envs(srv.env())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Erases the typed-but-not-entered text (`: ping: ping…`) in every pane (`C-u`), untimed, so
/// that the next `echo X` runs as typed.
async fn clear_input_lines(srv: &PrivateServer) -> Result<()> {
    let panes = spawn_tmux(srv, &["list-panes", "-a", "-F", "#{pane_id}"]).await?;
    for pane in panes.lines() {
        spawn_tmux(srv, &["send-keys", "-t", pane, "C-u"]).await?;
    }
    Ok(())
}

/// Times `work`. After a send, every [`CLEAR_EVERY`] calls, the typed text is erased in every
/// pane (untimed), so that no shell redraws a command line of thousands of characters on every
/// keystroke while the next calls are timed.
async fn timed(
    srv: &PrivateServer,
    op: Op,
    i: usize,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<Duration> {
    let t = Instant::now();
    work.await?;
    let took = t.elapsed();
    if op == Op::Send && i % CLEAR_EVERY == CLEAR_EVERY - 1 {
        clear_input_lines(srv).await?;
    }
    Ok(took)
}

fn shows_line(text: &str, want: &str) -> bool {
    text.lines().any(|l| l.trim_end() == want)
}

async fn floor_spawn(srv: &PrivateServer, pane: &str, op: Op, i: usize) -> Result<()> {
    match op {
        Op::List => {
            spawn_tmux(srv, &["list-sessions", "-F", SESSION_FIELDS]).await?;
        }
        Op::Panes => {
            let fmt = termloom_tmux::format::pane_format();
            spawn_tmux(srv, &["list-panes", "-a", "-F", &fmt]).await?;
        }
        Op::Send => {
            spawn_tmux(srv, &["send-keys", "-t", pane, "-l", ": ping"]).await?;
        }
        Op::Read => {
            spawn_tmux(srv, &["capture-pane", "-p", "-t", pane, "-S", "-20"]).await?;
        }
        Op::Run => {
            // No completion detection: send, then poll the capture until the output shows.
            let want = format!("X{i}");
            spawn_tmux(
                srv,
                &["send-keys", "-t", pane, "-l", &format!("echo {want}")],
            )
            .await?;
            spawn_tmux(srv, &["send-keys", "-t", pane, "Enter"]).await?;
            let deadline = Instant::now() + RUN_DEADLINE;
            loop {
                let text =
                    spawn_tmux(srv, &["capture-pane", "-p", "-t", pane, "-S", "-20"]).await?;
                if shows_line(&text, &want) {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "echo {want} never showed");
            }
        }
    }
    Ok(())
}

async fn floor_control(c: &mut RawControl, pane: &str, op: Op, i: usize) -> Result<()> {
    match op {
        Op::List => {
            // Single quotes: tmux takes the tabs in them as they are.
            c.roundtrip(&format!("list-sessions -F '{SESSION_FIELDS}'"))
                .await?;
        }
        Op::Panes => {
            c.roundtrip(&format!(
                "list-panes -a -F '{}'",
                termloom_tmux::format::pane_format()
            ))
            .await?;
        }
        Op::Send => {
            c.roundtrip(&format!("send-keys -t {pane} -l ': ping'"))
                .await?;
        }
        Op::Read => {
            c.roundtrip(&format!("capture-pane -p -t {pane} -S -20"))
                .await?;
        }
        Op::Run => {
            let want = format!("X{i}");
            c.roundtrip(&format!("send-keys -t {pane} -l 'echo {want}'"))
                .await?;
            c.roundtrip(&format!("send-keys -t {pane} Enter")).await?;
            let deadline = Instant::now() + RUN_DEADLINE;
            loop {
                let lines = c
                    .roundtrip(&format!("capture-pane -p -t {pane} -S -20"))
                    .await?;
                if lines.iter().any(|l| l.trim_end() == want) {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "echo {want} never showed");
            }
        }
    }
    Ok(())
}

async fn termloom_op(c: &mut RawMcp, id: &str, op: Op) -> Result<()> {
    match op {
        Op::List => {
            c.call("list_workspaces", json!({})).await?;
        }
        Op::Panes => {
            c.call("list_sessions", json!({})).await?;
        }
        Op::Send => {
            c.call(
                "send_text",
                json!({"session": id, "text": ": ping", "enter": false}),
            )
            .await?;
        }
        Op::Read => {
            c.call("read_output", json!({"session": id, "lines": 20}))
                .await?;
        }
        Op::Run => {
            let r = c
                .call("run_command", json!({"session": id, "command": "echo X"}))
                .await?;
            let code = r
                .get("structuredContent")
                .and_then(|s| s.get("exit_code"))
                .and_then(Value::as_i64);
            anyhow::ensure!(code == Some(0), "run_command: no exit code 0 in {r}");
        }
    }
    Ok(())
}

/// The structured result of a tmux-mcp-rs tool call (its text content is the same JSON).
fn structured(r: &Value) -> Value {
    if let Some(s) = r.get("structuredContent") {
        return s.clone();
    }
    r.pointer("/content/0/text")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The `id` of every object in the array `key` of a tmux-mcp-rs result.
fn ids(v: &Value, key: &str) -> Result<Vec<String>> {
    let list = v
        .get(key)
        .and_then(Value::as_array)
        .with_context(|| format!("no `{key}` in {v}"))?;
    let ids: Vec<String> = list
        .iter()
        .filter_map(|o| o.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    anyhow::ensure!(ids.len() == list.len(), "an entry without `id` in {v}");
    Ok(ids)
}

async fn peer_op(c: &mut RawMcp, pane: &str, op: Op) -> Result<()> {
    match op {
        Op::List => {
            c.call("list-sessions", json!({})).await?;
        }
        Op::Panes => {
            // Its only way to every pane: sessions, then each one's windows, then each window's panes.
            let sessions = structured(&c.call("list-sessions", json!({})).await?);
            for s in ids(&sessions, "sessions")? {
                let windows = structured(&c.call("list-windows", json!({"sessionId": s})).await?);
                for w in ids(&windows, "windows")? {
                    c.call("list-panes", json!({"windowId": w})).await?;
                }
            }
        }
        Op::Send => {
            c.call(
                "send-keys",
                json!({"paneId": pane, "keys": ": ping", "literal": true}),
            )
            .await?;
        }
        Op::Read => {
            c.call("capture-pane", json!({"paneId": pane, "lines": 20}))
                .await?;
        }
        Op::Run => {
            // Its tracked mode: execute, then block on the result until terminal (exit code known).
            let r = c
                .call(
                    "execute-command",
                    json!({"paneId": pane, "command": "echo X"}),
                )
                .await?;
            let id = structured(&r)
                .get("commandId")
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("execute-command: no commandId in {r}"))?;
            let r = c
                .call(
                    "get-command-result",
                    json!({"commandId": id, "waitMs": RUN_DEADLINE.as_millis() as u64}),
                )
                .await?;
            let s = structured(&r);
            let code = s
                .get("exitCode")
                .or_else(|| s.get("exit_code"))
                .and_then(Value::as_i64);
            if code != Some(0) {
                bail!("get-command-result: no exit code 0 in {r}");
            }
        }
    }
    Ok(())
}

async fn startup_p50(
    n: usize,
    mut cmd: impl FnMut() -> Result<tokio::process::Command>,
) -> Result<f64> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let (c, d) = RawMcp::start(&mut cmd()?).await?;
        v.push(d);
        drop(c);
        // Let the killed child go before the next spawn.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    v.sort();
    Ok(v[v.len() / 2].as_secs_f64() * 1000.0)
}

/// Runs the side-by-side comparison.
pub async fn run(cfg: &Config) -> Result<Section> {
    let peer_bin = ensure_tmux_mcp_rs()?;
    let srv = PrivateServer::new()?;
    let state = srv.dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    let floor_pane = new_session(&srv, "floor")?;
    let control_pane = new_session(&srv, "ctl")?;
    let peer_pane = new_session(&srv, "peer")?;
    let _reaper = crate::scale::Reaper::new(&srv);

    let mut facts = Vec::new();
    let n_start = cfg.warmup.max(20);
    let tl_start = startup_p50(n_start, || termloom_mcp(&srv, &state)).await?;
    let peer_start = startup_p50(n_start, || Ok(tmux_mcp_rs(&peer_bin, &srv))).await?;

    let (mut tl, _) = RawMcp::start(&mut termloom_mcp(&srv, &state)?).await?;
    // Sessions are named by the id create_session returns, as the tools' descriptions tell
    // agents to do (tmux-mcp-rs is given its own ids, `%N`, likewise).
    let made = tl
        .call(
            "create_session",
            json!({"name": "tl", "workspace": "bench"}),
        )
        .await?;
    let tl_id: Arc<str> = made["structuredContent"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("create_session gave no id: {made}"))?
        .into();
    let (mut peer, _) = RawMcp::start(&mut tmux_mcp_rs(&peer_bin, &srv)).await?;
    let mut raw = RawControl::attach(&srv.socket, "=ctl").await?;

    let tl = Arc::new(Mutex::new(&mut tl));
    let peer_c = Arc::new(Mutex::new(&mut peer));
    let raw_c = Arc::new(Mutex::new(&mut raw));
    let mut rows: Vec<Row> = Vec::new();
    // Fewer iterations for run: each is a real shell command.
    let run_cfg = Config {
        iterations: (cfg.iterations / 3).max(10),
        warmup: (cfg.warmup / 2).max(3),
    };
    let srv = &srv;
    for op in Op::ALL {
        let c = if op == Op::Run { &run_cfg } else { cfg };
        let raw_row = {
            let raw_c = raw_c.clone();
            let pane = control_pane.clone();
            measure_timed(
                c,
                &format!("{}: raw `tmux -C` (floor)", op.label()),
                move |i| {
                    let raw_c = raw_c.clone();
                    let pane = pane.clone();
                    async move {
                        let mut raw = raw_c.lock().await;
                        timed(srv, op, i, floor_control(&mut raw, &pane, op, i)).await
                    }
                },
            )
            .await?
        };
        let spawn_row = {
            let pane = floor_pane.as_str();
            measure_timed(
                c,
                &format!("{}: spawned `tmux` per command (floor)", op.label()),
                move |i| async move { timed(srv, op, i, floor_spawn(srv, pane, op, i)).await },
            )
            .await?
        };
        let mut tl_row = {
            let tl = tl.clone();
            let tl_id = tl_id.clone();
            measure_timed(c, &format!("**{}: termloom-mcp**", op.label()), move |i| {
                let tl = tl.clone();
                let id = tl_id.clone();
                async move {
                    let mut tl = tl.lock().await;
                    timed(srv, op, i, termloom_op(&mut tl, &id, op)).await
                }
            })
            .await?
        };
        let mut peer_row = {
            let peer_c = peer_c.clone();
            let pane = peer_pane.clone();
            measure_timed(
                c,
                &format!("{}: tmux-mcp-rs {TMUX_MCP_RS_VERSION}", op.label()),
                move |i| {
                    let peer_c = peer_c.clone();
                    let pane = pane.clone();
                    async move {
                        let mut peer = peer_c.lock().await;
                        timed(srv, op, i, peer_op(&mut peer, &pane, op)).await
                    }
                },
            )
            .await?
        };
        tl_row.note = format!(
            "{}{:.1}× faster p50 than tmux-mcp-rs; {:.2}× the raw `tmux -C` floor{}",
            match op {
                Op::List => "`list_workspaces`; ",
                Op::Panes => "`list_sessions`; ",
                _ => "",
            },
            peer_row.p50_ms / tl_row.p50_ms,
            tl_row.p50_ms / raw_row.p50_ms,
            if op == Op::Run {
                "; exit code known"
            } else {
                ""
            }
        );
        peer_row.note = match op {
            Op::Run => "execute-command + get-command-result(waitMs); exit code known".into(),
            Op::Panes => "`list-sessions`, then `list-windows` per session and `list-panes` per window; one spawned `tmux` per call".into(),
            Op::List => "`list-sessions`; one spawned `tmux` per call".into(),
            _ => "one spawned `tmux` per call".into(),
        };
        let (mut raw_row, mut spawn_row) = (raw_row, spawn_row);
        if op == Op::Run {
            raw_row.note =
                "send, then poll `capture-pane` until the output shows; no exit code".into();
            spawn_row.note = raw_row.note.clone();
        }
        rows.push(raw_row);
        rows.push(spawn_row);
        rows.push(tl_row);
        rows.push(peer_row);
        if op == Op::Send {
            clear_input_lines(srv).await?;
        }
    }

    facts.push((
        "startup, spawn → `initialize` answered, p50".to_string(),
        format!(
            "termloom-mcp {tl_start:.2} ms, tmux-mcp-rs {peer_start:.2} ms ({:.1}× faster; n={n_start} each)",
            peer_start / tl_start
        ),
    ));
    let tl_rss = tl.lock().await.pid().and_then(rss_mib);
    let peer_rss = peer_c.lock().await.pid().and_then(rss_mib);
    if let (Some(a), Some(b)) = (tl_rss, peer_rss) {
        facts.push((
            "RSS after all the calls above".to_string(),
            format!("termloom-mcp {a:.1} MiB, tmux-mcp-rs {b:.1} MiB"),
        ));
    }
    facts.push((
        "peers".to_string(),
        format!(
            "tmux-mcp-rs {TMUX_MCP_RS_VERSION} (crates.io, `cargo install --locked` into target/peers/, run with `--socket <private socket>`); no Node tmux MCP server is served by the npm registry here"
        ),
    ));
    Ok(Section {
        title: "Peers side by side (one private tmux server, same operations)".into(),
        rows,
        facts,
    })
}
