//! tmux backend tests
