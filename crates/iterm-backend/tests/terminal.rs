//! `ItermTerminal` / `ItermSession` (core's traits) against the fake iTerm2, whose sessions are
//! real bash shells on real ptys. Sessions that need shell integration run bash with an rcfile
//! printing OSC 133 marks, as iTerm2's own integration does. Every wait polls with a deadline and
//! every test is bounded as a whole.
#![cfg(feature = "fake")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use serde_json::Value;
use termloom_core::layout::PREDEFINED;
use termloom_core::text::{LineEvent, lines};
use termloom_core::{
    BackendKind, BusyState, CaptureOpts, Direction, Error, Key, KeyCode, Layout, LayoutNode,
    LayoutPlacement, ReadRange, ResizeSpec, RunOpts, SearchOpts, SendOpts, Session, SessionId,
    SessionInfo, SessionSpec, SplitSpec, Strategy, Target, Terminal, WindowRef, WindowSel,
    WindowSpec, WorkspaceSpec,
};
use termloom_iterm::connection::{ConnectOptions, Credentials, VariableTarget};
use termloom_iterm::fake::{FakeConfig, FakeIterm};
use termloom_iterm::proto;
use termloom_iterm::{ItermCreate, ItermEvent, ItermTerminal, color, derived_id};

const DEADLINE: Duration = Duration::from_secs(20);
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// bash with OSC 133 prompt marks (what iTerm2's shell integration prints).
const MARKS_RC: &str = r#"PS1='\[\e]133;D;$?\a\e]133;A\a\]$ \[\e]133;B\a\]'
PS0='\e]133;C\a'
HISTFILE=/dev/null
"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shell {
    /// `bash --norc`: no shell integration.
    Plain,
    /// bash printing OSC 133 marks.
    Marks,
}

struct Env {
    dir: tempfile::TempDir,
    fake: FakeIterm,
    term: ItermTerminal,
}

impl Env {
    async fn start(shell: Shell) -> Result<Env> {
        // Unix socket paths are limited to ~107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("tlitt")
            .tempdir_in("/tmp")?;
        let socket = dir.path().join("s");
        let mut cfg = FakeConfig::new(&socket, "cookie-t", "key-t");
        if shell == Shell::Marks {
            let rc = dir.path().join("rc");
            std::fs::write(&rc, MARKS_RC)?;
            cfg.shell = vec![
                "/bin/bash".into(),
                "--rcfile".into(),
                rc.to_string_lossy().into_owned(),
                "--noprofile".into(),
            ];
        }
        cfg.env = vec![
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("HOME".into(), dir.path().to_string_lossy().into_owned()),
        ];
        cfg.cwd = Some(dir.path().to_path_buf());
        let fake = FakeIterm::start(cfg).await?;
        let term = ItermTerminal::new(Self::options(&fake)?);
        Ok(Env { dir, fake, term })
    }

    fn options(fake: &FakeIterm) -> Result<ConnectOptions> {
        let creds = fake.credentials().context("credentials")?;
        Ok(ConnectOptions::with_socket(fake.socket_path()).credentials(creds))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    async fn session(&self, info: &SessionInfo) -> Result<Arc<dyn Session>> {
        Ok(self.term.open(info).await?)
    }

    async fn new_session(&self, name: &str, ws: &str) -> Result<(SessionInfo, Arc<dyn Session>)> {
        let info = self
            .term
            .create_session(&SessionSpec {
                name: Some(name.into()),
                workspace: Some(ws.into()),
                ..Default::default()
            })
            .await?;
        let s = self.session(&info).await?;
        Ok((info, s))
    }

    async fn stop(self) {
        self.fake.shutdown().await;
    }
}

/// Runs a test body with an overall limit, so a hang fails instead of blocking CI.
async fn bounded<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    match tokio::time::timeout(TEST_LIMIT, f).await {
        Ok(r) => r,
        Err(_) => bail!("test did not finish within {TEST_LIMIT:?}"),
    }
}

async fn poll<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn tail(s: &Arc<dyn Session>, n: usize) -> Result<String> {
    Ok(s.capture(&CaptureOpts {
        range: ReadRange::Tail(n),
        ..Default::default()
    })
    .await?
    .text)
}

/// Waits until the session shows a line equal to `line`.
async fn wait_line(s: &Arc<dyn Session>, line: &str) -> Result<String> {
    let end = Instant::now() + DEADLINE;
    loop {
        let t = tail(s, 200).await?;
        if t.lines().any(|l| l.trim_end() == line) {
            return Ok(t);
        }
        if Instant::now() > end {
            bail!("timed out waiting for line {line:?}; the session shows:\n{t}");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn wait_prompt_marks(s: &Arc<dyn Session>, term: &ItermTerminal) -> Result<()> {
    let guid = s.native().id.clone();
    let conn = term.connection().await?;
    poll("the first shell-integration prompt", || async {
        Ok(conn.get_prompt(&guid, None).await?.map(|_| ()))
    })
    .await
}

/// Waits until a plain bash shows its prompt (`bash-5.2$`, or `#` as root).
async fn wait_shell_prompt(s: &Arc<dyn Session>) -> Result<()> {
    poll("the shell prompt", || async {
        let t = tail(s, 5).await?;
        Ok(t.lines()
            .last()
            .is_some_and(|l| l.starts_with("bash-") && l.ends_with(['$', '#']))
            .then_some(()))
    })
    .await
}

fn run_opts(cmd: &str, timeout: Duration) -> RunOpts {
    RunOpts {
        timeout,
        ..RunOpts::new(cmd)
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_read_and_search() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        assert_eq!(t.kind(), BackendKind::Iterm);
        assert_eq!(
            t.key().socket.as_deref(),
            Some(env.fake.socket_path().to_string_lossy().as_ref())
        );
        assert!(t.list_sessions().await?.is_empty());

        let (info, s) = env.new_session("alpha", "work").await?;
        assert_eq!(info.name, "alpha");
        assert_eq!(info.workspace, "work");
        assert_eq!((info.window_index, info.pane_index), (0, 0));
        assert_eq!(
            info.window_name, "alpha",
            "the window is named after the session"
        );
        assert!(info.managed && !info.dead);
        assert_eq!((info.width, info.height), (80, 24));
        assert_eq!(info.command, "bash");
        assert_eq!(
            info.cwd.as_deref(),
            Some(env.path().to_string_lossy().as_ref())
        );
        assert!(info.pid.is_some());
        assert_eq!(info.id, derived_id(&info.native.id));
        assert_eq!(info.terminal, t.key());

        // Targets resolve through the listing.
        for target in ["alpha", "work:0.0", "work:alpha", "work:"] {
            let found = t.resolve(&target.parse::<Target>()?).await?;
            assert_eq!(found.id, info.id, "{target}");
        }
        let handle = t.session(&"alpha".parse::<Target>()?).await?;
        assert_eq!(handle.id(), info.id);
        assert_eq!(handle.native(), &info.native);
        let native = format!("iterm:{}", info.native.id);
        assert_eq!(t.resolve(&native.parse()?).await?.id, info.id);

        s.send_text(
            "for i in $(seq 1 60); do echo row-$i; done",
            SendOpts::default(),
        )
        .await?;
        wait_line(&s, "row-60").await?;
        let last = tail(&s, 3).await?;
        let last: Vec<&str> = last.lines().collect();
        assert_eq!(last[..2], ["row-59", "row-60"]);
        assert!(last[2].starts_with("bash-"), "{last:?}");

        // Screen: 24 rows, first line is the number of lines above it.
        let screen = s
            .capture(&CaptureOpts {
                range: ReadRange::Screen,
                ..Default::default()
            })
            .await?;
        assert!(screen.text.contains("row-60"));
        assert!(screen.first_line > 0, "60 rows scrolled the screen");
        assert_eq!(screen.total_lines, screen.first_line + 24);

        // Absolute line ranges; line numbers match search results.
        let found = s
            .search(&SearchOpts {
                pattern: "^row-1[05]$".into(),
                context: 1,
                ..Default::default()
            })
            .await?;
        assert_eq!(found.matches.len(), 2, "{found:?}");
        let m = &found.matches[0];
        assert_eq!(m.text, "row-10");
        assert_eq!(m.before[0].text, "row-9");
        assert_eq!(m.after[0].text, "row-11");
        let range = s
            .capture(&CaptureOpts {
                range: ReadRange::Lines {
                    from: m.line,
                    to: m.line + 2,
                },
                ..Default::default()
            })
            .await?;
        assert_eq!(range.text, "row-10\nrow-11\nrow-12");
        assert_eq!(range.first_line, m.line);
        let none = s
            .capture(&CaptureOpts {
                range: ReadRange::Lines {
                    from: 100_000,
                    to: 100_010,
                },
                ..Default::default()
            })
            .await?;
        assert!(none.text.is_empty() && none.note.is_some());
        assert!(matches!(
            s.capture(&CaptureOpts {
                range: ReadRange::Lines { from: 5, to: 1 },
                ..Default::default()
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));

        // Reads since a cursor are exact.
        let before = s.capture(&CaptureOpts::default()).await?;
        let again = s
            .capture(&CaptureOpts {
                range: ReadRange::Since(before.cursor.clone()),
                ..Default::default()
            })
            .await?;
        assert!(again.text.is_empty(), "nothing new yet: {:?}", again.text);
        assert_eq!(again.cursor, before.cursor);
        s.send_text("echo after-cursor", SendOpts::default())
            .await?;
        wait_line(&s, "after-cursor").await?;
        let since = s
            .capture(&CaptureOpts {
                range: ReadRange::Since(before.cursor.clone()),
                ..Default::default()
            })
            .await?;
        assert!(
            since.text.lines().any(|l| l == "after-cursor"),
            "{}",
            since.text
        );
        assert!(!since.text.contains("row-60"), "{}", since.text);
        let wrong = termloom_core::Cursor("t1.1.2.3".into());
        assert!(matches!(
            s.capture(&CaptureOpts {
                range: ReadRange::Since(wrong),
                ..Default::default()
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));

        // Caps keep head and tail; ANSI is reported as unavailable.
        let capped = s
            .capture(&CaptureOpts {
                range: ReadRange::Lines { from: 0, to: 200 },
                max_lines: Some(10),
                ansi: true,
                ..Default::default()
            })
            .await?;
        assert!(capped.truncated);
        assert!(capped.note.as_deref().unwrap_or("").contains("colours"));

        // info() is a fresh listing; a second session in the same workspace gets its own tab.
        assert_eq!(s.info().await?.id, info.id);
        let (b, _) = env.new_session("beta", "work").await?;
        assert_eq!((b.workspace.as_str(), b.window_index), ("work", 1));
        assert!(!b.window_active, "created in the background");
        assert_eq!(t.list_sessions().await?.len(), 2);
        // Names are unique.
        assert!(matches!(
            t.create_session(&SessionSpec {
                name: Some("beta".into()),
                ..Default::default()
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_survives_reconnects_and_untagged_sessions_get_tagged() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let (info, _) = env.new_session("keep", "ids").await?;
        let conn = t.connection().await?;
        let generation = conn.generation();

        // A dropped connection: the next call reconnects and finds the same ids.
        t.disconnect().await;
        let again = t.list_sessions().await?;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, info.id);
        assert_eq!(again[0].name, "keep");
        assert!(conn.generation() > generation);
        // A second client (another process) agrees.
        let other = ItermTerminal::new(Env::options(&env.fake)?);
        let seen = other.list_sessions().await?;
        assert_eq!(seen[0].id, info.id);
        other.open(&info).await?;

        // A session nobody tagged (made straight through the protocol) is tagged on listing.
        let raw = conn
            .create_window(None)
            .await?
            .session_id
            .context("session id")?;
        let listed = t.list_sessions().await?;
        let untagged = listed
            .iter()
            .find(|s| s.native.id == raw)
            .context("the raw session is listed")?;
        assert_eq!(untagged.id, derived_id(&raw));
        assert!(!untagged.managed);
        assert_eq!(
            untagged.name,
            untagged.path(),
            "an unnamed session is named by its path"
        );
        assert!(
            untagged.workspace.starts_with("pty-"),
            "{}",
            untagged.workspace
        );
        let stored = t
            .get_variable(&VariableTarget::Session(raw.clone()), "user.termloomID")
            .await?;
        assert_eq!(stored, Value::from(untagged.id.to_string()));
        // Two listers agree (the id is derived from the GUID).
        assert_eq!(
            other
                .list_sessions()
                .await?
                .iter()
                .find(|s| s.native.id == raw)
                .map(|s| s.id),
            Some(untagged.id)
        );

        // open() re-checks the id: a GUID now carrying another id is stale.
        let s = t.open(&info).await?;
        s.set_managed(false).await?;
        assert!(!s.info().await?.managed);
        s.set_managed(true).await?;
        t.set_variable(
            &VariableTarget::Session(info.native.id.clone()),
            "user.termloomID",
            &Value::from(SessionId::new().to_string()),
        )
        .await?;
        assert!(matches!(
            t.open(&info).await,
            Err(Error::StaleNativeId { .. })
        ));
        // Variables lost (e.g. an iTerm2 restart): the GUID gives the same id back.
        t.set_variable(
            &VariableTarget::Session(info.native.id.clone()),
            "user.termloomID",
            &Value::Null,
        )
        .await?;
        t.open(&info).await?;
        assert_eq!(
            t.list_sessions()
                .await?
                .iter()
                .find(|s| s.native.id == info.native.id)
                .map(|s| s.id),
            Some(info.id)
        );
        assert!(matches!(
            t.set_variable(
                &VariableTarget::Session(raw.clone()),
                "nouser",
                &Value::Null
            )
            .await,
            Err(Error::InvalidArgument(_))
        ));
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_arrives_exactly_and_keys_are_pressed() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let (_, s) = env.new_session("typist", "io").await?;
        let file = env.path().join("typed.txt");
        s.send_text(
            &format!("stty -echo; echo READY; cat > {}", file.display()),
            SendOpts::default(),
        )
        .await?;
        wait_line(&s, "READY").await?;
        let long = "0123456789abcdef".repeat(200); // 3200 bytes on one line: many SendText chunks
        let text = format!(
            "quotes ' \" `tick` $HOME ; && || \\ back\\slash\ttab\nunicode: é ü 日本語 🦀\n{long}\nlast line\n"
        );
        s.send_text(&text, SendOpts { enter: false }).await?;
        let want = text.clone();
        let f = file.clone();
        poll("cat to write everything", || {
            let f = f.clone();
            let want = want.clone();
            async move { Ok((std::fs::read_to_string(&f).unwrap_or_default() == want).then_some(())) }
        })
        .await?;
        // C-d ends cat; the shell is back.
        s.send_keys(&[Key::ctrl('d')]).await?;
        s.send_text("stty echo; echo back-$((40+2))", SendOpts::default())
            .await?;
        wait_line(&s, "back-42").await?;

        // Named keys: C-c interrupts, arrows edit the line.
        s.send_text("sleep 30", SendOpts::default()).await?;
        let shows = |want: &'static str| {
            let s = s.clone();
            async move {
                poll(want, || async {
                    let t = tail(&s, 5).await?;
                    Ok(t.lines().last().is_some_and(|l| l.ends_with(want)).then_some(()))
                })
                .await
            }
        };
        shows("sleep 30").await?;
        // C-c can land before bash hands the terminal to sleep; press it until the prompt is back.
        poll("C-c to interrupt sleep", || async {
            s.send_keys(&[Key::ctrl('c')]).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let t = tail(&s, 5).await?;
            Ok(t.lines()
                .last()
                .is_some_and(|l| l.starts_with("bash-") && l.ends_with(['$', '#']))
                .then_some(()))
        })
        .await?;
        s.send_text("echo XY", SendOpts { enter: false }).await?;
        shows("echo XY").await?;
        s.send_keys(&[
            Key::plain(KeyCode::Left),
            Key::plain(KeyCode::Char('-')),
            Key::plain(KeyCode::End),
            Key::plain(KeyCode::Char('!')),
            Key::plain(KeyCode::Enter),
        ])
        .await?;
        wait_line(&s, "X-Y!").await?;
        assert!(matches!(
            s.send_text("nul\0byte", SendOpts::default()).await,
            Err(Error::InvalidArgument(_))
        ));
        env.stop().await;
        Ok(())
    })
    .await
}

fn shape_of_layout(node: &LayoutNode) -> String {
    match node {
        LayoutNode::Pane(p) => p.name.clone(),
        LayoutNode::Split {
            direction,
            children,
        } => {
            let d = if *direction == Direction::Horizontal {
                "H"
            } else {
                "V"
            };
            let inner: Vec<String> = children.iter().map(|c| shape_of_layout(&c.node)).collect();
            format!("{d}[{}]", inner.join(","))
        }
    }
}

/// The split tree of iTerm2's listing, with session names; iTerm2's vertical divider = H.
fn shape_of_tree(
    node: &proto::SplitTreeNode,
    names: &std::collections::HashMap<String, String>,
) -> String {
    use proto::split_tree_node::split_tree_link::Child;
    let parts: Vec<String> = node
        .links
        .iter()
        .filter_map(|l| match &l.child {
            Some(Child::Session(s)) => s
                .unique_identifier
                .as_ref()
                .map(|g| names.get(g).cloned().unwrap_or_else(|| g.clone())),
            Some(Child::Node(n)) => Some(shape_of_tree(n, names)),
            None => None,
        })
        .collect();
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let d = if node.vertical == Some(true) {
        "H"
    } else {
        "V"
    };
    format!("{d}[{}]", parts.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_and_every_predefined_layout() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let conn = t.connection().await?;
        let (a, s) = env.new_session("left", "splits").await?;
        let right = s
            .split(&SplitSpec {
                direction: Direction::Horizontal,
                percent: None,
                name: Some("right".into()),
                before: false,
                cwd: Some(env.path().to_path_buf()),
                command: Some("echo in-right".into()),
            })
            .await?;
        let top = s
            .split(&SplitSpec {
                direction: Direction::Vertical,
                percent: Some(30),
                name: Some("top".into()),
                before: true,
                cwd: None,
                command: None,
            })
            .await?;
        assert!(right.managed && top.managed);
        assert_eq!(right.workspace, "splits");
        assert_eq!(right.window_id, a.window_id);
        let listed = t.list_sessions().await?;
        let order: Vec<(&str, u32)> = {
            let mut v: Vec<(&str, u32)> = listed
                .iter()
                .filter(|x| x.window_id == a.window_id)
                .map(|x| (x.name.as_str(), x.pane_index))
                .collect();
            v.sort_by_key(|x| x.1);
            v
        };
        assert_eq!(order, [("top", 0), ("left", 1), ("right", 2)]);
        let names: std::collections::HashMap<String, String> = listed
            .iter()
            .map(|x| (x.native.id.clone(), x.name.clone()))
            .collect();
        let raw = conn.list_sessions().await?;
        let tab = raw.windows[0].tabs[0].root.clone().context("root")?;
        assert_eq!(shape_of_tree(&tab, &names), "H[V[top,left],right]");
        let rs = t.open(&right).await?;
        wait_line(&rs, "in-right").await?;
        // A bad cwd is refused before anything is created.
        assert!(matches!(
            s.split(&SplitSpec {
                direction: Direction::Vertical,
                percent: None,
                name: None,
                before: false,
                cwd: Some(PathBuf::from("/no/such/dir")),
                command: None,
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));

        // Every predefined layout, in its own workspace, with named sessions.
        let counts = [
            ("single", 1),
            ("horizontal", 3),
            ("vertical", 2),
            ("quad", 4),
            ("main-vertical", 3),
            ("main-horizontal", 3),
            ("tiled", 4),
        ];
        assert_eq!(counts.len(), PREDEFINED.len());
        for (name, n) in counts {
            let panes: Vec<String> = (1..=n).map(|i| format!("{name}-{i}")).collect();
            let layout = Layout::predefined(name, &panes)?;
            let ws = format!("lay-{name}");
            let built = t
                .apply_layout(
                    &layout,
                    &LayoutPlacement {
                        workspace: Some(ws.clone()),
                        window: Some("main".into()),
                        cwd: None,
                    },
                )
                .await?;
            let got: Vec<&str> = built.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(got.len(), n, "{name}");
            for (pane_name, info) in &built {
                assert_eq!(&info.name, pane_name);
                assert_eq!(info.workspace, ws);
                assert_eq!(info.window_name, "main");
                assert!(info.managed);
            }
            let listed = t.list_sessions().await?;
            let names: std::collections::HashMap<String, String> = listed
                .iter()
                .map(|x| (x.native.id.clone(), x.name.clone()))
                .collect();
            let raw = conn.list_sessions().await?;
            let window_id = built[0].1.workspace_id.clone().context("window id")?;
            let w = raw
                .windows
                .iter()
                .find(|w| w.window_id.as_deref() == Some(window_id.as_str()))
                .context("layout window")?;
            let root = w.tabs[0].root.clone().context("root")?;
            assert_eq!(
                shape_of_tree(&root, &names),
                shape_of_layout(&layout.root),
                "{name}"
            );
            // Pane indexes follow the layout's reading order.
            let mut in_tab: Vec<&SessionInfo> =
                listed.iter().filter(|x| x.workspace == ws).collect();
            in_tab.sort_by_key(|x| x.pane_index);
            let order: Vec<&str> = in_tab.iter().map(|x| x.name.as_str()).collect();
            let want: Vec<&str> = layout.panes().iter().map(|p| p.name.as_str()).collect();
            assert_eq!(order, want, "{name}");
        }
        // Names already taken are refused.
        assert!(matches!(
            t.apply_layout(
                &Layout::predefined("vertical", &["left".into(), "fresh".into()])?,
                &LayoutPlacement::default()
            )
            .await,
            Err(Error::InvalidArgument(_))
        ));
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_windows_focus_and_closing() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let conn = t.connection().await?;
        let key_window = || async {
            use proto::focus_changed_notification::Event;
            let f = conn.focus().await?;
            Ok::<_, anyhow::Error>(f.notifications.iter().find_map(|n| match &n.event {
                Some(Event::Window(w)) if w.window_status == Some(1) => w.window_id.clone(),
                _ => None,
            }))
        };
        let first = t
            .create_workspace(&WorkspaceSpec {
                name: "one".into(),
                window: Some("editor".into()),
                session_name: Some("ed".into()),
                history_limit: Some(5000),
                ..Default::default()
            })
            .await?;
        assert_eq!(first.window_name, "editor");
        let w1 = first.workspace_id.clone().context("window id")?;
        assert_eq!(key_window().await?.as_deref(), Some(w1.as_str()));
        // A second workspace is made in the background: the first window stays key.
        let second = t
            .create_workspace(&WorkspaceSpec {
                name: "two".into(),
                ..Default::default()
            })
            .await?;
        let w2 = second.workspace_id.clone().context("window id")?;
        assert_ne!(w1, w2);
        assert_eq!(key_window().await?.as_deref(), Some(w1.as_str()));
        assert!(matches!(
            t.create_workspace(&WorkspaceSpec {
                name: "two".into(),
                ..Default::default()
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            t.create_workspace(&WorkspaceSpec {
                name: "bad:name".into(),
                ..Default::default()
            })
            .await,
            Err(Error::InvalidArgument(_))
        ));
        let ws = t.list_workspaces().await?;
        let names: Vec<&str> = ws.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        assert!(ws[0].created > 0);
        assert_eq!(t.scrollback("one", None).await?, 5000);
        assert_eq!(t.scrollback("two", Some(2000)).await?, 2000);
        assert_eq!(t.scrollback("two", None).await?, 2000);

        // Windows are tabs.
        let tab = t
            .create_window(&WindowSpec {
                workspace: "one".into(),
                name: Some("logs".into()),
                session_name: Some("tailer".into()),
                command: Some("echo in-logs".into()),
                ..Default::default()
            })
            .await?;
        assert_eq!((tab.window_index, tab.window_active), (1, false));
        wait_line(&t.open(&tab).await?, "in-logs").await?;
        let wins = t.list_windows(Some("one")).await?;
        let wn: Vec<(&str, u32, bool)> = wins
            .iter()
            .map(|w| (w.name.as_str(), w.index, w.active))
            .collect();
        assert_eq!(wn, [("editor", 0, true), ("logs", 1, false)]);
        let logs = WindowRef {
            workspace: "one".into(),
            window: WindowSel::Name("logs".into()),
        };
        t.rename_window(&logs, "journal").await?;
        let journal = WindowRef {
            workspace: "one".into(),
            window: WindowSel::Index(1),
        };
        t.select_window(&journal).await?;
        let wins = t.list_windows(Some("one")).await?;
        assert_eq!(wins[1].name, "journal");
        assert!(wins[1].active && !wins[0].active);
        assert!(matches!(
            t.list_windows(Some("nope")).await,
            Err(Error::WorkspaceNotFound(_))
        ));
        assert!(matches!(
            t.create_window(&WindowSpec {
                workspace: "nope".into(),
                ..Default::default()
            })
            .await,
            Err(Error::WorkspaceNotFound(_))
        ));
        // A session created into an existing window splits it.
        let into = t
            .create_session(&SessionSpec {
                name: Some("extra".into()),
                workspace: Some("one".into()),
                window: Some("journal".into()),
                ..Default::default()
            })
            .await?;
        assert_eq!((into.window_index, into.pane_index), (1, 1));
        t.kill_window(&journal).await?;
        assert_eq!(t.list_windows(Some("one")).await?.len(), 1);

        // Focus is only taken when asked.
        let s2 = t.open(&second).await?;
        s2.focus().await?;
        assert_eq!(key_window().await?.as_deref(), Some(w2.as_str()));

        // Close; a closed session is dead, not silently re-targeted.
        let (c, cs) = env.new_session("closer", "two").await?;
        cs.close().await?;
        assert!(matches!(t.open(&c).await, Err(Error::SessionDead { .. })));
        assert!(matches!(
            cs.send_text("x", SendOpts::default()).await,
            Err(Error::SessionDead { .. })
        ));
        assert!(matches!(cs.info().await, Err(Error::SessionDead { .. })));
        assert!(matches!(
            t.resolve(&"closer".parse()?).await,
            Err(Error::SessionNotFound { .. })
        ));

        t.destroy_workspace("two").await?;
        assert!(matches!(
            t.destroy_workspace("two").await,
            Err(Error::WorkspaceNotFound(_))
        ));
        assert_eq!(t.list_workspaces().await?.len(), 1);

        // What iTerm2 cannot do says so.
        let caps = t.capabilities();
        assert!(caps.workspaces && caps.windows && caps.layouts && caps.run && caps.monitor);
        assert!(!caps.resize && caps.notes.iter().any(|(k, _)| k == "resize"));
        let s1 = t.open(&first).await?;
        assert!(matches!(
            s1.resize(&ResizeSpec {
                width: Some(10),
                ..Default::default()
            })
            .await,
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            s1.install_integration().await,
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            t.create_session(&SessionSpec {
                env: vec![("A".into(), "b".into())],
                ..Default::default()
            })
            .await,
            Err(Error::Unsupported { .. })
        ));
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_profile_properties_and_variables() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let (info, s) = env.new_session("old-name", "props").await?;
        s.rename("new-name").await?;
        let now = s.info().await?;
        assert_eq!(now.name, "new-name");
        assert_eq!(now.title, "new-name", "iTerm2 shows the new name");
        assert_eq!(
            t.resolve(&"new-name".parse()?).await?.id,
            info.id,
            "the id did not change"
        );
        let (_, other) = env.new_session("other", "props").await?;
        assert!(matches!(
            other.rename("new-name").await,
            Err(Error::InvalidArgument(_))
        ));
        // A red background for production.
        let session = t.open_iterm(&now).await?;
        session
            .set_profile_properties(&[("Background Color", color(0.4, 0.0, 0.0))])
            .await?;
        t.set_profile_properties(&now, &[("Badge Text", Value::from("PROD"))])
            .await?;
        session
            .set_variable("user.project", &Value::from("blue"))
            .await?;
        assert_eq!(session.get_variable("user.project").await?, "blue");
        assert_eq!(
            session.get_variable("id").await?,
            Value::from(session.guid())
        );
        // Created with a profile and properties, in the foreground.
        let conn = t.connection().await?;
        let made = t
            .create_session_with(
                &SessionSpec {
                    name: Some("prod".into()),
                    workspace: Some("props".into()),
                    ..Default::default()
                },
                &ItermCreate {
                    profile: Some("Default".into()),
                    properties: vec![("Background Color".into(), color(0.4, 0.0, 0.0))],
                    select: true,
                },
            )
            .await?;
        assert!(made.window_active && made.active, "{made:?}");
        let focus = conn.focus().await?;
        assert!(focus.notifications.iter().any(|n| matches!(
            &n.event,
            Some(proto::focus_changed_notification::Event::Session(id)) if *id == made.native.id
        )));
        match t
            .create_session_with(
                &SessionSpec::default(),
                &ItermCreate {
                    profile: Some("No Such Profile".into()),
                    ..Default::default()
                },
            )
            .await
        {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("No Such Profile"), "{m}"),
            other => bail!("expected an unknown profile error, got {other:?}"),
        }
        let split = t
            .open_iterm(&made)
            .await?
            .split_with(
                &SplitSpec {
                    direction: Direction::Horizontal,
                    percent: None,
                    name: Some("prod-2".into()),
                    before: false,
                    cwd: None,
                    command: None,
                },
                &ItermCreate {
                    properties: vec![("Badge Text".into(), Value::from("PROD"))],
                    select: true,
                    ..Default::default()
                },
            )
            .await?;
        assert!(split.active, "{split:?}");
        let tab = now.window_id.clone().context("tab id")?;
        t.set_variable(&VariableTarget::Tab(tab.clone()), "user.t", &Value::from(1))
            .await?;
        assert_eq!(
            t.get_variable(&VariableTarget::Tab(tab), "user.t").await?,
            Value::from(1)
        );
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_shell_integration_reports_exit_codes() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Marks).await?;
        let t = &env.term;
        let (_, s) = env.new_session("runner", "run").await?;
        wait_prompt_marks(&s, t).await?;

        let r = s.run(&run_opts("printf 'x1\\ny2 é\\n'", DEADLINE)).await?;
        assert_eq!(r.strategy, Strategy::ShellIntegration);
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.output, "x1\ny2 é");
        assert!(!r.timed_out && r.handle.is_none());

        let r = s.run(&run_opts("false", DEADLINE)).await?;
        assert_eq!((r.exit_code, r.output.as_str()), (Some(1), ""));
        let r = s
            .run(&run_opts("echo out; echo err >&2; (exit 7)", DEADLINE))
            .await?;
        assert_eq!(r.exit_code, Some(7));
        assert_eq!(r.output, "out\nerr");
        let st = s.status().await?;
        assert_eq!(st.state, BusyState::Idle);
        assert_eq!(st.last_exit_code, Some(7));
        assert!(st.shell_integration);

        // Many lines, capped.
        let r = s
            .run(&RunOpts {
                max_lines: Some(20),
                ..run_opts("seq 1 500", DEADLINE)
            })
            .await?;
        assert!(r.truncated);
        assert!(
            r.output.starts_with("1\n") && r.output.ends_with("\n500"),
            "{}",
            r.output
        );

        // Not done in time: a handle to keep waiting with; the session is busy meanwhile.
        let r = s
            .run(&run_opts("sleep 2; echo late", Duration::from_millis(100)))
            .await?;
        assert!(r.timed_out);
        let handle = r.handle.clone().context("handle")?;
        let st = s.status().await?;
        assert_eq!(st.state, BusyState::Busy);
        assert_eq!(st.command, "sleep 2; echo late");
        match s.run(&run_opts("echo no", DEADLINE)).await {
            Err(Error::Backend { message, .. }) => {
                assert!(message.contains("is busy running"), "{message}")
            }
            other => panic!("a run while one goes: {other:?}"),
        }
        let done = s.wait_run(&handle, DEADLINE).await?;
        assert!(!done.timed_out);
        assert_eq!((done.exit_code, done.output.as_str()), (Some(0), "late"));
        assert!(done.duration_ms >= 1900, "{}", done.duration_ms);
        assert!(matches!(
            s.wait_run(&termloom_core::RunHandle("junk".into()), DEADLINE)
                .await,
            Err(Error::InvalidArgument(_))
        ));
        // A command typed while the shell starts (readline redraws its prompt), then a run.
        let typed = t
            .create_session(&SessionSpec {
                name: Some("typed".into()),
                workspace: Some("run".into()),
                command: Some("echo typed-ahead".into()),
                ..Default::default()
            })
            .await?;
        let ts = t.open(&typed).await?;
        wait_prompt_marks(&ts, t).await?;
        let r = ts
            .run(&run_opts("echo right-after; (exit 4)", DEADLINE))
            .await?;
        assert_eq!((r.exit_code, r.output.as_str()), (Some(4), "right-after"));
        // A run right after the previous command's output appeared.
        ts.send_text("echo just-printed", SendOpts::default())
            .await?;
        wait_line(&ts, "just-printed").await?;
        let r = ts.run(&run_opts("true", DEADLINE)).await?;
        assert_eq!(r.exit_code, Some(0));
        // A command that never starts (a syntax error) still ends.
        let r = s.run(&run_opts("if then fi", DEADLINE)).await?;
        assert!(!r.timed_out);
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_shell_integration_falls_back() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let (_, s) = env.new_session("plain", "run").await?;
        wait_shell_prompt(&s).await?;
        let r = s.run(&run_opts("echo hi; (exit 3)", DEADLINE)).await?;
        assert_eq!(r.strategy, Strategy::Marker);
        assert_eq!((r.exit_code, r.output.as_str()), (Some(3), "hi"));
        let r = s.run(&run_opts("printf 'no newline'", DEADLINE)).await?;
        assert_eq!((r.exit_code, r.output.as_str()), (Some(0), "no newline"));
        let long = format!("echo {}", "w".repeat(150));
        let r = s.run(&run_opts(&long, DEADLINE)).await?;
        assert_eq!(r.output, "w".repeat(150), "wrapped lines are joined");
        let st = s.status().await?;
        assert!(!st.shell_integration);
        assert_eq!(st.state, BusyState::Idle);
        assert!(matches!(
            s.run(&run_opts("echo a\necho b", DEADLINE)).await,
            Err(Error::Unsupported { .. })
        ));
        // REPL-style: the caller's prompt regex ends the run.
        let r = s
            .run(&RunOpts {
                prompt: Some(r"[$#]\s*$".into()),
                ..run_opts("echo p1; echo p2", DEADLINE)
            })
            .await?;
        assert_eq!(r.strategy, Strategy::Prompt);
        assert_eq!((r.exit_code, r.output.as_str()), (None, "p1\np2"));
        // Quiet: done when nothing changed for a while.
        let r = s
            .run(&RunOpts {
                quiet: Some(Duration::from_millis(400)),
                ..run_opts("echo q1", DEADLINE)
            })
            .await?;
        assert_eq!(r.strategy, Strategy::Quiet);
        assert_eq!(r.output, "q1");
        // A marker run that times out can be waited for.
        let r = s
            .run(&run_opts("sleep 1; echo slow", Duration::from_millis(50)))
            .await?;
        assert!(r.timed_out);
        let done = s.wait_run(&r.handle.context("handle")?, DEADLINE).await?;
        assert_eq!((done.exit_code, done.output.as_str()), (Some(0), "slow"));
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_streams_new_output_and_ends_when_closed() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let (_, s) = env.new_session("watched", "mon").await?;
        wait_shell_prompt(&s).await?;
        let stream = s.subscribe().await?;
        let mut ls = Box::pin(lines(stream));
        s.send_text("for i in 1 2 3; do echo tick-$i; done", SendOpts::default())
            .await?;
        let mut seen = Vec::new();
        let end = tokio::time::Instant::now() + DEADLINE;
        while !seen.iter().any(|l: &String| l == "tick-3") {
            match tokio::time::timeout_at(end, ls.next()).await {
                Ok(Some(LineEvent::Line(l))) => seen.push(l),
                Ok(Some(other)) => bail!("unexpected {other:?}"),
                Ok(None) | Err(_) => bail!("no tick-3 in {seen:?}"),
            }
        }
        let ticks: Vec<&String> = seen.iter().filter(|l| l.starts_with("tick-")).collect();
        assert_eq!(ticks, ["tick-1", "tick-2", "tick-3"]);
        assert!(
            seen.iter()
                .any(|l| l.ends_with("for i in 1 2 3; do echo tick-$i; done")),
            "the typed line shows: {seen:?}"
        );

        // wait_for (core's default on top of subscribe).
        s.send_text("sleep 0.3; echo later-$((1+1))", SendOpts::default())
            .await?;
        let re = regex::Regex::new("^later-2$")?;
        assert_eq!(s.wait_for(&re, DEADLINE).await?.as_deref(), Some("later-2"));
        let none = regex::Regex::new("^never$")?;
        let started = Instant::now();
        assert_eq!(s.wait_for(&none, Duration::from_millis(300)).await?, None);
        assert!(started.elapsed() < Duration::from_secs(5));

        // Closing ends the stream.
        s.close().await?;
        let end = tokio::time::Instant::now() + DEADLINE;
        let closed = loop {
            match tokio::time::timeout_at(end, ls.next()).await {
                Ok(Some(LineEvent::Closed(r))) => break r,
                Ok(None) => break "ended".to_owned(),
                Ok(Some(_)) => {}
                Err(_) => bail!("the stream did not close"),
            }
        };
        assert!(!closed.is_empty());
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_report_new_windows_tabs_and_sessions() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let mut events = t.events().await?;
        let (info, _) = env.new_session("e1", "ev").await?;
        let window = info.workspace_id.clone().context("window")?;
        let mut got = Vec::new();
        let end = tokio::time::Instant::now() + DEADLINE;
        let created = ItermEvent::WindowCreated {
            window_id: window.clone(),
        };
        let session_created = ItermEvent::SessionCreated {
            native: info.native.id.clone(),
        };
        // The layout change after the window's appears last.
        while !(got.contains(&created)
            && got.contains(&session_created)
            && got.last() == Some(&ItermEvent::LayoutChanged))
        {
            match tokio::time::timeout_at(end, events.recv()).await {
                Ok(Ok(e)) => got.push(e),
                other => bail!("events ended early ({other:?}); got {got:?}"),
            }
        }
        assert!(got.iter().any(
            |e| matches!(e, ItermEvent::TabCreated { window_id, .. } if *window_id == window)
        ));
        let s = t.open(&info).await?;
        s.close().await?;
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(end, events.recv()).await {
                Ok(Ok(ItermEvent::WindowClosed { window_id })) if window_id == window => break,
                Ok(Ok(_)) => {}
                other => bail!("no WindowClosed: {other:?}"),
            }
        }
        env.stop().await;
        Ok(())
    })
    .await
}

/// The tmux integration: a stand-in gateway that answers like `tmux -CC`, and the real tmux
/// when it is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmux_integration_connections_commands_and_menu_items() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        let t = &env.term;
        let (gw, _) = env.new_session("gateway", "tmux").await?;
        let script = r#"printf '\033P1000p'; while IFS= read -r l; do printf '%%begin 1 1 1\n%s-out\n%%end 1 1 1\n' "$l"; done"#;
        let s = t.open(&gw).await?;
        s.send_text(script, SendOpts::default()).await?;
        let conns = poll("the tmux connection", || async {
            let c = t.tmux_connections().await?;
            Ok((!c.is_empty()).then_some(c))
        })
        .await?;
        let id = conns[0].connection_id.clone();
        assert_eq!(conns[0].gateway.as_ref().map(|g| g.id), Some(gw.id));
        assert_eq!(t.tmux_gateway(&id).await?.id, gw.id);
        assert_eq!(t.tmux_send_command(&id, "list-windows").await?, "list-windows-out");
        assert!(matches!(
            t.tmux_send_command("nope", "x").await,
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(t.tmux_gateway("nope").await, Err(Error::InvalidArgument(_))));
        // Menu items act on the active session: the gateway is the only window, so it is.
        let item = t.menu_item("tmux.Detach", true).await?;
        assert!(item.enabled);
        assert!(matches!(
            t.menu_item("no.such.item", true).await,
            Err(Error::InvalidArgument(_))
        ));
        t.menu_item("tmux.Force Detach", false).await?;
        assert!(t.tmux_connections().await?.is_empty());

        // The real tmux, when installed.
        if std::process::Command::new("tmux").arg("-V").output().is_ok() {
            let sock = env.path().join("tmx");
            let cmd = format!(
                "tmux -S {} -f /dev/null -CC new-session -x 80 -y 20",
                sock.display()
            );
            let (real, _) = env.new_session("real-gw", "tmux-real").await?;
            t.open(&real).await?.send_text(&cmd, SendOpts::default()).await?;
            let conn = poll("the real tmux connection", || async {
                let c = t.tmux_connections().await?;
                Ok(c.into_iter().find(|c| c.gateway.as_ref().map(|g| g.id) == Some(real.id)))
            })
            .await?;
            let out = t
                .tmux_send_command(&conn.connection_id, "display-message -p 'hello #{session_name}'")
                .await?;
            assert!(out.starts_with("hello "), "{out}");
            let w = t
                .tmux_create_window(&conn.connection_id, None)
                .await?;
            let tab = w.tab_id.clone().context("tab id")?;
            let session = w.session.clone().context("tmux window session")?;
            assert_eq!(session.window_id.as_deref(), Some(tab.as_str()));
            let layout = t.layout().await?;
            let shown = layout
                .windows
                .iter()
                .flat_map(|w| w.tabs.iter())
                .find(|x| x.id == tab)
                .context("the tmux tab is listed")?;
            assert_eq!(shown.tmux_connection_id.as_deref(), Some(conn.connection_id.as_str()));
            assert!(shown.tmux_window_id.is_some());
            t.tmux_detach(&conn.connection_id).await?;
            poll("the connection to end", || async {
                let c = t.tmux_connections().await?;
                Ok(c.iter().all(|c| c.connection_id != conn.connection_id).then_some(()))
            })
            .await?;
            let _ = std::process::Command::new("tmux")
                .arg("-S")
                .arg(&sock)
                .arg("kill-server")
                .output();
        } else {
            eprintln!("tmux is not installed: skipping the real tmux -CC part");
        }
        env.stop().await;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn auth_failure_absent_iterm_and_unknown_sessions_are_clear_errors() -> Result<()> {
    bounded(async {
        let env = Env::start(Shell::Plain).await?;
        // Wrong cookie: HTTP 401, reported at the first call, quickly.
        let wrong = ItermTerminal::new(
            ConnectOptions::with_socket(env.fake.socket_path()).credentials(Credentials {
                cookie: "wrong".into(),
                key: "key-t".into(),
            }),
        );
        let started = Instant::now();
        match wrong.list_sessions().await {
            Err(Error::Backend { message, .. }) => assert!(message.contains("401"), "{message}"),
            other => bail!("expected a 401 error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // No iTerm2 at all.
        let absent = ItermTerminal::new(
            ConnectOptions::with_socket(env.path().join("missing")).credentials(Credentials {
                cookie: "c".into(),
                key: "k".into(),
            }),
        );
        match absent.list_sessions().await {
            Err(Error::Backend { message, .. }) => {
                assert!(message.contains("not running"), "{message}");
                assert!(message.contains("Enable Python API"), "{message}");
            }
            other => bail!("expected not running, got {other:?}"),
        }
        assert!(absent.key().socket.is_some_and(|s| s.ends_with("missing")));
        // An unknown session.
        let t = &env.term;
        let (mut info, _) = env.new_session("real", "err").await?;
        info.native.id = "NO-SUCH-GUID".into();
        assert!(matches!(
            t.open(&info).await,
            Err(Error::SessionDead { .. })
        ));
        assert!(matches!(
            t.resolve(&"nobody".parse()?).await,
            Err(Error::SessionNotFound { .. })
        ));
        let mut tmux_info = info.clone();
        tmux_info.native = termloom_core::NativeId::tmux("%1");
        assert!(matches!(
            t.open(&tmux_info).await,
            Err(Error::InvalidArgument(_))
        ));
        ensure!(t.list_sessions().await?.len() == 1);
        env.stop().await;
        Ok(())
    })
    .await
}
