//! Building tmux argv: escaping the one thing tmux treats specially in argv, and exact targets.
//!
//! Never a shell string: every command is a `Vec<String>` handed to tmux as argv (spawned) or
//! quoted for tmux's own command parser (control mode, see [`quote_for_control`]).

use termloom_core::{Key, KeyCode};

/// tmux splits commands on an argv element that ends in `;`. An argument that really ends in `;` is
/// sent with a backslash before that final `;` (tmux removes it again), so text such as `a;` arrives
/// as typed.
pub fn escape_arg(arg: &str) -> String {
    match arg.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => arg.to_string(),
    }
}

/// An argument that tmux expands as a format (`new-session -s`, `-n`, `-c`, `select-pane -T`,
/// `rename-window`), made literal: `#` doubled, so `#{…}` stays text and `#(…)` never runs a
/// shell command. Names and paths go through here; termloom's own `-F` formats do not.
///
/// A run of `#` right before `[` is left as it is: tmux copies such a run verbatim (it is a
/// style, `#[fg=red]`, for drawing), so doubling it would change the name (`#[x]##` became
/// `##[x]##` and no exact target matched it).
pub fn format_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut run = 0usize;
    for c in s.chars() {
        if c == '#' {
            run += 1;
            continue;
        }
        let n = if c == '[' { run } else { run * 2 };
        out.extend(std::iter::repeat_n('#', n));
        run = 0;
        out.push(c);
    }
    out.extend(std::iter::repeat_n('#', run * 2));
    out
}

/// `s` as literal text on one side of a format comparison (`#{==:A,B}`): [`format_literal`],
/// and `,` and `}` escaped (`#,`, `#}`), which would end the side or the comparison.
pub fn compare_literal(s: &str) -> String {
    format_literal(s).replace(',', "#,").replace('}', "#}")
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

    /// The arguments so far (the name first).
    pub fn args(&self) -> &[String] {
        &self.args
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

/// The `send-keys` command that presses one key in `pane`.
///
/// tmux's own key names are used only where tmux understands them for sure: cursor, editing and
/// function keys with any modifiers (tmux encodes those by the pane's cursor and keypad modes),
/// Enter, Escape, Tab, BSpace and Space alone or with Meta, and Shift-Tab as `BTab`. Everything
/// else is sent as the bytes an xterm sends ([`Key::to_bytes`], `send-keys -H`): tmux types a
/// name it cannot parse as its letters (`S-Tab` arrives as "S-Tab") or drops it (`C-Tab`), and a
/// character sent as bytes can never be mistaken for a name.
pub fn send_key(pane: &str, key: &Key) -> Cmd {
    let cmd = Cmd::new("send-keys").opt("-t", pane);
    match tmux_key_name(key) {
        Some(name) => cmd.arg(name),
        None => key
            .to_bytes()
            .iter()
            .fold(cmd.arg("-H"), |c, b| c.arg(format!("{b:02x}"))),
    }
}

/// tmux's spelling of a key, when tmux is known to understand it (see [`send_key`]).
pub fn tmux_key_name(key: &Key) -> Option<String> {
    let meta = if key.alt { "M-" } else { "" };
    match key.code {
        KeyCode::Up
        | KeyCode::Down
        | KeyCode::Left
        | KeyCode::Right
        | KeyCode::Home
        | KeyCode::End
        | KeyCode::PageUp
        | KeyCode::PageDown
        | KeyCode::Insert
        | KeyCode::Delete
        | KeyCode::F(_) => Some(key.to_string()),
        KeyCode::BackTab if !key.ctrl => Some(format!("{meta}BTab")),
        KeyCode::Tab if key.shift && !key.ctrl => Some(format!("{meta}BTab")),
        KeyCode::Enter | KeyCode::Escape | KeyCode::Tab | KeyCode::Backspace | KeyCode::Space
            if !key.ctrl && !key.shift =>
        {
            Some(key.to_string())
        }
        _ => None,
    }
}

/// Quotes one argv element for tmux's command parser (control mode sends text lines, not argv):
/// [`termloom_tmux_syntax::quote`].
pub use termloom_tmux_syntax::quote as quote_for_control;

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
    fn format_text_is_made_literal() {
        assert_eq!(format_literal("#(rm x) #{h} ## a"), "##(rm x) ##{h} #### a");
        assert_eq!(format_literal("plain"), "plain");
        assert_eq!(format_literal("#[fg=red]##"), "#[fg=red]####");
        assert_eq!(format_literal("a##[b]#"), "a##[b]##");
    }

    #[test]
    fn chain_inserts_separators() {
        let argv = chain(vec![Cmd::new("a").arg("x;"), Cmd::new("b")]);
        assert_eq!(argv, ["a", "x\\;", ";", "b"]);
    }

    #[test]
    fn keys_tmux_cannot_name_go_as_bytes() {
        let argv = |k: &str| send_key("%1", &k.parse::<Key>().unwrap()).into_args()[3..].to_vec();
        assert_eq!(argv("Up"), ["Up"]);
        assert_eq!(argv("C-S-Up"), ["C-S-Up"]);
        assert_eq!(argv("F5"), ["F5"]);
        assert_eq!(argv("Enter"), ["Enter"]);
        assert_eq!(argv("M-Enter"), ["M-Enter"]);
        assert_eq!(argv("S-Tab"), ["BTab"]);
        assert_eq!(argv("M-S-Tab"), ["M-BTab"]);
        assert_eq!(argv("C-c"), ["-H", "03"]);
        assert_eq!(argv("M-x"), ["-H", "1b", "78"]);
        assert_eq!(argv(";"), ["-H", "3b"]);
        assert_eq!(argv("S-Enter"), ["-H", "0d"]);
        assert_eq!(argv("C-Tab"), ["-H", "09"]);
        assert_eq!(argv("é"), ["-H", "c3", "a9"]);
    }
}
