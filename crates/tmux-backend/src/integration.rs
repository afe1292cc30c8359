//! Shell integration without touching dotfiles: OSC 133 marks (A prompt start, B prompt end,
//! C command start, `D;<exit>` command end) and OSC 7 (cwd) for bash, zsh and fish.
//!
//! - The scripts are termloom's own fixed text ([`BASH`], [`ZSH`], [`FISH`] and the zsh startup
//!   shims). They are written atomically into a versioned directory under
//!   [`TmuxOptions::integration_dir`](crate::TmuxOptions) (default `<state dir>/shell-integration`)
//!   at first use, and never hold user data.
//! - Panes termloom creates start their shell with the integration when it is bash, zsh or fish
//!   and `TmuxOptions::integration` is on ([`plan`]):
//!   - bash: `--rcfile termloom.bash`, which first reads what that bash would have read (a login
//!     shell's profile files when termloom replaces tmux's default login shell, else `~/.bashrc`
//!     or the `--rcfile` given; bash itself reads its built-in system bashrc), then adds the hooks.
//!     With `--norc` no startup file is read: the hooks are loaded from `PROMPT_COMMAND` instead.
//!   - zsh: `ZDOTDIR` points at termloom's directory, whose `.zshenv`, `.zprofile`, `.zshrc` and
//!     `.zlogin` read the user's own (from their `ZDOTDIR`, else `$HOME`), add the hooks, and give
//!     `ZDOTDIR` back.
//!   - fish: `--init-command 'source termloom.fish'`.
//! - `install` sources the script into a running bash, zsh or fish by typing one line (with a
//!   leading space, so `HISTCONTROL=ignorespace` keeps it out of the history).
//! - Every prompt also writes `<shell> idle|busy <last exit>` to `$TERMLOOM_STATE_FILE`
//!   (`<integration dir>/panes/<session id>`), with builtins only (no process is started), so that
//!   a process that did not watch the pane (a one-shot CLI) still knows the last exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use termloom_core::{Error, NativeId, Result, SessionId};

use crate::client::TmuxOptions;
use crate::command::Cmd;
use crate::format::{self, SEP};
use crate::terminal::{TmuxTerminal, not_found_as};

/// The bash script: startup files (when termloom started the shell) and hooks.
pub const BASH: &str = include_str!("integration/termloom.bash");
/// The zsh hooks.
pub const ZSH: &str = include_str!("integration/termloom.zsh");
/// The fish hooks.
pub const FISH: &str = include_str!("integration/termloom.fish");
/// termloom's `.zshenv` (zsh reads it because `ZDOTDIR` points at termloom's directory).
pub const ZSHENV: &str = include_str!("integration/zshenv");
/// termloom's `.zprofile`.
pub const ZPROFILE: &str = include_str!("integration/zprofile");
/// termloom's `.zshrc`.
pub const ZSHRC: &str = include_str!("integration/zshrc");
/// termloom's `.zlogin`.
pub const ZLOGIN: &str = include_str!("integration/zlogin");

/// The files of one version of the scripts, relative to its directory.
const FILES: &[(&str, &str)] = &[
    ("termloom.bash", BASH),
    ("termloom.fish", FISH),
    ("zsh/termloom.zsh", ZSH),
    ("zsh/.zshenv", ZSHENV),
    ("zsh/.zprofile", ZPROFILE),
    ("zsh/.zshrc", ZSHRC),
    ("zsh/.zlogin", ZLOGIN),
];

/// The shells termloom knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShellKind {
    /// bash: integration and markers.
    Bash,
    /// zsh: integration and markers.
    Zsh,
    /// fish: integration and fish-syntax markers.
    Fish,
    /// Another POSIX shell (sh, dash, ksh, mksh, ash, yash): markers only.
    Posix,
}

impl ShellKind {
    /// Whether termloom has hooks for this shell.
    pub fn has_integration(self) -> bool {
        !matches!(self, ShellKind::Posix)
    }
}

/// The shell a command name or path is (`-bash`, `/usr/bin/zsh`, `dash`), if it is one.
pub fn shell_kind(command: &str) -> Option<ShellKind> {
    let base = command.rsplit('/').next().unwrap_or(command);
    let base = base.trim_start_matches('-');
    Some(match base {
        "bash" => ShellKind::Bash,
        "zsh" => ShellKind::Zsh,
        "fish" => ShellKind::Fish,
        "sh" | "dash" | "ksh" | "ksh93" | "mksh" | "lksh" | "pdksh" | "oksh" | "ash" | "yash"
        | "posh" => ShellKind::Posix,
        _ => return None,
    })
}

/// Where the scripts of this build live, and where panes write their state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scripts {
    /// The versioned directory holding the scripts.
    pub dir: PathBuf,
    /// The directory of per-session state files.
    pub panes: PathBuf,
}

impl Scripts {
    /// The bash script.
    pub fn bash(&self) -> PathBuf {
        self.dir.join("termloom.bash")
    }
    /// termloom's `ZDOTDIR`.
    pub fn zdotdir(&self) -> PathBuf {
        self.dir.join("zsh")
    }
    /// The zsh hooks (sourced by termloom's `.zshrc`, or by `install`).
    pub fn zsh(&self) -> PathBuf {
        self.dir.join("zsh/termloom.zsh")
    }
    /// The fish script.
    pub fn fish(&self) -> PathBuf {
        self.dir.join("termloom.fish")
    }
    /// The state file of one session.
    pub fn state_file(&self, id: SessionId) -> PathBuf {
        self.panes.join(id.to_string())
    }
}

fn fnv(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A short hash of every script, naming the versioned directory (so that two termloom versions
/// never overwrite each other's files while shells are reading them).
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = 0xcbf29ce484222325;
        for (name, text) in FILES {
            h = fnv(name.as_bytes(), h);
            h = fnv(text.as_bytes(), h);
        }
        format!("v{:010x}", h & 0xff_ffff_ffff)
    })
}

/// The integration directory: `TmuxOptions::integration_dir`, else `shell-integration` in the
/// state dir (`TERMLOOM_STATE_DIR` from the options' environment first, so a test's private
/// server keeps its files in its own state dir).
pub fn base_dir(opts: &TmuxOptions) -> Result<PathBuf> {
    if let Some(d) = &opts.integration_dir {
        return Ok(d.clone());
    }
    if let Some((_, v)) = opts
        .env
        .iter()
        .find(|(k, v)| k == termloom_core::registry::STATE_DIR_ENV && !v.is_empty())
    {
        return Ok(PathBuf::from(v).join("shell-integration"));
    }
    Ok(termloom_core::default_state_dir()?.join("shell-integration"))
}

/// The paths for `opts`, without writing anything.
pub fn locate(opts: &TmuxOptions) -> Result<Scripts> {
    let base = base_dir(opts)?;
    Ok(Scripts {
        dir: base.join(version()),
        panes: base.join("panes"),
    })
}

fn mkdir_private(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

/// Writes the scripts for `opts` (each file only when its content differs, through a temporary
/// file and a rename, so a shell never reads half a file) and creates the state directory.
pub fn write_scripts(opts: &TmuxOptions) -> Result<Scripts> {
    let s = locate(opts)?;
    mkdir_private(&s.panes)?;
    mkdir_private(&s.zdotdir())?;
    for (name, text) in FILES {
        let path = s.dir.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        let tmp = path.with_file_name(format!(
            ".{}.{}.{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("script"),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let io = |e| Error::io(format!("cannot write {}", path.display()), e);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
    }
    Ok(s)
}

/// What a state file says: `<shell> idle|busy <last exit or ->`, or `<shell> lost` (written by
/// termloom: see [`mark_lost`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    /// The shell that wrote it (`bash`, `zsh`, `fish`).
    pub shell: String,
    /// The shell said a command was running (zsh and fish say so; bash only says idle).
    pub busy: bool,
    /// The last command's exit code.
    pub last_exit: Option<i32>,
    /// The pane's shell no longer runs the integration (it was replaced by `exec`, or its hooks
    /// were removed): runs use per-call markers until an integrated shell writes the file again.
    pub lost: bool,
    /// The shell answers termloom's line query (bash with readline): see
    /// [`crate::run::LINE_QUERY`].
    pub line_query: bool,
}

/// Parses a state file's text.
pub fn parse_state(text: &str) -> Option<FileState> {
    let mut it = text.split_whitespace();
    let shell = it.next()?.to_string();
    let (busy, lost) = match it.next()? {
        "busy" => (true, false),
        "idle" => (false, false),
        "lost" => (false, true),
        _ => return None,
    };
    let last_exit = it.next().and_then(|c| c.parse().ok());
    let line_query = it.next() == Some("L");
    Some(FileState {
        shell,
        busy,
        last_exit,
        lost,
        line_query,
    })
}

/// Records in session `id`'s state file that its shell no longer runs the integration, for this
/// process and every other one (local servers). An integrated shell overwrites it at its next
/// prompt (after `termloom integrate`, say).
pub fn mark_lost(opts: &TmuxOptions, id: SessionId, shell: &str) {
    if opts.is_remote() {
        return;
    }
    if let Ok(scripts) = locate(opts) {
        let _ = std::fs::write(scripts.state_file(id), format!("{shell} lost\n"));
    }
}

/// Reads a session's state file, when its shell wrote one (local servers only). The shell
/// rewrites it in place at every prompt: a read that finds it empty (between the truncation and
/// the write) tries again a moment later.
pub async fn read_state(opts: &TmuxOptions, id: SessionId) -> Option<FileState> {
    if opts.is_remote() {
        return None;
    }
    let path = locate(opts).ok()?.state_file(id);
    for _ in 0..5 {
        let text = std::fs::read_to_string(&path).ok()?;
        if let Some(st) = parse_state(&text) {
            return Some(st);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// Quotes a word for a POSIX shell (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Quotes a word for fish (single quotes; `\` and `'` escaped).
pub fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// How to start an integrated shell: extra environment and the argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Environment for the pane (`-e K=V`).
    pub env: Vec<(String, String)>,
    /// The shell's argv.
    pub argv: Vec<String>,
}

/// How to start `argv` with the integration, or `None` when it is not bash, zsh or fish or
/// would not be an interactive shell (`-c`, a script, zsh `-f`). `login` says termloom replaces
/// tmux's default shell, which tmux would start as a login shell. `user_zdotdir` is the `ZDOTDIR`
/// the pane would otherwise get.
pub fn plan(
    argv: &[String],
    login: bool,
    scripts: &Scripts,
    id: SessionId,
    user_zdotdir: Option<&str>,
) -> Option<Plan> {
    let prog = argv.first()?;
    let kind = shell_kind(prog)?;
    let args = &argv[1..];
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut env = vec![(
        "TERMLOOM_STATE_FILE".to_string(),
        path(scripts.state_file(id)),
    )];
    match kind {
        ShellKind::Posix => None,
        ShellKind::Bash => {
            let mut mode = if login { "login" } else { "rc" };
            let mut rcfile = None;
            let mut noprofile = false;
            let mut rest = Vec::new();
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--norc" => mode = "norc",
                    "--noprofile" => {
                        noprofile = true;
                        rest.push(a.clone());
                    }
                    "--rcfile" | "--init-file" => rcfile = Some(it.next()?.clone()),
                    "--login" | "-l" => {
                        if mode != "norc" {
                            mode = "login";
                        }
                    }
                    "-c" | "--" | "-" => return None,
                    s if s.starts_with("--") => rest.push(a.clone()),
                    s if s.starts_with('-') || s.starts_with('+') => {
                        let letters = &s[1..];
                        if letters.contains('c') || letters.contains('o') || letters.contains('O') {
                            // -c runs a command; -o/-O take a value: keep it simple and exact.
                            return None;
                        }
                        if letters.contains('l') {
                            if mode != "norc" {
                                mode = "login";
                            }
                            let kept: String = letters.chars().filter(|c| *c != 'l').collect();
                            if !kept.is_empty() {
                                rest.push(format!("{}{kept}", &s[..1]));
                            }
                        } else {
                            rest.push(a.clone());
                        }
                    }
                    // A script: not an interactive shell.
                    _ => return None,
                }
            }
            if mode == "login" && noprofile {
                mode = "norc";
            }
            let script = path(scripts.bash());
            env.push(("TERMLOOM_BASH_STARTUP".into(), mode.into()));
            let mut out = vec![prog.clone()];
            if mode == "norc" {
                env.push(("PROMPT_COMMAND".into(), format!(". {}", sh_quote(&script))));
                out.push("--norc".into());
            } else {
                if let Some(rc) = rcfile {
                    env.push(("TERMLOOM_BASH_RCFILE".into(), rc));
                }
                out.push("--rcfile".into());
                out.push(script);
            }
            // Long options before short ones (bash wants them in that order).
            let (long, short): (Vec<String>, Vec<String>) =
                rest.into_iter().partition(|a| a.starts_with("--"));
            out.extend(long);
            out.extend(short);
            Some(Plan { env, argv: out })
        }
        ShellKind::Zsh => {
            let mut has_login = false;
            for a in args {
                match a.as_str() {
                    "-c" | "--no-rcs" | "--norcs" | "--no-rcfiles" | "-" | "--" => return None,
                    "-l" | "--login" => has_login = true,
                    s if s.starts_with("--") => {}
                    s if s.starts_with('-') || s.starts_with('+') => {
                        let letters = &s[1..];
                        if letters.contains('c') || letters.contains('f') || letters.contains('o') {
                            return None;
                        }
                        has_login |= letters.contains('l');
                    }
                    _ => return None,
                }
            }
            env.push(("ZDOTDIR".into(), path(scripts.zdotdir())));
            if let Some(z) = user_zdotdir.filter(|z| !z.is_empty()) {
                env.push(("TERMLOOM_ZDOTDIR".into(), z.to_string()));
            }
            let mut out = vec![prog.clone()];
            if login && !has_login {
                out.push("-l".into());
            }
            out.extend(args.iter().cloned());
            Some(Plan { env, argv: out })
        }
        ShellKind::Fish => {
            let mut has_login = false;
            for a in args {
                match a.as_str() {
                    "-c" | "--command" | "-" | "--" => return None,
                    "-l" | "--login" => has_login = true,
                    s if s.starts_with("--command=") => return None,
                    s if s.starts_with('-') => {}
                    _ => return None,
                }
            }
            let mut out = vec![prog.clone()];
            if login && !has_login {
                out.push("-l".into());
            }
            out.extend(args.iter().cloned());
            out.push("--init-command".into());
            out.push(format!("source {}", fish_quote(&path(scripts.fish()))));
            Some(Plan { env, argv: out })
        }
    }
}

/// tmux's shell for new panes: `Some(path)` when tmux would start `default-shell` (as a login
/// shell); `None` when `default-command` is set (tmux runs that instead) or cannot be known.
async fn default_shell(term: &TmuxTerminal) -> Option<String> {
    let opts = term.client().options();
    if opts.socket_path().exists() {
        let fmt = format::format(&["#{default-shell}", "#{default-command}"]);
        if let Ok(out) = term
            .run(vec![Cmd::new("display-message").arg("-p").arg(fmt)])
            .await
        {
            let out = out.trim_end_matches('\n');
            let mut it = out.splitn(2, SEP);
            let shell = it.next().unwrap_or("").trim();
            let command = it.next().unwrap_or("").trim();
            if !command.is_empty() {
                return None;
            }
            if !shell.is_empty() {
                return Some(shell.to_string());
            }
        }
    }
    // No server yet: the server termloom starts takes $SHELL (of the tmux process, i.e. the
    // options' environment first), unless a config file sets default-shell/default-command.
    if config_sets_shell(opts) {
        return None;
    }
    let env_shell = opts
        .env
        .iter()
        .find(|(k, _)| k == "SHELL")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("SHELL").ok())
        .filter(|s| s.starts_with('/'));
    Some(env_shell.unwrap_or_else(|| "/bin/sh".into()))
}

/// Whether a config file tmux would load mentions `default-shell` or `default-command`.
fn config_sets_shell(opts: &TmuxOptions) -> bool {
    let mut files = Vec::new();
    if let Some(f) = &opts.config_file {
        files.push(f.clone());
    } else {
        let home = opts
            .env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
        files.push(PathBuf::from("/etc/tmux.conf"));
        if let Some(h) = home {
            files.push(h.join(".tmux.conf"));
            files.push(h.join(".config/tmux/tmux.conf"));
        }
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
            files.push(PathBuf::from(x).join("tmux/tmux.conf"));
        }
    }
    files.iter().any(|f| {
        std::fs::read_to_string(f)
            .is_ok_and(|t| t.contains("default-shell") || t.contains("default-command"))
    })
}

/// The `ZDOTDIR` a new pane would get from tmux's global environment (or termloom's own).
async fn user_zdotdir(term: &TmuxTerminal) -> Option<String> {
    let opts = term.client().options();
    if opts.socket_path().exists() {
        if let Ok(out) = term
            .run(vec![Cmd::new("show-environment").arg("-g").arg("ZDOTDIR")])
            .await
        {
            return out
                .trim_end_matches('\n')
                .strip_prefix("ZDOTDIR=")
                .map(str::to_string);
        }
        // "unknown variable": not set.
        return None;
    }
    opts.env
        .iter()
        .find(|(k, _)| k == "ZDOTDIR")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("ZDOTDIR").ok())
}

/// The shell argv (and `-e` environment) for a new pane of session `id`: the integrated shell
/// when integration is on and the shell is bash, zsh or fish, else `TmuxOptions::shell` as it is
/// (or nothing: tmux's default).
pub(crate) async fn shell_args(term: &TmuxTerminal, cmd: Cmd, id: SessionId) -> Result<Cmd> {
    let opts = term.client().options();
    let explicit = opts.shell.as_ref().filter(|a| !a.is_empty());
    let plain = |cmd: Cmd| match explicit {
        Some(argv) => argv.iter().fold(cmd, |c, a| c.arg(a)),
        None => cmd,
    };
    // The scripts live on this machine: a server on another host gets plain shells.
    if !opts.integration || opts.is_remote() {
        return Ok(plain(cmd));
    }
    let (argv, login) = match explicit {
        Some(a) => (a.clone(), false),
        None => match default_shell(term).await {
            Some(s) => (vec![s], true),
            None => return Ok(cmd),
        },
    };
    if !argv
        .first()
        .and_then(|p| shell_kind(p))
        .is_some_and(ShellKind::has_integration)
    {
        return Ok(plain(cmd));
    }
    let scripts = match term.inner.run.scripts(opts) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "shell integration scripts unavailable; plain shell");
            return Ok(plain(cmd));
        }
    };
    let zdotdir = if shell_kind(&argv[0]) == Some(ShellKind::Zsh) {
        user_zdotdir(term).await
    } else {
        None
    };
    match plan(&argv, login, &scripts, id, zdotdir.as_deref()) {
        Some(p) => {
            let mut cmd = cmd;
            for (k, v) in &p.env {
                cmd = cmd.opt("-e", format!("{k}={v}"));
            }
            Ok(p.argv.iter().fold(cmd, |c, a| c.arg(a)))
        }
        None => Ok(plain(cmd)),
    }
}

/// How long `install` waits for the shell to show a mark.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sources the integration into the bash, zsh or fish waiting at its prompt in `pane`, by typing
/// one line with a leading space (` export TERMLOOM_STATE_FILE=…; . …/termloom.bash; printf
/// <termloom's end marker with $?>`), and waits until that line has run and the new hooks have
/// printed the next prompt's marks. What stays on screen: that line and a fresh prompt.
pub(crate) async fn install(term: &TmuxTerminal, id: SessionId, pane: &str) -> Result<()> {
    let gone = || Error::SessionDead {
        id: id.to_string(),
        name: NativeId::tmux(pane).to_string(),
    };
    let st = &term.inner.run;
    let slot = st.slot(id);
    crate::run::refuse_if_pending(&slot, false)?;
    // The shell's line query is asked again once the integration is put back.
    if let Some(state) = crate::run::state_path(term.client().options(), id) {
        let _ = std::fs::remove_file(crate::run::unanswered_path(&state));
    }
    let _guard = tokio::time::timeout(INSTALL_TIMEOUT, slot.lock.clone().lock_owned())
        .await
        .map_err(|_| Error::Timeout {
            op: "waiting for the run before it on this session".into(),
            after: INSTALL_TIMEOUT,
        })?;
    // Held until the line is typed (see `RunState::typing`): no input lands between the look
    // at the pane and the line.
    let typing = st
        .typing_by(
            id,
            tokio::time::Instant::now() + INSTALL_TIMEOUT,
            INSTALL_TIMEOUT,
        )
        .await?;
    if term.client().options().is_remote() {
        return Err(Error::unsupported(
            termloom_core::BackendKind::Tmux,
            "install shell integration",
            "the scripts are on this machine and the tmux server is on another host",
        ));
    }
    let mut probe = crate::run::probe(term, id, pane)
        .await
        .map_err(|e| not_found_as(e, gone))?;
    if probe.dead {
        return Err(gone());
    }
    probe.refuse_copy_mode()?;
    probe.refuse_synchronized(pane)?;
    let kind = match shell_kind(&probe.fg) {
        Some(k) if k.has_integration() => k,
        _ => {
            return Err(Error::unsupported(
                termloom_core::BackendKind::Tmux,
                "install shell integration",
                format!(
                    "the program in the foreground is '{}', not bash, zsh or fish",
                    probe.fg
                ),
            ));
        }
    };
    let tracker = st.tracker(term, pane, &probe.ws).await?;
    let opts = term.client().options();
    if let crate::run::Choice::Busy(why) =
        crate::run::decide(term, id, pane, &mut probe, &tracker).await?
    {
        return Err(crate::run::busy_error(pane, &why));
    }
    let scripts = st.scripts(opts)?;
    let state = scripts.state_file(id).to_string_lossy().into_owned();
    // The line ends with termloom's end marker and the status of the sourcing: the shell has read
    // and run all of it when the marker comes, and its (new) prompt hook follows.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let osc = crate::run::MARKER_OSC;
    let line = match kind {
        ShellKind::Bash | ShellKind::Zsh => format!(
            " export TERMLOOM_STATE_FILE={}; . {}; printf '\\033]{osc};E;{token};%s\\007' \"$?\"",
            sh_quote(&state),
            sh_quote(
                &if kind == ShellKind::Bash {
                    scripts.bash()
                } else {
                    scripts.zsh()
                }
                .to_string_lossy()
            )
        ),
        ShellKind::Fish | ShellKind::Posix => format!(
            " set -gx TERMLOOM_STATE_FILE {}; source {}; printf '\\e]{osc};E;{token};%s\\a' $status",
            fish_quote(&state),
            fish_quote(&scripts.fish().to_string_lossy())
        ),
    };
    let capture = tracker.start_marker(&token);
    if let Err(e) = crate::session::send_text_to(term, pane, &line, true).await {
        tracker.stop_capture(capture);
        return Err(not_found_as(e, gone));
    }
    drop(typing);
    let mut rx = tracker.watch();
    let deadline = tokio::time::Instant::now() + INSTALL_TIMEOUT;
    let timed_out = || Error::Timeout {
        op: format!(
            "waiting for {} in {pane} to confirm shell integration",
            probe.fg
        ),
        after: INSTALL_TIMEOUT,
    };
    let lost = || Error::ConnectionLost {
        backend: termloom_core::BackendKind::Tmux,
        reason: "the pane's output stream ended while installing shell integration".into(),
    };
    // 1. The line ran.
    let (code, marks) = loop {
        rx.borrow_and_update();
        if let Some(done) = tracker.marker_done(capture) {
            break done;
        }
        if !tracker.alive() {
            return Err(lost());
        }
        if !matches!(
            tokio::time::timeout_at(deadline, rx.changed()).await,
            Ok(Ok(()))
        ) {
            tracker.stop_capture(capture);
            return Err(timed_out());
        }
    };
    if code != Some(0) {
        return Err(Error::backend(
            termloom_core::BackendKind::Tmux,
            format!(
                "sourcing the shell integration in {pane} failed (status {}); the pane shows why",
                code.map_or("unknown".into(), |c| c.to_string())
            ),
        ));
    }
    // 2. The hooks printed the next prompt's marks.
    loop {
        rx.borrow_and_update();
        if tracker.prompt_marks() > marks {
            return Ok(());
        }
        if !tracker.alive() {
            return Err(lost());
        }
        if !matches!(
            tokio::time::timeout_at(deadline, rx.changed()).await,
            Ok(Ok(()))
        ) {
            return Err(timed_out());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripts() -> Scripts {
        Scripts {
            dir: PathBuf::from("/s/v1"),
            panes: PathBuf::from("/s/panes"),
        }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn env<'a>(p: &'a Plan, k: &str) -> Option<&'a str> {
        p.env
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn kinds() {
        assert_eq!(shell_kind("-bash"), Some(ShellKind::Bash));
        assert_eq!(shell_kind("/usr/bin/zsh"), Some(ShellKind::Zsh));
        assert_eq!(shell_kind("dash"), Some(ShellKind::Posix));
        assert_eq!(shell_kind("python3"), None);
    }

    #[test]
    fn bash_default_login_shell() {
        let id = SessionId::new();
        let p = plan(&v(&["/bin/bash"]), true, &scripts(), id, None).unwrap();
        assert_eq!(p.argv, v(&["/bin/bash", "--rcfile", "/s/v1/termloom.bash"]));
        assert_eq!(env(&p, "TERMLOOM_BASH_STARTUP"), Some("login"));
        assert_eq!(
            env(&p, "TERMLOOM_STATE_FILE"),
            Some(format!("/s/panes/{id}").as_str())
        );
    }

    #[test]
    fn bash_norc_loads_from_prompt_command() {
        let p = plan(
            &v(&["/bin/bash", "--norc", "--noprofile"]),
            false,
            &scripts(),
            SessionId::new(),
            None,
        )
        .unwrap();
        assert_eq!(p.argv, v(&["/bin/bash", "--norc", "--noprofile"]));
        assert_eq!(env(&p, "TERMLOOM_BASH_STARTUP"), Some("norc"));
        assert_eq!(env(&p, "PROMPT_COMMAND"), Some(". '/s/v1/termloom.bash'"));
    }

    #[test]
    fn bash_own_rcfile_and_options() {
        let p = plan(
            &v(&["bash", "-i", "--rcfile", "/my rc", "--noediting"]),
            false,
            &scripts(),
            SessionId::new(),
            None,
        )
        .unwrap();
        assert_eq!(
            p.argv,
            v(&[
                "bash",
                "--rcfile",
                "/s/v1/termloom.bash",
                "--noediting",
                "-i"
            ])
        );
        assert_eq!(env(&p, "TERMLOOM_BASH_RCFILE"), Some("/my rc"));
        assert_eq!(env(&p, "TERMLOOM_BASH_STARTUP"), Some("rc"));
        let p = plan(
            &v(&["bash", "-il"]),
            false,
            &scripts(),
            SessionId::new(),
            None,
        )
        .unwrap();
        assert_eq!(env(&p, "TERMLOOM_BASH_STARTUP"), Some("login"));
        assert_eq!(p.argv.last().unwrap(), "-i");
    }

    #[test]
    fn non_interactive_or_unknown_shells_stay_plain() {
        let s = scripts();
        let id = SessionId::new();
        assert!(plan(&v(&["bash", "-c", "x"]), false, &s, id, None).is_none());
        assert!(plan(&v(&["bash", "script.sh"]), false, &s, id, None).is_none());
        assert!(plan(&v(&["zsh", "-f"]), false, &s, id, None).is_none());
        assert!(plan(&v(&["fish", "-c", "x"]), false, &s, id, None).is_none());
        assert!(plan(&v(&["/bin/sh"]), true, &s, id, None).is_none());
        assert!(plan(&v(&["python3"]), true, &s, id, None).is_none());
    }

    #[test]
    fn zsh_and_fish() {
        let s = scripts();
        let p = plan(&v(&["/bin/zsh"]), true, &s, SessionId::new(), Some("/z")).unwrap();
        assert_eq!(p.argv, v(&["/bin/zsh", "-l"]));
        assert_eq!(env(&p, "ZDOTDIR"), Some("/s/v1/zsh"));
        assert_eq!(env(&p, "TERMLOOM_ZDOTDIR"), Some("/z"));
        let p = plan(&v(&["fish"]), false, &s, SessionId::new(), None).unwrap();
        assert_eq!(
            p.argv,
            v(&["fish", "--init-command", "source '/s/v1/termloom.fish'"])
        );
    }

    #[test]
    fn quoting_and_state() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert_eq!(fish_quote("a'b\\"), "'a\\'b\\\\'");
        assert_eq!(
            parse_state("bash idle 127\n"),
            Some(FileState {
                shell: "bash".into(),
                busy: false,
                last_exit: Some(127),
                lost: false,
                line_query: false,
            })
        );
        assert!(parse_state("bash idle - L\n").unwrap().line_query);
        assert!(parse_state("bash lost\n").unwrap().lost);
        assert_eq!(parse_state("zsh busy -").unwrap().last_exit, None);
        assert_eq!(parse_state("junk"), None);
    }

    #[test]
    fn scripts_are_written_once_and_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TmuxOptions {
            integration_dir: Some(dir.path().to_path_buf()),
            ..TmuxOptions::default()
        };
        let s = write_scripts(&opts).unwrap();
        assert_eq!(std::fs::read_to_string(s.bash()).unwrap(), BASH);
        assert_eq!(
            std::fs::read_to_string(s.zdotdir().join(".zshrc")).unwrap(),
            ZSHRC
        );
        assert!(s.panes.is_dir());
        let again = write_scripts(&opts).unwrap();
        assert_eq!(s, again);
        // No temporary files left behind.
        let leftovers = std::fs::read_dir(&s.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
