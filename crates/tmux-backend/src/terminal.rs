//! [`TmuxTerminal`]: core's [`Terminal`] for one tmux server.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use termloom_core::{
    BackendKind, Capabilities, Error, Layout, LayoutPlacement, NativeId, Result, Session,
    SessionId, SessionInfo, SessionSpec, Terminal, TerminalKey, WindowInfo, WindowRef, WindowSpec,
    WorkspaceInfo, WorkspaceSpec,
};

use crate::client::{TmuxClient, TmuxOptions};
use crate::command::{Cmd, chain, exact_session, exact_session_window};
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

/// Longest session, window or workspace name accepted.
pub const MAX_NAME_LEN: usize = 256;

pub(crate) struct Inner {
    pub client: TmuxClient,
    pub key: TerminalKey,
    pub hub: OutputHub,
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

/// Checks a name given by a caller: not empty, no NUL, not absurdly long.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what} name must not be empty"
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "{what} name must not contain a NUL byte"
        )));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

/// tmux turns `.` and `:` in session names into `_` and cannot hold control characters there; a
/// workspace name with them is refused rather than silently changed.
pub fn check_workspace_name(name: &str) -> Result<()> {
    check_name("workspace", name)?;
    if name.contains(['.', ':']) || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "workspace name '{name}' may not contain '.', ':' or control characters (tmux session names cannot)"
        )));
    }
    Ok(())
}

fn cwd_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl TmuxTerminal {
    /// A terminal for the server `opts` names. Nothing is spawned until the first call.
    pub fn new(opts: TmuxOptions) -> Self {
        let key = TerminalKey {
            backend: BackendKind::Tmux,
            host: None,
            socket: Some(opts.socket_path().to_string_lossy().into_owned()),
        };
        let opts = Arc::new(opts);
        TmuxTerminal {
            inner: Arc::new(Inner {
                hub: OutputHub::new(opts.clone()),
                client: TmuxClient::new(opts),
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
        format::rows(out.trim_end_matches('\n'), format::PANE_FIELDS.len())
            .iter()
            .filter(|r| !(r.len() == 1 && r[0].is_empty()))
            .map(|r| format::parse_pane(r, &self.inner.key).map_err(Error::from))
            .collect()
    }

    /// Lists panes (of one target, or all), tagging any pane that has no persistent id yet.
    pub(crate) async fn list_infos(&self, scope: Option<&str>) -> Result<Vec<SessionInfo>> {
        let mut rows = self.list_rows(scope).await?;
        let untagged: Vec<String> = rows
            .iter()
            .filter(|r| r.termloom_id.is_none())
            .map(|r| r.pane_id.clone())
            .collect();
        if !untagged.is_empty() {
            // `-o` only sets an unset option, so two listers racing agree on one id; re-read after.
            for pane in &untagged {
                let cmd = Cmd::new("set-option")
                    .arg("-o")
                    .arg("-p")
                    .opt("-t", pane)
                    .arg(OPT_ID)
                    .arg(SessionId::new().to_string());
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
            v.push(with_t(Cmd::new("select-pane")).opt("-T", n));
        }
        v
    }

    fn shell_args(&self, cmd: Cmd) -> Cmd {
        match &self.inner.client.options().shell {
            Some(argv) if !argv.is_empty() => argv.iter().fold(cmd, |c, a| c.arg(a)),
            _ => cmd,
        }
    }

    fn env_args(cmd: Cmd, env: &[(String, String)]) -> Result<Cmd> {
        let mut cmd = cmd;
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "invalid environment variable name '{k}'"
                )));
            }
            cmd = cmd.opt("-e", format!("{k}={v}"));
        }
        Ok(cmd)
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

    /// Creates a workspace, its first window and pane; returns the pane id.
    async fn new_workspace(
        &self,
        name: &str,
        window: Option<&str>,
        size: Option<(u16, u16)>,
        history_limit: Option<u32>,
        p: NewPane<'_>,
    ) -> Result<String> {
        let NewPane { id, name: session_name, cwd, env } = p;
        check_workspace_name(name)?;
        let limit = history_limit.unwrap_or(self.inner.client.options().history_limit);
        let mut create = Cmd::new("new-session")
            .arg("-d")
            .arg("-P")
            .opt("-F", "#{pane_id}")
            .opt("-s", name)
            .opt_if("-n", window)
            .opt_if("-c", cwd.map(cwd_arg));
        if let Some((w, h)) = size {
            create = create.opt("-x", w.to_string()).opt("-y", h.to_string());
        }
        let create = self.shell_args(Self::env_args(create, env)?);
        // history-limit is read when a pane is created: save the global value in a user option,
        // raise it for this one new-session and restore it, all in one command list (tmux runs it
        // without interleaving other clients, and a server started by this very list has loaded
        // its config first). After new-session, the next commands target the new pane.
        let mut cmds = vec![
            Cmd::new("set-option")
                .arg("-gF")
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
        // Spawned, so that a server that is not running yet is started by this command.
        let out = self
            .inner
            .client
            .spawn(chain(cmds), None)
            .await
            .map_err(|e| match e {
                TmuxError::CommandFailed { stderr, .. } if stderr.contains("duplicate session") => {
                    Error::InvalidArgument(format!("a workspace named '{name}' already exists"))
                }
                e => e.into(),
            })?;
        Self::created_pane(&out)
    }

    /// Creates a window in an existing workspace; returns the pane id.
    async fn new_window(
        &self,
        workspace: &str,
        window: Option<&str>,
        select: bool,
        p: NewPane<'_>,
    ) -> Result<String> {
        let NewPane { id, name: session_name, cwd, env } = p;
        let create = Cmd::new("new-window")
            .flag_if("-d", !select)
            .arg("-P")
            .opt("-F", "#{pane_id}")
            .opt("-t", format!("{}:", exact_session(workspace)))
            .opt_if("-n", window)
            .opt_if("-c", cwd.map(cwd_arg));
        let create = self.shell_args(Self::env_args(create, env)?);
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
        percent: Option<u8>,
        p: NewPane<'_>,
    ) -> Result<String> {
        let NewPane { id, name: session_name, cwd, env } = p;
        let create = Cmd::new("split-window")
            .arg("-d")
            .arg(if horizontal { "-h" } else { "-v" })
            .flag_if("-b", before)
            .opt("-t", pane)
            .opt_if("-l", percent.map(|p| format!("{}%", p.clamp(1, 99))))
            .opt_if("-c", cwd.map(cwd_arg))
            .arg("-P")
            .opt("-F", "#{pane_id}");
        let create = self.shell_args(Self::env_args(create, env)?);
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

/// Maps tmux's "can't find …" to the given error, anything else through `From`.
pub(crate) fn not_found_as(e: Error, f: impl FnOnce() -> Error) -> Error {
    match &e {
        Error::Backend { message, .. }
            if message.contains("can't find") || message.contains("no server running") =>
        {
            f()
        }
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

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            workspaces: true,
            windows: true,
            layouts: true,
            resize: true,
            scrollback_config: true,
            run: false,
            monitor: false,
            cursor_reads: true,
            shell_integration: false,
            notes: vec![
                ("run".into(), "needs the control-mode transport".into()),
                ("monitor".into(), "needs the control-mode transport".into()),
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
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", &pane)
                    .arg(format!("#{{{OPT_ID}}}")),
            ])
            .await
            .map_err(|e| {
                not_found_as(e, || Error::SessionDead {
                    id: info.id.to_string(),
                    name: info.name.clone(),
                })
            })?;
        if out.trim() != info.id.to_string() {
            return Err(Error::StaleNativeId {
                id: info.id.to_string(),
                native: info.native.to_string(),
            });
        }
        Ok(Arc::new(TmuxSession::new(self.clone(), info.id, pane)))
    }

    async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo> {
        if let Some(n) = &spec.name {
            check_name("session", n)?;
            self.ensure_unique_name(n, None).await?;
        }
        let id = SessionId::new();
        let ws = spec
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
        let name = spec.name.as_deref();
        let window_name = spec.window.as_deref().or(name);
        let cwd = spec.cwd.as_deref();
        let pane = if !self.has_workspace(&ws).await? {
            self.new_workspace(&ws, window_name, spec.size, None, NewPane { id, name, cwd, env: &spec.env })
                .await?
        } else {
            let existing = match &spec.window {
                Some(w) => {
                    let wins = self.list_windows(Some(&ws)).await?;
                    wins.into_iter().find(|x| x.name == *w)
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
                    self.split_pane(active.trim(), false, false, None, NewPane { id, name, cwd, env: &spec.env })
                        .await?
                }
                None => {
                    self.new_window(&ws, window_name, false, NewPane { id, name, cwd, env: &spec.env })
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
        let fmt = format::format(&[
            "#{session_name}",
            "#{session_id}",
            "#{session_windows}",
            "#{session_attached}",
            "#{session_created}",
        ]);
        let out = match self
            .inner
            .client
            .run(Cmd::new("list-sessions").opt("-F", fmt).into_args())
            .await
        {
            Ok(o) => o,
            Err(TmuxError::NoServer(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(format::rows(out.trim_end_matches('\n'), 5)
            .into_iter()
            .filter(|r| r.len() == 5)
            .map(|r| WorkspaceInfo {
                name: r[0].clone(),
                native: r[1].clone(),
                windows: r[2].parse().unwrap_or(0),
                attached: r[3].parse::<u32>().unwrap_or(0) > 0,
                created: r[4].parse().unwrap_or(0),
            })
            .collect())
    }

    async fn create_workspace(&self, spec: &WorkspaceSpec) -> Result<SessionInfo> {
        check_workspace_name(&spec.name)?;
        if let Some(n) = &spec.session_name {
            check_name("session", n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if self.has_workspace(&spec.name).await? {
            return Err(Error::InvalidArgument(format!(
                "a workspace named '{}' already exists",
                spec.name
            )));
        }
        let id = SessionId::new();
        let pane = self
            .new_workspace(
                &spec.name,
                spec.window.as_deref(),
                spec.size,
                spec.history_limit,
                NewPane { id, name: spec.session_name.as_deref(), cwd: spec.cwd.as_deref(), env: &spec.env },
            )
            .await?;
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
        let fmt = format::format(&[
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
        Ok(format::rows(out.trim_end_matches('\n'), 7)
            .into_iter()
            .filter(|r| r.len() == 7)
            .map(|r| WindowInfo {
                workspace: r[0].clone(),
                index: r[1].parse().unwrap_or(0),
                native: r[2].clone(),
                panes: r[3].parse().unwrap_or(0),
                active: r[4] == "1",
                layout: Some(r[5].clone()),
                name: r[6].clone(),
            })
            .collect())
    }

    async fn create_window(&self, spec: &WindowSpec) -> Result<SessionInfo> {
        if let Some(n) = &spec.session_name {
            check_name("session", n)?;
            self.ensure_unique_name(n, None).await?;
        }
        if let Some(n) = &spec.name {
            check_name("window", n)?;
        }
        let id = SessionId::new();
        let pane = self
            .new_window(
                &spec.workspace,
                spec.name.as_deref(),
                spec.select,
                NewPane { id, name: spec.session_name.as_deref(), cwd: spec.cwd.as_deref(), env: &[] },
            )
            .await?;
        if let Some(c) = &spec.command {
            self.type_command(&pane, c).await?;
        }
        self.pane_info(&pane).await
    }

    async fn kill_window(&self, window: &WindowRef) -> Result<()> {
        let id = self.window_id(window).await?;
        self.run(vec![Cmd::new("kill-window").opt("-t", id)])
            .await?;
        Ok(())
    }

    async fn rename_window(&self, window: &WindowRef, name: &str) -> Result<()> {
        check_name("window", name)?;
        let id = self.window_id(window).await?;
        self.run(vec![Cmd::new("rename-window").opt("-t", id).arg(name)])
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
        let out = self
            .run(vec![
                Cmd::new("show-options")
                    .arg("-A")
                    .arg("-v")
                    .opt("-t", &target)
                    .arg("history-limit"),
            ])
            .await
            .map_err(|e| not_found_as(e, nf))?;
        out.trim().parse().map_err(|_| {
            Error::backend(
                BackendKind::Tmux,
                format!("unexpected history-limit value {:?}", out.trim()),
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
            check_name("session", &p.name)?;
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
        let ws = placement
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
        let window_name = placement.window.clone().or_else(|| name_of(0));
        let first = if self.has_workspace(&ws).await? {
            self.new_window(
                &ws,
                window_name.as_deref(),
                false,
                NewPane { id: id_of(0), name: name_of(0).as_deref(), cwd: cwd_of(0).as_deref(), env: &[] },
            )
            .await?
        } else {
            self.new_workspace(
                &ws,
                window_name.as_deref(),
                None,
                None,
                NewPane { id: id_of(0), name: name_of(0).as_deref(), cwd: cwd_of(0).as_deref(), env: &[] },
            )
            .await?
        };
        let mut slots = vec![first];
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
                    Some(step.percent),
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
}
