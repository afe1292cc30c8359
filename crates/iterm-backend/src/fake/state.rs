//! The fake's model: windows → tabs → split trees → sessions, and every operation on it.
//!
//! One `std::sync::Mutex<State>` guards the model; it is never held across an `.await`.
//! Operations publish [`Event`]s on a broadcast channel, which the connections filter by their
//! subscriptions.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::session::{Session, SessionEvent, Spawn};
use super::{Event, FakeConfig, lock};
use crate::proto;

/// Cell size used to turn grid sizes into pixel frames.
const CELL_W: i32 = 8;
const CELL_H: i32 = 16;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Leaf(String),
    Split { vertical: bool, children: Vec<Node> },
}

impl Node {
    fn contains(&self, id: &str) -> bool {
        match self {
            Node::Leaf(s) => s == id,
            Node::Split { children, .. } => children.iter().any(|c| c.contains(id)),
        }
    }

    fn sessions(&self, out: &mut Vec<String>) {
        match self {
            Node::Leaf(s) => out.push(s.clone()),
            Node::Split { children, .. } => children.iter().for_each(|c| c.sessions(out)),
        }
    }

    /// Puts `new` beside `target`: into the parent split when it has the same orientation,
    /// else in a new split replacing the leaf. The root is always a split.
    fn insert_beside(&mut self, target: &str, new: &str, vertical: bool, before: bool) -> bool {
        let Node::Split {
            vertical: v,
            children,
        } = self
        else {
            return false;
        };
        if children.len() == 1
            && matches!(&children[0], Node::Leaf(s) if s == target)
            && *v != vertical
        {
            *v = vertical;
        }
        if let Some(i) = children
            .iter()
            .position(|c| matches!(c, Node::Leaf(s) if s == target))
        {
            if *v == vertical {
                let at = if before { i } else { i + 1 };
                children.insert(at, Node::Leaf(new.to_owned()));
            } else {
                let pair = if before {
                    vec![Node::Leaf(new.to_owned()), Node::Leaf(target.to_owned())]
                } else {
                    vec![Node::Leaf(target.to_owned()), Node::Leaf(new.to_owned())]
                };
                children[i] = Node::Split {
                    vertical,
                    children: pair,
                };
            }
            return true;
        }
        children
            .iter_mut()
            .any(|c| c.insert_beside(target, new, vertical, before))
    }

    /// Removes a leaf; collapses splits left with one child. Returns whether it was found.
    fn remove(&mut self, id: &str) -> bool {
        let Node::Split { children, .. } = self else {
            return false;
        };
        if let Some(i) = children
            .iter()
            .position(|c| matches!(c, Node::Leaf(s) if s == id))
        {
            children.remove(i);
            return true;
        }
        for i in 0..children.len() {
            if children[i].remove(id) {
                if let Node::Split {
                    children: inner, ..
                } = &children[i]
                {
                    match inner.len() {
                        0 => {
                            children.remove(i);
                        }
                        1 => {
                            let only = inner[0].clone();
                            children[i] = only;
                        }
                        _ => {}
                    }
                }
                return true;
            }
        }
        false
    }

    fn is_empty(&self) -> bool {
        match self {
            Node::Leaf(_) => false,
            Node::Split { children, .. } => children.is_empty(),
        }
    }

    /// Assigns each session a rectangle of cells: (id, x, y, cols, rows).
    fn layout(
        &self,
        x: u16,
        y: u16,
        cols: u16,
        rows: u16,
        out: &mut Vec<(String, u16, u16, u16, u16)>,
    ) {
        match self {
            Node::Leaf(id) => out.push((id.clone(), x, y, cols.max(1), rows.max(1))),
            Node::Split { vertical, children } => {
                let n = children.len() as u16;
                if n == 0 {
                    return;
                }
                let total = if *vertical { cols } else { rows };
                let usable = total.saturating_sub(n - 1);
                let each = (usable / n).max(1);
                let mut pos = if *vertical { x } else { y };
                for (i, child) in children.iter().enumerate() {
                    let size = if i as u16 == n - 1 {
                        usable.saturating_sub(each * (n - 1)).max(1)
                    } else {
                        each
                    };
                    if *vertical {
                        child.layout(pos, y, size, rows, out);
                    } else {
                        child.layout(x, pos, cols, size, out);
                    }
                    pos = pos.saturating_add(size + 1);
                }
            }
        }
    }
}

pub(crate) struct TabM {
    pub id: String,
    pub root: Node,
    pub active_session: String,
    pub vars: BTreeMap<String, String>,
    pub tmux_window_id: Option<String>,
    pub tmux_connection_id: Option<String>,
}

pub(crate) struct WindowM {
    pub id: String,
    pub number: i32,
    pub tabs: Vec<TabM>,
    pub selected_tab: Option<String>,
    pub vars: BTreeMap<String, String>,
}

pub(crate) struct TmuxConn {
    pub id: String,
    pub gateway: String,
    /// Where the next new tmux window goes (a window id): set by `create_window` with an
    /// affinity, used by the first window that appears after it.
    pub affinity: Option<String>,
}

/// A tmux layout string's tree (`{…}` side by side, `[…]` stacked, leaves are pane ids).
#[derive(Debug, PartialEq)]
pub(crate) enum TmuxCell {
    Pane(String),
    Split {
        side_by_side: bool,
        children: Vec<TmuxCell>,
    },
}

/// Parses a tmux layout (`b25d,80x24,0,0{40x24,0,0,1,39x24,41,0,2}`).
pub(crate) fn parse_tmux_layout(layout: &str) -> Option<TmuxCell> {
    let body = layout.split_once(',')?.1;
    let b = body.as_bytes();
    let mut pos = 0;
    let cell = parse_cell(b, &mut pos)?;
    (pos == b.len()).then_some(cell)
}

fn parse_num(b: &[u8], pos: &mut usize) -> Option<u32> {
    let start = *pos;
    while *pos < b.len() && b[*pos].is_ascii_digit() {
        *pos += 1;
    }
    std::str::from_utf8(&b[start..*pos]).ok()?.parse().ok()
}

fn expect(b: &[u8], pos: &mut usize, c: u8) -> Option<()> {
    (b.get(*pos) == Some(&c)).then(|| *pos += 1)
}

fn parse_cell(b: &[u8], pos: &mut usize) -> Option<TmuxCell> {
    parse_num(b, pos)?;
    expect(b, pos, b'x')?;
    parse_num(b, pos)?;
    expect(b, pos, b',')?;
    parse_num(b, pos)?;
    expect(b, pos, b',')?;
    parse_num(b, pos)?;
    match b.get(*pos) {
        Some(b',') => {
            *pos += 1;
            let id = parse_num(b, pos)?;
            Some(TmuxCell::Pane(format!("%{id}")))
        }
        Some(&open @ (b'{' | b'[')) => {
            *pos += 1;
            let close = if open == b'{' { b'}' } else { b']' };
            let mut children = vec![parse_cell(b, pos)?];
            while b.get(*pos) == Some(&b',') {
                *pos += 1;
                children.push(parse_cell(b, pos)?);
            }
            expect(b, pos, close)?;
            Some(TmuxCell::Split {
                side_by_side: open == b'{',
                children,
            })
        }
        _ => None,
    }
}

impl TmuxCell {
    fn panes(&self, out: &mut Vec<String>) {
        match self {
            TmuxCell::Pane(p) => out.push(p.clone()),
            TmuxCell::Split { children, .. } => children.iter().for_each(|c| c.panes(out)),
        }
    }

    /// The iTerm2 split tree, with sessions for panes.
    fn to_node(&self, session_of: &HashMap<String, String>) -> Node {
        match self {
            TmuxCell::Pane(p) => Node::Leaf(session_of.get(p).cloned().unwrap_or_default()),
            TmuxCell::Split {
                side_by_side,
                children,
            } => Node::Split {
                // Side by side = a vertical divider.
                vertical: *side_by_side,
                children: children.iter().map(|c| c.to_node(session_of)).collect(),
            },
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub windows: Vec<WindowM>,
    pub sessions: HashMap<String, Arc<Session>>,
    next_window_number: i32,
    next_tab: u64,
    pub app_vars: BTreeMap<String, String>,
    pub tmux: Vec<TmuxConn>,
    next_tmux: u64,
    pub key_window: Option<String>,
    pub app_active: bool,
    pub shut_down: bool,
}

impl State {
    /// (window index, tab index) holding a session.
    pub fn locate(&self, session: &str) -> Option<(usize, usize)> {
        self.windows.iter().enumerate().find_map(|(wi, w)| {
            w.tabs
                .iter()
                .position(|t| t.root.contains(session))
                .map(|ti| (wi, ti))
        })
    }

    pub fn locate_tab(&self, tab: &str) -> Option<(usize, usize)> {
        self.windows
            .iter()
            .enumerate()
            .find_map(|(wi, w)| w.tabs.iter().position(|t| t.id == tab).map(|ti| (wi, ti)))
    }

    pub fn window_index(&self, window: &str) -> Option<usize> {
        self.windows.iter().position(|w| w.id == window)
    }

    /// The session with keyboard focus: active session of the selected tab of the key window.
    pub fn active_session(&self) -> Option<String> {
        let w = self
            .key_window
            .as_ref()
            .and_then(|k| self.windows.iter().find(|w| &w.id == k))
            .or_else(|| self.windows.first())?;
        let t = w
            .selected_tab
            .as_ref()
            .and_then(|s| w.tabs.iter().find(|t| &t.id == s))
            .or_else(|| w.tabs.first())?;
        Some(t.active_session.clone())
    }

    /// Sessions named by an id, `all` or `active`.
    pub fn resolve(&self, id: &str) -> Vec<Arc<Session>> {
        match id {
            "all" => self.all_sessions_in_order(),
            "active" => self
                .active_session()
                .and_then(|s| self.sessions.get(&s).cloned())
                .into_iter()
                .collect(),
            other => self.sessions.get(other).cloned().into_iter().collect(),
        }
    }

    pub fn all_sessions_in_order(&self) -> Vec<Arc<Session>> {
        let mut ids = Vec::new();
        for w in &self.windows {
            for t in &w.tabs {
                t.root.sessions(&mut ids);
            }
        }
        ids.iter()
            .filter_map(|id| self.sessions.get(id).cloned())
            .collect()
    }

    /// `w<window>t<tab>p<pane>:<id>`, as in `ITERM_SESSION_ID`.
    pub fn termid(&self, session: &str) -> Option<String> {
        let (wi, ti) = self.locate(session)?;
        let mut ids = Vec::new();
        self.windows[wi].tabs[ti].root.sessions(&mut ids);
        let pi = ids.iter().position(|s| s == session)?;
        Some(format!("w{wi}t{ti}p{pi}:{session}"))
    }

    pub fn tmux_conn_for_session(&self, session: &str) -> Option<&TmuxConn> {
        if let Some(c) = self.tmux.iter().find(|c| c.gateway == session) {
            return Some(c);
        }
        let (wi, ti) = self.locate(session)?;
        let cid = self.windows[wi].tabs[ti].tmux_connection_id.as_ref()?;
        self.tmux.iter().find(|c| &c.id == cid)
    }

    fn new_tab_id(&mut self) -> String {
        self.next_tab += 1;
        self.next_tab.to_string()
    }
}

/// The fake's shared core.
pub(crate) struct Core {
    pub config: FakeConfig,
    pub state: Mutex<State>,
    pub events: broadcast::Sender<Event>,
    runtime: tokio::runtime::Handle,
    me: Weak<Core>,
}

fn session_summary(s: &Session, frame: Option<(u16, u16, u16, u16)>) -> proto::SessionSummary {
    let (rows, cols) = s.size();
    let title = lock(&s.inner)
        .title
        .clone()
        .unwrap_or_else(|| default_title(s));
    proto::SessionSummary {
        unique_identifier: Some(s.id.clone()),
        frame: frame.map(|(x, y, c, r)| proto::Frame {
            origin: Some(proto::Point {
                x: Some(i32::from(x) * CELL_W),
                y: Some(i32::from(y) * CELL_H),
            }),
            size: Some(proto::Size {
                width: Some(i32::from(c) * CELL_W),
                height: Some(i32::from(r) * CELL_H),
            }),
        }),
        grid_size: Some(proto::Size {
            width: Some(i32::from(cols)),
            height: Some(i32::from(rows)),
        }),
        title: Some(title),
    }
}

fn default_title(s: &Session) -> String {
    let prog = s.command.split_whitespace().next().unwrap_or("shell");
    let base = prog.rsplit('/').next().unwrap_or(prog);
    format!("{base} (fake)")
}

fn tree_proto(
    node: &Node,
    sessions: &HashMap<String, Arc<Session>>,
    frames: &HashMap<String, (u16, u16, u16, u16)>,
) -> proto::SplitTreeNode {
    use proto::split_tree_node::{SplitTreeLink, split_tree_link::Child};
    match node {
        Node::Leaf(id) => proto::SplitTreeNode {
            vertical: Some(false),
            links: sessions
                .get(id)
                .map(|s| SplitTreeLink {
                    child: Some(Child::Session(session_summary(s, frames.get(id).copied()))),
                })
                .into_iter()
                .collect(),
        },
        Node::Split { vertical, children } => proto::SplitTreeNode {
            vertical: Some(*vertical),
            links: children
                .iter()
                .filter_map(|c| match c {
                    Node::Leaf(id) => sessions.get(id).map(|s| SplitTreeLink {
                        child: Some(Child::Session(session_summary(s, frames.get(id).copied()))),
                    }),
                    split => Some(SplitTreeLink {
                        child: Some(Child::Node(tree_proto(split, sessions, frames))),
                    }),
                })
                .collect(),
        },
    }
}

/// Reads a profile property value: JSON text, tolerating bare strings.
fn prop_value(props: &[proto::ProfileProperty], key: &str) -> Option<String> {
    let p = props.iter().rev().find(|p| p.key.as_deref() == Some(key))?;
    let raw = p.json_value.as_deref()?;
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(serde_json::Value::Null) => None,
        Ok(other) => Some(other.to_string()),
        Err(_) => Some(raw.to_owned()),
    }
}

/// What a create or split should run.
pub(crate) struct Launch {
    pub command: Option<String>,
    pub props: Vec<proto::ProfileProperty>,
}

impl Core {
    pub fn new(config: FakeConfig, runtime: tokio::runtime::Handle) -> Arc<Self> {
        let (events, _) = broadcast::channel(4096);
        Arc::new_cyclic(|me| Self {
            config,
            state: Mutex::new(State {
                app_active: true,
                ..State::default()
            }),
            events,
            runtime,
            me: me.clone(),
        })
    }

    pub fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Current layout.
    pub fn list(&self) -> proto::ListSessionsResponse {
        let st = lock(&self.state);
        Self::list_locked(&st, self.config.window_size)
    }

    fn list_locked(st: &State, (cols, rows): (u16, u16)) -> proto::ListSessionsResponse {
        let windows = st
            .windows
            .iter()
            .map(|w| proto::list_sessions_response::Window {
                tabs: w
                    .tabs
                    .iter()
                    .map(|t| {
                        let mut rects = Vec::new();
                        t.root.layout(0, 0, cols, rows, &mut rects);
                        let frames: HashMap<_, _> = rects
                            .into_iter()
                            .map(|(id, x, y, c, r)| (id, (x, y, c, r)))
                            .collect();
                        proto::list_sessions_response::Tab {
                            root: Some(tree_proto(&t.root, &st.sessions, &frames)),
                            tab_id: Some(t.id.clone()),
                            tmux_window_id: t.tmux_window_id.clone(),
                            tmux_connection_id: t.tmux_connection_id.clone(),
                            minimized_sessions: Vec::new(),
                            active_session_id: Some(t.active_session.clone()),
                        }
                    })
                    .collect(),
                window_id: Some(w.id.clone()),
                frame: Some(proto::Frame {
                    origin: Some(proto::Point {
                        x: Some(0),
                        y: Some(0),
                    }),
                    size: Some(proto::Size {
                        width: Some(i32::from(cols) * CELL_W),
                        height: Some(i32::from(rows) * CELL_H),
                    }),
                }),
                number: Some(w.number),
                selected_tab_id: w.selected_tab.clone(),
            })
            .collect();
        proto::ListSessionsResponse {
            windows,
            buried_sessions: Vec::new(),
        }
    }

    fn publish_layout_locked(&self, st: &State) {
        let list = Self::list_locked(st, self.config.window_size);
        self.publish(Event::Layout(Arc::new(list)));
    }

    /// Re-applies sizes after a layout change.
    fn relayout_tab(&self, st: &State, wi: usize, ti: usize) {
        let (cols, rows) = self.config.window_size;
        let mut rects = Vec::new();
        st.windows[wi].tabs[ti]
            .root
            .layout(0, 0, cols, rows, &mut rects);
        for (id, _, _, c, r) in rects {
            if let Some(s) = st.sessions.get(&id) {
                s.resize(r, c);
            }
        }
    }

    fn size_in_tab(&self, root: &Node, id: &str) -> (u16, u16) {
        let (cols, rows) = self.config.window_size;
        let mut rects = Vec::new();
        root.layout(0, 0, cols, rows, &mut rects);
        rects
            .into_iter()
            .find(|r| r.0 == id)
            .map(|(_, _, _, c, r)| (r, c))
            .unwrap_or((rows, cols))
    }

    /// Starts a session program; the pty reader and the output pump run until it exits.
    fn spawn_session(
        &self,
        id: &str,
        termid: &str,
        launch: &Launch,
        rows: u16,
        cols: u16,
    ) -> Result<Arc<Session>, String> {
        let custom = prop_value(&launch.props, "Custom Command").as_deref() == Some("Yes");
        let command = if custom {
            prop_value(&launch.props, "Command")
        } else {
            None
        }
        .or_else(|| launch.command.clone());
        let argv = match command {
            Some(c) if !c.trim().is_empty() => vec!["/bin/sh".to_owned(), "-c".to_owned(), c],
            _ => self.config.shell.clone(),
        };
        let cwd = if prop_value(&launch.props, "Custom Directory").as_deref() == Some("Yes") {
            prop_value(&launch.props, "Working Directory").map(Into::into)
        } else {
            None
        }
        .or_else(|| self.config.cwd.clone());
        let mut env = vec![
            ("TERM".to_owned(), "xterm-256color".to_owned()),
            ("COLORTERM".to_owned(), "truecolor".to_owned()),
            ("TERM_PROGRAM".to_owned(), "iTerm.app".to_owned()),
            ("LC_TERMINAL".to_owned(), "iTerm2".to_owned()),
            ("ITERM_PROFILE".to_owned(), "Default".to_owned()),
            ("ITERM_SESSION_ID".to_owned(), termid.to_owned()),
        ];
        env.extend(self.config.env.iter().cloned());
        let spec = Spawn {
            argv,
            cwd,
            env,
            rows,
            cols,
        };
        let (session, reader) = Session::spawn(id.to_owned(), &spec)?;
        self.start_pump(session.clone(), reader);
        Ok(session)
    }

    fn start_pump(&self, session: Arc<Session>, mut reader: Box<dyn Read + Send>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let spawned = std::thread::Builder::new()
            .name(format!(
                "fake-iterm-pty-{}",
                &session.id[..8.min(session.id.len())]
            ))
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a pty reader thread");
        }
        let me = self.me.clone();
        self.runtime.spawn(async move {
            while let Some(mut data) = rx.recv().await {
                while data.len() < (1 << 20) {
                    match rx.try_recv() {
                        Ok(more) => data.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                let Some(core) = me.upgrade() else { break };
                core.on_output(&session, &data);
            }
            session.exited();
            if let Some(core) = me.upgrade() {
                core.on_exit(&session.id);
            }
        });
    }

    /// Output arrived (from the pty, or injected).
    pub fn on_output(&self, session: &Arc<Session>, data: &[u8]) {
        let events = session.feed(data);
        self.publish(Event::ScreenUpdate(session.id.clone()));
        for ev in events {
            match ev {
                SessionEvent::Prompt(p) => self.publish(Event::Prompt(Arc::new(*p))),
                SessionEvent::UserVar { name, json } => {
                    self.publish(Event::Variable(Arc::new(
                        proto::VariableChangedNotification {
                            scope: Some(proto::VariableScope::Session as i32),
                            identifier: Some(session.id.clone()),
                            name: Some(name),
                            json_new_value: Some(json),
                        },
                    )));
                }
                SessionEvent::TmuxStarted => {
                    let id = {
                        let mut st = lock(&self.state);
                        st.next_tmux += 1;
                        let id = format!("fake-tmux-{}", st.next_tmux);
                        st.tmux.push(TmuxConn {
                            id: id.clone(),
                            gateway: session.id.clone(),
                            affinity: None,
                        });
                        id
                    };
                    tracing::debug!(connection = %id, "tmux integration started");
                }
                SessionEvent::TmuxSessionChanged(sid) => {
                    // Like iTerm2: once tmux says which session the client is attached to, list
                    // that session's windows and open each one.
                    if let Some(c) = self.conn_of_gateway(&session.id) {
                        self.mirror_windows(
                            &c,
                            &format!(
                                "list-windows -t {sid} -F '#{{window_id}} #{{window_layout}}'"
                            ),
                        );
                    }
                }
                SessionEvent::TmuxEnded => self.end_tmux_for_gateway(&session.id),
                SessionEvent::TmuxWindowAdd(w) => {
                    if let Some(c) = self.conn_of_gateway(&session.id) {
                        self.mirror_windows(
                            &c,
                            &format!(
                                "display-message -p -t {w} '#{{window_id}} #{{window_layout}}'"
                            ),
                        );
                    }
                }
                SessionEvent::TmuxLayout(w, layout) => {
                    if let Some(c) = self.conn_of_gateway(&session.id) {
                        self.ensure_tmux_window(&c, &w, &layout);
                    }
                }
                SessionEvent::TmuxWindowClose(w) => {
                    if let Some(c) = self.conn_of_gateway(&session.id) {
                        self.close_tmux_window(&c, &w);
                    }
                }
                SessionEvent::TmuxOutput(pane, bytes) => {
                    let target = {
                        let st = lock(&self.state);
                        let conn = st
                            .tmux
                            .iter()
                            .find(|c| c.gateway == session.id)
                            .map(|c| c.id.clone());
                        conn.and_then(|c| {
                            st.sessions
                                .values()
                                .find(|s| {
                                    s.tmux_pane
                                        .as_ref()
                                        .is_some_and(|(sc, sp)| *sc == c && *sp == pane)
                                })
                                .cloned()
                        })
                    };
                    if let Some(t) = target {
                        self.on_output(&t, &bytes);
                    }
                }
            }
        }
    }

    fn conn_of_gateway(&self, gateway: &str) -> Option<String> {
        lock(&self.state)
            .tmux
            .iter()
            .find(|c| c.gateway == gateway)
            .map(|c| c.id.clone())
    }

    /// Runs `query` (one `WINDOW_ID LAYOUT` line per window) over the connection in the
    /// background and shows every window it names.
    fn mirror_windows(&self, connection: &str, query: &str) {
        let Some(me) = self.me.upgrade() else { return };
        let connection = connection.to_owned();
        let query = query.to_owned();
        self.runtime.spawn(async move {
            match me.tmux_command(&connection, &query).await {
                Ok(Some(out)) => {
                    for line in out.lines() {
                        if let Some((w, layout)) = line.trim().split_once(' ')
                            && w.starts_with('@')
                        {
                            me.ensure_tmux_window(&connection, w, layout);
                        }
                    }
                }
                other => tracing::debug!(?other, "listing tmux windows"),
            }
        });
    }

    /// Shows tmux window `window` (`@N`) of a connection with `layout`: a new iTerm2 window
    /// (or a tab in the pending affinity window) the first time, else its panes brought in line
    /// (new panes get sessions, gone panes' sessions end).
    pub fn ensure_tmux_window(&self, connection: &str, window: &str, layout: &str) {
        let Some(cell) = parse_tmux_layout(layout) else {
            tracing::debug!(layout, "unparsable tmux layout");
            return;
        };
        let number = window.trim_start_matches('@').to_owned();
        let mut panes = Vec::new();
        cell.panes(&mut panes);
        let mut st = lock(&self.state);
        let Some(gateway) = st
            .tmux
            .iter()
            .find(|c| c.id == connection)
            .and_then(|c| st.sessions.get(&c.gateway).cloned())
        else {
            return;
        };
        let place = st.windows.iter().enumerate().find_map(|(wi, w)| {
            w.tabs
                .iter()
                .position(|t| {
                    t.tmux_connection_id.as_deref() == Some(connection)
                        && t.tmux_window_id.as_deref() == Some(number.as_str())
                })
                .map(|ti| (wi, ti))
        });
        let mut old: Vec<String> = Vec::new();
        if let Some((wi, ti)) = place {
            st.windows[wi].tabs[ti].root.sessions(&mut old);
        }
        let mut session_of: HashMap<String, String> = HashMap::new();
        for id in &old {
            if let Some(s) = st.sessions.get(id)
                && let Some((_, p)) = &s.tmux_pane
            {
                session_of.insert(p.clone(), id.clone());
            }
        }
        let (cols, rows) = self.config.window_size;
        let mut created = Vec::new();
        for p in &panes {
            if session_of.contains_key(p) {
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string().to_uppercase();
            let s = Session::tmux_mirror(id.clone(), connection, p, &gateway, rows, cols);
            st.sessions.insert(id.clone(), s);
            session_of.insert(p.clone(), id.clone());
            created.push(id);
        }
        let gone: Vec<String> = old
            .iter()
            .filter(|id| {
                !session_of
                    .iter()
                    .any(|(p, s)| s == *id && panes.contains(p))
            })
            .cloned()
            .collect();
        let mut root = cell.to_node(&session_of);
        if matches!(root, Node::Leaf(_)) {
            root = Node::Split {
                vertical: false,
                children: vec![root],
            };
        }
        let first = panes
            .first()
            .and_then(|p| session_of.get(p))
            .cloned()
            .unwrap_or_default();
        let (wi, ti) = match place {
            Some((wi, ti)) => {
                let tab = &mut st.windows[wi].tabs[ti];
                tab.root = root;
                if !panes
                    .iter()
                    .any(|p| session_of.get(p) == Some(&tab.active_session))
                {
                    tab.active_session = first;
                }
                (wi, ti)
            }
            None => {
                let affinity = st
                    .tmux
                    .iter_mut()
                    .find(|c| c.id == connection)
                    .and_then(|c| c.affinity.take());
                let wi = match affinity.and_then(|a| st.window_index(&a)) {
                    Some(wi) => wi,
                    None => {
                        st.next_window_number += 1;
                        let number = st.next_window_number;
                        st.windows.push(WindowM {
                            id: format!("pty-{}", uuid::Uuid::new_v4().to_string().to_uppercase()),
                            number,
                            tabs: Vec::new(),
                            selected_tab: None,
                            vars: BTreeMap::new(),
                        });
                        st.windows.len() - 1
                    }
                };
                let tab_id = st.new_tab_id();
                st.windows[wi].tabs.push(TabM {
                    id: tab_id.clone(),
                    root,
                    active_session: first,
                    vars: BTreeMap::new(),
                    tmux_window_id: Some(number.clone()),
                    tmux_connection_id: Some(connection.to_owned()),
                });
                if st.windows[wi].selected_tab.is_none() {
                    st.windows[wi].selected_tab = Some(tab_id);
                }
                (wi, st.windows[wi].tabs.len() - 1)
            }
        };
        for id in &gone {
            if let Some(s) = st.sessions.remove(id) {
                let _ = s.kill();
            }
        }
        self.relayout_tab(&st, wi, ti);
        for id in created {
            self.publish(Event::NewSession(id));
        }
        for id in gone {
            self.publish(Event::TerminateSession(id));
        }
        self.publish_layout_locked(&st);
    }

    /// Closes the tab showing tmux window `window` (`@N`) of a connection.
    fn close_tmux_window(&self, connection: &str, window: &str) {
        let number = window.trim_start_matches('@');
        let mut st = lock(&self.state);
        let mut doomed = Vec::new();
        for w in &st.windows {
            for t in &w.tabs {
                if t.tmux_connection_id.as_deref() == Some(connection)
                    && t.tmux_window_id.as_deref() == Some(number)
                {
                    t.root.sessions(&mut doomed);
                }
            }
        }
        let mut changed = false;
        for id in doomed {
            if self.remove_locked(&mut st, &id) {
                self.publish(Event::TerminateSession(id));
                changed = true;
            }
        }
        if changed {
            self.publish_layout_locked(&st);
        }
    }

    /// The program of a session exited by itself: iTerm2 closes the session.
    fn on_exit(&self, id: &str) {
        self.end_tmux_for_gateway(id);
        let mut st = lock(&self.state);
        if self.remove_locked(&mut st, id) {
            self.publish(Event::TerminateSession(id.to_owned()));
            self.publish_layout_locked(&st);
        }
    }

    /// Drops a tmux connection and closes the tabs showing its windows.
    pub fn end_tmux_for_gateway(&self, gateway: &str) {
        let mut st = lock(&self.state);
        if self.end_tmux_locked(&mut st, gateway) {
            self.publish_layout_locked(&st);
        }
    }

    /// [`Self::end_tmux_for_gateway`] under the lock; returns whether sessions went (the caller
    /// publishes the layout).
    fn end_tmux_locked(&self, st: &mut State, gateway: &str) -> bool {
        let Some(pos) = st.tmux.iter().position(|c| c.gateway == gateway) else {
            return false;
        };
        let conn = st.tmux.remove(pos);
        if let Some(s) = st.sessions.get(gateway) {
            lock(&s.inner).tmux.end();
        }
        let mut doomed = Vec::new();
        for w in &st.windows {
            for t in &w.tabs {
                if t.tmux_connection_id.as_deref() == Some(conn.id.as_str()) {
                    t.root.sessions(&mut doomed);
                }
            }
        }
        let mut changed = false;
        for id in doomed {
            if self.remove_locked(st, &id) {
                self.publish(Event::TerminateSession(id));
                changed = true;
            }
        }
        changed
    }

    /// Removes a session from the model and kills it. Returns whether it was there. A gateway
    /// takes its tmux connection with it (its `tmux -CC` client dies), and that connection's
    /// windows close, as in iTerm2.
    fn remove_locked(&self, st: &mut State, id: &str) -> bool {
        if !st.sessions.contains_key(id) {
            return false;
        }
        self.end_tmux_locked(st, id);
        let Some(session) = st.sessions.remove(id) else {
            return false;
        };
        let _ = session.kill();
        st.tmux.retain(|c| c.gateway != id);
        if let Some((wi, ti)) = st.locate(id) {
            let tab = &mut st.windows[wi].tabs[ti];
            tab.root.remove(id);
            if tab.root.is_empty() {
                let tab_id = tab.id.clone();
                let w = &mut st.windows[wi];
                w.tabs.remove(ti);
                if w.selected_tab.as_deref() == Some(tab_id.as_str()) {
                    w.selected_tab = w
                        .tabs
                        .get(ti.min(w.tabs.len().saturating_sub(1)))
                        .map(|t| t.id.clone());
                }
                if w.tabs.is_empty() {
                    let wid = w.id.clone();
                    st.windows.remove(wi);
                    if st.key_window.as_deref() == Some(wid.as_str()) {
                        st.key_window = st.windows.last().map(|w| w.id.clone());
                    }
                }
            } else {
                if tab.active_session == id {
                    let mut ids = Vec::new();
                    tab.root.sessions(&mut ids);
                    tab.active_session = ids.into_iter().next().unwrap_or_default();
                }
                self.relayout_tab(st, wi, ti);
            }
        }
        true
    }

    fn focus_events_for(st: &State, wi: usize) -> Vec<proto::FocusChangedNotification> {
        use proto::focus_changed_notification::{Event as F, Window, window::WindowStatus};
        let w = &st.windows[wi];
        let mut out = vec![proto::FocusChangedNotification {
            event: Some(F::Window(Window {
                window_status: Some(WindowStatus::TerminalWindowBecameKey as i32),
                window_id: Some(w.id.clone()),
            })),
        }];
        if let Some(tab) = &w.selected_tab {
            out.push(proto::FocusChangedNotification {
                event: Some(F::SelectedTab(tab.clone())),
            });
            if let Some(t) = w.tabs.iter().find(|t| &t.id == tab) {
                out.push(proto::FocusChangedNotification {
                    event: Some(F::Session(t.active_session.clone())),
                });
            }
        }
        out
    }

    /// The full focus state.
    pub fn focus(&self) -> proto::FocusResponse {
        use proto::focus_changed_notification::{Event as F, Window, window::WindowStatus};
        let st = lock(&self.state);
        let mut notifications = vec![proto::FocusChangedNotification {
            event: Some(F::ApplicationActive(st.app_active)),
        }];
        for w in &st.windows {
            let key = st.key_window.as_deref() == Some(w.id.as_str());
            notifications.push(proto::FocusChangedNotification {
                event: Some(F::Window(Window {
                    window_status: Some(if key {
                        WindowStatus::TerminalWindowIsCurrent as i32
                    } else {
                        WindowStatus::TerminalWindowResignedKey as i32
                    }),
                    window_id: Some(w.id.clone()),
                })),
            });
            if let Some(tab) = &w.selected_tab {
                notifications.push(proto::FocusChangedNotification {
                    event: Some(F::SelectedTab(tab.clone())),
                });
            }
            for t in &w.tabs {
                notifications.push(proto::FocusChangedNotification {
                    event: Some(F::Session(t.active_session.clone())),
                });
            }
        }
        proto::FocusResponse { notifications }
    }

    fn profile_ok(name: Option<&str>) -> bool {
        matches!(name, None | Some("") | Some("Default"))
    }

    /// CreateTab.
    pub fn create_tab(&self, req: proto::CreateTabRequest) -> proto::CreateTabResponse {
        use proto::create_tab_response::Status;
        let fail = |s: Status| proto::CreateTabResponse {
            status: Some(s as i32),
            ..Default::default()
        };
        if !Self::profile_ok(req.profile_name.as_deref()) {
            return fail(Status::InvalidProfileName);
        }
        let launch = Launch {
            command: req.command.clone(),
            props: req.custom_profile_properties.clone(),
        };
        match self.add_tab(
            req.window_id.as_deref(),
            req.tab_index,
            req.select_tab.unwrap_or(true),
            &launch,
            None,
        ) {
            Ok((window_id, tab_id, session_id)) => proto::CreateTabResponse {
                status: Some(Status::Ok as i32),
                window_id: Some(window_id),
                tab_id: tab_id.parse().ok(),
                session_id: Some(session_id),
            },
            Err(s) => fail(s),
        }
    }

    /// Adds a tab (and a window when `window_id` is `None`); returns (window, tab, session).
    pub fn add_tab(
        &self,
        window_id: Option<&str>,
        tab_index: Option<u32>,
        select: bool,
        launch: &Launch,
        tmux: Option<(String, String)>,
    ) -> Result<(String, String, String), proto::create_tab_response::Status> {
        use proto::create_tab_response::Status;
        let mut st = lock(&self.state);
        if st.shut_down {
            return Err(Status::InvalidWindowId);
        }
        let wi = match window_id {
            Some(w) => st.window_index(w).ok_or(Status::InvalidWindowId)?,
            None => {
                st.next_window_number += 1;
                let number = st.next_window_number;
                st.windows.push(WindowM {
                    id: format!("pty-{}", uuid::Uuid::new_v4().to_string().to_uppercase()),
                    number,
                    tabs: Vec::new(),
                    selected_tab: None,
                    vars: BTreeMap::new(),
                });
                st.windows.len() - 1
            }
        };
        let index = match tab_index {
            Some(i) if i as usize > st.windows[wi].tabs.len() => {
                if window_id.is_none() {
                    st.windows.pop();
                    st.next_window_number -= 1;
                }
                return Err(Status::InvalidTabIndex);
            }
            Some(i) => i as usize,
            None => st.windows[wi].tabs.len(),
        };
        let session_id = uuid::Uuid::new_v4().to_string().to_uppercase();
        let tab_id = st.new_tab_id();
        let (cols, rows) = self.config.window_size;
        let termid = format!("w{wi}t{index}p0:{session_id}");
        let session = match self.spawn_session(&session_id, &termid, launch, rows, cols) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a session");
                if window_id.is_none() {
                    st.windows.pop();
                    st.next_window_number -= 1;
                }
                return Err(Status::InvalidProfileName);
            }
        };
        st.sessions.insert(session_id.clone(), session);
        let (tmux_connection_id, tmux_window_id) = match tmux {
            Some((c, w)) => (Some(c), Some(w)),
            None => (None, None),
        };
        st.windows[wi].tabs.insert(
            index,
            TabM {
                id: tab_id.clone(),
                root: Node::Split {
                    vertical: false,
                    children: vec![Node::Leaf(session_id.clone())],
                },
                active_session: session_id.clone(),
                vars: BTreeMap::new(),
                tmux_window_id,
                tmux_connection_id,
            },
        );
        let new_window = window_id.is_none();
        if select || new_window || st.windows[wi].selected_tab.is_none() {
            st.windows[wi].selected_tab = Some(tab_id.clone());
        }
        if select || new_window {
            st.key_window = Some(st.windows[wi].id.clone());
        }
        let window = st.windows[wi].id.clone();
        self.publish(Event::NewSession(session_id.clone()));
        self.publish_layout_locked(&st);
        if select || new_window {
            for f in Self::focus_events_for(&st, wi) {
                self.publish(Event::Focus(Arc::new(f)));
            }
        }
        Ok((window, tab_id, session_id))
    }

    /// SplitPane.
    pub fn split(&self, req: proto::SplitPaneRequest) -> proto::SplitPaneResponse {
        use proto::split_pane_response::Status;
        let fail = |s: Status| proto::SplitPaneResponse {
            status: Some(s as i32),
            session_id: Vec::new(),
        };
        if !Self::profile_ok(req.profile_name.as_deref()) {
            return fail(Status::InvalidProfileName);
        }
        let mut st = lock(&self.state);
        let Some(target) = req
            .session
            .as_deref()
            .and_then(|s| st.resolve(s).into_iter().next())
        else {
            return fail(Status::SessionNotFound);
        };
        let Some((wi, ti)) = st.locate(&target.id) else {
            return fail(Status::SessionNotFound);
        };
        let vertical = req.split_direction.unwrap_or(0)
            == proto::split_pane_request::SplitDirection::Vertical as i32;
        let before = req.before.unwrap_or(false);
        // A session showing a tmux pane: iTerm2 splits through tmux; the new pane arrives with
        // the layout-change notification, so the reply names no session.
        if let Some((conn, pane)) = target.tmux_pane.clone() {
            let cmd = format!(
                "split-window -t {pane} {}{}",
                if vertical { "-h" } else { "-v" },
                if before { " -b" } else { "" }
            );
            if let Some(me) = self.me.upgrade() {
                self.runtime.spawn(async move {
                    if let Err(e) = me.tmux_command(&conn, &cmd).await {
                        tracing::debug!(status = e.as_str_name(), "tmux split failed");
                    }
                });
            }
            return proto::SplitPaneResponse {
                status: Some(Status::Ok as i32),
                session_id: Vec::new(),
            };
        }
        let new_id = uuid::Uuid::new_v4().to_string().to_uppercase();
        if !st.windows[wi].tabs[ti]
            .root
            .insert_beside(&target.id, &new_id, vertical, before)
        {
            return fail(Status::CannotSplit);
        }
        let (rows, cols) = self.size_in_tab(&st.windows[wi].tabs[ti].root, &new_id);
        if rows < 2 || cols < 2 {
            st.windows[wi].tabs[ti].root.remove(&new_id);
            return fail(Status::CannotSplit);
        }
        let launch = Launch {
            command: None,
            props: req.custom_profile_properties.clone(),
        };
        let termid = st.termid(&target.id).unwrap_or_default();
        let termid = format!("{}:{new_id}", termid.split(':').next().unwrap_or("w0t0p0"));
        match self.spawn_session(&new_id, &termid, &launch, rows, cols) {
            Ok(s) => {
                st.sessions.insert(new_id.clone(), s);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a session");
                st.windows[wi].tabs[ti].root.remove(&new_id);
                return fail(Status::MalformedCustomProfileProperty);
            }
        }
        self.relayout_tab(&st, wi, ti);
        let tmux_tab = st.windows[wi].tabs[ti].tmux_window_id.is_some();
        self.publish(Event::NewSession(new_id.clone()));
        self.publish_layout_locked(&st);
        proto::SplitPaneResponse {
            status: Some(Status::Ok as i32),
            // In a tmux window iTerm2 splits through tmux and cannot name the session yet.
            session_id: if tmux_tab { Vec::new() } else { vec![new_id] },
        }
    }

    /// Close.
    pub fn close(&self, req: proto::CloseRequest) -> proto::CloseResponse {
        use proto::close_request::Target;
        use proto::close_response::Status;
        let mut st = lock(&self.state);
        let mut statuses = Vec::new();
        let mut closed = Vec::new();
        let groups: Vec<Option<Vec<String>>> = match req.target {
            Some(Target::Sessions(s)) => s
                .session_ids
                .iter()
                .map(|id| st.sessions.contains_key(id).then(|| vec![id.clone()]))
                .collect(),
            Some(Target::Tabs(t)) => t
                .tab_ids
                .iter()
                .map(|id| {
                    st.locate_tab(id).map(|(wi, ti)| {
                        let mut v = Vec::new();
                        st.windows[wi].tabs[ti].root.sessions(&mut v);
                        v
                    })
                })
                .collect(),
            Some(Target::Windows(w)) => w
                .window_ids
                .iter()
                .map(|id| {
                    st.window_index(id).map(|wi| {
                        let mut v = Vec::new();
                        for t in &st.windows[wi].tabs {
                            t.root.sessions(&mut v);
                        }
                        v
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        for group in groups {
            match group {
                None => statuses.push(Status::NotFound as i32),
                Some(ids) => {
                    for id in ids {
                        if self.remove_locked(&mut st, &id) {
                            closed.push(id);
                        }
                    }
                    statuses.push(Status::Ok as i32);
                }
            }
        }
        for id in &closed {
            self.publish(Event::TerminateSession(id.clone()));
        }
        if !closed.is_empty() {
            self.publish_layout_locked(&st);
        }
        proto::CloseResponse { statuses }
    }

    /// Activate.
    pub fn activate(&self, req: proto::ActivateRequest) -> proto::ActivateResponse {
        use proto::activate_request::Identifier;
        use proto::activate_response::Status;
        use proto::focus_changed_notification::Event as F;
        let mut st = lock(&self.state);
        let target = match &req.identifier {
            Some(Identifier::SessionId(s)) => {
                let resolved = st.resolve(s).into_iter().next().map(|s| s.id.clone());
                resolved.and_then(|id| st.locate(&id).map(|(wi, ti)| (wi, Some(ti), Some(id))))
            }
            Some(Identifier::TabId(t)) => st.locate_tab(t).map(|(wi, ti)| (wi, Some(ti), None)),
            Some(Identifier::WindowId(w)) => st.window_index(w).map(|wi| (wi, None, None)),
            None if req.activate_app.is_some() => None,
            None => return status(Status::BadIdentifier),
        };
        fn status(s: Status) -> proto::ActivateResponse {
            proto::ActivateResponse {
                status: Some(s as i32),
            }
        }
        if req.identifier.is_some() && target.is_none() {
            return status(Status::BadIdentifier);
        }
        if let Some((wi, ti, session)) = target {
            if req.select_session.unwrap_or(false)
                && let (Some(ti), Some(id)) = (ti, session)
            {
                st.windows[wi].tabs[ti].active_session = id;
            }
            if req.select_tab.unwrap_or(false)
                && let Some(ti) = ti
            {
                st.windows[wi].selected_tab = Some(st.windows[wi].tabs[ti].id.clone());
            }
            if req.order_window_front.unwrap_or(false) {
                st.key_window = Some(st.windows[wi].id.clone());
            }
            for f in Self::focus_events_for(&st, wi) {
                self.publish(Event::Focus(Arc::new(f)));
            }
        }
        if req.activate_app.is_some() {
            st.app_active = true;
            self.publish(Event::Focus(Arc::new(proto::FocusChangedNotification {
                event: Some(F::ApplicationActive(true)),
            })));
        }
        status(Status::Ok)
    }

    /// Variable.
    pub fn variables(&self, req: proto::VariableRequest) -> proto::VariableResponse {
        use proto::variable_request::Scope;
        use proto::variable_response::Status;
        let fail = |s: Status| proto::VariableResponse {
            status: Some(s as i32),
            values: Vec::new(),
        };
        if req
            .set
            .iter()
            .any(|s| !s.name.as_deref().unwrap_or("").starts_with("user."))
        {
            return fail(Status::InvalidName);
        }
        let mut st = lock(&self.state);
        let mut changes = Vec::new();
        let values = match &req.scope {
            None => return fail(Status::MissingScope),
            Some(Scope::SessionId(id)) => {
                let sessions = st.resolve(id);
                if sessions.is_empty() {
                    return fail(Status::SessionNotFound);
                }
                if id == "all" && !req.get.is_empty() {
                    return fail(Status::MultiGetDisallowed);
                }
                for s in &sessions {
                    let mut inner = lock(&s.inner);
                    for set in &req.set {
                        let name = set.name.clone().unwrap_or_default();
                        let value = set.value.clone().unwrap_or_else(|| "null".into());
                        if inner.vars.get(&name) != Some(&value) {
                            inner.vars.insert(name.clone(), value.clone());
                            changes.push((
                                proto::VariableScope::Session,
                                s.id.clone(),
                                name,
                                value,
                            ));
                        }
                    }
                }
                let first = &sessions[0];
                req.get
                    .iter()
                    .map(|n| self.session_var(&st, first, n))
                    .collect()
            }
            Some(Scope::TabId(id)) => {
                let Some((wi, ti)) = st.locate_tab(id) else {
                    return fail(Status::TabNotFound);
                };
                for set in &req.set {
                    let name = set.name.clone().unwrap_or_default();
                    let value = set.value.clone().unwrap_or_else(|| "null".into());
                    let vars = &mut st.windows[wi].tabs[ti].vars;
                    if vars.get(&name) != Some(&value) {
                        vars.insert(name.clone(), value.clone());
                        changes.push((proto::VariableScope::Tab, id.clone(), name, value));
                    }
                }
                req.get
                    .iter()
                    .map(|n| Self::tab_var(&st, wi, ti, n))
                    .collect()
            }
            Some(Scope::WindowId(id)) => {
                let wi = if id == "active" {
                    st.key_window.as_ref().and_then(|k| st.window_index(k))
                } else {
                    st.window_index(id)
                };
                let Some(wi) = wi else {
                    return fail(Status::WindowNotFound);
                };
                let wid = st.windows[wi].id.clone();
                for set in &req.set {
                    let name = set.name.clone().unwrap_or_default();
                    let value = set.value.clone().unwrap_or_else(|| "null".into());
                    let vars = &mut st.windows[wi].vars;
                    if vars.get(&name) != Some(&value) {
                        vars.insert(name.clone(), value.clone());
                        changes.push((proto::VariableScope::Window, wid.clone(), name, value));
                    }
                }
                req.get
                    .iter()
                    .map(|n| Self::window_var(&st, wi, n))
                    .collect()
            }
            Some(Scope::App(_)) => {
                for set in &req.set {
                    let name = set.name.clone().unwrap_or_default();
                    let value = set.value.clone().unwrap_or_else(|| "null".into());
                    if st.app_vars.get(&name) != Some(&value) {
                        st.app_vars.insert(name.clone(), value.clone());
                        changes.push((proto::VariableScope::App, String::new(), name, value));
                    }
                }
                req.get.iter().map(|n| Self::app_var(&st, n)).collect()
            }
        };
        drop(st);
        for (scope, identifier, name, value) in changes {
            self.publish(Event::Variable(Arc::new(
                proto::VariableChangedNotification {
                    scope: Some(scope as i32),
                    identifier: Some(identifier),
                    name: Some(name),
                    json_new_value: Some(value),
                },
            )));
        }
        proto::VariableResponse {
            status: Some(Status::Ok as i32),
            values,
        }
    }

    fn session_var(&self, st: &State, s: &Session, name: &str) -> String {
        use serde_json::Value;
        let inner = lock(&s.inner);
        if let Some(v) = inner.vars.get(name) {
            return v.clone();
        }
        let (rows, cols) = inner.term.size();
        let title = inner.title.clone().unwrap_or_else(|| default_title(s));
        let v = match name {
            "id" => Value::from(s.id.clone()),
            "termid" => Value::from(st.termid(&s.id).unwrap_or_default()),
            "name" | "autoName" | "terminalWindowName" | "terminalIconName" => Value::from(title),
            "columns" => Value::from(cols),
            "rows" => Value::from(rows),
            "tty" => Value::from(s.tty.clone()),
            "pid" => s.pid.map(Value::from).unwrap_or(Value::Null),
            "path" => inner.cwd.clone().map(Value::from).unwrap_or(Value::Null),
            "profileName" => Value::from("Default"),
            "commandLine" => Value::from(s.command.clone()),
            // tmux integration, as iTerm2 documents it: unset without it, "gateway" for the
            // session running `tmux -CC`, "client" for one showing a tmux pane (whose number is
            // `tmuxWindowPane`).
            "tmuxRole" => {
                if st.tmux.iter().any(|c| c.gateway == s.id) {
                    Value::from("gateway")
                } else if s.tmux_pane.is_some() {
                    Value::from("client")
                } else {
                    Value::Null
                }
            }
            "tmuxWindowPane" => s
                .tmux_pane
                .as_ref()
                .and_then(|(_, p)| p.trim_start_matches('%').parse::<u64>().ok())
                .map(Value::from)
                .unwrap_or(Value::Null),
            "tab.id" => st
                .locate(&s.id)
                .map(|(wi, ti)| Value::from(st.windows[wi].tabs[ti].id.clone()))
                .unwrap_or(Value::Null),
            "window.id" | "tab.window.id" => st
                .locate(&s.id)
                .map(|(wi, _)| Value::from(st.windows[wi].id.clone()))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        v.to_string()
    }

    fn tab_var(st: &State, wi: usize, ti: usize, name: &str) -> String {
        use serde_json::Value;
        let t = &st.windows[wi].tabs[ti];
        if let Some(v) = t.vars.get(name) {
            return v.clone();
        }
        match name {
            "id" => Value::from(t.id.clone()),
            "currentSession" | "currentSession.id" => Value::from(t.active_session.clone()),
            "window" | "window.id" => Value::from(st.windows[wi].id.clone()),
            "tmuxWindow" => t
                .tmux_window_id
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
        .to_string()
    }

    fn window_var(st: &State, wi: usize, name: &str) -> String {
        use serde_json::Value;
        let w = &st.windows[wi];
        if let Some(v) = w.vars.get(name) {
            return v.clone();
        }
        match name {
            "id" => Value::from(w.id.clone()),
            "number" => Value::from(w.number),
            "currentTab" | "currentTab.id" => w
                .selected_tab
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
        .to_string()
    }

    fn app_var(st: &State, name: &str) -> String {
        use serde_json::Value;
        if let Some(v) = st.app_vars.get(name) {
            return v.clone();
        }
        match name {
            "pid" => Value::from(std::process::id()),
            "effectiveTheme" => Value::from("dark"),
            "currentWindow" | "currentWindow.id" => st
                .key_window
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
        .to_string()
    }

    /// GetPrompt.
    pub fn get_prompt(&self, req: &proto::GetPromptRequest) -> proto::GetPromptResponse {
        use proto::get_prompt_response::Status;
        let fail = |s: Status| proto::GetPromptResponse {
            status: Some(s as i32),
            ..Default::default()
        };
        let session = {
            let st = lock(&self.state);
            req.session
                .as_deref()
                .and_then(|s| st.resolve(s).into_iter().next())
        };
        let Some(session) = session else {
            return fail(Status::SessionNotFound);
        };
        let inner = lock(&session.inner);
        let cursor = inner.term.cursor();
        let record = match &req.unique_prompt_id {
            Some(id) => inner.prompts.iter().find(|p| &p.id == id),
            None => inner.prompts.last(),
        };
        match record {
            Some(p) => p.to_proto(cursor),
            None => fail(Status::PromptUnavailable),
        }
    }

    /// ListPrompts.
    pub fn list_prompts(&self, req: &proto::ListPromptsRequest) -> proto::ListPromptsResponse {
        use proto::list_prompts_response::Status;
        let session = {
            let st = lock(&self.state);
            req.session
                .as_deref()
                .and_then(|s| st.resolve(s).into_iter().next())
        };
        let Some(session) = session else {
            return proto::ListPromptsResponse {
                status: Some(Status::SessionNotFound as i32),
                unique_prompt_id: Vec::new(),
            };
        };
        let inner = lock(&session.inner);
        let ids: Vec<String> = inner.prompts.iter().map(|p| p.id.clone()).collect();
        let start = req
            .first_unique_id
            .as_ref()
            .and_then(|f| ids.iter().position(|i| i == f))
            .unwrap_or(0);
        let end = req
            .last_unique_id
            .as_ref()
            .and_then(|l| ids.iter().position(|i| i == l))
            .map(|e| e + 1)
            .unwrap_or(ids.len());
        proto::ListPromptsResponse {
            status: Some(Status::Ok as i32),
            unique_prompt_id: ids.get(start..end.max(start)).unwrap_or_default().to_vec(),
        }
    }

    /// SetProfileProperty.
    pub fn set_profile_property(
        &self,
        req: proto::SetProfilePropertyRequest,
    ) -> proto::SetProfilePropertyResponse {
        use proto::set_profile_property_request::Target;
        use proto::set_profile_property_response::Status;
        let reply = |s: Status| proto::SetProfilePropertyResponse {
            status: Some(s as i32),
        };
        let mut pairs: Vec<(String, String)> = req
            .assignments
            .iter()
            .filter_map(|a| Some((a.key.clone()?, a.json_value.clone()?)))
            .collect();
        if let (Some(k), Some(v)) = (&req.key, &req.json_value) {
            pairs.push((k.clone(), v.clone()));
        }
        if pairs.is_empty()
            || pairs
                .iter()
                .any(|(_, v)| serde_json::from_str::<serde_json::Value>(v).is_err())
        {
            return reply(Status::RequestMalformed);
        }
        match req.target {
            Some(Target::Session(id)) => {
                let sessions = lock(&self.state).resolve(&id);
                if sessions.is_empty() {
                    return reply(Status::SessionNotFound);
                }
                for s in sessions {
                    let mut inner = lock(&s.inner);
                    for (k, v) in &pairs {
                        inner.profile.insert(k.clone(), v.clone());
                        if k == "Name"
                            && let Ok(serde_json::Value::String(name)) = serde_json::from_str(v)
                        {
                            inner.title = Some(name);
                        }
                    }
                }
                reply(Status::Ok)
            }
            Some(Target::GuidList(g)) => {
                if g.guids.iter().all(|id| id == DEFAULT_PROFILE_GUID) {
                    reply(Status::Ok)
                } else {
                    reply(Status::BadGuid)
                }
            }
            None => reply(Status::RequestMalformed),
        }
    }

    /// Writes to sessions (SendText).
    pub fn sessions_for(&self, id: &str) -> Vec<Arc<Session>> {
        lock(&self.state).resolve(id)
    }

    /// The gateway session of a tmux connection.
    pub fn tmux_gateway(&self, connection_id: &str) -> Option<Arc<Session>> {
        let st = lock(&self.state);
        let conn = st.tmux.iter().find(|c| c.id == connection_id)?;
        st.sessions.get(&conn.gateway).cloned()
    }

    pub fn tmux_connections(&self) -> Vec<(String, String)> {
        lock(&self.state)
            .tmux
            .iter()
            .map(|c| (c.id.clone(), c.gateway.clone()))
            .collect()
    }

    /// Runs a command on a tmux gateway; `None` output means tmux answered `%error`.
    pub async fn tmux_command(
        &self,
        connection_id: &str,
        command: &str,
    ) -> Result<Option<String>, proto::tmux_response::Status> {
        use proto::tmux_response::Status;
        let gateway = self
            .tmux_gateway(connection_id)
            .ok_or(Status::InvalidConnectionId)?;
        let rx = {
            let g = gateway.clone();
            let cmd = command.to_owned();
            tokio::task::spawn_blocking(move || g.tmux_command(&cmd))
                .await
                .map_err(|_| Status::InvalidRequest)?
                .map_err(|_| Status::InvalidConnectionId)?
        };
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(Ok(out))) => Ok(Some(out)),
            Ok(Ok(Err(_))) => Ok(None),
            _ => Err(Status::InvalidRequest),
        }
    }

    /// Creates a tmux window through the gateway and shows it (in the `affinity` window when
    /// given, else in a new window); returns its tab.
    pub async fn tmux_create_window(
        &self,
        connection_id: &str,
        affinity: Option<&str>,
    ) -> Result<String, proto::tmux_response::Status> {
        use proto::tmux_response::Status;
        {
            let mut st = lock(&self.state);
            let valid = affinity
                .filter(|a| st.window_index(a).is_some())
                .map(str::to_owned);
            if let Some(c) = st.tmux.iter_mut().find(|c| c.id == connection_id) {
                c.affinity = valid;
            }
        }
        let out = self
            .tmux_command(
                connection_id,
                "new-window -P -F '#{window_id} #{window_layout}'",
            )
            .await?
            .ok_or(Status::InvalidRequest)?;
        let (window, layout) = out
            .lines()
            .find_map(|l| l.trim().split_once(' ').filter(|(w, _)| w.starts_with('@')))
            .ok_or(Status::InvalidRequest)?;
        self.ensure_tmux_window(connection_id, window, layout);
        let number = window.trim_start_matches('@');
        let st = lock(&self.state);
        st.windows
            .iter()
            .flat_map(|w| w.tabs.iter())
            .find(|t| {
                t.tmux_connection_id.as_deref() == Some(connection_id)
                    && t.tmux_window_id.as_deref() == Some(number)
            })
            .map(|t| t.id.clone())
            .ok_or(Status::InvalidRequest)
    }

    /// The tmux connection the active session belongs to (as gateway or tmux tab).
    pub fn active_tmux_connection(&self) -> Option<String> {
        let st = lock(&self.state);
        let active = st.active_session()?;
        st.tmux_conn_for_session(&active).map(|c| c.id.clone())
    }

    /// Kills every session (shutdown); returns the threads reaping them.
    pub fn shutdown(&self) -> Vec<std::thread::JoinHandle<()>> {
        let sessions: Vec<Arc<Session>> = {
            let mut st = lock(&self.state);
            st.shut_down = true;
            st.windows.clear();
            st.tmux.clear();
            st.sessions.drain().map(|(_, s)| s).collect()
        };
        sessions.iter().filter_map(|s| s.kill()).collect()
    }

    /// Feeds bytes to a session as if its program printed them (Inject).
    pub fn inject(&self, session: &Arc<Session>, data: &[u8]) {
        self.on_output(session, data);
    }
}

/// GUID of the fake's only profile.
pub(crate) const DEFAULT_PROFILE_GUID: &str = "B0F9B2F8-0000-4000-8000-7E4D100FA4E0";

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &Node) -> Vec<String> {
        let mut v = Vec::new();
        n.sessions(&mut v);
        v
    }

    #[test]
    fn tmux_layouts_parse_into_trees() {
        assert_eq!(
            parse_tmux_layout("bb62,80x24,0,0,3"),
            Some(TmuxCell::Pane("%3".into()))
        );
        let l =
            parse_tmux_layout("b25d,80x24,0,0{40x24,0,0,1,39x24,41,0[39x12,41,0,2,39x11,41,13,4]}")
                .expect("layout");
        let mut panes = Vec::new();
        l.panes(&mut panes);
        assert_eq!(panes, ["%1", "%2", "%4"]);
        assert!(matches!(
            l,
            TmuxCell::Split {
                side_by_side: true,
                ..
            }
        ));
        assert_eq!(parse_tmux_layout("b25d,80x24,0,0{40x24,0,0,1"), None);
        assert_eq!(parse_tmux_layout("junk"), None);
    }

    #[test]
    fn split_tree_insert_and_remove() {
        let mut root = Node::Split {
            vertical: false,
            children: vec![Node::Leaf("a".into())],
        };
        assert!(root.insert_beside("a", "b", true, false));
        assert!(matches!(&root, Node::Split { vertical: true, children } if children.len() == 2));
        assert!(root.insert_beside("b", "c", false, true));
        assert_eq!(ids(&root), vec!["a", "c", "b"]);
        let mut rects = Vec::new();
        root.layout(0, 0, 81, 24, &mut rects);
        assert_eq!(rects[0], ("a".to_owned(), 0, 0, 40, 24));
        assert_eq!(rects[1], ("c".to_owned(), 41, 0, 40, 11));
        assert_eq!(rects[2], ("b".to_owned(), 41, 12, 40, 12));
        assert!(root.remove("c"));
        assert_eq!(ids(&root), vec!["a", "b"]);
        assert!(
            matches!(&root, Node::Split { children, .. } if matches!(children[1], Node::Leaf(_)))
        );
        assert!(root.remove("a") && root.remove("b"));
        assert!(root.is_empty());
    }
}
