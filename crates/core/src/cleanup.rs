//! Work a backend must finish before the process ends: letting go of a connection in a way that
//! is safe for the other programs using the terminal (a tmux control client leaving under the
//! attach gate). Backends [`spawn`] it when a connection is dropped; a program calls [`settle`]
//! before its async runtime ends, which would otherwise cancel that work half-done.

use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

static PENDING: LazyLock<Mutex<Vec<JoinHandle<()>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Runs `work` on the current runtime, to be waited for by [`settle`]. Outside a runtime,
/// `false`: the caller does what it can at once.
pub fn spawn(work: impl Future<Output = ()> + Send + 'static) -> bool {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let handle = rt.spawn(work);
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    pending.retain(|h| !h.is_finished());
    pending.push(handle);
    true
}

/// Waits (at most `limit`) for the work [`spawn`]ed so far, and for what it spawns in turn.
pub async fn settle(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let batch: Vec<JoinHandle<()>> =
            std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return;
        }
        for h in batch {
            if tokio::time::timeout_at(deadline, h).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settle_waits_for_spawned_work() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
        }));
        settle(Duration::from_secs(5)).await;
        assert!(rx.await.is_ok(), "the work ran to its end");
    }

    #[test]
    fn outside_a_runtime_nothing_is_spawned() {
        assert!(!spawn(async {}));
    }
}
