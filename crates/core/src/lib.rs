//! termloom-core: the backend-neutral API for driving terminals.
//!
//! - [`SessionId`]: the persistent UUID of a session (one pane with a shell).
//! - [`Target`]: how callers name sessions (UUID, prefix, exact name, `workspace:window.pane`, native id).
//! - [`Terminal`] / [`Session`]: the traits every backend (tmux, iTerm2) implements.
//! - [`Layout`]: plain data for a window's split tree, with predefined layouts.
//! - [`Key`]: named key presses, apart from literal text.
//! - [`Registry`]: the on-disk record of every session termloom has seen.
//! - [`Loom`]: a terminal plus its registry; what the CLI and the MCP server drive.
//! - [`Project`] / [`ProjectStore`]: saved workspace definitions that open idempotently and close by
//!   detaching ([`project`]).
//! - [`SessionLogger`] / [`LogConfig`]: per-session logs and snapshots ([`Loom::with_logging`]).
//!
//! This crate has no backend code: backends depend on it, never the other way round.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cleanup;
pub mod error;
pub mod ids;
pub mod key;
pub mod layout;
pub mod log;
pub mod loom;
pub mod model;
pub mod private;
pub mod project;
pub mod registry;
pub mod target;
pub mod terminal;
pub mod text;

pub use error::{Error, Result, compile_regex};
pub use ids::{BackendKind, NativeId, SessionId, TerminalKey, same_socket};
pub use key::{Key, KeyCode};
pub use layout::{Direction, Layout, LayoutChild, LayoutNode, LayoutPlan, PaneSpec, SplitStep};
pub use log::{LogConfig, LoggedSession, SessionLogger};
pub use loom::{Changing, Loom};
pub use model::*;
pub use project::{Project, ProjectStore};
pub use registry::{Registry, RegistryData, RegistryEntry, default_state_dir};
pub use target::{Target, WindowSel};
pub use terminal::{OutputStream, Session, Terminal};
