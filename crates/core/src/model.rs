//! The plain data that flows through the [`Terminal`](crate::Terminal) and
//! [`Session`](crate::Session) traits: what a session is, how to create one, how to read from it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{NativeId, SessionId, TerminalKey};
use crate::layout::Direction;
use crate::target::WindowSel;

/// A live session (one pane) as a backend reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The persistent id.
    pub id: SessionId,
    /// The session's name (`@termloom_name`); for a pane nobody named, its path `workspace:window.pane`.
    pub name: String,
    /// The backend's id for the pane (a hint; re-verified before use).
    pub native: NativeId,
    /// The terminal (server) this session lives in.
    pub terminal: TerminalKey,
    /// The workspace (tmux session) name.
    pub workspace: String,
    /// The workspace's native id (`$3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The window's index in its workspace.
    pub window_index: u32,
    /// The window's name.
    pub window_name: String,
    /// The window's native id (`@5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_id: Option<String>,
    /// Whether the window is its workspace's active window.
    pub window_active: bool,
    /// The pane's index in its window.
    pub pane_index: u32,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// The pane title.
    pub title: String,
    /// The foreground command.
    pub command: String,
    /// The working directory, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The pane's shell pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Whether this is its window's active pane.
    pub active: bool,
    /// Whether the pane's process has exited (the pane remains).
    pub dead: bool,
    /// Created by termloom, or tagged by a person with `termloom tag`: writable under `--scope managed`.
    pub managed: bool,
}

impl SessionInfo {
    /// `workspace:window.pane` with indexes.
    pub fn path(&self) -> String {
        format!(
            "{}:{}.{}",
            self.workspace, self.window_index, self.pane_index
        )
    }
}

/// How to create a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// The session's name; unique names make good targets.
    pub name: Option<String>,
    /// The workspace to create it in (created when missing); a new workspace when `None`.
    pub workspace: Option<String>,
    /// The window to put it in: a new window with this name in the workspace when it does not exist.
    /// When the window exists, the new session splits its active pane.
    pub window: Option<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment for the shell.
    pub env: Vec<(String, String)>,
    /// A command typed into the shell once it starts (the pane keeps its shell when it exits).
    pub command: Option<String>,
    /// Columns and rows for a new workspace.
    pub size: Option<(u16, u16)>,
}

/// How to create a workspace (a tmux session, an iTerm2 window set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSpec {
    /// The workspace name (exact; must not exist yet).
    pub name: String,
    /// The first window's name.
    pub window: Option<String>,
    /// The first session's name.
    pub session_name: Option<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Columns and rows.
    pub size: Option<(u16, u16)>,
    /// Scrollback lines for its panes; the backend default (50,000 for tmux) when `None`.
    pub history_limit: Option<u32>,
}

/// A workspace as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// The name.
    pub name: String,
    /// The native id (`$3`).
    pub native: String,
    /// How many windows it has.
    pub windows: u32,
    /// Whether someone sees it: a terminal or a viewing client (iTerm2) is attached. termloom's
    /// own connections do not count.
    pub attached: bool,
    /// Creation time, Unix seconds.
    pub created: i64,
}

/// A window inside a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowRef {
    /// The workspace's exact name.
    pub workspace: String,
    /// The window by index or exact name.
    pub window: WindowSel,
}

impl std::fmt::Display for WindowRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.workspace, self.window)
    }
}

/// A window as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// Its workspace.
    pub workspace: String,
    /// Index within the workspace.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Native id (`@5`).
    pub native: String,
    /// Number of panes.
    pub panes: u32,
    /// Whether it is the workspace's active window.
    pub active: bool,
    /// The layout string the backend reports, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
}

/// How to create a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// The workspace (must exist).
    pub workspace: String,
    /// The window's name.
    pub name: Option<String>,
    /// The first session's name.
    pub session_name: Option<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// A command typed into the first pane's shell.
    pub command: Option<String>,
    /// Make it the active window (default: created in the background).
    pub select: bool,
}

/// Where [`Terminal::apply_layout`](crate::Terminal::apply_layout) builds a layout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutPlacement {
    /// The workspace (created when missing).
    pub workspace: Option<String>,
    /// The new window's name.
    pub window: Option<String>,
    /// The working directory for panes that name none.
    pub cwd: Option<PathBuf>,
}

/// How to split a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// Side by side ([`Direction::Horizontal`]) or stacked.
    pub direction: Direction,
    /// The new pane's share in percent (default 50).
    pub percent: Option<u8>,
    /// The new session's name.
    pub name: Option<String>,
    /// Put the new pane before (left of / above) this one.
    pub before: bool,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// A command typed into the new shell.
    pub command: Option<String>,
}

/// How to resize a session's pane.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeSpec {
    /// Absolute width in columns.
    pub width: Option<u16>,
    /// Absolute height in rows.
    pub height: Option<u16>,
    /// Zoom (true), unzoom (false) or leave as is.
    pub zoom: Option<bool>,
}

/// How to send text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOpts {
    /// Press Enter after the text.
    pub enter: bool,
}

impl Default for SendOpts {
    fn default() -> Self {
        SendOpts { enter: true }
    }
}

/// Which lines a read returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadRange {
    /// The last N lines of the scrollback and screen.
    Tail(usize),
    /// Absolute lines `from..=to`, 0 being the oldest line in the scrollback.
    Lines {
        /// First line.
        from: u64,
        /// Last line (inclusive).
        to: u64,
    },
    /// What is visible on the screen.
    Screen,
    /// Everything printed after this cursor.
    Since(Cursor),
}

impl Default for ReadRange {
    fn default() -> Self {
        ReadRange::Tail(50)
    }
}

/// An opaque position in a session's output, returned by every read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

/// How to read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureOpts {
    /// The lines to return.
    pub range: ReadRange,
    /// Keep ANSI escape sequences.
    pub ansi: bool,
    /// Join lines the terminal wrapped.
    pub join_wrapped: bool,
    /// At most this many lines (head and tail kept when cut); [`DEFAULT_READ_CAP`] when `None`
    /// (a tail read returns the lines it asks for).
    pub max_lines: Option<usize>,
    /// At most this many bytes of text (head and tail kept when cut).
    pub max_bytes: Option<usize>,
}

/// The line cap of a read of a range, a screen or what came since a cursor, when the caller gives
/// none. The lines left out in the middle are named in the capture's note.
pub const DEFAULT_READ_CAP: usize = 2000;

/// The result of a read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The text, lines joined by `\n`, trailing blank lines trimmed.
    pub text: String,
    /// The absolute number of the first line returned.
    pub first_line: u64,
    /// How many lines the session holds in all (scrollback + screen).
    pub total_lines: u64,
    /// Whether lines or bytes were left out to honour the caps.
    pub truncated: bool,
    /// What was left out, when anything was (`"lines 120-9880 of 10000 left out"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The position after this read, for [`ReadRange::Since`].
    pub cursor: Cursor,
}

/// How to search a session's scrollback.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOpts {
    /// The regex.
    pub pattern: String,
    /// Lines of context before and after each match.
    pub context: usize,
    /// At most this many matches (default 100).
    pub max_matches: Option<usize>,
    /// Match case-insensitively.
    pub ignore_case: bool,
}

/// A numbered line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedLine {
    /// Absolute line number (0 = oldest scrollback line).
    pub line: u64,
    /// The text.
    pub text: String,
}

/// One search hit with its context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchMatch {
    /// The matching line's absolute number.
    pub line: u64,
    /// The matching line.
    pub text: String,
    /// Context lines before.
    pub before: Vec<NumberedLine>,
    /// Context lines after.
    pub after: Vec<NumberedLine>,
}

/// The result of a search.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Matches in line order.
    pub matches: Vec<SearchMatch>,
    /// Lines searched.
    pub lines_searched: u64,
    /// More matches existed than `max_matches`.
    pub truncated: bool,
}

impl SearchResult {
    /// Every line the result shows, each once and in order, as `(line number, text, is a
    /// match)`, cut into blocks where lines are skipped (where grep prints `--`). A line that
    /// matches is a match even when it is also another match's context.
    pub fn blocks(&self) -> Vec<Vec<(u64, &str, bool)>> {
        let mut lines: std::collections::BTreeMap<u64, (&str, bool)> = Default::default();
        for m in &self.matches {
            for c in m.before.iter().chain(&m.after) {
                lines.entry(c.line).or_insert((c.text.as_str(), false));
            }
            lines.insert(m.line, (m.text.as_str(), true));
        }
        let mut blocks: Vec<Vec<(u64, &str, bool)>> = Vec::new();
        let mut last: Option<u64> = None;
        for (n, (text, is_match)) in lines {
            match blocks.last_mut() {
                Some(b) if last.is_some_and(|p| n == p + 1) => b.push((n, text, is_match)),
                _ => blocks.push(vec![(n, text, is_match)]),
            }
            last = Some(n);
        }
        blocks
    }
}

/// How `run` detected that a command finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// OSC 133 shell-integration marks, with the exit status.
    ShellIntegration,
    /// A unique per-call marker printed after the command, with the exit status.
    Marker,
    /// The caller's prompt regex reappeared (no exit status).
    Prompt,
    /// Output stayed quiet while the foreground process was unchanged (no exit status).
    Quiet,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::ShellIntegration => "shell_integration",
            Strategy::Marker => "marker",
            Strategy::Prompt => "prompt",
            Strategy::Quiet => "quiet",
        })
    }
}

/// How to run a command and wait for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOpts {
    /// The command line, typed into the session's shell.
    pub command: String,
    /// How long to wait before answering "still running".
    pub timeout: Duration,
    /// For REPLs: a regex matching the prompt that means "done".
    pub prompt: Option<String>,
    /// For programs with no prompt: done after this long without output.
    pub quiet: Option<Duration>,
    /// Cap on output lines (head and tail kept).
    pub max_lines: Option<usize>,
    /// Cap on output bytes.
    pub max_bytes: Option<usize>,
}

/// The longest quiet period a run may wait for.
pub const MAX_QUIET: Duration = Duration::from_secs(600);

impl RunOpts {
    /// Refuses options no backend can honour sensibly: a quiet period over [`MAX_QUIET`].
    pub fn check(&self) -> crate::Result<()> {
        if let Some(q) = self.quiet
            && q > MAX_QUIET
        {
            return Err(crate::Error::InvalidArgument(format!(
                "a quiet period of {} ms is longer than the {} ms allowed; a program silent for that long is better waited for with a prompt regex or wait_for",
                q.as_millis(),
                MAX_QUIET.as_millis()
            )));
        }
        Ok(())
    }

    /// A run of `command` with a 30 s timeout and automatic strategy.
    pub fn new(command: impl Into<String>) -> Self {
        RunOpts {
            command: command.into(),
            timeout: Duration::from_secs(30),
            prompt: None,
            quiet: None,
            max_lines: None,
            max_bytes: None,
        }
    }
}

/// A handle to a run that has not finished yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunHandle(pub String);

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The exit code, when the strategy knows it.
    pub exit_code: Option<i32>,
    /// Only this command's output: not the prompt, not the echoed command line.
    pub output: String,
    /// The command had not finished when the timeout came.
    pub timed_out: bool,
    /// How completion was (or is being) detected.
    pub strategy: Strategy,
    /// Milliseconds from sending to completion (or to the timeout).
    pub duration_ms: u64,
    /// For a timed-out run: pass it to `wait_run` to keep waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<RunHandle>,
    /// Whether output was cut to the caps, or may miss some (the backend lost part of the
    /// stream, as when another tmux client turned termloom's output off for a while).
    pub truncated: bool,
}

/// Busy or idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyState {
    /// A command is running.
    Busy,
    /// The shell waits at its prompt.
    Idle,
}

/// What a session is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Busy or idle.
    pub state: BusyState,
    /// The foreground command.
    pub command: String,
    /// The last command's exit code, when shell integration reported it.
    pub last_exit_code: Option<i32>,
    /// The working directory (OSC 7, else the backend's idea of it).
    pub cwd: Option<String>,
    /// Whether shell integration marks have been seen in this session.
    pub shell_integration: bool,
}

/// An event on a session's output stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputEvent {
    /// Raw bytes the pane printed (not necessarily whole UTF-8 characters).
    Output(Vec<u8>),
    /// This subscriber fell behind and missed this many events.
    Lagged(u64),
    /// The stream ended.
    Closed {
        /// Why (`pane closed`, `server exited`, …).
        reason: String,
    },
}

/// What a backend can do. Operations it cannot do return [`Error::Unsupported`](crate::Error::Unsupported).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Workspaces can be listed, created and destroyed.
    pub workspaces: bool,
    /// Windows can be listed, created, killed, renamed, selected.
    pub windows: bool,
    /// Layouts can be applied.
    pub layouts: bool,
    /// Panes can be resized.
    pub resize: bool,
    /// The scrollback size can be read and set.
    pub scrollback_config: bool,
    /// `run` works.
    pub run: bool,
    /// Output can be streamed (`subscribe`, `wait_for`).
    pub monitor: bool,
    /// Reads since a cursor are exact.
    pub cursor_reads: bool,
    /// Sessions created by termloom get shell integration automatically.
    pub shell_integration: bool,
    /// Reasons for what is missing, by operation name.
    pub notes: Vec<(String, String)>,
}

/// Time budget helper: the default timeout for waits that the caller did not bound.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

#[cfg(any(test, feature = "testing"))]
/// A session info for tests: `name` in workspace `ws`, window `win`, pane `pane`.
pub fn test_session(name: &str, ws: &str, win: u32, pane: u32) -> SessionInfo {
    use crate::ids::BackendKind;
    SessionInfo {
        id: SessionId::new(),
        name: name.to_string(),
        native: NativeId::tmux(format!("%{}", win * 100 + pane)),
        terminal: TerminalKey {
            backend: BackendKind::Tmux,
            host: None,
            socket: None,
        },
        workspace: ws.to_string(),
        workspace_id: None,
        window_index: win,
        window_name: format!("w{win}"),
        window_id: None,
        window_active: false,
        pane_index: pane,
        width: 80,
        height: 24,
        title: String::new(),
        command: "bash".into(),
        cwd: None,
        pid: None,
        active: false,
        dead: false,
        managed: true,
    }
}

/// Longest session, window or workspace name accepted.
pub const MAX_NAME_LEN: usize = 256;

/// Checks a session, window or workspace name given by a caller: not empty, no NUL, not absurdly
/// long (`what` names the kind in the error). Backends add their own rules on top.
pub fn check_name(what: &str, name: &str) -> crate::Result<()> {
    use crate::Error;
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what} name must not be empty"
        )));
    }
    if name.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what} name must not be blanks only"
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

/// Refuses a name for a window about to be made or renamed that is digits only: targets would
/// take it for a window index (`ws:1` would then be ambiguous, or name another window).
pub fn check_window_name_not_index(name: &str) -> crate::Result<()> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(crate::Error::InvalidArgument(format!(
            "window name '{name}' is only digits: targets would take it for a window index; give a name with another character"
        )));
    }
    Ok(())
}

/// Checks a session name: [`check_name`], and nothing the target grammar reads as something else.
/// A name holding `:` would be read as a path (`workspace:window.pane`) or a prefixed target
/// (`tmux:%3`, `id:…`, `name:…`), and a name that is a UUID as a persistent id: such a name
/// could not be used as the target the tools promise it is, and `tmux:%1` would even name
/// another pane.
pub fn check_session_name(name: &str) -> crate::Result<()> {
    use crate::Error;
    check_name("session", name)?;
    if name.contains(':') {
        return Err(Error::InvalidArgument(format!(
            "session name {name:?} may not contain ':' (targets use it: workspace:window.pane, tmux:%3, id:…); pick another name"
        )));
    }
    if uuid::Uuid::parse_str(name).is_ok() {
        return Err(Error::InvalidArgument(format!(
            "session name {name:?} is a UUID, which targets read as a session id; pick another name"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_blocks_show_each_line_once_and_matches_as_matches() {
        let nl = |line: u64| NumberedLine {
            line,
            text: format!("l{line}"),
        };
        let m = |line: u64, ctx: u64| SearchMatch {
            line,
            text: format!("l{line}"),
            before: (line.saturating_sub(ctx)..line).map(nl).collect(),
            after: (line + 1..=line + ctx).map(nl).collect(),
        };
        let r = SearchResult {
            matches: vec![m(10, 2), m(11, 2), m(20, 1)],
            lines_searched: 30,
            truncated: false,
        };
        let shown: Vec<Vec<(u64, bool)>> = r
            .blocks()
            .iter()
            .map(|b| b.iter().map(|(n, _, is)| (*n, *is)).collect())
            .collect();
        assert_eq!(
            shown,
            [
                vec![
                    (8, false),
                    (9, false),
                    (10, true),
                    (11, true),
                    (12, false),
                    (13, false)
                ],
                vec![(19, false), (20, true), (21, false)],
            ]
        );
    }

    #[test]
    fn session_names_cannot_be_read_as_other_targets() {
        for bad in ["tmux:%1", "id:abcd", "a:b", "name:x", "ws:0.1", "iterm:G"] {
            let e = check_session_name(bad).unwrap_err().to_string();
            assert!(e.contains("may not contain ':'"), "{bad}: {e}");
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        assert!(check_session_name(&uuid).is_err());
        for good in ["web", "pa/left", "with space", "%1", "a.b", "ünï ✓"] {
            assert!(check_session_name(good).is_ok(), "{good}");
        }
        // The general rules hold too.
        assert!(check_session_name("").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("session", "web 'q' $x; ✓").is_ok());
        assert!(check_name("session", "").is_err());
        assert!(check_name("session", "   ").is_err(), "blanks only");
        assert!(check_name("window", "a\0b").is_err());
        assert!(check_name("workspace", &"x".repeat(MAX_NAME_LEN)).is_ok());
        let e = check_name("workspace", &"x".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert!(e.to_string().contains("workspace name is longer"), "{e}");
    }
}
