//! Terminal emulation for one fake session: `vt100` renders the pty output into a screen plus
//! scrollback, and its callbacks report what iTerm2 itself would react to: shell-integration
//! marks (OSC 133 A/B/C/D), titles (OSC 0/2), `OSC 1337 SetUserVar`/`CurrentDir`, `OSC 7`, and
//! lines dropped from the top of the scrollback (so absolute line numbers stay stable).

use std::num::NonZeroU16;

/// A cell position with an absolute line number (lines ever scrolled away count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AbsCoord {
    pub x: i32,
    pub y: i64,
}

/// Something the session's output asked for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TermEvent {
    /// `OSC 133 ; <kind> [; args…]`. For `C`, `command` is the text between the last `B` mark
    /// and the cursor.
    Mark {
        kind: char,
        args: Vec<String>,
        at: AbsCoord,
        command: Option<String>,
    },
    /// OSC 0 or 2.
    Title(String),
    /// `OSC 1337 ; SetUserVar=name=<base64>`: sets `user.<name>`.
    UserVar { name: String, value: String },
    /// `OSC 7 ; file://host/path` or `OSC 1337 ; CurrentDir=path`.
    CurrentDir(String),
}

/// State the vt100 callbacks update.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Lines dropped from the top of the scrollback so far.
    pub overflow: u64,
    /// Events since the last drain.
    pub events: Vec<TermEvent>,
    /// Where the last `OSC 133 ; B` was.
    last_command_start: Option<AbsCoord>,
}

/// A line of text and whether it wraps into the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub wrapped: bool,
}

fn cursor_abs(screen: &vt100::Screen, overflow: u64) -> AbsCoord {
    let (row, col) = screen.cursor_position();
    AbsCoord {
        x: i32::from(col),
        y: (overflow + screen.scrollback_len() as u64 + u64::from(row)) as i64,
    }
}

/// Reads `count` lines starting at absolute line `first`. Lines no longer stored come back
/// empty. Leaves the screen scrolled to the live view.
fn read_lines(screen: &mut vt100::Screen, overflow: u64, first: u64, count: usize) -> Vec<Line> {
    let (rows, cols) = screen.size();
    let rows = usize::from(rows.get());
    let cols = cols.get();
    let sb = screen.scrollback_len();
    let mut out = Vec::with_capacity(count);
    let mut abs = first;
    while out.len() < count {
        if abs < overflow {
            out.push(Line {
                text: String::new(),
                wrapped: false,
            });
            abs += 1;
            continue;
        }
        let idx = (abs - overflow) as usize;
        let (offset, top) = if idx < sb {
            (sb - idx, 0usize)
        } else {
            (0, idx - sb)
        };
        if offset == 0 && top >= rows {
            break;
        }
        screen.set_scrollback(offset);
        let take = (rows - top).min(count - out.len());
        let texts: Vec<String> = screen.rows(0, cols).skip(top).take(take).collect();
        for (i, text) in texts.into_iter().enumerate() {
            let row = u16::try_from(top + i).unwrap_or(u16::MAX);
            out.push(Line {
                text,
                wrapped: screen.row_wrapped(row),
            });
        }
        abs += take as u64;
    }
    screen.set_scrollback(0);
    out
}

/// Text from `start` up to (not including) `end`, joining wrapped lines and ending other lines
/// with `\n`; trailing blanks trimmed.
fn text_between(
    screen: &mut vt100::Screen,
    overflow: u64,
    start: AbsCoord,
    end: AbsCoord,
) -> String {
    if end.y < start.y || start.y < 0 {
        return String::new();
    }
    let count = (end.y - start.y + 1) as usize;
    let lines = read_lines(screen, overflow, start.y as u64, count);
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        let y = start.y + i as i64;
        let chars: Vec<char> = line.text.chars().collect();
        let from = if y == start.y {
            start.x.max(0) as usize
        } else {
            0
        };
        let to = if y == end.y {
            (end.x.max(0) as usize).min(chars.len())
        } else {
            chars.len()
        };
        if from < to {
            text.extend(&chars[from..to]);
        }
        if y != end.y && !line.wrapped {
            text.push('\n');
        }
    }
    text.trim_end().to_owned()
}

fn decode_base64(input: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    }
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in input
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl vt100::Callbacks for Hooks {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.events.push(TermEvent::Title(
            String::from_utf8_lossy(title).into_owned(),
        ));
    }

    fn on_scroll(&mut self, _contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if !alternate_screen {
            self.overflow += 1;
        }
    }

    fn unhandled_osc(&mut self, screen: &mut vt100::Screen, params: &[&[u8]]) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match params {
            [b"133", kind, rest @ ..] => {
                let Some(kind) = kind.first().map(|b| char::from(*b)) else {
                    return;
                };
                let at = cursor_abs(screen, self.overflow);
                let mut command = None;
                match kind {
                    'B' => self.last_command_start = Some(at),
                    'C' => {
                        if let Some(start) = self.last_command_start.take() {
                            command = Some(text_between(screen, self.overflow, start, at));
                        }
                    }
                    'A' | 'D' => {}
                    _ => return,
                }
                self.events.push(TermEvent::Mark {
                    kind,
                    args: rest.iter().map(|b| text(b)).collect(),
                    at,
                    command,
                });
            }
            [b"1337", arg, ..] => {
                let arg = text(arg);
                if let Some(spec) = arg.strip_prefix("SetUserVar=")
                    && let Some((name, b64)) = spec.split_once('=')
                    && let Some(bytes) = decode_base64(b64)
                {
                    self.events.push(TermEvent::UserVar {
                        name: name.to_owned(),
                        value: String::from_utf8_lossy(&bytes).into_owned(),
                    });
                } else if let Some(dir) = arg.strip_prefix("CurrentDir=") {
                    self.events.push(TermEvent::CurrentDir(dir.to_owned()));
                }
            }
            [b"7", url, ..] => {
                let url = text(url);
                if let Some(rest) = url.strip_prefix("file://") {
                    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
                    self.events
                        .push(TermEvent::CurrentDir(percent_decode(path)));
                }
            }
            _ => {}
        }
    }
}

/// The emulated terminal of one session.
pub(crate) struct Term {
    parser: vt100::Parser<Hooks>,
}

/// Scrollback lines kept per session.
pub(crate) const SCROLLBACK_LINES: usize = 10_000;

impl Term {
    pub fn new(rows: u16, cols: u16) -> Self {
        Self {
            parser: vt100::Parser::new_with_callbacks(
                nz(rows, 24),
                nz(cols, 80),
                SCROLLBACK_LINES,
                Hooks::default(),
            ),
        }
    }

    /// Renders output bytes; returns the events they caused.
    pub fn process(&mut self, bytes: &[u8]) -> Vec<TermEvent> {
        self.parser.process(bytes);
        std::mem::take(&mut self.parser.callbacks_mut().events)
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser
            .screen_mut()
            .set_size(nz(rows, 24), nz(cols, 80));
    }

    /// (rows, cols).
    pub fn size(&self) -> (u16, u16) {
        let (r, c) = self.parser.screen().size();
        (r.get(), c.get())
    }

    /// Absolute line number of the first screen line.
    pub fn lines_above_screen(&self) -> u64 {
        self.parser.callbacks().overflow + self.parser.screen().scrollback_len() as u64
    }

    /// Absolute line number of the oldest stored line.
    pub fn first_stored_line(&self) -> u64 {
        self.parser.callbacks().overflow
    }

    pub fn cursor(&self) -> AbsCoord {
        cursor_abs(self.parser.screen(), self.parser.callbacks().overflow)
    }

    /// Reads stored lines by absolute number.
    pub fn lines(&mut self, first: u64, count: usize) -> Vec<Line> {
        let overflow = self.parser.callbacks().overflow;
        let (screen, _) = self.parser.screen_and_callbacks_mut();
        read_lines(screen, overflow, first, count)
    }

    /// The visible screen.
    #[cfg(test)]
    pub fn screen_lines(&mut self) -> Vec<Line> {
        let first = self.lines_above_screen();
        let rows = usize::from(self.size().0);
        self.lines(first, rows)
    }

    /// Plain text of the visible screen (for debugging and tests).
    pub fn contents(&self) -> String {
        self.parser.screen().contents()
    }
}

fn nz(v: u16, fallback: u16) -> NonZeroU16 {
    NonZeroU16::new(v)
        .or(NonZeroU16::new(fallback))
        .unwrap_or(NonZeroU16::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_command_text() {
        let mut t = Term::new(5, 20);
        let mut ev = t.process(b"\x1b]133;A\x07$ \x1b]133;B\x07");
        ev.extend(t.process(b"echo hi\r\n\x1b]133;C\x07hi\r\n\x1b]133;D;3\x07"));
        let kinds: Vec<char> = ev
            .iter()
            .filter_map(|e| match e {
                TermEvent::Mark { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, vec!['A', 'B', 'C', 'D']);
        let cmd = ev.iter().find_map(|e| match e {
            TermEvent::Mark {
                kind: 'C', command, ..
            } => command.clone(),
            _ => None,
        });
        assert_eq!(cmd.as_deref(), Some("echo hi"));
        let d_args = ev.iter().find_map(|e| match e {
            TermEvent::Mark {
                kind: 'D', args, ..
            } => Some(args.clone()),
            _ => None,
        });
        assert_eq!(d_args, Some(vec!["3".to_owned()]));
    }

    #[test]
    fn absolute_lines_survive_scrollback_trimming() {
        let mut t = Term::new(3, 10);
        for i in 0..(SCROLLBACK_LINES + 10) {
            t.process(format!("{i}\r\n").as_bytes());
        }
        // 3 rows, the last one empty (cursor), so the last printed number is on row 1.
        let above = t.lines_above_screen();
        assert_eq!(above, (SCROLLBACK_LINES + 10 - 2) as u64);
        let screen = t.screen_lines();
        assert_eq!(screen[0].text, format!("{}", SCROLLBACK_LINES + 8));
        assert_eq!(t.cursor().y, above as i64 + 2);
        // The oldest stored line is line number `first_stored_line`, text = its number.
        let first = t.first_stored_line();
        let l = t.lines(first, 1);
        assert_eq!(l[0].text, first.to_string());
        // Lines before that are gone but still addressable (empty).
        let gone = t.lines(0, 1);
        assert_eq!(gone[0].text, "");
    }

    #[test]
    fn wrapped_lines_are_soft() {
        let mut t = Term::new(4, 5);
        t.process(b"abcdefgh\r\nx");
        let l = t.screen_lines();
        assert_eq!(l[0].text, "abcde");
        assert!(l[0].wrapped);
        assert_eq!(l[1].text, "fgh");
        assert!(!l[1].wrapped);
    }

    #[test]
    fn user_vars_titles_and_dirs() {
        let mut t = Term::new(4, 20);
        let ev = t.process(
            b"\x1b]1337;SetUserVar=foo=YmFy\x07\x1b]2;my title\x07\x1b]7;file://h/tmp/a%20b\x07",
        );
        assert!(ev.contains(&TermEvent::UserVar {
            name: "foo".into(),
            value: "bar".into()
        }));
        assert!(ev.contains(&TermEvent::Title("my title".into())));
        assert!(ev.contains(&TermEvent::CurrentDir("/tmp/a b".into())));
    }
}
