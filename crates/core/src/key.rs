//! Named keys, kept apart from literal text.
//!
//! Text is typed exactly as given; a [`Key`] is a key press (`C-c`, `Enter`, `F5`). Keeping them apart is
//! what stops `C-c` from being typed as the three letters C, -, c.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The key itself, without modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyCode {
    /// A printable character (with Ctrl: a control character).
    Char(char),
    /// Enter / Return.
    Enter,
    /// Escape.
    Escape,
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Backspace.
    Backspace,
    /// Delete (forward).
    Delete,
    /// Insert.
    Insert,
    /// Cursor up.
    Up,
    /// Cursor down.
    Down,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Space.
    Space,
    /// A function key, F1 to F12.
    F(u8),
}

/// One key press: a [`KeyCode`] with modifiers.
///
/// Parsed from the usual spellings: `C-c`, `^C`, `Ctrl+C`, `ctrl-c`, `M-x`, `Alt+x`, `S-Tab`, `Enter`,
/// `Return`, `Escape`/`Esc`, `Tab`, `BSpace`/`Backspace`, `Up`/`Down`/`Left`/`Right`, `Home`/`End`,
/// `PageUp`/`PgUp`/`PPage`, `PageDown`/`PgDn`/`NPage`, `DC`/`Delete`, `IC`/`Insert`, `F1`–`F12`,
/// `Space`, or a single character. Names are case-insensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Control held.
    pub ctrl: bool,
    /// Alt (Meta) held.
    pub alt: bool,
    /// Shift held (only meaningful for non-character keys).
    pub shift: bool,
}

impl Key {
    /// A key with no modifiers.
    pub const fn plain(code: KeyCode) -> Key {
        Key {
            code,
            ctrl: false,
            alt: false,
            shift: false,
        }
    }

    /// Ctrl plus a character, e.g. `Key::ctrl('c')`.
    pub const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
            shift: false,
        }
    }

    /// What a terminal echoes when this key raises a signal: `^C` for C-c (SIGINT), `^\\` for
    /// C-\\ (SIGQUIT), `^Z` for C-z (SIGTSTP), also after the ESC that Alt adds. `None` for
    /// every other key.
    ///
    /// A terminal that turns a key into a signal drops the input queued behind it, so a backend
    /// sends what follows such a key only once the pane has answered it ([`signal_segments`],
    /// [`SIGNAL_SETTLE`]).
    pub fn signal_echo(&self) -> Option<&'static [u8]> {
        match self.to_bytes().as_slice() {
            [0x03] | [0x1b, 0x03] => Some(b"^C"),
            [0x1c] | [0x1b, 0x1c] => Some(b"^\\"),
            [0x1a] | [0x1b, 0x1a] => Some(b"^Z"),
            _ => None,
        }
    }

    /// The bytes an xterm-compatible terminal sends for this key, for backends that take raw input.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.alt {
            out.push(0x1b);
        }
        let csi_mod = 1 + u8::from(self.shift) + 2 * u8::from(self.alt) + 4 * u8::from(self.ctrl);
        let csi = |out: &mut Vec<u8>, base: &str, fin: char| {
            // With modifiers xterm sends CSI 1 ; m X (or CSI n ; m ~); the ESC prefix for Alt is then dropped.
            if csi_mod > 1 {
                if out.first() == Some(&0x1b) {
                    out.clear();
                }
                let n = if base.is_empty() { "1" } else { base };
                out.extend(format!("\x1b[{n};{csi_mod}{fin}").bytes());
            } else {
                out.extend(format!("\x1b[{base}{fin}").bytes());
            }
        };
        match self.code {
            KeyCode::Char(c) => {
                if self.ctrl {
                    let lc = c.to_ascii_lowercase();
                    let b = match lc {
                        'a'..='z' => lc as u8 - b'a' + 1,
                        '@' | ' ' | '2' => 0,
                        '[' | '3' => 0x1b,
                        '\\' | '4' => 0x1c,
                        ']' | '5' => 0x1d,
                        '^' | '6' => 0x1e,
                        '_' | '7' | '/' => 0x1f,
                        '?' | '8' => 0x7f,
                        _ => {
                            let mut buf = [0u8; 4];
                            out.extend(c.encode_utf8(&mut buf).bytes());
                            return out;
                        }
                    };
                    out.push(b);
                } else if self.shift {
                    // `S-a` is what a terminal sends for Shift+a: the upper-case letter.
                    out.extend(c.to_uppercase().collect::<String>().bytes());
                } else {
                    let mut buf = [0u8; 4];
                    out.extend(c.encode_utf8(&mut buf).bytes());
                }
            }
            KeyCode::Space => out.push(if self.ctrl { 0 } else { b' ' }),
            KeyCode::Enter => out.push(b'\r'),
            KeyCode::Escape => out.push(0x1b),
            KeyCode::Tab => {
                if self.shift {
                    out.extend(b"\x1b[Z")
                } else {
                    out.push(b'\t')
                }
            }
            KeyCode::BackTab => out.extend(b"\x1b[Z"),
            KeyCode::Backspace => out.push(if self.ctrl { 0x08 } else { 0x7f }),
            KeyCode::Up => csi(&mut out, "", 'A'),
            KeyCode::Down => csi(&mut out, "", 'B'),
            KeyCode::Right => csi(&mut out, "", 'C'),
            KeyCode::Left => csi(&mut out, "", 'D'),
            KeyCode::Home => csi(&mut out, "", 'H'),
            KeyCode::End => csi(&mut out, "", 'F'),
            KeyCode::Insert => csi(&mut out, "2", '~'),
            KeyCode::Delete => csi(&mut out, "3", '~'),
            KeyCode::PageUp => csi(&mut out, "5", '~'),
            KeyCode::PageDown => csi(&mut out, "6", '~'),
            KeyCode::F(n) => match n {
                1..=4 if csi_mod == 1 => {
                    out.extend(b"\x1bO");
                    out.push(b'P' + (n - 1));
                }
                1..=4 => csi(&mut out, "", (b'P' + (n - 1)) as char),
                _ => {
                    let code = match n {
                        5 => "15",
                        6 => "17",
                        7 => "18",
                        8 => "19",
                        9 => "20",
                        10 => "21",
                        11 => "23",
                        _ => "24",
                    };
                    csi(&mut out, code, '~');
                }
            },
        }
        out
    }
}

fn named(name: &str) -> Option<KeyCode> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "enter" | "return" | "cr" | "ret" => KeyCode::Enter,
        "escape" | "esc" => KeyCode::Escape,
        "tab" => KeyCode::Tab,
        "btab" | "backtab" => KeyCode::BackTab,
        "bspace" | "backspace" | "bs" => KeyCode::Backspace,
        "dc" | "delete" | "del" => KeyCode::Delete,
        "ic" | "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" | "ppage" => KeyCode::PageUp,
        "pagedown" | "pgdn" | "npage" | "pagedn" => KeyCode::PageDown,
        "space" | "spc" => KeyCode::Space,
        _ => {
            let num = n.strip_prefix('f')?.parse::<u8>().ok()?;
            if (1..=12).contains(&num) {
                KeyCode::F(num)
            } else {
                return None;
            }
        }
    })
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(input: &str) -> Result<Key, Error> {
        let bad = |reason: &str| Error::InvalidKey {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("empty key"));
        }
        let mut key = Key::plain(KeyCode::Space);
        let mut rest = input;
        // Caret notation: ^C.
        if let Some(r) = rest.strip_prefix('^')
            && r.chars().count() == 1
        {
            key.ctrl = true;
            rest = r;
        }
        // Modifier prefixes: C- M- S- Ctrl+ Alt+ Shift+ Meta- (any case, '-' or '+').
        loop {
            let lower = rest.to_ascii_lowercase();
            let mut matched = false;
            for (prefix, which) in [
                ("ctrl", 'c'),
                ("control", 'c'),
                ("alt", 'm'),
                ("meta", 'm'),
                ("shift", 's'),
                ("c", 'c'),
                ("m", 'm'),
                ("s", 's'),
            ] {
                for sep in ['-', '+'] {
                    let p = format!("{prefix}{sep}");
                    if lower.starts_with(&p) && rest.len() > p.len() {
                        match which {
                            'c' => key.ctrl = true,
                            'm' => key.alt = true,
                            _ => key.shift = true,
                        }
                        rest = &rest[p.len()..];
                        matched = true;
                        break;
                    }
                }
                if matched {
                    break;
                }
            }
            if !matched {
                break;
            }
        }
        let mut chars = rest.chars();
        key.code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if key.ctrl && c.is_ascii_alphabetic() {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else if c == ' ' {
                    KeyCode::Space
                } else if c.is_control() {
                    return Err(bad("a control character; use a named key such as Enter or C-c"));
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => named(rest).ok_or_else(|| {
                bad("unknown key name (try C-c, Enter, Escape, Tab, BSpace, Up, Home, PageUp, F1, Space)")
            })?,
        };
        Ok(key)
    }
}

impl fmt::Display for Key {
    /// tmux's spelling: `C-c`, `M-x`, `S-Up`, `Enter`, `BSpace`, `PPage`, `F5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("C-")?;
        }
        if self.alt {
            f.write_str("M-")?;
        }
        if self.shift {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Escape => f.write_str("Escape"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("BTab"),
            KeyCode::Backspace => f.write_str("BSpace"),
            KeyCode::Delete => f.write_str("DC"),
            KeyCode::Insert => f.write_str("IC"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PPage"),
            KeyCode::PageDown => f.write_str("NPage"),
            KeyCode::Space => f.write_str("Space"),
            KeyCode::F(n) => write!(f, "F{n}"),
        }
    }
}

/// `keys` cut after each signal key ([`Key::signal_echo`]): a backend sends one segment, and
/// when it ends with a signal key, waits until the pane has answered before the next.
pub fn signal_segments(keys: &[Key]) -> Vec<&[Key]> {
    let mut out = Vec::new();
    let mut rest = keys;
    while !rest.is_empty() {
        let cut = rest
            .iter()
            .position(|k| k.signal_echo().is_some())
            .map_or(rest.len(), |i| i + 1);
        let (now, later) = rest.split_at(cut);
        out.push(now);
        rest = later;
    }
    out
}

/// How long a backend waits, at most, for a pane to answer a signal key before it types on.
pub const SIGNAL_SETTLE: std::time::Duration = std::time::Duration::from_millis(600);

/// The moment without output that ends a backend's wait after a signal key's answer (a line
/// editor prints the echo, resets the terminal and draws a new prompt; input typed meanwhile can
/// be lost too).
pub const SIGNAL_QUIET: std::time::Duration = std::time::Duration::from_millis(25);

/// How long a backend that sees output after a signal key but not its echo waits for the echo
/// (a full-screen program echoes nothing: no signal, nothing dropped).
pub const SIGNAL_ECHO_GRACE: std::time::Duration = std::time::Duration::from_millis(150);

#[cfg(test)]
mod tests {
    #[test]
    fn signal_keys_are_the_ones_the_terminal_turns_into_signals() {
        let key = |s: &str| s.parse::<Key>().expect("a key");
        for (k, echo) in [
            ("C-c", &b"^C"[..]),
            ("M-C-c", b"^C"),
            ("C-\\", b"^\\"),
            ("C-z", b"^Z"),
        ] {
            assert_eq!(key(k).signal_echo(), Some(echo), "{k}");
        }
        for k in ["c", "C-d", "M-c", "Enter", "Escape", "F3", "Up"] {
            assert_eq!(key(k).signal_echo(), None, "{k}");
        }
        let keys: Vec<Key> = ["a", "C-c", "b", "c", "C-z"]
            .iter()
            .map(|k| key(k))
            .collect();
        let cut: Vec<usize> = signal_segments(&keys).iter().map(|s| s.len()).collect();
        assert_eq!(cut, [2, 3]);
        assert!(signal_segments(&[]).is_empty());
    }

    use super::*;

    fn k(s: &str) -> Key {
        s.parse().unwrap()
    }

    #[test]
    fn control_spellings_agree() {
        for s in ["C-c", "^C", "Ctrl+C", "ctrl-c", "CTRL+c", "control-c"] {
            assert_eq!(k(s), Key::ctrl('c'), "{s}");
            assert_eq!(k(s).to_bytes(), vec![3], "{s}");
            assert_eq!(k(s).to_string(), "C-c");
        }
    }

    #[test]
    fn named_keys_parse_case_insensitively() {
        assert_eq!(k("enter").code, KeyCode::Enter);
        assert_eq!(k("Return").code, KeyCode::Enter);
        assert_eq!(k("ESC").code, KeyCode::Escape);
        assert_eq!(k("BSpace").code, KeyCode::Backspace);
        assert_eq!(k("PgUp").code, KeyCode::PageUp);
        assert_eq!(k("NPage").code, KeyCode::PageDown);
        assert_eq!(k("F12").code, KeyCode::F(12));
        assert_eq!(k("space").code, KeyCode::Space);
        assert_eq!(
            k("M-x"),
            Key {
                code: KeyCode::Char('x'),
                ctrl: false,
                alt: true,
                shift: false
            }
        );
        assert_eq!(k("Alt+x").to_bytes(), b"\x1bx".to_vec());
        assert_eq!(k("S-Up").to_string(), "S-Up");
        assert_eq!(k("-").code, KeyCode::Char('-'));
        assert_eq!(k("C").code, KeyCode::Char('C'));
    }

    #[test]
    fn bad_keys_are_errors() {
        for s in ["", "F13", "F0", "Enterr", "C-", "\n"] {
            assert!(s.parse::<Key>().is_err(), "{s:?}");
        }
    }

    #[test]
    fn bytes_follow_xterm() {
        assert_eq!(k("Enter").to_bytes(), b"\r");
        assert_eq!(k("Up").to_bytes(), b"\x1b[A");
        assert_eq!(k("C-Up").to_bytes(), b"\x1b[1;5A");
        assert_eq!(k("S-a").to_bytes(), b"A");
        assert_eq!(k("M-S-x").to_bytes(), b"\x1bX");
        assert_eq!(k("F1").to_bytes(), b"\x1bOP");
        assert_eq!(k("F5").to_bytes(), b"\x1b[15~");
        assert_eq!(k("BSpace").to_bytes(), b"\x7f");
        assert_eq!(k("DC").to_bytes(), b"\x1b[3~");
    }
}
