//! `run` and `wait_run` for iTerm2 sessions.
//!
//! The strategy is picked in this order:
//!
//! 1. [`Strategy::Prompt`] when the caller gives a prompt regex (REPLs): done when the cursor's
//!    line, below the typed command, matches it. No exit status.
//! 2. [`Strategy::Quiet`] when the caller gives a quiet period: done when the screen has not
//!    changed for that long. No exit status.
//! 3. [`Strategy::ShellIntegration`] when iTerm2 knows the session's prompts (shell integration,
//!    OSC 133 marks): the command is typed at the current prompt, a prompt notification
//!    (COMMAND_END) carries the exit status, and `GetPrompt`'s output range is exactly the
//!    command's output.
//! 4. [`Strategy::Marker`] otherwise: the command line is followed by
//!    `; printf '\n__tl_<nonce>_%s__\n' "$?"`, which POSIX shells (bash, zsh, sh, dash, ksh)
//!    expand to the exit status. Multi-line commands are refused here (each line would run on
//!    its own); fish and other non-POSIX shells need shell integration, `prompt` or `quiet`.
//!
//! Waiting wakes on prompt or screen-update notifications for the session and re-checks at
//! least every half second, so a lost notification only delays the answer. A run that is not
//! done by its timeout returns `timed_out` with a [`RunHandle`] for [`wait_run`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use termloom_core::text::{cap, trim_trailing_blank};
use termloom_core::{
    BackendKind, Error, Result, RunHandle, RunOpts, RunResult, Session, Strategy, compile_regex,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::lines::{self, Logical};
use crate::proto::{self, NotificationType};
use crate::session::{ItermSession, Wake, classify, send_text_to};
use crate::terminal::SubGuard;

/// Longest wait between two checks when no notification arrives.
const BACKSTOP: Duration = Duration::from_millis(500);

/// How long a run waits for the session's previous command to report its end before calling
/// the session busy.
const BUSY_GRACE: Duration = Duration::from_secs(1);

/// Which prompt a shell-integration run is waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PromptRef {
    /// The command was typed at this prompt.
    At(String),
    /// This prompt had finished when the command was typed: it runs at the next one.
    After(String),
}

/// How a run finds its end.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// Shell integration: where to look, and (the start of) the command typed, to tell it from
    /// a command someone typed ahead.
    Shell(PromptRef, String),
    Marker(String),
    Prompt(String),
    Quiet(u64),
}

/// Everything needed to keep waiting for a run, also across processes (it is the handle).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job {
    guid: String,
    started_ms: u64,
    /// The cursor line when the command was typed: the command's echo starts there.
    y0: i64,
    plan: Plan,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Job {
    fn strategy(&self) -> Strategy {
        match self.plan {
            Plan::Shell(..) => Strategy::ShellIntegration,
            Plan::Marker(_) => Strategy::Marker,
            Plan::Prompt(_) => Strategy::Prompt,
            Plan::Quiet(_) => Strategy::Quiet,
        }
    }

    fn encode(&self) -> RunHandle {
        let (kind, arg) = match &self.plan {
            Plan::Shell(PromptRef::At(p), c) => ("si-at", format!("{p}:{}", hex(c))),
            Plan::Shell(PromptRef::After(p), c) => ("si-after", format!("{p}:{}", hex(c))),
            Plan::Marker(n) => ("marker", n.clone()),
            Plan::Prompt(re) => ("prompt", hex(re)),
            Plan::Quiet(ms) => ("quiet", ms.to_string()),
        };
        RunHandle(format!(
            "iterm1:{}:{}:{}:{kind}:{arg}",
            self.guid, self.started_ms, self.y0
        ))
    }

    fn decode(h: &RunHandle) -> Option<Job> {
        let mut it = h.0.splitn(6, ':');
        if it.next()? != "iterm1" {
            return None;
        }
        let guid = it.next()?.to_owned();
        let started_ms = it.next()?.parse().ok()?;
        let y0 = it.next()?.parse().ok()?;
        let kind = it.next()?;
        let arg = it.next()?.to_owned();
        if guid.is_empty() || arg.is_empty() {
            return None;
        }
        let plan = match kind {
            "si-at" | "si-after" => {
                let (id, cmd) = arg.split_once(':')?;
                let id = id.to_owned();
                let cmd = unhex(cmd)?;
                if kind == "si-at" {
                    Plan::Shell(PromptRef::At(id), cmd)
                } else {
                    Plan::Shell(PromptRef::After(id), cmd)
                }
            }
            "marker" => Plan::Marker(arg),
            "prompt" => Plan::Prompt(unhex(&arg)?),
            "quiet" => Plan::Quiet(arg.parse().ok()?),
            _ => return None,
        };
        Some(Job {
            guid,
            started_ms,
            y0,
            plan,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The command line typed for a marker run.
fn marker_line(command: &str, nonce: &str) -> String {
    let mut cmd = command.trim_end();
    while let Some(c) = cmd.strip_suffix(';') {
        cmd = c.trim_end();
    }
    let sep = if cmd.ends_with('&') && !cmd.ends_with("&&") {
        " "
    } else {
        "; "
    };
    format!("{cmd}{sep}printf '\\n__tl_{nonce}_%s__\\n' \"$?\"")
}

/// The text the typed marker command shows (never the printed marker: that has digits).
fn marker_echo(nonce: &str) -> String {
    format!("__tl_{nonce}_%s__")
}

fn marker_status(line: &str, nonce: &str) -> Option<i32> {
    let rest = line.trim().strip_prefix(&format!("__tl_{nonce}_"))?;
    rest.strip_suffix("__")?.parse().ok()
}

/// Wakes a waiting run when something happens to its session.
struct Waker {
    rx: broadcast::Receiver<Arc<proto::Notification>>,
    guid: String,
    _guards: Vec<SubGuard>,
}

impl Waker {
    async fn new(s: &ItermSession, conn: &Connection, kind: NotificationType) -> Result<Waker> {
        let rx = conn.notifications();
        let g1 = s
            .term
            .acquire(kind, Some(s.guid()))
            .await
            .map_err(|e| s.map(e))?;
        let g2 = s
            .term
            .acquire(NotificationType::NotifyOnTerminateSession, None)
            .await?;
        Ok(Waker {
            rx,
            guid: s.guid().to_owned(),
            _guards: vec![g1, g2],
        })
    }

    /// Returns when a notification about the session arrives, after `step`, or at `deadline`.
    async fn wait(&mut self, deadline: Instant, step: Duration) {
        let until = (Instant::now() + step).min(deadline);
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Err(_) => return,
                Ok(Ok(n)) => {
                    if classify(&n, &self.guid) != Wake::Other {
                        return;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => return,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep_until(until).await;
                    return;
                }
            }
        }
    }
}

/// Progress of a run between checks.
#[derive(Default)]
struct Progress {
    /// First line after the command's echo (marker runs).
    echo_end: Option<i64>,
    /// Where the next marker scan starts.
    scan_from: Option<i64>,
    /// Screen signature and when it last changed (quiet runs).
    signature: Option<(i64, i64, u64)>,
    changed: Option<Instant>,
}

/// A finished run: exit status and output lines.
struct Done {
    exit: Option<i32>,
    lines: Vec<String>,
}

fn fnv(rows: &[lines::Row]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for r in rows {
        for b in r.text.bytes().chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn texts(lines: &[Logical]) -> Vec<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

/// Runs `opts.command` in the session and waits (see the module docs).
pub(crate) async fn run(s: &ItermSession, opts: &RunOpts) -> Result<RunResult> {
    let command = opts.command.trim_end_matches(['\r', '\n']);
    if command.trim().is_empty() {
        return Err(Error::InvalidArgument("the command is empty".into()));
    }
    opts.check()?;
    let prompt_re = match &opts.prompt {
        Some(p) => {
            compile_regex(p)?;
            Some(p.clone())
        }
        None => None,
    };
    let conn = s.conn().await?;
    let mut current = if prompt_re.is_none() && opts.quiet.is_none() {
        conn.get_prompt(s.guid(), None)
            .await
            .map_err(|e| s.err(e))?
    } else {
        None
    };
    // A command whose last output just appeared may not have reported its end yet.
    let settle = Instant::now() + BUSY_GRACE;
    while let Some(p) = &current
        && p.prompt_state() == proto::get_prompt_response::State::Running
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
        current = conn
            .get_prompt(s.guid(), None)
            .await
            .map_err(|e| s.err(e))?;
    }
    let kind = if current.is_some() {
        NotificationType::NotifyOnPrompt
    } else {
        NotificationType::NotifyOnScreenUpdate
    };
    let mut waker = Waker::new(s, &conn, kind).await?;
    let g = s.geometry(&conn).await?;
    let mut plan = if let Some(re) = prompt_re {
        Plan::Prompt(re)
    } else if let Some(q) = opts.quiet {
        Plan::Quiet(u64::try_from(q.as_millis()).unwrap_or(u64::MAX).max(1))
    } else if let Some(p) = &current {
        use proto::get_prompt_response::State;
        let id = p.unique_prompt_id.clone().ok_or_else(|| {
            Error::backend(BackendKind::Iterm, "iTerm2 reported a prompt without an id")
        })?;
        match p.prompt_state() {
            State::Editing => Plan::Shell(PromptRef::At(id), command_key(command)),
            State::Finished => Plan::Shell(PromptRef::After(id), command_key(command)),
            State::Running => {
                return Err(Error::backend(
                    BackendKind::Iterm,
                    format!(
                        "session '{}' ({}) is busy running {:?}; wait for it to finish, interrupt it with the key C-c, or give a prompt regex to type into it (run_command's prompt; the CLI's --prompt)",
                        s.label(),
                        s.id(),
                        p.command.clone().unwrap_or_default()
                    ),
                ));
            }
        }
    } else {
        if command.contains(['\n', '\r']) {
            return Err(Error::unsupported(
                BackendKind::Iterm,
                "run a multi-line command in a session without shell integration",
                "each line would run on its own; enable iTerm2 shell integration, or pass a prompt regex or a quiet period",
            ));
        }
        Plan::Marker(uuid::Uuid::new_v4().simple().to_string()[..12].to_owned())
    };
    let line = match &plan {
        Plan::Marker(nonce) => marker_line(command, nonce),
        // One command for the shell, as tmux runs it: line by line, each line would end at its
        // own prompt, and the run would report the first line's status.
        Plan::Shell(..) if command.contains(['\n', '\r']) => {
            let fish = matches!(s.get_variable("jobName").await?, serde_json::Value::String(j) if crate::session::job_base(&j) == "fish");
            if fish {
                format!("begin\n{command}\nend")
            } else {
                format!("{{\n{command}\n}}")
            }
        }
        _ => command.to_owned(),
    };
    // The prompt shows what was typed.
    if let Plan::Shell(_, key) = &mut plan {
        *key = command_key(&line);
    }
    let job = Job {
        guid: s.guid().to_owned(),
        started_ms: now_ms(),
        y0: g.cursor_y,
        plan,
    };
    send_text_to(&conn, s.guid(), &line, true)
        .await
        .map_err(|e| s.map(e))?;
    let deadline = Instant::now() + opts.timeout;
    drive(
        s,
        &conn,
        &mut waker,
        job,
        deadline,
        opts.max_lines,
        opts.max_bytes,
    )
    .await
}

/// Keeps waiting for a run that timed out.
pub(crate) async fn wait_run(
    s: &ItermSession,
    handle: &RunHandle,
    timeout: Duration,
) -> Result<RunResult> {
    let job = Job::decode(handle).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "'{}' is not a run handle from an iTerm2 session",
            handle.0
        ))
    })?;
    if job.guid != s.guid() {
        return Err(Error::InvalidArgument(format!(
            "run handle '{}' belongs to another session ({}), not {}",
            handle.0,
            job.guid,
            s.guid()
        )));
    }
    let conn = s.conn().await?;
    let kind = match job.plan {
        Plan::Shell(..) => NotificationType::NotifyOnPrompt,
        _ => NotificationType::NotifyOnScreenUpdate,
    };
    let mut waker = Waker::new(s, &conn, kind).await?;
    let deadline = Instant::now() + timeout;
    drive(s, &conn, &mut waker, job, deadline, None, None).await
}

async fn drive(
    s: &ItermSession,
    conn: &Connection,
    waker: &mut Waker,
    mut job: Job,
    deadline: Instant,
    max_lines: Option<usize>,
    max_bytes: Option<usize>,
) -> Result<RunResult> {
    let mut progress = Progress::default();
    let step = match job.plan {
        Plan::Quiet(ms) => Duration::from_millis((ms / 4).clamp(20, 250)),
        _ => BACKSTOP,
    };
    let result = |done: Option<Done>, job: &Job, partial: Vec<String>| {
        let timed_out = done.is_none();
        let (exit, mut lines) = match done {
            Some(d) => (d.exit, d.lines),
            None => (None, partial),
        };
        trim_trailing_blank(&mut lines);
        let capped = cap(
            &lines,
            0,
            max_lines.unwrap_or(usize::MAX),
            max_bytes.unwrap_or(usize::MAX),
        );
        RunResult {
            exit_code: exit,
            output: capped.text,
            timed_out,
            strategy: job.strategy(),
            duration_ms: now_ms().saturating_sub(job.started_ms),
            handle: timed_out.then(|| job.encode()),
            truncated: capped.truncated,
        }
    };
    loop {
        if let Some(done) = check(s, conn, &mut job, &mut progress).await? {
            return Ok(result(Some(done), &job, Vec::new()));
        }
        if Instant::now() >= deadline {
            let partial = after_echo(s, conn, job.y0, false).await?;
            return Ok(result(None, &job, partial));
        }
        waker.wait(deadline, step).await;
    }
}

/// Lines below the command's echo (which starts at `y0`) up to the cursor. With `drop_prompt`,
/// a last line that repeats the start of the echo line (the shell's prompt, back again) is left
/// out.
async fn after_echo(
    s: &ItermSession,
    conn: &Connection,
    y0: i64,
    drop_prompt: bool,
) -> Result<Vec<String>> {
    let g = s.geometry(conn).await?;
    if g.cursor_y < y0 {
        return Ok(Vec::new());
    }
    let (first, rows) = s.rows(conn, y0, g.cursor_y).await?;
    let logical = lines::join_rows(first, &rows);
    let mut out = logical.get(1..).unwrap_or_default();
    if drop_prompt
        && let (Some(echo), Some((last, rest))) = (logical.first(), out.split_last())
        && !last.text.trim().is_empty()
        && echo.text.starts_with(last.text.trim_end())
    {
        out = rest;
    }
    Ok(texts(out))
}

async fn check(
    s: &ItermSession,
    conn: &Connection,
    job: &mut Job,
    progress: &mut Progress,
) -> Result<Option<Done>> {
    let Job { plan, y0, .. } = job;
    let y0_now = *y0;
    match plan {
        Plan::Shell(prompt, command) => check_shell(s, conn, prompt, command, y0).await,
        Plan::Marker(nonce) => {
            let nonce = nonce.clone();
            check_marker(s, conn, &nonce, y0_now, progress).await
        }
        Plan::Prompt(re) => {
            let re = compile_regex(re)?;
            let g = s.geometry(conn).await?;
            if g.cursor_y <= y0_now {
                return Ok(None);
            }
            let (first, rows) = s.rows(conn, y0_now, g.cursor_y).await?;
            let logical = lines::join_rows(first, &rows);
            match logical.split_last() {
                Some((last, before)) if !before.is_empty() => {
                    let t = &last.text;
                    if re.is_match(t) || re.is_match(&format!("{t} ")) {
                        Ok(Some(Done {
                            exit: None,
                            lines: texts(&before[1..]),
                        }))
                    } else {
                        Ok(None)
                    }
                }
                _ => Ok(None),
            }
        }
        Plan::Quiet(ms) => {
            let quiet = Duration::from_millis(*ms);
            let g = s.geometry(conn).await?;
            let sig = (g.cursor_y, g.cursor_x, fnv(&g.screen));
            let now = Instant::now();
            if progress.signature != Some(sig) {
                progress.signature = Some(sig);
                progress.changed = Some(now);
                return Ok(None);
            }
            let since = progress.changed.unwrap_or(now);
            if now.duration_since(since) < quiet {
                return Ok(None);
            }
            Ok(Some(Done {
                exit: None,
                lines: after_echo(s, conn, y0_now, true).await?,
            }))
        }
    }
}

/// Prompt ids of a session from `first` on (inclusive), oldest first.
async fn prompts_from(s: &ItermSession, conn: &Connection, first: &str) -> Result<Vec<String>> {
    use proto::client_originated_message::Submessage as Req;
    use proto::server_originated_message::Submessage as Rep;
    let request = proto::ListPromptsRequest {
        session: Some(s.guid().to_owned()),
        first_unique_id: Some(first.to_owned()),
        last_unique_id: None,
    };
    match conn
        .call(Req::ListPromptsRequest(request))
        .await
        .map_err(|e| s.err(e))?
    {
        Rep::ListPromptsResponse(r) => {
            if r.status.unwrap_or_default() != 0 {
                return Err(s.dead());
            }
            let mut ids = r.unique_prompt_id;
            // Servers that ignore the bound return every prompt: cut before `first`.
            if let Some(i) = ids.iter().position(|i| i == first) {
                ids.drain(..i);
            }
            Ok(ids)
        }
        other => Err(Error::backend(
            BackendKind::Iterm,
            format!(
                "the ListPrompts request was answered with a {} reply",
                other.kind()
            ),
        )),
    }
}

/// What of a command is kept to recognise it at its prompt.
fn command_key(command: &str) -> String {
    command.chars().take(256).collect()
}

/// Whether the command iTerm2 recorded at a prompt is the one typed: their first lines, compared
/// without whitespace (either may be cut short). Only first lines, as what iTerm2 records of a
/// multi-line command holds the shell's continuation prompts (`> `) after the first.
fn same_command(shown: Option<&str>, typed: &str) -> bool {
    let first = |t: &str| {
        t.split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
    };
    let Some(shown) = shown.map(first).filter(|s| !s.is_empty()) else {
        return true;
    };
    let typed = first(typed);
    typed.starts_with(&shown) || shown.starts_with(&typed)
}

/// Finds the prompt the command ran at and whether it finished.
///
/// Readline redraws its prompt now and then (typeahead, a resize), printing the prompt's marks
/// again, so a prompt can be followed by "editing" prompts that never ran anything; and a
/// command typed ahead (say, right after the session was created) can run before ours. The
/// command ran at the first prompt from the starting one on that has output and shows this
/// command. When only editing prompts follow and the newest sits below the line the command was
/// typed on, the command never started (a syntax error, an empty line): it is done, with no exit
/// status.
async fn check_shell(
    s: &ItermSession,
    conn: &Connection,
    prompt: &mut PromptRef,
    command: &str,
    y0: &mut i64,
) -> Result<Option<Done>> {
    use proto::get_prompt_response::State;
    let (first, skip_first) = match prompt {
        PromptRef::At(id) => (id.clone(), false),
        PromptRef::After(id) => (id.clone(), true),
    };
    let ids = prompts_from(s, conn, &first).await?;
    let mut last_editing: Option<proto::GetPromptResponse> = None;
    for id in ids.iter().skip(usize::from(skip_first)) {
        let Some(p) = conn
            .get_prompt(s.guid(), Some(id))
            .await
            .map_err(|e| s.err(e))?
        else {
            continue;
        };
        let ours = same_command(p.command.as_deref(), command);
        match p.prompt_state() {
            State::Editing => last_editing = Some(p),
            // Someone else's command still runs: ours waits behind it.
            State::Running if !ours => return Ok(None),
            State::Running => {
                *prompt = PromptRef::At(id.clone());
                return Ok(None);
            }
            State::Finished if !ours => {
                // Typed ahead by someone else: ours comes later, below its output.
                *prompt = PromptRef::After(id.clone());
                if let Some(end) = p
                    .output_range
                    .as_ref()
                    .and_then(|r| r.end.as_ref())
                    .and_then(|c| c.y)
                {
                    *y0 = (*y0).max(end);
                }
                last_editing = None;
            }
            State::Finished => {
                *prompt = PromptRef::At(id.clone());
                return Ok(Some(finished(s, conn, &p, *y0).await?));
            }
        }
    }
    let Some(newest) = last_editing else {
        if ids.is_empty() {
            return Err(Error::backend(
                BackendKind::Iterm,
                format!("the prompt of this run ({first}) is no longer in the session's history"),
            ));
        }
        return Ok(None);
    };
    let y0 = *y0;
    let newest_line = newest
        .prompt_range
        .as_ref()
        .and_then(|r| r.start.as_ref())
        .and_then(|c| c.y)
        .unwrap_or(y0);
    if newest_line <= y0 {
        // Not started yet (or the prompt was only redrawn).
        return Ok(None);
    }
    let lines = if newest_line > y0 + 1 {
        let (first_row, rows) = s.rows(conn, y0, newest_line - 1).await?;
        texts(
            lines::join_rows(first_row, &rows)
                .get(1..)
                .unwrap_or_default(),
        )
    } else {
        Vec::new()
    };
    Ok(Some(Done { exit: None, lines }))
}

/// The output and exit status of a finished prompt.
async fn finished(
    s: &ItermSession,
    conn: &Connection,
    p: &proto::GetPromptResponse,
    y0: i64,
) -> Result<Done> {
    let range = p.output_range.as_ref();
    let start = range.and_then(|r| r.start.clone());
    let end = range.and_then(|r| r.end.clone());
    let lines = match (start, end) {
        (Some(start), Some(end)) => {
            let (sx, sy) = (i64::from(start.x.unwrap_or(0)), start.y.unwrap_or(y0));
            let (ex, ey) = (i64::from(end.x.unwrap_or(0)), end.y.unwrap_or(sy));
            let (first, rows) = s.rows(conn, sy, ey.max(sy)).await?;
            let cut = lines::slice_rows(first, &rows, (sx, sy), (ex, ey));
            texts(&lines::join_rows(first.max(sy), &cut))
        }
        _ => Vec::new(),
    };
    Ok(Done {
        exit: p.exit_status.map(|s| s as i32),
        lines,
    })
}

async fn check_marker(
    s: &ItermSession,
    conn: &Connection,
    nonce: &str,
    y0: i64,
    progress: &mut Progress,
) -> Result<Option<Done>> {
    let g = s.geometry(conn).await?;
    let from = progress.scan_from.unwrap_or(y0);
    if g.cursor_y < from {
        return Ok(None);
    }
    let (first, rows) = s.rows(conn, from, g.cursor_y).await?;
    let logical = lines::join_rows(first, &rows);
    let echo = marker_echo(nonce);
    for l in &logical {
        let Some(echo_end) = progress.echo_end else {
            if l.text.contains(&echo) {
                progress.echo_end = Some(l.end + 1);
            }
            continue;
        };
        if l.start < echo_end {
            continue;
        }
        if let Some(status) = marker_status(&l.text, nonce) {
            let lines = if l.start > echo_end {
                let (f, r) = s.rows(conn, echo_end, l.start - 1).await?;
                texts(&lines::join_rows(f, &r))
            } else {
                Vec::new()
            };
            return Ok(Some(Done {
                exit: Some(status),
                lines,
            }));
        }
    }
    // The last line may still grow: scan it again next time.
    if let (Some(_), Some(last)) = (progress.echo_end, logical.last()) {
        progress.scan_from = Some(last.start.max(progress.echo_end.unwrap_or(last.start)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip() {
        for plan in [
            Plan::Shell(PromptRef::At("P-1".into()), "make test".into()),
            Plan::Shell(PromptRef::After("P-2".into()), "a:b".into()),
            Plan::Marker("abc123".into()),
            Plan::Prompt(">>> $|In \\[\\d+\\]:".into()),
            Plan::Quiet(1500),
        ] {
            let job = Job {
                guid: "0F3C-AA".into(),
                started_ms: 17,
                y0: 42,
                plan,
            };
            assert_eq!(Job::decode(&job.encode()), Some(job));
        }
        assert_eq!(Job::decode(&RunHandle("t1:x".into())), None);
        assert_eq!(Job::decode(&RunHandle("iterm1:g:1:2:nope:x".into())), None);
    }

    #[test]
    fn commands_are_recognised_at_their_prompt() {
        assert!(same_command(Some("echo  a"), "echo a"));
        assert!(same_command(None, "echo a"));
        assert!(same_command(
            Some("for i in 1 2; do"),
            "for i in 1 2; do\n echo $i\ndone"
        ));
        assert!(!same_command(Some("echo typed-ahead"), "echo right-after"));
        // A multi-line command as iTerm2 records it: the shell's continuation prompts after the
        // first line.
        assert!(same_command(
            Some("{\n> echo one\n> false\n> }"),
            "{\necho one\nfalse\n}"
        ));
        assert_eq!(command_key(&"x".repeat(1000)).len(), 256);
    }

    #[test]
    fn marker_lines() {
        assert_eq!(
            marker_line("make test ;; ", "n1"),
            "make test; printf '\\n__tl_n1_%s__\\n' \"$?\""
        );
        assert_eq!(
            marker_line("sleep 9 &", "n1"),
            "sleep 9 & printf '\\n__tl_n1_%s__\\n' \"$?\""
        );
        assert!(marker_line("a && b", "n").starts_with("a && b; printf"));
        assert_eq!(marker_status("__tl_n1_127__", "n1"), Some(127));
        assert_eq!(marker_status("__tl_n1_%s__", "n1"), None);
        assert_eq!(marker_status("x __tl_n1_0__", "n1"), None);
        assert!(marker_line("true", "n1").contains(&marker_echo("n1")));
    }
}
