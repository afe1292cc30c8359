//! The real `termloom-mcp` binary over stdio (rmcp's client, `TokioChildProcess`) and over HTTP,
//! against a private real tmux server per test.
//!
//! Tests in `mcp::control_mode` need the control-mode transport (run, status, subscribe): they fail
//! with "tmux cannot run commands" until it lands, and pass after.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, GetPromptRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ResourceContents,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use termloom_tests::{TmuxServer, bin, wait_until};

/// What the client saw besides replies.
#[derive(Clone, Default)]
pub struct Seen {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Seen {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

pub type Client = RunningService<RoleClient, Seen>;

/// The `termloom-mcp` command for this server, with extra flags.
pub fn mcp_command(srv: &TmuxServer, extra: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin("termloom-mcp"));
    c.arg("-S")
        .arg(&srv.socket)
        .arg("--state-dir")
        .arg(&srv.state)
        .args(extra)
        .envs(srv.env())
        .env("TERMLOOM_TMUX_CONFIG", &srv.config)
        .env("TERMLOOM_SHELL", "/bin/bash --norc --noprofile")
        .env("RUST_LOG", "warn")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TERMLOOM_MCP_TIER")
        .env_remove("TERMLOOM_MCP_SCOPE")
        .env_remove("TERMLOOM_MCP_TOKEN")
        .env_remove("TERMLOOM_MCP_MAX_CHARS");
    c
}

/// Starts the binary over stdio and initializes.
pub async fn start_with(cmd: tokio::process::Command) -> Client {
    let (t, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn termloom-mcp");
    Seen::default().serve(t).await.expect("initialize")
}

/// Starts the binary against `srv` with extra flags.
pub async fn start(srv: &TmuxServer, extra: &[&str]) -> Client {
    start_with(mcp_command(srv, extra)).await
}

/// Calls a tool (the reply may be an error result).
pub async fn call(c: &Client, tool: &str, args: Value) -> CallToolResult {
    let obj = args.as_object().cloned().expect("arguments are an object");
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(obj))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|b| b.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Calls a tool that must succeed; returns its structured content.
pub async fn ok(c: &Client, tool: &str, args: Value) -> Value {
    let r = call(c, tool, args.clone()).await;
    assert_ne!(
        r.is_error,
        Some(true),
        "{tool}({args}) failed: {}",
        text_of(&r)
    );
    r.structured_content
        .unwrap_or_else(|| panic!("{tool} gave no structured content"))
}

/// Calls a tool that must fail with an error result; returns the message.
pub async fn err(c: &Client, tool: &str, args: Value) -> String {
    let r = call(c, tool, args.clone()).await;
    assert_eq!(
        r.is_error,
        Some(true),
        "{tool}({args}) should fail, got {}",
        text_of(&r)
    );
    text_of(&r)
}

/// Reads the last lines of a session until `pred` holds.
pub async fn read_until(
    c: &Client,
    session: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    wait_until(what, || async {
        let v = ok(c, "read_output", json!({"session": session, "lines": 200})).await;
        let t = v["text"].as_str().unwrap_or_default().to_string();
        pred(&t).then_some(t)
    })
    .await
}

async fn resource_text(c: &Client, uri: &str) -> String {
    let r = c
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    match &r.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{uri}: not text: {other:?}"),
    }
}

#[tokio::test]
async fn mcp_lists_every_tool_with_schemas_annotations_resources_and_prompts() {
    let srv = TmuxServer::start();
    let c = start(&srv, &["--tier", "destructive"]).await;
    let info = c.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "termloom");
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    let mut want = vec![
        "list_sessions",
        "get_session",
        "list_persistent_sessions",
        "create_session",
        "close_session",
        "rename_session",
        "focus_session",
        "create_layout",
        "split_pane",
        "resize_pane",
        "list_workspaces",
        "create_workspace",
        "destroy_workspace",
        "list_windows",
        "create_window",
        "close_window",
        "rename_window",
        "select_window",
        "set_scrollback",
        "set_max_lines",
        "create_sessions",
        "send_text",
        "send_keys",
        "read_output",
        "run_command",
        "wait_for",
        "get_status",
        "start_monitoring",
        "stop_monitoring",
        "list_projects",
        "open_project",
        "close_project",
    ];
    want.sort_unstable();
    assert_eq!(names, want);
    for t in &tools {
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 40),
            "{}",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
        assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        assert_eq!(t.input_schema["additionalProperties"], false, "{}", t.name);
        let a = t.annotations.as_ref().unwrap();
        assert!(
            a.read_only_hint.is_some() && a.destructive_hint.is_some(),
            "{}",
            t.name
        );
    }
    let get = |n: &str| {
        tools
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .annotations
            .clone()
            .unwrap()
    };
    assert_eq!(get("list_sessions").read_only_hint, Some(true));
    assert_eq!(get("read_output").read_only_hint, Some(true));
    assert_eq!(get("close_session").destructive_hint, Some(true));
    assert_eq!(get("destroy_workspace").destructive_hint, Some(true));
    assert_eq!(get("send_text").read_only_hint, Some(false));
    assert_eq!(get("rename_session").destructive_hint, Some(false));
    assert_eq!(get("rename_session").idempotent_hint, Some(true));
    // Project hooks are programs the project file names, run on every open and close.
    for tool in ["open_project", "close_project"] {
        assert_eq!(get(tool).idempotent_hint, Some(false), "{tool}");
        assert_eq!(get(tool).open_world_hint, Some(true), "{tool}");
    }
    let run = tools.iter().find(|t| t.name == "run_command").unwrap();
    let props = run.output_schema.as_ref().unwrap()["properties"]
        .as_object()
        .unwrap();
    for field in [
        "exit_code",
        "output",
        "timed_out",
        "strategy",
        "duration_ms",
    ] {
        assert!(props.contains_key(field), "run_command returns {field}");
    }
    let read = tools.iter().find(|t| t.name == "read_output").unwrap();
    let props = read.input_schema["properties"].as_object().unwrap();
    for field in [
        "session",
        "lines",
        "since",
        "pattern",
        "context_lines",
        "include_line_numbers",
        "ansi",
        "max_chars",
    ] {
        assert!(props.contains_key(field), "read_output takes {field}");
    }

    let resources = c.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    for u in [
        "terminal://sessions",
        "termloom://keys-reference",
        "termloom://common-patterns",
    ] {
        assert!(uris.contains(&u), "{u} in {uris:?}");
    }
    let templates = c.list_all_resource_templates().await.unwrap();
    let tpl: Vec<&str> = templates.iter().map(|r| r.uri_template.as_str()).collect();
    assert!(tpl.contains(&"terminal://{session_id}/output"), "{tpl:?}");
    assert!(tpl.contains(&"terminal://{session_id}/info"), "{tpl:?}");
    let prompts = c.list_all_prompts().await.unwrap();
    let pn: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        pn.contains(&"monitor_terminal") && pn.contains(&"execute_command"),
        "{pn:?}"
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_session_lifecycle() {
    let srv = TmuxServer::start();
    let c = start(&srv, &["--tier", "destructive"]).await;
    let s = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(s["count"], 0);

    let a = ok(
        &c,
        "create_session",
        json!({"name": "alpha", "workspace": "ws1", "cwd": "/tmp"}),
    )
    .await;
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["name"], "alpha");
    assert_eq!(a["workspace"], "ws1");
    assert_eq!(a["managed"], true);
    assert_eq!(a["writable"], true);
    assert!(a["native"].as_str().unwrap().starts_with("tmux:%"));

    let l = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(l["count"], 1);
    assert_eq!(l["sessions"][0]["id"], id.as_str());
    let l = ok(&c, "list_sessions", json!({"workspace": "other"})).await;
    assert_eq!(l["count"], 0);

    // Every target form reaches the same session.
    let prefix = format!("id:{}", &id.replace('-', "")[..8]);
    let path = a["path"].as_str().unwrap().to_string();
    let native = a["native"].as_str().unwrap().to_string();
    for t in [
        id.as_str(),
        "alpha",
        "name:alpha",
        prefix.as_str(),
        path.as_str(),
        native.as_str(),
    ] {
        let g = ok(&c, "get_session", json!({"session": t})).await;
        assert_eq!(g["id"], id.as_str(), "target {t}");
        assert_eq!(g["alive"], true);
        assert_eq!(g["record"]["id"], id.as_str());
    }

    ok(&c, "rename_session", json!({"session": id, "name": "beta"})).await;
    let g = ok(&c, "get_session", json!({"session": "beta"})).await;
    assert_eq!(g["id"], id.as_str());
    let e = err(&c, "get_session", json!({"session": "alpha"})).await;
    assert!(e.contains("list_sessions"), "{e}");

    ok(&c, "focus_session", json!({"session": "beta"})).await;
    let half = ok(
        &c,
        "split_pane",
        json!({"session": "beta", "direction": "horizontal", "name": "gamma"}),
    )
    .await;
    assert_eq!(half["name"], "gamma");
    assert_eq!(half["window_index"], a["window_index"]);
    ok(&c, "resize_pane", json!({"session": "gamma", "zoom": true})).await;
    ok(
        &c,
        "resize_pane",
        json!({"session": "gamma", "zoom": false}),
    )
    .await;
    let e = err(&c, "resize_pane", json!({"session": "gamma"})).await;
    assert!(e.contains("width"), "{e}");

    let m = ok(&c, "set_max_lines", json!({"session": "beta", "lines": 7})).await;
    assert_eq!(m["max_lines"], 7);
    let g = ok(&c, "get_session", json!({"session": "beta"})).await;
    assert_eq!(g["record"]["max_lines"], 7);

    ok(&c, "close_session", json!({"session": "gamma"})).await;
    ok(&c, "close_session", json!({"session": id})).await;
    // Gone from the live list, still known by its persistent id.
    let l = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(l["count"], 0);
    let g = ok(&c, "get_session", json!({"session": id})).await;
    assert_eq!(g["alive"], false);
    assert_eq!(g["record"]["dead"], true);
    let p = ok(&c, "list_persistent_sessions", json!({})).await;
    assert!(
        p["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str() && s["dead"] == true)
    );
    let p = ok(
        &c,
        "list_persistent_sessions",
        json!({"include_dead": false}),
    )
    .await;
    assert_eq!(p["count"], 0);
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_cursor_reads_see_repeated_output_once_the_scrollback_is_full() {
    // Once the scrollback is full, lines leave it at the top as others come, and output that
    // repeats puts the cursor's anchor text back where the anchor was: before, every read after
    // the first returned nothing.
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(
        &c,
        "create_workspace",
        json!({"name": "sb", "scrollback": 20, "session_name": "small"}),
    )
    .await;
    ok(
        &c,
        "run_command",
        json!({"session": "small", "command": "seq 1 50"}),
    )
    .await;
    let first = ok(&c, "read_output", json!({"session": "small", "lines": 2})).await;
    let mut cursor = first["cursor"].as_str().unwrap().to_string();
    for round in 0..5 {
        ok(
            &c,
            "run_command",
            json!({"session": "small", "command": "for i in 1 2 3; do echo ok; done"}),
        )
        .await;
        let v = ok(
            &c,
            "read_output",
            json!({"session": "small", "since": cursor}),
        )
        .await;
        let text = v["text"].as_str().unwrap();
        assert_eq!(
            text.lines().filter(|l| l.trim_end() == "ok").count(),
            3,
            "round {round}: {v}"
        );
        cursor = v["cursor"].as_str().unwrap().to_string();
    }
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_a_run_among_concurrent_sends_reports_its_own_result() {
    // Lines sent to a fresh session while a run starts on it: the run must not take one of
    // their commands for its own (before, about one try in three returned exit code 0 and no
    // output, the result of a `:` line typed just before).
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let mut ran = 0;
    for trial in 0..8 {
        let name = format!("race{trial}");
        let s = ok(&c, "create_session", json!({"name": name})).await;
        let id = s["id"].as_str().unwrap().to_string();
        read_until(&c, &id, "the prompt", |t| !t.trim().is_empty()).await;
        let sends = (0..5).map(|j| {
            call(
                &c,
                "send_text",
                json!({"session": id, "text": format!(": S{j}")}),
            )
        });
        let run = call(
            &c,
            "run_command",
            json!({"session": id, "command": "echo RUN; (exit 3)"}),
        );
        let (sent, r) = tokio::join!(futures_util::future::join_all(sends), run);
        for s in sent {
            assert_ne!(s.is_error, Some(true), "send: {}", text_of(&s));
        }
        if r.is_error == Some(true) {
            // Refusing is honest too (the shell is busy with the lines).
            assert!(
                text_of(&r).contains("busy"),
                "trial {trial}: {}",
                text_of(&r)
            );
            continue;
        }
        let v = r.structured_content.expect("structured run result");
        assert_eq!(
            (v["output"].as_str(), v["exit_code"].as_i64()),
            (Some("RUN"), Some(3)),
            "trial {trial}: {v}"
        );
        ran += 1;
    }
    eprintln!("{ran} of 8 runs ran, the others were refused as busy");
    assert!(ran > 0, "every run was refused");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_concurrent_creates_keep_names_unique() {
    // Five creates of one name at once: one succeeds, four are told the name is taken (before,
    // all five succeeded and the name became ambiguous).
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let creates = (0..5).map(|_| {
        call(
            &c,
            "create_session",
            json!({"name": "twin", "workspace": "twins"}),
        )
    });
    let results = futures_util::future::join_all(creates).await;
    let made = results.iter().filter(|r| r.is_error != Some(true)).count();
    assert_eq!(
        made,
        1,
        "{:?}",
        results.iter().map(text_of).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.is_error == Some(true)) {
        assert!(text_of(r).contains("already exists"), "{}", text_of(r));
    }
    let all = ok(&c, "list_sessions", json!({})).await;
    let twins = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "twin")
        .count();
    assert_eq!(twins, 1, "{all}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_a_window_given_by_index_is_that_window_and_never_a_new_one_named_so() {
    // `window: "0"` made a window named "0" at index 1; `ws:0.0` was ambiguous after that.
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let first = ok(
        &c,
        "create_session",
        json!({"name": "first", "workspace": "ws"}),
    )
    .await;
    let r = ok(
        &c,
        "run_command",
        json!({"workspace": "ws", "window": "0", "command": "echo in-zero"}),
    )
    .await;
    assert_eq!(r["session"], first["id"], "{r}");
    assert_eq!(r["output"], "in-zero", "{r}");
    let split = ok(
        &c,
        "create_session",
        json!({"name": "second", "workspace": "ws", "window": "0"}),
    )
    .await;
    assert_eq!(split["window_index"], first["window_index"], "{split}");
    let e = err(
        &c,
        "run_command",
        json!({"workspace": "ws", "window": "7", "command": "true"}),
    )
    .await;
    assert!(e.contains("no window 7"), "{e}");
    let e = err(
        &c,
        "create_session",
        json!({"name": "third", "workspace": "ws", "window": "7"}),
    )
    .await;
    assert!(e.contains("no window 7"), "{e}");
    let windows = srv.tmux(&["list-windows", "-t", "=ws", "-F", "#{window_index}"]);
    assert_eq!(windows.lines().count(), 1, "{windows}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_a_missing_working_directory_or_a_nul_in_an_env_value_is_named() {
    // A cwd that is no directory was dropped without a word (the shell started in the server's
    // own directory); a NUL in an env value was blamed on the variable's name.
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let e = err(
        &c,
        "create_session",
        json!({"name": "a", "cwd": "/nonexistent/dir"}),
    )
    .await;
    assert!(
        e.contains("/nonexistent/dir") && e.contains("not a directory"),
        "{e}"
    );
    let e = err(
        &c,
        "create_session",
        json!({"name": "b", "env": {"GOOD_NAME": "x\u{0}y"}}),
    )
    .await;
    assert!(e.contains("GOOD_NAME") && e.contains("NUL"), "{e}");
    let all = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(all["count"], 0, "nothing was made: {all}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_keeps_what_was_typed_readable_by_its_owner_only() {
    // The audit log holds every call's arguments (environment values, text sent), the session
    // logs what was typed and printed: they were 0644 in 0755 directories.
    use std::os::unix::fs::PermissionsExt;
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let made = ok(
        &c,
        "create_session",
        json!({"name": "secret", "env": {"API_KEY": "sekret-env-123"}}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_string();
    ok(
        &c,
        "send_text",
        json!({"session": id, "text": "export PW=hunter2"}),
    )
    .await;
    read_until(&c, &id, "the export echoed", |t| t.contains("PW=hunter2")).await;
    c.cancel().await.unwrap();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let logs = srv.state.join("logs");
    assert_eq!(mode(&logs), 0o700, "logs/");
    let log = logs.join(format!("{id}.log"));
    wait_until("the session log", || async { log.exists().then_some(()) }).await;
    assert_eq!(mode(&log), 0o600, "{}", log.display());
    assert_eq!(
        mode(&srv.state.join("mcp-audit.jsonl")),
        0o600,
        "the audit log"
    );
    assert_eq!(
        mode(&srv.state.join("registry.json")),
        0o600,
        "the registry"
    );
}

#[tokio::test]
async fn mcp_keeps_answering_when_its_stderr_is_closed() {
    // A log line written to a closed stderr made tracing's error report (`eprintln!`) panic the
    // task that logged: the call, or the whole session, was never answered.
    let srv = TmuxServer::start();
    let (t, stderr) = TokioChildProcess::builder(mcp_command(&srv, &["--tier", "destructive"]))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn termloom-mcp");
    drop(stderr);
    let c = Seen::default().serve(t).await.expect("initialize");
    for _ in 0..3 {
        // Each logs a warning (an error response) on the way.
        let r = tokio::time::timeout(
            termloom_tests::timeout(),
            c.read_resource(ReadResourceRequestParams::new("file:///nope")),
        )
        .await
        .expect("answered");
        assert!(r.is_err(), "{r:?}");
    }
    let made = ok(&c, "create_session", json!({"name": "still"})).await;
    assert_eq!(made["name"], "still", "{made}");
    c.cancel().await.unwrap();
}

/// A `termloom-mcp` over raw stdio, initialized: the child, its stdin and its stdout.
async fn raw_stdio(
    srv: &TmuxServer,
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::io::BufReader<tokio::process::ChildStdout>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut cmd = mcp_command(srv, &[]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn termloom-mcp");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    stdin
        .write_all(format!("{init}\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).await.unwrap();
    assert!(line.contains("\"id\":1"), "{line}");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    (child, stdin, stdout)
}

#[tokio::test]
async fn mcp_ends_when_its_client_closes_stdout_and_carries_out_nothing_after() {
    // A client that closed its read end can see no result: the server ends instead of creating
    // panes and typing for nobody (before, it logged "fail to response message" and went on
    // until stdin closed too).
    use tokio::io::AsyncWriteExt;
    let srv = TmuxServer::start();
    let (mut child, mut stdin, stdout) = raw_stdio(&srv).await;
    drop(stdout);
    // Sent after the close: it must not run (the server may be gone already; then the write
    // fails, which is as good).
    let late = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_session","arguments":{"name":"late","workspace":"late"}}}"#;
    let _ = stdin.write_all(format!("{late}\n").as_bytes()).await;
    let status = tokio::time::timeout(termloom_tests::timeout(), child.wait())
        .await
        .expect("the server ends once its stdout is closed, stdin still open")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(
        !srv.tmux(&["list-sessions", "-F", "#{session_name}"])
            .lines()
            .any(|l| l == "late"),
        "a call sent after the close was carried out"
    );
}

#[tokio::test]
async fn mcp_answers_every_line_over_stdio_even_when_sent_in_pieces() {
    // A line that is no JSON gets JSON-RPC's parse error (rmcp's own transport gave nothing: the
    // client waited); requests written in pieces, while the server is busy answering, are all
    // answered (a half-read line was lost whenever the server wrote meanwhile).
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let srv = TmuxServer::start();
    let (mut child, mut stdin, mut stdout) = raw_stdio(&srv).await;
    stdin.write_all(b"not json at all\n").await.unwrap();
    let mut line = String::new();
    line.clear();
    tokio::time::timeout(termloom_tests::timeout(), stdout.read_line(&mut line))
        .await
        .expect("the line that is no JSON is answered")
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["error"]["code"], -32700, "{line}");
    assert!(v["id"].is_null(), "{line}");
    // 200 calls, written in 700-byte pieces as a buffered client writes them.
    let mut all = String::new();
    for id in 100..300 {
        all.push_str(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"list_workspaces\",\"arguments\":{{}}}}}}\n"
        ));
    }
    let writer = tokio::spawn(async move {
        for piece in all.as_bytes().chunks(700) {
            stdin.write_all(piece).await.unwrap();
            stdin.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        stdin
    });
    let mut seen = std::collections::BTreeSet::new();
    let read = async {
        while seen.len() < 200 {
            line.clear();
            if stdout.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            let v: Value = serde_json::from_str(&line).unwrap();
            assert!(v.get("error").is_none(), "{line}");
            seen.insert(v["id"].as_u64().unwrap());
        }
    };
    tokio::time::timeout(termloom_tests::timeout(), read)
        .await
        .unwrap_or_else(|_| panic!("answered {} of 200", seen.len()));
    assert_eq!(seen.len(), 200);
    drop(writer.await.unwrap());
    let _ = child.wait().await;
}

#[tokio::test]
async fn mcp_send_text_keys_and_read_output() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let a = ok(&c, "create_session", json!({"name": "io"})).await;
    let id = a["id"].as_str().unwrap().to_string();
    let sent = ok(
        &c,
        "send_text",
        json!({"session": "io", "text": "echo 'hi;' \"$((1+2))\" é"}),
    )
    .await;
    assert_eq!(sent["session"], id.as_str());
    assert_eq!(sent["enter"], true);
    read_until(&c, "io", "echoed text", |t| {
        t.lines().any(|l| l == "hi; 3 é")
    })
    .await;

    // A small cap that the text fits in leaves it whole.
    let whole = ok(&c, "read_output", json!({"session": "io", "lines": 3})).await;
    let small = ok(
        &c,
        "read_output",
        json!({"session": "io", "lines": 3, "max_chars": 150}),
    )
    .await;
    assert!(
        whole["text"].as_str().unwrap().chars().count() < 150,
        "{whole}"
    );
    assert_eq!(small["text"], whole["text"], "{small}");
    assert_eq!(small["truncated"], false, "{small}");

    // Cursor reads return only what is new.
    let first = ok(&c, "read_output", json!({"session": "io"})).await;
    let cursor = first["cursor"].as_str().unwrap().to_string();
    assert!(!cursor.is_empty());
    ok(
        &c,
        "send_text",
        json!({"session": "io", "text": "echo next-$((6*7))"}),
    )
    .await;
    let since = wait_until("new output since the cursor", || async {
        let v = ok(&c, "read_output", json!({"session": "io", "since": cursor})).await;
        v["text"].as_str().unwrap().contains("next-42").then_some(v)
    })
    .await;
    assert!(
        !since["text"].as_str().unwrap().contains("hi; 3"),
        "{since}"
    );

    // Search with context and line numbers.
    for i in 0..5 {
        ok(
            &c,
            "send_text",
            json!({"session": "io", "text": format!("echo row-{i}")}),
        )
        .await;
    }
    read_until(&c, "io", "rows", |t| t.contains("\nrow-4")).await;
    let found = ok(
        &c,
        "read_output",
        json!({"session": "io", "pattern": "^row-[13]$", "context_lines": 1}),
    )
    .await;
    assert_eq!(found["matches"], 2, "{found}");
    let text = found["text"].as_str().unwrap();
    assert!(text.contains("> row-1"), "{text}");
    let n = found["match_lines"][0].as_u64().unwrap();
    // first_line numbers the text's first line: the context line before the first match.
    assert_eq!(found["first_line"].as_u64(), Some(n - 1), "{found}");
    let range = ok(
        &c,
        "read_output",
        json!({"session": "io", "from_line": n, "to_line": n}),
    )
    .await;
    assert_eq!(range["text"], "row-1");
    let numbered = ok(
        &c,
        "read_output",
        json!({"session": "io", "lines": 1, "include_line_numbers": true}),
    )
    .await;
    assert!(
        numbered["text"].as_str().unwrap().contains(": "),
        "{numbered}"
    );
    let screen = ok(&c, "read_output", json!({"session": "io", "screen": true})).await;
    assert!(screen["text"].as_str().unwrap().contains("row-4"));
    let none = ok(
        &c,
        "read_output",
        json!({"session": "io", "pattern": "no-such-text"}),
    )
    .await;
    assert_eq!(none["matches"], 0);
    // Matches inside each other's context: every line once, every match marked as one.
    let near = ok(
        &c,
        "read_output",
        json!({"session": "io", "pattern": "^row-[0-4]$", "context_lines": 2}),
    )
    .await;
    let text = near["text"].as_str().unwrap();
    let numbers: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split([':', '>']).next()?.parse().ok())
        .collect();
    let mut once = numbers.clone();
    once.dedup();
    assert_eq!(numbers, once, "a line shown twice: {text}");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{text}");
    for n in near["match_lines"].as_array().unwrap() {
        assert!(
            text.contains(&format!("\n{n}> row-")) || text.starts_with(&format!("{n}> row-")),
            "{n} not marked: {text}"
        );
    }

    // Keys: typed text interrupted with C-c never runs.
    ok(
        &c,
        "send_text",
        json!({"session": "io", "text": "echo never-$((2+2))", "enter": false}),
    )
    .await;
    let k = ok(&c, "send_keys", json!({"session": "io", "keys": ["C-c"]})).await;
    assert_eq!(k["message"], "pressed C-c");
    ok(
        &c,
        "send_text",
        json!({"session": "io", "text": "echo after-$((3+3))"}),
    )
    .await;
    let t = read_until(&c, "io", "after C-c", |t| t.contains("\nafter-6")).await;
    assert!(!t.contains("\nnever-4"), "{t}");

    // Several sessions at once, one result each.
    ok(&c, "create_session", json!({"name": "io2"})).await;
    let multi = ok(
        &c,
        "send_text",
        json!({"sessions": ["io", "io2", "nope"], "text": "echo multi-$((5*5))"}),
    )
    .await;
    let r = multi["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["ok"], true);
    assert_eq!(r[1]["ok"], true);
    assert_eq!(r[2]["ok"], false);
    assert!(r[2]["error"].as_str().unwrap().contains("list_sessions"));
    read_until(&c, "io2", "multi in io2", |t| t.contains("\nmulti-25")).await;
    // Failed on every session: an error result (isError), the results still there.
    let none = call(
        &c,
        "send_text",
        json!({"sessions": ["nope", "nope2"], "text": "echo x"}),
    )
    .await;
    assert_eq!(none.is_error, Some(true), "{}", text_of(&none));
    let none = none.structured_content.expect("the results");
    assert_eq!(none["results"].as_array().unwrap().len(), 2, "{none}");

    // Caps: a small max_chars cuts with a note.
    ok(&c, "send_text", json!({"session": "io", "text": "for i in $(seq 1 400); do echo line-$i-xxxxxxxxxxxxxxxxxxxx; done"})).await;
    read_until(&c, "io", "400 lines", |t| t.contains("line-400-")).await;
    let capped = ok(
        &c,
        "read_output",
        json!({"session": "io", "lines": 400, "max_chars": 2000}),
    )
    .await;
    assert_eq!(capped["truncated"], true, "{capped}");
    assert!(capped["text"].as_str().unwrap().chars().count() <= 2000);
    assert!(
        capped["note"].as_str().unwrap().contains("left out"),
        "{capped}"
    );
    assert!(
        capped["text"].as_str().unwrap().contains("line-400-"),
        "the tail is kept"
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_results_are_capped_by_the_server_flag() {
    let srv = TmuxServer::start();
    let c = start(&srv, &["--max-chars", "3000"]).await;
    ok(&c, "create_session", json!({"name": "big"})).await;
    ok(&c, "send_text", json!({"session": "big", "text": "for i in $(seq 1 500); do echo big-$i-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done"})).await;
    wait_until("500 lines", || async {
        let v = ok(&c, "read_output", json!({"session": "big", "lines": 5})).await;
        v["text"]
            .as_str()
            .unwrap()
            .contains("big-500-")
            .then_some(())
    })
    .await;
    let r = call(&c, "read_output", json!({"session": "big", "lines": 1000})).await;
    let v = r.structured_content.clone().unwrap();
    assert!(
        v.to_string().chars().count() <= 3000,
        "{}",
        v.to_string().len()
    );
    assert_eq!(v["truncated"], true);
    assert!(v["note"].as_str().unwrap().contains("left out"));
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_workspaces_windows_layouts_and_batches() {
    let srv = TmuxServer::start();
    let c = start(&srv, &["--tier", "destructive"]).await;
    let first = ok(
        &c,
        "create_workspace",
        json!({"name": "proj", "window": "main", "session_name": "proj-main", "scrollback": 1234}),
    )
    .await;
    assert_eq!(first["workspace"], "proj");
    assert_eq!(first["name"], "proj-main");
    let ws = ok(&c, "list_workspaces", json!({})).await;
    assert!(
        ws["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "proj")
    );
    let e = err(&c, "create_workspace", json!({"name": "proj"})).await;
    assert!(e.contains("already exists"), "{e}");

    let sb = ok(&c, "set_scrollback", json!({"workspace": "proj"})).await;
    assert_eq!(sb["lines"], 1234);
    let sb = ok(
        &c,
        "set_scrollback",
        json!({"workspace": "proj", "lines": 5000}),
    )
    .await;
    assert_eq!(sb["lines"], 5000);

    let w = ok(
        &c,
        "create_window",
        json!({"workspace": "proj", "name": "logs", "session_name": "logger"}),
    )
    .await;
    assert_eq!(w["window_name"], "logs");
    let wins = ok(&c, "list_windows", json!({"workspace": "proj"})).await;
    assert_eq!(wins["windows"].as_array().unwrap().len(), 2);
    ok(
        &c,
        "rename_window",
        json!({"workspace": "proj", "window": "logs", "name": "journal"}),
    )
    .await;
    ok(
        &c,
        "select_window",
        json!({"workspace": "proj", "window": "journal"}),
    )
    .await;
    let wins = ok(&c, "list_windows", json!({"workspace": "proj"})).await;
    let j = wins["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "journal")
        .cloned()
        .unwrap();
    assert_eq!(j["active"], true);
    ok(
        &c,
        "close_window",
        json!({"workspace": "proj", "window": "journal"}),
    )
    .await;
    let g = ok(&c, "get_session", json!({"session": "logger"})).await;
    assert_eq!(
        g["alive"], false,
        "the registry remembers the closed window's session"
    );
    let e = err(
        &c,
        "close_window",
        json!({"workspace": "proj", "window": "nope"}),
    )
    .await;
    assert!(e.contains("list_windows"), "{e}");

    let lay = ok(&c, "create_layout", json!({
        "layout": "main-vertical", "workspace": "proj", "window": "dev",
        "panes": [{"name": "editor"}, {"name": "server", "command": "echo serving-$((40+2))"}, {"name": "tests"}]
    })).await;
    let ids = lay["ids"].as_object().unwrap();
    assert_eq!(ids.len(), 3);
    let server_id = ids["server"].as_str().unwrap().to_string();
    read_until(&c, &server_id, "layout command", |t| {
        t.contains("serving-42")
    })
    .await;
    let l = ok(&c, "list_sessions", json!({"workspace": "proj"})).await;
    let dev: Vec<&Value> = l["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["window_name"] == "dev")
        .collect();
    assert_eq!(dev.len(), 3);
    let e = err(
        &c,
        "create_layout",
        json!({"layout": "quad", "panes": [{"name": "one"}]}),
    )
    .await;
    assert!(e.contains("4"), "{e}");
    let tree = ok(
        &c,
        "create_layout",
        json!({
            "workspace": "proj", "window": "custom",
            "tree": {"root": {"split": {"direction": "vertical", "children": [
                {"percent": 30, "node": {"pane": {"name": "top"}}},
                {"percent": 70, "node": {"pane": {"name": "bottom"}}}]}}}
        }),
    )
    .await;
    assert_eq!(tree["sessions"].as_array().unwrap().len(), 2);

    let batch = ok(&c, "create_sessions", json!({
        "workspace": "batch",
        "sessions": [{"name": "b1"}, {"name": "b2", "split": "horizontal"}, {"name": "b3", "split": "vertical", "command": "echo b3-$((1+1))"}, {"name": "b4"}]
    })).await;
    let ids = batch["ids"].as_object().unwrap();
    assert_eq!(ids.len(), 4);
    let l = ok(&c, "list_sessions", json!({"workspace": "batch"})).await;
    let by = |n: &str| {
        l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by("b1")["window_index"], by("b2")["window_index"]);
    assert_eq!(by("b1")["window_index"], by("b3")["window_index"]);
    assert_ne!(by("b1")["window_index"], by("b4")["window_index"]);
    read_until(&c, "b3", "b3 command", |t| t.contains("b3-2")).await;
    // A name taken already is refused before anything is made.
    let e = err(
        &c,
        "create_sessions",
        json!({"workspace": "batch", "sessions": [{"name": "b5"}, {"name": "b1"}]}),
    )
    .await;
    assert!(e.contains("'b1' exists already"), "{e}");
    // A batch that stops half way (here: the first session's window is too small to split
    // 40 times) is an error that still lists what it made.
    let mut many = vec![json!({"name": "t0"})];
    many.extend((1..40).map(|i| json!({"name": format!("t{i}"), "split": "vertical"})));
    let r = call(
        &c,
        "create_sessions",
        json!({"workspace": "tall", "sessions": many}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let partial = r.structured_content.expect("what was made");
    let made = partial["sessions"].as_array().unwrap().len();
    assert!((1..40).contains(&made), "{partial}");
    assert!(
        partial["error"].as_str().unwrap().contains("failed"),
        "{partial}"
    );

    // Mistakes seen in the list itself make nothing.
    for (sessions, want) in [
        (
            json!([{"name": "d1"}, {"name": "d2"}, {"name": "d1"}]),
            "both named 'd1'",
        ),
        (
            json!([{"name": "d3", "split": "vertical"}]),
            "no earlier session",
        ),
        (json!([{"name": "d4"}, {"name": "d:5"}]), "sessions[1]"),
    ] {
        let e = err(
            &c,
            "create_sessions",
            json!({"workspace": "batch", "sessions": sessions}),
        )
        .await;
        assert!(e.contains(want), "{e}");
    }
    let l = ok(&c, "list_sessions", json!({"workspace": "batch"})).await;
    assert!(
        !l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"].as_str().is_some_and(|n| n.starts_with('d'))),
        "{l}"
    );

    ok(&c, "destroy_workspace", json!({"workspace": "batch"})).await;
    let l = ok(&c, "list_sessions", json!({"workspace": "batch"})).await;
    assert_eq!(l["count"], 0);
    let e = err(&c, "destroy_workspace", json!({"workspace": "batch"})).await;
    assert!(e.contains("list_workspaces"), "{e}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_resources_and_prompts() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let a = ok(&c, "create_session", json!({"name": "res"})).await;
    let id = a["id"].as_str().unwrap().to_string();
    ok(
        &c,
        "send_text",
        json!({"session": "res", "text": "echo resource-$((7*6))"}),
    )
    .await;
    read_until(&c, "res", "output", |t| t.contains("\nresource-42")).await;

    let sessions: Value =
        serde_json::from_str(&resource_text(&c, "terminal://sessions").await).unwrap();
    assert_eq!(sessions["sessions"][0]["id"], id.as_str());
    let info: Value =
        serde_json::from_str(&resource_text(&c, &format!("terminal://{id}/info")).await).unwrap();
    assert_eq!(info["alive"], true);
    assert_eq!(info["session"]["name"], "res");
    let out = resource_text(&c, &format!("terminal://{id}/output")).await;
    assert!(out.contains("resource-42"), "{out}");
    let keys = resource_text(&c, "termloom://keys-reference").await;
    assert!(keys.contains("C-c"));
    let pat = resource_text(&c, "termloom://common-patterns").await;
    assert!(pat.contains("run_command"));
    let bad = c
        .read_resource(ReadResourceRequestParams::new("terminal://nope/output"))
        .await;
    assert!(bad.is_err());
    let bad = c
        .read_resource(ReadResourceRequestParams::new("file:///etc/passwd"))
        .await;
    assert!(bad.is_err());

    let mut args = serde_json::Map::new();
    args.insert("session".into(), json!("res"));
    let p = c
        .get_prompt(GetPromptRequestParams::new("monitor_terminal").with_arguments(args.clone()))
        .await
        .unwrap();
    let body = serde_json::to_string(&p.messages).unwrap();
    assert!(
        body.contains("start_monitoring") && body.contains("res"),
        "{body}"
    );
    args.insert("command".into(), json!("make test\nmake install"));
    let p = c
        .get_prompt(GetPromptRequestParams::new("execute_command").with_arguments(args))
        .await
        .unwrap();
    let body = serde_json::to_string(&p.messages).unwrap();
    assert!(
        body.contains("run_command") && body.contains("make test"),
        "{body}"
    );
    assert!(
        body.contains("\\n    make install"),
        "every line of the command in the block: {body}"
    );
    // A misspelled argument is refused (it would have run the command somewhere else).
    let mut typo = serde_json::Map::new();
    typo.insert("command".into(), json!("make"));
    typo.insert("sesion".into(), json!("res"));
    assert!(
        c.get_prompt(GetPromptRequestParams::new("execute_command").with_arguments(typo))
            .await
            .is_err()
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_tiers_hide_and_refuse_tools() {
    let srv = TmuxServer::start();
    let ro = start(&srv, &["--tier", "read-only"]).await;
    // The prompt that asks for writing tools is not offered either.
    let prompts: Vec<String> = ro
        .list_all_prompts()
        .await
        .unwrap()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(prompts, ["monitor_terminal"], "{prompts:?}");
    assert!(
        ro.get_prompt(GetPromptRequestParams::new("execute_command"))
            .await
            .is_err()
    );
    let names: Vec<String> = ro
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"list_sessions".to_string()));
    assert!(names.contains(&"read_output".to_string()));
    for hidden in [
        "send_text",
        "create_session",
        "run_command",
        "close_session",
    ] {
        assert!(
            !names.contains(&hidden.to_string()),
            "{hidden} under read-only"
        );
    }
    let e = err(&ro, "create_session", json!({"name": "x"})).await;
    assert!(e.contains("--tier write") && e.contains("read-only"), "{e}");
    ro.cancel().await.unwrap();

    let w = start(&srv, &[]).await;
    let names: Vec<String> = w
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"send_text".to_string()));
    for hidden in ["close_session", "destroy_workspace", "close_window"] {
        assert!(!names.contains(&hidden.to_string()), "{hidden} under write");
    }
    ok(&w, "create_session", json!({"name": "keep"})).await;
    let e = err(&w, "close_session", json!({"session": "keep"})).await;
    assert!(e.contains("--tier destructive"), "{e}");
    ok(&w, "get_session", json!({"session": "keep"})).await;
    w.cancel().await.unwrap();

    let d = start(&srv, &["--tier", "destructive"]).await;
    ok(&d, "close_session", json!({"session": "keep"})).await;
    d.cancel().await.unwrap();

    // The environment variable works too.
    let mut cmd = mcp_command(&srv, &[]);
    cmd.env("TERMLOOM_MCP_TIER", "read-only");
    let e = start_with(cmd).await;
    assert!(
        e.list_all_tools()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "send_text")
    );
    e.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_managed_scope_refuses_writes_to_untagged_panes() {
    let srv = TmuxServer::start();
    srv.tmux(&[
        "new-session",
        "-d",
        "-s",
        "manual",
        "-n",
        "theirs",
        "-x",
        "80",
        "-y",
        "24",
    ]);
    let c = start(&srv, &[]).await;
    let l = ok(&c, "list_sessions", json!({})).await;
    let manual = l["sessions"][0].clone();
    assert_eq!(manual["managed"], false);
    assert_eq!(manual["writable"], false);
    let id = manual["id"].as_str().unwrap().to_string();
    let e = err(&c, "send_text", json!({"session": id, "text": "echo no"})).await;
    assert!(
        e.contains("--scope managed") && e.contains("create_session"),
        "{e}"
    );
    for (tool, args) in [
        ("send_keys", json!({"session": id, "keys": ["C-c"]})),
        ("rename_session", json!({"session": id, "name": "mine"})),
        (
            "split_pane",
            json!({"session": id, "direction": "vertical"}),
        ),
        ("focus_session", json!({"session": id})),
        ("set_max_lines", json!({"session": id, "lines": 3})),
        ("run_command", json!({"session": id, "command": "true"})),
        (
            "rename_window",
            json!({"workspace": "manual", "window": "0", "name": "w"}),
        ),
        // Splitting the person's window, or switching their active window.
        (
            "create_session",
            json!({"name": "split-in", "workspace": "manual", "window": "theirs"}),
        ),
        (
            "create_window",
            json!({"workspace": "manual", "name": "front", "select": true}),
        ),
    ] {
        let e = err(&c, tool, args).await;
        assert!(e.contains("refused"), "{tool}: {e}");
    }
    let panes = srv.tmux(&["list-panes", "-s", "-t", "=manual", "-F", "#{pane_id}"]);
    assert_eq!(
        panes.lines().count(),
        1,
        "the person's window was split: {panes}"
    );
    // Reading is fine.
    ok(&c, "read_output", json!({"session": id})).await;
    // Its own sessions are writable.
    ok(
        &c,
        "create_session",
        json!({"name": "own", "workspace": "manual"}),
    )
    .await;
    ok(
        &c,
        "send_text",
        json!({"session": "own", "text": "echo fine"}),
    )
    .await;
    c.cancel().await.unwrap();

    let all = start(&srv, &["--scope", "all"]).await;
    ok(
        &all,
        "send_text",
        json!({"session": id, "text": "echo scope-$((1+1))"}),
    )
    .await;
    read_until(&all, &id, "typed under --scope all", |t| {
        t.contains("\nscope-2")
    })
    .await;
    all.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_never_types_into_its_own_pane_and_defaults_to_its_workspace() {
    let srv = TmuxServer::start();
    srv.tmux(&["new-session", "-d", "-s", "parent"]);
    let pane = srv
        .tmux(&["display", "-p", "-t", "=parent:", "#{pane_id}"])
        .trim()
        .to_string();
    assert!(pane.starts_with('%'), "{pane}");
    let mut cmd = mcp_command(&srv, &["--scope", "all"]);
    cmd.env("TMUX", format!("{},1,0", srv.socket.display()))
        .env("TMUX_PANE", &pane);
    let c = start_with(cmd).await;
    let l = ok(&c, "list_sessions", json!({})).await;
    let me = l["sessions"][0].clone();
    assert_eq!(me["own"], true);
    assert_eq!(me["writable"], false);
    let target = format!("tmux:{pane}");
    let e = err(
        &c,
        "send_text",
        json!({"session": target, "text": "echo nope"}),
    )
    .await;
    assert!(e.contains("runs in"), "{e}");
    let e = err(
        &c,
        "send_keys",
        json!({"session": target, "keys": ["Enter"]}),
    )
    .await;
    assert!(e.contains("runs in"), "{e}");
    let created = ok(&c, "create_session", json!({"name": "helper"})).await;
    assert_eq!(
        created["workspace"], "parent",
        "defaults to the parent workspace"
    );
    ok(
        &c,
        "send_text",
        json!({"session": "helper", "text": "echo ok"}),
    )
    .await;
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_hostile_inputs_get_error_results_not_protocol_errors() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(&c, "create_session", json!({"name": "h"})).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "get_session",
            json!({"session": "no-such-session"}),
            "list_sessions",
        ),
        (
            "get_session",
            json!({"session": "0b0e0b0e-0000-4000-8000-000000000000"}),
            "list_sessions",
        ),
        (
            "get_session",
            json!({"session": "tmux:12"}),
            "invalid target",
        ),
        ("get_session", json!({"session": ""}), "invalid target"),
        (
            "start_monitoring",
            json!({"session": "h", "max_lines": 100_001}),
            "'max_lines' must be from 1 to 100000",
        ),
        // A name the target grammar reads as something else (here: another pane's native id).
        (
            "create_session",
            json!({"name": "tmux:%0", "workspace": "hw"}),
            "may not contain ':'",
        ),
        (
            "rename_session",
            json!({"session": "h", "name": "hw:0.0"}),
            "may not contain ':'",
        ),
        (
            "read_output",
            json!({"session": "h", "pattern": "(unclosed"}),
            "invalid regex",
        ),
        (
            "wait_for",
            json!({"session": "h", "pattern": "[z-a]"}),
            "invalid regex",
        ),
        (
            "send_keys",
            json!({"session": "h", "keys": ["Ctrl+Banana"]}),
            "keys-reference",
        ),
        (
            "send_text",
            json!({"session": "h", "text": "x".repeat(1 << 20)}),
            "at most",
        ),
        (
            "send_text",
            json!({"session": 42, "text": "x"}),
            "invalid arguments",
        ),
        ("send_keys", json!({"session": "h"}), "keys"),
        (
            "read_output",
            json!({"session": "h", "lines": "ten"}),
            "invalid arguments",
        ),
        (
            "read_output",
            json!({"session": "h", "lines": -1}),
            "invalid arguments",
        ),
        ("list_sessions", json!({"bogus": true}), "unknown parameter"),
        (
            "read_output",
            json!({"session": "h", "timeout": 5}),
            "'timeout'",
        ),
        (
            "read_output",
            json!({"session": "h", "lines": 5, "since": "x"}),
            "only one",
        ),
        (
            "read_output",
            json!({"session": "h", "since": "garbage"}),
            "cursor",
        ),
        (
            "rename_session",
            json!({"session": "h", "name": "n".repeat(5000)}),
            "longer",
        ),
        ("create_session", json!({"name": "bad\u{0}name"}), "NUL"),
        (
            "create_workspace",
            json!({"name": "a:b"}),
            "may not contain",
        ),
        (
            "list_sessions",
            json!({"socket": "/tmp/elsewhere.sock"}),
            "refused",
        ),
        ("list_sessions", json!({"host": "example.com"}), "refused"),
        ("no_such_tool", json!({}), "unknown tool"),
        ("send_text", json!({"text": "x"}), "session"),
        (
            "run_command",
            json!({"session": "h", "command": "   "}),
            "empty",
        ),
        ("wait_for", json!({"session": "h"}), "exactly one"),
        (
            "stop_monitoring",
            json!({"monitor_id": "mon-nope"}),
            "no monitor",
        ),
        // Numbers outside the ranges the schemas declare.
        (
            "read_output",
            json!({"session": "h", "lines": 0}),
            "'lines' must be from 1 to 1000000",
        ),
        (
            "run_command",
            json!({"session": "h", "command": "true", "timeout_ms": 99_999_999u64}),
            "'timeout_ms' must be from 0 to 3600000",
        ),
        (
            "resize_pane",
            json!({"session": "h", "width": 10_001}),
            "'width' must be from 1 to 10000",
        ),
        (
            "create_workspace",
            json!({"name": "nosb", "scrollback": 0}),
            "'scrollback' must be from 1",
        ),
        (
            "create_layout",
            json!({"tree": {"root": 5}}),
            "invalid layout tree",
        ),
        (
            "split_pane",
            json!({"session": "h", "direction": "diagonal"}),
            "invalid arguments",
        ),
    ];
    for (tool, args, want) in cases {
        let e = err(&c, tool, args.clone()).await;
        assert!(e.contains(want), "{tool}({}) → {e}", {
            let s = args.to_string();
            s.chars().take(200).collect::<String>()
        });
        assert!(
            e.chars().count() < 60_000,
            "{tool}: error message is capped"
        );
    }
    // Still alive and well.
    let l = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(l["count"], 1);
    // A big text below the limit is pasted intact.
    let big = format!("echo {}-end", "z".repeat(100_000));
    ok(
        &c,
        "send_text",
        json!({"session": "h", "text": big, "enter": false}),
    )
    .await;
    ok(&c, "send_keys", json!({"session": "h", "keys": ["C-c"]})).await;
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_audit_log_records_every_call() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(&c, "list_sessions", json!({})).await;
    err(&c, "get_session", json!({"session": "ghost"})).await;
    err(&c, "close_session", json!({"session": "ghost"})).await;
    c.cancel().await.unwrap();
    let log = std::fs::read_to_string(srv.state.join("mcp-audit.jsonl")).expect("audit log");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[0]["tool"], "list_sessions");
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["transport"], "stdio");
    assert_eq!(lines[1]["status"], "error");
    assert_eq!(lines[1]["args"]["session"], "ghost");
    assert_eq!(lines[2]["status"], "refused");
    assert!(lines[2]["ts"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn mcp_only_sockets_and_hosts_named_at_start_are_reachable() {
    let a = TmuxServer::start();
    let b = TmuxServer::start();
    b.tmux(&["new-session", "-d", "-s", "on-b"]);
    let sock_b = b.socket.to_string_lossy().into_owned();
    let c = start(&a, &["--allow-socket", &sock_b]).await;
    let l = ok(&c, "list_sessions", json!({"socket": sock_b})).await;
    assert_eq!(l["count"], 1);
    assert_eq!(l["sessions"][0]["workspace"], "on-b");
    let l = ok(&c, "list_sessions", json!({})).await;
    assert_eq!(l["count"], 0);
    // The resource a monitor on the other server hands out can be read and subscribed to: a
    // session's id is looked for on every terminal the server reaches.
    let on_b = ok(&c, "list_sessions", json!({"socket": sock_b})).await["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let m = ok(
        &c,
        "start_monitoring",
        json!({"session": on_b, "socket": sock_b}),
    )
    .await;
    let uri = m["resource"].as_str().unwrap().to_string();
    let read = c
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .expect("the output resource of a session on the other server");
    assert!(!read.contents.is_empty());
    let info = c
        .read_resource(ReadResourceRequestParams::new(
            uri.replace("/output", "/info"),
        ))
        .await
        .expect("its info");
    assert!(serde_json::to_string(&info).unwrap().contains("on-b"));
    #[allow(deprecated)]
    c.subscribe(rmcp::model::SubscribeRequestParams::new(uri))
        .await
        .expect("subscribed");
    c.cancel().await.unwrap();

    // Hosts: only those matching an --allow-host pattern are tried at all.
    let c = start(&a, &["--allow-host", "build*"]).await;
    let e = err(&c, "list_sessions", json!({"host": "evil.example"})).await;
    assert!(e.contains("refused") && e.contains("build*"), "{e}");
    let e = err(
        &c,
        "list_sessions",
        json!({"host": "build1", "socket": sock_b}),
    )
    .await;
    assert!(e.contains("not both"), "{e}");
    c.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

mod http {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use super::*;

    struct Served {
        child: tokio::process::Child,
        addr: String,
        token: Option<String>,
    }

    async fn serve(srv: &TmuxServer, extra: &[&str]) -> Served {
        let mut cmd = mcp_command(srv, &[&["--http", "127.0.0.1:0"], extra].concat());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn termloom-mcp --http");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut addr = None;
        let mut token = None;
        let deadline = tokio::time::Instant::now() + termloom_tests::timeout();
        while addr.is_none() || (token.is_none() && !extra.contains(&"--token")) {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .expect("server announces its address")
                .unwrap()
                .expect("stderr open");
            if let Some(a) = line.strip_prefix("termloom-mcp: serving MCP at http://") {
                addr = Some(a.trim_end_matches("/mcp").to_string());
            } else if let Some(t) = line.strip_prefix("termloom-mcp: bearer token: ") {
                token = Some(t.trim().to_string());
            } else if line.contains("using the bearer token from") {
                continue;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Served {
            child,
            addr: addr.unwrap(),
            token,
        }
    }

    /// One HTTP/1.1 POST to /mcp; returns (status, the whole reply with headers).
    async fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        post_until(addr, headers, body, "\"id\":1").await
    }

    /// A header's value in a raw reply.
    fn header(reply: &str, name: &str) -> Option<String> {
        reply.split("\r\n\r\n").next()?.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    async fn post_until(
        addr: &str,
        headers: &[(&str, &str)],
        body: &str,
        done: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        // An SSE reply stays open: read until the JSON-RPC reply has arrived or the server closes.
        let read = async {
            let mut chunk = [0u8; 8192];
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if text.contains("\"jsonrpc\"") && text.contains(done) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

    #[tokio::test]
    async fn mcp_http_needs_the_token_and_a_local_origin() {
        let srv = TmuxServer::start();
        let mut s = serve(&srv, &[]).await;
        let token = s.token.clone().expect("a generated token is printed");
        assert!(token.len() >= 32);
        let bearer = format!("Bearer {token}");

        let (st, _) = post(&s.addr, &[], INIT).await;
        assert_eq!(st, 401, "no token");
        let (st, _) = post(&s.addr, &[("Authorization", "Bearer wrong")], INIT).await;
        assert_eq!(st, 401, "wrong token");
        let (st, _) = post(
            &s.addr,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://evil.example"),
            ],
            INIT,
        )
        .await;
        assert_eq!(st, 403, "foreign origin");
        let (st, _) = post(&s.addr, &[("Origin", "http://evil.example")], INIT).await;
        assert_eq!(st, 403, "foreign origin without token");
        let (st, body) = post(&s.addr, &[("Authorization", &bearer)], INIT).await;
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("\"name\":\"termloom\""), "{body}");
        let (st, body) = post(
            &s.addr,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://localhost:5173"),
            ],
            INIT,
        )
        .await;
        assert_eq!(st, 200, "{body}");
        s.child.kill().await.unwrap();
    }

    #[tokio::test]
    async fn mcp_http_lets_a_page_at_an_allowed_origin_ask_and_read() {
        let srv = TmuxServer::start();
        let mut s = serve(
            &srv,
            &[
                "--token",
                "tok-cors",
                "--allow-origin",
                "https://app.example",
            ],
        )
        .await;
        let preflight = |origin: &'static str| {
            let addr = s.addr.clone();
            async move {
                let mut c = TcpStream::connect(&addr).await.expect("connect");
                let req = format!(
                    "OPTIONS /mcp HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\nConnection: close\r\n\r\n"
                );
                c.write_all(req.as_bytes()).await.unwrap();
                let mut out = String::new();
                tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut out))
                    .await
                    .expect("answered")
                    .unwrap();
                out
            }
        };
        // The browser's question carries no token: an allowed origin gets its answer.
        for origin in ["https://app.example", "http://localhost:5173"] {
            let r = preflight(origin).await;
            assert!(r.starts_with("HTTP/1.1 204"), "{r}");
            assert_eq!(
                header(&r, "access-control-allow-origin").as_deref(),
                Some(origin)
            );
            let allowed = header(&r, "access-control-allow-headers").unwrap_or_default();
            assert!(
                allowed.contains("authorization") && allowed.contains("mcp-session-id"),
                "{r}"
            );
        }
        let r = preflight("https://evil.example").await;
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
        // The reply to the real request lets the page read the session id.
        let (st, reply) = post(
            &s.addr,
            &[
                ("Authorization", "Bearer tok-cors"),
                ("Origin", "https://app.example"),
            ],
            INIT,
        )
        .await;
        assert_eq!(st, 200, "{reply}");
        assert_eq!(
            header(&reply, "access-control-allow-origin").as_deref(),
            Some("https://app.example")
        );
        assert!(
            header(&reply, "access-control-expose-headers")
                .is_some_and(|h| h.contains("mcp-session-id")),
            "{reply}"
        );
        s.child.kill().await.unwrap();
    }

    #[tokio::test]
    async fn mcp_http_serves_tools_with_a_given_token() {
        let srv = TmuxServer::start();
        let mut s = serve(&srv, &["--token", "sekrit-token-123"]).await;
        assert!(s.token.is_none(), "a given token is not printed");
        let auth = ("Authorization", "Bearer sekrit-token-123");
        let (st, reply) = post(&s.addr, &[auth], INIT).await;
        assert_eq!(st, 200, "{reply}");
        let sid = header(&reply, "mcp-session-id").expect("a session id");
        let session = ("Mcp-Session-Id", sid.as_str());
        let version = ("Mcp-Protocol-Version", "2025-06-18");
        let (st, reply) = post_until(
            &s.addr,
            &[auth, session, version],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\u{0}",
        )
        .await;
        assert_eq!(st, 202, "{reply}");
        let (st, reply) = post_until(
            &s.addr,
            &[auth, session, version],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_session","arguments":{"name":"via-http"}}}"#,
            "\"id\":2",
        )
        .await;
        assert_eq!(st, 200, "{reply}");
        assert!(
            reply.contains("via-http") && reply.contains("\"isError\":false"),
            "{reply}"
        );
        let (st, _) = post_until(
            &s.addr,
            &[session, version],
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
            "\"id\":3",
        )
        .await;
        assert_eq!(
            st, 401,
            "every request needs the token, not only initialize"
        );
        s.child.kill().await.unwrap();
        let log = std::fs::read_to_string(srv.state.join("mcp-audit.jsonl")).unwrap();
        assert!(log.contains("\"transport\":\"http\""), "{log}");
    }

    #[tokio::test]
    async fn mcp_http_stops_at_ctrl_c_while_a_client_holds_its_event_stream() {
        let srv = TmuxServer::start();
        // A token read from a file keeps its newline: not part of the token.
        let mut s = serve(&srv, &["--token", " tok-123\n"]).await;
        // The scheme's name is case-insensitive.
        let auth = ("Authorization", "BEARER tok-123");
        let (st, reply) = post(&s.addr, &[auth], INIT).await;
        assert_eq!(st, 200, "{reply}");
        let sid = header(&reply, "mcp-session-id").expect("a session id");
        let (st, _) = post_until(
            &s.addr,
            &[
                auth,
                ("Mcp-Session-Id", &sid),
                ("Mcp-Protocol-Version", "2025-06-18"),
            ],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\u{0}",
        )
        .await;
        assert_eq!(st, 202);
        // The client's standing GET stream for server messages.
        let mut stream = TcpStream::connect(&s.addr).await.expect("connect");
        let get = format!(
            "GET /mcp HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nAuthorization: Bearer tok-123\r\nMcp-Session-Id: {sid}\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n",
            s.addr
        );
        stream.write_all(get.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head))
            .await
            .expect("the stream answers")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
        let pid = s.child.id().expect("running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(10), s.child.wait())
            .await
            .expect("the server ended within 10 s of Ctrl-C")
            .unwrap();
        assert!(status.success(), "{status:?}");
        drop(stream);
    }

    #[tokio::test]
    async fn mcp_http_refuses_a_remote_address_without_allow_remote() {
        let srv = TmuxServer::start();
        let out = mcp_command(&srv, &["--http", "0.0.0.0:0"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("--allow-remote"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting on the control-mode transport (issue 3): run, status, subscribe.
// ---------------------------------------------------------------------------------------------

mod control_mode {
    use rmcp::model::{ProgressToken, RequestMetaObject, SubscribeRequestParams};

    use super::*;

    #[tokio::test]
    async fn mcp_run_command_returns_exit_code_and_only_its_output() {
        let srv = TmuxServer::start();
        let c = start(&srv, &[]).await;
        ok(&c, "create_session", json!({"name": "run"})).await;
        let r = ok(
            &c,
            "run_command",
            json!({"session": "run", "command": "echo run-$((20+22))"}),
        )
        .await;
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["output"].as_str().unwrap().trim(), "run-42", "{r}");
        assert_eq!(r["timed_out"], false);
        assert!(r["strategy"].is_string());
        assert!(r["duration_ms"].is_u64());
        let r = ok(
            &c,
            "run_command",
            json!({"session": "run", "command": "false"}),
        )
        .await;
        assert_eq!(r["exit_code"], 1, "{r}");

        // A window name instead of a session: created when missing, reused after.
        let r = ok(
            &c,
            "run_command",
            json!({"window": "build", "workspace": "w", "command": "echo in-window"}),
        )
        .await;
        assert_eq!(r["exit_code"], 0, "{r}");
        let again = ok(
            &c,
            "run_command",
            json!({"window": "build", "workspace": "w", "command": "true"}),
        )
        .await;
        assert_eq!(again["session"], r["session"]);

        // Several sessions in parallel.
        ok(&c, "create_session", json!({"name": "run2"})).await;
        let m = ok(
            &c,
            "run_command",
            json!({"sessions": ["run", "run2"], "command": "echo both"}),
        )
        .await;
        let res = m["results"].as_array().unwrap();
        assert!(
            res.iter()
                .all(|x| x["ok"] == true && x["result"]["exit_code"] == 0),
            "{m}"
        );

        // Timeouts leave a handle; wait_for picks it up.
        let r = ok(
            &c,
            "run_command",
            json!({"session": "run", "command": "sleep 1; echo late", "timeout_ms": 100}),
        )
        .await;
        assert_eq!(r["timed_out"], true, "{r}");
        assert_eq!(r["running"], true);
        let handle = r["handle"].as_str().unwrap().to_string();
        let w = ok(
            &c,
            "wait_for",
            json!({"session": "run", "handle": handle, "timeout_ms": 10000}),
        )
        .await;
        assert_eq!(w["matched"], true, "{w}");
        assert_eq!(w["run"]["exit_code"], 0);
        assert!(w["run"]["output"].as_str().unwrap().contains("late"));

        // wait: false returns at once.
        let r = ok(
            &c,
            "run_command",
            json!({"session": "run", "command": "sleep 0.5", "wait": false}),
        )
        .await;
        assert_eq!(r["running"], true, "{r}");
        // Not waited for is not timed out.
        assert_eq!(r["timed_out"], false, "{r}");
        assert!(r["handle"].is_string());
        c.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn mcp_run_command_reports_progress_and_stops_on_cancel() {
        let srv = TmuxServer::start();
        let seen = Seen::default();
        let (t, _) = TokioChildProcess::builder(mcp_command(&srv, &[]))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let c = seen.clone().serve(t).await.unwrap();
        ok(&c, "create_session", json!({"name": "p"})).await;
        let mut params = CallToolRequestParams::new("run_command").with_arguments(
            json!({"session": "p", "command": "sleep 1.2; echo done"})
                .as_object()
                .unwrap()
                .clone(),
        );
        params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
            rmcp::model::NumberOrString::String("tok-1".into()),
        )));
        let r = c.call_tool(params).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
        let progress = seen.progress.lock().unwrap().clone();
        assert!(!progress.is_empty(), "progress notifications arrive");
        assert!(progress.iter().all(|p| p.total == Some(30_000.0)));

        // Cancelling a long wait ends it.
        let params = CallToolRequestParams::new("wait_for").with_arguments(
            json!({"session": "p", "pattern": "never-printed", "timeout_ms": 60000})
                .as_object()
                .unwrap()
                .clone(),
        );
        let handle = c
            .send_cancellable_request(
                rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
                    params,
                )),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        let started = std::time::Instant::now();
        handle.cancel(Some("test".into())).await.unwrap();
        // The server stops waiting (the audit log shows the call ending) and keeps serving.
        let audit = srv.state.join("mcp-audit.jsonl");
        wait_until("the cancelled wait_for to end", || async {
            let log = std::fs::read_to_string(&audit).unwrap_or_default();
            log.lines()
                .any(|l| l.contains("\"wait_for\"") && l.contains("cancelled by the client"))
                .then_some(())
        })
        .await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        ok(&c, "list_sessions", json!({})).await;

        // A cancelled run keeps going, parked with a handle like one that timed out: the next
        // run on the session is told so at once (it waited for the slot, then blamed tmux).
        let params = CallToolRequestParams::new("run_command").with_arguments(
            json!({"session": "p", "command": "sleep 30"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let handle = c
            .send_cancellable_request(
                rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
                    params,
                )),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        wait_until("the sleep to start", || async {
            let st = ok(&c, "get_status", json!({"session": "p"})).await;
            (st["state"] == "busy").then_some(())
        })
        .await;
        handle.cancel(Some("test".into())).await.unwrap();
        let started = std::time::Instant::now();
        let e = err(
            &c,
            "run_command",
            json!({"session": "p", "command": "echo next", "timeout_ms": 20000}),
        )
        .await;
        assert!(e.contains("an earlier run (`sleep 30`, handle run-"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        c.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn mcp_wait_for_pattern_and_idle_and_status() {
        let srv = TmuxServer::start();
        let c = start(&srv, &[]).await;
        ok(&c, "create_session", json!({"name": "w"})).await;
        let st = ok(&c, "get_status", json!({"session": "w"})).await;
        assert!(st["state"] == "idle" || st["state"] == "busy", "{st}");
        ok(
            &c,
            "send_text",
            json!({"session": "w", "text": "sleep 0.3; echo ready-$((1+1))"}),
        )
        .await;
        let w = ok(
            &c,
            "wait_for",
            json!({"session": "w", "pattern": "^ready-2$", "timeout_ms": 10000}),
        )
        .await;
        assert_eq!(w["matched"], true, "{w}");
        assert_eq!(w["line"], "ready-2");
        let w = ok(
            &c,
            "wait_for",
            json!({"session": "w", "pattern": "never", "timeout_ms": 300}),
        )
        .await;
        assert_eq!(w["timed_out"], true);
        let w = ok(
            &c,
            "wait_for",
            json!({"session": "w", "idle_ms": 200, "timeout_ms": 5000}),
        )
        .await;
        assert_eq!(w["matched"], true, "{w}");
        c.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn mcp_monitoring_collects_filtered_lines_and_notifies_subscribers() {
        let srv = TmuxServer::start();
        let seen = Seen::default();
        let (t, _) = TokioChildProcess::builder(mcp_command(&srv, &[]))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let c = seen.clone().serve(t).await.unwrap();
        let s = ok(&c, "create_session", json!({"name": "mon"})).await;
        let id = s["id"].as_str().unwrap().to_string();
        let m = ok(
            &c,
            "start_monitoring",
            json!({"session": "mon", "filters": ["ERROR"]}),
        )
        .await;
        let mid = m["monitor_id"].as_str().unwrap().to_string();
        let uri = m["resource"].as_str().unwrap().to_string();
        assert_eq!(uri, format!("terminal://{id}/output"));
        #[allow(deprecated)]
        // resources/subscribe is the pre-2026-07-28 way, which rmcp's client speaks by default
        c.subscribe(SubscribeRequestParams::new(uri.clone()))
            .await
            .unwrap();
        // A session that does not exist, or one named by its name (the URI notifications would
        // not carry), is refused.
        for bad in [
            format!("terminal://{}/output", uuid::Uuid::new_v4()),
            "terminal://mon/output".to_string(),
        ] {
            #[allow(deprecated)]
            let refused = c.subscribe(SubscribeRequestParams::new(bad.clone())).await;
            assert!(refused.is_err(), "{bad} was accepted");
        }
        ok(
            &c,
            "send_text",
            json!({"session": "mon", "text": "echo ok-line; echo ERROR-$((1+1))"}),
        )
        .await;
        let lines = wait_until("monitored line", || async {
            let v = ok(
                &c,
                "stop_monitoring",
                json!({"monitor_id": mid, "keep_running": true}),
            )
            .await;
            let l: Vec<String> = v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            l.iter().any(|x| x == "ERROR-2").then_some(l)
        })
        .await;
        assert!(!lines.iter().any(|l| l == "ok-line"), "{lines:?}");
        wait_until("resource update", || async {
            seen.updated.lock().unwrap().contains(&uri).then_some(())
        })
        .await;
        let v = ok(&c, "stop_monitoring", json!({"monitor_id": mid})).await;
        assert_eq!(v["running"], false);
        err(&c, "stop_monitoring", json!({"monitor_id": mid})).await;
        c.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn mcp_logs_every_session_it_touches_by_default() {
    let srv = TmuxServer::start();
    let c = start(&srv, &["--tier", "destructive"]).await;
    let a = ok(
        &c,
        "create_session",
        json!({"name": "lg", "workspace": "w"}),
    )
    .await;
    let id = a["id"].as_str().unwrap().to_string();
    ok(
        &c,
        "send_text",
        json!({"session": id, "text": "echo log-$((6*7))"}),
    )
    .await;
    ok(&c, "rename_session", json!({"session": id, "name": "lg2"})).await;
    let log = srv.state.join("logs").join(format!("{id}.log"));
    // The text sent, the output it printed, and the lifecycle, in the session's own log.
    wait_until("the session log has the output", || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(&log).ok()?;
            (text.contains("echo log-$((6*7))") && text.contains("log-42") && text.contains("lg2"))
                .then_some(())
        }
    })
    .await;
    ok(&c, "close_session", json!({"session": id})).await;
    wait_until("the close is logged", || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains("close").then_some(())
        }
    })
    .await;
    c.cancel().await.unwrap();

    // --no-log: nothing is written.
    let srv = TmuxServer::start();
    let c = start(&srv, &["--no-log"]).await;
    let a = ok(
        &c,
        "create_session",
        json!({"name": "nl", "workspace": "w"}),
    )
    .await;
    let id = a["id"].as_str().unwrap().to_string();
    ok(
        &c,
        "send_text",
        json!({"session": id, "text": "echo quiet"}),
    )
    .await;
    c.cancel().await.unwrap();
    assert!(!srv.state.join("logs").join(format!("{id}.log")).exists());
}

#[tokio::test]
async fn mcp_lists_opens_and_closes_projects_idempotently() {
    let srv = TmuxServer::start();
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("projects");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mp.yaml"),
        "name: mp\nbackend: tmux\nsession: mp\nwindows:\n  - name: main\n    layout: vertical\n    panes:\n      - name: a\n        command: echo ran-a\n      - name: b\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad.yaml"), "name: [oops\n").unwrap();
    let mut cmd = mcp_command(&srv, &[]);
    cmd.env("TERMLOOM_CONFIG_DIR", config.path());
    let c = start_with(cmd).await;
    // Adopting takes over a person's workspace: not under --scope managed (the default).
    let e = err(&c, "open_project", json!({"project": "mp", "adopt": true})).await;
    assert!(e.contains("--scope managed") && e.contains("adopt"), "{e}");
    let l = ok(&c, "list_projects", json!({})).await;
    let projects = l["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2, "{l}");
    let mp = projects.iter().find(|p| p["name"] == "mp").unwrap();
    assert_eq!(mp["status"]["open"], false, "{mp}");
    let bad = projects.iter().find(|p| p["name"] == "bad").unwrap();
    assert!(bad["error"].is_string(), "{bad}");

    let first = ok(&c, "open_project", json!({"project": "mp"})).await;
    assert_eq!(first["report"]["created"], 2, "{first}");
    assert_eq!(first["report"]["created_workspace"], true, "{first}");
    // The sessions are reachable by their names.
    wait_until("the pane's command ran", || {
        let c = &c;
        async move {
            let r = call(c, "read_output", json!({"session": "mp/a", "lines": 20})).await;
            text_of(&r).contains("ran-a").then_some(())
        }
    })
    .await;
    let again = ok(&c, "open_project", json!({"project": "mp"})).await;
    assert_eq!(again["report"]["created"], 0, "{again}");
    assert_eq!(again["report"]["found"], 2, "{again}");
    let closed = ok(&c, "close_project", json!({"project": "mp"})).await;
    assert_eq!(closed["report"]["was_open"], true, "{closed}");
    assert_eq!(closed["report"]["sessions"], 2, "{closed}");
    let l = ok(&c, "list_projects", json!({})).await;
    let mp = l["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mp")
        .unwrap()
        .clone();
    assert_eq!(
        mp["status"]["open"], true,
        "close keeps the workspace: {mp}"
    );
    // Mistakes are tool errors that say what to do.
    let e = err(&c, "open_project", json!({"project": "nope"})).await;
    assert!(e.contains("list_projects"), "{e}");
    let e = err(&c, "open_project", json!({"project": "bad"})).await;
    assert!(e.contains("bad.yaml"), "{e}");
    c.cancel().await.unwrap();
}

/// Calls naming a session by its full id go straight to the pane the registry last saw it in,
/// checked by tmux in the same step as the input. A hint that lies (here: two sessions' panes
/// swapped in the registry file) is caught by that check: the text reaches the session named, never
/// the pane the hint pointed at, and reads and keys too.
#[tokio::test]
async fn mcp_a_lying_registry_hint_never_sends_to_the_pane_it_names() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let a = ok(&c, "create_session", json!({"name": "a", "workspace": "w"})).await;
    let b = ok(&c, "create_session", json!({"name": "b", "workspace": "w"})).await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    let panes = srv.tmux(&["list-panes", "-a", "-F", "#{@termloom_id} #{pane_id}"]);
    let pane_of = |id: &str| {
        panes
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not in {panes}"))
            .to_string()
    };
    let (pa, pb) = (pane_of(&a), pane_of(&b));
    let swap = || {
        let path = srv.state.join("registry.json");
        let mut reg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        reg["sessions"][&a]["native"] = json!(pb);
        reg["sessions"][&b]["native"] = json!(pa);
        std::fs::write(&path, serde_json::to_vec(&reg).unwrap()).unwrap();
    };
    swap();
    ok(
        &c,
        "send_text",
        json!({"session": a, "text": "echo to-a-$((40+2))"}),
    )
    .await;
    read_until(&c, &a, "the text in a", |t| t.contains("\nto-a-42")).await;
    swap();
    let read_b = ok(&c, "read_output", json!({"session": b, "lines": 200})).await;
    let text_b = read_b["text"].as_str().unwrap();
    assert_eq!(read_b["session"], json!(b));
    assert!(!text_b.contains("to-a"), "b got a's text: {text_b}");
    swap();
    ok(
        &c,
        "send_keys",
        json!({"session": b, "keys": ["e", "c", "h", "o", "Space", "k", "b", "Enter"]}),
    )
    .await;
    read_until(&c, &b, "the keys in b", |t| t.contains("\nkb")).await;
    let text_a = ok(&c, "read_output", json!({"session": a, "lines": 200})).await;
    assert!(
        !text_a["text"].as_str().unwrap().contains("kb"),
        "a got b's keys: {text_a}"
    );
    // Straight to the pane: what tmux holds under each id is what each read said.
    let in_a = srv.tmux(&["capture-pane", "-p", "-t", &pa]);
    let in_b = srv.tmux(&["capture-pane", "-p", "-t", &pb]);
    assert!(in_a.contains("to-a-42") && !in_a.contains("\nkb"), "{in_a}");
    assert!(in_b.contains("\nkb") && !in_b.contains("to-a"), "{in_b}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_monitor_lines_over_the_result_cap_wait_for_the_next_collection() {
    // More lines than one result holds: none is lost, in order, even after the monitor stops.
    let srv = TmuxServer::start();
    let c = start(&srv, &["--max-chars", "3000"]).await;
    ok(&c, "create_session", json!({"name": "flood"})).await;
    let m = ok(&c, "start_monitoring", json!({"session": "flood"})).await;
    let mid = m["monitor_id"].as_str().unwrap().to_string();
    ok(
        &c,
        "run_command",
        json!({"session": "flood", "command": "seq -f 'line-%g' 1 600"}),
    )
    .await;
    let mut got: Vec<String> = Vec::new();
    let mut stopped = false;
    let deadline = std::time::Instant::now() + termloom_tests::timeout();
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "lines collected: {}",
            got.len()
        );
        let stop = got.len() > 100 && !stopped;
        let v = ok(
            &c,
            "stop_monitoring",
            json!({"monitor_id": mid, "keep_running": !stop}),
        )
        .await;
        stopped |= stop;
        assert!(v.to_string().len() <= 3000, "{v}");
        assert_ne!(v["truncated"], true, "{v}");
        got.extend(
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .filter(|l| l.starts_with("line-")),
        );
        if v["waiting"].as_u64() == Some(0) && got.len() >= 600 {
            break;
        }
        if v["waiting"].as_u64() == Some(0) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let want: Vec<String> = (1..=600).map(|i| format!("line-{i}")).collect();
    assert_eq!(got, want);
    assert!(stopped);
    // Stopped and emptied: gone.
    err(&c, "stop_monitoring", json!({"monitor_id": mid})).await;
}

#[tokio::test]
async fn mcp_a_read_since_says_when_repeated_output_pushed_its_position_out() {
    // A full scrollback and output that repeats the line a cursor stands on: the text where the
    // anchor was matches, but the count of lines printed since says it scrolled out. Before,
    // such a read returned one to three lines and no note.
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(
        &c,
        "create_workspace",
        json!({"name": "small", "session_name": "rep", "scrollback": 100}),
    )
    .await;
    // No prompt text: the line a read's cursor stands on is an output line, "X".
    ok(
        &c,
        "run_command",
        json!({"session": "rep", "command": "PS1=; yes X | head -300"}),
    )
    .await;
    for n in [150, 300] {
        let r = ok(&c, "read_output", json!({"session": "rep", "lines": 3})).await;
        let cursor = r["cursor"].as_str().unwrap().to_string();
        ok(
            &c,
            "run_command",
            json!({"session": "rep", "command": format!("yes X | head -{n}")}),
        )
        .await;
        let r = ok(
            &c,
            "read_output",
            json!({"session": "rep", "since": cursor}),
        )
        .await;
        let text = r["text"].as_str().unwrap();
        let xs = text.lines().filter(|l| *l == "X").count();
        assert!(xs >= 100, "{n} printed, {xs} returned: {r}");
        assert!(
            r["note"]
                .as_str()
                .unwrap_or("")
                .contains("scrollback holds"),
            "{n}: {r}"
        );
    }
}

#[tokio::test]
async fn mcp_a_timed_out_prompt_run_does_not_hold_its_session() {
    // A prompt regex that never matches (or a program never silent) left the session "busy"
    // for a day, and C-c could not help. A later run supersedes such a run.
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(&c, "create_session", json!({"name": "p"})).await;
    let r = ok(
        &c,
        "run_command",
        json!({"session": "p", "command": "echo hi", "prompt": "NEVERMATCH", "timeout_ms": 500}),
    )
    .await;
    assert_eq!(r["timed_out"], true, "{r}");
    let handle = r["handle"].as_str().unwrap().to_string();
    let r = ok(
        &c,
        "run_command",
        json!({"session": "p", "command": "echo next; (exit 4)"}),
    )
    .await;
    assert_eq!(
        (r["exit_code"].as_i64(), r["output"].as_str()),
        (Some(4), Some("next")),
        "{r}"
    );
    // The superseded run's handle says so.
    let e = err(
        &c,
        "wait_for",
        json!({"session": "p", "handle": handle, "timeout_ms": 1000}),
    )
    .await;
    assert!(e.contains("abandoned"), "{e}");
    // A quiet period has a bound.
    let e = err(
        &c,
        "run_command",
        json!({"session": "p", "command": "true", "quiet_ms": 1_000_000_000u64}),
    )
    .await;
    assert!(e.contains("600000"), "{e}");
}

#[tokio::test]
async fn mcp_a_monitor_follows_its_pane_into_another_workspace() {
    // swap-pane moves the session's pane to another tmux session: its output then reaches
    // termloom through that workspace's output client, and the monitor goes on (before: it
    // ended, "pane closed").
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    let a = ok(
        &c,
        "create_session",
        json!({"name": "mv", "workspace": "w1"}),
    )
    .await;
    let b = ok(
        &c,
        "create_session",
        json!({"name": "other", "workspace": "w2"}),
    )
    .await;
    let m = ok(&c, "start_monitoring", json!({"session": "mv"})).await;
    let mid = m["monitor_id"].as_str().unwrap().to_string();
    let (pa, pb) = (
        a["native"]
            .as_str()
            .unwrap()
            .trim_start_matches("tmux:")
            .to_string(),
        b["native"]
            .as_str()
            .unwrap()
            .trim_start_matches("tmux:")
            .to_string(),
    );
    srv.tmux(&["swap-pane", "-d", "-s", &pa, "-t", &pb]);
    let mut n = 0;
    wait_until("a line printed after the move", || {
        n += 1;
        let (c, mid) = (&c, mid.clone());
        async move {
            ok(
                c,
                "send_text",
                json!({"session": "mv", "text": format!("echo AFTER-MOVE-$((1+{n}))")}),
            )
            .await;
            let v = ok(
                c,
                "stop_monitoring",
                json!({"monitor_id": mid, "keep_running": true}),
            )
            .await;
            assert!(v["closed"].is_null(), "{v}");
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("AFTER-MOVE-"))
                .then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn mcp_wait_for_names_a_session_whose_pane_ends_while_it_waits() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(&c, "create_session", json!({"name": "mybuild"})).await;
    let waiting = err(
        &c,
        "wait_for",
        json!({"session": "mybuild", "pattern": "never-printed", "timeout_ms": 20000}),
    );
    // The shell ends a moment later, while the wait listens.
    let ending = async {
        ok(
            &c,
            "send_text",
            json!({"session": "mybuild", "text": "sleep 0.5; exit"}),
        )
        .await;
    };
    let (e, ()) = tokio::join!(waiting, ending);
    assert!(
        e.contains("('mybuild') ended while waiting"),
        "the session by its name: {e}"
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_a_finished_monitor_waits_for_its_collection_and_ids_stay_private() {
    let srv = TmuxServer::start();
    let c = start(&srv, &[]).await;
    ok(&c, "create_session", json!({"name": "short"})).await;
    ok(&c, "create_session", json!({"name": "other"})).await;
    let m = ok(
        &c,
        "start_monitoring",
        json!({"session": "short", "filters": ["NEVER-MATCHES"]}),
    )
    .await;
    let id = m["monitor_id"].as_str().unwrap().to_string();
    ok(&c, "send_text", json!({"session": "short", "text": "exit"})).await;
    // The pane is gone once the session is no longer listed.
    wait_until("the pane to close", || async {
        let l = ok(&c, "list_sessions", json!({})).await;
        (!l.to_string().contains("\"short\"")).then_some(())
    })
    .await;
    wait_until("the monitor to see the end", || async {
        let r = ok(
            &c,
            "stop_monitoring",
            json!({"monitor_id": id, "keep_running": true}),
        )
        .await;
        (!r["closed"].is_null()).then_some(r)
    })
    .await;
    // The next monitor (this client's or another's) does not make the finished one vanish: its
    // collection still says why its output ended.
    let other = ok(&c, "start_monitoring", json!({"session": "other"})).await;
    let done = ok(&c, "stop_monitoring", json!({"monitor_id": id})).await;
    assert!(
        done["closed"].as_str().is_some_and(|r| !r.is_empty()),
        "{done}"
    );
    assert_eq!(done["running"], false, "{done}");
    assert!(done["lines"].as_array().unwrap().is_empty(), "{done}");
    // An unknown id is an error that names no other monitor.
    let e = err(
        &c,
        "stop_monitoring",
        json!({"monitor_id": "mon-000000000000"}),
    )
    .await;
    let other_id = other["monitor_id"].as_str().unwrap();
    assert!(!e.contains(other_id), "{e}");
    c.cancel().await.unwrap();
}
