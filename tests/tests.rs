//! termloom's integration tests: one binary, a module per topic. Every tmux test runs against its
//! own real tmux server (see `harness`).

mod tmux_backend;
mod control;
