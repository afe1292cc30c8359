//! termloom's iTerm2 backend: iTerm2's native API (protobuf over a WebSocket on a unix socket).
//!
//! - [`proto`]: the protocol messages, hand-written with `prost` (no `protoc`, no vendored
//!   `.proto`).
//! - [`connection`]: the client: socket discovery, authentication, request/reply matching by
//!   id, notifications, timeouts and reconnects.
//! - [`terminal`]: [`ItermTerminal`], core's `Terminal` for iTerm2 (windows are workspaces, tabs
//!   are windows, split panes are sessions), plus iTerm2-only calls: variables, profile
//!   properties, tmux integration, menu items, events.
//! - [`project`]: projects in iTerm2 (`iterm`: the generic reconcile on workspace tags kept in
//!   window variables; `iterm-tmux`: the `tmux -CC` gateway flow, [`project::TmuxLink`]).
//! - [`session`]: [`ItermSession`], core's `Session` for one iTerm2 session (send, keys, reads,
//!   search, split, rename, close, focus, run, status, output streams).
//! - `fake` (feature `fake`): a protocol-faithful fake iTerm2 whose sessions are real shells on
//!   real ptys, for tests on machines without iTerm2. The `termloom-fake-iterm` binary serves
//!   it on a socket.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod connection;
pub mod error;
mod lines;
pub mod project;
pub mod proto;
mod run;
pub mod session;
pub mod terminal;

#[cfg(feature = "fake")]
pub mod fake;

pub use connection::{ConnectOptions, Connection, Credentials, VariableTarget};
pub use error::ItermError;
pub use session::{ItermSession, color};
pub use terminal::{
    ItermCreate, ItermEvent, ItermLayout, ItermTab, ItermTerminal, ItermWindow, MenuItemState,
    SOCKET_ENV, TmuxConnection, TmuxWindow, derived_id, options_from_env,
};
