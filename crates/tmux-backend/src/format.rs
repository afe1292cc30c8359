//! `-F` formats and their parsing.
//!
//! Fields are separated by U+001F (unit separator). tmux prints window names and pane titles with
//! control characters escaped, so the separator cannot appear in them; user options (`@termloom_*`)
//! come back raw, which is why termloom stores names percent-encoded ([`encode_value`]). The pane's
//! current path, which tmux does not escape, is always the last field, and a row that came back
//! split by a newline inside it is joined again.

use termloom_core::{NativeId, SessionId, SessionInfo, TerminalKey};

use crate::error::TmuxError;

/// The field separator.
pub const SEP: char = '\u{1f}';

/// The pane user option holding the session's persistent id.
pub const OPT_ID: &str = "@termloom_id";
/// The pane user option holding the session's name (percent-encoded).
pub const OPT_NAME: &str = "@termloom_name";
/// The pane user option marking a session as managed by termloom (`1`).
pub const OPT_MANAGED: &str = "@termloom_managed";

/// Joins format fields with [`SEP`].
pub fn format(fields: &[&str]) -> String {
    fields.join("\u{1f}")
}

/// The fields of a pane listing, in order.
pub const PANE_FIELDS: &[&str] = &[
    "#{pane_id}",
    "#{session_id}",
    "#{session_name}",
    "#{window_id}",
    "#{window_index}",
    // tmux prints a window name made by `new-window -n` raw: a U+001F in it would shift every
    // later field, so it is replaced (termloom never makes such names; others might).
    "#{s/\u{1f}/?/:window_name}",
    "#{window_active}",
    "#{pane_index}",
    "#{pane_width}",
    "#{pane_height}",
    "#{pane_active}",
    "#{pane_dead}",
    "#{pane_pid}",
    "#{pane_current_command}",
    "#{pane_title}",
    "#{@termloom_id}",
    "#{@termloom_managed}",
    "#{@termloom_name}",
    "#{pane_current_path}",
];

/// The `-F` argument for pane listings.
pub fn pane_format() -> String {
    record_format(PANE_FIELDS)
}

/// What ends each row of a listing made with [`record_format`]: the field separator, then U+001E.
pub const END: &str = "\u{1f}\u{1e}";

/// Joins format fields with [`SEP`] and ends the row with [`END`], for listings whose fields may
/// hold newlines (window names, paths): [`records`] then splits rows by [`END`], not by line.
pub fn record_format(fields: &[&str]) -> String {
    format!("{}{END}", format(fields))
}

/// Splits the output of a [`record_format`] listing into rows of `n` fields. A newline in any field
/// stays in that field; extra separators are kept inside the last field; short rows are dropped.
pub fn records(output: &str, n: usize) -> Vec<Vec<&str>> {
    output
        .split(END)
        .map(|r| r.strip_prefix('\n').unwrap_or(r))
        .filter(|r| !r.trim().is_empty())
        .filter_map(|r| {
            let fields: Vec<&str> = r.splitn(n, SEP).collect();
            if fields.len() == n {
                Some(fields)
            } else {
                tracing::warn!(row = %r, "incomplete tmux format row dropped");
                None
            }
        })
        .collect()
}

/// Splits tmux output into rows of exactly `n` fields. A row with fewer fields is joined with the
/// next line (a newline inside a field); extra separators are kept inside the last field. A newline
/// in the last field cannot be told from the end of the row: listings whose last field may hold one
/// use [`record_format`] and [`records`].
pub fn rows(output: &str, n: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in output.split('\n') {
        let line = match pending.take() {
            Some(p) => format!("{p}\n{line}"),
            None => line.to_string(),
        };
        let count = line.matches(SEP).count() + 1;
        if count < n {
            pending = Some(line);
            continue;
        }
        let mut fields: Vec<String> = line.splitn(n, SEP).map(str::to_string).collect();
        if let Some(last) = fields.last_mut()
            && last.ends_with('\r')
        {
            last.pop();
        }
        out.push(fields);
    }
    if let Some(p) = pending.filter(|p| !p.trim().is_empty()) {
        tracing::warn!(row = %p, "incomplete tmux format row dropped");
    }
    out
}

/// Percent-encodes control characters and `%` so a value stored in a user option is one clean line.
pub fn encode_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || (c as u32) < 0x20 || c as u32 == 0x7f || c == SEP {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`encode_value`]; malformed escapes are kept as they are.
pub fn decode_value(s: &str) -> String {
    termloom_core::text::percent_decode(s)
}

/// One row of a pane listing, before the id is known for untagged panes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaneRow {
    /// The pane's native id (`%3`).
    pub pane_id: String,
    /// The stored persistent id, if the pane is tagged.
    pub termloom_id: Option<SessionId>,
    /// Everything else, with a placeholder id.
    pub info: SessionInfo,
}

fn num<T: std::str::FromStr>(field: &str, what: &str) -> Result<T, TmuxError> {
    field.trim().parse::<T>().map_err(|_| TmuxError::Parse {
        line: field.to_string(),
        field: what.to_string(),
    })
}

/// Parses one row of [`PANE_FIELDS`].
pub fn parse_pane(f: &[&str], terminal: &TerminalKey) -> Result<PaneRow, TmuxError> {
    if f.len() != PANE_FIELDS.len() {
        return Err(TmuxError::Parse {
            line: f.join("|"),
            field: "pane row".into(),
        });
    }
    let termloom_id = f[15].parse::<SessionId>().ok();
    let window_index: u32 = num(f[4], "window_index")?;
    let pane_index: u32 = num(f[7], "pane_index")?;
    let stored_name = decode_value(f[17]);
    let name = if stored_name.is_empty() {
        format!("{}:{}.{}", f[2], window_index, pane_index)
    } else {
        stored_name
    };
    let info = SessionInfo {
        id: termloom_id.unwrap_or_default(),
        name,
        native: NativeId::tmux(f[0].to_string()),
        terminal: terminal.clone(),
        workspace: f[2].to_string(),
        workspace_id: Some(f[1].to_string()),
        window_index,
        window_name: f[5].to_string(),
        window_id: Some(f[3].to_string()),
        window_active: f[6] == "1",
        pane_index,
        width: num(f[8], "pane_width")?,
        height: num(f[9], "pane_height")?,
        title: f[14].to_string(),
        command: f[13].to_string(),
        cwd: Some(f[18].to_string()).filter(|c| !c.is_empty()),
        pid: f[12].trim().parse().ok(),
        active: f[10] == "1",
        dead: f[11] == "1",
        managed: f[16] == "1",
    };
    Ok(PaneRow {
        pane_id: f[0].to_string(),
        termloom_id,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_encoding() {
        for s in [
            "plain",
            "a b",
            "100%",
            "new\nline",
            "tab\tsep\u{1f}x",
            "é ✓ 日本",
            "%41",
        ] {
            let e = encode_value(s);
            assert!(!e.contains('\n') && !e.contains(SEP), "{e:?}");
            assert_eq!(decode_value(&e), s);
        }
        assert_eq!(decode_value("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn records_keep_newlines_in_any_field() {
        let out = format!("a{SEP}b\nb{SEP}/tmp/x\ny{END}\nc{SEP}d{SEP}/e\n{END}\n");
        let r = records(&out, 3);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0], ["a", "b\nb", "/tmp/x\ny"]);
        assert_eq!(r[1], ["c", "d", "/e\n"]);
        assert!(records(&format!("short{SEP}row{END}\n"), 3).is_empty());
        assert!(record_format(&["#{a}", "#{b}"]).ends_with(END));
    }

    #[test]
    fn rows_rejoin_a_newline_inside_a_row() {
        let out = "a\u{1f}b\nb\u{1f}/tmp/x\nc\u{1f}d\u{1f}/e";
        let r = rows(out, 3);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0][1], "b\nb");
        assert_eq!(r[1][0], "c");
    }

    #[test]
    fn parses_a_real_row() {
        let id = SessionId::new();
        let line = format!(
            "%3\u{1f}$1\u{1f}my ws\u{1f}@2\u{1f}1\u{1f}edit\u{1f}1\u{1f}0\u{1f}80\u{1f}24\u{1f}1\u{1f}0\u{1f}4242\u{1f}bash\u{1f}host\u{1f}{id}\u{1f}1\u{1f}web%20x\u{1f}/home/u"
        );
        let out = format!("{line}{END}\n");
        let r = records(&out, PANE_FIELDS.len());
        let key = TerminalKey {
            backend: termloom_core::BackendKind::Tmux,
            host: None,
            socket: None,
        };
        let p = parse_pane(&r[0], &key).unwrap();
        assert_eq!(p.termloom_id, Some(id));
        assert_eq!(p.info.name, "web x");
        assert_eq!(p.info.workspace, "my ws");
        assert_eq!(p.info.pid, Some(4242));
        assert!(p.info.managed && p.info.active && p.info.window_active);
    }
}
