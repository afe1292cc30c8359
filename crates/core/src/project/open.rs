//! Opening, closing and killing projects, backend-neutral, on the [`Terminal`] trait.
//!
//! **open** reconciles: when the workspace exists it must carry this project's tag
//! ([`TAG_PROJECT`]); every pane of the file is looked up among the workspace's live sessions by the
//! session id stored at the last open ([`TAG_PANES`]), then by its session name (`PROJECT/PANE`),
//! never by position. A window is the live window holding its panes, else the live window of that
//! name. Only what is missing is created: a missing window with its whole layout, a missing pane
//! split into its window next to the pane the layout splits it from. Commands are typed only into
//! panes created now, so a live pane never runs its command twice, and nothing is duplicated.
//!
//! **close** detaches every client from the workspace; every process keeps running. A terminal
//! without detach (plain iTerm2 windows) closes nothing and says so in [`CloseReport::note`].
//! **kill** is the only call that destroys anything, and only a workspace tagged with this
//! project.
//!
//! A terminal whose [`ProjectHost`] takes the project's backend (iTerm2 for `iterm-tmux`) opens,
//! closes, kills and reports it its own way, usually by running [`reconcile`] over a terminal of
//! its own; hooks still run here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use super::{
    Project, ProjectBackend, ProjectHost, ProjectStore, ResolvedWindow, TAG_PANES, TAG_PROJECT,
};
use crate::error::{Error, Result};
use crate::ids::{BackendKind, SessionId};
use crate::layout::Direction;
use crate::loom::Loom;
use crate::model::{SendOpts, SessionInfo, SplitSpec, WindowSpec, WorkspaceSpec};
use crate::terminal::Terminal;

/// How long one hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// At most this many bytes of a hook's output are kept in a report.
const HOOK_OUTPUT_TAIL: usize = 2000;

/// How long a hook's output is still read after the hook exited (what its pipes hold).
const HOOK_DRAIN: Duration = Duration::from_millis(200);

/// Reads a hook's stdout and stderr as they come, keeping the last few times
/// [`HOOK_OUTPUT_TAIL`] bytes in `keep`; returns when both are closed.
async fn read_tail(
    out: Option<tokio::process::ChildStdout>,
    err: Option<tokio::process::ChildStderr>,
    keep: &mut Vec<u8>,
) {
    use tokio::io::AsyncReadExt;
    let limit = HOOK_OUTPUT_TAIL * 4;
    let (mut out, mut err) = (out, err);
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    loop {
        let n = tokio::select! {
            r = async { out.as_mut()?.read(&mut a).await.ok() }, if out.is_some() => match r {
                Some(n) if n > 0 => { keep.extend_from_slice(&a[..n]); n }
                _ => { out = None; 0 }
            },
            r = async { err.as_mut()?.read(&mut b).await.ok() }, if err.is_some() => match r {
                Some(n) if n > 0 => { keep.extend_from_slice(&b[..n]); n }
                _ => { err = None; 0 }
            },
            else => return,
        };
        if n > 0 && keep.len() > limit {
            keep.drain(..keep.len() - limit);
        }
    }
}

/// How to open a project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenOptions {
    /// Take over a workspace of the project's session name that no project opened (it is tagged
    /// with the project, its panes are kept and matched by name).
    pub adopt: bool,
    /// Run the `on_open` hooks.
    pub run_hooks: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            adopt: false,
            run_hooks: true,
        }
    }
}

/// How to close a project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloseOptions {
    /// Run the `on_close` hooks.
    pub run_hooks: bool,
}

impl Default for CloseOptions {
    fn default() -> Self {
        CloseOptions { run_hooks: true }
    }
}

/// What open did with a window or a pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// It was missing and was created.
    Created,
    /// It was there already; nothing was changed.
    Found,
    /// The window was there, and its missing panes were created in it.
    Completed,
}

/// How a live pane was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// By the session id stored at the last open.
    Id,
    /// By its session name (`PROJECT/PANE`).
    Name,
}

/// One pane after open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaneReport {
    /// The pane's name in the project.
    pub name: String,
    /// Its session's name (`PROJECT/PANE` for panes open created; what it is now for found ones).
    pub session: String,
    /// Its session's persistent id.
    pub id: SessionId,
    /// The backend's id for it (`tmux:%3`).
    pub native: String,
    /// Created now, or found.
    pub status: ItemStatus,
    /// How a found pane was recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchedBy>,
    /// Command lines typed into it now (only ever into panes created now).
    pub commands_sent: usize,
    /// Its process has exited (the pane remains).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dead: bool,
}

/// One window after open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowReport {
    /// The window's name in the project.
    pub name: String,
    /// The backend's id for it (`@4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<String>,
    /// Created, found, or found and completed.
    pub status: ItemStatus,
    /// Its panes, in layout order.
    pub panes: Vec<PaneReport>,
}

/// What one hook did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookReport {
    /// `on_open` or `on_close`.
    pub hook: String,
    /// The argv run.
    pub argv: Vec<String>,
    /// It ran and exited 0.
    pub ok: bool,
    /// Its exit code, when it exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The end of its output (stdout, then stderr).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Why it did not run or did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What open did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenReport {
    /// The project.
    pub project: String,
    /// Its workspace (tmux session).
    pub workspace: String,
    /// Its backend.
    pub backend: ProjectBackend,
    /// The workspace did not exist and was created.
    pub created_workspace: bool,
    /// An untagged workspace of the same name was taken over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// Panes created now.
    pub created: usize,
    /// Panes found alive.
    pub found: usize,
    /// Every window, in file order.
    pub windows: Vec<WindowReport>,
    /// The `on_open` hooks that ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookReport>,
    /// Every session of the project, as listed after the open (for the registry).
    #[serde(skip)]
    pub sessions: Vec<SessionInfo>,
}

/// What close did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloseReport {
    /// The project.
    pub project: String,
    /// Its workspace.
    pub workspace: String,
    /// The workspace existed.
    pub was_open: bool,
    /// Clients detached.
    pub detached: usize,
    /// Sessions still running in the workspace (all of them: close kills nothing).
    pub sessions: usize,
    /// The `on_close` hooks that ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookReport>,
    /// What close could not do in this terminal, and what it did instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What kill did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KillReport {
    /// The project.
    pub project: String,
    /// Its workspace.
    pub workspace: String,
    /// The workspace existed and was destroyed.
    pub killed: bool,
    /// Sessions that were running in it.
    pub sessions: usize,
}

/// A project's live state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectStatus {
    /// Its workspace exists and carries this project's tag.
    pub open: bool,
    /// Someone sees it: a terminal or a viewing client is attached (termloom's own connections
    /// do not count).
    pub attached: bool,
    /// Windows in the workspace.
    pub windows: u32,
    /// Sessions in the workspace.
    pub sessions: usize,
    /// The project tag on a workspace of that name, when it is another project's (or none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
}

/// A project file and its state, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectSummary {
    /// The project's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// Its backend, when the file loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<ProjectBackend>,
    /// Its workspace name, when the file loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The ssh host it lives on, when the file names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How many windows the file defines.
    pub windows: usize,
    /// The live state, when the terminal asked is the project's kind (and on its host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    /// Why the file does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProjectSummary {
    /// A project file's entry before anything is known of what it holds.
    fn of_file(name: String, file: &Path) -> Self {
        ProjectSummary {
            name,
            file: file.display().to_string(),
            backend: None,
            workspace: None,
            host: None,
            windows: 0,
            status: None,
            error: None,
        }
    }
}

/// Checks that `t` is the terminal the project opens in.
fn check_terminal(t: &dyn Terminal, p: &Project) -> Result<()> {
    match (p.backend, t.kind()) {
        (ProjectBackend::Tmux, BackendKind::Tmux) | (ProjectBackend::Iterm, BackendKind::Iterm) => {
        }
        (want, got) => {
            return Err(Error::InvalidArgument(format!(
                "project '{}' opens in {want}, but this terminal is {got}",
                p.name
            )));
        }
    }
    let here = t.key().host;
    if p.host != here {
        return Err(Error::InvalidArgument(format!(
            "project '{}' lives on {}, but this terminal is on {}",
            p.name,
            p.host.as_deref().unwrap_or("this machine"),
            here.as_deref().unwrap_or("this machine")
        )));
    }
    Ok(())
}

/// The terminal's own project host, when it takes this project's backend.
fn hosted<'a>(t: &'a dyn Terminal, p: &Project) -> Option<&'a dyn ProjectHost> {
    t.project_host().filter(|h| h.hosts(p.backend))
}

/// Whether a workspace of exactly this name exists.
async fn workspace_exists(t: &dyn Terminal, ws: &str) -> Result<bool> {
    Ok(t.list_workspaces().await?.iter().any(|w| w.name == ws))
}

/// The project a workspace is tagged with.
async fn owner(
    t: &dyn Terminal,
    ws: &str,
) -> Result<(Option<String>, BTreeMap<String, SessionId>)> {
    let tags = t.workspace_tags(ws).await?;
    let panes = match tags.get(TAG_PANES) {
        Some(json) => serde_json::from_str(json).unwrap_or_else(|e| {
            tracing::warn!(workspace = ws, error = %e, "unreadable project pane map; matching by name");
            BTreeMap::new()
        }),
        None => BTreeMap::new(),
    };
    Ok((tags.get(TAG_PROJECT).cloned(), panes))
}

fn not_ours(p: &Project, ws: &str, tag: Option<&str>) -> Error {
    match tag {
        Some(other) => Error::InvalidArgument(format!(
            "workspace '{ws}' belongs to project '{other}', not '{}'; give one of them another `session:`",
            p.name
        )),
        None => Error::InvalidArgument(format!(
            "a workspace named '{ws}' exists but was not opened as project '{}'; adopt it \
             (`--adopt`) or give the project another `session:`",
            p.name
        )),
    }
}

/// Checks that every working directory exists. For a remote project, that none starts with `~`:
/// it would be this machine's home, not the host's (its directories are not checked here).
fn check_dirs(p: &Project, windows: &[ResolvedWindow]) -> Result<()> {
    if let Some(host) = &p.host {
        let tilde =
            |d: &Option<std::path::PathBuf>| d.as_deref().is_some_and(|d| d.starts_with("~"));
        let mut dirs = vec![("root", &p.root)];
        for w in &p.windows {
            dirs.push(("a window's cwd", &w.cwd));
            dirs.extend(w.panes.iter().map(|pane| ("a pane's cwd", &pane.cwd)));
        }
        if let Some((what, Some(d))) = dirs.into_iter().find(|(_, d)| tilde(d)) {
            return Err(Error::InvalidArgument(format!(
                "project '{}' runs on host '{host}': its {what} {} starts with `~`, which termloom would take as this machine's home ({}), not the host's; write the host's path in full",
                p.name,
                d.display(),
                super::expand_tilde(Path::new("~")).display()
            )));
        }
        return Ok(());
    }
    if let (Some(raw), Some(root)) = (&p.root, p.root_dir())
        && !root.is_dir()
    {
        return Err(Error::InvalidArgument(format!(
            "project '{}': root {} ({}) is not a directory",
            p.name,
            raw.display(),
            root.display()
        )));
    }
    for w in windows {
        for pane in &w.panes {
            if let Some(c) = &pane.cwd
                && !c.is_dir()
            {
                return Err(Error::InvalidArgument(format!(
                    "project '{}': the cwd of pane '{}' in window '{}', {}, is not a directory",
                    p.name,
                    pane.name,
                    w.name,
                    c.display()
                )));
            }
        }
    }
    Ok(())
}

/// Before a project's workspace is created: refuses when one of its pane names is already a
/// session elsewhere (its workspace renamed by hand, the pane moved out), saying where, instead
/// of the backend's bare "name already exists".
async fn refuse_names_elsewhere(
    t: &dyn Terminal,
    p: &Project,
    ws: &str,
    windows: &[ResolvedWindow],
) -> Result<()> {
    let names: HashSet<String> = windows
        .iter()
        .flat_map(|w| w.panes.iter().map(|x| p.session_name(&x.name)))
        .collect();
    if let Some(s) = t
        .list_sessions()
        .await?
        .into_iter()
        .find(|s| names.contains(&s.name))
    {
        return Err(Error::InvalidArgument(format!(
            "project '{}': its pane session '{}' ({}) already runs at {}, outside the project's workspace '{ws}', which is gone (renamed by hand, or the pane moved out of it?); rename that workspace back to '{ws}', or close that session, then open the project again",
            p.name,
            s.name,
            s.id,
            s.path()
        )));
    }
    Ok(())
}

/// Builds what is missing of one project window.
struct WindowBuild<'a> {
    t: &'a dyn Terminal,
    p: &'a Project,
    ws: &'a str,
    w: &'a ResolvedWindow,
}

impl WindowBuild<'_> {
    /// Reconciles the window. `live` is the workspace's sessions (`claimed` those matched to other
    /// panes); `used_windows` the live windows matched to other project windows; `seed` a pane just
    /// created for this window's first slot (with the workspace).
    async fn run(
        &self,
        live: &[SessionInfo],
        stored: &BTreeMap<String, SessionId>,
        claimed: &mut HashSet<SessionId>,
        used_windows: &mut HashSet<String>,
        seed: Option<SessionInfo>,
    ) -> Result<WindowReport> {
        let plan = self.w.layout.plan()?;
        let n = plan.panes.len();
        let name_of = |slot: usize| {
            plan.panes
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, spec)| spec.name.clone())
                .unwrap_or_default()
        };
        // Slot → (session, how it was matched; None = created now).
        let mut slots: Vec<Option<(SessionInfo, Option<MatchedBy>)>> = vec![None; n];
        let seeded = seed.is_some();
        if let Some(s) = seed {
            claimed.insert(s.id);
            slots[0] = Some((s, None));
        }
        for (slot, spec) in &plan.panes {
            if slots[*slot].is_some() {
                continue;
            }
            let by_id = stored.get(&spec.name).and_then(|id| {
                live.iter()
                    .find(|s| s.id == *id && !claimed.contains(&s.id))
                    .map(|s| (s.clone(), MatchedBy::Id))
            });
            let qualified = self.p.session_name(&spec.name);
            let found = by_id.or_else(|| {
                live.iter()
                    .find(|s| s.name == qualified && !claimed.contains(&s.id))
                    .map(|s| (s.clone(), MatchedBy::Name))
            });
            if let Some((s, how)) = found {
                claimed.insert(s.id);
                slots[*slot] = Some((s, Some(how)));
            }
        }
        // The live window: the one holding most of this window's panes (earliest slot on a tie),
        // else an unused live window of this name.
        let mut counts: Vec<(String, usize, usize)> = Vec::new();
        for (slot, entry) in slots.iter().enumerate() {
            if let Some((s, _)) = entry
                && let Some(wid) = &s.window_id
            {
                match counts.iter_mut().find(|(w, _, _)| w == wid) {
                    Some(c) => c.1 += 1,
                    None => counts.push((wid.clone(), 1, slot)),
                }
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        let mut window_id = counts
            .into_iter()
            .map(|(w, _, _)| w)
            .find(|w| !used_windows.contains(w));
        if window_id.is_none() {
            window_id = self
                .t
                .list_windows(Some(self.ws))
                .await?
                .into_iter()
                .find(|x| x.name == self.w.name && !used_windows.contains(&x.native))
                .map(|x| x.native);
        }
        let mut status = if seeded {
            ItemStatus::Created
        } else {
            ItemStatus::Found
        };
        let window_id = match (window_id, (0..n).find(|i| slots[*i].is_none())) {
            (Some(w), _) => w,
            // Every pane of the window was found in other windows (moved there by hand): they
            // stay where they are, and nothing is made twice.
            (None, None) => slots
                .iter()
                .flatten()
                .find_map(|(s, _)| s.window_id.clone())
                .unwrap_or_default(),
            (None, Some(first)) => {
                // The window is missing: create it, in the background, with its first pane not
                // found elsewhere.
                let spec = self.w.pane(&name_of(first));
                let info = self
                    .t
                    .create_window(&WindowSpec {
                        workspace: self.ws.to_string(),
                        name: Some(self.w.name.clone()),
                        session_name: Some(self.p.session_name(&name_of(first))),
                        cwd: spec.and_then(|s| s.cwd.clone()),
                        command: None,
                        select: false,
                    })
                    .await?;
                status = ItemStatus::Created;
                claimed.insert(info.id);
                slots[first] = Some((info.clone(), None));
                info.window_id.clone().unwrap_or_default()
            }
        };
        used_windows.insert(window_id.clone());
        let in_window = |s: &SessionInfo| s.window_id.as_deref() == Some(window_id.as_str());
        // Create the missing panes in slot order. A slot's area is now held by the last pane the
        // layout split from it, when that one is here: split it again, the new pane before it.
        // Else split the pane the layout split this slot from. Else the nearest live pane.
        let live_slot = |slots: &[Option<(SessionInfo, Option<MatchedBy>)>], i: usize| {
            slots[i]
                .as_ref()
                .map(|(s, _)| s.clone())
                .filter(|s| in_window(s))
        };
        for slot in 0..n {
            if slots[slot].is_some() {
                continue;
            }
            let child = plan
                .steps
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, st)| st.slot == slot)
                .find_map(|(k, st)| live_slot(&slots, k + 1).map(|c| (c, *st)));
            let step = slot.checked_sub(1).and_then(|i| plan.steps.get(i)).copied();
            let parent = step.and_then(|st| live_slot(&slots, st.slot).map(|p| (p, st)));
            // (anchor, direction, before, the new pane's share of the anchor's area)
            let how = match (child, parent) {
                (Some((c, st)), _) => Some((c, st.direction, true, 100 - st.percent)),
                (None, Some((p, st))) => Some((p, st.direction, false, st.percent)),
                (None, None) => {
                    let direction = step.map(|s| s.direction).unwrap_or(Direction::Horizontal);
                    let earlier = (0..slot).rev().find_map(|i| live_slot(&slots, i));
                    let later = (slot + 1..n).find_map(|i| live_slot(&slots, i));
                    match (earlier, later) {
                        (Some(e), _) => Some((e, direction, false, 50)),
                        (None, Some(l)) => Some((l, direction, true, 50)),
                        (None, None) => live
                            .iter()
                            .find(|s| in_window(s) && !s.dead)
                            .map(|s| (s.clone(), direction, false, 50)),
                    }
                }
            };
            let Some((anchor, direction, before, percent)) = how else {
                return Err(Error::backend(
                    self.t.kind(),
                    format!(
                        "window '{}' of project '{}' has no pane left to split",
                        self.w.name, self.p.name
                    ),
                ));
            };
            let name = name_of(slot);
            let spec = self.w.pane(&name);
            let session = self.t.open(&anchor).await?;
            let info = session
                .split(&SplitSpec {
                    direction,
                    percent: Some(percent.clamp(1, 99)),
                    name: Some(self.p.session_name(&name)),
                    before,
                    cwd: spec.and_then(|s| s.cwd.clone()),
                    command: None,
                })
                .await?;
            if status == ItemStatus::Found {
                status = ItemStatus::Completed;
            }
            claimed.insert(info.id);
            slots[slot] = Some((info, None));
        }
        // Panes made one by one into a window that had others rarely end up in the layout's
        // shape (a main pane made again is split from a neighbour): reshape the window.
        if status == ItemStatus::Completed {
            let by_name: HashMap<&str, &SessionInfo> = plan
                .panes
                .iter()
                .filter_map(|(slot, spec)| {
                    slots[*slot].as_ref().map(|(s, _)| (spec.name.as_str(), s))
                })
                .collect();
            let ordered: Option<Vec<SessionInfo>> = self
                .w
                .layout
                .leaves()
                .iter()
                .map(|l| by_name.get(l.name.as_str()).map(|s| (*s).clone()))
                .collect();
            if let Some(ordered) = ordered {
                match self
                    .t
                    .fit_layout(&window_id, &self.w.layout, &ordered)
                    .await
                {
                    Ok(()) | Err(Error::Unsupported { .. }) => {}
                    Err(e) => {
                        tracing::warn!(window = %self.w.name, error = %e, "window not reshaped to its layout");
                    }
                }
            }
        }
        // Type the commands of the panes created now, in layout order; never into a found pane.
        let mut panes = Vec::new();
        for (slot, spec) in &plan.panes {
            let Some((info, how)) = slots[*slot].clone() else {
                continue;
            };
            let mut sent = 0;
            if how.is_none()
                && let Some(p) = self.w.pane(&spec.name)
                && !p.commands.is_empty()
            {
                let session = self.t.open(&info).await?;
                for c in &p.commands {
                    session.send_text(c, SendOpts { enter: true }).await?;
                    sent += 1;
                }
            }
            panes.push(PaneReport {
                name: spec.name.clone(),
                session: info.name.clone(),
                id: info.id,
                native: info.native.to_string(),
                status: if how.is_some() {
                    ItemStatus::Found
                } else {
                    ItemStatus::Created
                },
                matched_by: how,
                commands_sent: sent,
                dead: info.dead,
            });
        }
        Ok(WindowReport {
            name: self.w.name.clone(),
            native: Some(window_id),
            status,
            panes,
        })
    }
}

/// Opens a project: creates its workspace, or completes it when it exists (see the module docs).
/// A terminal whose [`ProjectHost`] takes the project's backend opens it its own way.
pub async fn open(t: &dyn Terminal, p: &Project, opts: &OpenOptions) -> Result<OpenReport> {
    let windows = p.resolve()?;
    let mut report = match hosted(t, p) {
        Some(host) => {
            check_dirs(p, &windows)?;
            host.open_project(p, opts).await?
        }
        None => {
            check_terminal(t, p)?;
            reconcile(t, p, opts, None).await?
        }
    };
    if opts.run_hooks {
        run_open_hooks(p, &mut report).await;
    }
    Ok(report)
}

/// Runs the project's `on_open` hooks for an opened workspace, into the report.
async fn run_open_hooks(p: &Project, report: &mut OpenReport) {
    report.hooks = run_hooks(p, "on_open", &p.hooks.on_open, &report.workspace).await;
}

/// The generic reconcile behind [`open`], without the terminal check and the hooks: for
/// [`ProjectHost`]s that drive it over a terminal of their own. `created`: the first session of
/// the project's workspace when the caller has just created that workspace (it is tagged with
/// the project here, and becomes the first pane of the first window).
pub async fn reconcile(
    t: &dyn Terminal,
    p: &Project,
    opts: &OpenOptions,
    created: Option<SessionInfo>,
) -> Result<OpenReport> {
    let windows = p.resolve()?;
    let ws = p.workspace();
    let mut stored = BTreeMap::new();
    let mut adopted = false;
    let mut seed = None;
    let created_workspace = if let Some(info) = created {
        t.set_workspace_tag(&ws, TAG_PROJECT, Some(&p.name)).await?;
        seed = Some(info);
        true
    } else if workspace_exists(t, &ws).await? {
        let (tag, panes) = owner(t, &ws).await?;
        match tag.as_deref() {
            Some(o) if o == p.name => stored = panes,
            None if opts.adopt => {
                t.set_workspace_tag(&ws, TAG_PROJECT, Some(&p.name)).await?;
                adopted = true;
            }
            other => return Err(not_ours(p, &ws, other)),
        }
        false
    } else {
        // Every directory is checked before anything is made: a missing one leaves nothing
        // half built.
        check_dirs(p, &windows)?;
        refuse_names_elsewhere(t, p, &ws, &windows).await?;
        let w0 = windows
            .first()
            .ok_or_else(|| Error::InvalidArgument("a project needs a window".into()))?;
        let plan = w0.layout.plan()?;
        let first = plan
            .panes
            .iter()
            .find(|(s, _)| *s == 0)
            .map(|(_, spec)| spec.name.clone())
            .unwrap_or_default();
        let info = t
            .create_workspace(&WorkspaceSpec {
                name: ws.clone(),
                window: Some(w0.name.clone()),
                session_name: Some(p.session_name(&first)),
                cwd: w0.pane(&first).and_then(|x| x.cwd.clone()),
                env: p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                size: None,
                history_limit: None,
            })
            .await?;
        t.set_workspace_tag(&ws, TAG_PROJECT, Some(&p.name)).await?;
        seed = Some(info);
        true
    };
    let live: Vec<SessionInfo> = t
        .list_sessions()
        .await?
        .into_iter()
        .filter(|s| s.workspace == ws)
        .collect();
    if !created_workspace {
        // An open workspace needs the directories of the panes not there (by name) any more,
        // all checked before any is made again; those of the panes found do not matter.
        let missing: Vec<ResolvedWindow> = windows
            .iter()
            .map(|w| {
                let mut w = w.clone();
                w.panes
                    .retain(|pane| !live.iter().any(|s| s.name == p.session_name(&pane.name)));
                w
            })
            .filter(|w| !w.panes.is_empty())
            .collect();
        if !missing.is_empty() {
            check_dirs(p, &missing)?;
        }
    }
    let mut claimed = HashSet::new();
    let mut used_windows = HashSet::new();
    let mut reports = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let build = WindowBuild { t, p, ws: &ws, w };
        let seed = if i == 0 { seed.take() } else { None };
        let report = build
            .run(&live, &stored, &mut claimed, &mut used_windows, seed)
            .await?;
        reports.push(report);
    }
    // Remember which session is which pane, for the next open.
    let map: BTreeMap<&str, SessionId> = reports
        .iter()
        .flat_map(|w| w.panes.iter().map(|p| (p.name.as_str(), p.id)))
        .collect();
    let json = serde_json::to_string(&map)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode the pane map: {e}")))?;
    t.set_workspace_tag(&ws, TAG_PANES, Some(&json)).await?;
    if created_workspace
        && let Some(focus) = windows
            .iter()
            .flat_map(|w| w.panes.iter())
            .find(|x| x.focus)
        && let Some(id) = map.get(focus.name.as_str())
    {
        let all = t.list_sessions().await?;
        if let Some(info) = all.iter().find(|s| s.id == *id) {
            t.open(info).await?.focus().await?;
        }
    }
    let ids: HashSet<SessionId> = map.values().copied().collect();
    let sessions: Vec<SessionInfo> = t
        .list_sessions()
        .await?
        .into_iter()
        .filter(|s| ids.contains(&s.id))
        .collect();
    let count = |st: ItemStatus| {
        reports
            .iter()
            .flat_map(|w| &w.panes)
            .filter(|x| x.status == st)
            .count()
    };
    Ok(OpenReport {
        project: p.name.clone(),
        workspace: ws,
        backend: p.backend,
        created_workspace,
        adopted,
        created: count(ItemStatus::Created),
        found: count(ItemStatus::Found),
        windows: reports,
        hooks: Vec::new(),
        sessions,
    })
}

/// Closes a project: detaches every client from its workspace, kills nothing. Closing a project
/// that is not open does nothing.
pub async fn close(t: &dyn Terminal, p: &Project, opts: &CloseOptions) -> Result<CloseReport> {
    if let Some(host) = hosted(t, p) {
        let mut report = host.close_project(p, opts).await?;
        if opts.run_hooks && report.was_open {
            report.hooks = run_hooks(p, "on_close", &p.hooks.on_close, &report.workspace).await;
        }
        return Ok(report);
    }
    check_terminal(t, p)?;
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
    if !workspace_exists(t, &ws).await? {
        return Ok(report);
    }
    let (tag, _) = owner(t, &ws).await?;
    if tag.as_deref() != Some(p.name.as_str()) {
        return Err(not_ours(p, &ws, tag.as_deref()));
    }
    report.was_open = true;
    match t.detach_workspace(&ws).await {
        Ok(n) => report.detached = n,
        // A terminal without detach (plain iTerm2 windows): close leaves everything as it is,
        // since closing would kill the processes; `kill` is the way to close.
        Err(Error::Unsupported { reason, .. }) => {
            report.note = Some(format!(
                "nothing was closed: {reason}; every window stays open and every process keeps \
                 running (`project kill NAME --yes` closes the windows and kills their processes)"
            ));
        }
        Err(e) => return Err(e),
    }
    report.sessions = t
        .list_sessions()
        .await?
        .iter()
        .filter(|s| s.workspace == ws)
        .count();
    if opts.run_hooks {
        report.hooks = run_hooks(p, "on_close", &p.hooks.on_close, &ws).await;
    }
    Ok(report)
}

/// Kills a project's workspace and every process in it. Only a workspace tagged with this project
/// is killed; a project that is not open is left as it is.
pub async fn kill(t: &dyn Terminal, p: &Project) -> Result<KillReport> {
    if let Some(host) = hosted(t, p) {
        return host.kill_project(p).await;
    }
    check_terminal(t, p)?;
    let ws = p.workspace();
    let mut report = KillReport {
        project: p.name.clone(),
        workspace: ws.clone(),
        killed: false,
        sessions: 0,
    };
    if !workspace_exists(t, &ws).await? {
        return Ok(report);
    }
    let (tag, _) = owner(t, &ws).await?;
    if tag.as_deref() != Some(p.name.as_str()) {
        return Err(not_ours(p, &ws, tag.as_deref()));
    }
    report.sessions = t
        .list_sessions()
        .await?
        .iter()
        .filter(|s| s.workspace == ws)
        .count();
    t.destroy_workspace(&ws).await?;
    report.killed = true;
    Ok(report)
}

/// A project's live state in `t`.
pub async fn status(t: &dyn Terminal, p: &Project) -> Result<ProjectStatus> {
    if let Some(host) = hosted(t, p) {
        return host.project_status(p).await;
    }
    let ws = p.workspace();
    let all = t.list_workspaces().await?;
    let mut st = ProjectStatus {
        open: false,
        attached: false,
        windows: 0,
        sessions: 0,
        conflict: None,
    };
    let Some(info) = all.iter().find(|w| w.name == ws) else {
        return Ok(st);
    };
    let (tag, _) = owner(t, &ws).await?;
    if tag.as_deref() != Some(p.name.as_str()) {
        st.conflict = Some(tag.unwrap_or_else(|| "(not a project)".into()));
        return Ok(st);
    }
    st.open = true;
    st.attached = info.attached;
    st.windows = info.windows;
    st.sessions = t
        .list_sessions()
        .await?
        .iter()
        .filter(|s| s.workspace == ws)
        .count();
    Ok(st)
}

/// Every project file in the store, with its live state in `t` (when `t` is of the project's kind).
/// A file that does not load is listed with its error.
pub async fn list_projects(store: &ProjectStore, t: &dyn Terminal) -> Result<Vec<ProjectSummary>> {
    let mut out = Vec::new();
    for name in store.names()? {
        let file = store.path(&name)?;
        let mut s = ProjectSummary::of_file(name.clone(), &file);
        match Project::load_file(&file) {
            Ok(p) => {
                s.backend = Some(p.backend);
                s.workspace = Some(p.workspace());
                s.host = p.host.clone();
                s.windows = p.windows.len();
                if hosted(t, &p).is_some() || check_terminal(t, &p).is_ok() {
                    s.status = Some(status(t, &p).await?);
                }
            }
            Err(e) => s.error = Some(e.to_string()),
        }
        out.push(s);
    }
    for file in store.misnamed()? {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The name rule's own words (`check_project_name`), and what to do.
        let why = super::check_project_name(&stem)
            .err()
            .map(|e| super::strip_invalid(&e))
            .unwrap_or_default();
        let error = format!("'{stem}' is not a project name ({why}); rename the file to open it");
        out.push(ProjectSummary {
            error: Some(error),
            ..ProjectSummary::of_file(stem, &file)
        });
    }
    Ok(out)
}

/// Loads a project from the store and opens it with [`open_in`].
pub async fn open_project(
    loom: &Loom,
    store: &ProjectStore,
    name: &str,
    opts: &OpenOptions,
) -> Result<OpenReport> {
    open_in(loom, &store.load(name)?, opts).await
}

/// Opens a project in the loom's terminal and records its sessions in the registry. The open
/// holds [`Loom::changing`] (two at once through one loom create it once); the `on_open` hooks
/// run after it is let go, as they may take a minute each. What the CLI's `project open` and the
/// MCP tool `open_project` call.
pub async fn open_in(loom: &Loom, p: &Project, opts: &OpenOptions) -> Result<OpenReport> {
    let changing = loom.changing().await;
    let no_hooks = OpenOptions {
        run_hooks: false,
        ..opts.clone()
    };
    let mut report = open(loom.terminal().as_ref(), p, &no_hooks).await?;
    drop(changing);
    loom.record(&report.sessions);
    if opts.run_hooks {
        run_open_hooks(p, &mut report).await;
    }
    Ok(report)
}

/// Loads a project from the store and closes it (detaches; kills nothing). What the MCP tool
/// `close_project` calls.
pub async fn close_project(
    loom: &Loom,
    store: &ProjectStore,
    name: &str,
    opts: &CloseOptions,
) -> Result<CloseReport> {
    let p = store.load(name)?;
    close(loom.terminal().as_ref(), &p, opts).await
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    if s.len() <= HOOK_OUTPUT_TAIL {
        return s.to_string();
    }
    format!("…{}", crate::text::last_bytes(s, HOOK_OUTPUT_TAIL))
}

/// Runs hooks one after another as local processes (argv, no shell). Failures are reported.
async fn run_hooks(p: &Project, which: &str, hooks: &[Vec<String>], ws: &str) -> Vec<HookReport> {
    let mut out = Vec::new();
    let root = p.root_dir().filter(|r| p.host.is_none() && r.is_dir());
    for argv in hooks {
        out.push(run_hook(p, which, argv, ws, root.as_deref()).await);
    }
    out
}

async fn run_hook(
    p: &Project,
    which: &str,
    argv: &[String],
    ws: &str,
    root: Option<&Path>,
) -> HookReport {
    let mut report = HookReport {
        hook: which.to_string(),
        argv: argv.to_vec(),
        ok: false,
        exit_code: None,
        output: String::new(),
        error: None,
    };
    let Some((program, args)) = argv.split_first() else {
        report.error = Some("empty argv".into());
        return report;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(&p.env)
        .env("TERMLOOM_PROJECT", &p.name)
        .env("TERMLOOM_WORKSPACE", ws)
        .env("TERMLOOM_HOOK", which)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(r) = root {
        cmd.current_dir(r);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(format!("cannot run {program}: {e}"));
            return report;
        }
    };
    // Only the tail of the output is kept, as it comes (a chatty hook costs no memory), and the
    // hook is done when it exits: a background child that keeps the pipes open does not hold
    // the open up. What it still has buffered is read for a moment after.
    let mut output = Vec::new();
    let status = {
        let reader = read_tail(child.stdout.take(), child.stderr.take(), &mut output);
        tokio::pin!(reader);
        tokio::time::timeout(HOOK_TIMEOUT, async {
            tokio::select! {
                st = child.wait() => {
                    let _ = tokio::time::timeout(HOOK_DRAIN, &mut reader).await;
                    st
                }
                () = &mut reader => child.wait().await,
            }
        })
        .await
    };
    match status {
        // The hook is killed as `child` is dropped (`kill_on_drop`).
        Err(_) => {
            report.error = Some(format!(
                "timed out after {}s and was killed",
                HOOK_TIMEOUT.as_secs()
            ));
            report.output = tail(&output);
        }
        Ok(Err(e)) => report.error = Some(format!("waiting for {program}: {e}")),
        Ok(Ok(st)) => {
            report.output = tail(&output);
            report.exit_code = st.code();
            report.ok = st.success();
            if !report.ok {
                tracing::warn!(hook = which, program = %program, status = %st, "project hook failed");
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        Project::from_yaml(yaml, Path::new("r.yaml")).expect("valid project")
    }

    #[test]
    fn a_remote_project_refuses_a_tilde_that_would_be_this_machines_home() {
        for yaml in [
            "name: r\nhost: build1\nroot: ~/src\nwindows: [{name: w}]\n",
            "name: r\nhost: build1\nwindows: [{name: w, cwd: ~/x}]\n",
            "name: r\nhost: build1\nwindows: [{name: w, panes: [{name: p, cwd: '~'}]}]\n",
        ] {
            let p = project(yaml);
            let err = check_dirs(&p, &p.resolve().unwrap()).unwrap_err();
            assert!(err.to_string().contains("build1"), "{err}");
        }
        // A full path is the host's business, not checked here.
        let p = project("name: r\nhost: build1\nroot: /srv/nowhere-here\nwindows: [{name: w}]\n");
        check_dirs(&p, &p.resolve().unwrap()).unwrap();
    }
}
