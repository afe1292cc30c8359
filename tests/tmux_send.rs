//! Sending to tmux panes: hostile texts arrive byte for byte, keys arrive as keys.
//!
//! Exactness is checked with a raw-mode sink (see `raw_sink`): the pane runs
//! `stty raw -echo; exec cat > FILE`, so FILE holds exactly the bytes tmux wrote into the pane, with
//! no line discipline in between (canonical mode would cap lines at 4096 bytes, turn CR into NL and
//! act on ^C, ^D, ^U, ^W, ^V and DEL).

use termloom_core::{CaptureOpts, Key, KeyCode, ReadRange, SendOpts, Terminal};
use termloom_tests::TmuxServer;

use crate::tmux_backend::{
    display, drain_sink, new_session, raw_sink, wait_command, wait_line, wait_prompt,
};

/// Deterministic pseudo-random text: printable ASCII with the characters tmux or a shell might
/// treat specially, tabs, newlines, `;` at line ends, and multi-byte UTF-8.
fn mixed_text(bytes: usize, newlines: bool) -> String {
    let alphabet: Vec<char> = "abcXYZ019 ;;$`\\'\"{}#%~&|<>()*?!-_=+.,:\té日✓🎉"
        .chars()
        .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut s = String::new();
    while s.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if newlines && x.is_multiple_of(61) {
            s.push_str(";\n");
        } else {
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
    }
    s
}

#[tokio::test]
async fn hostile_texts_arrive_byte_for_byte() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "sink").await;
    let file = raw_sink(&srv, s.as_ref(), "texts").await;
    let big = mixed_text(100 * 1024, true);
    let one_long_line = mixed_text(100 * 1024, false);
    let at_limit = mixed_text(4096, false);
    let cases: Vec<(&str, String)> = vec![
        ("quotes", r#"it's "double" and 'single'"#.into()),
        ("dollar", "$HOME ${PATH} $(id) $((1+2)) $'\\n'".into()),
        ("semicolon inside", "a;b ; c".into()),
        ("ends with a semicolon", "echo hi;".into()),
        ("just a semicolon", ";".into()),
        ("two semicolons", ";;".into()),
        ("escaped semicolon", "\\;".into()),
        ("ends with escaped semicolon", "x\\;".into()),
        ("ends with a backslash", "back\\slash\\".into()),
        ("backticks", "`id` and `uname -a`".into()),
        ("tabs", "col1\tcol2\t\tend\t".into()),
        ("newlines", "line 1\nline 2\n\nline 4\n".into()),
        ("crlf", "dos\r\nline\r\n".into()),
        ("unicode", "日本語 ✓ émoji 🎉 ZWJ 👩‍💻 combining é".into()),
        ("dash first", "-l -- --".into()),
        ("tmux format", "#{pane_id} #[fg=red] ## #(id)".into()),
        ("tmux key names", "Enter C-c Escape".into()),
        ("tilde and braces", "~ {} { } ~/x".into()),
        (
            "control characters",
            "esc\x1b[31m del\x7f eot\x04 bel\x07".into(),
        ),
        ("4096 bytes", at_limit),
        ("100 KiB single line", one_long_line),
        ("100 KiB", big),
    ];
    let mut offset = 0;
    for (i, (label, text)) in cases.iter().enumerate() {
        s.send_text(text, SendOpts { enter: false })
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let sentinel = format!("<<end {i}>>");
        let got = drain_sink(s.as_ref(), &file, offset, &sentinel).await;
        offset += got.len() + sentinel.len();
        if got != text.as_bytes() {
            let at = got
                .iter()
                .zip(text.as_bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(text.len()));
            panic!(
                "{label}: {} bytes sent, {} received; first difference at byte {at}: sent {:?}, got {:?}",
                text.len(),
                got.len(),
                String::from_utf8_lossy(&text.as_bytes()[at..(at + 20).min(text.len())]),
                String::from_utf8_lossy(&got[at..(at + 20).min(got.len())]),
            );
        }
    }
    // With Enter, the text is followed by exactly one Enter key (CR).
    for (i, text) in ["short;", "multi\nline"].iter().enumerate() {
        s.send_text(text, SendOpts { enter: true }).await.unwrap();
        let sentinel = format!("<<enter {i}>>");
        let got = drain_sink(s.as_ref(), &file, offset, &sentinel).await;
        offset += got.len() + sentinel.len();
        assert_eq!(got, format!("{text}\r").as_bytes(), "{text:?}");
    }
    // Empty text with Enter is just the key; a NUL byte is refused before anything is sent.
    s.send_text("", SendOpts { enter: true }).await.unwrap();
    assert!(matches!(
        s.send_text("nul\0byte", SendOpts { enter: false }).await,
        Err(termloom_core::Error::InvalidArgument(_))
    ));
    let got = drain_sink(s.as_ref(), &file, offset, "<<last>>").await;
    assert_eq!(got, b"\r");
}

#[tokio::test]
async fn text_and_keys_reach_a_pane_left_in_copy_mode() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (info, s) = new_session(&t, "w", "scrolled").await;
    let file = raw_sink(&srv, s.as_ref(), "mode").await;
    let pane = info.native.id.as_str();
    // A person scrolled back (copy mode): tmux would hand typed keys to copy mode.
    srv.tmux(&["copy-mode", "-t", pane]);
    assert_eq!(display(&srv, pane, "#{pane_in_mode}"), "1");
    s.send_text("typed", SendOpts { enter: true })
        .await
        .unwrap();
    srv.tmux(&["copy-mode", "-t", pane]);
    s.send_keys(&["C-c".parse().unwrap(), "x".parse().unwrap()])
        .await
        .unwrap();
    let got = drain_sink(s.as_ref(), &file, 0, "<<end>>").await;
    assert_eq!(got, b"typed\r\x03x");
    assert_eq!(display(&srv, pane, "#{pane_in_mode}"), "0");
}

#[tokio::test]
async fn nothing_is_typed_while_tmux_would_copy_it_to_the_other_panes_of_the_window() {
    // synchronize-panes makes tmux type every key into every pane of the window: a run or a
    // send meant for one session ran in all of them.
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (info, a) = new_session(&t, "w", "a").await;
    let b_info = a
        .split(&termloom_core::SplitSpec {
            direction: termloom_core::Direction::Vertical,
            percent: None,
            name: Some("b".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    let b = t.open(&b_info).await.unwrap();
    let sink = raw_sink(&srv, b.as_ref(), "other").await;
    wait_prompt(a.as_ref()).await;
    srv.tmux(&[
        "set-option",
        "-w",
        "-t",
        &info.native.id,
        "synchronize-panes",
        "on",
    ]);
    let e = a
        .send_text("echo typed-for-a", SendOpts::default())
        .await
        .expect_err("send is refused");
    assert!(e.to_string().contains("synchronize-panes"), "{e}");
    let e = a
        .send_keys(&["C-c".parse().unwrap()])
        .await
        .expect_err("keys are refused");
    assert!(e.to_string().contains("synchronize-panes"), "{e}");
    let e = a
        .run(&termloom_core::RunOpts::new("echo ran-for-a"))
        .await
        .expect_err("a run is refused");
    assert!(e.to_string().contains("synchronize-panes"), "{e}");
    srv.tmux(&[
        "set-option",
        "-w",
        "-t",
        &info.native.id,
        "synchronize-panes",
        "off",
    ]);
    // Nothing reached the other pane; typing works again once it is off.
    assert_eq!(drain_sink(b.as_ref(), &sink, 0, "<<end>>").await, b"");
    a.send_text("echo typed-for-a", SendOpts::default())
        .await
        .unwrap();
    wait_line(a.as_ref(), "typed-for-a").await;
}

/// The input guard (one `if-shell -F` comparison per input) against option values a person or
/// another tool could set by hand, each one character or one separator away from what the guard
/// expects: only the exact state lets text through, and every refusal is one that sends the
/// caller back to a fresh listing (`Loom::hint_failed`).
#[tokio::test]
async fn the_input_guard_types_only_when_the_pane_is_exactly_as_expected() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (info, s) = new_session(&t, "w", "guarded").await;
    let file = raw_sink(&srv, s.as_ref(), "guard").await;
    let pane = info.native.id.as_str();
    let id = info.id.to_string();
    let set = |opt: &str, v: Option<&str>| match v {
        Some(v) => srv.tmux(&["set-option", "-p", "-t", pane, opt, v]),
        None => srv.tmux(&["set-option", "-p", "-u", "-t", pane, opt]),
    };
    /// One state of the pane's options, and whether input may go through.
    struct Case {
        label: &'static str,
        tag: Option<String>,
        managed: Option<String>,
        managed_only: bool,
        /// `@termloom_name` on the pane (as stored), and the name the handle is opened for.
        name: Option<String>,
        named: Option<&'static str>,
        typed: bool,
        /// Reads need the identity only (id, and the name for a named handle), not managed.
        reads: bool,
    }
    let case = |label, tag: Option<&str>, managed: Option<&str>, managed_only, typed| Case {
        label,
        tag: tag.map(str::to_string),
        managed: managed.map(str::to_string),
        managed_only,
        name: Some("guarded".into()),
        named: None,
        typed,
        reads: tag == Some(id.as_str()),
    };
    let named = |label, tag: Option<&str>, name: Option<&str>, named, typed| Case {
        label,
        tag: tag.map(str::to_string),
        managed: Some("1".into()),
        managed_only: true,
        name: name.map(str::to_string),
        named: Some(named),
        typed,
        reads: typed,
    };
    let (tail, short) = (format!("{id}/"), &id[..35]);
    let (moved, glued) = (format!("1/{id}"), format!("1{id}"));
    // Every character tmux's format parser treats specially, in a name.
    const ODD: &str = "a,b}#c{d/e #{x} ## #[fg=red] $;'\"é";
    let id_and_part = format!("{id}\u{1f}gu");
    let cases = [
        case("exact, managed", Some(&id), Some("1"), true, true),
        case("exact, not asked", Some(&id), None, false, true),
        case("id with a tail", Some(&tail), Some("1"), false, false),
        case("id cut short", Some(short), Some("1"), false, false),
        case("no id", None, Some("1"), false, false),
        case("managed missing", Some(&id), None, true, false),
        case("managed 0", Some(&id), Some("0"), true, false),
        case("managed spelled on", Some(&id), Some("1/"), true, false),
        case("id moved into managed", None, Some(&moved), true, false),
        case("id glued to managed", None, Some(&glued), true, false),
        named("named, exact", Some(&id), Some("guarded"), "guarded", true),
        named(
            "named, renamed",
            Some(&id),
            Some("guarded2"),
            "guarded",
            false,
        ),
        named(
            "named, cut short",
            Some(&id),
            Some("guarde"),
            "guarded",
            false,
        ),
        named("named, no name", Some(&id), None, "guarded", false),
        named("named, odd characters", Some(&id), Some(ODD), ODD, true),
        named("named, odd but one", Some(&id), Some(&ODD[1..]), ODD, false),
        named(
            "named, id glued to the name",
            Some(&id_and_part),
            Some("arded"),
            "guarded",
            false,
        ),
    ];
    let mut want = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        set("@termloom_id", c.tag.as_deref());
        set("@termloom_managed", c.managed.as_deref());
        set("@termloom_name", c.name.as_deref());
        let h = t
            .open_hinted(info.id, &info.native, c.managed_only, c.named)
            .await
            .unwrap()
            .expect("a tmux pane id gives a hinted handle");
        let text = format!("<{i}>");
        let r = h.send_text(&text, SendOpts { enter: false }).await;
        if c.typed {
            r.unwrap_or_else(|e| panic!("{}: refused: {e}", c.label));
            want.extend_from_slice(text.as_bytes());
        } else {
            let e = r.expect_err(c.label);
            assert!(termloom_core::Loom::hint_failed(&e), "{}: {e:?}", c.label);
        }
        // Reads check the same way (in Rust, from what tmux printed).
        let read = h
            .capture(&CaptureOpts {
                range: ReadRange::Tail(5),
                ..CaptureOpts::default()
            })
            .await;
        match read {
            Ok(_) => assert!(c.reads, "{}: read went through", c.label),
            Err(e) => assert!(
                !c.reads && termloom_core::Loom::hint_failed(&e),
                "{}: read refused: {e:?}",
                c.label
            ),
        }
    }
    set("@termloom_id", Some(&id));
    set("@termloom_managed", Some("1"));
    set("@termloom_name", Some("guarded"));
    assert_eq!(drain_sink(s.as_ref(), &file, 0, "<<end>>").await, want);
}

#[tokio::test]
async fn multi_line_text_runs_each_line_in_a_shell() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "sh").await;
    wait_prompt(s.as_ref()).await;
    s.send_text(
        "echo \"one-$((1))\"\necho 'two;'\"$((2))\" ;",
        SendOpts::default(),
    )
    .await
    .unwrap();
    wait_line(s.as_ref(), "one-1").await;
    wait_line(s.as_ref(), "two;2").await;
}

#[tokio::test]
async fn ctrl_c_interrupts_a_running_command() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (info, s) = new_session(&t, "w", "int").await;
    s.send_text("sleep 100", SendOpts::default()).await.unwrap();
    wait_command(&srv, &info.native.id, "sleep").await;
    s.send_keys(&["C-c".parse::<Key>().unwrap()]).await.unwrap();
    wait_command(&srv, &info.native.id, "bash").await;
    s.send_text("echo \"rc=$?\"", SendOpts::default())
        .await
        .unwrap();
    wait_line(s.as_ref(), "rc=130").await;
}

#[tokio::test]
async fn input_right_after_ctrl_c_is_not_dropped() {
    // The terminal drops the input queued behind a C-c when it raises SIGINT; keys and text that
    // follow one (in the same call, or in the next one at once) must still arrive.
    let srv = TmuxServer::start();
    for control in [false, true] {
        let t = termloom_tmux::TmuxTerminal::new(termloom_tmux::TmuxOptions {
            control,
            ..srv.options()
        });
        let (_, s) = new_session(&t, &format!("w{control}"), &format!("c{control}")).await;
        for i in 0..3 {
            // C-c at a prompt the line editor is reading. (A C-c that reaches bash between
            // commands, while it runs its prompt hooks, is acted on when the editor starts,
            // and what was typed meanwhile goes with it: nothing on the screen tells.)
            wait_prompt(s.as_ref()).await;
            s.send_text("echo never", SendOpts { enter: false })
                .await
                .unwrap();
            let mut keys = vec![Key::ctrl('c')];
            keys.extend(
                format!("echo same-{i}")
                    .chars()
                    .map(|c| Key::plain(KeyCode::Char(c))),
            );
            keys.push(Key::plain(KeyCode::Enter));
            s.send_keys(&keys).await.unwrap();
            wait_line(s.as_ref(), &format!("same-{i}")).await;
            wait_prompt(s.as_ref()).await;
            s.send_keys(&[Key::ctrl('c')]).await.unwrap();
            s.send_text(&format!("echo next-{i}"), SendOpts::default())
                .await
                .unwrap();
            wait_line(s.as_ref(), &format!("next-{i}")).await;
        }
        let text = s.capture(&CaptureOpts::default()).await.unwrap().text;
        assert!(
            !text.lines().any(|l| l == "never"),
            "control={control}: {text}"
        );
    }
}

#[tokio::test]
async fn keys_after_a_ctrl_c_that_ends_the_pane_are_not_an_error() {
    // C-c ends the pane's only program (remain-on-exit keeps the pane, dead): the call did what
    // it was asked; the keys after it have nothing to go to.
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (info, s) = new_session(&t, "w", "ends").await;
    let pane = info.native.id.clone();
    srv.tmux(&["set-option", "-p", "-t", &pane, "remain-on-exit", "on"]);
    s.send_text("exec sleep 100", SendOpts::default())
        .await
        .unwrap();
    wait_command(&srv, &pane, "sleep").await;
    s.send_keys(&[Key::ctrl('c'), Key::plain(KeyCode::Char('q'))])
        .await
        .expect("the C-c went; the rest had no program to reach");
    assert_eq!(display(&srv, &pane, "#{pane_dead}"), "1");
    // A call that sends nothing is still refused.
    let e = s
        .send_keys(&[Key::ctrl('c')])
        .await
        .expect_err("a dead pane takes no input");
    assert!(e.to_string().contains("dead pane"), "{e}");
}

#[tokio::test]
async fn named_keys_are_sent_as_keys_not_letters() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "keys").await;
    let file = raw_sink(&srv, s.as_ref(), "keys").await;
    let table: &[(&str, &[u8])] = &[
        ("Escape", b"\x1b"),
        ("Enter", b"\r"),
        ("Tab", b"\t"),
        ("S-Tab", b"\x1b[Z"),
        ("BSpace", b"\x7f"),
        ("Up", b"\x1b[A"),
        ("Down", b"\x1b[B"),
        ("Right", b"\x1b[C"),
        ("Left", b"\x1b[D"),
        ("C-Up", b"\x1b[1;5A"),
        ("Home", b"\x1b[1~"),
        ("End", b"\x1b[4~"),
        ("PageUp", b"\x1b[5~"),
        ("PageDown", b"\x1b[6~"),
        ("Delete", b"\x1b[3~"),
        ("Insert", b"\x1b[2~"),
        ("F1", b"\x1bOP"),
        ("F5", b"\x1b[15~"),
        ("F12", b"\x1b[24~"),
        ("C-c", b"\x03"),
        ("^D", b"\x04"),
        ("Ctrl+A", b"\x01"),
        ("M-x", b"\x1bx"),
        ("Space", b" "),
        (";", b";"),
        ("x", b"x"),
    ];
    let mut offset = 0;
    for (i, (name, want)) in table.iter().enumerate() {
        let key: Key = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        s.send_keys(&[key])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let sentinel = format!("<<{i}>>");
        let got = drain_sink(s.as_ref(), &file, offset, &sentinel).await;
        offset += got.len() + sentinel.len();
        assert_eq!(got, *want, "{name}");
    }
    // Several keys in one call arrive in order.
    let keys = [
        Key::plain(KeyCode::Char('a')),
        Key::ctrl('c'),
        Key::plain(KeyCode::Enter),
        Key::plain(KeyCode::Char(';')),
    ];
    s.send_keys(&keys).await.unwrap();
    let got = drain_sink(s.as_ref(), &file, offset, "<<many>>").await;
    assert_eq!(got, b"a\x03\r;");
}

#[tokio::test]
async fn no_key_with_any_modifiers_is_typed_as_its_name_or_dropped() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "matrix").await;
    let file = raw_sink(&srv, s.as_ref(), "matrix").await;
    let codes = [
        KeyCode::Enter,
        KeyCode::Escape,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Backspace,
        KeyCode::Delete,
        KeyCode::Insert,
        KeyCode::Up,
        KeyCode::Left,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Space,
        KeyCode::F(1),
        KeyCode::F(12),
        KeyCode::Char('a'),
        KeyCode::Char(';'),
        KeyCode::Char('1'),
        KeyCode::Char('é'),
    ];
    let mut keys = Vec::new();
    for code in codes {
        for m in 0..8u8 {
            keys.push(Key {
                code,
                ctrl: m & 1 != 0,
                alt: m & 2 != 0,
                shift: m & 4 != 0,
            });
        }
    }
    // Each key is followed by a marker, all sent at once; then the file is split at the markers.
    for (i, k) in keys.iter().enumerate() {
        s.send_keys(&[*k])
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        s.send_text(&format!("<{i}>"), SendOpts { enter: false })
            .await
            .unwrap();
    }
    let all = drain_sink(s.as_ref(), &file, 0, "<<done>>").await;
    let mut rest = all.as_slice();
    for (i, k) in keys.iter().enumerate() {
        let marker = format!("<{i}>");
        let at = rest
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .unwrap_or_else(|| panic!("marker after {k} missing"));
        let got = &rest[..at];
        rest = &rest[at + marker.len()..];
        assert!(!got.is_empty(), "{k} was dropped");
        let name = k.to_string();
        if name.chars().count() > 1 {
            let text = String::from_utf8_lossy(got);
            assert!(!text.contains(&name), "{k} was typed as its name: {text:?}");
            assert!(
                !got.iter().any(|b| b.is_ascii_alphabetic()) || got.len() <= 3 || got[0] == 0x1b,
                "{k} arrived as text: {text:?}"
            );
        }
    }
}

#[tokio::test]
async fn arrow_keys_edit_the_command_line() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "edit").await;
    wait_prompt(s.as_ref()).await;
    let key = |k: &str| k.parse::<Key>().unwrap();
    s.send_text("echo ab-c", SendOpts { enter: false })
        .await
        .unwrap();
    s.send_keys(&[key("Left"), key("Left")]).await.unwrap();
    s.send_text("X", SendOpts { enter: false }).await.unwrap();
    s.send_keys(&[key("Enter")]).await.unwrap();
    wait_line(s.as_ref(), "abX-c").await;
    wait_prompt(s.as_ref()).await;
    // Up recalls the last command; C-u kills what was typed before it.
    s.send_text("garbage", SendOpts { enter: false })
        .await
        .unwrap();
    s.send_keys(&[key("C-u"), key("Up"), key("BSpace")])
        .await
        .unwrap();
    s.send_text("Z", SendOpts { enter: true }).await.unwrap();
    let text = wait_line(s.as_ref(), "abX-Z").await;
    assert!(!text.contains("garbage"), "{text}");
}
