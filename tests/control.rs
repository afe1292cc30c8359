//! Control-mode transport: the same operations over one long-lived `tmux -C` client.

use termloom_core::{CaptureOpts, ReadRange, SendOpts, SessionSpec, Target, Terminal};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

use crate::tmux_backend::names;

fn control_terminal(srv: &TmuxServer) -> TmuxTerminal {
    TmuxTerminal::new(TmuxOptions {
        control: true,
        ..srv.options()
    })
}

/// Creates session `name` in workspace `workspace`.
async fn make(t: &TmuxTerminal, name: &str, workspace: &str) -> termloom_core::SessionInfo {
    t.create_session(&SessionSpec {
        name: Some(name.into()),
        workspace: Some(workspace.into()),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("create {name} in {workspace}: {e}"))
}

#[tokio::test]
async fn control_mode_creates_sends_and_reads_exactly() {
    let srv = TmuxServer::start();
    let t = control_terminal(&srv);
    // No server yet: the first call falls back to spawning and starts it.
    assert!(t.list_sessions().await.unwrap().is_empty());
    make(&t, "a b", "w s").await;
    let s = t.session(&Target::Name("a b".into())).await.unwrap();
    let hostile = "printf '%s\\n' \"~x ;\" '$HOME' \"a\\\\b\" 'é✓' ';'";
    s.send_text(hostile, SendOpts::default()).await.unwrap();
    let text = wait_until("hostile output", || async {
        let c = s
            .capture(&CaptureOpts {
                range: ReadRange::Tail(30),
                ..Default::default()
            })
            .await
            .unwrap();
        // The typed command line holds `é✓` too: wait for the output line itself.
        c.text.lines().any(|l| l == "é✓").then_some(c.text)
    })
    .await;
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == "~x ;").expect(&text);
    assert_eq!(
        &lines[at..at + 5],
        ["~x ;", "$HOME", "a\\b", "é✓", ";"],
        "{text}"
    );
    // The chain (create + tags) and the failing chain both came back in order: more calls still work.
    assert!(t.session(&Target::Name("nope".into())).await.is_err());
    assert_eq!(t.list_sessions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn control_mode_reconnects_after_the_server_dies() {
    let srv = TmuxServer::start();
    let t = control_terminal(&srv);
    make(&t, "x", "w").await;
    assert_eq!(t.list_sessions().await.unwrap().len(), 1);
    srv.kill_server();
    let started = std::time::Instant::now();
    // In flight or next: an error or an empty listing, quickly, never a hang.
    let r = t.list_sessions().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    if let Ok(v) = r {
        assert!(v.is_empty());
    }
    make(&t, "y", "w2").await;
    assert_eq!(names(&t).await, ["y"]);
}

#[tokio::test]
async fn watching_a_session_streams_lines_and_ends_when_the_pane_dies() {
    use futures_util::StreamExt;
    use termloom_core::text::{LineEvent, lines};
    let srv = TmuxServer::start();
    let t = control_terminal(&srv);
    make(&t, "w", "ws").await;
    let keep = make(&t, "keep", "ws").await;
    let s = t.session(&Target::Name("w".into())).await.unwrap();
    let mut stream = Box::pin(lines(s.subscribe().await.unwrap()));
    let mut second = Box::pin(lines(s.subscribe().await.unwrap()));
    s.send_text("echo streamed-$((6*7))", SendOpts::default())
        .await
        .unwrap();
    let got = tokio::time::timeout(termloom_tests::timeout(), async {
        while let Some(ev) = stream.next().await {
            if let LineEvent::Line(l) = ev
                && l.trim() == "streamed-42"
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(got);
    s.close().await.unwrap();
    let reason = tokio::time::timeout(termloom_tests::timeout(), async {
        while let Some(ev) = second.next().await {
            if let LineEvent::Closed(r) = ev {
                return Some(r);
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(reason.unwrap_or_default().contains("closed"));
    // The stream ends after its reason.
    let end = tokio::time::timeout(termloom_tests::timeout(), second.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
    // A pane killed from outside termloom (tmux kill-pane) while watched: its stream ends too,
    // with a reason naming the pane.
    let victim = make(&t, "victim", "ws").await;
    let v = t.session(&Target::Name("victim".into())).await.unwrap();
    let mut raw = v.subscribe().await.unwrap();
    srv.tmux(&["kill-pane", "-t", &victim.native.id]);
    let events = tokio::time::timeout(termloom_tests::timeout(), async {
        let mut events = Vec::new();
        while let Some(ev) = raw.next().await {
            events.push(ev);
        }
        events
    })
    .await
    .expect("the stream of a killed pane ends");
    match events.last() {
        Some(termloom_core::OutputEvent::Closed { reason }) => {
            assert!(
                reason.contains(&victim.native.id) && reason.contains("closed"),
                "{reason}"
            );
        }
        other => panic!("the stream ended without a reason: {other:?}"),
    }
    // The other pane of the workspace is untouched.
    assert!(
        t.list_sessions()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == keep.id)
    );
}

/// tmux 3.3a segfaults when a session is created or closed, or a client leaves, while a control
/// client is between its first and last identify message (the notification is written to a client
/// whose control state does not exist yet). termloom keeps its own attaches apart from its own
/// commands and departures, so a burst of creates, watches and kills leaves the server running.
#[tokio::test]
async fn bursts_of_creates_watches_and_kills_never_crash_the_tmux_server() {
    use futures_util::future::join_all;
    use std::sync::Arc;
    let srv = TmuxServer::start();
    let t = Arc::new(control_terminal(&srv));
    make(&t, "first", "first").await;
    const ROUNDS: usize = 4;
    const BURST: usize = 12;
    let mut streams = Vec::new();
    for round in 0..ROUNDS {
        let made = join_all((0..BURST).map(|i| {
            let t = t.clone();
            async move {
                let info = make(&t, &format!("r{round}s{i}"), &format!("r{round}w{i}")).await;
                // Watching attaches one output client per workspace.
                let s = t.open(&info).await.unwrap();
                s.subscribe()
                    .await
                    .unwrap_or_else(|e| panic!("watch r{round}s{i}: {e}"))
            }
        }))
        .await;
        streams.push(made);
        // Meanwhile the previous round's workspaces go away: their output clients leave.
        if round > 0 {
            join_all((0..BURST).map(|i| {
                let t = t.clone();
                async move {
                    t.destroy_workspace(&format!("r{}w{i}", round - 1))
                        .await
                        .unwrap_or_else(|e| panic!("destroy r{}w{i}: {e}", round - 1))
                }
            }))
            .await;
        }
    }
    // The server is still there, with the first session and the last round.
    let names = names(&t).await;
    assert!(names.iter().any(|n| n == "first"), "{names:?}");
    assert_eq!(names.len(), 1 + BURST, "{names:?}");
}

#[tokio::test]
async fn a_request_the_dead_client_never_received_is_sent_again_not_lost() {
    // A control client that is gone before its exit was read (a session destroyed under it, a
    // killed client): a request written to it fails to be written. That request never ran, so it
    // says so (NotSent), and the client layer sends it again on a new connection.
    use termloom_tmux::control::transport::Connection;
    use termloom_tmux::error::TmuxError;
    let srv = TmuxServer::start();
    srv.tmux(&["new-session", "-d", "-s", "keep"]);
    let opts = srv.options();
    let conn = Connection::connect(&opts, true).await.expect("connect");
    let pid = conn.pid().expect("pid");
    // Killed and gone, while this task never yields: the reader has not seen the end yet.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + termloom_tests::timeout();
    let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    };
    while !gone() {
        assert!(
            std::time::Instant::now() < deadline,
            "tmux -C {pid} did not die"
        );
        std::hint::spin_loop();
    }
    let r = conn
        .request_blocks(&["display-message".into(), "-p".into(), "x".into()])
        .await;
    // Never answered. NotSent when the write failed; the server may still hold the dead
    // client's pipe (tmux reads a control client's stdin itself) and take the line, and then
    // only the end of the connection says it is gone.
    assert!(
        matches!(
            r,
            Err(TmuxError::NotSent(_)) | Err(TmuxError::ConnectionLost(_))
        ),
        "{r:?}"
    );
    // Through the client layer the same request is answered.
    let t = control_terminal(&srv);
    assert!(!t.list_workspaces().await.expect("list").is_empty());
}
