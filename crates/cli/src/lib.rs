//! The `termloom` library half: global options shared by the `termloom` CLI and the `termloom-mcp`
//! server, and [`connect`], the one place that turns them into a backend and a registry.
//!
//! Only this crate (and the binaries built on it) names the backends; everything else talks to
//! core's [`Loom`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use termloom_core::{BackendKind, Loom, Registry, Terminal, default_state_dir};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

/// Options every termloom program takes: which terminal, which state dir, how to print.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GlobalOpts {
    /// tmux server socket path (like `tmux -S`)
    #[arg(
        short = 'S',
        long = "socket",
        global = true,
        env = "TERMLOOM_TMUX_SOCKET",
        value_name = "PATH"
    )]
    pub socket: Option<PathBuf>,
    /// tmux server socket name (like `tmux -L`)
    #[arg(
        short = 'L',
        long = "socket-name",
        global = true,
        value_name = "NAME",
        conflicts_with = "socket"
    )]
    pub socket_name: Option<String>,
    /// State dir for the registry and logs [default: $TERMLOOM_STATE_DIR or ~/.local/state/termloom]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Backend to drive
    #[arg(long, global = true, value_name = "tmux|iterm", default_value = "tmux")]
    pub backend: String,
    /// tmux config file for a server termloom starts (like `tmux -f`)
    #[arg(
        long,
        global = true,
        env = "TERMLOOM_TMUX_CONFIG",
        value_name = "FILE",
        hide = true
    )]
    pub tmux_config: Option<PathBuf>,
    /// Program new panes run instead of tmux's default-shell, as words (e.g. "/bin/bash --norc")
    #[arg(
        long,
        global = true,
        env = "TERMLOOM_SHELL",
        value_name = "ARGV",
        hide = true
    )]
    pub shell: Option<String>,
    /// Scrollback lines for new workspaces
    #[arg(long, global = true, value_name = "LINES", default_value_t = 50_000)]
    pub history_limit: u32,
}

impl GlobalOpts {
    /// The backend kind asked for.
    pub fn backend_kind(&self) -> Result<BackendKind> {
        Ok(self.backend.parse::<BackendKind>()?)
    }

    /// The state dir in force.
    pub fn state_dir(&self) -> Result<PathBuf> {
        match &self.state_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(default_state_dir()?),
        }
    }

    /// tmux backend options from these flags.
    pub fn tmux_options(&self) -> Result<TmuxOptions> {
        let shell = match &self.shell {
            Some(s) if !s.trim().is_empty() => Some(shlex_split(s).with_context(|| {
                format!("cannot split TERMLOOM_SHELL / --shell {s:?} into words")
            })?),
            _ => None,
        };
        Ok(TmuxOptions {
            socket: TmuxOptions::socket_from(self.socket.clone(), self.socket_name.clone()),
            config_file: self.tmux_config.clone(),
            history_limit: self.history_limit,
            shell,
            ..TmuxOptions::default()
        })
    }
}

fn shlex_split(s: &str) -> Option<Vec<String>> {
    shlex::split(s)
}

/// Builds the terminal the options name, and the registry in the state dir.
pub fn connect(opts: &GlobalOpts) -> Result<Loom> {
    let terminal: Arc<dyn Terminal> = match opts.backend_kind()? {
        BackendKind::Tmux => Arc::new(TmuxTerminal::new(opts.tmux_options()?)),
        BackendKind::Iterm => anyhow::bail!("the iterm backend is not wired into the CLI yet"),
    };
    let dir = opts.state_dir()?;
    let registry = match Registry::open(&dir) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "running without a session registry");
            None
        }
    };
    Ok(Loom::new(terminal, registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_shell_words() {
        assert_eq!(
            shlex_split("/bin/bash --norc").unwrap(),
            ["/bin/bash", "--norc"]
        );
        assert_eq!(shlex_split("'/a b/sh' -i").unwrap(), ["/a b/sh", "-i"]);
        assert!(shlex_split("'open").is_none());
    }
}
