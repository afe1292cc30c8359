//! tmux backend tests against a private real tmux server, and the helpers the other `tmux_*`
//! modules share. Every test starts its own [`TmuxServer`]; helpers poll with deadlines, never sleep.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use termloom_core::{
    CaptureOpts, Loom, ReadRange, Registry, SendOpts, Session, SessionInfo, SessionSpec, Target,
    Terminal,
};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::TmuxTerminal;

/// Creates a session named `name` in workspace `ws` and opens it.
pub(crate) async fn new_session(
    t: &TmuxTerminal,
    ws: &str,
    name: &str,
) -> (SessionInfo, Arc<dyn Session>) {
    let info = t
        .create_session(&SessionSpec {
            name: Some(name.into()),
            workspace: Some(ws.into()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create session {name:?} in {ws:?}: {e}"));
    let s = t.open(&info).await.expect("open the new session");
    (info, s)
}

/// The names of the live sessions, sorted.
pub(crate) async fn names(t: &TmuxTerminal) -> Vec<String> {
    let mut v: Vec<String> = t
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    v.sort();
    v
}

/// A read of the last `n` lines.
pub(crate) fn tail(n: usize) -> CaptureOpts {
    CaptureOpts {
        range: ReadRange::Tail(n),
        ..Default::default()
    }
}

/// A read of every line the pane holds.
pub(crate) fn everything() -> CaptureOpts {
    CaptureOpts {
        range: ReadRange::Lines {
            from: 0,
            to: u64::MAX,
        },
        max_lines: Some(usize::MAX),
        ..Default::default()
    }
}

/// Polls the pane until one of its lines (wrapped lines joined) equals `line` exactly; returns the
/// whole text then.
pub(crate) async fn wait_line(s: &dyn Session, line: &str) -> String {
    let opts = CaptureOpts {
        join_wrapped: true,
        ..everything()
    };
    wait_until(&format!("a line {line:?} in {}", s.native()), || async {
        let c = s.capture(&opts).await.ok()?;
        c.text.lines().any(|l| l == line).then_some(c.text)
    })
    .await
}

/// Polls until the pane's last line is a bare prompt (`$`): the shell is ready and idle.
pub(crate) async fn wait_prompt(s: &dyn Session) {
    wait_until(&format!("a prompt in {}", s.native()), || async {
        let c = s.capture(&tail(1)).await.ok()?;
        (c.text == "$").then_some(())
    })
    .await
}

/// `tmux display-message -p -t TARGET FORMAT`, without the final newline.
pub(crate) fn display(srv: &TmuxServer, target: &str, format: &str) -> String {
    let out = srv.tmux(&["display-message", "-p", "-t", target, format]);
    out.strip_suffix('\n').unwrap_or(&out).to_string()
}

/// Polls until the pane's foreground command is `command`.
pub(crate) async fn wait_command(srv: &TmuxServer, pane: &str, command: &str) {
    wait_until(
        &format!("{command} in the foreground of {pane}"),
        || async { (display(srv, pane, "#{pane_current_command}") == command).then_some(()) },
    )
    .await
}

/// A pane's place and size in its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geo {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// Where tmux put a pane.
pub(crate) fn geometry(srv: &TmuxServer, pane: &str) -> Geo {
    let out = display(
        srv,
        pane,
        "#{pane_left} #{pane_top} #{pane_width} #{pane_height}",
    );
    let n: Vec<u32> = out
        .split(' ')
        .map(|x| {
            x.parse()
                .unwrap_or_else(|_| panic!("geometry of {pane}: {out:?}"))
        })
        .collect();
    Geo {
        left: n[0],
        top: n[1],
        width: n[2],
        height: n[3],
    }
}

/// Whether a process is alive (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// A loom over this server with the server's registry.
pub(crate) fn loom(srv: &TmuxServer) -> Loom {
    Loom::new(
        Arc::new(srv.terminal()),
        Some(Registry::open(&srv.state).expect("open the registry")),
    )
}

/// Turns the session into a byte sink: its shell runs `stty raw -echo; exec cat > FILE`.
///
/// Raw mode is what makes the comparison exact: the tty then does no line editing (no 4096-byte
/// canonical line limit, no erase/kill/EOF/`^V` characters), no CR/NL translation and no
/// signals, so FILE holds exactly the bytes tmux wrote into the pane. Returns FILE once `cat` runs
/// (so no byte can reach the shell or the tty before raw mode is on).
pub(crate) async fn raw_sink(srv: &TmuxServer, s: &dyn Session, label: &str) -> PathBuf {
    let file = srv.dir().join(format!("sink-{label}"));
    s.send_text(
        &format!("stty raw -echo; exec cat > '{}'", file.display()),
        SendOpts::default(),
    )
    .await
    .expect("start the sink");
    wait_command(srv, &s.native().id, "cat").await;
    file
}

/// Sends `sentinel` after whatever was sent before, waits until the sink ends with it and returns
/// the bytes from `from` up to the sentinel. tmux writes a pane's input in order, so everything
/// sent earlier is in the file by then.
pub(crate) async fn drain_sink(
    s: &dyn Session,
    file: &Path,
    from: usize,
    sentinel: &str,
) -> Vec<u8> {
    s.send_text(sentinel, SendOpts { enter: false })
        .await
        .expect("send the sentinel");
    let all = wait_until(&format!("{sentinel:?} in {}", file.display()), || async {
        let b = std::fs::read(file).ok()?;
        b.ends_with(sentinel.as_bytes()).then_some(b)
    })
    .await;
    all[from..all.len() - sentinel.len()].to_vec()
}

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
    let text = wait_line(s.as_ref(), "hi; 3").await;
    assert!(text.contains("hi; 3"), "{text}");
    assert_eq!(
        srv.tmux(&["show", "-t", "=ws a:", "-v", "history-limit"])
            .trim(),
        "50000"
    );
    assert_eq!(display(&srv, "=ws a:", "#{history_limit}"), "50000");
    assert_eq!(srv.tmux(&["show", "-gv", "history-limit"]).trim(), "2000");
    let all = t.list_sessions().await.unwrap();
    assert_eq!(all.len(), 1);
}
