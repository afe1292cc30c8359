//! Session logs and snapshots: an append-only record of everything termloom did to a session and
//! everything it printed, plus a small file that always holds its latest output lines.
//!
//! # Files
//!
//! Per session, in [`LogConfig::dir`] (by default `<state dir>/logs`):
//!
//! - `<uuid>.log`: the current log. When the next record would take it past
//!   [`LogConfig::max_file_bytes`] it is rotated: `<uuid>.log` becomes `<uuid>.log.1`, `.log.1`
//!   becomes `.log.2`, … and at most [`LogConfig::keep_files`] old files are kept. Read the files
//!   oldest first (`.log.N` … `.log.1`, then `.log`) for the whole story ([`LogConfig::log_files`]).
//! - `<uuid>.snapshot.txt`: the latest [`LogConfig::snapshot_lines`] output lines, one per line, as
//!   received (the filters do not apply to it). It is rewritten whole (temp file + rename, so a reader
//!   never sees half of it) at most every [`SNAPSHOT_INTERVAL`] while output flows, and when the
//!   stream ends.
//!
//! # Format
//!
//! UTF-8 text, one record per line, so `less`, `grep` and `tail -f` work and a program can split
//! lines and then fields:
//!
//! ```text
//! # termloom session log v1 6f1c…            a comment: each new file starts with one
//! TIME KIND PAYLOAD                           a record: TIME and KIND never hold a space
//! 2025-06-01T12:34:56.789Z create name="build" native="tmux:%3" workspace="dev" path="dev:0.0"
//! 2025-06-01T12:34:57.001Z sent "make -j4" enter
//! 2025-06-01T12:34:57.130Z out gcc -c main.c
//! 2025-06-01T12:34:58.000Z gap missed 12 output chunks
//! 2025-06-01T12:34:59.000Z keys C-c
//! 2025-06-01T12:35:00.000Z close
//! 2025-06-01T12:35:00.010Z closed pane %3 closed
//! ```
//!
//! - `TIME` is UTC, RFC 3339 with milliseconds, when termloom logged the record.
//! - `KIND` is one of [`RecordKind`]; `PAYLOAD` is everything after the second space (may be empty).
//! - `out`: one line of output as a person would see it (ANSI stripped, a `\r` inside a line keeps
//!   what was drawn after it), verbatim; it never holds a control character, so it stays one line.
//! - `sent`: the text as a quoted string ([`quote`]: `\\`, `\"`, `\n`, `\r`, `\t`, and `\u{HEX}` for
//!   other control characters), then the flags `enter` (Enter was pressed after it) and `run` (typed
//!   by `run`). [`unquote`] reverses it. A sent record is written and flushed *before* the text is
//!   sent, so it survives the pane being killed right after; a failed send adds an `error` record.
//! - `keys`: the keys in tmux's spelling, space-separated (a key whose name holds a space is quoted).
//! - `create name="…" native="…" workspace="…" path="…"` (then `command="…"` when the session was
//!   created to run one, `split_from=UUID` when split off another), `rename "NAME"`, `close`:
//!   lifecycle; `closed REASON`: the output stream ended.
//! - `gap missed N output chunks`: output the log does not have. N counts the stream's events the
//!   logger missed when it fell behind the backend's bounded channel; when the backend itself dropped
//!   output (tmux pauses a control client that falls 5 s behind) N is 1 and the amount is unknown.
//! - `done`: a `run` finished (`exit=0 strategy=marker duration_ms=12`, or `timed_out`).
//! - `error OPERATION: MESSAGE`: a logged call failed.
//!
//! Records are in the order termloom logged them, and `TIME` never goes backwards within a file:
//! output is logged within milliseconds of arriving, and a `sent` record first writes the output
//! logged before it.
//!
//! # Wiring
//!
//! [`Loom::with_logging`](crate::Loom::with_logging) turns logging on for every session the loom
//! creates or opens: [`Loom::session`](crate::Loom::session) returns a [`LoggedSession`] (a decorator
//! that logs sends, keys, runs, renames and closes, then delegates) and the [`SessionLogger`] starts
//! one task per session (at most; by [`SessionId`]) that reads [`Session::subscribe`] and logs the
//! output lines, split and cleaned exactly as [`text::lines`] does, until the stream ends. The logger
//! is backend-neutral; a backend that cannot stream output still gets sends and lifecycle logged.
//!
//! # Failures
//!
//! Logging never fails a call and never panics: a directory that cannot be created, a read-only
//! file or a full disk gives a `tracing` warning, records are dropped, and writing is tried again
//! after a few seconds.
//!
//! Several processes may log the same session: the log is opened in append mode and records are
//! written whole, but each process rotates by its own count of the file's size.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use regex::Regex;

use crate::error::Result;
use crate::ids::{NativeId, SessionId};
use crate::key::Key;
use crate::model::*;
use crate::terminal::{OutputStream, Session};
use crate::text;

/// The snapshot file is rewritten at most this often while output flows.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(250);

/// Buffered output records are written once they reach this size (and whenever output pauses).
const FLUSH_BYTES: usize = 256 * 1024;

/// At most this many ready output events are handled between two writes.
const BATCH_EVENTS: usize = 256;

/// After a write fails, records are dropped for this long before writing is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where session logs go and what they keep.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// The directory holding the logs and snapshots, created (with its parents) when missing.
    /// Once it has been there, a state dir removed while sessions are logged stays removed.
    pub dir: PathBuf,
    /// A log is rotated when the next record would take it past this size.
    pub max_file_bytes: u64,
    /// How many rotated files (`.log.1` … `.log.N`) are kept; 0 keeps none.
    pub keep_files: usize,
    /// Keep only output lines matching any of these (all lines when empty). Sent text, keys and
    /// lifecycle records are always kept.
    pub filters: Vec<Regex>,
    /// How many lines the snapshot file holds; 0 writes no snapshot.
    pub snapshot_lines: usize,
}

impl LogConfig {
    /// Default rotation size: 10 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
    /// Default number of rotated files kept.
    pub const DEFAULT_KEEP_FILES: usize = 5;
    /// Default snapshot size in lines.
    pub const DEFAULT_SNAPSHOT_LINES: usize = 200;

    /// Logs in `dir` with the default sizes and no filters.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            keep_files: Self::DEFAULT_KEEP_FILES,
            filters: Vec::new(),
            snapshot_lines: Self::DEFAULT_SNAPSHOT_LINES,
        }
    }

    /// Logs in `<state_dir>/logs`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self::new(state_dir.join("logs"))
    }

    /// Logs in the default state dir's `logs` (see [`default_state_dir`](crate::default_state_dir)).
    pub fn from_default_state_dir() -> Result<Self> {
        Ok(Self::in_state_dir(&crate::registry::default_state_dir()?))
    }

    /// The current log of a session: `<dir>/<uuid>.log`.
    pub fn log_path(&self, id: SessionId) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// The `n`th rotated log (`n` ≥ 1, 1 being the newest): `<dir>/<uuid>.log.<n>`.
    pub fn rotated_path(&self, id: SessionId, n: usize) -> PathBuf {
        self.dir.join(format!("{id}.log.{n}"))
    }

    /// The snapshot file: `<dir>/<uuid>.snapshot.txt`.
    pub fn snapshot_path(&self, id: SessionId) -> PathBuf {
        self.dir.join(format!("{id}.snapshot.txt"))
    }

    /// The session's log files that exist, oldest first.
    pub fn log_files(&self, id: SessionId) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = (1..=self.keep_files)
            .rev()
            .map(|n| self.rotated_path(id, n))
            .collect();
        files.push(self.log_path(id));
        files.retain(|p| p.exists());
        files
    }

    fn keeps(&self, line: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| f.is_match(line))
    }
}

/// What a log record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// The session was created (or split off another).
    Create,
    /// The session was renamed.
    Rename,
    /// termloom is closing the session.
    Close,
    /// The output stream ended; the payload says why.
    Closed,
    /// Text typed into the session.
    Sent,
    /// Keys pressed.
    Keys,
    /// One line of output.
    Out,
    /// Output the logger missed.
    Gap,
    /// A run finished.
    Done,
    /// A logged call failed.
    Error,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 10] = [
        RecordKind::Create,
        RecordKind::Rename,
        RecordKind::Close,
        RecordKind::Closed,
        RecordKind::Sent,
        RecordKind::Keys,
        RecordKind::Out,
        RecordKind::Gap,
        RecordKind::Done,
        RecordKind::Error,
    ];

    /// The word written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Create => "create",
            RecordKind::Rename => "rename",
            RecordKind::Close => "close",
            RecordKind::Closed => "closed",
            RecordKind::Sent => "sent",
            RecordKind::Keys => "keys",
            RecordKind::Out => "out",
            RecordKind::Gap => "gap",
            RecordKind::Done => "done",
            RecordKind::Error => "error",
        }
    }

    /// The kind a word names.
    pub fn parse(word: &str) -> Option<RecordKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The timestamp as written (UTC, RFC 3339, milliseconds).
    pub time: String,
    /// What the record says.
    pub kind: RecordKind,
    /// Everything after the kind (see the [module docs](self) per kind).
    pub payload: String,
}

impl LogRecord {
    /// Parses one line of a log; `None` for comments, blank lines and unknown kinds.
    pub fn parse(line: &str) -> Option<LogRecord> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (time, rest) = line.split_once(' ')?;
        let (kind, payload) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(LogRecord {
            time: time.to_string(),
            kind: RecordKind::parse(kind)?,
            payload: payload.to_string(),
        })
    }
}

/// Reads every record of a session's logs, oldest first.
pub fn read_log(cfg: &LogConfig, id: SessionId) -> std::io::Result<Vec<LogRecord>> {
    let mut out = Vec::new();
    for path in cfg.log_files(id) {
        let text = fs::read_to_string(&path)?;
        out.extend(text.lines().filter_map(LogRecord::parse));
    }
    Ok(out)
}

/// Quotes text so that it stays on one line: `"…"` with `\\`, `\"`, `\n`, `\r`, `\t`, and
/// `\u{HEX}` for every other control character and for the line and paragraph separators.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads a string [`quote`] wrote at the start of `s`; returns it and what follows (leading spaces
/// trimmed), or `None` when `s` does not start with a well-formed quoted string.
pub fn unquote(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, body[i + 1..].trim_start_matches(' '))),
            '\\' => match chars.next()?.1 {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    if chars.next()?.1 != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next()?.1 {
                            '}' => break,
                            h => hex.push(h),
                        }
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// Makes free text (a reason, an error message) one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn key_names(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| {
            let name = k.to_string();
            if name.is_empty() || name.chars().any(|c| c == ' ' || c == '"' || c.is_control()) {
                quote(&name)
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The time now in UTC as `2026-12-07T13:25:10.744Z` (RFC 3339, milliseconds): the stamp of
/// every log record and audit line. Written digit by digit, not through a format string: it runs
/// on every tool call, and chrono's formatter costs some ten times as much.
pub fn timestamp() -> String {
    use chrono::{Datelike, Timelike};
    let now = chrono::Utc::now();
    let mut s = String::with_capacity(24);
    let mut digits = |n: u32, width: u32| {
        for p in (0..width).rev() {
            s.push(char::from(b'0' + ((n / 10u32.pow(p)) % 10) as u8));
        }
    };
    digits(now.year().clamp(0, 9999) as u32, 4);
    digits(now.month(), 2);
    digits(now.day(), 2);
    digits(now.hour(), 2);
    digits(now.minute(), 2);
    // A leap second shows as :60, as chrono's own formatting does.
    digits(now.second() + now.nanosecond() / 1_000_000_000, 2);
    digits((now.nanosecond() % 1_000_000_000) / 1_000_000, 3);
    for (at, sep) in [
        (4, '-'),
        (7, '-'),
        (10, 'T'),
        (13, ':'),
        (16, ':'),
        (19, '.'),
    ] {
        s.insert(at, sep);
    }
    s.push('Z');
    s
}

/// Log directories this process has made or found.
static DIRS_SEEN: std::sync::LazyLock<Mutex<HashSet<PathBuf>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashSet::new()));

/// Creates the log directory when missing. The first time, with its parents; once it has been
/// there, only itself: a writer that outlives its state dir (removed by a person, or a test's
/// temp dir) does not bring the state dir back.
fn make_dir(dir: &Path) -> std::io::Result<()> {
    let seen = lock(&DIRS_SEEN).contains(dir);
    let made = if seen {
        crate::private::create_dir(dir)
    } else {
        crate::private::create_dir_all(dir)
    };
    match made {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    if !seen {
        lock(&DIRS_SEEN).insert(dir.to_path_buf());
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One session's open log.
struct LogFile {
    id: SessionId,
    file: Option<File>,
    /// Bytes in the current file (as far as this process knows).
    len: u64,
    /// Records in the current file, not counting its header.
    records: u64,
    /// Records not written yet.
    buf: Vec<u8>,
    /// After a failure, records are dropped until then.
    broken_until: Option<Instant>,
    /// Records dropped since the last warning.
    dropped: u64,
    /// A write failed part-way: the file may end in half a record.
    torn: bool,
}

impl LogFile {
    fn new(id: SessionId) -> Self {
        LogFile {
            id,
            file: None,
            len: 0,
            records: 0,
            buf: Vec::new(),
            broken_until: None,
            dropped: 0,
            torn: false,
        }
    }

    fn fail(&mut self, cfg: &LogConfig, what: &str, e: &std::io::Error) {
        if self.broken_until.is_none() {
            tracing::warn!(
                session = %self.id,
                dir = %cfg.dir.display(),
                error = %e,
                "session log: {what}; records are dropped, retrying in {}s",
                RETRY_AFTER.as_secs()
            );
        }
        self.broken_until = Some(Instant::now() + RETRY_AFTER);
        self.file = None;
        self.buf = Vec::new();
    }

    /// Whether writing is off after a failure (and it is not yet time to retry).
    fn broken(&mut self) -> bool {
        match self.broken_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.broken_until = None;
                false
            }
            None => false,
        }
    }

    fn ensure_open(&mut self, cfg: &LogConfig) -> bool {
        if self.file.is_some() {
            return true;
        }
        if let Err(e) = make_dir(&cfg.dir) {
            self.fail(cfg, "cannot create the log directory", &e);
            return false;
        }
        let path = cfg.log_path(self.id);
        match crate::private::options()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => {
                self.len = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.records = u64::from(self.len > 0);
                self.file = Some(f);
                if self.len == 0 {
                    let header = format!("# termloom session log v1 {}\n", self.id);
                    self.buf.splice(0..0, header.into_bytes());
                } else if self.torn {
                    // End the half record a failed write may have left (a blank line is skipped).
                    self.buf.insert(0, b'\n');
                }
                self.torn = false;
                if self.dropped > 0 {
                    tracing::info!(session = %self.id, dropped = self.dropped, "session log writable again");
                    self.dropped = 0;
                }
                true
            }
            Err(e) => {
                self.fail(cfg, "cannot open the log file", &e);
                false
            }
        }
    }

    /// Adds a record (written at the next flush, or now when the buffer is large).
    fn push(&mut self, cfg: &LogConfig, time: &str, kind: RecordKind, payload: &[u8]) {
        if self.broken() || !self.ensure_open(cfg) {
            self.dropped += 1;
            return;
        }
        let kind = kind.as_str();
        let size = (time.len() + kind.len() + payload.len() + 3) as u64;
        if self.records > 0 && self.len + self.buf.len() as u64 + size > cfg.max_file_bytes {
            self.flush(cfg);
            self.rotate(cfg);
            if self.broken() || !self.ensure_open(cfg) {
                self.dropped += 1;
                return;
            }
        }
        self.buf.extend_from_slice(time.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(kind.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(payload);
        self.buf.push(b'\n');
        self.records += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush(cfg);
        }
    }

    /// Writes buffered records.
    fn flush(&mut self, cfg: &LogConfig) {
        if self.buf.is_empty() {
            return;
        }
        let Some(f) = self.file.as_mut() else {
            self.buf.clear();
            return;
        };
        match f.write_all(&self.buf) {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.buf.clear();
                if self.buf.capacity() > 4 * FLUSH_BYTES {
                    self.buf.shrink_to(FLUSH_BYTES);
                }
            }
            Err(e) => {
                self.torn = true;
                self.fail(cfg, "cannot write the log file", &e);
            }
        }
    }

    /// Shifts `.log` → `.log.1` → … and drops the oldest.
    fn rotate(&mut self, cfg: &LogConfig) {
        self.file = None;
        self.len = 0;
        self.records = 0;
        let current = cfg.log_path(self.id);
        let result = if cfg.keep_files == 0 {
            fs::remove_file(&current)
        } else {
            let _ = fs::remove_file(cfg.rotated_path(self.id, cfg.keep_files));
            for n in (1..cfg.keep_files).rev() {
                let from = cfg.rotated_path(self.id, n);
                if from.exists() {
                    let _ = fs::rename(&from, cfg.rotated_path(self.id, n + 1));
                }
            }
            fs::rename(&current, cfg.rotated_path(self.id, 1))
        };
        if let Err(e) = result
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(session = %self.id, error = %e, "session log not rotated");
        }
    }

    /// Writes what is buffered and closes the file (it is opened again by the next record).
    fn close(&mut self, cfg: &LogConfig) {
        self.flush(cfg);
        self.file = None;
        self.buf = Vec::new();
    }
}

struct Inner {
    cfg: LogConfig,
    files: Mutex<HashMap<SessionId, Arc<Mutex<LogFile>>>>,
    watching: Mutex<HashSet<SessionId>>,
}

impl Inner {
    fn file(&self, id: SessionId) -> Arc<Mutex<LogFile>> {
        lock(&self.files)
            .entry(id)
            .or_insert_with(|| Arc::new(Mutex::new(LogFile::new(id))))
            .clone()
    }

    /// Writes one record and flushes it (with any output records buffered before it).
    fn record(&self, id: SessionId, kind: RecordKind, payload: &str) {
        let file = self.file(id);
        let mut f = lock(&file);
        f.push(&self.cfg, &timestamp(), kind, payload.as_bytes());
        f.flush(&self.cfg);
    }
}

/// Writes the logs of every session it is told about. Cheap to clone (clones share the files and
/// the watcher tasks).
#[derive(Clone)]
pub struct SessionLogger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLogger")
            .field("dir", &self.inner.cfg.dir)
            .finish()
    }
}

impl SessionLogger {
    /// A logger writing as `cfg` says. Nothing is created on disk until the first record.
    pub fn new(cfg: LogConfig) -> Self {
        SessionLogger {
            inner: Arc::new(Inner {
                cfg,
                files: Mutex::new(HashMap::new()),
                watching: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.inner.cfg
    }

    /// Writes one record to a session's log now (flushed before this returns). Failures are
    /// warnings.
    pub fn record(&self, id: SessionId, kind: RecordKind, payload: &str) {
        self.inner.record(id, kind, payload);
    }

    /// Records that a session was created, with the command it was created to run, if any.
    pub fn created(&self, info: &SessionInfo, command: Option<&str>) {
        let mut payload = describe(info);
        if let Some(cmd) = command {
            payload.push_str(" command=");
            payload.push_str(&quote(cmd));
        }
        self.inner.record(info.id, RecordKind::Create, &payload);
    }

    /// Starts logging a session's output, unless it is logged already: subscribes now (so nothing
    /// printed after this returns is missed) and leaves a task reading the stream until it ends.
    /// A backend that cannot stream output gives a debug message and no output records.
    pub async fn watch(&self, session: &Arc<dyn Session>) {
        let id = session.id();
        if !lock(&self.inner.watching).insert(id) {
            return;
        }
        match session.subscribe().await {
            Ok(stream) => {
                tokio::spawn(watch_output(self.inner.clone(), id, stream));
            }
            Err(e) => {
                lock(&self.inner.watching).remove(&id);
                if matches!(e, crate::Error::Unsupported { .. }) {
                    tracing::debug!(session = %id, error = %e, "session log without output");
                } else {
                    tracing::warn!(session = %id, error = %e, "session log: output not logged");
                }
            }
        }
    }

    /// Whether a task is logging this session's output.
    pub fn is_watching(&self, id: SessionId) -> bool {
        lock(&self.inner.watching).contains(&id)
    }

    /// Watches a session ([`SessionLogger::watch`]) and wraps it so that what is sent to it is
    /// logged ([`LoggedSession`]).
    pub async fn wrap(&self, session: Arc<dyn Session>) -> Arc<dyn Session> {
        self.watch(&session).await;
        Arc::new(LoggedSession::new(session, self.clone()))
    }
}

fn describe(info: &SessionInfo) -> String {
    format!(
        "name={} native={} workspace={} path={}",
        quote(&info.name),
        quote(&info.native.to_string()),
        quote(&info.workspace),
        quote(&info.path())
    )
}

/// The output side of one session's log: splits the stream into lines and keeps the snapshot.
struct OutputLog {
    id: SessionId,
    /// The unfinished last line.
    partial: Vec<u8>,
    snapshot: VecDeque<String>,
    dirty: bool,
    last_snapshot: Option<Instant>,
    snapshot_failed: bool,
}

impl OutputLog {
    fn new(id: SessionId) -> Self {
        OutputLog {
            id,
            partial: Vec::new(),
            snapshot: VecDeque::new(),
            dirty: false,
            last_snapshot: None,
            snapshot_failed: false,
        }
    }

    fn output(&mut self, f: &mut LogFile, cfg: &LogConfig, time: &str, mut bytes: &[u8]) {
        // Finish the line the last chunk left open.
        if !self.partial.is_empty() {
            let Some(pos) = bytes.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(bytes);
                self.cut_runaway(f, cfg, time);
                return;
            };
            let mut raw = std::mem::take(&mut self.partial);
            raw.extend_from_slice(&bytes[..pos]);
            self.line(f, cfg, time, &raw);
            bytes = &bytes[pos + 1..];
        }
        // The complete lines: in one go when they are plain ASCII (the usual flood), else each
        // through `text::clean_line`.
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let (complete, rest) = bytes.split_at(end);
        match plain_ascii(complete) {
            Some(text) => {
                let lines: Vec<&str> = text.split_terminator('\n').collect();
                let remembered = lines.len().saturating_sub(cfg.snapshot_lines);
                for (i, line) in lines.into_iter().enumerate() {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if cfg.keeps(line) {
                        f.push(cfg, time, RecordKind::Out, line.as_bytes());
                    }
                    if i >= remembered {
                        self.remember(cfg, line);
                    }
                }
            }
            None => {
                if let Some(body) = complete.strip_suffix(b"\n") {
                    for raw in body.split(|b| *b == b'\n') {
                        self.line(f, cfg, time, raw);
                    }
                }
            }
        }
        self.partial.extend_from_slice(rest);
        self.cut_runaway(f, cfg, time);
    }

    /// Logs a runaway unfinished line once it is too long, as [`text::lines`] cuts it.
    fn cut_runaway(&mut self, f: &mut LogFile, cfg: &LogConfig, time: &str) {
        if self.partial.len() > text::MAX_LINE_BYTES {
            let raw = text::cut_runaway(&mut self.partial);
            self.line(f, cfg, time, &raw);
        }
    }

    /// Logs the unfinished line as it is (before a gap, at the end).
    fn end_partial(&mut self, f: &mut LogFile, cfg: &LogConfig, time: &str) {
        if !self.partial.is_empty() {
            let raw = std::mem::take(&mut self.partial);
            self.line(f, cfg, time, &raw);
        }
    }

    fn line(&mut self, f: &mut LogFile, cfg: &LogConfig, time: &str, raw: &[u8]) {
        let text = line_text(raw);
        if cfg.keeps(&text) {
            f.push(cfg, time, RecordKind::Out, text.as_bytes());
        }
        self.remember(cfg, &text);
    }

    fn remember(&mut self, cfg: &LogConfig, text: &str) {
        if cfg.snapshot_lines == 0 {
            return;
        }
        let mut slot = if self.snapshot.len() >= cfg.snapshot_lines {
            self.snapshot.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        slot.clear();
        slot.push_str(text);
        self.snapshot.push_back(slot);
        self.dirty = true;
    }

    fn snapshot_due(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(match self.last_snapshot {
            Some(t) => t + SNAPSHOT_INTERVAL,
            None => Instant::now(),
        })
    }

    fn write_snapshot(&mut self, cfg: &LogConfig) {
        self.dirty = false;
        self.last_snapshot = Some(Instant::now());
        let path = cfg.snapshot_path(self.id);
        let tmp = cfg.dir.join(format!("{}.snapshot.txt.tmp", self.id));
        let mut text = String::with_capacity(self.snapshot.iter().map(|l| l.len() + 1).sum());
        for l in &self.snapshot {
            text.push_str(l);
            text.push('\n');
        }
        let result = make_dir(&cfg.dir)
            .and_then(|()| crate::private::write(&tmp, text.as_bytes()))
            .and_then(|()| fs::rename(&tmp, &path));
        match result {
            Ok(()) => self.snapshot_failed = false,
            Err(e) => {
                if !self.snapshot_failed {
                    tracing::warn!(session = %self.id, path = %path.display(), error = %e, "session snapshot not written");
                }
                self.snapshot_failed = true;
            }
        }
    }
}

/// Complete lines (`complete` ends with `\n` or is empty) as text when they need no cleaning: only
/// printable ASCII, each line ending in `\n` or `\r\n`. One regex scan (the regex crate is fast
/// even in debug builds, where a byte loop of ours would be the flood's bottleneck).
fn plain_ascii(complete: &[u8]) -> Option<&str> {
    static NEEDS_CLEANING: std::sync::LazyLock<Option<regex::bytes::Regex>> =
        std::sync::LazyLock::new(|| {
            regex::bytes::Regex::new(r"(?-u)[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\xff]|\r[^\n]").ok()
        });
    let re = NEEDS_CLEANING.as_ref()?;
    if re.is_match(complete) {
        return None;
    }
    std::str::from_utf8(complete).ok()
}

/// One raw line as text, exactly as [`text::clean_line`] makes it; plain ASCII skips the work.
fn line_text(raw: &[u8]) -> Cow<'_, str> {
    let body = raw.strip_suffix(b"\r").unwrap_or(raw);
    if body.iter().all(|b| (0x20..0x7f).contains(b))
        && let Ok(s) = std::str::from_utf8(body)
    {
        return Cow::Borrowed(s);
    }
    Cow::Owned(text::clean_line(raw))
}

/// The task that logs a session's output until its stream ends.
async fn watch_output(inner: Arc<Inner>, id: SessionId, mut stream: OutputStream) {
    let cfg = &inner.cfg;
    let file = inner.file(id);
    let mut out = OutputLog::new(id);
    let mut batch: Vec<Option<OutputEvent>> = Vec::with_capacity(BATCH_EVENTS);
    let mut ended = false;
    while !ended {
        let first = match stream.next().now_or_never() {
            Some(ev) => ev,
            None => {
                // Output paused: everything so far goes to the file before waiting.
                lock(&file).flush(cfg);
                match out.snapshot_due() {
                    Some(due) => match tokio::time::timeout_at(due.into(), stream.next()).await {
                        Ok(ev) => ev,
                        Err(_) => {
                            out.write_snapshot(cfg);
                            continue;
                        }
                    },
                    None => stream.next().await,
                }
            }
        };
        batch.push(first);
        while batch.len() < BATCH_EVENTS
            && !matches!(batch.last(), Some(None | Some(OutputEvent::Closed { .. })))
        {
            match stream.next().now_or_never() {
                Some(ev) => batch.push(ev),
                None => break,
            }
        }
        {
            let mut f = lock(&file);
            let time = timestamp();
            for ev in batch.drain(..) {
                match ev {
                    Some(OutputEvent::Output(bytes)) => out.output(&mut f, cfg, &time, &bytes),
                    Some(OutputEvent::Lagged(n)) => {
                        out.end_partial(&mut f, cfg, &time);
                        let msg = format!("missed {n} output chunks");
                        f.push(cfg, &time, RecordKind::Gap, msg.as_bytes());
                        out.remember(cfg, &format!("[… {msg} …]"));
                    }
                    Some(OutputEvent::Closed { reason }) => {
                        out.end_partial(&mut f, cfg, &time);
                        f.push(cfg, &time, RecordKind::Closed, one_line(&reason).as_bytes());
                        ended = true;
                    }
                    None => {
                        out.end_partial(&mut f, cfg, &time);
                        f.push(cfg, &time, RecordKind::Closed, b"output stream ended");
                        ended = true;
                    }
                }
                if ended {
                    break;
                }
            }
            if ended {
                f.close(cfg);
            }
        }
        if out.dirty && (ended || out.snapshot_due().is_some_and(|t| t <= Instant::now())) {
            out.write_snapshot(cfg);
        }
    }
    lock(&inner.watching).remove(&id);
}

/// A session whose sends, keys, renames and closes are logged before they are passed on; every
/// other call goes straight to the wrapped session.
pub struct LoggedSession {
    inner: Arc<dyn Session>,
    logger: SessionLogger,
}

impl std::fmt::Debug for LoggedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedSession")
            .field("id", &self.inner.id())
            .finish()
    }
}

impl LoggedSession {
    /// Wraps `inner`; output is logged only when the logger [watches](SessionLogger::watch) it.
    pub fn new(inner: Arc<dyn Session>, logger: SessionLogger) -> Self {
        LoggedSession { inner, logger }
    }

    /// The wrapped session.
    pub fn inner(&self) -> &Arc<dyn Session> {
        &self.inner
    }

    fn record(&self, kind: RecordKind, payload: &str) {
        self.logger.record(self.inner.id(), kind, payload);
    }

    fn logged<T>(&self, op: &str, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.record(
                RecordKind::Error,
                &format!("{op}: {}", one_line(&e.to_string())),
            );
        }
        r
    }

    fn done(&self, r: &RunResult) {
        let status = if r.timed_out {
            "timed_out".to_string()
        } else {
            match r.exit_code {
                Some(c) => format!("exit={c}"),
                None => "exit=unknown".to_string(),
            }
        };
        self.record(
            RecordKind::Done,
            &format!(
                "{status} strategy={} duration_ms={}",
                r.strategy, r.duration_ms
            ),
        );
    }
}

#[async_trait]
impl Session for LoggedSession {
    fn id(&self) -> SessionId {
        self.inner.id()
    }

    fn native(&self) -> &NativeId {
        self.inner.native()
    }

    async fn info(&self) -> Result<SessionInfo> {
        self.inner.info().await
    }

    async fn send_text(&self, text: &str, opts: SendOpts) -> Result<()> {
        let flags = if opts.enter { " enter" } else { "" };
        self.record(RecordKind::Sent, &format!("{}{flags}", quote(text)));
        let r = self.inner.send_text(text, opts).await;
        self.logged("send_text", r)
    }

    async fn send_keys(&self, keys: &[Key]) -> Result<()> {
        self.record(RecordKind::Keys, &key_names(keys));
        let r = self.inner.send_keys(keys).await;
        self.logged("send_keys", r)
    }

    async fn capture(&self, opts: &CaptureOpts) -> Result<Capture> {
        self.inner.capture(opts).await
    }

    async fn search(&self, opts: &SearchOpts) -> Result<SearchResult> {
        self.inner.search(opts).await
    }

    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo> {
        let r = self.inner.split(spec).await;
        if let Ok(info) = &r {
            self.logger.inner.record(
                info.id,
                RecordKind::Create,
                &format!("{} split_from={}", describe(info), self.inner.id()),
            );
        }
        self.logged("split", r)
    }

    async fn rename(&self, name: &str) -> Result<()> {
        self.record(RecordKind::Rename, &quote(name));
        let r = self.inner.rename(name).await;
        self.logged("rename", r)
    }

    async fn close(&self) -> Result<()> {
        self.record(RecordKind::Close, "");
        let r = self.inner.close().await;
        self.logged("close", r)
    }

    async fn focus(&self) -> Result<()> {
        self.inner.focus().await
    }

    async fn resize(&self, spec: &ResizeSpec) -> Result<()> {
        self.inner.resize(spec).await
    }

    async fn set_managed(&self, managed: bool) -> Result<()> {
        self.inner.set_managed(managed).await
    }

    async fn run(&self, opts: &RunOpts) -> Result<RunResult> {
        self.record(
            RecordKind::Sent,
            &format!("{} enter run", quote(&opts.command)),
        );
        let r = self.inner.run(opts).await;
        if let Ok(res) = &r {
            self.done(res);
        }
        self.logged("run", r)
    }

    async fn wait_run(&self, handle: &RunHandle, timeout: Duration) -> Result<RunResult> {
        let r = self.inner.wait_run(handle, timeout).await;
        if let Ok(res) = &r {
            self.done(res);
        }
        self.logged("wait_run", r)
    }

    async fn status(&self) -> Result<SessionStatus> {
        self.inner.status().await
    }

    async fn install_integration(&self) -> Result<()> {
        self.inner.install_integration().await
    }

    async fn subscribe(&self) -> Result<OutputStream> {
        self.inner.subscribe().await
    }

    async fn wait_for(&self, pattern: &Regex, timeout: Duration) -> Result<Option<String>> {
        self.inner.wait_for(pattern, timeout).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_with_milliseconds_as_chrono_writes_them() {
        let before = chrono::Utc::now();
        let t = super::timestamp();
        let after = chrono::Utc::now();
        let parsed = chrono::DateTime::parse_from_rfc3339(&t).expect("RFC 3339");
        let ms = |d: chrono::DateTime<chrono::Utc>| d.timestamp_millis();
        assert!(
            ms(before) <= parsed.timestamp_millis() && parsed.timestamp_millis() <= ms(after),
            "{t}"
        );
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(
            t,
            parsed
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }

    use super::*;
    use crate::ids::NativeId;
    use tokio::sync::mpsc;

    /// A session whose output is fed by the test and whose sends check the log first.
    struct FakeSession {
        id: SessionId,
        native: NativeId,
        output: Mutex<Option<mpsc::UnboundedReceiver<OutputEvent>>>,
        /// When set, every send asserts that this log already holds the sent record.
        cfg: Option<LogConfig>,
        sends: Mutex<Vec<String>>,
    }

    impl FakeSession {
        fn new(cfg: Option<LogConfig>) -> (Arc<FakeSession>, mpsc::UnboundedSender<OutputEvent>) {
            let (tx, rx) = mpsc::unbounded_channel();
            let s = FakeSession {
                id: SessionId::new(),
                native: NativeId::tmux("%1"),
                output: Mutex::new(Some(rx)),
                cfg,
                sends: Mutex::new(Vec::new()),
            };
            (Arc::new(s), tx)
        }
    }

    #[async_trait]
    impl Session for FakeSession {
        fn id(&self) -> SessionId {
            self.id
        }
        fn native(&self) -> &NativeId {
            &self.native
        }
        async fn info(&self) -> Result<SessionInfo> {
            Ok(crate::model::test_session("fake", "ws", 0, 1))
        }
        async fn send_text(&self, text: &str, _opts: SendOpts) -> Result<()> {
            if let Some(cfg) = &self.cfg {
                let log = fs::read_to_string(cfg.log_path(self.id)).unwrap();
                assert!(
                    log.contains(&quote(text)),
                    "not logged before sending: {log}"
                );
            }
            lock(&self.sends).push(text.to_string());
            Ok(())
        }
        async fn send_keys(&self, _keys: &[Key]) -> Result<()> {
            Ok(())
        }
        async fn capture(&self, _opts: &CaptureOpts) -> Result<Capture> {
            Ok(Capture::default())
        }
        async fn split(&self, _spec: &SplitSpec) -> Result<SessionInfo> {
            Ok(crate::model::test_session("child", "ws", 0, 2))
        }
        async fn rename(&self, _name: &str) -> Result<()> {
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Err(crate::Error::InvalidArgument("cannot close\na fake".into()))
        }
        async fn focus(&self) -> Result<()> {
            Ok(())
        }
        async fn subscribe(&self) -> Result<OutputStream> {
            let rx = lock(&self.output).take().expect("one subscriber");
            Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
                rx.recv().await.map(|ev| (ev, rx))
            })))
        }
    }

    fn out(s: &str) -> OutputEvent {
        OutputEvent::Output(s.as_bytes().to_vec())
    }

    async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kinds(records: &[LogRecord], kind: RecordKind) -> Vec<String> {
        records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.payload.clone())
            .collect()
    }

    #[test]
    fn quoting_keeps_a_record_on_one_line_and_round_trips() {
        let hostile = "a\"b\\c\nd\re\tf\u{1b}[31m\u{7}\u{2028}é✓ ;$HOME";
        let q = quote(hostile);
        assert!(
            !q.contains('\n') && !q.contains('\r') && !q.contains('\u{1b}'),
            "{q}"
        );
        assert_eq!(q.lines().count(), 1);
        assert_eq!(unquote(&q), Some((hostile.to_string(), "")));
        assert_eq!(
            unquote(&format!("{q} enter run")),
            Some((hostile.to_string(), "enter run"))
        );
        assert_eq!(unquote("\"unterminated"), None);
        assert_eq!(unquote("\"bad \\q\""), None);
        assert_eq!(unquote("plain"), None);
    }

    #[test]
    fn records_parse_and_comments_are_skipped() {
        assert_eq!(LogRecord::parse("# termloom session log v1 x"), None);
        assert_eq!(LogRecord::parse(""), None);
        assert_eq!(LogRecord::parse("2025-01-01T00:00:00.000Z bogus x"), None);
        let r = LogRecord::parse("2025-01-01T00:00:00.000Z out  two  spaces ").unwrap();
        assert_eq!(r.kind, RecordKind::Out);
        assert_eq!(r.payload, " two  spaces ");
        let r = LogRecord::parse("2025-01-01T00:00:00.000Z close").unwrap();
        assert_eq!((r.kind, r.payload.as_str()), (RecordKind::Close, ""));
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn plain_lines_take_the_fast_path_with_the_same_text() {
        let samples: [&[u8]; 9] = [
            b"",
            b"plain ascii ~!",
            b"with cr\r",
            b"   ",
            b"tab\there",
            b"\x1b[1mbold\x1b[0m",
            b"progress 10%\rprogress 100%\r",
            "unicode é✓".as_bytes(),
            b"bad \xff utf8",
        ];
        for raw in samples {
            assert_eq!(line_text(raw), text::clean_line(raw), "{raw:?}");
        }
    }

    #[tokio::test]
    async fn output_lines_are_those_text_lines_makes_whatever_the_chunking() {
        let mut stream = Vec::new();
        for i in 0..300 {
            match i % 6 {
                0 => stream.extend_from_slice(format!("plain line {i}\r\n").as_bytes()),
                1 => stream.extend_from_slice(format!("\x1b[32mgreen {i}\x1b[0m\r\n").as_bytes()),
                2 => stream.extend_from_slice(format!("progress 1%\rprogress {i}%\r\n").as_bytes()),
                3 => stream.extend_from_slice(format!("unicode é✓ {i}\n").as_bytes()),
                4 => stream.extend_from_slice(b"\r\n\n"),
                _ => stream.extend_from_slice(format!("tab\there {i} \x07bell\n").as_bytes()),
            }
        }
        // A runaway line of two-byte characters: cut without splitting one.
        let runaway = "é".repeat(40_000);
        stream.extend_from_slice(runaway.as_bytes());
        stream.extend_from_slice(b"\n");
        stream.extend_from_slice(b"unfinished");
        for size in [1, 2, 3, 7, 64, 1000, 100_000] {
            let events: Vec<OutputEvent> = stream
                .chunks(size)
                .map(|c| OutputEvent::Output(c.to_vec()))
                .chain([OutputEvent::Closed {
                    reason: "end".into(),
                }])
                .collect();
            let want: Vec<String> = text::lines(futures_util::stream::iter(events.clone()))
                .filter_map(|ev| async move {
                    match ev {
                        text::LineEvent::Line(l) => Some(l),
                        _ => None,
                    }
                })
                .collect()
                .await;
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig::new(dir.path());
            let id = SessionId::new();
            let mut f = LogFile::new(id);
            let mut out = OutputLog::new(id);
            for ev in &events {
                if let OutputEvent::Output(b) = ev {
                    out.output(&mut f, &cfg, "T", b);
                }
            }
            out.end_partial(&mut f, &cfg, "T");
            f.close(&cfg);
            let got = kinds(&read_log(&cfg, id).unwrap(), RecordKind::Out);
            assert_eq!(got, want, "chunks of {size}");
            // The runaway line is one line or two (cut when a chunk left it over 64 KiB).
            assert!([352, 353].contains(&want.len()), "chunks of {size}");
            assert!(
                !want.iter().any(|l| l.contains('\u{fffd}')),
                "chunks of {size}"
            );
            assert_eq!(
                want[350..want.len() - 1].concat(),
                runaway,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn logs_rotate_by_size_and_keep_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            max_file_bytes: 300,
            keep_files: 2,
            ..LogConfig::new(dir.path().join("logs"))
        };
        let logger = SessionLogger::new(cfg.clone());
        let id = SessionId::new();
        for i in 0..100 {
            logger.record(id, RecordKind::Sent, &quote(&format!("command number {i}")));
        }
        let files = cfg.log_files(id);
        assert_eq!(
            files,
            vec![
                cfg.rotated_path(id, 2),
                cfg.rotated_path(id, 1),
                cfg.log_path(id)
            ]
        );
        assert!(!cfg.rotated_path(id, 3).exists());
        for f in &files {
            let text = fs::read_to_string(f).unwrap();
            assert!(text.len() <= 300, "{} is {} bytes", f.display(), text.len());
            assert!(text.starts_with("# termloom session log v1 "), "{text}");
        }
        // What is kept is the newest records, in order, without holes.
        let sent: Vec<String> = kinds(&read_log(&cfg, id).unwrap(), RecordKind::Sent)
            .iter()
            .map(|p| unquote(p).unwrap().0)
            .collect();
        assert!(sent.len() > 3, "{sent:?}");
        let first: usize = sent[0].rsplit(' ').next().unwrap().parse().unwrap();
        let want: Vec<String> = (first..100)
            .map(|i| format!("command number {i}"))
            .collect();
        assert_eq!(sent, want);
    }

    #[test]
    fn keeping_no_rotated_files_starts_the_log_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            max_file_bytes: 200,
            keep_files: 0,
            ..LogConfig::new(dir.path())
        };
        let logger = SessionLogger::new(cfg.clone());
        let id = SessionId::new();
        for i in 0..20 {
            logger.record(id, RecordKind::Rename, &quote(&format!("name {i}")));
        }
        assert_eq!(cfg.log_files(id), vec![cfg.log_path(id)]);
        let records = read_log(&cfg, id).unwrap();
        assert_eq!(records.last().unwrap().payload, "\"name 19\"");
    }

    #[tokio::test]
    async fn output_is_filtered_into_the_log_and_the_snapshot_keeps_the_latest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            filters: vec![Regex::new("^keep").unwrap(), Regex::new("error").unwrap()],
            snapshot_lines: 3,
            ..LogConfig::new(dir.path().join("logs"))
        };
        let logger = SessionLogger::new(cfg.clone());
        let (fake, tx) = FakeSession::new(None);
        let id = fake.id;
        let session: Arc<dyn Session> = fake;
        logger.watch(&session).await;
        logger.watch(&session).await; // the second call is a no-op (one task per session)
        assert!(logger.is_watching(id));
        for ev in [
            out("keep 1\r\ndrop 1\r\nke"),
            out("ep 2 split across chunks\r\n"),
            out("\x1b[31man error in red\x1b[0m\r\n"),
            OutputEvent::Lagged(7),
            out("drop 2\r\nkeep 3\r\nlast line"),
            OutputEvent::Closed {
                reason: "pane %1 closed".into(),
            },
        ] {
            tx.send(ev).unwrap();
        }
        eventually("the watcher to end", || {
            (!logger.is_watching(id)).then_some(())
        })
        .await;
        let records = read_log(&cfg, id).unwrap();
        assert_eq!(
            kinds(&records, RecordKind::Out),
            [
                "keep 1",
                "keep 2 split across chunks",
                "an error in red",
                "keep 3"
            ]
        );
        assert_eq!(kinds(&records, RecordKind::Gap), ["missed 7 output chunks"]);
        assert_eq!(kinds(&records, RecordKind::Closed), ["pane %1 closed"]);
        assert_eq!(records.last().unwrap().kind, RecordKind::Closed);
        // The snapshot is unfiltered: the last three lines as received, the gap marked.
        let snap = fs::read_to_string(cfg.snapshot_path(id)).unwrap();
        assert_eq!(snap, "drop 2\nkeep 3\nlast line\n");
        assert!(!cfg.dir.join(format!("{id}.snapshot.txt.tmp")).exists());
    }

    #[tokio::test]
    async fn the_snapshot_follows_output_while_the_stream_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            snapshot_lines: 2,
            ..LogConfig::new(dir.path())
        };
        let logger = SessionLogger::new(cfg.clone());
        let (fake, tx) = FakeSession::new(None);
        let id = fake.id;
        logger.watch(&(fake as Arc<dyn Session>)).await;
        tx.send(out("one\ntwo\nthree\n")).unwrap();
        let path = cfg.snapshot_path(id);
        eventually("the first snapshot", || {
            (fs::read_to_string(&path).ok()? == "two\nthree\n").then_some(())
        })
        .await;
        // Within the interval, a later burst still reaches the file once the interval has passed.
        tx.send(out("four\n")).unwrap();
        tx.send(out("five\n")).unwrap();
        eventually("the second snapshot", || {
            (fs::read_to_string(&path).ok()? == "four\nfive\n").then_some(())
        })
        .await;
        assert!(logger.is_watching(id));
        drop(tx); // the stream ends without a reason
        eventually("the watcher to end", || {
            (!logger.is_watching(id)).then_some(())
        })
        .await;
        let records = read_log(&cfg, id).unwrap();
        assert_eq!(kinds(&records, RecordKind::Closed), ["output stream ended"]);
    }

    #[tokio::test]
    async fn sends_are_logged_before_they_are_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig::new(dir.path());
        let logger = SessionLogger::new(cfg.clone());
        let (fake, _tx) = FakeSession::new(Some(cfg.clone()));
        let id = fake.id;
        let session = logger.wrap(fake.clone()).await;
        session
            .send_text("echo \"hi\"\nsecond line", SendOpts { enter: true })
            .await
            .unwrap();
        session
            .send_keys(&["C-c".parse().unwrap(), "Enter".parse().unwrap()])
            .await
            .unwrap();
        session.rename("new name").await.unwrap();
        let child = session
            .split(&SplitSpec {
                direction: crate::layout::Direction::Horizontal,
                percent: None,
                name: None,
                before: false,
                cwd: None,
                command: None,
            })
            .await
            .unwrap();
        assert!(session.close().await.is_err());
        assert_eq!(*lock(&fake.sends), ["echo \"hi\"\nsecond line"]);
        let records = read_log(&cfg, id).unwrap();
        let sent = kinds(&records, RecordKind::Sent);
        assert_eq!(
            unquote(&sent[0]),
            Some(("echo \"hi\"\nsecond line".to_string(), "enter"))
        );
        assert_eq!(kinds(&records, RecordKind::Keys), ["C-c Enter"]);
        assert_eq!(kinds(&records, RecordKind::Rename), ["\"new name\""]);
        assert_eq!(kinds(&records, RecordKind::Close), [""]);
        assert_eq!(
            kinds(&records, RecordKind::Error),
            ["close: invalid argument: cannot close a fake"]
        );
        let child_log = kinds(&read_log(&cfg, child.id).unwrap(), RecordKind::Create);
        assert!(
            child_log[0].contains(&format!("split_from={id}")),
            "{child_log:?}"
        );
        let info = crate::model::test_session("made", "ws", 1, 0);
        logger.created(&info, Some("make\ttest"));
        let made = kinds(&read_log(&cfg, info.id).unwrap(), RecordKind::Create);
        assert_eq!(
            made,
            [r#"name="made" native="tmux:%100" workspace="ws" path="ws:1.0" command="make\ttest""#]
        );
    }

    /// Ends the fake session's output stream and waits until the logger's watcher is done.
    async fn close_and_wait(
        tx: &mpsc::UnboundedSender<OutputEvent>,
        logger: &SessionLogger,
        id: SessionId,
    ) {
        tx.send(OutputEvent::Closed {
            reason: "gone".into(),
        })
        .unwrap();
        eventually("the watcher to end", || {
            (!logger.is_watching(id)).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_state_dir_removed_while_logging_is_not_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        let cfg = LogConfig::in_state_dir(&state);
        let logger = SessionLogger::new(cfg.clone());
        let (fake, tx) = FakeSession::new(None);
        let id = fake.id;
        let _session = logger.wrap(fake).await;
        tx.send(out("before\n")).unwrap();
        eventually("the first snapshot", || {
            cfg.snapshot_path(id).exists().then_some(())
        })
        .await;
        fs::remove_dir_all(&state).unwrap();
        tx.send(out("after\n")).unwrap();
        close_and_wait(&tx, &logger, id).await;
        assert!(!state.exists(), "the removed state dir was created again");
    }

    #[tokio::test]
    async fn an_unwritable_directory_gives_warnings_not_failures() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, "x").unwrap();
        let cfg = LogConfig::new(not_a_dir.join("logs"));
        let logger = SessionLogger::new(cfg.clone());
        let (fake, tx) = FakeSession::new(None);
        let id = fake.id;
        let session = logger.wrap(fake).await;
        session
            .send_text("typed", SendOpts::default())
            .await
            .unwrap();
        session.rename("x").await.unwrap();
        tx.send(out("some output\n")).unwrap();
        close_and_wait(&tx, &logger, id).await;
        assert!(cfg.log_files(id).is_empty());
        assert!(!cfg.snapshot_path(id).exists());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_full_disk_gives_warnings_not_failures() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig::new(dir.path());
        let logger = SessionLogger::new(cfg.clone());
        let (fake, tx) = FakeSession::new(None);
        let id = fake.id;
        std::os::unix::fs::symlink("/dev/full", cfg.log_path(id)).unwrap();
        let session = logger.wrap(fake).await;
        session
            .send_text("typed", SendOpts::default())
            .await
            .unwrap();
        tx.send(out("some output\n")).unwrap();
        drop(tx);
        eventually("the watcher to end", || {
            (!logger.is_watching(id)).then_some(())
        })
        .await;
        // The snapshot is a separate file and still written.
        assert_eq!(
            fs::read_to_string(cfg.snapshot_path(id)).unwrap(),
            "some output\n"
        );
    }
}
