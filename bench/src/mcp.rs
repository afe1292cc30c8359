//! MCP servers over stdio, measured with a raw JSON-RPC client (the same for termloom-mcp and peers):
//! spawn to `initialize` answered, tool-call latency, idle RSS.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::stats::{CLEAR_EVERY, Config, Row, Section, measure_timed};
use crate::tmux::{Piped, PrivateServer, RawControl};

/// A minimal MCP client over a child's stdio.
pub struct RawMcp {
    io: Piped,
    next_id: u64,
}

impl RawMcp {
    /// Spawns the server and completes the initialize handshake.
    pub async fn start(cmd: &mut tokio::process::Command) -> Result<(RawMcp, std::time::Duration)> {
        let t = Instant::now();
        let mut c = RawMcp {
            io: Piped::spawn(cmd)?,
            next_id: 1,
        };
        c.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "termloom-bench", "version": "0"}}),
        )
        .await?;
        let startup = t.elapsed();
        c.notify("notifications/initialized", json!({})).await?;
        Ok((c, startup))
    }

    pub fn pid(&self) -> Option<u32> {
        self.io.child.id()
    }

    async fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.io.stdin.write_all(&line).await?;
        self.io.stdin.flush().await?;
        Ok(())
    }

    pub async fn notify(&mut self, method: &str, params: Value) -> Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    /// Sends a request and returns its result, skipping notifications and server requests.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        while let Some(line) = self.io.lines.next_line().await? {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v.get("id") == Some(&json!(id)) {
                if let Some(e) = v.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
        }
        bail!("server closed stdout")
    }

    /// Calls a tool; a result with isError is an error.
    pub async fn call(&mut self, tool: &str, args: Value) -> Result<Value> {
        let r = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await?;
        if r.get("isError") == Some(&json!(true)) {
            bail!("{tool}: {r}");
        }
        Ok(r)
    }
}

/// Resident memory of a process in MiB (Linux).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("exe dir")?.join(name);
    anyhow::ensure!(
        p.exists(),
        "{} not built: run `cargo build --release --bins` first",
        p.display()
    );
    Ok(p)
}

pub fn termloom_mcp(srv: &PrivateServer, state: &Path) -> Result<tokio::process::Command> {
    let mut c = tokio::process::Command::new(sibling_binary("termloom-mcp")?);
    c.arg("-S")
        .arg(&srv.socket)
        .arg("--state-dir")
        .arg(state)
        .arg("--tmux-config")
        .arg(srv.config())
        .envs(srv.env());
    Ok(c)
}

/// p50s of raw control-mode commands, for the facts under the table.
async fn floors(cfg: &Config, srv: &PrivateServer) -> Result<Vec<(String, String)>> {
    let mut raw = RawControl::attach(&srv.socket, "bench").await?;
    let list = format!(
        "list-panes -a -F '{}'",
        termloom_tmux::format::pane_format()
    );
    let mut out = Vec::new();
    for (label, line) in [
        ("raw `tmux -C` round trip (`display -p x`)", "display -p x"),
        (
            "raw `tmux -C` pane listing (termloom's format)",
            list.as_str(),
        ),
    ] {
        for _ in 0..cfg.warmup {
            raw.roundtrip(line).await?;
        }
        let mut t = Vec::with_capacity(cfg.iterations);
        for _ in 0..cfg.iterations {
            let s = Instant::now();
            raw.roundtrip(line).await?;
            t.push(s.elapsed());
        }
        t.sort();
        out.push((
            format!("floor: {label}, p50"),
            format!("{:.3} ms", t[t.len() / 2].as_secs_f64() * 1000.0),
        ));
    }
    Ok(out)
}

pub async fn run(cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let state = srv.dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut facts = Vec::new();

    // Startup: spawn to initialize answered (the server connects to tmux lazily).
    let mut startups = Vec::new();
    for _ in 0..cfg.warmup.max(20) {
        let (c, d) = RawMcp::start(&mut termloom_mcp(&srv, &state)?).await?;
        startups.push(d);
        drop(c);
    }
    startups.sort();
    facts.push((
        "spawn → initialize answered, p50".to_string(),
        format!(
            "{:.2} ms (n={})",
            startups[startups.len() / 2].as_secs_f64() * 1000.0,
            startups.len()
        ),
    ));

    // Idle RSS: a fresh server after initialize and tools/list (no tmux connection yet).
    let (mut c, _) = RawMcp::start(&mut termloom_mcp(&srv, &state)?).await?;
    c.request("tools/list", json!({})).await?;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    if let Some(mib) = c.pid().and_then(rss_mib) {
        facts.push((
            "termloom-mcp RSS after initialize + tools/list".to_string(),
            format!("{mib:.1} MiB"),
        ));
    }
    let made = c
        .call(
            "create_session",
            json!({"name": "bench", "workspace": "bench"}),
        )
        .await?;
    // The id create_session returns: how the tools' descriptions tell agents to name a session.
    let id = made["structuredContent"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("create_session gave no id: {made}"))?
        .to_string();
    let c = std::sync::Arc::new(tokio::sync::Mutex::new(c));
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "ping (MCP `ping`: the stdio hop alone, no tool, no tmux)",
            "ping",
            json!({}),
        ),
        (
            "list_persistent_sessions (the registry, after a pane listing that tells live from dead)",
            "list_persistent_sessions",
            json!({}),
        ),
        ("list_sessions", "list_sessions", json!({})),
        (
            "list_workspaces (tmux sessions)",
            "list_workspaces",
            json!({}),
        ),
        (
            "send_text (no Enter)",
            "send_text",
            json!({"session": id, "text": ": ping", "enter": false}),
        ),
        (
            "send_text + Enter (the shell runs `: ping` and prints its prompt)",
            "send_text",
            json!({"session": id, "text": ": ping"}),
        ),
        (
            "read_output (20 lines)",
            "read_output",
            json!({"session": id, "lines": 20}),
        ),
        (
            "run_command(\"echo X\")",
            "run_command",
            json!({"session": id, "command": "echo X"}),
        ),
        (
            "send_text (no Enter), session given by name",
            "send_text",
            json!({"session": "bench", "text": ": ping", "enter": false}),
        ),
        (
            "read_output (20 lines), session given by name",
            "read_output",
            json!({"session": "bench", "lines": 20}),
        ),
    ];
    for (label, tool, args) in cases {
        let cc = c.clone();
        // Text typed without Enter stays on the shell's command line: every CLEAR_EVERY calls the
        // line is erased (C-u, untimed), so that it stays as long as a real command (300
        // characters at most) instead of growing to thousands, which readline redraws on every
        // call and the 2 cores pay for while the next calls run.
        let unentered = tool == "send_text" && args.get("enter") == Some(&json!(false));
        let clear = json!({"session": id, "keys": ["C-u"]});
        let r = measure_timed(cfg, label, |i| {
            let cc = cc.clone();
            let args = args.clone();
            let clear = clear.clone();
            async move {
                let mut c = cc.lock().await;
                let t = Instant::now();
                let r = if tool == "ping" {
                    c.request("ping", args).await?
                } else {
                    c.call(tool, args).await?
                };
                let took = t.elapsed();
                if tool == "run_command" {
                    let code = &r["structuredContent"]["exit_code"];
                    anyhow::ensure!(code == &json!(0), "run_command without exit code 0: {r}");
                }
                if unentered && i % CLEAR_EVERY == CLEAR_EVERY - 1 {
                    c.call("send_keys", clear).await?;
                }
                Ok(took)
            }
        })
        .await;
        match r {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("{label} not measured: {e}"),
        }
    }
    let pid = c.lock().await.pid();
    if let Some(mib) = pid.and_then(rss_mib) {
        facts.push((
            "termloom-mcp RSS after the calls above".to_string(),
            format!("{mib:.1} MiB"),
        ));
    }
    // Floors from the same run (the machine's load moves every number): a raw `tmux -C` round
    // trip, and the listing every session tool starts with (termloom's pane format, one pane).
    match floors(cfg, &srv).await {
        Ok(f) => facts.extend(f),
        Err(e) => eprintln!("floors not measured: {e}"),
    }
    Ok(Section {
        title: "MCP over stdio: termloom-mcp (raw JSON-RPC client, private tmux server)".into(),
        rows,
        facts,
    })
}
