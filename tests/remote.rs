//! Remote hosts over ssh, against a real sshd on 127.0.0.1 (see `harness::ssh`).
//!
//! The "remote" host is this machine reached through ssh, and the remote tmux runs with `-S` on
//! the test's private socket, so assertions can look at that server directly. Every test polls with
//! deadlines; failures that must be fast are timed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use termloom_core::{
    CaptureOpts, Error, Loom, ReadRange, Registry, RunOpts, SendOpts, SessionSpec, Terminal,
};
use termloom_tests::ssh::{BAD_KEY_HOST, CLOSED_HOST, HOST, SshServer};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

use crate::tmux_backend::{drain_sink, new_session, raw_sink, tail, wait_line, wait_prompt};

/// A private tmux server and an sshd to reach it through.
fn setup() -> (TmuxServer, SshServer) {
    (TmuxServer::start(), SshServer::start())
}

fn remote_options(srv: &TmuxServer, sshd: &SshServer, host: &str, control: bool) -> TmuxOptions {
    TmuxOptions {
        control,
        ..sshd.remote(srv.options(), host)
    }
}

fn remote_terminal(srv: &TmuxServer, sshd: &SshServer, control: bool) -> TmuxTerminal {
    TmuxTerminal::new(remote_options(srv, sshd, HOST, control))
}

/// A command list whose reply waits until `release` exists, after creating `started`: `run-shell`
/// (without `-b`) holds the client's command queue until its shell command ends, so the
/// `display-message` after it answers only then (a spawned client also waits for run-shell
/// itself; a control client gets run-shell's own reply at once). The paths are on the remote
/// host, which is this machine.
fn blocking_call(started: &Path, release: &Path) -> Vec<String> {
    // The loop also ends when the test's dir is gone or after 60 s: tmux waits for running jobs
    // before it exits, so a job that never ended would keep a killed server alive.
    let dir = release.parent().expect("release file in a dir");
    vec![
        "run-shell".into(),
        format!(
            "touch '{}'; i=0; while [ ! -e '{}' ] && [ -d '{}' ] && [ $i -lt 1200 ]; \
             do i=$((i+1)); sleep 0.05; done",
            started.display(),
            release.display(),
            dir.display()
        ),
        ";".into(),
        "display-message".into(),
        "-p".into(),
        "released".into(),
    ]
}

/// Ends the blocking call's loop when dropped (even when the test fails), so no job lingers.
struct Release(std::path::PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// Waits until the blocking call runs on the remote host: the kill then lands mid-call.
async fn wait_started(started: &Path) {
    wait_until("the blocking call to run on the remote host", || async {
        started.exists().then_some(())
    })
    .await;
}

#[tokio::test]
async fn create_send_read_through_ssh_byte_for_byte() {
    let (srv, sshd) = setup();
    let t = remote_terminal(&srv, &sshd, false);
    let (info, s) = new_session(&t, "rw", "sink").await;
    // The terminal is keyed by host + socket, and the pane is tagged like a local one.
    assert_eq!(info.terminal.host.as_deref(), Some(HOST));
    assert_eq!(
        info.terminal.socket.as_deref(),
        Some(srv.socket.to_string_lossy().as_ref())
    );
    let tag = srv.tmux(&[
        "show-options",
        "-p",
        "-v",
        "-t",
        &info.native.id,
        "@termloom_id",
    ]);
    assert_eq!(tag.trim(), info.id.to_string());
    // The server really was started through ssh, on the private socket only.
    assert!(
        sshd.log().contains("Accepted publickey"),
        "sshd log:\n{}",
        sshd.log()
    );

    let file = raw_sink(&srv, s.as_ref(), "remote").await;
    let cases: Vec<(&str, String)> = vec![
        ("quotes", r#"it's "double" and 'single' '\'' "\"""#.into()),
        ("dollar", "$HOME ${PATH} $(id) $((1+2)) $'\\n' $$ $0".into()),
        ("semicolons", "a;b ; c;".into()),
        ("just a semicolon", ";".into()),
        ("escaped semicolon", "x\\;".into()),
        ("backticks", "`id` and `uname -a`".into()),
        (
            "globs and redirects",
            "* ? [a-z] ~ > /tmp/x < /etc/passwd | cat & wait".into(),
        ),
        ("backslashes", "back\\slash\\ \\\\ \\n".into()),
        ("comment", "# not a comment; echo pwned".into()),
        ("tmux syntax", "#{pane_id} #[fg=red] ## #(id) {} ;;".into()),
        ("dash first", "-l -- --".into()),
        (
            "newlines",
            "line 1\nline 2; rm -rf /nonexistent\n\n`id`\n".into(),
        ),
        ("crlf", "dos\r\nline\r\n".into()),
        ("unicode", "日本語 ✓ émoji 🎉 ZWJ 👩‍💻 combining é".into()),
        (
            "control characters",
            "esc\x1b[31m del\x7f bel\x07 tab\t".into(),
        ),
        ("long", "x'$`\";\\".repeat(2000)),
    ];
    let mut offset = 0;
    for (i, (label, text)) in cases.iter().enumerate() {
        s.send_text(text, SendOpts { enter: false })
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let sentinel = format!("<<end {i}>>");
        let got = drain_sink(s.as_ref(), &file, offset, &sentinel).await;
        offset += got.len() + sentinel.len();
        assert!(
            got == text.as_bytes(),
            "{label}: sent {:?}, the pane got {:?}",
            text,
            String::from_utf8_lossy(&got)
        );
    }

    // Read back through ssh.
    let (_, s2) = new_session(&t, "rw", "reader").await;
    wait_prompt(s2.as_ref()).await;
    s2.send_text("echo \"remote-$((6*7))\" '日本'", SendOpts::default())
        .await
        .unwrap();
    let text = wait_line(s2.as_ref(), "remote-42 日本").await;
    assert!(text.contains("remote-42 日本"), "{text}");
    let last = s2
        .capture(&CaptureOpts {
            range: ReadRange::Tail(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(last.text.contains("remote-42"), "{}", last.text);
}

#[tokio::test]
async fn remote_sessions_have_their_own_identity_in_the_registry() {
    let (srv, sshd) = setup();
    let local = srv.terminal();
    let remote = remote_terminal(&srv, &sshd, false);
    assert_eq!(remote.key().host.as_deref(), Some(HOST));
    assert_ne!(remote.key(), local.key());
    let reg = Registry::open(&srv.state).unwrap();
    let loom = Loom::new(Arc::new(remote.clone()), Some(reg));
    let info = loom
        .create_session(&SessionSpec {
            name: Some("r1".into()),
            workspace: Some("rws".into()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create through the loom: {e}"));
    let listed = loom.list_sessions().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s.id == info.id && s.terminal.host.as_deref() == Some(HOST))
    );
    let text = std::fs::read_to_string(srv.state.join("registry.json")).unwrap();
    assert!(
        text.contains(&format!("\"host\": \"{HOST}\""))
            || text.contains(&format!("\"host\":\"{HOST}\"")),
        "{text}"
    );
    // The same pane, seen locally, carries the same persistent id.
    let seen = local.list_sessions().await.unwrap();
    assert!(seen.iter().any(|s| s.id == info.id));
}

#[tokio::test]
async fn control_mode_and_watching_work_through_ssh() {
    use futures_util::StreamExt;
    use termloom_core::text::{LineEvent, lines};
    let (srv, sshd) = setup();
    let t = remote_terminal(&srv, &sshd, true);
    let (_, s) = new_session(&t, "cw", "watched").await;
    wait_prompt(s.as_ref()).await;
    // Commands now go over the one long-lived `ssh … tmux -C` client.
    let conn = t
        .client()
        .control()
        .expect("control mode on")
        .connection(true)
        .await
        .unwrap_or_else(|e| panic!("control connection over ssh: {e}"));
    assert!(conn.is_alive());
    let mut stream = Box::pin(lines(s.subscribe().await.unwrap()));
    s.send_text("echo streamed-$((6*7)) 'é'", SendOpts::default())
        .await
        .unwrap();
    let got = tokio::time::timeout(termloom_tests::timeout(), async {
        while let Some(ev) = stream.next().await {
            if let LineEvent::Line(l) = ev
                && l.trim() == "streamed-42 é"
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("streamed line in time");
    assert!(got);
    // Multi-line text goes through `load-buffer -` with stdin carried by ssh.
    s.send_text("echo one\necho 'two;'", SendOpts::default())
        .await
        .unwrap();
    wait_line(s.as_ref(), "two;").await;
    s.close().await.unwrap();
    let closed = tokio::time::timeout(termloom_tests::timeout(), async {
        while let Some(ev) = stream.next().await {
            if let LineEvent::Closed(_) = ev {
                return true;
            }
        }
        true
    })
    .await
    .expect("the stream ends when the pane closes");
    assert!(closed);
}

#[tokio::test]
async fn run_reports_exit_codes_through_ssh() {
    let (srv, sshd) = setup();
    let t = remote_terminal(&srv, &sshd, true);
    let (_, s) = new_session(&t, "run", "runner").await;
    wait_prompt(s.as_ref()).await;
    let ok = s
        .run(&RunOpts {
            timeout: Duration::from_secs(20),
            ..RunOpts::new("echo ran-$((40+2))")
        })
        .await
        .unwrap_or_else(|e| panic!("run through ssh: {e}"));
    assert_eq!(ok.exit_code, Some(0), "{ok:?}");
    assert!(ok.output.contains("ran-42"), "{ok:?}");
    let bad = s
        .run(&RunOpts {
            timeout: Duration::from_secs(20),
            ..RunOpts::new("echo failing; (exit 7)")
        })
        .await
        .unwrap();
    assert_eq!(bad.exit_code, Some(7), "{bad:?}");
}

/// Kills the ssh connection while a call is in flight: the call fails at once (well before the
/// command timeout) and the next call reconnects.
async fn drop_mid_call(control: bool) {
    let (srv, sshd) = setup();
    let opts = TmuxOptions {
        command_timeout: Duration::from_secs(60),
        ..remote_options(&srv, &sshd, HOST, control)
    };
    let t = TmuxTerminal::new(opts);
    let (_, s) = new_session(&t, "drop", "d").await;
    wait_prompt(s.as_ref()).await;
    let (started, release) = (srv.dir().join("started"), srv.dir().join("release"));
    let _release = Release(release.clone());
    let client = t.clone();
    let args = blocking_call(&started, &release);
    let call = tokio::spawn(async move {
        let t0 = Instant::now();
        let r = client.client().run(args).await;
        (r, t0.elapsed())
    });
    wait_started(&started).await;
    let killed = sshd.drop_connections();
    assert!(killed > 0, "no ssh connection to drop");
    let (r, took) = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call in flight ended when the connection dropped")
        .unwrap();
    let e = r.expect_err("a call whose connection dropped must fail");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let msg = e.to_string();
    eprintln!("control={control}: the call failed {took:?} after it started: {msg}");
    assert!(
        msg.contains("lost")
            || msg.contains("dropped")
            || msg.contains("killed")
            || msg.contains(HOST),
        "{msg}"
    );
    // The next call reconnects.
    s.send_text("echo back-$((1+1))", SendOpts::default())
        .await
        .unwrap_or_else(|e| panic!("the call after the drop: {e}"));
    wait_line(s.as_ref(), "back-2").await;
    let listed = t.list_sessions().await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_fails_the_call_and_the_next_call_reconnects_spawned() {
    drop_mid_call(false).await;
}

#[tokio::test]
async fn a_dropped_connection_fails_the_call_and_the_next_call_reconnects_control() {
    drop_mid_call(true).await;
}

#[tokio::test]
async fn killing_the_control_ssh_client_fails_fast_and_reconnects() {
    let (srv, sshd) = setup();
    let opts = TmuxOptions {
        command_timeout: Duration::from_secs(60),
        ..remote_options(&srv, &sshd, HOST, true)
    };
    let t = TmuxTerminal::new(opts);
    let (_, s) = new_session(&t, "kc", "k").await;
    wait_prompt(s.as_ref()).await;
    let ct = t.client().control().unwrap();
    let conn = ct.connection(true).await.unwrap();
    let pid = conn.pid().expect("the ssh client's pid");
    let (started, release) = (srv.dir().join("started"), srv.dir().join("release"));
    let _release = Release(release.clone());
    let client = t.clone();
    let args = blocking_call(&started, &release);
    let call = tokio::spawn(async move {
        let t0 = Instant::now();
        (client.client().run(args).await, t0.elapsed())
    });
    wait_started(&started).await;
    let st = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let (r, took) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call ended when its ssh client died")
        .unwrap();
    assert!(r.is_err(), "{r:?}");
    assert!(took < Duration::from_secs(10));
    assert!(!conn.is_alive());
    // Next call: a new ssh client.
    let c = s
        .capture(&tail(5))
        .await
        .unwrap_or_else(|e| panic!("read after the kill: {e}"));
    assert!(c.text.contains('$'), "{}", c.text);
    let again = ct.connection(true).await.unwrap();
    assert_ne!(again.pid(), Some(pid));
    drop(sshd);
}

async fn expect_fast_error(t: &TmuxTerminal, limit: Duration) -> Error {
    let started = Instant::now();
    let r = t.list_sessions().await;
    let took = started.elapsed();
    let e = match r {
        Ok(v) => panic!("a call to {} must fail, got {v:?}", t.key()),
        Err(e) => e,
    };
    eprintln!("{} failed in {took:?}: {e}", t.key());
    assert!(took < limit, "took {took:?}: {e}");
    e
}

#[tokio::test]
async fn unreachable_host_refused_auth_and_missing_tmux_give_clear_errors_fast() {
    let (srv, sshd) = setup();
    for control in [false, true] {
        let closed = TmuxTerminal::new(remote_options(&srv, &sshd, CLOSED_HOST, control));
        let e = expect_fast_error(&closed, Duration::from_secs(8)).await;
        let msg = e.to_string();
        assert!(
            msg.contains(CLOSED_HOST) && msg.contains("cannot reach") && msg.contains("refused"),
            "control={control}: {msg}"
        );
        assert!(matches!(e, Error::ConnectionLost { .. }), "{e:?}");

        // The good host's master (ssh keys masters by host name, port and user, not by key) would
        // let the bad key in on the same account.
        sshd.close_masters();
        let bad = TmuxTerminal::new(remote_options(&srv, &sshd, BAD_KEY_HOST, control));
        let e = expect_fast_error(&bad, Duration::from_secs(8)).await;
        let msg = e.to_string();
        assert!(
            msg.contains(BAD_KEY_HOST) && msg.contains("refused authentication"),
            "control={control}: {msg}"
        );

        let no_tmux = TmuxTerminal::new(TmuxOptions {
            tmux_bin: "/nonexistent/tmux".into(),
            ..remote_options(&srv, &sshd, HOST, control)
        });
        let e = expect_fast_error(&no_tmux, Duration::from_secs(8)).await;
        let msg = e.to_string();
        assert!(
            msg.contains("not installed") && msg.contains(HOST),
            "control={control}: {msg}"
        );
    }
    // An option smuggled in as a host is refused before ssh runs.
    let evil = TmuxTerminal::new(remote_options(
        &srv,
        &sshd,
        "-oProxyCommand=touch /tmp/termloom-pwned",
        false,
    ));
    let e = expect_fast_error(&evil, Duration::from_secs(2)).await;
    assert!(e.to_string().contains("must not start with '-'"), "{e}");
    // Still reachable the right way afterwards.
    let good = remote_terminal(&srv, &sshd, false);
    let (_, s) = new_session(&good, "ok", "fine").await;
    wait_prompt(s.as_ref()).await;
}

#[tokio::test]
async fn the_cli_takes_host_and_ssh_config() {
    let (srv, sshd) = setup();
    let t = remote_terminal(&srv, &sshd, false);
    let (info, s) = new_session(&t, "cli", "clisess").await;
    wait_prompt(s.as_ref()).await;
    let run = |args: &[&str]| {
        let out = srv
            .cli()
            .env("TERMLOOM_SSH_CONFIG", &sshd.config)
            .env("XDG_RUNTIME_DIR", sshd.runtime_dir())
            .arg("--host")
            .arg(HOST)
            .args(args)
            .output()
            .expect("run termloom");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["--json", "ls"]);
    assert!(ok, "ls failed: {err}");
    assert!(out.contains(&info.id.to_string()), "{out}");
    assert!(out.contains(HOST), "{out}");
    let (ok, _, err) = run(&["send", "clisess", "echo via-cli-$((2*3))"]);
    assert!(ok, "send failed: {err}");
    wait_line(s.as_ref(), "via-cli-6").await;
    // A bad host fails clearly, without a prompt.
    let out = srv
        .cli()
        .env("TERMLOOM_SSH_CONFIG", &sshd.config)
        .env("XDG_RUNTIME_DIR", sshd.runtime_dir())
        .args(["--host", CLOSED_HOST, "ls"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
}

/// A person's tmux client on a pty (`script`), attached to a workspace; killed when dropped.
struct PtyClient(std::process::Child);

impl Drop for PtyClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The people's terminals (not control-mode clients) attached to workspace `ws`.
fn people(srv: &TmuxServer, ws: &str) -> usize {
    srv.tmux(&[
        "list-clients",
        "-t",
        &format!("={ws}:"),
        "-F",
        "#{client_control_mode}",
    ])
    .lines()
    .filter(|l| *l == "0")
    .count()
}

/// (pane name, pane id, pid, current command) of every pane of `ws`, sorted by name.
fn project_panes(srv: &TmuxServer, ws: &str) -> Vec<(String, String, u32, String)> {
    let mut v: Vec<(String, String, u32, String)> = srv
        .tmux(&[
            "list-panes",
            "-s",
            "-t",
            &format!("={ws}"),
            "-F",
            "#{@termloom_name}\u{1f}#{pane_id}\u{1f}#{pane_pid}\u{1f}#{pane_current_command}",
        ])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\u{1f}').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_project_with_a_host_opens_and_closes_through_ssh() {
    use termloom_tests::wait_until_blocking;
    let (srv, sshd) = setup();
    // The tmux server runs with the test's environment (HOME, shell): started here, reached
    // through ssh by the CLI.
    srv.tmux(&["new-session", "-d", "-s", "keep"]);
    let config = srv.dir().join("config");
    std::fs::create_dir_all(config.join("projects")).unwrap();
    let log = srv.dir().join("ran.log");
    std::fs::write(
        config.join("projects").join("rp.yaml"),
        format!(
            "name: rp\nhost: {HOST}\nwindows:\n  - name: w\n    panes:\n      - name: long\n        \
             command: sleep 1000\n      - name: count\n        command: \"echo ran >> '{}'\"\n",
            log.display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = srv
            .cli()
            .env("TERMLOOM_CONFIG_DIR", &config)
            .env("TERMLOOM_SSH_CONFIG", &sshd.config)
            .env("XDG_RUNTIME_DIR", sshd.runtime_dir())
            .arg("--json")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run termloom");
        assert!(
            out.status.success(),
            "termloom {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let accepted = || sshd.log().matches("Accepted publickey").count();
    let before_open = accepted();

    // No --host: the project's `host:` selects ssh.
    let first = cli(&["project", "open", "rp"]);
    assert_eq!(first["created_workspace"], true, "{first}");
    assert_eq!(first["created"], 2, "{first}");
    assert!(accepted() > before_open, "open went through ssh");
    wait_until_blocking("sleep to run in the remote pane", || {
        let p = project_panes(&srv, "rp");
        (p.len() == 2 && p.iter().any(|x| x.0 == "rp/long" && x.3 == "sleep")).then_some(())
    });
    wait_until_blocking("the count command to run", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.lines().any(|l| l == "ran"))
    });
    let before = project_panes(&srv, "rp");
    // The panes carry termloom ids (tagged through ssh).
    let ids = srv.tmux(&["list-panes", "-s", "-t", "=rp", "-F", "#{@termloom_id}"]);
    assert_eq!(
        ids.lines().filter(|l| l.len() == 36).count(),
        2,
        "ids: {ids}"
    );

    // A second open finds everything and changes nothing.
    let second = cli(&["project", "open", "rp"]);
    assert_eq!(second["created_workspace"], false, "{second}");
    assert_eq!(
        (second["created"].as_u64(), second["found"].as_u64()),
        (Some(0), Some(2)),
        "{second}"
    );
    assert_eq!(project_panes(&srv, "rp"), before);
    // `show` looks on the project's host; `ls` on the terminal given (`--host`).
    let shown = cli(&["project", "show", "rp"]);
    assert_eq!(shown["status"]["open"], true, "{shown}");
    let ls = cli(&["--host", HOST, "project", "ls"]);
    assert_eq!(ls[0]["name"], "rp", "{ls}");
    assert_eq!(ls[0]["status"]["open"], true, "{ls}");

    // Close detaches the person's terminal and keeps every process.
    let line = format!("tmux -S '{}' attach-session -t '=rp'", srv.socket.display());
    let mut client = PtyClient(
        std::process::Command::new("script")
            .args(["-q", "-f", "-e", "-c", &line, "/dev/null"])
            .envs(srv.env())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("script (util-linux) runs a tmux client on a pty"),
    );
    wait_until_blocking("a client to attach", || {
        (people(&srv, "rp") == 1).then_some(())
    });
    let closed = cli(&["project", "close", "rp"]);
    assert_eq!(closed["was_open"], true, "{closed}");
    assert_eq!(closed["detached"], 1, "{closed}");
    assert_eq!(closed["sessions"], 2, "{closed}");
    wait_until_blocking("the client to detach", || {
        matches!(client.0.try_wait(), Ok(Some(_))).then_some(())
    });
    let after = project_panes(&srv, "rp");
    assert_eq!(after, before, "same panes, pids and commands after close");
    for p in &after {
        assert!(Path::new(&format!("/proc/{}", p.2)).exists(), "{p:?} alive");
    }
    // Reopening attaches to the same panes; the command ran once.
    let again = cli(&["project", "open", "rp"]);
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(project_panes(&srv, "rp"), before);
    let count_pane = &before.iter().find(|p| p.0 == "rp/count").unwrap().1;
    srv.tmux(&[
        "send-keys",
        "-t",
        count_pane,
        "-l",
        "--",
        &format!("echo synced >> '{}'", log.display()),
    ]);
    srv.tmux(&["send-keys", "-t", count_pane, "Enter"]);
    let text = wait_until_blocking("the sync line", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("synced"))
    });
    assert_eq!(text.lines().filter(|l| *l == "ran").count(), 1, "{text}");
}

#[tokio::test]
async fn the_mcp_server_reaches_only_allowed_hosts_through_ssh() {
    use crate::mcp::{err, mcp_command, ok, read_until, start_with};
    use serde_json::json;
    let (srv, sshd) = setup();
    srv.tmux(&["new-session", "-d", "-s", "keep"]);
    let cfg = sshd.config.to_string_lossy().into_owned();
    let mut cmd = mcp_command(&srv, &["--allow-host", "tlt*", "--ssh-config", &cfg]);
    cmd.env("XDG_RUNTIME_DIR", sshd.runtime_dir());
    let c = start_with(cmd).await;
    let accepted = || sshd.log().matches("Accepted publickey").count();
    assert_eq!(accepted(), 0);
    let made = ok(
        &c,
        "create_session",
        json!({"name": "viassh", "workspace": "mw", "host": HOST}),
    )
    .await;
    assert!(accepted() > 0, "the session was made through ssh");
    let id = made["id"]
        .as_str()
        .or_else(|| made["session"]["id"].as_str())
        .unwrap_or_else(|| panic!("no id in {made}"))
        .to_string();
    let listed = ok(&c, "list_sessions", json!({"host": HOST})).await;
    let text = listed.to_string();
    assert!(text.contains(&id) && text.contains(HOST), "{text}");
    ok(
        &c,
        "send_text",
        json!({"session": id, "host": HOST, "text": "echo mcp-ssh-$((5*5))"}),
    )
    .await;
    let out = wait_until("the output read back through ssh", || async {
        let v = ok(
            &c,
            "read_output",
            json!({"session": id, "host": HOST, "lines": 50}),
        )
        .await;
        let t = v["text"].as_str().unwrap_or_default().to_string();
        t.contains("mcp-ssh-25").then_some(t)
    })
    .await;
    assert!(out.contains("mcp-ssh-25"));
    // The same pane, seen locally (the remote host is this machine).
    read_until(&c, &id, "the pane seen locally", |t| {
        t.contains("mcp-ssh-25")
    })
    .await;

    // Hosts the person did not allow are refused before ssh runs: the closed port would give
    // "cannot reach", the bad key "refused authentication".
    let n = accepted();
    for host in [CLOSED_HOST, BAD_KEY_HOST, "127.0.0.1", "-oProxyCommand=id"] {
        let e = err(&c, "list_sessions", json!({"host": host})).await;
        assert!(
            e.contains("refused") && e.contains("tlt*") && !e.contains("cannot reach"),
            "{host}: {e}"
        );
    }
    assert_eq!(accepted(), n, "no connection was made for a refused host");
    c.cancel().await.unwrap();

    // And without --allow-host, no host at all.
    let mut cmd = mcp_command(&srv, &["--ssh-config", &cfg]);
    cmd.env("XDG_RUNTIME_DIR", sshd.runtime_dir());
    let c = start_with(cmd).await;
    let e = err(&c, "list_sessions", json!({"host": HOST})).await;
    assert!(e.contains("refused") && e.contains("--allow-host"), "{e}");
    c.cancel().await.unwrap();
}
