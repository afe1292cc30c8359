//! The one error type every termloom library returns.

use std::path::PathBuf;
use std::time::Duration;

use crate::ids::BackendKind;

/// termloom's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when driving a terminal.
///
/// Messages are lowercase, carry no trailing period, and name the thing that failed
/// (the target, the id, the command), so they can be shown to a person or a model as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live session matches the target.
    #[error("no session matches '{target}'")]
    SessionNotFound {
        /// The target as the caller wrote it.
        target: String,
    },
    /// More than one session matches the target.
    #[error("'{target}' is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousTarget {
        /// The target as the caller wrote it.
        target: String,
        /// A description of each matching session (`name (uuid)`).
        candidates: Vec<String>,
    },
    /// One session id is carried by more than one pane: someone copied a pane's id to another
    /// pane, or set it at server, session or window level, where panes inherit it. Nothing is
    /// done to either pane.
    #[error("session {id} is carried by {} panes ({}): its id tag was copied to another pane, or set where panes inherit it; nothing was done. {remedy}", panes.len(), panes.join(", "))]
    DuplicateId {
        /// The session id.
        id: String,
        /// Each pane carrying it (`workspace:window.pane (native id)`).
        panes: Vec<String>,
        /// How to remove the copy, in the backend's terms.
        remedy: String,
    },
    /// The target text does not follow the target grammar.
    #[error("invalid target '{input}': {reason}")]
    InvalidTarget {
        /// The text that failed to parse.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key name is not one termloom knows.
    #[error("invalid key '{input}': {reason}")]
    InvalidKey {
        /// The key as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A regular expression did not compile.
    #[error("invalid regex '{pattern}': {reason}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// The regex engine's explanation.
        reason: String,
    },
    /// A layout or another argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No workspace (tmux session, iTerm2 window set) of that name.
    #[error("no workspace named '{0}'")]
    WorkspaceNotFound(String),
    /// No window matches.
    #[error("no window '{0}'")]
    WindowNotFound(String),
    /// The session exists in the registry but its pane is gone.
    #[error("session {id} ('{name}') is dead: its pane no longer exists")]
    SessionDead {
        /// The session's persistent id.
        id: String,
        /// The session's last known name.
        name: String,
    },
    /// A native id no longer names the pane it used to (the server restarted and reused it).
    #[error("native id {native} no longer belongs to session {id}; refusing to use it")]
    StaleNativeId {
        /// The session's persistent id.
        id: String,
        /// The stale native id.
        native: String,
    },
    /// The backend cannot do this.
    #[error("{backend} cannot {op}: {reason}")]
    Unsupported {
        /// The backend asked.
        backend: BackendKind,
        /// The operation asked for.
        op: &'static str,
        /// Why not.
        reason: String,
    },
    /// The operation is refused by the safety settings the server was started with.
    #[error("refused: {0}")]
    PermissionDenied(String),
    /// Waiting took longer than allowed.
    #[error("{op} timed out after {}ms", after.as_millis())]
    Timeout {
        /// What was being waited for.
        op: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// The connection to the backend went away.
    #[error("connection to {backend} lost: {reason}")]
    ConnectionLost {
        /// The backend whose connection dropped.
        backend: BackendKind,
        /// What happened.
        reason: String,
    },
    /// The backend refused or failed a command.
    #[error("{backend}: {message}")]
    Backend {
        /// The backend that failed.
        backend: BackendKind,
        /// Its message, naming the failed command.
        message: String,
    },
    /// The registry file could not be read or written.
    #[error("registry {}: {reason}", path.display())]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A backend failure with a message.
    pub fn backend(backend: BackendKind, message: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
        }
    }

    /// An unsupported operation with a reason.
    pub fn unsupported(backend: BackendKind, op: &'static str, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            backend,
            op,
            reason: reason.into(),
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True for mistakes the caller can fix by changing the request (not found, invalid, ambiguous,
    /// refused), as opposed to failures of the backend or the machine.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::SessionNotFound { .. }
                | Error::AmbiguousTarget { .. }
                | Error::DuplicateId { .. }
                | Error::InvalidTarget { .. }
                | Error::InvalidKey { .. }
                | Error::InvalidRegex { .. }
                | Error::InvalidArgument(_)
                | Error::WorkspaceNotFound(_)
                | Error::WindowNotFound(_)
                | Error::SessionDead { .. }
                | Error::Unsupported { .. }
                | Error::PermissionDenied(_)
        )
    }
}

/// Compiles a regex, turning a failure into [`Error::InvalidRegex`].
///
/// The compiled program size is bounded so that a pathological pattern is an error, not a hang.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(8 << 20)
        .dfa_size_limit(8 << 20)
        .build()
        .map_err(|e| Error::InvalidRegex {
            pattern: pattern.to_string(),
            reason: e
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string(),
        })
}
