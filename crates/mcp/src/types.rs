//! Tool parameters and results: the JSON Schema contract with the model. Core's types stay free of
//! JSON Schema; these mirror them, with the names the CLI's JSON uses (`session`, `name`, `lines`,
//! `timeout_ms`, `exit_code`, …).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use termloom_core::{
    RegistryEntry, RunResult, SessionInfo, SessionStatus, WindowInfo, WorkspaceInfo,
};

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// Which terminal a call reaches. Both are refused unless the person named them when starting the server.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct Place {
    /// Another terminal's socket, only one allowed at server start; omit for the default.
    #[serde(default)]
    pub socket: Option<String>,
    /// An ssh host, only one allowed at server start; omit for this machine.
    #[serde(default)]
    pub host: Option<String>,
}

/// Only the terminal.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PlaceParams {
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// List live sessions.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListSessionsParams {
    /// Only sessions in this workspace (exact name).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// One session.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionParams {
    /// The session: its UUID, an id prefix (id:3f2a), its exact name, workspace:window.pane, or a native id such as tmux:%3.
    pub session: String,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// The registry of sessions.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListPersistentParams {
    /// Include sessions whose pane is gone (default true).
    #[serde(default)]
    pub include_dead: Option<bool>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// A new session.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateSessionParams {
    /// A unique name for the session (no `:`, which targets use); a good target for later calls.
    #[serde(default)]
    pub name: Option<String>,
    /// The workspace to create it in (created when missing). Default: the workspace this server runs in, else termloom's own.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The window to put it in: created when missing; when it exists, its active pane is split.
    #[serde(default)]
    pub window: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// A command typed into the new shell once it starts.
    #[serde(default)]
    pub command: Option<String>,
    /// Extra environment variables for the shell.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Rename a session.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameSessionParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// The new name; must be unique, with no `:`.
    pub name: String,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Side by side or stacked.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DirectionParam {
    /// Side by side: the new pane goes to the right.
    Horizontal,
    /// Stacked: the new pane goes below.
    Vertical,
}

impl From<DirectionParam> for termloom_core::Direction {
    fn from(d: DirectionParam) -> Self {
        match d {
            DirectionParam::Horizontal => termloom_core::Direction::Horizontal,
            DirectionParam::Vertical => termloom_core::Direction::Vertical,
        }
    }
}

/// One pane of a layout.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaneParam {
    /// The new session's name (unique).
    pub name: String,
    /// A command typed into the pane's shell once it starts.
    #[serde(default)]
    pub command: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Give this pane focus once the layout is built.
    #[serde(default)]
    pub focus: Option<bool>,
}

/// A predefined layout.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutName {
    /// One pane.
    Single,
    /// Panes side by side.
    Horizontal,
    /// Panes stacked.
    Vertical,
    /// Four panes, two by two.
    Quad,
    /// A main pane (60%) on the left, the others stacked on the right.
    MainVertical,
    /// A main pane (60%) on top, the others side by side below.
    MainHorizontal,
    /// A grid.
    Tiled,
}

impl LayoutName {
    /// Core's name for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            LayoutName::Single => "single",
            LayoutName::Horizontal => "horizontal",
            LayoutName::Vertical => "vertical",
            LayoutName::Quad => "quad",
            LayoutName::MainVertical => "main-vertical",
            LayoutName::MainHorizontal => "main-horizontal",
            LayoutName::Tiled => "tiled",
        }
    }
}

/// Build several panes in a new window.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateLayoutParams {
    /// A predefined layout; ignored when `tree` is given.
    #[serde(default)]
    pub layout: Option<LayoutName>,
    /// The panes, in layout order (left to right, top to bottom), each with a unique name.
    #[serde(default)]
    pub panes: Option<Vec<PaneParam>>,
    /// A custom split tree instead of a predefined layout: {"root": {"split": {"direction": "horizontal", "children": [{"percent": 50, "node": {"pane": {"name": "a"}}}, …]}}}.
    #[serde(default)]
    pub tree: Option<serde_json::Value>,
    /// The workspace (created when missing). Default: the workspace this server runs in, else termloom's own.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The new window's name.
    #[serde(default)]
    pub window: Option<String>,
    /// The working directory for panes that name none.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Split a session's pane.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SplitPaneParams {
    /// The session to split (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// horizontal = side by side (new pane on the right), vertical = stacked (new pane below).
    pub direction: DirectionParam,
    /// The new pane's share in percent (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 99))]
    pub percent: Option<u8>,
    /// The new session's name (unique).
    #[serde(default)]
    pub name: Option<String>,
    /// Put the new pane left of / above this one.
    #[serde(default)]
    pub before: Option<bool>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// A command typed into the new shell.
    #[serde(default)]
    pub command: Option<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Resize or zoom a pane.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResizePaneParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// Width in columns.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub width: Option<u16>,
    /// Height in rows.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub height: Option<u16>,
    /// true zooms the pane to fill its window, false unzooms.
    #[serde(default)]
    pub zoom: Option<bool>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// A new workspace.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateWorkspaceParams {
    /// The workspace name (must not exist yet; no '.' or ':').
    pub name: String,
    /// The first window's name.
    #[serde(default)]
    pub window: Option<String>,
    /// The first session's name.
    #[serde(default)]
    pub session_name: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Scrollback lines for its panes.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000000))]
    pub scrollback: Option<u32>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// One workspace.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkspaceParams {
    /// The workspace's exact name.
    pub workspace: String,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// List windows.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListWindowsParams {
    /// Only this workspace's windows.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// A new window.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateWindowParams {
    /// The workspace (must exist).
    pub workspace: String,
    /// The window's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The first session's name.
    #[serde(default)]
    pub session_name: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// A command typed into the first pane's shell.
    #[serde(default)]
    pub command: Option<String>,
    /// Make it the active window (default false: created in the background).
    #[serde(default)]
    pub select: Option<bool>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// One window.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WindowParams {
    /// The workspace's exact name.
    pub workspace: String,
    /// The window: its index ("1") or exact name.
    pub window: String,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Rename a window.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameWindowParams {
    /// The workspace's exact name.
    pub workspace: String,
    /// The window: its index ("1") or exact name.
    pub window: String,
    /// The new name.
    pub name: String,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Get or set scrollback.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetScrollbackParams {
    /// The workspace's exact name.
    pub workspace: String,
    /// New scrollback size in lines for panes created from now on; omit to only read it.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000000))]
    pub lines: Option<u32>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// A session's default read size.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetMaxLinesParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// Lines read_output returns when it is given no `lines`; null restores the default (50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100000))]
    pub lines: Option<u32>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// One session to create in a batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSessionParam {
    /// The session's name (unique).
    pub name: String,
    /// A command typed into its shell once it starts.
    #[serde(default)]
    pub command: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Split the previous session of the list this way instead of opening a new window.
    #[serde(default)]
    pub split: Option<DirectionParam>,
}

/// Several sessions at once.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateSessionsParams {
    /// The sessions, in order.
    pub sessions: Vec<NewSessionParam>,
    /// The workspace (created when missing). Default: the workspace this server runs in, else termloom's own.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The window for the first session (created when missing).
    #[serde(default)]
    pub window: Option<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Type text.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendTextParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    #[serde(default)]
    pub session: Option<String>,
    /// Several sessions instead of one: the text goes to each, in parallel, with one result each.
    #[serde(default)]
    pub sessions: Option<Vec<String>>,
    /// The text, typed exactly as given (quotes, $, newlines, Unicode).
    pub text: String,
    /// Press Enter after the text (default true).
    #[serde(default)]
    pub enter: Option<bool>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Press keys.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendKeysParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// Keys pressed in order: C-c, Enter, Escape, Tab, Up, PageUp, F5, M-x, a single character… (see termloom://keys-reference).
    pub keys: Vec<String>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Read a session's output.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadOutputParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// The last N lines (default: the session's max_lines, else 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000000))]
    pub lines: Option<u32>,
    /// First line of an absolute range (0 = oldest scrollback line); use with to_line.
    #[serde(default)]
    pub from_line: Option<u64>,
    /// Last line of an absolute range (inclusive).
    #[serde(default)]
    pub to_line: Option<u64>,
    /// A cursor from an earlier read: return only what was printed after it.
    #[serde(default)]
    pub since: Option<String>,
    /// Only what is visible on the screen.
    #[serde(default)]
    pub screen: Option<bool>,
    /// Search the whole scrollback for this regex instead of reading lines.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Lines of context around each search match (default 2).
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub context_lines: Option<u32>,
    /// Prefix lines with their absolute line number (default: true for searches, false for reads).
    #[serde(default)]
    pub include_line_numbers: Option<bool>,
    /// Match the search pattern case-insensitively.
    #[serde(default)]
    pub ignore_case: Option<bool>,
    /// Keep ANSI escape sequences (colours).
    #[serde(default)]
    pub ansi: Option<bool>,
    /// Cap on the text returned, in characters (at most the server's cap).
    #[serde(default)]
    #[schemars(range(min = 100))]
    pub max_chars: Option<u32>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Run a command and wait for it.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunCommandParams {
    /// The command line, typed into the shell.
    pub command: String,
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    #[serde(default)]
    pub session: Option<String>,
    /// Several sessions: the command runs in each, in parallel, with one result each.
    #[serde(default)]
    pub sessions: Option<Vec<String>>,
    /// With `window` instead of `session`: the workspace (default: the one this server runs in).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Instead of `session`: run in this window's active pane, creating the window when missing.
    #[serde(default)]
    pub window: Option<String>,
    /// How long to wait for the command to finish (default 30000). After that the result says it is still running and gives a handle for wait_for.
    #[serde(default)]
    #[schemars(range(max = 3600000))]
    pub timeout_ms: Option<u64>,
    /// false: start the command and return at once with a handle (default true).
    #[serde(default)]
    pub wait: Option<bool>,
    /// For REPLs: a regex matching the prompt that means the command is done.
    #[serde(default)]
    pub prompt: Option<String>,
    /// For programs without a prompt: done after this many ms without output (at most 600000).
    /// Replaces the shell's own end detection: no exit code. A later run on the session
    /// supersedes such a run that timed out.
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub quiet_ms: Option<u64>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Wait for output, quiet, or a run.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitForParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// Wait until a new line of output matches this regex.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Wait until the session prints nothing for this many ms.
    #[serde(default)]
    pub idle_ms: Option<u64>,
    /// Wait for a run_command that timed out or was started with wait=false (its handle).
    #[serde(default)]
    pub handle: Option<String>,
    /// Give up after this many ms (default 30000).
    #[serde(default)]
    #[schemars(range(max = 3600000))]
    pub timeout_ms: Option<u64>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Watch a session's output.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StartMonitoringParams {
    /// The session (UUID, id prefix, name, workspace:window.pane or native id).
    pub session: String,
    /// Keep only lines matching any of these regexes (all lines when empty).
    #[serde(default)]
    pub filters: Option<Vec<String>>,
    /// Lines kept until they are collected; older ones are dropped (default 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100000))]
    pub max_lines: Option<u32>,
    /// Which terminal.
    #[serde(flatten)]
    pub place: Place,
}

/// Collect and stop a monitor.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StopMonitoringParams {
    /// The monitor_id start_monitoring returned.
    pub monitor_id: String,
    /// Return the lines collected so far but keep watching (default false: stop).
    #[serde(default)]
    pub keep_running: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// A live session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionOut {
    /// The persistent id (UUID): the best target for later calls.
    pub id: String,
    /// The session's name.
    pub name: String,
    /// workspace:window.pane.
    pub path: String,
    /// The workspace's name.
    pub workspace: String,
    /// The window's index.
    pub window_index: u32,
    /// The window's name.
    pub window_name: String,
    /// The pane's index in its window.
    pub pane_index: u32,
    /// The backend's id for the pane (tmux:%3).
    pub native: String,
    /// The terminal (backend and socket).
    pub terminal: String,
    /// The foreground command.
    pub command: String,
    /// The working directory, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The pane title.
    pub title: String,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// Its window's active pane.
    pub active: bool,
    /// Its workspace's active window.
    pub window_active: bool,
    /// The pane's process has exited.
    pub dead: bool,
    /// Created or tagged by termloom.
    pub managed: bool,
    /// Whether this server may type into it (scope and own-pane rules).
    pub writable: bool,
    /// The pane this server runs in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub own: bool,
}

impl SessionOut {
    /// From core's info.
    pub fn new(s: &SessionInfo, writable: bool, own: bool) -> Self {
        SessionOut {
            id: s.id.to_string(),
            name: s.name.clone(),
            path: s.path(),
            workspace: s.workspace.clone(),
            window_index: s.window_index,
            window_name: s.window_name.clone(),
            pane_index: s.pane_index,
            native: s.native.to_string(),
            terminal: s.terminal.to_string(),
            command: s.command.clone(),
            cwd: s.cwd.clone(),
            title: s.title.clone(),
            width: s.width,
            height: s.height,
            active: s.active,
            window_active: s.window_active,
            dead: s.dead,
            managed: s.managed,
            writable,
            own,
        }
    }
}

/// Live sessions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionsOut {
    /// The sessions.
    pub sessions: Vec<SessionOut>,
    /// How many.
    pub count: usize,
}

/// What the registry remembers of a session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecordOut {
    /// The persistent id.
    pub id: String,
    /// The last name seen.
    pub name: String,
    /// The last workspace seen.
    pub workspace: String,
    /// The last native id seen (a hint).
    pub native: String,
    /// The terminal it lives in.
    pub terminal: String,
    /// When termloom first saw it (RFC 3339).
    pub created: String,
    /// When termloom last saw it alive.
    pub last_seen: String,
    /// Its pane was gone at the last listing.
    pub dead: bool,
    /// Created or tagged by termloom.
    pub managed: bool,
    /// Its default read size, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<usize>,
}

impl From<&RegistryEntry> for RecordOut {
    fn from(e: &RegistryEntry) -> Self {
        RecordOut {
            id: e.id.to_string(),
            name: e.name.clone(),
            workspace: e.workspace.clone(),
            native: e.native.clone(),
            terminal: e.terminal.to_string(),
            created: e.created.to_rfc3339(),
            last_seen: e.last_seen.to_rfc3339(),
            dead: e.dead,
            managed: e.managed,
            max_lines: e.max_lines,
        }
    }
}

/// Sessions from the registry.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordsOut {
    /// The sessions, newest first.
    pub sessions: Vec<RecordOut>,
    /// How many.
    pub count: usize,
}

/// One session, live or remembered.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetSessionOut {
    /// The persistent id.
    pub id: String,
    /// The session's name.
    pub name: String,
    /// Whether its pane exists now.
    pub alive: bool,
    /// The live session, when alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionOut>,
    /// What the registry remembers, when it knows the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordOut>,
}

/// A change that was made.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DoneOut {
    /// Always true (failures are error results).
    pub ok: bool,
    /// The session concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What was done.
    pub message: String,
}

/// A session created under a name.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NamedOut {
    /// The name asked for.
    pub name: String,
    /// Its persistent id.
    pub id: String,
    /// workspace:window.pane.
    pub path: String,
}

/// Sessions created at once.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedManyOut {
    /// Each session, in the order asked.
    pub sessions: Vec<NamedOut>,
    /// Name → id.
    pub ids: BTreeMap<String, String>,
    /// Set when only some were created: what failed (the sessions listed were created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A workspace.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkspaceOut {
    /// Its name.
    pub name: String,
    /// Its native id.
    pub native: String,
    /// How many windows.
    pub windows: u32,
    /// Whether a person's client is attached.
    pub attached: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
}

impl From<&WorkspaceInfo> for WorkspaceOut {
    fn from(w: &WorkspaceInfo) -> Self {
        WorkspaceOut {
            name: w.name.clone(),
            native: w.native.clone(),
            windows: w.windows,
            attached: w.attached,
            created: w.created,
        }
    }
}

/// Workspaces.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkspacesOut {
    /// The workspaces.
    pub workspaces: Vec<WorkspaceOut>,
}

/// A window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WindowOut {
    /// Its workspace.
    pub workspace: String,
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its native id.
    pub native: String,
    /// How many panes.
    pub panes: u32,
    /// Whether it is its workspace's active window.
    pub active: bool,
}

impl From<&WindowInfo> for WindowOut {
    fn from(w: &WindowInfo) -> Self {
        WindowOut {
            workspace: w.workspace.clone(),
            index: w.index,
            name: w.name.clone(),
            native: w.native.clone(),
            panes: w.panes,
            active: w.active,
        }
    }
}

/// Windows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WindowsOut {
    /// The windows.
    pub windows: Vec<WindowOut>,
}

/// A scrollback size.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScrollbackOut {
    /// The workspace.
    pub workspace: String,
    /// Scrollback lines in force.
    pub lines: u32,
}

/// A session's default read size.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MaxLinesOut {
    /// The session's id.
    pub session: String,
    /// Lines read_output returns by default (null: 50).
    pub max_lines: Option<usize>,
}

/// One session's outcome in a call on several.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemOut {
    /// The session as asked.
    pub target: String,
    /// Its id, when it was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Whether it worked.
    pub ok: bool,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Text sent.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SendOut {
    /// The session's id (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Characters typed (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars: Option<usize>,
    /// Whether Enter was pressed after the text.
    pub enter: bool,
    /// One result per session (several sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<ItemOut>>,
}

/// Output read from a session.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadOut {
    /// The session's id.
    pub session: String,
    /// The text (for a search: each match with its context, blocks separated by "--").
    pub text: String,
    /// Absolute number of the first line returned.
    pub first_line: u64,
    /// Lines the session holds in all.
    pub total_lines: u64,
    /// Whether something was left out to honour the caps.
    pub truncated: bool,
    /// What was left out, or why the read starts where it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Pass as `since` to read only what is printed after this read (empty for a search).
    pub cursor: String,
    /// Search: how many lines matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<usize>,
    /// Search: the absolute numbers of the matching lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_lines: Option<Vec<u64>>,
}

/// A command's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunOut {
    /// The session's id.
    pub session: String,
    /// The exit code, when the detection strategy knows it.
    pub exit_code: Option<i32>,
    /// Only this command's output.
    pub output: String,
    /// The command had not finished when the timeout came.
    pub timed_out: bool,
    /// The command is still running (see `handle`).
    pub running: bool,
    /// How completion was detected: shell_integration, marker, prompt or quiet.
    pub strategy: String,
    /// Milliseconds from sending to completion (or to the timeout).
    pub duration_ms: u64,
    /// For a command still running: pass to wait_for as `handle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Whether output was cut to the caps, or may miss some (the output stream was interrupted).
    pub truncated: bool,
    /// What to do next, or what was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl RunOut {
    /// From core's result.
    pub fn new(session: String, r: RunResult) -> Self {
        let running = r.timed_out;
        let note = r.handle.as_ref().map(|h| {
            format!(
                "still running; call wait_for with session '{session}' and handle '{}' to keep waiting, or read_output to see its output so far",
                h.0
            )
        });
        RunOut {
            session,
            exit_code: r.exit_code,
            output: r.output,
            timed_out: r.timed_out,
            running,
            strategy: r.strategy.to_string(),
            duration_ms: r.duration_ms,
            handle: r.handle.map(|h| h.0),
            truncated: r.truncated,
            note,
        }
    }
}

/// One session's run in a call on several.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunItemOut {
    /// The session as asked.
    pub target: String,
    /// Whether the command could be run (see `result` for its exit code).
    pub ok: bool,
    /// The outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RunOut>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What run_command returns: the fields of one run, or `results` for several sessions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunCommandOut {
    /// The session's id (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The exit code, when known (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Only this command's output (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The command had not finished when the timeout came (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    /// The command is still running (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// How completion was detected: shell_integration, marker, prompt or quiet (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Milliseconds from sending to completion (one session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For a command still running: pass to wait_for as `handle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Whether output was cut to the caps, or may miss some (the output stream was interrupted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// What to do next, or what was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// One result per session (several sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<RunItemOut>>,
}

impl From<RunOut> for RunCommandOut {
    fn from(r: RunOut) -> Self {
        RunCommandOut {
            session: Some(r.session),
            exit_code: r.exit_code,
            output: Some(r.output),
            timed_out: Some(r.timed_out),
            running: Some(r.running),
            strategy: Some(r.strategy),
            duration_ms: Some(r.duration_ms),
            handle: r.handle,
            truncated: Some(r.truncated),
            note: r.note,
            results: None,
        }
    }
}

/// What a wait found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WaitOut {
    /// The session's id.
    pub session: String,
    /// A line matched the pattern, the session went quiet, or the run finished.
    pub matched: bool,
    /// The matching line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The timeout came first.
    pub timed_out: bool,
    /// Milliseconds waited.
    pub waited_ms: u64,
    /// For a wait on a run handle: the run's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunOut>,
}

/// What a session is doing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusOut {
    /// The session's id.
    pub session: String,
    /// busy or idle.
    pub state: String,
    /// The foreground command.
    pub command: String,
    /// The last command's exit code, when shell integration reported it.
    pub last_exit_code: Option<i32>,
    /// The working directory.
    pub cwd: Option<String>,
    /// Whether shell integration marks were seen.
    pub shell_integration: bool,
}

impl StatusOut {
    /// From core's status.
    pub fn new(session: String, s: SessionStatus) -> Self {
        StatusOut {
            session,
            state: match s.state {
                termloom_core::BusyState::Busy => "busy".into(),
                termloom_core::BusyState::Idle => "idle".into(),
            },
            command: s.command,
            last_exit_code: s.last_exit_code,
            cwd: s.cwd,
            shell_integration: s.shell_integration,
        }
    }
}

/// A monitor started.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MonitorStartOut {
    /// Pass to stop_monitoring to collect lines and stop.
    pub monitor_id: String,
    /// The session's id.
    pub session: String,
    /// The filters in force.
    pub filters: Vec<String>,
    /// The resource that changes as output arrives (subscribe to it to be told).
    pub resource: String,
}

/// Lines a monitor collected.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MonitorStopOut {
    /// The monitor.
    pub monitor_id: String,
    /// The session's id.
    pub session: String,
    /// Lines collected since the last collection (matching the filters).
    pub lines: Vec<String>,
    /// Lines dropped because more arrived than max_lines.
    pub dropped: u64,
    /// Output events missed because the monitor fell behind.
    pub lagged: u64,
    /// Why the stream ended, if it did (pane closed, server exited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<String>,
    /// Whether the monitor is still watching.
    pub running: bool,
    /// Lines that did not fit in this result and wait for the next stop_monitoring call (with
    /// this monitor_id; also after the monitor was stopped).
    pub waiting: usize,
    /// What is left for the next call, when anything is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
