//! tmux-specific errors and their mapping into core's [`Error`].

use termloom_core::{BackendKind, Error};

/// What can go wrong talking to tmux.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TmuxError {
    /// The `tmux` binary was not found.
    #[error(
        "tmux is not installed (or not on PATH as '{0}'); install it, e.g. `apt-get install tmux` or `brew install tmux`"
    )]
    NotInstalled(String),
    /// tmux is older than termloom supports.
    #[error("tmux {found} is too old; termloom needs tmux {needed} or newer")]
    VersionTooLow {
        /// The version found.
        found: String,
        /// The minimum version.
        needed: String,
    },
    /// A tmux command failed.
    #[error("tmux {command} failed: {stderr}")]
    CommandFailed {
        /// The tmux command (its first word and target).
        command: String,
        /// What tmux printed on stderr.
        stderr: String,
    },
    /// No tmux server is running on the socket.
    #[error("no tmux server running on {0}")]
    NoServer(String),
    /// tmux printed something termloom could not parse.
    #[error("cannot parse tmux output for {field}: {line:?}")]
    Parse {
        /// The line.
        line: String,
        /// What was being parsed.
        field: String,
    },
    /// Spawning or talking to tmux failed.
    #[error("cannot run tmux: {0}")]
    Io(#[from] std::io::Error),
    /// The control-mode connection went away.
    #[error("tmux control connection lost: {0}")]
    ConnectionLost(String),
    /// The control-mode connection went away before the request could be written: tmux never
    /// saw it, so sending it again on another connection cannot run it twice.
    #[error("tmux control connection lost: {0}")]
    NotSent(String),
    /// A command took too long: what it was, and the limit reached.
    #[error("tmux {0} timed out after {ms}ms", ms = .1.as_millis())]
    Timeout(String, std::time::Duration),
}

impl TmuxError {
    /// True when the message says the target pane, window or session does not exist (or no
    /// session at all does: tmux then says "no current target").
    pub fn is_not_found(&self) -> bool {
        match self {
            TmuxError::CommandFailed { stderr, .. } => {
                stderr.contains("can't find")
                    || stderr.contains("no such")
                    || stderr.contains("not found")
                    || stderr.contains("no current target")
            }
            _ => false,
        }
    }
}

impl From<TmuxError> for Error {
    fn from(e: TmuxError) -> Self {
        match e {
            TmuxError::ConnectionLost(reason) | TmuxError::NotSent(reason) => {
                Error::ConnectionLost {
                    backend: BackendKind::Tmux,
                    reason,
                }
            }
            TmuxError::Timeout(op, after) => Error::Timeout {
                op: format!("tmux {op}"),
                after,
            },
            // Shown as `tmux: split-window … failed: …` (core's backend error names the backend).
            TmuxError::CommandFailed { command, stderr } => {
                Error::backend(BackendKind::Tmux, format!("{command} failed: {stderr}"))
            }
            other => Error::backend(BackendKind::Tmux, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_says_how_long_it_waited() {
        let e = Error::from(TmuxError::Timeout(
            "list-panes".into(),
            std::time::Duration::from_secs(10),
        ));
        assert_eq!(e.to_string(), "tmux list-panes timed out after 10000ms");
    }

    #[test]
    fn a_failed_command_names_tmux_once() {
        let e = Error::from(TmuxError::CommandFailed {
            command: "split-window -t %3".into(),
            stderr: "no space for new pane".into(),
        });
        assert_eq!(
            e.to_string(),
            "tmux: split-window -t %3 failed: no space for new pane"
        );
    }
}
