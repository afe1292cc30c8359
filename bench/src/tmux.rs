//! tmux-level latency: spawn-per-command and raw `tmux -C` floors against termloom's transport,
//! send + read, and `run` end to end, on a private server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use termloom_core::{CaptureOpts, ReadRange, RunOpts, SendOpts, SessionSpec, Target, Terminal};
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
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// A minimal raw control client: the floor for a control-mode round trip.
pub struct RawControl {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl RawControl {
    pub async fn attach(socket: &Path, session: &str) -> Result<Self> {
        let mut child = tokio::process::Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args(["-C", "attach", "-t", session])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut c = RawControl {
            _child: child,
            stdin,
            lines,
        };
        c.stdin.write_all(b"refresh-client -f no-output\n").await?;
        // Skip the attach block, then the reply to refresh-client.
        c.read_reply().await?;
        c.read_reply().await?;
        Ok(c)
    }

    async fn read_reply(&mut self) -> Result<Vec<String>> {
        let mut body = Vec::new();
        let mut inside = false;
        while let Some(l) = self.lines.next_line().await? {
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
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.read_reply().await
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
                    for (name, cmd) in [
                        ("run(\"true\") end to end", "true"),
                        ("run(\"echo X\") end to end", "echo X"),
                    ] {
                        let rs = rs.clone();
                        let mut row = measure(cfg, name, |_| {
                            let rs = rs.clone();
                            async move {
                                let r = rs.run(&RunOpts::new(cmd)).await?;
                                anyhow::ensure!(
                                    r.exit_code == Some(0),
                                    "exit code {:?}",
                                    r.exit_code
                                );
                                Ok(())
                            }
                        })
                        .await?;
                        row.note = format!("strategy: {}", first.strategy);
                        rows.push(row);
                    }
                }
                Err(e) => eprintln!("run not measured: {e}"),
            }
        }
        Err(e) => eprintln!("run not measured: {e}"),
    }
    let _ = pane;
    let spawn_p50 = rows[0].p50_ms;
    let raw_p50 = rows[1].p50_ms;
    for r in rows.iter_mut().skip(2) {
        if r.name.contains("round trip") {
            r.note = format!(
                "{:.0}x faster than spawning; {:.2}x the raw tmux -C floor",
                spawn_p50 / r.p50_ms,
                r.p50_ms / raw_p50
            );
        }
    }
    Ok(Section {
        title: "tmux transport (private server, one pane)".into(),
        rows,
        facts: vec![],
    })
}
