//! [`TmuxTerminal`]: core's [`Terminal`] for one tmux server.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use termloom_core::{
    BackendKind, Capabilities, Direction, Error, Layout, LayoutNode, LayoutPlacement, NativeId,
    Result, Session, SessionId, SessionInfo, SessionSpec, Terminal, TerminalKey, WindowInfo,
    WindowRef, WindowSpec, WorkspaceInfo, WorkspaceSpec,
};
use termloom_tmux_syntax::{decode_tag, encode_tag};

use crate::client::{TmuxClient, TmuxOptions};
use crate::command::{Cmd, chain, exact_session, exact_session_window, format_literal};
use crate::control::output::OutputHub;
use crate::error::TmuxError;
use crate::format::{self, OPT_ID, OPT_MANAGED, OPT_NAME};
use crate::session::TmuxSession;

/// The workspace new sessions go to when the caller names none.
pub const DEFAULT_WORKSPACE: &str = "termloom";

/// What a freshly created pane gets: its id, its name, where and with what environment it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewPane<'a> {
    pub id: SessionId,
    pub name: Option<&'a str>,
    pub cwd: Option<&'a Path>,
    pub env: &'a [(String, String)],
}

/// The global user option that holds the saved `history-limit` while a workspace is created.
const SAVED_LIMIT: &str = "@termloom_saved_history_limit";

/// A pane target no server has (tmux pane ids count up from 0 and are never this high).
const NO_SUCH_PANE: &str = "%4294967295";

/// The new pane's share of a split pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SplitSize {
    /// Percent of the pane that is split.
    Percent(u8),
    /// Columns (side by side) or rows (stacked).
    Cells(u32),
}

/// The size in cells of the pane each step of `layout.plan()` creates, when the window is
/// `width` x `height`: every split divides its span less the borders between its children, in
/// whole cells as close to the children's shares as can be (largest remainders first). Splitting
/// by percent instead rounds at every step and loses a cell to each border, so three "equal"
/// panes came out 27, 25 and 26 columns wide.
pub(crate) fn layout_step_cells(layout: &Layout, width: u32, height: u32) -> Vec<u32> {
    fn walk(node: &LayoutNode, w: u32, h: u32, out: &mut Vec<u32>) {
        let LayoutNode::Split {
            direction,
            children,
        } = node
        else {
            return;
        };
        let side_by_side = *direction == Direction::Horizontal;
        let k = children.len() as u32;
        let avail = if side_by_side { w } else { h }.saturating_sub(k.saturating_sub(1));
        let total: u32 = children
            .iter()
            .map(|c| u32::from(c.percent))
            .sum::<u32>()
            .max(1);
        let mut cells: Vec<u32> = children
            .iter()
            .map(|c| avail * u32::from(c.percent) / total)
            .collect();
        let mut rest = avail - cells.iter().sum::<u32>();
        let mut order: Vec<usize> = (0..children.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(avail * u32::from(children[i].percent) % total));
        for i in order {
            if rest == 0 {
                break;
            }
            cells[i] += 1;
            rest -= 1;
        }
        // As in `Layout::plan`: child i is split off the rest, the new pane holding children
        // i+1.. and the borders between them; then each child is divided in turn.
        for i in 0..cells.len().saturating_sub(1) {
            let after = &cells[i + 1..];
            out.push(after.iter().sum::<u32>() + after.len() as u32 - 1);
        }
        for (c, n) in children.iter().zip(cells) {
            let (cw, ch) = if side_by_side { (n, h) } else { (w, n) };
            walk(&c.node, cw, ch, out);
        }
    }
    let mut out = Vec::new();
    walk(&layout.root, width, height, &mut out);
    out
}

/// The error for a workspace that exists already.
fn workspace_exists(name: &str) -> Error {
    Error::InvalidArgument(format!("a workspace named '{name}' already exists"))
}

pub use termloom_core::{MAX_NAME_LEN, check_name, check_session_name};

pub(crate) struct Inner {
    pub client: TmuxClient,
    pub key: TerminalKey,
    pub hub: OutputHub,
    pub run: crate::run::RunState,
}

/// One tmux server (host + socket), driven through [`TmuxClient`].
#[derive(Clone)]
pub struct TmuxTerminal {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TmuxTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TmuxTerminal")
            .field("key", &self.inner.key)
            .finish()
    }
}

/// tmux turns `.` and `:` in session names into `_` and cannot hold control characters there; a
/// workspace name with them is refused rather than silently changed. So are `$` and `\`: tmux
/// stores them escaped (`a$b` becomes `a\$b`), and reads a leading `$` as a session id, so such a
/// workspace could never be addressed by its name.
pub fn check_workspace_name(name: &str) -> Result<()> {
    check_name("workspace", name)?;
    if name.contains(['.', ':']) || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "workspace name {name:?} may not contain '.', ':' or control characters (tmux session names cannot)"
        )));
    }
    if name.contains(['$', '\\']) {
        return Err(Error::InvalidArgument(format!(
            "workspace name {name:?} may not contain '$' or '\\' (tmux stores them escaped)"
        )));
    }
    Ok(())
}

/// Window names are shown by tmux as they are: control characters (a newline, the `-F` field
/// separator) are refused.
pub fn check_window_name(name: &str) -> Result<()> {
    check_name("window", name)?;
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "window name {name:?} may not contain control characters"
        )));
    }
    Ok(())
}

/// Checks the name of a window about to be made or renamed: as [`check_window_name`], and not
/// digits only, which targets would take for a window index (`ws:1` would then be ambiguous, or
/// name another window).
pub fn check_new_window_name(name: &str) -> Result<()> {
    check_window_name(name)?;
    termloom_core::check_window_name_not_index(name)
}

/// A session name as tmux can show it, in a pane title or a window name: control characters are
/// written as C escapes (`\n`, `\t`, `\037`), as tmux's `rename-window` does. tmux refuses a title
/// with control characters, and a window name with the `-F` separator in it would break listings.
pub(crate) fn shown_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A `-c` directory: tmux expands it as a format.
fn cwd_arg(p: &Path) -> String {
    format_literal(&p.to_string_lossy())
}

impl TmuxTerminal {
    /// A terminal for the server `opts` names. Nothing is spawned until the first call.
    pub fn new(opts: TmuxOptions) -> Self {
        // host + socket; see TmuxOptions::terminal_key for a remote host's socket.
        let key = opts.terminal_key();
        let opts = Arc::new(opts);
        TmuxTerminal {
            inner: Arc::new(Inner {
                hub: OutputHub::new(opts.clone()),
                client: TmuxClient::new(opts),
                run: crate::run::RunState::default(),
                key,
            }),
        }
    }

    /// The output hub (one control client per watched workspace).
    pub fn hub(&self) -> &OutputHub {
        &self.inner.hub
    }

    /// The command seam.
    pub fn client(&self) -> &TmuxClient {
        &self.inner.client
    }

    /// Runs one command list and returns its stdout.
    pub async fn run(&self, cmds: Vec<Cmd>) -> Result<String> {
        Ok(self.inner.client.run(chain(cmds)).await?)
    }

    /// Whether a tmux session (workspace) with exactly this name exists.
    pub async fn has_workspace(&self, name: &str) -> Result<bool> {
        match self
            .inner
            .client
            .run(
                Cmd::new("has-session")
                    .opt("-t", exact_session(name))
                    .into_args(),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TmuxError::NoServer(_)) => Ok(false),
            Err(e @ TmuxError::CommandFailed { .. }) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_rows(&self, scope: Option<&str>) -> Result<Vec<format::PaneRow>> {
        let cmd = match scope {
            Some(t) => Cmd::new("list-panes").opt("-t", t),
            None => Cmd::new("list-panes").arg("-a"),
        }
        .opt("-F", format::pane_format());
        let out = match self.inner.client.run(cmd.into_args()).await {
            Ok(o) => o,
            Err(TmuxError::NoServer(_)) if scope.is_none() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        format::records(&out, format::PANE_FIELDS.len())
            .iter()
            .filter(|r| !(r.len() == 1 && r[0].is_empty()))
            .map(|r| format::parse_pane(r, &self.inner.key).map_err(Error::from))
            .collect()
    }

    /// Lists panes (of one target, or all), tagging any pane that has no persistent id yet.
    pub(crate) async fn list_infos(&self, scope: Option<&str>) -> Result<Vec<SessionInfo>> {
        let mut rows = self.list_rows(scope).await?;
        let untagged: Vec<(String, Option<u32>)> = rows
            .iter()
            .filter(|r| r.termloom_id.is_none())
            .map(|r| (r.pane_id.clone(), r.info.pid))
            .collect();
        if !untagged.is_empty() {
            // `-o` only sets an unset option, so two listers racing agree on one id; re-read after.
            for (pane, pid) in &untagged {
                // A pane termloom is creating has its id in its shell's environment (the state
                // file's name) before its creator tags it: the same id, then, or the creator
                // would overwrite this one and leave it in this lister's registry as a phantom.
                let id = (!self.inner.client.options().is_remote())
                    .then(|| pid.and_then(crate::run::intended_id))
                    .flatten()
                    .filter(|id| !rows.iter().any(|r| r.termloom_id == Some(*id)))
                    .unwrap_or_else(SessionId::new);
                let cmd = Cmd::new("set-option")
                    .arg("-o")
                    .arg("-p")
                    .opt("-t", pane)
                    .arg(OPT_ID)
                    .arg(id.to_string());
                if let Err(e) = self.inner.client.run(cmd.into_args()).await {
                    tracing::debug!(pane = %pane, error = %e, "tagging pane");
                }
            }
            rows = self.list_rows(scope).await?;
        }
        Ok(rows
            .into_iter()
            .filter(|r| r.termloom_id.is_some())
            .map(|r| r.info)
            .collect())
    }

    /// Checks that no live session has this name already.
    pub(crate) async fn ensure_unique_name(
        &self,
        name: &str,
        except: Option<SessionId>,
    ) -> Result<()> {
        let all = self.list_infos(None).await?;
        if let Some(s) = all.iter().find(|s| s.name == name && Some(s.id) != except) {
            return Err(Error::InvalidArgument(format!(
                "a session named '{name}' already exists ({}, {}); pick another name",
                s.id,
                s.path()
            )));
        }
        Ok(())
    }

    /// The commands that tag a freshly created pane (the current target after a create command).
    fn tag_cmds(id: SessionId, name: Option<&str>, pane: Option<&str>) -> Vec<Cmd> {
        let with_t = |c: Cmd| match pane {
            Some(p) => c.opt("-t", p),
            None => c,
        };
        let mut v = vec![
            with_t(Cmd::new("set-option").arg("-p"))
                .arg(OPT_ID)
                .arg(id.to_string()),
            with_t(Cmd::new("set-option").arg("-p"))
                .arg(OPT_MANAGED)
                .arg("1"),
        ];
        if let Some(n) = name {
            v.push(
                with_t(Cmd::new("set-option").arg("-p"))
                    .arg(OPT_NAME)
                    .arg(format::encode_value(n)),
            );
            v.push(with_t(Cmd::new("select-pane")).opt("-T", format_literal(&shown_name(n))));
        }
        v
    }

    /// Appends the new pane's shell: integrated bash/zsh/fish, else `TmuxOptions::shell` as it is.
    async fn shell_args(&self, cmd: Cmd, id: SessionId) -> Result<Cmd> {
        crate::integration::shell_args(self, cmd, id).await
    }

    fn env_args(cmd: Cmd, env: &[(String, String)]) -> Result<Cmd> {
        let mut cmd = cmd;
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "invalid environment variable name '{}'",
                    k.escape_debug()
                )));
            }
            if v.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "the value of environment variable '{k}' contains a NUL byte, which an environment cannot hold"
                )));
            }
            cmd = cmd.opt("-e", format!("{k}={v}"));
        }
        Ok(cmd)
    }

    /// Refuses a working directory that is not one (tmux would start the shell in its own cwd
    /// without a word). Only on this machine: a remote host's directories are its own.
    fn check_cwd(&self, cwd: Option<&Path>) -> Result<()> {
        if let Some(c) = cwd
            && !self.inner.client.options().is_remote()
            && !c.is_dir()
        {
            return Err(Error::InvalidArgument(format!(
                "the working directory {} is not a directory",
                c.display()
            )));
        }
        Ok(())
    }

    /// Parses the `-P -F` output of a create command into the new pane's id.
    fn created_pane(out: &str) -> Result<String> {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with('%'))
            .map(str::to_string)
            .ok_or_else(|| {
                Error::backend(
                    BackendKind::Tmux,
                    format!("tmux did not report the new pane (got {out:?})"),
                )
            })
    }

    /// Fetches one pane's info by its native id.
    pub(crate) async fn pane_info(&self, pane: &str) -> Result<SessionInfo> {
        let rows = self.list_rows(Some(pane)).await?;
        rows.into_iter()
            .find(|r| r.pane_id == pane)
            .and_then(|r| r.termloom_id.map(|_| r.info))
            .ok_or_else(|| Error::SessionNotFound {
                target: NativeId::tmux(pane).to_string(),
            })
    }

    /// Creates a workspace, its first window and pane; returns the pane id, or `None` when a
    /// workspace of that name exists already (another caller may have created it a moment ago).
    async fn new_workspace(
        &self,
        name: &str,
        window: Option<&str>,
        size: Option<(u16, u16)>,
        history_limit: Option<u32>,
        p: NewPane<'_>,
    ) -> Result<Option<String>> {
        let NewPane {
            id,
            name: session_name,
            cwd,
            env,
        } = p;
        self.check_cwd(cwd)?;
        check_workspace_name(name)?;
        let limit = history_limit.unwrap_or(self.inner.client.options().history_limit);
        let mut create = Cmd::new("new-session")
            .arg("-d")
            .arg("-P")
            .opt("-F", "#{pane_id}")
            .opt("-s", format_literal(name))
            .opt_if("-n", window.map(format_literal))
            .opt_if("-c", cwd.map(cwd_arg));
        if let Some((w, h)) = size {
            create = create.opt("-x", w.to_string()).opt("-y", h.to_string());
        }
        let create = self.shell_args(Self::env_args(create, env)?, id).await?;
        // history-limit is read when a pane is created: save the global value in a user option,
        // raise it for this one new-session and restore it, all in one command list (tmux runs it
        // without interleaving other clients, and a server started by this very list has loaded
        // its config first). After new-session, the next commands target the new pane.
        // The save names a pane that cannot exist: set-option then expands the format with no
        // session, so `#{history-limit}` is the global value, not the value some other workspace
        // set for itself (which the current session's would be).
        let mut cmds = vec![
            Cmd::new("set-option")
                .arg("-gF")
                .opt("-t", NO_SUCH_PANE)
                .arg(SAVED_LIMIT)
                .arg("#{history-limit}"),
            Cmd::new("set-option")
                .arg("-g")
                .arg("history-limit")
                .arg(limit.to_string()),
            create,
        ];
        cmds.extend(Self::tag_cmds(id, session_name, None));
        cmds.push(
            Cmd::new("set-option")
                .opt("-t", exact_session_window(name))
                .arg("history-limit")
                .arg(limit.to_string()),
        );
        cmds.push(
            Cmd::new("set-option")
                .arg("-gF")
                .arg("history-limit")
                .arg(format!("#{{{SAVED_LIMIT}}}")),
        );
        cmds.push(Cmd::new("set-option").arg("-gu").arg(SAVED_LIMIT));
        // Spawned, so that a server that is not running yet is started by this command. Clients
        // racing to start the server can see it as gone ("no server running", "server exited
        // unexpectedly") while another one's start is under way: nothing was created then, so
        // the list is sent again (a few times, briefly spaced).
        let argv = chain(cmds);
        let mut tries = 0u64;
        let done = loop {
            match self.inner.client.spawn(argv.clone(), None).await {
                Err(TmuxError::NoServer(_)) if tries < 8 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 * tries)).await;
                }
                other => break other,
            }
        };
        match done {
            Ok(out) => Self::created_pane(&out).map(Some),
            Err(TmuxError::CommandFailed { stderr, .. })
                if stderr.contains("duplicate session") =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a window in an existing workspace; returns the pane id.
    async fn new_window(
        &self,
        workspace: &str,
        window: Option<&str>,
        select: bool,
        p: NewPane<'_>,
    ) -> Result<String> {
        let NewPane {
            id,
            name: session_name,
            cwd,
            env,
        } = p;
        self.check_cwd(cwd)?;
        let create = Cmd::new("new-window")
            .flag_if("-d", !select)
            .arg("-P")
            .opt("-F", "#{pane_id}")
            .opt("-t", format!("{}:", exact_session(workspace)))
            .opt_if("-n", window.map(format_literal))
            .opt_if("-c", cwd.map(cwd_arg));
        let create = self.shell_args(Self::env_args(create, env)?, id).await?;
        let out = self
            .run(vec![create])
            .await
            .map_err(|e| not_found_as(e, || Error::WorkspaceNotFound(workspace.to_string())))?;
        let pane = Self::created_pane(&out)?;
        // After `new-window -d` tmux's current target stays on the old pane: tag by id.
        self.run(Self::tag_cmds(id, session_name, Some(&pane)))
            .await?;
        Ok(pane)
    }

    /// Splits `pane`; returns the new pane id. The new pane is tagged in the same command list.
    pub(crate) async fn split_pane(
        &self,
        pane: &str,
        horizontal: bool,
        before: bool,
        size: Option<SplitSize>,
        p: NewPane<'_>,
    ) -> Result<String> {
        let NewPane {
            id,
            name: session_name,
            cwd,
            env,
        } = p;
        self.check_cwd(cwd)?;
        let create = Cmd::new("split-window")
            .arg("-d")
            .arg(if horizontal { "-h" } else { "-v" })
            .flag_if("-b", before)
            .opt("-t", pane)
            .opt_if(
                "-l",
                size.map(|s| match s {
                    SplitSize::Percent(p) => format!("{}%", p.clamp(1, 99)),
                    SplitSize::Cells(n) => n.max(1).to_string(),
                }),
            )
            .opt_if("-c", cwd.map(cwd_arg))
            .arg("-P")
            .opt("-F", "#{pane_id}");
        let create = self.shell_args(Self::env_args(create, env)?, id).await?;
        let out = self.run(vec![create]).await.map_err(|e| {
            not_found_as(e, || Error::SessionNotFound {
                target: NativeId::tmux(pane).to_string(),
            })
        })?;
        let new = Self::created_pane(&out)?;
        self.run(Self::tag_cmds(id, session_name, Some(&new)))
            .await?;
        Ok(new)
    }

    /// Types a command into a pane's shell, then Enter.
    pub(crate) async fn type_command(&self, pane: &str, command: &str) -> Result<()> {
        crate::session::send_text_to(self, pane, command, true).await
    }

    /// Refuses `name` for a window of `workspace` when another window there has it already
    /// (`except`: the window being renamed, by id): a name that two windows share is ambiguous
    /// in every target that names it.
    async fn check_window_name_free(
        &self,
        workspace: &str,
        name: &str,
        except: Option<&str>,
    ) -> Result<()> {
        let wins = self.list_windows(Some(workspace)).await?;
        if let Some(w) = wins
            .iter()
            .find(|w| w.name == name && Some(w.native.as_str()) != except)
        {
            return Err(Error::InvalidArgument(format!(
                "workspace '{workspace}' has a window named '{name}' already (index {}): window names are targets, so each must be unique; pick another name",
                w.index
            )));
        }
        Ok(())
    }

    async fn window_id(&self, w: &WindowRef) -> Result<String> {
        let wins = self.list_windows(Some(&w.workspace)).await?;
        let found: Vec<&WindowInfo> = wins
            .iter()
            .filter(|x| w.window.matches(x.index, &x.name))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.native.clone()),
            [] => Err(Error::WindowNotFound(w.to_string())),
            many => Err(Error::AmbiguousTarget {
                target: w.to_string(),
                candidates: many
                    .iter()
                    .map(|x| format!("{}:{} ({})", x.workspace, x.index, x.native))
                    .collect(),
            }),
        }
    }
}

/// Maps tmux's "can't find …" and "no such session …", and a server that is not running (nothing
/// exists then), to the given error; anything else is left as it is.
pub(crate) fn not_found_as(e: Error, f: impl FnOnce() -> Error) -> Error {
    const NOT_FOUND: &[&str] = &[
        "can't find",
        "no such session",
        "no such window",
        "no such pane",
        "no server running",
        "no tmux server running",
    ];
    match &e {
        Error::Backend { message, .. } if NOT_FOUND.iter().any(|m| message.contains(m)) => f(),
        _ => e,
    }
}

#[async_trait]
impl Terminal for TmuxTerminal {
    fn kind(&self) -> BackendKind {
        BackendKind::Tmux
    }

    fn key(&self) -> TerminalKey {
        self.inner.key.clone()
    }

    fn change_lock_path(&self) -> Option<std::path::PathBuf> {
        let o = self.inner.client.options();
        if o.host.is_some() {
            return None;
        }
        let socket = o.socket_path();
        // tmux's own socket directory (`-L`, the default server) exists only once a server
        // started: made as tmux makes it (owner only), so that the first creations lock too.
        if !matches!(o.socket, crate::client::Socket::Path(_))
            && let Some(dir) = socket.parent()
            && !dir.exists()
            && let Err(e) = termloom_core::private::create_dir_all(dir)
        {
            tracing::debug!(dir = %dir.display(), error = %e, "no tmux socket directory for the change lock");
        }
        let mut p = socket.into_os_string();
        p.push(".termloom-changing");
        Some(p.into())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            workspaces: true,
            windows: true,
            layouts: true,
            resize: true,
            scrollback_config: true,
            run: true,
            monitor: true,
            cursor_reads: true,
            shell_integration: true,
            notes: vec![
                (
                    "run".into(),
                    "strategies: shell integration (OSC 133, exact output and exit code), else a per-call marker in plain POSIX shells and fish, else the caller's prompt regex or quiet period".into(),
                ),
                (
                    "shell_integration".into(),
                    "bash, zsh and fish panes termloom creates on a local server; `integrate` installs it into a running bash, zsh or fish".into(),
                ),
                (
                    "monitor".into(),
                    "one control-mode client per watched workspace".into(),
                ),
            ],
        }
    }

    async fn list_sessions(&self) -> Result<Vec<SessionInfo>> {
        self.list_infos(None).await
    }

    async fn open(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        if info.native.backend != BackendKind::Tmux {
            return Err(Error::InvalidArgument(format!(
                "{} is not a tmux pane",
                info.native
            )));
        }
        let pane = info.native.id.clone();
        // The native id is a hint: check the pane still carries this session's id.
        let dead = || Error::SessionDead {
            id: info.id.to_string(),
            name: info.name.clone(),
        };
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", &pane)
                    .arg(format::format(&["#{pane_id}", &format!("#{{{OPT_ID}}}")])),
            ])
            .await
            .map_err(|e| not_found_as(e, dead))?;
        let (found, id) = out
            .trim_end_matches('\n')
            .split_once(format::SEP)
            .unwrap_or_default();
        // display-message succeeds, printing empty fields, when its target pane does not exist.
        if found != pane {
            return Err(dead());
        }
        if id != info.id.to_string() {
            return Err(Error::StaleNativeId {
                id: info.id.to_string(),
                native: info.native.to_string(),
            });
        }
        Ok(Arc::new(
            TmuxSession::new(self.clone(), info.id, pane).labelled(Some(&info.name)),
        ))
    }

    /// The listing that returned `info` read `@termloom_id` on its pane (that is how it got the
    /// id), and tmux never reuses a `%N` while the server lives; every input and read of
    /// [`TmuxSession`] re-checks the id in its first command anyway (`state`, `probe`).
    async fn open_listed(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        if info.native.backend != BackendKind::Tmux || info.terminal != self.inner.key {
            return self.open(info).await;
        }
        Ok(Arc::new(
            TmuxSession::new(self.clone(), info.id, info.native.id.clone())
                .labelled(Some(&info.name)),
        ))
    }

    /// Every operation of [`TmuxSession`] checks `@termloom_id` (and, for writes on a
    /// managed-only handle, `@termloom_managed`) in its first command, or in the same `if-shell`
    /// as its input and reads.
    async fn open_hinted(
        &self,
        id: SessionId,
        native: &NativeId,
        managed_only: bool,
        name: Option<&str>,
    ) -> Result<Option<Arc<dyn Session>>> {
        if native.backend != BackendKind::Tmux || !native.id.starts_with('%') {
            return Ok(None);
        }
        // A pane with no stored name is listed as `workspace:window.pane`, which the handle
        // could not check against the pane (it has no name stored): leave it to the listing.
        if name.is_some_and(looks_like_fallback_name) {
            return Ok(None);
        }
        Ok(Some(Arc::new(
            TmuxSession::new(self.clone(), id, native.id.clone())
                .managed_only(managed_only)
                .expect_name(name)
                .labelled(name),
        )))
    }

    async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo> {
        let ws = spec
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
        check_workspace_name(&ws)?;
        if let Some(w) = &spec.window {
            check_window_name(w)?;
        }
        if let Some(n) = &spec.name {
            check_session_name(n)?;
            self.ensure_unique_name(n, None).await?;
        }
        let id = SessionId::new();
        let name = spec.name.as_deref();
        let window_name = spec.window.clone().or_else(|| name.map(shown_name));
        let window_name = window_name.as_deref();
        let cwd = spec.cwd.as_deref();
        let mut created = None;
        if !self.has_workspace(&ws).await? {
            // `None`: another caller created the workspace since; join it like an existing one.
            created = self
                .new_workspace(
                    &ws,
                    window_name,
                    spec.size,
                    None,
                    NewPane {
                        id,
                        name,
                        cwd,
                        env: &spec.env,
                    },
                )
                .await?;
        }
        let pane = if let Some(p) = created {
            p
        } else {
            let existing = match &spec.window {
                Some(w) => {
                    // As in targets: digits name the window at that index (or one named so).
                    let sel = termloom_core::WindowSel::parse(w);
                    let mut wins: Vec<_> = self
                        .list_windows(Some(&ws))
                        .await?
                        .into_iter()
                        .filter(|x| sel.matches(x.index, &x.name))
                        .collect();
                    if wins.len() > 1 {
                        return Err(Error::InvalidArgument(format!(
                            "window '{w}' of workspace '{ws}' is ambiguous: it is a window's index and another window's name; give the other window's name"
                        )));
                    }
                    if wins.is_empty() && matches!(sel, termloom_core::WindowSel::Index(_)) {
                        return Err(Error::InvalidArgument(format!(
                            "workspace '{ws}' has no window {w}; a window named with digits would be taken for an index later, so none is made: give a name"
                        )));
                    }
                    wins.pop()
                }
                None => None,
            };
            match existing {
                Some(win) => {
                    let active = self
                        .run(vec![
                            Cmd::new("display-message")
                                .arg("-p")
                                .opt("-t", &win.native)
                                .arg("#{pane_id}"),
                        ])
                        .await?;
                    self.split_pane(
                        active.trim(),
                        false,
                        false,
                        None,
                        NewPane {
                            id,
                            name,
                            cwd,
                            env: &spec.env,
                        },
                    )
                    .await?
                }
                None => {
                    self.new_window(
                        &ws,
                        window_name,
                        false,
                        NewPane {
                            id,
                            name,
                            cwd,
                            env: &spec.env,
                        },
                    )
                    .await?
                }
            }
        };
        if let Some(c) = &spec.command {
            self.type_command(&pane, c).await?;
        }
        self.pane_info(&pane).await
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceInfo>> {
        // Sessions and clients in one round trip, told apart by their first field. `attached`
        // counts the clients that show the session to someone: tmux's `session_attached` also
        // counts control clients that receive no output or ignore the size (termloom's own
        // connections, this process's or another's), which no one looks through.
        let sessions = format::format(&[
            "S",
            "#{session_name}",
            "#{session_id}",
            "#{session_windows}",
            "#{session_created}",
        ]);
        let clients = format::format(&[
            "C",
            "#{session_id}",
            "#{client_control_mode}",
            "#{client_flags}",
            "",
        ]);
        let cmds = chain(vec![
            Cmd::new("list-sessions").opt("-F", sessions),
            Cmd::new("list-clients").opt("-F", clients),
        ]);
        let out = match self.inner.client.run(cmds).await {
            Ok(o) => o,
            Err(TmuxError::NoServer(_)) => return Ok(Vec::new()),
            // `list-clients` with no session to take as its target: a server with no session
            // (`exit-empty off`, or the last one has just gone and the server is on its way out).
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let rows = format::rows(out.trim_end_matches('\n'), 5);
        let watched: Vec<&str> = rows
            .iter()
            .filter(|r| r.len() == 5 && r[0] == "C" && shows_the_session(&r[2], &r[3]))
            .map(|r| r[1].as_str())
            .collect();
        Ok(rows
            .iter()
            .filter(|r| r.len() == 5 && r[0] == "S")
            .map(|r| WorkspaceInfo {
                name: r[1].clone(),
                native: r[2].clone(),
                windows: r[3].parse().unwrap_or(0),
                attached: watched.contains(&r[2].as_str()),
                created: r[4].parse().unwrap_or(0),
            })
            .collect())
    }

    async fn create_workspace(&self, spec: &WorkspaceSpec) -> Result<SessionInfo> {
        check_workspace_name(&spec.name)?;
        if let Some(n) = &spec.session_name {
            check_session_name(n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if let Some(w) = &spec.window {
            check_new_window_name(w)?;
        }
        if self.has_workspace(&spec.name).await? {
            return Err(workspace_exists(&spec.name));
        }
        let id = SessionId::new();
        let pane = self
            .new_workspace(
                &spec.name,
                spec.window.as_deref(),
                spec.size,
                spec.history_limit,
                NewPane {
                    id,
                    name: spec.session_name.as_deref(),
                    cwd: spec.cwd.as_deref(),
                    env: &spec.env,
                },
            )
            .await?
            .ok_or_else(|| workspace_exists(&spec.name))?;
        self.pane_info(&pane).await
    }

    async fn destroy_workspace(&self, name: &str) -> Result<()> {
        self.run(vec![
            Cmd::new("kill-session").opt("-t", exact_session(name)),
        ])
        .await
        .map_err(|e| not_found_as(e, || Error::WorkspaceNotFound(name.to_string())))?;
        Ok(())
    }

    async fn list_windows(&self, workspace: Option<&str>) -> Result<Vec<WindowInfo>> {
        let fmt = format::record_format(&[
            "#{session_name}",
            "#{window_index}",
            "#{window_id}",
            "#{window_panes}",
            "#{window_active}",
            "#{window_layout}",
            "#{window_name}",
        ]);
        let cmd = match workspace {
            Some(ws) => Cmd::new("list-windows").opt("-t", exact_session(ws)),
            None => Cmd::new("list-windows").arg("-a"),
        }
        .opt("-F", fmt);
        let out = match self.inner.client.run(cmd.into_args()).await {
            Ok(o) => o,
            Err(TmuxError::NoServer(_)) if workspace.is_none() => return Ok(Vec::new()),
            Err(e) => {
                let e: Error = e.into();
                return Err(not_found_as(e, || {
                    Error::WorkspaceNotFound(workspace.unwrap_or_default().to_string())
                }));
            }
        };
        Ok(format::records(&out, 7)
            .into_iter()
            .filter(|r| r.len() == 7)
            .map(|r| WindowInfo {
                workspace: r[0].to_string(),
                index: r[1].parse().unwrap_or(0),
                native: r[2].to_string(),
                panes: r[3].parse().unwrap_or(0),
                active: r[4] == "1",
                layout: Some(r[5].to_string()),
                name: r[6].to_string(),
            })
            .collect())
    }

    async fn create_window(&self, spec: &WindowSpec) -> Result<SessionInfo> {
        if let Some(n) = &spec.session_name {
            check_session_name(n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if let Some(n) = &spec.name {
            check_new_window_name(n)?;
            self.check_window_name_free(&spec.workspace, n, None)
                .await?;
        }
        let id = SessionId::new();
        let pane = self
            .new_window(
                &spec.workspace,
                spec.name.as_deref(),
                spec.select,
                NewPane {
                    id,
                    name: spec.session_name.as_deref(),
                    cwd: spec.cwd.as_deref(),
                    env: &[],
                },
            )
            .await?;
        if let Some(c) = &spec.command {
            self.type_command(&pane, c).await?;
        }
        self.pane_info(&pane).await
    }

    async fn fit_layout(
        &self,
        window_id: &str,
        layout: &Layout,
        panes: &[SessionInfo],
    ) -> Result<()> {
        if !window_id.starts_with('@') {
            return Err(Error::InvalidArgument(format!(
                "'{window_id}' is not a tmux window id (@N)"
            )));
        }
        let listed = self
            .run(vec![Cmd::new("list-panes").opt("-t", window_id).opt(
                "-F",
                format::format(&["#{pane_id}", "#{window_width}", "#{window_height}"]),
            )])
            .await?;
        let rows = format::rows(&listed, 3);
        let mut order: Vec<String> = rows.iter().map(|f| f[0].clone()).collect();
        let size = |i: usize| rows.first().and_then(|f| f[i].parse::<u32>().ok());
        let (Some(width), Some(height)) = (size(1), size(2)) else {
            return Ok(());
        };
        let wanted: Vec<String> = panes.iter().map(|s| s.native.id.clone()).collect();
        let mut sorted_now = order.clone();
        let mut sorted_wanted = wanted.clone();
        sorted_now.sort();
        sorted_wanted.sort();
        // Other panes in the window too (or some elsewhere): its shape is a person's business.
        if sorted_now != sorted_wanted
            || panes.iter().any(|s| s.native.backend != BackendKind::Tmux)
        {
            return Ok(());
        }
        let ids: Option<Vec<u32>> = wanted
            .iter()
            .map(|p| p.strip_prefix('%').and_then(|n| n.parse().ok()))
            .collect();
        let Some(text) =
            ids.and_then(|ids| crate::control::layout::layout_string(layout, width, height, &ids))
        else {
            return Ok(());
        };
        // tmux gives a layout's leaves the window's panes in list order: swap them into the
        // leaves' order first (ids and processes stay), then shape the window in the same list.
        let mut cmds = Vec::new();
        for i in 0..wanted.len() {
            if order[i] != wanted[i] {
                let j = order.iter().position(|p| *p == wanted[i]).unwrap_or(i);
                cmds.push(
                    Cmd::new("swap-pane")
                        .arg("-d")
                        .opt("-s", &wanted[i])
                        .opt("-t", &order[i]),
                );
                order.swap(i, j);
            }
        }
        cmds.push(Cmd::new("select-layout").opt("-t", window_id).arg(text));
        self.run(cmds).await?;
        Ok(())
    }

    async fn kill_window(&self, window: &WindowRef) -> Result<()> {
        let id = self.window_id(window).await?;
        self.run(vec![Cmd::new("kill-window").opt("-t", id)])
            .await?;
        Ok(())
    }

    async fn rename_window(&self, window: &WindowRef, name: &str) -> Result<()> {
        check_new_window_name(name)?;
        // rename-window stores a name escaped (`\` as `\\`, `$x` as `\$x`), unlike new-window -n:
        // such a name would never match itself again.
        if name.contains(['\\', '$']) {
            return Err(Error::InvalidArgument(format!(
                "window name {name:?} may not contain '\\' or '$' when renaming (tmux's rename-window escapes them)"
            )));
        }
        let id = self.window_id(window).await?;
        self.check_window_name_free(&window.workspace, name, Some(&id))
            .await?;
        // `--`: a name such as `-d` is the name, not a flag.
        self.run(vec![
            Cmd::new("rename-window")
                .opt("-t", id)
                .arg("--")
                .arg(format_literal(name)),
        ])
        .await?;
        Ok(())
    }

    async fn select_window(&self, window: &WindowRef) -> Result<()> {
        let id = self.window_id(window).await?;
        self.run(vec![Cmd::new("select-window").opt("-t", id)])
            .await?;
        Ok(())
    }

    async fn scrollback(&self, workspace: &str, lines: Option<u32>) -> Result<u32> {
        let target = exact_session_window(workspace);
        let nf = || Error::WorkspaceNotFound(workspace.to_string());
        if let Some(n) = lines {
            if n == 0 || n > 10_000_000 {
                return Err(Error::InvalidArgument(format!(
                    "scrollback must be 1..=10000000 lines, got {n}"
                )));
            }
            self.run(vec![
                Cmd::new("set-option")
                    .opt("-t", &target)
                    .arg("history-limit")
                    .arg(n.to_string()),
            ])
            .await
            .map_err(|e| not_found_as(e, nf))?;
        }
        // display-message, not show-options: both quietly fall back to another session when the
        // target does not exist, but display-message's session id then comes back empty.
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", &target)
                    .arg(format::format(&["#{session_id}", "#{history-limit}"])),
            ])
            .await
            .map_err(|e| not_found_as(e, nf))?;
        let (session, value) = out
            .trim_end_matches('\n')
            .split_once(format::SEP)
            .unwrap_or_default();
        if session.is_empty() {
            return Err(nf());
        }
        value.parse().map_err(|_| {
            Error::backend(
                BackendKind::Tmux,
                format!("unexpected history-limit value {value:?}"),
            )
        })
    }

    async fn apply_layout(
        &self,
        layout: &Layout,
        placement: &LayoutPlacement,
    ) -> Result<Vec<(String, SessionInfo)>> {
        let plan = layout.plan()?;
        for (_, p) in &plan.panes {
            check_session_name(&p.name)?;
        }
        let ws = placement
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
        check_workspace_name(&ws)?;
        if let Some(w) = &placement.window {
            check_new_window_name(w)?;
            if self.has_workspace(&ws).await? {
                self.check_window_name_free(&ws, w, None).await?;
            }
        }
        let existing = self.list_infos(None).await?;
        for (_, p) in &plan.panes {
            if let Some(s) = existing.iter().find(|s| s.name == p.name) {
                return Err(Error::InvalidArgument(format!(
                    "a session named '{}' already exists ({}); pick other pane names",
                    p.name, s.id
                )));
            }
        }
        let n = plan.panes.len();
        let ids: Vec<SessionId> = (0..n).map(|_| SessionId::new()).collect();
        let spec_of = |slot: usize| plan.panes.iter().find(|(s, _)| *s == slot).map(|(_, p)| p);
        let cwd_of = |slot: usize| {
            spec_of(slot)
                .and_then(|p| p.cwd.clone())
                .or_else(|| placement.cwd.clone())
        };
        let name_of = |slot: usize| spec_of(slot).map(|p| p.name.clone());
        let id_of = |slot: usize| {
            plan.panes
                .iter()
                .position(|(s, _)| *s == slot)
                .map(|i| ids[i])
                .unwrap_or_default()
        };
        let window_name = placement.window.clone().or_else(|| {
            name_of(0)
                .map(|n| shown_name(&n))
                .filter(|n| check_new_window_name(n).is_ok())
        });
        let (name0, cwd0) = (name_of(0), cwd_of(0));
        let first_pane = NewPane {
            id: id_of(0),
            name: name0.as_deref(),
            cwd: cwd0.as_deref(),
            env: &[],
        };
        let mut created = None;
        if !self.has_workspace(&ws).await? {
            // `None`: another caller created the workspace since; add a window to it instead.
            created = self
                .new_workspace(&ws, window_name.as_deref(), None, None, first_pane)
                .await?;
        }
        let first = match created {
            Some(p) => p,
            None => {
                self.new_window(&ws, window_name.as_deref(), false, first_pane)
                    .await?
            }
        };
        // A window built half way (tmux ran out of room for a pane, a command failed) is
        // closed again: its panes would otherwise stay as sessions nobody asked for, and a second
        // try would find their names taken.
        let mut dims = (0, 0);
        let built: Result<Vec<(String, SessionInfo)>> = async {
            let size = self
                .run(vec![
                    Cmd::new("display-message")
                        .arg("-p")
                        .opt("-t", &first)
                        .arg("#{window_width} #{window_height}"),
                ])
                .await?;
            let mut wh = size.split_whitespace().map(|n| n.parse::<u32>().ok());
            let cells = match (wh.next().flatten(), wh.next().flatten()) {
                (Some(w), Some(h)) => {
                    dims = (w, h);
                    layout_step_cells(layout, w, h)
                }
                _ => Vec::new(),
            };
            let mut slots = vec![first.clone()];
            for (i, step) in plan.steps.iter().enumerate() {
                let new_slot = i + 1;
                let target = slots.get(step.slot).cloned().ok_or_else(|| {
                    Error::InvalidArgument("layout plan refers to a missing pane".into())
                })?;
                let pane = self
                    .split_pane(
                        &target,
                        step.direction == termloom_core::Direction::Horizontal,
                        false,
                        Some(match cells.get(i) {
                            Some(n) if cells.len() == plan.steps.len() => SplitSize::Cells(*n),
                            _ => SplitSize::Percent(step.percent),
                        }),
                        NewPane {
                            id: id_of(new_slot),
                            name: name_of(new_slot).as_deref(),
                            cwd: cwd_of(new_slot).as_deref(),
                            env: &[],
                        },
                    )
                    .await?;
                slots.push(pane);
            }
            for (slot, spec) in &plan.panes {
                if let Some(c) = &spec.command {
                    self.type_command(&slots[*slot], c).await?;
                }
            }
            if let Some((slot, _)) = plan.panes.iter().find(|(_, p)| p.focus) {
                self.run(vec![Cmd::new("select-pane").opt("-t", &slots[*slot])])
                    .await?;
            }
            let infos = self.list_infos(Some(&slots[0])).await?;
            let mut out = Vec::new();
            for (slot, spec) in &plan.panes {
                let info = infos
                    .iter()
                    .find(|s| s.native.id == slots[*slot])
                    .cloned()
                    .ok_or_else(|| {
                        Error::backend(
                            BackendKind::Tmux,
                            format!("pane {} vanished while building the layout", slots[*slot]),
                        )
                    })?;
                out.push((spec.name.clone(), info));
            }
            Ok(out)
        }
        .await;
        let e = match built {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        let closed = self
            .run(vec![Cmd::new("kill-window").opt("-t", &first)])
            .await;
        let left = match &closed {
            Ok(_) => "the partly built window was closed again".to_string(),
            Err(c) => format!("its partly built window (pane {first}) could not be closed: {c}"),
        };
        Err(match e {
            Error::Backend { message, .. } if message.contains("no space for new pane") => {
                Error::InvalidArgument(format!(
                    "the layout's {n} panes do not fit in a {}x{} window: make the window larger (or the terminal attached to it) or use fewer panes; {left}",
                    dims.0, dims.1
                ))
            }
            Error::Backend { backend, message } => Error::Backend {
                backend,
                message: format!("{message}; {left}"),
            },
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{m}; {left}")),
            other => {
                tracing::warn!(error = %other, "{left}");
                other
            }
        })
    }

    async fn set_workspace_tag(
        &self,
        workspace: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        termloom_core::project::check_tag_key(key)?;
        let opt = format!("{TAG_PREFIX}{key}");
        let target = exact_session_window(workspace);
        let cmd = match value {
            Some(v) => Cmd::new("set-option")
                .opt("-t", target)
                .arg(opt)
                .arg(encode_tag(v)),
            None => Cmd::new("set-option").arg("-u").opt("-t", target).arg(opt),
        };
        self.run(vec![cmd])
            .await
            .map_err(|e| not_found_as(e, || Error::WorkspaceNotFound(workspace.to_string())))?;
        Ok(())
    }

    async fn workspace_tags(
        &self,
        workspace: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let out = self
            .run(vec![
                Cmd::new("show-options").opt("-t", exact_session_window(workspace)),
            ])
            .await
            .map_err(|e| not_found_as(e, || Error::WorkspaceNotFound(workspace.to_string())))?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix(TAG_PREFIX))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), decode_tag(v)))
            .collect())
    }

    async fn detach_workspace(&self, workspace: &str) -> Result<usize> {
        // People's terminals only: control-mode clients are termloom's own connections (and
        // iTerm2's, which detaches through its own menu item).
        let out = self
            .run(vec![
                Cmd::new("list-clients")
                    .opt("-t", exact_session_window(workspace))
                    .opt(
                        "-F",
                        format::format(&["#{client_control_mode}", "#{client_name}"]),
                    ),
            ])
            .await
            .map_err(|e| not_found_as(e, || Error::WorkspaceNotFound(workspace.to_string())))?;
        let clients: Vec<String> = format::rows(out.trim_end_matches('\n'), 2)
            .into_iter()
            .filter(|r| r.len() == 2 && r[0] != "1" && !r[1].is_empty())
            .map(|r| r[1].clone())
            .collect();
        for c in &clients {
            if let Err(e) = self.run(vec![Cmd::new("detach-client").opt("-t", c)]).await {
                tracing::debug!(client = %c, error = %e, "detaching a client that left already");
            }
        }
        Ok(clients.len())
    }

    async fn attach_plan(
        &self,
        workspace: &str,
        opts: &termloom_core::project::AttachOpts,
    ) -> Result<termloom_core::project::AttachPlan> {
        check_workspace_name(workspace)?;
        if !self.has_workspace(workspace).await? {
            if !opts.create {
                return Err(Error::WorkspaceNotFound(workspace.to_string()));
            }
            match self
                .create_workspace(&WorkspaceSpec {
                    name: workspace.to_string(),
                    cwd: opts.cwd.clone(),
                    ..WorkspaceSpec::default()
                })
                .await
            {
                Ok(_) => {}
                // Created by someone else meanwhile: attach to that one.
                Err(e) if self.has_workspace(workspace).await.unwrap_or(false) => {
                    tracing::debug!(error = %e, "workspace appeared while creating it");
                }
                Err(e) => return Err(e),
            }
        }
        let o = self.inner.client.options();
        let mut args = o.global_args();
        // Already a client of this server (inside one of its panes): switch, don't nest.
        let inside = !opts.control_mode
            && o.host.is_none()
            && std::env::var("TMUX")
                .ok()
                .and_then(|t| t.split(',').next().map(std::path::PathBuf::from))
                .is_some_and(|p| {
                    !p.as_os_str().is_empty() && termloom_core::same_socket(&p, &o.socket_path())
                });
        if opts.control_mode {
            args.push("-CC".into());
        }
        args.push(
            if inside {
                "switch-client"
            } else {
                "attach-session"
            }
            .into(),
        );
        args.push("-t".into());
        args.push(exact_session(workspace));
        let Some(host) = &o.host else {
            return Ok(termloom_core::project::AttachPlan::Exec(
                termloom_core::project::AttachCommand {
                    program: o.tmux_bin.clone(),
                    args,
                    env: o.env.clone(),
                },
            ));
        };
        // On a remote host: `ssh -t HOST -- 'env' 'K=V'… 'tmux' ARGS…`, each remote word quoted
        // for the remote shell (as every other remote tmux call is).
        crate::client::check_host(host).map_err(Error::InvalidArgument)?;
        let mut remote: Vec<String> = Vec::new();
        if !o.env.is_empty() {
            remote.push("env".into());
            remote.extend(o.env.iter().map(|(k, v)| format!("{k}={v}")));
        }
        remote.push(o.tmux_bin.to_string_lossy().into_owned());
        remote.extend(args);
        let line = shlex::try_join(remote.iter().map(String::as_str)).map_err(|_| {
            Error::InvalidArgument("an argument contains a NUL byte, which ssh cannot pass".into())
        })?;
        let mut ssh_args = Vec::new();
        if let Some(cfg) = &o.ssh.config {
            ssh_args.push("-F".to_string());
            ssh_args.push(cfg.to_string_lossy().into_owned());
        }
        ssh_args.extend(["-t".to_string(), host.clone(), "--".to_string(), line]);
        Ok(termloom_core::project::AttachPlan::Exec(
            termloom_core::project::AttachCommand {
                program: o.ssh.bin.clone(),
                args: ssh_args,
                env: Vec::new(),
            },
        ))
    }

    async fn window_layouts(
        &self,
        workspace: &str,
    ) -> Result<Vec<termloom_core::project::LiveWindow>> {
        let windows = self.list_windows(Some(workspace)).await?;
        let panes: Vec<SessionInfo> = self
            .list_infos(None)
            .await?
            .into_iter()
            .filter(|s| s.workspace == workspace)
            .collect();
        let mut out = Vec::new();
        for w in windows {
            let text = w.layout.clone().unwrap_or_default();
            let cell = crate::control::layout::parse_layout(&text).map_err(|e| {
                Error::backend(
                    BackendKind::Tmux,
                    format!(
                        "window {} has a layout termloom cannot read ({e})",
                        w.native
                    ),
                )
            })?;
            let root = live_cell(&cell, &panes)?;
            out.push(termloom_core::project::LiveWindow { window: w, root });
        }
        Ok(out)
    }
}

/// Workspace tags are the session user options `@termloom_KEY`.
const TAG_PREFIX: &str = "@termloom_";

/// A parsed tmux layout as core's live split tree, each leaf with its session.
fn live_cell(
    c: &crate::control::layout::LayoutCell,
    panes: &[SessionInfo],
) -> Result<termloom_core::project::LiveCell> {
    use crate::control::layout::LayoutKind;
    use termloom_core::project::LiveCell;
    let split = |direction, children: &[crate::control::layout::LayoutCell]| {
        Ok::<_, Error>(LiveCell::Split {
            direction,
            width: c.width,
            height: c.height,
            children: children
                .iter()
                .map(|x| live_cell(x, panes))
                .collect::<Result<_>>()?,
        })
    };
    match &c.kind {
        LayoutKind::LeafPane(n) => {
            let id = format!("%{n}");
            let session = panes.iter().find(|s| s.native.id == id).ok_or_else(|| {
                Error::backend(
                    BackendKind::Tmux,
                    format!("pane {id} vanished while reading the layout"),
                )
            })?;
            Ok(LiveCell::Pane {
                session: Box::new(session.clone()),
                width: c.width,
                height: c.height,
            })
        }
        LayoutKind::LeftRight(ch) => split(Direction::Horizontal, ch),
        LayoutKind::TopBottom(ch) => split(Direction::Vertical, ch),
    }
}

/// Whether a client (`#{client_control_mode}`, `#{client_flags}`) shows its session to someone:
/// not a control client that receives no output or ignores the size, as termloom's connections
/// do (a terminal, or iTerm2's `tmux -CC`, does).
fn shows_the_session(control_mode: &str, flags: &str) -> bool {
    control_mode != "1"
        || !flags
            .split(',')
            .any(|f| f == "no-output" || f == "ignore-size")
}

/// Whether `name` has the shape of the name a pane without a stored name is listed under
/// (`workspace:window.pane`, see `format::parse_pane`).
fn looks_like_fallback_name(name: &str) -> bool {
    let Some((head, tail)) = name.rsplit_once(':') else {
        return false;
    };
    let Some((w, p)) = tail.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !head.is_empty() && digits(w) && digits(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fallback_names_are_recognised() {
        for n in ["w:0.0", "my ws:12.3", "a:b:1.2"] {
            assert!(looks_like_fallback_name(n), "{n}");
        }
        for n in ["w", "a:b.c", ":0.0", "w:0.", "w:.1", "w:0.1x", "w0.0"] {
            assert!(!looks_like_fallback_name(n), "{n}");
        }
    }

    #[test]
    fn layout_cells_share_the_span_less_borders_evenly() {
        let three = Layout::predefined("horizontal", &names(&["a", "b", "c"])).unwrap();
        // 80 columns, 2 borders: 26 + 1 + 26 + 1 + 26. Step 1 splits b and c (53) off a; step 2
        // splits c (26) off b.
        assert_eq!(layout_step_cells(&three, 80, 24), [53, 26]);
        // Quad: the bottom row (11 of 23 rows), then the right column of each row.
        let quad = Layout::predefined("quad", &[]).unwrap();
        assert_eq!(layout_step_cells(&quad, 80, 24), [11, 39, 39]);
        let plan = quad.plan().unwrap();
        assert_eq!(layout_step_cells(&quad, 80, 24).len(), plan.steps.len());
    }

    #[test]
    fn shown_names_escape_control_characters() {
        assert_eq!(shown_name("a\nb\tc\u{1f}d é"), "a\\nb\\tc\\037d é");
        assert_eq!(shown_name("plain #{x}"), "plain #{x}");
    }

    #[test]
    fn workspace_names_tmux_would_change_are_refused() {
        for bad in ["a.b", "a:b", "a\nb", "$x", "a$b", "a\\b", ""] {
            assert!(check_workspace_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a b", "it's \"q\"", "日本", "x;y;", "#{host}", "-d"] {
            assert!(check_workspace_name(good).is_ok(), "{good:?}");
        }
    }
}
