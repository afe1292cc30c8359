//! What the person starting the server chose: safety tier, scope, result cap, where the audit log goes,
//! and which terminals tools may reach.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use termloom_core::{Loom, NativeId, TerminalKey};

/// Which tools are offered. Tools above the tier are not listed and cannot be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Only tools that change nothing: listing, reading, waiting, status, monitoring.
    ReadOnly,
    /// Also tools that create, type, rename, resize and focus (the default).
    Write,
    /// Also tools that kill sessions, windows and workspaces.
    Destructive,
}

impl Tier {
    /// The spelling used by `--tier`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::ReadOnly => "read-only",
            Tier::Write => "write",
            Tier::Destructive => "destructive",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "read-only" | "readonly" | "read" => Ok(Tier::ReadOnly),
            "write" => Ok(Tier::Write),
            "destructive" => Ok(Tier::Destructive),
            _ => Err(format!(
                "unknown tier '{s}' (expected read-only, write or destructive)"
            )),
        }
    }
}

/// Which sessions write tools may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only sessions termloom created, or that a person tagged with `termloom tag`.
    Managed,
    /// Every session (except the server's own pane).
    All,
}

impl Scope {
    /// The spelling used by `--scope`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Managed => "managed",
            Scope::All => "all",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "managed" => Ok(Scope::Managed),
            "all" => Ok(Scope::All),
            _ => Err(format!("unknown scope '{s}' (expected managed or all)")),
        }
    }
}

/// Connects to the terminal on an ssh host named by a tool's `host` parameter, or refuses (the
/// message says why). The binary decides which hosts are allowed (`--allow-host`).
pub type HostConnector = Arc<dyn Fn(&str) -> Result<Loom, String> + Send + Sync>;

/// True once the client can no longer see results (see [`Config::client_gone`]).
pub type ClientGone = Arc<dyn Fn() -> bool + Send + Sync>;

/// The default cap on a tool result, in characters.
pub const DEFAULT_MAX_CHARS: usize = 50_000;

/// Everything the server is started with.
#[derive(Clone)]
pub struct Config {
    /// The terminals tools may reach. The first is the default; a per-call `socket` or `host` must
    /// name one of them.
    pub looms: Vec<Loom>,
    /// Which tools are offered.
    pub tier: Tier,
    /// Which sessions may be written to.
    pub scope: Scope,
    /// Cap on each result, in characters.
    pub max_chars: usize,
    /// The session this server runs in (its terminal and native id), which it never types into;
    /// its workspace is the default workspace for new sessions.
    pub own_session: Option<(TerminalKey, NativeId)>,
    /// The audit log file (JSON lines); `None` keeps no log.
    pub audit_log: Option<PathBuf>,
    /// A label for the transport in the audit log (`stdio`, `http`).
    pub transport: String,
    /// Reaches per-call hosts; `None` refuses every `host` parameter.
    pub connect_host: Option<HostConnector>,
    /// Tells when the client can no longer read results (stdio: it closed the server's stdout);
    /// every call is then refused, with nothing done.
    pub client_gone: Option<ClientGone>,
}

impl Config {
    /// A config for one terminal with the defaults: tier `write`, scope `managed`, 50,000 chars, no audit log.
    pub fn new(loom: Loom) -> Self {
        Config {
            looms: vec![loom],
            tier: Tier::Write,
            scope: Scope::Managed,
            max_chars: DEFAULT_MAX_CHARS,
            own_session: None,
            audit_log: None,
            transport: "stdio".into(),
            connect_host: None,
            client_gone: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_scopes_parse() {
        assert_eq!("read-only".parse::<Tier>().unwrap(), Tier::ReadOnly);
        assert_eq!("read_only".parse::<Tier>().unwrap(), Tier::ReadOnly);
        assert_eq!("Destructive".parse::<Tier>().unwrap(), Tier::Destructive);
        assert!("root".parse::<Tier>().is_err());
        assert!(Tier::ReadOnly < Tier::Write && Tier::Write < Tier::Destructive);
        assert_eq!("all".parse::<Scope>().unwrap(), Scope::All);
        assert!("some".parse::<Scope>().is_err());
    }
}
