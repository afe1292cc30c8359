//! The Rust client against the fake iTerm2 (real shells on real ptys), plus raw-socket servers
//! for the failure paths. Every wait polls against a deadline.
#![cfg(feature = "fake")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use termloom_iterm::ItermError;
use termloom_iterm::connection::{ConnectOptions, Connection, Credentials, VariableTarget};
use termloom_iterm::fake::{FakeConfig, FakeIterm};
use termloom_iterm::proto::{self, NotificationType};
use tokio::net::UnixListener;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

fn short_tempdir() -> tempfile::TempDir {
    // Unix socket paths are limited to ~107 bytes.
    tempfile::Builder::new()
        .prefix("tlit")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

async fn start_fake(dir: &Path) -> Result<FakeIterm> {
    let socket = dir.join("private").join("socket");
    Ok(FakeIterm::start(FakeConfig::new(socket, "test-cookie", "test-key")).await?)
}

async fn connect(fake: &FakeIterm) -> Result<Connection> {
    let creds = fake.credentials().context("fake has credentials")?;
    let opts = ConnectOptions::with_socket(fake.socket_path()).credentials(creds);
    Ok(Connection::connect(opts).await?)
}

/// Polls `probe` until it yields `Some`, failing after [`DEADLINE`].
async fn poll<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn screen_lines(conn: &Connection, session: &str) -> Result<Vec<String>> {
    let buf = conn.get_screen(session).await?;
    Ok(buf
        .contents
        .into_iter()
        .map(|l| l.text.unwrap_or_default())
        .collect())
}

/// Waits for a notification matching `pick`.
async fn next_notification<T>(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<proto::Notification>>,
    mut pick: impl FnMut(&proto::Notification) -> Option<T>,
) -> Result<T> {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let n = tokio::time::timeout_at(end, rx.recv())
            .await
            .context("timed out waiting for a notification")??;
        if let Some(v) = pick(&n) {
            return Ok(v);
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_drives_real_shells_through_the_fake() -> Result<()> {
    let dir = short_tempdir();
    let fake = start_fake(dir.path()).await?;
    let conn = connect(&fake).await?;
    assert_eq!(conn.protocol_version().as_deref(), Some("1.11"));

    let mut notes = conn.notifications();
    conn.subscribe(NotificationType::NotifyOnNewSession, None)
        .await?;
    conn.subscribe(NotificationType::NotifyOnLayoutChange, None)
        .await?;
    // Subscribing twice is fine (ALREADY_SUBSCRIBED counts as success).
    conn.subscribe(NotificationType::NotifyOnNewSession, None)
        .await?;

    let created = conn.create_window(None).await?;
    let first = created.session_id.clone().context("session id")?;
    let window = created.window_id.clone().context("window id")?;
    let announced = next_notification(&mut notes, |n| {
        n.new_session_notification
            .as_ref()
            .and_then(|s| s.session_id.clone())
    })
    .await?;
    assert_eq!(announced, first);

    let new = conn.split_pane(&first, true, false).await?;
    assert_eq!(new.len(), 1);
    let second = new[0].clone();
    let layout = next_notification(&mut notes, |n| {
        n.layout_changed_notification
            .as_ref()
            .and_then(|l| l.list_sessions_response.clone())
            .filter(|l| l.session_ids().len() == 2)
    })
    .await?;
    assert_eq!(layout.session_ids(), vec![first.clone(), second.clone()]);

    let listing = conn.list_sessions().await?;
    assert_eq!(listing.windows.len(), 1);
    let tab = &listing.windows[0].tabs[0];
    let root = tab.root.as_ref().context("root")?;
    assert_eq!(root.vertical, Some(true));
    let tab_id = tab.tab_id.clone().context("tab id")?;
    // The split halved the width: 80 columns = 39 + divider + 40.
    let grid = |i: usize| match &root.links[i].child {
        Some(proto::split_tree_node::split_tree_link::Child::Session(s)) => {
            s.grid_size.as_ref().and_then(|g| g.width)
        }
        _ => None,
    };
    assert_eq!((grid(0), grid(1)), (Some(39), Some(40)));

    conn.send_text(&second, "echo hello-rust\r").await?;
    poll("hello-rust on the screen", || async {
        let lines = screen_lines(&conn, &second).await?;
        Ok(lines.iter().any(|l| l.trim() == "hello-rust").then_some(()))
    })
    .await?;
    // The same output through trailing lines, with a cursor below it.
    let tail = conn.get_trailing_lines(&second, 5).await?;
    assert!(tail.contents.len() <= 5);
    let cursor = tail.cursor.context("cursor")?;
    assert!(cursor.y.unwrap_or(0) >= tail.num_lines_above_screen.unwrap_or(0));

    // Variables on every scope; values are JSON.
    let s = VariableTarget::Session(first.clone());
    conn.set_variable(&s, "user.colour", &serde_json::json!("teal"))
        .await?;
    assert_eq!(
        conn.get_variable(&s, "user.colour").await?,
        serde_json::json!("teal")
    );
    assert_eq!(
        conn.get_variable(&s, "user.unset").await?,
        serde_json::Value::Null
    );
    assert_eq!(conn.get_variable(&s, "id").await?, serde_json::json!(first));
    assert_eq!(
        conn.get_variable(&s, "columns").await?,
        serde_json::json!(39)
    );
    for target in [
        VariableTarget::Tab(tab_id.clone()),
        VariableTarget::Window(window.clone()),
        VariableTarget::App,
    ] {
        conn.set_variable(&target, "user.n", &serde_json::json!(7))
            .await?;
        assert_eq!(
            conn.get_variable(&target, "user.n").await?,
            serde_json::json!(7)
        );
    }
    match conn.set_variable(&s, "colour", &serde_json::json!(1)).await {
        Err(ItermError::Rpc { status, .. }) => assert_eq!(status, "INVALID_NAME"),
        other => bail!("expected INVALID_NAME, got {other:?}"),
    }

    // Focus and activation.
    conn.activate_session(&first).await?;
    let focus = conn.focus().await?;
    assert!(focus.notifications.iter().any(|n| matches!(
        &n.event,
        Some(proto::focus_changed_notification::Event::Session(id)) if *id == first
    )));
    conn.set_profile_property(&first, "Name", "\"renamed\"")
        .await?;
    assert_eq!(
        conn.get_variable(&s, "name").await?,
        serde_json::json!("renamed")
    );

    // Closing kills the shells and announces it.
    let pids = fake.session_pids();
    assert_eq!(pids.len(), 2);
    conn.subscribe(NotificationType::NotifyOnTerminateSession, None)
        .await?;
    conn.close_sessions(&[&second], true).await?;
    let gone = next_notification(&mut notes, |n| {
        n.terminate_session_notification
            .as_ref()
            .and_then(|t| t.session_id.clone())
    })
    .await?;
    assert_eq!(gone, second);
    assert_eq!(
        conn.list_sessions().await?.session_ids(),
        vec![first.clone()]
    );

    drop(conn);
    fake.shutdown().await;
    for pid in pids {
        poll("the session's shell to exit", || async move {
            Ok((!pid_alive(pid)).then_some(()))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_marks_become_prompt_notifications() -> Result<()> {
    let dir = short_tempdir();
    let fake = start_fake(dir.path()).await?;
    let conn = connect(&fake).await?;
    let shell = r"env PS1='\[\e]133;D;$?\a\e]133;A\a\]$ \[\e]133;B\a\]' PS0='\e]133;C\a' /bin/bash --norc --noprofile";
    let session = conn
        .create_window(Some(shell))
        .await?
        .session_id
        .context("session id")?;
    poll("the first prompt", || async {
        Ok(conn.get_prompt(&session, None).await?)
    })
    .await?;
    let mut notes = conn.notifications();
    conn.subscribe(NotificationType::NotifyOnPrompt, Some(&session))
        .await?;
    conn.send_text(&session, "false\r").await?;
    use proto::prompt_notification::Event;
    let (command, id) = next_notification(&mut notes, |n| {
        let p = n.prompt_notification.as_ref()?;
        match &p.event {
            Some(Event::CommandStart(c)) => Some((c.command.clone(), p.unique_prompt_id.clone())),
            _ => None,
        }
    })
    .await?;
    assert_eq!(command.as_deref(), Some("false"));
    let status = next_notification(&mut notes, |n| {
        match &n.prompt_notification.as_ref()?.event {
            Some(Event::CommandEnd(e)) => e.status,
            _ => None,
        }
    })
    .await?;
    assert_eq!(status, 1);
    let id = id.context("prompt id")?;
    let prompt = conn
        .get_prompt(&session, Some(&id))
        .await?
        .context("prompt by id")?;
    assert_eq!(prompt.command.as_deref(), Some("false"));
    assert_eq!(prompt.exit_status, Some(1));
    assert_eq!(
        prompt.prompt_state(),
        proto::get_prompt_response::State::Finished
    );
    assert!(conn.list_prompts(&session).await?.contains(&id));
    fake.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmux_gateway_control_channel() -> Result<()> {
    let dir = short_tempdir();
    let fake = start_fake(dir.path()).await?;
    let conn = connect(&fake).await?;
    // A stand-in for `tmux -CC`: the start marker, then one %begin/%end block per command.
    let gateway_script = r#"printf '\033P1000p'; while IFS= read -r l; do printf '%%begin 1 1 1\n%s-out\n%%end 1 1 1\n' "$l"; done"#;
    let gateway = conn
        .create_window(Some(&format!(
            "sh -c '{}'",
            gateway_script.replace('\'', r"'\''")
        )))
        .await?
        .session_id
        .context("session id")?;
    let connections = poll("the tmux connection", || async {
        let c = conn.tmux_list_connections().await?;
        Ok((!c.is_empty()).then_some(c))
    })
    .await?;
    assert_eq!(
        connections[0].owning_session_id.as_deref(),
        Some(gateway.as_str())
    );
    let id = connections[0]
        .connection_id
        .clone()
        .context("connection id")?;
    assert_eq!(
        conn.tmux_send_command(&id, "list-windows").await?,
        "list-windows-out"
    );
    let item = conn.menu_item("tmux.Detach", true).await?;
    assert_eq!(item.enabled, Some(true));
    match conn.menu_item("no.such.item", true).await {
        Err(ItermError::Rpc { status, .. }) => assert!(status.starts_with("BAD_IDENTIFIER")),
        other => bail!("expected BAD_IDENTIFIER, got {other:?}"),
    }
    match conn.tmux_send_command("nope", "x").await {
        Err(ItermError::Rpc { status, .. }) => assert_eq!(status, "INVALID_CONNECTION_ID"),
        other => bail!("expected INVALID_CONNECTION_ID, got {other:?}"),
    }
    conn.menu_item("tmux.Force Detach", false).await?;
    assert!(conn.tmux_list_connections().await?.is_empty());
    fake.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_session_is_a_clear_error() -> Result<()> {
    let dir = short_tempdir();
    let fake = start_fake(dir.path()).await?;
    let conn = connect(&fake).await?;
    let expect_nf = |r: Result<(), ItermError>| match r {
        Err(ItermError::SessionNotFound(id)) => assert_eq!(id, "no-such-session"),
        other => panic!("expected SessionNotFound, got {other:?}"),
    };
    expect_nf(conn.send_text("no-such-session", "x").await);
    expect_nf(conn.get_screen("no-such-session").await.map(|_| ()));
    expect_nf(
        conn.split_pane("no-such-session", true, false)
            .await
            .map(|_| ()),
    );
    expect_nf(conn.close_sessions(&["no-such-session"], true).await);
    expect_nf(conn.activate_session("no-such-session").await);
    let msg = conn
        .send_text("no-such-session", "x")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("no-such-session"), "{msg}");
    fake.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_cookie_is_auth_refused() -> Result<()> {
    let dir = short_tempdir();
    let fake = start_fake(dir.path()).await?;
    let opts = ConnectOptions::with_socket(fake.socket_path()).credentials(Credentials {
        cookie: "wrong".into(),
        key: "test-key".into(),
    });
    match Connection::connect(opts).await {
        Err(e @ ItermError::AuthRefused { .. }) => assert!(e.to_string().contains("401")),
        other => bail!("expected AuthRefused, got {other:?}"),
    }
    fake.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn missing_socket_is_not_running() -> Result<()> {
    let dir = short_tempdir();
    let socket = dir.path().join("nothing-here");
    let opts = ConnectOptions::with_socket(&socket).credentials(Credentials {
        cookie: "c".into(),
        key: "k".into(),
    });
    match Connection::connect(opts).await {
        Err(e @ ItermError::NotRunning { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("nothing-here") && text.contains("Enable Python API"),
                "{text}"
            );
        }
        other => bail!("expected NotRunning, got {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw servers: scripted replies for what a well-behaved fake never does.
// ---------------------------------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::UnixStream>;

async fn accept_ws(listener: &UnixListener) -> Result<Ws> {
    let (stream, _) = listener.accept().await?;
    // The callback's error type is tungstenite's.
    #[allow(clippy::result_large_err)]
    let cb = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
              mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tokio_tungstenite::tungstenite::http::HeaderValue::from_static("api.iterm2.com"),
        );
        Ok(resp)
    };
    Ok(tokio_tungstenite::accept_hdr_async(stream, cb).await?)
}

async fn read_request(ws: &mut Ws) -> Result<proto::ClientOriginatedMessage> {
    loop {
        match ws.next().await.context("client went away")?? {
            Message::Binary(b) => return Ok(proto::ClientOriginatedMessage::decode(b.as_ref())?),
            _ => continue,
        }
    }
}

fn key(tag: u32, wire: u8) -> Vec<u8> {
    let mut v = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wire)), &mut v);
    v
}

fn len_delimited(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut v = key(tag, 2);
    prost::encoding::encode_varint(body.len() as u64, &mut v);
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn replies_with_unknown_fields_decode() -> Result<()> {
    let dir = short_tempdir();
    let socket = dir.path().join("s");
    let listener = UnixListener::bind(&socket)?;
    let server = tokio::spawn(async move {
        let mut ws = accept_ws(&listener).await?;
        let req = read_request(&mut ws).await?;
        // A Window with a field this client does not know (99, a string) ...
        let mut window = proto::list_sessions_response::Window {
            window_id: Some("pty-W".into()),
            ..Default::default()
        }
        .encode_to_vec();
        window.extend(len_delimited(99, b"from the future"));
        // ... inside a ListSessionsResponse with an unknown varint field 77 ...
        let mut list = len_delimited(1, &window);
        list.extend(key(77, 0));
        list.push(1);
        // ... inside the envelope, plus a notification of an unknown kind (field 50).
        let mut reply = proto::ServerOriginatedMessage {
            id: req.id,
            submessage: None,
        }
        .encode_to_vec();
        reply.extend(len_delimited(106, &list));
        let mut note = len_delimited(50, b"");
        note.extend(len_delimited(6, &len_delimited(1, b"S1")));
        let notification = len_delimited(1000, &note);
        ws.send(Message::Binary(notification.into())).await?;
        ws.send(Message::Binary(reply.into())).await?;
        // Keep the socket open until the client is done.
        let _ = ws.next().await;
        anyhow::Ok(())
    });
    let opts = ConnectOptions::with_socket(&socket).credentials(Credentials {
        cookie: "c".into(),
        key: "k".into(),
    });
    let conn = Connection::connect(opts).await?;
    let mut notes = conn.notifications();
    let list = conn.list_sessions().await?;
    assert_eq!(list.windows[0].window_id.as_deref(), Some("pty-W"));
    let n = tokio::time::timeout(DEADLINE, notes.recv()).await??;
    assert_eq!(
        n.new_session_notification
            .as_ref()
            .and_then(|s| s.session_id.as_deref()),
        Some("S1")
    );
    conn.disconnect().await;
    server.await??;
    Ok(())
}

#[tokio::test]
async fn dropped_connection_fails_in_flight_and_reconnects() -> Result<()> {
    let dir = short_tempdir();
    let socket = dir.path().join("s");
    let listener = UnixListener::bind(&socket)?;
    let server = tokio::spawn(async move {
        // First connection: read one request, then vanish without replying.
        let mut ws = accept_ws(&listener).await?;
        read_request(&mut ws).await?;
        drop(ws);
        // Second connection: answer properly.
        let mut ws = accept_ws(&listener).await?;
        let req = read_request(&mut ws).await?;
        let reply = proto::ServerOriginatedMessage {
            id: req.id,
            submessage: Some(
                proto::server_originated_message::Submessage::ListSessionsResponse(
                    proto::ListSessionsResponse::default(),
                ),
            ),
        };
        ws.send(Message::Binary(reply.encode_to_vec().into()))
            .await?;
        let _ = ws.next().await;
        anyhow::Ok(())
    });
    let opts = ConnectOptions::with_socket(&socket)
        .credentials(Credentials {
            cookie: "c".into(),
            key: "k".into(),
        })
        .request_timeout(Duration::from_secs(30));
    let conn = Connection::connect(opts).await?;
    assert_eq!(conn.generation(), 1);
    let started = Instant::now();
    match conn.list_sessions().await {
        Err(ItermError::Closed(reason)) => assert!(!reason.is_empty()),
        other => bail!("expected Closed, got {other:?}"),
    }
    // Failed at once, not after the 30 s request timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
    let list = conn.list_sessions().await?;
    assert!(list.windows.is_empty());
    assert_eq!(conn.generation(), 2);
    conn.disconnect().await;
    server.await??;
    Ok(())
}

#[tokio::test]
async fn unanswered_request_times_out() -> Result<()> {
    let dir = short_tempdir();
    let socket = dir.path().join("s");
    let listener = UnixListener::bind(&socket)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut ws = accept_ws(&listener).await?;
        read_request(&mut ws).await?;
        let _ = done_rx.await;
        anyhow::Ok(())
    });
    let opts = ConnectOptions::with_socket(&socket)
        .credentials(Credentials {
            cookie: "c".into(),
            key: "k".into(),
        })
        .request_timeout(Duration::from_millis(300));
    let conn = Connection::connect(opts).await?;
    match conn.list_sessions().await {
        Err(ItermError::Timeout { request, .. }) => assert_eq!(request, "ListSessions"),
        other => bail!("expected Timeout, got {other:?}"),
    }
    let _ = done_tx.send(());
    server.await??;
    Ok(())
}
