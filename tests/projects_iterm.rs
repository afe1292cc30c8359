//! Projects in iTerm2 against the fake (`termloom-fake-iterm`): `backend: iterm-tmux` (a gateway
//! window running a REAL `tmux -CC` on a private server, windows mirrored from tmux's
//! notifications, detach through the `tmux.Detach` menu item) and `backend: iterm`.
//!
//! Build first: `cargo build --workspace --bins --features termloom-iterm/fake`. The fake's
//! sessions get `TMUX_TMPDIR` pointing into the test's temp dir, so `tmux -CC new-session` (as
//! a project types it, without `-S`) starts a private server there; HOME is private too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use termloom_core::key::Key;
use termloom_core::project::{self, CloseOptions, ItemStatus, OpenOptions, Project};
use termloom_core::{SendOpts, Terminal};
use termloom_iterm::ItermTerminal;
use termloom_iterm::connection::{ConnectOptions, Credentials, VariableTarget};
use termloom_tests::{bin, require_tmux, wait_until};

/// A running fake iTerm2 whose sessions share a private `TMUX_TMPDIR`.
struct Fake {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Fake {
    fn start() -> Fake {
        require_tmux();
        let dir = tempfile::Builder::new()
            .prefix("tlpi-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let socket = dir.path().join("s");
        for d in ["home", "tmux", "work"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dir");
        }
        let mut child = Command::new(bin("termloom-fake-iterm"))
            .arg("--socket")
            .arg(&socket)
            .args(["--cookie", "c", "--key", "k"])
            .args(["--shell", "/bin/bash --norc --noprofile"])
            .arg("--cwd")
            .arg(dir.path().join("work"))
            .arg("--exit-on-stdin-eof")
            .env("HOME", dir.path().join("home"))
            .env("TMUX_TMPDIR", dir.path().join("tmux"))
            .env_remove("TMUX")
            .env("PS1", "$ ")
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
        let ready: Value = serde_json::from_str(&line).expect("ready JSON");
        assert_eq!(ready["ready"], true, "{ready}");
        Fake { dir, child, socket }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn term(&self) -> ItermTerminal {
        ItermTerminal::new(ConnectOptions {
            socket_path: Some(self.socket.clone()),
            credentials: Some(Credentials {
                cookie: "c".into(),
                key: "k".into(),
            }),
            use_environment: false,
            use_osascript: false,
            ..ConnectOptions::default()
        })
    }

    /// The private tmux server's socket (`$TMUX_TMPDIR/tmux-UID/default`).
    fn tmux_socket(&self) -> PathBuf {
        let uid = String::from_utf8(Command::new("id").arg("-u").output().expect("id").stdout)
            .expect("uid");
        self.path()
            .join("tmux")
            .join(format!("tmux-{}", uid.trim()))
            .join("default")
    }

    /// Runs tmux against the private server.
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(self.tmux_socket())
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pane id → pid of a tmux session.
    fn pane_pids(&self, session: &str) -> BTreeMap<String, String> {
        self.tmux(&[
            "list-panes",
            "-s",
            "-t",
            &format!("={session}"),
            "-F",
            "#{pane_id} #{pane_pid}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(self.tmux_socket())
            .arg("kill-server")
            .output();
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project(yaml: &str, name: &str) -> Project {
    Project::from_yaml(yaml, Path::new(&format!("{name}.yaml"))).expect("project")
}

/// Window variables of every window: id → (user.role, user.projectID, user.managed).
async fn window_tags(t: &ItermTerminal) -> Vec<(String, Value, Value, Value)> {
    let layout = t.layout().await.expect("layout");
    let mut out = Vec::new();
    for w in &layout.windows {
        let target = VariableTarget::Window(w.id.clone());
        let get = |n: &'static str| {
            let target = target.clone();
            async move { t.get_variable(&target, n).await.unwrap_or(Value::Null) }
        };
        out.push((
            w.id.clone(),
            get("user.role").await,
            get("user.projectID").await,
            get("user.managed").await,
        ));
    }
    out
}

/// The tmux connection ids whose windows are tagged with `project`.
async fn project_windows(t: &ItermTerminal, project: &str) -> Vec<String> {
    let layout = t.layout().await.expect("layout");
    let tags = window_tags(t).await;
    layout
        .windows
        .iter()
        .filter(|w| w.tabs.iter().any(|t| t.tmux_connection_id.is_some()))
        .filter(|w| {
            tags.iter()
                .any(|(id, _, p, _)| *id == w.id && *p == project)
        })
        .map(|w| w.id.clone())
        .collect()
}

fn tmux_project(name: &str, dir: &Path) -> Project {
    let log = dir.join(format!("{name}.log"));
    let yaml = format!(
        r#"
backend: iterm-tmux
session: {name}
windows:
  - name: edit
    layout: horizontal
    panes:
      - name: left
        command: echo {name}-left >> {log}
      - name: right
        command: echo {name}-right >> {log}
  - name: logs
    panes:
      - name: tail
        command: echo {name}-tail >> {log}
"#,
        log = log.display()
    );
    project(&yaml, name)
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterm_tmux_open_tag_reconcile_detach_and_isolation() {
    let fake = Fake::start();
    let t = fake.term();
    let a = tmux_project("pa", fake.path());
    let b = tmux_project("pb", fake.path());
    let opts = OpenOptions {
        adopt: false,
        run_hooks: false,
    };

    // First open: the gateway, the session, every window and pane, each command once.
    let r = project::open(&t, &a, &opts).await.expect("open pa");
    assert!(r.created_workspace, "{r:?}");
    assert_eq!((r.created, r.found), (3, 0), "{r:?}");
    let log_a = fake.path().join("pa.log");
    wait_until("pa's three commands ran", || async {
        (lines_of(&log_a).len() == 3).then_some(())
    })
    .await;
    // The gateway window is tagged; every window of the connection is tagged.
    let tags = window_tags(&t).await;
    let gateways: Vec<_> = tags
        .iter()
        .filter(|(_, role, p, _)| *role == "gateway" && *p == "pa")
        .collect();
    assert_eq!(gateways.len(), 1, "{tags:?}");
    let conns = t.tmux_connections().await.expect("connections");
    assert_eq!(conns.len(), 1);
    // The gateway's session takes no input: a line typed there goes to tmux's control channel
    // (before, `kill-session -t pa` typed there killed the project's tmux session).
    let gw = conns[0]
        .gateway
        .clone()
        .expect("the gateway session is listed");
    let gw = t.open(&gw).await.expect("open the gateway session");
    let refused = gw
        .send_text("kill-session -t pa", SendOpts::default())
        .await
        .expect_err("input to the gateway is refused");
    assert!(refused.to_string().contains("tmux -CC"), "{refused}");
    assert!(
        gw.send_keys(&["Escape".parse::<Key>().unwrap()])
            .await
            .is_err()
    );
    let layout = t.layout().await.expect("layout");
    let tmux_windows: Vec<_> = layout
        .windows
        .iter()
        .filter(|w| {
            w.tabs
                .iter()
                .any(|x| x.tmux_connection_id.as_deref() == Some(conns[0].connection_id.as_str()))
        })
        .collect();
    assert_eq!(tmux_windows.len(), 2, "one iTerm2 window per tmux window");
    for w in &tmux_windows {
        let (_, _, p, m) = tags.iter().find(|x| x.0 == w.id).expect("tags");
        assert_eq!((p, m), (&Value::from("pa"), &Value::Bool(true)), "{}", w.id);
    }
    // The real tmux session: tagged, 2 windows, 3 panes named PROJECT/PANE.
    assert_eq!(
        fake.tmux(&["show-options", "-v", "-t", "=pa:", "@termloom_project"])
            .trim(),
        "pa"
    );
    let names = fake.tmux(&["list-panes", "-s", "-t", "=pa", "-F", "#{@termloom_name}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["pa/left", "pa/right", "pa/tail"]);
    let pids = fake.pane_pids("pa");
    assert_eq!(pids.len(), 3);

    // Second open: same state, creates nothing, no command typed again.
    let r2 = project::open(&t, &a, &opts).await.expect("open pa again");
    assert!(!r2.created_workspace);
    assert_eq!((r2.created, r2.found), (0, 3), "{r2:?}");
    assert_eq!(t.tmux_connections().await.expect("c").len(), 1);
    assert_eq!(fake.pane_pids("pa"), pids);

    // A window killed by hand comes back, nothing else changes.
    fake.tmux(&["kill-window", "-t", "=pa:logs"]);
    let r3 = project::open(&t, &a, &opts)
        .await
        .expect("open pa after kill-window");
    assert_eq!((r3.created, r3.found), (1, 2), "{r3:?}");
    let logs = r3.windows.iter().find(|w| w.name == "logs").expect("logs");
    assert_eq!(logs.status, ItemStatus::Created);
    let pids = fake.pane_pids("pa");
    assert_eq!(pids.len(), 3);
    wait_until("the new tail pane's command ran", || async {
        (lines_of(&log_a).len() == 4).then_some(())
    })
    .await;
    wait_until("the new window is shown and tagged", || async {
        (project_windows(&t, "pa").await.len() == 2).then_some(())
    })
    .await;

    // A second project.
    let rb = project::open(&t, &b, &opts).await.expect("open pb");
    assert_eq!(rb.created, 3);
    let b_windows = project_windows(&t, "pb").await;
    assert_eq!(
        b_windows.len(),
        2,
        "{:#?}\n{:#?}",
        window_tags(&t).await,
        t.layout()
            .await
            .expect("layout")
            .windows
            .iter()
            .map(|w| (
                w.id.clone(),
                w.tabs
                    .iter()
                    .map(|x| x.tmux_connection_id.clone())
                    .collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );
    let b_pids = fake.pane_pids("pb");

    // Close A: detach through the menu item; the gateway goes; B is untouched.
    let c = project::close(&t, &a, &CloseOptions { run_hooks: false })
        .await
        .expect("close pa");
    assert!(c.was_open);
    assert_eq!(c.detached, 1);
    assert_eq!(c.sessions, 3);
    let conns = t.tmux_connections().await.expect("connections");
    assert_eq!(conns.len(), 1, "only pb's connection is left");
    assert!(project_windows(&t, "pa").await.is_empty());
    let tags = window_tags(&t).await;
    assert!(
        !tags.iter().any(|(_, _, p, _)| *p == "pa"),
        "pa's gateway and windows are closed: {tags:?}"
    );
    assert_eq!(project_windows(&t, "pb").await, b_windows);
    // Every process of A is alive with the same pids; B too.
    assert_eq!(fake.pane_pids("pa"), pids);
    assert_eq!(fake.pane_pids("pb"), b_pids);

    // Open after close: reattached, nothing created, same panes.
    let r4 = project::open(&t, &a, &opts).await.expect("reopen pa");
    assert!(!r4.created_workspace);
    assert_eq!((r4.created, r4.found), (0, 3), "{r4:?}");
    // The iTerm2 sessions showing the panes are those panes, through every attach: the ids and
    // names the open reported, in the project's workspace (they were sessions of their own, with
    // ids that changed on each attach, and the reported ones reached nothing).
    wait_until("the reattached panes listed as themselves", || async {
        let listed = t.list_sessions().await.ok()?;
        r4.windows
            .iter()
            .flat_map(|w| &w.panes)
            .all(|pn| {
                listed.iter().any(|s| {
                    s.id == pn.id && s.name == pn.session && s.workspace == "pa" && !s.dead
                })
            })
            .then_some(())
    })
    .await;
    let first_ids: Vec<_> = r3
        .windows
        .iter()
        .flat_map(|w| &w.panes)
        .map(|pn| pn.id)
        .collect();
    let again_ids: Vec<_> = r4
        .windows
        .iter()
        .flat_map(|w| &w.panes)
        .map(|pn| pn.id)
        .collect();
    assert_eq!(first_ids, again_ids);
    let left = t
        .list_sessions()
        .await
        .expect("sessions")
        .into_iter()
        .find(|s| s.name == "pa/left")
        .expect("pa/left by name");
    t.open(&left)
        .await
        .expect("open pa/left through iTerm2")
        .send_text(
            &format!("echo reached >> '{}'", log_a.display()),
            SendOpts::default(),
        )
        .await
        .expect("type into pa/left");
    wait_until(
        "the line typed through iTerm2 ran in the tmux pane",
        || async {
            lines_of(&log_a)
                .iter()
                .any(|l| l == "reached")
                .then_some(())
        },
    )
    .await;
    assert_eq!(fake.pane_pids("pa"), pids);
    assert_eq!(
        lines_of(&log_a).iter().filter(|l| *l != "reached").count(),
        4,
        "no command ran again"
    );
    assert_eq!(project_windows(&t, "pb").await, b_windows);

    // Kill B: its session and windows go; A is untouched.
    let k = project::kill(&t, &b).await.expect("kill pb");
    assert!(k.killed);
    assert_eq!(k.sessions, 3);
    wait_until("pb's session to go", || async {
        fake.pane_pids("pb").is_empty().then_some(())
    })
    .await;
    wait_until("pb's windows to close", || async {
        project_windows(&t, "pb").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(fake.pane_pids("pa"), pids);
    assert_eq!(project_windows(&t, "pa").await.len(), 2);
    // Killing a project that is not open kills nothing and leaves no session behind.
    let never = tmux_project("pn", fake.path());
    let k = project::kill(&t, &never).await.expect("kill pn");
    assert!(!k.killed);
    assert!(fake.pane_pids("pn").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterm_open_twice_creates_nothing_and_close_keeps_windows() {
    let fake = Fake::start();
    let t = fake.term();
    let log = fake.path().join("it.log");
    let yaml = format!(
        r#"
backend: iterm
windows:
  - name: main
    layout: horizontal
    panes:
      - name: one
        command: echo one >> {log}
      - name: two
  - name: other
"#,
        log = log.display()
    );
    let p = project(&yaml, "it");
    let opts = OpenOptions {
        adopt: false,
        run_hooks: false,
    };
    let r = project::open(&t, &p, &opts).await.expect("open");
    assert_eq!((r.created, r.found), (3, 0), "{r:?}");
    let before = t.list_sessions().await.expect("sessions");
    let r2 = project::open(&t, &p, &opts).await.expect("open again");
    assert_eq!((r2.created, r2.found), (0, 3), "{r2:?}");
    let after = t.list_sessions().await.expect("sessions");
    assert_eq!(before.len(), after.len());
    wait_until("the command ran once", || async {
        (lines_of(&log).len() == 1).then_some(())
    })
    .await;
    // The window is tagged with the project.
    let tags = window_tags(&t).await;
    assert!(
        tags.iter()
            .any(|(_, _, p, m)| *p == "it" && *m == Value::Bool(true)),
        "{tags:?}"
    );
    // A tab closed by hand comes back; nothing else is created.
    t.kill_window(&termloom_core::WindowRef {
        workspace: "it".into(),
        window: termloom_core::WindowSel::Name("other".into()),
    })
    .await
    .expect("close a tab");
    let r3 = project::open(&t, &p, &opts)
        .await
        .expect("open after closing a tab");
    assert_eq!((r3.created, r3.found), (1, 2), "{r3:?}");
    // Close: iTerm2 has no detach, so nothing is closed and the report says so.
    let c = project::close(&t, &p, &CloseOptions { run_hooks: false })
        .await
        .expect("close");
    assert!(c.note.is_some(), "{c:?}");
    assert_eq!(t.list_sessions().await.expect("s").len(), after.len());
    assert_eq!(lines_of(&log).len(), 1);
}

/// Three opens of one project at once through one loom (as an MCP server's concurrent calls
/// are): one creates, the others find. Before, each found nothing and created the whole project.
#[tokio::test]
async fn iterm_concurrent_opens_create_the_project_once() {
    let fake = Fake::start();
    let loom = termloom_core::Loom::new(std::sync::Arc::new(fake.term()), None);
    let log = fake.path().join("once.log");
    let yaml = format!(
        r#"
backend: iterm
windows:
  - name: main
    layout: horizontal
    panes:
      - name: one
        command: echo one >> {log}
      - name: two
"#,
        log = log.display()
    );
    let store = project::ProjectStore::new(fake.path().join("projects"));
    store.save(&project(&yaml, "once"), false).expect("save");
    let opts = OpenOptions {
        adopt: false,
        run_hooks: false,
    };
    let (a, b, c) = tokio::join!(
        project::open_project(&loom, &store, "once", &opts),
        project::open_project(&loom, &store, "once", &opts),
        project::open_project(&loom, &store, "once", &opts),
    );
    let reports = [a.expect("open"), b.expect("open"), c.expect("open")];
    let created: usize = reports.iter().map(|r| r.created).sum();
    assert_eq!(created, 2, "{reports:?}");
    assert_eq!(
        loom.terminal()
            .list_sessions()
            .await
            .expect("sessions")
            .len(),
        2
    );
    wait_until("the command ran", || async {
        (!lines_of(&log).is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        lines_of(&log).len(),
        1,
        "the pane command ran more than once"
    );
}

/// The CLI: `attach --iterm` shows a tmux session through a gateway; an `iterm-tmux` project
/// opens and closes through iTerm2 whatever `--backend` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_attach_iterm_and_project_open_close() {
    let fake = Fake::start();
    let t = fake.term();
    let config = fake.path().join("config");
    std::fs::create_dir_all(config.join("projects")).expect("config dir");
    std::fs::write(
        config.join("projects").join("cp.yaml"),
        "backend: iterm-tmux\nwindows:\n  - name: main\n  - name: more\n",
    )
    .expect("project file");
    let cli = |args: &[&str]| {
        let out = Command::new(bin("termloom"))
            .args(["--state-dir"])
            .arg(fake.path().join("state"))
            .args(args)
            .env("TERMLOOM_ITERM_SOCKET", &fake.socket)
            .env("ITERM2_COOKIE", "c")
            .env("ITERM2_KEY", "k")
            .env("TERMLOOM_CONFIG_DIR", &config)
            .env("HOME", fake.path().join("home"))
            .stdin(Stdio::null())
            .output()
            .expect("termloom");
        assert!(
            out.status.success(),
            "termloom {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = cli(&["attach", "shown", "--iterm", "--json"]);
    assert!(out.contains("tmux -CC new-session -A -s shown"), "{out}");
    assert_eq!(t.tmux_connections().await.expect("c").len(), 1);
    assert_eq!(fake.pane_pids("shown").len(), 1);

    let out = cli(&["project", "open", "cp", "--json"]);
    let r: Value = serde_json::from_str(&out).expect("open JSON");
    assert_eq!(r["backend"], "iterm-tmux");
    assert_eq!(r["created"], 2, "{r}");
    assert_eq!(t.tmux_connections().await.expect("c").len(), 2);
    let pids = fake.pane_pids("cp");
    let out = cli(&["project", "close", "cp", "--json"]);
    let c: Value = serde_json::from_str(&out).expect("close JSON");
    assert_eq!(c["detached"], 1, "{c}");
    assert_eq!(
        t.tmux_connections().await.expect("c").len(),
        1,
        "attach's stays"
    );
    assert_eq!(fake.pane_pids("cp"), pids);
}
