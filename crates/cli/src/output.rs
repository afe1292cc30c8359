//! How the CLI prints: aligned tables and plain lines for people, one JSON document for `--json`.
//!
//! Everything goes through a locked stdout; a closed pipe (`termloom ls | head -1`) surfaces as an
//! `io::ErrorKind::BrokenPipe` error that `main` treats as success.

use std::io::{self, Write};

use anyhow::Result;
use serde::Serialize;

/// Prints `value` as one pretty-printed JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    // Encoded first, so that a closed stdout surfaces as a plain io::Error (see `main`).
    let mut body = serde_json::to_vec_pretty(value)?;
    body.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&body)?;
    out.flush()?;
    Ok(())
}

/// Prints text on stdout, adding a final newline when it has none (and the text is not empty).
pub fn text(s: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.is_empty() && !s.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one line on stdout.
pub fn line(s: impl AsRef<str>) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_ref().as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

pub use termloom::stderr_line;

/// Prints a note for people on stderr (`termloom: note: …`), keeping stdout for the data.
pub fn note(s: impl AsRef<str>) {
    stderr_line(format!("termloom: note: {}", one_line(s.as_ref())));
}

/// Makes text safe for one table cell or one line of a message: control characters (newline, tab,
/// escape…) are shown as escapes, everything else (quotes, `$`, Unicode) as it is.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A table with a header row, printed with columns padded to their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; each cell is made single-line.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| one_line(c)).collect());
    }

    /// The table as text: two spaces between columns, no padding after the last one.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        // Terminal cells, not characters: CJK and most emoji take two.
        let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        let mut put = |cells: Vec<&str>| {
            let mut line = String::new();
            for (i, c) in cells.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', widths[i] - width(c) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        put(self.header.clone());
        for r in &self.rows {
            put(r.iter().map(String::as_str).collect());
        }
        out
    }

    /// Prints the table on stdout.
    pub fn print(&self) -> Result<()> {
        text(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_escape() {
        let mut t = Table::new(&["ID", "NAME", "CMD"]);
        t.row(vec!["ab".into(), "x\ny".into(), "bash".into()]);
        t.row(vec!["abcdef".into(), "żółw".into(), "".into()]);
        assert_eq!(
            t.render(),
            "ID      NAME  CMD\nab      x\\ny  bash\nabcdef  żółw\n"
        );
        // Wide characters take two cells: the next column still lines up.
        let mut w = Table::new(&["NAME", "CMD"]);
        w.row(vec!["日本".into(), "a".into()]);
        w.row(vec!["🐍x".into(), "b".into()]);
        w.row(vec!["abcd".into(), "c".into()]);
        assert_eq!(w.render(), "NAME  CMD\n日本  a\n🐍x   b\nabcd  c\n");
    }

    #[test]
    fn one_line_keeps_quotes_and_unicode() {
        assert_eq!(one_line("a'b\"$;✓\t\u{1b}"), "a'b\"$;✓\\t\\u{1b}");
    }
}
