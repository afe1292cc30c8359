//! Projects in iTerm2: `backend: iterm` (native windows, tabs and split panes) and
//! `backend: iterm-tmux` (a tmux session shown through iTerm2's `tmux -CC` integration).
//!
//! # `iterm`
//!
//! Core's generic reconcile runs on [`ItermTerminal`] itself: the project's workspace is one
//! iTerm2 window (named by `user.termloomWorkspace`), each project window a tab, each pane a
//! split session tagged `user.termloomID` / `user.termloomName`. The workspace tags live in
//! window variables: the project tag is `user.projectID` (set together with `user.managed =
//! true`), the pane map `user.termloom_project_panes`. A second open finds everything by those
//! tags and creates nothing; a tab closed by hand comes back; a command never runs again in a
//! live session.
//!
//! **Close** (decided): plain iTerm2 has no detach, and closing a window kills its processes,
//! so `close` closes nothing and says so in the report's `note`; every window stays open.
//! `project kill NAME --yes` is the one call that closes the window (and kills its processes).
//!
//! # `iterm-tmux`
//!
//! [`ItermTerminal`] is a [`ProjectHost`] for these. **open**:
//! 1. finds the project's gateway (a connection whose gateway window carries `user.role =
//!    gateway` and `user.projectID = NAME`), else creates a gateway window (with the project's
//!    profile), tags it, and types `tmux -CC new-session -A -s SESSION` into it, built from argv
//!    and shell-quoted (for a host: `ssh -t HOST -- 'tmux -CC new-session -A -s SESSION'`);
//! 2. while it works, watches iTerm2's layout notifications and tags every window showing a
//!    tmux window of that connection with `user.projectID` and `user.managed = true` (and
//!    sweeps once more at the end);
//! 3. reconciles through the connection: core's reconcile runs on a [`TmuxLink`], a
//!    [`Terminal`] whose every call is a tmux command sent with iTerm2's `TmuxRequest`
//!    (send-command), so panes are matched by their `@termloom_id` / `@termloom_name` like in
//!    plain tmux, the tmux session carries `@termloom_project`, and commands are typed only into
//!    panes created now;
//! 4. fixes the window size: `refresh-client -C COLSxROWS` when the project gives `iterm.size`,
//!    then `resize-window -A` for every window of the session.
//!
//! **close** activates one of the project's windows, invokes the menu item `tmux.Detach`
//! (menu items act on the active session, so only this project's connection detaches), waits for
//! the connection to end and closes the gateway window. The tmux session and every process in it
//! keep running. **kill** sends `kill-session` over the connection (opening one when needed).
//! Project A's calls only ever address A's connection and windows.
//!
//! The profile is applied to the gateway window; iTerm2 shows tmux windows with its own
//! "profile for tmux sessions", which its API cannot set per window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use termloom_core::project::{
    AttachOpts, AttachPlan, CloseOptions, CloseReport, KillReport, OpenOptions, OpenReport,
    Project, ProjectBackend, ProjectHost, ProjectStatus, TAG_PROJECT, check_tag_key, reconcile,
};
use termloom_core::{
    BackendKind, Capabilities, Direction, Error, Key, NativeId, Result, Session, SessionId,
    SessionInfo, SessionSpec, SplitSpec, Terminal, TerminalKey, WindowInfo, WindowSpec,
    WorkspaceInfo,
};
use termloom_tmux_syntax::{decode_tag, encode_tag, quote};

use crate::ItermError;
use crate::connection::VariableTarget;
use crate::proto;
use crate::terminal::{ItermCreate, ItermEvent, ItermTerminal, get_vars, key_window, set_vars};

/// Window variable naming the project a window belongs to.
pub const VAR_PROJECT: &str = "user.projectID";
/// Window variable set to `true` on windows termloom manages for a project.
pub const VAR_PROJECT_MANAGED: &str = "user.managed";
/// Window variable marking a project's gateway window (`gateway`).
pub const VAR_ROLE: &str = "user.role";
/// Prefix of the window variables holding the other workspace tags (`user.termloom_KEY`).
pub const VAR_TAG_PREFIX: &str = "user.termloom_";

/// How long the gateway may take to start `tmux -CC`.
const GATEWAY_START: Duration = Duration::from_secs(20);
/// How long a detach may take.
const DETACH_WAIT: Duration = Duration::from_secs(10);

/// The window variable holding a workspace tag.
pub fn tag_variable(key: &str) -> String {
    if key == TAG_PROJECT {
        VAR_PROJECT.to_owned()
    } else {
        format!("{VAR_TAG_PREFIX}{key}")
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Quotes one word for a POSIX shell (the gateway's shell, or ssh's remote shell).
fn sh_quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "").replace('\'', r"'\''")))
}

fn sh_join(argv: &[String]) -> String {
    argv.iter()
        .map(|w| sh_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The argv that runs `tmux -CC` attached to (or creating) `session`: for a host, through
/// `ssh -t HOST`; the remote command is one shell-quoted string, as ssh wants it.
pub fn gateway_argv(session: &str, host: Option<&str>, cwd: Option<&str>) -> Vec<String> {
    let mut tmux: Vec<String> = ["tmux", "-CC", "new-session", "-A", "-s", session]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if let Some(c) = cwd {
        tmux.push("-c".into());
        tmux.push(c.to_owned());
    }
    over_ssh(tmux, host)
}

/// The argv that runs `tmux -CC attach-session -t =SESSION` (never creating it).
pub fn attach_argv(session: &str, host: Option<&str>) -> Vec<String> {
    let tmux: Vec<String> = [
        "tmux",
        "-CC",
        "attach-session",
        "-t",
        &format!("={session}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    over_ssh(tmux, host)
}

fn over_ssh(tmux: Vec<String>, host: Option<&str>) -> Vec<String> {
    match host {
        None => tmux,
        Some(h) => vec![
            "ssh".into(),
            "-t".into(),
            h.to_owned(),
            "--".into(),
            sh_join(&tmux),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// tmux commands sent over the connection (quoted and encoded by `termloom_tmux_syntax`)
// ---------------------------------------------------------------------------------------------

const SEP: char = '\u{1f}';

const PANE_FIELDS: &[&str] = &[
    "#{pane_id}",
    "#{session_name}",
    "#{session_id}",
    "#{window_id}",
    "#{window_index}",
    "#{window_name}",
    "#{window_active}",
    "#{pane_index}",
    "#{pane_width}",
    "#{pane_height}",
    "#{pane_current_command}",
    "#{pane_pid}",
    "#{pane_active}",
    "#{pane_dead}",
    "#{@termloom_id}",
    "#{@termloom_name}",
    "#{@termloom_managed}",
    "#{pane_current_path}",
];

// ---------------------------------------------------------------------------------------------
// TmuxLink: core's Terminal over a tmux -CC connection
// ---------------------------------------------------------------------------------------------

/// A tmux server reached through one of iTerm2's `tmux -CC` connections: every call is a tmux
/// command sent with iTerm2's `TmuxRequest` (send-command), so iTerm2 sees every change through
/// its own connection and shows new windows and panes itself. Sessions are tmux panes
/// (`tmux:%N`), identified like in the tmux backend (`@termloom_id`, `@termloom_name`).
#[derive(Clone, Debug)]
pub struct TmuxLink {
    term: ItermTerminal,
    connection: String,
    key: TerminalKey,
}

impl TmuxLink {
    /// A link over `connection` of `term`; `host` is where that tmux server runs.
    pub fn new(term: ItermTerminal, connection: &str, host: Option<String>) -> Self {
        TmuxLink {
            term,
            connection: connection.to_owned(),
            key: TerminalKey {
                backend: BackendKind::Tmux,
                host,
                socket: None,
            },
        }
    }

    /// The connection id.
    pub fn connection_id(&self) -> &str {
        &self.connection
    }

    /// Runs one tmux command given as argv (each word quoted for tmux's parser).
    pub async fn run(&self, argv: &[&str]) -> Result<String> {
        let line = argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        self.term.tmux_send_command(&self.connection, &line).await
    }

    fn parse_panes(&self, out: &str) -> Vec<(SessionInfo, bool)> {
        let mut rows = Vec::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split(SEP).collect();
            if f.len() < PANE_FIELDS.len() {
                continue;
            }
            let tagged = f[14].parse::<SessionId>().ok();
            let id = tagged.unwrap_or_default();
            let name = if f[15].is_empty() {
                format!("{}:{}.{}", f[1], f[4], f[7])
            } else {
                decode_tag(f[15])
            };
            let num = |s: &str| s.parse::<u32>().unwrap_or(0);
            rows.push((
                SessionInfo {
                    id,
                    name,
                    native: NativeId::tmux(f[0]),
                    terminal: self.key.clone(),
                    workspace: f[1].to_owned(),
                    workspace_id: Some(f[2].to_owned()),
                    window_index: num(f[4]),
                    window_name: f[5].to_owned(),
                    window_id: Some(f[3].to_owned()),
                    window_active: f[6] == "1",
                    pane_index: num(f[7]),
                    width: u16::try_from(num(f[8])).unwrap_or(0),
                    height: u16::try_from(num(f[9])).unwrap_or(0),
                    title: String::new(),
                    command: f[10].to_owned(),
                    cwd: Some(f[17..].join(&SEP.to_string())).filter(|c| !c.is_empty()),
                    pid: f[11].parse().ok(),
                    active: f[12] == "1",
                    dead: f[13] == "1",
                    managed: f[16] == "1",
                },
                tagged.is_some(),
            ));
        }
        rows
    }

    async fn list_panes(&self, target: Option<&str>) -> Result<String> {
        let fmt = PANE_FIELDS.join(&SEP.to_string());
        match target {
            // A session target (`=NAME`) lists every window's panes.
            Some(t) if t.starts_with('=') => {
                self.run(&["list-panes", "-s", "-t", t, "-F", &fmt]).await
            }
            Some(t) => self.run(&["list-panes", "-t", t, "-F", &fmt]).await,
            None => self.run(&["list-panes", "-a", "-F", &fmt]).await,
        }
    }

    async fn panes(&self, target: Option<&str>) -> Result<Vec<SessionInfo>> {
        let out = self.list_panes(target).await?;
        let rows = self.parse_panes(&out);
        let untagged: Vec<String> = rows
            .iter()
            .filter(|(_, t)| !t)
            .map(|(s, _)| s.native.id.clone())
            .collect();
        if untagged.is_empty() {
            return Ok(rows.into_iter().map(|(s, _)| s).collect());
        }
        for pane in &untagged {
            let id = SessionId::new().to_string();
            // -o: only if unset, so two listers racing agree on one id.
            if let Err(e) = self
                .run(&["set-option", "-p", "-o", "-t", pane, "@termloom_id", &id])
                .await
            {
                tracing::debug!(pane = %pane, error = %e, "tagging a pane");
            }
        }
        let out = self.list_panes(target).await?;
        Ok(self
            .parse_panes(&out)
            .into_iter()
            .filter(|(_, t)| *t)
            .map(|(s, _)| s)
            .collect())
    }

    async fn pane(&self, pane: &str) -> Result<SessionInfo> {
        self.panes(Some(pane))
            .await?
            .into_iter()
            .find(|s| s.native.id == pane)
            .ok_or_else(|| Error::SessionNotFound {
                target: NativeId::tmux(pane).to_string(),
            })
    }

    /// Tags a pane termloom created: a new id, the managed flag and (optionally) a name.
    async fn tag_new(&self, pane: &str, name: Option<&str>) -> Result<SessionInfo> {
        let id = SessionId::new().to_string();
        self.run(&["set-option", "-p", "-t", pane, "@termloom_id", &id])
            .await?;
        self.run(&["set-option", "-p", "-t", pane, "@termloom_managed", "1"])
            .await?;
        if let Some(n) = name {
            self.run(&[
                "set-option",
                "-p",
                "-t",
                pane,
                "@termloom_name",
                &encode_tag(n),
            ])
            .await?;
        }
        self.pane(pane).await
    }

    fn new_pane_id(out: &str) -> Result<String> {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with('%'))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::backend(
                    BackendKind::Tmux,
                    format!("tmux did not name the new pane: {out:?}"),
                )
            })
    }

    /// The workspace tags as stored on the tmux session.
    async fn tags(&self, workspace: &str) -> Result<BTreeMap<String, String>> {
        let out = self
            .run(&["show-options", "-t", &format!("={workspace}:")])
            .await
            .map_err(|_| Error::WorkspaceNotFound(workspace.to_owned()))?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("@termloom_"))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_owned(), decode_tag(v)))
            .collect())
    }
}

/// A tmux pane reached through a [`TmuxLink`].
struct LinkSession {
    link: TmuxLink,
    id: SessionId,
    native: NativeId,
}

impl LinkSession {
    fn pane(&self) -> &str {
        &self.native.id
    }
}

#[async_trait]
impl Session for LinkSession {
    fn id(&self) -> SessionId {
        self.id
    }

    fn native(&self) -> &NativeId {
        &self.native
    }

    async fn info(&self) -> Result<SessionInfo> {
        self.link.pane(self.pane()).await
    }

    async fn send_text(&self, text: &str, opts: termloom_core::SendOpts) -> Result<()> {
        if !text.is_empty() {
            self.link
                .run(&["send-keys", "-t", self.pane(), "-l", text])
                .await?;
        }
        if opts.enter {
            self.link
                .run(&["send-keys", "-t", self.pane(), "Enter"])
                .await?;
        }
        Ok(())
    }

    async fn send_keys(&self, keys: &[Key]) -> Result<()> {
        let _ = keys;
        Err(Error::unsupported(
            BackendKind::Tmux,
            "press keys through an iTerm2 tmux connection",
            "use the tmux backend on the same server",
        ))
    }

    async fn capture(&self, opts: &termloom_core::CaptureOpts) -> Result<termloom_core::Capture> {
        let _ = opts;
        Err(Error::unsupported(
            BackendKind::Tmux,
            "read panes through an iTerm2 tmux connection",
            "use the tmux backend on the same server, or the iTerm2 session showing the pane",
        ))
    }

    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo> {
        let mut argv: Vec<String> = vec![
            "split-window".into(),
            "-d".into(),
            "-t".into(),
            self.pane().to_owned(),
            match spec.direction {
                Direction::Horizontal => "-h".into(),
                Direction::Vertical => "-v".into(),
            },
        ];
        if spec.before {
            argv.push("-b".into());
        }
        if let Some(p) = spec.percent {
            argv.push("-l".into());
            argv.push(format!("{}%", p.clamp(1, 99)));
        }
        if let Some(c) = &spec.cwd {
            argv.push("-c".into());
            argv.push(c.to_string_lossy().into_owned());
        }
        argv.extend(["-P".into(), "-F".into(), "#{pane_id}".into()]);
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.link.run(&refs).await?;
        let pane = TmuxLink::new_pane_id(&out)?;
        let info = self.link.tag_new(&pane, spec.name.as_deref()).await?;
        if let Some(c) = &spec.command {
            let s = self.link.open_link(&info);
            s.send_text(c, termloom_core::SendOpts { enter: true })
                .await?;
        }
        Ok(info)
    }

    async fn rename(&self, name: &str) -> Result<()> {
        self.link
            .run(&[
                "set-option",
                "-p",
                "-t",
                self.pane(),
                "@termloom_name",
                &encode_tag(name),
            ])
            .await
            .map(|_| ())
    }

    async fn close(&self) -> Result<()> {
        self.link
            .run(&["kill-pane", "-t", self.pane()])
            .await
            .map(|_| ())
    }

    async fn focus(&self) -> Result<()> {
        let info = self.info().await?;
        if let Some(w) = &info.window_id {
            self.link.run(&["select-window", "-t", w]).await?;
        }
        self.link
            .run(&["select-pane", "-t", self.pane()])
            .await
            .map(|_| ())
    }
}

impl TmuxLink {
    fn open_link(&self, info: &SessionInfo) -> LinkSession {
        LinkSession {
            link: self.clone(),
            id: info.id,
            native: info.native.clone(),
        }
    }
}

#[async_trait]
impl Terminal for TmuxLink {
    fn kind(&self) -> BackendKind {
        BackendKind::Tmux
    }

    fn key(&self) -> TerminalKey {
        self.key.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            workspaces: true,
            windows: true,
            layouts: true,
            ..Capabilities::default()
        }
    }

    async fn list_sessions(&self) -> Result<Vec<SessionInfo>> {
        self.panes(None).await
    }

    async fn open(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        if info.native.backend != BackendKind::Tmux {
            return Err(Error::InvalidArgument(format!(
                "{} is not a tmux pane",
                info.native
            )));
        }
        let now = self
            .pane(&info.native.id)
            .await
            .map_err(|_| Error::SessionDead {
                id: info.id.to_string(),
                name: info.name.clone(),
            })?;
        if now.id != info.id {
            return Err(Error::StaleNativeId {
                id: info.id.to_string(),
                native: info.native.to_string(),
            });
        }
        Ok(Arc::new(self.open_link(info)))
    }

    async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo> {
        let _ = spec;
        Err(Error::unsupported(
            BackendKind::Tmux,
            "create sessions through an iTerm2 tmux connection",
            "projects create windows and splits; use the tmux backend for single sessions",
        ))
    }

    async fn list_workspaces(&self) -> Result<Vec<WorkspaceInfo>> {
        let fmt = [
            "#{session_name}",
            "#{session_id}",
            "#{session_windows}",
            "#{session_attached}",
            "#{session_created}",
        ]
        .join(&SEP.to_string());
        let out = self.run(&["list-sessions", "-F", &fmt]).await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(SEP).collect();
                (f.len() == 5).then(|| WorkspaceInfo {
                    name: f[0].to_owned(),
                    native: f[1].to_owned(),
                    windows: f[2].parse().unwrap_or(0),
                    attached: f[3] != "0",
                    created: f[4].parse().unwrap_or(0),
                })
            })
            .collect())
    }

    async fn list_windows(&self, workspace: Option<&str>) -> Result<Vec<WindowInfo>> {
        let fmt = [
            "#{session_name}",
            "#{window_index}",
            "#{window_name}",
            "#{window_id}",
            "#{window_panes}",
            "#{window_active}",
            "#{window_layout}",
        ]
        .join(&SEP.to_string());
        let out = match workspace {
            Some(ws) => {
                self.run(&["list-windows", "-t", &format!("={ws}"), "-F", &fmt])
                    .await?
            }
            None => self.run(&["list-windows", "-a", "-F", &fmt]).await?,
        };
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(SEP).collect();
                (f.len() == 7).then(|| WindowInfo {
                    workspace: f[0].to_owned(),
                    index: f[1].parse().unwrap_or(0),
                    name: f[2].to_owned(),
                    native: f[3].to_owned(),
                    panes: f[4].parse().unwrap_or(0),
                    active: f[5] == "1",
                    layout: Some(f[6].to_owned()),
                })
            })
            .collect())
    }

    async fn create_window(&self, spec: &WindowSpec) -> Result<SessionInfo> {
        let mut argv: Vec<String> = vec!["new-window".into()];
        if !spec.select {
            argv.push("-d".into());
        }
        argv.extend(["-t".into(), format!("={}:", spec.workspace)]);
        if let Some(n) = &spec.name {
            argv.extend(["-n".into(), n.clone()]);
        }
        if let Some(c) = &spec.cwd {
            argv.extend(["-c".into(), c.to_string_lossy().into_owned()]);
        }
        argv.extend(["-P".into(), "-F".into(), "#{pane_id}".into()]);
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.run(&refs).await?;
        let pane = TmuxLink::new_pane_id(&out)?;
        let info = self.tag_new(&pane, spec.session_name.as_deref()).await?;
        if let Some(c) = &spec.command {
            self.open_link(&info)
                .send_text(c, termloom_core::SendOpts { enter: true })
                .await?;
        }
        Ok(info)
    }

    async fn set_workspace_tag(
        &self,
        workspace: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        check_tag_key(key)?;
        let opt = format!("@termloom_{key}");
        let target = format!("={workspace}:");
        match value {
            Some(v) => {
                self.run(&["set-option", "-t", &target, &opt, &encode_tag(v)])
                    .await?
            }
            None => self.run(&["set-option", "-u", "-t", &target, &opt]).await?,
        };
        Ok(())
    }

    async fn workspace_tags(&self, workspace: &str) -> Result<BTreeMap<String, String>> {
        self.tags(workspace).await
    }
}

// ---------------------------------------------------------------------------------------------
// The project host
// ---------------------------------------------------------------------------------------------

/// A project's gateway: the window running `tmux -CC`, and its connection.
#[derive(Clone, Debug)]
struct Gateway {
    window: Option<String>,
    connection: String,
}

impl ItermTerminal {
    /// The live gateway of a project: a connection whose gateway window is tagged
    /// `user.role = gateway` and `user.projectID = NAME`.
    async fn find_gateway(&self, project: &str) -> Result<Option<Gateway>> {
        let conn = self.conn().await?;
        let conns = conn.tmux_list_connections().await?;
        if conns.is_empty() {
            return Ok(None);
        }
        let list = conn.list_sessions().await?;
        for c in conns {
            let (Some(id), Some(gw)) = (c.connection_id, c.owning_session_id) else {
                continue;
            };
            let window = list.windows.iter().find(|w| {
                w.tabs.iter().any(|t| {
                    let mut ids = Vec::new();
                    if let Some(r) = &t.root {
                        r.collect_session_ids(&mut ids);
                    }
                    ids.contains(&gw)
                })
            });
            let Some(wid) = window.and_then(|w| w.window_id.clone()) else {
                continue;
            };
            let vars = get_vars(
                &conn,
                &VariableTarget::Window(wid.clone()),
                &[VAR_ROLE, VAR_PROJECT],
            )
            .await
            .unwrap_or_default();
            let role = vars.first().and_then(str_of);
            let owner = vars.get(1).and_then(str_of);
            if role.as_deref() == Some("gateway") && owner.as_deref() == Some(project) {
                return Ok(Some(Gateway {
                    window: Some(wid),
                    connection: id,
                }));
            }
        }
        Ok(None)
    }

    /// Creates the gateway window, tags it and starts `tmux -CC` in it; waits for the connection.
    async fn start_gateway(&self, p: &Project) -> Result<Gateway> {
        let conn = self.conn().await?;
        let opts = ItermCreate {
            profile: p.iterm.profile.clone(),
            ..ItermCreate::default()
        };
        let created = self.create_tab_raw(&conn, None, &opts, None).await?;
        if let Some(w) = &created.window {
            set_vars(
                &conn,
                &VariableTarget::Window(w.clone()),
                &[
                    (VAR_ROLE, Value::from("gateway")),
                    (VAR_PROJECT, Value::from(p.name.as_str())),
                    (VAR_PROJECT_MANAGED, Value::Bool(true)),
                ],
            )
            .await?;
        }
        // The session too: input to it is refused (see `ItermSession::refuse_gateway`).
        set_vars(
            &conn,
            &VariableTarget::Session(created.session.clone()),
            &[(VAR_ROLE, Value::from("gateway"))],
        )
        .await?;
        self.prepare(&conn, &created.session, None).await?;
        let cwd = if p.host.is_none() {
            p.resolve()?
                .first()
                .and_then(|w| w.panes.first())
                .and_then(|x| x.cwd.clone())
                .filter(|c| c.is_dir())
                .map(|c| c.to_string_lossy().into_owned())
        } else {
            None
        };
        let argv = gateway_argv(&p.workspace(), p.host.as_deref(), cwd.as_deref());
        self.type_command(&conn, &created.session, &sh_join(&argv))
            .await?;
        let deadline = tokio::time::Instant::now() + GATEWAY_START;
        loop {
            let conns = conn.tmux_list_connections().await?;
            if let Some(c) = conns
                .iter()
                .find(|c| c.owning_session_id.as_deref() == Some(created.session.as_str()))
                && let Some(id) = &c.connection_id
            {
                return Ok(Gateway {
                    window: created.window.clone(),
                    connection: id.clone(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    op: format!(
                        "`{}` to start tmux's control mode in the gateway window of project '{}'",
                        argv.join(" "),
                        p.name
                    ),
                    after: GATEWAY_START,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tags every window showing a tmux window of `connection` as the project's. Returns the
    /// windows tagged now.
    async fn tag_connection_windows(&self, connection: &str, project: &str) -> Result<usize> {
        let conn = self.conn().await?;
        let list = conn.list_sessions().await?;
        let mut n = 0;
        for w in &list.windows {
            if !w
                .tabs
                .iter()
                .any(|t| t.tmux_connection_id.as_deref() == Some(connection))
            {
                continue;
            }
            let Some(wid) = w.window_id.clone() else {
                continue;
            };
            let target = VariableTarget::Window(wid);
            let vars = get_vars(&conn, &target, &[VAR_PROJECT, VAR_PROJECT_MANAGED])
                .await
                .unwrap_or_default();
            if vars.first().and_then(str_of).as_deref() == Some(project)
                && vars.get(1) == Some(&Value::Bool(true))
            {
                continue;
            }
            match set_vars(
                &conn,
                &target,
                &[
                    (VAR_PROJECT, Value::from(project)),
                    (VAR_PROJECT_MANAGED, Value::Bool(true)),
                ],
            )
            .await
            {
                Ok(()) => n += 1,
                // Closed since the listing (its tmux window was killed): nothing to tag.
                Err(ItermError::WindowNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Tags the connection's windows as they appear, until the returned task is aborted.
    async fn watch_connection(
        &self,
        connection: &str,
        project: &str,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let mut rx = self.events().await?;
        let me = self.clone();
        let connection = connection.to_owned();
        let project = project.to_owned();
        Ok(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ItermEvent::TabCreated {
                        tmux_connection_id: Some(c),
                        ..
                    }) if c == connection => {
                        if let Err(e) = me.tag_connection_windows(&connection, &project).await {
                            tracing::debug!(error = %e, "tagging tmux windows");
                        }
                    }
                    Ok(ItermEvent::Lagged(_)) | Ok(ItermEvent::LayoutChanged) => {
                        if let Err(e) = me.tag_connection_windows(&connection, &project).await {
                            tracing::debug!(error = %e, "tagging tmux windows");
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }))
    }

    /// The first pane of a tmux session that `tmux -CC new-session` has just created for the
    /// project (untagged, one window, one pane, created after `since`), named for the project's
    /// first pane; `None` when the session was there before.
    async fn fresh_seed(
        &self,
        link: &TmuxLink,
        p: &Project,
        since: i64,
    ) -> Result<Option<SessionInfo>> {
        let ws = p.workspace();
        let Some(info) = link
            .list_workspaces()
            .await?
            .into_iter()
            .find(|w| w.name == ws)
        else {
            return Err(Error::WorkspaceNotFound(ws));
        };
        let tags = link.tags(&ws).await?;
        if info.windows != 1 || tags.contains_key(TAG_PROJECT) || info.created < since - 1 {
            return Ok(None);
        }
        let panes = link.panes(Some(&format!("={ws}"))).await?;
        let [first] = panes.as_slice() else {
            return Ok(None);
        };
        if first.managed || first.name.contains('/') {
            return Ok(None);
        }
        let windows = p.resolve()?;
        let Some(w0) = windows.first() else {
            return Ok(None);
        };
        let plan = w0.layout.plan()?;
        let pane0 = plan
            .panes
            .iter()
            .find(|(s, _)| *s == 0)
            .map(|(_, spec)| spec.name.clone())
            .unwrap_or_default();
        if let Some(wid) = &first.window_id {
            link.run(&["rename-window", "-t", wid, &w0.name]).await?;
        }
        let pane = first.native.id.clone();
        link.run(&["set-option", "-p", "-t", &pane, "@termloom_managed", "1"])
            .await?;
        link.run(&[
            "set-option",
            "-p",
            "-t",
            &pane,
            "@termloom_name",
            &encode_tag(&p.session_name(&pane0)),
        ])
        .await?;
        for (k, v) in &p.env {
            link.run(&["set-environment", "-t", &format!("={ws}:"), k, v])
                .await?;
        }
        Ok(Some(link.pane(&pane).await?))
    }

    /// Fixes the size of every window of the session: the control client gets the project's
    /// size (when it gives one), then `resize-window -A`.
    async fn fix_sizes(&self, link: &TmuxLink, p: &Project) -> Result<()> {
        if let Some(size) = &p.iterm.size {
            let spec = format!("{}x{}", size.columns, size.rows);
            link.run(&["refresh-client", "-C", &spec]).await?;
        }
        for w in link.list_windows(Some(&p.workspace())).await? {
            link.run(&["resize-window", "-A", "-t", &w.native]).await?;
        }
        Ok(())
    }

    async fn open_tmux_project(&self, p: &Project, opts: &OpenOptions) -> Result<OpenReport> {
        let existing = self.find_gateway(&p.name).await?;
        let since = now_unix();
        // Start iTerm2's notification stream before the gateway, so new windows are seen.
        self.events().await?;
        let (gw, started) = match existing {
            Some(g) => (g, false),
            None => (self.start_gateway(p).await?, true),
        };
        let watcher = self.watch_connection(&gw.connection, &p.name).await?;
        let result = async {
            // Windows that appeared before the watcher started.
            self.tag_connection_windows(&gw.connection, &p.name).await?;
            let link = TmuxLink::new(self.clone(), &gw.connection, p.host.clone());
            let seed = if started {
                self.fresh_seed(&link, p, since).await?
            } else {
                None
            };
            let mut report = reconcile(&link, p, opts, seed).await?;
            self.fix_sizes(&link, p).await?;
            self.wait_shown(&link, &p.workspace()).await?;
            self.tag_connection_windows(&gw.connection, &p.name).await?;
            // The panes are tmux panes: the iTerm2 registry does not record them.
            report.sessions.clear();
            report.backend = ProjectBackend::ItermTmux;
            Ok::<_, Error>(report)
        }
        .await;
        watcher.abort();
        if result.is_err() && started {
            // Leave nothing behind from a failed first open: detach and close the gateway.
            let _ = self.tmux_detach(&gw.connection).await;
            if let Some(w) = &gw.window {
                let _ = self.close_window_quietly(w).await;
            }
        }
        result
    }

    /// Waits until iTerm2 shows every window of the tmux session (it opens them from tmux's
    /// notifications, a little after tmux made them), so the final tagging sweep sees them.
    async fn wait_shown(&self, link: &TmuxLink, ws: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + GATEWAY_START;
        loop {
            let want: Vec<String> = link
                .list_windows(Some(ws))
                .await?
                .into_iter()
                .map(|w| w.native.trim_start_matches('@').to_owned())
                .collect();
            let list = self.conn().await?.list_sessions().await?;
            let shown: Vec<&str> = list
                .windows
                .iter()
                .flat_map(|w| w.tabs.iter())
                .filter(|t| t.tmux_connection_id.as_deref() == Some(link.connection_id()))
                .filter_map(|t| t.tmux_window_id.as_deref())
                .map(|id| id.trim_start_matches('@'))
                .collect();
            if want.iter().all(|w| shown.contains(&w.as_str())) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    op: format!("iTerm2 to show every window of tmux session '{ws}'"),
                    after: GATEWAY_START,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (a little) for a tmux connection to end, so its windows close with it.
    async fn wait_connection_gone(&self, connection: &str) {
        let deadline = tokio::time::Instant::now() + DETACH_WAIT;
        while tokio::time::Instant::now() < deadline {
            let Ok(conn) = self.conn().await else { return };
            match conn.tmux_list_connections().await {
                Ok(live)
                    if live
                        .iter()
                        .any(|c| c.connection_id.as_deref() == Some(connection)) => {}
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close_window_quietly(&self, window: &str) -> Result<()> {
        let conn = self.conn().await?;
        conn.close(
            proto::close_request::Target::Windows(proto::close_request::CloseWindows {
                window_ids: vec![window.to_owned()],
            }),
            true,
        )
        .await?;
        Ok(())
    }

    /// The windows showing tmux windows of a connection.
    async fn connection_windows(&self, connection: &str) -> Result<Vec<String>> {
        let conn = self.conn().await?;
        let list = conn.list_sessions().await?;
        Ok(list
            .windows
            .iter()
            .filter(|w| {
                w.tabs
                    .iter()
                    .any(|t| t.tmux_connection_id.as_deref() == Some(connection))
            })
            .filter_map(|w| w.window_id.clone())
            .collect())
    }

    async fn close_tmux_project(&self, p: &Project) -> Result<CloseReport> {
        let ws = p.workspace();
        let mut report = CloseReport {
            project: p.name.clone(),
            workspace: ws.clone(),
            was_open: false,
            detached: 0,
            sessions: 0,
            hooks: Vec::new(),
            note: None,
        };
        let Some(gw) = self.find_gateway(&p.name).await? else {
            report.note = Some(format!(
                "no iTerm2 window shows project '{}' (its tmux session, if any, keeps running)",
                p.name
            ));
            return Ok(report);
        };
        report.was_open = true;
        let link = TmuxLink::new(self.clone(), &gw.connection, p.host.clone());
        report.sessions = link
            .panes(Some(&format!("={ws}")))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        let conn = self.conn().await?;
        // Menu items act on the active session: bring one of this project's windows forward.
        let windows = self.connection_windows(&gw.connection).await?;
        let target = windows
            .first()
            .cloned()
            .or_else(|| gw.window.clone())
            .ok_or_else(|| {
                Error::backend(
                    BackendKind::Iterm,
                    format!("project '{}' has no window to detach from", p.name),
                )
            })?;
        conn.activate(proto::ActivateRequest {
            order_window_front: Some(true),
            activate_app: Some(proto::activate_request::App {
                raise_all_windows: Some(false),
                ignoring_other_apps: Some(false),
            }),
            identifier: Some(proto::activate_request::Identifier::WindowId(
                target.clone(),
            )),
            ..Default::default()
        })
        .await?;
        if key_window(&conn).await.as_deref() != Some(target.as_str()) {
            return Err(Error::backend(
                BackendKind::Iterm,
                format!(
                    "could not bring project '{}''s window {target} to the front to detach it",
                    p.name
                ),
            ));
        }
        self.menu_item("tmux.Detach", false).await?;
        let deadline = tokio::time::Instant::now() + DETACH_WAIT;
        loop {
            let live = conn.tmux_list_connections().await?;
            if !live
                .iter()
                .any(|c| c.connection_id.as_deref() == Some(gw.connection.as_str()))
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    op: format!("tmux.Detach of project '{}'", p.name),
                    after: DETACH_WAIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        report.detached = 1;
        if let Some(w) = &gw.window {
            self.close_window_quietly(w).await?;
        }
        Ok(report)
    }
}

impl ItermTerminal {
    /// `termloom attach SESSION --iterm`: opens an iTerm2 window running `tmux -CC` for the tmux
    /// session (`new-session -A`, or `attach-session` when `opts.create` is off; through `ssh -t`
    /// for `opts.host`), so the session shows as native iTerm2 windows. Waits until iTerm2's
    /// tmux connection is up; when it does not come up in time, the window is closed again.
    pub async fn attach_tmux(&self, session: &str, opts: &AttachOpts) -> Result<AttachPlan> {
        if !opts.control_mode {
            return Err(Error::unsupported(
                BackendKind::Iterm,
                "attach this terminal",
                "iTerm2 windows are shown already; `termloom attach SESSION --iterm` shows a tmux \
                 session in iTerm2",
            ));
        }
        if session.is_empty() || session.contains(['\0', '\n']) {
            return Err(Error::InvalidArgument(format!(
                "'{session}' is not a tmux session name"
            )));
        }
        let conn = self.conn().await?;
        let created = self
            .create_tab_raw(&conn, None, &ItermCreate::default(), None)
            .await?;
        self.prepare(&conn, &created.session, None).await?;
        let cwd = opts
            .cwd
            .as_ref()
            .filter(|_| opts.host.is_none())
            .map(|c| c.to_string_lossy().into_owned());
        let argv = if opts.create {
            gateway_argv(session, opts.host.as_deref(), cwd.as_deref())
        } else {
            attach_argv(session, opts.host.as_deref())
        };
        self.type_command(&conn, &created.session, &sh_join(&argv))
            .await?;
        let deadline = tokio::time::Instant::now() + GATEWAY_START;
        loop {
            let conns = conn.tmux_list_connections().await?;
            if conns
                .iter()
                .any(|c| c.owning_session_id.as_deref() == Some(created.session.as_str()))
            {
                return Ok(AttachPlan::Shown {
                    message: format!(
                        "tmux session {session} is shown in iTerm2 (`{}`)",
                        argv.join(" ")
                    ),
                });
            }
            let gave_up = tokio::time::Instant::now() >= deadline;
            if gave_up {
                let _ = self
                    .close_window_quietly(created.window.as_deref().unwrap_or_default())
                    .await;
                return Err(Error::backend(
                    BackendKind::Iterm,
                    format!(
                        "`{}` did not start tmux's control mode in the new iTerm2 window{}",
                        argv.join(" "),
                        if opts.create {
                            ""
                        } else {
                            " (does the session exist? --no-create does not create it)"
                        }
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[async_trait]
impl ProjectHost for ItermTerminal {
    fn hosts(&self, backend: ProjectBackend) -> bool {
        backend == ProjectBackend::ItermTmux
    }

    async fn open_project(&self, p: &Project, opts: &OpenOptions) -> Result<OpenReport> {
        self.open_tmux_project(p, opts).await
    }

    async fn close_project(&self, p: &Project, opts: &CloseOptions) -> Result<CloseReport> {
        let _ = opts;
        self.close_tmux_project(p).await
    }

    async fn kill_project(&self, p: &Project) -> Result<KillReport> {
        let ws = p.workspace();
        let since = now_unix();
        let (gw, started) = match self.find_gateway(&p.name).await? {
            Some(g) => (g, false),
            None => (self.start_gateway(p).await?, true),
        };
        let link = TmuxLink::new(self.clone(), &gw.connection, p.host.clone());
        let tags = link.tags(&ws).await.unwrap_or_default();
        let mut report = KillReport {
            project: p.name.clone(),
            workspace: ws.clone(),
            killed: false,
            sessions: 0,
        };
        if tags.get(TAG_PROJECT).map(String::as_str) != Some(p.name.as_str()) {
            // `new-session -A` made the session just now: it was not there, so nothing was open.
            let made_now = started
                && tags.is_empty()
                && link.list_workspaces().await.is_ok_and(|all| {
                    all.iter()
                        .any(|w| w.name == ws && w.windows == 1 && w.created >= since - 1)
                });
            if made_now {
                if let Err(e) = link.run(&["kill-session", "-t", &format!("={ws}")]).await {
                    tracing::debug!(error = %e, "kill-session answered with an error");
                }
                if let Some(w) = &gw.window {
                    let _ = self.close_window_quietly(w).await;
                }
                return Ok(report);
            }
            if started {
                let _ = self.tmux_detach(&gw.connection).await;
                if let Some(w) = &gw.window {
                    let _ = self.close_window_quietly(w).await;
                }
            }
            return Err(Error::InvalidArgument(format!(
                "tmux session '{ws}' is not tagged as project '{}'; not killing it",
                p.name
            )));
        }
        report.sessions = link
            .panes(Some(&format!("={ws}")))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        // The connection ends with the session; its answer may never come.
        if let Err(e) = link.run(&["kill-session", "-t", &format!("={ws}")]).await {
            tracing::debug!(error = %e, "kill-session answered with an error");
        }
        report.killed = true;
        self.wait_connection_gone(&gw.connection).await;
        if let Some(w) = &gw.window {
            let _ = self.close_window_quietly(w).await;
        }
        Ok(report)
    }

    async fn project_status(&self, p: &Project) -> Result<ProjectStatus> {
        let mut st = ProjectStatus {
            open: false,
            attached: false,
            windows: 0,
            sessions: 0,
            conflict: None,
        };
        let Some(gw) = self.find_gateway(&p.name).await? else {
            return Ok(st);
        };
        let link = TmuxLink::new(self.clone(), &gw.connection, p.host.clone());
        let ws = p.workspace();
        let tags = link.tags(&ws).await.unwrap_or_default();
        match tags.get(TAG_PROJECT) {
            Some(o) if *o == p.name => {}
            other => {
                st.conflict = Some(other.cloned().unwrap_or_else(|| "(not a project)".into()));
                return Ok(st);
            }
        }
        st.open = true;
        st.attached = true;
        st.windows = link.list_windows(Some(&ws)).await?.len() as u32;
        st.sessions = link.panes(Some(&format!("={ws}"))).await?.len();
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_argv_is_argv() {
        assert_eq!(
            gateway_argv("demo", None, None),
            ["tmux", "-CC", "new-session", "-A", "-s", "demo"]
        );
        let remote = gateway_argv("my proj", Some("box"), None);
        assert_eq!(remote[..4], ["ssh", "-t", "box", "--"]);
        assert_eq!(remote[4], "tmux -CC new-session -A -s 'my proj'");
        assert_eq!(
            sh_join(&remote),
            "ssh -t box -- \"tmux -CC new-session -A -s 'my proj'\""
        );
    }
}
