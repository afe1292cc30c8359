//! [`ProjectHost`]: how a backend opens projects that core's generic reconcile cannot drive by
//! itself (for instance a workspace shown through a nested multiplexer connection).
//!
//! Core stays backend-neutral: it asks the terminal for a host ([`Terminal::project_host`]) and
//! whether that host takes a project's backend ([`ProjectHost::hosts`]). A host usually prepares
//! its own connection and then runs core's [`reconcile`](super::reconcile) over a [`Terminal`]
//! that speaks through it, so matching by id and name, never by position, stays in one place.
//! Hooks are run by core around the host's calls.
//!
//! [`Terminal`]: crate::terminal::Terminal
//! [`Terminal::project_host`]: crate::terminal::Terminal::project_host

use async_trait::async_trait;

use super::{
    CloseOptions, CloseReport, KillReport, OpenOptions, OpenReport, Project, ProjectBackend,
    ProjectStatus,
};
use crate::error::Result;

/// A backend that opens, closes and kills projects of some [`ProjectBackend`]s itself.
#[async_trait]
pub trait ProjectHost: Send + Sync {
    /// Whether projects with this backend are opened by this host (else core's generic
    /// reconcile runs on the terminal, when the terminal is of the project's kind).
    fn hosts(&self, backend: ProjectBackend) -> bool;

    /// Opens the project: creates what is missing, never re-runs a command in a live pane, never
    /// duplicates. Hooks are not run here (core runs them).
    async fn open_project(&self, p: &Project, opts: &OpenOptions) -> Result<OpenReport>;

    /// Closes the project without killing any process.
    async fn close_project(&self, p: &Project, opts: &CloseOptions) -> Result<CloseReport>;

    /// Kills the project's workspace and every process in it.
    async fn kill_project(&self, p: &Project) -> Result<KillReport>;

    /// The project's live state.
    async fn project_status(&self, p: &Project) -> Result<ProjectStatus>;
}
