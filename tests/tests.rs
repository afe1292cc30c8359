//! termloom's integration tests: one binary, a module per topic. Every tmux test runs against its
//! own real tmux server (see `harness`).

mod cli;
mod control;
mod iterm;
mod logs;
mod mcp;
mod projects;
mod projects_iterm;
mod reliability;
mod remote;
mod run;
mod tmux_backend;
mod tmux_layouts;
mod tmux_persistence;
mod tmux_read;
mod tmux_send;
mod tmux_sessions;
mod tmux_targets;
mod tmux_workspaces;
