//! termloom's integration-test harness.
//!
//! - [`TmuxServer::start`] gives each test its own real tmux server on a private `-S` socket in a
//!   short temp dir, with its own HOME, config, shell and state dir; dropping it kills the server and
//!   removes the dir. No test ever reaches the user's default server.
//! - [`wait_until`] polls with a deadline (never a fixed sleep); `TERMLOOM_TEST_TIMEOUT` (seconds)
//!   scales every deadline.
//! - [`bin`] finds the real `termloom` / `termloom-mcp` binaries next to the test executable (the
//!   README's test command builds them first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use termloom_tmux::{TmuxOptions, TmuxTerminal};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How long a poll may take before a test fails (`TERMLOOM_TEST_TIMEOUT` seconds, default 20).
pub fn timeout() -> Duration {
    let secs = std::env::var("TERMLOOM_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Polls `f` every 50 ms until it returns `Some`, or fails after [`timeout`] with `what`.
pub async fn wait_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {:?} waiting for {what}", timeout());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Blocking version of [`wait_until`] for tests without a runtime.
pub fn wait_until_blocking<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {:?} waiting for {what}", timeout());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A built binary of this workspace (`termloom`, `termloom-mcp`, …), found beside the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run the README's test command (scripts/test), which builds the binaries first",
        p.display()
    );
    p
}

/// Fails with an install hint when tmux is missing (a skipped test would hide a broken install step).
pub fn require_tmux() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "tmux is not installed: run scripts/setup (or `apt-get install tmux`)"
    );
}

/// A private, real tmux server for one test.
pub struct TmuxServer {
    dir: tempfile::TempDir,
    /// The `-S` socket path.
    pub socket: PathBuf,
    /// The HOME every process of this server sees.
    pub home: PathBuf,
    /// The termloom state dir (registry, logs) for this test.
    pub state: PathBuf,
    /// The tmux config file.
    pub config: PathBuf,
}

impl TmuxServer {
    /// Prepares a private server. The tmux server itself starts with the first session created.
    pub fn start() -> TmuxServer {
        require_tmux();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short path: unix socket paths are limited to ~104 bytes.
        let dir = tempfile::Builder::new()
            .prefix(&format!("tl{}-{n}-", std::process::id()))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let home = dir.path().join("home");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(&state).expect("state");
        let config = dir.path().join("tmux.conf");
        std::fs::write(
            &config,
            "set -g default-terminal screen\nset -g status off\n",
        )
        .expect("config");
        TmuxServer {
            socket: dir.path().join("s"),
            home,
            state,
            config,
            dir,
        }
    }

    /// The temp dir holding everything of this server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment every process of this test gets.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            ("SHELL".into(), "/bin/bash".into()),
            ("TERM".into(), "xterm-256color".into()),
            ("PS1".into(), "$ ".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            (
                "TERMLOOM_STATE_DIR".into(),
                self.state.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Backend options for this server: its socket, config, environment and a plain bash.
    pub fn options(&self) -> TmuxOptions {
        TmuxOptions {
            config_file: Some(self.config.clone()),
            env: self.env(),
            shell: Some(vec![
                "/bin/bash".into(),
                "--norc".into(),
                "--noprofile".into(),
            ]),
            ..TmuxOptions::with_socket_path(&self.socket)
        }
    }

    /// A backend bound to this server.
    pub fn terminal(&self) -> TmuxTerminal {
        TmuxTerminal::new(self.options())
    }

    /// Runs tmux directly against this server (for assertions), returning stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .envs(self.env())
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the server (it is started again by the next create).
    pub fn kill_server(&self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }

    /// A `termloom` CLI command bound to this server and state dir.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(bin("termloom"));
        c.arg("-S")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state)
            .envs(self.env());
        c.env("TERMLOOM_TMUX_CONFIG", &self.config);
        c.env("TERMLOOM_SHELL", "/bin/bash --norc --noprofile");
        c
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        // Errors are ignored: cleanup must never hide the test's own failure. The server and its
        // panes' shells are waited for (bounded), so that nothing they write on the way out
        // (bash's history, the integration's state file) lands in the temp dir after it is gone.
        let pids: Vec<u32> = self
            .tmux(&["list-panes", "-a", "-F", "#{pid} #{pane_pid}"])
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        self.kill_server();
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // TERMLOOM_TEST_KEEP=1: a failed test's dir (logs, registry, shell history) is kept.
        if std::env::var_os("TERMLOOM_TEST_KEEP").is_some()
            && std::thread::panicking()
            && let Ok(empty) = tempfile::tempdir()
        {
            let kept = std::mem::replace(&mut self.dir, empty).keep();
            eprintln!("kept the failed test's dir: {}", kept.display());
        }
    }
}

/// Whether a process is running (a zombie, or no process at all, is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
pub mod ssh;
