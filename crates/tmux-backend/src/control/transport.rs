//! The long-lived control-mode transport: one `tmux -C` client over pipes, commands written one
//! line each, replies matched first-in first-out.
//!
//! - Replies carry a server-wide command number, so they are matched by order, not by number; the
//!   attach block (flags 0) is skipped.
//! - A line `a ; b` gets one reply block per command, and a failing command drops the rest of the
//!   line: a list's reply is its commands' blocks, or fewer ending with the failing one.
//!   `if-shell -F` puts each command of the branch it runs after itself, with a block of its own:
//!   counted when both branches hold as many commands. A list whose count cannot be known is
//!   followed by a sentinel line (`display-message -p TOKEN`) and its reply is every block up to
//!   the sentinel's. Blocks of flag 0 (the attach, a user's hooks) are skipped.
//! - Arguments are quoted for tmux's command parser ([`crate::command::quote_for_control`]); an empty line is never
//!   sent (it would detach).
//! - When the client dies (server killed or restarted), every call in flight fails at once with
//!   [`TmuxError::ConnectionLost`], and the next call starts a new client.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{broadcast, oneshot};

use crate::client::{
    TmuxOptions, Transport, classify, describe, remote_failure, spawn_error, tmux_command,
};
use crate::control::gate;
use crate::control::parser::{ControlParser, Event};
use crate::error::TmuxError;
use termloom_tmux_syntax::quote_into;

/// How long connecting (spawning `tmux -C` and reading its attach block) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Capacity of the notification channel; a slow subscriber is told it lagged.
pub const EVENT_CAPACITY: usize = 4096;

type Blocks = Vec<(bool, Vec<Vec<u8>>)>;

/// A callback run on the reader task for every notification, in order.
pub type EventHook = Box<dyn Fn(&Event) + Send + Sync>;

enum Expect {
    /// This many blocks, one per command of the line; a failing command ends it (tmux drops the
    /// rest of the line).
    Count(usize),
    UntilSentinel(Vec<u8>),
}

struct Pending {
    expect: Expect,
    blocks: Blocks,
    tx: Option<oneshot::Sender<Result<Blocks, TmuxError>>>,
}

struct Shared {
    pending: Mutex<VecDeque<Pending>>,
    alive: AtomicBool,
    /// tmux detached the client (a bare `%exit`: its session was destroyed, say) while the
    /// server kept running.
    detached: AtomicBool,
    reason: Mutex<Option<String>>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Shared {
    fn fail_all(&self, reason: &str) {
        self.alive.store(false, Ordering::SeqCst);
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert_with(|| reason.to_string());
        }
        let drained: Vec<Pending> = match self.pending.lock() {
            Ok(mut q) => q.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for mut p in drained {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Err(TmuxError::ConnectionLost(reason.to_string())));
            }
        }
    }

    fn on_reply(&self, ok: bool, body: Vec<Vec<u8>>) {
        let Ok(mut q) = self.pending.lock() else {
            return;
        };
        let Some(front) = q.front_mut() else {
            tracing::debug!("control reply with nobody waiting");
            return;
        };
        let done = match &front.expect {
            Expect::Count(n) => {
                front.blocks.push((ok, body));
                !ok || front.blocks.len() >= *n
            }
            Expect::UntilSentinel(token) => {
                if ok && body.len() == 1 && body[0] == *token {
                    true
                } else {
                    front.blocks.push((ok, body));
                    false
                }
            }
        };
        if done
            && let Some(mut p) = q.pop_front()
            && let Some(tx) = p.tx.take()
        {
            let _ = tx.send(Ok(std::mem::take(&mut p.blocks)));
        }
    }
}

/// One live `tmux -C` client.
pub struct Connection {
    /// Shared with the leaving (see `Drop`): closing it makes tmux let the client go, which must
    /// not happen before the leaving holds the attach gate.
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    shared: Arc<Shared>,
    child: Mutex<Option<Child>>,
    sentinel: AtomicU64,
    timeout: Duration,
    /// The server's attach gate ([`gate`]): held shared by requests and by leaving.
    gate: Arc<gate::Gate>,
    /// Becomes true when the reader has seen the end of the client's output: the server has let
    /// the client go (it closes its copy of the pipe only then).
    ended: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    /// Starts `tmux -C attach-session` on the server `opts` names and waits for the attach block.
    /// `no_start` passes `-N` (tmux 3.2+) so that attaching never starts a server.
    pub async fn connect(opts: &TmuxOptions, no_start: bool) -> Result<Connection, TmuxError> {
        Self::connect_with(opts, no_start, None, None).await
    }

    /// Like [`Connection::connect`], attached to `session` (a `$N` id) and, when `hook` is given,
    /// calling it inline for every notification (output included) before anything else sees it.
    /// Without a session the client is a command client (`no-output`).
    pub async fn connect_with(
        opts: &TmuxOptions,
        no_start: bool,
        session: Option<&str>,
        hook: Option<EventHook>,
    ) -> Result<Connection, TmuxError> {
        // The socket of a remote server is on its host: only tmux there can tell.
        if !opts.is_remote() && !opts.socket_path().exists() {
            return Err(TmuxError::NoServer(opts.server_label()));
        }
        let mut words = opts.global_args();
        if no_start {
            words.push("-N".into());
        }
        words.extend(["-C".into(), "attach-session".into()]);
        if let Some(target) = session {
            words.extend(["-t".into(), target.to_string()]);
        }
        // Client flags are set by the attach itself on tmux 3.2+ (`no_start` implies it): a
        // command client wants no %output; an output client pauses a pane it falls 5 s behind on
        // instead of letting tmux buffer without bound. Setting `no-output` with refresh-client
        // after attaching races with the pane output already queued for the client: tmux 3.3a
        // then stops writing to it (about 1 attach in 30; the client is wedged, every reply lost).
        let flags_at_attach = no_start;
        match (session.is_some(), flags_at_attach) {
            (true, true) => words.extend(["-f".into(), "ignore-size,pause-after=5".into()]),
            (true, false) => words.extend(["-f".into(), "ignore-size".into()]),
            (false, true) => words.extend(["-f".into(), "no-output".into()]),
            (false, false) => {}
        }
        let mut cmd = tmux_command(opts, &words)?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // No command of this process runs and none of its clients leaves until tmux has the whole
        // identify of this one (see [`gate`]): the attach block comes after it.
        let gate = gate::gate(opts);
        let attaching = gate::attach(&gate).await;
        let mut child = cmd.spawn().map_err(|e| spawn_error(opts, e))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| TmuxError::ConnectionLost("no stdin".into()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| TmuxError::ConnectionLost("no stdout".into()))?;
        let mut stderr = child.stderr.take();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            pending: Mutex::new(VecDeque::new()),
            alive: AtomicBool::new(true),
            detached: AtomicBool::new(false),
            reason: Mutex::new(None),
            events,
        });
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        let reader_shared = shared.clone();
        // End of output without `%exit`: the server died, or over ssh, the connection did.
        let eof_reason = match &opts.host {
            Some(h) => format!("{h}: the ssh connection closed"),
            None => "tmux server exited".to_string(),
        };
        tokio::spawn(async move {
            let mut parser = ControlParser::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut ready = Some(ready_tx);
            let mut exit_reason: Option<String> = None;
            loop {
                let n = match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                parser.feed(&buf[..n]);
                while let Some(ev) = parser.next_event() {
                    match ev {
                        Event::Reply {
                            flags, ok, body, ..
                        } => {
                            if flags & 1 == 0 {
                                // The attach block: the client is ready, or tmux refused ("no sessions").
                                if let Some(tx) = ready.take() {
                                    let _ = tx.send(if ok {
                                        Ok(())
                                    } else {
                                        Err(join_body(&body).trim().to_string())
                                    });
                                }
                            } else {
                                reader_shared.on_reply(ok, body);
                            }
                        }
                        Event::Exit { reason } => {
                            if reason.is_none() {
                                reader_shared.detached.store(true, Ordering::SeqCst);
                            }
                            exit_reason =
                                Some(reason.unwrap_or_else(|| "tmux control client exited".into()));
                        }
                        other => {
                            if let Some(h) = &hook {
                                h(&other);
                            }
                            let _ = reader_shared.events.send(Arc::new(other));
                        }
                    }
                }
            }
            let mut why = exit_reason.unwrap_or(eof_reason);
            if let Some(mut err) = stderr.take() {
                let mut s = String::new();
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), err.read_to_string(&mut s))
                        .await;
                let s = s.trim();
                if !s.is_empty() {
                    why = s.to_string();
                }
            }
            if let Some(tx) = ready.take() {
                let _ = tx.send(Err(why.clone()));
            }
            reader_shared.fail_all(&why);
            let exit = Event::Exit { reason: Some(why) };
            if let Some(h) = &hook {
                h(&exit);
            }
            let _ = reader_shared.events.send(Arc::new(exit));
            let _ = ended_tx.send(true);
        });
        // Over ssh, connecting (and the remote login) comes first.
        let limit = if opts.is_remote() {
            CONNECT_TIMEOUT + opts.ssh.connect_timeout
        } else {
            CONNECT_TIMEOUT
        };
        let ready = tokio::time::timeout(limit, ready_rx).await;
        match ready {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => {
                if opts.is_remote() {
                    // ssh's own failure (exit 255, 127 for a missing tmux) says more than its text.
                    let code = tokio::time::timeout(Duration::from_secs(1), child.wait())
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .map(|s| s.code());
                    if let Some(code) = code
                        && let Some(e) = remote_failure(opts, code, &why)
                    {
                        return Err(e);
                    }
                }
                let _ = child.start_kill();
                return Err(classify(opts, "attach-session".into(), why));
            }
            Ok(Err(_)) => {
                let _ = child.start_kill();
                return Err(TmuxError::ConnectionLost(
                    "control client ended before attaching".into(),
                ));
            }
            Err(_) => {
                let _ = child.start_kill();
                return Err(TmuxError::Timeout(
                    "attach-session (control mode)".into(),
                    limit,
                ));
            }
        }
        drop(attaching);
        let conn = Connection {
            stdin: Arc::new(tokio::sync::Mutex::new(stdin)),
            shared,
            child: Mutex::new(Some(child)),
            sentinel: AtomicU64::new(0),
            timeout: opts.command_timeout,
            gate,
            ended,
        };
        if !flags_at_attach {
            // Older tmux: set the flags now (refused below 3.2, which is harmless).
            let flags = if session.is_some() {
                "pause-after=5"
            } else {
                "no-output"
            };
            let _ = conn
                .request(&[
                    "refresh-client".to_string(),
                    "-f".to_string(),
                    flags.to_string(),
                ])
                .await;
        }
        Ok(conn)
    }

    /// The process id of the client (`tmux -C`, or the `ssh` running it on a remote host).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().ok()?.as_ref()?.id()
    }

    /// Whether the client is still running.
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Whether tmux detached this client with a bare `%exit` (the server still runs): a command
    /// client attached to a session that was just killed. Requests it had not answered then
    /// never ran.
    pub fn was_detached(&self) -> bool {
        self.shared.detached.load(Ordering::SeqCst)
    }

    /// Notifications this client receives.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.shared.events.subscribe()
    }

    /// Sends one command list and waits for its reply blocks (`(ok, body lines)` per command).
    pub async fn request_blocks(
        &self,
        args: &[String],
    ) -> Result<Vec<(bool, Vec<Vec<u8>>)>, TmuxError> {
        self.request(args).await
    }

    async fn request(&self, args: &[String]) -> Result<Blocks, TmuxError> {
        if !self.is_alive() {
            let why = self
                .shared
                .reason
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .unwrap_or_else(|| "closed".into());
            // Known dead before anything was written: the request never ran anywhere.
            return Err(TmuxError::NotSent(why));
        }
        if args.is_empty() {
            return Err(TmuxError::CommandFailed {
                command: String::new(),
                stderr: "empty command".into(),
            });
        }
        // Held until the reply: tmux has sent the notifications this command causes by then.
        let _in_flight = gate::command(&self.gate).await;
        let line = to_line(args);
        let (blocks, unknown) = shape(args);
        let (tx, rx) = oneshot::channel();
        {
            let mut stdin = self.stdin.lock().await;
            let mut out = line.into_bytes();
            out.push(b'\n');
            let expect = if unknown {
                let n = self.sentinel.fetch_add(1, Ordering::Relaxed);
                let token = format!("termloom-end-{}-{n}", std::process::id());
                out.extend_from_slice(format!("display-message -p {token}\n").as_bytes());
                Expect::UntilSentinel(token.into_bytes())
            } else {
                Expect::Count(blocks)
            };
            if let Ok(mut q) = self.shared.pending.lock() {
                q.push_back(Pending {
                    expect,
                    blocks: Vec::new(),
                    tx: Some(tx),
                });
            }
            let mut written = 0;
            if let Err(e) = async {
                while written < out.len() {
                    let n = stdin.write(&out[written..]).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::WriteZero.into());
                    }
                    written += n;
                }
                stdin.flush().await
            }
            .await
            {
                let why = format!("cannot write to tmux: {e}");
                self.shared.fail_all(&why);
                // Nothing of this request reached tmux: sending it again cannot run it twice.
                // Part of it may have (a line longer than the pipe writes at once): not so.
                // The others in flight fail with the connection, as ConnectionLost.
                return Err(if written == 0 {
                    TmuxError::NotSent(why)
                } else {
                    TmuxError::ConnectionLost(why)
                });
            }
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(TmuxError::ConnectionLost(
                "tmux control client went away".into(),
            )),
            Err(_) => {
                // Replies are matched by order: a reply that never comes would pair every later
                // reply with the wrong request. Give this client up; the next call starts another.
                let what = describe(args);
                self.shared
                    .fail_all(&format!("no reply to {what} in {:?}", self.timeout));
                if let Ok(mut c) = self.child.lock()
                    && let Some(child) = c.as_mut()
                {
                    let _ = child.start_kill();
                }
                Err(TmuxError::Timeout(what, self.timeout))
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        // Leaving sends `%client-detached` to every control client: not while one attaches
        // ([`gate`]), in this process or another. The work is the process's to finish before it
        // ends (`termloom_core::cleanup::settle`). Without a runtime the future is dropped, and
        // the child with it (killed on drop): all that can be done then.
        let gate = self.gate.clone();
        let mut ended = self.ended.clone();
        // The client's stdin stays open until then: tmux lets a control client go as soon as
        // its stdin ends (it reads that pipe itself), and that is a leaving too.
        let stdin = self.stdin.clone();
        termloom_core::cleanup::spawn(async move {
            let _leaving = gate::command(&gate).await;
            drop(stdin);
            let _ = child.start_kill();
            // Gone once the process has exited and the server has closed its end of the
            // output pipe (having queued `%client-detached` before).
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = child.wait().await;
                let _ = ended.wait_for(|e| *e).await;
            })
            .await;
        });
    }
}

/// How many reply blocks a command list (argv with `;` elements) gets when every command
/// succeeds, and whether that cannot be known (then the list is followed by a sentinel and its
/// reply is every block up to the sentinel's). A command gets one block; a failing one ends the
/// list (tmux drops the rest of the line). `if-shell -F COND THEN ELSE` gets one block and then one
/// per command of the branch it runs: known when both branches hold the same number of commands
/// (see [`count_commands`]). Anything else that runs further commands (`source-file`,
/// `run-shell`, `if-shell` without `-F`) is unknown.
fn shape(args: &[String]) -> (usize, bool) {
    let mut blocks = 0;
    let mut unknown = false;
    for cmd in args.split(|a| a == ";") {
        let Some(name) = cmd.first() else { continue };
        blocks += 1;
        match name.as_str() {
            "if-shell" | "if" => match if_shell_inserts(&cmd[1..]) {
                Some(n) => blocks += n,
                None => unknown = true,
            },
            n if runs_others(n) => unknown = true,
            _ => {}
        }
    }
    (blocks.max(1), unknown)
}

/// Whether command `name` runs further commands, each with a reply block of its own.
fn runs_others(name: &str) -> bool {
    matches!(
        name,
        "if-shell" | "if" | "source-file" | "source" | "run-shell" | "run"
    )
}

/// The commands `if-shell -F [-t T] COND THEN [ELSE]` runs after itself, when both branches hold
/// the same number (a missing ELSE holds none).
fn if_shell_inserts(args: &[String]) -> Option<usize> {
    let mut rest = args.iter();
    let mut f = false;
    let mut words = Vec::new();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "-F" if words.is_empty() => f = true,
            "-t" if words.is_empty() => {
                rest.next()?;
            }
            "-b" if words.is_empty() => return None,
            _ => words.push(a.as_str()),
        }
    }
    if !f {
        return None;
    }
    match words.as_slice() {
        [_cond, then] => (count_commands(then)? == 0).then_some(0),
        [_cond, then, other] => {
            let n = count_commands(then)?;
            (count_commands(other)? == n).then_some(n)
        }
        _ => None,
    }
}

/// The number of commands in a command line as [`to_line`] writes it: plain words and
/// double-quoted ones, separated by spaces, commands by a bare `;`. `None` for anything else
/// (single quotes, braces, a nested command that runs others), which the caller treats as
/// unknown.
fn count_commands(line: &str) -> Option<usize> {
    let mut commands = 0;
    let mut at_name = true;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'"' => {
                at_name = false;
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'\'' | b'{' | b'}' | b'\\' => return None,
            _ => {
                let start = i;
                while i < b.len() && b[i] != b' ' {
                    if matches!(b[i], b'"' | b'\'' | b'{' | b'}' | b'\\') {
                        return None;
                    }
                    i += 1;
                }
                // Words end at ASCII spaces, so `start..i` is whole characters.
                let word = &line[start..i];
                if word == ";" {
                    at_name = true;
                } else if at_name {
                    if runs_others(word) {
                        return None;
                    }
                    commands += 1;
                    at_name = false;
                }
            }
        }
    }
    Some(commands)
}

/// Reverses argv escaping ([`crate::command::escape_arg`]) and quotes each word for tmux's parser;
/// `;` elements stay separators.
pub fn to_line(args: &[String]) -> String {
    let mut line = String::with_capacity(args.iter().map(|a| a.len() + 3).sum());
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        if a == ";" {
            line.push(';');
        } else if let Some(head) = a.strip_suffix("\\;") {
            quote_into(&mut line, &format!("{head};"));
        } else {
            quote_into(&mut line, a);
        }
    }
    line
}

fn join_body(body: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for line in body {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s
}

/// A [`Transport`] over a control-mode client that reconnects on demand.
pub struct ControlTransport {
    opts: Arc<TmuxOptions>,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl ControlTransport {
    /// A transport for the server `opts` names; it connects on first use.
    pub fn new(opts: Arc<TmuxOptions>) -> Self {
        ControlTransport {
            opts,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// The live connection, starting one if there is none.
    pub async fn connection(&self, no_start: bool) -> Result<Arc<Connection>, TmuxError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.is_alive()
        {
            return Ok(c.clone());
        }
        *guard = None;
        let c = Arc::new(Connection::connect(&self.opts, no_start).await?);
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Drops the current connection (the next call reconnects).
    pub async fn reset(&self) {
        *self.conn.lock().await = None;
    }
}

impl ControlTransport {
    /// Runs a command list on `conn`; `%error` becomes [`TmuxError::CommandFailed`].
    pub async fn run_on(&self, conn: &Connection, args: &[String]) -> Result<String, TmuxError> {
        let blocks = conn.request(args).await?;
        let mut out = String::new();
        for (ok, body) in &blocks {
            if *ok {
                out.push_str(&join_body(body));
            } else {
                let stderr = join_body(body).trim().to_string();
                return Err(classify(&self.opts, describe(args), stderr));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Transport for ControlTransport {
    async fn run(&self, args: &[String]) -> Result<String, TmuxError> {
        let conn = self.connection(true).await?;
        self.run_on(&conn, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_counted_and_commands_that_run_others_need_a_sentinel() {
        let v = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(shape(&v(&["display", "-p", "x"])), (1, false));
        assert_eq!(
            shape(&v(&[
                "send-keys",
                "-l",
                "if-shell",
                ";",
                "display",
                "-p",
                "x;"
            ])),
            (2, false)
        );
        assert_eq!(shape(&v(&["source-file", "f"])), (1, true));
        // if-shell -F: one block, then one per command of the branch it runs.
        let guard = |then: &str, other: &str| {
            v(&[
                "set-buffer",
                "x",
                ";",
                "if-shell",
                "-F",
                "-t",
                "%3",
                "#{c}",
                then,
                other,
            ])
        };
        assert_eq!(
            shape(&guard(
                r#"send-keys -t "%3" -l -- "a ; b\" ;" ; send-keys -t "%3" Enter"#,
                r#"display-message -p R ; display-message -p """#
            )),
            (4, false)
        );
        assert_eq!(shape(&guard("a ; b", "c")), (2, true));
        assert_eq!(shape(&guard("a", "if-shell -F 1 b")), (2, true));
        assert_eq!(shape(&guard("a 'x'", "c")), (2, true));
        assert_eq!(shape(&v(&["if-shell", "1", "a", "b"])), (1, true));
        assert_eq!(shape(&v(&["if-shell", "-F", "1", "a"])), (1, true));
        assert_eq!(shape(&v(&["if-shell", "-F", "1", ""])), (1, false));
    }

    #[test]
    fn lines_unescape_argv_and_quote() {
        let args: Vec<String> = [
            "send-keys",
            "-t",
            "%3",
            "-l",
            "--",
            "a\\;",
            ";",
            "send-keys",
            "-t",
            "%3",
            "Enter",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            to_line(&args),
            "send-keys -t \"%3\" -l -- \"a;\" ; send-keys -t \"%3\" Enter"
        );
    }
}
