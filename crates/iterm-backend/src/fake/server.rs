//! The fake's socket server: WebSocket upgrade checks, per-connection subscriptions, and the
//! request dispatcher.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::state::Core;
use super::{Event, FakeConfig, lock};
use crate::connection::{Credentials, SUBPROTOCOL};
use crate::proto::client_originated_message::Submessage as Req;
use crate::proto::server_originated_message::Submessage as Rep;
use crate::proto::{self, NotificationType};

/// A running fake iTerm2. Dropping it (or [`shutdown`](Self::shutdown)) stops the server, kills
/// every session's program and removes the socket file.
pub struct FakeIterm {
    core: Arc<Core>,
    socket: PathBuf,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FakeIterm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeIterm")
            .field("socket", &self.socket)
            .finish()
    }
}

impl FakeIterm {
    /// Binds the socket and starts serving. Must be called inside a tokio runtime.
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        let socket = config.socket_path.clone();
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(&socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&socket)?;
        let core = Core::new(config, tokio::runtime::Handle::current());
        let accept = tokio::spawn(accept_loop(listener, core.clone()));
        Ok(Self {
            core,
            socket,
            accept,
        })
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The credentials clients must present (`None` when auth is off).
    pub fn credentials(&self) -> Option<Credentials> {
        let c = &self.core.config;
        c.cookie.as_ref().map(|cookie| Credentials {
            cookie: cookie.clone(),
            key: c.key.clone().unwrap_or_default(),
        })
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.core.state).sessions.len()
    }

    /// Process ids of the sessions' programs.
    pub fn session_pids(&self) -> Vec<u32> {
        lock(&self.core.state)
            .sessions
            .values()
            .filter_map(|s| s.pid)
            .collect()
    }

    /// The visible screen of a session as plain text (a test helper, not part of the protocol).
    pub fn screen_text(&self, session: &str) -> Option<String> {
        let s = lock(&self.core.state).sessions.get(session).cloned()?;
        Some(lock(&s.inner).term.contents())
    }

    /// Stops serving, kills every session and waits (a few seconds at most) until their
    /// programs are reaped.
    pub async fn shutdown(self) {
        self.accept.abort();
        let reapers = self.core.shutdown();
        let _ = std::fs::remove_file(&self.socket);
        let joined = tokio::task::spawn_blocking(move || {
            for r in reapers {
                let _ = r.join();
            }
        });
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), joined).await;
    }
}

impl Drop for FakeIterm {
    /// Without [`shutdown`](Self::shutdown): stops serving and hangs up every session
    /// (SIGHUP now, SIGKILL shortly after, on helper threads).
    fn drop(&mut self) {
        self.accept.abort();
        drop(self.core.shutdown());
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn accept_loop(listener: UnixListener, core: Arc<Core>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, core.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn reject(code: StatusCode, reason: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(reason.to_owned()));
    *r.status_mut() = code;
    r
}

/// Checks an upgrade request the way iTerm2 does; `Err` is the HTTP status and reason.
fn check_upgrade(
    req: &Request,
    cookie: Option<&str>,
    key: Option<&str>,
) -> Result<(), (StatusCode, String)> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let bad = |why: String| Err((StatusCode::BAD_REQUEST, why));
    match header("sec-websocket-protocol") {
        Some(p) if p.eq_ignore_ascii_case(SUBPROTOCOL) => {}
        other => {
            return bad(format!(
                "Header sec-websocket-protocol has value <{}> but I require <{SUBPROTOCOL}>",
                other.unwrap_or("")
            ));
        }
    }
    let origin = header("origin").unwrap_or("");
    let origin_host = origin
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if origin_host != "localhost" {
        return bad(format!("Origin's host is not localhost: {origin:?}"));
    }
    let host = header("host").unwrap_or("");
    let host_name = match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host,
    };
    if !matches!(host_name, "localhost" | "127.0.0.1" | "[::1]") {
        return bad(format!("Host header is {host:?}, but must be localhost"));
    }
    let Some(libver) = header("x-iterm2-library-version") else {
        return bad("The x-iterm2-library-version header was not set".into());
    };
    let parts: Vec<&str> = libver.split(' ').collect();
    if parts.len() != 2 {
        return bad(format!(
            "The x-iterm2-library-version header was malformed: {libver:?}"
        ));
    }
    if parts[0] == "python" && version_lt(parts[1], "0.24") {
        return Err((StatusCode::NOT_ACCEPTABLE, "Library version too old".into()));
    }
    if let Some(expected) = cookie {
        let ok_cookie = header("x-iterm2-cookie") == Some(expected);
        let ok_key = key.is_none_or(|k| header("x-iterm2-key") == Some(k));
        if !(ok_cookie && ok_key) {
            return Err((StatusCode::UNAUTHORIZED, "Unauthorized".into()));
        }
    }
    Ok(())
}

fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    parse(a) < parse(b)
}

/// What one connection subscribed to.
#[derive(Default)]
struct Subs {
    /// (notification type, session or "all"). App-wide kinds use "all".
    kinds: HashSet<(i32, String)>,
    /// Prompt subscriptions: (session or "all") → wanted modes.
    prompt_modes: Vec<(String, Vec<i32>)>,
    /// (scope, identifier, name).
    variables: HashSet<(i32, String, String)>,
}

fn is_app_wide(kind: i32) -> bool {
    use NotificationType as N;
    [
        N::NotifyOnNewSession,
        N::NotifyOnTerminateSession,
        N::NotifyOnLayoutChange,
        N::NotifyOnFocusChange,
        N::NotifyOnBroadcastChange,
        N::NotifyOnServerOriginatedRpc,
        N::NotifyOnProfileChange,
    ]
    .iter()
    .any(|k| *k as i32 == kind)
}

impl Subs {
    fn wants(&self, kind: NotificationType, session: &str) -> bool {
        let k = kind as i32;
        self.kinds.contains(&(k, "all".to_owned())) || self.kinds.contains(&(k, session.to_owned()))
    }

    fn notification_for(&self, ev: &Event) -> Option<proto::Notification> {
        use NotificationType as N;
        let mut n = proto::Notification::default();
        match ev {
            Event::NewSession(id) if self.wants(N::NotifyOnNewSession, "all") => {
                n.new_session_notification = Some(proto::NewSessionNotification {
                    session_id: Some(id.clone()),
                });
            }
            Event::TerminateSession(id) if self.wants(N::NotifyOnTerminateSession, "all") => {
                n.terminate_session_notification = Some(proto::TerminateSessionNotification {
                    session_id: Some(id.clone()),
                });
            }
            Event::Layout(list) if self.wants(N::NotifyOnLayoutChange, "all") => {
                n.layout_changed_notification = Some(proto::LayoutChangedNotification {
                    list_sessions_response: Some((**list).clone()),
                });
            }
            Event::Focus(f) if self.wants(N::NotifyOnFocusChange, "all") => {
                n.focus_changed_notification = Some((**f).clone());
            }
            Event::ScreenUpdate(id) if self.wants(N::NotifyOnScreenUpdate, id) => {
                n.screen_update_notification = Some(proto::ScreenUpdateNotification {
                    session: Some(id.clone()),
                });
            }
            Event::Prompt(p) => {
                use proto::prompt_notification::Event as P;
                let session = p.session.as_deref().unwrap_or("");
                let mode = match p.event {
                    Some(P::Prompt(_)) => proto::PromptMonitorMode::Prompt as i32,
                    Some(P::CommandStart(_)) => proto::PromptMonitorMode::CommandStart as i32,
                    Some(P::CommandEnd(_)) => proto::PromptMonitorMode::CommandEnd as i32,
                    None => return None,
                };
                let wanted = self
                    .prompt_modes
                    .iter()
                    .any(|(s, modes)| (s == "all" || s == session) && modes.contains(&mode));
                if !wanted {
                    return None;
                }
                n.prompt_notification = Some((**p).clone());
            }
            Event::Variable(v) => {
                let key = (
                    v.scope.unwrap_or_default(),
                    v.identifier.clone().unwrap_or_default(),
                    v.name.clone().unwrap_or_default(),
                );
                let any_owner = (key.0, "all".to_owned(), key.2.clone());
                if !self.variables.contains(&key) && !self.variables.contains(&any_owner) {
                    return None;
                }
                n.variable_changed_notification = Some((**v).clone());
            }
            _ => return None,
        }
        Some(n)
    }
}

async fn serve_connection(stream: UnixStream, core: Arc<Core>) {
    let cookie = core.config.cookie.clone();
    let key = core.config.key.clone();
    let version = core.config.protocol_version.clone();
    // The error type is tungstenite's, so its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        check_upgrade(req, cookie.as_deref(), key.as_deref())
            .map_err(|(code, why)| reject(code, &why))?;
        let h = resp.headers_mut();
        h.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Ok(v) = HeaderValue::from_str(&version) {
            h.insert("X-iTerm2-Protocol-Version", v);
        }
        Ok(resp)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(stream, callback).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade rejected");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let subs = Arc::new(Mutex::new(Subs::default()));
    let forwarder = {
        let mut events = core.events.subscribe();
        let subs = subs.clone();
        let out = out_tx.clone();
        tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(n, "fake iTerm2 dropped notifications for a slow client");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let Some(n) = lock(&subs).notification_for(&ev) else {
                    continue;
                };
                let msg = proto::ServerOriginatedMessage {
                    id: None,
                    submessage: Some(Rep::Notification(n)),
                };
                if out
                    .send(Message::Binary(msg.encode_to_vec().into()))
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    while let Some(frame) = stream.next().await {
        let bytes = match frame {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(p)) => {
                let _ = out_tx.send(Message::Pong(p));
                continue;
            }
            Ok(_) => continue,
        };
        let reply = match proto::ClientOriginatedMessage::decode(bytes.as_ref()) {
            Err(e) => proto::ServerOriginatedMessage {
                id: None,
                submessage: Some(Rep::Error(format!("Malformed request: {e}"))),
            },
            Ok(msg) => {
                let submessage = match msg.submessage {
                    None => Rep::Error("Unrecognized or missing request".into()),
                    Some(req) => handle(&core, &subs, req).await,
                };
                proto::ServerOriginatedMessage {
                    id: msg.id,
                    submessage: Some(submessage),
                }
            }
        };
        if out_tx
            .send(Message::Binary(reply.encode_to_vec().into()))
            .is_err()
        {
            break;
        }
    }
    forwarder.abort();
    drop(out_tx);
    let _ = writer.await;
}

async fn handle(core: &Arc<Core>, subs: &Mutex<Subs>, req: Req) -> Rep {
    match req {
        Req::ListSessionsRequest(_) => Rep::ListSessionsResponse(core.list()),
        Req::CreateTabRequest(r) => {
            let core = core.clone();
            // Forking a shell is blocking work.
            match tokio::task::spawn_blocking(move || core.create_tab(r)).await {
                Ok(rep) => Rep::CreateTabResponse(rep),
                Err(e) => Rep::Error(format!("internal error: {e}")),
            }
        }
        Req::SplitPaneRequest(r) => {
            let core = core.clone();
            match tokio::task::spawn_blocking(move || core.split(r)).await {
                Ok(rep) => Rep::SplitPaneResponse(rep),
                Err(e) => Rep::Error(format!("internal error: {e}")),
            }
        }
        Req::SendTextRequest(r) => {
            use proto::send_text_response::Status;
            let sessions = core.sessions_for(r.session.as_deref().unwrap_or(""));
            if sessions.is_empty() {
                return Rep::SendTextResponse(proto::SendTextResponse {
                    status: Some(Status::SessionNotFound as i32),
                });
            }
            let text = r.text.unwrap_or_default();
            let written = tokio::task::spawn_blocking(move || {
                for s in sessions {
                    if let Err(e) = s.write(text.as_bytes()) {
                        tracing::debug!(error = %e, session = %s.id, "write to pty failed");
                    }
                }
            })
            .await;
            if let Err(e) = written {
                return Rep::Error(format!("internal error: {e}"));
            }
            Rep::SendTextResponse(proto::SendTextResponse {
                status: Some(Status::Ok as i32),
            })
        }
        Req::InjectRequest(r) => {
            use proto::inject_response::Status;
            let data = r.data.unwrap_or_default();
            let status = r
                .session_id
                .iter()
                .map(|id| {
                    let sessions = core.sessions_for(id);
                    for s in &sessions {
                        core.inject(s, &data);
                    }
                    if sessions.is_empty() {
                        Status::SessionNotFound as i32
                    } else {
                        Status::Ok as i32
                    }
                })
                .collect();
            Rep::InjectResponse(proto::InjectResponse { status })
        }
        Req::GetBufferRequest(r) => Rep::GetBufferResponse(get_buffer(core, &r)),
        Req::GetPromptRequest(r) => Rep::GetPromptResponse(core.get_prompt(&r)),
        Req::ListPromptsRequest(r) => Rep::ListPromptsResponse(core.list_prompts(&r)),
        Req::VariableRequest(r) => Rep::VariableResponse(core.variables(r)),
        Req::NotificationRequest(r) => Rep::NotificationResponse(subscribe(core, subs, r)),
        Req::ActivateRequest(r) => Rep::ActivateResponse(core.activate(r)),
        Req::CloseRequest(r) => Rep::CloseResponse(core.close(r)),
        Req::FocusRequest(_) => Rep::FocusResponse(core.focus()),
        Req::GetBroadcastDomainsRequest(_) => {
            Rep::GetBroadcastDomainsResponse(proto::GetBroadcastDomainsResponse::default())
        }
        Req::SetProfilePropertyRequest(r) => {
            Rep::SetProfilePropertyResponse(core.set_profile_property(r))
        }
        Req::MenuItemRequest(r) => Rep::MenuItemResponse(menu_item(core, r).await),
        Req::TmuxRequest(r) => Rep::TmuxResponse(tmux(core, r).await),
    }
}

fn get_buffer(core: &Core, r: &proto::GetBufferRequest) -> proto::GetBufferResponse {
    use proto::get_buffer_response::Status;
    use proto::line_contents::Continuation;
    let fail = |s: Status| proto::GetBufferResponse {
        status: Some(s as i32),
        ..Default::default()
    };
    let Some(session) = core
        .sessions_for(r.session.as_deref().unwrap_or(""))
        .into_iter()
        .next()
    else {
        return fail(Status::SessionNotFound);
    };
    let Some(range) = &r.line_range else {
        return fail(Status::RequestMalformed);
    };
    let mut inner = lock(&session.inner);
    let term = &mut inner.term;
    let above = term.lines_above_screen();
    let (rows, cols) = term.size();
    let end = above + u64::from(rows);
    let first_stored = term.first_stored_line();
    let (first, count, columns) = if range.screen_contents_only == Some(true) {
        (above, usize::from(rows), None)
    } else if let Some(n) = range.trailing_lines {
        if n < 0 {
            return fail(Status::InvalidLineRange);
        }
        let n = (n as u64).min(end - first_stored);
        (end - n, n as usize, None)
    } else if let Some(w) = &range.windowed_coord_range {
        let Some(cr) = &w.coord_range else {
            return fail(Status::RequestMalformed);
        };
        let start = cr.start.as_ref().and_then(|c| c.y).unwrap_or(0);
        let stop = cr.end.as_ref().and_then(|c| c.y).unwrap_or(start);
        if start < 0 || stop < start {
            return fail(Status::InvalidLineRange);
        }
        let start = (start as u64).max(first_stored);
        let stop = (stop as u64).min(end.saturating_sub(1));
        if stop < start {
            return fail(Status::InvalidLineRange);
        }
        (start, (stop - start + 1) as usize, w.columns.clone())
    } else {
        return fail(Status::RequestMalformed);
    };
    let lines = term.lines(first, count);
    let cursor = term.cursor();
    let contents = lines
        .into_iter()
        .map(|l| {
            let text = match &columns {
                Some(c) => {
                    let from = c.location.unwrap_or(0).max(0) as usize;
                    let len = c.length.unwrap_or(i64::from(cols)).max(0) as usize;
                    l.text.chars().skip(from).take(len).collect()
                }
                None => l.text,
            };
            proto::LineContents {
                text: Some(text),
                code_points_per_cell: Vec::new(),
                continuation: Some(if l.wrapped {
                    Continuation::SoftEol as i32
                } else {
                    Continuation::HardEol as i32
                }),
            }
        })
        .collect();
    proto::GetBufferResponse {
        status: Some(Status::Ok as i32),
        range: Some(proto::Range {
            location: Some(first as i64),
            length: Some(count as i64),
        }),
        contents,
        cursor: Some(proto::Coord {
            x: Some(cursor.x),
            y: Some(cursor.y),
        }),
        num_lines_above_screen: Some(above as i64),
        windowed_coord_range: range.windowed_coord_range.clone(),
    }
}

fn subscribe(
    core: &Core,
    subs: &Mutex<Subs>,
    r: proto::NotificationRequest,
) -> proto::NotificationResponse {
    use proto::notification_request::Arguments;
    use proto::notification_response::Status;
    let reply = |s: Status| proto::NotificationResponse {
        status: Some(s as i32),
    };
    let Some(kind) = r.notification_type else {
        return reply(Status::RequestMalformed);
    };
    let on = r.subscribe.unwrap_or(false);
    let mut subs = lock(subs);
    if kind == NotificationType::NotifyOnVariableChange as i32 {
        let Some(Arguments::VariableMonitorRequest(v)) = &r.arguments else {
            return reply(Status::RequestMalformed);
        };
        let key = (
            v.scope.unwrap_or_default(),
            v.identifier.clone().unwrap_or_default(),
            v.name.clone().unwrap_or_default(),
        );
        return reply(toggle(&mut subs.variables, key, on));
    }
    let session = if is_app_wide(kind) {
        "all".to_owned()
    } else {
        let s = r.session.clone().unwrap_or_else(|| "all".to_owned());
        if s != "all" && core.sessions_for(&s).is_empty() {
            return reply(Status::SessionNotFound);
        }
        // "active" is resolved when subscribing.
        match s.as_str() {
            "active" => core
                .sessions_for("active")
                .first()
                .map(|x| x.id.clone())
                .unwrap_or(s),
            _ => s,
        }
    };
    let status = toggle(&mut subs.kinds, (kind, session.clone()), on);
    if kind == NotificationType::NotifyOnPrompt as i32 {
        subs.prompt_modes.retain(|(s, _)| *s != session);
        if on {
            let modes = match &r.arguments {
                Some(Arguments::PromptMonitorRequest(p)) if !p.modes.is_empty() => p.modes.clone(),
                _ => vec![proto::PromptMonitorMode::Prompt as i32],
            };
            subs.prompt_modes.push((session, modes));
        }
    }
    reply(status)
}

fn toggle<K: std::hash::Hash + Eq>(
    set: &mut HashSet<K>,
    key: K,
    on: bool,
) -> proto::notification_response::Status {
    use proto::notification_response::Status;
    if on {
        if set.insert(key) {
            Status::Ok
        } else {
            Status::AlreadySubscribed
        }
    } else if set.remove(&key) {
        Status::Ok
    } else {
        Status::NotSubscribed
    }
}

/// Menu items the fake knows.
const MENU_ITEMS: &[&str] = &[
    "tmux.Detach",
    "tmux.Force Detach",
    "tmux.New Tmux Window",
    "tmux.New Tmux Tab",
    "tmux.Dashboard",
];

async fn menu_item(core: &Arc<Core>, r: proto::MenuItemRequest) -> proto::MenuItemResponse {
    use proto::menu_item_response::Status;
    let id = r.identifier.unwrap_or_default();
    let reply = |s: Status, enabled: bool| proto::MenuItemResponse {
        status: Some(s as i32),
        checked: Some(false),
        enabled: Some(enabled),
    };
    if !MENU_ITEMS.contains(&id.as_str()) {
        return proto::MenuItemResponse {
            status: Some(Status::BadIdentifier as i32),
            checked: None,
            enabled: None,
        };
    }
    let conn = core.active_tmux_connection();
    let enabled = conn.is_some() || id == "tmux.Dashboard";
    if r.query_only.unwrap_or(false) {
        return reply(Status::Ok, enabled);
    }
    if !enabled {
        return reply(Status::Disabled, false);
    }
    let Some(conn) = conn else {
        return reply(Status::Ok, true);
    };
    match id.as_str() {
        "tmux.Detach" | "tmux.Force Detach" => {
            if let Some(gw) = core.tmux_gateway(&conn) {
                if id == "tmux.Detach" {
                    // tmux answers with %exit, which ends the connection; do not wait for it.
                    let g = gw.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || g.tmux_command("detach-client")).await;
                }
                core.end_tmux_for_gateway(&gw.id);
            }
        }
        "tmux.New Tmux Window" | "tmux.New Tmux Tab" => {
            if let Err(s) = core.tmux_create_window(&conn, None).await {
                tracing::debug!(status = s.as_str_name(), "tmux window creation failed");
            }
        }
        _ => {}
    }
    reply(Status::Ok, true)
}

async fn tmux(core: &Arc<Core>, r: proto::TmuxRequest) -> proto::TmuxResponse {
    use proto::tmux_request::Payload as In;
    use proto::tmux_response::{Payload as Out, Status};
    let ok = |payload: Out| proto::TmuxResponse {
        status: Some(Status::Ok as i32),
        payload: Some(payload),
    };
    let fail = |s: Status| proto::TmuxResponse {
        status: Some(s as i32),
        payload: None,
    };
    match r.payload {
        None => fail(Status::InvalidRequest),
        Some(In::ListConnections(_)) => ok(Out::ListConnections(
            proto::tmux_response::ListConnections {
                connections: core
                    .tmux_connections()
                    .into_iter()
                    .map(
                        |(id, gw)| proto::tmux_response::list_connections::Connection {
                            connection_id: Some(id),
                            owning_session_id: Some(gw),
                        },
                    )
                    .collect(),
            },
        )),
        Some(In::SendCommand(c)) => {
            let conn = c.connection_id.unwrap_or_default();
            match core
                .tmux_command(&conn, c.command.as_deref().unwrap_or(""))
                .await
            {
                Ok(output) => ok(Out::SendCommand(proto::tmux_response::SendCommand {
                    output,
                })),
                Err(s) => fail(s),
            }
        }
        Some(In::CreateWindow(c)) => {
            let conn = c.connection_id.unwrap_or_default();
            match core.tmux_create_window(&conn, c.affinity.as_deref()).await {
                Ok(tab) => ok(Out::CreateWindow(proto::tmux_response::CreateWindow {
                    tab_id: Some(tab),
                })),
                Err(s) => fail(s),
            }
        }
        Some(In::SetWindowVisible(v)) => {
            let conn = v.connection_id.unwrap_or_default();
            if core.tmux_gateway(&conn).is_none() {
                return fail(Status::InvalidConnectionId);
            }
            ok(Out::SetWindowVisible(
                proto::tmux_response::SetWindowVisible {},
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const GOOD: &[(&str, &str)] = &[
        ("sec-websocket-protocol", "api.iterm2.com"),
        ("origin", "ws://localhost/"),
        ("host", "localhost"),
        ("x-iterm2-library-version", "python 2.30"),
        ("x-iterm2-cookie", "c"),
        ("x-iterm2-key", "k"),
    ];

    fn with(over: &[(&str, &str)]) -> Request {
        let mut h: Vec<(&str, &str)> = GOOD
            .iter()
            .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        h.extend(over.iter().filter(|(_, v)| !v.is_empty()).copied());
        req(&h)
    }

    fn status(r: Result<(), (StatusCode, String)>) -> u16 {
        match r {
            Ok(()) => 101,
            Err((code, _)) => code.as_u16(),
        }
    }

    #[test]
    fn upgrade_checks() {
        let c = Some("c");
        let k = Some("k");
        assert_eq!(status(check_upgrade(&with(&[]), c, k)), 101);
        assert_eq!(
            status(check_upgrade(&with(&[("x-iterm2-cookie", "x")]), c, k)),
            401
        );
        assert_eq!(
            status(check_upgrade(&with(&[("x-iterm2-cookie", "")]), c, k)),
            401
        );
        assert_eq!(
            status(check_upgrade(&with(&[("x-iterm2-key", "x")]), c, k)),
            401
        );
        assert_eq!(
            status(check_upgrade(&with(&[("x-iterm2-cookie", "")]), None, None)),
            101
        );
        assert_eq!(
            status(check_upgrade(
                &with(&[("sec-websocket-protocol", "x")]),
                c,
                k
            )),
            400
        );
        assert_eq!(
            status(check_upgrade(&with(&[("origin", "http://evil/")]), c, k)),
            400
        );
        assert_eq!(
            status(check_upgrade(&with(&[("host", "example.com")]), c, k)),
            400
        );
        assert_eq!(
            status(check_upgrade(
                &with(&[("x-iterm2-library-version", "rust termloom 1")]),
                c,
                k
            )),
            400
        );
        assert_eq!(
            status(check_upgrade(
                &with(&[("x-iterm2-library-version", "python 0.20")]),
                c,
                k
            )),
            406
        );
        assert_eq!(
            status(check_upgrade(&with(&[("host", "localhost:1912")]), c, k)),
            101
        );
    }
}
