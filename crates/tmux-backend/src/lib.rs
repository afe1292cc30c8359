//! termloom-tmux: the tmux backend.
//!
//! - [`TmuxTerminal`] implements core's `Terminal` for one tmux server; [`TmuxSession`] implements
//!   `Session` for one pane.
//! - Every command goes through one seam, [`client::TmuxClient::run`], as argv (never a shell
//!   string), built with [`command::Cmd`] and targeted exactly (`=name:`, `$N`, `@N`, `%N`).
//! - [`mod@format`] holds the `-F` formats and their parsing; [`control`] the control-mode protocol.
//! - A session's persistent id lives on its pane as the user option `@termloom_id`, its name as
//!   `@termloom_name`; a pane id is only used after it was seen carrying that id.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod client;
pub mod command;
pub mod control;
pub mod error;
pub mod format;
pub mod integration;
pub mod run;
pub mod session;
pub mod terminal;

pub use client::{Socket, TmuxClient, TmuxOptions};
pub use error::TmuxError;
pub use session::TmuxSession;
pub use terminal::{DEFAULT_WORKSPACE, TmuxTerminal};
