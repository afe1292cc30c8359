//! The `termloom` library half: global options shared by the `termloom` CLI and the `termloom-mcp`
//! server, and [`connect`], the one place that turns them into a backend and a registry.
//!
//! Only this crate (and the binaries built on it) names the backends; everything else talks to
//! core's [`Loom`].
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use termloom_core::{BackendKind, Loom, Registry, Terminal, default_state_dir};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

/// Writes one line to stderr, as is. A stderr that cannot be written (closed, full, over the
/// file-size limit) is no reason to fail: `eprintln!` would panic there.
pub fn stderr_line(s: impl AsRef<str>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{}", s.as_ref());
}

/// Keeps this process alive through a write past the file-size limit (`ulimit -f`), which by
/// default kills it with SIGXFSZ in the middle of writing the registry or a session log. With a
/// handler installed the write fails with `EFBIG` instead, and is reported like any other write
/// error. A handler, not an ignore: children inherit an ignored signal (a tmux server started
/// from here, and the shells it starts), while a handler goes back to the default at `exec`.
/// Call it inside the runtime; the handler stays for the life of the process.
pub fn survive_file_size_limit() {
    #[cfg(unix)]
    if let Err(e) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))
    {
        tracing::debug!(error = %e, "cannot catch SIGXFSZ");
    }
}

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
    /// Scrollback lines for new workspaces (1 to 10,000,000)
    #[arg(long, global = true, value_name = "LINES", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub history_limit: u32,
    /// Drive tmux on this ssh host (a destination or a Host from your ssh config) instead of here
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// ssh config file for every ssh call (like `ssh -F`)
    #[arg(long, global = true, env = "TERMLOOM_SSH_CONFIG", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
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
        if let Some(h) = &self.host {
            termloom_tmux::client::check_host(h).map_err(anyhow::Error::msg)?;
        }
        let defaults = TmuxOptions::default();
        Ok(TmuxOptions {
            socket: TmuxOptions::socket_from(self.socket.clone(), self.socket_name.clone()),
            config_file: self.tmux_config.clone(),
            history_limit: self.history_limit,
            shell,
            host: self.host.clone().filter(|h| !h.is_empty()),
            ssh: termloom_tmux::client::SshOptions {
                config: self.ssh_config.clone(),
                ..defaults.ssh.clone()
            },
            // The shell integration lives in the state dir given (`--state-dir` too, not only
            // its variable), so every process using that dir sees the same state files.
            integration_dir: self.state_dir.as_ref().map(|d| d.join("shell-integration")),
            ..defaults
        })
    }
}

/// Whether `host` may be reached: it is a valid ssh destination and matches one of `patterns`
/// (the MCP server's `--allow-host`, repeatable; none allows nothing). A pattern is the whole
/// destination as given (`build1`, `deploy@web2`), with `*` for any run of characters and `?` for
/// one, compared without regard to ASCII case, like ssh's own `Host` patterns. It is checked
/// against the text the caller passed, before ssh resolves it through its config.
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    termloom_tmux::client::check_host(host).is_ok()
        && patterns.iter().any(|p| {
            glob_match(
                p.to_ascii_lowercase().as_bytes(),
                host.to_ascii_lowercase().as_bytes(),
            )
        })
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Like [`connect`], for the tmux server on `host` over ssh (`None`: the one `opts` names, which
/// may be `--host`). Socket, ssh config and the other options come from `opts`. The MCP server
/// calls this for a tool's `host` parameter after [`host_allowed`] said yes.
pub fn connect_host(opts: &GlobalOpts, host: Option<&str>) -> Result<Loom> {
    match host {
        None => connect(opts),
        Some(h) => {
            anyhow::ensure!(
                opts.backend_kind()? == BackendKind::Tmux,
                "a host is only supported with the tmux backend"
            );
            let mut o = opts.clone();
            o.host = Some(h.to_string());
            connect(&o)
        }
    }
}

fn shlex_split(s: &str) -> Option<Vec<String>> {
    shlex::split(s)
}

/// Builds the terminal the options name, and the registry in the state dir.
pub fn connect(opts: &GlobalOpts) -> Result<Loom> {
    connect_with(opts, false)
}

/// Like [`connect`]; with `control`, the tmux backend talks to the server through one long-lived
/// control-mode client instead of spawning `tmux` per command (for long-lived commands such as
/// `run`, `watch` and `wait`).
pub fn connect_with(opts: &GlobalOpts, control: bool) -> Result<Loom> {
    let terminal: Arc<dyn Terminal> = match opts.backend_kind()? {
        BackendKind::Tmux => {
            let mut tmux = opts.tmux_options()?;
            tmux.control |= control;
            Arc::new(TmuxTerminal::new(tmux))
        }
        // The socket comes from TERMLOOM_ITERM_SOCKET, else iTerm2's default location.
        BackendKind::Iterm => {
            // tmux's flags mean nothing to iTerm2: refused, never ignored (text meant for a
            // host would be typed here).
            if opts.host.as_deref().is_some_and(|h| !h.is_empty()) {
                anyhow::bail!(
                    "--host drives tmux over ssh; the iterm backend drives this Mac's iTerm2 only (drop --host, or use --backend tmux)"
                );
            }
            if opts.socket_name.is_some() {
                anyhow::bail!(
                    "-L/--socket-name names a tmux server; the iterm backend has none (drop it, or use --backend tmux)"
                );
            }
            Arc::new(termloom_iterm::ItermTerminal::from_env())
        }
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

    #[test]
    fn hosts_are_allowed_only_by_pattern() {
        let pats = vec!["build*".to_string(), "deploy@web?".to_string()];
        assert!(host_allowed(&pats, "build1"));
        assert!(host_allowed(&pats, "BUILD-eu.example.com"));
        assert!(host_allowed(&pats, "deploy@web2"));
        assert!(!host_allowed(&pats, "deploy@web10"));
        assert!(!host_allowed(&pats, "root@build1"));
        assert!(!host_allowed(&pats, "prod"));
        assert!(!host_allowed(&[], "build1"));
        assert!(!host_allowed(&["*".to_string()], "-oProxyCommand=evil"));
        assert!(!host_allowed(&["*".to_string()], "a b"));
        assert!(host_allowed(&["*".to_string()], "anything"));
        assert!(host_allowed(&["a*b*c".to_string()], "aXXbYYc"));
        assert!(!host_allowed(&["a*b*c".to_string()], "aXXbYY"));
    }

    #[test]
    fn host_flags_reach_the_tmux_options() {
        let g = GlobalOpts {
            host: Some("build1".into()),
            ssh_config: Some("/tmp/cfg".into()),
            ..Default::default()
        };
        let o = g.tmux_options().unwrap();
        assert_eq!(o.host.as_deref(), Some("build1"));
        assert_eq!(
            o.ssh.config.as_deref(),
            Some(std::path::Path::new("/tmp/cfg"))
        );
        let bad = GlobalOpts {
            host: Some("-oProxyCommand=x".into()),
            ..Default::default()
        };
        assert!(bad.tmux_options().is_err());
    }
}
