//! tmux's command language as termloom writes it, shared by the two backends that speak it: the
//! tmux backend, and the iTerm2 backend when it drives a tmux server through iTerm2's `tmux -CC`
//! integration. No I/O here, only text: how one argument is quoted for tmux's command parser, and
//! how a value stored in a tmux user option is encoded so that it reads back exactly.
//!
//! It is its own crate because backends never depend on each other and core knows no tmux syntax.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

/// Quotes one argv element for tmux's command parser (control mode and `-CC` send text lines, not
/// argv).
///
/// Plain words pass as they are; anything else is double-quoted with `\`, `"`, `$` and `~` escaped
/// and control characters written as octal escapes, so no byte of the argument is interpreted. A
/// word starting with `%` is quoted too (a bare `%3` is fine for tmux, but `%if` and friends are
/// parser directives).
pub fn quote(arg: &str) -> String {
    let mut out = String::new();
    quote_into(&mut out, arg);
    out
}

/// [`quote`], appended to `out` (no allocation of its own: command lines are built from many
/// words, on every call).
pub fn quote_into(out: &mut String, arg: &str) {
    if is_plain(arg) {
        out.push_str(arg);
        return;
    }
    out.reserve(arg.len() + 2);
    out.push('"');
    // Every byte that needs escaping is ASCII, so the runs between them are whole characters.
    let mut run = 0;
    for (i, b) in arg.bytes().enumerate() {
        let escape: &str = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'$' => "\\$",
            b'~' => "\\~",
            b if b < 0x20 || b == 0x7f => "",
            _ => continue,
        };
        out.push_str(&arg[run..i]);
        run = i + 1;
        if escape.is_empty() {
            out.push('\\');
            out.push(char::from(b'0' + (b >> 6)));
            out.push(char::from(b'0' + ((b >> 3) & 7)));
            out.push(char::from(b'0' + (b & 7)));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&arg[run..]);
    out.push('"');
}

/// The length of [`quote`]`(arg)`, without building it (to decide how to send a text before
/// quoting it where it goes).
pub fn quoted_len(arg: &str) -> usize {
    if is_plain(arg) {
        return arg.len();
    }
    let inner: usize = arg
        .chars()
        .map(|c| match c {
            '\\' | '"' | '$' | '~' => 2,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => 4,
            c => c.len_utf8(),
        })
        .sum();
    inner + 2
}

/// A word [`quote`] leaves as it is.
fn is_plain(arg: &str) -> bool {
    !arg.is_empty()
        && !arg.starts_with('%')
        && arg.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'%' | b'@' | b'/' | b'.' | b',' | b'=' | b'+' | b':'
                )
        })
}

/// Percent-encodes a user-option value down to characters tmux prints as they are
/// (`show-options` quotes anything else), so a value of any text reads back exactly.
pub fn encode_tag(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b',' | b'/' | b':' | b'@' | b'+' | b'='
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_tag`] (and undoes tmux's quoting, should it quote anyway). Malformed escapes
/// are kept as they are.
pub fn decode_tag(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    termloom_core::text::percent_decode(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_leaves_plain_words_and_escapes_the_rest() {
        assert_eq!(quote("send-keys"), "send-keys");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("$HOME\n"), "\"\\$HOME\\012\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("%3"), "\"%3\"");
        assert_eq!(quote("a b$#"), "\"a b\\$#\"");
        assert_eq!(quote("~/x\\\"\x7f"), "\"\\~/x\\\\\\\"\\177\"");
        // Characters beyond ASCII pass through whole, between escapes.
        assert_eq!(quote("é$\u{1f}ü"), "\"é\\$\\037ü\"");
        let mut line = String::from("x ");
        quote_into(&mut line, "a b");
        assert_eq!(line, "x \"a b\"");
    }

    #[test]
    fn quoted_len_is_the_length_of_the_quoted_word() {
        for w in [
            "send-keys",
            "%3",
            "",
            "a b",
            "$HOME\n\t\x01\x7f",
            "~/x\\\"",
            "é ✓ 日本 ; #{x}",
            "-l",
        ] {
            assert_eq!(quoted_len(w), quote(w).len(), "{w:?}");
        }
    }

    #[test]
    fn tags_read_back_exactly_and_print_plain() {
        for v in [
            "plain",
            "a b",
            "100%",
            "new\nline",
            "quote\"s and $vars;",
            "é ✓ 日本",
            "%41",
            "",
        ] {
            let e = encode_tag(v);
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
                "{e:?}"
            );
            assert_eq!(decode_tag(&e), v);
            assert_eq!(decode_tag(&format!("\"{e}\"")), v);
        }
    }
}
