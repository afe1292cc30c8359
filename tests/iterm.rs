//! The real `termloom` CLI and `termloom-mcp` server with `--backend iterm`, against the fake
//! iTerm2 (`termloom-fake-iterm`, real bash shells on real ptys).
//!
//! Build first: `cargo build --workspace --bins --features termloom-iterm/fake`. The fake's shells
//! print OSC 133 prompt marks (an rcfile written by the test), as iTerm2's shell integration
//! does, so `run_command` reports exit codes. Every wait polls with a deadline.
//!
//! With `TERMLOOM_ITERM_LIVE=1` on macOS, `live_iterm_smoke` also drives the real iTerm2 (it
//! creates one window in the background and closes it); otherwise it does nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use termloom_tests::{bin, timeout, wait_until, wait_until_blocking};

const COOKIE: &str = "iterm-test-cookie";
const KEY: &str = "iterm-test-key";

/// bash with OSC 133 prompt marks.
const MARKS_RC: &str = r#"PS1='\[\e]133;D;$?\a\e]133;A\a\]$ \[\e]133;B\a\]'
PS0='\e]133;C\a'
HISTFILE=/dev/null
"#;

/// A running `termloom-fake-iterm` with its own socket, HOME and state dir.
struct FakeIterm {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl FakeIterm {
    fn start() -> FakeIterm {
        let dir = tempfile::Builder::new()
            .prefix("tlit-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let socket = dir.path().join("s");
        let rc = dir.path().join("rc");
        std::fs::write(&rc, MARKS_RC).expect("rcfile");
        for d in ["home", "state"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dir");
        }
        let mut child = Command::new(bin("termloom-fake-iterm"))
            .arg("--socket")
            .arg(&socket)
            .args(["--cookie", COOKIE, "--key", KEY])
            .arg("--shell")
            .arg(format!("/bin/bash --rcfile {} --noprofile", rc.display()))
            .arg("--cwd")
            .arg(dir.path())
            .arg("--exit-on-stdin-eof")
            .env("HOME", dir.path().join("home"))
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start termloom-fake-iterm (build with --features termloom-iterm/fake)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("fake iTerm2 did not get ready ({e}): {line:?}"));
        assert_eq!(ready["ready"], true, "{ready}");
        FakeIterm { dir, child, socket }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "HOME".into(),
                self.path().join("home").to_string_lossy().into_owned(),
            ),
            (
                "TERMLOOM_ITERM_SOCKET".into(),
                self.socket.to_string_lossy().into_owned(),
            ),
            ("ITERM2_COOKIE".into(), COOKIE.into()),
            ("ITERM2_KEY".into(), KEY.into()),
            ("TERMLOOM_STATE_DIR".into(), self.state()),
        ]
    }

    fn state(&self) -> String {
        self.path().join("state").to_string_lossy().into_owned()
    }

    fn cli(&self) -> Command {
        let mut c = Command::new(bin("termloom"));
        c.args(["--backend", "iterm", "--state-dir", &self.state()])
            .envs(self.env())
            .env_remove("TERMLOOM_TMUX_SOCKET");
        c
    }
}

impl Drop for FakeIterm {
    fn drop(&mut self) {
        // Closing stdin stops it (--exit-on-stdin-eof); kill in case it does not.
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn show(args: &[&str], o: &Output) -> String {
    format!(
        "termloom --backend iterm {args:?}: status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(f: &FakeIterm, args: &[&str]) -> Output {
    f.cli().args(args).output().expect("run termloom")
}

fn ok(f: &FakeIterm, args: &[&str]) -> String {
    let o = run(f, args);
    assert!(o.status.success(), "{}", show(args, &o));
    String::from_utf8(o.stdout).expect("utf-8")
}

fn json_of(f: &FakeIterm, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(f, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn fails(f: &FakeIterm, args: &[&str]) -> String {
    let o = run(f, args);
    assert_eq!(o.status.code(), Some(1), "{}", show(args, &o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_line(f: &FakeIterm, target: &str, line: &str) -> String {
    wait_until_blocking(&format!("{line:?} in {target}"), || {
        let text = ok(f, &["read", target, "--lines", "200"]);
        text.lines().any(|l| l.trim_end() == line).then_some(text)
    })
}

fn by_name(all: &Value, name: &str) -> Value {
    all.as_array()
        .expect("ls --json is an array")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no session {name}: {all:#}"))
}

#[test]
fn cli_drives_iterm_sessions_windows_and_layouts() {
    let f = FakeIterm::start();
    assert_eq!(ok(&f, &["ls"]).lines().count(), 1, "only the header");
    let id = ok(
        &f,
        &[
            "new",
            "--name",
            "web",
            "--workspace",
            "proj",
            "--",
            "echo",
            "started-web",
        ],
    );
    let id = id.trim();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    wait_line(&f, "web", "started-web");

    let all = json_of(&f, &["ls"]);
    let web = by_name(&all, "web");
    assert_eq!(web["id"], id);
    assert_eq!(web["workspace"], "proj");
    assert_eq!(web["native"]["backend"], "iterm");
    assert_eq!(web["terminal"]["backend"], "iterm");
    assert_eq!(web["managed"], true);
    assert_eq!(web["width"], 80);

    // send / keys / read / search
    ok(&f, &["send", "web", "echo sent-$((6*7)) 'q\"uote' é"]);
    wait_line(&f, "web", "sent-42 q\"uote é");
    ok(&f, &["send", "web", "--no-enter", "echo keys-$((1+1))"]);
    ok(&f, &["keys", "web", "Enter"]);
    wait_line(&f, "web", "keys-2");
    // C-c can land before bash hands the terminal to sleep: press it until the prompt is back.
    ok(&f, &["send", "web", "sleep 30"]);
    wait_until_blocking("C-c to stop sleep", || {
        ok(&f, &["keys", "web", "C-c"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let text = ok(&f, &["read", "web", "--lines", "5"]);
        (text.lines().last().map(str::trim_end) == Some("$")).then_some(())
    });
    ok(&f, &["send", "web", "echo after-interrupt"]);
    wait_line(&f, "web", "after-interrupt");
    let found = ok(&f, &["search", "web", "^sent-4."]);
    assert!(found.contains(": sent-42"), "{found}");
    let screen = ok(&f, &["read", "web", "--screen"]);
    assert!(screen.contains("after-interrupt"), "{screen}");
    let first = json_of(&f, &["read", "web"]);
    let cursor = first["cursor"].as_str().expect("cursor").to_owned();
    ok(&f, &["send", "web", "echo since-cursor"]);
    wait_line(&f, "web", "since-cursor");
    let since = ok(&f, &["read", "web", "--since", &cursor]);
    assert!(since.lines().any(|l| l == "since-cursor"), "{since}");
    assert!(!since.contains("started-web"), "{since}");
    // A read that ends in a line still being printed: the next read since gives that line
    // again, whole (before, its rest was never returned).
    ok(
        &f,
        &[
            "send",
            "web",
            "printf part-one; read -s x; echo ' part-two'",
        ],
    );
    let mid = wait_until_blocking("the unfinished line", || {
        let v = json_of(&f, &["read", "web", "--lines", "1"]);
        (v["text"].as_str() == Some("part-one")).then_some(v)
    });
    ok(&f, &["send", "web", "go"]);
    wait_line(&f, "web", "part-one part-two");
    let rest = ok(
        &f,
        &["read", "web", "--since", mid["cursor"].as_str().unwrap()],
    );
    assert!(rest.lines().any(|l| l == "part-one part-two"), "{rest:?}");
    // The screen cleared under a cursor: what came after is returned (before, nothing, until the
    // buffer grew past the cursor's line).
    let before_clear = json_of(&f, &["read", "web", "--lines", "1"]);
    ok(
        &f,
        &["send", "web", r"printf '\033[H\033[2J'; echo AFTER-CLEAR"],
    );
    wait_line(&f, "web", "AFTER-CLEAR");
    let after = json_of(
        &f,
        &[
            "read",
            "web",
            "--since",
            before_clear["cursor"].as_str().unwrap(),
        ],
    );
    let text = after["text"].as_str().unwrap();
    assert!(text.lines().any(|l| l == "AFTER-CLEAR"), "{after:#}");

    // split / rename / focus / tag / resize
    let api = ok(
        &f,
        &[
            "split",
            "web",
            "--horizontal",
            "--name",
            "api",
            "--",
            "echo",
            "in-api",
        ],
    );
    wait_line(&f, api.trim(), "in-api");
    let all = json_of(&f, &["ls"]);
    let api_info = by_name(&all, "api");
    assert_eq!(api_info["pane_index"], 1);
    assert_eq!(api_info["window_index"], web["window_index"]);
    assert_eq!(api_info["width"], 40);
    ok(&f, &["rename", "api", "backend"]);
    assert_eq!(
        by_name(&json_of(&f, &["ls"]), "backend")["id"],
        api_info["id"]
    );
    ok(&f, &["focus", "backend"]);
    ok(&f, &["tag", "backend", "--remove"]);
    assert_eq!(by_name(&json_of(&f, &["ls"]), "backend")["managed"], false);
    ok(&f, &["tag", "backend"]);
    let err = fails(&f, &["resize", "web", "--width", "30"]);
    assert!(err.contains("iterm cannot resize panes"), "{err}");

    // A layout in its own workspace.
    let made = json_of(
        &f,
        &[
            "new",
            "--layout",
            "quad",
            "--workspace",
            "grid",
            "--panes",
            "a,b,c,d",
        ],
    );
    assert_eq!(made.as_object().map(|m| m.len()), Some(4), "{made}");
    let all = json_of(&f, &["ls"]);
    let grid: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["workspace"] == "grid")
        .collect();
    assert_eq!(grid.len(), 4);
    let mut names: Vec<(u64, String)> = grid
        .iter()
        .map(|s| {
            (
                s["pane_index"].as_u64().unwrap(),
                s["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names.iter().map(|n| n.1.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    assert!(
        grid.iter()
            .all(|s| s["width"].as_u64() < Some(80) && s["height"].as_u64() < Some(24))
    );

    // Workspaces and windows.
    let ws = ok(&f, &["workspace", "ls"]);
    assert!(ws.contains("proj") && ws.contains("grid"), "{ws}");
    ok(
        &f,
        &[
            "window",
            "new",
            "proj",
            "--name",
            "logs",
            "--session",
            "tail",
            "--",
            "echo",
            "in-logs",
        ],
    );
    wait_line(&f, "tail", "in-logs");
    let wins = json_of(&f, &["window", "ls", "proj"]);
    let names: Vec<&str> = wins
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"logs"), "{wins}");
    ok(&f, &["window", "rename", "proj:logs", "journal"]);
    ok(&f, &["window", "select", "proj:journal"]);
    assert_eq!(
        by_name(&json_of(&f, &["ls"]), "tail")["window_active"],
        true
    );
    ok(&f, &["window", "kill", "proj:journal"]);
    let err = fails(&f, &["read", "tail"]);
    assert!(err.contains("dead") || err.contains("no session"), "{err}");

    // kill: the registry remembers the dead session.
    ok(&f, &["kill", "backend"]);
    let err = fails(&f, &["send", "backend", "x"]);
    assert!(err.contains("dead"), "{err}");
    let remembered = json_of(&f, &["sessions"]);
    let dead = remembered
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == api_info["id"])
        .cloned()
        .expect("the killed session is remembered");
    assert_eq!(dead["dead"], true);
    ok(&f, &["workspace", "kill", "grid"]);
    assert!(!ok(&f, &["workspace", "ls"]).contains("grid"));
    // The session still answers to its id after all that.
    let again = by_name(&json_of(&f, &["ls"]), "web");
    assert_eq!(again["id"], id);
}

#[test]
fn keys_after_ctrl_c_in_the_same_call_are_not_dropped() {
    // The kernel drops the input queued behind a C-c when it raises SIGINT: the keys after one
    // must wait until the session has answered it (before, 'echo same' arrived as 'cho same',
    // and that ran).
    let f = FakeIterm::start();
    ok(&f, &["new", "--name", "k", "--", "echo", "ready"]);
    wait_line(&f, "k", "ready");
    for i in 0..3 {
        ok(&f, &["send", "k", "--no-enter", "echo never"]);
        let mut keys = vec!["keys", "k", "C-c"];
        let word = format!("echo same-{i}");
        let chars: Vec<String> = word
            .chars()
            .map(|c| {
                if c == ' ' {
                    "Space".into()
                } else {
                    c.to_string()
                }
            })
            .collect();
        keys.extend(chars.iter().map(String::as_str));
        keys.push("Enter");
        ok(&f, &keys);
        let text = wait_line(&f, "k", &format!("same-{i}"));
        assert!(!text.contains("command not found"), "{text}");
    }
    let text = ok(&f, &["read", "k", "--lines", "200"]);
    assert!(!text.lines().any(|l| l == "never"), "{text}");
}

#[test]
fn multi_line_text_is_pasted_and_a_multi_line_run_is_one_command() {
    // As on tmux: multi-line text sent without Enter runs nothing (it ran every line but the
    // last), and a multi-line run reports all its output and its last command's status (it
    // reported the first line's, 0, and only its output).
    let f = FakeIterm::start();
    ok(&f, &["new", "--name", "ml"]);
    ok(&f, &["run", "ml", "--", "true"]);
    let flag = f.path().join("ran-too-soon");
    let text = format!("touch '{}'\necho second-line", flag.display());
    ok(&f, &["send", "ml", "--no-enter", &text]);
    ok(&f, &["keys", "ml", "C-c"]);
    let o = run(
        &f,
        &["--json", "run", "ml", "--", "echo one\necho two\nfalse"],
    );
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&["run"], &o)));
    assert_eq!(
        (v["output"].as_str(), v["exit_code"].as_i64()),
        (Some("one\ntwo"), Some(1)),
        "{v}"
    );
    assert!(!flag.exists(), "a line of the paste ran");
    let o = run(
        &f,
        &["--json", "run", "ml", "--", "cat <<EOF\nheredoc-body\nEOF"],
    );
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&["run"], &o)));
    assert_eq!(
        (v["output"].as_str(), v["exit_code"].as_i64()),
        (Some("heredoc-body"), Some(0)),
        "{v}"
    );
}

#[test]
fn cli_refuses_tmux_only_flags_with_iterm_instead_of_typing_here() {
    // `--host` meant "type this on build1": with the iterm backend it used to be ignored, and the
    // text ran in the local iTerm2 session.
    let f = FakeIterm::start();
    ok(&f, &["new", "--name", "here", "--", "cat"]);
    for (flags, word) in [(["--host", "build1"], "--host"), (["-L", "other"], "-L")] {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["send", "here", "meant-elsewhere"]);
        let err = fails(&f, &args);
        assert!(err.contains(word) && err.contains("iterm"), "{err}");
    }
    let text = ok(&f, &["read", "here", "--lines", "50"]);
    assert!(!text.contains("meant-elsewhere"), "{text}");
}

#[test]
fn cli_reports_a_missing_iterm_and_refused_credentials() {
    let f = FakeIterm::start();
    let o = f
        .cli()
        .env("TERMLOOM_ITERM_SOCKET", f.path().join("no-socket-here"))
        .arg("ls")
        .output()
        .expect("run termloom");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("iTerm2 is not running"), "{err}");
    assert!(err.contains("Enable Python API"), "{err}");
    let o = f
        .cli()
        .env("ITERM2_COOKIE", "wrong")
        .arg("ls")
        .output()
        .expect("run termloom");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(o.stdout.is_empty());
}

async fn call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &'static str,
    args: Value,
) -> Value {
    let params = CallToolRequestParams::new(tool)
        .with_arguments(args.as_object().cloned().expect("arguments are an object"));
    let r = client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"));
    assert_ne!(r.is_error, Some(true), "{tool}: {r:?}");
    match r.structured_content {
        Some(v) => v,
        None => panic!("{tool} returned no structured content: {:?}", r.content),
    }
}

async fn call_err(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &'static str,
    args: Value,
) -> String {
    let params = CallToolRequestParams::new(tool)
        .with_arguments(args.as_object().cloned().expect("arguments are an object"));
    match client.call_tool(params).await {
        Ok(r) => {
            assert_eq!(r.is_error, Some(true), "{tool} should fail: {r:?}");
            format!("{:?}", r.content)
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_drives_iterm() {
    let f = FakeIterm::start();
    let mut cmd = tokio::process::Command::new(bin("termloom-mcp"));
    cmd.args([
        "--backend",
        "iterm",
        "--state-dir",
        &f.state(),
        "--tier",
        "destructive",
        "--no-audit",
    ])
    .envs(f.env())
    .env_remove("TERMLOOM_TMUX_SOCKET");
    let transport = rmcp::transport::TokioChildProcess::new(cmd).expect("start termloom-mcp");
    let client = tokio::time::timeout(timeout(), ().serve(transport))
        .await
        .expect("MCP handshake in time")
        .expect("MCP handshake");

    let listed = call(&client, "list_sessions", json!({})).await;
    assert_eq!(listed["count"], 0, "{listed}");
    let made = call(
        &client,
        "create_session",
        json!({"name": "agent", "workspace": "mcp", "command": "echo hello-mcp"}),
    )
    .await;
    let id = made["id"].as_str().expect("id").to_owned();
    assert!(
        made["native"].as_str().unwrap_or("").starts_with("iterm:"),
        "{made}"
    );
    // Shell integration: exact exit codes and output.
    let ready = wait_until("the first prompt", || async {
        let st = call(&client, "get_status", json!({"session": id})).await;
        (st["shell_integration"] == true).then_some(st)
    })
    .await;
    assert_eq!(ready["state"], "idle");
    let r = call(
        &client,
        "run_command",
        json!({"session": id, "command": "echo run-out; (exit 5)", "timeout_ms": 20000}),
    )
    .await;
    assert_eq!(r["exit_code"], 5, "{r}");
    assert_eq!(r["output"], "run-out");
    assert_eq!(r["strategy"], "shell_integration");
    let st = call(&client, "get_status", json!({"session": id})).await;
    assert_eq!(st["last_exit_code"], 5);

    // Send, wait for a line, read.
    call(
        &client,
        "send_text",
        json!({"session": id, "text": "sleep 0.3; echo waited-$((2+3))"}),
    )
    .await;
    let w = call(
        &client,
        "wait_for",
        json!({"session": id, "pattern": "^waited-5$", "timeout_ms": 20000}),
    )
    .await;
    assert_eq!(w["matched"], true, "{w}");
    assert_eq!(w["line"], "waited-5");
    let read = call(&client, "read_output", json!({"session": id, "lines": 20})).await;
    assert!(
        read["text"].as_str().unwrap_or("").contains("waited-5"),
        "{read}"
    );

    // A timed-out run continues with wait_for(handle).
    let r = call(
        &client,
        "run_command",
        json!({"session": id, "command": "sleep 1; echo done-late", "timeout_ms": 100}),
    )
    .await;
    assert_eq!(r["timed_out"], true, "{r}");
    let handle = r["handle"].as_str().expect("handle").to_owned();
    let w = call(
        &client,
        "wait_for",
        json!({"session": id, "handle": handle, "timeout_ms": 20000}),
    )
    .await;
    assert_eq!(w["run"]["output"], "done-late", "{w}");
    assert_eq!(w["run"]["exit_code"], 0);

    call(
        &client,
        "send_keys",
        json!({"session": id, "keys": ["C-c"]}),
    )
    .await;

    // Split, layout, close.
    let split = call(
        &client,
        "split_pane",
        json!({"session": id, "direction": "horizontal", "name": "helper"}),
    )
    .await;
    assert_eq!(split["name"], "helper");
    let lay = call(
        &client,
        "create_layout",
        json!({"layout": "main-vertical", "workspace": "mcp-grid", "panes": [{"name": "m1"}, {"name": "m2"}, {"name": "m3"}]}),
    )
    .await;
    assert_eq!(lay["sessions"].as_array().map(Vec::len), Some(3), "{lay}");
    let listed = call(&client, "list_sessions", json!({})).await;
    assert_eq!(listed["count"], 5, "{listed}");
    call(&client, "close_session", json!({"session": "helper"})).await;
    let err = call_err(&client, "read_output", json!({"session": "helper"})).await;
    assert!(err.contains("dead") || err.contains("no session"), "{err}");
    let err = call_err(&client, "resize_pane", json!({"session": id, "width": 20})).await;
    assert!(err.contains("cannot resize"), "{err}");
    client.cancel().await.expect("stop the MCP client");
}

/// Drives the real iTerm2 when `TERMLOOM_ITERM_LIVE=1` (macOS, iTerm2 running with the Python
/// API enabled); a no-op everywhere else.
#[tokio::test]
async fn live_iterm_smoke() {
    if std::env::var("TERMLOOM_ITERM_LIVE").ok().as_deref() != Some("1") {
        eprintln!("TERMLOOM_ITERM_LIVE is not 1: skipping the live iTerm2 test");
        return;
    }
    use termloom_core::{CaptureOpts, ReadRange, RunOpts, SendOpts, SessionSpec, Terminal};
    let term = termloom_iterm::ItermTerminal::from_env();
    let ws = format!("termloom-live-{}", std::process::id());
    let info = term
        .create_session(&SessionSpec {
            name: Some(ws.clone()),
            workspace: Some(ws.clone()),
            ..Default::default()
        })
        .await
        .expect("create a session in iTerm2");
    let s = term.open(&info).await.expect("open");
    s.send_text("echo live-$((20+22))", SendOpts::default())
        .await
        .expect("send");
    wait_until("live-42 on the screen", || async {
        let c = s
            .capture(&CaptureOpts {
                range: ReadRange::Tail(50),
                ..Default::default()
            })
            .await
            .ok()?;
        c.text.lines().any(|l| l.trim() == "live-42").then_some(())
    })
    .await;
    let r = s
        .run(&RunOpts {
            timeout: std::time::Duration::from_secs(20),
            ..RunOpts::new("echo run-live; false")
        })
        .await
        .expect("run");
    assert_eq!(r.output.lines().last(), Some("run-live"), "{r:?}");
    assert!(r.exit_code.is_some() || r.strategy == termloom_core::Strategy::Quiet);
    term.destroy_workspace(&ws).await.expect("close the window");
}
