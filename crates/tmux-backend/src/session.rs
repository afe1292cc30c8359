//! [`TmuxSession`]: core's [`Session`] for one tmux pane, always addressed by its `%N` id after
//! that id was checked to carry the session's persistent id.

use async_trait::async_trait;
use termloom_core::key::{SIGNAL_ECHO_GRACE, SIGNAL_QUIET, SIGNAL_SETTLE, signal_segments};
use termloom_core::text::{cap, line_hash, trim_trailing_blank};
use termloom_core::{
    BackendKind, Capture, CaptureOpts, Cursor, Direction, Error, Key, NativeId, OutputEvent,
    OutputStream, ReadRange, ResizeSpec, Result, SendOpts, Session, SessionId, SessionInfo,
    SplitSpec,
};

use crate::command::{Cmd, chain, compare_literal, format_literal, send_key};
use crate::control::output::LineMark;
use crate::control::transport::to_line;
use crate::format::{self, OPT_ID, OPT_MANAGED, OPT_NAME};
use crate::terminal::{SplitSize, TmuxTerminal, check_session_name, not_found_as};

/// Text longer than this, or with a newline, goes through a paste buffer instead of `send-keys -l`.
pub const PASTE_THRESHOLD: usize = 4096;

/// A handle on one tmux pane. Every operation checks, in the same step as it acts or before, that
/// the pane still carries the session's persistent id.
pub struct TmuxSession {
    term: TmuxTerminal,
    id: SessionId,
    native: NativeId,
    /// Writes need the pane to be managed (`@termloom_managed`), checked with the write.
    managed_only: bool,
    /// The session was named by its name: the pane must still carry it (`@termloom_name`, as
    /// stored: [`format::encode_value`]), checked with every operation.
    name: Option<String>,
    /// The session's name when the handle was made, for messages only (a dead pane can no
    /// longer say it).
    label: Option<String>,
}

impl TmuxSession {
    pub(crate) fn new(term: TmuxTerminal, id: SessionId, pane: String) -> Self {
        TmuxSession {
            term,
            id,
            native: NativeId::tmux(pane),
            managed_only: false,
            name: None,
            label: None,
        }
    }

    /// Names the session `name` in messages (the name it had when this handle was made).
    pub(crate) fn labelled(mut self, name: Option<&str>) -> Self {
        self.label = name.map(str::to_string);
        self
    }

    /// This handle acts only while the pane carries session name `name`, checked with each
    /// operation (a handle opened for a name).
    pub(crate) fn expect_name(mut self, name: Option<&str>) -> Self {
        self.name = name.map(format::encode_value);
        self
    }

    /// This handle refuses to write unless the pane is managed, checked with each write.
    pub(crate) fn managed_only(mut self, on: bool) -> Self {
        self.managed_only = on;
        self
    }

    fn pane(&self) -> &str {
        &self.native.id
    }

    fn gone(&self) -> impl FnOnce() -> Error + '_ {
        move || Error::SessionDead {
            id: self.id.to_string(),
            name: self
                .label
                .clone()
                .unwrap_or_else(|| self.native.to_string()),
        }
    }

    async fn run(&self, cmds: Vec<Cmd>) -> Result<String> {
        self.term
            .run(cmds)
            .await
            .map_err(|e| not_found_as(e, self.gone()))
    }
}

/// Field `i` of a `display-message` answer as a number (0 when missing or not a number).
fn number(f: &[&str], i: usize) -> u64 {
    f.get(i).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// `capture-pane -p` output as lines.
fn split_lines(out: &str) -> Vec<String> {
    let out = out.strip_suffix('\n').unwrap_or(out);
    out.split('\n').map(str::to_string).collect()
}

/// A command list as one string for tmux's parser: an argument of `if-shell`.
pub(crate) fn command_line(cmds: Vec<Cmd>) -> String {
    to_line(&chain(cmds))
}

/// The most argument bytes an operation may have and still go inside one `if-shell` with its
/// pane check (quoted a second time there; a spawned tmux takes about 16 KiB in all).
const GUARD_INLINE_MAX: usize = 6 * 1024;

/// Text pasted through a buffer up to this size is set with `set-buffer` in the same command list
/// as the paste; longer text is loaded through a spawned `load-buffer -` reading stdin.
const SET_BUFFER_MAX: usize = 16 * 1024;

/// The commands that type `text` into `pane` exactly, then Enter when asked: `send-keys -l` for
/// short single-line text, a bracketed paste from a named buffer for multi-line or long text (set
/// in the same command list up to [`SET_BUFFER_MAX`], else loaded first by a spawned
/// `load-buffer -`). Returns the commands that only set the buffer, those that type, and the
/// buffer to delete if they fail.
async fn text_cmds(term: &TmuxTerminal, pane: &str, text: &str, enter: bool) -> Result<TextCmds> {
    if text.contains('\0') {
        return Err(Error::InvalidArgument("text contains a NUL byte, which a terminal cannot receive; send it as a key or drop it".into()));
    }
    let enter_cmd = || Cmd::new("send-keys").opt("-t", pane).arg("Enter");
    let mut cmds = Vec::new();
    // Quoted length: control characters take four bytes each inside the pane check.
    if text.contains('\n')
        || text.contains('\r')
        || termloom_tmux_syntax::quoted_len(text) > PASTE_THRESHOLD
    {
        let buffer = format!("termloom-{}", uuid::Uuid::new_v4().simple());
        let mut pre = Vec::new();
        if text.len() <= SET_BUFFER_MAX {
            // In the same command list as the paste: one round trip, no process spawned (a
            // spawn is ~2 ms here and ~20 ms over ssh).
            pre.push(
                Cmd::new("set-buffer")
                    .opt("-b", &buffer)
                    .arg("--")
                    .arg(text),
            );
        } else {
            // load-buffer reads the text from stdin: no argv or command-line size limit.
            term.client()
                .spawn(
                    Cmd::new("load-buffer")
                        .opt("-b", &buffer)
                        .arg("-")
                        .into_args(),
                    Some(text.as_bytes()),
                )
                .await?;
        }
        // -r: paste newlines as they are; by default tmux turns each LF into a CR, so a program
        // reading raw input would not get the text as given.
        cmds.push(
            Cmd::new("paste-buffer")
                .arg("-p")
                .arg("-r")
                .arg("-d")
                .opt("-b", &buffer)
                .opt("-t", pane),
        );
        if enter {
            cmds.push(enter_cmd());
        }
        return Ok(TextCmds {
            pre,
            typing: cmds,
            buffer: Some(buffer),
        });
    }
    if !text.is_empty() {
        cmds.push(
            Cmd::new("send-keys")
                .opt("-t", pane)
                .arg("-l")
                .arg("--")
                .arg(text),
        );
    }
    if enter {
        cmds.push(enter_cmd());
    }
    Ok(TextCmds {
        pre: Vec::new(),
        typing: cmds,
        buffer: None,
    })
}

/// What [`text_cmds`] gives.
struct TextCmds {
    /// Commands that set the paste buffer (they do not touch the pane).
    pre: Vec<Cmd>,
    /// Commands that type into the pane.
    typing: Vec<Cmd>,
    /// The paste buffer to delete if the commands fail.
    buffer: Option<String>,
}

/// Deletes a paste buffer left behind by commands that failed.
async fn drop_buffer(term: &TmuxTerminal, buffer: Option<String>) {
    if let Some(b) = buffer {
        let _ = term
            .run(vec![Cmd::new("delete-buffer").opt("-b", &b)])
            .await;
    }
}

/// Sends text to a pane exactly (see [`text_cmds`]), then Enter when asked.
pub(crate) async fn send_text_to(
    term: &TmuxTerminal,
    pane: &str,
    text: &str,
    enter: bool,
) -> Result<()> {
    let TextCmds {
        mut pre,
        typing,
        buffer,
    } = text_cmds(term, pane, text, enter).await?;
    pre.extend(typing);
    if pre.is_empty() {
        return Ok(());
    }
    if let Err(e) = term.run(pre).await {
        drop_buffer(term, buffer).await;
        return Err(e);
    }
    Ok(())
}

/// A read position: the absolute number of the last non-blank line seen (the anchor), the length
/// and hash of its text, and the hash of the line before it.
///
/// A later read finds the anchor where it was, or (when scrollback was trimmed or cleared and lines
/// moved up) the nearest earlier line with the same text after the same line. The anchor may have
/// grown since (a prompt the next command was typed on): its old text is then a prefix of the
/// line, and the line is returned again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CursorData {
    pane: String,
    line: u64,
    len: usize,
    hash: u64,
    /// Hash of the line before the anchor; 0 when unknown.
    prev: u64,
    /// Lines in the pane (history and screen) at that read; 0 when unknown.
    total: u64,
    /// How many lines the pane had printed by then, when this process was counting them
    /// ([`OutputHub::line_mark`](crate::control::output::OutputHub::line_mark)).
    mark: Option<LineMark>,
    /// The lines before the anchor that the read returned (up to [`WINDOW`]): how many, and the
    /// hash of their text. A screen cleared and drawn again (a test re-runner, a `watch` loop)
    /// can put the anchor's text at its old place after the same line, with other lines above.
    window: (u8, u64),
}

/// How many lines before a cursor's anchor it keeps a hash of.
const WINDOW: usize = 8;

/// The hash of `lines`, joined.
fn window_hash<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> u64 {
    let mut joined = String::new();
    for l in lines {
        joined.push_str(l.as_ref().trim_end());
        joined.push('\n');
    }
    line_hash(&joined)
}

/// How a line relates to a cursor's anchor text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnchorMatch {
    /// The same text.
    Same,
    /// The anchor's text followed by more.
    Grown,
}

impl CursorData {
    /// The cursor after `lines` (whose first line is absolute line `first_line`): anchored on the
    /// last non-blank line, or empty (hash 0: everything is new) when there is none. `before` is
    /// the line before `lines`, when it was read: the anchor's predecessor when the anchor is the
    /// first line (a one-line read), without which a lone prompt matches any later prompt.
    fn after(pane: &str, lines: &[String], first_line: u64, before: Option<&str>) -> CursorData {
        let text = |i: usize| termloom_core::text::strip_ansi(&lines[i]);
        match lines.iter().rposition(|l| !l.trim().is_empty()) {
            Some(i) => {
                let anchor = text(i);
                let from = i.saturating_sub(WINDOW);
                CursorData {
                    pane: pane.to_string(),
                    line: first_line + i as u64,
                    len: anchor.trim_end().len(),
                    hash: line_hash(&anchor),
                    prev: match (i, before) {
                        (0, Some(b)) => line_hash(&termloom_core::text::strip_ansi(b)),
                        (0, None) => 0,
                        _ => line_hash(&text(i - 1)),
                    },
                    total: 0,
                    mark: None,
                    window: match i - from {
                        0 => (0, 0),
                        n => (n as u8, window_hash((from..i).map(text))),
                    },
                }
            }
            None => CursorData {
                pane: pane.to_string(),
                line: first_line,
                len: 0,
                hash: 0,
                prev: 0,
                total: 0,
                mark: None,
                window: (0, 0),
            },
        }
    }

    /// Whether `line` holds the anchor's text, as it was or grown.
    fn matches(&self, line: &str) -> Option<AnchorMatch> {
        match termloom_core::text::anchor_grew(line, self.len, self.hash)? {
            false => Some(AnchorMatch::Same),
            true => Some(AnchorMatch::Grown),
        }
    }

    /// Finds the anchor in `plain` (every line of the pane, 0 being the oldest): where it was, else
    /// the nearest earlier place where it follows the same line. A grown anchor needs that line to
    /// be known, so that a bare prompt does not match every later command line.
    ///
    /// `scrolled_to`, when known, is where the anchor must be if every line printed since
    /// scrolled the pane by one (see [`CursorData::scrolled_to`]); it is tried first. Once the
    /// scrollback is full, lines leave it at the top as they come, and where repeated output
    /// puts the anchor's text again at its old place, only the count tells the places apart.
    fn find(&self, plain: &[String], scrolled_to: Option<u64>) -> Option<(usize, AnchorMatch)> {
        let window_ok = |i: usize| {
            let n = usize::from(self.window.0);
            n == 0 || (i >= n && window_hash(&plain[i - n..i]) == self.window.1)
        };
        let prev_ok = |i: usize| self.prev_at(plain, i);
        let at = |i: usize| self.anchor_at(plain, i);
        if let Some(i) = scrolled_to.and_then(|i| usize::try_from(i).ok())
            && let Some(m) = at(i).filter(|_| prev_ok(i))
        {
            return Some((i, m));
        }
        // Where it was, nothing having moved: the lines above it are where they were too,
        // unless the screen was drawn again.
        let expected = usize::try_from(self.line).ok()?;
        if let Some(m) = at(expected).filter(|_| prev_ok(expected) && window_ok(expected)) {
            return Some((expected, m));
        }
        // Earlier: lines left the top of a full scrollback, each pushed out by a line printed
        // after the anchor, so at least as many lines follow it now as went. Fewer: the
        // scrollback was cleared (`clear`), and the text is other output.
        let last = plain
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .unwrap_or(0);
        (0..expected.min(plain.len()))
            .rev()
            .find_map(|i| match at(i) {
                Some(m)
                    if prev_ok(i)
                        && (m == AnchorMatch::Same || self.prev != 0)
                        && last.saturating_sub(i) >= expected - i =>
                {
                    Some((i, m))
                }
                _ => None,
            })
    }

    /// Whether the anchor's text is where it was, after the same line, but the lines above it
    /// changed: the screen was cleared and drawn again in place.
    fn redrawn(&self, plain: &[String]) -> bool {
        let Ok(i) = usize::try_from(self.line) else {
            return false;
        };
        self.window.0 > 0 && self.anchor_at(plain, i).is_some() && self.prev_at(plain, i)
    }

    /// How line `i` of `plain` holds the anchor's text, if it does.
    fn anchor_at(&self, plain: &[String], i: usize) -> Option<AnchorMatch> {
        plain.get(i).and_then(|l| self.matches(l))
    }

    /// Whether the line before line `i` of `plain` is the one the anchor followed (always, when
    /// that was not known).
    fn prev_at(&self, plain: &[String], i: usize) -> bool {
        self.prev == 0 || (i > 0 && line_hash(&plain[i - 1]) == self.prev)
    }

    /// Where the anchor is now if every one of the lines printed since (counted by this
    /// process, `now`) scrolled the pane by one line: `total_now` lines, the anchor as far from
    /// the end as it was plus one per line. Only when that can be told (same count epoch) and
    /// matters: when the scrollback could have reached its `limit` in between (before that, lines
    /// keep their numbers, and a pane whose screen was not full yet does not scroll at all).
    fn scrolled_to(
        &self,
        now: Option<LineMark>,
        total_now: u64,
        height: u64,
        limit: u64,
    ) -> Option<u64> {
        if limit == 0 {
            return None;
        }
        let printed = self.printed_since(now)?;
        let history_then = self.total.saturating_sub(height);
        if history_then + printed < limit {
            return None;
        }
        total_now.checked_sub(self.total - self.line + printed)
    }

    /// Whether the lines printed since (counted by this process) have certainly pushed the anchor
    /// out of the scrollback: it was `total - line` lines from the end, each newline adds at
    /// most one, and the screen's `height` rows (where the cursor moves down without scrolling)
    /// are allowed for. Then text that matches where the anchor was is other, repeated output.
    fn scrolled_out(&self, now: Option<LineMark>, total_now: u64, height: u64) -> bool {
        self.printed_since(now)
            .is_some_and(|printed| self.total - self.line + printed > total_now + height)
    }

    /// The newlines this process counted in the pane since the cursor's read, when that can be
    /// told: the same count epoch, and a cursor that knew the pane's size (`total > line`).
    fn printed_since(&self, now: Option<LineMark>) -> Option<u64> {
        let (then, now) = (self.mark?, now?);
        if then.epoch != now.epoch || self.total <= self.line {
            return None;
        }
        now.newlines.checked_sub(then.newlines)
    }

    fn encode(&self) -> Cursor {
        let base = format!(
            "{}.{}.{}.{:x}.{:x}",
            self.pane.trim_start_matches('%'),
            self.line,
            self.len,
            self.hash,
            self.prev
        );
        let (n, w) = self.window;
        Cursor(match (self.mark, n) {
            (Some(m), 0) => format!("t3.{base}.{}.{:x}.{}", self.total, m.epoch, m.newlines),
            (None, 0) => format!("t2.{base}"),
            (Some(m), n) => format!(
                "t5.{base}.{}.{:x}.{}.{n}.{w:x}",
                self.total, m.epoch, m.newlines
            ),
            (None, n) => format!("t4.{base}.{n}.{w:x}"),
        })
    }

    fn decode(c: &Cursor) -> Option<CursorData> {
        let mut it = c.0.split('.');
        let (v3, windowed) = match it.next()? {
            "t2" => (false, false),
            "t3" => (true, false),
            "t4" => (false, true),
            "t5" => (true, true),
            _ => return None,
        };
        let pane = format!("%{}", it.next()?.parse::<u32>().ok()?);
        let line = it.next()?.parse().ok()?;
        let len = it.next()?.parse().ok()?;
        let hash = u64::from_str_radix(it.next()?, 16).ok()?;
        let prev = u64::from_str_radix(it.next()?, 16).ok()?;
        let (total, mark) = if v3 {
            let total = it.next()?.parse().ok()?;
            let epoch = u64::from_str_radix(it.next()?, 16).ok()?;
            let newlines = it.next()?.parse().ok()?;
            (total, Some(LineMark { epoch, newlines }))
        } else {
            (0, None)
        };
        let window = if windowed {
            let n: u8 = it.next()?.parse().ok()?;
            let w = u64::from_str_radix(it.next()?, 16).ok()?;
            (n.min(WINDOW as u8), w)
        } else {
            (0, 0)
        };
        if it.next().is_some() {
            return None;
        }
        Some(CursorData {
            pane,
            line,
            len,
            hash,
            prev,
            total,
            mark,
            window,
        })
    }
}

/// Lines read for a capture: `lines` from absolute line `first`, and the line before them when
/// it was read too (a cursor keeps its hash to tell its anchor from the same text elsewhere).
struct Read {
    lines: Vec<String>,
    first: u64,
    before: Option<String>,
}

impl Read {
    /// `lines`, shown from absolute line `first`; with `has_before`, their first line is the
    /// line before, read only for the cursor.
    fn from(mut lines: Vec<String>, first: u64, has_before: bool) -> Read {
        let before = (has_before && !lines.is_empty()).then(|| lines.remove(0));
        if let Some(b) = &before {
            carry_colours(std::slice::from_ref(b), &mut lines);
        }
        Read {
            lines,
            first,
            before,
        }
    }

    /// The last `n` lines (trailing blank lines left out) of `lines`, which start at absolute
    /// line `first`, with the line before them when there is one.
    fn tail(mut lines: Vec<String>, first: u64, n: usize) -> Read {
        trim_trailing_blank(&mut lines);
        let drop = lines.len().saturating_sub(n);
        let mut shown = lines.split_off(drop);
        carry_colours(&lines, &mut shown);
        Read {
            lines: shown,
            first: first + drop as u64,
            before: lines.pop(),
        }
    }
}

/// `capture-pane -e` writes a colour only where it changes: a line that starts in a colour set
/// on a line left out (read only for the cursor) would lose it. The colour sequences (SGR) of
/// the lines left out go in front of the first line kept. Plain captures have none.
fn carry_colours(dropped: &[String], kept: &mut [String]) {
    let Some(first) = kept.first_mut() else {
        return;
    };
    let mut carry = String::new();
    for line in dropped.iter().filter(|l| l.contains('\x1b')) {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("\x1b[") {
            let seq = &rest[i..];
            match seq[2..].find(|c: char| ('\x40'..='\x7e').contains(&c)) {
                Some(end) => {
                    let len = 2 + end + 1;
                    if seq[..len].ends_with('m') {
                        carry.push_str(&seq[..len]);
                    }
                    rest = &seq[len..];
                }
                None => break,
            }
        }
    }
    if !carry.is_empty() {
        first.insert_str(0, &carry);
    }
}

/// What a pane says about itself, read in one command.
#[derive(Clone, Copy, Debug)]
struct PaneState {
    /// Lines in the scrollback.
    history: u64,
    /// Rows on the screen.
    height: u64,
    /// The scrollback's limit (`history-limit`); 0 when not read.
    limit: u64,
    /// Its process has exited (the pane stays because of `remain-on-exit`).
    dead: bool,
    /// It is in a mode (copy mode after a scroll back, view mode): keys go to the mode then.
    in_mode: bool,
    /// `synchronize-panes` is on for it: tmux copies typed keys to every pane of its window.
    synchronized: bool,
}

/// Turns a broadcast receiver into an output stream: a lag becomes [`OutputEvent::Lagged`], the
/// end of the channel ends the stream (after the hub sent `Closed`).
pub(crate) fn broadcast_stream(
    rx: tokio::sync::broadcast::Receiver<OutputEvent>,
) -> impl futures_util::Stream<Item = OutputEvent> + Send + 'static {
    futures_util::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Ok(ev @ OutputEvent::Closed { .. }) => Some((ev, (rx, true))),
            Ok(ev) => Some((ev, (rx, false))),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                Some((OutputEvent::Lagged(n), (rx, false)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => Some((
                OutputEvent::Closed {
                    reason: "output stream ended".into(),
                },
                (rx, true),
            )),
        }
    })
}

impl TmuxSession {
    /// The workspace id (`$N`) the pane is in now.
    pub(crate) async fn workspace_id(&self) -> Result<String> {
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", self.pane())
                    .arg("#{session_id}"),
            ])
            .await?;
        Ok(out.trim().to_string())
    }

    /// A receiver of this pane's output.
    pub(crate) async fn output_receiver(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<OutputEvent>> {
        let ws = self.workspace_id().await?;
        Ok(self.term.hub().subscribe(&ws, self.pane()).await?)
    }

    /// Reads the pane's state and checks that the pane still carries this session's id: tmux
    /// reuses `%N` after a server restart, and a handle must never act on another session's pane.
    /// Every operation starts here.
    async fn state(&self) -> Result<PaneState> {
        self.checked_state(false).await
    }

    /// [`state`](Self::state) before a change: on a managed-only handle the pane must be managed.
    async fn write_state(&self) -> Result<PaneState> {
        self.checked_state(true).await
    }

    async fn checked_state(&self, write: bool) -> Result<PaneState> {
        let fmt = format::format(&[
            "#{pane_id}",
            "#{@termloom_id}",
            "#{pane_dead}",
            "#{history_size}",
            "#{pane_height}",
            "#{pane_in_mode}",
            "#{@termloom_managed}",
            "#{history_limit}",
            "#{@termloom_name}",
            "#{synchronize-panes}",
        ]);
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", self.pane())
                    .arg(fmt),
            ])
            .await?;
        let f: Vec<&str> = out.trim_end_matches('\n').split(format::SEP).collect();
        self.check_pane(f.first().copied(), f.get(1).copied(), f.get(8).copied())?;
        if write && self.managed_only && f.get(6).copied() != Some("1") {
            return Err(self.not_managed());
        }
        Ok(PaneState {
            history: number(&f, 3),
            height: number(&f, 4),
            limit: number(&f, 7),
            dead: f.get(2).copied() == Some("1"),
            in_mode: f.get(5).copied() == Some("1"),
            synchronized: f.get(9).copied() == Some("1"),
        })
    }

    fn stale(&self) -> Error {
        Error::StaleNativeId {
            id: self.id.to_string(),
            native: self.native.to_string(),
        }
    }

    /// Checks what a `display-message` on this handle's pane read of the pane's id, of the
    /// persistent id on it and (for a handle opened by name) of its session name. tmux prints
    /// empty fields for a pane that is gone, and reuses `%N` after a restart: a handle must never
    /// act on another session's pane.
    fn check_pane(&self, pane: Option<&str>, id: Option<&str>, name: Option<&str>) -> Result<()> {
        if pane != Some(self.pane()) {
            return Err((self.gone())());
        }
        if id != Some(self.id.to_string().as_str()) {
            return Err(self.stale());
        }
        if let Some(want) = &self.name
            && name != Some(want.as_str())
        {
            return Err(self.stale());
        }
        Ok(())
    }

    fn not_managed(&self) -> Error {
        Error::PermissionDenied(format!(
            "session {} was not created by termloom and nobody tagged it (`termloom tag`); this handle only writes to managed sessions",
            self.id
        ))
    }

    /// Whether `e` says this handle's pane has gone or its process has exited.
    fn ended(&self, e: &Error) -> bool {
        match (e, self.dead_pane()) {
            (Error::SessionDead { .. }, _) => true,
            (Error::InvalidArgument(m), Error::InvalidArgument(dead)) => *m == dead,
            _ => false,
        }
    }

    fn synchronized(&self) -> Error {
        synchronized_error(self.pane())
    }

    fn dead_pane(&self) -> Error {
        Error::InvalidArgument(format!(
            "session {} cannot take input: its process has exited (dead pane {}, kept by remain-on-exit); read or close it",
            self.id,
            self.pane()
        ))
    }

    /// Types: runs `ops` only if the pane still carries this session's id, is alive, is in no
    /// mode (copy mode eats typed text) and, on a managed-only handle, is managed; checked by tmux
    /// in the same step (`if-shell -F`): one round trip, and nothing can come between the check
    /// and the keystrokes. A pane in a mode is taken out of it, as typing into it would, and the
    /// input sent again.
    ///
    /// `pre` runs first, whatever the check says: commands that do not touch the pane (setting
    /// the paste buffer, whose text is then not quoted a second time inside the `if-shell`). A
    /// list too long for one `if-shell` (a spawned tmux takes about 16 KiB of arguments) is
    /// checked first and run after, in two steps.
    async fn checked_input(&self, pre: Vec<Cmd>, ops: Vec<Cmd>) -> Result<()> {
        let pane = self.pane();
        let inline: usize = ops.iter().flat_map(|c| c.args()).map(|a| a.len() + 8).sum();
        if inline > GUARD_INLINE_MAX {
            let st = self.write_state().await?;
            if st.dead {
                return Err(self.dead_pane());
            }
            if st.synchronized {
                return Err(self.synchronized());
            }
            let mut cmds = pre;
            if st.in_mode {
                cmds.push(self.cancel_mode());
            }
            cmds.extend(ops);
            if !cmds.is_empty() {
                self.run(cmds).await?;
            }
            return Ok(());
        }
        let cond = guard_condition(pane, self.id, self.managed_only, self.name.as_deref());
        // What the pane is instead, when the check fails (no literal `%` in a display-message
        // format: it goes through strftime).
        let refused = Cmd::new("display-message")
            .arg("-p")
            .opt("-t", pane)
            .arg(format::format(&[
                "R",
                "#{pane_id}",
                "#{@termloom_id}",
                "#{pane_dead}",
                "#{@termloom_managed}",
                "#{pane_in_mode}",
                "#{@termloom_name}",
                "#{synchronize-panes}",
            ]));
        let ops = if ops.is_empty() {
            // Nothing to type: the check alone.
            vec![Cmd::new("display-message").arg("-p").arg("ok")]
        } else {
            ops
        };
        // Both branches run as many commands, so the reply's length is known and no sentinel
        // line follows (see the control transport).
        let mut other = vec![refused];
        other.resize(ops.len(), Cmd::new("display-message").arg("-p").arg(""));
        let mut cmds = pre;
        cmds.push(
            Cmd::new("if-shell")
                .arg("-F")
                .opt("-t", pane)
                .arg(&cond)
                .arg(command_line(ops))
                .arg(command_line(other)),
        );
        let mut left_mode = false;
        loop {
            let out = self.run(cmds.clone()).await?;
            // The typing commands print nothing; a refusal prints its line.
            let Some(line) = out.lines().find(|l| l.starts_with("R\u{1f}")) else {
                return Ok(());
            };
            let f: Vec<&str> = line.split(format::SEP).collect();
            self.check_pane(f.get(1).copied(), f.get(2).copied(), f.get(6).copied())?;
            if f.get(3).copied() == Some("1") {
                return Err(self.dead_pane());
            }
            if self.managed_only && f.get(4).copied() != Some("1") {
                return Err(self.not_managed());
            }
            if f.get(7).copied() == Some("1") {
                return Err(self.synchronized());
            }
            if f.get(5).copied() == Some("1") && !left_mode {
                // The pane carries this session's id (just read): leave the mode, type again.
                self.run(vec![self.cancel_mode()]).await?;
                left_mode = true;
                continue;
            }
            return Err(Error::backend(
                BackendKind::Tmux,
                format!("unexpected answer to the pane check of {pane}: {line:?}"),
            ));
        }
    }

    fn cancel_mode(&self) -> Cmd {
        Cmd::new("send-keys")
            .arg("-X")
            .opt("-t", self.pane())
            .arg("cancel")
    }

    /// Reads: the pane's id check and its state in one `display-message`, then `ops` (a
    /// capture) in the same command list: one round trip. A read changes nothing, so `ops` run
    /// either way and their text is thrown away when the check failed. The fields are compared
    /// here, not in the format: display-message passes its format through strftime, which
    /// mangles a literal `%3` (`#{==:#{pane_id},%3}` was false for pane %3).
    async fn checked_read(&self, ops: Vec<Cmd>) -> Result<(PaneState, String)> {
        self.checked_read_sized(ops, 0).await
    }

    /// [`checked_read`](Self::checked_read) of about `lines` lines ([`run_sized`]): the check
    /// and the reads in one command list, so the numbers and the text are of one moment.
    ///
    /// [`run_sized`]: Self::run_sized
    async fn checked_read_sized(&self, ops: Vec<Cmd>, lines: u64) -> Result<(PaneState, String)> {
        let pane = self.pane();
        let mut cmds =
            vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", pane)
                    .arg(format::format(&[
                        "S",
                        "#{pane_id}",
                        "#{@termloom_id}",
                        "#{history_size}",
                        "#{pane_height}",
                        "#{@termloom_name}",
                    ])),
            ];
        cmds.extend(ops);
        let out = self.run_sized(cmds, lines).await?;
        let (first, rest) = out.split_once('\n').unwrap_or((&out, ""));
        let f: Vec<&str> = first.split(format::SEP).collect();
        if f.first().copied() != Some("S") {
            return Err((self.gone())());
        }
        self.check_pane(f.get(1).copied(), f.get(2).copied(), f.get(5).copied())?;
        let st = PaneState {
            history: number(&f, 3),
            height: number(&f, 4),
            limit: 0,
            dead: false,
            in_mode: false,
            synchronized: false,
        };
        Ok((st, rest.to_string()))
    }

    /// `capture-pane` of tmux lines `start..=end` (no `end` = the bottom of the screen). A start
    /// before tmux's `int` range is clamped to it, which still means the history's first line:
    /// tmux reads a number it cannot parse as the screen's top (`read --lines 2147483648` gave
    /// the screen alone).
    fn capture_cmd(&self, start: i64, end: Option<i64>, opts: &CaptureOpts) -> Cmd {
        let start = start.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        Cmd::new("capture-pane")
            .arg("-p")
            .flag_if("-e", opts.ansi)
            .flag_if("-J", opts.join_wrapped)
            .opt("-t", self.pane())
            .opt("-S", start.to_string())
            .opt(
                "-E",
                end.map(|e| e.to_string())
                    .unwrap_or_else(|| "-".to_string()),
            )
    }

    /// `capture-pane` from the first line of the history (tmux's `-S -`, which does not move
    /// while the pane prints, unlike a number counted from the screen's top) to the bottom.
    fn capture_all_cmd(&self, opts: &CaptureOpts) -> Cmd {
        Cmd::new("capture-pane")
            .arg("-p")
            .flag_if("-e", opts.ansi)
            .flag_if("-J", opts.join_wrapped)
            .opt("-t", self.pane())
            .opt("-S", "-")
            .opt("-E", "-")
    }

    /// Absolute lines `a..=b` (clamped to the pane) and the state, from one command list: tmux
    /// counts `-S`/`-E` from the screen's top, which moves while the pane prints, so the range
    /// reaches `slack` rows further up than `h0`, the history size seen before, says; the state
    /// read in the same list then tells where the captured rows really are. More lines than
    /// that printed in between, and it tries again. Rows only: joined lines cannot be counted.
    async fn capture_lines(
        &self,
        a: u64,
        b: u64,
        before: &PaneState,
        opts: &CaptureOpts,
    ) -> Result<(PaneState, Vec<String>)> {
        let mut h0 = before.history;
        let height = before.height.max(1);
        let mut slack: u64 = 64;
        loop {
            // A range to the last line reaches the bottom, wherever it is by then.
            let to_bottom = b.saturating_add(1) >= h0 + height;
            let start = a as i64 - (h0 + slack) as i64;
            let end = (!to_bottom).then(|| b as i64 - h0 as i64);
            let size = if to_bottom {
                h0 + height - a.min(h0 + height)
            } else {
                b - a + 1
            };
            let (st, out) = self
                .checked_read_sized(vec![self.capture_cmd(start, end, opts)], size + slack)
                .await?;
            let h1 = st.history;
            if (h0..=h0 + slack).contains(&h1) || slack >= 1 << 20 {
                // tmux starts at the history's top when asked for more.
                let first_abs = (start.max(-(h1 as i64)) + h1 as i64).max(0) as u64;
                let last = b.min(h1 + st.height.max(1) - 1);
                let keep = (last + 1).saturating_sub(a.max(first_abs));
                let mut all = split_lines(&out);
                let skip = (a.saturating_sub(first_abs) as usize).min(all.len());
                let mut lines = all.split_off(skip);
                lines.truncate(keep as usize);
                carry_colours(&all, &mut lines);
                return Ok((st, lines));
            }
            h0 = h1;
            slack *= 8;
        }
    }

    async fn capture_raw(
        &self,
        start: i64,
        end: Option<i64>,
        lines: u64,
        opts: &CaptureOpts,
    ) -> Result<Vec<String>> {
        let out = self
            .run_sized(vec![self.capture_cmd(start, end, opts)], lines)
            .await?;
        Ok(split_lines(&out))
    }

    /// Runs `cmds`, whose output is about `lines` lines: more than the control client should
    /// carry go through a spawned tmux, still one command list (tmux runs a list without reading
    /// any pane in between).
    async fn run_sized(&self, cmds: Vec<Cmd>, lines: u64) -> Result<String> {
        let client = self.term.client();
        if client.control().is_some() && lines > client.options().spawn_read_lines {
            client
                .spawn(chain(cmds), None)
                .await
                .map_err(|e| not_found_as(e.into(), self.gone()))
        } else {
            self.run(cmds).await
        }
    }

    /// A read whose cursor carries `mark`, the pane's line count taken before it.
    async fn read(&self, opts: &CaptureOpts, mark: Option<LineMark>) -> Result<Capture> {
        if !opts.join_wrapped || matches!(opts.range, ReadRange::Since(_)) {
            return self.read_range(opts, mark).await;
        }
        // Joined rows are not the lines cursors count: the cursor comes from the same read of
        // plain rows (a second capture, only for `join_wrapped`).
        let mut cap = self.read_range(opts, mark).await?;
        let plain = CaptureOpts {
            join_wrapped: false,
            ansi: false,
            ..opts.clone()
        };
        cap.cursor = self.read_range(&plain, mark).await?.cursor;
        Ok(cap)
    }

    /// [`read`](Self::read) whose cursor is built from the lines it returns.
    async fn read_range(&self, opts: &CaptureOpts, mark: Option<LineMark>) -> Result<Capture> {
        match &opts.range {
            ReadRange::Since(c) => self.read_since(c, opts, mark).await,
            ReadRange::Screen => {
                // From the last line of the history (tmux starts at the screen when there is
                // none): the line before the screen, for the cursor. Not when wrapped lines are
                // joined: that row could be joined with the screen's first.
                let before = !opts.join_wrapped;
                let (st, out) = self
                    .checked_read(vec![self.capture_cmd(-i64::from(before), None, opts)])
                    .await?;
                let (hist, height) = (st.history, st.height);
                let read = Read::from(split_lines(&out), hist, before && hist > 0);
                Ok(self.finish(read, hist + height, opts, usize::MAX, mark))
            }
            ReadRange::Tail(n) if (*n as u64) <= self.term.client().options().spawn_read_lines => {
                // Checked, sized and captured in one step: tmux starts `-S -n` at the top of the
                // history when there is less.
                // One line more than asked for: the line before, for the cursor.
                let n = *n;
                let (st, out) = self
                    .checked_read(vec![self.capture_cmd(-(n as i64) - 1, None, opts)])
                    .await?;
                let (hist, height) = (st.history, st.height);
                let back = (n as u64 + 1).min(hist);
                let read = Read::tail(split_lines(&out), hist - back, n);
                Ok(self.finish(read, hist + height, opts, n.max(1), mark))
            }
            ReadRange::Tail(n) => {
                // As above, through a spawned tmux for the size.
                let n = *n;
                let (st, out) = self
                    .checked_read_sized(
                        vec![self.capture_cmd(-(n as i64) - 1, None, opts)],
                        n as u64,
                    )
                    .await?;
                let (hist, height) = (st.history, st.height);
                let back = (n as u64 + 1).min(hist);
                let read = Read::tail(split_lines(&out), hist - back, n);
                Ok(self.finish(read, hist + height, opts, n.max(1), mark))
            }
            ReadRange::Lines { from, to } => {
                if from > to {
                    return Err(Error::InvalidArgument(format!(
                        "line range {from}-{to} is backwards"
                    )));
                }
                let st = self.state().await?;
                let (hist, total) = (st.history, st.history + st.height);
                if *from >= total {
                    return Ok(Capture {
                        first_line: *from,
                        total_lines: total,
                        note: Some(format!("line {from} is past the end ({total} lines)")),
                        cursor: self.cursor_after(&[], total, total, None, mark),
                        ..Capture::default()
                    });
                }
                // From the line before, for the cursor (not when wrapped lines are joined: that
                // line could be joined with the first one asked for).
                let before = *from > 0 && !opts.join_wrapped;
                if opts.join_wrapped {
                    let start = *from as i64 - hist as i64;
                    let end = (*to).min(total - 1) as i64 - hist as i64;
                    let lines = self
                        .capture_raw(start, Some(end), (end - start + 1).max(0) as u64, opts)
                        .await?;
                    let read = Read::from(lines, *from, false);
                    return Ok(self.finish(
                        read,
                        total,
                        opts,
                        termloom_core::DEFAULT_READ_CAP,
                        mark,
                    ));
                }
                let a = *from - u64::from(before);
                let (st, lines) = self.capture_lines(a, *to, &st, opts).await?;
                let total = st.history + st.height;
                let read = Read::from(lines, *from, before);
                Ok(self.finish(read, total, opts, termloom_core::DEFAULT_READ_CAP, mark))
            }
        }
    }

    /// The cursor after `lines` (from absolute line `first_line`) in a pane of `total` lines.
    fn cursor_after(
        &self,
        lines: &[String],
        first_line: u64,
        total: u64,
        before: Option<&str>,
        mark: Option<LineMark>,
    ) -> Cursor {
        let mut d = CursorData::after(self.pane(), lines, first_line, before);
        d.total = total;
        d.mark = mark;
        d.encode()
    }

    fn finish(
        &self,
        read: Read,
        total: u64,
        opts: &CaptureOpts,
        default_cap: usize,
        mark: Option<LineMark>,
    ) -> Capture {
        let Read {
            mut lines,
            first: first_line,
            before,
        } = read;
        trim_trailing_blank(&mut lines);
        let cursor = self.cursor_after(&lines, first_line, total, before.as_deref(), mark);
        let capped = cap(
            &lines,
            first_line,
            opts.max_lines.unwrap_or(default_cap),
            opts.max_bytes.unwrap_or(usize::MAX),
        );
        Capture {
            text: capped.text,
            first_line,
            total_lines: total,
            truncated: capped.truncated,
            note: capped.note,
            cursor,
        }
    }

    async fn read_since(
        &self,
        cursor: &Cursor,
        opts: &CaptureOpts,
        mark: Option<LineMark>,
    ) -> Result<Capture> {
        let data = CursorData::decode(cursor).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "'{}' is not a cursor from a read of a tmux session",
                cursor.0
            ))
        })?;
        if data.pane != self.pane() {
            return Err(Error::InvalidArgument(format!(
                "cursor '{}' belongs to another pane ({}), not {}",
                cursor.0,
                data.pane,
                self.pane()
            )));
        }
        let st = self.state().await?;
        // The anchor is looked for in plain, unjoined lines: the numbering cursors use. From the
        // history's first line, with the sizes of the same moment (a start counted from the
        // screen's top would move while the pane prints, and lines would be skipped).
        let plain_opts = CaptureOpts {
            ansi: false,
            join_wrapped: false,
            ..opts.clone()
        };
        let (now_st, out) = self
            .checked_read_sized(
                vec![self.capture_all_cmd(&plain_opts)],
                st.history + st.height,
            )
            .await?;
        let st = PaneState {
            limit: st.limit,
            ..now_st
        };
        let (hist, total) = (st.history, st.history + st.height);
        let plain = split_lines(&out);
        let now = self.term.hub().line_mark(self.pane());
        let scrolled_to = data.scrolled_to(now, total, st.height, st.limit);
        let scrolled_out = data.scrolled_out(now, total, st.height);
        let found = if scrolled_out {
            None
        } else {
            data.find(&plain, scrolled_to)
        };
        let redrawn = found.is_none() && !scrolled_out && data.redrawn(&plain);
        let (start, note) = match found {
            Some((i, AnchorMatch::Same)) => (i + 1, None),
            // The anchor line grew (a command typed on a prompt): return it again.
            Some((i, AnchorMatch::Grown)) => (i, None),
            None if data.hash == 0 => (0, None),
            None if scrolled_out => (
                0,
                Some("more lines were printed since the previous read than the scrollback holds: the first of them are gone; returning everything left".to_string()),
            ),
            None if redrawn => (
                0,
                Some("the screen was cleared and drawn again since the previous read (the lines above its position changed): returning everything".to_string()),
            ),
            None => (
                0,
                Some("the previous read position is gone (scrollback trimmed or cleared, lines re-wrapped by a resize, a full-screen program, or the pane restarted); returning everything".to_string()),
            ),
        };
        let lines: Vec<String> = if opts.join_wrapped {
            self.capture_raw(
                start as i64 - hist as i64,
                None,
                total.saturating_sub(start as u64),
                opts,
            )
            .await?
        } else if opts.ansi {
            // Rows as in `plain`, from the same first line; what printed since comes after.
            let (_, out) = self
                .checked_read_sized(vec![self.capture_all_cmd(opts)], total)
                .await?;
            let mut all = split_lines(&out);
            let mut lines = all.split_off(start.min(all.len()));
            carry_colours(&all, &mut lines);
            lines
        } else {
            plain.iter().skip(start).cloned().collect()
        };
        let mut cap = self.finish(
            Read::from(lines, start as u64, false),
            total,
            opts,
            termloom_core::DEFAULT_READ_CAP,
            mark,
        );
        let mut plain = plain;
        trim_trailing_blank(&mut plain);
        cap.cursor = self.cursor_after(&plain, 0, total, None, mark);
        if let Some(n) = note {
            cap.note = Some(match cap.note {
                Some(old) => format!("{n}; {old}"),
                None => n,
            });
        }
        Ok(cap)
    }
}

#[async_trait]
impl Session for TmuxSession {
    fn id(&self) -> SessionId {
        self.id
    }

    fn native(&self) -> &NativeId {
        &self.native
    }

    async fn info(&self) -> Result<SessionInfo> {
        let info = self
            .term
            .pane_info(self.pane())
            .await
            .map_err(|e| match e {
                Error::SessionNotFound { .. } => (self.gone())(),
                e => not_found_as(e, self.gone()),
            })?;
        if info.id != self.id {
            return Err(self.stale());
        }
        if let Some(want) = &self.name
            && format::encode_value(&info.name) != *want
        {
            return Err(self.stale());
        }
        Ok(info)
    }

    async fn send_text(&self, text: &str, opts: SendOpts) -> Result<()> {
        let t = text_cmds(&self.term, self.pane(), text, opts.enter).await?;
        // One input, however many lines: a multi-line text is most often one command (a loop,
        // a heredoc), which the shell starts once.
        let line = opts.enter || text.contains(['\n', '\r']);
        let _typing = self.term.inner.run.typing(self.id).await;
        if line {
            self.term
                .inner
                .run
                .entered(&self.term, self.id, self.pane());
        }
        // Checked and typed in one step, even when there is nothing to type.
        if let Err(e) = self.checked_input(t.pre, t.typing).await {
            if line {
                self.term.inner.run.not_entered(self.pane());
            }
            drop_buffer(&self.term, t.buffer).await;
            return Err(e);
        }
        Ok(())
    }

    async fn send_keys(&self, keys: &[Key]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let line = keys.iter().any(ends_a_line);
        let _typing = self.term.inner.run.typing(self.id).await;
        if line {
            self.term
                .inner
                .run
                .entered(&self.term, self.id, self.pane());
        }
        // A key the terminal turns into a signal (C-c, C-\, C-z) makes the kernel drop the
        // input queued behind it: what follows (here, or in the next call) waits until the
        // pane has answered.
        let mut sent_any = false;
        for now in signal_segments(keys) {
            let echo = now.last().and_then(Key::signal_echo);
            let mut rx = match echo {
                Some(_) => self.output_receiver().await.ok(),
                None => None,
            };
            let cmds = now.iter().map(|k| send_key(self.pane(), k)).collect();
            match self.checked_input(Vec::new(), cmds).await {
                Ok(()) => sent_any = true,
                // The signal ended the pane's program (and the pane): the input is over.
                Err(e) if sent_any && self.ended(&e) => return Ok(()),
                Err(e) => {
                    if line && !sent_any {
                        self.term.inner.run.not_entered(self.pane());
                    }
                    return Err(e);
                }
            }
            if let (Some(rx), Some(echo)) = (rx.as_mut(), echo) {
                signal_taken(rx, echo).await;
            }
        }
        Ok(())
    }

    async fn capture(&self, opts: &CaptureOpts) -> Result<Capture> {
        // Taken before the read: a line in flight then shows in this read and is counted for
        // the next, so that read may repeat a line, never skip one.
        let mark = self.term.hub().line_mark(self.pane());
        self.read(opts, mark).await
    }

    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo> {
        self.write_state().await?;
        if let Some(n) = &spec.name {
            check_session_name(n)?;
            self.term.ensure_unique_name(n, None).await?;
        }
        let id = SessionId::new();
        let pane = self
            .term
            .split_pane(
                self.pane(),
                spec.direction == Direction::Horizontal,
                spec.before,
                spec.percent.map(SplitSize::Percent),
                crate::terminal::NewPane {
                    id,
                    name: spec.name.as_deref(),
                    cwd: spec.cwd.as_deref(),
                    env: &[],
                },
            )
            .await
            .map_err(|e| match e {
                Error::SessionNotFound { .. } => (self.gone())(),
                e => e,
            })?;
        if let Some(c) = &spec.command {
            self.term.type_command(&pane, c).await?;
        }
        self.term.pane_info(&pane).await
    }

    async fn rename(&self, name: &str) -> Result<()> {
        check_session_name(name)?;
        self.write_state().await?;
        self.term.ensure_unique_name(name, Some(self.id)).await?;
        self.run(vec![
            Cmd::new("set-option")
                .arg("-p")
                .opt("-t", self.pane())
                .arg(OPT_NAME)
                .arg(format::encode_value(name)),
            Cmd::new("select-pane")
                .opt("-t", self.pane())
                .opt("-T", format_literal(&crate::terminal::shown_name(name))),
        ])
        .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.write_state().await?;
        self.run(vec![Cmd::new("kill-pane").opt("-t", self.pane())])
            .await?;
        Ok(())
    }

    async fn focus(&self) -> Result<()> {
        self.write_state().await?;
        self.run(vec![
            Cmd::new("select-window").opt("-t", self.pane()),
            Cmd::new("select-pane").opt("-t", self.pane()),
        ])
        .await?;
        Ok(())
    }

    async fn resize(&self, spec: &ResizeSpec) -> Result<()> {
        if spec.width.is_none() && spec.height.is_none() && spec.zoom.is_none() {
            return Err(Error::InvalidArgument(
                "resize needs a width, a height or zoom".into(),
            ));
        }
        self.write_state().await?;
        let mut cmds = Vec::new();
        if spec.width.is_some() || spec.height.is_some() {
            cmds.push(
                Cmd::new("resize-pane")
                    .opt("-t", self.pane())
                    .opt_if("-x", spec.width.map(|w| w.to_string()))
                    .opt_if("-y", spec.height.map(|h| h.to_string())),
            );
        }
        if let Some(zoom) = spec.zoom {
            // tmux zooms the window's active pane; `resize-pane -Z` on a zoomed window unzooms
            // it, whichever pane it names.
            let state = self
                .run(vec![
                    Cmd::new("display-message")
                        .arg("-p")
                        .opt("-t", self.pane())
                        .arg("#{window_zoomed_flag}#{pane_active}"),
                ])
                .await?;
            let toggle = || Cmd::new("resize-pane").arg("-Z").opt("-t", self.pane());
            match (state.trim(), zoom) {
                // This pane is the zoomed one, or the window is not zoomed: as asked already.
                ("11", true) | ("00" | "01", false) => {}
                // Another pane is zoomed: unzoom the window, then zoom this pane.
                ("10", true) => {
                    cmds.push(toggle());
                    cmds.push(toggle());
                }
                _ => cmds.push(toggle()),
            }
        }
        if cmds.is_empty() {
            // Already zoomed (or not) as asked.
            return Ok(());
        }
        self.run(cmds).await?;
        Ok(())
    }

    async fn run(&self, opts: &termloom_core::RunOpts) -> Result<termloom_core::RunResult> {
        // The run checks the pane's id itself; managed-only and named handles check more first.
        if self.managed_only || self.name.is_some() {
            self.write_state().await?;
        }
        crate::run::run(&self.term, self.id, self.pane(), opts).await
    }

    async fn wait_run(
        &self,
        handle: &termloom_core::RunHandle,
        timeout: std::time::Duration,
    ) -> Result<termloom_core::RunResult> {
        if self.name.is_some() {
            self.state().await?;
        }
        crate::run::wait_run(&self.term, self.id, handle, timeout).await
    }

    async fn status(&self) -> Result<termloom_core::SessionStatus> {
        if self.name.is_some() {
            self.state().await?;
        }
        crate::run::status(&self.term, self.id, self.pane()).await
    }

    async fn install_integration(&self) -> Result<()> {
        if self.managed_only || self.name.is_some() {
            self.write_state().await?;
        }
        crate::integration::install(&self.term, self.id, self.pane()).await
    }

    async fn subscribe(&self) -> Result<OutputStream> {
        self.state().await?;
        let rx = self.output_receiver().await?;
        Ok(Box::pin(broadcast_stream(rx)))
    }

    async fn set_managed(&self, managed: bool) -> Result<()> {
        self.write_state().await?;
        let cmd = if managed {
            Cmd::new("set-option")
                .arg("-p")
                .opt("-t", self.pane())
                .arg(OPT_MANAGED)
                .arg("1")
        } else {
            Cmd::new("set-option")
                .arg("-p")
                .arg("-u")
                .opt("-t", self.pane())
                .arg(OPT_MANAGED)
        };
        self.run(vec![cmd]).await?;
        Ok(())
    }
}

impl std::fmt::Debug for TmuxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TmuxSession")
            .field("id", &self.id)
            .field("pane", &self.native.id)
            .finish()
    }
}

#[allow(dead_code)]
fn _assert_backend(_: BackendKind) {}

/// Waits until the pane has answered a signal key: its echo (which the terminal or the line
/// editor prints once the signal is raised and the queued input dropped), or, from a program
/// that echoes nothing (a full-screen one: no signal, nothing dropped), any output after
/// [`SIGNAL_ECHO_GRACE`]; then a moment with no output (a line editor resets the terminal and
/// draws a new prompt after the echo, and input typed meanwhile can be lost too).
/// [`SIGNAL_SETTLE`] at most.
async fn signal_taken(rx: &mut tokio::sync::broadcast::Receiver<OutputEvent>, echo: &[u8]) {
    use tokio::sync::broadcast::error::RecvError;
    let sent = tokio::time::Instant::now();
    let _ = tokio::time::timeout(SIGNAL_SETTLE, async {
        // The echo may be split between two chunks.
        let mut tail: Vec<u8> = Vec::new();
        let mut seen_output = false;
        loop {
            let wait = if seen_output {
                (sent + SIGNAL_ECHO_GRACE).saturating_duration_since(tokio::time::Instant::now())
            } else {
                SIGNAL_SETTLE
            };
            match tokio::time::timeout(wait, rx.recv()).await {
                Err(_) => break,
                Ok(Ok(OutputEvent::Output(b))) => {
                    seen_output = true;
                    tail.extend_from_slice(&b);
                    if tail.windows(echo.len()).any(|w| w == echo) {
                        break;
                    }
                    let keep = tail.len().saturating_sub(echo.len());
                    tail.drain(..keep);
                }
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) => return,
            }
        }
        while let Ok(r) = tokio::time::timeout(SIGNAL_QUIET, rx.recv()).await {
            if matches!(r, Err(RecvError::Closed)) {
                return;
            }
        }
    })
    .await;
}

/// Whether a key ends a line of input: what it sends is a lone CR or LF (Enter, C-m, C-j).
fn ends_a_line(k: &Key) -> bool {
    matches!(k.to_bytes().as_slice(), [b'\r'] | [b'\n'])
}

/// The `if-shell -F` condition of [`TmuxSession::checked_input`]: true only when the target pane
/// is `pane`, carries the session id `id`, is alive, is in no mode, (for `managed_only`) is
/// managed and (for a handle opened by name) carries the session name `name`, as stored.
///
/// One `#{==:…}` of two strings, not a tree of `#{&&:…}`: tmux's format expander allocates for
/// every modifier, and this condition runs before every input (about 0.015 ms, some 15%, less
/// tmux CPU per guarded input on the benchmark machine: `bench/scripts/guard_cpu.py`).
///
/// The string is unambiguous: the pane id is the target's own (`-t` names it exactly; a missing
/// pane expands to nothing), the two state fields are one digit each, the two short free-form
/// options come next, split by `/`, which the expected id never holds, and the name comes last
/// after U+001F, which neither the expected id nor a stored name ever holds (so a pane with one
/// U+001F more or less in its options never compares equal). The expected name is escaped for
/// tmux's format parser ([`compare_literal`]).
/// The refusal to type into a pane whose keys tmux copies to every pane of its window.
pub(crate) fn synchronized_error(pane: &str) -> Error {
    Error::InvalidArgument(format!(
        "refused: synchronize-panes is on for pane {pane}, so tmux would type the same keys into every pane of its window; turn it off first (the tmux command `set-option -w synchronize-panes off`, or `set-option -p` for the pane)"
    ))
}

fn guard_condition(pane: &str, id: SessionId, managed_only: bool, name: Option<&str>) -> String {
    let (managed, want) = if managed_only {
        (format!("#{{{OPT_MANAGED}}}"), "1")
    } else {
        (String::new(), "")
    };
    let (name_field, name_want) = match name {
        Some(n) => (
            format!("{}#{{{OPT_NAME}}}", format::SEP),
            format!("{}{}", format::SEP, compare_literal(n)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "#{{==:#{{pane_id}}#{{pane_dead}}#{{pane_in_mode}}#{{synchronize-panes}}/{managed}/#{{{OPT_ID}}}{name_field},{pane}000/{want}/{id}{name_want}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cursors_round_trip() {
        let c = CursorData::after("%12", &lines(&["a", "b", ""]), 4000, None);
        assert_eq!((c.line, c.len), (4001, 1));
        assert_eq!(CursorData::decode(&c.encode()), Some(c.clone()));
        assert_eq!(CursorData::decode(&Cursor("junk".into())), None);
        assert_eq!(CursorData::decode(&Cursor("t1.12.1.2".into())), None);
        assert_eq!(CursorData::decode(&Cursor("t2.x.1.1.2.3".into())), None);
        let mut m = c.clone();
        m.total = 4010;
        m.mark = Some(LineMark {
            epoch: 0xfeed,
            newlines: 77,
        });
        assert!(m.encode().0.starts_with("t5."), "{}", m.encode().0);
        assert_eq!(CursorData::decode(&m.encode()), Some(m.clone()));
        // Without lines above the anchor: the older forms.
        let bare = CursorData::after("%12", &lines(&["a"]), 7, None);
        assert!(bare.encode().0.starts_with("t2."), "{}", bare.encode().0);
        assert_eq!(CursorData::decode(&bare.encode()), Some(bare));
        assert!(c.encode().0.starts_with("t4."), "{}", c.encode().0);
    }

    #[test]
    fn once_the_scrollback_is_full_the_line_count_tells_repeated_output_apart() {
        // A 20-line pane (4 history lines allowed, a screen of 4 rows), printing the same block
        // of three lines again and again: "ok", "ok", "$".
        let block = ["ok", "ok", "$"];
        let before: Vec<&str> = ["1", "2", "3"].into_iter().chain(block).collect();
        let mut c = CursorData::after("%1", &lines(&before), 0, None);
        c.total = before.len() as u64;
        c.mark = Some(LineMark {
            epoch: 7,
            newlines: 100,
        });
        // One more block printed, the history at its limit: three lines left at the top, so
        // the old anchor (the last "$") is three lines up and a new "$" stands where it was.
        let after: Vec<&str> = block.into_iter().chain(block).collect();
        let now = Some(LineMark {
            epoch: 7,
            newlines: 103,
        });
        let to = c.scrolled_to(now, after.len() as u64, 4, 2);
        assert_eq!(to, Some(2));
        assert_eq!(c.find(&lines(&after), to), Some((2, AnchorMatch::Same)));
        // Without the count, the lines above the old place tell it apart too (they are not the
        // ones the read saw above its anchor).
        assert_eq!(c.find(&lines(&after), None), Some((2, AnchorMatch::Same)));
        // Another count epoch (another process, or output lost in between): not used.
        let other = Some(LineMark {
            epoch: 8,
            newlines: 103,
        });
        assert_eq!(c.scrolled_to(other, after.len() as u64, 4, 2), None);
        // A scrollback that could not have filled: lines kept their numbers.
        assert_eq!(c.scrolled_to(now, after.len() as u64, 4, 2000), None);
        // Three blocks fit in what scrolled by; thirty push the anchor out of a full scrollback,
        // though the text where it was matches.
        assert!(!c.scrolled_out(now, after.len() as u64, 4));
        let many = Some(LineMark {
            epoch: 7,
            newlines: 190,
        });
        assert!(c.scrolled_out(many, after.len() as u64, 4));
        assert!(!c.scrolled_out(other, after.len() as u64, 4));
    }

    #[test]
    fn a_prompt_the_next_command_was_typed_on_is_found_grown() {
        let c = CursorData::after("%1", &lines(&["$ echo a", "a", "$"]), 0, None);
        let now = lines(&["$ echo a", "a", "$ echo b", "b", "$"]);
        assert_eq!(c.find(&now, None), Some((2, AnchorMatch::Grown)));
        let same = lines(&["$ echo a", "a", "$"]);
        assert_eq!(c.find(&same, None), Some((2, AnchorMatch::Same)));
    }

    #[test]
    fn an_anchor_is_found_after_lines_moved_up_and_missed_when_gone() {
        let c = CursorData::after("%1", &lines(&["x", "1", "2", "$"]), 0, None);
        // Two lines trimmed from the top of the history, and a command typed on the prompt.
        let moved = lines(&["2", "$ seq 3 4", "3", "4", "$"]);
        assert_eq!(c.find(&moved, None), Some((1, AnchorMatch::Grown)));
        // Cleared: a bare prompt after other lines is not the anchor.
        let cleared = lines(&["9", "$"]);
        assert_eq!(c.find(&cleared, None), None);
        assert_eq!(
            CursorData::after("%1", &lines(&["", " "]), 5, None).find(&cleared, None),
            None
        );
    }

    #[test]
    fn colours_set_on_a_line_left_out_carry_over() {
        let lines = lines(&["\x1b[31mRED1", "RED2", "\x1b[39mplain"]);
        let r = Read::tail(lines.clone(), 0, 2);
        assert_eq!(r.lines, ["\x1b[31mRED2", "\x1b[39mplain"]);
        let r = Read::from(lines, 0, true);
        assert_eq!(r.lines[0], "\x1b[31mRED2");
        assert_eq!(
            Read::tail(super::tests::lines(&["a", "b"]), 0, 1).lines,
            ["b"]
        );
    }

    #[test]
    fn an_anchor_that_moved_up_further_than_lines_came_after_it_is_not_found() {
        // A one-line read of the prompt after "three"; then `clear; echo NEW-X; echo three`:
        // the prompt after "three" is six lines up with nothing after it. Lines that leave a
        // full scrollback are pushed out by as many printed after: this was a clear.
        let before: Vec<&str> = vec![
            "$ seq 1 5",
            "1",
            "2",
            "3",
            "4",
            "5",
            "$ echo three",
            "three",
        ];
        let c = CursorData::after("%1", &lines(&["$"]), 8, Some(before[7]));
        let now = lines(&["NEW-X", "three", "$", "", ""]);
        assert_eq!(c.find(&now, None), None);
    }

    #[test]
    fn a_screen_drawn_again_in_place_is_told_from_nothing_new() {
        // A test re-runner: clear, then the same layout with other results. The anchor ("end")
        // and the line before it ("footer") are where they were; the lines above are not.
        let c = CursorData::after(
            "%1",
            &lines(&["run 1", "result: 1", "footer", "end"]),
            0,
            None,
        );
        let again = lines(&["run 2", "result: 2", "footer", "end"]);
        assert_eq!(c.find(&again, None), None);
        assert!(c.redrawn(&again));
        let same = lines(&["run 1", "result: 1", "footer", "end", "more"]);
        assert_eq!(c.find(&same, None), Some((3, AnchorMatch::Same)));
        assert!(c.redrawn(&same), "only asked when the anchor is not found");
    }

    #[test]
    fn a_one_line_read_keeps_the_line_before_its_anchor() {
        // `read --lines 1` of a bare prompt, then `clear; echo AFTER`: the new prompt follows
        // other text, so it is not the anchor, and the read returns everything.
        let c = CursorData::after("%1", &lines(&["$"]), 5, Some("$ echo x"));
        let cleared = lines(&["AFTER", "$", "", ""]);
        assert_eq!(c.find(&cleared, None), None);
        // The anchor where it was is still found.
        let same = lines(&["a", "b", "c", "d", "$ echo x", "$", "more"]);
        assert_eq!(c.find(&same, None), Some((5, AnchorMatch::Same)));
    }
}
