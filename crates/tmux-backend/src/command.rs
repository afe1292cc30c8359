//! Building tmux argv: escaping the one thing tmux treats specially in argv, and exact targets.
//!
//! Never a shell string: every command is a `Vec<String>` handed to tmux as argv (spawned) or
//! quoted for tmux's own command parser (control mode, see [`quote_for_control`]).

/// tmux splits commands on an argv element that ends in `;`. An argument that really ends in `;` is
/// sent with a backslash before that final `;` (tmux removes it again), so text such as `a;` arrives
/// as typed.
pub fn escape_arg(arg: &str) -> String {
    match arg.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => arg.to_string(),
    }
}

/// The separator between two commands in one tmux invocation.
pub const SEP: &str = ";";

/// A command under construction: `Cmd::new("send-keys").arg("-t").arg("%3")`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<String>,
}

impl Cmd {
    /// A command with its name.
    pub fn new(name: &str) -> Cmd {
        Cmd {
            args: vec![name.to_string()],
        }
    }

    /// Appends an argument (escaped for a trailing `;`).
    pub fn arg(mut self, a: impl AsRef<str>) -> Cmd {
        self.args.push(escape_arg(a.as_ref()));
        self
    }

    /// Appends a flag and its value.
    pub fn opt(self, flag: &str, value: impl AsRef<str>) -> Cmd {
        self.arg(flag).arg(value)
    }

    /// Appends `flag value` when `value` is `Some`.
    pub fn opt_if(self, flag: &str, value: Option<impl AsRef<str>>) -> Cmd {
        match value {
            Some(v) => self.opt(flag, v),
            None => self,
        }
    }

    /// Appends a bare flag when `on`.
    pub fn flag_if(self, flag: &str, on: bool) -> Cmd {
        if on { self.arg(flag) } else { self }
    }

    /// The argv (without the tmux binary and socket options).
    pub fn into_args(self) -> Vec<String> {
        self.args
    }

    /// The command's name, for error messages.
    pub fn name(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }
}

/// Joins commands into one tmux invocation (`a ; b ; c`), run by tmux back to back with nothing
/// else in between.
pub fn chain(cmds: Vec<Cmd>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in cmds.into_iter().enumerate() {
        if i > 0 {
            out.push(SEP.to_string());
        }
        out.extend(c.into_args());
    }
    out
}

/// An exact session (workspace) target: `=name` never matches by prefix or pattern.
pub fn exact_session(name: &str) -> String {
    format!("={name}")
}

/// An exact target for commands whose `-t` takes a pane or window (`set-option`, `show-options`,
/// `display-message`): the session's current window and pane, `=name:`.
pub fn exact_session_window(name: &str) -> String {
    format!("={name}:")
}

/// Quotes one argv element for tmux's command parser (control mode sends text lines, not argv).
///
/// Plain words pass as they are; anything else is double-quoted with `\`, `"`, `$` and `~` escaped
/// and control characters written as octal escapes, so no byte of the argument is interpreted.
pub fn quote_for_control(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'%' | b'@' | b'/' | b'.' | b',' | b'=' | b'+' | b':'
                )
        });
    if plain && !arg.starts_with('%') {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '~' => out.push_str("\\~"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03o}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_semicolons_are_escaped() {
        assert_eq!(escape_arg("a;"), "a\\;");
        assert_eq!(escape_arg(";"), "\\;");
        assert_eq!(escape_arg("x\\;"), "x\\\\;");
        assert_eq!(escape_arg("a;b"), "a;b");
    }

    #[test]
    fn chain_inserts_separators() {
        let argv = chain(vec![Cmd::new("a").arg("x;"), Cmd::new("b")]);
        assert_eq!(argv, ["a", "x\\;", ";", "b"]);
    }

    #[test]
    fn control_quoting() {
        assert_eq!(quote_for_control("send-keys"), "send-keys");
        assert_eq!(quote_for_control("a b"), "\"a b\"");
        assert_eq!(quote_for_control("$HOME\n"), "\"\\$HOME\\012\"");
        assert_eq!(quote_for_control(""), "\"\"");
        assert_eq!(quote_for_control("%3"), "\"%3\"");
    }
}
