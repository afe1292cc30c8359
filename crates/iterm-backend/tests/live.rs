//! The real iTerm2, on macOS, when `TERMLOOM_ITERM_LIVE=1` (iTerm2 running, Python API enabled
//! in Settings › General › Magic; credentials from `ITERM2_COOKIE`/`ITERM2_KEY` when run inside
//! iTerm2, else iTerm2 asks through `osascript`). Everywhere else every test here returns at once.
//!
//! Everything happens in one new window, made in the background and closed at the end; nothing
//! else is touched. `TERMLOOM_ITERM_SOCKET` overrides the socket.

use std::time::{Duration, Instant};

use termloom_core::{
    CaptureOpts, Direction, Layout, LayoutPlacement, ReadRange, RunOpts, SendOpts, SessionSpec,
    SplitSpec, Terminal,
};
use termloom_iterm::{ItermTerminal, color};

fn live() -> bool {
    let on = std::env::var("TERMLOOM_ITERM_LIVE").ok().as_deref() == Some("1");
    if !on {
        eprintln!("TERMLOOM_ITERM_LIVE is not 1: skipping the live iTerm2 tests");
    }
    on
}

async fn wait_for_line(s: &std::sync::Arc<dyn termloom_core::Session>, line: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s
            .capture(&CaptureOpts {
                range: ReadRange::Tail(100),
                ..Default::default()
            })
            .await
            .expect("read");
        if c.text.lines().any(|l| l.trim_end() == line) {
            return;
        }
        assert!(Instant::now() < end, "no line {line:?} in:\n{}", c.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_iterm2_end_to_end() {
    if !live() {
        return;
    }
    let t = ItermTerminal::from_env();
    let ws = format!("tl-live-{}", std::process::id());
    let first = t
        .create_session(&SessionSpec {
            name: Some(format!("{ws}-a")),
            workspace: Some(ws.clone()),
            ..Default::default()
        })
        .await
        .expect("create (is iTerm2 running with the Python API enabled?)");
    let cleanup = |t: ItermTerminal, ws: String| async move {
        let _ = t.destroy_workspace(&ws).await;
    };
    let s = t.open(&first).await.expect("open");
    assert_eq!(
        t.list_sessions()
            .await
            .expect("list")
            .iter()
            .filter(|x| x.workspace == ws)
            .count(),
        1
    );

    s.send_text("echo live-$((40+2)) é", SendOpts::default())
        .await
        .expect("send");
    wait_for_line(&s, "live-42 é").await;

    let b = s
        .split(&SplitSpec {
            direction: Direction::Horizontal,
            percent: None,
            name: Some(format!("{ws}-b")),
            before: false,
            cwd: None,
            command: Some("echo in-b".into()),
        })
        .await
        .expect("split");
    wait_for_line(&t.open(&b).await.expect("open b"), "in-b").await;

    let r = s
        .run(&RunOpts {
            timeout: Duration::from_secs(20),
            ..RunOpts::new("echo ran; (exit 3)")
        })
        .await
        .expect("run");
    assert_eq!(r.output, "ran", "{r:?}");
    if r.strategy != termloom_core::Strategy::Quiet {
        assert_eq!(r.exit_code, Some(3), "{r:?}");
    }
    let st = s.status().await.expect("status");
    eprintln!("status: {st:?}");

    let re = regex::Regex::new("^later$").expect("regex");
    s.send_text("sleep 0.5; echo later", SendOpts::default())
        .await
        .expect("send");
    assert_eq!(
        s.wait_for(&re, Duration::from_secs(20))
            .await
            .expect("wait"),
        Some("later".into())
    );

    s.rename(&format!("{ws}-renamed")).await.expect("rename");
    t.open_iterm(&s.info().await.expect("info"))
        .await
        .expect("open")
        .set_profile_properties(&[("Background Color", color(0.25, 0.0, 0.0))])
        .await
        .expect("profile property");

    let laid = t
        .apply_layout(
            &Layout::predefined(
                "main-vertical",
                &[format!("{ws}-m1"), format!("{ws}-m2"), format!("{ws}-m3")],
            )
            .expect("layout"),
            &LayoutPlacement {
                workspace: Some(ws.clone()),
                window: Some("grid".into()),
                cwd: None,
            },
        )
        .await
        .expect("layout");
    assert_eq!(laid.len(), 3);
    t.open(&laid[2].1)
        .await
        .expect("open")
        .close()
        .await
        .expect("close");
    cleanup(t, ws).await;
}
