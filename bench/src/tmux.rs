//! tmux-level latency: spawn-per-command and raw `tmux -C` floors against termloom's transport,
//! send + read, and `run` end to end, on a private server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use termloom_core::{
    CaptureOpts, OutputEvent, ReadRange, RunOpts, SendOpts, Session, SessionSpec, Target, Terminal,
};
use termloom_tmux::{TmuxOptions, TmuxTerminal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::stats::{Config, Row, Section, measure};

/// A private tmux server in a temp dir, killed on drop.
pub struct PrivateServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub home: PathBuf,
}

impl PrivateServer {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tlb").tempdir_in("/tmp")?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        std::fs::write(dir.path().join("tmux.conf"), "set -g status off\n")?;
        Ok(PrivateServer {
            socket: dir.path().join("s"),
            home,
            dir,
        })
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tmux.conf")
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            ("SHELL".into(), "/bin/bash".into()),
            ("TERM".into(), "xterm-256color".into()),
            ("PS1".into(), "$ ".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]
    }

    pub fn options(&self, control: bool) -> TmuxOptions {
        TmuxOptions {
            config_file: Some(self.config()),
            env: self.env(),
            shell: Some(vec![
                "/bin/bash".into(),
                "--norc".into(),
                "--noprofile".into(),
            ]),
            control,
            ..TmuxOptions::with_socket_path(&self.socket)
        }
    }

    pub fn tmux(&self) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.arg("-S").arg(&self.socket).envs(self.env());
        c
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // The server's pid first: a server that outlives `kill-server` (seen twice after runs
        // whose MCP server still had control clients attached) is killed by pid before its
        // socket's directory goes, after which nothing could reach it.
        let pid = self
            .tmux()
            .args(["display-message", "-p", "#{pid}"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            });
        let _ = self.tmux().arg("kill-server").output();
        if let Some(pid) = pid {
            let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while alive() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if alive() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .output();
            }
        }
    }
}

/// A child process spoken to line by line over its stdin and stdout (stderr dropped), killed on
/// drop: the raw tmux clients and the raw MCP client.
pub struct Piped {
    pub child: tokio::process::Child,
    pub stdin: tokio::process::ChildStdin,
    pub lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Piped {
    pub fn spawn(cmd: &mut tokio::process::Command) -> Result<Piped> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(Piped {
            child,
            stdin,
            lines,
        })
    }
}

/// A minimal raw control client: the floor for a control-mode round trip.
pub struct RawControl {
    io: Piped,
}

impl RawControl {
    pub async fn attach(socket: &Path, session: &str) -> Result<Self> {
        let mut c = RawControl {
            io: Piped::spawn(
                tokio::process::Command::new("tmux")
                    .arg("-S")
                    .arg(socket)
                    // The flag goes with the attach: a `refresh-client -f no-output` written
                    // at once can run before this client is attached, and tmux 3.3a then
                    // applies it to another control client (termloom's output client once:
                    // its runs never saw their end marks).
                    .args(["-C", "attach", "-t", session, "-f", "no-output"]),
            )?,
        };
        // Skip the attach block.
        c.read_reply().await?;
        Ok(c)
    }

    async fn read_reply(&mut self) -> Result<Vec<String>> {
        let mut body = Vec::new();
        let mut inside = false;
        while let Some(l) = self.io.lines.next_line().await? {
            if l.starts_with("%begin") {
                inside = true;
            } else if l.starts_with("%end") || l.starts_with("%error") {
                if inside {
                    return Ok(body);
                }
            } else if inside {
                body.push(l);
            }
        }
        bail!("tmux -C ended")
    }

    pub async fn roundtrip(&mut self, line: &str) -> Result<Vec<String>> {
        self.io.stdin.write_all(line.as_bytes()).await?;
        self.io.stdin.write_all(b"\n").await?;
        self.read_reply().await
    }
}

/// A raw control client that receives output (attached with `ignore-size`): the floor for `run`,
/// typing a command and waiting for its end mark with nothing of termloom in between.
pub struct RawOutput {
    io: Piped,
}

impl RawOutput {
    pub async fn attach(socket: &Path, session: &str) -> Result<Self> {
        Ok(RawOutput {
            io: Piped::spawn(
                tokio::process::Command::new("tmux")
                    .arg("-S")
                    .arg(socket)
                    .args(["-C", "attach", "-f", "ignore-size", "-t", session]),
            )?,
        })
    }

    /// Types `text` + Enter into `pane` with one control line and reads until the pane's output
    /// holds an OSC 133 `D` mark (octal-escaped in `%output`).
    pub async fn type_until_end_mark(&mut self, pane: &str, text: &str) -> Result<()> {
        let line = format!("send-keys -t '{pane}' -l -- '{text}' ; send-keys -t '{pane}' Enter\n");
        self.io.stdin.write_all(line.as_bytes()).await?;
        let prefix = format!("%output {pane} ");
        while let Some(l) = self.io.lines.next_line().await? {
            if l.starts_with(&prefix) && l.contains("]133;D") {
                return Ok(());
            }
        }
        bail!("tmux -C ended")
    }
}

pub async fn run(cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let control = TmuxTerminal::new(srv.options(true));
    let info = control
        .create_session(&SessionSpec {
            name: Some("bench".into()),
            workspace: Some("bench".into()),
            ..Default::default()
        })
        .await?;
    let pane = info.native.id.clone();
    let spawned = TmuxTerminal::new(srv.options(false));
    let mut rows: Vec<Row> = Vec::new();

    let sock = srv.socket.clone();
    let env = srv.env();
    rows.push(
        measure(
            cfg,
            "spawn `tmux display -p x` (floor: one process per command)",
            |_| {
                let sock = sock.clone();
                let env = env.clone();
                async move {
                    let out = tokio::process::Command::new("tmux")
                        .arg("-S")
                        .arg(&sock)
                        .args(["display", "-p", "x"])
                        .envs(env)
                        .output()
                        .await?;
                    anyhow::ensure!(out.status.success());
                    Ok(())
                }
            },
        )
        .await?,
    );
    let mut raw = RawControl::attach(&srv.socket, "=bench").await?;
    let raw_row = {
        let raw = Arc::new(tokio::sync::Mutex::new(&mut raw));
        measure(cfg, "raw `tmux -C` round trip (floor)", |_| {
            let raw = raw.clone();
            async move {
                let mut r = raw.lock().await;
                r.roundtrip("display -p x").await?;
                Ok(())
            }
        })
        .await?
    };
    rows.push(raw_row);
    let client = control.client();
    rows.push(
        measure(cfg, "termloom control-mode round trip", |_| async {
            client
                .run(vec!["display-message".into(), "-p".into(), "x".into()])
                .await?;
            Ok(())
        })
        .await?,
    );
    let sclient = spawned.client();
    rows.push(
        measure(cfg, "termloom spawn-per-command round trip", |_| async {
            sclient
                .run(vec!["display-message".into(), "-p".into(), "x".into()])
                .await?;
            Ok(())
        })
        .await?,
    );
    rows.push(
        measure(cfg, "list_sessions (control mode)", |_| async {
            control.list_sessions().await?;
            Ok(())
        })
        .await?,
    );
    let session = control
        .session(&Target::Native(info.native.clone()))
        .await?;
    let s2 = session.clone();
    rows.push(
        measure(cfg, "send_text + read 20 lines (control mode)", |i| {
            let s = s2.clone();
            async move {
                s.send_text(&format!(": ping {i}"), SendOpts::default())
                    .await?;
                s.capture(&CaptureOpts {
                    range: ReadRange::Tail(20),
                    ..Default::default()
                })
                .await?;
                Ok(())
            }
        })
        .await?,
    );
    // run end to end in a pane with shell integration.
    let integrated = control
        .create_session(&SessionSpec {
            name: Some("run".into()),
            workspace: Some("bench".into()),
            ..Default::default()
        })
        .await;
    match integrated {
        Ok(runinfo) => {
            let rs = control
                .session(&Target::Native(runinfo.native.clone()))
                .await?;
            let probe = rs.run(&RunOpts::new("true")).await;
            match probe {
                Ok(first) => {
                    for (name, cmd, want) in [
                        ("run(\"true\") end to end", "true", ""),
                        ("run(\"echo X\") end to end", "echo X", "X"),
                    ] {
                        let rs = rs.clone();
                        let mut row = measure(cfg, name, |_| {
                            let rs = rs.clone();
                            async move {
                                let r = rs.run(&RunOpts::new(cmd)).await?;
                                anyhow::ensure!(
                                    r.exit_code == Some(0) && r.output == want,
                                    "exit code {:?}, output {:?}",
                                    r.exit_code,
                                    r.output
                                );
                                Ok(())
                            }
                        })
                        .await?;
                        row.note = format!("strategy: {}", first.strategy);
                        rows.push(row);
                    }
                    let run_pane = runinfo.native.id.clone();
                    let mut floor = RawOutput::attach(&srv.socket, "=bench").await?;
                    let floor_row = {
                        let floor = Arc::new(tokio::sync::Mutex::new(&mut floor));
                        measure(
                            cfg,
                            "floor for run: raw `tmux -C` types `echo X` + Enter, waits for its D mark",
                            |_| {
                                let floor = floor.clone();
                                let pane = run_pane.clone();
                                async move {
                                    floor.lock().await.type_until_end_mark(&pane, "echo X").await
                                }
                            },
                        )
                        .await?
                    };
                    rows.push(floor_row);
                    drop(floor);
                    rows.extend(run_phases(cfg, rs.clone()).await?);
                }
                Err(e) => eprintln!("run not measured: {e}"),
            }
        }
        Err(e) => eprintln!("run not measured: {e}"),
    }
    let _ = pane;
    rows.extend(big_reads(cfg, &srv).await?);
    let spawn_p50 = rows[0].p50_ms;
    let raw_p50 = rows[1].p50_ms;
    for r in rows.iter_mut().skip(2) {
        if r.name.contains("control-mode round trip") {
            r.note = format!(
                "{:.0}x faster than spawning; {:.2}x the raw tmux -C floor",
                spawn_p50 / r.p50_ms,
                r.p50_ms / raw_p50
            );
        }
    }
    let floor = rows
        .iter()
        .find(|r| r.name.starts_with("floor for run"))
        .map(|r| r.p50_ms);
    if let Some(floor) = floor {
        for r in rows
            .iter_mut()
            .filter(|r| r.name.starts_with("run(\"echo X\")"))
        {
            let extra = format!(
                "{:+.2} ms over the floor for run ({:.1}x)",
                r.p50_ms - floor,
                r.p50_ms / floor
            );
            r.note = if r.note.is_empty() {
                extra
            } else {
                format!("{}; {extra}", r.note)
            };
        }
    }
    Ok(Section {
        title: "tmux transport (private server, one pane)".into(),
        rows,
        facts: vec![],
    })
}

/// A row from durations measured elsewhere.
fn row_from(name: &str, mut times: Vec<Duration>, note: &str) -> Row {
    times.sort();
    let pct = |p: f64| {
        if times.is_empty() {
            return f64::NAN;
        }
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    Row {
        name: name.to_string(),
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        n: times.len(),
        note: note.to_string(),
    }
}

/// Where the time of `run("echo X")` goes: a second subscriber to the pane's output stamps the
/// arrival of the OSC 133 `C` (command started) and `D` (command ended) marks while runs are
/// called back to back. Phases: the call until `C` (checking the pane, choosing the strategy,
/// typing the line, the shell reading it), `C` until `D` (the command and the shell's prompt
/// hooks), `D` until the result is returned (termloom noticing the mark and rendering the output).
async fn run_phases(cfg: &Config, rs: Arc<dyn Session>) -> Result<Vec<Row>> {
    const PAT: &[u8] = b"\x1b]133;";
    let mut stream = rs.subscribe().await?;
    let marks: Arc<std::sync::Mutex<Vec<(u8, Instant)>>> = Arc::default();
    let stamps = marks.clone();
    let reader = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(ev) = stream.next().await {
            let OutputEvent::Output(b) = ev else { continue };
            let now = Instant::now();
            buf.extend_from_slice(&b);
            let mut start = 0;
            let keep_from = loop {
                match buf[start..].windows(PAT.len()).position(|w| w == PAT) {
                    Some(p) => {
                        let at = start + p + PAT.len();
                        let Some(&kind) = buf.get(at) else {
                            break start + p;
                        };
                        if matches!(kind, b'C' | b'D')
                            && let Ok(mut m) = stamps.lock()
                        {
                            m.push((kind, now));
                        }
                        start = at;
                    }
                    None => break buf.len().saturating_sub(PAT.len() - 1).max(start),
                }
            };
            buf.drain(..keep_from);
        }
    });
    let (mut to_c, mut c_to_d, mut d_to_ret, mut total) = (vec![], vec![], vec![], vec![]);
    for i in 0..cfg.warmup + cfg.iterations {
        if let Ok(mut m) = marks.lock() {
            m.clear();
        }
        let t0 = Instant::now();
        let r = rs.run(&RunOpts::new("echo X")).await?;
        let t1 = Instant::now();
        anyhow::ensure!(r.exit_code == Some(0) && r.output == "X", "{r:?}");
        // The second subscriber may be scheduled after the run returned: wait for its D.
        let limit = Instant::now() + Duration::from_secs(2);
        let (c, d) = loop {
            let found = marks.lock().ok().and_then(|m| {
                let c = m.iter().find(|(k, t)| *k == b'C' && *t >= t0)?.1;
                let d = m.iter().find(|(k, t)| *k == b'D' && *t >= c)?.1;
                Some((c, d))
            });
            if let Some(f) = found {
                break f;
            }
            anyhow::ensure!(Instant::now() < limit, "no C and D marks seen for run {i}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if i >= cfg.warmup {
            to_c.push(c - t0);
            c_to_d.push(d - c);
            d_to_ret.push(t1.saturating_duration_since(d));
            total.push(t1 - t0);
        }
    }
    reader.abort();
    let note = "marks stamped by a second subscriber of the pane's output";
    Ok(vec![
        row_from("run(\"echo X\") traced: whole call", total, ""),
        row_from(
            "  phase: call → C mark (check pane, choose strategy, type, shell reads the line)",
            to_c,
            note,
        ),
        row_from(
            "  phase: C → D mark (the command and the shell's prompt hooks)",
            c_to_d,
            note,
        ),
        row_from(
            "  phase: D mark → result returned",
            d_to_ret,
            "0 when the second subscriber was scheduled after the run returned",
        ),
    ])
}

/// Large reads: the same `capture` of the last N lines through the control-mode client and
/// through a spawned `tmux capture-pane` (`TmuxOptions::spawn_read_lines` forced to either side),
/// in a pane holding 100,000 lines of 55 bytes (5.5 MB), to place the default threshold.
async fn big_reads(cfg: &Config, srv: &PrivateServer) -> Result<Vec<Row>> {
    const LINES: u64 = 100_000;
    let with = |spawn_read_lines: u64| {
        TmuxTerminal::new(TmuxOptions {
            history_limit: 120_000,
            spawn_read_lines,
            ..srv.options(true)
        })
    };
    let control_only = with(u64::MAX);
    let spawned = with(0);
    let info = control_only
        .create_session(&SessionSpec {
            name: Some("big".into()),
            workspace: Some("big".into()),
            ..Default::default()
        })
        .await?;
    let target = Target::Native(info.native.clone());
    let s = control_only.session(&target).await?;
    let fill = s
        .run(&RunOpts {
            max_lines: Some(10),
            timeout: Duration::from_secs(120),
            ..RunOpts::new(format!(
                "seq -f '%07.0f the quick brown fox jumps over the lazy dog.' 1 {LINES}"
            ))
        })
        .await?;
    anyhow::ensure!(fill.exit_code == Some(0), "filling the pane: {fill:?}");
    let sessions = [
        ("control mode", s),
        ("spawned capture-pane", spawned.session(&target).await?),
    ];
    let small = Config {
        iterations: cfg.iterations.clamp(1, 30),
        warmup: cfg.warmup.clamp(1, 3),
    };
    let mut rows = Vec::new();
    for n in [1_000usize, 5_000, 10_000, 20_000, 50_000, 100_000] {
        let mut pair = Vec::new();
        for (how, s) in &sessions {
            let s = s.clone();
            let row = measure(&small, &format!("read the last {n} lines ({how})"), |_| {
                let s = s.clone();
                async move {
                    let c = s
                        .capture(&CaptureOpts {
                            range: ReadRange::Tail(n),
                            max_lines: Some(usize::MAX),
                            ..Default::default()
                        })
                        .await?;
                    anyhow::ensure!(c.text.lines().count() >= n.min(LINES as usize));
                    Ok(())
                }
            })
            .await?;
            pair.push(row);
        }
        let ratio = pair[0].p50_ms / pair[1].p50_ms;
        pair[1].note = format!("{ratio:.2}x as fast as control mode");
        rows.extend(pair);
    }
    Ok(rows)
}
