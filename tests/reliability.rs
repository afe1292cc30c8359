//! The reliability suite (issue 8): faults, load and bad input against real tmux and the real
//! `termloom-mcp` binary. Every failure must be a clear error (no panic, no hang) and must not
//! lose a registry entry. ssh dropped mid-call is in `remote` (`a_dropped_connection_*`), the tmux
//! server dying mid-`run` in `run`, a corrupt registry file moved aside in `tmux_persistence`, and
//! the MCP argument errors the other tests name in `mcp::mcp_hostile_inputs_*`; this module covers
//! the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use termloom_core::{
    Error, LogConfig, Loom, Registry, RunOpts, SendOpts, Session, SessionId, SessionSpec, Target,
    Terminal, WindowSel, WindowSpec, WorkspaceSpec,
};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

use crate::mcp::{Client, call, err, ok, start};
use crate::tmux_backend::{wait_command, wait_line, wait_prompt};

/// Awaits `f`, failing the test if it takes longer than `limit`.
async fn bounded<F: std::future::Future>(what: &str, limit: Duration, f: F) -> F::Output {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} took longer than {limit:?}"),
    }
}

fn options(srv: &TmuxServer, control: bool) -> TmuxOptions {
    TmuxOptions {
        control,
        ..srv.options()
    }
}

fn loom_over(srv: &TmuxServer, control: bool) -> Loom {
    Loom::new(
        Arc::new(TmuxTerminal::new(options(srv, control))),
        Some(Registry::open(&srv.state).expect("open the registry")),
    )
}

async fn create(loom: &Loom, ws: &str, name: &str) -> termloom_core::SessionInfo {
    loom.create_session(&SessionSpec {
        name: Some(name.into()),
        workspace: Some(ws.into()),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

/// The ids the registry file holds, read fresh from disk.
fn registry_ids(state: &Path) -> BTreeSet<SessionId> {
    Registry::open(state)
        .and_then(|r| r.load())
        .map(|d| d.sessions.keys().copied().collect())
        .unwrap_or_else(|e| panic!("read the registry: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// Makes a path read-only for this process, even as root (CI runs as a normal user, this
/// machine's containers as root): mode 0555/0444, plus the immutable attribute when the mode is
/// not enough. Undone on drop. `None` when neither works (the check is then skipped, loudly).
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn set(path: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.is_dir();
        let mode = if dir { 0o555 } else { 0o444 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ok()?;
        let probe = |p: &Path| {
            if dir {
                let f = p.join(".probe");
                let w = std::fs::write(&f, b"x").is_ok();
                let _ = std::fs::remove_file(&f);
                w
            } else {
                std::fs::OpenOptions::new().append(true).open(p).is_ok()
            }
        };
        if !probe(path) {
            return Some(ReadOnly(path.to_path_buf(), false));
        }
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok && !probe(path) {
            return Some(ReadOnly(path.to_path_buf(), true));
        }
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(path)
            .status();
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
        eprintln!(
            "cannot make {} read-only here: that check is skipped",
            path.display()
        );
        None
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
        let mode = if self.0.is_dir() { 0o755 } else { 0o644 };
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode));
    }
}

/// A tmux command list that blocks until `release` exists (after creating `started`): see
/// `remote::blocking_call`. The loop also ends after 60 s or when the test's dir is gone.
fn blocking_call(started: &Path, release: &Path) -> Vec<String> {
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

struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

fn server_pid(srv: &TmuxServer) -> u32 {
    srv.tmux(&["display-message", "-p", "#{pid}"])
        .trim()
        .parse()
        .expect("the tmux server's pid")
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

#[tokio::test]
async fn the_tmux_server_killed_mid_call_fails_the_call_fast_and_loses_no_registry_entry() {
    for control in [false, true] {
        let srv = TmuxServer::start();
        // One terminal (one control connection) for the call in flight and the calls after it.
        let t = TmuxTerminal::new(options(&srv, control));
        let l = Loom::new(
            Arc::new(t.clone()),
            Some(Registry::open(&srv.state).expect("open the registry")),
        );
        let a = create(&l, "w", "a").await;
        let b = create(&l, "w", "b").await;
        let before = registry_ids(&srv.state);
        assert!(before.contains(&a.id) && before.contains(&b.id));
        let (started, release) = (srv.dir().join("started"), srv.dir().join("release"));
        let _release = Release(release.clone());
        // The control client must be up before the call (it is what the kill must reach).
        t.list_sessions().await.unwrap();
        let args = blocking_call(&started, &release);
        let t2 = t.clone();
        let call = tokio::spawn(async move {
            let t0 = Instant::now();
            (t2.client().run(args).await, t0.elapsed())
        });
        wait_until("the blocking call to start", || async {
            started.exists().then_some(())
        })
        .await;
        kill9(server_pid(&srv));
        let (r, took) = bounded("the call in flight", Duration::from_secs(15), call)
            .await
            .unwrap();
        let e = r.expect_err("a call whose server died must fail");
        eprintln!("control={control}: failed after {took:?}: {e}");
        assert!(!e.to_string().is_empty());
        // Nothing runs now: listings are empty, sessions are dead (known), not unknown.
        let listed = bounded("list", Duration::from_secs(15), l.list_sessions())
            .await
            .unwrap_or_else(|e| panic!("control={control}: list after the kill: {e}"));
        assert!(listed.is_empty(), "{listed:?}");
        let r = bounded("resolve", Duration::from_secs(15), l.resolve(&a.id.into())).await;
        assert!(
            matches!(r, Err(Error::SessionDead { .. })),
            "control={control}: {r:?}"
        );
        let after = registry_ids(&srv.state);
        assert_eq!(after, before, "control={control}: no registry entry lost");
        // The next call starts a server again; the old entries stay.
        let c = create(&l, "w2", "c").await;
        let now = registry_ids(&srv.state);
        assert!(now.is_superset(&before) && now.contains(&c.id), "{now:?}");
    }
}

#[tokio::test]
async fn a_pane_killed_mid_run_ends_the_run_with_a_clear_error() {
    for control in [false, true] {
        let srv = TmuxServer::start();
        let l = loom_over(&srv, control);
        let info = create(&l, "w", "victim").await;
        let keeper = create(&l, "w", "keeper").await;
        let s: Arc<dyn Session> = l.terminal().open(&info).await.unwrap();
        wait_prompt(s.as_ref()).await;
        let s2 = s.clone();
        let run = tokio::spawn(async move {
            let t0 = Instant::now();
            let r = s2
                .run(&RunOpts {
                    timeout: Duration::from_secs(60),
                    ..RunOpts::new("sleep 50")
                })
                .await;
            (r, t0.elapsed())
        });
        wait_command(&srv, &info.native.id, "sleep").await;
        srv.tmux(&["kill-pane", "-t", &info.native.id]);
        let (r, took) = bounded("the run in flight", Duration::from_secs(20), run)
            .await
            .unwrap();
        eprintln!("control={control}: the run ended after {took:?}: {r:?}");
        match r {
            Err(e) => {
                let m = e.to_string();
                assert!(
                    m.contains(&info.id.to_string()) || m.contains("victim"),
                    "control={control}: the error names the session: {m}"
                );
            }
            Ok(res) => panic!("control={control}: a run whose pane died must fail: {res:?}"),
        }
        assert!(took < Duration::from_secs(20));
        // The other session is untouched; the dead one stays in the registry.
        let live = l.list_sessions().await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, keeper.id);
        let ids = registry_ids(&srv.state);
        assert!(ids.contains(&info.id) && ids.contains(&keeper.id));
        assert!(matches!(
            l.resolve(&info.id.into()).await,
            Err(Error::SessionDead { .. })
        ));
    }
}

#[tokio::test]
async fn an_unwritable_registry_or_state_dir_gives_warnings_not_failures_and_keeps_every_entry() {
    let srv = TmuxServer::start();
    let l = loom_over(&srv, false);
    let a = create(&l, "w", "a").await;
    let gone = create(&l, "w", "gone").await;
    l.terminal()
        .open(&gone)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    l.list_sessions().await.unwrap();
    let path = srv.state.join("registry.json");
    let before_bytes = std::fs::read(&path).unwrap();
    let before = registry_ids(&srv.state);
    assert!(before.contains(&a.id) && before.contains(&gone.id));

    // 1. The registry file itself cannot be changed, 2. the whole state dir is read-only.
    for (label, target) in [("file", path.clone()), ("state dir", srv.state.clone())] {
        let Some(_ro) = ReadOnly::set(&target) else {
            continue;
        };
        // A direct write reports a clear error naming the file.
        let r = Registry::open(&srv.state).and_then(|r| r.update(|d| d.sessions.clear()));
        if let Err(e) = &r {
            let m = e.to_string();
            assert!(m.contains("registry.json") && m.contains("cannot"), "{m}");
        }
        // The loom keeps working: listing, creating, typing.
        let b = create(&l, "w", &format!("b-{}", label.len())).await;
        let listed = l.list_sessions().await.unwrap();
        assert!(listed.iter().any(|s| s.id == b.id));
        assert!(matches!(
            l.resolve(&gone.id.into()).await,
            Err(Error::SessionDead { .. }) | Err(Error::SessionNotFound { .. })
        ));
        // The CLI too, with a warning at most.
        let out = srv.cli().args(["--json", "ls"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: ls failed: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before_bytes,
            "{label}: the file is untouched"
        );
    }
    // Writable again: the next listing records the new sessions and keeps the dead one.
    l.list_sessions().await.unwrap();
    let after = registry_ids(&srv.state);
    assert!(after.is_superset(&before), "{before:?} ⊄ {after:?}");

    // 3. registry.json is a directory: reads and writes fail clearly, calls still work.
    let keep = srv.dir().join("registry.keep");
    std::fs::rename(&path, &keep).unwrap();
    std::fs::create_dir(&path).unwrap();
    let e = Registry::open(&srv.state)
        .and_then(|r| r.load())
        .expect_err("a directory is no registry");
    assert!(e.to_string().contains("registry.json"), "{e}");
    let listed = l.list_sessions().await.unwrap();
    assert!(listed.iter().any(|s| s.id == a.id));
    let out = srv.cli().args(["--json", "ls"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "ls with a broken registry: {stderr}");
    std::fs::remove_dir(&path).unwrap();
    std::fs::rename(&keep, &path).unwrap();
    assert!(registry_ids(&srv.state).is_superset(&before));

    // 4. Truncated and garbage files: moved aside whole (so nothing is lost for good), the live
    // sessions come back from the panes.
    for (label, bytes) in [
        ("truncated", before_bytes[..before_bytes.len() / 2].to_vec()),
        ("garbage", b"\x00\xff{{{ not json".to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let out = srv.cli().args(["--json", "ls"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let ids = registry_ids(&srv.state);
        assert!(ids.contains(&a.id), "{label}: {ids:?}");
        if !bytes.is_empty() {
            let kept = std::fs::read_dir(&srv.state)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("registry.json.corrupt-")
                })
                .any(|e| std::fs::read(e.path()).unwrap() == bytes);
            assert!(kept, "{label}: the corrupt file is kept aside");
        }
    }
}

#[tokio::test]
async fn failing_log_writes_never_fail_a_call() {
    let srv = TmuxServer::start();
    // The log dir is a file: every log write fails.
    let logs = srv.dir().join("logs");
    std::fs::write(&logs, b"not a dir").unwrap();
    let t = TmuxTerminal::new(options(&srv, true));
    let l = Loom::new(Arc::new(t), Some(Registry::open(&srv.state).unwrap()))
        .with_logging(LogConfig::new(&logs));
    let info = create(&l, "w", "logged").await;
    // Keeps the server up when `logged` is closed (the CLI below must not race its exit).
    create(&l, "w", "keeper").await;
    let s = l.session(&Target::Id(info.id)).await.unwrap();
    wait_prompt(s.as_ref()).await;
    s.send_text("echo logged-$((2*21))", SendOpts::default())
        .await
        .unwrap_or_else(|e| panic!("send with a broken log: {e}"));
    wait_line(s.as_ref(), "logged-42").await;
    let r = s
        .run(&RunOpts {
            timeout: Duration::from_secs(20),
            ..RunOpts::new("echo ran")
        })
        .await
        .unwrap_or_else(|e| panic!("run with a broken log: {e}"));
    assert_eq!(r.exit_code, Some(0));
    s.rename("renamed").await.unwrap();
    s.close().await.unwrap();
    assert_eq!(std::fs::read(&logs).unwrap(), b"not a dir");
    assert!(registry_ids(&srv.state).contains(&info.id));

    // The CLI, whose log dir is `<state>/logs`: replaced by a file, commands still work.
    std::fs::write(srv.state.join("logs"), b"x").unwrap();
    let out = srv
        .cli()
        .args(["new", "--name", "clilog", "--workspace", "cw"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "new with a broken log dir: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = srv
        .cli()
        .args(["send", "clilog", "echo via-cli"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "send with a broken log dir: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `cmd` run under a file-size limit of `bytes` (util-linux's `prlimit`, as `ulimit -f` would).
fn under_file_size_limit(cmd: &std::process::Command, bytes: u64) -> std::process::Command {
    let mut w = std::process::Command::new("prlimit");
    w.arg(format!("--fsize={bytes}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w
}

#[tokio::test]
async fn writes_past_the_file_size_limit_are_warnings_not_a_killed_process() {
    // By default SIGXFSZ kills a process whose write goes past `ulimit -f`: the CLI died in the
    // middle of writing the registry (exit 153, the new session's id never printed, a temp file
    // left), the MCP server at its first long session log line.
    let srv = TmuxServer::start();
    for name in ["one", "two"] {
        let out = srv
            .cli()
            .args(["new", "--name", name, "--workspace", "fs"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let mut new = srv.cli();
    new.args(["new", "--name", "three", "--workspace", "fs"]);
    let out = under_file_size_limit(&new, 100).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        id.parse::<SessionId>().is_ok(),
        "the new id is printed: {id:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&srv.state)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mcp = crate::mcp::mcp_command(&srv, &[]);
    let mcp = under_file_size_limit(mcp.as_std(), 100);
    let c = crate::mcp::start_with(tokio::process::Command::from(mcp)).await;
    let made = ok(
        &c,
        "create_session",
        json!({"name": "four", "workspace": "fs"}),
    )
    .await;
    let four = made["id"].as_str().unwrap().to_string();
    ok(
        &c,
        "send_text",
        json!({"session": four, "text": format!("echo {}", "x".repeat(300))}),
    )
    .await;
    let all = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(all["count"], 4, "{all}");
    c.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_hundred_concurrent_mcp_calls_over_twenty_sessions_all_land_in_the_right_place() {
    use futures_util::future::join_all;
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    const SESSIONS: usize = 20;
    const PER: usize = 10;
    // 20 sessions, created concurrently on no server at all, each in its own workspace, typing a
    // command, and each logged (an output client per workspace attaching amid the creates: tmux
    // 3.3a's server segfaults when that is not kept apart, see `control::gate`).
    let made = join_all((0..SESSIONS).map(|i| {
        let c = &c;
        async move {
            ok(
                c,
                "create_session",
                json!({
                    "name": format!("load{i}"),
                    "workspace": format!("lw{i}"),
                    "command": format!("echo started-{i}"),
                }),
            )
            .await
        }
    }))
    .await;
    let ids: Vec<String> = made
        .iter()
        .map(|v| {
            v["id"]
                .as_str()
                .unwrap_or_else(|| panic!("no id in {v}"))
                .to_string()
        })
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), SESSIONS);
    // Every pane runs its shell (tagged with its id) before the flood.
    wait_until("a shell in all 20 panes", || async {
        let out = srv.tmux(&[
            "list-panes",
            "-a",
            "-F",
            "#{@termloom_id} #{pane_current_command}",
        ]);
        ids.iter()
            .all(|id| out.lines().any(|l| l == format!("{id} bash")))
            .then_some(())
    })
    .await;
    // One connection, 200 requests in flight at once: a unique token per call.
    let started = Instant::now();
    let replies = join_all((0..SESSIONS * PER).map(|k| {
        let (c, id) = (&c, &ids[k % SESSIONS]);
        async move {
            // A shell comment: typed and echoed, never run.
            let token = format!("#<T{}x{}>", k % SESSIONS, k / SESSIONS);
            call(c, "send_text", json!({"session": id, "text": token})).await
        }
    }))
    .await;
    eprintln!(
        "{} concurrent send_text calls answered in {:?}",
        replies.len(),
        started.elapsed()
    );
    for (k, r) in replies.iter().enumerate() {
        assert_ne!(r.is_error, Some(true), "call {k}: {r:?}");
    }
    // Every token is in its own session, and no other session has it.
    let re = regex::Regex::new(r"<T(\d+)x(\d+)>").unwrap();
    let reads = join_all(ids.iter().enumerate().map(|(i, id)| {
        let (c, re) = (&c, &re);
        async move {
            wait_until(&format!("every token in session {i}"), || async {
                let v = ok(c, "read_output", json!({"session": id, "lines": 500})).await;
                let text = v["text"].as_str().unwrap_or_default().to_string();
                let seen: BTreeMap<(usize, usize), usize> = re
                    .captures_iter(&text)
                    .map(|m| ((m[1].parse().unwrap(), m[2].parse().unwrap()), 1))
                    .collect();
                // The command given at creation ran in its own session.
                let started = text.lines().any(|l| l.trim_end() == format!("started-{i}"));
                (started && (0..PER).all(|j| seen.contains_key(&(i, j)))).then_some((i, seen))
            })
            .await
        }
    }))
    .await;
    for (i, seen) in reads {
        let foreign: Vec<_> = seen.keys().filter(|(s, _)| *s != i).collect();
        assert!(foreign.is_empty(), "session {i} got {foreign:?}");
        assert_eq!(seen.len(), PER, "session {i}: {seen:?}");
    }
    c.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// Valid values for every required parameter of the tools, aimed at the test's session `h`
/// (workspace `hw`, window 0).
fn base_args(tool: &str, required: &[String]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for r in required {
        let v = match (tool, r.as_str()) {
            (_, "session") => json!("h"),
            (_, "workspace") => json!("hw"),
            (_, "window") => json!("0"),
            (_, "keys") => json!(["Right"]),
            (_, "text") => json!(""),
            ("create_workspace", "name") => json!("fresh-ws"),
            (_, "name") => json!("h"),
            (_, "command") => json!("true"),
            (_, "sessions") => json!([{"name": "batch1"}]),
            (_, "direction") => json!("right"),
            (_, "monitor_id") => json!("mon-none"),
            (_, "project") => json!("no-such-project"),
            (t, p) => panic!("no base value for {t}.{p}: extend base_args"),
        };
        m.insert(r.clone(), v);
    }
    m
}

/// A value of the wrong JSON type for a schema property.
fn wrong_type(schema: &Value) -> Value {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"string") {
        json!({"not": "a string"})
    } else if types.contains(&"integer") || types.contains(&"number") {
        json!("ten")
    } else if types.contains(&"boolean") {
        json!("yes")
    } else if types.contains(&"array") {
        json!(7)
    } else if types.contains(&"object") {
        json!([1, 2])
    } else {
        json!(12345)
    }
}

fn text_of(r: &rmcp::model::CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|b| b.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Calls a tool with raw arguments, bounded in time; the reply must be a tool result (a
/// protocol-level error is a failure too: the agent could not tell what was wrong).
async fn call_raw(c: &Client, tool: &str, args: serde_json::Map<String, Value>) -> (bool, String) {
    use rmcp::model::CallToolRequestParams;
    let shown: String = Value::Object(args.clone())
        .to_string()
        .chars()
        .take(160)
        .collect();
    let r = bounded(
        &format!("{tool}({shown})"),
        Duration::from_secs(20),
        c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args)),
    )
    .await
    .unwrap_or_else(|e| panic!("{tool}({shown}): protocol error {e}"));
    let text = text_of(&r);
    assert!(
        text.chars().count() < 100_000,
        "{tool}({shown}): the reply is capped, got {} chars",
        text.chars().count()
    );
    (r.is_error == Some(true), text)
}

#[tokio::test]
async fn every_mcp_tool_refuses_wrong_types_missing_and_extra_fields_and_survives_huge_and_nul_strings()
 {
    let srv = TmuxServer::start();
    let mark = srv.dir().join("pwned");
    let c = start(&srv, &["--tier", "destructive", "--no-audit"]).await;
    ok(
        &c,
        "create_session",
        json!({"name": "h", "workspace": "hw"}),
    )
    .await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.len() >= 25, "{} tools", tools.len());
    let huge = "x".repeat(1 << 20);
    let nul = "a\u{0}b";
    for t in &tools {
        let tool = t.name.to_string();
        let schema = Value::Object((*t.input_schema).clone());
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let props = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut base = base_args(&tool, &required);
        if tool == "wait_for" {
            base.insert("timeout_ms".into(), json!(200));
        }

        // An extra field.
        let mut args = base.clone();
        args.insert("zz_unknown".into(), json!(1));
        let (is_err, text) = call_raw(&c, &tool, args).await;
        assert!(
            is_err && text.contains("zz_unknown"),
            "{tool}: an unknown field must be refused by name: {text}"
        );
        // Each required field missing.
        for r in &required {
            let mut args = base.clone();
            args.remove(r);
            let (is_err, text) = call_raw(&c, &tool, args).await;
            assert!(
                is_err && text.contains(r.as_str()),
                "{tool}: missing {r} must be named: {text}"
            );
        }
        // Each field of the wrong type.
        for (p, s) in &props {
            let mut args = base.clone();
            args.insert(p.clone(), wrong_type(s));
            let (is_err, text) = call_raw(&c, &tool, args).await;
            assert!(
                is_err && (text.contains("invalid") || text.contains(p.as_str())),
                "{tool}.{p} of the wrong type must be refused: {text}"
            );
        }
        // Huge strings and NUL bytes in every string field: an answer in bounded time. A NUL can
        // never reach tmux (argv), so a call that took it must have refused it.
        for (p, s) in &props {
            let is_string = match &s["type"] {
                Value::String(t) => t == "string",
                Value::Array(a) => a.iter().any(|t| t == "string"),
                _ => false,
            };
            if !is_string || p == "host" || p == "socket" {
                continue;
            }
            for (label, v) in [("1 MB", huge.as_str()), ("NUL", nul)] {
                let mut args = base.clone();
                args.insert(p.clone(), json!(v));
                if tool == "send_text" {
                    args.insert("enter".into(), json!(false));
                }
                let (is_err, text) = call_raw(&c, &tool, args).await;
                if label == "NUL" && !is_err {
                    // Accepted: only where the value is a filter or pattern the server applies
                    // itself (nothing reaches tmux).
                    assert!(
                        tool.starts_with("list_")
                            || matches!(p.as_str(), "pattern" | "prompt" | "since" | "handle"),
                        "{tool}.{p} accepted a NUL byte: {text}"
                    );
                }
            }
        }
    }
    // Still alive and serving, the session intact.
    let l = ok(&c, "list_sessions", json!({})).await;
    assert!(l["count"].as_u64().unwrap() >= 1, "{l}");
    ok(
        &c,
        "send_text",
        json!({"session": "h", "text": "echo still-$((3*3))"}),
    )
    .await;
    crate::mcp::read_until(&c, "h", "the session to answer", |t| t.contains("still-9")).await;
    assert!(!mark.exists());
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_output_and_pathological_regexes_through_mcp() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(
        &c,
        "create_session",
        json!({"name": "u", "workspace": "uw"}),
    )
    .await;
    // Invalid UTF-8 in the pane: read, run and wait_for all answer with valid text.
    ok(
        &c,
        "send_text",
        json!({"session": "u", "text": "printf 'A\\xff\\xfeB\\n'"}),
    )
    .await;
    let t = crate::mcp::read_until(&c, "u", "the bytes printed", |t| {
        t.lines().any(|l| l.starts_with('A') && l.ends_with('B'))
    })
    .await;
    let line = t
        .lines()
        .find(|l| l.starts_with('A') && l.ends_with('B'))
        .unwrap();
    // tmux drops bytes that are not UTF-8 from the screen; what is left arrives as valid text.
    assert!(line.len() >= 2, "{line:?}");
    let r = ok(
        &c,
        "run_command",
        json!({"session": "u", "command": "printf 'C\\xff\\xfe\\xc3D\\n'; (exit 3)", "timeout_ms": 20000}),
    )
    .await;
    assert_eq!(r["exit_code"], 3, "{r}");
    let out = r["output"].as_str().unwrap_or_default();
    assert!(out.starts_with('C') && out.trim_end().ends_with('D'), "{r}");
    let found = ok(
        &c,
        "read_output",
        json!({"session": "u", "pattern": "C.+D"}),
    )
    .await;
    assert!(found.to_string().contains('C'), "{found}");

    // A long line of `a`s, then the classic catastrophic patterns: linear time, bounded.
    let r = ok(
        &c,
        "run_command",
        json!({"session": "u", "command": "head -c 20000 /dev/zero | tr '\\0' a; echo", "timeout_ms": 20000}),
    )
    .await;
    assert!(
        r["output"]
            .as_str()
            .unwrap_or_default()
            .contains(&"a".repeat(60)),
        "{}",
        r.to_string().chars().take(300).collect::<String>()
    );
    let v = bounded(
        "read after the long line",
        Duration::from_secs(10),
        ok(&c, "read_output", json!({"session": "u", "lines": 50})),
    )
    .await;
    assert!(
        v["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&"a".repeat(60)),
        "{v}"
    );
    for pattern in ["(a*)*b", "(a|a)*b", "(a+)+$b", "^(a|aa)+$c", "(.*a){20}b"] {
        let t0 = Instant::now();
        let r = call(
            &c,
            "read_output",
            json!({"session": "u", "pattern": pattern}),
        )
        .await;
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{pattern}: {:?}",
            t0.elapsed()
        );
        assert_ne!(r.is_error, Some(true), "{pattern}: {}", text_of(&r));
        let t0 = Instant::now();
        let w = call(
            &c,
            "wait_for",
            json!({"session": "u", "pattern": pattern, "timeout_ms": 300}),
        )
        .await;
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{pattern}: {:?}",
            t0.elapsed()
        );
        let _ = w;
    }
    // Patterns too big to compile, and invalid ones, are refused by name, capped.
    for (pattern, want) in [
        ("a{1000}{1000}".to_string(), "invalid regex"),
        ("(\\w{100}){100}".to_string(), "invalid regex"),
        (
            format!("({})", "[a-z]{20}|".repeat(20_000)),
            "invalid regex",
        ),
        ("(?<".to_string(), "invalid regex"),
        ("\\".to_string(), "invalid regex"),
        ("a{99999999}".to_string(), "invalid regex"),
    ] {
        for tool in ["read_output", "wait_for"] {
            let e = err(
                &c,
                tool,
                json!({"session": "u", "pattern": pattern, "timeout_ms": 300}),
            )
            .await;
            let e2 = if tool == "read_output" {
                err(&c, tool, json!({"session": "u", "pattern": pattern})).await
            } else {
                e.clone()
            };
            assert!(
                e2.contains(want),
                "{tool}({}): {e2}",
                pattern.chars().take(40).collect::<String>()
            );
            assert!(e2.len() < 60_000, "capped");
        }
    }
    ok(&c, "list_sessions", json!({})).await;
    c.cancel().await.unwrap();
}

/// Names that a careless quoting would turn into commands, formats or other targets.
fn hostile_names(mark: &Path) -> Vec<String> {
    vec![
        "new\nline".into(),
        "q'u\"o`te".into(),
        "100% %s %% %1".into(),
        "#{pane_id} #{session_name}".into(),
        format!("#(touch {})", mark.display()),
        format!("x#(touch {})y", mark.display()),
        "#[fg=red]##".into(),
        "a;b".into(),
        ";".into(),
        "x ; kill-server".into(),
        "x \\; kill-server".into(),
        "{braces} $HOME ~".into(),
    ]
}

/// A workspace name from a hostile name: tmux session names cannot hold control characters,
/// `$` or `\` (termloom refuses them, with `.` and `:`), the rest stays.
fn ws_name(n: &str, i: usize) -> String {
    format!("{}-{i}", win_name(n).replace(['\\', '$'], "_"))
}

/// A window name from a hostile name: no control characters either (session names may have them).
fn win_name(n: &str) -> String {
    n.replace('\n', " ")
}

#[tokio::test]
async fn hostile_names_for_sessions_windows_and_workspaces_stay_literal() {
    for control in [false, true] {
        let srv = TmuxServer::start();
        let mark = srv.dir().join("pwned");
        let t = TmuxTerminal::new(options(&srv, control));
        let names = hostile_names(&mark);
        for (i, n) in names.iter().enumerate() {
            // Workspace names may not hold `:` or `.` (tmux target syntax); these do not.
            let ws = ws_name(n, i);
            let info = t
                .create_workspace(&WorkspaceSpec {
                    name: ws.clone(),
                    window: Some(win_name(n)),
                    session_name: Some(n.clone()),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("control={control}: workspace {ws:?}: {e}"));
            assert_eq!(&info.name, n, "control={control}");
            assert_eq!(info.workspace, ws, "control={control}");
            let w2 = t
                .create_window(&WindowSpec {
                    workspace: ws.clone(),
                    name: Some(format!("{}!", win_name(n))),
                    session_name: Some(format!("{n}?")),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("control={control}: window in {ws:?}: {e}"));
            assert_eq!(w2.name, format!("{n}?"));
            let wins = t.list_windows(Some(&ws)).await.unwrap();
            let names_seen: Vec<&str> = wins.iter().map(|w| w.name.as_str()).collect();
            assert!(
                names_seen.contains(&win_name(n).as_str())
                    && names_seen.contains(&format!("{}!", win_name(n)).as_str()),
                "control={control}: {names_seen:?}"
            );
            // Found by exact name, renamed, and targeted by window name.
            let s = t
                .session(&Target::Name(format!("{n}?")))
                .await
                .unwrap_or_else(|e| panic!("control={control}: name:{n:?}: {e}"));
            s.rename(&format!("{n}#")).await.unwrap();
            let wr = termloom_core::WindowRef {
                workspace: ws.clone(),
                window: WindowSel::Name(format!("{}!", win_name(n))),
            };
            // rename-window refuses `\` and `$` (tmux would store them escaped).
            let renamed = format!("{}%", win_name(n).replace(['\\', '$'], "_"));
            t.rename_window(&wr, &renamed).await.unwrap();
            t.select_window(&termloom_core::WindowRef {
                workspace: ws.clone(),
                window: WindowSel::Name(renamed.clone()),
            })
            .await
            .unwrap();
        }
        let all = t.list_sessions().await.unwrap();
        for (i, n) in names.iter().enumerate() {
            let ws = ws_name(n, i);
            let here: BTreeSet<&str> = all
                .iter()
                .filter(|s| s.workspace == ws)
                .map(|s| s.name.as_str())
                .collect();
            let want: BTreeSet<String> = [n.clone(), format!("{n}#")].into();
            assert_eq!(
                here,
                want.iter().map(String::as_str).collect(),
                "control={control}"
            );
        }
        let ws_names: BTreeSet<String> = t
            .list_workspaces()
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(ws_names.len(), names.len(), "{ws_names:?}");
        // Nothing ran: no `#(…)` job, the server is alive.
        assert!(
            !mark.exists(),
            "control={control}: a #(…) name ran a command"
        );
        let s = t
            .session(&Target::Name(format!("{}#", names[0])))
            .await
            .unwrap();
        s.send_text("echo alive-$((1+1))", SendOpts::default())
            .await
            .unwrap();
        wait_line(s.as_ref(), "alive-2").await;
        // Destroying them by name hits exactly the one named.
        for (i, n) in names.iter().enumerate() {
            t.destroy_workspace(&ws_name(n, i)).await.unwrap();
            // In control mode the command client may have been attached to it: the next call
            // still works.
            let left = t
                .list_workspaces()
                .await
                .unwrap_or_else(|e| panic!("control={control}: list after destroying {n:?}: {e}"))
                .len();
            assert_eq!(left, names.len() - i - 1, "control={control}: after {n:?}");
        }
        assert!(!mark.exists());
    }
}
