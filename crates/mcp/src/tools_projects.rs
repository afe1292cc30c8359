//! Project tools: list, open and close the person's saved workspaces (project files in the config
//! dir). The project file decides the terminal: a `host` in it goes through the same allow-list as
//! a tool's `host` parameter.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use termloom_core::project::{
    self, CloseOptions, OpenOptions, Project, ProjectBackend, ProjectStore,
};
use termloom_core::{BackendKind, Loom};

use crate::error::ToolError;
use crate::json::Json;
use crate::server::TermloomServer;
use crate::types::Place;

/// List the project files.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListProjectsParams {}

/// Open or close one project.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectParams {
    /// The project's name (its file is `NAME.yaml` in the projects dir; list_projects shows them).
    pub project: String,
    /// open_project only: take over a workspace of the project's session name that no project
    /// opened (its panes are kept and matched by name). Default false.
    #[serde(default)]
    pub adopt: Option<bool>,
    /// Run the project's `on_open` / `on_close` hooks. Default true.
    #[serde(default)]
    pub run_hooks: Option<bool>,
}

/// The project files and their live state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectsOut {
    /// Where the project files are.
    pub dir: String,
    /// One entry a file: name, file, backend, workspace, host (for a project on an ssh host),
    /// windows, status (open, attached, windows, sessions; none for a project on a host) and,
    /// for a file that does not load, the error.
    pub projects: Vec<serde_json::Value>,
}

/// What open_project or close_project did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectReportOut {
    /// The report: for open, every window and pane with `created` or `found` (panes created now
    /// ran their commands; found ones were left alone); for close, the clients detached and the
    /// sessions still running.
    pub report: serde_json::Value,
}

fn store() -> Result<ProjectStore, ToolError> {
    ProjectStore::from_env().map_err(ToolError::from)
}

fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::new(format!("cannot encode the report: {e}")))
}

impl TermloomServer {
    /// The terminal a project lives in: its host (if the person allowed it), else the server's.
    fn project_loom(&self, p: &Project) -> Result<Loom, ToolError> {
        let loom = self.loom(&Place {
            socket: None,
            host: p.host.clone(),
        })?;
        let iterm = matches!(p.backend, ProjectBackend::Iterm | ProjectBackend::ItermTmux);
        if iterm != (loom.terminal().kind() == BackendKind::Iterm) {
            return Err(ToolError::new(format!(
                "project '{}' is a {} project and this server drives {}; ask the person to start termloom-mcp with --backend {}",
                p.name,
                p.backend.as_str(),
                loom.terminal().kind(),
                if iterm { "iterm" } else { "tmux" }
            )));
        }
        Ok(loom)
    }

    fn load_project(&self, name: &str) -> Result<Project, ToolError> {
        store()?
            .load(name)
            .map_err(|e| ToolError::new(format!("{}; call list_projects", ToolError::from(e).0)))
    }
}

#[tool_router(router = project_tools, vis = "pub(crate)")]
impl TermloomServer {
    /// List the person's projects (saved workspace definitions in ~/.config/termloom/projects or
    /// $TERMLOOM_CONFIG_DIR) with whether each is open in this server's terminal. A project on an
    /// ssh host (`host` in its entry) has no status here (no host is contacted to list); opening
    /// it is idempotent, so open_project tells. Changes nothing.
    #[tool(annotations(
        title = "List projects",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_projects(
        &self,
        Parameters(_): Parameters<ListProjectsParams>,
    ) -> Result<Json<ProjectsOut>, ToolError> {
        let store = store()?;
        let loom = self.loom(&Place::default())?;
        let all = project::list_projects(&store, loom.terminal().as_ref()).await?;
        Ok(Json(ProjectsOut {
            dir: store.dir().display().to_string(),
            projects: all.iter().map(to_value).collect::<Result<_, _>>()?,
        }))
    }

    /// Open a project: create its workspace, or complete it. Idempotent: windows and panes are
    /// matched by their stored ids and names, only missing ones are created, commands run only in
    /// panes created now, nothing is duplicated. Returns what was created and what was found; the
    /// sessions are then reachable by name (`PROJECT/PANE`) with the other tools. The project's
    /// on_open hooks (programs the project file names) run on every call.
    #[tool(annotations(
        title = "Open project",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn open_project(
        &self,
        Parameters(p): Parameters<ProjectParams>,
    ) -> Result<Json<ProjectReportOut>, ToolError> {
        let project = self.load_project(&p.project)?;
        if p.adopt == Some(true) && self.cfg().scope == crate::config::Scope::Managed {
            return Err(ToolError::new(format!(
                "refused: adopting takes over a workspace that no project opened (its panes are split and renamed), and this server was started with --scope managed, which writes only to sessions termloom made or a person tagged; open '{}' without adopt, or ask the person to adopt it (`termloom project open {} --adopt`)",
                project.name, project.name
            )));
        }
        let loom = self.project_loom(&project)?;
        let report = project::open_in(
            &loom,
            &project,
            &OpenOptions {
                adopt: p.adopt.unwrap_or(false),
                run_hooks: p.run_hooks.unwrap_or(true),
            },
        )
        .await?;
        Ok(Json(ProjectReportOut {
            report: to_value(&report)?,
        }))
    }

    /// Close a project: detach every client from its workspace. Nothing is killed: every process
    /// keeps running, and open_project later finds the same sessions. The project's on_close
    /// hooks run on every call.
    #[tool(annotations(
        title = "Close project",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn close_project(
        &self,
        Parameters(p): Parameters<ProjectParams>,
    ) -> Result<Json<ProjectReportOut>, ToolError> {
        let project = self.load_project(&p.project)?;
        let loom = self.project_loom(&project)?;
        let report = project::close(
            loom.terminal().as_ref(),
            &project,
            &CloseOptions {
                run_hooks: p.run_hooks.unwrap_or(true),
            },
        )
        .await?;
        Ok(Json(ProjectReportOut {
            report: to_value(&report)?,
        }))
    }
}
