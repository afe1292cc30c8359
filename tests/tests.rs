//! termloom's integration tests: one binary, a module per topic. Every tmux test runs against its
//! own real tmux server (see `harness`).

mod tmux_backend;
mod control;
mod logs;
mod cli;
mod tmux_layouts;
mod tmux_persistence;
mod tmux_read;
mod tmux_send;
mod tmux_sessions;
mod tmux_targets;
mod tmux_workspaces;
mod mcp;
mod run;
mod remote;
mod projects;
mod iterm;
