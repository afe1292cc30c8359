//! termloom-mcp: termloom's MCP server. Every terminal operation of core's [`Terminal`] and
//! [`Session`] traits as MCP tools, plus resources and prompts, behind the safety rules the person
//! starting the server chose.
//!
//! - [`TermloomServer`] is the rmcp handler; [`Config`] holds the tier, scope, result cap, audit log
//!   and the terminals it may reach.
//! - Tools live in `tools_sessions`, `tools_windows`, `tools_io` and `tools_monitor`; their JSON
//!   Schema types in [`types`]; core errors become `isError` results in [`error`].
//! - [`http`] serves the handler over streamable HTTP with a bearer token and an `Origin` check.
//!
//! Architecture invariant: this library knows MCP and JSON Schema, and nothing of tmux or iTerm2; it
//! only calls core's API. The binary (`main.rs`) builds the backend with the CLI's global options.
//!
//! [`Terminal`]: termloom_core::Terminal
//! [`Session`]: termloom_core::Session
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod audit;
pub mod cap;
pub mod config;
pub mod error;
pub mod http;
mod json;
pub mod monitor;
mod prompts;
pub mod resources;
mod server;
pub mod stdio;
mod tools_io;
mod tools_monitor;
mod tools_projects;
mod tools_sessions;
mod tools_windows;
pub mod types;

pub use config::{Config, DEFAULT_MAX_CHARS, Scope, Tier};
pub use error::ToolError;
pub use server::{TermloomServer, all_tools, tier_of};
