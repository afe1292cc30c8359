//! A protocol-faithful fake iTerm2, for tests on machines without iTerm2 (feature `fake`).
//!
//! It serves iTerm2's real API on a unix socket: the WebSocket upgrade is validated the way
//! iTerm2 validates it (subprotocol `api.iterm2.com`, localhost origin and host, a two-word
//! `x-iterm2-library-version`), the cookie and key are checked (HTTP 401 otherwise), and the
//! reply carries `X-iTerm2-Protocol-Version`. Behind it is an in-memory model of windows → tabs
//! → split trees → sessions, where every session is a real program on a real pty (by default
//! `bash --norc --noprofile`), rendered by `vt100` into screen and scrollback. So `SendText`
//! really types, `GetBuffer` really reads, and shell-integration marks (OSC 133 A/B/C/D) printed
//! by the shell become real prompt notifications with exit statuses.
//!
//! Supported requests: ListSessions, CreateTab, SplitPane, SendText, Inject, GetBuffer
//! (screen, trailing lines, windowed ranges), Variable (session/tab/window/app, `all`/`active`),
//! Notification (new/terminate session, layout, screen update, prompt, variable, focus; other
//! kinds are accepted and never fire), GetPrompt, ListPrompts, Activate, Close, Focus, MenuItem
//! (`tmux.*`), SetProfileProperty, GetBroadcastDomains and Tmux (list_connections,
//! send_command, create_window, set_window_visible). Anything else gets the protocol's `error`
//! reply.
//!
//! Fidelity limits are listed in `tests/iterm_fake/README.md` at the workspace root; the main
//! ones: no keyboard (keystroke notifications never fire), one profile (`Default`), no pixels
//! (frames are derived from cell counts), and `force: false` never asks the user. tmux
//! integration is real: a session that prints `ESC P1000p` (what `tmux -CC` prints) becomes a
//! gateway whose commands travel over its pty to the real tmux, and the attached session's
//! windows are mirrored from tmux's notifications (`%window-add`, `%window-close`,
//! `%layout-change`, `%output`) as iTerm2 windows whose sessions type through `send-keys`.

mod server;
mod session;
mod state;
mod term;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use server::FakeIterm;

/// How to run a [`FakeIterm`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Where to listen. Parent folders are created; a stale socket file is replaced.
    pub socket_path: PathBuf,
    /// The cookie clients must send; `None` accepts clients without credentials.
    pub cookie: Option<String>,
    /// The key clients must send with the cookie (`None`: any key).
    pub key: Option<String>,
    /// Program and arguments for new sessions.
    pub shell: Vec<String>,
    /// Extra environment for sessions (on top of the server's own).
    pub env: Vec<(String, String)>,
    /// Working directory for sessions (the server's own when unset).
    pub cwd: Option<PathBuf>,
    /// Size of a new window, in cells (columns, rows).
    pub window_size: (u16, u16),
    /// Sent as `X-iTerm2-Protocol-Version`.
    pub protocol_version: String,
}

impl FakeConfig {
    /// A configuration for `socket_path` with credentials `cookie`/`key`, running
    /// `/bin/bash --norc --noprofile` in 80×24 windows.
    pub fn new(socket_path: impl Into<PathBuf>, cookie: &str, key: &str) -> Self {
        Self {
            socket_path: socket_path.into(),
            cookie: Some(cookie.to_owned()),
            key: Some(key.to_owned()),
            shell: default_shell(),
            env: Vec::new(),
            cwd: None,
            window_size: (80, 24),
            protocol_version: DEFAULT_PROTOCOL_VERSION.to_owned(),
        }
    }
}

/// The protocol version the fake reports.
pub const DEFAULT_PROTOCOL_VERSION: &str = "1.11";

/// `/bin/bash --norc --noprofile`.
pub fn default_shell() -> Vec<String> {
    ["/bin/bash", "--norc", "--noprofile"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// Where the official client looks for the socket under `home` (`$IT2_SUITE` not set).
pub fn socket_path_under_home(home: &Path) -> PathBuf {
    crate::connection::socket_path_for(home, None)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Events the model publishes; each connection turns the ones it subscribed to into
/// notifications.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    NewSession(String),
    TerminateSession(String),
    Layout(Arc<crate::proto::ListSessionsResponse>),
    ScreenUpdate(String),
    Prompt(Arc<crate::proto::PromptNotification>),
    Variable(Arc<crate::proto::VariableChangedNotification>),
    Focus(Arc<crate::proto::FocusChangedNotification>),
}
