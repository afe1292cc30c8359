//! [`Loom`]: one terminal plus the registry, the entry point the CLI and the MCP server use.
//!
//! It resolves targets against a fresh listing, keeps the registry in step with every listing, and
//! tells a dead session (known to the registry, pane gone) apart from an unknown one. With
//! [`Loom::with_logging`], every session it creates or opens gets a log (see [`crate::log`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::log::{LogConfig, SessionLogger};
use crate::model::{SessionInfo, SessionSpec};
use crate::registry::{Registry, RegistryEntry};
use crate::target::Target;
use crate::terminal::{Session, Terminal};

/// The right to change what a terminal holds ([`Loom::changing`]): this loom's turn, and the state
/// dir's change lock, which other processes using the same state dir take too.
pub struct Changing<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    _file: Option<std::fs::File>,
    _terminal: Option<std::fs::File>,
}

/// A terminal and the registry that remembers its sessions.
#[derive(Clone)]
pub struct Loom {
    terminal: Arc<dyn Terminal>,
    registry: Option<Arc<Registry>>,
    logger: Option<SessionLogger>,
    changing: Arc<tokio::sync::Mutex<()>>,
}

impl Loom {
    /// Wraps a terminal; `registry` is `None` to keep no file.
    pub fn new(terminal: Arc<dyn Terminal>, registry: Option<Registry>) -> Self {
        Loom {
            terminal,
            registry: registry.map(Arc::new),
            logger: None,
            changing: Arc::default(),
        }
    }

    /// Logs every session this loom creates or opens, as `cfg` says: [`Loom::session`] then returns
    /// a [`LoggedSession`](crate::LoggedSession) (sent text, keys, renames and closes are logged) and
    /// a task logs the session's output; [`Loom::create_session`] logs `create`. Sessions reached
    /// through [`Loom::terminal`] directly are not logged.
    pub fn with_logging(mut self, cfg: LogConfig) -> Self {
        self.logger = Some(SessionLogger::new(cfg));
        self
    }

    /// Like [`Loom::with_logging`], with a logger shared with other looms (one task per session
    /// across all of them).
    pub fn with_logger(mut self, logger: SessionLogger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The session logger, when logging is on.
    pub fn logger(&self) -> Option<&SessionLogger> {
        self.logger.as_ref()
    }

    /// A session handle opened through [`Loom::terminal`], logged when logging is on (what is sent,
    /// renames and closes go to its log, and a task logs its output); as it is otherwise.
    pub async fn logged(&self, session: Arc<dyn Session>) -> Arc<dyn Session> {
        match &self.logger {
            Some(logger) => logger.wrap(session).await,
            None => session,
        }
    }

    /// The terminal.
    pub fn terminal(&self) -> &Arc<dyn Terminal> {
        &self.terminal
    }

    /// The registry, when one is kept.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_deref()
    }

    /// Lists live sessions and reconciles the registry with them. A registry that cannot be written
    /// is reported as a warning; the listing still succeeds.
    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>> {
        let started = chrono::Utc::now();
        let live = self.terminal.list_sessions().await?;
        if let Some(reg) = &self.registry
            && let Err(e) = reg.reconcile_listing(&self.terminal.key(), &live, started)
        {
            tracing::warn!(error = %e, "registry not updated");
        }
        Ok(live)
    }

    /// Finds the live session a target names. A target that names a session the registry knows but
    /// whose pane is gone gives [`Error::SessionDead`].
    pub async fn resolve(&self, target: &Target) -> Result<SessionInfo> {
        let live = self.list_sessions().await?;
        match target.resolve(&live) {
            Ok(s) => Ok(s.clone()),
            Err(Error::SessionNotFound { target: t }) => {
                if let Some(entry) = self.dead_entry(target) {
                    return Err(Error::SessionDead {
                        id: entry.id.to_string(),
                        name: entry.name,
                    });
                }
                Err(Error::SessionNotFound { target: t })
            }
            Err(e) => Err(e),
        }
    }

    fn dead_entry(&self, target: &Target) -> Option<RegistryEntry> {
        let reg = self.registry.as_ref()?;
        let data = reg.load().ok()?;
        let key = self.terminal.key();
        let mine = || data.sessions.values().filter(|e| e.terminal == key);
        let found: Vec<&RegistryEntry> = match target {
            Target::Id(id) => mine().filter(|e| e.id == *id).collect(),
            Target::IdPrefix(p) => mine()
                .filter(|e| e.id.as_uuid().simple().to_string().starts_with(p.as_str()))
                .collect(),
            Target::Name(n) | Target::Bare(n) => {
                mine().filter(|e| e.name == *n && e.dead).collect()
            }
            _ => Vec::new(),
        };
        match found.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }

    /// Resolves a target and opens it.
    ///
    /// **Verification invariant:** the handle is opened with [`Terminal::open_listed`], without a
    /// second round trip to re-check the pane: the listing [`Loom::resolve`] made just now, in this
    /// call, found the session's id on the pane, and that *is* the check. Only an `info` from a
    /// listing made in the same call may skip it; one from the registry, a cache or an earlier call
    /// goes through [`Terminal::open`], or through [`Loom::hinted`], whose handles make the check
    /// in the same step as each operation.
    pub async fn session(&self, target: &Target) -> Result<Arc<dyn Session>> {
        let info = self.resolve(target).await?;
        let session = self.terminal.open_listed(&info).await?;
        match &self.logger {
            Some(logger) => Ok(logger.wrap(session).await),
            None => Ok(session),
        }
    }

    /// A handle to the session a full-id target or a name names, opened from the registry's hint
    /// without a listing ([`Terminal::open_hinted`]): every operation on it checks the pane (and,
    /// for a name, the name on it) in the same step as it acts. `None` for any other target, a
    /// session the registry does not know (or knows as dead) on this terminal, a name the registry
    /// gives no live session or several, a bare word that could also be an id prefix, or a
    /// backend without such handles. When an operation on it fails with an error for which
    /// [`Loom::hint_failed`] is true, nothing reached the pane: resolve the target with
    /// [`Loom::session`] (a fresh listing) and do it again.
    ///
    /// A name is unique on a terminal (creating or renaming a session checks it against a
    /// listing), so the registry's one live session of that name is the one a listing would find,
    /// unless a pane was given the same name behind termloom's back: a listing would then call the
    /// name ambiguous, while this handle acts on the session the registry knows, checked by id and
    /// name.
    pub async fn hinted(&self, target: &Target, managed_only: bool) -> Option<Arc<dyn Session>> {
        let key = self.terminal.key();
        let (entry, name) = match target {
            Target::Id(id) => (self.entry(*id).ok().flatten()?, None),
            Target::Name(n) => (self.registry.as_ref()?.live_named(&key, n).ok()??, Some(n)),
            Target::Bare(n) if !crate::target::is_hex_prefix(n) => {
                (self.registry.as_ref()?.live_named(&key, n).ok()??, Some(n))
            }
            _ => return None,
        };
        if entry.dead || entry.terminal != key || entry.native.is_empty() {
            return None;
        }
        let native = crate::ids::NativeId {
            backend: key.backend,
            id: entry.native,
        };
        let session = self
            .terminal
            .open_hinted(entry.id, &native, managed_only, name.map(String::as_str))
            .await
            .ok()
            .flatten()?;
        Some(self.logged(session).await)
    }

    /// Whether an operation on a [`Loom::hinted`] handle failed only because the hint was stale
    /// or the handle's check refused: the target should be resolved afresh and the operation
    /// done again (the fresh path gives the definitive answer and error).
    pub fn hint_failed(e: &Error) -> bool {
        matches!(
            e,
            Error::StaleNativeId { .. } | Error::SessionDead { .. } | Error::PermissionDenied(_)
        )
    }

    /// The right to change what the terminal holds through this loom and its clones: creating
    /// a session, window, workspace or layout, opening a project. Each looks up names (is there
    /// a workspace `x`? a session `y`?) and then creates what is missing; two at once would both
    /// find nothing and both create, so they take turns, with every process that uses the same
    /// state dir (the CLI, another server: [`Registry::lock_changes`]), and with every process
    /// on this machine that changes the same terminal from another state dir
    /// ([`Terminal::change_lock_path`]; taken second, so the two never wait on each other).
    pub async fn changing(&self) -> Changing<'_> {
        let local = self.changing.lock().await;
        let file = match &self.registry {
            Some(r) => r.lock_changes().await,
            None => None,
        };
        let terminal = match self.terminal.change_lock_path() {
            Some(p) => crate::registry::lock_file(&p).await,
            None => None,
        };
        Changing {
            _local: local,
            _file: file,
            _terminal: terminal,
        }
    }

    /// Creates a session and records it (and, when logging, logs `create` and starts logging its
    /// output). Holds [`Loom::changing`] while it creates.
    pub async fn create_session(&self, spec: &SessionSpec) -> Result<SessionInfo> {
        let changing = self.changing().await;
        self.create_session_held(spec, &changing).await
    }

    /// [`Loom::create_session`] for a caller that holds [`Loom::changing`] already (it looked
    /// something up first, which the create must not outdate).
    pub async fn create_session_held(
        &self,
        spec: &SessionSpec,
        _changing: &Changing<'_>,
    ) -> Result<SessionInfo> {
        let info = self.terminal.create_session(spec).await?;
        self.record(std::slice::from_ref(&info));
        if let Some(logger) = &self.logger {
            logger.created(&info, spec.command.as_deref());
            match self.terminal.open(&info).await {
                Ok(session) => logger.watch(&session).await,
                Err(e) => {
                    tracing::warn!(session = %info.id, error = %e, "session output not logged")
                }
            }
        }
        Ok(info)
    }

    /// Records sessions in the registry (warning on failure).
    pub fn record(&self, sessions: &[SessionInfo]) {
        if let Some(reg) = &self.registry
            && let Err(e) = reg.record(sessions)
        {
            tracing::warn!(error = %e, "registry not updated");
        }
    }

    /// Every session the registry remembers, dead or alive, for this terminal.
    pub fn persistent_sessions(&self) -> Result<Vec<RegistryEntry>> {
        let Some(reg) = &self.registry else {
            return Ok(Vec::new());
        };
        let key = self.terminal.key();
        Ok(reg
            .load()?
            .sessions
            .into_values()
            .filter(|e| e.terminal == key)
            .collect())
    }

    /// The registry's entry for a session.
    pub fn entry(&self, id: SessionId) -> Result<Option<RegistryEntry>> {
        match &self.registry {
            Some(reg) => reg.get(id),
            None => Ok(None),
        }
    }
}
