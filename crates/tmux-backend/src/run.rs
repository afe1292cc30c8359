//! `run`, `wait_run` and `status` for tmux panes.
//!
//! Every pane that is run in (or asked about, by a long-lived process) gets a `PaneTracker`: a
//! tap on the pane's raw output (the [`OutputHub`](crate::control::output::OutputHub) calls it
//! inline, so it misses nothing and never lags) that follows the OSC 133 marks, the exit codes,
//! OSC 7 and termloom's own run markers, and feeds the output of the run in progress into a
//! bounded `LineSink` (head and tail kept).
//!
//! A run picks its strategy (`choose`):
//! 1. `prompt` given → [`Strategy::Prompt`]: done when the caller's regex matches the line the
//!    cursor is on (the REPL's prompt); `quiet` given → [`Strategy::Quiet`]: done after that long
//!    without output while the foreground program stayed the same. Both type into whatever runs.
//! 2. A shell is in the foreground and idle (`decide` first waits out passing states: a pane
//!    whose process is still starting, a shell whose end mark is due):
//!    - integration marks were seen in this pane (idle at a prompt), or the shell's state file says
//!      it is termloom-integrated and it is the pane's own shell, or termloom started that shell
//!      with the integration and it is still loading → [`Strategy::ShellIntegration`]: the output
//!      is exactly what the pane printed between `C` and `D`, the exit code is `D`'s;
//!    - else (a plain shell, or a shell started inside an integrated one) →
//!      [`Strategy::Marker`]: the command is wrapped as
//!      ` printf '\033]6973;S;TOKEN\007'; {⏎CMD⏎}; printf '\033]6973;E;TOKEN;%s\007' "$?"`. The
//!      markers are escape sequences only the executed `printf` produces (the echo of the typed
//!      line holds backslashes, not ESC), the token is unique per call, and the group keeps
//!      heredocs and multi-line commands whole.
//! 3. Anything else in the foreground → an error saying the session is busy.
//!
//! Output is capped while it streams (`max_lines`/`max_bytes`, default [`DEFAULT_MAX_LINES`] and
//! [`DEFAULT_MAX_BYTES`]): the first third and the last two thirds are kept, with a line
//! `[… lines A-B of N left out (K lines) …]` where the cut is.
//!
//! Runs on one session are serialized in this process; a run that timed out keeps its task (and
//! the session) until it ends, and `wait_run` picks it up by its handle.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use regex::Regex;
use termloom_core::text::clean_line;
use termloom_core::{
    BackendKind, BusyState, Error, NativeId, Result, RunHandle, RunOpts, RunResult, SessionId,
    SessionStatus, Strategy, compile_regex,
};
use tokio::sync::{oneshot, watch};

use crate::client::TmuxOptions;
use crate::command::Cmd;
use crate::control::output::Tap;
use crate::format::{self, SEP};
use crate::integration::{self, FileState, Scripts, ShellKind, shell_kind};
use crate::terminal::{TmuxTerminal, not_found_as};

/// Output lines kept when the caller gives no `max_lines`.
pub const DEFAULT_MAX_LINES: usize = 10_000;
/// Output bytes kept when the caller gives no `max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;
/// Runs that timed out and are still tracked, per terminal (the oldest is dropped beyond this).
pub const MAX_PENDING: usize = 64;
/// A run is abandoned after this long (its session becomes usable again).
pub const MAX_RUN_AGE: Duration = Duration::from_secs(24 * 3600);
/// How often a waiting run checks that its pane and server are still there.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// The OSC number of termloom's run markers.
pub(crate) const MARKER_OSC: &str = "6973";
/// The longest OSC payload parsed (longer ones are skipped).
const MAX_OSC: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Escape scanning

/// A piece of pane output: plain bytes (other escape sequences included) or one OSC payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a [u8]),
    Osc(&'a [u8]),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ScanState {
    #[default]
    Ground,
    Esc,
    Osc,
    OscEsc,
}

/// Splits a byte stream, chunked anywhere, into text and OSC payloads (`ESC ] … BEL` or
/// `ESC ] … ESC \`).
#[derive(Default)]
pub(crate) struct Scanner {
    state: ScanState,
    osc: Vec<u8>,
    overflow: bool,
}

impl Scanner {
    fn idle(&self) -> bool {
        self.state == ScanState::Ground
    }

    fn dispatch(&mut self, on: &mut impl FnMut(Piece<'_>)) {
        if !self.overflow {
            on(Piece::Osc(&self.osc));
        }
        self.osc.clear();
        self.overflow = false;
    }

    pub(crate) fn feed(&mut self, data: &[u8], on: &mut impl FnMut(Piece<'_>)) {
        let mut start: Option<usize> = None;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                ScanState::Ground => {
                    if b == 0x1b {
                        if let Some(s) = start.take() {
                            on(Piece::Text(&data[s..i]));
                        }
                        self.state = ScanState::Esc;
                    } else if start.is_none() {
                        start = Some(i);
                    }
                }
                ScanState::Esc => {
                    if b == b']' {
                        self.state = ScanState::Osc;
                        self.osc.clear();
                        self.overflow = false;
                    } else {
                        on(Piece::Text(b"\x1b"));
                        if b != 0x1b {
                            self.state = ScanState::Ground;
                            start = Some(i);
                        }
                    }
                }
                ScanState::Osc => match b {
                    0x07 => {
                        self.dispatch(on);
                        self.state = ScanState::Ground;
                    }
                    0x1b => self.state = ScanState::OscEsc,
                    0x18 | 0x1a => {
                        self.osc.clear();
                        self.state = ScanState::Ground;
                    }
                    _ => {
                        if self.osc.len() < MAX_OSC {
                            self.osc.push(b);
                        } else {
                            self.overflow = true;
                        }
                    }
                },
                ScanState::OscEsc => {
                    self.dispatch(on);
                    if b == b'\\' {
                        self.state = ScanState::Ground;
                    } else {
                        // An ESC that starts something else also ends the OSC.
                        self.state = ScanState::Esc;
                        continue;
                    }
                }
            }
            i += 1;
        }
        if let Some(s) = start {
            on(Piece::Text(&data[s..]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output lines, capped while they stream

/// Rendered output lines with at most `max_lines` lines and `max_bytes` bytes kept: the first
/// third and the last two thirds, like [`termloom_core::text::cap`], so memory stays bounded
/// however much a command prints.
pub(crate) struct LineSink {
    partial: Vec<u8>,
    head: Vec<String>,
    head_bytes: usize,
    head_open: bool,
    tail: VecDeque<String>,
    tail_bytes: usize,
    total: u64,
    dropped: u64,
    /// The end of the last line typed: the line that ends with it is the echo, and it and
    /// everything before it are dropped (prompt and quiet strategies).
    echo: Option<String>,
    echo_seen: bool,
    echo_at: usize,
    echo_lines: usize,
    lines_seen: usize,
    head_lines: usize,
    tail_lines: usize,
    head_budget: usize,
    max_bytes: usize,
}

impl LineSink {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        let max_lines = max_lines.max(2);
        let max_bytes = max_bytes.max(64);
        let head_lines = (max_lines / 3).max(1);
        LineSink {
            partial: Vec::new(),
            head: Vec::new(),
            head_bytes: 0,
            head_open: true,
            tail: VecDeque::new(),
            tail_bytes: 0,
            total: 0,
            dropped: 0,
            echo: None,
            echo_seen: false,
            echo_at: 0,
            echo_lines: 0,
            lines_seen: 0,
            head_lines,
            tail_lines: max_lines - head_lines,
            head_budget: max_bytes / 3,
            max_bytes,
        }
    }

    /// Drops the echo of `typed` (and what came before it) from the output.
    pub(crate) fn expect_echo(mut self, typed: &str) -> Self {
        self.echo = typed
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| {
                let chars: Vec<char> = l.chars().collect();
                chars[chars.len().saturating_sub(16)..].iter().collect()
            });
        self.echo_lines = typed.split('\n').count();
        self
    }

    pub(crate) fn push(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&data[..pos]);
            let line = clean_line(&self.partial);
            self.partial.clear();
            self.add(line);
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        // A line without a newline is cut where text::lines cuts it (between characters).
        if self.partial.len() > termloom_core::text::MAX_LINE_BYTES {
            let raw = termloom_core::text::cut_runaway(&mut self.partial);
            self.add(clean_line(&raw));
        }
    }

    fn add(&mut self, mut line: String) {
        self.lines_seen += 1;
        // The echo can come twice when the text was typed before the program read it (the
        // terminal echoes it, then a line editor draws it again): a second one right after the
        // first also goes.
        if (!self.echo_seen || self.lines_seen <= self.echo_at + 3)
            && let Some(e) = &self.echo
            && line.trim_end().ends_with(e.as_str())
        {
            self.echo_seen = true;
            self.echo_at = self.lines_seen;
            self.head.clear();
            self.tail.clear();
            self.head_bytes = 0;
            self.tail_bytes = 0;
            self.head_open = true;
            self.total = 0;
            self.dropped = 0;
            return;
        }
        self.total += 1;
        if line.len() > self.max_bytes {
            let cut = line.len() - termloom_core::text::last_bytes(&line, self.max_bytes).len();
            line.drain(..cut);
        }
        let n = line.len() + 1;
        if self.head_open
            && self.head.len() < self.head_lines
            && self.head_bytes + n <= self.head_budget
        {
            self.head.push(line);
            self.head_bytes += n;
            return;
        }
        self.head_open = false;
        self.tail.push_back(line);
        self.tail_bytes += n;
        let tail_budget = self.max_bytes.saturating_sub(self.head_bytes);
        while self.tail.len() > 1
            && (self.tail.len() > self.tail_lines || self.tail_bytes > tail_budget)
        {
            if let Some(l) = self.tail.pop_front() {
                self.tail_bytes -= l.len() + 1;
                self.dropped += 1;
            }
        }
    }

    /// Drops the last lines when they are `set -x`'s trace of termloom's own prompt hook: bash
    /// traces the call of `_termloom_prompt` and its first statements before the hook's `P`
    /// mark ends the command's output, so with xtrace on every run's output ended with them.
    /// Only a trailing run of trace lines (`+ …`) that starts with that call goes.
    fn drop_hook_trace(&mut self) {
        fn trace(l: &str) -> Option<&str> {
            let rest = l.trim_start_matches('+');
            (rest.len() < l.len() && rest.starts_with(' ')).then(|| rest.trim())
        }
        if !self.partial.is_empty() {
            return;
        }
        let lines: Vec<&String> = self.head.iter().chain(self.tail.iter()).collect();
        let mut from = None;
        for (i, l) in lines.iter().enumerate().rev() {
            match trace(l) {
                Some("_termloom_prompt") => {
                    from = Some(i);
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        let Some(from) = from else { return };
        let drop = lines.len() - from;
        for _ in 0..drop {
            if let Some(l) = self.tail.pop_back() {
                self.tail_bytes -= l.len() + 1;
            } else if let Some(l) = self.head.pop() {
                self.head_bytes -= l.len() + 1;
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Whether the echo has gone by (seen, or at least as many lines as were typed).
    fn echo_done(&self) -> bool {
        self.echo.is_none() || self.echo_seen || self.lines_seen >= self.echo_lines
    }

    /// The line the cursor is on, rendered.
    fn partial_text(&self) -> String {
        clean_line(&self.partial)
    }

    /// The unfinished last line as it should end the output: zsh's PROMPT_SP (a reverse-video
    /// `%`, spaces to the margin, `\r \r`), printed before the prompt hook, is dropped.
    fn final_partial(&self) -> String {
        let raw = &self.partial[..];
        if let Some(body) = raw.strip_suffix(b"\r \r") {
            // The mark (PROMPT_EOL_MARK, `%` or `#` by default), then spaces to the margin.
            let rendered = clean_line(body);
            let mut s = rendered.trim_end_matches(' ').to_string();
            if s.len() < rendered.len() && (s.ends_with('%') || s.ends_with('#')) {
                s.pop();
            }
            return s;
        }
        clean_line(raw)
    }

    /// The text, with the unfinished last line when given, and whether lines were left out.
    fn render(&self, last: Option<String>) -> (String, bool) {
        let mut lines: Vec<&str> = self
            .head
            .iter()
            .chain(self.tail.iter())
            .map(String::as_str)
            .collect();
        let last = last.filter(|l| !l.is_empty());
        if let Some(l) = &last {
            lines.push(l);
        }
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        if self.dropped == 0 {
            return (lines.join("\n"), false);
        }
        let total = self.total + u64::from(last.is_some());
        let from = self.head.len() as u64 + 1;
        let to = from + self.dropped - 1;
        let note = format!(
            "[… lines {from}-{to} of {total} left out ({} lines) …]",
            self.dropped
        );
        let (head, tail) = lines.split_at(self.head.len().min(lines.len()));
        let mut text = head.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&note);
        for l in tail {
            text.push('\n');
            text.push_str(l);
        }
        (text, true)
    }
}

// ---------------------------------------------------------------------------------------------
// Per-pane tracking

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Between OSC 133 C and D.
    Integration,
    /// Between termloom's S and E markers with this call's token.
    Marker,
    /// Everything after the echo (prompt and quiet strategies).
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Done(Option<i32>),
}

struct Capture {
    id: u64,
    mode: Mode,
    token: String,
    phase: Phase,
    sink: LineSink,
    last_output: Instant,
    /// The prompt-mark count when the capture ended.
    marks_at_done: u64,
    /// Integration: output held back since the shell's prompt hooks started (termloom's `P`
    /// mark) or since a `D`: what the hooks and the prompt print is not the command's. It goes
    /// into the sink after all when a later mark shows that the first one was printed by the
    /// command itself.
    held: Option<Vec<u8>>,
    /// Integration: the exit code of a `D` that waits for the prompt's `A` to end the run (a `D`
    /// the command printed is not followed by one).
    ending: Option<Option<i32>>,
}

impl Capture {
    fn new(id: u64, mode: Mode, token: String, phase: Phase, sink: LineSink) -> Self {
        Capture {
            id,
            mode,
            token,
            phase,
            sink,
            last_output: Instant::now(),
            marks_at_done: 0,
            held: None,
            ending: None,
        }
    }

    /// Text printed while the command runs.
    fn text(&mut self, t: &[u8]) {
        match &mut self.held {
            Some(h) if h.len() + t.len() <= MAX_HELD => h.extend_from_slice(t),
            Some(_) => {
                // Too much for a prompt: the mark that started holding was the command's.
                self.release_held();
                self.sink.push(t);
            }
            None => self.sink.push(t),
        }
    }

    /// Gives the held output to the sink: the mark that held it back was not the shell's.
    fn release_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.sink.push(&h);
        }
        self.ending = None;
    }
}

/// The most output an integration capture holds back after a `P` or `D` mark (a prompt and its
/// hooks print far less).
const MAX_HELD: usize = 64 * 1024;

/// What the tracker knows about the pane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Integration marks were seen.
    pub marks_seen: bool,
    /// The last mark: `A`, `B`, `C` or `D`.
    pub last_mark: Option<u8>,
    /// The last exit code a `D` mark or a run marker reported.
    pub last_exit: Option<i32>,
    /// The cwd from OSC 7.
    pub cwd: Option<String>,
    /// The pane's shell stopped sending its integration's marks (see [`PaneTracker::lose`]);
    /// cleared by the next prompt mark.
    pub lost: bool,
    /// The shell showed its continuation prompt (termloom's `2` mark): the line typed is not
    /// complete. Cleared by the next prompt, command start or end mark.
    pub continuation: bool,
}

/// What an integrated shell's line editor held when asked ([`LINE_QUERY`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineAnswer {
    /// Characters on the command line.
    pub len: u64,
    /// readline is in vi command mode: typed text would be taken as commands.
    pub command_mode: bool,
    /// The shell shows its continuation prompt: a line typed before is not complete.
    pub continuation: bool,
}

/// The key sequence an integrated bash answers with termloom's `L` mark (its line length and
/// editing mode), bound by the integration in every readline keymap to a function that changes
/// nothing. Sent only to a shell whose state file says it is bound.
pub(crate) const LINE_QUERY: &str = "\x1b[6973~";

#[derive(Default)]
struct TrackData {
    facts: Facts,
    /// How many `A` (prompt start) and `C` (command start) marks came.
    a_marks: u64,
    c_marks: u64,
    prompt_marks: u64,
    dead: bool,
    capture: Option<Capture>,
    next_id: u64,
    /// How many line-query answers came, and the last one.
    line_answers: u64,
    line: Option<LineAnswer>,
}

fn parse_code(s: &[u8]) -> Option<i32> {
    let end = s.iter().position(|b| *b == b';').unwrap_or(s.len());
    std::str::from_utf8(&s[..end]).ok()?.trim().parse().ok()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && let Some(b) = std::str::from_utf8(&s[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of an OSC 7 payload (`file://host/path`, percent-encoded).
fn parse_osc7(p: &[u8]) -> Option<String> {
    let rest = p.strip_prefix(b"file://")?;
    let slash = rest.iter().position(|b| *b == b'/')?;
    Some(percent_decode(&rest[slash..]))
}

impl TrackData {
    fn on_piece(&mut self, p: Piece<'_>, now: Instant) -> bool {
        match p {
            Piece::Text(t) => match &mut self.capture {
                Some(c) if c.phase == Phase::Running => {
                    c.text(t);
                    c.last_output = now;
                    c.mode == Mode::Raw
                }
                _ => false,
            },
            Piece::Osc(o) => self.on_osc(o),
        }
    }

    fn on_osc(&mut self, o: &[u8]) -> bool {
        if let Some(rest) = o.strip_prefix(b"133;") {
            let Some(&kind) = rest.first() else {
                return false;
            };
            if !matches!(kind, b'A' | b'B' | b'C' | b'D') {
                return false;
            }
            self.facts.marks_seen = true;
            self.facts.last_mark = Some(kind);
            if matches!(kind, b'A' | b'C' | b'D') {
                self.facts.continuation = false;
            }
            if kind == b'A' {
                self.facts.lost = false;
            }
            let mut code = None;
            if kind == b'D' {
                code = rest.get(2..).and_then(parse_code);
                if code.is_some() {
                    self.facts.last_exit = code;
                }
            }
            if matches!(kind, b'A' | b'D') {
                self.prompt_marks += 1;
            }
            match kind {
                b'A' => self.a_marks += 1,
                b'C' => self.c_marks += 1,
                _ => {}
            }
            if let Some(c) = &mut self.capture
                && c.mode == Mode::Integration
            {
                // The shell's own end is `D` then `A` (the next prompt): a `D` the command
                // printed is not followed by `A`, and a later `P` or `D` shows it.
                match (kind, c.phase) {
                    (b'C', Phase::Waiting) => c.phase = Phase::Running,
                    (b'D', Phase::Running) => {
                        if c.ending.is_some() {
                            c.release_held();
                        }
                        c.held.get_or_insert_with(Vec::new);
                        c.ending = Some(code);
                    }
                    (b'A', Phase::Running) => {
                        if let Some(code) = c.ending {
                            c.phase = Phase::Done(code);
                            c.marks_at_done = self.prompt_marks;
                            c.held = None;
                        }
                    }
                    _ => {}
                }
            } else if let Some(c) = &mut self.capture
                && c.mode == Mode::Marker
                && c.phase == Phase::Running
            {
                // A marker run goes into a plain shell nested in an integrated one: once its
                // start marker came, the outer shell's end and prompt (`D`, then `A`) mean the
                // nested shell ended (its command ran `exit`), and the end marker never will.
                // (Before the start marker, they are a nested shell ending that was told to
                // before the run's line: the outer shell reads that line then.)
                match kind {
                    b'D' => c.ending = Some(code),
                    b'A' => {
                        if let Some(code) = c.ending {
                            c.phase = Phase::Done(code);
                            c.marks_at_done = self.prompt_marks;
                        }
                    }
                    _ => {}
                }
            }
            return true;
        }
        if let Some(rest) = o.strip_prefix(b"7;") {
            if let Some(cwd) = parse_osc7(rest) {
                self.facts.cwd = Some(cwd);
            }
            return false;
        }
        if let Some(rest) = o
            .strip_prefix(MARKER_OSC.as_bytes())
            .and_then(|r| r.strip_prefix(b";"))
        {
            if let Some(answer) = rest.strip_prefix(b"L;") {
                let mut it = answer.splitn(3, |b| *b == b';');
                let len = it.next().and_then(parse_code).unwrap_or(0);
                self.line = Some(LineAnswer {
                    len: u64::try_from(len).unwrap_or(0),
                    command_mode: it.next() == Some(b"c"),
                    continuation: it.next() == Some(b"1"),
                });
                self.line_answers += 1;
                return true;
            }
            if rest == b"2" {
                self.facts.continuation = true;
                return true;
            }
            let Some(c) = &mut self.capture else {
                return false;
            };
            if rest == b"P" {
                // The shell's prompt hooks start: what follows is theirs, not the command's.
                if c.mode == Mode::Integration && c.phase == Phase::Running {
                    c.release_held();
                    c.sink.drop_hook_trace();
                    c.held = Some(Vec::new());
                }
                return false;
            }
            if c.mode != Mode::Marker {
                return false;
            }
            let mut it = rest.splitn(3, |b| *b == b';');
            let (kind, token) = (it.next(), it.next());
            if token != Some(c.token.as_bytes()) {
                return false;
            }
            match (kind, c.phase) {
                (Some(b"S"), Phase::Waiting) => c.phase = Phase::Running,
                (Some(b"E"), Phase::Waiting | Phase::Running) => {
                    let code = it.next().and_then(parse_code);
                    c.phase = Phase::Done(code);
                    c.marks_at_done = self.prompt_marks;
                    if code.is_some() {
                        self.facts.last_exit = code;
                    }
                }
                _ => return false,
            }
            return true;
        }
        false
    }
}

struct Track {
    scan: Scanner,
    data: TrackData,
}

/// The live view of one pane's output (see the module docs).
pub(crate) struct PaneTracker {
    track: Mutex<Track>,
    changed: watch::Sender<u64>,
}

enum Look {
    Done(Option<i32>),
    Prompt,
    Dead,
    Gone,
    Pending { last_output: Instant },
}

impl PaneTracker {
    fn new() -> Self {
        PaneTracker {
            track: Mutex::new(Track {
                scan: Scanner::default(),
                data: TrackData::default(),
            }),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn feed(&self, data: &[u8]) {
        let now = Instant::now();
        let changed = {
            let mut g = self.lock();
            let Track { scan, data: d } = &mut *g;
            let capturing = d
                .capture
                .as_ref()
                .is_some_and(|c| c.phase == Phase::Running);
            if scan.idle() && !capturing && !data.contains(&0x1b) {
                return;
            }
            let mut changed = false;
            scan.feed(data, &mut |p| changed |= d.on_piece(p, now));
            changed
        };
        if changed {
            self.bump();
        }
    }

    fn kill(&self) {
        self.lock().data.dead = true;
        self.bump();
    }

    pub(crate) fn alive(&self) -> bool {
        !self.lock().data.dead
    }

    /// How many line-query answers came so far, and the last one.
    fn line_answer(&self) -> (u64, Option<LineAnswer>) {
        let g = self.lock();
        (g.data.line_answers, g.data.line)
    }

    /// A new tap for this tracker after its stream ended while the pane lives on (the pane moved
    /// to another workspace, whose output client carries it from now on).
    fn revive(self: &Arc<Self>) -> Tap {
        self.lock().data.dead = false;
        tap_for(self)
    }

    pub(crate) fn facts(&self) -> Facts {
        self.lock().data.facts.clone()
    }

    /// Notes that the pane's shell no longer sends its integration's marks: until a prompt mark
    /// comes again, runs use per-call markers.
    fn lose(&self) {
        self.lock().data.facts.lost = true;
    }

    /// Whether capture `id` saw its command start (or is not waiting for a mark to).
    fn started(&self, id: u64) -> bool {
        let g = self.lock();
        g.data
            .capture
            .as_ref()
            .filter(|c| c.id == id)
            .is_none_or(|c| c.phase != Phase::Waiting)
    }

    /// The marks counted so far (see [`Marks`]).
    fn marks(&self) -> Marks {
        let g = self.lock();
        Marks {
            a: g.data.a_marks,
            c: g.data.c_marks,
            last: g.data.facts.last_mark,
        }
    }

    pub(crate) fn prompt_marks(&self) -> u64 {
        self.lock().data.prompt_marks
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn start(&self, mode: Mode, token: String, sink: LineSink) -> u64 {
        let mut g = self.lock();
        g.data.next_id += 1;
        let id = g.data.next_id;
        let phase = if mode == Mode::Raw {
            Phase::Running
        } else {
            Phase::Waiting
        };
        g.data.capture = Some(Capture::new(id, mode, token, phase, sink));
        id
    }

    /// Starts a capture that ends at termloom's `E` marker with `token` (used by `install`).
    pub(crate) fn start_marker(&self, token: &str) -> u64 {
        self.start(Mode::Marker, token.to_string(), LineSink::new(20, 4096))
    }

    /// For a marker capture that ended: its exit code and the prompt-mark count at its end (the
    /// capture is removed).
    pub(crate) fn marker_done(&self, id: u64) -> Option<(Option<i32>, u64)> {
        let mut g = self.lock();
        let c = g.data.capture.as_ref().filter(|c| c.id == id)?;
        let Phase::Done(code) = c.phase else {
            return None;
        };
        let marks = c.marks_at_done;
        g.data.capture = None;
        Some((code, marks))
    }

    /// Drops capture `id` if it is still there.
    pub(crate) fn stop_capture(&self, id: u64) {
        self.stop(id);
    }

    fn stop(&self, id: u64) {
        let mut g = self.lock();
        if g.data.capture.as_ref().is_some_and(|c| c.id == id) {
            g.data.capture = None;
        }
    }

    fn touch(&self, id: u64) {
        let mut g = self.lock();
        if let Some(c) = g.data.capture.as_mut().filter(|c| c.id == id) {
            c.last_output = Instant::now();
        }
    }

    fn look(&self, id: u64, prompt: Option<&Regex>) -> Look {
        let g = self.lock();
        if g.data.dead {
            return Look::Dead;
        }
        let Some(c) = g.data.capture.as_ref().filter(|c| c.id == id) else {
            return Look::Gone;
        };
        if let Phase::Done(code) = c.phase {
            return Look::Done(code);
        }
        if let Some(re) = prompt
            && c.sink.echo_done()
            && re.is_match(&c.sink.partial_text())
        {
            return Look::Prompt;
        }
        Look::Pending {
            last_output: c.last_output,
        }
    }

    /// The output so far, for a run that is still going.
    fn snapshot(&self, id: u64) -> (String, bool) {
        let g = self.lock();
        match g.data.capture.as_ref().filter(|c| c.id == id) {
            Some(c) => c.sink.render(Some(c.sink.partial_text())),
            None => (String::new(), false),
        }
    }

    /// Takes the finished capture and renders it. `prompt` is what stood left of the cursor
    /// when the command was typed: an unfinished last line that shows it again is the program's
    /// next prompt, not output.
    fn finish(&self, id: u64, strategy: Strategy, prompt: Option<&str>) -> (String, bool) {
        let mut g = self.lock();
        let Some(c) = g.data.capture.take_if(|c| c.id == id) else {
            return (String::new(), false);
        };
        let last = match strategy {
            // The line the cursor is on is the prompt itself.
            Strategy::Prompt => None,
            Strategy::ShellIntegration => Some(c.sink.final_partial()),
            _ => Some(c.sink.partial_text()).filter(|l| !is_prompt_again(l, prompt)),
        };
        c.sink.render(last)
    }
}

/// A new tracker and the output tap that feeds it (the tap holds it weakly, and marks it dead
/// when the hub drops the tap).
fn tapped_tracker() -> (Arc<PaneTracker>, Tap) {
    let t = Arc::new(PaneTracker::new());
    let tap = tap_for(&t);
    (t, tap)
}

/// An output tap that feeds `t` (weakly) and marks it dead when the hub drops the tap.
fn tap_for(t: &Arc<PaneTracker>) -> Tap {
    let token = TapToken(Arc::downgrade(t));
    Arc::new(move |d: &[u8]| token.feed(d))
}

/// Held by the output tap: feeds the tracker, and marks it dead when the hub drops the tap
/// (pane closed, control client or server gone).
struct TapToken(Weak<PaneTracker>);

impl TapToken {
    fn feed(&self, data: &[u8]) {
        if let Some(t) = self.0.upgrade() {
            t.feed(data);
        }
    }
}

impl Drop for TapToken {
    fn drop(&mut self) {
        if let Some(t) = self.0.upgrade() {
            t.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-terminal state

/// A run's shared bookkeeping.
struct RunShared {
    finished: AtomicBool,
    handle: Mutex<Option<String>>,
    command: String,
    strategy: Strategy,
    /// The run's task, for a later run that supersedes it (see [`refuse_if_pending`]).
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

/// Serializes runs on one session and remembers a run that timed out.
pub(crate) struct Slot {
    pub(crate) lock: Arc<tokio::sync::Mutex<()>>,
    /// Held by a run from its look at the pane until its line is typed, and by every input
    /// typed outside a run: an input either comes before the run looks (and the run sees it
    /// typed ahead) or after its line (and goes to what the run started), never in between,
    /// where the run would take the input's command for its own.
    typing: Arc<tokio::sync::Mutex<()>>,
    pending: Mutex<Option<Arc<RunShared>>>,
}

/// The right to type into a session (see [`Slot`]'s `typing`); it keeps the slot alive.
pub(crate) struct Typing {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    _slot: Arc<Slot>,
}

struct Pending {
    session: SessionId,
    strategy: Strategy,
    started: Instant,
    created: Instant,
    shared: Arc<RunShared>,
    tracker: Arc<PaneTracker>,
    capture: u64,
    /// The workspace and its restore count before typing (see `Drive::restores_before`).
    ws: String,
    restores_before: u64,
    rx: tokio::sync::Mutex<Option<oneshot::Receiver<Result<RunResult>>>>,
    abort: tokio::task::AbortHandle,
}

/// The run state of one [`TmuxTerminal`]: pane trackers, per-session slots, runs that timed out,
/// and the integration scripts.
#[derive(Default)]
pub struct RunState {
    trackers: tokio::sync::Mutex<HashMap<String, Arc<PaneTracker>>>,
    /// When input ending a line was last typed into each pane (see [`RunState::entered`]).
    entered: Mutex<HashMap<String, Entered>>,
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
    pending: Mutex<HashMap<String, Arc<Pending>>>,
    scripts: Mutex<Option<Scripts>>,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState").finish_non_exhaustive()
    }
}

/// Integration marks a tracker has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Marks {
    a: u64,
    c: u64,
    last: Option<u8>,
}

/// Inputs ending a line, typed into a pane and not answered yet: when the last was typed, how
/// many, the pane's tracker and its marks before the first (if the pane was tracked), else when
/// its shell's state file had last been written.
#[derive(Clone, Debug)]
struct Entered {
    at: Instant,
    lines: u64,
    tracked: Option<(Weak<PaneTracker>, Marks)>,
    state: Option<std::time::SystemTime>,
}

impl Entered {
    /// Whether the shell has read every input, judged by the marks of its tracker now: each
    /// starts a command (`C`) or ends in a prompt (`A`); after a command's `C` or `D`, the prompt
    /// that follows is still to come. An input of several lines counts once (most often one
    /// command); several commands in one input are only waited for up to their first start.
    fn answered_by(&self, then: Marks, now: Marks) -> bool {
        let pending = u64::from(matches!(then.last, Some(b'C' | b'D')));
        now.c >= then.c + self.lines || now.a >= then.a + self.lines + pending
    }
}

impl RunState {
    /// Notes that input ending a line (a command, perhaps) is about to be typed into `pane`
    /// outside a run: a run that starts before the shell has read it must not take the shell's
    /// last prompt for the program that will read the run's text (see [`decide`]).
    /// Inputs typed while earlier ones are still unanswered add up: a run waits for the shell
    /// to have read them all. An untracked pane whose output this process receives already gets
    /// a tracker here, so that the inputs' answers can be counted.
    pub(crate) fn entered(&self, term: &TmuxTerminal, id: SessionId, pane: &str) {
        let opts = term.client().options();
        let tracker = self.trackers.try_lock().ok().and_then(|mut map| {
            if let Some(t) = map.get(pane).filter(|t| t.alive()) {
                return Some(t.clone());
            }
            let (t, tap) = tapped_tracker();
            if !term.hub().tap_routed(pane, tap) {
                return None;
            }
            map.retain(|_, t| t.alive());
            map.insert(pane.to_string(), t.clone());
            Some(t)
        });
        let tracked = tracker.as_ref().map(|t| (Arc::downgrade(t), t.marks()));
        // Only an untracked pane's answer is read from the state file.
        let state = match tracked {
            Some(_) => None,
            None => state_written(opts, id),
        };
        let mut now = Entered {
            at: Instant::now(),
            lines: 1,
            tracked,
            state,
        };
        let mut g = self.entered.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= 1024 {
            g.retain(|_, e| e.at.elapsed() < SETTLE);
        }
        if let Some(e) = g.get(pane)
            && e.at.elapsed() < SETTLE
            && let (Some((w, then)), Some(t)) = (&e.tracked, &tracker)
            && w.upgrade().is_some_and(|old| Arc::ptr_eq(&old, t))
            && !e.answered_by(*then, t.marks())
        {
            now.lines += e.lines;
            now.tracked = e.tracked.clone();
        }
        g.insert(pane.to_string(), now);
    }

    /// Forgets an input that could not be typed.
    pub(crate) fn not_entered(&self, pane: &str) {
        let mut g = self.entered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = g.get_mut(pane) {
            e.lines = e.lines.saturating_sub(1);
            if e.lines == 0 {
                g.remove(pane);
            }
        }
    }

    /// Whether lines typed into `pane`, the last less than [`SETTLE`] ago, have not all had an
    /// answer from the shell yet ([`Entered::answered_by`]). An answer is what belongs to those
    /// lines, not to the prompt before them, whose marks may still be on their way. A pane that
    /// was not tracked then: a command started since the tracker began, or the state file (which
    /// existed then) written again.
    fn typed_ahead(
        &self,
        opts: &TmuxOptions,
        id: SessionId,
        pane: &str,
        tracker: &PaneTracker,
    ) -> bool {
        let e = {
            let g = self.entered.lock().unwrap_or_else(|p| p.into_inner());
            match g.get(pane) {
                Some(e) => e.clone(),
                None => return false,
            }
        };
        if e.at.elapsed() >= SETTLE {
            return false;
        }
        let now = tracker.marks();
        let same = |w: &Weak<PaneTracker>| {
            w.upgrade()
                .is_some_and(|t| std::ptr::eq(Arc::as_ptr(&t), tracker))
        };
        let answered = match &e.tracked {
            Some((w, then)) if same(w) => e.answered_by(*then, now),
            // Compared for change: the file system's clock is coarser than ours.
            _ => now.c > 0 || (e.state.is_some() && state_written(opts, id) != e.state),
        };
        !answered
    }

    /// The integration scripts, written at first use.
    pub(crate) fn scripts(&self, opts: &TmuxOptions) -> Result<Scripts> {
        let mut g = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.as_ref() {
            return Ok(s.clone());
        }
        let s = integration::write_scripts(opts)?;
        *g = Some(s.clone());
        Ok(s)
    }

    pub(crate) fn slot(&self, id: SessionId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() > 256 {
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.lock.try_lock().is_err());
        }
        slots
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::new(tokio::sync::Mutex::new(())),
                    typing: Arc::new(tokio::sync::Mutex::new(())),
                    pending: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits for the right to type into session `id` (see [`Slot`]'s `typing`).
    pub(crate) async fn typing(&self, id: SessionId) -> Typing {
        let slot = self.slot(id);
        Typing {
            _guard: slot.typing.clone().lock_owned().await,
            _slot: slot,
        }
    }

    /// [`typing`](Self::typing) by `deadline`, else a timeout error naming `after`.
    pub(crate) async fn typing_by(
        &self,
        id: SessionId,
        deadline: tokio::time::Instant,
        after: Duration,
    ) -> Result<Typing> {
        tokio::time::timeout_at(deadline, self.typing(id))
            .await
            .map_err(|_| Error::Timeout {
                op: "waiting for input being typed into this session".into(),
                after,
            })
    }

    /// The tracker of `pane` (in workspace `ws`), tapping its output when there is none yet.
    pub(crate) async fn tracker(
        &self,
        term: &TmuxTerminal,
        pane: &str,
        ws: &str,
    ) -> Result<Arc<PaneTracker>> {
        let mut map = self.trackers.lock().await;
        if let Some(t) = map.get(pane).filter(|t| t.alive()) {
            return Ok(t.clone());
        }
        map.retain(|_, t| t.alive());
        let (t, tap) = tapped_tracker();
        term.hub().tap(ws, pane, tap).await?;
        map.insert(pane.to_string(), t.clone());
        Ok(t)
    }

    async fn existing_tracker(&self, pane: &str) -> Option<Arc<PaneTracker>> {
        self.trackers
            .lock()
            .await
            .get(pane)
            .filter(|t| t.alive())
            .cloned()
    }

    fn add_pending(&self, handle: String, p: Pending) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let hour = Duration::from_secs(3600);
        map.retain(|_, p| {
            !(p.shared.finished.load(Ordering::SeqCst) && p.created.elapsed() > hour)
        });
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(h, _)| h.clone());
            match oldest.and_then(|h| map.remove(&h)) {
                Some(p) => p.abort.abort(),
                None => break,
            }
        }
        map.insert(handle, Arc::new(p));
    }

    fn get_pending(&self, handle: &str) -> Option<Arc<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(handle)
            .cloned()
    }

    fn remove_pending(&self, handle: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(handle);
    }
}

/// The error for a session that is busy.
pub(crate) fn busy_error(pane: &str, why: &str) -> Error {
    Error::backend(BackendKind::Tmux, format!("session {pane} is busy: {why}"))
}

/// Refuses when a run that timed out is still going on this session.
///
/// A run by prompt regex or quiet period that timed out is superseded instead (its task ends,
/// and its handle says it was abandoned): nothing but a regex that never matched, or a program
/// that never fell silent, may be keeping it, and C-c cannot end it.
///
/// A run by prompt or quiet period (`repl`) supersedes a shell run too: that one waits for its
/// command to end, and the command is what the new run types into (`python3` started by a run,
/// then driven by its prompt). C-c would not end it.
pub(crate) fn refuse_if_pending(slot: &Slot, repl: bool) -> Result<()> {
    let mut g = slot.pending.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = g
        .as_ref()
        .filter(|s| !s.finished.load(Ordering::SeqCst))
        .filter(|s| repl || matches!(s.strategy, Strategy::Prompt | Strategy::Quiet))
    {
        if let Some(a) = s.abort.lock().unwrap_or_else(|p| p.into_inner()).take() {
            a.abort();
        }
        s.finished.store(true, Ordering::SeqCst);
        *g = None;
        return Ok(());
    }
    if let Some(s) = g.as_ref().filter(|s| !s.finished.load(Ordering::SeqCst)) {
        let handle = s
            .handle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(Error::backend(
            BackendKind::Tmux,
            format!(
                "session is busy: an earlier run (`{}`, handle {handle}) is still going; wait for it (over MCP: wait_for with the session and handle), interrupt it with the key C-c first, or, when it started a program that reads input (a REPL), give a prompt regex or a quiet period to type into that program",
                s.command
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Looking at the pane

/// What tmux (and /proc) say about a pane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The pane's first process (its shell).
    pub pid: u32,
    /// The workspace id (`$N`).
    pub ws: String,
    pub in_mode: bool,
    pub dead: bool,
    /// The foreground command's name.
    pub fg: String,
    /// tmux's idea of the cwd.
    pub path: String,
    /// Whether the pane's own shell is the foreground process group (Linux `/proc`).
    pub fg_is_root: Option<bool>,
    /// Whether the foreground process looks like an interactive shell rather than a script or a
    /// `-c` command (Linux `/proc`, only asked when it is not the pane's own shell).
    pub fg_interactive: Option<bool>,
    /// The foreground process is a fork of the pane's own shell (its command line is the
    /// shell's, byte for byte): a subshell `( … )`, or a fork on its way to run a program. Not a
    /// nested shell a person started (Linux `/proc`).
    pub fg_fork: bool,
    /// `TERMLOOM_STATE_FILE` from the environment the pane's shell was started with (Linux
    /// `/proc`; read by `decide` only when it matters): termloom started it with the
    /// integration, which may still be loading.
    pub started_with: Option<String>,
    /// tmux's `synchronize-panes` is on for the pane: every key typed into it goes to the other
    /// panes of its window too.
    pub synchronized: bool,
    /// The pane's process is still starting: tmux's forked child has not run its program yet,
    /// or has no terminal yet.
    pub starting: bool,
    /// Whether the pane's terminal reads whole lines (canonical mode), asked of the terminal
    /// itself (local servers). A shell's line editor turns that off at its prompt; a builtin
    /// reading input (`read`), a loop or a function runs with it on, and the shell is still the
    /// foreground program then.
    pub line_mode: Option<bool>,
    /// The run claim on the pane (`@termloom_run`: `<token>.<unix ms>.<pid>`, empty when none):
    /// the last run of any process that typed into it and has not finished (see [`claim`]).
    pub claim: String,
}

impl Probe {
    pub(crate) fn refuse_copy_mode(&self) -> Result<()> {
        if self.in_mode {
            return Err(Error::InvalidArgument(
                "the pane is in copy mode, where typed text does not reach the program; leave it (q) first".into(),
            ));
        }
        Ok(())
    }

    /// Refuses typing while tmux copies every key to the other panes of the window.
    pub(crate) fn refuse_synchronized(&self, pane: &str) -> Result<()> {
        if self.synchronized {
            return Err(crate::session::synchronized_error(pane));
        }
        Ok(())
    }

    /// The pane's own shell is in front with its line editor reading (its terminal out of line
    /// mode): at a prompt, or `read -e`. Its kind.
    fn at_editor(&self) -> Option<ShellKind> {
        (self.fg_is_root == Some(true) && self.line_mode == Some(false))
            .then(|| shell_kind(&self.fg))
            .flatten()
    }
}

/// What this module reads of `/proc/PID/stat` (Linux).
struct ProcStat {
    /// The program's name (`comm`).
    name: String,
    /// `R`, `S`, … `Z` for a zombie (exited, not reaped yet).
    state: String,
    /// Its process group.
    pgrp: u32,
    /// The terminal's foreground process group (field 8).
    tpgid: i64,
}

impl ProcStat {
    /// Exited (a zombie, `Z`, has exited but is not reaped yet) or not.
    fn running(&self) -> bool {
        !matches!(self.state.as_str(), "Z" | "X" | "x")
    }
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let mut f = stat.get(close + 1..)?.split_whitespace();
    let state = f.next()?.to_string();
    let pgrp = f.nth(1)?.parse().ok()?;
    let tpgid = f.nth(2)?.parse().ok()?;
    Some(ProcStat {
        name: stat.get(open + 1..close)?.to_string(),
        state,
        pgrp,
        tpgid,
    })
}

/// The terminal's foreground process group, as process `pid` sees it.
fn proc_tpgid(pid: u32) -> Option<u32> {
    u32::try_from(proc_stat(pid)?.tpgid).ok().filter(|t| *t > 0)
}

/// The child processes of `pid` (Linux `/proc`; `None` when it cannot tell).
fn proc_children(pid: u32) -> Option<Vec<u32>> {
    let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    Some(
        list.split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect(),
    )
}

/// A child of `shell` still running in process group `pgid`, and its name (Linux `/proc`): what
/// is in front when the group's leader has ended.
fn live_group_member(shell: u32, pgid: u32) -> Option<(u32, String)> {
    proc_children(shell)?.into_iter().find_map(|child| {
        proc_stat(child)
            .filter(|s| s.pgrp == pgid && s.running())
            .map(|s| (child, s.name))
    })
}

/// Whether process `pid` exists and has not exited.
fn proc_running(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|s| s.running())
}

/// `TERMLOOM_STATE_FILE` in `/proc/PID/environ`.
fn proc_state_file(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"TERMLOOM_STATE_FILE="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The id termloom gave the pane whose shell is process `pid`, from the state file named in its
/// environment (`…/panes/<id>`; Linux `/proc`): known before the pane is tagged. Only for a shell
/// whose command line loads termloom's integration (bash's `--rcfile`, fish's
/// `--init-command`): the variable alone is inherited from a workspace's environment by panes
/// made there by hand.
pub(crate) fn intended_id(pid: u32) -> Option<SessionId> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if !cmdline.windows(18).any(|w| w == b"shell-integration/") {
        return None;
    }
    let file = proc_state_file(pid)?;
    let name = std::path::Path::new(&file).file_name()?.to_str()?;
    name.parse().ok()
}

/// Whether a command line (`/proc/PID/cmdline`: words ending in NUL) is a shell started to be
/// interactive (no script, no `-c`).
fn interactive_shell(raw: &[u8]) -> Option<bool> {
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let prog = args.first()?;
    shell_kind(prog)?;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--command" => return Some(false),
            "--rcfile" | "--init-file" | "--init-command" | "-C" | "-o" | "-O" => {
                it.next();
            }
            s if s.starts_with('-') || s.starts_with('+') => {
                if !s.starts_with("--") && s[1..].contains('c') {
                    return Some(false);
                }
            }
            _ => return Some(false),
        }
    }
    Some(true)
}

/// Reads the pane's state from tmux in one command (checking that the pane still carries session
/// `id`: tmux reuses `%N` after a restart), and the foreground process from `/proc`.
pub(crate) async fn probe(term: &TmuxTerminal, id: SessionId, pane: &str) -> Result<Probe> {
    let fmt = format::format(&[
        "#{pane_id}",
        "#{@termloom_id}",
        "#{pane_pid}",
        "#{session_id}",
        "#{pane_in_mode}",
        "#{pane_dead}",
        "#{pane_current_command}",
        "#{pane_tty}",
        "#{@termloom_run}",
        "#{synchronize-panes}",
        // Last: a path may hold any character, the separator too.
        "#{pane_current_path}",
    ]);
    let out = term
        .run(vec![
            Cmd::new("display-message")
                .arg("-p")
                .opt("-t", pane)
                .arg(fmt),
        ])
        .await?;
    let out = out.strip_suffix('\n').unwrap_or(&out);
    let f: Vec<&str> = out.splitn(11, SEP).collect();
    // display-message answers with empty fields when its target pane does not exist.
    if f.first().copied() != Some(pane) {
        return Err(Error::SessionDead {
            id: id.to_string(),
            name: NativeId::tmux(pane).to_string(),
        });
    }
    if f.len() < 11 {
        return Err(Error::backend(
            BackendKind::Tmux,
            format!("unexpected pane state from tmux: {out:?}"),
        ));
    }
    if f[1] != id.to_string() {
        return Err(Error::StaleNativeId {
            id: id.to_string(),
            native: NativeId::tmux(pane).to_string(),
        });
    }
    let f = &f[2..];
    let pid: u32 = f[0].trim().parse().unwrap_or(0);
    // /proc describes this machine: no use for a server on another host.
    let local = !term.client().options().is_remote();
    let tpgid = if pid > 0 && local {
        proc_tpgid(pid)
    } else {
        None
    };
    // A foreground group whose leader is gone or a zombie: a pipeline whose first program ended
    // (`seq 5 | less`: tmux then names the pane's own program as the current command, as it
    // cannot read the leader) when another of the shell's children is still in the group;
    // otherwise a passing state (a job just ended and the shell has not taken the terminal back
    // yet): unknown.
    let member = tpgid
        .filter(|t| *t != pid && !proc_running(*t))
        .and_then(|t| live_group_member(pid, t));
    let fg_is_root = match member {
        Some(_) => Some(false),
        None => tpgid
            .filter(|t| *t == pid || proc_running(*t))
            .map(|t| t == pid),
    };
    // Of a foreground process that is not the pane's own shell: its command line, read once.
    let cmdline = |p: u32| std::fs::read(format!("/proc/{p}/cmdline")).ok();
    let front = member.as_ref().map(|(p, _)| *p).or(tpgid);
    let fg_cmdline = front.filter(|t| *t != pid).and_then(cmdline);
    let fg_interactive = fg_cmdline.as_deref().and_then(interactive_shell);
    let fg_fork = fg_cmdline.is_some_and(|c| Some(c) == cmdline(pid));
    let fg = match member {
        Some((_, name)) => name,
        None => f[4].to_string(),
    };
    let starting = fg == "tmux"
        || (local
            && pid > 0
            && tpgid.is_none()
            && std::path::Path::new(&format!("/proc/{pid}")).exists());
    Ok(Probe {
        pid,
        ws: f[1].trim().to_string(),
        fg_fork,
        in_mode: f[2].trim() == "1",
        dead: f[3].trim() == "1",
        fg,
        path: f[8].to_string(),
        synchronized: f[7].trim() == "1",
        fg_is_root,
        fg_interactive,
        started_with: None,
        starting,
        line_mode: if local { tty_line_mode(f[5]) } else { None },
        claim: f[6].to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// The run claim: runs from different processes

/// The pane option that holds the run claim.
const OPT_RUN: &str = "@termloom_run";

/// A fresh claim on the pane by a run that typed its line and whose shell has not answered yet
/// (written its state file since; local servers): the line may still be queued, and a run
/// typing now would take that run's end for its own. A claim older than [`SETTLE`] is left
/// to the pane's own state; a finished run removes its claim.
fn claim_pending(p: &Probe, opts: &TmuxOptions, id: SessionId) -> bool {
    let Some((at, _)) = parse_claim(&p.claim) else {
        return false;
    };
    claim_fresh(at) && state_written(opts, id).is_none_or(|w| w <= at)
}

/// A claim's time and the process id of the run that wrote it (`<token>.<unix ms>.<pid>`).
fn parse_claim(claim: &str) -> Option<(std::time::SystemTime, Option<u32>)> {
    let mut it = claim.split('.');
    let _token = it.next()?;
    let ms: u64 = it.next()?.parse().ok()?;
    let pid = it.next().and_then(|p| p.parse().ok());
    Some((std::time::UNIX_EPOCH + Duration::from_millis(ms), pid))
}

fn claim_fresh(at: std::time::SystemTime) -> bool {
    std::time::SystemTime::now()
        .duration_since(at)
        .map(|age| age < SETTLE)
        .unwrap_or(true)
}

/// Whether another run holds the pane: its claim is fresh, or the process that wrote it is a
/// termloom process still running here (Linux `/proc`). What a run that cannot see a shell's
/// state (a REPL, by prompt or quiet) goes by: a run in another process is typing into the same
/// program.
fn claim_held(p: &Probe) -> bool {
    let Some((at, pid)) = parse_claim(&p.claim) else {
        return false;
    };
    // This process's own claim: its runs on a session take turns (the caller holds the slot),
    // so the run that wrote it has ended or was superseded.
    if pid == Some(std::process::id()) {
        return false;
    }
    claim_fresh(at)
        || pid
            .and_then(proc_stat)
            .is_some_and(|s| s.name.starts_with("termloom"))
}

/// Takes the run claim on `pane` for `token`, if it still holds `seen` (what the run looked
/// at): tmux compares and sets in one command, so of two processes that looked at the same
/// moment one wins and the other is told the session is busy. Returns the claim written.
async fn claim(term: &TmuxTerminal, pane: &str, seen: &str, token: &str) -> Result<String> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mine = format!("{token}.{ms}.{}", std::process::id());
    // termloom writes only hex digits, a dot and digits; anything else was set by hand and is
    // cleared first (it could not be compared inside a format).
    let valid = seen.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.');
    let mut cmds = Vec::new();
    if !valid {
        cmds.push(unset_claim(pane));
    }
    let seen = if valid { seen } else { "" };
    let set = Cmd::new("set-option")
        .arg("-p")
        .opt("-t", pane)
        .arg(OPT_RUN)
        .arg(&mine);
    let lost = Cmd::new("display-message")
        .arg("-p")
        .arg(format::format(&["L", &format!("#{{{OPT_RUN}}}")]));
    cmds.push(if_claim_is(pane, seen, set, lost));
    let out = term.run(cmds).await?;
    if out.lines().any(|l| l.starts_with("L\u{1f}")) {
        return Err(busy_error(
            pane,
            "another run (from another process) started on this session at the same moment; wait for it",
        ));
    }
    Ok(mine)
}

/// Removes the run claim `mine` from `pane` unless another run has taken it since.
async fn release(term: &TmuxTerminal, pane: &str, mine: &str) {
    let keep = Cmd::new("display-message").arg("-p").arg("");
    let _ = term
        .run(vec![if_claim_is(pane, mine, unset_claim(pane), keep)])
        .await;
}

/// Removes `pane`'s run claim, whatever it holds.
fn unset_claim(pane: &str) -> Cmd {
    Cmd::new("set-option")
        .arg("-p")
        .arg("-u")
        .opt("-t", pane)
        .arg(OPT_RUN)
}

/// One command that runs `then` when `pane`'s run claim is `value`, else `otherwise` (one
/// command each, so the reply's length is known either way): tmux compares and acts in one step.
fn if_claim_is(pane: &str, value: &str, then: Cmd, otherwise: Cmd) -> Cmd {
    Cmd::new("if-shell")
        .arg("-F")
        .opt("-t", pane)
        .arg(format!("#{{==:#{{{OPT_RUN}}},{value}}}"))
        .arg(crate::session::command_line(vec![then]))
        .arg(crate::session::command_line(vec![otherwise]))
}

/// Whether the terminal at `tty` (`/dev/pts/N`) is in canonical mode, when it can be asked (opened
/// without becoming anyone's controlling terminal, nothing read or written).
fn tty_line_mode(tty: &str) -> Option<bool> {
    use rustix::fs::{Mode, OFlags, open};
    if !tty.starts_with("/dev/") {
        return None;
    }
    let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = open(tty, flags, Mode::empty()).ok()?;
    let t = rustix::termios::tcgetattr(&fd).ok()?;
    Some(t.local_modes.contains(rustix::termios::LocalModes::ICANON))
}

/// Why a shell at its continuation prompt takes no run.
const CONTINUATION_BUSY: &str = "the shell waits for the rest of a command line typed before (its continuation prompt: an open quote or bracket); finish the line, or clear it with the key C-c";

/// Why [`choose`] calls an idle-looking shell busy when its terminal reads whole lines.
const LINE_MODE_BUSY: &str = "the shell is not at its prompt (a builtin such as `read`, a loop or a function runs: its terminal reads whole lines)";

/// How long [`decide`] lets a shell whose terminal reads whole lines take to reach its line
/// editor: a prompt is printed a moment before the editor turns that mode off.
const LINE_MODE_SETTLE: Duration = Duration::from_millis(300);

/// How a run will detect completion, or why it cannot start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    Integration(ShellKind),
    Marker(ShellKind),
    Busy(String),
}

impl Choice {
    /// Busy only because the shell's terminal reads whole lines ([`LINE_MODE_BUSY`]): a passing
    /// state right after a prompt is printed, worth a look again within [`LINE_MODE_SETTLE`].
    fn line_mode(&self) -> bool {
        matches!(self, Choice::Busy(why) if why.starts_with(LINE_MODE_BUSY))
    }
}

/// Another process than the pane's shell is in front and tmux names it a shell, yet its command
/// line is no shell's (it is gone, or has just exec'd), or is the pane's shell's own (a fork): a
/// fork on its way to running a program (a prompt hook's command, a job), a subshell `( … )`, or
/// a nested shell ending. Not a nested shell to run markers in (a subshell's `read` took the
/// marker line as data): waited out a moment, then busy.
fn passing_front(p: &Probe) -> bool {
    p.fg_is_root == Some(false)
        && (p.fg_interactive.is_none() || p.fg_fork)
        && shell_kind(&p.fg).is_some()
}

/// The automatic strategy (see the module docs). `state_file` is where this session's integrated
/// shell would write its state.
pub(crate) fn choose(
    p: &Probe,
    facts: &Facts,
    file: Option<&FileState>,
    state_file: Option<&str>,
) -> Choice {
    let kind = shell_kind(&p.fg);
    let nested = p.fg_is_root == Some(false);
    let busy = |why: String| {
        Choice::Busy(format!(
            "{why}; wait for it, interrupt it with the key C-c, or give a prompt regex or a quiet period to type into it (run_command's prompt or quiet_ms; the CLI's --prompt or --quiet-ms)"
        ))
    };
    let running = || busy(format!("'{}' is running in the foreground", p.fg));
    let Some(kind) = kind else {
        return running();
    };
    // Per-call markers are typed into whatever reads the terminal. A shell with a line editor
    // (bash, zsh, fish) turns canonical mode off at its prompt: with it on, a builtin such as
    // `read`, a loop or a function has the terminal, and would take the marker line as data.
    let marker = |kind: ShellKind| {
        if kind.has_integration() && p.line_mode == Some(true) {
            busy(LINE_MODE_BUSY.into())
        } else {
            Choice::Marker(kind)
        }
    };
    if nested && p.fg_interactive == Some(false) {
        return busy(format!("a '{}' script or command is running", p.fg));
    }
    if passing_front(p) {
        return busy(if p.fg_fork {
            "a subshell or job of the pane's shell runs in front".to_string()
        } else {
            format!(
                "'{}' in front of the pane's shell is starting or ending",
                p.fg
            )
        });
    }
    if facts.continuation {
        return busy(CONTINUATION_BUSY.into());
    }
    if facts.lost || file.is_some_and(|f| f.lost) {
        return marker(kind);
    }
    let file_names_fg = file.is_some_and(|f| shell_kind(&f.shell) == Some(kind));
    if facts.marks_seen {
        if facts.last_mark == Some(b'C') {
            // The integrated shell started something. A shell in front of it that is not the
            // pane's own (or is another shell than the one that wrote the marks) is a nested,
            // plain shell: markers work there.
            let other_shell = file.is_some() && !file_names_fg;
            if nested || other_shell {
                return marker(kind);
            }
            return busy("a command is running (its end mark has not come yet)".into());
        }
        return Choice::Integration(kind);
    }
    if file_names_fg && !nested {
        if file.is_some_and(|f| f.busy) {
            return busy("the shell reports a command running".into());
        }
        // The file says idle, but bash writes only at its prompt: a builtin, a loop or a
        // function that runs since then shows in the terminal's mode.
        if p.line_mode == Some(true) {
            return busy(LINE_MODE_BUSY.into());
        }
        return Choice::Integration(kind);
    }
    // termloom started this shell with the integration and it has not reached its first prompt
    // yet: what is typed now is read after the hooks are in.
    if file.is_none()
        && !nested
        && kind.has_integration()
        && state_file.is_some_and(|s| p.started_with.as_deref() == Some(s))
    {
        return Choice::Integration(kind);
    }
    marker(kind)
}

/// `choose` for a run, waiting out two passing states first: the pane's process is still
/// starting (tmux's forked child shows as `tmux`, or has no terminal yet), or the pane's shell is
/// back in front but its end mark has not come yet (a command just ended, or a builtin runs).
pub(crate) async fn decide(
    term: &TmuxTerminal,
    id: SessionId,
    pane: &str,
    probe: &mut Probe,
    tracker: &PaneTracker,
) -> Result<Choice> {
    let opts = term.client().options();
    let state_file = state_path(opts, id);
    let until = tokio::time::Instant::now() + SETTLE;
    let line_mode_until = tokio::time::Instant::now() + LINE_MODE_SETTLE;
    let mut rx = tracker.watch();
    loop {
        rx.borrow_and_update();
        let file = integration::read_state(opts, id).await;
        let facts = tracker.facts();
        let mut choice = choose(probe, &facts, file.as_ref(), state_file.as_deref());
        if (matches!(choice, Choice::Marker(_)) || choice.line_mode())
            && probe.started_with.is_none()
            && probe.fg_is_root == Some(true)
            && !opts.is_remote()
        {
            // Did termloom start this shell with the integration (still loading)?
            probe.started_with = proc_state_file(probe.pid);
            choice = choose(probe, &facts, file.as_ref(), state_file.as_deref());
        }
        // A shell termloom started that has not reached its line editor yet (no prompt so far,
        // its terminal still in line mode) would have the tty echo the line once before the
        // prompt, and the line editor again after it.
        let loading = matches!(choice, Choice::Integration(_))
            && file.is_none()
            && !facts.marks_seen
            && probe.line_mode == Some(true);
        // The prompt's marks came from PROMPT_COMMAND, but the line editor has not taken the
        // terminal yet (it does before it draws the prompt): typed now, the line would be
        // echoed by the terminal once, and by the editor again.
        let drawing = matches!(choice, Choice::Integration(_))
            && facts.marks_seen
            && matches!(facts.last_mark, Some(b'A' | b'D'))
            && probe.line_mode == Some(true)
            && tokio::time::Instant::now() < line_mode_until;
        let typed_ahead = (matches!(choice, Choice::Integration(_))
            && term.inner.run.typed_ahead(opts, id, pane, tracker))
            || claim_pending(probe, opts, id)
            || loading
            || drawing;
        if !typed_ahead && !matches!(choice, Choice::Busy(_) | Choice::Marker(_)) {
            return Ok(choice);
        }
        let starting = probe.starting || typed_ahead;
        let due = (facts.last_mark == Some(b'C')
            && probe.fg_is_root != Some(false)
            && shell_kind(&probe.fg).is_some())
            || (choice.line_mode() && tokio::time::Instant::now() < line_mode_until)
            || passing_front(probe);
        // A marker is only a fallback while the shell may still be starting.
        if matches!(choice, Choice::Marker(_)) && !starting {
            return Ok(choice);
        }
        if !(starting || due) || !tracker.alive() {
            return Ok(choice);
        }
        if tokio::time::Instant::now() >= until {
            if let Some(kind) = lost_integration(probe, &facts, &choice) {
                tracker.lose();
                integration::mark_lost(opts, id, &probe.fg);
                return Ok(Choice::Marker(kind));
            }
            return Ok(choice);
        }
        let wake = (tokio::time::Instant::now() + Duration::from_millis(25)).min(until);
        let _ = tokio::time::timeout_at(wake, rx.changed()).await;
        *probe = self::probe(term, id, pane).await?;
    }
}

/// After a command started (`C`), its end mark has not come for [`SETTLE`], yet the pane's own
/// shell is in front with its line editor reading (the terminal is out of line mode): the shell
/// is at a prompt that sends no marks. `exec bash` replaced the integrated shell, or its hooks
/// were removed. Its kind, for the per-call markers that work in any shell. (A builtin reading
/// with the line editor, `read -e`, looks the same.)
fn lost_integration(p: &Probe, facts: &Facts, choice: &Choice) -> Option<ShellKind> {
    (matches!(choice, Choice::Busy(_)) && facts.last_mark == Some(b'C') && !p.starting)
        .then(|| p.at_editor())
        .flatten()
}

/// How long a run waits for its command's start mark (`C`, printed as soon as the shell reads
/// the line) before it looks at why none came.
const START_MARK_WAIT: Duration = Duration::from_millis(1500);

/// Waits (a moment at most) until the pane's process has started its program.
async fn settle_start(term: &TmuxTerminal, id: SessionId, pane: &str, probe: &Probe) -> Result<()> {
    let until = tokio::time::Instant::now() + SETTLE;
    let mut starting = probe.starting;
    while starting && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        starting = self::probe(term, id, pane).await?.starting;
    }
    Ok(())
}

/// How long a run waits for an end mark that is due (see `decide`).
const SETTLE: Duration = Duration::from_millis(2000);

/// Where session `id`'s integrated shell writes its state (local servers).
pub(crate) fn state_path(opts: &TmuxOptions, id: SessionId) -> Option<String> {
    if opts.is_remote() {
        return None;
    }
    integration::locate(opts)
        .ok()
        .map(|s| s.state_file(id).to_string_lossy().into_owned())
}

/// When session `id`'s shell last wrote its state file (local servers; `None` without one).
fn state_written(opts: &TmuxOptions, id: SessionId) -> Option<std::time::SystemTime> {
    let path = state_path(opts, id)?;
    std::fs::metadata(path).ok()?.modified().ok()
}

/// The text typed for a run.
fn wrap(choice: &Choice, command: &str, token: &str) -> String {
    let multi = command.contains('\n') || command.contains('\r');
    match choice {
        Choice::Integration(ShellKind::Fish) if multi => format!("begin\n{command}\nend"),
        Choice::Integration(_) if multi => format!("{{\n{command}\n}}"),
        Choice::Integration(_) => command.to_string(),
        Choice::Marker(ShellKind::Fish) => format!(
            " printf '\\e]{MARKER_OSC};S;{token}\\a'; begin\n{command}\nend; printf '\\e]{MARKER_OSC};E;{token};%s\\a' $status"
        ),
        Choice::Marker(_) => format!(
            " printf '\\033]{MARKER_OSC};S;{token}\\007'; {{\n{command}\n}}; printf '\\033]{MARKER_OSC};E;{token};%s\\007' \"$?\""
        ),
        Choice::Busy(_) => String::new(),
    }
}

/// What is at a pane's cursor: the program in front, the column, and the text left of it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AtCursor {
    fg: String,
    x: usize,
    left: String,
}

/// Reads [`AtCursor`] (two round trips: the cursor's row, then that row).
async fn at_cursor(term: &TmuxTerminal, pane: &str) -> Option<AtCursor> {
    let fmt = format::format(&["#{cursor_x}", "#{cursor_y}", "#{pane_current_command}"]);
    let show = Cmd::new("display-message")
        .arg("-p")
        .opt("-t", pane)
        .arg(fmt);
    let out = term.run(vec![show]).await.ok()?;
    let mut f = out.trim_end_matches('\n').splitn(3, SEP);
    let x: usize = f.next()?.trim().parse().ok()?;
    let y: u32 = f.next()?.trim().parse().ok()?;
    let fg = f.next()?.to_string();
    let row = y.to_string();
    let capture = Cmd::new("capture-pane")
        .arg("-p")
        .opt("-t", pane)
        .opt("-S", &row)
        .opt("-E", &row);
    let line = term.run(vec![capture]).await.ok()?;
    let left = left_of_cursor(line.trim_end_matches('\n'), x);
    Some(AtCursor { fg, x, left })
}

/// Whether an unfinished last line of output is the prompt that stood left of the cursor when
/// the command was typed (`>>> `, `$ `), printed again: blanks at the end aside, and never an
/// empty prompt.
fn is_prompt_again(line: &str, prompt: Option<&str>) -> bool {
    prompt
        .map(str::trim_end)
        .is_some_and(|p| !p.trim_start().is_empty() && line.trim_end() == p)
}

/// The part of a screen row left of cursor column `x` (in cells: a wide character takes two, a
/// combining mark none), padded with the blanks tmux trims from the row's end.
fn left_of_cursor(row: &str, x: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut left = String::new();
    let mut cells = 0;
    for c in row.chars() {
        let w = c.width().unwrap_or(0);
        if cells + w > x || (w > 0 && cells == x) {
            break;
        }
        left.push(c);
        cells += w;
    }
    left.extend(std::iter::repeat_n(' ', x.saturating_sub(cells)));
    left
}

/// Whether process `pid` has child processes (Linux `/proc`; `None` when it cannot tell).
fn has_children(pid: u32) -> Option<bool> {
    proc_children(pid).map(|c| !c.is_empty())
}

/// The longest line a terminal in canonical mode passes on whole (Linux's 4096-byte line
/// buffer, its newline included), less room for the marker wrapping.
const CANONICAL_LINE_MAX: usize = 4000;

/// Beside a session's state file: the shell (its pid) that did not answer the line query, and
/// is not asked again ([`check_line`]; `termloom integrate` removes it).
pub(crate) fn unanswered_path(state_file: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{state_file}.noquery"))
}

/// How long a run waits for the answer to the line query ([`LINE_QUERY`]).
const LINE_QUERY_WAIT: Duration = Duration::from_millis(1500);

/// Asks an integrated shell what its line editor holds ([`LINE_QUERY`]) and refuses a run when
/// typed text is on the command line (it would run as part of the command, whose result would
/// be reported), readline is in vi command mode (the command would be taken as editing
/// commands) or the shell waits at its continuation prompt. A shell with no query bound passes
/// as before; one that does not answer in time is refused once and not asked again.
async fn check_line(
    term: &TmuxTerminal,
    id: SessionId,
    pane: &str,
    shell_pid: u32,
    ws: &str,
    tracker: &PaneTracker,
) -> Result<()> {
    let opts = term.client().options();
    // Only to the very shell termloom started with the integration: an unbound escape
    // sequence is not harmless (readline takes its keys as editing commands). The integration
    // stops exporting TERMLOOM_STATE_FILE, so a shell that replaced it (`exec bash`) has not
    // got it in its environment, while the state file still says `L`.
    let Some(state) = state_path(opts, id) else {
        return Ok(());
    };
    let started_here =
        shell_pid > 0 && proc_state_file(shell_pid).as_deref() == Some(state.as_str());
    // A shell that once did not answer (its binding removed: `bind -r`) is not asked again:
    // each unanswered query leaves its keys on the command line.
    let unanswered = unanswered_path(&state);
    let told =
        std::fs::read_to_string(&unanswered).is_ok_and(|pid| pid.trim() == shell_pid.to_string());
    if !started_here
        || told
        || !integration::read_state(opts, id)
            .await
            .is_some_and(|f| f.line_query)
    {
        return Ok(());
    }
    let mut rx = tracker.watch();
    let (before, _) = tracker.line_answer();
    term.run(vec![
        Cmd::new("send-keys")
            .arg("-l")
            .opt("-t", pane)
            .arg(LINE_QUERY),
    ])
    .await?;
    let deadline = tokio::time::Instant::now() + LINE_QUERY_WAIT;
    loop {
        rx.borrow_and_update();
        let (n, answer) = tracker.line_answer();
        if n > before {
            return match answer {
                Some(a) if a.continuation => Err(busy_error(pane, CONTINUATION_BUSY)),
                Some(a) if a.command_mode => Err(busy_error(
                    pane,
                    "its line editor is in vi command mode, where the command would be taken as editing commands; press the key i first",
                )),
                Some(a) if a.len > 0 => Err(busy_error(
                    pane,
                    &format!(
                        "its command line holds {} typed character{}, which would run as part of the command; clear them (the key C-u) or run them (Enter) first",
                        a.len,
                        if a.len == 1 { "" } else { "s" }
                    ),
                )),
                _ => Ok(()),
            };
        }
        let waited = tokio::time::timeout_at(deadline, rx.changed()).await;
        if !matches!(waited, Ok(Ok(()))) {
            // The answer may have been printed while this process's output client was silenced
            // by another program (`refresh-client -f no-output`): then nothing is known, and the
            // run goes on as before the query.
            if term.hub().restore_output(ws).await.unwrap_or(false) {
                tracing::debug!(pane, "line query unanswered while output was off: typing");
                return Ok(());
            }
            // Its keys may now be on the command line, and the run would join them: refused,
            // once; this shell is not asked again.
            let _ = std::fs::write(&unanswered, shell_pid.to_string());
            return Err(busy_error(
                pane,
                "the shell did not answer termloom's line query (its key binding was removed, or readline is elsewhere): its command line may now hold stray characters; clear it (the key C-u) and run again (`termloom integrate` puts the binding back)",
            ));
        }
    }
}

/// Types a run's text into `pane` and presses Enter (one command list for text up to 16 KiB: no
/// spawned process, which costs ~2 ms locally and ~20 ms over ssh).
async fn type_line(term: &TmuxTerminal, pane: &str, text: &str) -> Result<()> {
    crate::session::send_text_to(term, pane, text, true).await
}

// ---------------------------------------------------------------------------------------------
// run / wait_run / status

struct Drive {
    term: TmuxTerminal,
    tracker: Arc<PaneTracker>,
    capture: u64,
    strategy: Strategy,
    prompt: Option<Regex>,
    quiet: Option<Duration>,
    quiet_fg: String,
    started: Instant,
    /// When the shell's state file was last written before the command was typed (`None`: no
    /// file, or a remote server).
    state_before: Option<std::time::SystemTime>,
    /// [`OutputHub::restores`](crate::control::output::OutputHub::restores) before typing.
    restores_before: u64,
    /// The program in front when the command was typed (the shell), the pane's own process id,
    /// and the terminal's foreground process group then (Linux `/proc`; a nested shell's own).
    shell: String,
    shell_pid: u32,
    fg_group: Option<u32>,
    /// For a run with no state file to consult ([`Strategy::Marker`], or marks from a shell
    /// termloom did not set up): the prompt at the cursor before typing, which the
    /// [`settled`](Self::settled) fallback looks for again after lost output.
    prompt_before: Option<AtCursor>,
    /// After lost output: since when the checks have found the run settled.
    settled_since: Option<Instant>,
    id: SessionId,
    pane: String,
    /// The workspace (`$N`) whose output client carries the pane's output.
    ws: String,
    /// The pane moved to another workspace during the run: what it printed while its output
    /// was followed there is lost.
    moved: bool,
    /// Since when the checks have found the shell at its editor with no end mark (see
    /// [`Drive::check_ended`]).
    ended_since: Option<Instant>,
}

/// Clears the capture and marks the run finished however the task ends (even aborted).
struct Finish {
    tracker: Arc<PaneTracker>,
    capture: u64,
    shared: Arc<RunShared>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.tracker.stop(self.capture);
        self.shared.finished.store(true, Ordering::SeqCst);
    }
}

impl Drive {
    fn gone(&self) -> Error {
        Error::SessionDead {
            id: self.id.to_string(),
            name: NativeId::tmux(&self.pane).to_string(),
        }
    }

    /// `Ok(())` while the pane is alive; the error that explains why not otherwise.
    async fn check_pane(&self) -> Result<()> {
        let cmd = Cmd::new("display-message")
            .arg("-p")
            .opt("-t", &self.pane)
            .arg("#{pane_id} #{pane_dead}");
        match tokio::time::timeout(Duration::from_millis(1500), self.term.run(vec![cmd])).await {
            Ok(Ok(out)) if out.trim() == format!("{} 0", self.pane) => Ok(()),
            Ok(Ok(_)) => Err(self.gone()),
            Ok(Err(e)) => {
                let msg = e.to_string();
                if msg.contains("can't find") {
                    Err(self.gone())
                } else {
                    Err(Error::ConnectionLost {
                        backend: BackendKind::Tmux,
                        reason: format!("tmux went away during the run: {msg}"),
                    })
                }
            }
            Err(_) => Err(Error::ConnectionLost {
                backend: BackendKind::Tmux,
                reason: "tmux stopped answering during the run".into(),
            }),
        }
    }

    /// Turns the pane's output stream back on when another tmux client turned it off
    /// ([`OutputHub::restore_output`](crate::control::output::OutputHub::restore_output)). The end
    /// mark may have been lost with the rest of the output: a shell whose state file was written
    /// since the command was typed has come back to its prompt, and the file has the exit code.
    /// Whoever turned the output back on (this check, the hub's watchdog, another run's check),
    /// the count of restores has moved since typing, and from then on every check looks at the
    /// state file. Returns that code (`Some`) when the run is over; its output is then incomplete.
    ///
    /// With no state file (a plain shell on the marker strategy; a remote server, whose files are
    /// on its own host; a REPL) the run looks at the pane instead ([`settled`](Self::settled)).
    async fn recover_output(&mut self, last_output: Instant) -> Option<Option<i32>> {
        let hub = self.term.hub();
        let _ = hub.restore_output(&self.ws).await;
        if !self.moved && !hub.restored_since(&self.ws, self.restores_before) {
            return None;
        }
        match self.strategy {
            // Output silence with the same program in front: no end mark to lose.
            Strategy::Quiet => return None,
            // The shell's state file says nothing about a REPL.
            Strategy::Prompt => return self.settled_twice(last_output).await,
            Strategy::ShellIntegration | Strategy::Marker => {}
        }
        let opts = self.term.client().options();
        let Some(now) = state_written(opts, self.id) else {
            return self.settled_twice(last_output).await;
        };
        // Written again since the command was typed: a prompt came back. Modification times
        // are compared for change, not order (the file system's clock is coarser than ours).
        if Some(now) == self.state_before {
            return None;
        }
        let st = integration::read_state(opts, self.id).await?;
        (!st.busy).then_some(st.last_exit)
    }

    /// The fallback of [`recover_output`](Self::recover_output) when there is no state file:
    /// the run is over, with no exit code, once two checks a [`CHECK_EVERY`] apart have found it
    /// [`settled`](Self::settled) and nothing was printed between them. A shell run then says
    /// [`Strategy::Quiet`]; a REPL run keeps [`Strategy::Prompt`]. When in doubt the run keeps
    /// waiting (and times out with a handle): a false "done" would free the session while its
    /// command still reads the terminal.
    async fn settled_twice(&mut self, last_output: Instant) -> Option<Option<i32>> {
        let checked = Instant::now();
        let settled = self.settled().await;
        match self.settled_since {
            Some(since) if settled && last_output < since => {
                if self.strategy != Strategy::Prompt {
                    self.strategy = Strategy::Quiet;
                }
                Some(None)
            }
            _ => {
                self.settled_since = settled.then_some(checked);
                None
            }
        }
    }

    /// Whether the pane shows the run's end: for a REPL, its prompt regex matches the text left
    /// of the cursor; for a shell, the shell is in front with the cursor after the same prompt
    /// as before typing (a `read`, a command substitution or a loop leave the cursor
    /// elsewhere), and, where `/proc` can tell (local servers), the terminal's foreground group
    /// is the one that was in front when the command was typed and its leader has no children
    /// (which a nested shell of the same name, or a `$(…)` still running, fail). What the
    /// screen cannot show: a builtin that prints the very same prompt and waits (`read -p
    /// "$PS1"`), or, on a remote server, a nested shell with the same prompt.
    async fn settled(&self) -> bool {
        let Some(now) = at_cursor(&self.term, &self.pane).await else {
            return false;
        };
        if let Some(re) = &self.prompt {
            return re.is_match(&now.left);
        }
        let Some(before) = &self.prompt_before else {
            return false;
        };
        if now.fg != self.shell || now != *before || before.left.trim().is_empty() {
            return false;
        }
        if self.term.client().options().is_remote() || self.shell_pid == 0 {
            return true;
        }
        let group = proc_tpgid(self.shell_pid);
        group.is_some() && group == self.fg_group && group.and_then(has_children) != Some(true)
    }

    /// After the pane's output stream ended with the pane alive: the pane moved to another
    /// workspace (`swap-pane`, `join-pane`, `move-window`), whose output client carries its
    /// output from now on. Follows it there; what it printed in between is lost (the result says
    /// `truncated`, and a lost end mark is looked for as after lost output). False when it cannot.
    async fn follow_pane(&mut self) -> bool {
        use crate::control::output::{whereabouts, whereabouts_cmd};
        let Some(n) = self.pane.strip_prefix('%').and_then(|n| n.parse().ok()) else {
            return false;
        };
        let Ok(out) = self.term.run(vec![whereabouts_cmd(n)]).await else {
            return false;
        };
        let Some((ws, _)) = whereabouts(n, out.lines()) else {
            return false;
        };
        if ws == self.ws {
            return false;
        }
        let tap = self.tracker.revive();
        if self.term.hub().tap(&ws, &self.pane, tap).await.is_err() {
            return false;
        }
        tracing::debug!(pane = %self.pane, from = %self.ws, to = %ws, "a run follows its pane");
        self.ws = ws;
        self.moved = true;
        true
    }

    /// An integrated run whose command has not started ([`START_MARK_WAIT`]) while the shell's
    /// line editor reads: the line was typed into a shell that sends no marks (the integration
    /// is gone: runs use markers from now on, see [`integration::mark_lost`]), or it is not
    /// complete (an open quote: the shell asks for more). Either way no end mark will come.
    ///
    /// A shell that wrote its state file since the line was typed is integrated and drew its
    /// prompt again: the line ran no command (a comment, a syntax error). The run is over, with
    /// no exit code (`Some(result)`).
    async fn check_started(&self, now: Instant) -> Result<Option<RunResult>> {
        if self.strategy != Strategy::ShellIntegration
            || now < self.started + START_MARK_WAIT
            || self.tracker.started(self.capture)
        {
            return Ok(None);
        }
        let Ok(p) = probe(&self.term, self.id, &self.pane).await else {
            return Ok(None);
        };
        if p.at_editor().is_none() || self.tracker.started(self.capture) {
            return Ok(None);
        }
        let written = state_written(self.term.client().options(), self.id);
        if written.is_some() && written != self.state_before {
            return Ok(Some(self.result(None)));
        }
        if self.tracker.facts().continuation {
            // The integration is there (it marked the continuation prompt): the line is not
            // complete. Nothing ran; the session stays busy until the line is finished.
            return Err(Error::backend(
                BackendKind::Tmux,
                format!(
                    "the shell in {} did not start the command: the line is not complete (an open quote or bracket), and the shell shows its continuation prompt asking for more; the key C-c clears it",
                    self.pane
                ),
            ));
        }
        self.tracker.lose();
        integration::mark_lost(self.term.client().options(), self.id, &p.fg);
        Err(Error::backend(
            BackendKind::Tmux,
            format!(
                "the shell in {} did not start the command: its line editor is reading, and the mark termloom's shell integration prints when a command starts never came. Either the line is not complete (an open quote or bracket: the shell asks for more; the key C-c clears it), or the shell no longer runs the integration (`exec` replaced it; `termloom integrate` puts it back). What was typed may have run: read the session's output before running it again. Later runs here use per-call markers",
                self.pane
            ),
        ))
    }

    /// An integrated run whose command started and printed nothing for [`SETTLE`], while the
    /// pane's own shell is in front with its line editor reading and its state file was not
    /// written since the line was typed, on two checks in a row: a shell that sends no marks
    /// replaced the integrated one (`exec bash` as the run's command). The run is over, with no
    /// exit code, and runs here use markers from now on. (A `read -e` typed as a run looks the
    /// same.)
    ///
    /// The same with the state file written since: the integrated shell came back to its prompt
    /// but its end mark did not come (the hooks were rearranged so that neither PROMPT_COMMAND
    /// nor PS1 prints it). The run is over, with no exit code; the integration stays.
    async fn check_ended(&mut self, last_output: Instant) -> Option<RunResult> {
        let opts = self.term.client().options();
        let written = state_written(opts, self.id);
        if self.strategy != Strategy::ShellIntegration
            || !self.tracker.started(self.capture)
            || last_output.elapsed() < SETTLE
            || written.is_none()
        {
            self.ended_since = None;
            return None;
        }
        let prompt_came_back = written != self.state_before;
        let p = probe(&self.term, self.id, &self.pane).await.ok()?;
        // Another kind of shell is now the pane's own process (`exec sh`): the integrated shell
        // is gone, whatever the terminal's mode (sh reads its prompt in canonical mode).
        let replaced = p.fg_is_root == Some(true)
            && shell_kind(&p.fg).is_some()
            && shell_kind(&p.fg) != shell_kind(&self.shell);
        if p.at_editor().is_none() && !replaced {
            self.ended_since = None;
            return None;
        }
        match self.ended_since {
            Some(since) if last_output < since => {
                if !prompt_came_back {
                    self.tracker.lose();
                    integration::mark_lost(opts, self.id, &p.fg);
                }
                self.strategy = Strategy::Quiet;
                Some(self.result(None))
            }
            _ => {
                self.ended_since = Some(Instant::now());
                None
            }
        }
    }

    async fn fg(&self) -> Option<String> {
        let cmd = Cmd::new("display-message")
            .arg("-p")
            .opt("-t", &self.pane)
            .arg("#{pane_current_command}");
        self.term
            .run(vec![cmd])
            .await
            .ok()
            .map(|s| s.trim_end_matches('\n').to_string())
    }

    fn result(&self, exit_code: Option<i32>) -> RunResult {
        let prompt = self.prompt_before.as_ref().map(|p| p.left.as_str());
        let (output, truncated) = self.tracker.finish(self.capture, self.strategy, prompt);
        // Output turned back on during the run (or followed to the pane's new workspace): what
        // came before that is not in the stream.
        let lost = self.moved
            || self
                .term
                .hub()
                .restored_since(&self.ws, self.restores_before);
        RunResult {
            exit_code,
            output,
            timed_out: false,
            strategy: self.strategy,
            duration_ms: self.started.elapsed().as_millis() as u64,
            handle: None,
            truncated: truncated || lost,
        }
    }

    async fn run(mut self) -> Result<RunResult> {
        let mut rx = self.tracker.watch();
        let mut next_check = Instant::now() + CHECK_EVERY;
        let give_up = self.started + MAX_RUN_AGE;
        loop {
            rx.borrow_and_update();
            let last_output = match self.tracker.look(self.capture, self.prompt.as_ref()) {
                Look::Done(code) => return Ok(self.result(code)),
                Look::Prompt => return Ok(self.result(None)),
                Look::Gone => {
                    return Err(Error::backend(
                        BackendKind::Tmux,
                        "the run's output capture went away",
                    ));
                }
                Look::Dead => {
                    if let Err(e) = self.check_pane().await {
                        // The command ended its shell (`exit 7`, `set -e` and a failure): what
                        // it printed is all the caller gets, so it goes with the error.
                        if matches!(e, Error::SessionDead { .. }) {
                            let (output, _) = self.tracker.snapshot(self.capture);
                            if !output.trim().is_empty() {
                                let shown: String = {
                                    let n = output.chars().count();
                                    output.chars().skip(n.saturating_sub(4000)).collect()
                                };
                                return Err(Error::backend(
                                    BackendKind::Tmux,
                                    format!(
                                        "session {} ended during the run (its shell exited, or the pane was closed); the command printed:\n{shown}",
                                        self.id
                                    ),
                                ));
                            }
                        }
                        return Err(e);
                    }
                    if self.follow_pane().await {
                        continue;
                    }
                    return Err(Error::ConnectionLost {
                        backend: BackendKind::Tmux,
                        reason: "the pane's output stream ended during the run, and the command may still be running: read the session's output before running it again".into(),
                    });
                }
                Look::Pending { last_output } => last_output,
            };
            let now = Instant::now();
            if now >= give_up {
                return Err(Error::Timeout {
                    op: "run (abandoned)".into(),
                    after: MAX_RUN_AGE,
                });
            }
            if let Some(q) = self.quiet
                && now >= last_output + q
            {
                // Quiet for long enough: done if the same program is still in front.
                let fg = self.fg().await.unwrap_or_default();
                if fg == self.quiet_fg {
                    return Ok(self.result(None));
                }
                self.quiet_fg = fg;
                self.tracker.touch(self.capture);
                continue;
            }
            if now >= next_check {
                self.check_pane().await?;
                if let Some(r) = self.check_started(now).await? {
                    return Ok(r);
                }
                if let Some(r) = self.check_ended(last_output).await {
                    return Ok(r);
                }
                if let Some(code) = self.recover_output(last_output).await {
                    return Ok(self.result(code));
                }
                next_check = Instant::now() + CHECK_EVERY;
            }
            let mut wake = next_check.min(give_up);
            if let Some(q) = self.quiet {
                wake = wake.min(last_output + q);
            }
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        return Err(Error::backend(BackendKind::Tmux, "the pane tracker went away"));
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

/// Runs `opts.command` in `pane` (session `id`) and waits for it (see the module docs).
pub(crate) async fn run(
    term: &TmuxTerminal,
    id: SessionId,
    pane: &str,
    opts: &RunOpts,
) -> Result<RunResult> {
    let called = tokio::time::Instant::now();
    let deadline = called + opts.timeout;
    let st = &term.inner.run;
    let gone = || Error::SessionDead {
        id: id.to_string(),
        name: NativeId::tmux(pane).to_string(),
    };
    let prompt_or_quiet = opts.prompt.as_deref().is_some_and(|p| !p.is_empty())
        || opts.quiet.is_some_and(|q| !q.is_zero());
    // A shell command loses trailing newlines (Enter follows anyway); a REPL gets its input as
    // given (an empty last line ends a Python block).
    let command = if prompt_or_quiet {
        opts.command.as_str()
    } else {
        opts.command.trim_end_matches(['\n', '\r'])
    };
    if command.contains('\0') {
        return Err(Error::InvalidArgument(
            "the command contains a NUL byte, which a terminal cannot receive".into(),
        ));
    }
    opts.check()?;
    let prompt = match opts.prompt.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(compile_regex(p)?),
        None => None,
    };
    let quiet = opts.quiet.filter(|q| !q.is_zero());
    if prompt.is_none() && quiet.is_none() && command.trim().is_empty() {
        return Err(Error::InvalidArgument("run needs a command".into()));
    }
    let slot = st.slot(id);
    let repl = prompt.is_some() || quiet.is_some();
    refuse_if_pending(&slot, repl)?;
    // Runs of this process on one session take turns; one that waited its whole timeout for
    // the one before it is told so (a timeout would blame the terminal).
    let guard = tokio::time::timeout_at(deadline, slot.lock.clone().lock_owned())
        .await
        .map_err(|_| {
            busy_error(
                pane,
                &format!(
                    "another run on this session (from this process) went on for the whole {} ms this one could wait; wait for it, or interrupt it with the key C-c",
                    opts.timeout.as_millis()
                ),
            )
        })?;
    refuse_if_pending(&slot, repl)?;
    let typing = st.typing_by(id, deadline, opts.timeout).await?;
    let mut probe = probe(term, id, pane)
        .await
        .map_err(|e| not_found_as(e, gone))?;
    if probe.dead {
        return Err(gone());
    }
    probe.refuse_copy_mode()?;
    probe.refuse_synchronized(pane)?;
    let tracker = st.tracker(term, pane, &probe.ws).await?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let sink = || {
        LineSink::new(
            opts.max_lines.unwrap_or(DEFAULT_MAX_LINES),
            opts.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
        )
    };
    let (strategy, mode, text) = if prompt.is_some() || quiet.is_some() {
        if claim_held(&probe) {
            return Err(busy_error(
                pane,
                "a run from another process is using this session; wait for it",
            ));
        }
        settle_start(term, id, pane, &probe).await?;
        let strategy = if prompt.is_some() {
            Strategy::Prompt
        } else {
            Strategy::Quiet
        };
        (strategy, Mode::Raw, command.to_string())
    } else {
        let choice = decide(term, id, pane, &mut probe, &tracker).await?;
        match &choice {
            Choice::Busy(why) => return Err(busy_error(pane, why)),
            Choice::Integration(_) => (
                Strategy::ShellIntegration,
                Mode::Integration,
                wrap(&choice, command, &token),
            ),
            Choice::Marker(kind) => {
                let text = wrap(&choice, command, &token);
                // A shell with no line editor reads in the terminal's canonical mode, which
                // keeps at most 4095 bytes of a line: the rest would be dropped, and the cut
                // command run and reported.
                if *kind == ShellKind::Posix
                    && let Some(long) = text.split('\n').map(str::len).max()
                    && long > CANONICAL_LINE_MAX
                {
                    return Err(Error::InvalidArgument(format!(
                        "a command line of {long} bytes is longer than '{}' can read ({CANONICAL_LINE_MAX}: its terminal cuts longer lines); split it over several lines, or put it in a script and run that",
                        probe.fg
                    )));
                }
                (Strategy::Marker, Mode::Marker, text)
            }
        }
    };
    let sink = if mode == Mode::Raw {
        sink().expect_echo(command)
    } else {
        sink()
    };
    let claimed = claim(term, pane, &probe.claim, &token)
        .await
        .map_err(|e| not_found_as(e, gone))?;
    // Asked under the claim: no other termloom process types into the pane meanwhile (a query
    // typed while another run's command reads the terminal would be that command's input).
    if strategy == Strategy::ShellIntegration
        && let Err(e) = check_line(term, id, pane, probe.pid, &probe.ws, &tracker).await
    {
        release(term, pane, &claimed).await;
        return Err(e);
    }
    let capture = tracker.start(mode, token, sink);
    let state_before = state_written(term.client().options(), id);
    let restores_before = term.hub().restores(&probe.ws);
    let fg_group = (probe.pid > 0 && !term.client().options().is_remote())
        .then(|| proc_tpgid(probe.pid))
        .flatten();
    let prompt_before = match strategy {
        Strategy::Marker => at_cursor(term, pane).await,
        Strategy::ShellIntegration if state_before.is_none() => at_cursor(term, pane).await,
        // What a quiet run's output ends with when the program printed its prompt again.
        Strategy::Quiet => at_cursor(term, pane).await,
        _ => None,
    };
    let started = Instant::now();
    if let Err(e) = type_line(term, pane, &text).await {
        tracker.stop(capture);
        release(term, pane, &claimed).await;
        return Err(not_found_as(e, gone));
    }
    drop(typing);
    let shared = Arc::new(RunShared {
        finished: AtomicBool::new(false),
        handle: Mutex::new(None),
        strategy,
        abort: Mutex::new(None),
        command: command.chars().take(80).collect(),
    });
    let drive = Drive {
        term: term.clone(),
        tracker: tracker.clone(),
        capture,
        strategy,
        prompt,
        quiet,
        quiet_fg: probe.fg.clone(),
        shell: probe.fg.clone(),
        shell_pid: probe.pid,
        fg_group,
        prompt_before,
        settled_since: None,
        moved: false,
        ended_since: None,
        started,
        state_before,
        restores_before,
        id,
        pane: pane.to_string(),
        ws: probe.ws.clone(),
    };
    let finish = Finish {
        tracker: tracker.clone(),
        capture,
        shared: shared.clone(),
    };
    let (tx, rx) = oneshot::channel();
    let (claim_term, claim_pane) = (term.clone(), pane.to_string());
    let task = tokio::spawn(async move {
        let _guard = guard;
        let res = drive.run().await;
        drop(finish);
        // Released before the result goes out: a one-shot CLI prints it and exits.
        release(&claim_term, &claim_pane, &claimed).await;
        let _ = tx.send(res);
    });
    *shared.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    // Until the result is in, the run is parked with a handle if this call goes away (a timeout
    // below, or the caller cancelled: an MCP request cancelled drops this future): the next run
    // on the session is then told "busy, an earlier run … is still going", not left waiting
    // for the slot.
    let mut parked = Parked(Some(ParkedRun {
        term: term.clone(),
        slot: slot.clone(),
        id,
        strategy,
        started,
        shared,
        tracker,
        capture,
        ws: probe.ws.clone(),
        restores_before,
        rx,
        abort: task.abort_handle(),
    }));
    let waited = match parked.0.as_mut() {
        Some(p) => tokio::time::timeout_at(deadline, &mut p.rx).await,
        None => return Err(Error::backend(BackendKind::Tmux, "the run vanished")),
    };
    match waited {
        Ok(Ok(res)) => {
            parked.0 = None;
            res
        }
        Ok(Err(_)) => {
            parked.0 = None;
            Err(Error::backend(
                BackendKind::Tmux,
                "the run's task ended without a result",
            ))
        }
        Err(_) => {
            let Some(p) = parked.0.take() else {
                return Err(Error::backend(BackendKind::Tmux, "the run vanished"));
            };
            let (output, truncated) = p.tracker.snapshot(p.capture);
            let lost = term.hub().restored_since(&p.ws, p.restores_before);
            let (strategy, started) = (p.strategy, p.started);
            let handle = p.park();
            Ok(RunResult {
                exit_code: None,
                output,
                timed_out: true,
                strategy,
                duration_ms: started.elapsed().as_millis() as u64,
                handle: Some(RunHandle(handle)),
                truncated: truncated || lost,
            })
        }
    }
}

/// A run whose result has not come, as [`run`] holds it while waiting.
struct ParkedRun {
    term: TmuxTerminal,
    slot: Arc<Slot>,
    id: SessionId,
    strategy: Strategy,
    started: Instant,
    shared: Arc<RunShared>,
    tracker: Arc<PaneTracker>,
    capture: u64,
    ws: String,
    restores_before: u64,
    rx: oneshot::Receiver<Result<RunResult>>,
    abort: tokio::task::AbortHandle,
}

impl ParkedRun {
    /// Leaves the run going under a new handle, pending on its session; returns the handle.
    fn park(self) -> String {
        let handle = format!("run-{}", uuid::Uuid::new_v4().simple());
        *self.shared.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
        *self.slot.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.shared.clone());
        self.term.inner.run.add_pending(
            handle.clone(),
            Pending {
                session: self.id,
                strategy: self.strategy,
                started: self.started,
                created: Instant::now(),
                shared: self.shared,
                tracker: self.tracker,
                capture: self.capture,
                ws: self.ws,
                restores_before: self.restores_before,
                rx: tokio::sync::Mutex::new(Some(self.rx)),
                abort: self.abort,
            },
        );
        handle
    }
}

/// Parks its run when dropped with it (the caller went away before the result).
struct Parked(Option<ParkedRun>);

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.park();
        }
    }
}

/// Waits up to `timeout` more for a run that timed out.
pub(crate) async fn wait_run(
    term: &TmuxTerminal,
    id: SessionId,
    handle: &RunHandle,
    timeout: Duration,
) -> Result<RunResult> {
    let st = &term.inner.run;
    let p = st.get_pending(&handle.0).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "no run with handle '{}' is pending here (a handle lives in the process that started the run, until its result is collected)",
            handle.0
        ))
    })?;
    if p.session != id {
        return Err(Error::InvalidArgument(format!(
            "run '{}' belongs to another session ({})",
            handle.0, p.session
        )));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let still = |p: &Pending| {
        let (output, truncated) = p.tracker.snapshot(p.capture);
        let lost = term.hub().restored_since(&p.ws, p.restores_before);
        RunResult {
            exit_code: None,
            output,
            timed_out: true,
            strategy: p.strategy,
            duration_ms: p.started.elapsed().as_millis() as u64,
            handle: Some(handle.clone()),
            truncated: truncated || lost,
        }
    };
    let Ok(mut guard) = tokio::time::timeout_at(deadline, p.rx.lock()).await else {
        return Ok(still(&p));
    };
    let Some(rx) = guard.as_mut() else {
        st.remove_pending(&handle.0);
        return Err(Error::InvalidArgument(format!(
            "run '{}' was already collected",
            handle.0
        )));
    };
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(res)) => {
            *guard = None;
            st.remove_pending(&handle.0);
            res
        }
        Ok(Err(_)) => {
            *guard = None;
            st.remove_pending(&handle.0);
            Err(Error::backend(
                BackendKind::Tmux,
                format!("run '{}' was abandoned before it ended", handle.0),
            ))
        }
        Err(_) => Ok(still(&p)),
    }
}

/// Busy or idle, foreground command, last exit code, cwd.
pub(crate) async fn status(
    term: &TmuxTerminal,
    id: SessionId,
    pane: &str,
) -> Result<SessionStatus> {
    let gone = || Error::SessionDead {
        id: id.to_string(),
        name: NativeId::tmux(pane).to_string(),
    };
    let st = &term.inner.run;
    let probe = probe(term, id, pane)
        .await
        .map_err(|e| not_found_as(e, gone))?;
    if probe.dead {
        // The pane is there, its process is not (remain-on-exit): not "no longer exists".
        return Err(Error::InvalidArgument(format!(
            "session {id} has ended: its process exited, and tmux keeps the dead pane {pane} (remain-on-exit); read its last output, or close it"
        )));
    }
    // A long-lived process watches the pane from now on; a one-shot one only uses what it has.
    let tracker = if term.client().options().control {
        Some(st.tracker(term, pane, &probe.ws).await?)
    } else {
        st.existing_tracker(pane).await
    };
    let facts = tracker.map(|t| t.facts()).unwrap_or_default();
    let opts = term.client().options();
    let file = integration::read_state(opts, id).await;
    let state_file = state_path(opts, id);
    let mut choice = choose(&probe, &facts, file.as_ref(), state_file.as_deref());
    // A shell that has just printed its prompt reaches its line editor a moment later.
    let until = tokio::time::Instant::now() + LINE_MODE_SETTLE;
    while choice.line_mode() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = self::probe(term, id, pane)
            .await
            .map_err(|e| not_found_as(e, gone))?;
        choice = choose(&again, &facts, file.as_ref(), state_file.as_deref());
    }
    let state = match choice {
        Choice::Busy(_) => BusyState::Busy,
        _ => BusyState::Idle,
    };
    Ok(SessionStatus {
        state,
        command: probe.fg.clone(),
        last_exit_code: facts
            .last_exit
            .or_else(|| file.as_ref().and_then(|f| f.last_exit)),
        cwd: facts
            .cwd
            .clone()
            .or_else(|| Some(probe.path.clone()).filter(|p| !p.is_empty())),
        shell_integration: (facts.marks_seen || file.is_some())
            && !facts.lost
            && !file.as_ref().is_some_and(|f| f.lost),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_left_of_the_cursor_is_cut_by_cells() {
        // Blanks trimmed by tmux come back; wide characters take two cells, combining marks none.
        assert_eq!(left_of_cursor("$", 2), "$ ");
        assert_eq!(left_of_cursor("abc def", 3), "abc");
        assert_eq!(left_of_cursor("🐍>", 4), "🐍> ");
        assert_eq!(left_of_cursor("日本$ x", 6), "日本$ ");
        let accented = "e\u{301}e\u{301}e\u{301}e\u{301} $";
        assert_eq!(left_of_cursor(accented, 7), format!("{accented} "));
        assert_eq!(
            left_of_cursor(accented, 4),
            "e\u{301}e\u{301}e\u{301}e\u{301}"
        );
        assert_eq!(left_of_cursor("", 0), "");
    }

    #[test]
    fn a_last_line_showing_the_prompt_again_is_told_apart() {
        assert!(is_prompt_again(">>> ", Some(">>> ")));
        assert!(is_prompt_again("$", Some("$ ")));
        assert!(!is_prompt_again("48>>> ", Some(">>> ")));
        assert!(!is_prompt_again("48", Some(">>> ")));
        assert!(
            !is_prompt_again("", Some("   ")),
            "an empty prompt is no prompt"
        );
        assert!(!is_prompt_again(">>> ", None));
    }

    #[test]
    fn a_zombie_or_missing_process_is_not_running() {
        assert!(proc_running(std::process::id()));
        assert!(!proc_running(u32::MAX));
        // A child that exited and is not reaped yet: a zombie, as a job's leader is for a moment
        // after it ends and before its shell takes the terminal back.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_running(pid) {
            assert!(Instant::now() < deadline, "{pid} never became a zombie");
            std::thread::yield_now();
        }
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        child.wait().unwrap();
    }

    fn scan_all(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut s = Scanner::default();
        let mut text = Vec::new();
        let mut oscs = Vec::new();
        for c in chunks {
            s.feed(c, &mut |p| match p {
                Piece::Text(t) => text.extend_from_slice(t),
                Piece::Osc(o) => oscs.push(o.to_vec()),
            });
        }
        (text, oscs)
    }

    #[test]
    fn scanner_splits_oscs_across_chunks() {
        let (text, oscs) = scan_all(&[
            b"a\x1b]133;C\x07b\x1b[1mc\x1b",
            b"]133;D;",
            b"7\x1b",
            b"\\d\x1b]7;file://h/x%20y\x07",
        ]);
        assert_eq!(text, b"ab\x1b[1mcd");
        assert_eq!(
            oscs,
            vec![
                b"133;C".to_vec(),
                b"133;D;7".to_vec(),
                b"7;file://h/x%20y".to_vec()
            ]
        );
    }

    #[test]
    fn marks_drive_an_integration_capture() {
        let stream: &[u8] = b"echo X\r\n\x1b]133;C\x07X\r\nlast\r\x1b]133;D;3\x07\x1b]7;file://h/tmp/a%20b\x07\x1b]133;A\x07$ ";
        let d = integration_track(stream);
        let c = d.capture.as_ref().unwrap();
        assert_eq!(c.phase, Phase::Done(Some(3)));
        assert_eq!(c.sink.render(Some(c.sink.final_partial())).0, "X\nlast");
        assert_eq!(d.facts.last_exit, Some(3));
        assert_eq!(d.facts.cwd.as_deref(), Some("/tmp/a b"));
        assert_eq!(d.facts.last_mark, Some(b'A'));
    }

    /// A tracker that saw `stream` while an integration capture waited for its command.
    fn integration_track(stream: &[u8]) -> TrackData {
        let mut d = TrackData::default();
        let now = Instant::now();
        d.capture = Some(Capture::new(
            1,
            Mode::Integration,
            String::new(),
            Phase::Waiting,
            LineSink::new(100, 10_000),
        ));
        let mut s = Scanner::default();
        s.feed(stream, &mut |p| {
            d.on_piece(p, now);
        });
        d
    }

    /// An integration capture over `stream`: its phase and output.
    fn integration_capture(stream: &[u8]) -> (Phase, String) {
        let d = integration_track(stream);
        let c = d.capture.as_ref().unwrap();
        (c.phase, c.sink.render(Some(c.sink.final_partial())).0)
    }

    #[test]
    fn end_marks_the_command_prints_do_not_end_its_run() {
        // The shell's end: P (prompt hooks start), hook output, D, A, the prompt.
        let (phase, out) = integration_capture(
            b"\x1b]133;C\x07inner\n\x1b]133;D;7\x07outer\n\x1b]6973;P\x07hook\n\x1b]133;D;2\x07\x1b]133;A\x07$ ",
        );
        assert_eq!(phase, Phase::Done(Some(2)));
        assert_eq!(out, "inner\nouter");
        // No P (PROMPT_COMMAND replaced): a second D shows the first was the command's.
        let (phase, out) = integration_capture(
            b"\x1b]133;C\x07before\n\x1b]133;D;0\x07real-end\n\x1b]133;D;4\x07\x1b]133;A\x07$ ",
        );
        assert_eq!(phase, Phase::Done(Some(4)));
        assert_eq!(out, "before\nreal-end");
        // A D with no prompt after it ends nothing, and a P the command printed holds back
        // nothing for good.
        let (phase, out) =
            integration_capture(b"\x1b]133;C\x07a\n\x1b]133;D;0\x07b\n\x1b]6973;P\x07c\n");
        assert_eq!(phase, Phase::Running);
        let (phase, out2) = integration_capture(
            b"\x1b]133;C\x07a\n\x1b]6973;P\x07b\n\x1b]6973;P\x07hook\n\x1b]133;D;1\x07\x1b]133;A\x07",
        );
        assert_eq!(phase, Phase::Done(Some(1)));
        assert_eq!((out.as_str(), out2.as_str()), ("a\nb", "a\nb"));
    }

    #[test]
    fn markers_need_their_token() {
        let mut d = TrackData::default();
        let now = Instant::now();
        d.capture = Some(Capture::new(
            1,
            Mode::Marker,
            "abc".into(),
            Phase::Waiting,
            LineSink::new(100, 10_000),
        ));
        let mut s = Scanner::default();
        // The echo of the typed line holds the marker as text: it starts nothing.
        let stream: &[u8] = b" printf '\\033]6973;S;abc\\007'; {\r\n\x1b]6973;E;old;0\x07\x1b]6973;S;abc\x07out\r\n\x1b]6973;E;abc;127\x07";
        s.feed(stream, &mut |p| {
            d.on_piece(p, now);
        });
        let c = d.capture.as_ref().unwrap();
        assert_eq!(c.phase, Phase::Done(Some(127)));
        assert_eq!(c.sink.render(None).0, "out");
    }

    #[test]
    fn sink_keeps_head_and_tail() {
        let mut s = LineSink::new(30, usize::MAX);
        for i in 1..=100_000 {
            s.push(format!("{i}\r\n").as_bytes());
        }
        let (text, cut) = s.render(None);
        assert!(cut);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "1");
        assert_eq!(lines[9], "10");
        assert_eq!(*lines.last().unwrap(), "100000");
        assert!(
            lines[10].contains("lines 11-99980 of 100000 left out"),
            "{}",
            lines[10]
        );
        assert_eq!(lines.len(), 31);
        let mut small = LineSink::new(30, 80);
        for i in 0..100 {
            small.push(format!("line {i}\n").as_bytes());
        }
        let (text, cut) = small.render(None);
        assert!(cut);
        assert!(text.len() < 200, "{text}");
        assert!(text.ends_with("line 99"));
    }

    #[test]
    fn sink_skips_echo_and_drops_zsh_prompt_sp() {
        let mut s = LineSink::new(100, 10_000).expect_echo("print(1)");
        s.push(b"\r\n$ \x1b[1mprint(1)\x1b[0m\r\n1\r\n>>> ");
        assert_eq!(s.render(None).0, "1");
        assert_eq!(s.partial_text(), ">>> ");
        let mut z = LineSink::new(100, 10_000);
        z.push(b"foo\x1b[1m\x1b[7m%\x1b[27m\x1b[1m\x1b[0m      \r \r");
        assert_eq!(z.final_partial(), "foo");
        let mut z = LineSink::new(100, 10_000);
        z.push(b"x\r\n\x1b[1m\x1b[3m#\x1b[23m\x1b[1m\x1b[0m      \r \r");
        assert_eq!(z.render(Some(z.final_partial())).0, "x");
    }

    fn probe(fg: &str, root: Option<bool>) -> Probe {
        Probe {
            pid: 1,
            fg: fg.into(),
            fg_is_root: root,
            ..Probe::default()
        }
    }

    #[test]
    fn strategy_rules() {
        let idle = Facts {
            marks_seen: true,
            last_mark: Some(b'A'),
            ..Facts::default()
        };
        let running = Facts {
            marks_seen: true,
            last_mark: Some(b'C'),
            ..Facts::default()
        };
        let none = Facts::default();
        let bash_file = FileState {
            shell: "bash".into(),
            busy: false,
            last_exit: Some(0),
            lost: false,
            line_query: true,
        };
        use Choice::*;
        assert_eq!(
            choose(&probe("bash", Some(true)), &idle, None, None),
            Integration(ShellKind::Bash)
        );
        assert!(matches!(
            choose(&probe("sleep", Some(false)), &running, None, None),
            Busy(_)
        ));
        assert!(matches!(
            choose(&probe("bash", Some(true)), &running, None, None),
            Busy(_)
        ));
        let mut nested = probe("bash", Some(false));
        nested.fg_interactive = Some(true);
        assert_eq!(
            choose(&nested, &running, None, None),
            Marker(ShellKind::Bash)
        );
        // A fork of the shell in front, on its way to a hook's program (its command line is no
        // interactive shell's by the time it is read): passing, not a nested shell. It was
        // taken for one, and the run after a nested shell's `exit` got markers.
        assert!(matches!(
            choose(&probe("bash", Some(false)), &running, None, None),
            Busy(_)
        ));
        // A subshell `( read x )`: the shell's own command line, forked; interactive by its
        // arguments, but no shell a person started (a marker line typed there was read as data).
        let mut subshell = nested.clone();
        subshell.fg_fork = true;
        assert!(matches!(choose(&subshell, &running, None, None), Busy(_)));
        assert_eq!(
            choose(&probe("bash", Some(true)), &none, Some(&bash_file), None),
            Integration(ShellKind::Bash)
        );
        assert_eq!(
            choose(&probe("bash", Some(true)), &none, None, None),
            Marker(ShellKind::Bash)
        );
        assert_eq!(
            choose(&probe("sh", None), &none, None, None),
            Marker(ShellKind::Posix)
        );
        assert!(matches!(
            choose(&probe("python3", Some(false)), &none, None, None),
            Busy(_)
        ));
        let mut starting = probe("bash", Some(true));
        starting.started_with = Some("/s/panes/x".into());
        assert_eq!(
            choose(&starting, &none, None, Some("/s/panes/x")),
            Integration(ShellKind::Bash)
        );
        assert_eq!(
            choose(&starting, &none, None, Some("/other")),
            Marker(ShellKind::Bash)
        );
        let mut script = probe("bash", Some(false));
        script.fg_interactive = Some(false);
        assert!(matches!(choose(&script, &running, None, None), Busy(_)));
        // The state file says idle (bash writes it only at its prompt), but the terminal reads
        // whole lines: a builtin or a loop runs.
        let mut builtin = probe("bash", Some(true));
        builtin.line_mode = Some(true);
        assert!(choose(&builtin, &none, Some(&bash_file), None).line_mode());
        builtin.line_mode = Some(false);
        assert_eq!(
            choose(&builtin, &none, Some(&bash_file), None),
            Integration(ShellKind::Bash)
        );
    }

    #[test]
    fn wrapping() {
        let t = "tok";
        assert_eq!(
            wrap(&Choice::Integration(ShellKind::Bash), "echo x", t),
            "echo x"
        );
        assert_eq!(
            wrap(&Choice::Integration(ShellKind::Zsh), "a\nb", t),
            "{\na\nb\n}"
        );
        let m = wrap(&Choice::Marker(ShellKind::Posix), "cat <<EOF\nx\nEOF", t);
        assert!(m.starts_with(" printf '\\033]6973;S;tok\\007'; {\ncat <<EOF\nx\nEOF\n}; printf"));
        assert!(m.ends_with("\"$?\""));
    }

    #[test]
    fn osc7_paths() {
        assert_eq!(
            parse_osc7(b"file://host/a/b%C3%A9").as_deref(),
            Some("/a/bé")
        );
        assert_eq!(parse_osc7(b"file:///x").as_deref(), Some("/x"));
        assert_eq!(parse_osc7(b"http://x"), None);
    }
}
