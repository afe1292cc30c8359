//! The two traits every backend implements: [`Terminal`] (one backend instance) and [`Session`] (one pane).
//!
//! Both are object-safe (`Arc<dyn Terminal>`, `Arc<dyn Session>`). A backend supplies a small required
//! set; the richer calls have default bodies, and what a backend cannot do returns
//! [`Error::Unsupported`] with a reason (and shows in [`Terminal::capabilities`]), never a panic.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, Result, compile_regex};
use crate::ids::{BackendKind, NativeId, SessionId, TerminalKey};
use crate::key::Key;
use crate::layout::Layout;
use crate::model::*;
use crate::target::Target;
use crate::text;

/// A stream of a session's output events.
pub type OutputStream = Pin<Box<dyn Stream<Item = OutputEvent> + Send>>;

/// One backend instance: a tmux server on a host and socket, or the iTerm2 app.
#[async_trait]
pub trait Terminal: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Which instance this is (host and socket).
    fn key(&self) -> TerminalKey;

    /// A file every process on this machine that changes this terminal can lock, whatever its
    /// state dir (for a local tmux server: beside its socket): [`crate::Loom::changing`] takes
    /// it so that two creations never both find a name free. `None` when there is none.
    fn change_lock_path(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Every live session (pane), each with its persistent id. Panes nobody tagged yet are tagged now.
    async fn list_sessions(&self) -> Result<Vec<SessionInfo>>;

    /// A handle to a live session, after checking that the pane behind `info.native` still carries
    /// `info.id` (native ids are reused after a server restart).
    async fn open(&self, info: &SessionInfo) -> Result<Arc<dyn Session>>;

    /// A handle to a session that a listing of this terminal returned **during the current call**
    /// (e.g. [`crate::Loom::resolve`] just now). That listing read the session's id from the pane
    /// itself, which is the check [`Terminal::open`] makes, so a backend may skip making it again.
    /// Never pass an `info` from an earlier call, the registry or a cache: use `open` for those.
    /// The default makes the check anyway (calls `open`).
    async fn open_listed(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        self.open(info).await
    }

    /// A handle to session `id` at `native`, the native id last seen for it (the registry's hint),
    /// **without checking anything now**, or `None` when the backend cannot offer that. A backend
    /// returns such a handle only if every operation on it checks, in the same step as it acts
    /// (before anything reaches the pane), that the pane still carries `id`, failing with
    /// [`Error::StaleNativeId`] or [`Error::SessionDead`] otherwise; with `managed_only`, writes
    /// also need the session to be managed ([`SessionInfo::managed`]), checked the same way, and
    /// fail with [`Error::PermissionDenied`]. With `name`, the session was named by its name: every
    /// operation also checks that the pane still carries that name, failing with
    /// [`Error::StaleNativeId`] otherwise (a backend that cannot check it returns `None`).
    /// [`crate::Loom::hinted`] builds on it.
    async fn open_hinted(
        &self,
        id: SessionId,
        native: &NativeId,
        managed_only: bool,
        name: Option<&str>,
    ) -> Result<Option<Arc<dyn Session>>> {
        let _ = (id, native, managed_only, name);
        Ok(None)
    }

    /// Creates a session (a pane with a shell) as `spec` says.
    async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo>;

    /// Finds the one live session a target names.
    async fn resolve(&self, target: &Target) -> Result<SessionInfo> {
        let all = self.list_sessions().await?;
        target.resolve(&all).cloned()
    }

    /// Resolves a target and opens a handle to it.
    async fn session(&self, target: &Target) -> Result<Arc<dyn Session>> {
        let info = self.resolve(target).await?;
        self.open(&info).await
    }

    /// Lists workspaces.
    async fn list_workspaces(&self) -> Result<Vec<WorkspaceInfo>> {
        Err(Error::unsupported(
            self.kind(),
            "list workspaces",
            "not implemented by this backend",
        ))
    }

    /// Creates a workspace with one session in it; returns that session.
    async fn create_workspace(&self, spec: &WorkspaceSpec) -> Result<SessionInfo> {
        let _ = spec;
        Err(Error::unsupported(
            self.kind(),
            "create workspaces",
            "not implemented by this backend",
        ))
    }

    /// Destroys a workspace and every process in it.
    async fn destroy_workspace(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(Error::unsupported(
            self.kind(),
            "destroy workspaces",
            "not implemented by this backend",
        ))
    }

    /// Lists windows, of one workspace or of all.
    async fn list_windows(&self, workspace: Option<&str>) -> Result<Vec<WindowInfo>> {
        let _ = workspace;
        Err(Error::unsupported(
            self.kind(),
            "list windows",
            "not implemented by this backend",
        ))
    }

    /// Creates a window; returns its first session.
    async fn create_window(&self, spec: &WindowSpec) -> Result<SessionInfo> {
        let _ = spec;
        Err(Error::unsupported(
            self.kind(),
            "create windows",
            "not implemented by this backend",
        ))
    }

    /// Kills a window and its panes.
    async fn kill_window(&self, window: &WindowRef) -> Result<()> {
        let _ = window;
        Err(Error::unsupported(
            self.kind(),
            "kill windows",
            "not implemented by this backend",
        ))
    }

    /// Renames a window.
    async fn rename_window(&self, window: &WindowRef, name: &str) -> Result<()> {
        let _ = (window, name);
        Err(Error::unsupported(
            self.kind(),
            "rename windows",
            "not implemented by this backend",
        ))
    }

    /// Makes a window its workspace's active window.
    async fn select_window(&self, window: &WindowRef) -> Result<()> {
        let _ = window;
        Err(Error::unsupported(
            self.kind(),
            "select windows",
            "not implemented by this backend",
        ))
    }

    /// Gets (`lines: None`) or sets a workspace's scrollback size in lines; returns the size in force.
    async fn scrollback(&self, workspace: &str, lines: Option<u32>) -> Result<u32> {
        let _ = (workspace, lines);
        Err(Error::unsupported(
            self.kind(),
            "configure scrollback",
            "not implemented by this backend",
        ))
    }

    /// Builds a layout in a new window; returns each pane's name with its new session.
    async fn apply_layout(
        &self,
        layout: &Layout,
        placement: &LayoutPlacement,
    ) -> Result<Vec<(String, SessionInfo)>> {
        let _ = (layout, placement);
        Err(Error::unsupported(
            self.kind(),
            "apply layouts",
            "not implemented by this backend",
        ))
    }

    /// Gives the panes of an existing window the layout's shape: `panes` are the window's panes in
    /// the order of [`Layout::leaves`], and become those leaves, sized as the layout says. For a
    /// window whose panes were filled in one by one (a project pane made again): a backend that
    /// cannot, or a window holding other panes too, is left as it is.
    async fn fit_layout(
        &self,
        window_id: &str,
        layout: &Layout,
        panes: &[SessionInfo],
    ) -> Result<()> {
        let _ = (window_id, layout, panes);
        Err(Error::unsupported(
            self.kind(),
            "reshape a window to a layout",
            "not implemented by this backend",
        ))
    }

    /// Sets (`Some`) or removes (`None`) a workspace tag: a small value stored in the backend itself
    /// (tmux: the session user option `@termloom_KEY`), so it is found again by any termloom, after
    /// any restart of termloom. Keys are `[a-z0-9_]+` ([`crate::project::check_tag_key`]).
    async fn set_workspace_tag(
        &self,
        workspace: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let _ = (workspace, key, value);
        Err(Error::unsupported(
            self.kind(),
            "tag workspaces",
            "not implemented by this backend",
        ))
    }

    /// Every tag of a workspace, by key.
    async fn workspace_tags(
        &self,
        workspace: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let _ = workspace;
        Err(Error::unsupported(
            self.kind(),
            "read workspace tags",
            "not implemented by this backend",
        ))
    }

    /// Detaches every client (a person's terminal) showing a workspace; every process keeps
    /// running. Returns how many clients were detached.
    async fn detach_workspace(&self, workspace: &str) -> Result<usize> {
        let _ = workspace;
        Err(Error::unsupported(
            self.kind(),
            "detach workspaces",
            "not implemented by this backend",
        ))
    }

    /// What it takes to attach a person's terminal to a workspace, creating the workspace first
    /// when it is missing and `opts.create` is set.
    async fn attach_plan(
        &self,
        workspace: &str,
        opts: &crate::project::AttachOpts,
    ) -> Result<crate::project::AttachPlan> {
        let _ = (workspace, opts);
        Err(Error::unsupported(
            self.kind(),
            "attach terminals",
            "not implemented by this backend",
        ))
    }

    /// The backend's own way of opening projects of some kinds (see
    /// [`crate::project::ProjectHost`]); `None`: core's generic reconcile only.
    fn project_host(&self) -> Option<&dyn crate::project::ProjectHost> {
        None
    }

    /// Each window of a workspace with its live split tree (to write a project from it).
    async fn window_layouts(&self, workspace: &str) -> Result<Vec<crate::project::LiveWindow>> {
        let _ = workspace;
        Err(Error::unsupported(
            self.kind(),
            "describe window layouts",
            "not implemented by this backend",
        ))
    }
}

/// One session: a pane with a shell. Obtained from [`Terminal::open`] or [`Terminal::session`].
#[async_trait]
pub trait Session: Send + Sync {
    /// The persistent id.
    fn id(&self) -> SessionId;

    /// The backend's id for the pane.
    fn native(&self) -> &NativeId;

    /// The session's current description.
    async fn info(&self) -> Result<SessionInfo>;

    /// Types `text` exactly as given (quotes, `$`, `;`, newlines, Unicode), then Enter when asked.
    async fn send_text(&self, text: &str, opts: SendOpts) -> Result<()>;

    /// Presses keys in order.
    async fn send_keys(&self, keys: &[Key]) -> Result<()>;

    /// Reads lines.
    async fn capture(&self, opts: &CaptureOpts) -> Result<Capture>;

    /// Searches the whole scrollback with a regex; matches carry context and absolute line numbers.
    async fn search(&self, opts: &SearchOpts) -> Result<SearchResult> {
        let re = if opts.ignore_case {
            compile_regex(&format!("(?i){}", opts.pattern))?
        } else {
            compile_regex(&opts.pattern)?
        };
        let all = self
            .capture(&CaptureOpts {
                range: ReadRange::Lines {
                    from: 0,
                    to: u64::MAX,
                },
                max_lines: Some(usize::MAX),
                ..CaptureOpts::default()
            })
            .await?;
        Ok(text::search(
            &all.text,
            all.first_line,
            &re,
            opts.context,
            opts.max_matches.unwrap_or(100),
        ))
    }

    /// Splits this session's pane; returns the new session.
    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo>;

    /// Renames the session.
    async fn rename(&self, name: &str) -> Result<()>;

    /// Closes the session (kills its pane).
    async fn close(&self) -> Result<()>;

    /// Makes this pane the active one in its window, and its window the active one.
    async fn focus(&self) -> Result<()>;

    /// Resizes or zooms the pane.
    async fn resize(&self, spec: &ResizeSpec) -> Result<()> {
        let _ = spec;
        Err(Error::unsupported(
            self.native().backend,
            "resize panes",
            "not implemented by this backend",
        ))
    }

    /// Marks the session as managed by termloom (writable under `--scope managed`), or unmarks it.
    async fn set_managed(&self, managed: bool) -> Result<()> {
        let _ = managed;
        Err(Error::unsupported(
            self.native().backend,
            "tag sessions",
            "not implemented by this backend",
        ))
    }

    /// Runs a command and waits for it to finish (see [`RunOpts`]).
    async fn run(&self, opts: &RunOpts) -> Result<RunResult> {
        let _ = opts;
        Err(Error::unsupported(
            self.native().backend,
            "run commands",
            "not implemented by this backend",
        ))
    }

    /// Keeps waiting for a run that timed out.
    async fn wait_run(&self, handle: &RunHandle, timeout: Duration) -> Result<RunResult> {
        let _ = (handle, timeout);
        Err(Error::unsupported(
            self.native().backend,
            "wait for runs",
            "not implemented by this backend",
        ))
    }

    /// Busy or idle, current command, last exit code, cwd.
    async fn status(&self) -> Result<SessionStatus> {
        Err(Error::unsupported(
            self.native().backend,
            "report status",
            "not implemented by this backend",
        ))
    }

    /// Installs shell integration (OSC 133 marks) into the running shell.
    async fn install_integration(&self) -> Result<()> {
        Err(Error::unsupported(
            self.native().backend,
            "install shell integration",
            "not implemented by this backend",
        ))
    }

    /// Streams the session's output.
    async fn subscribe(&self) -> Result<OutputStream> {
        Err(Error::unsupported(
            self.native().backend,
            "stream output",
            "not implemented by this backend",
        ))
    }

    /// Waits until a line of output matches `pattern`; returns that line, or `None` on timeout.
    async fn wait_for(&self, pattern: &regex::Regex, timeout: Duration) -> Result<Option<String>> {
        let stream = self.subscribe().await?;
        // Output only: the echo of a typed command holds the text it will print.
        let mut lines = Box::pin(text::output_lines(stream));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, lines.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(None),
                Ok(Some(text::LineEvent::Line(l))) if pattern.is_match(&l) => return Ok(Some(l)),
                Ok(Some(text::LineEvent::Closed(reason))) => {
                    // The stream ends with the pane, or with the connection that carried it:
                    // only the pane itself can tell which.
                    let ended = |name: &str| {
                        Error::InvalidArgument(format!(
                            "session {} ('{name}') ended while waiting: {reason}; read its last output or close it",
                            self.id(),
                        ))
                    };
                    return Err(match self.info().await {
                        Ok(info) if info.dead => ended(&info.name),
                        Err(Error::SessionDead { name, .. }) => ended(&name),
                        Ok(_) => Error::ConnectionLost {
                            backend: self.native().backend,
                            reason: format!(
                                "{reason}; session {} is still there: wait again",
                                self.id()
                            ),
                        },
                        Err(e) => e,
                    });
                }
                Ok(Some(_)) => {}
            }
        }
    }
}
