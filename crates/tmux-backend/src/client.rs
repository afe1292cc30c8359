//! The one seam every tmux command goes through: [`TmuxClient::run`] takes argv and returns stdout.
//!
//! Today it spawns one `tmux` process per call (argv only, never a shell). The long-lived
//! control-mode transport plugs in behind the same call through [`Transport`].

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::control::transport::ControlTransport;
use crate::error::TmuxError;

/// Which tmux server to talk to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Socket {
    /// tmux's default server (or the one `$TMUX` names when running inside tmux).
    Default,
    /// `-L NAME`: a named socket in tmux's socket directory.
    Name(String),
    /// `-S PATH`: an explicit socket path.
    Path(PathBuf),
}

/// How to reach and drive a tmux server.
#[derive(Clone, Debug)]
pub struct TmuxOptions {
    /// The server.
    pub socket: Socket,
    /// `-f FILE`: the config file a server started by termloom loads.
    pub config_file: Option<PathBuf>,
    /// The tmux binary.
    pub tmux_bin: PathBuf,
    /// Scrollback for new workspaces.
    pub history_limit: u32,
    /// Extra environment for every tmux process termloom starts (a server started by termloom
    /// inherits it: tests set `HOME`, `SHELL` and `TERM` here).
    pub env: Vec<(String, String)>,
    /// The program new panes run instead of tmux's `default-shell` (argv, never a shell string).
    pub shell: Option<Vec<String>>,
    /// How long one command may take.
    pub command_timeout: Duration,
    /// Send commands over one long-lived control-mode client (`tmux -C`) instead of spawning a
    /// process per command. For long-lived programs (the MCP server, `watch`, `run`).
    pub control: bool,
}

impl Default for TmuxOptions {
    fn default() -> Self {
        TmuxOptions {
            socket: Socket::Default,
            config_file: None,
            tmux_bin: PathBuf::from("tmux"),
            history_limit: 50_000,
            env: Vec::new(),
            shell: None,
            command_timeout: Duration::from_secs(10),
            control: false,
        }
    }
}

/// The environment variable naming a socket path (like `-S`).
pub const SOCKET_ENV: &str = "TERMLOOM_TMUX_SOCKET";

impl TmuxOptions {
    /// Options for a socket path.
    pub fn with_socket_path(path: impl Into<PathBuf>) -> Self {
        TmuxOptions {
            socket: Socket::Path(path.into()),
            ..TmuxOptions::default()
        }
    }

    /// The socket from `-S`, else `-L`, else `TERMLOOM_TMUX_SOCKET`, else the default server.
    pub fn socket_from(path: Option<PathBuf>, name: Option<String>) -> Socket {
        if let Some(p) = path {
            Socket::Path(p)
        } else if let Some(n) = name {
            Socket::Name(n)
        } else if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
            Socket::Path(PathBuf::from(p))
        } else {
            Socket::Default
        }
    }

    /// The socket path tmux will use, computed the way tmux does (`$TMUX`, `$TMUX_TMPDIR`, uid).
    pub fn socket_path(&self) -> PathBuf {
        let dir = || {
            let base = std::env::var_os("TMUX_TMPDIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            base.join(format!("tmux-{}", rustix::process::getuid().as_raw()))
        };
        match &self.socket {
            Socket::Path(p) => p.clone(),
            Socket::Name(n) => dir().join(n),
            Socket::Default => match std::env::var("TMUX") {
                Ok(t) if !t.is_empty() => PathBuf::from(t.split(',').next().unwrap_or_default()),
                _ => dir().join("default"),
            },
        }
    }

    /// The global arguments that select the server (`-S`/`-L`, `-f`).
    pub fn global_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        match &self.socket {
            Socket::Default => {}
            Socket::Name(n) => {
                v.push("-L".into());
                v.push(n.clone());
            }
            Socket::Path(p) => {
                v.push("-S".into());
                v.push(p.to_string_lossy().into_owned());
            }
        }
        if let Some(f) = &self.config_file {
            v.push("-f".into());
            v.push(f.to_string_lossy().into_owned());
        }
        v
    }
}

/// A way of running tmux commands: spawned processes or a control-mode connection.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Runs one command list (argv, commands separated by `;` elements); returns its stdout.
    async fn run(&self, args: &[String]) -> Result<String, TmuxError>;
}

/// Minimum supported tmux version (major, minor).
pub const MIN_VERSION: (u32, u32) = (3, 0);

/// Parses `tmux -V` output (`tmux 3.3a`, `tmux next-3.5`, `tmux openbsd-7.4`).
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let word = v.split_whitespace().nth(1)?;
    let digits = word.rsplit('-').next()?;
    let mut parts = digits.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()
        .unwrap_or("0")
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((major, minor.parse().unwrap_or(0)))
}

/// Runs tmux commands against one server.
pub struct TmuxClient {
    opts: Arc<TmuxOptions>,
    version: OnceCell<(u32, u32)>,
    control: Option<ControlTransport>,
}

impl TmuxClient {
    /// A client; nothing is spawned until the first command.
    pub fn new(opts: Arc<TmuxOptions>) -> Self {
        TmuxClient {
            control: opts.control.then(|| ControlTransport::new(opts.clone())),
            opts,
            version: OnceCell::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &TmuxOptions {
        &self.opts
    }

    /// The options, shared.
    pub fn options_arc(&self) -> Arc<TmuxOptions> {
        self.opts.clone()
    }

    /// The control-mode transport, when enabled.
    pub fn control(&self) -> Option<&ControlTransport> {
        self.control.as_ref()
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.opts.tmux_bin);
        c.args(self.opts.global_args());
        for (k, v) in &self.opts.env {
            c.env(k, v);
        }
        c.kill_on_drop(true);
        c
    }

    /// Checks once that tmux is installed and new enough.
    pub async fn version(&self) -> Result<(u32, u32), TmuxError> {
        self.version
            .get_or_try_init(|| async {
                let bin = self.opts.tmux_bin.to_string_lossy().into_owned();
                let out = tokio::process::Command::new(&self.opts.tmux_bin)
                    .arg("-V")
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => TmuxError::NotInstalled(bin.clone()),
                        _ => TmuxError::Io(e),
                    })?;
                let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let v = parse_version(&text).ok_or_else(|| TmuxError::Parse {
                    line: text.clone(),
                    field: "tmux -V".into(),
                })?;
                if v < MIN_VERSION {
                    return Err(TmuxError::VersionTooLow {
                        found: text,
                        needed: format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1),
                    });
                }
                Ok(v)
            })
            .await
            .copied()
    }

    /// Runs one command list and returns its stdout.
    pub async fn run(&self, args: Vec<String>) -> Result<String, TmuxError> {
        if let Some(ct) = &self.control {
            let no_start = self.version().await? >= (3, 2);
            match ct.connection(no_start).await {
                Ok(conn) => return ct.run_on(&conn, &args).await,
                // No server (or no session to attach to) yet: spawn this one; the next call retries.
                Err(e) => tracing::debug!(error = %e, "control mode unavailable; spawning tmux"),
            }
        }
        self.spawn(args, None).await
    }

    /// Runs a command list by spawning tmux, optionally feeding `stdin` (for `load-buffer -`).
    pub async fn spawn(
        &self,
        args: Vec<String>,
        stdin: Option<&[u8]>,
    ) -> Result<String, TmuxError> {
        self.version().await?;
        let what = describe(&args);
        let mut cmd = self.command();
        cmd.args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).await?;
            drop(pipe);
        }
        let out = tokio::time::timeout(self.opts.command_timeout, child.wait_with_output())
            .await
            .map_err(|_| TmuxError::Timeout(what.clone()))??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(classify(&self.opts, what, stderr))
    }
}

/// `send-keys -t %3` style summary of a command list for errors (never the payload).
pub fn describe(args: &[String]) -> String {
    let mut parts = Vec::new();
    let mut it = args.iter().peekable();
    let mut first = true;
    while let Some(a) = it.next() {
        if first {
            parts.push(a.clone());
            first = false;
        } else if a == ";" {
            first = true;
            parts.push(";".into());
        } else if a == "-t"
            && let Some(t) = it.next()
        {
            parts.push(format!("-t {t}"));
        }
    }
    parts.join(" ")
}

/// Turns tmux's stderr into a typed error.
pub fn classify(opts: &TmuxOptions, command: String, stderr: String) -> TmuxError {
    if stderr.starts_with("no server running")
        || (stderr.starts_with("error connecting to") && stderr.contains("No such file"))
    {
        return TmuxError::NoServer(opts.socket_path().display().to_string());
    }
    TmuxError::CommandFailed { command, stderr }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(parse_version("tmux next-3.5"), Some((3, 5)));
        assert_eq!(parse_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(parse_version("tmux openbsd-7.4"), Some((7, 4)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn describe_hides_payloads() {
        let args: Vec<String> = [
            "send-keys",
            "-t",
            "%3",
            "-l",
            "--",
            "secret",
            ";",
            "send-keys",
            "-t",
            "%3",
            "Enter",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(describe(&args), "send-keys -t %3 ; send-keys -t %3");
    }

    #[test]
    fn socket_args() {
        let o = TmuxOptions::with_socket_path("/tmp/x y/s");
        assert_eq!(o.global_args(), ["-S", "/tmp/x y/s"]);
        assert_eq!(o.socket_path(), PathBuf::from("/tmp/x y/s"));
    }
}
