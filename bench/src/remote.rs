//! Remote (ssh over loopback) against local latency for a round trip, send, read and run.
//!
//! One private tmux server on this machine is driven twice: locally, and as a remote host through
//! a real sshd on 127.0.0.1 (the test fixture `termloom_tests::ssh`, with its own keys and config).
//! Loopback shows termloom's and ssh's own cost, not a network's: over a real link add one round
//! trip per call (control mode) or per spawned call (multiplexed ssh).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use termloom_core::{
    CaptureOpts, OutputEvent, ReadRange, RunOpts, SendOpts, Session, SessionSpec, Target, Terminal,
};
use termloom_tests::ssh::{HOST, SshServer};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

use crate::stats::{Config, Row, Section, measure};
use crate::tmux::PrivateServer;

/// The operations measured on one terminal, in a session it creates: round trip, send and read
/// (unless `only_run`), and run.
async fn rows_for(
    cfg: &Config,
    label: &str,
    t: &TmuxTerminal,
    ws: &str,
    only_run: bool,
) -> Result<Vec<Row>> {
    let info = t
        .create_session(&SessionSpec {
            name: Some(format!("{ws}-pane")),
            workspace: Some(ws.into()),
            ..Default::default()
        })
        .await
        .with_context(|| format!("create a session ({label})"))?;
    let s: Arc<dyn Session> = t.session(&Target::Native(info.native.clone())).await?;
    let mut rows = Vec::new();
    if !only_run {
        let client = t.client();
        rows.push(
            measure(
                cfg,
                &format!("{label}: round trip (display -p)"),
                |_| async {
                    client
                        .run(vec!["display-message".into(), "-p".into(), "x".into()])
                        .await?;
                    Ok(())
                },
            )
            .await?,
        );
        let s1 = s.clone();
        rows.push(
            measure(
                cfg,
                &format!("{label}: send_text (one line + Enter)"),
                |i| {
                    let s = s1.clone();
                    async move {
                        s.send_text(&format!(": ping {i}"), SendOpts::default())
                            .await?;
                        Ok(())
                    }
                },
            )
            .await?,
        );
        // Output streaming: type a command and wait for its output on a subscription.
        let stream = Arc::new(tokio::sync::Mutex::new(s.subscribe().await?));
        let s4 = s.clone();
        rows.push(
            measure(
                cfg,
                &format!("{label}: send + see the output streamed"),
                |i| {
                    let s = s4.clone();
                    let stream = stream.clone();
                    async move {
                        let want = format!("tl-{}\r\n", i + 1_000_000);
                        s.send_text(&format!("echo tl-$(({i} + 1000000))"), SendOpts::default())
                            .await?;
                        let mut seen = Vec::new();
                        let mut stream = stream.lock().await;
                        let wait = async {
                            while let Some(ev) = stream.next().await {
                                if let OutputEvent::Output(b) = ev {
                                    seen.extend_from_slice(&b);
                                    if seen.windows(want.len()).any(|w| w == want.as_bytes()) {
                                        return Ok(());
                                    }
                                }
                            }
                            anyhow::bail!("the output stream ended")
                        };
                        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
                            .await
                            .context("no output in 10 s")?
                    }
                },
            )
            .await?,
        );
        let s2 = s.clone();
        rows.push(
            measure(cfg, &format!("{label}: read 20 lines"), |_| {
                let s = s2.clone();
                async move {
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
    }
    match s.run(&RunOpts::new("true")).await {
        Ok(first) => {
            let s3 = s.clone();
            let mut row = measure(cfg, &format!("{label}: run(\"echo X\")"), |_| {
                let s = s3.clone();
                async move {
                    let r = s.run(&RunOpts::new("echo X")).await?;
                    anyhow::ensure!(r.exit_code == Some(0), "exit code {:?}", r.exit_code);
                    Ok(())
                }
            })
            .await?;
            row.note = format!("strategy: {}", first.strategy);
            rows.push(row);
        }
        Err(e) => eprintln!("{label}: run not measured: {e}"),
    }
    Ok(rows)
}

pub async fn run(cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let sshd = SshServer::start();
    let remote = |control: bool| TmuxOptions {
        host: Some(HOST.into()),
        ssh: sshd.ssh_options(),
        ..srv.options(control)
    };
    // Start the server locally, so both sides find it running.
    let local = TmuxTerminal::new(srv.options(true));
    local
        .create_session(&SessionSpec {
            name: Some("first".into()),
            workspace: Some("bench".into()),
            ..Default::default()
        })
        .await?;

    // Connection set-up: the first call of a fresh terminal, with no ssh master yet.
    let mut cold = Vec::new();
    for _ in 0..5 {
        sshd.close_masters();
        let t = TmuxTerminal::new(remote(false));
        let started = Instant::now();
        t.client()
            .run(vec!["display-message".into(), "-p".into(), "x".into()])
            .await?;
        cold.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    cold.sort_by(f64::total_cmp);

    let remote_control = TmuxTerminal::new(remote(true));
    let remote_spawn = TmuxTerminal::new(remote(false));
    let local_spawn = TmuxTerminal::new(srv.options(false));
    let mut rows = Vec::new();
    // Shell integration is for local servers only (its scripts are files on this machine), so a
    // remote run uses markers: the local marker run separates ssh's cost from the strategy's.
    let local_plain = TmuxTerminal::new(TmuxOptions {
        integration: false,
        ..srv.options(true)
    });
    let mut local_rows = rows_for(cfg, "local, control mode", &local, "lc", false).await?;
    local_rows.extend(
        rows_for(
            cfg,
            "local, control mode, no integration",
            &local_plain,
            "lp",
            true,
        )
        .await?,
    );
    let remote_rows = rows_for(cfg, "ssh, control mode", &remote_control, "rc", false).await?;
    let local_spawn_rows = rows_for(cfg, "local, spawned", &local_spawn, "ls", false).await?;
    let remote_spawn_rows = rows_for(
        cfg,
        "ssh, spawned (ControlMaster)",
        &remote_spawn,
        "rs",
        false,
    )
    .await?;
    for (locals, mut remotes) in [
        (local_rows, remote_rows),
        (local_spawn_rows, remote_spawn_rows),
    ] {
        for r in remotes.iter_mut() {
            let op = r.name.split_once(": ").map(|x| x.1).unwrap_or("");
            // Against the local row of the same operation and the same run strategy.
            let same = locals
                .iter()
                .rev()
                .find(|l| l.name.ends_with(op) && (!op.starts_with("run") || l.note == r.note));
            if let Some(l) = same {
                let ratio = format!(
                    "{:.1}x local ({:+.2} ms)",
                    r.p50_ms / l.p50_ms,
                    r.p50_ms - l.p50_ms
                );
                r.note = if r.note.is_empty() {
                    ratio
                } else {
                    format!("{}; {ratio}", r.note)
                };
            }
        }
        rows.extend(locals);
        rows.extend(remotes);
    }
    let facts = vec![
        (
            "ssh connection set-up (first call, no master; median of 5)".to_string(),
            format!("{:.1} ms", cold[cold.len() / 2]),
        ),
        (
            "remote host".to_string(),
            "this machine through sshd on 127.0.0.1 (ed25519 keys); the account's shell rc files \
             are skipped on the server side (SetEnv SHLVL=1), so a real host with a slow ~/.bashrc \
             adds its start-up time to every spawned call (control mode pays it once)"
                .to_string(),
        ),
    ];
    Ok(Section {
        title: "remote host over ssh (loopback) vs local".into(),
        rows,
        facts,
    })
}
