//! Projects against real tmux: open is idempotent and creates only what is missing, commands run
//! once, close detaches and keeps every process, imports open like the files they came from.
//!
//! Each test has its own tmux server and config dir (`TERMLOOM_CONFIG_DIR`); people's terminals
//! are real tmux clients on a pty (`script`). Every wait polls with a deadline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use termloom_core::Terminal;
use termloom_core::project::{self, OpenOptions, ProjectStore};
use termloom_tests::{TmuxServer, bin, wait_until_blocking};

/// The demo file from the issue, exactly as written.
const DEMO: &str = "name: demo
backend: tmux
session: demo
root: ~/src/demo
windows:
  - name: server
    layout: horizontal
    panes:
      - name: web
        command: python3 -m http.server 8000
      - name: logs
        command: tail -f server.log
  - name: shell
    panes:
      - name: sh
";

/// A tmux server with a config dir for project files.
struct Env {
    srv: TmuxServer,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let srv = TmuxServer::start();
        let config = srv.dir().join("config");
        std::fs::create_dir_all(config.join("projects")).unwrap();
        Env { srv, config }
    }

    fn store(&self) -> ProjectStore {
        ProjectStore::new(self.config.join("projects"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.config.join("projects").join(format!("{name}.yaml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.srv
            .cli()
            .env("TERMLOOM_CONFIG_DIR", &self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run termloom")
    }

    /// Runs the CLI with `--json`, asserting success; the one JSON document it printed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = self.cli(&all);
        assert!(o.status.success(), "{}", show(&all, &o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&all, &o)))
    }

    /// Every pane of a workspace: (window name, pane name) → pane facts.
    fn panes(&self, ws: &str) -> BTreeMap<(String, String), Pane> {
        let out = self.srv.tmux(&[
            "list-panes",
            "-s",
            "-t",
            &format!("={ws}"),
            "-F",
            "#{window_name}\u{1f}#{@termloom_name}\u{1f}#{@termloom_id}\u{1f}#{pane_id}\u{1f}#{pane_pid}\u{1f}#{window_id}\u{1f}#{pane_current_command}",
        ]);
        out.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\u{1f}').collect();
                (
                    (f[0].to_string(), f[1].to_string()),
                    Pane {
                        id: f[2].to_string(),
                        pane: f[3].to_string(),
                        pid: f[4].parse().unwrap(),
                        window: f[5].to_string(),
                        command: f[6].to_string(),
                    },
                )
            })
            .collect()
    }

    /// The people's terminals attached to a workspace (not control-mode clients).
    fn clients(&self, ws: &str) -> usize {
        self.srv
            .tmux(&[
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

    /// A person's terminal: a real tmux client on a pty, attached to `ws`.
    fn attach_client(&self, ws: &str) -> Client {
        let line = format!(
            "tmux -S '{}' attach-session -t '={ws}'",
            self.srv.socket.display()
        );
        let before = self.clients(ws);
        let out = self.srv.dir().join(format!("client-{ws}-{before}.log"));
        let file = std::fs::File::create(&out).unwrap();
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c", &line, "/dev/null"])
            .envs(self.srv.env())
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("script (util-linux) runs a tmux client on a pty");
        wait_until_blocking(&format!("a client attached to {ws}"), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "the client ended ({st}): {}",
                    std::fs::read_to_string(&out).unwrap_or_default()
                );
            }
            (self.clients(ws) > before).then_some(())
        });
        Client(child)
    }
}

/// A person's tmux client; killed when dropped.
struct Client(Child);

impl Client {
    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pane {
    id: String,
    pane: String,
    pid: u32,
    window: String,
    command: String,
}

fn show(args: &[&str], o: &Output) -> String {
    format!(
        "termloom {args:?}: status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Lines of a log file equal to `what`.
fn count(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == what)
        .count()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The statuses in an open report, by pane name.
fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["windows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["panes"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Types a line into every idle pane (its shell in the foreground) and waits until each has run
/// it: whatever open typed before it has run by then too (a pane's input is read in order).
fn sync(env: &Env, ws: &str, log: &Path) {
    for ((_, name), p) in env.panes(ws) {
        if p.command != "bash" {
            continue;
        }
        let line = format!("echo sync-{name} >> '{}'", log.display());
        env.srv
            .tmux(&["send-keys", "-t", &p.pane, "-l", "--", &line]);
        env.srv.tmux(&["send-keys", "-t", &p.pane, "Enter"]);
        wait_until_blocking(&format!("{name} to sync"), || {
            (count(log, &format!("sync-{name}")) > 0).then_some(())
        });
    }
    std::fs::write(
        log,
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("sync-"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
}

#[test]
fn the_demo_file_opens_as_written_and_a_second_open_changes_nothing() {
    let env = Env::new();
    let root = env.srv.home.join("src/demo");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("server.log"), "started\n").unwrap();
    let port = free_port();
    env.write("demo", &DEMO.replace("8000", &port.to_string()));

    let first = env.json(&["project", "open", "demo"]);
    assert_eq!(first["workspace"], "demo");
    assert_eq!(first["created_workspace"], true);
    assert_eq!(
        (first["created"].as_u64(), first["found"].as_u64()),
        (Some(3), Some(0))
    );
    let panes = env.panes("demo");
    let keys: Vec<(&str, &str)> = panes
        .keys()
        .map(|(w, p)| (w.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("server", "demo/logs"),
            ("server", "demo/web"),
            ("shell", "demo/sh")
        ]
    );
    let web = &panes[&("server".to_string(), "demo/web".to_string())];
    let logs = &panes[&("server".to_string(), "demo/logs".to_string())];
    assert_eq!(
        web.window, logs.window,
        "web and logs share the server window"
    );
    wait_until_blocking("the http server to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    let cwd = env
        .srv
        .tmux(&["display", "-p", "-t", &web.pane, "#{pane_current_path}"]);
    assert_eq!(
        Path::new(cwd.trim()),
        std::fs::canonicalize(&root).unwrap(),
        "~ is the test's HOME"
    );
    wait_until_blocking("tail to run", || {
        let p = env.panes("demo");
        (p[&("server".to_string(), "demo/logs".to_string())].command == "tail").then_some(())
    });
    let before = env.panes("demo");

    let second = env.json(&["project", "open", "demo"]);
    assert_eq!(second["created_workspace"], false);
    assert_eq!(
        (second["created"].as_u64(), second["found"].as_u64()),
        (Some(0), Some(3))
    );
    for w in second["windows"].as_array().unwrap() {
        assert_eq!(w["status"], "found");
        for p in w["panes"].as_array().unwrap() {
            assert_eq!(p["matched_by"], "id", "{p}");
            assert_eq!(p["commands_sent"], 0, "{p}");
        }
    }
    assert_eq!(env.panes("demo"), before, "the second open changed nothing");
    assert_eq!(
        env.srv
            .tmux(&["display", "-p", "-t", "=demo:", "#{@termloom_project}"])
            .trim(),
        "demo"
    );
    let ls = env.json(&["project", "ls"]);
    assert_eq!(ls[0]["name"], "demo");
    assert_eq!(ls[0]["status"]["open"], true);
    assert_eq!(ls[0]["status"]["sessions"], 3);
}

#[test]
fn commands_run_once_and_a_window_killed_by_hand_comes_back_alone() {
    let env = Env::new();
    let log = env.srv.dir().join("log");
    let line = |w: &str| format!("echo {w} >> '{}'", log.display());
    env.write(
        "p",
        &format!(
            "windows:
  - name: one
    layout: vertical
    panes:
      - name: a
        command: \"{}\"
      - name: b
        commands: [\"{}\", \"{}\"]
  - name: two
    panes:
      - name: c
        command: \"{}\"
      - name: d
        command: \"{}\"
",
            line("a"),
            line("b1"),
            line("b2"),
            line("c"),
            line("d")
        ),
    );
    env.json(&["project", "open", "p"]);
    wait_until_blocking("every command", || {
        ["a", "b1", "b2", "c", "d"]
            .iter()
            .all(|w| count(&log, w) == 1)
            .then_some(())
    });
    let first = env.panes("p");
    assert_eq!(first.len(), 4);

    let again = env.json(&["project", "open", "p"]);
    assert_eq!(again["created"], 0);
    sync(&env, "p", &log);
    for w in ["a", "b1", "b2", "c", "d"] {
        assert_eq!(count(&log, w), 1, "{w} ran exactly once");
    }
    assert_eq!(env.panes("p"), first);

    // Kill window two by hand: the next open brings it back, and only it.
    let two = first[&("two".to_string(), "p/c".to_string())]
        .window
        .clone();
    env.srv.tmux(&["kill-window", "-t", &two]);
    let third = env.json(&["project", "open", "p"]);
    assert_eq!(
        (third["created"].as_u64(), third["found"].as_u64()),
        (Some(2), Some(2))
    );
    let st = statuses(&third);
    assert_eq!(st["a"], "found");
    assert_eq!(st["b"], "found");
    assert_eq!(st["c"], "created");
    assert_eq!(st["d"], "created");
    let windows: Vec<&str> = third["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert_eq!(windows, ["found", "created"]);
    let after = env.panes("p");
    for k in [("one", "p/a"), ("one", "p/b")] {
        let k = (k.0.to_string(), k.1.to_string());
        assert_eq!(after[&k], first[&k], "{k:?} untouched");
    }
    for k in [("two", "p/c"), ("two", "p/d")] {
        let k = (k.0.to_string(), k.1.to_string());
        assert_ne!(after[&k].id, first[&k].id, "{k:?} is new");
    }
    wait_until_blocking("the new window's commands", || {
        (count(&log, "c") == 2 && count(&log, "d") == 2).then_some(())
    });
    sync(&env, "p", &log);
    for w in ["a", "b1", "b2"] {
        assert_eq!(count(&log, w), 1, "{w} did not run again");
    }
}

#[test]
fn two_opens_at_once_from_two_processes_fill_each_gap_once() {
    // Two `project open` processes at once (with different state dirs), on a fresh server and
    // then on an open project with a pane and a window killed by hand: both succeed, and each
    // missing pane is made (and its command run) once. Before, both filled the same gaps (duplicate panes, commands run twice)
    // or one failed ("a workspace named 'cc' already exists").
    let env = Env::new();
    let log = env.srv.dir().join("log");
    env.write(
        "cc",
        &format!(
            "windows:
  - name: w1
    layout: horizontal
    panes:
      - name: a
      - name: b
        command: \"echo b >> '{log}'\"
  - name: w2
    panes:
      - name: c
        command: \"echo c >> '{log}'\"
",
            log = log.display()
        ),
    );
    let named = |name: &str| -> Vec<String> {
        env.srv
            .tmux(&["list-panes", "-a", "-F", "#{@termloom_name} #{pane_id}"])
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
            .collect()
    };
    for round in 1..=3 {
        if round > 1 {
            env.srv.tmux(&["kill-pane", "-t", &named("cc/b")[0]]);
            env.srv.tmux(&["kill-window", "-t", "=cc:w2"]);
        }
        // The second process keeps its registry elsewhere (another user setup, an MCP server
        // started with another --state-dir): the two still take turns, on a lock beside the
        // server's socket.
        let other_state = env.srv.dir().join("other state");
        let open = |state: &std::path::Path| {
            Command::new(bin("termloom"))
                .arg("-S")
                .arg(&env.srv.socket)
                .arg("--state-dir")
                .arg(state)
                .envs(env.srv.env())
                .env("TERMLOOM_TMUX_CONFIG", &env.srv.config)
                .env("TERMLOOM_SHELL", "/bin/bash --norc --noprofile")
                .env("TERMLOOM_CONFIG_DIR", &env.config)
                .args(["--json", "project", "open", "cc"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run termloom")
        };
        let (x, y) = (open(&env.srv.state), open(&other_state));
        for child in [x, y] {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}",
                show(&["project", "open"], &o)
            );
        }
        assert_eq!(
            (
                named("cc/a").len(),
                named("cc/b").len(),
                named("cc/c").len()
            ),
            (1, 1, 1),
            "round {round}: one pane of each name"
        );
        wait_until_blocking("the new panes' commands", || {
            (count(&log, "b") >= round && count(&log, "c") >= round).then_some(())
        });
    }
    sync(&env, "cc", &log);
    assert_eq!(
        (count(&log, "b"), count(&log, "c")),
        (3, 3),
        "each command ran once a round"
    );
}

#[test]
fn panes_moved_or_renamed_by_hand_never_block_the_next_open() {
    // A project pane joined into another of its windows is found where it is (the next open
    // made its window again, named the pane again, and failed "already exists ... pick another
    // name", every time); a workspace renamed by hand is named in the refusal.
    let env = Env::new();
    env.write(
        "mv",
        "windows:\n  - name: w1\n    layout: horizontal\n    panes: [{name: a}, {name: b}]\n  - name: w2\n    panes: [{name: c}]\n",
    );
    env.json(&["project", "open", "mv"]);
    env.srv.tmux(&["join-pane", "-s", "=mv:w2", "-t", "=mv:w1"]);
    let again = env.json(&["project", "open", "mv"]);
    assert_eq!(
        (again["created"].as_u64(), again["found"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    let names = env
        .srv
        .tmux(&["list-panes", "-a", "-F", "#{@termloom_name}"]);
    assert_eq!(names.lines().filter(|l| *l == "mv/c").count(), 1, "{names}");

    env.write("demo", "windows:\n  - name: w\n    panes: [{name: web}]\n");
    env.json(&["project", "open", "demo"]);
    env.srv.tmux(&["rename-session", "-t", "=demo", "renamed"]);
    let o = env.cli(&["project", "open", "demo"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("renamed:0.0") && err.contains("rename that workspace back to 'demo'"),
        "{err}"
    );
}

#[test]
fn a_main_pane_made_again_takes_its_place_in_the_layout() {
    // The main pane of main-vertical, and the first of a split tree, killed by hand: the next
    // open makes them again in the window's shape (they came back as a top-left quarter).
    let env = Env::new();
    env.write(
        "lay",
        "windows:
  - name: mv
    layout: main-vertical
    panes: [{name: m1}, {name: m2}, {name: m3}]
  - name: tree
    layout:
      split: horizontal
      children:
        - {pane: ed, size: 60%}
        - split: vertical
          children: [{pane: t1}, {pane: t2}]
",
    );
    env.json(&["project", "open", "lay"]);
    let shape = |w: &str| {
        env.srv.tmux(&[
            "list-panes",
            "-t",
            &format!("=lay:{w}"),
            "-F",
            "#{@termloom_name} #{pane_left},#{pane_top} #{pane_width}x#{pane_height}",
        ])
    };
    let before = (shape("mv"), shape("tree"));
    for name in ["lay/m1", "lay/ed"] {
        let pane = env
            .srv
            .tmux(&["list-panes", "-a", "-F", "#{pane_id} #{@termloom_name}"])
            .lines()
            .find_map(|l| l.strip_suffix(&format!(" {name}")).map(str::to_string))
            .unwrap();
        env.srv.tmux(&["kill-pane", "-t", &pane]);
    }
    let r = env.json(&["project", "open", "lay"]);
    assert_eq!(r["created"], 2, "{r}");
    assert_eq!((shape("mv"), shape("tree")), before);
}

#[tokio::test]
async fn a_pane_killed_by_hand_is_split_back_into_its_window() {
    let env = Env::new();
    env.write(
        "q",
        "windows:\n  - name: w\n    layout: main-vertical\n    panes:\n      - name: main\n      - name: x\n      - name: y\n",
    );
    let t = env.srv.terminal();
    let p = env.store().load("q").unwrap();
    let r = project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(r.created, 3);
    let before = env.panes("q");
    let x = &before[&("w".to_string(), "q/x".to_string())];
    env.srv.tmux(&["kill-pane", "-t", &x.pane]);
    let r = project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!((r.created, r.found), (1, 2));
    assert_eq!(r.windows[0].status, project::ItemStatus::Completed);
    let after = env.panes("q");
    let newx = &after[&("w".to_string(), "q/x".to_string())];
    assert_ne!(newx.id, x.id);
    assert_eq!(newx.window, x.window, "split into the same window");
    for k in ["q/main", "q/y"] {
        let k = ("w".to_string(), k.to_string());
        assert_eq!(after[&k], before[&k]);
    }
    // The window still reads as main-vertical: main on the left, x above y on the right.
    let geo = |pane: &str| {
        env.srv
            .tmux(&["display", "-p", "-t", pane, "#{pane_left} #{pane_top}"])
            .trim()
            .to_string()
    };
    let main = geo(&after[&("w".to_string(), "q/main".to_string())].pane);
    let gx = geo(&newx.pane);
    let gy = geo(&after[&("w".to_string(), "q/y".to_string())].pane);
    assert_eq!(main, "0 0");
    let (xl, xt) = gx.split_once(' ').unwrap();
    let (yl, yt) = gy.split_once(' ').unwrap();
    assert_eq!(xl, yl, "x and y share a column: {gx} / {gy}");
    assert!(
        xt.parse::<u32>().unwrap() < yt.parse::<u32>().unwrap(),
        "x above y: {gx} / {gy}"
    );
}

#[test]
fn close_detaches_keeps_every_process_and_open_reattaches_the_same_panes() {
    let env = Env::new();
    let log = env.srv.dir().join("log");
    env.write(
        "c",
        &format!(
            "windows:\n  - name: w\n    panes:\n      - name: long\n        command: sleep 1000\n      - name: count\n        command: \"echo ran >> '{}'\"\n",
            log.display()
        ),
    );
    env.json(&["project", "open", "c"]);
    wait_until_blocking("sleep to run", || {
        let p = env.panes("c");
        (p[&("w".to_string(), "c/long".to_string())].command == "sleep").then_some(())
    });
    let mut client = env.attach_client("c");
    assert_eq!(env.clients("c"), 1);
    let before = env.panes("c");

    let closed = env.json(&["project", "close", "c"]);
    assert_eq!(closed["was_open"], true);
    assert_eq!(closed["detached"], 1);
    assert_eq!(closed["sessions"], 2);
    wait_until_blocking("the client to detach", || {
        (env.clients("c") == 0).then_some(())
    });
    wait_until_blocking("the client process to end", || {
        client.exited().then_some(())
    });
    let after = env.panes("c");
    assert_eq!(after, before, "same panes, ids and pids");
    for p in after.values() {
        assert!(alive(p.pid), "{p:?} is alive");
    }
    assert_eq!(
        after[&("w".to_string(), "c/long".to_string())].command,
        "sleep"
    );

    let reopened = env.json(&["project", "open", "c"]);
    assert_eq!(reopened["created"], 0);
    let ids: Vec<&str> = reopened["windows"][0]["panes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = before.values().map(|p| p.id.as_str()).collect();
    let mut got = ids.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the same sessions");
    sync(&env, "c", &log);
    assert_eq!(count(&log, "ran"), 1);
    let _again = env.attach_client("c");
}

#[test]
fn two_projects_at_once_closing_or_killing_one_leaves_the_other() {
    let env = Env::new();
    for name in ["alpha", "beta"] {
        env.write(
            name,
            "windows:\n  - name: w\n    panes:\n      - name: s\n        command: sleep 1000\n      - name: t\n",
        );
        env.json(&["project", "open", name]);
    }
    let _a = env.attach_client("alpha");
    let _b = env.attach_client("beta");
    let beta = env.panes("beta");
    let r = env.json(&["project", "close", "alpha"]);
    assert_eq!(r["detached"], 1);
    wait_until_blocking("alpha's client to detach", || {
        (env.clients("alpha") == 0).then_some(())
    });
    assert_eq!(env.clients("beta"), 1, "beta's terminal stays attached");
    assert_eq!(env.panes("beta"), beta);

    let o = env.cli(&["project", "kill", "alpha"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&["kill"], &o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert_eq!(env.panes("alpha").len(), 2, "nothing killed without --yes");
    let k = env.json(&["project", "kill", "alpha", "--yes"]);
    assert_eq!(k["killed"], true);
    assert!(env.panes("alpha").is_empty());
    assert_eq!(env.panes("beta"), beta, "beta untouched");
    assert_eq!(env.clients("beta"), 1);
}

#[test]
fn a_workspace_no_project_opened_is_adopted_only_when_asked() {
    let env = Env::new();
    env.srv
        .tmux(&["new-session", "-d", "-s", "mine", "-n", "w"]);
    env.write(
        "mine",
        "windows:\n  - name: w\n    panes:\n      - name: a\n      - name: b\n",
    );
    let o = env.cli(&["project", "open", "mine"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["open"], &o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--adopt"), "{err}");
    assert_eq!(env.panes("mine").len(), 1, "nothing created");
    let r = env.json(&["project", "open", "mine", "--adopt"]);
    assert_eq!(r["adopted"], true);
    assert_eq!(
        r["created"], 2,
        "a and b split into the window named w: {r}"
    );
    assert_eq!(env.panes("mine").len(), 3);
    let windows: Vec<String> = env.panes("mine").keys().map(|k| k.0.clone()).collect();
    assert!(windows.iter().all(|w| w == "w"), "{windows:?}");

    // Another project cannot take it.
    env.write("other", "session: mine\nwindows:\n  - name: w\n");
    let o = env.cli(&["project", "open", "other", "--adopt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("belongs to project 'mine'"));
    let o = env.cli(&["project", "close", "other"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn tmuxp_and_tmuxinator_files_import_and_open_as_the_same_workspace() {
    let env = Env::new();
    let work = env.srv.dir().join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    let log = env.srv.dir().join("log");
    let echo = |w: &str| format!("echo {w} >> {}", log.display());
    let tmuxp = format!(
        "session_name: via-tmuxp
start_directory: {work}
windows:
  - window_name: editor
    layout: main-vertical
    panes:
      - shell_command: ['{p1}']
      - shell_command:
          - cmd: '{p2}'
      - '{p3}'
  - window_name: logs
    start_directory: sub
    panes:
      - '{p4}'
",
        work = work.display(),
        p1 = echo("p-editor-1"),
        p2 = echo("p-editor-2"),
        p3 = echo("p-editor-3"),
        p4 = echo("p-logs"),
    );
    let tmuxinator = format!(
        "name: via-tmuxinator
root: {work}
windows:
  - editor:
      layout: main-vertical
      panes:
        - '{p1}'
        - '{p2}'
        - '{p3}'
  - logs:
      root: sub
      panes:
        - '{p4}'
",
        work = work.display(),
        p1 = echo("x-editor-1"),
        p2 = echo("x-editor-2"),
        p3 = echo("x-editor-3"),
        p4 = echo("x-logs"),
    );
    let fp = env.srv.dir().join("tmuxp.yaml");
    let fx = env.srv.dir().join("tmuxinator.yml");
    std::fs::write(&fp, tmuxp).unwrap();
    std::fs::write(&fx, tmuxinator).unwrap();
    let a = env.json(&["project", "import", fp.to_str().unwrap()]);
    let b = env.json(&["project", "import", fx.to_str().unwrap()]);
    assert_eq!(a["format"], "tmuxp");
    assert_eq!(b["format"], "tmuxinator");
    assert_eq!(a["project"]["name"], "via-tmuxp");
    let o = env.cli(&["project", "import", fp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "no silent overwrite");
    for name in ["via-tmuxp", "via-tmuxinator"] {
        env.json(&["project", "open", name]);
    }
    wait_until_blocking("every imported command", || {
        ["editor-1", "editor-2", "editor-3", "logs"]
            .iter()
            .all(|w| count(&log, &format!("p-{w}")) == 1 && count(&log, &format!("x-{w}")) == 1)
            .then_some(())
    });
    // Same windows, pane names and geometry; the same working directories.
    let shape = |ws: &str| -> Vec<String> {
        env.srv
            .tmux(&[
                "list-panes",
                "-s",
                "-t",
                &format!("={ws}"),
                "-F",
                "#{window_index} #{window_name} #{@termloom_name} #{pane_left},#{pane_top} #{pane_width}x#{pane_height} #{pane_current_path}",
            ])
            .lines()
            .map(|l| l.replace(&format!("{ws}/"), ""))
            .collect()
    };
    let sp = shape("via-tmuxp");
    assert_eq!(sp, shape("via-tmuxinator"));
    assert_eq!(sp.len(), 4, "{sp:?}");
    assert!(sp[0].contains("editor editor-1 0,0"), "{sp:?}");
    assert!(
        sp[3].contains(" logs logs ") && sp[3].ends_with("/work/sub"),
        "{sp:?}"
    );
}

#[test]
fn validation_errors_name_the_file_the_line_and_the_field() {
    let env = Env::new();
    let path = env.write(
        "bad",
        "name: bad\nwindows:\n  - name: a\n    panes:\n      - name: x\n        comand: vim\n",
    );
    let o = env.cli(&["project", "show", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "{}:6:9: windows[0].panes[0].comand: unknown field",
            path.display()
        )),
        "{err}"
    );
    env.write(
        "bad",
        "name: bad\nwindows:\n  - name: a\n    layout: quad\n    panes:\n      - name: x\n",
    );
    let o = env.cli(&["project", "open", "bad"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:4:") && err.contains("windows[0].layout"),
        "{err}"
    );
    let ls = env.json(&["project", "ls"]);
    assert!(ls[0]["error"].as_str().unwrap().contains(":4:"), "{ls}");
    assert!(
        env.srv.tmux(&["list-sessions"]).is_empty(),
        "nothing was opened"
    );
    // A file whose name is no project name is listed with why (it was left out, silently).
    env.write("my project", "windows:\n  - name: a\n");
    let ls = env.json(&["project", "ls"]);
    let odd = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "my project")
        .unwrap_or_else(|| panic!("not listed: {ls}"));
    assert!(
        odd["error"]
            .as_str()
            .unwrap()
            .contains("not a project name"),
        "{odd}"
    );
    // A project on an ssh host is listed with its host and no state (no host is contacted to
    // list), and the table says where to ask.
    env.write(
        "far",
        "host: build1\nroot: /srv/far\nwindows:\n  - name: a\n",
    );
    let ls = env.json(&["project", "ls"]);
    let far = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "far")
        .unwrap_or_else(|| panic!("not listed: {ls}"));
    assert_eq!(far["host"], "build1", "{far}");
    assert!(far.get("status").is_none(), "{far}");
    let table = String::from_utf8_lossy(&env.cli(&["project", "ls"]).stdout).into_owned();
    assert!(table.contains("--host build1 project ls"), "{table}");
}

#[test]
fn freeze_writes_a_project_that_opens_the_same_workspace_without_creating_anything() {
    let env = Env::new();
    let o = env
        .srv
        .cli()
        .args([
            "new",
            "--workspace",
            "live",
            "--layout",
            "main-horizontal",
            "--panes",
            "top,left,right",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&["new"], &o));
    let frozen = env.json(&["project", "freeze", "snap", "--workspace", "live"]);
    assert_eq!(frozen["claimed"], true);
    let p = &frozen["project"];
    assert_eq!(p["session"], "live");
    assert_eq!(p["windows"][0]["layout"], "main-horizontal", "{p}");
    let names: Vec<&str> = p["windows"][0]["panes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["top", "left", "right"]);
    let before = env.panes("live");
    let r = env.json(&["project", "open", "snap"]);
    assert_eq!(
        (r["created"].as_u64(), r["found"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );
    assert_eq!(env.panes("live"), before);
    let shown = env.cli(&["project", "show", "snap"]);
    assert!(shown.status.success(), "{}", show(&["show"], &shown));
    // A hand-made workspace whose window name holds ':' (a pane name cannot): the pane takes
    // the name with '_' and the window keeps its own (before, freeze failed).
    env.srv
        .tmux(&["new-session", "-d", "-s", "hand", "-n", "wé:2"]);
    let frozen = env.json(&["project", "freeze", "handp", "--workspace", "hand"]);
    let w = &frozen["project"]["windows"][0];
    assert_eq!(w["name"], "wé:2", "{frozen}");
    let r = env.json(&["project", "open", "handp"]);
    assert_eq!(r["created"].as_u64(), Some(0), "{r}");
}

#[test]
fn attach_creates_a_session_and_runs_tmux_in_the_terminal() {
    let env = Env::new();
    let o = env.cli(&["attach", "solo", "--no-create", "--print"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["attach"], &o));
    // Without a terminal to attach, nothing is made.
    let o = env.cli(&["attach", "solo"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["attach"], &o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a terminal"));
    assert_eq!(env.panes("solo").len(), 0, "no workspace made for nothing");
    let plan = env.json(&["attach", "solo", "--print"]);
    let args: Vec<&str> = plan["exec"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.ends_with(&["attach-session", "-t", "=solo"]),
        "{args:?}"
    );
    assert_eq!(env.panes("solo").len(), 1, "created");
    // For real: the CLI becomes the tmux client of a terminal.
    let line = format!(
        "{} -S '{}' attach solo --no-create",
        bin("termloom").display(),
        env.srv.socket.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &line, "/dev/null"])
        .envs(env.srv.env())
        .env("TERMLOOM_TMUX_CONFIG", &env.srv.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_blocking("the CLI to attach", || {
        (env.clients("solo") == 1).then_some(())
    });
    env.srv.tmux(&["detach-client", "-s", "=solo"]);
    wait_until_blocking("the CLI to end", || {
        matches!(child.try_wait(), Ok(Some(_))).then_some(())
    });
}

#[tokio::test]
async fn the_library_reports_workspace_tags_and_layouts() {
    let env = Env::new();
    env.write("lib", "windows:\n  - name: w\n    layout: horizontal\n    panes:\n      - name: a\n      - name: b\n");
    let t = env.srv.terminal();
    let p = env.store().load("lib").unwrap();
    project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    t.set_workspace_tag("lib", "note", Some("a b \"c\" #{x} ~ $y 日本"))
        .await
        .unwrap();
    let tags = t.workspace_tags("lib").await.unwrap();
    assert_eq!(tags["project"], "lib");
    assert_eq!(tags["note"], "a b \"c\" #{x} ~ $y 日本");
    t.set_workspace_tag("lib", "note", None).await.unwrap();
    assert!(!t.workspace_tags("lib").await.unwrap().contains_key("note"));
    assert!(
        t.set_workspace_tag("lib", "Bad Key", Some("x"))
            .await
            .is_err()
    );
    let wins = t.window_layouts("lib").await.unwrap();
    assert_eq!(wins.len(), 1);
    let names: Vec<&str> = wins[0]
        .root
        .sessions()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["lib/a", "lib/b"]);
    let st = project::status(&t, &p).await.unwrap();
    assert!(st.open && !st.attached && st.sessions == 2, "{st:?}");
}

#[test]
fn a_hook_is_done_when_it_exits_and_keeps_only_its_output_tail() {
    // A hook that leaves a background child (which keeps the pipes open) and a hook that
    // prints megabytes: the open goes on when they exit, with the tail of what they printed
    // (before, it waited for the child, up to the 60 s limit, and held all of the output).
    let env = Env::new();
    env.write(
        "bg",
        "hooks:\n  on_open:\n    - [sh, -c, 'sleep 30 & echo bg-started']\n    - [sh, -c, 'head -c 3000000 /dev/zero | tr \"\\\\0\" x; echo; echo END']\nwindows:\n  - name: w\n",
    );
    let started = std::time::Instant::now();
    let r = env.json(&["project", "open", "bg"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "open waited for the hook's background child: {:?}",
        started.elapsed()
    );
    let hooks = r["hooks"].as_array().unwrap();
    assert_eq!(hooks[0]["ok"], true, "{r}");
    assert!(
        hooks[0]["output"].as_str().unwrap().contains("bg-started"),
        "{r}"
    );
    let chatty = hooks[1]["output"].as_str().unwrap();
    assert!(
        chatty.ends_with("END"),
        "{}",
        &chatty[chatty.len().saturating_sub(50)..]
    );
    assert!(chatty.len() <= 2100, "{}", chatty.len());
}

#[test]
fn hooks_run_as_argv_on_open_and_close_and_a_failing_hook_breaks_nothing() {
    let env = Env::new();
    let out = env.srv.dir().join("hooks");
    let line = format!(
        "echo \"$TERMLOOM_HOOK $TERMLOOM_PROJECT $TERMLOOM_WORKSPACE $GREETING $(pwd)\" >> '{}'",
        out.display()
    );
    let root = env.srv.dir().join("root");
    std::fs::create_dir_all(&root).unwrap();
    env.write(
        "h",
        &format!(
            "root: {}\nenv:\n  GREETING: hi\nhooks:\n  on_open:\n    - [sh, -c, {line:?}]\n    - [false]\n    - [/no/such/program]\n  on_close:\n    - [sh, -c, {line:?}]\nwindows:\n  - name: w\n",
            root.display()
        ),
    );
    let r = env.json(&["project", "open", "h"]);
    let hooks = r["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 3, "{r}");
    assert_eq!(hooks[0]["ok"], true);
    assert_eq!(
        (hooks[1]["ok"].as_bool(), hooks[1]["exit_code"].as_i64()),
        (Some(false), Some(1))
    );
    assert!(
        hooks[2]["error"].as_str().unwrap().contains("cannot run"),
        "{r}"
    );
    assert_eq!(
        env.panes("h").len(),
        1,
        "the workspace is open all the same"
    );
    let root = std::fs::canonicalize(&root).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("on_open h h hi {}\n", root.display())
    );
    let c = env.json(&["project", "close", "h"]);
    assert_eq!(c["hooks"][0]["ok"], true);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .ends_with(&format!("on_close h h hi {}\n", root.display()))
    );
    let r = env.json(&["project", "open", "h", "--no-hooks"]);
    assert!(r.get("hooks").is_none(), "{r}");
    assert_eq!(env.panes("h").len(), 1);
}

#[test]
fn edit_starts_new_projects_from_a_template_and_checks_the_result() {
    let env = Env::new();
    let o = env
        .srv
        .cli()
        .env("TERMLOOM_CONFIG_DIR", &env.config)
        .env("EDITOR", "true")
        .env_remove("VISUAL")
        .args(["project", "edit", "fresh"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&["edit"], &o));
    let p = env.store().load("fresh").unwrap();
    assert_eq!(p.windows[0].name, "main");
    std::fs::write(env.config.join("projects/fresh.yaml"), "windows: 3\n").unwrap();
    let o = env
        .srv
        .cli()
        .env("TERMLOOM_CONFIG_DIR", &env.config)
        .env("EDITOR", "true")
        .env_remove("VISUAL")
        .args(["project", "edit", "fresh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fresh.yaml:1:") && err.contains("windows"),
        "{err}"
    );
}

#[tokio::test]
async fn projects_work_over_the_control_mode_transport() {
    let env = Env::new();
    env.write(
        "cm",
        "windows:\n  - name: w\n    layout: vertical\n    panes:\n      - name: a\n      - name: b\n  - name: v\n",
    );
    let t = termloom_tmux::TmuxTerminal::new(termloom_tmux::TmuxOptions {
        control: true,
        ..env.srv.options()
    });
    let p = env.store().load("cm").unwrap();
    let first = project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(first.created, 3);
    let second = project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!((second.created, second.found), (0, 3));
    assert!(
        second
            .windows
            .iter()
            .flat_map(|w| &w.panes)
            .all(|x| x.matched_by == Some(project::MatchedBy::Id))
    );
    let _person = env.attach_client("cm");
    let closed = project::close(&t, &p, &project::CloseOptions::default())
        .await
        .unwrap();
    assert_eq!(closed.detached, 1, "the person's terminal only");
    wait_until_blocking("the person to be detached", || {
        (env.clients("cm") == 0).then_some(())
    });
    // termloom's own control client is still there: the next call works.
    let again = project::open(&t, &p, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(again.created, 0);
}

/// `project open NAME` fails, naming the pane (`what`) whose directory is missing.
fn refused(env: &Env, name: &str, what: &str) {
    let o = env.cli(&["project", "open", name]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        show(&["project", "open"], &o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(what) && err.contains("not a directory"),
        "{err}"
    );
}

#[test]
fn a_reopen_checks_the_directories_of_the_panes_it_makes_before_making_any() {
    // Directories matter for panes about to be made: every pane is there, so the open finds
    // them and makes nothing (it refused: "the cwd of pane … is not a directory").
    let env = Env::new();
    let dir = env.srv.dir().join("build dir");
    std::fs::create_dir_all(&dir).unwrap();
    env.write(
        "gone",
        &format!(
            "windows:
  - name: main
    panes:
      - name: sh
      - name: out
        cwd: '{}'
",
            dir.display()
        ),
    );
    let r = env.json(&["project", "open", "gone"]);
    assert_eq!(r["created"].as_u64(), Some(2), "{r}");
    std::fs::remove_dir(&dir).unwrap();
    let r = env.json(&["project", "open", "gone"]);
    assert_eq!(r["created"].as_u64(), Some(0), "{r}");
    // A pane that must be made again still needs its directory.
    let out = env
        .srv
        .tmux(&["list-panes", "-a", "-F", "#{@termloom_name} #{pane_id}"]);
    let pane = out
        .lines()
        .find_map(|l| l.strip_prefix("gone/out "))
        .unwrap()
        .to_string();
    env.srv.tmux(&["kill-pane", "-t", &pane]);
    refused(&env, "gone", "'out'");

    // Two windows gone, the second's directory too: the open refuses before it makes the
    // first again (it made window b, then failed on c, naming nothing).
    let dir = env.srv.dir().join("c dir");
    std::fs::create_dir_all(&dir).unwrap();
    env.write(
        "half",
        &format!(
            "windows:
  - name: a
    panes: [{{name: a}}]
  - name: b
    panes: [{{name: b}}]
  - name: c
    panes:
      - name: c
        cwd: '{}'
",
            dir.display()
        ),
    );
    env.json(&["project", "open", "half"]);
    env.srv.tmux(&["kill-window", "-t", "=half:b"]);
    env.srv.tmux(&["kill-window", "-t", "=half:c"]);
    std::fs::remove_dir(&dir).unwrap();
    refused(&env, "half", "'c'");
    let windows = env
        .srv
        .tmux(&["list-windows", "-t", "=half", "-F", "#{window_name}"]);
    assert_eq!(windows.trim(), "a", "nothing made before the refusal");
}
