//! One fake session: a real program (by default `bash --norc --noprofile`) on a real pty,
//! rendered by [`Term`], with iTerm2's per-session state (prompts, variables, profile
//! overrides) and the `tmux -CC` gateway detector.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::oneshot;

use super::lock;
use super::term::{AbsCoord, Term, TermEvent};
use crate::proto;

/// What to run in a new session.
#[derive(Clone, Debug)]
pub(crate) struct Spawn {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub rows: u16,
    pub cols: u16,
}

/// One shell-integration prompt (OSC 133 A … D).
#[derive(Clone, Debug)]
pub(crate) struct PromptRecord {
    pub id: String,
    pub prompt_start: AbsCoord,
    pub command_start: Option<AbsCoord>,
    pub output_start: Option<AbsCoord>,
    pub end: Option<AbsCoord>,
    pub command: Option<String>,
    pub exit_status: Option<i32>,
    pub working_directory: Option<String>,
}

fn coord(c: AbsCoord) -> proto::Coord {
    proto::Coord {
        x: Some(c.x),
        y: Some(c.y),
    }
}

fn range(start: AbsCoord, end: AbsCoord) -> proto::CoordRange {
    proto::CoordRange {
        start: Some(coord(start)),
        end: Some(coord(end)),
    }
}

impl PromptRecord {
    pub fn state(&self) -> proto::get_prompt_response::State {
        use proto::get_prompt_response::State;
        match (self.output_start, self.end) {
            (_, Some(_)) if self.output_start.is_some() => State::Finished,
            (Some(_), _) => State::Running,
            _ => State::Editing,
        }
    }

    /// The prompt as a GetPrompt reply; `cursor` closes ranges that are still open.
    pub fn to_proto(&self, cursor: AbsCoord) -> proto::GetPromptResponse {
        let command_start = self.command_start.unwrap_or(cursor);
        proto::GetPromptResponse {
            status: Some(proto::get_prompt_response::Status::Ok as i32),
            prompt_range: Some(range(self.prompt_start, command_start)),
            command_range: self
                .command_start
                .map(|s| range(s, self.output_start.unwrap_or(cursor))),
            output_range: self
                .output_start
                .map(|s| range(s, self.end.unwrap_or(cursor))),
            working_directory: self.working_directory.clone(),
            command: self.command.clone(),
            prompt_state: Some(self.state() as i32),
            exit_status: self
                .exit_status
                .filter(|_| self.end.is_some())
                .map(|s| s as u32),
            unique_prompt_id: Some(self.id.clone()),
        }
    }
}

/// Reply to a command sent to a tmux gateway: the block's lines, or the error block's lines.
pub(crate) type TmuxReply = Result<String, String>;

/// Parses a gateway's control-mode stream (`%begin` … `%end`/`%error`, `%exit`).
#[derive(Default)]
pub(crate) struct TmuxParse {
    pub gateway: bool,
    /// Bytes kept to find the start marker when it straddles two reads.
    tail: Vec<u8>,
    line: Vec<u8>,
    block: Option<(bool, Vec<String>)>,
    pub waiters: VecDeque<oneshot::Sender<TmuxReply>>,
}

/// `ESC P 1000 p`: what `tmux -CC` prints first; iTerm2 starts its integration on it.
const TMUX_START: &[u8] = b"\x1bP1000p";

/// Something the session saw that the server must act on.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    Prompt(Box<proto::PromptNotification>),
    UserVar {
        name: String,
        json: String,
    },
    TmuxStarted,
    TmuxEnded,
    /// `%session-changed $N NAME`: the client is attached to session `$N`.
    TmuxSessionChanged(String),
    /// `%window-add @N`: a window appeared in the attached session.
    TmuxWindowAdd(String),
    /// `%window-close @N` / `%unlinked-window-close @N`.
    TmuxWindowClose(String),
    /// `%layout-change @N LAYOUT …`.
    TmuxLayout(String, String),
    /// `%output %N DATA`, unescaped.
    TmuxOutput(String, Vec<u8>),
}

/// Undoes control mode's octal escapes (`\ooo`).
fn unescape_output(data: &str) -> Vec<u8> {
    let b = data.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl TmuxParse {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<SessionEvent>) {
        let mut rest: &[u8] = bytes;
        if !self.gateway {
            let mut hay = std::mem::take(&mut self.tail);
            hay.extend_from_slice(bytes);
            match find(&hay, TMUX_START) {
                Some(pos) => {
                    self.gateway = true;
                    self.line.clear();
                    self.block = None;
                    out.push(SessionEvent::TmuxStarted);
                    let after = pos + TMUX_START.len();
                    let consumed_from_bytes = after.saturating_sub(hay.len() - bytes.len());
                    rest = &bytes[consumed_from_bytes.min(bytes.len())..];
                }
                None => {
                    let keep = hay.len().min(TMUX_START.len() - 1);
                    self.tail = hay[hay.len() - keep..].to_vec();
                    return;
                }
            }
        }
        for &b in rest {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if line.ends_with('\r') {
                line.pop();
            }
            // tmux ends control mode with `%exit` and then `ESC \`.
            let line = line.trim_start_matches("\x1b\\").to_owned();
            if let Some(args) = line.strip_prefix("%begin ") {
                let flags = args.split(' ').nth(2).unwrap_or("0");
                self.block = Some((flags == "1", Vec::new()));
            } else if line.starts_with("%end ") || line.starts_with("%error ") {
                if let Some((ours, lines)) = self.block.take()
                    && ours
                    && let Some(tx) = self.waiters.pop_front()
                {
                    let text = lines.join("\n");
                    let _ = tx.send(if line.starts_with("%end ") {
                        Ok(text)
                    } else {
                        Err(text)
                    });
                }
            } else if let Some((_, lines)) = self.block.as_mut() {
                lines.push(line);
            } else if let Some(rest) = line.strip_prefix("%session-changed ") {
                if let Some(id) = rest.split(' ').next() {
                    out.push(SessionEvent::TmuxSessionChanged(id.to_owned()));
                }
            } else if let Some(w) = line.strip_prefix("%window-add ") {
                out.push(SessionEvent::TmuxWindowAdd(w.trim().to_owned()));
            } else if let Some(w) = line
                .strip_prefix("%window-close ")
                .or_else(|| line.strip_prefix("%unlinked-window-close "))
            {
                out.push(SessionEvent::TmuxWindowClose(w.trim().to_owned()));
            } else if let Some(rest) = line.strip_prefix("%layout-change ") {
                let mut f = rest.split(' ');
                if let (Some(w), Some(l)) = (f.next(), f.next()) {
                    out.push(SessionEvent::TmuxLayout(w.to_owned(), l.to_owned()));
                }
            } else if let Some(rest) = line.strip_prefix("%output ") {
                if let Some((pane, data)) = rest.split_once(' ') {
                    out.push(SessionEvent::TmuxOutput(
                        pane.to_owned(),
                        unescape_output(data),
                    ));
                }
            } else if line == "%exit" || line.starts_with("%exit ") {
                self.end();
                out.push(SessionEvent::TmuxEnded);
                return;
            }
        }
    }

    /// Fails pending commands and leaves gateway mode.
    pub fn end(&mut self) {
        self.gateway = false;
        self.block = None;
        self.line.clear();
        for tx in self.waiters.drain(..) {
            let _ = tx.send(Err("the tmux connection ended".into()));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Mutable per-session state, behind one lock.
pub(crate) struct SessionInner {
    pub term: Term,
    pub prompts: Vec<PromptRecord>,
    /// User variables (`user.*`), values as JSON text.
    pub vars: BTreeMap<String, String>,
    /// Profile overrides set through SetProfileProperty, values as JSON text.
    pub profile: BTreeMap<String, String>,
    pub title: Option<String>,
    pub cwd: Option<String>,
    pub tmux: TmuxParse,
}

/// A live session.
pub(crate) struct Session {
    pub id: String,
    /// For a session showing a tmux pane: (connection id, pane id `%N`).
    pub tmux_pane: Option<(String, String)>,
    pub tty: String,
    pub pid: Option<u32>,
    pub command: String,
    pub inner: Mutex<SessionInner>,
    writer: Mutex<Option<Box<dyn Write + Send>>>,
    master: Mutex<Option<Box<dyn MasterPty + Send>>>,
    child: Mutex<Option<Box<dyn Child + Send + Sync>>>,
    closed: AtomicBool,
}

impl Session {
    /// Starts `spec` on a new pty. Returns the session and the pty's output stream.
    pub fn spawn(id: String, spec: &Spawn) -> Result<(Arc<Self>, Box<dyn Read + Send>), String> {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: spec.rows,
                cols: spec.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| format!("openpty failed: {e}"))?;
        let Some((program, args)) = spec.argv.split_first() else {
            return Err("empty command".into());
        };
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &spec.cwd {
            cmd.cwd(dir);
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        // The child holds its own copy of the slave; ours must close so EOF arrives on exit.
        drop(pair.slave);
        let reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| format!("pty reader: {e}"))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| format!("pty writer: {e}"))?;
        let tty = pair
            .master
            .tty_name()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let session = Arc::new(Self {
            id,
            tmux_pane: None,
            tty,
            pid: child.process_id(),
            command: spec.argv.join(" "),
            inner: Mutex::new(SessionInner {
                term: Term::new(spec.rows, spec.cols),
                prompts: Vec::new(),
                vars: BTreeMap::new(),
                profile: BTreeMap::new(),
                title: None,
                cwd: spec.cwd.as_ref().map(|p| p.display().to_string()),
                tmux: TmuxParse::default(),
            }),
            writer: Mutex::new(Some(writer)),
            master: Mutex::new(Some(pair.master)),
            child: Mutex::new(Some(child)),
            closed: AtomicBool::new(false),
        });
        Ok((session, reader))
    }

    /// A session showing tmux pane `pane` of connection `connection`, as iTerm2 makes for
    /// `tmux -CC` windows: no program of its own; what is typed goes to the pane with
    /// `send-keys -H` over the gateway, and the pane's `%output` is rendered here.
    pub fn tmux_mirror(
        id: String,
        connection: &str,
        pane: &str,
        gateway: &Arc<Session>,
        rows: u16,
        cols: u16,
    ) -> Arc<Self> {
        let writer = PaneWriter {
            gateway: Arc::downgrade(gateway),
            pane: pane.to_owned(),
        };
        Arc::new(Self {
            id,
            tmux_pane: Some((connection.to_owned(), pane.to_owned())),
            tty: String::new(),
            pid: None,
            command: "tmux".into(),
            inner: Mutex::new(SessionInner {
                term: Term::new(rows, cols),
                prompts: Vec::new(),
                vars: BTreeMap::new(),
                profile: BTreeMap::new(),
                title: None,
                cwd: None,
                tmux: TmuxParse::default(),
            }),
            writer: Mutex::new(Some(Box::new(writer))),
            master: Mutex::new(None),
            child: Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    /// Writes to the pty (what the user would type). Blocking.
    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = lock(&self.writer);
        match w.as_mut() {
            Some(w) => {
                w.write_all(bytes)?;
                w.flush()
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "session closed",
            )),
        }
    }

    /// Resizes pty and emulator (no-op when unchanged).
    pub fn resize(&self, rows: u16, cols: u16) {
        let mut inner = lock(&self.inner);
        if inner.term.size() == (rows, cols) {
            return;
        }
        inner.term.resize(rows, cols);
        drop(inner);
        if let Some(m) = lock(&self.master).as_ref() {
            let _ = m.resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            });
        }
    }

    /// (rows, cols).
    pub fn size(&self) -> (u16, u16) {
        lock(&self.inner).term.size()
    }

    /// Renders output (from the pty or injected) and reports what the server must act on.
    pub fn feed(&self, bytes: &[u8]) -> Vec<SessionEvent> {
        let mut out = Vec::new();
        let mut inner = lock(&self.inner);
        let events = inner.term.process(bytes);
        let inner = &mut *inner;
        inner.tmux.feed(bytes, &mut out);
        for ev in events {
            match ev {
                TermEvent::Title(t) => inner.title = Some(t),
                TermEvent::CurrentDir(d) => inner.cwd = Some(d),
                TermEvent::UserVar { name, value } => {
                    let name = format!("user.{name}");
                    let json = serde_json::Value::from(value).to_string();
                    inner.vars.insert(name.clone(), json.clone());
                    out.push(SessionEvent::UserVar { name, json });
                }
                TermEvent::Mark {
                    kind,
                    args,
                    at,
                    command,
                } => self.mark(inner, kind, &args, at, command, &mut out),
            }
        }
        out
    }

    fn mark(
        &self,
        inner: &mut SessionInner,
        kind: char,
        args: &[String],
        at: AbsCoord,
        command: Option<String>,
        out: &mut Vec<SessionEvent>,
    ) {
        use proto::prompt_notification::Event;
        let cwd = inner.cwd.clone();
        let new_record = |at: AbsCoord| PromptRecord {
            id: uuid::Uuid::new_v4().to_string().to_uppercase(),
            prompt_start: at,
            command_start: None,
            output_start: None,
            end: None,
            command: None,
            exit_status: None,
            working_directory: cwd.clone(),
        };
        let notify = |id: &str, event: Event| {
            SessionEvent::Prompt(Box::new(proto::PromptNotification {
                session: Some(self.id.clone()),
                event: Some(event),
                unique_prompt_id: Some(id.to_owned()),
            }))
        };
        match kind {
            'A' => inner.prompts.push(new_record(at)),
            'B' => {
                let needs_new = inner
                    .prompts
                    .last()
                    .is_none_or(|p| p.command_start.is_some());
                if needs_new {
                    inner.prompts.push(new_record(at));
                }
                let cursor = inner.term.cursor();
                if let Some(p) = inner.prompts.last_mut() {
                    p.command_start = Some(at);
                    let body = proto::PromptNotificationPrompt {
                        placeholder: None,
                        prompt: Some(p.to_proto(cursor)),
                    };
                    out.push(notify(&p.id, Event::Prompt(body)));
                }
            }
            'C' => {
                if let Some(p) = inner.prompts.last_mut()
                    && p.output_start.is_none()
                {
                    p.output_start = Some(at);
                    p.command = command.clone();
                    out.push(notify(
                        &p.id,
                        Event::CommandStart(proto::PromptNotificationCommandStart { command }),
                    ));
                }
            }
            'D' => {
                let status = args.first().and_then(|s| s.trim().parse::<i32>().ok());
                if let Some(p) = inner.prompts.last_mut()
                    && p.output_start.is_some()
                    && p.end.is_none()
                {
                    p.end = Some(at);
                    p.exit_status = Some(status.unwrap_or(0));
                    out.push(notify(
                        &p.id,
                        Event::CommandEnd(proto::PromptNotificationCommandEnd {
                            status: p.exit_status,
                        }),
                    ));
                }
            }
            _ => {}
        }
    }

    /// Sends `command` to the tmux gateway running in this session and waits for its block.
    pub fn tmux_command(&self, command: &str) -> Result<oneshot::Receiver<TmuxReply>, String> {
        let (tx, rx) = oneshot::channel();
        let mut line = command.replace('\n', " ");
        line.push('\n');
        // The writer lock is held from queueing the waiter to writing the line, so replies
        // (FIFO) pair with their commands even when several callers race.
        let mut w = lock(&self.writer);
        {
            let mut inner = lock(&self.inner);
            if !inner.tmux.gateway {
                return Err("not a tmux gateway".into());
            }
            inner.tmux.waiters.push_back(tx);
        }
        match w.as_mut() {
            Some(w) => {
                w.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
                w.flush().map_err(|e| e.to_string())?;
            }
            None => return Err("session closed".into()),
        }
        Ok(rx)
    }

    /// Marks the session closed and hangs up: SIGHUP now; then, on a helper thread, a short
    /// grace period, SIGKILL if needed, and reaping. Idempotent; returns the helper thread.
    pub fn kill(&self) -> Option<std::thread::JoinHandle<()>> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return None;
        }
        lock(&self.inner).tmux.end();
        lock(&self.writer).take();
        lock(&self.master).take();
        let mut child = lock(&self.child).take()?;
        let _ = child.clone_killer().kill();
        let spawned = std::thread::Builder::new()
            .name("fake-iterm-reap".into())
            .spawn(move || {
                let _ = child.kill();
                let _ = child.wait();
            });
        match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a reaper thread");
                None
            }
        }
    }

    /// Called when the pty reported EOF: the program exited by itself. Reaps it.
    pub fn exited(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.inner).tmux.end();
        lock(&self.writer).take();
        lock(&self.master).take();
        if let Some(mut child) = lock(&self.child).take() {
            let _ = std::thread::Builder::new()
                .name("fake-iterm-reap".into())
                .spawn(move || {
                    let _ = child.wait();
                });
        }
    }
}

/// Types into a tmux pane through its gateway (`send-keys -H`).
struct PaneWriter {
    gateway: std::sync::Weak<Session>,
    pane: String,
}

impl Write for PaneWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(gw) = self.gateway.upgrade() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the tmux connection ended",
            ));
        };
        for chunk in buf.chunks(256) {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let cmd = format!("send-keys -t {} -H {}", self.pane, hex.join(" "));
            // The reply is not awaited: typing does not wait for tmux either.
            gw.tmux_command(&cmd)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_blocks_and_marker_across_reads() {
        let mut t = TmuxParse::default();
        let mut ev = Vec::new();
        t.feed(b"hello \x1bP10", &mut ev);
        assert!(!t.gateway);
        let (tx, mut rx) = oneshot::channel();
        t.feed(b"00p%begin 1 2 0\r\n%end 1 2 0\r\n", &mut ev);
        assert!(t.gateway);
        assert!(matches!(ev[0], SessionEvent::TmuxStarted));
        t.waiters.push_back(tx);
        t.feed(b"%begin 1 3 1\r\nline one\r\nline", &mut ev);
        t.feed(b" two\r\n%end 1 3 1\r\n", &mut ev);
        assert_eq!(rx.try_recv().unwrap(), Ok("line one\nline two".to_owned()));
        let (tx, mut rx) = oneshot::channel();
        t.waiters.push_back(tx);
        t.feed(b"%begin 1 4 1\r\nbad\r\n%error 1 4 1\r\n%exit\r\n", &mut ev);
        assert_eq!(rx.try_recv().unwrap(), Err("bad".to_owned()));
        assert!(!t.gateway);
        assert!(matches!(ev.last(), Some(SessionEvent::TmuxEnded)));
    }
}
