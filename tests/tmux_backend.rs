//! tmux backend tests against a private real tmux server.

use termloom_core::{CaptureOpts, ReadRange, SendOpts, SessionSpec, Target, Terminal};
use termloom_tests::{TmuxServer, wait_until};

#[tokio::test]
async fn smoke_create_send_read() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let info = t
        .create_session(&SessionSpec {
            name: Some("web 1".into()),
            workspace: Some("ws a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(info.name, "web 1");
    let s = t.session(&Target::Name("web 1".into())).await.unwrap();
    s.send_text("echo 'hi;' \"$((1+2))\"", SendOpts::default())
        .await
        .unwrap();
    let text = wait_until("echo output", || async {
        let c = s
            .capture(&CaptureOpts {
                range: ReadRange::Tail(20),
                ..Default::default()
            })
            .await
            .unwrap();
        c.text.lines().any(|l| l == "hi; 3").then_some(c.text)
    })
    .await;
    assert!(text.contains("hi; 3"), "{text}");
    assert_eq!(
        srv.tmux(&["show", "-t", "=ws a:", "-v", "history-limit"])
            .trim(),
        "50000"
    );
    assert_eq!(
        srv.tmux(&["display", "-p", "-t", "=ws a:", "#{history_limit}"])
            .trim(),
        "50000"
    );
    assert_eq!(srv.tmux(&["show", "-gv", "history-limit"]).trim(), "2000");
    let all = t.list_sessions().await.unwrap();
    assert_eq!(all.len(), 1);
}
