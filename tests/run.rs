//! `run`, `wait_run`, `status` and shell integration against real tmux servers in control mode:
//! exit codes, capped output, back-to-back and multi-line runs, REPLs, timeouts, the marker
//! strategy in shells without integration, and a server that dies mid-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use termloom_core::{BusyState, Key, RunOpts, RunResult, Session, SessionSpec, Strategy, Terminal};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

fn control(srv: &TmuxServer) -> TmuxOptions {
    TmuxOptions {
        control: true,
        ..srv.options()
    }
}

async fn session(t: &TmuxTerminal, ws: &str, name: &str) -> Arc<dyn Session> {
    let info = t
        .create_session(&SessionSpec {
            name: Some(name.into()),
            workspace: Some(ws.into()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    t.open(&info).await.expect("open")
}

fn opts(cmd: &str) -> RunOpts {
    RunOpts {
        timeout: termloom_tests::timeout(),
        ..RunOpts::new(cmd)
    }
}

async fn run(s: &Arc<dyn Session>, cmd: &str) -> RunResult {
    s.run(&opts(cmd))
        .await
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn has(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn exit_codes_and_exact_output_with_shell_integration() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo hello; echo world").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration, "{r:?}");
    assert_eq!((r.exit_code, r.output.as_str()), (Some(0), "hello\nworld"));
    assert!(!r.timed_out && r.handle.is_none() && !r.truncated);
    let r = run(&s, "false").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), ""));
    let r = run(&s, "no-such-command-xyz").await;
    assert_eq!(r.exit_code, Some(127));
    assert!(r.output.contains("no-such-command-xyz"), "{r:?}");
    assert!(r.output.contains("not found"), "{r:?}");
    let r = run(&s, "printf 'no newline'").await;
    assert_eq!(r.output, "no newline");
    let r = run(
        &s,
        "printf 'progress 1\\rprogress 2\\n'; printf '\\033[31mred\\033[0m\\n'",
    )
    .await;
    assert_eq!(r.output, "progress 2\nred");
    // Columns keep their tabs, in colour too (the stripper used to drop every tab).
    let r = run(&s, "printf 'a\\tb\\n\\033[1mc\\td\\033[0m\\n'").await;
    assert_eq!(r.output, "a\tb\nc\td", "{r:?}");
}

#[tokio::test]
async fn ctrl_c_gives_130_through_a_timed_out_run_and_wait_run() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_millis(300),
            ..RunOpts::new("echo started; sleep 100")
        })
        .await
        .unwrap();
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.exit_code, None);
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    let handle = r.handle.clone().expect("a handle");
    // The session is taken until the run ends.
    let busy = s.run(&opts("echo nope")).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
    // Still running: wait_run times out again and keeps the handle.
    let again = s
        .wait_run(&handle, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(again.timed_out);
    assert_eq!(again.handle.as_ref(), Some(&handle));
    assert!(again.output.contains("started"), "{again:?}");
    s.send_keys(&[Key::ctrl('c')]).await.unwrap();
    let done = s
        .wait_run(&handle, termloom_tests::timeout())
        .await
        .unwrap();
    assert!(!done.timed_out);
    assert_eq!(done.exit_code, Some(130), "{done:?}");
    assert!(done.output.starts_with("started"), "{done:?}");
    // Collected: the handle is gone, and the session takes runs again.
    assert!(
        s.wait_run(&handle, Duration::from_millis(10))
            .await
            .is_err()
    );
    assert_eq!(run(&s, "echo free").await.output, "free");
}

#[tokio::test]
async fn a_run_that_times_out_is_awaited_to_the_end() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_millis(200),
            ..RunOpts::new("sleep 1.5; echo finished; exit_with() { return $1; }; exit_with 7")
        })
        .await
        .unwrap();
    assert!(r.timed_out);
    let done = s
        .wait_run(r.handle.as_ref().unwrap(), termloom_tests::timeout())
        .await
        .unwrap();
    assert_eq!(
        (done.exit_code, done.output.as_str()),
        (Some(7), "finished")
    );
    assert!(done.duration_ms >= 1400, "{done:?}");
}

#[tokio::test]
async fn a_large_output_is_capped_with_head_tail_and_a_note() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let started = Instant::now();
    let r = s
        .run(&RunOpts {
            max_lines: Some(90),
            ..opts("seq 1 100000")
        })
        .await
        .unwrap();
    eprintln!("100,000 lines in {:?}", started.elapsed());
    assert_eq!(r.exit_code, Some(0));
    assert!(r.truncated);
    let lines: Vec<&str> = r.output.lines().collect();
    assert_eq!(&lines[..3], ["1", "2", "3"]);
    assert_eq!(lines[29], "30");
    assert!(
        lines[30].contains("lines 31-99940 of 100000 left out (99910 lines)"),
        "{}",
        lines[30]
    );
    assert_eq!(lines[31], "99941");
    assert_eq!(*lines.last().unwrap(), "100000");
    assert_eq!(lines.len(), 91);
    // Bytes too.
    let r = s
        .run(&RunOpts {
            max_bytes: Some(3000),
            ..opts("seq 1 100000")
        })
        .await
        .unwrap();
    assert!(r.truncated);
    assert!(r.output.len() < 3200, "{}", r.output.len());
    assert!(r.output.starts_with("1\n2\n"));
    assert!(r.output.ends_with("\n100000"));
    assert!(r.output.contains("left out"));
}

#[tokio::test]
async fn back_to_back_runs_do_not_mix() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    for i in 0..30 {
        let r = run(&s, &format!("echo run-{i}; echo end-{i}")).await;
        assert_eq!(r.output, format!("run-{i}\nend-{i}"), "run {i}: {r:?}");
        assert_eq!(r.exit_code, Some(0));
    }
    // Concurrent runs on one session are serialized.
    let (one, two) = (opts("echo one"), opts("echo two"));
    let (a, b) = tokio::join!(s.run(&one), s.run(&two));
    let mut outs = vec![a.unwrap().output, b.unwrap().output];
    outs.sort();
    assert_eq!(outs, ["one", "two"]);
}

#[tokio::test]
async fn multi_line_commands_and_heredocs() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo first\necho second\nfalse").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "first\nsecond"));
    let r = run(
        &s,
        "cat <<'EOF'\nliteral $HOME\n  indented\nEOF\necho after",
    )
    .await;
    assert_eq!(r.output, "literal $HOME\n  indented\nafter", "{r:?}");
    let r = run(&s, "for i in 1 2 3; do\n  echo \"n=$i\"\ndone").await;
    assert_eq!(r.output, "n=1\nn=2\nn=3");
    // Multi-line text goes through a tmux paste buffer: every byte arrives as typed.
    let r = run(&s, HOSTILE_HEREDOC).await;
    assert_eq!(r.output, HOSTILE_LINE, "{r:?}");
}

/// A line that tmux's command parser, formats or argv handling would change if any of them saw it
/// unquoted.
const HOSTILE_LINE: &str = "~x ; \"q\" 'a' \\b $HOME #{pane_id} #(id) é✓ ;";
const HOSTILE_HEREDOC: &str = "cat <<'EOF'\n~x ; \"q\" 'a' \\b $HOME #{pane_id} #(id) é✓ ;\nEOF";

#[tokio::test]
async fn cd_in_one_run_persists_into_the_next_and_status_follows() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let dir = srv.dir().join("a dir");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let dir = dir.to_string_lossy().into_owned();
    run(&s, &format!("cd '{dir}'")).await;
    assert_eq!(run(&s, "pwd").await.output, dir);
    let st = s.status().await.unwrap();
    assert_eq!(st.cwd.as_deref(), Some(dir.as_str()), "{st:?}");
    assert_eq!(st.state, BusyState::Idle);
    assert!(st.shell_integration);
}

#[tokio::test]
async fn status_reports_busy_idle_and_the_last_exit_code() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = run(&s, "sh -c 'exit 3'").await;
    assert_eq!(r.exit_code, Some(3));
    let st = s.status().await.unwrap();
    assert_eq!(st.state, BusyState::Idle);
    assert_eq!(st.last_exit_code, Some(3));
    assert_eq!(st.command, "bash");
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_millis(100),
            ..RunOpts::new("sleep 30")
        })
        .await
        .unwrap();
    assert!(r.timed_out);
    let st = wait_until("status busy with sleep", || async {
        let st = s.status().await.unwrap();
        (st.command == "sleep").then_some(st)
    })
    .await;
    assert_eq!(st.state, BusyState::Busy);
    s.send_keys(&[Key::ctrl('c')]).await.unwrap();
    let done = s
        .wait_run(r.handle.as_ref().unwrap(), termloom_tests::timeout())
        .await
        .unwrap();
    assert_eq!(done.exit_code, Some(130));
    let st = s.status().await.unwrap();
    assert_eq!((st.state, st.last_exit_code), (BusyState::Idle, Some(130)));
    // Another process (a one-shot CLI) sees the same through the shell's state file and tmux.
    let fresh = TmuxTerminal::new(srv.options());
    let s2 = fresh
        .session(&termloom_core::Target::Name("a".into()))
        .await
        .unwrap();
    let st = s2.status().await.unwrap();
    assert_eq!(st.state, BusyState::Idle);
    assert_eq!(st.last_exit_code, Some(130), "{st:?}");
    assert!(st.shell_integration);
    // ...and runs with the integration straight away.
    let r = s2.run(&opts("echo from-elsewhere")).await.unwrap();
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!(r.output, "from-elsewhere");
}

/// A run in a Python REPL: done when `>>> ` is back.
fn repl(cmd: &str, timeout: Duration) -> RunOpts {
    RunOpts {
        prompt: Some(r"^>>> $".into()),
        timeout,
        ..RunOpts::new(cmd)
    }
}

/// A private server and a session whose bash runs termloom's integration (its first run says so).
async fn integrated_session() -> (TmuxServer, TmuxTerminal, Arc<dyn Session>) {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.strategy, Strategy::ShellIntegration);
    (srv, t, s)
}

/// A private server and a session running Python's REPL (started through the prompt strategy).
async fn python_session() -> (TmuxServer, TmuxTerminal, Arc<dyn Session>) {
    assert!(has("python3"), "python3 is needed for this test");
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = s
        .run(&repl(
            "PYTHON_BASIC_REPL=1 python3 -q",
            termloom_tests::timeout(),
        ))
        .await
        .unwrap();
    assert_eq!((r.strategy, r.exit_code), (Strategy::Prompt, None));
    (srv, t, s)
}

#[tokio::test]
async fn python_repl_through_the_prompt_strategy() {
    let (_srv, _t, s) = python_session().await;
    let prompt = |cmd: &str| repl(cmd, termloom_tests::timeout());
    let r = s.run(&prompt("print(6 * 7)")).await.unwrap();
    assert_eq!(r.output, "42", "{r:?}");
    let r = s
        .run(&prompt("for i in range(3):\n    print('n', i)\n"))
        .await
        .unwrap();
    assert!(r.output.ends_with("n 0\nn 1\nn 2"), "{r:?}");
    // By a quiet period: the output ends before the REPL's next `>>> ` (it kept it before).
    let r = s
        .run(&RunOpts {
            quiet: Some(Duration::from_millis(500)),
            timeout: termloom_tests::timeout(),
            ..RunOpts::new("print(6 * 8)")
        })
        .await
        .unwrap();
    assert_eq!(
        (r.strategy, r.output.as_str()),
        (Strategy::Quiet, "48"),
        "{r:?}"
    );
    // A plain run refuses: python is in the foreground.
    let err = s.run(&opts("echo x")).await.unwrap_err().to_string();
    assert!(err.contains("busy") && err.contains("python"), "{err}");
    s.send_text("exit()", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("the shell back", || async {
        (s.status().await.unwrap().command == "bash").then_some(())
    })
    .await;
    assert_eq!(run(&s, "echo back").await.output, "back");
}

#[tokio::test]
async fn a_repl_started_by_a_run_that_timed_out_is_driven_by_its_prompt() {
    // `run python3` times out (python keeps running); the session was then refused to every
    // later run, also by prompt, until python ended: C-c, the advice given, does not end it.
    assert!(has("python3"), "python3 is needed for this test");
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.exit_code, Some(0));
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_millis(1500),
            ..RunOpts::new("PYTHON_BASIC_REPL=1 python3 -q")
        })
        .await
        .unwrap();
    assert!(r.timed_out, "{r:?}");
    let r = s
        .run(&repl("print(6 * 7)", termloom_tests::timeout()))
        .await
        .unwrap();
    assert_eq!(r.output, "42", "{r:?}");
    s.send_text("exit()", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("the shell back", || async {
        (s.status().await.ok()?.command == "bash").then_some(())
    })
    .await;
    assert_eq!(run(&s, "echo back").await.output, "back");
}

#[tokio::test]
async fn a_run_that_ends_its_shell_says_so_with_what_it_printed() {
    // `exit 7` in the command: the pane closes, and the error said only "session is dead",
    // losing what the command printed.
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let _keep = session(&t, "w", "keep").await;
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.exit_code, Some(0));
    let e = s
        .run(&RunOpts::new("echo bye-output; sleep 0.3; exit 7"))
        .await
        .expect_err("the shell is gone");
    let msg = e.to_string();
    assert!(
        msg.contains("ended during the run") && msg.contains("bye-output"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_incomplete_command_line_keeps_runs_out_of_the_continuation_prompt() {
    // An open quote: bash asks for more (PS2). The run marked the integration lost, and the
    // next run typed its marker lines into the quoted string.
    let (srv, _t, s) = integrated_session().await;
    let e = s
        .run(&RunOpts {
            timeout: Duration::from_secs(10),
            ..RunOpts::new("echo 'unterminated")
        })
        .await
        .expect_err("the line is not complete");
    assert!(e.to_string().contains("not complete"), "{e}");
    let e = s
        .run(&RunOpts::new("echo second"))
        .await
        .expect_err("busy at the continuation prompt");
    assert!(e.to_string().contains("continuation prompt"), "{e}");
    // Another process (no marks seen) asks the shell, which says so too.
    let other = TmuxTerminal::new(control(&srv));
    let s2 = other.open(&s.info().await.unwrap()).await.unwrap();
    let e = s2
        .run(&RunOpts::new("echo third"))
        .await
        .expect_err("busy for another process too");
    assert!(e.to_string().contains("continuation prompt"), "{e}");
    s.send_keys(&["C-c".parse().unwrap()]).await.unwrap();
    let r = run(&s, "echo after").await;
    assert_eq!(
        (r.strategy, r.output.as_str()),
        (Strategy::ShellIntegration, "after")
    );
}

#[tokio::test]
async fn xtrace_of_termlooms_own_hook_stays_out_of_run_output() {
    // With `set -x`, bash traces the prompt hook's first statements before its end-of-output
    // mark: every run's output ended with `++ _termloom_prompt` and more.
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "set -x").await.exit_code, Some(0));
    let r = run(&s, "echo hi").await;
    assert_eq!(r.output, "+ echo hi\nhi", "{r:?}");
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(run(&s, "set +x").await.exit_code, Some(0));
}

#[tokio::test]
async fn quiet_strategy_waits_for_silence() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    let r = s
        .run(&RunOpts {
            quiet: Some(Duration::from_millis(1000)),
            ..opts("echo a; sleep 0.2; echo b")
        })
        .await
        .unwrap();
    assert_eq!(r.strategy, Strategy::Quiet);
    // Only the command's output: the shell's next prompt is not part of it.
    assert_eq!(r.output, "a\nb", "{r:?}");
}

fn plain_terminal(srv: &TmuxServer, shell: &[&str]) -> TmuxTerminal {
    TmuxTerminal::new(TmuxOptions {
        integration: false,
        shell: Some(shell.iter().map(|s| s.to_string()).collect()),
        ..control(srv)
    })
}

async fn marker_suite(s: &Arc<dyn Session>) {
    let r = run(s, "echo plain").await;
    assert_eq!(r.strategy, Strategy::Marker, "{r:?}");
    assert_eq!((r.exit_code, r.output.as_str()), (Some(0), "plain"));
    assert_eq!(run(s, "false").await.exit_code, Some(1));
    let r = run(s, "no-such-command-xyz").await;
    assert_eq!(r.exit_code, Some(127));
    assert!(r.output.contains("not found"), "{r:?}");
    for i in 0..10 {
        let r = run(s, &format!("echo m-{i}")).await;
        assert_eq!(r.output, format!("m-{i}"));
    }
    let r = run(s, "cat <<EOF\nhere $((6*7))\nEOF\necho tail").await;
    assert_eq!(r.output, "here 42\ntail", "{r:?}");
    let r = run(s, HOSTILE_HEREDOC).await;
    assert_eq!(r.output, HOSTILE_LINE, "{r:?}");
    let r = run(s, "echo x\necho y\nexit_3() { return 3; }\nexit_3").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(3), "x\ny"));
    run(s, "cd /tmp").await;
    assert_eq!(run(s, "pwd").await.output, "/tmp");
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_millis(200),
            ..RunOpts::new("sleep 0.6; echo late")
        })
        .await
        .unwrap();
    assert!(r.timed_out);
    let done = s
        .wait_run(r.handle.as_ref().unwrap(), termloom_tests::timeout())
        .await
        .unwrap();
    assert_eq!((done.exit_code, done.output.as_str()), (Some(0), "late"));
}

#[tokio::test]
async fn marker_strategy_in_bash_without_integration() {
    let srv = TmuxServer::start();
    let t = plain_terminal(&srv, &["/bin/bash", "--norc", "--noprofile"]);
    let s = session(&t, "w", "a").await;
    marker_suite(&s).await;
    let st = s.status().await.unwrap();
    assert!(!st.shell_integration);
    assert_eq!(st.state, BusyState::Idle);
    // A builtin reading input: bash is still the program in front, but its terminal reads whole
    // lines (readline turns that off at the prompt). The marker line went to `read`, and the
    // command itself ran outside the markers.
    s.send_text(
        "read q; echo \"got:[$q]\"",
        termloom_core::SendOpts::default(),
    )
    .await
    .unwrap();
    wait_until("read to take the terminal", || async {
        let st = s.status().await.ok()?;
        (st.state == BusyState::Busy).then_some(())
    })
    .await;
    let e = s
        .run(&RunOpts::new("echo typed-in"))
        .await
        .expect_err("a run into `read` is refused");
    assert!(e.to_string().contains("not at its prompt"), "{e}");
    s.send_text("answer", termloom_core::SendOpts::default())
        .await
        .unwrap();
    crate::tmux_backend::wait_line(s.as_ref(), "got:[answer]").await;
    let r = run(&s, "echo after").await;
    assert_eq!((r.strategy, r.output.as_str()), (Strategy::Marker, "after"));
}

#[tokio::test]
async fn marker_strategy_in_sh() {
    let srv = TmuxServer::start();
    let t = plain_terminal(&srv, &["/bin/sh"]);
    let s = session(&t, "w", "a").await;
    marker_suite(&s).await;
    // sh reads in canonical mode, which drops what a line holds past 4095 bytes: the cut
    // command ran and was reported (exit 0) instead of the one asked for.
    let long = format!("echo {} >/dev/null; echo END; (exit 5)", "x".repeat(4200));
    let e = s
        .run(&RunOpts::new(long.as_str()))
        .await
        .expect_err("a line sh cannot read whole is refused");
    assert!(e.to_string().contains("longer than"), "{e}");
    let r = run(&s, "echo still; (exit 5)").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(5), "still"));
}

#[tokio::test]
async fn a_nested_plain_shell_inside_an_integrated_one_gets_markers() {
    let (_srv, _t, s) = integrated_session().await;
    s.send_text("sh", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("sh in front", || async {
        (s.status().await.unwrap().command == "sh").then_some(())
    })
    .await;
    let r = run(&s, "echo inner; false").await;
    assert_eq!(r.strategy, Strategy::Marker);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "inner"));
    s.send_text("exit", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("bash back", || async {
        (s.status().await.unwrap().command == "bash").then_some(())
    })
    .await;
    let r = run(&s, "echo outer").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!(r.output, "outer");
    // A run whose command exits the nested shell: its end marker never comes, the outer
    // shell's end and prompt do (the run waited out its whole timeout).
    s.send_text("sh", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("sh in front again", || async {
        (s.status().await.unwrap().command == "sh").then_some(())
    })
    .await;
    let started = Instant::now();
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_secs(20),
            ..RunOpts::new("echo leaving; exit 3")
        })
        .await
        .unwrap();
    assert!(!r.timed_out, "{r:?}");
    assert_eq!(r.exit_code, Some(3), "{r:?}");
    assert!(r.output.starts_with("leaving"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_subshell_in_front_is_busy_not_a_nested_shell() {
    // `( read … )` is a fork of the pane's shell: its command line is the shell's own, so it
    // looked like a nested interactive shell, and the run's marker line was typed into `read`.
    let (_srv, _t, s) = integrated_session().await;
    s.send_text(
        "( read -r x; echo \"GOT:[$x]\"; sleep 30 )",
        termloom_core::SendOpts::default(),
    )
    .await
    .unwrap();
    wait_until("the subshell in front", || async {
        let st = s.status().await.ok()?;
        (st.state == termloom_core::BusyState::Busy).then_some(())
    })
    .await;
    let e = s
        .run(&RunOpts::new("echo typed-in"))
        .await
        .expect_err("a run into a subshell is refused");
    assert!(e.to_string().contains("subshell"), "{e}");
    s.send_keys(&["C-c".parse().unwrap()]).await.unwrap();
    let r = run(&s, "echo after").await;
    assert_eq!(
        (r.strategy, r.output.as_str()),
        (Strategy::ShellIntegration, "after")
    );
    let text = s
        .capture(&termloom_core::CaptureOpts::default())
        .await
        .unwrap()
        .text;
    assert!(
        !text.lines().any(|l| l.starts_with("GOT:")),
        "the run's line reached the subshell: {text}"
    );
}

#[tokio::test]
async fn a_run_never_joins_text_left_on_the_command_line_nor_types_into_vi_command_mode() {
    // Typed text left on the line (a person typing, or an earlier send without Enter) ran with
    // the run's command as one line, whose result was reported as the run's; in vi command
    // mode the command was taken as editing commands.
    let (srv, _t, s) = integrated_session().await;
    let victim = srv.dir().join("VICTIM_");
    let left = format!("touch {}", victim.display());
    s.send_text(&left, termloom_core::SendOpts { enter: false })
        .await
        .unwrap();
    wait_until("the text on the line", || async {
        let text = s
            .capture(&termloom_core::CaptureOpts::default())
            .await
            .ok()?
            .text;
        text.contains(&left).then_some(())
    })
    .await;
    let e = s
        .run(&RunOpts::new("echo hello"))
        .await
        .expect_err("a run onto a half-typed line is refused");
    assert!(e.to_string().contains("typed character"), "{e}");
    assert!(
        !srv.dir().join("VICTIM_echo").exists() && !victim.exists(),
        "the joined line ran"
    );
    s.send_keys(&["C-u".parse().unwrap()]).await.unwrap();
    assert_eq!(run(&s, "echo hello").await.output, "hello");
    // Blanks left on the line change nothing: not refused.
    s.send_text("   ", termloom_core::SendOpts { enter: false })
        .await
        .unwrap();
    assert_eq!(run(&s, "echo blanks").await.output, "blanks");
    // vi command mode (Escape pressed in a vi-mode shell).
    assert_eq!(run(&s, "set -o vi").await.exit_code, Some(0));
    s.send_keys(&["Escape".parse().unwrap()]).await.unwrap();
    let e = s
        .run(&RunOpts::new("echo o-hello; (exit 3)"))
        .await
        .expect_err("a run into vi command mode is refused");
    assert!(e.to_string().contains("vi command mode"), "{e}");
    s.send_keys(&["i".parse().unwrap()]).await.unwrap();
    let r = run(&s, "echo vi-hello; (exit 3)").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(3), "vi-hello"));
    // The query's binding removed by hand: its keys land on the line (readline inserts `~`);
    // the run says so once instead of running `~echo …`, and the shell is not asked again.
    assert_eq!(run(&s, "set -o emacs").await.exit_code, Some(0));
    assert_eq!(run(&s, "bind -r '\\e[6973~'").await.exit_code, Some(0));
    let e = s
        .run(&RunOpts::new("echo unbound"))
        .await
        .expect_err("no answer to the query");
    assert!(e.to_string().contains("did not answer"), "{e}");
    s.send_keys(&["C-u".parse().unwrap()]).await.unwrap();
    let r = run(&s, "echo after-unbind; (exit 2)").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(2), "after-unbind"));
}

#[tokio::test]
async fn a_pane_whose_process_exited_under_remain_on_exit_ends_waits_and_says_so() {
    // tmux keeps the dead pane and says nothing in control mode: a wait for a pattern ran out
    // its whole timeout, `watch` never ended, and status said the pane no longer existed.
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.exit_code, Some(0));
    srv.tmux(&["set-option", "-t", "w", "remain-on-exit", "on"]);
    let waiting = {
        let s = s.clone();
        tokio::spawn(async move {
            let re = regex::Regex::new("NEVER-PRINTED").unwrap();
            let started = Instant::now();
            (
                s.wait_for(&re, Duration::from_secs(60)).await,
                started.elapsed(),
            )
        })
    };
    s.send_text("exit 4", termloom_core::SendOpts::default())
        .await
        .unwrap();
    let (waited, took) = waiting.await.unwrap();
    let e = waited.expect_err("the wait ends with the pane's process");
    assert!(e.to_string().contains("exited (status"), "{e}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let e = s.status().await.expect_err("no status of a dead pane");
    assert!(e.to_string().contains("has ended"), "{e}");
    assert!(!e.to_string().contains("no longer exists"), "{e}");
}

#[tokio::test]
async fn a_pipeline_whose_first_program_ended_is_busy_with_the_program_still_in_front() {
    // `seq 5 | less`: the foreground group's leader (seq) is gone, so tmux names the pane's
    // shell as its current command. A process that had not seen the run start (the CLI, a
    // second server) said "idle, bash", and a run typed into less.
    let (srv, _t, s) = integrated_session().await;
    s.send_text("seq 1 5 | less", termloom_core::SendOpts::default())
        .await
        .unwrap();
    crate::tmux_backend::wait_line(s.as_ref(), "(END)").await;
    let other = TmuxTerminal::new(control(&srv));
    let info = s.info().await.unwrap();
    let s2 = other.open(&info).await.unwrap();
    let st = s2.status().await.unwrap();
    assert_eq!(
        (st.state, st.command.as_str()),
        (termloom_core::BusyState::Busy, "less"),
        "{st:?}"
    );
    let e = s2
        .run(&RunOpts::new("echo typed-in"))
        .await
        .expect_err("a run into less is refused");
    assert!(e.to_string().contains("'less' is running"), "{e}");
    let text = s
        .capture(&termloom_core::CaptureOpts::default())
        .await
        .unwrap()
        .text;
    assert!(
        !text.contains("typed-in") && !text.contains("HELP"),
        "{text}"
    );
}

/// A plain bash (no integration) with its own prompt, started from a session's shell.
const NESTED_BASH: &str = "PS1='inner> ' bash --norc --noprofile";

/// Types `text` and Enter into `s`.
async fn typed(s: &Arc<dyn Session>, text: &str) {
    s.send_text(text, termloom_core::SendOpts::default())
        .await
        .unwrap_or_else(|e| panic!("send {text:?}: {e}"));
}

#[tokio::test]
async fn a_nested_plain_bash_inside_an_integrated_one_gets_markers() {
    let (srv, _t, s) = integrated_session().await;
    // The same shell, nested and plain: only its process group tells it from the pane's own.
    typed(&s, NESTED_BASH).await;
    let pane = s.native().id.clone();
    wait_until("the nested prompt", || {
        let screen = srv.tmux(&["capture-pane", "-p", "-t", &pane]);
        std::future::ready(
            screen
                .lines()
                .any(|l| l.starts_with("inner>"))
                .then_some(()),
        )
    })
    .await;
    let r = run(&s, "echo inner; false").await;
    assert_eq!(r.strategy, Strategy::Marker, "{r:?}");
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "inner"));
    s.send_text("exit", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("the outer prompt", || {
        std::future::ready(returned_from(&srv, &pane, "exit"))
    })
    .await;
    let r = run(&s, "echo outer").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration, "{r:?}");
    assert_eq!(r.output, "outer");
}

#[tokio::test]
async fn a_run_right_after_typed_input_waits_for_the_shell_to_take_it() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    // Untracked once; tracked four times, each right after a run (whose prompt's marks may
    // still be on their way when the input is typed).
    for (i, first_run) in [false, true, true, true, true].into_iter().enumerate() {
        let s = session(&t, &format!("w{i}"), &format!("a{i}")).await;
        if first_run {
            // The pane's output is already tracked when the input is typed.
            assert_eq!(run(&s, "true").await.strategy, Strategy::ShellIntegration);
        }
        // An agent types a command that starts another shell, then runs at once: the run must
        // not take the integrated shell's last prompt for the program that will read its text.
        typed(&s, NESTED_BASH).await;
        let r = run(&s, "echo inner; false").await;
        assert_eq!(
            (r.strategy, r.exit_code, r.output.as_str()),
            (Strategy::Marker, Some(1), "inner"),
            "tracked before: {first_run}: {r:?}"
        );
        // Typed ahead into the plain shell that is about to exit: markers work in either shell.
        s.send_text("exit", termloom_core::SendOpts::default())
            .await
            .unwrap();
        let r = run(&s, "echo outer").await;
        assert_eq!(
            (r.exit_code, r.output.as_str()),
            (Some(0), "outer"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn integration_keeps_the_users_prompt_command_array_and_bashrc() {
    let srv = TmuxServer::start();
    std::fs::write(
        srv.home.join(".bashrc"),
        "user_hook() { USER_HOOK_RAN=$((USER_HOOK_RAN+1)); }\nPROMPT_COMMAND=(user_hook)\nexport FROM_BASHRC=yes\n",
    )
    .unwrap();
    let t = TmuxTerminal::new(TmuxOptions {
        shell: Some(vec!["/bin/bash".into()]),
        ..control(&srv)
    });
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo $FROM_BASHRC; declare -p PROMPT_COMMAND").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!(
        r.output,
        "yes\ndeclare -a PROMPT_COMMAND=([0]=\"_termloom_prompt\" [1]=\"user_hook\" [2]=\"_termloom_prompt_end\")"
    );
    assert_ne!(run(&s, "echo ${USER_HOOK_RAN:-0}").await.output, "0");
    // Sourcing the script again changes nothing.
    let dir = termloom_tmux::integration::locate(&control(&srv)).unwrap();
    run(&s, &format!(". '{}'", dir.bash().display())).await;
    let r = run(
        &s,
        "declare -p PROMPT_COMMAND; echo \"$PS0\" | grep -o '133;C' | wc -l",
    )
    .await;
    assert_eq!(
        r.output,
        "declare -a PROMPT_COMMAND=([0]=\"_termloom_prompt\" [1]=\"user_hook\" [2]=\"_termloom_prompt_end\")\n1"
    );
}

#[tokio::test]
async fn default_login_shell_gets_integration() {
    let srv = TmuxServer::start();
    std::fs::write(srv.home.join(".profile"), "export FROM_PROFILE=yes\n").unwrap();
    let t = TmuxTerminal::new(TmuxOptions {
        shell: None,
        ..control(&srv)
    });
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo $FROM_PROFILE").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!(r.output, "yes");
}

#[tokio::test]
async fn install_integration_into_a_running_bash() {
    let srv = TmuxServer::start();
    let t = plain_terminal(&srv, &["/bin/bash", "--norc", "--noprofile"]);
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.strategy, Strategy::Marker);
    s.install_integration().await.unwrap();
    let r = run(&s, "echo now; false").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "now"));
    // Twice is harmless.
    s.install_integration().await.unwrap();
    assert_eq!(run(&s, "echo again").await.output, "again");
    // A fresh process sees it through the state file.
    let other = TmuxTerminal::new(srv.options());
    let s2 = other
        .session(&termloom_core::Target::Name("a".into()))
        .await
        .unwrap();
    assert!(s2.status().await.unwrap().shell_integration);
}

#[tokio::test]
async fn zsh_integration_and_install() {
    if !has("zsh") {
        eprintln!("zsh is not installed; skipping");
        return;
    }
    let srv = TmuxServer::start();
    std::fs::write(
        srv.home.join(".zshrc"),
        "export FROM_ZSHRC=yes\nPS1='%% '\n",
    )
    .unwrap();
    let t = TmuxTerminal::new(TmuxOptions {
        shell: Some(vec!["/usr/bin/zsh".into()]),
        ..control(&srv)
    });
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo $FROM_ZSHRC; echo ${ZDOTDIR-unset}").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(0), "yes\nunset"));
    let r = run(&s, "printf partial").await;
    assert_eq!(r.output, "partial");
    let r = run(&s, "false").await;
    assert_eq!(r.exit_code, Some(1));
    let r = run(&s, "cat <<EOF\nz $((1+1))\nEOF").await;
    assert_eq!(r.output, "z 2");
    let plain = plain_terminal(&srv, &["/usr/bin/zsh", "-f"]);
    let p = session(&plain, "w", "b").await;
    assert_eq!(run(&p, "echo m").await.strategy, Strategy::Marker);
    p.install_integration().await.unwrap();
    let r = run(&p, "echo i; (exit 4)").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(4), "i"));
}

#[tokio::test]
async fn fish_integration() {
    if !has("fish") {
        eprintln!("fish is not installed; skipping");
        return;
    }
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(TmuxOptions {
        shell: Some(vec!["/usr/bin/fish".into()]),
        ..control(&srv)
    });
    let s = session(&t, "w", "a").await;
    let r = run(&s, "echo fish; false").await;
    assert_eq!(r.strategy, Strategy::ShellIntegration);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "fish"));
    let r = run(&s, "for i in 1 2\n  echo n$i\nend").await;
    assert_eq!(r.output, "n1\nn2");
    let plain = plain_terminal(&srv, &["/usr/bin/fish", "--no-config"]);
    let p = session(&plain, "w", "b").await;
    let r = run(&p, "echo m; false").await;
    assert_eq!(r.strategy, Strategy::Marker);
    assert_eq!((r.exit_code, r.output.as_str()), (Some(1), "m"));
}

#[tokio::test]
async fn the_server_dying_mid_run_is_an_error_within_two_seconds_and_the_next_call_reconnects() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "echo up").await.output, "up");
    let s2 = s.clone();
    let pending = tokio::spawn(async move {
        let r = s2
            .run(&RunOpts {
                timeout: Duration::from_secs(60),
                ..RunOpts::new("echo waiting; sleep 60")
            })
            .await;
        (r, Instant::now())
    });
    wait_until("sleep in front", || async {
        (srv.tmux(&["display", "-p", "-t", "=w:", "#{pane_current_command}"])
            .trim()
            == "sleep")
            .then_some(())
    })
    .await;
    let killed = Instant::now();
    srv.kill_server();
    let (r, ended) = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the run ended")
        .unwrap();
    let err = r.expect_err("a run whose server died fails");
    let took = ended - killed;
    assert!(took < Duration::from_secs(2), "took {took:?}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("lost") || msg.contains("dead") || msg.contains("went away"),
        "{msg}"
    );
    // The next call reconnects: a new server, a new session, runs work.
    let s = session(&t, "w2", "b").await;
    let r = run(&s, "echo again").await;
    assert_eq!((r.exit_code, r.output.as_str()), (Some(0), "again"));
}

#[tokio::test]
async fn runs_refuse_a_busy_session_and_empty_commands() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    s.send_text("sleep 30", termloom_core::SendOpts::default())
        .await
        .unwrap();
    wait_until("sleep in front", || async {
        (s.status().await.unwrap().command == "sleep").then_some(())
    })
    .await;
    let err = s.run(&opts("echo x")).await.unwrap_err().to_string();
    assert!(err.contains("busy") && err.contains("sleep"), "{err}");
    assert_eq!(s.status().await.unwrap().state, BusyState::Busy);
    s.send_keys(&[Key::ctrl('c')]).await.unwrap();
    wait_until("idle again", || async {
        (s.status().await.unwrap().state == BusyState::Idle).then_some(())
    })
    .await;
    assert!(s.run(&opts("  ")).await.is_err());
    assert_eq!(run(&s, "echo ok").await.output, "ok");
}

/// Turns off the output of termloom's output client (the control client with `pause-after`) from
/// outside, as another program's early `refresh-client -f no-output` did in the peers bench.
fn silence_output_client(srv: &TmuxServer) {
    silence_output_client_where(srv, |_| true);
}

/// [`silence_output_client`] for the output client attached to workspace `ws`.
fn silence_output_client_of(srv: &TmuxServer, ws: &str) {
    silence_output_client_where(srv, |session| session == ws);
}

/// Turns off the output of the first output client whose session name passes `on`.
fn silence_output_client_where(srv: &TmuxServer, on: impl Fn(&str) -> bool) {
    let list = || {
        srv.tmux(&[
            "list-clients",
            "-F",
            "#{client_name} #{client_flags} #{session_name}",
        ])
    };
    let clients = list();
    let name = clients
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .find(|(_, flags, session)| flags.contains("pause-after") && on(session))
        .map(|(name, _, _)| name)
        .unwrap_or_else(|| panic!("no output client in {clients:?}"));
    srv.tmux(&["refresh-client", "-t", name, "-f", "no-output"]);
    let flags = list();
    assert!(
        flags
            .lines()
            .any(|l| l.starts_with(&format!("{name} ")) && l.contains("no-output")),
        "the output client is silenced: {flags:?}"
    );
}

/// Runs `command` (which starts with a `sleep`) in `s`, silences the output client while the
/// sleep is in front, and returns the run's result.
async fn silenced_during_sleep(
    srv: &TmuxServer,
    s: &Arc<dyn Session>,
    command: &'static str,
) -> RunResult {
    let s2 = s.clone();
    let running = tokio::spawn(async move { run(&s2, command).await });
    let pane = s.native().id.clone();
    wait_until("sleep in front", || {
        let fg = srv.tmux(&["display", "-p", "-t", &pane, "#{pane_current_command}"]);
        std::future::ready((fg.trim() == "sleep").then_some(()))
    })
    .await;
    silence_output_client(srv);
    running.await.expect("run task")
}

#[tokio::test]
async fn a_run_survives_another_client_turning_off_its_output() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    // A first run attaches the workspace's output client.
    assert_eq!(run(&s, "true").await.exit_code, Some(0));

    // Silenced before the run: the shell's answer to the line query is lost, which the run
    // finds before typing: it turns the output back on then and runs (nothing it prints is
    // missed), not refusing the session as one whose query binding is gone.
    silence_output_client(&srv);
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_secs(5),
            ..RunOpts::new("echo after-silence; (exit 3)")
        })
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.timed_out, r.output.as_str()),
        (Some(3), false, "after-silence"),
        "{r:?}"
    );
    let flags = srv.tmux(&["list-clients", "-F", "#{client_flags}"]);
    assert!(
        flags
            .lines()
            .any(|l| l.contains("pause-after") && !l.contains("no-output")),
        "the output client's output is back on: {flags:?}"
    );

    // Silenced while the command runs: the output comes back before the command ends, so its end
    // mark and its last line are seen as usual.
    let r = silenced_during_sleep(&srv, &s, "sleep 2; echo after").await;
    assert_eq!((r.exit_code, r.timed_out), (Some(0), false), "{r:?}");
    assert!(r.output.ends_with("after"), "{r:?}");
}

/// Whether `pane` shows `command` typed and a prompt drawn after it (it ran and returned).
fn returned_from(srv: &TmuxServer, pane: &str, command: &str) -> Option<()> {
    let screen = srv.tmux(&["capture-pane", "-p", "-t", pane]);
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines.iter().rposition(|l| l.contains(command))?;
    lines[at + 1..]
        .iter()
        .any(|l| !l.trim().is_empty())
        .then_some(())
}

#[tokio::test]
async fn runs_whose_output_someone_else_turned_back_on_still_learn_their_exit_codes() {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let a = session(&t, "w", "a").await;
    let b = session(&t, "w", "b").await;
    assert_eq!(run(&a, "true").await.exit_code, Some(0));
    assert_eq!(run(&b, "true").await.exit_code, Some(0));
    let (pa, pb) = (a.native().id.clone(), b.native().id.clone());
    let ws = srv.tmux(&["display", "-p", "-t", &pa, "#{session_id}"]);
    let ws = ws.trim().to_string();

    // Two runs in one workspace whose output client is silenced while their commands run:
    // both end marks are lost. Someone else (here the test, as the hub's watchdog or another
    // run's check would) turns the output back on before either run checks, so neither run's
    // own check finds anything to restore. Each must still notice that output was lost and read
    // its exit code from its shell's state file, instead of waiting out its timeout.
    let run_in = |s: &Arc<dyn Session>, cmd: &'static str| {
        let s = s.clone();
        tokio::spawn(async move {
            s.run(&RunOpts {
                timeout: Duration::from_secs(8),
                ..RunOpts::new(cmd)
            })
            .await
        })
    };
    let ra = run_in(&a, "sleep 0.3; (exit 3)");
    let rb = run_in(&b, "sleep 0.3; (exit 4)");
    wait_until("both sleeps in front", || {
        let fg = |p: &str| srv.tmux(&["display", "-p", "-t", p, "#{pane_current_command}"]);
        std::future::ready((fg(&pa).trim() == "sleep" && fg(&pb).trim() == "sleep").then_some(()))
    })
    .await;
    silence_output_client(&srv);
    wait_until("both commands ran", || {
        std::future::ready(
            returned_from(&srv, &pa, "(exit 3)").and(returned_from(&srv, &pb, "(exit 4)")),
        )
    })
    .await;
    // Usually still silenced here (the runs check every half second); when a run's own check
    // came first, this is the simpler case, and the exit codes must come all the same.
    let _ = t.hub().restore_output(&ws).await.expect("restore");
    let ra = ra.await.expect("task a").expect("run a");
    let rb = rb.await.expect("task b").expect("run b");
    assert_eq!((ra.exit_code, ra.timed_out), (Some(3), false), "{ra:?}");
    assert_eq!((rb.exit_code, rb.timed_out), (Some(4), false), "{rb:?}");
    assert!(ra.truncated && rb.truncated, "{ra:?} {rb:?}");
    // Both sessions are free again.
    assert_eq!(run(&a, "echo a-$((1+1))").await.output, "a-2");
    assert_eq!(run(&b, "echo b-$((2+2))").await.output, "b-4");
}

#[tokio::test]
async fn a_marker_run_whose_end_mark_was_lost_ends_as_quiet_without_an_exit_code() {
    let srv = TmuxServer::start();
    let t = plain_terminal(&srv, &["/bin/bash", "--norc", "--noprofile"]);
    let s = session(&t, "w", "a").await;
    assert_eq!(run(&s, "true").await.strategy, Strategy::Marker);
    // No state file: once the output is back and the shell has been in front, silent, for two
    // checks, the run is over; it cannot know the exit code and says which strategy it fell
    // back to, instead of holding the session busy until its timeout and beyond.
    silence_output_client(&srv);
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_secs(8),
            ..RunOpts::new("(exit 3)")
        })
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.timed_out, r.strategy, r.truncated),
        (None, false, Strategy::Quiet, true),
        "{r:?}"
    );
    // A command still running when the output comes back is not cut short: the shell is not
    // in front, and the end mark comes in the restored stream.
    let r = silenced_during_sleep(&srv, &s, "sleep 2; echo slept").await;
    assert_eq!(
        (r.exit_code, r.strategy, r.output.as_str(), r.truncated),
        (Some(0), Strategy::Marker, "slept", true),
        "{r:?}"
    );
    assert_eq!(run(&s, "echo free").await.output, "free");
}

/// Whether the pane's cursor is at the start of a line (the typed command was entered and the
/// shell has not drawn a prompt since).
fn cursor_at_column_0(srv: &TmuxServer, pane: &str) -> Option<()> {
    (srv.tmux(&["display", "-p", "-t", pane, "#{cursor_x}"])
        .trim()
        == "0")
        .then_some(())
}

#[tokio::test]
async fn a_lost_end_mark_never_frees_a_session_whose_command_still_runs() {
    let srv = TmuxServer::start();
    let t = plain_terminal(&srv, &["/bin/bash", "--norc", "--noprofile"]);
    // Commands that leave the shell's own name in front while they run. Each output client is
    // silenced once its command is running: the run must not take the shell's name for a
    // prompt. It times out with a handle instead.
    let cases = [
        ("w1", "read x; echo got-$x"),
        ("w2", "x=$(sleep 30); echo done"),
        ("w3", "bash -c 'sleep 30; true'"),
        ("w4", "while :; do :; done"),
        // These two draw the very prompt the shell drew ("$ "), cursor and all: only the
        // process tree (a child of the shell; another foreground group) tells them apart.
        ("w5", "x=$(read -p '$ ' y); echo sub"),
        ("w6", "bash --norc --noprofile"),
    ];
    let mut running = Vec::new();
    for (ws, cmd) in cases {
        let s = session(&t, ws, ws).await;
        assert_eq!(run(&s, "true").await.strategy, Strategy::Marker);
        let s2 = s.clone();
        let task = tokio::spawn(async move {
            s2.run(&RunOpts {
                timeout: Duration::from_secs(4),
                ..RunOpts::new(cmd)
            })
            .await
        });
        let pane = s.native().id.clone();
        wait_until("the command entered", || {
            std::future::ready(cursor_at_column_0(&srv, &pane).or(returned_from(&srv, &pane, cmd)))
        })
        .await;
        silence_output_client_of(&srv, ws);
        running.push((cmd, task));
    }
    for (cmd, task) in running {
        let r = task.await.expect("run task").expect("run");
        assert!(
            r.timed_out && r.exit_code.is_none() && r.handle.is_some(),
            "{cmd:?} was reported done while it still runs: {r:?}"
        );
        assert!(r.truncated, "{cmd:?}: output was lost meanwhile: {r:?}");
    }
}

#[tokio::test]
async fn a_repl_run_whose_prompt_was_lost_ends_when_the_prompt_is_on_screen() {
    let (srv, _t, s) = python_session().await;
    let prompt = |cmd: &str, secs: u64| repl(cmd, Duration::from_secs(secs));
    // Silenced before typing: the answer and the next prompt are lost; the prompt is on the
    // screen, so the run ends (no exit code: a REPL has none).
    silence_output_client(&srv);
    let r = s.run(&prompt("6 * 7", 8)).await.unwrap();
    assert_eq!(
        (r.timed_out, r.strategy, r.truncated),
        (false, Strategy::Prompt, true),
        "{r:?}"
    );
    // Silenced while Python sleeps: no prompt on the screen, the run waits.
    let s2 = s.clone();
    let task = tokio::spawn(async move { s2.run(&prompt("import time; time.sleep(30)", 3)).await });
    let pane = s.native().id.clone();
    wait_until("the statement entered", || {
        std::future::ready(cursor_at_column_0(&srv, &pane))
    })
    .await;
    silence_output_client(&srv);
    let r = task.await.expect("run task").expect("run");
    assert!(r.timed_out, "reported done while Python sleeps: {r:?}");
}

#[tokio::test]
async fn a_silenced_output_client_with_no_run_turns_its_output_back_on() {
    use futures_util::StreamExt;
    use termloom_core::OutputEvent;
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(control(&srv));
    let s = session(&t, "w", "a").await;
    // A watcher (a monitor, a session log) and no run: nobody waits for an end mark.
    let mut stream = s.subscribe().await.expect("subscribe");
    silence_output_client(&srv);
    // Within OUTPUT_CHECK_EVERY the client notices and turns its output back on; what is
    // printed from then on reaches the watcher.
    wait_until("the output client's output is back on", || {
        let flags = srv.tmux(&["list-clients", "-F", "#{client_flags}"]);
        std::future::ready(
            flags
                .lines()
                .any(|l| l.contains("pause-after") && !l.contains("no-output"))
                .then_some(()),
        )
    })
    .await;
    s.send_text("echo back-$((6*7))", termloom_core::SendOpts::default())
        .await
        .expect("send");
    let seen = tokio::time::timeout(termloom_tests::timeout(), async {
        let mut text = String::new();
        while let Some(ev) = stream.next().await {
            if let OutputEvent::Output(b) = ev {
                text.push_str(&String::from_utf8_lossy(&b));
                if text.contains("back-42") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "output reaches the watcher again");
}
