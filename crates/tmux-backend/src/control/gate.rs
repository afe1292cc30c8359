//! The attach gate: keeps this process's control-client attaches apart from its own commands and
//! from its control clients leaving.
//!
//! tmux 3.3a (and 3.4) marks a client as a control client when its first identify message
//! arrives but only creates its control state at the last one. A notification sent to every
//! control client in between (`%sessions-changed` from a new or closed session, `%client-detached`
//! from a client leaving, `%window-pane-changed`, `%session-window-changed`,
//! `%pane-mode-changed`, `%session-renamed`) is written through that missing state and the server
//! segfaults, taking every session with it. A burst of creates while output clients attach did it
//! in most runs.
//!
//! So, per tmux server and per process:
//! - attaching a control client (spawn until its attach block) holds the gate exclusively;
//! - every command, control-mode or spawned, holds it shared until its reply, by which time tmux
//!   has also sent the notifications the command caused;
//! - a control client that leaves holds it shared until its process has exited.
//!
//! Other processes (another termloom, iTerm2's `tmux -CC`, a person's `tmux attach -C`) are not
//! covered: tmux offers no way to know that one of them is attaching.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use termloom_core::TerminalKey;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::client::TmuxOptions;

static GATES: LazyLock<Mutex<HashMap<TerminalKey, Arc<RwLock<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The gate of the tmux server `opts` names (one per server in this process).
pub fn gate(opts: &TmuxOptions) -> Arc<RwLock<()>> {
    let key = opts.terminal_key();
    match GATES.lock() {
        Ok(mut m) => m.entry(key).or_default().clone(),
        // A panic elsewhere while holding the map: a private gate still orders this caller's own
        // work, and nothing here can be left half-done by a panic.
        Err(poisoned) => poisoned.into_inner().entry(key).or_default().clone(),
    }
}

/// Held while a command is in flight.
pub async fn command(gate: &Arc<RwLock<()>>) -> OwnedRwLockReadGuard<()> {
    gate.clone().read_owned().await
}

/// Held while a control client attaches.
pub async fn attach(gate: &Arc<RwLock<()>>) -> OwnedRwLockWriteGuard<()> {
    gate.clone().write_owned().await
}
