//! The error type of the iTerm2 backend.

use std::path::PathBuf;
use std::time::Duration;

/// Where to turn the API on, quoted in error messages.
pub const ENABLE_API_HINT: &str =
    "enable it in iTerm2 › Settings › General › Magic › Enable Python API";

/// Everything that can go wrong talking to iTerm2.
#[derive(Debug, thiserror::Error)]
pub enum ItermError {
    /// The API socket does not exist: iTerm2 is not running, or its API was never enabled.
    #[error(
        "iTerm2 is not running (no API socket at {}); start iTerm2, and if it is running, {ENABLE_API_HINT}",
        socket.display()
    )]
    NotRunning {
        /// The socket path that was tried.
        socket: PathBuf,
    },

    /// The socket exists but nothing accepts connections on it.
    #[error(
        "iTerm2's API server is not accepting connections at {}: {ENABLE_API_HINT} (or iTerm2 quit and left a stale socket)",
        socket.display()
    )]
    ApiDisabled {
        /// The socket path that was tried.
        socket: PathBuf,
    },

    /// iTerm2 answered the WebSocket upgrade with HTTP 401: the cookie or key was missing,
    /// wrong, or already used.
    #[error(
        "iTerm2 refused the connection (HTTP 401): {detail}. Run termloom from inside iTerm2 (which sets ITERM2_COOKIE and ITERM2_KEY), or allow it to ask for a cookie with osascript"
    )]
    AuthRefused {
        /// What credentials were tried and where they came from.
        detail: String,
    },

    /// The socket or WebSocket connection could not be set up for another reason.
    #[error("cannot connect to iTerm2 at {}: {reason}", socket.display())]
    Connect {
        /// The socket path that was tried.
        socket: PathBuf,
        /// What failed.
        reason: String,
    },

    /// Getting a cookie and key from iTerm2 (through `osascript`) failed.
    #[error("cannot get an API cookie from iTerm2: {0}")]
    Credentials(String),

    /// iTerm2 answered a request with a non-OK status.
    #[error("iTerm2 {request} request failed: {status}")]
    Rpc {
        /// Which request.
        request: &'static str,
        /// The status name from the reply (e.g. `INVALID_NAME`), or iTerm2's error text.
        status: String,
    },

    /// iTerm2 does not know this session id.
    #[error("iTerm2 has no session {0:?}")]
    SessionNotFound(String),

    /// iTerm2 does not know this window id (it closed: a window showing a tmux window goes
    /// when that tmux window is killed).
    #[error("iTerm2 has no window {0:?}")]
    WindowNotFound(String),

    /// A frame could not be decoded, or a reply had the wrong shape.
    #[error("cannot decode iTerm2's reply: {0}")]
    Decode(String),

    /// No reply arrived in time.
    #[error("iTerm2 did not answer the {request} request within {after:?}")]
    Timeout {
        /// Which request.
        request: &'static str,
        /// How long we waited.
        after: Duration,
    },

    /// The connection closed (or broke) before the reply arrived. The next request reconnects.
    #[error("the connection to iTerm2 closed: {0}")]
    Closed(String),
}

impl ItermError {
    /// True for errors after which retrying on a fresh connection may help.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::Closed(_) | Self::Connect { .. } | Self::Timeout { .. }
        )
    }
}
