//! Workspace and window tools.

use std::path::PathBuf;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use termloom_core::{WindowRef, WindowSel, WindowSpec, WorkspaceSpec};

use crate::error::ToolError;
use crate::json::Json;
use crate::server::TermloomServer;
use crate::types::*;

fn window_ref(workspace: &str, window: &str) -> Result<WindowRef, ToolError> {
    if workspace.is_empty() || window.is_empty() {
        return Err(ToolError::new(
            "workspace and window must not be empty; call list_windows",
        ));
    }
    Ok(WindowRef {
        workspace: workspace.to_string(),
        window: WindowSel::parse(window),
    })
}

#[tool_router(router = window_tools, vis = "pub(crate)")]
impl TermloomServer {
    /// List workspaces (tmux sessions): name, number of windows, whether a person is attached.
    #[tool(annotations(
        title = "List workspaces",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_workspaces(
        &self,
        Parameters(p): Parameters<PlaceParams>,
    ) -> Result<Json<WorkspacesOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let ws = loom.terminal().list_workspaces().await?;
        Ok(Json(WorkspacesOut {
            workspaces: ws.iter().map(WorkspaceOut::from).collect(),
        }))
    }

    /// Create a workspace (a tmux session) with one window and one session in it; returns that session.
    #[tool(annotations(
        title = "Create workspace",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn create_workspace(
        &self,
        Parameters(p): Parameters<CreateWorkspaceParams>,
    ) -> Result<Json<SessionOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let _changing = loom.changing().await;
        let info = loom
            .terminal()
            .create_workspace(&WorkspaceSpec {
                name: p.name,
                window: p.window.filter(|w| !w.is_empty()),
                session_name: p.session_name.filter(|n| !n.is_empty()),
                cwd: p.cwd.filter(|c| !c.is_empty()).map(PathBuf::from),
                env: Vec::new(),
                size: None,
                history_limit: p.scrollback,
            })
            .await?;
        loom.record(std::slice::from_ref(&info));
        Ok(Json(self.out(&loom, &info)))
    }

    /// Destroy a workspace: kill all its windows, panes and the programs in them. Cannot be undone.
    #[tool(annotations(
        title = "Destroy workspace",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn destroy_workspace(
        &self,
        Parameters(p): Parameters<WorkspaceParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        self.check_workspace_writable(&loom, &p.workspace, None)
            .await?;
        loom.terminal().destroy_workspace(&p.workspace).await?;
        let _ = loom.list_sessions().await;
        Ok(Json(DoneOut {
            ok: true,
            session: None,
            message: format!("destroyed workspace '{}'", p.workspace),
        }))
    }

    /// List windows (of one workspace, or of all): index, name, number of panes, which is active.
    #[tool(annotations(
        title = "List windows",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_windows(
        &self,
        Parameters(p): Parameters<ListWindowsParams>,
    ) -> Result<Json<WindowsOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let ws = p.workspace.filter(|w| !w.is_empty());
        let wins = loom.terminal().list_windows(ws.as_deref()).await?;
        Ok(Json(WindowsOut {
            windows: wins.iter().map(WindowOut::from).collect(),
        }))
    }

    /// Create a window in an existing workspace, in the background unless `select`, with one session
    /// in it (optionally typing `command`); returns that session.
    #[tool(annotations(
        title = "Create window",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_window(
        &self,
        Parameters(p): Parameters<CreateWindowParams>,
    ) -> Result<Json<SessionOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        if p.select == Some(true) {
            self.check_layout_writable(&loom, Some(&p.workspace), None)
                .await?;
        }
        let _changing = loom.changing().await;
        let info = loom
            .terminal()
            .create_window(&WindowSpec {
                workspace: p.workspace,
                name: p.name.filter(|n| !n.is_empty()),
                session_name: p.session_name.filter(|n| !n.is_empty()),
                cwd: p.cwd.filter(|c| !c.is_empty()).map(PathBuf::from),
                command: p.command.filter(|c| !c.is_empty()),
                select: p.select.unwrap_or(false),
            })
            .await?;
        loom.record(std::slice::from_ref(&info));
        Ok(Json(self.out(&loom, &info)))
    }

    /// Close a window: kill its panes and the programs in them. Cannot be undone.
    #[tool(annotations(
        title = "Close window",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn close_window(
        &self,
        Parameters(p): Parameters<WindowParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let w = window_ref(&p.workspace, &p.window)?;
        self.check_workspace_writable(&loom, &w.workspace, Some(&w.window))
            .await?;
        loom.terminal().kill_window(&w).await?;
        let _ = loom.list_sessions().await;
        Ok(Json(DoneOut {
            ok: true,
            session: None,
            message: format!("closed window {w}"),
        }))
    }

    /// Rename a window of a workspace (by its index or current name). Sessions and their ids are not
    /// affected.
    #[tool(annotations(
        title = "Rename window",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn rename_window(
        &self,
        Parameters(p): Parameters<RenameWindowParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let w = window_ref(&p.workspace, &p.window)?;
        self.check_workspace_writable(&loom, &w.workspace, Some(&w.window))
            .await?;
        loom.terminal().rename_window(&w, &p.name).await?;
        Ok(Json(DoneOut {
            ok: true,
            session: None,
            message: format!("renamed window {w} to '{}'", p.name),
        }))
    }

    /// Make a window its workspace's active window (what a person attached to it sees).
    #[tool(annotations(
        title = "Select window",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn select_window(
        &self,
        Parameters(p): Parameters<WindowParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let w = window_ref(&p.workspace, &p.window)?;
        self.check_workspace_writable(&loom, &w.workspace, Some(&w.window))
            .await?;
        loom.terminal().select_window(&w).await?;
        Ok(Json(DoneOut {
            ok: true,
            session: None,
            message: format!("selected window {w}"),
        }))
    }

    /// Get a workspace's scrollback size in lines, or set it (`lines`) for panes created from now on.
    #[tool(annotations(
        title = "Get or set scrollback",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn set_scrollback(
        &self,
        Parameters(p): Parameters<SetScrollbackParams>,
    ) -> Result<Json<ScrollbackOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        if p.lines.is_some() {
            self.check_workspace_writable(&loom, &p.workspace, None)
                .await?;
        }
        let lines = loom.terminal().scrollback(&p.workspace, p.lines).await?;
        Ok(Json(ScrollbackOut {
            workspace: p.workspace,
            lines,
        }))
    }
}
