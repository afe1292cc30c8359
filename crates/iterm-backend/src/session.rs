//! [`ItermSession`]: core's [`Session`] for one iTerm2 session, addressed by its GUID after that
//! GUID was checked to carry the session's persistent id.
//!
//! - Text goes through `SendText` in chunks of at most [`SEND_CHUNK`] bytes (iTerm2 handles long
//!   texts badly in one request), exactly as given: newlines reach the program as newlines.
//! - Keys are core's [`Key::to_bytes`] (what xterm sends), typed the same way.
//! - Reads use `GetBuffer` with absolute line numbers, which iTerm2 keeps stable when old lines
//!   are trimmed; a read's cursor is the next line number, so reads "since" are exact.
//! - [`subscribe`](Session::subscribe) follows screen-update notifications and reports new text
//!   (it remembers how far it read: a line number and the part of the cursor's line already
//!   reported, and turns a fresh read into new text, `\n` at line ends and `\r` for rewrites).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use termloom_core::key::{SIGNAL_QUIET, SIGNAL_SETTLE, signal_segments};
use termloom_core::text::{cap, line_hash, trim_trailing_blank};
use termloom_core::{
    BackendKind, BusyState, Capture, CaptureOpts, Cursor, Error, Key, NativeId, OutputEvent,
    OutputStream, ReadRange, ResizeSpec, Result, RunHandle, RunOpts, RunResult, SendOpts, Session,
    SessionId, SessionInfo, SessionStatus, SplitSpec,
};
use tokio::sync::broadcast;

use crate::connection::{Connection, VariableTarget};
use crate::error::ItermError;
use crate::lines::{self, Geometry, Logical, Row, Tracker};
use crate::proto::{self, NotificationType};
use crate::terminal::{
    ItermCreate, ItermTerminal, SubGuard, VAR_MANAGED, VAR_NAME, check_session_name, get_vars,
    set_vars,
};

/// Largest piece of text sent in one `SendText` request.
pub const SEND_CHUNK: usize = 1024;

/// How often a follower re-reads the screen when no notification came.
const FOLLOW_BACKSTOP: Duration = Duration::from_secs(2);

/// Shells whose presence in the foreground means "idle at a prompt" for sessions without shell
/// integration.
const SHELLS: [&str; 9] = [
    "bash", "zsh", "fish", "sh", "dash", "ksh", "tcsh", "csh", "login",
];

/// A colour as iTerm2 profile properties spell it (components 0.0–1.0), for
/// [`ItermSession::set_profile_properties`]: `("Background Color", color(0.4, 0.0, 0.0))`.
pub fn color(red: f64, green: f64, blue: f64) -> Value {
    serde_json::json!({
        "Red Component": red,
        "Green Component": green,
        "Blue Component": blue,
        "Alpha Component": 1.0,
        "Color Space": "sRGB",
    })
}

/// Splits text into pieces of at most `max` bytes, on character boundaries.
pub(crate) fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max.max(4));
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (a, b) = rest.split_at(end);
        out.push(a);
        rest = b;
    }
    out
}

/// Whether a job name (iTerm2's `jobName`, maybe a login shell's `-bash`) is a shell whose line
/// editor takes a bracketed paste.
pub(crate) fn is_shell(job: &str) -> bool {
    matches!(job_base(job), "bash" | "zsh" | "fish")
}

/// A job name without a login shell's leading `-` and without its directory.
pub(crate) fn job_base(job: &str) -> &str {
    let name = job.trim_start_matches('-');
    name.rsplit('/').next().unwrap_or(name)
}

/// `text` inside bracketed-paste marks (what a terminal sends for a paste when the program asked
/// for it): a line editor then takes its newlines as text. An end mark inside the text, which
/// would end the paste early and run the rest, is dropped.
pub(crate) fn bracketed_paste(text: &str) -> String {
    format!("\x1b[200~{}\x1b[201~", text.replace("\x1b[201~", ""))
}

/// Types `text` into a session exactly, then Enter (`\r`) when asked.
pub(crate) async fn send_text_to(
    conn: &Connection,
    guid: &str,
    text: &str,
    enter: bool,
) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::InvalidArgument(
            "text contains a NUL byte, which a terminal cannot receive; send it as a key (C-@) or drop it".into(),
        ));
    }
    let mut pieces: Vec<String> = chunks(text, SEND_CHUNK)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if enter {
        match pieces.last_mut() {
            Some(last) if last.len() < SEND_CHUNK => last.push('\r'),
            _ => pieces.push("\r".into()),
        }
    }
    for p in pieces {
        conn.send_text(guid, &p).await?;
    }
    Ok(())
}

/// A read position: the session, the next absolute line to read, and the text of the line
/// before it (its length and [`line_hash`]) when that line was read: a line still being printed
/// (`Downloading...`, a prompt) grows after the read, and is then read again whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CursorData {
    pub session: String,
    pub line: i64,
    pub anchor: Option<(usize, u64)>,
}

impl CursorData {
    pub fn encode(&self) -> Cursor {
        Cursor(match self.anchor {
            Some((len, hash)) => format!("i2.{}.{}.{len}.{hash:x}", self.session, self.line),
            None => format!("i1.{}.{}", self.session, self.line),
        })
    }

    pub fn decode(c: &Cursor) -> Option<CursorData> {
        let (rest, v2) = match c.0.strip_prefix("i2.") {
            Some(r) => (r, true),
            None => (c.0.strip_prefix("i1.")?, false),
        };
        let (rest, anchor) = if v2 {
            let (rest, hash) = rest.rsplit_once('.')?;
            let (rest, len) = rest.rsplit_once('.')?;
            let anchor = (len.parse().ok()?, u64::from_str_radix(hash, 16).ok()?);
            (rest, Some(anchor))
        } else {
            (rest, None)
        };
        let (session, line) = rest.rsplit_once('.')?;
        if session.is_empty() {
            return None;
        }
        Some(CursorData {
            session: session.to_owned(),
            line: line.parse().ok().filter(|l: &i64| *l >= 0)?,
            anchor,
        })
    }
}

/// A handle on one verified iTerm2 session.
pub struct ItermSession {
    pub(crate) term: ItermTerminal,
    id: SessionId,
    native: NativeId,
    name: String,
    /// A project's `tmux -CC` gateway (`user.role` = `gateway`): what is typed into it goes to
    /// tmux's control channel (a line can detach or kill the project's tmux session), so input
    /// is refused.
    gateway: bool,
}

impl std::fmt::Debug for ItermSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItermSession")
            .field("id", &self.id)
            .field("guid", &self.native.id)
            .finish()
    }
}

impl ItermSession {
    pub(crate) fn new(
        term: ItermTerminal,
        id: SessionId,
        guid: String,
        name: String,
        gateway: bool,
    ) -> Self {
        ItermSession {
            term,
            id,
            native: NativeId::iterm(guid),
            name,
            gateway,
        }
    }

    /// The session's name, for messages.
    pub(crate) fn label(&self) -> &str {
        &self.name
    }

    /// Refuses input to a `tmux -CC` gateway.
    pub(crate) fn refuse_gateway(&self) -> Result<()> {
        if self.gateway {
            return Err(Error::InvalidArgument(format!(
                "session '{}' ({}) is the window running `tmux -CC` for a project: what is typed there goes to tmux's control channel (a line can detach or kill the project's tmux session), not to a shell; type into the project's panes instead",
                self.name, self.id
            )));
        }
        Ok(())
    }

    /// The session's GUID.
    pub fn guid(&self) -> &str {
        &self.native.id
    }

    /// The terminal this session belongs to.
    pub fn terminal(&self) -> &ItermTerminal {
        &self.term
    }

    pub(crate) fn dead(&self) -> Error {
        Error::SessionDead {
            id: self.id.to_string(),
            name: self.name.clone(),
        }
    }

    /// Maps "no such session" to [`Error::SessionDead`] for this session.
    pub(crate) fn err(&self, e: ItermError) -> Error {
        match e {
            ItermError::SessionNotFound(_) => self.dead(),
            e => e.into(),
        }
    }

    pub(crate) fn map(&self, e: Error) -> Error {
        match e {
            Error::SessionNotFound { .. } => self.dead(),
            e => e,
        }
    }

    pub(crate) async fn conn(&self) -> Result<Connection> {
        self.term.conn().await
    }

    pub(crate) async fn geometry(&self, conn: &Connection) -> Result<Geometry> {
        lines::geometry(conn, self.guid())
            .await
            .map_err(|e| self.err(e))
    }

    pub(crate) async fn rows(
        &self,
        conn: &Connection,
        from: i64,
        to: i64,
    ) -> Result<(i64, Vec<Row>)> {
        lines::read_rows(conn, self.guid(), from, to)
            .await
            .map_err(|e| self.err(e))
    }

    /// Sets profile properties of this session only (values are JSON), e.g. a red background
    /// for production: `[("Background Color", color(0.35, 0.0, 0.0))]`.
    pub async fn set_profile_properties(&self, properties: &[(&str, Value)]) -> Result<()> {
        if properties.is_empty() {
            return Ok(());
        }
        let conn = self.conn().await?;
        let request = proto::SetProfilePropertyRequest {
            key: None,
            json_value: None,
            assignments: properties
                .iter()
                .map(|(k, v)| proto::set_profile_property_request::Assignment {
                    key: Some((*k).to_owned()),
                    json_value: Some(v.to_string()),
                })
                .collect(),
            target: Some(proto::set_profile_property_request::Target::Session(
                self.guid().to_owned(),
            )),
        };
        use proto::client_originated_message::Submessage as Req;
        use proto::server_originated_message::Submessage as Rep;
        match conn
            .call(Req::SetProfilePropertyRequest(request))
            .await
            .map_err(|e| self.err(e))?
        {
            Rep::SetProfilePropertyResponse(r) => {
                let status = proto::enum_name::<proto::set_profile_property_response::Status>(
                    r.status.unwrap_or_default(),
                );
                match status.as_str() {
                    "OK" => Ok(()),
                    "SESSION_NOT_FOUND" => Err(self.dead()),
                    other => Err(Error::InvalidArgument(format!(
                        "iTerm2 refused the profile properties: {other}"
                    ))),
                }
            }
            other => Err(Error::backend(
                BackendKind::Iterm,
                format!(
                    "the SetProfileProperty request was answered with a {} reply",
                    other.kind()
                ),
            )),
        }
    }

    /// Sets one profile property of this session (`value` is JSON).
    pub async fn set_profile_property(&self, key: &str, value: &Value) -> Result<()> {
        self.set_profile_properties(&[(key, value.clone())]).await
    }

    /// Sets a `user.` variable of this session.
    pub async fn set_variable(&self, name: &str, value: &Value) -> Result<()> {
        self.term
            .set_variable(
                &VariableTarget::Session(self.guid().to_owned()),
                name,
                value,
            )
            .await
            .map_err(|e| self.map(e))
    }

    /// Whether a shell's line editor reads this session's input: iTerm2's shell integration
    /// says it is at a prompt, or the job in front is bash, zsh or fish (whose line editors take
    /// a bracketed paste: bash 5.1+, zsh 5.1+, fish 3+).
    async fn shell_in_front(&self, conn: &Connection) -> Result<bool> {
        use proto::get_prompt_response::State;
        if let Some(p) = conn
            .get_prompt(self.guid(), None)
            .await
            .map_err(|e| self.err(e))?
        {
            return Ok(matches!(p.prompt_state(), State::Editing | State::Finished));
        }
        Ok(match self.get_variable("jobName").await? {
            Value::String(job) => is_shell(&job),
            _ => false,
        })
    }

    /// Reads a variable of this session (`Null` when unset).
    pub async fn get_variable(&self, name: &str) -> Result<Value> {
        self.term
            .get_variable(&VariableTarget::Session(self.guid().to_owned()), name)
            .await
            .map_err(|e| self.map(e))
    }

    /// Closes the session; without `force`, iTerm2 may ask the user first when something runs
    /// in it (and a refusal is an error).
    pub async fn close_with(&self, force: bool) -> Result<()> {
        let conn = self.conn().await?;
        conn.close_sessions(&[self.guid()], force)
            .await
            .map_err(|e| match e {
                ItermError::Rpc { status, .. } if status.starts_with("USER_DECLINED") => {
                    Error::backend(
                        BackendKind::Iterm,
                        format!("the user declined to close session {}", self.id),
                    )
                }
                e => self.err(e),
            })
    }

    /// [`Session::split`] with a profile, profile properties, or in the foreground (the new
    /// session is then activated).
    pub async fn split_with(&self, spec: &SplitSpec, opts: &ItermCreate) -> Result<SessionInfo> {
        if let Some(n) = &spec.name {
            check_session_name(n)?;
            self.term.ensure_unique_name(n, None).await?;
        }
        let conn = self.conn().await?;
        let new = self
            .term
            .split_raw(
                &conn,
                self.guid(),
                spec.direction,
                spec.before,
                opts,
                spec.cwd.as_deref(),
            )
            .await
            .map_err(|e| self.map(e))?;
        self.term.prepare(&conn, &new, spec.name.as_deref()).await?;
        if let Some(c) = &spec.command {
            self.term.type_command(&conn, &new, c).await?;
        }
        if opts.select {
            conn.activate_session(&new).await?;
        }
        self.term.session_info(&new).await
    }

    /// The latest shell-integration prompt, `None` without shell integration.
    pub async fn prompt(&self) -> Result<Option<proto::GetPromptResponse>> {
        let conn = self.conn().await?;
        conn.get_prompt(self.guid(), None)
            .await
            .map_err(|e| self.err(e))
    }

    fn finish(
        &self,
        lines: Vec<Logical>,
        first_line: i64,
        total: i64,
        opts: &CaptureOpts,
        default_cap: usize,
    ) -> Capture {
        let mut texts: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
        trim_trailing_blank(&mut texts);
        let (next, anchor) = match texts.len() {
            0 => (first_line, None),
            n => {
                let last = texts[n - 1].trim_end();
                (lines[n - 1].end + 1, Some((last.len(), line_hash(last))))
            }
        };
        let first = u64::try_from(first_line).unwrap_or(0);
        let capped = cap(
            &texts,
            first,
            opts.max_lines.unwrap_or(default_cap),
            opts.max_bytes.unwrap_or(usize::MAX),
        );
        let mut note = capped.note;
        if opts.ansi {
            let n = "iTerm2's API returns text without colours: no ANSI sequences".to_owned();
            note = Some(match note {
                Some(old) => format!("{old}; {n}"),
                None => n,
            });
        }
        Capture {
            text: capped.text,
            first_line: first,
            total_lines: u64::try_from(total).unwrap_or(0),
            truncated: capped.truncated,
            note,
            cursor: CursorData {
                session: self.guid().to_owned(),
                line: next,
                anchor,
            }
            .encode(),
        }
    }

    /// A capture of no lines, at the end of a buffer of `total` lines.
    fn nothing(&self, total: i64, opts: &CaptureOpts) -> Capture {
        self.finish(
            Vec::new(),
            total,
            total,
            opts,
            termloom_core::DEFAULT_READ_CAP,
        )
    }

    fn shape(rows: &[Row], first: i64, join: bool) -> Vec<Logical> {
        if join {
            lines::join_rows(first, rows)
        } else {
            lines::plain_rows(first, rows)
        }
    }

    /// Notifications of this session's screen changes (and of sessions ending), from now on.
    async fn changes(
        &self,
        conn: &Connection,
    ) -> Result<(broadcast::Receiver<Arc<proto::Notification>>, [SubGuard; 2])> {
        let rx = conn.notifications();
        let screen = self
            .term
            .acquire(NotificationType::NotifyOnScreenUpdate, Some(self.guid()))
            .await
            .map_err(|e| self.map(e))?;
        let ended = self
            .term
            .acquire(NotificationType::NotifyOnTerminateSession, None)
            .await?;
        Ok((rx, [screen, ended]))
    }

    /// A follower: notifications are received from before the first read, so nothing between
    /// the read and the subscription is missed.
    pub(crate) async fn follower(&self) -> Result<Follower> {
        let conn = self.conn().await?;
        let (rx, guards) = self.changes(&conn).await?;
        let g = self.geometry(&conn).await?;
        Ok(Follower {
            conn,
            guid: self.guid().to_owned(),
            rx,
            tracker: Tracker::at_cursor(&g),
            _guards: guards.into(),
            pending: VecDeque::new(),
            done: false,
        })
    }
}

/// Follows one session's screen and yields what changed as output events.
pub(crate) struct Follower {
    conn: Connection,
    guid: String,
    rx: broadcast::Receiver<Arc<proto::Notification>>,
    tracker: Tracker,
    _guards: Vec<SubGuard>,
    pending: VecDeque<OutputEvent>,
    done: bool,
}

/// Waits until session `guid` has answered a signal key: a change of its screen (the echo, a
/// new prompt, or a program's output), then [`SIGNAL_QUIET`] without one (a line editor prints
/// the echo, then draws its prompt, and input typed meanwhile can be lost too); returns when the
/// session ends; [`SIGNAL_SETTLE`] at most. iTerm2 says that a screen changed, not what it
/// shows, so unlike tmux's wait this one does not look for the echo itself.
async fn signal_taken(rx: &mut broadcast::Receiver<Arc<proto::Notification>>, guid: &str) {
    let _ = tokio::time::timeout(SIGNAL_SETTLE, async {
        if !screen_changed(rx, guid).await {
            return;
        }
        while let Ok(alive) = tokio::time::timeout(SIGNAL_QUIET, screen_changed(rx, guid)).await {
            if !alive {
                return;
            }
        }
    })
    .await;
}

/// The next change of session `guid`'s screen (true), or its end or the connection's (false).
async fn screen_changed(
    rx: &mut broadcast::Receiver<Arc<proto::Notification>>,
    guid: &str,
) -> bool {
    loop {
        match rx.recv().await {
            Ok(n) => match classify(&n, guid) {
                Wake::Screen | Wake::Prompt => return true,
                Wake::Ended => return false,
                Wake::Other => {}
            },
            // Notifications were lost: some may have been this session's.
            Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

/// What a notification means for one session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Its screen changed (or notifications were lost).
    Screen,
    /// A shell-integration prompt event.
    Prompt,
    /// It ended.
    Ended,
    /// Not about it.
    Other,
}

pub(crate) fn classify(n: &proto::Notification, guid: &str) -> Wake {
    if n.screen_update_notification
        .as_ref()
        .and_then(|s| s.session.as_deref())
        == Some(guid)
    {
        return Wake::Screen;
    }
    if n.terminate_session_notification
        .as_ref()
        .and_then(|s| s.session_id.as_deref())
        == Some(guid)
    {
        return Wake::Ended;
    }
    if n.prompt_notification
        .as_ref()
        .and_then(|s| s.session.as_deref())
        == Some(guid)
    {
        return Wake::Prompt;
    }
    Wake::Other
}

impl Follower {
    /// Reads what changed since the last read into `pending`.
    async fn poll(&mut self) {
        let g = match lines::geometry(&self.conn, &self.guid).await {
            Ok(g) => g,
            Err(e) => return self.fail(e),
        };
        let rows = if self.tracker.line >= g.above && g.cursor_y < g.end() {
            // Everything needed is on the screen.
            let start = self.tracker.line.min(g.cursor_y);
            let from = usize::try_from(start - g.above).unwrap_or(0);
            let to = usize::try_from(g.cursor_y - g.above + 1).unwrap_or(0);
            (
                start,
                g.screen
                    .get(from..to)
                    .map(<[Row]>::to_vec)
                    .unwrap_or_default(),
            )
        } else {
            let start = self.tracker.line.min(g.cursor_y);
            match lines::read_rows(&self.conn, &self.guid, start, g.cursor_y).await {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            }
        };
        let adv = self.tracker.advance(rows.0, &rows.1, g.cursor_y);
        if adv.lost > 0 {
            self.pending.push_back(OutputEvent::Lagged(adv.lost));
        }
        if !adv.bytes.is_empty() {
            self.pending.push_back(OutputEvent::Output(adv.bytes));
        }
    }

    fn fail(&mut self, e: ItermError) {
        match e {
            ItermError::SessionNotFound(_) => self.close("session closed"),
            e @ (ItermError::NotRunning { .. }
            | ItermError::ApiDisabled { .. }
            | ItermError::AuthRefused { .. }) => self.close(&e.to_string()),
            e => tracing::debug!(error = %e, "reading a followed session failed; retrying"),
        }
    }

    fn close(&mut self, reason: &str) {
        self.pending.push_back(OutputEvent::Closed {
            reason: reason.to_owned(),
        });
        self.done = true;
    }

    /// The next event.
    async fn next(&mut self) -> Option<OutputEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            let wake = match tokio::time::timeout(FOLLOW_BACKSTOP, self.rx.recv()).await {
                Err(_) => Wake::Screen,
                Ok(Ok(n)) => classify(&n, &self.guid),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => Wake::Screen,
                Ok(Err(broadcast::error::RecvError::Closed)) => Wake::Ended,
            };
            match wake {
                Wake::Other | Wake::Prompt => continue,
                Wake::Screen => {
                    // Coalesce a burst of updates into one read.
                    let mut ended = false;
                    while let Ok(n) = self.rx.try_recv() {
                        if classify(&n, &self.guid) == Wake::Ended {
                            ended = true;
                        }
                    }
                    self.poll().await;
                    if ended && !self.done {
                        self.close("session closed");
                    }
                }
                Wake::Ended => {
                    self.poll().await;
                    if !self.done {
                        self.close("session closed");
                    }
                }
            }
        }
    }

    pub(crate) fn into_stream(self) -> OutputStream {
        Box::pin(futures_util::stream::unfold(self, |mut f| async move {
            let ev = f.next().await?;
            Some((ev, f))
        }))
    }
}

#[async_trait]
impl Session for ItermSession {
    fn id(&self) -> SessionId {
        self.id
    }

    fn native(&self) -> &NativeId {
        &self.native
    }

    async fn info(&self) -> Result<SessionInfo> {
        self.term
            .session_info(self.guid())
            .await
            .map_err(|e| self.map(e))
    }

    async fn send_text(&self, text: &str, opts: SendOpts) -> Result<()> {
        self.refuse_gateway()?;
        let conn = self.conn().await?;
        // Multi-line text is pasted, as tmux pastes it: typed, each newline would be an Enter and
        // every line but the last would run, whatever `enter` says.
        let pasted;
        let text = if text.contains(['\n', '\r']) && self.shell_in_front(&conn).await? {
            pasted = bracketed_paste(text);
            pasted.as_str()
        } else {
            text
        };
        send_text_to(&conn, self.guid(), text, opts.enter)
            .await
            .map_err(|e| self.map(e))
    }

    async fn send_keys(&self, keys: &[Key]) -> Result<()> {
        self.refuse_gateway()?;
        if keys.iter().all(|k| k.to_bytes().is_empty()) {
            return Ok(());
        }
        let conn = self.conn().await?;
        // A key the terminal turns into a signal (C-c, C-\\, C-z) makes the kernel drop the
        // input queued behind it: what follows (here, or in the next call) waits until the
        // session has answered.
        let mut after_signal = false;
        for segment in signal_segments(keys) {
            let bytes: Vec<u8> = segment.iter().flat_map(Key::to_bytes).collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let signal = segment.last().and_then(Key::signal_echo).is_some();
            // Subscribed before the key goes, so that its answer is not missed.
            let mut watch = if signal {
                self.changes(&conn).await.ok()
            } else {
                None
            };
            // Keys may include NUL (C-@), which plain text refuses: send the pieces directly.
            for (i, piece) in chunks(&text, SEND_CHUNK).into_iter().enumerate() {
                match conn
                    .send_text(self.guid(), piece)
                    .await
                    .map_err(|e| self.err(e))
                {
                    Ok(()) => {}
                    // The signal just answered ended the session's program (and the session):
                    // the input is over. A session that ends amid other keys is an error.
                    Err(Error::SessionDead { .. }) if after_signal && i == 0 => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            if let Some((rx, _guard)) = watch.as_mut() {
                signal_taken(rx, self.guid()).await;
            }
            after_signal = signal;
        }
        Ok(())
    }

    async fn capture(&self, opts: &CaptureOpts) -> Result<Capture> {
        let conn = self.conn().await?;
        let join = opts.join_wrapped;
        match &opts.range {
            ReadRange::Screen => {
                let g = self.geometry(&conn).await?;
                let lines = Self::shape(&g.screen, g.above, join);
                Ok(self.finish(lines, g.above, g.end(), opts, usize::MAX))
            }
            ReadRange::Tail(n) => {
                let n = *n;
                let g = self.geometry(&conn).await?;
                let want = i64::try_from(n).unwrap_or(i64::MAX).saturating_add(g.rows);
                let from = g.end().saturating_sub(want).max(0);
                let (first, rows) = self.rows(&conn, from, g.end() - 1).await?;
                let mut lines = Self::shape(&rows, first, join);
                while lines.last().is_some_and(|l| l.text.trim().is_empty()) {
                    lines.pop();
                }
                let drop = lines.len().saturating_sub(n);
                let lines = lines.split_off(drop);
                let first = lines.first().map(|l| l.start).unwrap_or(g.end());
                Ok(self.finish(lines, first, g.end(), opts, n.max(1)))
            }
            ReadRange::Lines { from, to } => {
                if from > to {
                    return Err(Error::InvalidArgument(format!(
                        "line range {from}-{to} is backwards"
                    )));
                }
                let g = self.geometry(&conn).await?;
                let total = g.end();
                let from_i = i64::try_from(*from).unwrap_or(i64::MAX);
                if from_i >= total {
                    let mut c = self.nothing(total, opts);
                    c.first_line = *from;
                    c.note = Some(format!("line {from} is past the end ({total} lines)"));
                    return Ok(c);
                }
                let to_i = i64::try_from(*to).unwrap_or(i64::MAX).min(total - 1);
                let (first, rows) = self.rows(&conn, from_i, to_i).await?;
                let lines = Self::shape(&rows, first, join);
                let mut c = self.finish(lines, first, total, opts, termloom_core::DEFAULT_READ_CAP);
                if first > from_i {
                    let n = format!(
                        "lines {from}-{} were trimmed from the scrollback",
                        first - 1
                    );
                    c.note = Some(match c.note {
                        Some(old) => format!("{n}; {old}"),
                        None => n,
                    });
                }
                Ok(c)
            }
            ReadRange::Since(cursor) => {
                let data = CursorData::decode(cursor).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "'{}' is not a cursor from a read of an iTerm2 session",
                        cursor.0
                    ))
                })?;
                if data.session != self.guid() {
                    return Err(Error::InvalidArgument(format!(
                        "cursor '{}' belongs to another session ({}), not {}",
                        cursor.0,
                        data.session,
                        self.guid()
                    )));
                }
                let g = self.geometry(&conn).await?;
                let total = g.end();
                // The line before, when the cursor knows its text: read again if it grew; when
                // it holds other text now (the screen was cleared or redrawn, the scrollback
                // cut), the read position is gone and the read starts at the screen's top.
                // Nothing to return: the caller's cursor, so the next read starts there too.
                let nothing_new = || Capture {
                    cursor: cursor.clone(),
                    ..self.nothing(total, opts)
                };
                let anchored = data.anchor.is_some() && data.line > 0;
                let mut from = if anchored { data.line - 1 } else { data.line };
                let mut gone = anchored && from >= total;
                if gone {
                    from = g.above.min(total - 1).max(0);
                } else if from >= total {
                    return Ok(nothing_new());
                }
                let (mut first, mut rows) = self.rows(&conn, from, total - 1).await?;
                let mut lines = Self::shape(&rows, first, join);
                if anchored
                    && !gone
                    && let Some(l) = lines.first()
                    && l.start == from
                {
                    let grew = data.anchor.and_then(|(len, hash)| {
                        termloom_core::text::anchor_grew(&l.text, len, hash)
                    });
                    match grew {
                        // Grown: returned again, whole.
                        Some(true) => {}
                        // As it was: only what follows is new.
                        Some(false) => {
                            let l = lines.remove(0);
                            first = l.end + 1;
                        }
                        None => {
                            gone = true;
                            let top = g.above.min(from);
                            (first, rows) = self.rows(&conn, top, total - 1).await?;
                            lines = Self::shape(&rows, first, join);
                        }
                    }
                }
                if lines.is_empty() {
                    return Ok(nothing_new());
                }
                let mut c = self.finish(lines, first, total, opts, termloom_core::DEFAULT_READ_CAP);
                if c.text.is_empty() {
                    // Nothing new: keep the caller's cursor so the next read starts there too.
                    c.cursor = cursor.clone();
                }
                if gone {
                    let n = "the previous read position is gone (the screen was cleared or redrawn, or the scrollback cut); returning the screen".to_string();
                    c.note = Some(match c.note {
                        Some(old) => format!("{n}; {old}"),
                        None => n,
                    });
                } else if first > data.line {
                    let n = format!(
                        "lines {}-{} were trimmed from the scrollback before this read",
                        data.line,
                        first - 1
                    );
                    c.note = Some(match c.note {
                        Some(old) => format!("{n}; {old}"),
                        None => n,
                    });
                }
                Ok(c)
            }
        }
    }

    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo> {
        self.split_with(spec, &ItermCreate::default()).await
    }

    async fn rename(&self, name: &str) -> Result<()> {
        check_session_name(name)?;
        self.term.ensure_unique_name(name, Some(self.id)).await?;
        let conn = self.conn().await?;
        set_vars(
            &conn,
            &VariableTarget::Session(self.guid().to_owned()),
            &[(VAR_NAME, Value::from(name))],
        )
        .await
        .map_err(|e| self.err(e))?;
        conn.set_profile_property(self.guid(), "Name", &Value::from(name).to_string())
            .await
            .map_err(|e| self.err(e))
    }

    async fn close(&self) -> Result<()> {
        self.close_with(true).await
    }

    async fn focus(&self) -> Result<()> {
        let conn = self.conn().await?;
        conn.activate_session(self.guid())
            .await
            .map_err(|e| self.err(e))
    }

    async fn resize(&self, spec: &ResizeSpec) -> Result<()> {
        let _ = spec;
        Err(Error::unsupported(
            BackendKind::Iterm,
            "resize panes",
            "iTerm2 sizes split panes itself; its API changes a session's grid only through SetProperty, which termloom does not model",
        ))
    }

    async fn set_managed(&self, managed: bool) -> Result<()> {
        let conn = self.conn().await?;
        set_vars(
            &conn,
            &VariableTarget::Session(self.guid().to_owned()),
            &[(VAR_MANAGED, Value::Bool(managed))],
        )
        .await
        .map_err(|e| self.err(e))
    }

    async fn run(&self, opts: &RunOpts) -> Result<RunResult> {
        self.refuse_gateway()?;
        crate::run::run(self, opts).await
    }

    async fn wait_run(&self, handle: &RunHandle, timeout: Duration) -> Result<RunResult> {
        crate::run::wait_run(self, handle, timeout).await
    }

    async fn status(&self) -> Result<SessionStatus> {
        let conn = self.conn().await?;
        let vars = get_vars(
            &conn,
            &VariableTarget::Session(self.guid().to_owned()),
            &["path", "jobName", "commandLine"],
        )
        .await
        .map_err(|e| self.err(e))?;
        let s = |i: usize| match vars.get(i) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let job = s(1).or_else(|| {
            s(2).map(|c| {
                let first = c.split_whitespace().next().unwrap_or("").to_owned();
                first.rsplit('/').next().unwrap_or("").to_owned()
            })
        });
        let cwd = s(0);
        let prompt = conn
            .get_prompt(self.guid(), None)
            .await
            .map_err(|e| self.err(e))?;
        use proto::get_prompt_response::State;
        match prompt {
            Some(p) => {
                let state = p.prompt_state();
                let last_exit = match state {
                    State::Finished => p.exit_status.map(|s| s as i32),
                    State::Editing | State::Running => {
                        previous_exit(&conn, self.guid(), p.unique_prompt_id.as_deref()).await
                    }
                };
                let busy = state == State::Running;
                Ok(SessionStatus {
                    state: if busy {
                        BusyState::Busy
                    } else {
                        BusyState::Idle
                    },
                    command: if busy {
                        p.command.clone().or(job).unwrap_or_default()
                    } else {
                        job.unwrap_or_default()
                    },
                    last_exit_code: last_exit,
                    cwd: cwd.or(p.working_directory.clone()),
                    shell_integration: true,
                })
            }
            None => {
                let command = job.unwrap_or_default();
                let bare = command.trim_start_matches('-');
                let idle = command.is_empty() || SHELLS.contains(&bare);
                Ok(SessionStatus {
                    state: if idle {
                        BusyState::Idle
                    } else {
                        BusyState::Busy
                    },
                    command,
                    last_exit_code: None,
                    cwd,
                    shell_integration: false,
                })
            }
        }
    }

    async fn install_integration(&self) -> Result<()> {
        Err(Error::unsupported(
            BackendKind::Iterm,
            "install shell integration",
            "use iTerm2 › Install Shell Integration (or print OSC 133 marks from the shell's prompt); termloom does not rewrite the prompt of a shell it did not start",
        ))
    }

    async fn subscribe(&self) -> Result<OutputStream> {
        Ok(self.follower().await?.into_stream())
    }
}

/// The exit status of the prompt before `current` (the last finished command).
async fn previous_exit(conn: &Connection, guid: &str, current: Option<&str>) -> Option<i32> {
    let ids = conn.list_prompts(guid).await.ok()?;
    let pos = match current {
        Some(c) => ids.iter().position(|i| i == c)?,
        None => ids.len(),
    };
    for id in ids[..pos].iter().rev() {
        if let Ok(Some(p)) = conn.get_prompt(guid, Some(id)).await
            && p.prompt_state() == proto::get_prompt_response::State::Finished
        {
            return p.exit_status.map(|s| s as i32);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pastes_are_marked_and_cannot_end_early() {
        assert_eq!(bracketed_paste("a\nb"), "\x1b[200~a\nb\x1b[201~");
        assert_eq!(
            bracketed_paste("a\x1b[201~\nrm -rf x\n"),
            "\x1b[200~a\nrm -rf x\n\x1b[201~"
        );
        assert!(is_shell("-bash") && is_shell("/usr/local/bin/fish") && is_shell("zsh"));
        assert!(!is_shell("python3") && !is_shell("vim"));
    }

    #[test]
    fn chunks_respect_char_boundaries() {
        let text = "é".repeat(700);
        let parts = chunks(&text, 1024);
        assert!(parts.iter().all(|p| p.len() <= 1024));
        assert_eq!(parts.concat(), text);
        assert!(chunks("", 10).is_empty());
    }

    #[test]
    fn cursors_round_trip() {
        let c = CursorData {
            session: "w0t0p0:AB-12.x".into(),
            line: 4000,
            anchor: None,
        };
        assert_eq!(CursorData::decode(&c.encode()), Some(c.clone()));
        let grown = CursorData {
            anchor: Some((14, 0xfeed)),
            ..c
        };
        assert!(grown.encode().0.starts_with("i2."));
        assert_eq!(CursorData::decode(&grown.encode()), Some(grown));
        assert_eq!(CursorData::decode(&Cursor("t1.1.2.3".into())), None);
        assert_eq!(CursorData::decode(&Cursor("i1..3".into())), None);
        assert_eq!(CursorData::decode(&Cursor("i1.x.-3".into())), None);
    }
}
