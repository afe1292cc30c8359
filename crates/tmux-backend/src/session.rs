//! [`TmuxSession`]: core's [`Session`] for one tmux pane, always addressed by its `%N` id after
//! that id was checked to carry the session's persistent id.

use async_trait::async_trait;
use termloom_core::text::{cap, trim_trailing_blank};
use termloom_core::{
    BackendKind, Capture, CaptureOpts, Cursor, Direction, Error, Key, NativeId, OutputEvent,
    OutputStream, ReadRange, ResizeSpec, Result, SendOpts, Session, SessionId, SessionInfo,
    SplitSpec,
};

use crate::command::Cmd;
use crate::format::{self, OPT_MANAGED, OPT_NAME};
use crate::terminal::{TmuxTerminal, check_name, not_found_as};

/// Text longer than this, or with a newline, goes through a paste buffer instead of `send-keys -l`.
pub const PASTE_THRESHOLD: usize = 4096;

/// Default line cap for reads of a line range when the caller gives none.
pub const DEFAULT_MAX_LINES: usize = 2000;

/// A handle on one verified tmux pane.
pub struct TmuxSession {
    term: TmuxTerminal,
    id: SessionId,
    native: NativeId,
}

impl TmuxSession {
    pub(crate) fn new(term: TmuxTerminal, id: SessionId, pane: String) -> Self {
        TmuxSession {
            term,
            id,
            native: NativeId::tmux(pane),
        }
    }

    fn pane(&self) -> &str {
        &self.native.id
    }

    fn gone(&self) -> impl FnOnce() -> Error + '_ {
        move || Error::SessionDead {
            id: self.id.to_string(),
            name: self.native.to_string(),
        }
    }

    async fn run(&self, cmds: Vec<Cmd>) -> Result<String> {
        self.term
            .run(cmds)
            .await
            .map_err(|e| not_found_as(e, self.gone()))
    }
}

/// Sends text to a pane exactly: `send-keys -l` for short single-line text, a bracketed paste from a
/// named buffer for multi-line or long text; then Enter when asked.
pub(crate) async fn send_text_to(
    term: &TmuxTerminal,
    pane: &str,
    text: &str,
    enter: bool,
) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::InvalidArgument("text contains a NUL byte, which a terminal cannot receive; send it as a key or drop it".into()));
    }
    let enter_cmd = || Cmd::new("send-keys").opt("-t", pane).arg("Enter");
    if text.contains('\n') || text.contains('\r') || text.len() > PASTE_THRESHOLD {
        let buffer = format!("termloom-{}", uuid::Uuid::new_v4().simple());
        // load-buffer reads the text from stdin: no argv or command-line size limit, no quoting.
        term.client()
            .spawn(
                Cmd::new("load-buffer")
                    .opt("-b", &buffer)
                    .arg("-")
                    .into_args(),
                Some(text.as_bytes()),
            )
            .await?;
        let mut cmds = vec![
            Cmd::new("paste-buffer")
                .arg("-p")
                .arg("-d")
                .opt("-b", &buffer)
                .opt("-t", pane),
        ];
        if enter {
            cmds.push(enter_cmd());
        }
        let res = term.run(cmds).await;
        if res.is_err() {
            let _ = term
                .run(vec![Cmd::new("delete-buffer").opt("-b", &buffer)])
                .await;
        }
        res?;
        return Ok(());
    }
    let mut cmds = Vec::new();
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
    if cmds.is_empty() {
        return Ok(());
    }
    term.run(cmds).await?;
    Ok(())
}

/// A read position: the absolute number and a hash of the last non-blank line seen, plus the
/// history size then, so a later read can find that line again even after scrollback was trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CursorData {
    pane: String,
    line: u64,
    hash: u64,
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.trim_end().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl CursorData {
    fn encode(&self) -> Cursor {
        Cursor(format!(
            "t1.{}.{}.{:x}",
            self.pane.trim_start_matches('%'),
            self.line,
            self.hash
        ))
    }

    fn decode(c: &Cursor) -> Option<CursorData> {
        let mut it = c.0.split('.');
        if it.next()? != "t1" {
            return None;
        }
        let pane = format!("%{}", it.next()?.parse::<u32>().ok()?);
        let line = it.next()?.parse().ok()?;
        let hash = u64::from_str_radix(it.next()?, 16).ok()?;
        Some(CursorData { pane, line, hash })
    }
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

    /// History size and pane height, read together.
    async fn geometry(&self) -> Result<(u64, u64)> {
        let out = self
            .run(vec![
                Cmd::new("display-message")
                    .arg("-p")
                    .opt("-t", self.pane())
                    .arg("#{history_size} #{pane_height}"),
            ])
            .await?;
        let mut it = out
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        Ok((it.next().unwrap_or(0), it.next().unwrap_or(0)))
    }

    /// Captures tmux lines `start..=end` (tmux numbering: 0 is the top of the screen).
    async fn capture_raw(
        &self,
        start: i64,
        end: Option<i64>,
        opts: &CaptureOpts,
    ) -> Result<Vec<String>> {
        let cmd = Cmd::new("capture-pane")
            .arg("-p")
            .flag_if("-e", opts.ansi)
            .flag_if("-J", opts.join_wrapped)
            .opt("-t", self.pane())
            .opt("-S", start.to_string())
            .opt(
                "-E",
                end.map(|e| e.to_string())
                    .unwrap_or_else(|| "-".to_string()),
            );
        let out = self.run(vec![cmd]).await?;
        let out = out.strip_suffix('\n').unwrap_or(&out);
        Ok(out.split('\n').map(str::to_string).collect())
    }

    fn cursor_after(&self, lines: &[String], first_line: u64) -> Cursor {
        let last = lines.iter().rposition(|l| !l.trim().is_empty());
        let (line, hash) = match last {
            Some(i) => (
                first_line + i as u64,
                fnv(&termloom_core::text::strip_ansi(&lines[i])),
            ),
            None => (first_line, 0),
        };
        CursorData {
            pane: self.pane().to_string(),
            line,
            hash,
        }
        .encode()
    }

    fn finish(
        &self,
        mut lines: Vec<String>,
        first_line: u64,
        total: u64,
        opts: &CaptureOpts,
        default_cap: usize,
    ) -> Capture {
        trim_trailing_blank(&mut lines);
        let cursor = self.cursor_after(&lines, first_line);
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

    async fn read_since(&self, cursor: &Cursor, opts: &CaptureOpts) -> Result<Capture> {
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
        let (hist, height) = self.geometry().await?;
        let total = hist + height;
        let all = self
            .capture_raw(
                -(hist as i64),
                None,
                &CaptureOpts {
                    ansi: false,
                    ..opts.clone()
                },
            )
            .await?;
        let plain: Vec<String> = all.clone();
        // Find the anchor line: first where it was, then nearest earlier (scrollback trimmed shifts
        // lines up), then anywhere.
        let matches = |i: usize| plain.get(i).is_some_and(|l| fnv(l) == data.hash);
        let expected = data.line as usize;
        let anchor = if data.hash == 0 {
            None
        } else if matches(expected) {
            Some(expected)
        } else {
            (0..expected.min(plain.len())).rev().find(|i| matches(*i))
        };
        let (start, note) = match anchor {
            Some(i) => (i + 1, None),
            None if data.hash == 0 => (0, None),
            None => (
                0,
                Some("the previous read position is gone (scrollback trimmed, cleared, or the pane restarted); returning everything".to_string()),
            ),
        };
        let lines: Vec<String> = if opts.ansi {
            let ansi = self.capture_raw(-(hist as i64), None, opts).await?;
            ansi.into_iter().skip(start).collect()
        } else {
            all.into_iter().skip(start).collect()
        };
        let mut cap = self.finish(lines, start as u64, total, opts, DEFAULT_MAX_LINES);
        if cap.text.is_empty() {
            // Nothing new: keep the caller's cursor so the next read starts from the same place.
            cap.cursor = cursor.clone();
        }
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
        self.term.pane_info(self.pane()).await.map_err(|e| match e {
            Error::SessionNotFound { .. } => (self.gone())(),
            e => e,
        })
    }

    async fn send_text(&self, text: &str, opts: SendOpts) -> Result<()> {
        send_text_to(&self.term, self.pane(), text, opts.enter)
            .await
            .map_err(|e| not_found_as(e, self.gone()))
    }

    async fn send_keys(&self, keys: &[Key]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let cmd = keys
            .iter()
            .fold(Cmd::new("send-keys").opt("-t", self.pane()), |c, k| {
                c.arg(k.to_string())
            });
        self.run(vec![cmd]).await?;
        Ok(())
    }

    async fn capture(&self, opts: &CaptureOpts) -> Result<Capture> {
        match &opts.range {
            ReadRange::Since(c) => self.read_since(c, opts).await,
            ReadRange::Screen => {
                let (hist, height) = self.geometry().await?;
                let lines = self.capture_raw(0, None, opts).await?;
                Ok(self.finish(lines, hist, hist + height, opts, usize::MAX))
            }
            ReadRange::Tail(n) => {
                let n = *n;
                let (hist, height) = self.geometry().await?;
                let back = (n as u64).min(hist);
                let mut lines = self.capture_raw(-(back as i64), None, opts).await?;
                trim_trailing_blank(&mut lines);
                let drop = lines.len().saturating_sub(n);
                let first = hist - back + drop as u64;
                let lines = lines.split_off(drop);
                Ok(self.finish(lines, first, hist + height, opts, n.max(1)))
            }
            ReadRange::Lines { from, to } => {
                if from > to {
                    return Err(Error::InvalidArgument(format!(
                        "line range {from}-{to} is backwards"
                    )));
                }
                let (hist, height) = self.geometry().await?;
                let total = hist + height;
                if *from >= total {
                    return Ok(Capture {
                        first_line: *from,
                        total_lines: total,
                        note: Some(format!("line {from} is past the end ({total} lines)")),
                        cursor: self.cursor_after(&[], total),
                        ..Capture::default()
                    });
                }
                let start = *from as i64 - hist as i64;
                let end = (*to).min(total - 1) as i64 - hist as i64;
                let lines = self.capture_raw(start, Some(end), opts).await?;
                Ok(self.finish(lines, *from, total, opts, DEFAULT_MAX_LINES))
            }
        }
    }

    async fn split(&self, spec: &SplitSpec) -> Result<SessionInfo> {
        if let Some(n) = &spec.name {
            check_name("session", n)?;
            self.term.ensure_unique_name(n, None).await?;
        }
        let id = SessionId::new();
        let pane = self
            .term
            .split_pane(
                self.pane(),
                spec.direction == Direction::Horizontal,
                spec.before,
                spec.percent,
                crate::terminal::NewPane { id, name: spec.name.as_deref(), cwd: spec.cwd.as_deref(), env: &[] },
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
        check_name("session", name)?;
        self.term.ensure_unique_name(name, Some(self.id)).await?;
        self.run(vec![
            Cmd::new("set-option")
                .arg("-p")
                .opt("-t", self.pane())
                .arg(OPT_NAME)
                .arg(format::encode_value(name)),
            Cmd::new("select-pane")
                .opt("-t", self.pane())
                .opt("-T", name),
        ])
        .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.run(vec![Cmd::new("kill-pane").opt("-t", self.pane())])
            .await?;
        Ok(())
    }

    async fn focus(&self) -> Result<()> {
        self.run(vec![
            Cmd::new("select-window").opt("-t", self.pane()),
            Cmd::new("select-pane").opt("-t", self.pane()),
        ])
        .await?;
        Ok(())
    }

    async fn resize(&self, spec: &ResizeSpec) -> Result<()> {
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
            let zoomed = self
                .run(vec![
                    Cmd::new("display-message")
                        .arg("-p")
                        .opt("-t", self.pane())
                        .arg("#{window_zoomed_flag}"),
                ])
                .await?;
            if (zoomed.trim() == "1") != zoom {
                cmds.push(Cmd::new("resize-pane").arg("-Z").opt("-t", self.pane()));
            }
        }
        if cmds.is_empty() {
            return Err(Error::InvalidArgument(
                "resize needs a width, a height or zoom".into(),
            ));
        }
        self.run(cmds).await?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<OutputStream> {
        let rx = self.output_receiver().await?;
        Ok(Box::pin(broadcast_stream(rx)))
    }

    async fn set_managed(&self, managed: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = CursorData {
            pane: "%12".into(),
            line: 4000,
            hash: 0xdead,
        };
        assert_eq!(CursorData::decode(&c.encode()), Some(c));
        assert_eq!(CursorData::decode(&Cursor("junk".into())), None);
        assert_eq!(CursorData::decode(&Cursor("t1.x.1.2".into())), None);
    }
}
