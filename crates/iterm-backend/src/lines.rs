//! Reading a session's lines through `GetBuffer`, and turning screen changes into a byte stream.
//!
//! iTerm2 numbers lines absolutely: line `y` keeps its number when older lines are trimmed from
//! the scrollback, so a position saved earlier still names the same line later (until that line
//! itself is trimmed). Everything here works in those absolute numbers.
//!
//! iTerm2 has no output stream: a screen-update notification only says "something changed".
//! [`Tracker`] remembers how far a reader got (a line number plus the part of the cursor's line
//! already reported) and turns a fresh read of the lines from there into the bytes a program
//! would have printed: new text, `\n` at the end of finished lines, and `\r` plus the whole line
//! when a line was rewritten.

use crate::connection::Connection;
use crate::error::ItermError;
use crate::proto;

/// Lines asked for in one `GetBuffer` request.
const CHUNK: i64 = 5000;

/// One row of the terminal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Row {
    /// The characters; trailing blanks removed unless the row wraps into the next.
    pub text: String,
    /// The row is soft-wrapped: it continues on the next row.
    pub soft: bool,
}

/// Where the screen is: lines above it, its height and the cursor.
#[derive(Clone, Debug, Default)]
pub(crate) struct Geometry {
    /// Absolute number of the first screen line.
    pub above: i64,
    /// Screen rows.
    pub rows: i64,
    /// Cursor column.
    pub cursor_x: i64,
    /// Cursor line (absolute).
    pub cursor_y: i64,
    /// The screen's rows, top to bottom.
    pub screen: Vec<Row>,
}

impl Geometry {
    /// One past the last line.
    pub fn end(&self) -> i64 {
        self.above + self.rows
    }

    /// The text of absolute line `y` when it is on the screen.
    pub fn screen_row(&self, y: i64) -> Option<&Row> {
        usize::try_from(y - self.above)
            .ok()
            .and_then(|i| self.screen.get(i))
    }
}

/// Rows from `GetBuffer` contents.
pub(crate) fn rows_of(contents: Vec<proto::LineContents>) -> Vec<Row> {
    contents
        .into_iter()
        .map(|l| {
            let soft = l.continuation() == proto::line_contents::Continuation::SoftEol;
            let mut text = l.text.unwrap_or_default();
            if !soft {
                let keep = text.trim_end().len();
                text.truncate(keep);
            }
            Row { text, soft }
        })
        .collect()
}

/// The screen, the cursor and the number of lines above the screen, in one request.
pub(crate) async fn geometry(conn: &Connection, session: &str) -> Result<Geometry, ItermError> {
    let r = conn.get_screen(session).await?;
    let above = r.num_lines_above_screen.unwrap_or(0).max(0);
    let cursor = r.cursor.clone().unwrap_or_default();
    let screen = rows_of(r.contents);
    let rows = screen.len() as i64;
    Ok(Geometry {
        above,
        rows,
        cursor_x: i64::from(cursor.x.unwrap_or(0)),
        cursor_y: cursor.y.unwrap_or(above),
        screen,
    })
}

/// Absolute lines `from..=to` (clamped by iTerm2 to what it still stores). Returns the number of
/// the first line returned and the rows. Asks in chunks, so long ranges are fine.
pub(crate) async fn read_rows(
    conn: &Connection,
    session: &str,
    from: i64,
    to: i64,
) -> Result<(i64, Vec<Row>), ItermError> {
    let from = from.max(0);
    let mut out: Vec<Row> = Vec::new();
    let mut first: Option<i64> = None;
    let mut y = from;
    while y <= to {
        let stop = (y + CHUNK - 1).min(to);
        // A half-open cell range: from the start of line `y` to the start of line `stop + 1`.
        let range = proto::LineRange {
            windowed_coord_range: Some(proto::WindowedCoordRange {
                coord_range: Some(proto::CoordRange {
                    start: Some(proto::Coord {
                        x: Some(0),
                        y: Some(y),
                    }),
                    end: Some(proto::Coord {
                        x: Some(0),
                        y: Some(stop + 1),
                    }),
                }),
                columns: None,
            }),
            ..Default::default()
        };
        let r = match conn.get_buffer(session, range).await {
            Ok(r) => r,
            // Lines that are gone (trimmed, or past the end) are simply not there.
            Err(ItermError::Rpc { status, .. }) if status == "INVALID_LINE_RANGE" => break,
            Err(e) => return Err(e),
        };
        let location = r.range.as_ref().and_then(|r| r.location).unwrap_or(y);
        let mut rows = rows_of(r.contents);
        rows.truncate(usize::try_from(stop - location + 1).unwrap_or(0));
        if first.is_none() {
            first = Some(location);
        }
        let got = rows.len() as i64;
        out.extend(rows);
        if got == 0 {
            break;
        }
        y = location + got;
    }
    Ok((first.unwrap_or(from), out))
}

/// A line as a person reads it: soft-wrapped rows joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Logical {
    /// The text.
    pub text: String,
    /// Absolute number of its first row.
    pub start: i64,
    /// Absolute number of its last row.
    pub end: i64,
}

/// Joins soft-wrapped rows (`first` is the number of `rows[0]`).
pub(crate) fn join_rows(first: i64, rows: &[Row]) -> Vec<Logical> {
    let mut out: Vec<Logical> = Vec::new();
    let mut open = false;
    for (i, row) in rows.iter().enumerate() {
        let y = first + i as i64;
        match out.last_mut() {
            Some(last) if open => {
                last.text.push_str(&row.text);
                last.end = y;
            }
            _ => out.push(Logical {
                text: row.text.clone(),
                start: y,
                end: y,
            }),
        }
        open = row.soft;
    }
    for l in &mut out {
        let keep = l.text.trim_end().len();
        l.text.truncate(keep);
    }
    out
}

/// Rows as separate lines, each with its number (no joining).
pub(crate) fn plain_rows(first: i64, rows: &[Row]) -> Vec<Logical> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| Logical {
            text: r.text.trim_end().to_owned(),
            start: first + i as i64,
            end: first + i as i64,
        })
        .collect()
}

/// How far a reader of a session's output got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tracker {
    /// The line not finished yet (the cursor's line when last read).
    pub line: i64,
    /// What of that line was already reported.
    pub emitted: String,
}

/// What [`Tracker::advance`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Advance {
    /// Bytes a program would have printed to produce the change.
    pub bytes: Vec<u8>,
    /// Lines that scrolled out of the stored history before they could be read.
    pub lost: u64,
}

impl Tracker {
    /// A tracker positioned at the cursor, with the cursor's line as already reported.
    pub fn at_cursor(g: &Geometry) -> Self {
        Tracker {
            line: g.cursor_y,
            emitted: g
                .screen_row(g.cursor_y)
                .map(|r| r.text.trim_end().to_owned())
                .unwrap_or_default(),
        }
    }

    /// Reports the lines from [`line`](Self::line) to `cursor_y`, given a read of them that
    /// starts at absolute line `first`.
    pub fn advance(&mut self, first: i64, rows: &[Row], cursor_y: i64) -> Advance {
        let mut out = String::new();
        let mut lost = 0;
        if cursor_y < self.line {
            // The cursor went up (screen cleared, a full-screen program): resynchronise quietly.
            self.line = cursor_y;
            self.emitted = usize::try_from(cursor_y - first)
                .ok()
                .and_then(|i| rows.get(i))
                .map(|r| r.text.trim_end().to_owned())
                .unwrap_or_default();
            return Advance {
                bytes: Vec::new(),
                lost: 0,
            };
        }
        if first > self.line {
            lost = u64::try_from(first - self.line).unwrap_or(0);
            self.line = first;
            self.emitted.clear();
        }
        for (i, row) in rows.iter().enumerate() {
            let y = first + i as i64;
            if y < self.line {
                continue;
            }
            if y > cursor_y {
                break;
            }
            let text = if row.soft {
                row.text.as_str()
            } else {
                row.text.trim_end()
            };
            if y == self.line {
                match text.strip_prefix(self.emitted.as_str()) {
                    Some(rest) => out.push_str(rest),
                    None => {
                        out.push('\r');
                        out.push_str(text);
                    }
                }
            } else {
                out.push_str(text);
            }
            if y < cursor_y {
                if !row.soft {
                    out.push('\n');
                }
                self.line = y + 1;
                self.emitted.clear();
            } else {
                self.line = y;
                self.emitted = text.to_owned();
            }
        }
        Advance {
            bytes: out.into_bytes(),
            lost,
        }
    }
}

/// Cuts a text range out of rows: from column `start_x` of the first row to column `end_x`
/// (exclusive) of row `end_y`. Columns are counted in characters.
pub(crate) fn slice_rows(
    first: i64,
    rows: &[Row],
    (start_x, start_y): (i64, i64),
    (end_x, end_y): (i64, i64),
) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let y = first + i as i64;
        if y < start_y || y > end_y {
            continue;
        }
        let chars: Vec<char> = row.text.chars().collect();
        let from = if y == start_y {
            usize::try_from(start_x).unwrap_or(0).min(chars.len())
        } else {
            0
        };
        let to = if y == end_y {
            usize::try_from(end_x).unwrap_or(0).min(chars.len())
        } else {
            chars.len()
        };
        if y == end_y && to == 0 && end_x == 0 && y != start_y {
            // The range ends at the very start of this row: nothing of it belongs.
            break;
        }
        out.push(Row {
            text: chars[from..to.max(from)].iter().collect(),
            soft: row.soft && y != end_y,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: &str) -> Row {
        Row {
            text: t.into(),
            soft: false,
        }
    }

    fn soft(t: &str) -> Row {
        Row {
            text: t.into(),
            soft: true,
        }
    }

    #[test]
    fn tracker_reports_growth_lines_and_rewrites() {
        let mut t = Tracker {
            line: 10,
            emitted: "$".into(),
        };
        let a = t.advance(10, &[row("$ echo hi")], 10);
        assert_eq!(String::from_utf8(a.bytes).unwrap(), " echo hi");
        let a = t.advance(10, &[row("$ echo hi"), row("hi"), row("$")], 12);
        assert_eq!(String::from_utf8(a.bytes).unwrap(), "\nhi\n$");
        assert_eq!(t.line, 12);
        // The line was rewritten (e.g. a progress bar): `\r` and the whole line.
        let a = t.advance(12, &[row("# other")], 12);
        assert_eq!(String::from_utf8(a.bytes).unwrap(), "\r# other");
        // Wrapped rows join without a newline.
        let a = t.advance(12, &[row("# other"), soft("abc"), row("def"), row("")], 15);
        assert_eq!(String::from_utf8(a.bytes).unwrap(), "\nabcdef\n");
        assert_eq!(a.lost, 0);
    }

    #[test]
    fn tracker_counts_lost_lines_and_resyncs_when_the_cursor_goes_up() {
        let mut t = Tracker {
            line: 5,
            emitted: String::new(),
        };
        let a = t.advance(8, &[row("x"), row("")], 9);
        assert_eq!(a.lost, 3);
        assert_eq!(String::from_utf8(a.bytes).unwrap(), "x\n");
        let a = t.advance(2, &[row("top")], 2);
        assert!(a.bytes.is_empty());
        assert_eq!(
            t,
            Tracker {
                line: 2,
                emitted: "top".into()
            }
        );
    }

    #[test]
    fn joins_and_slices() {
        let rows = [soft("ab"), row("cd"), row("ef  ")];
        let l = join_rows(7, &rows);
        assert_eq!(
            l[0],
            Logical {
                text: "abcd".into(),
                start: 7,
                end: 8
            }
        );
        assert_eq!(l[1].text, "ef");
        let s = slice_rows(7, &rows, (1, 7), (0, 9));
        assert_eq!(s, vec![soft("b"), row("cd")]);
        let s = slice_rows(7, &rows, (0, 8), (1, 9));
        assert_eq!(s, vec![row("cd"), row("e")]);
    }
}
