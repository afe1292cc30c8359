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

use termloom_core::{BackendKind, TerminalKey};

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
    /// Drive the tmux server on this ssh host (a destination or a `Host` of the ssh config)
    /// instead of this machine's: every tmux process runs through [`tmux_command`] as
    /// `ssh … HOST -- tmux …`. `socket`, `config_file`, `tmux_bin` and `env` then name things
    /// on that host.
    pub host: Option<String>,
    /// How ssh is run when `host` is set.
    pub ssh: SshOptions,
    /// Start new panes' bash, zsh or fish with termloom's shell integration (OSC 133 marks, so
    /// `run` knows exit codes exactly); see [`crate::integration`]. Local servers only.
    pub integration: bool,
    /// Where the integration scripts are written (and panes keep their state files); `None` =
    /// `shell-integration` in the state dir.
    pub integration_dir: Option<PathBuf>,
    /// With `control` on, a read of more lines than this runs a one-shot `tmux capture-pane`
    /// (spawned, or over ssh) instead of pulling megabytes through the control-mode client, which
    /// is slower for large reads. `u64::MAX`: always control mode; `0`: always spawned.
    pub spawn_read_lines: u64,
}

/// How termloom runs ssh for a remote host ([`TmuxOptions::host`]).
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// `-F FILE`: the ssh config file (port, user, identity, jump hosts…); `None` = ssh's own.
    pub config: Option<PathBuf>,
    /// The ssh binary.
    pub bin: PathBuf,
    /// `ConnectTimeout`: how long connecting may take. Every call is also bounded by
    /// [`TmuxOptions::command_timeout`].
    pub connect_timeout: Duration,
    /// Reuse one ssh connection per host for spawned calls (`ControlMaster=auto`,
    /// `ControlPersist=60`), with the control sockets in a private directory.
    pub multiplex: bool,
    /// The directory for the multiplexing sockets; `None` = `$XDG_RUNTIME_DIR/termloom-ssh`, else
    /// `/tmp/termloom-ssh-<uid>`. It is created `0700` and used only when it is a directory owned
    /// by this user that nobody else can open.
    pub control_dir: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config: None,
            bin: PathBuf::from("ssh"),
            connect_timeout: Duration::from_secs(5),
            multiplex: true,
            control_dir: None,
        }
    }
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
            host: None,
            ssh: SshOptions::default(),
            integration: true,
            integration_dir: None,
            spawn_read_lines: DEFAULT_SPAWN_READ_LINES,
        }
    }
}

/// A local socket path as one server has one name: absolute, symbolic links resolved (of the path,
/// or of its directory while the socket does not exist yet). `-S sock` typed in two directories
/// names two servers; `sock`, `./sock` and the full path name one.
fn canonical(p: &std::path::Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(d), Some(f)) => std::fs::canonicalize(d).map(|d| d.join(f)).unwrap_or(abs),
        _ => abs,
    }
}

/// A spawned command that ran past the options' limit; a remote one names its host.
fn timed_out(opts: &TmuxOptions, what: String) -> TmuxError {
    let what = if opts.is_remote() {
        format!("{what} on {}", opts.server_label())
    } else {
        what
    };
    TmuxError::Timeout(what, opts.command_timeout)
}

/// [`TmuxOptions::spawn_read_lines`] by default (see the tmux section of BENCHMARKS.md).
pub const DEFAULT_SPAWN_READ_LINES: u64 = 20_000;

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

    /// Whether the server is on another host (reached over ssh).
    pub fn is_remote(&self) -> bool {
        self.host.is_some()
    }

    /// The identity of the server: host + socket. For a local server the socket is the path tmux
    /// uses ([`TmuxOptions::socket_path`]). For a remote one it cannot be computed here (it depends
    /// on the remote uid and environment), so the key holds the socket as given: the `-S` path,
    /// `-L NAME`, or `None` for the remote tmux's default server. Two spellings of one host
    /// (an alias and its address) are two terminals.
    pub fn terminal_key(&self) -> TerminalKey {
        let socket = match (&self.host, &self.socket) {
            (None, _) => Some(
                canonical(&self.socket_path())
                    .to_string_lossy()
                    .into_owned(),
            ),
            (Some(_), Socket::Default) => None,
            (Some(_), Socket::Name(n)) => Some(format!("-L {n}")),
            (Some(_), Socket::Path(p)) => Some(p.to_string_lossy().into_owned()),
        };
        TerminalKey {
            backend: BackendKind::Tmux,
            host: self.host.clone(),
            socket,
        }
    }

    /// The server for messages: its socket path, or `HOST:socket` for a remote one.
    pub fn server_label(&self) -> String {
        match &self.host {
            None => self.socket_path().display().to_string(),
            Some(h) => match &self.socket {
                Socket::Default => format!("{h} (default socket)"),
                Socket::Name(n) => format!("{h}:-L {n}"),
                Socket::Path(p) => format!("{h}:{}", p.display()),
            },
        }
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
    /// The server's attach gate ([`crate::control::gate`]), held by spawned commands.
    gate: Arc<crate::control::gate::Gate>,
}

impl TmuxClient {
    /// A client; nothing is spawned until the first command.
    pub fn new(opts: Arc<TmuxOptions>) -> Self {
        TmuxClient {
            control: opts.control.then(|| ControlTransport::new(opts.clone())),
            gate: crate::control::gate::gate(&opts),
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

    /// Checks once that tmux is installed and new enough (on the server's host). For a remote host
    /// this is also the first ssh connection: unreachable hosts and refused logins fail here.
    pub async fn version(&self) -> Result<(u32, u32), TmuxError> {
        self.version
            .get_or_try_init(|| async {
                let mut cmd = tmux_command(&self.opts, &["-V".to_string()])?;
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let out = tokio::time::timeout(self.opts.command_timeout, cmd.output())
                    .await
                    .map_err(|_| timed_out(&self.opts, "-V".into()))?
                    .map_err(|e| spawn_error(&self.opts, e))?;
                if !out.status.success()
                    && let Some(e) = remote_failure(
                        &self.opts,
                        out.status.code(),
                        &String::from_utf8_lossy(&out.stderr),
                    )
                {
                    return Err(e);
                }
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
        // argv cannot carry a NUL, and tmux's command parser (control mode) would cut the word at
        // it and run the command with what is left (a `-c` dir `a\0b` became `a`): refuse it.
        if args.iter().any(|a| a.contains('\0')) {
            return Err(TmuxError::CommandFailed {
                command: describe(&args),
                stderr: "an argument contains a NUL byte, which tmux cannot take".into(),
            });
        }
        if let Some(ct) = &self.control {
            let no_start = self.version().await? >= (3, 2);
            match ct.connection(no_start).await {
                Ok(conn) => {
                    let r = ct.run_on(&conn, &args).await;
                    // Detached between calls (its session was destroyed, and the reply to the
                    // kill came before the `%exit`): this request never ran; send it again on a
                    // new client.
                    // With no server left (that was its last session), spawning answers.
                    // Or the client was gone before the request could be written (its exit not
                    // read yet): it never ran either.
                    let never_ran = match &r {
                        Err(TmuxError::ConnectionLost(_)) => conn.was_detached(),
                        Err(TmuxError::NotSent(_)) => true,
                        _ => false,
                    };
                    if never_ran && !self.opts.is_remote() {
                        if let Ok(again) = ct.connection(no_start).await {
                            return ct.run_on(&again, &args).await;
                        }
                    } else {
                        return r;
                    }
                }
                // ssh itself failed (unreachable, refused, dropped): spawning would fail the same way.
                Err(
                    e @ (TmuxError::ConnectionLost(_)
                    | TmuxError::Timeout(..)
                    | TmuxError::NotInstalled(_)),
                ) if self.opts.is_remote() => return Err(e),
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
        let mut words = self.opts.global_args();
        words.extend(args);
        let mut cmd = tmux_command(&self.opts, &words)?;
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // A spawned command can create or close sessions too: not while a control client of this
        // process attaches.
        let _in_flight = crate::control::gate::command(&self.gate).await;
        let mut child = cmd.spawn().map_err(|e| spawn_error(&self.opts, e))?;
        let pipe = child.stdin.take();
        let out = tokio::time::timeout(self.opts.command_timeout, async move {
            if let (Some(data), Some(mut pipe)) = (stdin, pipe) {
                // A write error means the process ended early (ssh could not connect): its exit
                // status and stderr below say why.
                let _ = pipe.write_all(data).await;
                drop(pipe);
            }
            child.wait_with_output().await
        })
        .await
        .map_err(|_| timed_out(&self.opts, what.clone()))??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(e) = remote_failure(&self.opts, out.status.code(), &stderr) {
            return Err(e);
        }
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
    // "server exited unexpectedly": the last session closed while this command was connecting.
    if stderr.starts_with("no server running")
        || stderr.starts_with("server exited unexpectedly")
        || (stderr.starts_with("error connecting to") && stderr.contains("No such file"))
    {
        return TmuxError::NoServer(opts.server_label());
    }
    TmuxError::CommandFailed { command, stderr }
}

// ---------------------------------------------------------------------------------------------
// Starting tmux: here, or on a remote host over ssh. The one place a tmux process is built.
// ---------------------------------------------------------------------------------------------

/// A process running `tmux WORDS` on the server's host, built from [`tmux_argv`] (batch mode: no
/// terminal, never a prompt). The caller adds the global arguments it wants
/// ([`TmuxOptions::global_args`]) and sets up stdio; the process is killed when dropped. Spawned
/// calls, the control-mode client and the output clients all start here.
pub fn tmux_command(
    opts: &TmuxOptions,
    words: &[String],
) -> Result<tokio::process::Command, TmuxError> {
    let argv = tmux_argv(opts, words, false)?;
    let mut c = tokio::process::Command::new(&argv.program);
    c.args(&argv.args);
    for (k, v) in &argv.env {
        c.env(k, v);
    }
    c.kill_on_drop(true);
    Ok(c)
}

/// A program, its arguments and extra environment: how to start tmux, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramArgv {
    /// The program (`tmux_bin`, or `ssh` for a remote host).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment to add (for a remote host it travels inside the remote command instead).
    pub env: Vec<(String, String)>,
}

/// How to run `tmux WORDS` on the server's host: this machine's `tmux_bin` with `env`, or, when
/// [`TmuxOptions::host`] is set, `ssh [-F cfg] -T -o BatchMode=yes -o ConnectTimeout=N …
/// [-o ControlMaster=auto -o ControlPath=DIR/%C -o ControlPersist=60] HOST -- 'env' 'K=V'… 'tmux'
/// WORDS…`, every remote word quoted for the remote shell with `shlex` (the remote account's login
/// shell must be a POSIX-family shell: sh, bash, zsh, ksh, dash). `interactive` is for a person's
/// terminal (`attach`): `-t` instead of `-T`, and ssh may ask for a password or a host key.
pub fn tmux_argv(
    opts: &TmuxOptions,
    words: &[String],
    interactive: bool,
) -> Result<ProgramArgv, TmuxError> {
    // `-u`: termloom parses what tmux prints (formats split on U+001F, UTF-8 text), and a client
    // whose locale is not UTF-8 (an ssh command's environment usually has no LANG at all; a local
    // `LANG=C` in a container, cron job or CI runner) gets control characters and non-ASCII text
    // replaced by `_`. A person's terminal keeps its own locale.
    let mut words = words.to_vec();
    if !interactive {
        words.insert(0, "-u".into());
    }
    let Some(host) = &opts.host else {
        return Ok(ProgramArgv {
            program: opts.tmux_bin.clone(),
            args: words,
            env: opts.env.clone(),
        });
    };
    check_host(host).map_err(|why| TmuxError::CommandFailed {
        command: "ssh".into(),
        stderr: why,
    })?;
    let mut remote: Vec<String> = Vec::with_capacity(words.len() + opts.env.len() + 2);
    if !opts.env.is_empty() {
        remote.push("env".into());
        for (k, v) in &opts.env {
            remote.push(format!("{k}={v}"));
        }
    }
    remote.push(opts.tmux_bin.to_string_lossy().into_owned());
    remote.extend(words.iter().cloned());
    let line = shlex::try_join(remote.iter().map(String::as_str)).map_err(|_| {
        TmuxError::CommandFailed {
            command: describe(&words),
            stderr: "an argument contains a NUL byte, which cannot be passed over ssh".into(),
        }
    })?;
    let mut a: Vec<String> = Vec::new();
    let mut opt = |o: String| {
        a.push("-o".into());
        a.push(o);
    };
    opt(format!(
        "ConnectTimeout={}",
        opts.ssh.connect_timeout.as_secs().max(1)
    ));
    if !interactive {
        opt("BatchMode=yes".into());
        // Only errors on stderr: a warning ("Permanently added … to the list of known hosts")
        // would otherwise sit in front of tmux's own message.
        opt("LogLevel=ERROR".into());
    }
    opt("ServerAliveInterval=5".into());
    opt("ServerAliveCountMax=2".into());
    if opts.ssh.multiplex
        && let Some(dir) = control_dir(&opts.ssh)
    {
        opt("ControlMaster=auto".into());
        opt(format!("ControlPath={}/%C", dir.display()));
        opt("ControlPersist=60".into());
    }
    let mut args = Vec::new();
    if let Some(cfg) = &opts.ssh.config {
        args.push("-F".into());
        args.push(cfg.to_string_lossy().into_owned());
    }
    args.push(if interactive { "-t" } else { "-T" }.into());
    args.extend(a);
    args.extend([host.clone(), "--".into(), line]);
    Ok(ProgramArgv {
        program: opts.ssh.bin.clone(),
        args,
        env: Vec::new(),
    })
}

/// Checks an ssh destination given by a caller: not empty, not an option (`-oProxyCommand=…`), no
/// whitespace or control characters. Returns why not.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the ssh host must not be empty".into());
    }
    if host.starts_with('-') {
        return Err(format!(
            "invalid ssh host '{host}': it must not start with '-'"
        ));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "invalid ssh host {host:?}: no spaces or control characters"
        ));
    }
    Ok(())
}

/// The longest control socket path used: unix socket paths hold about 104 bytes, and `%C` is 40.
const MAX_CONTROL_DIR_LEN: usize = 60;

/// The private directory for ssh control sockets, created if needed; `None` (no multiplexing)
/// when it is too long or not a directory of this user's that only this user can open.
fn control_dir(ssh: &SshOptions) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = match &ssh.control_dir {
        Some(d) => d.clone(),
        None => match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(d) if d.is_absolute() && d.is_dir() => d.join("termloom-ssh"),
            _ => PathBuf::from(format!(
                "/tmp/termloom-ssh-{}",
                rustix::process::getuid().as_raw()
            )),
        },
    };
    if dir.as_os_str().len() > MAX_CONTROL_DIR_LEN {
        tracing::debug!(dir = %dir.display(), "ssh control dir path too long; not multiplexing");
        return None;
    }
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let private = std::fs::symlink_metadata(&dir).is_ok_and(|m| {
        m.is_dir()
            && m.uid() == rustix::process::getuid().as_raw()
            && m.permissions().mode() & 0o077 == 0
    });
    if !private {
        tracing::warn!(dir = %dir.display(), "ssh control dir is not private; not multiplexing");
        return None;
    }
    Some(dir)
}

/// The error for a process that could not be started: tmux missing here, or ssh missing.
pub(crate) fn spawn_error(opts: &TmuxOptions, e: std::io::Error) -> TmuxError {
    match (e.kind(), &opts.host) {
        (std::io::ErrorKind::NotFound, None) => {
            TmuxError::NotInstalled(opts.tmux_bin.to_string_lossy().into_owned())
        }
        (std::io::ErrorKind::NotFound, Some(_)) => TmuxError::Io(std::io::Error::new(
            e.kind(),
            format!(
                "ssh is not installed (or not on PATH as '{}')",
                opts.ssh.bin.display()
            ),
        )),
        _ => TmuxError::Io(e),
    }
}

/// What a failed remote call means when ssh itself (not tmux) failed: exit 255 is ssh's own error
/// (unreachable, refused, dropped), 127 a missing `tmux` on the host, no code a killed ssh.
/// `None` for a local server or a failure of tmux itself.
pub(crate) fn remote_failure(
    opts: &TmuxOptions,
    code: Option<i32>,
    stderr: &str,
) -> Option<TmuxError> {
    let host = opts.host.as_deref()?;
    let stderr = stderr.trim();
    match code {
        Some(255) => {
            let why = if stderr.is_empty() {
                "ssh exited with status 255"
            } else {
                stderr
            };
            let what = if stderr.contains("Permission denied") {
                "ssh refused authentication (BatchMode is on, so ssh never asks for a password: \
                 use a key or an agent)"
            } else if stderr.contains("Host key verification failed") {
                "ssh could not verify the host key (BatchMode is on, so ssh never asks: add it to \
                 known_hosts first)"
            } else if stderr.contains("connect to host")
                || stderr.contains("Could not resolve")
                || stderr.contains("Connection refused")
                || stderr.contains("timed out")
                || stderr.contains("No route to host")
                || stderr.contains("Network is unreachable")
            {
                "cannot reach the host over ssh"
            } else {
                "the ssh connection failed or dropped"
            };
            Some(TmuxError::ConnectionLost(format!("{host}: {what}: {why}")))
        }
        Some(127) => Some(TmuxError::NotInstalled(format!(
            "{}' on host '{host}",
            opts.tmux_bin.display()
        ))),
        None => Some(TmuxError::ConnectionLost(format!(
            "{host}: the ssh process was killed{}{stderr}",
            if stderr.is_empty() { "" } else { ": " }
        ))),
        Some(_) => None,
    }
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

    fn argv(c: &tokio::process::Command) -> Vec<String> {
        let std = c.as_std();
        std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn remote_commands_quote_every_word_for_the_remote_shell() {
        let o = TmuxOptions {
            host: Some("build1".into()),
            env: vec![("HOME".into(), "/h o/me".into())],
            ssh: SshOptions {
                config: Some("/cfg".into()),
                multiplex: false,
                ..SshOptions::default()
            },
            ..TmuxOptions::with_socket_path("/tmp/a b/s")
        };
        let hostile = "it's \"q\" $HOME `id` ; a\\b\n日本 #x *";
        let mut words = o.global_args();
        words.extend(["send-keys", "-l", "--", hostile].map(String::from));
        let a = argv(&tmux_command(&o, &words).unwrap());
        assert_eq!(a[0], "ssh");
        assert_eq!(a[1..3], ["-F", "/cfg"]);
        assert!(a.contains(&"BatchMode=yes".to_string()), "{a:?}");
        assert!(a.contains(&"ConnectTimeout=5".to_string()), "{a:?}");
        assert!(!a.iter().any(|w| w.starts_with("ControlMaster")), "{a:?}");
        let n = a.len();
        assert_eq!(a[n - 3..n - 1], ["build1", "--"]);
        // What the remote shell will split the line into is exactly the argv.
        let back = shlex::split(&a[n - 1]).unwrap();
        let mut want = vec![
            "env".to_string(),
            "HOME=/h o/me".into(),
            "tmux".into(),
            "-u".into(),
        ];
        want.extend(words.clone());
        assert_eq!(back, want);
        // For a person's terminal: a tty, and ssh may ask.
        let i = tmux_argv(&o, &words, true).unwrap();
        assert!(i.args.contains(&"-t".to_string()) && !i.args.contains(&"-T".to_string()));
        assert!(!i.args.contains(&"BatchMode=yes".to_string()), "{i:?}");
        let line = shlex::split(i.args.last().unwrap()).unwrap();
        assert_eq!(line[..3], want[..3]);
        assert_eq!(line[3..], want[4..]);
        // A local server gets the argv as is.
        let local = TmuxOptions {
            host: None,
            ..o.clone()
        };
        assert_eq!(
            argv(&tmux_command(&local, &["-V".into()]).unwrap()),
            ["tmux", "-u", "-V"]
        );
    }

    #[test]
    fn multiplexing_uses_a_private_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cm = dir.path().join("cm");
        let o = TmuxOptions {
            host: Some("h".into()),
            ssh: SshOptions {
                control_dir: Some(cm.clone()),
                ..SshOptions::default()
            },
            ..TmuxOptions::default()
        };
        let a = argv(&tmux_command(&o, &["-V".into()]).unwrap());
        assert!(a.contains(&"ControlMaster=auto".to_string()), "{a:?}");
        assert!(
            a.contains(&format!("ControlPath={}/%C", cm.display())),
            "{a:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cm).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A dir others can open is not used.
        std::fs::set_permissions(&cm, std::fs::Permissions::from_mode(0o755)).unwrap();
        let a = argv(&tmux_command(&o, &["-V".into()]).unwrap());
        assert!(!a.iter().any(|w| w.starts_with("ControlMaster")), "{a:?}");
    }

    #[test]
    fn hosts_that_look_like_options_are_refused() {
        assert!(check_host("-oProxyCommand=x").is_err());
        assert!(check_host("").is_err());
        assert!(check_host("a b").is_err());
        assert!(check_host("a\nb").is_err());
        assert!(check_host("deploy@web-1.example.com").is_ok());
        let o = TmuxOptions {
            host: Some("-oProxyCommand=x".into()),
            ..TmuxOptions::default()
        };
        assert!(tmux_command(&o, &["-V".into()]).is_err());
    }

    #[test]
    fn local_keys_name_one_server_one_way() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        let real = std::fs::canonicalize(d.path()).unwrap().join("s");
        let key = |p: PathBuf| TmuxOptions::with_socket_path(p).terminal_key().socket;
        let want = Some(real.to_string_lossy().into_owned());
        assert_eq!(key(d.path().join("a/../s")), want);
        assert_eq!(key(d.path().join("s")), want);
        std::os::unix::fs::symlink(d.path(), d.path().join("a/link")).unwrap();
        assert_eq!(key(d.path().join("a/link/s")), want);
        // A relative path is the current directory's.
        let rel = key(PathBuf::from("some-sock")).unwrap();
        assert!(rel.starts_with('/') && rel.ends_with("/some-sock"), "{rel}");
    }

    #[test]
    fn remote_keys_name_the_host_and_the_socket_as_given() {
        let mut o = TmuxOptions {
            host: Some("h".into()),
            ..TmuxOptions::default()
        };
        assert_eq!(o.terminal_key().host.as_deref(), Some("h"));
        assert_eq!(o.terminal_key().socket, None);
        o.socket = Socket::Name("x".into());
        assert_eq!(o.terminal_key().socket.as_deref(), Some("-L x"));
        o.socket = Socket::Path("/r/s".into());
        assert_eq!(o.terminal_key().socket.as_deref(), Some("/r/s"));
        assert_eq!(o.server_label(), "h:/r/s");
        o.host = None;
        assert_eq!(o.terminal_key().host, None);
        assert_eq!(o.terminal_key().socket.as_deref(), Some("/r/s"));
    }

    #[test]
    fn ssh_failures_are_told_apart_from_tmux_failures() {
        let o = TmuxOptions {
            host: Some("h".into()),
            ..TmuxOptions::default()
        };
        let e = remote_failure(&o, Some(255), "u@h: Permission denied (publickey).").unwrap();
        assert!(e.to_string().contains("refused authentication"), "{e}");
        let e = remote_failure(
            &o,
            Some(255),
            "ssh: connect to host h port 22: Connection refused",
        )
        .unwrap();
        assert!(e.to_string().contains("cannot reach"), "{e}");
        let e = remote_failure(&o, Some(127), "bash: tmux: command not found").unwrap();
        assert!(matches!(e, TmuxError::NotInstalled(_)), "{e}");
        assert!(e.to_string().contains("on host 'h'"), "{e}");
        assert!(remote_failure(&o, None, "").is_some());
        assert!(remote_failure(&o, Some(1), "no server running on /x").is_none());
        let local = TmuxOptions::default();
        assert!(remote_failure(&local, Some(255), "x").is_none());
    }
}
