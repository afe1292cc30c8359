//! The attach gate: keeps a control client's attach apart from commands and from control clients
//! leaving, in this process and in every other termloom process on the same machine.
//!
//! tmux 3.3a (and 3.4) marks a client as a control client when its first identify message
//! arrives but only creates its control state at the last one. A notification sent to every
//! control client in between (`%sessions-changed` from a new or closed session, `%client-detached`
//! from a client leaving, `%window-pane-changed`, `%session-window-changed`,
//! `%pane-mode-changed`, `%session-renamed`) is written through that missing state and the server
//! segfaults, taking every session with it. A burst of creates while output clients attach did it
//! in most runs; two CLI processes running at once on one session did it about one time in ten.
//!
//! So, per tmux server:
//! - attaching a control client (spawn until its attach block) holds the gate exclusively;
//! - every command, control-mode or spawned, holds it shared until its reply, by which time tmux
//!   has also sent the notifications the command caused;
//! - a control client that leaves holds it shared until the server has let it go (its output
//!   pipe closed: tmux queues `%client-detached` before closing it, and sends it before it reads
//!   anything more from another client).
//!
//! Within a process the gate is a [`RwLock`]. Between processes it is an advisory file lock
//! (`flock`) on a file beside a local server's socket (`<socket>.termloom-gate`): shared while any
//! command or leaving of this process is in flight, exclusive while attaching; an attach first
//! takes a turnstile (`<socket>.termloom-gate.turn`) that commands pass through, so that other
//! processes' commands cannot keep it waiting. A leaving client's stdin stays open until it holds
//! the gate (tmux lets a control client go when its stdin ends). Waiting for the
//! file lock is bounded ([`FILE_WAIT`]): a process that holds it too long (or a socket directory
//! where the file cannot be made) costs the protection, never progress. Remote servers (over ssh)
//! and other programs (iTerm2's `tmux -CC`, a person's `tmux attach -C`) are not covered: tmux
//! offers no way to know that one of them is attaching.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use termloom_core::TerminalKey;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::client::TmuxOptions;

/// How long a command or an attach waits for another process's hold on the file lock before it
/// goes ahead without it.
#[cfg(not(test))]
pub const FILE_WAIT: Duration = Duration::from_secs(2);
/// (Shorter in unit tests.)
#[cfg(test)]
pub const FILE_WAIT: Duration = Duration::from_millis(200);

/// After the lock file could not be opened, how long before it is tried again.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// After a wait for the file lock ran out, how long it is left alone.
const SKIP_AFTER_WAIT: Duration = Duration::from_secs(5);

/// One tmux server's gate in this process.
pub struct Gate {
    local: Arc<RwLock<()>>,
    /// The cross-process lock; `None` for a remote server.
    file: Option<FileGate>,
}

struct FileGate {
    path: PathBuf,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    file: Option<File>,
    /// The turnstile (`…-gate.turn`): an attach holds it exclusively while it waits for the gate,
    /// and a command passes through it (shared, for a moment) before taking the gate, so that a
    /// stream of commands from other processes cannot keep an attach waiting.
    turn: Option<File>,
    /// When opening the file last failed.
    failed_at: Option<Instant>,
    /// After a wait ran out ([`FILE_WAIT`]): the file lock is left alone until then, so that a
    /// lock held for good costs one wait, not one per command.
    skip_until: Option<Instant>,
    /// Commands and leavings of this process in flight.
    holders: usize,
    /// Whether this process holds the shared lock (it may go without, see [`FILE_WAIT`]).
    held: bool,
}

static GATES: LazyLock<Mutex<HashMap<TerminalKey, Arc<Gate>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here is left half-done by a panic elsewhere: the state stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The gate of the tmux server `opts` names (one per server in this process).
pub fn gate(opts: &TmuxOptions) -> Arc<Gate> {
    let key = opts.terminal_key();
    let mut gates = lock(&GATES);
    gates
        .entry(key.clone())
        .or_insert_with(|| {
            let file = match (&opts.host, &key.socket) {
                (None, Some(socket)) => Some(FileGate {
                    path: PathBuf::from(format!("{socket}.termloom-gate")),
                    state: Mutex::new(FileState::default()),
                }),
                _ => None,
            };
            Arc::new(Gate {
                local: Arc::new(RwLock::new(())),
                file,
            })
        })
        .clone()
}

/// Held while a command is in flight, or while a control client leaves.
pub struct CommandGuard {
    gate: Arc<Gate>,
    _local: OwnedRwLockReadGuard<()>,
}

impl Drop for CommandGuard {
    fn drop(&mut self) {
        // The file lock goes first: an attach of this process, next in line for the local lock,
        // then finds it free.
        if let Some(f) = &self.gate.file {
            let mut st = lock(&f.state);
            st.holders = st.holders.saturating_sub(1);
            if st.holders == 0 && st.held {
                if let Some(file) = &st.file {
                    let _ = file.unlock();
                }
                st.held = false;
            }
        }
    }
}

/// Held while a control client attaches.
pub struct AttachGuard {
    gate: Arc<Gate>,
    _local: OwnedRwLockWriteGuard<()>,
    held: bool,
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if self.held
            && let Some(f) = &self.gate.file
            && let Some(file) = &lock(&f.state).file
        {
            let _ = file.unlock();
        }
    }
}

impl FileGate {
    /// Opens (creates) the lock files on first use; `false` when they cannot be had now.
    fn open(&self, st: &mut FileState) -> bool {
        if st.skip_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        if st.file.is_some() && st.turn.is_some() {
            return true;
        }
        if st.failed_at.is_some_and(|t| t.elapsed() < REOPEN_AFTER) {
            return false;
        }
        let turn_path = PathBuf::from(format!("{}.turn", self.path.display()));
        let open = |path: &PathBuf| -> std::io::Result<File> {
            // Anything but a regular file (a FIFO would block the open for good) is not used.
            if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
                return Err(std::io::Error::other("not a regular file"));
            }
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
        };
        match (open(&self.path), open(&turn_path)) {
            (Ok(f), Ok(t)) => {
                st.file = Some(f);
                st.turn = Some(t);
                true
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(path = %self.path.display(), error = %e, "no cross-process attach gate");
                st.failed_at = Some(Instant::now());
                false
            }
        }
    }
}

/// Tries `attempt` until it says done or [`FILE_WAIT`] runs out, sleeping a little longer each
/// time (0.2 ms up to 5 ms): another process holds the lock for one command or one attach. A
/// wait that runs out leaves the file lock alone for [`SKIP_AFTER_WAIT`].
async fn retry(f: &FileGate, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + FILE_WAIT;
    let mut pause = Duration::from_micros(200);
    while !attempt() {
        if Instant::now() >= deadline {
            tracing::warn!(path = %f.path.display(), "attach gate: another process held the lock for over {FILE_WAIT:?}; going ahead without it for {SKIP_AFTER_WAIT:?}");
            lock(&f.state).skip_until = Some(Instant::now() + SKIP_AFTER_WAIT);
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Holds the gate shared: for a command until its reply, or for a leaving control client.
pub async fn command(gate: &Arc<Gate>) -> CommandGuard {
    let local = gate.local.clone().read_owned().await;
    if let Some(f) = &gate.file {
        let mut joined = false;
        retry(f, || {
            let mut st = lock(&f.state);
            if !f.open(&mut st) {
                return true;
            }
            // Through the turnstile: an attach waiting in another process holds it.
            match st.turn.as_ref().map(File::try_lock_shared) {
                Some(Ok(())) => {}
                Some(Err(TryLockError::WouldBlock)) => return false,
                // Locks unsupported here: go without.
                _ => return true,
            }
            let taken = if st.held {
                Some(true)
            } else {
                match st.file.as_ref().map(File::try_lock_shared) {
                    Some(Ok(())) => {
                        st.held = true;
                        Some(true)
                    }
                    Some(Err(TryLockError::WouldBlock)) => Some(false),
                    _ => None,
                }
            };
            // Out of the turnstile, whatever came of the gate.
            if let Some(t) = st.turn.as_ref() {
                let _ = t.unlock();
            }
            match taken {
                Some(true) => {
                    st.holders += 1;
                    joined = true;
                    true
                }
                Some(false) => false,
                // Locks unsupported here: go without.
                None => true,
            }
        })
        .await;
        if !joined {
            // Went ahead without the file lock: counted all the same, so that the last one out
            // releases whatever another holder took meanwhile.
            lock(&f.state).holders += 1;
        }
    }
    CommandGuard {
        gate: gate.clone(),
        _local: local,
    }
}

/// Holds the gate exclusively while a control client attaches.
pub async fn attach(gate: &Arc<Gate>) -> AttachGuard {
    let local = gate.local.clone().write_owned().await;
    let mut held = false;
    if let Some(f) = &gate.file {
        let mut turn = false;
        retry(f, || {
            let mut st = lock(&f.state);
            if !f.open(&mut st) {
                return true;
            }
            // First the turnstile (new commands wait), then the gate (the running ones end).
            if !turn {
                match st.turn.as_ref().map(File::try_lock) {
                    Some(Ok(())) => turn = true,
                    Some(Err(TryLockError::WouldBlock)) => return false,
                    _ => return true,
                }
            }
            match st.file.as_ref().map(File::try_lock) {
                Some(Ok(())) => {
                    held = true;
                    true
                }
                Some(Err(TryLockError::WouldBlock)) => false,
                _ => true,
            }
        })
        .await;
        if turn && let Some(t) = lock(&f.state).turn.as_ref() {
            let _ = t.unlock();
        }
    }
    AttachGuard {
        gate: gate.clone(),
        _local: local,
        held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &std::path::Path) -> TmuxOptions {
        TmuxOptions::with_socket_path(dir.join("s"))
    }

    /// A second process's view of the same lock file: a separate open file description.
    fn other_process(dir: &std::path::Path) -> File {
        OpenOptions::new()
            .write(true)
            .open(dir.join("s.termloom-gate"))
            .expect("the gate file exists beside the socket")
    }

    #[tokio::test]
    async fn commands_hold_the_file_shared_and_the_last_one_out_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(&opts(dir.path()));
        let a = command(&g).await;
        let b = command(&g).await;
        let other = other_process(dir.path());
        // Another process may run commands, but not attach.
        other.try_lock_shared().unwrap();
        other.unlock().unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(a);
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(b);
        other.try_lock().expect("free once no command is in flight");
        other.unlock().unwrap();
    }

    #[tokio::test]
    async fn an_attach_waits_for_another_process_and_excludes_its_commands() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(&opts(dir.path()));
        drop(command(&g).await);
        let other = other_process(dir.path());
        other.lock_shared().unwrap();
        let attaching = tokio::spawn({
            let g = g.clone();
            async move {
                let guard = attach(&g).await;
                let other = other_process(g.file.as_ref().unwrap().path.parent().unwrap());
                let excluded = matches!(other.try_lock_shared(), Err(TryLockError::WouldBlock));
                drop(guard);
                excluded
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            !attaching.is_finished(),
            "attached while another process ran a command"
        );
        other.unlock().unwrap();
        assert!(
            attaching.await.unwrap(),
            "another process's command ran during the attach"
        );
    }

    #[tokio::test]
    async fn a_lock_held_for_good_costs_one_wait_not_one_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(&opts(dir.path()));
        drop(command(&g).await);
        let other = other_process(dir.path());
        other.lock().unwrap();
        let started = Instant::now();
        drop(attach(&g).await);
        assert!(started.elapsed() >= FILE_WAIT, "the first waits");
        let started = Instant::now();
        for _ in 0..5 {
            drop(command(&g).await);
        }
        assert!(
            started.elapsed() < FILE_WAIT,
            "the next go ahead: {:?}",
            started.elapsed()
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_fifo_where_the_gate_file_goes_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("s.termloom-gate"))
            .status()
            .unwrap();
        assert!(made.success());
        let g = gate(&opts(dir.path()));
        // Opening a FIFO for writing blocks until a reader comes: these would never return.
        tokio::time::timeout(Duration::from_secs(5), async {
            drop(command(&g).await);
            drop(attach(&g).await);
        })
        .await
        .expect("no hang on a FIFO");
    }

    #[tokio::test]
    async fn a_gate_without_its_file_still_orders_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(&opts(&dir.path().join("missing")));
        let c = command(&g).await;
        let attaching = tokio::spawn({
            let g = g.clone();
            async move { drop(attach(&g).await) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!attaching.is_finished());
        drop(c);
        attaching.await.unwrap();
    }
}
