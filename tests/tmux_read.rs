//! Reading tmux panes: tail, absolute line ranges, the screen, ANSI, wrapped lines, caps, cursors
//! and search.

use termloom_core::{CaptureOpts, Error, ReadRange, SearchOpts, SendOpts, Session};
use termloom_tests::{TmuxServer, wait_until};

use crate::tmux_backend::{everything, new_session, tail, wait_line, wait_prompt};

async fn run(s: &dyn Session, cmd: &str, last_line: &str) {
    s.send_text(cmd, SendOpts::default()).await.unwrap();
    wait_line(s, last_line).await;
    wait_prompt(s).await;
}

#[tokio::test]
async fn tail_lines_and_screen_reads_trim_trailing_blanks_and_number_lines() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "r").await;
    run(s.as_ref(), "seq 1 100", "100").await;

    let c = s.capture(&tail(5)).await.unwrap();
    assert_eq!(c.text, "97\n98\n99\n100\n$");
    assert!(!c.truncated && c.note.is_none());
    let hist: u64 = crate::tmux_backend::display(&srv, &s.native().id, "#{history_size}")
        .parse()
        .unwrap();
    assert_eq!(c.total_lines, hist + 24);

    // Absolute numbers agree between a tail and a range read.
    let r = s
        .capture(&CaptureOpts {
            range: ReadRange::Lines {
                from: c.first_line,
                to: c.first_line + 3,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.text, "97\n98\n99\n100");
    assert_eq!(r.first_line, c.first_line);
    let all = s.capture(&everything()).await.unwrap();
    let idx = all.text.lines().position(|l| l == "50").unwrap() as u64;
    let r = s
        .capture(&CaptureOpts {
            range: ReadRange::Lines {
                from: idx,
                to: idx + 2,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((r.text.as_str(), r.first_line), ("50\n51\n52", idx));
    // Past the end: nothing, and a note saying so; backwards ranges are refused.
    let past = s
        .capture(&CaptureOpts {
            range: ReadRange::Lines {
                from: 1_000_000,
                to: 1_000_010,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(past.text.is_empty() && past.note.is_some());
    assert!(matches!(
        s.capture(&CaptureOpts {
            range: ReadRange::Lines { from: 5, to: 1 },
            ..Default::default()
        })
        .await,
        Err(Error::InvalidArgument(_))
    ));

    // The screen: what is visible, trailing blank rows trimmed.
    let screen = s
        .capture(&CaptureOpts {
            range: ReadRange::Screen,
            ..Default::default()
        })
        .await
        .unwrap();
    let lines: Vec<&str> = screen.text.lines().collect();
    assert_eq!(lines.len(), 24, "{:?}", screen.text);
    assert_eq!(lines.last(), Some(&"$"));
    assert_eq!(lines[22], "100");
    assert_eq!(screen.first_line, hist);

    // A fresh pane: a lone prompt, not 23 blank lines after it.
    let (_, fresh) = new_session(&t, "w", "fresh").await;
    wait_prompt(fresh.as_ref()).await;
    for opts in [tail(50), everything(), CaptureOpts::default()] {
        assert_eq!(fresh.capture(&opts).await.unwrap().text, "$");
    }
}

#[tokio::test]
async fn ansi_is_kept_only_when_asked() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "c").await;
    run(
        s.as_ref(),
        "printf '\\033[31mRED\\033[0m plain \\033[1;32mGREEN\\033[0m\\n'",
        "RED plain GREEN",
    )
    .await;
    let plain = s.capture(&tail(3)).await.unwrap();
    assert!(
        plain.text.lines().any(|l| l == "RED plain GREEN"),
        "{:?}",
        plain.text
    );
    assert!(!plain.text.contains('\x1b'), "{:?}", plain.text);
    // The output line (not the command line, which spells the escapes out).
    let line = ansi_line(s.as_ref(), "RED plain GREEN").await;
    assert!(line.contains("\x1b[31mRED"), "{line:?}");
    assert!(
        line.contains("\x1b[1m") || line.contains(";32m"),
        "{line:?}"
    );
    // A colour set on a line before the ones read still colours them (tmux writes a colour
    // only where it changes; the line that set it was read for the cursor and left out).
    run(
        s.as_ref(),
        "printf '\\033[31mRED1\\nRED2\\nRED3\\033[0m\\nplain\\n'",
        "plain",
    )
    .await;
    let red3 = ansi_line(s.as_ref(), "RED3").await;
    assert!(red3.starts_with("\x1b[31m"), "{red3:?}");
}

/// The line of the last 3, read with escape sequences, that shows `text` once they are removed.
async fn ansi_line(s: &dyn Session, text: &str) -> String {
    let ansi = s
        .capture(&CaptureOpts {
            ansi: true,
            ..tail(3)
        })
        .await
        .unwrap();
    ansi.text
        .lines()
        .find(|l| termloom_core::text::strip_ansi(l) == text)
        .unwrap_or_else(|| panic!("{text:?} in {:?}", ansi.text))
        .to_string()
}

#[tokio::test]
async fn wrapped_lines_are_joined_on_request() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "wrap").await;
    let long: String = (0..200)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    s.send_text(&format!("echo {long}"), SendOpts::default())
        .await
        .unwrap();
    // Until the output's first row and then a prompt are on the screen (right after the send,
    // the screen may still show the prompt from before the line was typed). The echoed command
    // line wraps too; the output is the row that starts the alphabet.
    let split = wait_until("the output and a prompt after it", || async {
        let c = s.capture(&everything()).await.ok()?;
        let lines: Vec<&str> = c.text.lines().collect();
        let at = lines.iter().position(|l| *l == &long[..80])?;
        (lines.last() == Some(&"$") && lines.len() > at + 3).then_some(c)
    })
    .await;
    let lines: Vec<&str> = split.text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == &long[..80])
        .unwrap_or_else(|| panic!("{:?}", split.text));
    assert_eq!(
        lines[at..at + 3],
        [&long[..80], &long[80..160], &long[160..]],
        "{:?}",
        split.text
    );
    let joined = s
        .capture(&CaptureOpts {
            join_wrapped: true,
            ..everything()
        })
        .await
        .unwrap();
    assert!(joined.text.lines().any(|l| l == long), "{:?}", joined.text);
    assert!(!joined.text.lines().any(|l| l == &long[..80]));
    // A range read that starts on the row a wrapped line continues into keeps that row, joined
    // or not (a cursor's look at the line before must not swallow it).
    let second = split.first_line + at as u64 + 1;
    let range = |join_wrapped| CaptureOpts {
        range: ReadRange::Lines {
            from: second,
            to: second + 1,
        },
        join_wrapped,
        ..Default::default()
    };
    for join in [false, true] {
        let part = s.capture(&range(join)).await.unwrap();
        assert_eq!(part.first_line, second, "{part:?}");
        assert!(
            part.text.starts_with(&long[80..160]),
            "join {join}: {part:?}"
        );
    }
    // A cursor from a joined read counts plain rows like any other: the read since returns
    // only what came after (before, it said the position was gone and returned everything).
    let joined_tail = s
        .capture(&CaptureOpts {
            range: ReadRange::Tail(3),
            join_wrapped: true,
            ..Default::default()
        })
        .await
        .unwrap();
    run(s.as_ref(), "echo after-join", "after-join").await;
    let since = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(joined_tail.cursor.clone()),
            join_wrapped: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(since.note.is_none(), "{since:?}");
    assert!(since.text.contains("after-join"), "{since:?}");
    assert!(!since.text.contains(&long), "{since:?}");
}

#[tokio::test]
async fn caps_keep_head_and_tail_and_say_what_was_left_out() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "big").await;
    run(s.as_ref(), "seq 1 3000", "3000").await;

    let full = s.capture(&everything()).await.unwrap();
    let n = full.text.lines().count();
    assert!(n > 3000 && !full.truncated, "{n}");
    assert_eq!(full.first_line, 0);

    let c = s
        .capture(&CaptureOpts {
            max_lines: Some(60),
            ..everything()
        })
        .await
        .unwrap();
    assert!(c.truncated);
    let note = c.note.clone().unwrap();
    assert!(note.contains("left out"), "{note}");
    assert_eq!(c.total_lines, full.total_lines);
    let lines: Vec<&str> = c.text.lines().collect();
    assert!(lines.len() <= 61, "{}", lines.len());
    assert!(lines.iter().any(|l| l.contains("left out")));
    // Head: the oldest lines; tail: the newest, up to the prompt.
    let full_lines: Vec<&str> = full.text.lines().collect();
    assert_eq!(lines[0], full_lines[0]);
    assert_eq!(&lines[lines.len() - 3..], ["2999", "3000", "$"]);
    // The note's numbers name the range left out; reading it returns those lines.
    let (from, to) = parse_range(&note);
    let head = lines.iter().position(|l| l.contains("left out")).unwrap() as u64;
    assert_eq!(from, head);
    assert_eq!(to as usize, n - (lines.len() - head as usize - 1) - 1);

    // The byte cap keeps the end too.
    let b = s
        .capture(&CaptureOpts {
            max_bytes: Some(500),
            ..everything()
        })
        .await
        .unwrap();
    assert!(b.truncated && b.text.len() <= 700, "{}", b.text.len());
    assert!(b.text.ends_with("3000\n$"), "{:?}", b.text);

    // A tail read is cut to its own size when the cap is smaller.
    let tc = s
        .capture(&CaptureOpts {
            max_lines: Some(10),
            ..tail(1000)
        })
        .await
        .unwrap();
    assert!(
        tc.truncated && tc.text.ends_with("3000\n$"),
        "{:?}",
        tc.text
    );
    assert_eq!(tc.text.lines().next(), Some("2002"));
}

fn parse_range(note: &str) -> (u64, u64) {
    let re = regex::Regex::new(r"lines (\d+)-(\d+) of").unwrap();
    let c = re.captures(note).unwrap_or_else(|| panic!("{note}"));
    (c[1].parse().unwrap(), c[2].parse().unwrap())
}

#[tokio::test]
async fn reads_since_a_cursor_return_only_new_lines() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "inc").await;
    run(s.as_ref(), "echo OLD-$((1))", "OLD-1").await;
    // The last line of this read is the prompt; the next command is typed onto that very line.
    let first = s.capture(&tail(10)).await.unwrap();
    assert!(first.text.ends_with("OLD-1\n$"), "{:?}", first.text);

    run(s.as_ref(), "echo NEW-$((2))", "NEW-2").await;
    let since = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(first.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(since.text, "$ echo NEW-$((2))\nNEW-2\n$", "{since:?}");
    assert!(since.note.is_none(), "{since:?}");

    // Nothing new: nothing returned, and the cursor still works afterwards.
    let none = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(since.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(none.text, "", "{none:?}");
    run(s.as_ref(), "echo THIRD-$((3))", "THIRD-3").await;
    let third = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(none.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(third.text, "$ echo THIRD-$((3))\nTHIRD-3\n$", "{third:?}");

    // Output that does not end at a prompt: a program that is still running (it waits for a
    // line of input before printing more).
    s.send_text(
        "echo A-$((1)); read -r x; echo \"B-$x\"",
        SendOpts::default(),
    )
    .await
    .unwrap();
    wait_line(s.as_ref(), "A-1").await;
    let mid = s.capture(&tail(5)).await.unwrap();
    assert!(mid.text.ends_with("A-1"), "{mid:?}");
    s.send_text("go", SendOpts::default()).await.unwrap();
    wait_line(s.as_ref(), "B-go").await;
    wait_prompt(s.as_ref()).await;
    let rest = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(mid.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.text, "go\nB-go\n$", "{rest:?}");

    // A cursor from another pane, or garbage, is refused.
    let (_, other) = new_session(&t, "w", "other").await;
    assert!(matches!(
        other
            .capture(&CaptureOpts {
                range: ReadRange::Since(first.cursor.clone()),
                ..Default::default()
            })
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.capture(&CaptureOpts {
            range: ReadRange::Since(termloom_core::Cursor("junk".into())),
            ..Default::default()
        })
        .await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn reads_since_a_cursor_say_when_its_anchor_is_gone() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "gone").await;
    run(s.as_ref(), "seq 1 50", "50").await;
    let before = s.capture(&tail(5)).await.unwrap();
    // Push the read position into the history, then drop the history.
    run(s.as_ref(), "seq 1001 1100", "1100").await;
    srv.tmux(&["clear-history", "-t", &s.native().id]);
    let after = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(before.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let note = after.note.clone().unwrap_or_default();
    assert!(note.contains("gone"), "{after:?}");
    // What is left is returned in full.
    assert!(after.text.ends_with("1100\n$"), "{after:?}");
    assert_eq!(after.first_line, 0);
}

#[tokio::test]
async fn a_one_line_read_then_clear_loses_nothing() {
    // `read --lines 1` of the prompt, then a clear of screen and scrollback and an echo: the new
    // prompt is not the old one, so the read since returns what came after the clear, not
    // nothing.
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "clear").await;
    run(s.as_ref(), "echo before", "before").await;
    let one = s.capture(&tail(1)).await.unwrap();
    assert_eq!(one.text.trim_end(), "$", "{one:?}");
    // What `clear` prints where terminfo has E3: home, erase the screen, erase the scrollback.
    run(
        s.as_ref(),
        r"printf '\033[H\033[2J\033[3J'; echo AFTER-CLEAR",
        "AFTER-CLEAR",
    )
    .await;
    let after = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(one.cursor.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(after.text.contains("AFTER-CLEAR"), "{after:?}");
}

#[tokio::test]
async fn search_gives_context_and_absolute_line_numbers() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "find").await;
    run(s.as_ref(), "seq 1 1200 | sed 's/^/row /'", "row 1200").await;
    let r = s
        .search(&SearchOpts {
            pattern: "^row (42|1042)$".into(),
            context: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.matches.len(), 2, "{r:#?}");
    assert!(!r.truncated);
    for (m, n) in r.matches.iter().zip([42, 1042]) {
        assert_eq!(m.text, format!("row {n}"));
        let before: Vec<(u64, &str)> = m.before.iter().map(|l| (l.line, l.text.as_str())).collect();
        let after: Vec<(u64, &str)> = m.after.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(
            before,
            [
                (m.line - 2, format!("row {}", n - 2).as_str()),
                (m.line - 1, format!("row {}", n - 1).as_str())
            ]
        );
        assert_eq!(
            after,
            [
                (m.line + 1, format!("row {}", n + 1).as_str()),
                (m.line + 2, format!("row {}", n + 2).as_str())
            ]
        );
        // The line number is absolute: a range read of it returns the match.
        let one = s
            .capture(&CaptureOpts {
                range: ReadRange::Lines {
                    from: m.line,
                    to: m.line,
                },
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one.text, m.text);
    }
    assert_eq!(r.matches[1].line - r.matches[0].line, 1000);

    let ci = s
        .search(&SearchOpts {
            pattern: "^ROW 7$".into(),
            ignore_case: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ci.matches.len(), 1);
    let capped = s
        .search(&SearchOpts {
            pattern: "^row 1".into(),
            max_matches: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(capped.matches.len(), 3);
    assert!(capped.truncated);

    match s
        .search(&SearchOpts {
            pattern: "(unclosed".into(),
            ..Default::default()
        })
        .await
    {
        Err(Error::InvalidRegex { pattern, .. }) => assert_eq!(pattern, "(unclosed"),
        other => panic!("{other:?}"),
    }
}

/// A read of more lines than `spawn_read_lines` on a control-mode terminal runs a one-shot
/// `tmux capture-pane` instead of going through the control client: the text (plain, ANSI,
/// joined), the numbering and the cursor are exactly what control mode returns, and small reads
/// still go through the control client.
#[tokio::test]
async fn large_reads_through_a_spawned_capture_match_control_mode() {
    use termloom_core::{Capture, RunOpts, Target, Terminal};
    use termloom_tmux::{TmuxOptions, TmuxTerminal};
    let srv = TmuxServer::start();
    // A tmux that notes every process started, then runs the real one.
    let calls = srv.dir().join("calls.log");
    let wrapper = srv.dir().join("tmux-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec tmux \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let terminal = |spawn_read_lines: u64| {
        TmuxTerminal::new(TmuxOptions {
            control: true,
            tmux_bin: wrapper.clone(),
            spawn_read_lines,
            ..srv.options()
        })
    };
    let control_only = terminal(u64::MAX);
    let (_, s) = new_session(&control_only, "w", "big").await;
    // 6,000 lines with wide characters, colours, trailing spaces and a wrapped line.
    let fill = s
        .run(&RunOpts {
            max_lines: Some(5),
            timeout: termloom_tests::timeout(),
            ..RunOpts::new(
                "seq -f 'n %.0f é✓ 日本  trailing  ' 1 6000; printf '\\033[1;31mred\\033[0m x\\n'; \
                 printf 'w%.0s' $(seq 1 200); echo",
            )
        })
        .await
        .unwrap();
    assert_eq!(fill.exit_code, Some(0), "{fill:?}");
    let cursor = s.capture(&tail(3)).await.unwrap().cursor;
    s.run(&RunOpts::new("seq 1 3")).await.unwrap();
    let spawned = terminal(1000);
    let big = spawned.session(&Target::Name("big".into())).await.unwrap();
    let reads = [
        everything(),
        CaptureOpts {
            ansi: true,
            ..everything()
        },
        CaptureOpts {
            join_wrapped: true,
            ..everything()
        },
        CaptureOpts {
            max_lines: Some(50),
            ..tail(5000)
        },
        CaptureOpts {
            range: ReadRange::Since(cursor),
            ..Default::default()
        },
    ];
    for opts in &reads {
        std::fs::write(&calls, "").unwrap();
        let want: Capture = s.capture(opts).await.unwrap();
        assert!(
            !std::fs::read_to_string(&calls)
                .unwrap()
                .contains("capture-pane"),
            "control mode spawned a capture: {opts:?}"
        );
        let got: Capture = big.capture(opts).await.unwrap();
        let spawned_calls = std::fs::read_to_string(&calls).unwrap();
        assert!(
            spawned_calls.contains("capture-pane"),
            "no capture-pane was spawned for {opts:?}: {spawned_calls:?}"
        );
        // The cursors name the same place; one may also carry its handle's line count.
        let place = |c: &Capture| -> Vec<String> {
            c.cursor
                .0
                .split('.')
                .skip(1)
                .take(5)
                .map(String::from)
                .collect()
        };
        assert_eq!(place(&got), place(&want), "{opts:?}");
        let strip = |c: Capture| Capture {
            cursor: Default::default(),
            ..c
        };
        assert_eq!(strip(got), strip(want), "{opts:?}");
    }
    // The content really is there: a sample of what was compared.
    let all = big.capture(&reads[0]).await.unwrap();
    assert!(
        all.text.contains("\nn 4321 é✓ 日本  trailing\n"),
        "{:?}",
        all.text.chars().take(300).collect::<String>()
    );
    let ansi = big.capture(&reads[1]).await.unwrap();
    assert!(ansi.text.contains("\u{1b}[1m") || ansi.text.contains(";31m"));
    assert!(
        big.capture(&reads[2])
            .await
            .unwrap()
            .text
            .contains(&"w".repeat(200))
    );
    // A small read stays on the control client.
    std::fs::write(&calls, "").unwrap();
    assert_eq!(big.capture(&tail(3)).await.unwrap().text, "2\n3\n$");
    let after = std::fs::read_to_string(&calls).unwrap();
    assert!(!after.contains("capture-pane"), "{after:?}");
}

#[tokio::test]
async fn reads_taken_while_the_pane_prints_number_their_lines_rightly() {
    // tmux counts capture ranges from the screen's top, which moves while a pane prints: a
    // range computed from a size read a moment before gave other lines under the asked numbers,
    // and a read since a cursor skipped the first new lines. A spawned tmux per command (the
    // CLI's transport) makes that moment long.
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "printing").await;
    wait_prompt(s.as_ref()).await;
    let before = s.capture(&tail(1)).await.unwrap().cursor;
    s.send_text(
        "for i in $(seq 1 4000); do echo n$i; [ $((i%20)) = 0 ] && sleep 0.01; done",
        SendOpts::default(),
    )
    .await
    .unwrap();
    wait_line(s.as_ref(), "n40").await;
    let all = s.capture(&everything()).await.unwrap();
    let base = all.first_line
        + all
            .text
            .lines()
            .position(|l| l == "n1")
            .expect("n1 is printed") as u64;
    let mut since_checked = false;
    for _ in 0..25 {
        let r = s
            .capture(&CaptureOpts {
                range: ReadRange::Lines {
                    from: base + 9,
                    to: base + 9,
                },
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r.text, "n10", "line {} read while printing", base + 9);
        if !since_checked {
            let r = s
                .capture(&CaptureOpts {
                    range: ReadRange::Since(before.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let first_new = r.text.lines().find(|l| l.starts_with('n'));
            assert_eq!(first_new, Some("n1"), "{:?}: {r:?}", r.note);
            since_checked = true;
        }
    }
    s.send_keys(&["C-c".parse().unwrap()]).await.unwrap();
}

#[tokio::test]
async fn a_read_since_a_cursor_sees_a_screen_cleared_and_drawn_again() {
    // A test re-runner or a `watch` loop clears the screen and draws the same layout with other
    // results: the cursor's anchor ("end", after "footer") is where it was, and a read since it
    // returned nothing new.
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_, s) = new_session(&t, "w", "redraw").await;
    wait_prompt(s.as_ref()).await;
    s.send_text(
        "for k in 1 2; do printf '\\033[H\\033[2J\\033[3J'; echo \"run $k\"; echo \"result: value$k\"; echo footer; echo end; [ $k = 1 ] && read -r go; done",
        SendOpts::default(),
    )
    .await
    .unwrap();
    wait_line(s.as_ref(), "result: value1").await;
    wait_line(s.as_ref(), "end").await;
    let cursor = s.capture(&tail(5)).await.unwrap().cursor;
    s.send_text("", SendOpts::default()).await.unwrap();
    wait_line(s.as_ref(), "result: value2").await;
    wait_prompt(s.as_ref()).await;
    let r = s
        .capture(&CaptureOpts {
            range: ReadRange::Since(cursor),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(r.text.contains("result: value2"), "{r:?}");
}
