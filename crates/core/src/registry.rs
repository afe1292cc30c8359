//! The persistent session registry: `SessionId` → where the session lives, as a JSON file.
//!
//! The file sits in the state dir (`TERMLOOM_STATE_DIR`, else the XDG state dir: `~/.local/state/termloom`).
//! Every change takes an exclusive lock on `registry.lock`, re-reads the file, applies the change and
//! writes a temp file that is renamed over the old one, so a CLI and a server writing at the same moment
//! lose nothing and a reader never sees half a file. A file that does not parse is moved aside
//! (`registry.json.corrupt-<time>`) with a warning and rebuilt from the backends, which carry every
//! session's id on the pane itself.
//!
//! The registry is a record and a cache, never the authority: native ids in it are hints, and a
//! session is only ever addressed after its pane has been found carrying its id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How long a registry read or write waits for another process's lock before it fails.
#[cfg(not(test))]
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Takes an exclusive lock on `path` (created, owner-only, when missing), waiting for another
/// process's hold for 30 s at most. `None` when it cannot be had (a read-only place, a wait that
/// ran out): the caller goes ahead without it, after a log line.
pub async fn lock_file(path: &Path) -> Option<File> {
    // Anything but a regular file is not used: opening a FIFO someone put there would wait for
    // a reader for good (and the open is non-blocking besides, should one appear meanwhile).
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        tracing::warn!(path = %path.display(), "change lock not taken: not a regular file");
        return None;
    }
    let mut options = crate::private::options();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let f = options
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "no change lock"))
        .ok()?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match f.try_lock() {
            Ok(()) => return Some(f),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "change lock not taken");
                return None;
            }
        }
    }
}

#[cfg(test)]
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
use crate::ids::{SessionId, TerminalKey};
use crate::model::SessionInfo;

/// The environment variable that overrides the state dir.
pub const STATE_DIR_ENV: &str = "TERMLOOM_STATE_DIR";

/// Current file format version.
pub const FORMAT_VERSION: u32 = 1;

/// How stale `last_seen` may get before a listing rewrites it (avoids a write on every listing).
const LAST_SEEN_SLACK_SECS: i64 = 60;

/// What the registry knows of one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The persistent id.
    pub id: SessionId,
    /// The terminal (backend, host, socket) it lives in.
    pub terminal: TerminalKey,
    /// The last native id seen for it (a hint).
    pub native: String,
    /// The last name seen.
    pub name: String,
    /// The last workspace seen.
    pub workspace: String,
    /// When termloom first saw it.
    pub created: DateTime<Utc>,
    /// When termloom last saw it alive.
    pub last_seen: DateTime<Utc>,
    /// Its pane was gone at the last listing of its terminal.
    pub dead: bool,
    /// Created or tagged by termloom.
    pub managed: bool,
    /// The session's default read size, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<usize>,
}

/// The registry file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryData {
    /// File format version.
    pub version: u32,
    /// Sessions by id.
    pub sessions: BTreeMap<SessionId, RegistryEntry>,
}

/// What [`Registry::reconcile`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Sessions seen for the first time.
    pub added: Vec<SessionId>,
    /// Sessions that were recorded alive but are gone now.
    pub died: Vec<SessionId>,
    /// Sessions whose native id, name or workspace changed.
    pub moved: Vec<SessionId>,
}

/// What identifies one version of the file: inode, size, mtime and ctime. Every write renames a new
/// file into place, so a new version has a new inode even when its size and (coarse) mtime match.
type Stamp = (u64, u64, SystemTime, i64, i64);

/// The last version read or written by this process. A long-lived process (the MCP server) answers
/// reads from it after one `stat`, and skips the lock entirely when a listing changes nothing.
#[derive(Default)]
struct Cache {
    stamp: Option<Stamp>,
    data: RegistryData,
}

/// A handle on the registry file. Cheap to create; safe to share between threads and processes.
pub struct Registry {
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish()
    }
}

/// The state dir: `TERMLOOM_STATE_DIR`, else the XDG state dir (`~/.local/state/termloom` on Linux and macOS).
pub fn default_state_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    use etcetera::BaseStrategy;
    let base = etcetera::choose_base_strategy().map_err(|e| Error::Registry {
        path: PathBuf::from("~"),
        reason: format!("cannot find the home directory: {e}"),
    })?;
    Ok(base
        .state_dir()
        .unwrap_or_else(|| base.data_dir())
        .join("termloom"))
}

fn stamp(path: &Path) -> Option<Stamp> {
    let md = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (ino, ctime, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (md.ino(), md.ctime(), md.ctime_nsec())
    };
    #[cfg(not(unix))]
    let (ino, ctime, ctime_ns) = (0, 0, 0);
    Some((ino, md.len(), md.modified().ok()?, ctime, ctime_ns))
}

impl Registry {
    /// Opens (creating the directory if needed) the registry in `state_dir`.
    pub fn open(state_dir: impl Into<PathBuf>) -> Result<Registry> {
        let dir = state_dir.into();
        crate::private::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create state dir {}", dir.display()), e))?;
        Ok(Registry {
            path: dir.join("registry.json"),
            lock_path: dir.join("registry.lock"),
            dir,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state dir holding it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the state dir's lock for changes to what terminals hold (`changing.lock`): creates
    /// and renames look names up and then create, and two processes doing so at once would both
    /// find a name free. Waits for another process's change (30 s at most); `None` when the
    /// lock cannot be had (a read-only state dir, a wait that ran out): the change goes ahead
    /// with this process's own lock only.
    pub async fn lock_changes(&self) -> Option<File> {
        lock_file(&self.dir.join("changing.lock")).await
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn lock(&self, exclusive: bool) -> Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .or_else(|e| {
                // A read-only state dir still allows reading an existing registry without a lock file.
                if !exclusive && !self.lock_path.exists() {
                    File::open(&self.dir)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| {
                self.err(format!(
                    "cannot open lock file {}: {e}",
                    self.lock_path.display()
                ))
            })?;
        // Bounded: a process that holds the lock for good (stopped, or not termloom) gets an
        // error naming the file instead of a hang. termloom holds it for one read or write.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let tried = if exclusive {
                f.try_lock()
            } else {
                f.try_lock_shared()
            };
            match tried {
                Ok(()) => return Ok(f),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(self.err(format!(
                        "another process has held {} for over {} s; find it with `fuser {}` (a stopped termloom?) and end it",
                        self.lock_path.display(),
                        LOCK_WAIT.as_secs(),
                        self.lock_path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(self.err(format!("cannot lock: {e}")));
                }
            }
        }
    }

    /// Reads the file (the caller holds the lock). A corrupt file is moved aside when `repair` is set.
    fn read_locked(&self, repair: bool) -> Result<RegistryData> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let st = stamp(&self.path);
        if st.is_some() && st == cache.stamp {
            return Ok(cache.data.clone());
        }
        // Anything but a regular file (a FIFO would block the read for good) is refused.
        if let Ok(md) = fs::metadata(&self.path)
            && !md.is_file()
        {
            return Err(self.err("it is not a regular file; move it aside".to_string()));
        }
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                cache.stamp = None;
                cache.data = RegistryData::default();
                return Ok(RegistryData {
                    version: FORMAT_VERSION,
                    ..RegistryData::default()
                });
            }
            Err(e) => return Err(self.err(format!("cannot read: {e}"))),
        };
        match serde_json::from_slice::<RegistryData>(&bytes) {
            Ok(data) => {
                cache.stamp = st;
                cache.data = data.clone();
                Ok(data)
            }
            Err(e) => {
                let aside = self.dir.join(format!(
                    "registry.json.corrupt-{}",
                    Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
                ));
                if repair {
                    tracing::warn!(
                        path = %self.path.display(),
                        moved_to = %aside.display(),
                        error = %e,
                        "registry file is corrupt; moved aside and rebuilding from the live terminals"
                    );
                    fs::rename(&self.path, &aside).map_err(|e2| {
                        self.err(format!("corrupt ({e}) and cannot be moved aside: {e2}"))
                    })?;
                } else {
                    tracing::warn!(path = %self.path.display(), error = %e, "registry file is corrupt; treating it as empty");
                }
                cache.stamp = None;
                Ok(RegistryData {
                    version: FORMAT_VERSION,
                    ..RegistryData::default()
                })
            }
        }
    }

    fn write_locked(&self, data: &RegistryData) -> Result<()> {
        let tmp = self.dir.join(format!(
            ".registry.json.tmp-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let body =
            serde_json::to_vec_pretty(data).map_err(|e| self.err(format!("cannot encode: {e}")))?;
        let write = || -> std::io::Result<()> {
            let mut f = crate::private::create(&tmp)?;
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_data()?;
            fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(format!("cannot write: {e}")));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.stamp = stamp(&self.path);
        cache.data = data.clone();
        Ok(())
    }

    /// Runs `f` on the cached data when the file on disk is still the version this process last
    /// read or wrote (one `stat`, no lock: writers rename a complete file into place, so the
    /// version a stamp names never changes under a reader). `None` when the cache is stale.
    fn with_fresh_cache<R>(&self, f: impl FnOnce(&RegistryData) -> R) -> Option<R> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let st = stamp(&self.path)?;
        (cache.stamp == Some(st)).then(|| f(&cache.data))
    }

    /// Everything the registry holds.
    pub fn load(&self) -> Result<RegistryData> {
        if let Some(data) = self.with_fresh_cache(RegistryData::clone) {
            return Ok(data);
        }
        let _lock = self.lock(false)?;
        self.read_locked(false)
    }

    /// One entry.
    pub fn get(&self, id: SessionId) -> Result<Option<RegistryEntry>> {
        if let Some(e) = self.with_fresh_cache(|d| d.sessions.get(&id).cloned()) {
            return Ok(e);
        }
        Ok(self.load()?.sessions.remove(&id))
    }

    /// The one live session on `terminal` named `name`, when there is exactly one (`None` for none
    /// or several).
    pub fn live_named(&self, terminal: &TerminalKey, name: &str) -> Result<Option<RegistryEntry>> {
        let pick = |d: &RegistryData| {
            let mut found = d
                .sessions
                .values()
                .filter(|e| !e.dead && e.name == name && e.terminal == *terminal);
            match (found.next(), found.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => None,
            }
        };
        if let Some(e) = self.with_fresh_cache(pick) {
            return Ok(e);
        }
        Ok(pick(&self.load()?))
    }

    /// Applies `change` under the exclusive lock and writes the file if anything changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut RegistryData) -> R) -> Result<R> {
        let _lock = self.lock(true)?;
        let mut data = self.read_locked(true)?;
        let before = data.clone();
        let out = change(&mut data);
        data.version = FORMAT_VERSION;
        if data != before || stamp(&self.path).is_none() {
            self.write_locked(&data)?;
        }
        Ok(out)
    }

    /// Records live sessions (first sight, new names or places) without judging others.
    pub fn record(&self, live: &[SessionInfo]) -> Result<()> {
        let now = Utc::now();
        self.update(|d| {
            for s in live {
                upsert(d, s, now);
            }
        })
    }

    /// Sets a session's default read size.
    pub fn set_max_lines(&self, id: SessionId, max_lines: Option<usize>) -> Result<bool> {
        self.update(|d| match d.sessions.get_mut(&id) {
            Some(e) => {
                e.max_lines = max_lines;
                true
            }
            None => false,
        })
    }

    /// Brings the registry in line with a complete listing of one terminal: records every live
    /// session and marks dead every entry of that terminal whose session is gone. An entry whose
    /// native id now belongs to another session (the server restarted and reused it) is marked dead
    /// too; its id is never matched to the new pane.
    pub fn reconcile(
        &self,
        terminal: &TerminalKey,
        live: &[SessionInfo],
    ) -> Result<ReconcileReport> {
        self.reconcile_listing(terminal, live, Utc::now())
    }

    /// [`Registry::reconcile`] for a listing that started at `started`: only entries last seen
    /// before then can be marked dead, so a session another process created while the listing was
    /// under way is never marked dead by it.
    pub fn reconcile_listing(
        &self,
        terminal: &TerminalKey,
        live: &[SessionInfo],
        started: DateTime<Utc>,
    ) -> Result<ReconcileReport> {
        let now = Utc::now();
        let (live, shared) = distinct_panes(live);
        let live = live.as_slice();
        // The common case for a long-lived process: the file is the version it last saw and the
        // listing changes nothing in it. Then there is nothing to write, so no lock to take.
        if self
            .with_fresh_cache(|d| listing_changes_nothing(d, terminal, live, &shared, started, now))
            == Some(true)
        {
            return Ok(ReconcileReport::default());
        }
        self.update(|d| {
            let mut report = ReconcileReport::default();
            let live_ids: std::collections::HashSet<SessionId> =
                live.iter().map(|s| s.id).collect();
            for s in live {
                if shared.contains(&s.id) {
                    // Two panes carry this id: which one is the session is not for termloom to
                    // guess. The entry keeps no pane, so nothing is sent through its hint.
                    if let Some(e) = d.sessions.get_mut(&s.id)
                        && !e.native.is_empty()
                    {
                        e.native.clear();
                        report.moved.push(s.id);
                    }
                    continue;
                }
                match upsert(d, s, now) {
                    Upsert::Added => report.added.push(s.id),
                    Upsert::Moved => report.moved.push(s.id),
                    Upsert::Same => {}
                }
            }
            for e in d.sessions.values_mut() {
                if e.terminal == *terminal
                    && !e.dead
                    && !live_ids.contains(&e.id)
                    && e.last_seen < started
                {
                    e.dead = true;
                    report.died.push(e.id);
                }
            }
            report
        })
    }
}

/// A listing with each pane once (a window linked into two workspaces lists its panes twice: the
/// first row is kept), and the ids that more than one pane carries.
fn distinct_panes(live: &[SessionInfo]) -> (Vec<SessionInfo>, HashSet<SessionId>) {
    let mut seen: HashSet<(SessionId, &str)> = HashSet::new();
    let mut first_pane: HashMap<SessionId, &str> = HashMap::new();
    let mut shared = HashSet::new();
    let mut out = Vec::with_capacity(live.len());
    for s in live {
        if !seen.insert((s.id, s.native.id.as_str())) {
            continue;
        }
        if *first_pane.entry(s.id).or_insert(s.native.id.as_str()) != s.native.id.as_str() {
            shared.insert(s.id);
        }
        out.push(s.clone());
    }
    (out, shared)
}

/// Whether [`Registry::reconcile_listing`] would leave `d` exactly as it is: every live session is
/// recorded, alive, in the same place, recently seen (an id on two panes: recorded with no pane);
/// no entry of this terminal would die.
fn listing_changes_nothing(
    d: &RegistryData,
    terminal: &TerminalKey,
    live: &[SessionInfo],
    shared: &HashSet<SessionId>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let all_same = d.version == FORMAT_VERSION
        && live.iter().all(|s| {
            if shared.contains(&s.id) {
                return d.sessions.get(&s.id).is_none_or(|e| e.native.is_empty());
            }
            d.sessions.get(&s.id).is_some_and(|e| {
                !e.dead
                    && e.managed == s.managed
                    && e.native == s.native.id
                    && e.name == s.name
                    && e.workspace == s.workspace
                    && e.terminal == s.terminal
                    && (now - e.last_seen).num_seconds() <= LAST_SEEN_SLACK_SECS
            })
        });
    all_same
        && !d.sessions.values().any(|e| {
            e.terminal == *terminal
                && !e.dead
                && e.last_seen < started
                && !live.iter().any(|s| s.id == e.id)
        })
}

enum Upsert {
    Added,
    Moved,
    Same,
}

fn upsert(d: &mut RegistryData, s: &SessionInfo, now: DateTime<Utc>) -> Upsert {
    match d.sessions.get_mut(&s.id) {
        None => {
            d.sessions.insert(
                s.id,
                RegistryEntry {
                    id: s.id,
                    terminal: s.terminal.clone(),
                    native: s.native.id.clone(),
                    name: s.name.clone(),
                    workspace: s.workspace.clone(),
                    created: now,
                    last_seen: now,
                    dead: false,
                    managed: s.managed,
                    max_lines: None,
                },
            );
            Upsert::Added
        }
        Some(e) => {
            let moved = e.native != s.native.id
                || e.name != s.name
                || e.workspace != s.workspace
                || e.terminal != s.terminal;
            if moved {
                e.native = s.native.id.clone();
                e.name = s.name.clone();
                e.workspace = s.workspace.clone();
                e.terminal = s.terminal.clone();
            }
            if e.dead
                || e.managed != s.managed
                || moved
                || (now - e.last_seen).num_seconds() > LAST_SEEN_SLACK_SECS
            {
                e.last_seen = now;
            }
            e.dead = false;
            e.managed = s.managed;
            if moved { Upsert::Moved } else { Upsert::Same }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_path_that_is_no_regular_file_is_passed_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("l.fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), lock_file(&fifo))
            .await
            .expect("no wait for a FIFO's reader");
        assert!(got.is_none());
        let plain = dir.path().join("l");
        assert!(lock_file(&plain).await.is_some());
    }
    use crate::model::test_session;

    #[test]
    fn a_lock_held_elsewhere_for_good_is_an_error_naming_it_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let s = test_session("a", "w", 0, 0);
        reg.record(std::slice::from_ref(&s)).unwrap();
        // Another process's hold: a separate open file description.
        let other = File::create(dir.path().join("registry.lock")).unwrap();
        other.lock().unwrap();
        let started = std::time::Instant::now();
        let err = Registry::open(dir.path()).unwrap().get(s.id).unwrap_err();
        assert!(
            started.elapsed() < LOCK_WAIT * 10,
            "{:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("registry.lock"), "{err}");
        other.unlock().unwrap();
        assert_eq!(
            reg.get(s.id).unwrap().unwrap().name,
            "a",
            "nothing was lost"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_registry_that_is_not_a_regular_file_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("registry.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = Registry::open(dir.path()).unwrap().load().unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn records_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let s = test_session("a", "w", 0, 0);
        reg.record(std::slice::from_ref(&s)).unwrap();
        let again = Registry::open(dir.path()).unwrap();
        let e = again.get(s.id).unwrap().unwrap();
        assert_eq!(e.name, "a");
        assert!(!e.dead);
    }

    #[test]
    fn reconcile_marks_missing_sessions_dead_and_revives_them() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let a = test_session("a", "w", 0, 0);
        let b = test_session("b", "w", 0, 1);
        reg.reconcile(&a.terminal, &[a.clone(), b.clone()]).unwrap();
        let r = reg
            .reconcile(&a.terminal, std::slice::from_ref(&a))
            .unwrap();
        assert_eq!(r.died, vec![b.id]);
        assert!(reg.get(b.id).unwrap().unwrap().dead);
        reg.reconcile(&a.terminal, &[a.clone(), b.clone()]).unwrap();
        assert!(!reg.get(b.id).unwrap().unwrap().dead);
    }

    #[test]
    fn reused_native_id_kills_the_old_entry() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let old = test_session("old", "w", 0, 0);
        reg.reconcile(&old.terminal, std::slice::from_ref(&old))
            .unwrap();
        let mut new = test_session("new", "w", 0, 0);
        new.native = old.native.clone();
        reg.reconcile(&new.terminal, std::slice::from_ref(&new))
            .unwrap();
        let data = reg.load().unwrap();
        assert!(data.sessions[&old.id].dead);
        assert!(!data.sessions[&new.id].dead);
    }

    #[test]
    fn a_listing_never_kills_a_session_recorded_after_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let a = test_session("a", "w", 0, 0);
        let started = Utc::now();
        // Another process records `b` while this listing (which saw only `a`) is under way.
        let b = test_session("b", "w", 0, 1);
        reg.record(std::slice::from_ref(&b)).unwrap();
        let r = reg
            .reconcile_listing(&a.terminal, std::slice::from_ref(&a), started)
            .unwrap();
        assert!(r.died.is_empty());
        assert!(!reg.get(b.id).unwrap().unwrap().dead);
        // A later listing that still lacks it does mark it dead.
        reg.reconcile(&a.terminal, std::slice::from_ref(&a))
            .unwrap();
        assert!(reg.get(b.id).unwrap().unwrap().dead);
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("registry.json"), b"{not json").unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        assert!(reg.load().unwrap().sessions.is_empty());
        let s = test_session("a", "w", 0, 0);
        reg.record(std::slice::from_ref(&s)).unwrap();
        assert!(reg.get(s.id).unwrap().is_some());
        let aside = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("registry.json.corrupt-")
            });
        assert!(aside, "the corrupt file is kept for inspection");
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let reg = Registry::open(&path).unwrap();
                    for i in 0..25 {
                        reg.record(&[test_session(&format!("t{t}-{i}"), "w", t, i)])
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            Registry::open(&path)
                .unwrap()
                .load()
                .unwrap()
                .sessions
                .len(),
            100
        );
    }

    #[test]
    fn cached_reads_see_another_writers_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = Registry::open(dir.path()).unwrap();
        let b = Registry::open(dir.path()).unwrap();
        let s = test_session("a", "w", 0, 0);
        a.reconcile(&s.terminal, std::slice::from_ref(&s)).unwrap();
        assert_eq!(a.get(s.id).unwrap().unwrap().max_lines, None);
        // Same size, same (coarse) mtime tick: only the new inode tells the versions apart.
        b.set_max_lines(s.id, Some(7)).unwrap();
        assert_eq!(a.get(s.id).unwrap().unwrap().max_lines, Some(7));
        b.set_max_lines(s.id, Some(8)).unwrap();
        assert_eq!(a.load().unwrap().sessions[&s.id].max_lines, Some(8));
        // A listing that lacks the session still marks it dead through the cached path.
        a.reconcile(&s.terminal, &[]).unwrap();
        assert!(b.get(s.id).unwrap().unwrap().dead);
    }

    #[test]
    fn listing_without_changes_does_not_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let s = test_session("a", "w", 0, 0);
        reg.reconcile(&s.terminal, std::slice::from_ref(&s))
            .unwrap();
        let before = stamp(reg.path());
        reg.reconcile(&s.terminal, std::slice::from_ref(&s))
            .unwrap();
        assert_eq!(before, stamp(reg.path()));
    }
}
