//! Backend-neutral text handling: ANSI stripping, caps that keep head and tail, regex search with
//! context, and turning a byte stream into lines.

use futures_util::{Stream, StreamExt};
use regex::Regex;

use crate::model::{NumberedLine, OutputEvent, SearchMatch, SearchResult};

/// Removes ANSI escape sequences (CSI, OSC, …) and lone control characters other than tab.
pub fn strip_ansi(s: &str) -> String {
    if is_plain_text(s) {
        // Nothing to strip (a capture without `-e`, most of the time): no parser, one copy.
        return s.to_string();
    }
    // The stripper drops tabs with the other C0 controls: they cross it as a noncharacter
    // ([`TAB_STANDINS`]) and come back. A tab inside an escape sequence goes with the sequence.
    let standin = s
        .contains('\t')
        .then(|| TAB_STANDINS.clone().find(|c| !s.contains(*c)))
        .flatten();
    let stripped = match standin {
        Some(c) => {
            let mut buf = [0u8; 4];
            let c: &str = c.encode_utf8(&mut buf);
            strip_ansi_escapes::strip_str(s.replace('\t', c)).replace(c, "\t")
        }
        // All 32 stand-ins occur in the text (never in real output): tabs go.
        None => strip_ansi_escapes::strip_str(s),
    };
    stripped
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect()
}

/// What a tab may be while the escape stripper runs (it would drop a tab itself): the
/// noncharacters U+FDD0..U+FDEF, reserved for a program's internal use; the first that the text
/// does not hold.
const TAB_STANDINS: std::ops::RangeInclusive<char> = '\u{fdd0}'..='\u{fdef}';

/// Whether `s` has no escape sequence and no control character but newline and tab (none of
/// C0, DEL or C1), so that [`strip_ansi`] would return it unchanged.
fn is_plain_text(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\n' | b'\t' => true,
        0..0x20 | 0x7f => false,
        // C1 controls U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8.
        0xc2 => !matches!(b.get(i + 1), Some(0x80..=0x9f)),
        _ => true,
    })
}

/// Reverses percent-encoding (`%XX`, two hex digits) of a stored value; a malformed escape is
/// kept as it is, and bytes that are not UTF-8 become U+FFFD. Used by every backend that keeps
/// values in tmux user options.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A line's fingerprint for read cursors: FNV-1a of its text without trailing blanks. A cursor
/// keeps it (with the length) to find its line again, or to see that the line grew.
pub fn line_hash(line: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in line.trim_end().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The anchor text of a cursor, `len` bytes hashing to `hash` ([`line_hash`]), matched against
/// `line`: `Some(false)` for the same text, `Some(true)` for that text followed by more (a line
/// that grew: a prompt the next command was typed on, a progress line that was finished),
/// `None` otherwise.
pub fn anchor_grew(line: &str, len: usize, hash: u64) -> Option<bool> {
    let line = line.trim_end();
    let head = line.get(..len)?;
    (line_hash(head) == hash).then_some(line.len() > len)
}

/// Drops trailing lines that are empty or only whitespace.
pub fn trim_trailing_blank(lines: &mut Vec<String>) {
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
}

/// Text cut to caps, keeping the head and the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capped {
    /// The text that is kept, lines joined by `\n`.
    pub text: String,
    /// Whether anything was left out.
    pub truncated: bool,
    /// A note naming what was left out.
    pub note: Option<String>,
}

/// The end of `s`: at most `max` bytes, starting at a character's first byte.
pub fn last_bytes(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Joins `lines`, keeping at most `max_lines` lines and `max_bytes` bytes, the marker included.
/// When cut, the first and last parts are kept (a third head, two thirds tail: the end is usually
/// what matters) and a marker line names what was left out. `first_line` is the absolute number
/// of `lines[0]`, for the note. A cap too small for a marker keeps the text's last bytes (whole
/// characters), the note saying so.
pub fn cap(lines: &[String], first_line: u64, max_lines: usize, max_bytes: usize) -> Capped {
    let n = lines.len();
    let total_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    if n <= max_lines && total_bytes <= max_bytes.saturating_add(1) {
        return Capped {
            text: lines.join("\n"),
            truncated: false,
            note: None,
        };
    }
    // The marker takes its room from the byte cap: what is left is shared out, a third to the
    // head and the rest to the tail.
    const MARKER_ROOM: usize = 120;
    if max_bytes < MARKER_ROOM {
        let all = lines.join("\n");
        let kept = last_bytes(&all, max_bytes);
        return Capped {
            text: kept.to_string(),
            truncated: true,
            note: Some(format!(
                "output cut to its last {} bytes (the {max_bytes}-byte cap)",
                kept.len()
            )),
        };
    }
    let keep_lines = max_lines.max(2).min(n);
    let head_n = (keep_lines / 3).max(1).min(n);
    let tail_n = keep_lines - head_n;
    let mut head: Vec<&str> = lines[..head_n].iter().map(|s| s.as_str()).collect();
    let mut tail: Vec<&str> = lines[n - tail_n..].iter().map(|s| s.as_str()).collect();
    let budget = max_bytes - MARKER_ROOM;
    let head_budget = budget / 3;
    let mut used = 0;
    let mut keep = 0;
    for l in &head {
        if used + l.len() + 1 > head_budget {
            break;
        }
        used += l.len() + 1;
        keep += 1;
    }
    head.truncate(keep);
    let tail_budget = budget.saturating_sub(used);
    let mut used_t = 0;
    let mut keep_t = 0;
    for l in tail.iter().rev() {
        if used_t + l.len() + 1 > tail_budget {
            break;
        }
        used_t += l.len() + 1;
        keep_t += 1;
    }
    let cut_tail = tail.len() - keep_t;
    tail.drain(..cut_tail);
    let omitted_from = first_line + head.len() as u64;
    let omitted_to = first_line + (n - tail.len()) as u64;
    let omitted = omitted_to - omitted_from;
    let note = if omitted > 0 {
        format!(
            "lines {}-{} of {} left out ({} lines); read that range to see them",
            omitted_from,
            omitted_to.saturating_sub(1),
            first_line + n as u64,
            omitted
        )
    } else {
        "output cut to the byte cap".to_string()
    };
    let mut text = String::new();
    for l in &head {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str(&format!("[… {note} …]"));
    for l in &tail {
        text.push('\n');
        text.push_str(l);
    }
    // A single line longer than the whole budget: keep its end, in what the marker left.
    if head.is_empty()
        && tail.is_empty()
        && let Some(last) = lines.last()
    {
        let room = max_bytes.saturating_sub(text.len() + 1);
        text.push('\n');
        text.push_str(last_bytes(last, room));
    }
    Capped {
        text,
        truncated: true,
        note: Some(note),
    }
}

/// Searches `text` (whose first line is absolute line `first_line`) for `re`, with `context` lines
/// around each match and at most `max_matches` matches.
pub fn search(
    text: &str,
    first_line: u64,
    re: &Regex,
    context: usize,
    max_matches: usize,
) -> SearchResult {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut result = SearchResult {
        matches: Vec::new(),
        lines_searched: lines.len() as u64,
        truncated: false,
    };
    let numbered = |i: usize| NumberedLine {
        line: first_line + i as u64,
        text: lines[i].to_string(),
    };
    for (i, l) in lines.iter().enumerate() {
        if !re.is_match(l) {
            continue;
        }
        if result.matches.len() >= max_matches {
            result.truncated = true;
            break;
        }
        let before = (i.saturating_sub(context)..i).map(numbered).collect();
        let after = (i + 1..(i + 1 + context).min(lines.len()))
            .map(numbered)
            .collect();
        result.matches.push(SearchMatch {
            line: first_line + i as u64,
            text: (*l).to_string(),
            before,
            after,
        });
    }
    result
}

/// An event of a line stream made by [`lines`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, ANSI stripped.
    Line(String),
    /// The subscriber missed this many output events.
    Lagged(u64),
    /// The stream ended, with the reason.
    Closed(String),
}

/// Splits raw output into lines as a person would see them: bytes are gathered until `\n`, ANSI
/// sequences are stripped, a `\r` inside a line keeps only what was drawn after it. The partial last
/// line is emitted when the stream closes.
pub fn lines<S>(stream: S) -> impl Stream<Item = LineEvent> + Send
where
    S: Stream<Item = OutputEvent> + Send + 'static,
{
    lines_with(stream, false)
}

/// [`lines`] without what was typed: on a line where a shell with OSC 133 shell integration
/// marked the end of its prompt (`ESC ] 133 ; B`), what follows the mark is the command line
/// being edited when the shell then starts a command (`ESC ] 133 ; C`). For waiting on output:
/// the echo of `echo DONE` is not `DONE`. Text after the mark with no command start within
/// [`INPUT_GRACE`] is output after all (a background job printing at the prompt), emitted then.
/// A shell without the marks gives no way to tell, and its lines stay whole.
pub fn output_lines<S>(stream: S) -> impl Stream<Item = LineEvent> + Send
where
    S: Stream<Item = OutputEvent> + Send + 'static,
{
    lines_with(stream, true)
}

/// The part of a raw line before the first prompt-end mark (`ESC ] 133 ; B`), if it has one.
pub fn before_input(raw: &[u8]) -> &[u8] {
    match find_mark(raw, b'B') {
        Some(i) => &raw[..i],
        None => raw,
    }
}

/// Where raw output holds the OSC 133 mark `kind` (`ESC ] 133 ; kind`), if it does.
fn find_mark(raw: &[u8], kind: u8) -> Option<usize> {
    const PREFIX: &[u8] = b"\x1b]133;";
    raw.windows(PREFIX.len() + 1)
        .position(|w| w[..PREFIX.len()] == *PREFIX && w[PREFIX.len()] == kind)
}

fn lines_with<S>(stream: S, drop_input: bool) -> impl Stream<Item = LineEvent> + Send
where
    S: Stream<Item = OutputEvent> + Send + 'static,
{
    /// What a complete raw line gives: lines to emit now, and text after a prompt-end mark that
    /// may be typed input (held until it is known).
    fn take_line(
        raw: &[u8],
        drop_input: bool,
        first: &mut bool,
        held: &mut Option<String>,
        pending: &mut std::collections::VecDeque<LineEvent>,
    ) {
        if let Some(h) = held.take()
            && !has_command_start(raw)
        {
            // Not followed by a command start: it was output after all.
            pending.push_back(LineEvent::Line(h));
        }
        // The stream's first line began before it was subscribed to: its prompt (and the mark
        // that ends it) may have been printed earlier, with the typed command following now. It
        // is held like text after a mark: a command start right after makes it input.
        if std::mem::take(first) && drop_input && find_mark(raw, b'B').is_none() {
            let text = clean_line(raw);
            if !text.trim().is_empty() {
                *held = Some(text);
            }
            return;
        }
        let before = if drop_input { before_input(raw) } else { raw };
        if before.len() < raw.len() {
            pending.push_back(LineEvent::Line(clean_line(before)));
            let rest = clean_line(&raw[before.len()..]);
            if !rest.trim().is_empty() {
                *held = Some(rest);
            }
        } else {
            pending.push_back(LineEvent::Line(clean_line(raw)));
        }
    }
    let state = (
        Box::pin(stream),
        Vec::<u8>::new(),
        std::collections::VecDeque::<LineEvent>::new(),
        false,
        None::<String>,
        true,
    );
    futures_util::stream::unfold(
        state,
        move |(mut stream, mut buf, mut pending, mut done, mut held, mut first)| async move {
            loop {
                if let Some(ev) = pending.pop_front() {
                    return Some((ev, (stream, buf, pending, done, held, first)));
                }
                if done {
                    return None;
                }
                // Held text waits a moment for the command start that makes it input.
                let next = match &held {
                    Some(_) => match tokio::time::timeout(INPUT_GRACE, stream.next()).await {
                        Ok(ev) => ev,
                        Err(_) => {
                            if let Some(h) = held.take() {
                                pending.push_back(LineEvent::Line(h));
                            }
                            continue;
                        }
                    },
                    None => stream.next().await,
                };
                match next {
                    Some(OutputEvent::Output(bytes)) => {
                        buf.extend_from_slice(&bytes);
                        if held.is_some() && has_command_start(&buf) {
                            held = None;
                        }
                        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let raw: Vec<u8> = buf.drain(..=pos).collect();
                            take_line(
                                &raw[..raw.len() - 1],
                                drop_input,
                                &mut first,
                                &mut held,
                                &mut pending,
                            );
                        }
                        // The command start often comes in the same chunk, after the line that
                        // set the held text: look again once the lines are taken.
                        if held.is_some() && has_command_start(&buf) {
                            held = None;
                        }
                        // A runaway line with no newline is flushed so memory stays bounded.
                        if buf.len() > MAX_LINE_BYTES {
                            let raw = cut_runaway(&mut buf);
                            take_line(&raw, drop_input, &mut first, &mut held, &mut pending);
                        }
                    }
                    Some(OutputEvent::Lagged(n)) => pending.push_back(LineEvent::Lagged(n)),
                    Some(OutputEvent::Closed { reason }) => {
                        if !buf.is_empty() {
                            let raw = std::mem::take(&mut buf);
                            take_line(&raw, drop_input, &mut first, &mut held, &mut pending);
                        }
                        if let Some(h) = held.take() {
                            pending.push_back(LineEvent::Line(h));
                        }
                        pending.push_back(LineEvent::Closed(reason));
                        done = true;
                    }
                    None => {
                        if !buf.is_empty() {
                            let raw = std::mem::take(&mut buf);
                            take_line(&raw, drop_input, &mut first, &mut held, &mut pending);
                        }
                        if let Some(h) = held.take() {
                            pending.push_back(LineEvent::Line(h));
                        }
                        done = true;
                    }
                }
            }
        },
    )
}

/// A line with no newline is cut into lines of this many bytes (less up to three: see
/// [`cut_runaway`]), so that memory stays bounded.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Takes a runaway line out of `buf` to be emitted, leaving in `buf` only the bytes of a last
/// character still incomplete (its other bytes are yet to come): a cut never splits a UTF-8
/// character in two.
pub fn cut_runaway(buf: &mut Vec<u8>) -> Vec<u8> {
    let n = buf.len();
    let mut whole = n;
    for back in 1..=n.min(3) {
        let b = buf[n - back];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let need = match b {
            0xf0..=0xf4 => 4,
            0xe0..=0xef => 3,
            0xc2..=0xdf => 2,
            _ => 1,
        };
        if need > back {
            whole = n - back;
        }
        break;
    }
    let rest = buf.split_off(whole);
    std::mem::replace(buf, rest)
}

/// How long [`output_lines`] holds the text after a prompt-end mark for the command start (OSC
/// 133;C) that makes it typed input; without one it is output (a background job printing at the
/// prompt). The shell prints the mark as soon as the line is entered.
const INPUT_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether raw output holds a command-start mark (`ESC ] 133 ; C`).
fn has_command_start(raw: &[u8]) -> bool {
    find_mark(raw, b'C').is_some()
}

/// One raw line of terminal output as text, as a terminal shows it: ANSI stripped, and a `\r`
/// moves back to the line's start, where what follows overwrites what was there (`abcdef\rXY`
/// shows `XYcdef`); backspace, tab stops, cursor moves along the line (`ESC [ n C`, `D`, `G`)
/// and erases (`ESC [ K`, `1 K`, `2 K`) count screen cells (a wide character takes two). A
/// progress bar that rewrites itself ends as its last state.
pub fn clean_line(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.strip_suffix('\r').unwrap_or(&s);
    if !s.contains(['\r', '\x08']) {
        return strip_ansi(s);
    }
    render_line(s)
}

/// Renders one line of terminal output into its screen cells (see [`clean_line`]).
fn render_line(s: &str) -> String {
    use unicode_width::UnicodeWidthChar;
    // A cell holds its character (with any combining marks); "" is the right half of a wide
    // character, which is written into the cell before it.
    let mut cells: Vec<String> = Vec::new();
    let mut at = 0usize;
    // Blanks out whatever a write at `p` splits: the other half of a wide character.
    fn unsplit(cells: &mut [String], p: usize) {
        if p < cells.len() && cells[p].is_empty() && p > 0 {
            cells[p - 1] = " ".into();
        }
        if p + 1 < cells.len() && cells[p + 1].is_empty() {
            cells[p + 1] = " ".into();
        }
    }
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\r' => at = 0,
            '\x08' => at = at.saturating_sub(1),
            '\t' => at = (at / 8 + 1) * 8,
            '\x1b' => match it.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut fin = None;
                    for d in it.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            fin = Some(d);
                            break;
                        }
                        params.push(d);
                    }
                    let n: Option<usize> = params.split(';').next().and_then(|p| p.parse().ok());
                    match fin {
                        Some('C') => at += n.unwrap_or(1).max(1),
                        Some('D') => at = at.saturating_sub(n.unwrap_or(1).max(1)),
                        Some('G') => at = n.unwrap_or(1).max(1) - 1,
                        Some('K') => match n.unwrap_or(0) {
                            0 => {
                                unsplit(&mut cells, at);
                                cells.truncate(at);
                            }
                            1 => {
                                for c in cells.iter_mut().take(at + 1) {
                                    *c = " ".into();
                                }
                                unsplit(&mut cells, at + 1);
                            }
                            _ => cells.clear(),
                        },
                        _ => {}
                    }
                }
                Some(']') => {
                    // An OSC: up to BEL or ST.
                    while let Some(d) = it.next() {
                        if d == '\x07' || (d == '\x1b' && it.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() => {}
            c => {
                let w = c.width().unwrap_or(0);
                if w == 0 {
                    // A combining mark joins the character before it.
                    let upto = at.min(cells.len());
                    if let Some(prev) = cells[..upto].iter_mut().rev().find(|c| !c.is_empty()) {
                        prev.push(c);
                    }
                    continue;
                }
                if cells.len() < at + w {
                    cells.resize(at + w, " ".into());
                }
                unsplit(&mut cells, at);
                if w == 2 {
                    unsplit(&mut cells, at + 1);
                }
                cells[at] = c.to_string();
                if w == 2 {
                    cells[at + 1] = String::new();
                }
                at += w;
            }
        }
    }
    cells.concat()
}

/// Keeps lines matching any of `filters` (all lines when `filters` is empty); other events pass.
pub fn filter_lines<S>(stream: S, filters: Vec<Regex>) -> impl Stream<Item = LineEvent> + Send
where
    S: Stream<Item = LineEvent> + Send,
{
    stream.filter(move |ev| {
        let keep = match ev {
            LineEvent::Line(l) => filters.is_empty() || filters.iter().any(|f| f.is_match(l)),
            _ => true,
        };
        std::future::ready(keep)
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_carriage_return_overwrites_as_a_terminal_does() {
        assert_eq!(clean_line(b"abcdef\rXY"), "XYcdef");
        assert_eq!(clean_line(b"Downloading 100%\rDone\r"), "Doneloading 100%");
        assert_eq!(clean_line(b"10%\r50%\r100%"), "100%");
        assert_eq!(clean_line(b"progress 50%\r\x1b[Kdone"), "done");
        assert_eq!(clean_line(b"long line here\r\x1b[2Kok"), "ok");
        assert_eq!(clean_line(b"\x1b[31mred\x1b[0m\rR"), "Red");
        assert_eq!(clean_line(b"plain"), "plain");
        // Cells, not characters: a wide character takes two.
        assert_eq!(
            clean_line("日本語テキスト\rXY".as_bytes()),
            "XY本語テキスト",
            "X and Y overwrite 日 (two cells)"
        );
        assert_eq!(
            clean_line("日本\rX".as_bytes()),
            "X 本",
            "half of 日 is blanked"
        );
        assert_eq!(clean_line(b"abc\x08\x08X"), "aXc");
        assert_eq!(clean_line(b"abcdef\r\x1b[3CX"), "abcXef");
        assert_eq!(clean_line(b"abcdef\x1b[3D\x1b[1K\rZ"), "Z   ef");
        assert_eq!(clean_line(b"a\tb\rX"), "X       b");
        assert_eq!(clean_line("e\u{301}x\rY".as_bytes()), "Yx");
    }

    #[test]
    fn a_runaway_line_is_cut_between_characters() {
        // The last character complete, or its first one, two or three bytes only.
        for (bytes, kept) in [
            (&b"ab"[..], 0),
            ("aé".as_bytes(), 0),
            (&"aé".as_bytes()[..2], 1),
            ("a✓".as_bytes(), 0),
            (&"a✓".as_bytes()[..3], 2),
            (&"a🦀".as_bytes()[..4], 3),
            ("a🦀".as_bytes(), 0),
            // Not UTF-8: cut as it is.
            (&b"a\x80\x80\x80"[..], 0),
            (&b"\xff"[..], 0),
        ] {
            let mut buf = bytes.to_vec();
            let taken = cut_runaway(&mut buf);
            assert_eq!(buf.len(), kept, "{bytes:?}");
            assert_eq!([taken, buf].concat(), bytes, "{bytes:?}");
        }
    }

    use super::*;

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%20b%C3%A9%25"), "a bé%");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
        assert_eq!(percent_decode("%+1%4"), "%+1%4");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }

    fn strs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i}")).collect()
    }

    #[tokio::test]
    async fn the_command_line_after_the_prompt_mark_is_not_output() {
        let line = b"\x1b]133;A\x07$ \x1b]133;B\x07echo DONE";
        assert_eq!(clean_line(before_input(line)), "$ ");
        assert_eq!(before_input(b"DONE"), b"DONE");
        // A shell with integration: the prompt, the command typed (echoed by the line editor,
        // in two pieces), its output.
        let chunks: Vec<&[u8]> = vec![
            b"\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07ec",
            b"ho DONE\r\n\x1b]133;C\x07DONE\r\n",
        ];
        let stream = || {
            futures_util::stream::iter(
                chunks
                    .iter()
                    .map(|c| OutputEvent::Output(c.to_vec()))
                    .collect::<Vec<_>>(),
            )
        };
        let text = |events: Vec<LineEvent>| {
            events
                .into_iter()
                .filter_map(|e| match e {
                    LineEvent::Line(l) => Some(l),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let output = output_lines(stream()).collect::<Vec<_>>().await;
        assert_eq!(text(output), ["$ ", "DONE"]);
        let all = lines(stream()).collect::<Vec<_>>().await;
        assert_eq!(text(all), ["$ echo DONE", "DONE"]);
        // A background job printing at an idle prompt: no command starts, so it is output,
        // emitted once the moment for a command start has passed (the stream stays open).
        let bg: Vec<OutputEvent> = vec![
            OutputEvent::Output(b"\x1b]133;A\x07$ \x1b]133;B\x07".to_vec()),
            OutputEvent::Output(b"DONE\r\n".to_vec()),
        ];
        let open = futures_util::stream::iter(bg).chain(futures_util::stream::pending());
        let mut out = Box::pin(output_lines(open));
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), out.next()).await;
        assert!(
            matches!(first, Ok(Some(LineEvent::Line(ref l))) if l == "$ "),
            "{first:?}"
        );
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), out.next()).await;
        assert!(
            matches!(second, Ok(Some(LineEvent::Line(ref l))) if l == "DONE"),
            "{second:?}"
        );
        // The command start in the same chunk as the typed line, its output much later (`sleep
        // 2; echo DONE`): the typed line is input, not output, however long the output takes.
        let slow: Vec<OutputEvent> = vec![OutputEvent::Output(
            b"\x1b]133;A\x07$ \x1b]133;B\x07sleep 2; echo DONE\r\n\x1b]133;C\x07".to_vec(),
        )];
        let open = futures_util::stream::iter(slow).chain(futures_util::stream::pending());
        let mut out = Box::pin(output_lines(open));
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), out.next()).await;
        assert!(
            matches!(first, Ok(Some(LineEvent::Line(ref l))) if l == "$ "),
            "{first:?}"
        );
        // Five times the hold: had the line been taken for output, it would be out by now.
        let echo = tokio::time::timeout(INPUT_GRACE * 5, out.next()).await;
        assert!(echo.is_err(), "the typed line came out as output: {echo:?}");
    }

    #[tokio::test]
    async fn a_command_typed_before_the_stream_began_is_not_output() {
        // Subscribed after the prompt (and its end mark) were printed: the stream starts with
        // the typed command's echo. Waiting for READY must not match `echo READY`.
        let typed: Vec<OutputEvent> = vec![
            OutputEvent::Output(b"sleep 2; echo READY\r\n\x1b]133;C\x07".to_vec()),
            OutputEvent::Output(b"READY\r\n".to_vec()),
        ];
        let got: Vec<LineEvent> = output_lines(futures_util::stream::iter(typed))
            .collect()
            .await;
        assert_eq!(got, [LineEvent::Line("READY".into())]);
        // A first line that is output (a program printing when the stream began) comes out,
        // once the moment for a command start has passed.
        let printing: Vec<OutputEvent> = vec![OutputEvent::Output(b"progress 50%\r\n".to_vec())];
        let open = futures_util::stream::iter(printing).chain(futures_util::stream::pending());
        let mut out = Box::pin(output_lines(open));
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), out.next()).await;
        assert!(
            matches!(first, Ok(Some(LineEvent::Line(ref l))) if l == "progress 50%"),
            "{first:?}"
        );
    }

    #[test]
    fn plain_text_is_returned_as_the_full_stripper_would() {
        for t in [
            "",
            "plain words\tand a tab\nnext line ü 日本 🎉",
            "a\rb",
            "bell\x07",
            "del\x7f",
            "c1 \u{9b}31m csi",
            "c1 \u{85} nel",
            "\u{a0} nbsp and \u{c2} and \u{ff}",
            "\x1b[1mbold\x1b[0m",
        ] {
            // The same text with an escape added at the end takes the full path.
            let slow = strip_ansi(&format!("{t}\x1b[0m"));
            assert_eq!(strip_ansi(t), slow, "{t:?}");
        }
        assert!(is_plain_text("x\ty\nü"));
        // Tabs stay, in colored text too (program output of columns: `printf 'a\tb'`).
        assert_eq!(strip_ansi("\x1b[32ma\tb\x1b[0m\tc"), "a\tb\tc");
        // A stand-in that the text itself holds stays what it is.
        assert_eq!(strip_ansi("x\u{fdd0}\t\x1b[0m"), "x\u{fdd0}\t");
        // A tab inside an escape sequence goes with it.
        assert_eq!(strip_ansi("x\x1b]0;t\tt\x07y"), "xy");
        assert!(!is_plain_text("x\u{9b}"));
    }

    #[test]
    fn strip_ansi_removes_colours_and_osc() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m \x1b]133;A\x07ok"), "red ok");
    }

    #[test]
    fn cap_keeps_head_and_tail_and_names_the_gap() {
        let c = cap(&strs(1000), 0, 30, usize::MAX);
        assert!(c.truncated);
        assert!(c.text.starts_with("line 0\n"));
        assert!(c.text.ends_with("line 999"));
        let note = c.note.unwrap();
        assert!(note.contains("left out"), "{note}");
        assert!(c.text.lines().count() <= 31);
    }

    #[test]
    fn cap_honours_bytes() {
        let c = cap(&strs(100_000), 0, usize::MAX, 10_000);
        assert!(c.text.len() <= 10_000, "{}", c.text.len());
        assert!(c.text.ends_with("line 99999"));
        // Caps smaller than the marker: the last bytes, never more than asked (a 5-byte cap gave
        // 82 bytes, more than the whole text).
        let short = strs(20);
        for max in [1, 5, 40, 119, 120, 130] {
            let c = cap(&short, 0, usize::MAX, max);
            assert!(c.text.len() <= max, "{max}: {:?}", c.text);
            assert!(c.truncated && c.note.is_some(), "{max}");
        }
        assert_eq!(cap(&short, 0, usize::MAX, 5).text, "ne 19");
        // A single line longer than the cap keeps its end within it.
        let long = vec!["é".repeat(500)];
        let c = cap(&long, 0, usize::MAX, 300);
        assert!(
            c.text.len() <= 300 && c.text.ends_with('é'),
            "{}",
            c.text.len()
        );
    }

    #[test]
    fn cap_leaves_small_text_alone() {
        let c = cap(&strs(3), 0, 10, 1000);
        assert_eq!(c.text, "line 0\nline 1\nline 2");
        assert!(!c.truncated);
    }

    #[test]
    fn search_numbers_lines_and_gives_context() {
        let text = "a\nb\nerror here\nc\nd";
        let re = Regex::new("error").unwrap();
        let r = search(text, 100, &re, 1, 10);
        assert_eq!(r.matches.len(), 1);
        let m = &r.matches[0];
        assert_eq!(m.line, 102);
        assert_eq!(m.before[0].line, 101);
        assert_eq!(m.after[0].text, "c");
    }

    #[tokio::test]
    async fn lines_assembles_chunks_and_reports_close() {
        let events = vec![
            OutputEvent::Output(b"hel".to_vec()),
            OutputEvent::Output(b"lo\r\n\x1b[1mwor".to_vec()),
            OutputEvent::Output("ld é\n".as_bytes()[..6].to_vec()),
            OutputEvent::Output("ld é\n".as_bytes()[6..].to_vec()),
            OutputEvent::Closed {
                reason: "pane closed".into(),
            },
        ];
        let got: Vec<LineEvent> = lines(futures_util::stream::iter(events)).collect().await;
        assert_eq!(
            got,
            vec![
                LineEvent::Line("hello".into()),
                LineEvent::Line("world é".into()),
                LineEvent::Closed("pane closed".into())
            ]
        );
    }
}
