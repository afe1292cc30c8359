//! termloom's iTerm2 backend: iTerm2's native API (protobuf over a WebSocket on a unix socket).
//!
//! - [`proto`]: the protocol messages, hand-written with `prost` (no `protoc`, no vendored
//!   `.proto`).
//! - [`connection`]: the client: socket discovery, authentication, request/reply matching by
//!   id, notifications, timeouts and reconnects.
//! - `fake` (feature `fake`): a protocol-faithful fake iTerm2 whose sessions are real shells on
//!   real ptys, for tests on machines without iTerm2. The `termloom-fake-iterm` binary serves
//!   it on a socket.
//!
//! The `Terminal` implementation on top of the connection will live in a `terminal` module.

#![deny(missing_docs)]

pub mod connection;
pub mod error;
pub mod proto;

#[cfg(feature = "fake")]
pub mod fake;

pub use connection::{ConnectOptions, Connection, Credentials, VariableTarget};
pub use error::ItermError;
