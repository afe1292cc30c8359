//! [`ItermTerminal`]: core's [`Terminal`] for iTerm2, over one lazily opened [`Connection`].
//!
//! # How core's words map onto iTerm2
//!
//! | core | iTerm2 |
//! |---|---|
//! | workspace | a **window**. Its name is the window variable `user.termloomWorkspace` when set (termloom sets it on every window it creates), else the window id (`pty-…`). Either spelling finds it. |
//! | window | a **tab**. Index = position in its window; name = the tab variable `user.termloomWindow` when set, else the title of the tab's active session; native id = the tab id. |
//! | pane index | position of the session in the tab's split tree, depth first (left to right, top to bottom) |
//! | session | an iTerm2 session; native id = its unique identifier (a GUID) |
//!
//! # Identity
//!
//! A session's [`SessionId`] is stored in its `user.termloomID` variable and its name in
//! `user.termloomName` (also shown as the session's name in iTerm2); `user.termloomManaged`
//! marks sessions termloom created or tagged. A session found without an id is tagged while
//! listing. The id given to a session is **derived from its GUID** ([`derived_id`]): iTerm2 has
//! no "set only if unset", so two listers racing to tag the same session must arrive at the same
//! value, and a session whose variables were lost (an iTerm2 restart restoring the same GUIDs)
//! gets its old id back. [`Terminal::open`] re-reads `user.termloomID` before handing out a
//! session, so a stale GUID never reaches the wrong session.
//!
//! A session showing a `tmux -CC` pane (iTerm2's `tmuxRole` is `client`) is that pane: the
//! listing asks each tmux connection for its panes' `@termloom_id` and `@termloom_name` and tags
//! the session with them, so its id outlives every attach (iTerm2 gives it a new GUID each time)
//! and is the id a tmux-backend termloom on that server gives the pane. Its window belongs to the
//! tmux session's workspace. The gateway session (`tmuxRole` `gateway`) takes no input.
//!
//! # Focus
//!
//! New tabs are created without selecting them; a new window is created and the window that was
//! key before is brought back to the front, so termloom does not steal the user's focus. Only
//! [`Session::focus`] and [`Terminal::select_window`] change what the user sees.
//!
//! # What iTerm2 cannot do here
//!
//! See [`ItermTerminal::capabilities`]: pane sizes and split percentages (iTerm2 splits evenly
//! and its API has no resize request that termloom models), reading the scrollback size,
//! per-session environment variables, and installing shell integration into a running shell.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde_json::Value;
use termloom_core::{
    BackendKind, Capabilities, Direction, Error, Layout, LayoutPlacement, NativeId, Result,
    Session, SessionId, SessionInfo, SessionSpec, Terminal, TerminalKey, WindowInfo, WindowRef,
    WindowSpec, WorkspaceInfo, WorkspaceSpec,
};
use tokio::sync::{Mutex as AsyncMutex, broadcast};
use tokio::task::JoinHandle;

use crate::connection::{ConnectOptions, Connection, VariableTarget, default_socket_path};
use crate::error::ItermError;
use crate::proto::client_originated_message::Submessage as Req;
use crate::proto::server_originated_message::Submessage as Rep;
use crate::proto::{self, NotificationType};
use crate::session::ItermSession;

/// Session variable holding the persistent [`SessionId`].
pub const VAR_ID: &str = "user.termloomID";
/// Session variable holding the session's name.
pub const VAR_NAME: &str = "user.termloomName";
/// Session variable set to `true` on sessions termloom manages (created or tagged).
pub const VAR_MANAGED: &str = "user.termloomManaged";
/// Window variable holding the workspace name.
pub const VAR_WORKSPACE: &str = "user.termloomWorkspace";
/// Window variable holding the workspace's creation time (Unix seconds).
pub const VAR_CREATED: &str = "user.termloomCreated";
/// Window variable holding the scrollback size termloom last set for the workspace.
pub const VAR_SCROLLBACK: &str = "user.termloomScrollback";
/// Tab variable holding the window (tab) name.
pub const VAR_WINDOW: &str = "user.termloomWindow";

/// Environment variable naming the iTerm2 API socket (overrides the default location; tests
/// point it at the fake).
pub const SOCKET_ENV: &str = "TERMLOOM_ITERM_SOCKET";

/// The workspace new sessions go to when the caller names none.
pub const DEFAULT_WORKSPACE: &str = "termloom";

pub use termloom_core::{MAX_NAME_LEN, check_name, check_session_name};

/// Session variables read for every listed session.
const SESSION_VARS: [&str; 9] = [
    VAR_ID,
    VAR_NAME,
    VAR_MANAGED,
    "path",
    "jobName",
    "commandLine",
    "pid",
    "tmuxRole",
    "tmuxWindowPane",
];

/// What a `tmux -CC` connection's server says of its panes: pane id (`%N`) → (`@termloom_id`,
/// `@termloom_name`, tmux session name). Separated by the unit separator (names hold anything
/// else).
const TMUX_PANES: &str = "list-panes -a -F \"#{pane_id}\u{1f}#{@termloom_id}\u{1f}#{@termloom_name}\u{1f}#{session_name}\"";

/// One tmux pane as [`TMUX_PANES`] lists it.
#[derive(Clone, Debug, Default)]
struct TmuxPaneTag {
    id: Option<SessionId>,
    name: Option<String>,
    session: String,
}

fn parse_tmux_panes(out: &str) -> HashMap<String, TmuxPaneTag> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, '\u{1f}');
            let pane = f.next()?.to_owned();
            let id = f.next().and_then(|s| s.parse::<SessionId>().ok());
            let name = f.next().filter(|s| !s.is_empty()).map(str::to_owned);
            let session = f.next().unwrap_or_default().to_owned();
            Some((pane, TmuxPaneTag { id, name, session }))
        })
        .collect()
}

/// How long to look for the session a split created when iTerm2 does not name it (splits inside
/// a `tmux -CC` window).
const SPLIT_DISCOVERY: Duration = Duration::from_secs(10);

/// Connection options from the environment: the socket from `TERMLOOM_ITERM_SOCKET` when set
/// (else iTerm2's default location), credentials from `ITERM2_COOKIE`/`ITERM2_KEY`, else from
/// `osascript`.
pub fn options_from_env() -> ConnectOptions {
    let mut opts = ConnectOptions::default();
    if let Some(s) = std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()) {
        opts.socket_path = Some(PathBuf::from(s));
    }
    opts
}

/// The [`SessionId`] termloom gives an untagged iTerm2 session: a UUID (v4 layout) derived from
/// the session's GUID, so that everyone who tags the same session picks the same id.
pub fn derived_id(guid: &str) -> SessionId {
    // FNV-1a, 128 bits: stable across builds and platforms, unlike std's hasher.
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    for b in b"termloom-iterm:"
        .iter()
        .chain(guid.trim().to_ascii_uppercase().as_bytes())
    {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    SessionId::from_uuid(uuid::Builder::from_random_bytes(h.to_be_bytes()).into_uuid())
}

impl From<ItermError> for Error {
    fn from(e: ItermError) -> Self {
        match e {
            ItermError::SessionNotFound(s) => Error::SessionNotFound {
                target: NativeId::iterm(s).to_string(),
            },
            ItermError::Timeout { request, after } => Error::Timeout {
                op: format!("iTerm2 {request} request"),
                after,
            },
            ItermError::Closed(reason) => Error::ConnectionLost {
                backend: BackendKind::Iterm,
                reason,
            },
            other => Error::backend(BackendKind::Iterm, other.to_string()),
        }
    }
}

/// Workspace names appear in targets (`workspace:window.pane`), so `.` and `:` are refused.
pub fn check_workspace_name(name: &str) -> Result<()> {
    check_name("workspace", name)?;
    if name.contains(['.', ':']) || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "workspace name '{name}' may not contain '.', ':' or control characters (targets use them as separators)"
        )));
    }
    Ok(())
}

/// Something that happened in iTerm2, from its notifications (see [`ItermTerminal::events`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItermEvent {
    /// A session was created (by anyone). It is tagged with its termloom id right away.
    SessionCreated {
        /// The session's GUID.
        native: String,
    },
    /// A session ended.
    SessionTerminated {
        /// The session's GUID.
        native: String,
    },
    /// A window appeared.
    WindowCreated {
        /// The window id.
        window_id: String,
    },
    /// A window went away.
    WindowClosed {
        /// The window id.
        window_id: String,
    },
    /// A tab appeared (tabs showing a `tmux -CC` window carry the tmux ids).
    TabCreated {
        /// The window holding it.
        window_id: String,
        /// The tab id.
        tab_id: String,
        /// The tmux window id (`@3`), for tabs of a tmux integration connection.
        tmux_window_id: Option<String>,
        /// The tmux connection id, for tabs of a tmux integration connection.
        tmux_connection_id: Option<String>,
    },
    /// A tab went away.
    TabClosed {
        /// The tab id.
        tab_id: String,
    },
    /// Windows, tabs or splits changed (sent after the more specific events above).
    LayoutChanged,
    /// The notification stream fell behind and lost this many notifications; re-list.
    Lagged(u64),
}

/// One iTerm2 window as termloom sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItermWindow {
    /// The window id (`pty-…`).
    pub id: String,
    /// The workspace name: `user.termloomWorkspace`, else the window id.
    pub workspace: String,
    /// Whether the workspace name comes from `user.termloomWorkspace`.
    pub named: bool,
    /// The window number iTerm2 shows.
    pub number: Option<i32>,
    /// When termloom created it (Unix seconds), when it did.
    pub created: Option<i64>,
    /// The scrollback size termloom last set for it.
    pub scrollback: Option<u32>,
    /// Its tabs, in order.
    pub tabs: Vec<ItermTab>,
}

/// One iTerm2 tab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItermTab {
    /// The tab id.
    pub id: String,
    /// Position in its window.
    pub index: u32,
    /// The window name (`user.termloomWindow`, else the active session's title).
    pub name: String,
    /// Whether it is its window's selected tab.
    pub selected: bool,
    /// The tmux window id, for tabs showing a `tmux -CC` window.
    pub tmux_window_id: Option<String>,
    /// The tmux connection id, for tabs showing a `tmux -CC` window.
    pub tmux_connection_id: Option<String>,
    /// Its sessions in split-tree order.
    pub sessions: Vec<SessionInfo>,
}

/// Every window, tab and session (see [`ItermTerminal::layout`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItermLayout {
    /// The windows, in iTerm2's order.
    pub windows: Vec<ItermWindow>,
}

impl ItermLayout {
    /// Every session, window by window, tab by tab.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionInfo> {
        self.windows
            .iter()
            .flat_map(|w| w.tabs.iter().flat_map(|t| t.sessions.iter()))
    }

    /// The window a workspace name (or window id) names.
    pub fn workspace(&self, name: &str) -> Option<&ItermWindow> {
        self.windows
            .iter()
            .find(|w| w.workspace == name)
            .or_else(|| self.windows.iter().find(|w| w.id == name))
    }

    /// The session with this GUID.
    pub fn session(&self, guid: &str) -> Option<&SessionInfo> {
        self.sessions().find(|s| s.native.id == guid)
    }

    /// The tab holding the session with this GUID, with its window.
    pub fn tab_of(&self, guid: &str) -> Option<(&ItermWindow, &ItermTab)> {
        self.windows.iter().find_map(|w| {
            w.tabs
                .iter()
                .find(|t| t.sessions.iter().any(|s| s.native.id == guid))
                .map(|t| (w, t))
        })
    }
}

/// A `tmux -CC` integration connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmuxConnection {
    /// The connection id, for [`ItermTerminal::tmux_send_command`] and friends.
    pub connection_id: String,
    /// The GUID of the session running `tmux -CC` (the gateway).
    pub gateway_native: Option<String>,
    /// The gateway session, when it is listed.
    pub gateway: Option<SessionInfo>,
}

/// A tmux window created through iTerm2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmuxWindow {
    /// The iTerm2 tab showing it.
    pub tab_id: Option<String>,
    /// Its first session, once listed (tagged like any other session).
    pub session: Option<SessionInfo>,
}

/// A menu item's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MenuItemState {
    /// It can be invoked now.
    pub enabled: bool,
    /// It shows a check mark.
    pub checked: bool,
}

/// iTerm2-only choices for a new session (see [`ItermTerminal::create_session_with`] and
/// [`ItermSession::split_with`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItermCreate {
    /// The profile to start it with (iTerm2's default profile when `None`).
    pub profile: Option<String>,
    /// Profile properties overriding the profile for this session only, values as JSON (e.g.
    /// `("Background Color", color(0.4, 0.0, 0.0))`).
    pub properties: Vec<(String, Value)>,
    /// Bring it to the front (select its tab; a new window stays key). By default new
    /// sessions are made in the background.
    pub select: bool,
}

type SubKey = (NotificationType, String);

struct Inner {
    opts: ConnectOptions,
    key: TerminalKey,
    conn: AsyncMutex<Option<Connection>>,
    subs: AsyncMutex<HashMap<SubKey, usize>>,
    events: broadcast::Sender<ItermEvent>,
    watcher: StdMutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.watcher).take() {
            w.abort();
        }
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The iTerm2 app as a termloom [`Terminal`]. Cheap to clone; clones share one connection.
///
/// Nothing is connected until the first call; a missing iTerm2, a disabled API or refused
/// credentials are reported by that call (and the next call tries again). After a dropped
/// connection the next request reconnects, and notification subscriptions are replayed.
#[derive(Clone)]
pub struct ItermTerminal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ItermTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItermTerminal")
            .field("key", &self.inner.key)
            .finish()
    }
}

/// A release of a notification subscription, done when the last holder lets go.
pub(crate) struct SubGuard {
    term: ItermTerminal,
    key: Option<SubKey>,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let term = self.term.clone();
            handle.spawn(async move { term.release(key).await });
        }
    }
}

/// JSON value of a variable as a non-empty string.
fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The profile properties that start a new session in `cwd` with `opts`' overrides.
pub(crate) fn launch_properties(
    cwd: Option<&Path>,
    opts: &ItermCreate,
) -> Result<Vec<proto::ProfileProperty>> {
    let mut props = Vec::new();
    if let Some(cwd) = cwd {
        let abs = std::path::absolute(cwd)
            .map_err(|e| Error::io(format!("working directory {}", cwd.display()), e))?;
        if !abs.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "working directory {} does not exist",
                abs.display()
            )));
        }
        props.push(proto::ProfileProperty {
            key: Some("Custom Directory".into()),
            json_value: Some(Value::from("Yes").to_string()),
        });
        props.push(proto::ProfileProperty {
            key: Some("Working Directory".into()),
            json_value: Some(Value::from(abs.to_string_lossy().into_owned()).to_string()),
        });
    }
    for (k, v) in &opts.properties {
        props.push(proto::ProfileProperty {
            key: Some(k.clone()),
            json_value: Some(v.to_string()),
        });
    }
    Ok(props)
}

/// Maps iTerm2's refusals of a profile or its properties.
fn profile_error(status: &str, opts: &ItermCreate) -> Option<Error> {
    match status {
        "INVALID_PROFILE_NAME" => Some(Error::InvalidArgument(format!(
            "iTerm2 has no profile named '{}'",
            opts.profile.as_deref().unwrap_or("")
        ))),
        "MALFORMED_CUSTOM_PROFILE_PROPERTY" => Some(Error::InvalidArgument(
            "iTerm2 refused a profile property (unknown key or a value of the wrong JSON type)"
                .into(),
        )),
        _ => None,
    }
}

/// Reads variables, each parsed from JSON (`Null` when unset or unparsable).
pub(crate) async fn get_vars(
    conn: &Connection,
    target: &VariableTarget,
    names: &[&str],
) -> std::result::Result<Vec<Value>, ItermError> {
    let raw = conn.get_variables(target, names).await?;
    Ok(raw
        .iter()
        .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
        .collect())
}

/// Sets several variables in one request (names must start with `user.`).
pub(crate) async fn set_vars(
    conn: &Connection,
    target: &VariableTarget,
    values: &[(&str, Value)],
) -> std::result::Result<(), ItermError> {
    if values.is_empty() {
        return Ok(());
    }
    let scope = match target {
        VariableTarget::Session(s) => proto::variable_request::Scope::SessionId(s.clone()),
        VariableTarget::Tab(t) => proto::variable_request::Scope::TabId(t.clone()),
        VariableTarget::Window(w) => proto::variable_request::Scope::WindowId(w.clone()),
        VariableTarget::App => proto::variable_request::Scope::App(true),
    };
    let request = proto::VariableRequest {
        set: values
            .iter()
            .map(|(n, v)| proto::variable_request::Set {
                name: Some((*n).to_owned()),
                value: Some(v.to_string()),
            })
            .collect(),
        get: Vec::new(),
        scope: Some(scope),
    };
    match conn.call(Req::VariableRequest(request)).await? {
        Rep::VariableResponse(r) => {
            let status =
                proto::enum_name::<proto::variable_response::Status>(r.status.unwrap_or_default());
            match (status.as_str(), target) {
                ("OK", _) => Ok(()),
                ("SESSION_NOT_FOUND", VariableTarget::Session(s)) => {
                    Err(ItermError::SessionNotFound(s.clone()))
                }
                ("WINDOW_NOT_FOUND", VariableTarget::Window(w)) => {
                    Err(ItermError::WindowNotFound(w.clone()))
                }
                _ => Err(ItermError::Rpc {
                    request: "Variable",
                    status,
                }),
            }
        }
        other => Err(ItermError::Decode(format!(
            "the Variable request was answered with a {} reply",
            other.kind()
        ))),
    }
}

/// The id of the key window, from the focus state.
pub(crate) async fn key_window(conn: &Connection) -> Option<String> {
    use proto::focus_changed_notification::Event;
    use proto::focus_changed_notification::window::WindowStatus;
    let focus = conn.focus().await.ok()?;
    focus.notifications.iter().find_map(|n| match &n.event {
        Some(Event::Window(w))
            if w.window_status == Some(WindowStatus::TerminalWindowIsCurrent as i32)
                || w.window_status == Some(WindowStatus::TerminalWindowBecameKey as i32) =>
        {
            w.window_id.clone()
        }
        _ => None,
    })
}

/// Leaves the window that was key before a new window was created at the front again.
async fn restore_key_window(conn: &Connection, previous: Option<String>, created: &str) {
    let Some(previous) = previous.filter(|p| p != created) else {
        return;
    };
    let request = proto::ActivateRequest {
        order_window_front: Some(true),
        identifier: Some(proto::activate_request::Identifier::WindowId(previous)),
        ..Default::default()
    };
    if let Err(e) = conn.activate(request).await {
        tracing::debug!(error = %e, "could not give focus back to the previous window");
    }
}

/// Leaves of a split tree in order, each with its summary.
fn leaves(node: &proto::SplitTreeNode, out: &mut Vec<proto::SessionSummary>) {
    use proto::split_tree_node::split_tree_link::Child;
    for link in &node.links {
        match &link.child {
            Some(Child::Session(s)) => out.push(s.clone()),
            Some(Child::Node(n)) => leaves(n, out),
            None => {}
        }
    }
}

/// A freshly created session: its GUID and where it is.
pub(crate) struct Created {
    pub(crate) window: Option<String>,
    pub(crate) tab: Option<String>,
    pub(crate) session: String,
}

impl ItermTerminal {
    /// A terminal for the iTerm2 that `opts` reaches. Connects on first use.
    pub fn new(opts: ConnectOptions) -> Self {
        let socket = opts
            .socket_path
            .clone()
            .or_else(|| default_socket_path().ok());
        let key = TerminalKey {
            backend: BackendKind::Iterm,
            host: None,
            socket: socket.map(|p| p.to_string_lossy().into_owned()),
        };
        let (events, _) = broadcast::channel(1024);
        ItermTerminal {
            inner: Arc::new(Inner {
                opts,
                key,
                conn: AsyncMutex::new(None),
                subs: AsyncMutex::new(HashMap::new()),
                events,
                watcher: StdMutex::new(None),
            }),
        }
    }

    /// A terminal with [`options_from_env`].
    pub fn from_env() -> Self {
        Self::new(options_from_env())
    }

    /// The connection, opened now if it is not yet.
    pub async fn connection(&self) -> std::result::Result<Connection, ItermError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Connection::connect(self.inner.opts.clone()).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    pub(crate) async fn conn(&self) -> Result<Connection> {
        Ok(self.connection().await?)
    }

    /// Closes the WebSocket; the next call reconnects (and replays notification subscriptions).
    pub async fn disconnect(&self) {
        let conn = self.inner.conn.lock().await.clone();
        if let Some(c) = conn {
            c.disconnect().await;
        }
    }

    /// Subscribes to a notification kind for a session (`None`: all), shared and counted: the
    /// subscription is dropped when the last guard is.
    pub(crate) async fn acquire(
        &self,
        kind: NotificationType,
        session: Option<&str>,
    ) -> Result<SubGuard> {
        let key = (kind, session.unwrap_or("all").to_owned());
        let conn = self.conn().await?;
        let mut subs = self.inner.subs.lock().await;
        let count = subs.entry(key.clone()).or_insert(0);
        if *count == 0 {
            conn.subscribe(kind, session).await.map_err(|e| match e {
                ItermError::SessionNotFound(s) => Error::SessionNotFound {
                    target: NativeId::iterm(s).to_string(),
                },
                e => e.into(),
            })?;
        }
        *count += 1;
        Ok(SubGuard {
            term: self.clone(),
            key: Some(key),
        })
    }

    async fn release(&self, key: SubKey) {
        let mut subs = self.inner.subs.lock().await;
        let Some(count) = subs.get_mut(&key) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        subs.remove(&key);
        let conn = self.inner.conn.lock().await.clone();
        if let Some(conn) = conn {
            let session = (key.1 != "all").then_some(key.1.as_str());
            if let Err(e) = conn.unsubscribe(key.0, session).await {
                tracing::debug!(error = %e, "unsubscribing");
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Listing
    // -----------------------------------------------------------------------------------------

    /// Every window, tab and session, with termloom's names and ids. Sessions nobody tagged yet
    /// are tagged now.
    pub async fn layout(&self) -> Result<ItermLayout> {
        let conn = self.conn().await?;
        let resp = conn.list_sessions().await?;
        self.build_layout(&conn, resp).await
    }

    async fn build_layout(
        &self,
        conn: &Connection,
        resp: proto::ListSessionsResponse,
    ) -> Result<ItermLayout> {
        let windows = &resp.windows;
        let window_ids: Vec<String> = windows
            .iter()
            .map(|w| w.window_id.clone().unwrap_or_default())
            .collect();
        let mut tab_ids: Vec<String> = Vec::new();
        let mut guids: Vec<String> = Vec::new();
        // The sessions of `tmux -CC` tabs, and their connections.
        let mut conn_of_guid: HashMap<String, String> = HashMap::new();
        let mut connections: Vec<String> = Vec::new();
        for w in windows {
            for t in &w.tabs {
                tab_ids.push(t.tab_id.clone().unwrap_or_default());
                let mut l = Vec::new();
                if let Some(root) = &t.root {
                    leaves(root, &mut l);
                }
                let tab_guids = l.into_iter().filter_map(|s| s.unique_identifier);
                match &t.tmux_connection_id {
                    Some(c) => {
                        for g in tab_guids {
                            conn_of_guid.insert(g.clone(), c.clone());
                            guids.push(g);
                        }
                        connections.push(c.clone());
                    }
                    None => guids.extend(tab_guids),
                }
            }
        }
        connections.sort();
        connections.dedup();
        let wvars = join_all(window_ids.iter().map(|id| async move {
            get_vars(
                conn,
                &VariableTarget::Window(id.clone()),
                &[VAR_WORKSPACE, VAR_CREATED, VAR_SCROLLBACK],
            )
            .await
        }));
        let tvars = join_all(tab_ids.iter().map(|id| async move {
            get_vars(conn, &VariableTarget::Tab(id.clone()), &[VAR_WINDOW]).await
        }));
        let svars = join_all(guids.iter().map(|id| async move {
            get_vars(conn, &VariableTarget::Session(id.clone()), &SESSION_VARS).await
        }));
        // A session showing a tmux pane (`tmuxRole` client) is that pane: its id and name are
        // the pane's `@termloom_id` and `@termloom_name`, which outlive every attach (iTerm2 gives
        // the session a new GUID each time). The panes of each connection, asked once, along with
        // the variables.
        let panes = join_all(connections.iter().map(|c| async move {
            let out = conn.tmux_send_command(c, TMUX_PANES).await;
            (
                c.clone(),
                out.map(|o| parse_tmux_panes(&o)).unwrap_or_default(),
            )
        }));
        let (wvars, tvars, svars, panes) = futures_util::join!(wvars, tvars, svars, panes);
        let pane_tags: HashMap<String, HashMap<String, TmuxPaneTag>> = panes.into_iter().collect();
        let soft = |r: std::result::Result<Vec<Value>, ItermError>, n: usize| match r {
            Ok(v) => Ok(v),
            Err(ItermError::Rpc { .. }) | Err(ItermError::SessionNotFound(_)) => {
                Ok(vec![Value::Null; n])
            }
            Err(e) => Err(Error::from(e)),
        };
        let mut wvar_map = HashMap::new();
        for (id, r) in window_ids.iter().zip(wvars) {
            wvar_map.insert(id.clone(), soft(r, 3)?);
        }
        let mut tvar_map = HashMap::new();
        for (id, r) in tab_ids.iter().zip(tvars) {
            tvar_map.insert(id.clone(), soft(r, 1)?);
        }
        let pane_of = |guid: &str, v: &[Value]| -> Option<TmuxPaneTag> {
            if v.get(7).and_then(str_of).as_deref() != Some("client") {
                return None;
            }
            let n = v.get(8).and_then(Value::as_u64)?;
            pane_tags
                .get(conn_of_guid.get(guid)?)?
                .get(&format!("%{n}"))
                .cloned()
        };
        let mut svar_map: HashMap<String, Vec<Value>> = HashMap::new();
        let mut tmux_session_of: HashMap<String, String> = HashMap::new();
        // (GUID, the id to give it, the name to give it)
        let mut to_tag: Vec<(String, SessionId, Option<String>)> = Vec::new();
        for (guid, r) in guids.iter().zip(svars) {
            match r {
                Ok(v) => {
                    let stored = v
                        .first()
                        .and_then(str_of)
                        .and_then(|s| s.parse::<SessionId>().ok());
                    let pane = pane_of(guid, &v);
                    if let Some(p) = &pane {
                        tmux_session_of.insert(guid.clone(), p.session.clone());
                    }
                    match pane.and_then(|p| p.id.map(|id| (id, p.name))) {
                        // Tagged as the pane unless it already is.
                        Some((id, name))
                            if stored != Some(id) || v.get(1).and_then(str_of) != name =>
                        {
                            to_tag.push((guid.clone(), id, name));
                        }
                        Some(_) => {}
                        None if stored.is_none() => {
                            to_tag.push((guid.clone(), derived_id(guid), None))
                        }
                        None => {}
                    }
                    svar_map.insert(guid.clone(), v);
                }
                // Gone between the listing and now.
                Err(ItermError::SessionNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let tagged = join_all(to_tag.iter().map(|(guid, id, name)| async move {
            let mut vars = vec![(VAR_ID, Value::from(id.to_string()))];
            if let Some(n) = name {
                vars.push((VAR_NAME, Value::from(n.as_str())));
            }
            let r = set_vars(conn, &VariableTarget::Session(guid.clone()), &vars).await;
            (guid.clone(), *id, name.clone(), r)
        }))
        .await;
        for (guid, id, name, r) in tagged {
            match r {
                Ok(()) => {
                    if let Some(v) = svar_map.get_mut(&guid) {
                        if let Some(slot) = v.first_mut() {
                            *slot = Value::from(id.to_string());
                        }
                        if let (Some(n), Some(slot)) = (name, v.get_mut(1)) {
                            *slot = Value::from(n);
                        }
                    }
                }
                Err(ItermError::SessionNotFound(_)) => {
                    svar_map.remove(&guid);
                }
                Err(e) => return Err(e.into()),
            }
        }

        let mut out = ItermLayout::default();
        for w in windows {
            let wid = w.window_id.clone().unwrap_or_default();
            let wv = wvar_map.get(&wid).cloned().unwrap_or_default();
            // A window of a tmux connection belongs to its tmux session's workspace.
            let tagged_ws = wv.first().and_then(str_of).or_else(|| {
                w.tabs
                    .iter()
                    .filter_map(|t| t.root.as_ref())
                    .flat_map(|root| {
                        let mut l = Vec::new();
                        leaves(root, &mut l);
                        l
                    })
                    .find_map(|s| {
                        tmux_session_of
                            .get(s.unique_identifier.as_deref()?)
                            .filter(|n| !n.is_empty())
                            .cloned()
                    })
            });
            let workspace = tagged_ws.clone().unwrap_or_else(|| wid.clone());
            let mut window = ItermWindow {
                id: wid.clone(),
                workspace: workspace.clone(),
                named: tagged_ws.is_some(),
                number: w.number,
                created: wv.get(1).and_then(Value::as_i64),
                scrollback: wv
                    .get(2)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                tabs: Vec::new(),
            };
            for (ti, t) in w.tabs.iter().enumerate() {
                let tid = t.tab_id.clone().unwrap_or_default();
                let mut summaries = Vec::new();
                if let Some(root) = &t.root {
                    leaves(root, &mut summaries);
                }
                let active_guid = t
                    .active_session_id
                    .clone()
                    .or_else(|| summaries.first().and_then(|s| s.unique_identifier.clone()));
                let selected = match &w.selected_tab_id {
                    Some(sel) => *sel == tid,
                    None => ti == 0,
                };
                let tab_name = tvar_map
                    .get(&tid)
                    .and_then(|v| v.first())
                    .and_then(str_of)
                    .or_else(|| {
                        summaries
                            .iter()
                            .find(|s| s.unique_identifier == active_guid)
                            .and_then(|s| s.title.clone())
                    })
                    .unwrap_or_default();
                let mut tab = ItermTab {
                    id: tid.clone(),
                    index: ti as u32,
                    name: tab_name.clone(),
                    selected,
                    tmux_window_id: t.tmux_window_id.clone(),
                    tmux_connection_id: t.tmux_connection_id.clone(),
                    sessions: Vec::new(),
                };
                for (pi, s) in summaries.iter().enumerate() {
                    let Some(guid) = s.unique_identifier.clone() else {
                        continue;
                    };
                    let Some(v) = svar_map.get(&guid) else {
                        continue;
                    };
                    let Some(id) = v
                        .first()
                        .and_then(str_of)
                        .and_then(|s| s.parse::<SessionId>().ok())
                    else {
                        continue;
                    };
                    let path = format!("{workspace}:{ti}.{pi}");
                    let name = v.get(1).and_then(str_of).unwrap_or_else(|| path.clone());
                    let managed = matches!(v.get(2), Some(Value::Bool(true)));
                    let cwd = v.get(3).and_then(str_of);
                    let command = v
                        .get(4)
                        .and_then(str_of)
                        .or_else(|| {
                            v.get(5).and_then(str_of).map(|c| {
                                let first = c.split_whitespace().next().unwrap_or("").to_owned();
                                first.rsplit('/').next().unwrap_or("").to_owned()
                            })
                        })
                        .unwrap_or_default();
                    let pid = v
                        .get(6)
                        .and_then(Value::as_u64)
                        .and_then(|p| u32::try_from(p).ok());
                    let grid = s.grid_size.clone().unwrap_or_default();
                    let dim = |n: Option<i32>| u16::try_from(n.unwrap_or(0).max(0)).unwrap_or(0);
                    tab.sessions.push(SessionInfo {
                        id,
                        name,
                        native: NativeId::iterm(guid.clone()),
                        terminal: self.inner.key.clone(),
                        workspace: workspace.clone(),
                        workspace_id: Some(wid.clone()),
                        window_index: ti as u32,
                        window_name: tab_name.clone(),
                        window_id: Some(tid.clone()),
                        window_active: selected,
                        pane_index: pi as u32,
                        width: dim(grid.width),
                        height: dim(grid.height),
                        title: s.title.clone().unwrap_or_default(),
                        command,
                        cwd,
                        pid,
                        active: active_guid.as_deref() == Some(guid.as_str()),
                        dead: false,
                        managed,
                    });
                }
                window.tabs.push(tab);
            }
            out.windows.push(window);
        }
        Ok(out)
    }

    /// The current description of the session with this GUID.
    pub async fn session_info(&self, guid: &str) -> Result<SessionInfo> {
        self.layout()
            .await?
            .session(guid)
            .cloned()
            .ok_or_else(|| Error::SessionNotFound {
                target: NativeId::iterm(guid).to_string(),
            })
    }

    /// Checks that no live session has this name already.
    pub(crate) async fn ensure_unique_name(
        &self,
        name: &str,
        except: Option<SessionId>,
    ) -> Result<()> {
        let layout = self.layout().await?;
        if let Some(s) = layout
            .sessions()
            .find(|s| s.name == name && Some(s.id) != except)
        {
            return Err(Error::InvalidArgument(format!(
                "a session named '{name}' already exists ({}, {}); pick another name",
                s.id,
                s.path()
            )));
        }
        Ok(())
    }

    /// A handle on a listed session, after checking that the GUID still carries its id.
    pub async fn open_iterm(&self, info: &SessionInfo) -> Result<ItermSession> {
        if info.native.backend != BackendKind::Iterm {
            return Err(Error::InvalidArgument(format!(
                "{} is not an iTerm2 session",
                info.native
            )));
        }
        let guid = info.native.id.clone();
        let conn = self.conn().await?;
        let dead = || Error::SessionDead {
            id: info.id.to_string(),
            name: info.name.clone(),
        };
        let vars = match get_vars(
            &conn,
            &VariableTarget::Session(guid.clone()),
            &[VAR_ID, crate::project::VAR_ROLE, "tmuxRole"],
        )
        .await
        {
            Ok(v) => v,
            Err(ItermError::SessionNotFound(_)) => return Err(dead()),
            Err(e) => return Err(e.into()),
        };
        let stored = vars
            .first()
            .and_then(str_of)
            .and_then(|s| s.parse::<SessionId>().ok());
        match stored {
            Some(id) if id == info.id => {}
            None if derived_id(&guid) == info.id => {
                // Its variables were lost; the GUID still gives the same id: tag it again.
                set_vars(
                    &conn,
                    &VariableTarget::Session(guid.clone()),
                    &[(VAR_ID, Value::from(info.id.to_string()))],
                )
                .await
                .map_err(|e| match e {
                    ItermError::SessionNotFound(_) => dead(),
                    e => e.into(),
                })?;
            }
            _ => {
                return Err(Error::StaleNativeId {
                    id: info.id.to_string(),
                    native: info.native.to_string(),
                });
            }
        }
        // termloom's own tag, or iTerm2's: a `tmux -CC` a person started is a gateway too.
        let gateway = [1, 2].iter().any(|i| {
            vars.get(*i)
                .and_then(str_of)
                .is_some_and(|r| r == "gateway")
        });
        Ok(ItermSession::new(
            self.clone(),
            info.id,
            guid,
            info.name.clone(),
            gateway,
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Creating
    // -----------------------------------------------------------------------------------------

    /// Creates a tab in `window` (a new window when `None`), without stealing focus unless
    /// `select`.
    pub(crate) async fn create_tab_raw(
        &self,
        conn: &Connection,
        window: Option<&str>,
        opts: &ItermCreate,
        cwd: Option<&Path>,
    ) -> Result<Created> {
        let select = opts.select;
        let previous = if window.is_none() && !select {
            key_window(conn).await
        } else {
            None
        };
        let request = proto::CreateTabRequest {
            window_id: window.map(str::to_owned),
            profile_name: opts.profile.clone(),
            custom_profile_properties: launch_properties(cwd, opts)?,
            select_tab: Some(select),
            ..Default::default()
        };
        let r = conn.create_tab(request).await.map_err(|e| match e {
            ItermError::Rpc { status, .. } if status == "INVALID_WINDOW_ID" => {
                Error::WorkspaceNotFound(window.unwrap_or_default().to_owned())
            }
            ItermError::Rpc { status, .. } if profile_error(&status, opts).is_some() => {
                profile_error(&status, opts).unwrap_or(Error::InvalidArgument(status))
            }
            e => e.into(),
        })?;
        let session = r.session_id.clone().ok_or_else(|| {
            Error::backend(
                BackendKind::Iterm,
                "iTerm2 created a tab but did not name its session",
            )
        })?;
        if window.is_none()
            && !select
            && let Some(w) = &r.window_id
        {
            restore_key_window(conn, previous, w).await;
        }
        Ok(Created {
            window: r.window_id.clone(),
            tab: r.tab_id.map(|t| t.to_string()),
            session,
        })
    }

    /// Splits `guid`; returns the new session's GUID. Inside a `tmux -CC` tab iTerm2 does not
    /// name the new session; it is then found in the listing.
    pub(crate) async fn split_raw(
        &self,
        conn: &Connection,
        guid: &str,
        direction: Direction,
        before: bool,
        opts: &ItermCreate,
        cwd: Option<&Path>,
    ) -> Result<String> {
        use proto::split_pane_request::SplitDirection;
        // core's Horizontal = side by side = iTerm2's vertical divider.
        let dir = match direction {
            Direction::Horizontal => SplitDirection::Vertical,
            Direction::Vertical => SplitDirection::Horizontal,
        };
        let tab_before = self.tab_sessions(conn, guid).await?;
        let request = proto::SplitPaneRequest {
            session: Some(guid.to_owned()),
            split_direction: Some(dir as i32),
            before: Some(before),
            profile_name: opts.profile.clone(),
            custom_profile_properties: launch_properties(cwd, opts)?,
        };
        let r = match conn.call(Req::SplitPaneRequest(request)).await? {
            Rep::SplitPaneResponse(r) => r,
            other => {
                return Err(Error::backend(
                    BackendKind::Iterm,
                    format!(
                        "the SplitPane request was answered with a {} reply",
                        other.kind()
                    ),
                ));
            }
        };
        let status =
            proto::enum_name::<proto::split_pane_response::Status>(r.status.unwrap_or_default());
        match status.as_str() {
            "OK" => {}
            "SESSION_NOT_FOUND" => {
                return Err(Error::SessionNotFound {
                    target: NativeId::iterm(guid).to_string(),
                });
            }
            other if profile_error(other, opts).is_some() => {
                return Err(profile_error(other, opts)
                    .unwrap_or_else(|| Error::InvalidArgument(other.to_owned())));
            }
            "CANNOT_SPLIT" => {
                return Err(Error::InvalidArgument(format!(
                    "iTerm2 cannot split session {guid}: the pane is too small"
                )));
            }
            other => {
                return Err(Error::backend(
                    BackendKind::Iterm,
                    format!("splitting {guid} failed: {other}"),
                ));
            }
        }
        if let Some(new) = r.session_id.into_iter().next() {
            return Ok(new);
        }
        // A split through tmux: the new session shows up in the layout a little later.
        let deadline = tokio::time::Instant::now() + SPLIT_DISCOVERY;
        loop {
            let now = self.tab_sessions(conn, guid).await?;
            if let Some(new) = now.into_iter().find(|s| !tab_before.contains(s)) {
                return Ok(new);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    op: format!("the session created by splitting {guid}"),
                    after: SPLIT_DISCOVERY,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GUIDs of the sessions in the tab holding `guid` (raw listing, no variables).
    async fn tab_sessions(&self, conn: &Connection, guid: &str) -> Result<HashSet<String>> {
        let list = conn.list_sessions().await?;
        for w in &list.windows {
            for t in &w.tabs {
                let mut ids = Vec::new();
                if let Some(root) = &t.root {
                    root.collect_session_ids(&mut ids);
                }
                if ids.iter().any(|i| i == guid) {
                    return Ok(ids.into_iter().collect());
                }
            }
        }
        Err(Error::SessionNotFound {
            target: NativeId::iterm(guid).to_string(),
        })
    }

    /// Tags a session termloom just created: id, managed flag, name.
    pub(crate) async fn prepare(
        &self,
        conn: &Connection,
        guid: &str,
        name: Option<&str>,
    ) -> Result<SessionId> {
        let id = derived_id(guid);
        let mut vars = vec![
            (VAR_ID, Value::from(id.to_string())),
            (VAR_MANAGED, Value::Bool(true)),
        ];
        if let Some(n) = name {
            vars.push((VAR_NAME, Value::from(n)));
        }
        set_vars(conn, &VariableTarget::Session(guid.to_owned()), &vars).await?;
        if let Some(n) = name {
            conn.set_profile_property(guid, "Name", &Value::from(n).to_string())
                .await?;
        }
        Ok(id)
    }

    /// Types a command line into a session's shell, then Enter.
    pub(crate) async fn type_command(
        &self,
        conn: &Connection,
        guid: &str,
        command: &str,
    ) -> Result<()> {
        crate::session::send_text_to(conn, guid, command, true).await
    }

    /// Creates a session in workspace `ws` (a new window when missing). When the workspace
    /// exists: splits the window (tab) named `split_window` when there is one, else opens a new
    /// tab. A new tab is named `window`.
    async fn new_session_in(
        &self,
        conn: &Connection,
        ws: &str,
        (split_window, window): (Option<&str>, Option<&str>),
        opts: &ItermCreate,
        cwd: Option<&Path>,
        scrollback: Option<u32>,
    ) -> Result<String> {
        let layout = self.layout().await?;
        let created = match layout.workspace(ws) {
            None => {
                check_workspace_name(ws)?;
                let c = self.create_tab_raw(conn, None, opts, cwd).await?;
                if let Some(w) = &c.window {
                    let mut vars = vec![
                        (VAR_WORKSPACE, Value::from(ws)),
                        (VAR_CREATED, Value::from(now_unix())),
                    ];
                    if let Some(n) = scrollback {
                        vars.push((VAR_SCROLLBACK, Value::from(n)));
                    }
                    set_vars(conn, &VariableTarget::Window(w.clone()), &vars).await?;
                }
                c
            }
            Some(win) => {
                let existing =
                    split_window.and_then(|name| win.tabs.iter().find(|t| t.name == name));
                match existing {
                    Some(tab) => {
                        let active = tab
                            .sessions
                            .iter()
                            .find(|s| s.active)
                            .or_else(|| tab.sessions.first())
                            .ok_or_else(|| Error::WindowNotFound(format!("{ws}:{}", tab.name)))?;
                        let guid = self
                            .split_raw(
                                conn,
                                &active.native.id,
                                Direction::Vertical,
                                false,
                                opts,
                                cwd,
                            )
                            .await?;
                        return Ok(guid);
                    }
                    None => {
                        let c = self.create_tab_raw(conn, Some(&win.id), opts, cwd).await?;
                        if let Some(n) = scrollback.or(win.scrollback) {
                            self.set_scrollback_of(conn, &c.session, n).await?;
                        }
                        c
                    }
                }
            }
        };
        if let (Some(tab), Some(name)) = (&created.tab, window) {
            set_vars(
                conn,
                &VariableTarget::Tab(tab.clone()),
                &[(VAR_WINDOW, Value::from(name))],
            )
            .await?;
        }
        if let Some(n) = scrollback {
            self.set_scrollback_of(conn, &created.session, n).await?;
        }
        Ok(created.session)
    }

    async fn set_scrollback_of(&self, conn: &Connection, guid: &str, lines: u32) -> Result<()> {
        conn.set_profile_property(guid, "Scrollback Lines", &Value::from(lines).to_string())
            .await?;
        Ok(())
    }

    fn refuse_env(env: &[(String, String)]) -> Result<()> {
        if env.is_empty() {
            Ok(())
        } else {
            Err(Error::unsupported(
                BackendKind::Iterm,
                "set environment variables for a new session",
                "iTerm2 starts sessions from a profile and its API cannot add environment variables; export them in the shell instead",
            ))
        }
    }

    fn refuse_size(size: Option<(u16, u16)>) -> Result<()> {
        match size {
            None => Ok(()),
            Some(_) => Err(Error::unsupported(
                BackendKind::Iterm,
                "size new windows",
                "iTerm2 sizes windows from the profile; termloom does not model its window-frame request",
            )),
        }
    }

    async fn find_tab(&self, w: &WindowRef) -> Result<(ItermWindow, ItermTab)> {
        let layout = self.layout().await?;
        let win = layout
            .workspace(&w.workspace)
            .ok_or_else(|| Error::WorkspaceNotFound(w.workspace.clone()))?;
        let found: Vec<&ItermTab> = win
            .tabs
            .iter()
            .filter(|t| w.window.matches(t.index, &t.name))
            .collect();
        match found.as_slice() {
            [one] => Ok((win.clone(), (*one).clone())),
            [] => Err(Error::WindowNotFound(w.to_string())),
            many => Err(Error::AmbiguousTarget {
                target: w.to_string(),
                candidates: many
                    .iter()
                    .map(|t| format!("{}:{} (tab {})", win.workspace, t.index, t.id))
                    .collect(),
            }),
        }
    }

    pub(crate) async fn close_target(
        &self,
        target: proto::close_request::Target,
        what: &str,
    ) -> Result<()> {
        let conn = self.conn().await?;
        let statuses = conn.close(target, true).await?;
        for s in statuses {
            match s {
                proto::close_response::Status::Ok => {}
                proto::close_response::Status::NotFound => {
                    return Err(Error::backend(
                        BackendKind::Iterm,
                        format!("{what} is already gone"),
                    ));
                }
                proto::close_response::Status::UserDeclined => {
                    return Err(Error::backend(
                        BackendKind::Iterm,
                        format!("the user declined to close {what}"),
                    ));
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // iTerm2-only operations
    // -----------------------------------------------------------------------------------------

    /// Sets a `user.` variable on a session, tab or window (or the app). `value` is any JSON.
    pub async fn set_variable(
        &self,
        target: &VariableTarget,
        name: &str,
        value: &Value,
    ) -> Result<()> {
        if !name.starts_with("user.") {
            return Err(Error::InvalidArgument(format!(
                "iTerm2 only lets clients set variables whose names start with 'user.', not '{name}'"
            )));
        }
        let conn = self.conn().await?;
        set_vars(&conn, target, &[(name, value.clone())]).await?;
        Ok(())
    }

    /// Reads a variable (any name iTerm2 knows, e.g. `path`, `jobName`, `user.x`); `Null` when
    /// unset.
    pub async fn get_variable(&self, target: &VariableTarget, name: &str) -> Result<Value> {
        let conn = self.conn().await?;
        let v = get_vars(&conn, target, &[name]).await?;
        Ok(v.into_iter().next().unwrap_or(Value::Null))
    }

    /// Sets profile properties of one session (e.g. `"Background Color"` with
    /// [`color`](crate::session::color)); values are JSON.
    pub async fn set_profile_properties(
        &self,
        session: &SessionInfo,
        properties: &[(&str, Value)],
    ) -> Result<()> {
        let s = self.open_iterm(session).await?;
        s.set_profile_properties(properties).await
    }

    /// [`Terminal::create_session`] with a profile, profile properties, or in the foreground.
    pub async fn create_session_with(
        &self,
        spec: &SessionSpec,
        opts: &ItermCreate,
    ) -> Result<SessionInfo> {
        if let Some(n) = &spec.name {
            check_session_name(n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if let Some(w) = &spec.window {
            check_name("window", w)?;
        }
        Self::refuse_env(&spec.env)?;
        Self::refuse_size(spec.size)?;
        let conn = self.conn().await?;
        let ws = spec.workspace.as_deref().unwrap_or(DEFAULT_WORKSPACE);
        let name = spec.name.as_deref();
        let window_name = spec.window.as_deref().or(name);
        let guid = self
            .new_session_in(
                &conn,
                ws,
                (spec.window.as_deref(), window_name),
                opts,
                spec.cwd.as_deref(),
                None,
            )
            .await?;
        self.prepare(&conn, &guid, name).await?;
        if let Some(c) = &spec.command {
            self.type_command(&conn, &guid, c).await?;
        }
        if opts.select {
            conn.activate_session(&guid).await?;
        }
        self.session_info(&guid).await
    }

    /// The `tmux -CC` integration connections and their gateway sessions.
    pub async fn tmux_connections(&self) -> Result<Vec<TmuxConnection>> {
        let conn = self.conn().await?;
        let list = conn.tmux_list_connections().await?;
        let layout = self.layout().await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.connection_id?;
                let gateway = c
                    .owning_session_id
                    .as_deref()
                    .and_then(|g| layout.session(g))
                    .cloned();
                Some(TmuxConnection {
                    connection_id: id,
                    gateway_native: c.owning_session_id,
                    gateway,
                })
            })
            .collect())
    }

    /// The session running `tmux -CC` for a connection.
    pub async fn tmux_gateway(&self, connection_id: &str) -> Result<SessionInfo> {
        self.tmux_connections()
            .await?
            .into_iter()
            .find(|c| c.connection_id == connection_id)
            .ok_or_else(|| no_tmux_connection(connection_id))?
            .gateway
            .ok_or_else(|| {
                Error::backend(
                    BackendKind::Iterm,
                    format!("tmux connection {connection_id} has no listed gateway session"),
                )
            })
    }

    /// Runs a tmux command over a connection and returns its output (`%error` is an error).
    pub async fn tmux_send_command(&self, connection_id: &str, command: &str) -> Result<String> {
        let conn = self.conn().await?;
        conn.tmux_send_command(connection_id, command)
            .await
            .map_err(|e| tmux_error(e, connection_id))
    }

    /// Creates a tmux window through iTerm2 (shown as a new tab; `affinity`: a window id to put
    /// it in). Its first session is tagged and returned once it is listed.
    pub async fn tmux_create_window(
        &self,
        connection_id: &str,
        affinity: Option<&str>,
    ) -> Result<TmuxWindow> {
        let conn = self.conn().await?;
        let tab_id = conn
            .tmux_create_window(connection_id, affinity)
            .await
            .map_err(|e| tmux_error(e, connection_id))?;
        let session = match &tab_id {
            Some(t) => {
                let deadline = tokio::time::Instant::now() + SPLIT_DISCOVERY;
                loop {
                    let layout = self.layout().await?;
                    let found = layout.windows.iter().find_map(|w| {
                        w.tabs
                            .iter()
                            .find(|tab| tab.id == *t)
                            .and_then(|tab| tab.sessions.first().cloned())
                    });
                    if found.is_some() || tokio::time::Instant::now() >= deadline {
                        break found;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            None => None,
        };
        Ok(TmuxWindow { tab_id, session })
    }

    /// Detaches a tmux integration connection (sends `detach-client` over it, so nothing is
    /// focused); its tabs close.
    pub async fn tmux_detach(&self, connection_id: &str) -> Result<()> {
        let conn = self.conn().await?;
        let known = conn.tmux_list_connections().await?;
        if !known
            .iter()
            .any(|c| c.connection_id.as_deref() == Some(connection_id))
        {
            return Err(no_tmux_connection(connection_id));
        }
        // tmux may end the connection before it answers; that is the expected outcome.
        if let Err(e) = conn.tmux_send_command(connection_id, "detach-client").await {
            tracing::debug!(error = %e, "detach-client answered with an error");
        }
        Ok(())
    }

    /// Invokes a menu item by identifier (e.g. `tmux.Detach`, `tmux.New Tmux Window`), or with
    /// `query_only` just reports its state. Menu items act on the active session.
    pub async fn menu_item(&self, identifier: &str, query_only: bool) -> Result<MenuItemState> {
        let conn = self.conn().await?;
        let r = conn
            .menu_item(identifier, query_only)
            .await
            .map_err(|e| match e {
                ItermError::Rpc { status, .. } if status.starts_with("BAD_IDENTIFIER") => {
                    Error::InvalidArgument(format!("iTerm2 has no menu item '{identifier}'"))
                }
                ItermError::Rpc { status, .. } if status.starts_with("DISABLED") => {
                    Error::InvalidArgument(format!(
                        "menu item '{identifier}' is disabled right now"
                    ))
                }
                e => e.into(),
            })?;
        Ok(MenuItemState {
            enabled: r.enabled.unwrap_or(false),
            checked: r.checked.unwrap_or(false),
        })
    }

    /// Events from iTerm2's new-session, terminate-session and layout-change notifications. The
    /// first call subscribes (once per terminal); every receiver sees events from its creation
    /// on. New sessions are tagged with their termloom id as they appear.
    pub async fn events(&self) -> Result<broadcast::Receiver<ItermEvent>> {
        let rx = self.inner.events.subscribe();
        if lock(&self.inner.watcher).is_some() {
            return Ok(rx);
        }
        let conn = self.conn().await?;
        let mut notes = conn.notifications();
        for kind in [
            NotificationType::NotifyOnNewSession,
            NotificationType::NotifyOnTerminateSession,
            NotificationType::NotifyOnLayoutChange,
        ] {
            conn.subscribe(kind, None).await?;
        }
        let initial = conn.list_sessions().await?;
        let mut guard = lock(&self.inner.watcher);
        if guard.is_some() {
            return Ok(rx);
        }
        let tx = self.inner.events.clone();
        *guard = Some(tokio::spawn(async move {
            let mut known = Shape::of(&initial);
            loop {
                let n = match notes.recv().await {
                    Ok(n) => n,
                    Err(broadcast::error::RecvError::Lagged(k)) => {
                        let _ = tx.send(ItermEvent::Lagged(k));
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if let Some(guid) = n
                    .new_session_notification
                    .as_ref()
                    .and_then(|s| s.session_id.clone())
                {
                    tag_if_untagged(&conn, &guid).await;
                    let _ = tx.send(ItermEvent::SessionCreated { native: guid });
                }
                if let Some(guid) = n
                    .terminate_session_notification
                    .as_ref()
                    .and_then(|s| s.session_id.clone())
                {
                    let _ = tx.send(ItermEvent::SessionTerminated { native: guid });
                }
                if let Some(list) = n
                    .layout_changed_notification
                    .as_ref()
                    .and_then(|l| l.list_sessions_response.as_ref())
                {
                    let now = Shape::of(list);
                    for ev in known.diff(&now) {
                        let _ = tx.send(ev);
                    }
                    known = now;
                    let _ = tx.send(ItermEvent::LayoutChanged);
                }
            }
        }));
        Ok(rx)
    }
}

/// Windows and tabs of a listing, for telling what appeared and went.
#[derive(Default)]
struct Shape {
    windows: Vec<String>,
    tabs: Vec<(String, String, Option<String>, Option<String>)>,
}

impl Shape {
    fn of(list: &proto::ListSessionsResponse) -> Self {
        let mut s = Shape::default();
        for w in &list.windows {
            let wid = w.window_id.clone().unwrap_or_default();
            s.windows.push(wid.clone());
            for t in &w.tabs {
                s.tabs.push((
                    wid.clone(),
                    t.tab_id.clone().unwrap_or_default(),
                    t.tmux_window_id.clone(),
                    t.tmux_connection_id.clone(),
                ));
            }
        }
        s
    }

    fn diff(&self, now: &Shape) -> Vec<ItermEvent> {
        let mut out = Vec::new();
        for w in &now.windows {
            if !self.windows.contains(w) {
                out.push(ItermEvent::WindowCreated {
                    window_id: w.clone(),
                });
            }
        }
        for (w, t, tw, tc) in &now.tabs {
            if !self.tabs.iter().any(|x| x.1 == *t) {
                out.push(ItermEvent::TabCreated {
                    window_id: w.clone(),
                    tab_id: t.clone(),
                    tmux_window_id: tw.clone(),
                    tmux_connection_id: tc.clone(),
                });
            }
        }
        for (_, t, _, _) in &self.tabs {
            if !now.tabs.iter().any(|x| x.1 == *t) {
                out.push(ItermEvent::TabClosed { tab_id: t.clone() });
            }
        }
        for w in &self.windows {
            if !now.windows.contains(w) {
                out.push(ItermEvent::WindowClosed {
                    window_id: w.clone(),
                });
            }
        }
        out
    }
}

async fn tag_if_untagged(conn: &Connection, guid: &str) {
    let target = VariableTarget::Session(guid.to_owned());
    let tagged = get_vars(conn, &target, &[VAR_ID])
        .await
        .ok()
        .and_then(|v| v.first().and_then(str_of))
        .is_some_and(|s| s.parse::<SessionId>().is_ok());
    if !tagged {
        let id = derived_id(guid);
        if let Err(e) = set_vars(conn, &target, &[(VAR_ID, Value::from(id.to_string()))]).await {
            tracing::debug!(error = %e, session = guid, "tagging a new session");
        }
    }
}

fn no_tmux_connection(connection_id: &str) -> Error {
    Error::InvalidArgument(format!(
        "there is no tmux integration connection '{connection_id}' (list them with tmux_connections)"
    ))
}

fn tmux_error(e: ItermError, connection_id: &str) -> Error {
    match e {
        ItermError::Rpc { status, .. } if status == "INVALID_CONNECTION_ID" => {
            no_tmux_connection(connection_id)
        }
        e => e.into(),
    }
}

#[async_trait]
impl Terminal for ItermTerminal {
    fn kind(&self) -> BackendKind {
        BackendKind::Iterm
    }

    fn key(&self) -> TerminalKey {
        self.inner.key.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let note = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        Capabilities {
            workspaces: true,
            windows: true,
            layouts: true,
            resize: false,
            scrollback_config: false,
            run: true,
            monitor: true,
            cursor_reads: true,
            shell_integration: false,
            notes: vec![
                note(
                    "resize",
                    "iTerm2 sizes split panes itself; its API can only change a session's grid or a window's frame through SetProperty, which termloom does not model",
                ),
                note(
                    "layouts",
                    "iTerm2 splits panes evenly: layout percentages are ignored",
                ),
                note(
                    "scrollback_config",
                    "setting works (the 'Scrollback Lines' profile property of every session in the workspace); reading works only after termloom set it, since iTerm2 keeps it in the profile",
                ),
                note(
                    "run",
                    "exact with iTerm2 shell integration (OSC 133 prompt marks); without it, POSIX shells get a marker printed after the command, other programs need `prompt` or `quiet`",
                ),
                note(
                    "shell_integration",
                    "termloom does not install it: use iTerm2 › Install Shell Integration",
                ),
                note(
                    "env",
                    "new sessions cannot get extra environment variables through iTerm2's API",
                ),
                note(
                    "ansi",
                    "iTerm2's buffer API returns text without colours, so reads never carry ANSI sequences",
                ),
            ],
        }
    }

    async fn list_sessions(&self) -> Result<Vec<SessionInfo>> {
        Ok(self.layout().await?.sessions().cloned().collect())
    }

    fn project_host(&self) -> Option<&dyn termloom_core::project::ProjectHost> {
        Some(self)
    }

    async fn set_workspace_tag(
        &self,
        workspace: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        termloom_core::project::check_tag_key(key)?;
        let layout = self.layout().await?;
        let win = layout
            .workspace(workspace)
            .ok_or_else(|| Error::WorkspaceNotFound(workspace.to_owned()))?;
        let conn = self.conn().await?;
        let var = crate::project::tag_variable(key);
        let mut vars = vec![(
            var.as_str(),
            value.map(Value::from).unwrap_or(Value::from("")),
        )];
        if key == termloom_core::project::TAG_PROJECT {
            vars.push((
                crate::project::VAR_PROJECT_MANAGED,
                Value::Bool(value.is_some()),
            ));
        }
        set_vars(&conn, &VariableTarget::Window(win.id.clone()), &vars).await?;
        Ok(())
    }

    async fn workspace_tags(
        &self,
        workspace: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let layout = self.layout().await?;
        let win = layout
            .workspace(workspace)
            .ok_or_else(|| Error::WorkspaceNotFound(workspace.to_owned()))?;
        let conn = self.conn().await?;
        let keys = [
            termloom_core::project::TAG_PROJECT,
            termloom_core::project::TAG_PANES,
        ];
        let names: Vec<String> = keys
            .iter()
            .map(|k| crate::project::tag_variable(k))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let values = get_vars(&conn, &VariableTarget::Window(win.id.clone()), &refs).await?;
        Ok(keys
            .iter()
            .zip(values)
            .filter_map(|(k, v)| str_of(&v).map(|v| ((*k).to_owned(), v)))
            .collect())
    }

    async fn attach_plan(
        &self,
        workspace: &str,
        opts: &termloom_core::project::AttachOpts,
    ) -> Result<termloom_core::project::AttachPlan> {
        self.attach_tmux(workspace, opts).await
    }

    async fn detach_workspace(&self, workspace: &str) -> Result<usize> {
        let _ = workspace;
        Err(Error::unsupported(
            BackendKind::Iterm,
            "detach windows",
            "iTerm2 windows have no detach, and closing one kills its processes",
        ))
    }

    async fn open(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        Ok(Arc::new(self.open_iterm(info).await?))
    }

    async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo> {
        self.create_session_with(spec, &ItermCreate::default())
            .await
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceInfo>> {
        Ok(self
            .layout()
            .await?
            .windows
            .into_iter()
            .map(|w| WorkspaceInfo {
                name: w.workspace,
                native: w.id,
                windows: w.tabs.len() as u32,
                attached: true,
                created: w.created.unwrap_or(0),
            })
            .collect())
    }

    async fn create_workspace(&self, spec: &WorkspaceSpec) -> Result<SessionInfo> {
        check_workspace_name(&spec.name)?;
        if let Some(n) = &spec.session_name {
            check_session_name(n)?;
        }
        if let Some(w) = &spec.window {
            check_name("window", w)?;
        }
        Self::refuse_env(&spec.env)?;
        Self::refuse_size(spec.size)?;
        let layout = self.layout().await?;
        if layout.workspace(&spec.name).is_some() {
            return Err(Error::InvalidArgument(format!(
                "a workspace named '{}' already exists",
                spec.name
            )));
        }
        if let Some(n) = &spec.session_name
            && let Some(s) = layout.sessions().find(|s| s.name == *n)
        {
            return Err(Error::InvalidArgument(format!(
                "a session named '{n}' already exists ({}, {}); pick another name",
                s.id,
                s.path()
            )));
        }
        let conn = self.conn().await?;
        let guid = self
            .new_session_in(
                &conn,
                &spec.name,
                (None, spec.window.as_deref()),
                &ItermCreate::default(),
                spec.cwd.as_deref(),
                spec.history_limit,
            )
            .await?;
        self.prepare(&conn, &guid, spec.session_name.as_deref())
            .await?;
        self.session_info(&guid).await
    }

    async fn destroy_workspace(&self, name: &str) -> Result<()> {
        let layout = self.layout().await?;
        let win = layout
            .workspace(name)
            .ok_or_else(|| Error::WorkspaceNotFound(name.to_owned()))?;
        self.close_target(
            proto::close_request::Target::Windows(proto::close_request::CloseWindows {
                window_ids: vec![win.id.clone()],
            }),
            &format!("workspace '{name}'"),
        )
        .await
    }

    async fn list_windows(&self, workspace: Option<&str>) -> Result<Vec<WindowInfo>> {
        let layout = self.layout().await?;
        let windows: Vec<&ItermWindow> = match workspace {
            Some(ws) => vec![
                layout
                    .workspace(ws)
                    .ok_or_else(|| Error::WorkspaceNotFound(ws.to_owned()))?,
            ],
            None => layout.windows.iter().collect(),
        };
        Ok(windows
            .into_iter()
            .flat_map(|w| {
                w.tabs.iter().map(|t| WindowInfo {
                    workspace: w.workspace.clone(),
                    index: t.index,
                    name: t.name.clone(),
                    native: t.id.clone(),
                    panes: t.sessions.len() as u32,
                    active: t.selected,
                    layout: None,
                })
            })
            .collect())
    }

    async fn create_window(&self, spec: &WindowSpec) -> Result<SessionInfo> {
        if let Some(n) = &spec.session_name {
            check_session_name(n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if let Some(n) = &spec.name {
            check_name("window", n)?;
        }
        let layout = self.layout().await?;
        let win = layout
            .workspace(&spec.workspace)
            .ok_or_else(|| Error::WorkspaceNotFound(spec.workspace.clone()))?;
        let conn = self.conn().await?;
        let created = self
            .create_tab_raw(
                &conn,
                Some(&win.id),
                &ItermCreate {
                    select: spec.select,
                    ..Default::default()
                },
                spec.cwd.as_deref(),
            )
            .await?;
        if let (Some(tab), Some(name)) = (&created.tab, &spec.name) {
            set_vars(
                &conn,
                &VariableTarget::Tab(tab.clone()),
                &[(VAR_WINDOW, Value::from(name.as_str()))],
            )
            .await?;
        }
        if let Some(n) = win.scrollback {
            self.set_scrollback_of(&conn, &created.session, n).await?;
        }
        self.prepare(&conn, &created.session, spec.session_name.as_deref())
            .await?;
        if let Some(c) = &spec.command {
            self.type_command(&conn, &created.session, c).await?;
        }
        self.session_info(&created.session).await
    }

    async fn kill_window(&self, window: &WindowRef) -> Result<()> {
        let (_, tab) = self.find_tab(window).await?;
        self.close_target(
            proto::close_request::Target::Tabs(proto::close_request::CloseTabs {
                tab_ids: vec![tab.id.clone()],
            }),
            &format!("window {window}"),
        )
        .await
    }

    async fn rename_window(&self, window: &WindowRef, name: &str) -> Result<()> {
        check_name("window", name)?;
        let (_, tab) = self.find_tab(window).await?;
        let conn = self.conn().await?;
        set_vars(
            &conn,
            &VariableTarget::Tab(tab.id.clone()),
            &[(VAR_WINDOW, Value::from(name))],
        )
        .await?;
        Ok(())
    }

    async fn select_window(&self, window: &WindowRef) -> Result<()> {
        let (_, tab) = self.find_tab(window).await?;
        let conn = self.conn().await?;
        conn.activate(proto::ActivateRequest {
            select_tab: Some(true),
            identifier: Some(proto::activate_request::Identifier::TabId(tab.id.clone())),
            ..Default::default()
        })
        .await?;
        Ok(())
    }

    async fn scrollback(&self, workspace: &str, lines: Option<u32>) -> Result<u32> {
        let layout = self.layout().await?;
        let win = layout
            .workspace(workspace)
            .ok_or_else(|| Error::WorkspaceNotFound(workspace.to_owned()))?;
        let Some(n) = lines else {
            return win.scrollback.ok_or_else(|| {
                Error::unsupported(
                    BackendKind::Iterm,
                    "read the scrollback size",
                    "iTerm2 keeps it in the profile ('Scrollback Lines'), which termloom cannot read; set it first",
                )
            });
        };
        if n == 0 || n > 10_000_000 {
            return Err(Error::InvalidArgument(format!(
                "scrollback must be 1..=10000000 lines, got {n}"
            )));
        }
        let conn = self.conn().await?;
        for tab in &win.tabs {
            for s in &tab.sessions {
                self.set_scrollback_of(&conn, &s.native.id, n).await?;
            }
        }
        set_vars(
            &conn,
            &VariableTarget::Window(win.id.clone()),
            &[(VAR_SCROLLBACK, Value::from(n))],
        )
        .await?;
        Ok(n)
    }

    async fn apply_layout(
        &self,
        layout: &Layout,
        placement: &LayoutPlacement,
    ) -> Result<Vec<(String, SessionInfo)>> {
        let plan = layout.plan()?;
        for (_, p) in &plan.panes {
            check_session_name(&p.name)?;
        }
        let existing = self.layout().await?;
        for (_, p) in &plan.panes {
            if let Some(s) = existing.sessions().find(|s| s.name == p.name) {
                return Err(Error::InvalidArgument(format!(
                    "a session named '{}' already exists ({}); pick other pane names",
                    p.name, s.id
                )));
            }
        }
        let spec_of = |slot: usize| plan.panes.iter().find(|(s, _)| *s == slot).map(|(_, p)| p);
        let cwd_of = |slot: usize| {
            spec_of(slot)
                .and_then(|p| p.cwd.clone())
                .or_else(|| placement.cwd.clone())
        };
        let ws = placement
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
        let window_name = placement
            .window
            .clone()
            .or_else(|| spec_of(0).map(|p| p.name.clone()));
        if let Some(w) = &window_name {
            check_name("window", w)?;
        }
        let conn = self.conn().await?;
        let first = match existing.workspace(&ws) {
            Some(win) => {
                let c = self
                    .create_tab_raw(
                        &conn,
                        Some(&win.id),
                        &ItermCreate::default(),
                        cwd_of(0).as_deref(),
                    )
                    .await?;
                if let Some(n) = win.scrollback {
                    self.set_scrollback_of(&conn, &c.session, n).await?;
                }
                c
            }
            None => {
                check_workspace_name(&ws)?;
                let c = self
                    .create_tab_raw(&conn, None, &ItermCreate::default(), cwd_of(0).as_deref())
                    .await?;
                if let Some(w) = &c.window {
                    set_vars(
                        &conn,
                        &VariableTarget::Window(w.clone()),
                        &[
                            (VAR_WORKSPACE, Value::from(ws.as_str())),
                            (VAR_CREATED, Value::from(now_unix())),
                        ],
                    )
                    .await?;
                }
                c
            }
        };
        let cwds: Vec<Option<PathBuf>> = (0..plan.panes.len()).map(cwd_of).collect();
        let built = self
            .build_splits(&conn, &plan, &first, window_name.as_deref(), &cwds)
            .await;
        let slots = match built {
            Ok(s) => s,
            Err(e) => {
                // Leave nothing half-built behind.
                if let Some(tab) = &first.tab {
                    let _ = conn
                        .close(
                            proto::close_request::Target::Tabs(proto::close_request::CloseTabs {
                                tab_ids: vec![tab.clone()],
                            }),
                            true,
                        )
                        .await;
                }
                return Err(e);
            }
        };
        for (slot, spec) in &plan.panes {
            if let Some(c) = &spec.command {
                self.type_command(&conn, &slots[*slot], c).await?;
            }
        }
        if let Some((slot, _)) = plan.panes.iter().find(|(_, p)| p.focus) {
            conn.activate(proto::ActivateRequest {
                select_session: Some(true),
                identifier: Some(proto::activate_request::Identifier::SessionId(
                    slots[*slot].clone(),
                )),
                ..Default::default()
            })
            .await?;
        }
        let listed = self.layout().await?;
        let mut out = Vec::new();
        for (slot, spec) in &plan.panes {
            let info = listed.session(&slots[*slot]).cloned().ok_or_else(|| {
                Error::backend(
                    BackendKind::Iterm,
                    format!(
                        "session {} vanished while building the layout",
                        slots[*slot]
                    ),
                )
            })?;
            out.push((spec.name.clone(), info));
        }
        Ok(out)
    }
}

impl ItermTerminal {
    /// Splits the first session of a layout into every slot and names the sessions.
    async fn build_splits(
        &self,
        conn: &Connection,
        plan: &termloom_core::LayoutPlan,
        first: &Created,
        window_name: Option<&str>,
        cwds: &[Option<PathBuf>],
    ) -> Result<Vec<String>> {
        if let (Some(tab), Some(name)) = (&first.tab, window_name) {
            set_vars(
                conn,
                &VariableTarget::Tab(tab.clone()),
                &[(VAR_WINDOW, Value::from(name))],
            )
            .await?;
        }
        let mut slots = vec![first.session.clone()];
        for step in &plan.steps {
            let target = slots.get(step.slot).cloned().ok_or_else(|| {
                Error::InvalidArgument("layout plan refers to a missing pane".into())
            })?;
            let cwd = cwds.get(slots.len()).cloned().flatten();
            let new = self
                .split_raw(
                    conn,
                    &target,
                    step.direction,
                    false,
                    &ItermCreate::default(),
                    cwd.as_deref(),
                )
                .await?;
            slots.push(new);
        }
        for (slot, spec) in &plan.panes {
            let guid = slots.get(*slot).ok_or_else(|| {
                Error::InvalidArgument("layout plan refers to a missing pane".into())
            })?;
            self.prepare(conn, guid, Some(&spec.name)).await?;
        }
        Ok(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_v4_uuids() {
        let a = derived_id("0F3C2B1A-1111-4222-8333-444455556666");
        assert_eq!(a, derived_id("0f3c2b1a-1111-4222-8333-444455556666"));
        assert_ne!(a, derived_id("0F3C2B1A-1111-4222-8333-444455556667"));
        assert_eq!(a.as_uuid().get_version_num(), 4);
        // Pinned: a change here would give every untagged session a new id.
        assert_eq!(a.to_string(), "cf3666dc-3c57-4183-a551-b2988e448de9");
    }

    #[test]
    fn workspace_names_are_checked() {
        assert!(check_workspace_name("work").is_ok());
        assert!(check_workspace_name("a:b").is_err());
        assert!(check_workspace_name("a.b").is_err());
        assert!(check_workspace_name("").is_err());
        assert!(check_session_name(&"x".repeat(300)).is_err());
    }

    #[test]
    fn shapes_diff_into_events() {
        let a = Shape {
            windows: vec!["w1".into()],
            tabs: vec![("w1".into(), "1".into(), None, None)],
        };
        let b = Shape {
            windows: vec!["w1".into(), "w2".into()],
            tabs: vec![("w2".into(), "2".into(), Some("@1".into()), Some("c".into()))],
        };
        let ev = a.diff(&b);
        assert_eq!(
            ev,
            vec![
                ItermEvent::WindowCreated {
                    window_id: "w2".into()
                },
                ItermEvent::TabCreated {
                    window_id: "w2".into(),
                    tab_id: "2".into(),
                    tmux_window_id: Some("@1".into()),
                    tmux_connection_id: Some("c".into())
                },
                ItermEvent::TabClosed { tab_id: "1".into() },
            ]
        );
    }
}
