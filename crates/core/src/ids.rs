//! Identifiers: termloom's persistent [`SessionId`], backend-native ids, and terminal instances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// The persistent id of a session (one pane with a shell): a UUID v4 that the session keeps for life.
///
/// It is stored on the pane itself (tmux's `@termloom_id` pane option, iTerm2's `user.termloomID`
/// variable) and in the registry, so it survives restarts of termloom, of the MCP client and of the
/// connection. It is the only id termloom shows to users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh random id.
    pub fn new() -> Self {
        SessionId(Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        SessionId(uuid)
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The first 8 hex digits, for tables.
    pub fn short(&self) -> String {
        self.0.simple().to_string()[..8].to_string()
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for SessionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::parse_str(s.trim())
            .map(SessionId)
            .map_err(|e| Error::InvalidTarget {
                input: s.to_string(),
                reason: format!("not a session id: {e}"),
            })
    }
}

/// Which kind of backend a terminal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A tmux server.
    Tmux,
    /// The iTerm2 application.
    Iterm,
}

impl BackendKind {
    /// The lowercase name used in targets and files (`tmux`, `iterm`).
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendKind::Tmux => "tmux",
            BackendKind::Iterm => "iterm",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "tmux" => Ok(BackendKind::Tmux),
            "iterm" | "iterm2" => Ok(BackendKind::Iterm),
            _ => Err(Error::InvalidArgument(format!(
                "unknown backend '{s}' (expected tmux or iterm)"
            ))),
        }
    }
}

/// A backend-native id: a hint, re-verified before use, never shown as a session's identity.
///
/// tmux: the pane id (`%12`); iTerm2: the session's unique identifier (a GUID).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NativeId {
    /// The backend the id belongs to.
    pub backend: BackendKind,
    /// The id as the backend spells it.
    pub id: String,
}

impl NativeId {
    /// A tmux pane id such as `%12`.
    pub fn tmux(id: impl Into<String>) -> Self {
        NativeId {
            backend: BackendKind::Tmux,
            id: id.into(),
        }
    }

    /// An iTerm2 session id.
    pub fn iterm(id: impl Into<String>) -> Self {
        NativeId {
            backend: BackendKind::Iterm,
            id: id.into(),
        }
    }
}

impl fmt::Display for NativeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.id)
    }
}

/// One backend instance: a tmux server (host + socket) or an iTerm2 app.
///
/// Two terminals with equal keys are the same server; native ids are only meaningful within one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TerminalKey {
    /// The backend kind.
    pub backend: BackendKind,
    /// The ssh host, `None` for this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The server's socket path (tmux) or app socket (iTerm2); `None` when not yet known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

impl fmt::Display for TerminalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend)?;
        if let Some(h) = &self.host {
            write!(f, "@{h}")?;
        }
        if let Some(s) = &self.socket {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

/// Whether two paths name the same socket: equal as written, or the same file once relative
/// parts and links are resolved (`-S ./s` inside a pane whose `$TMUX` holds the absolute path).
pub fn same_socket(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_round_trips_through_text() {
        let id = SessionId::new();
        let back: SessionId = id.to_string().parse().unwrap();
        assert_eq!(id, back);
        assert_eq!(id.short().len(), 8);
        assert!(id.to_string().starts_with(&id.short()));
    }

    #[test]
    fn session_id_rejects_garbage() {
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }

    #[test]
    fn native_id_displays_with_backend() {
        assert_eq!(NativeId::tmux("%3").to_string(), "tmux:%3");
    }
}
