//! Output streaming: one control client per watched workspace, routing `%output` by pane.
//!
//! tmux sends `%output` only for panes of the session a control client is attached to, so the hub
//! attaches one output client (`ignore-size`, `pause-after=5`) per workspace that has a watched
//! pane, and fans each pane's bytes out to its subscribers through a bounded broadcast channel: a
//! slow subscriber is told it lagged instead of stalling the others or growing memory. Taps
//! registered with [`OutputHub::tap`] run inline on the reader and see every byte (the session log
//! uses one). When a pane disappears its subscribers get `Closed { reason }`; when the server exits,
//! all do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use termloom_core::OutputEvent;
use tokio::sync::broadcast;

use crate::client::TmuxOptions;
use crate::command::Cmd;
use crate::control::parser::Event;
use crate::control::transport::Connection;
use crate::error::TmuxError;

/// Per-pane channel capacity, in output chunks.
pub const PANE_CAPACITY: usize = 2048;

/// A function that sees every output chunk of a pane, inline.
pub type Tap = Arc<dyn Fn(&[u8]) + Send + Sync>;

#[derive(Default)]
struct Routes {
    panes: HashMap<u32, broadcast::Sender<OutputEvent>>,
    taps: HashMap<u32, Vec<Tap>>,
    lines: HashMap<u32, LineCount>,
}

/// The newlines a pane printed while its workspace's output client received them.
#[derive(Default, Clone, Copy)]
struct LineCount {
    newlines: u64,
    /// Times tmux dropped this pane's output for the client (`%pause`): a count across one is
    /// short.
    gaps: u64,
}

struct Client {
    conn: Connection,
    routes: Arc<Mutex<Routes>>,
    workspace_id: String,
    /// Random, so that counts of two clients (or two processes) never compare.
    epoch: u64,
}

/// How many lines a pane has printed, as far as one output client saw: see
/// [`OutputHub::line_mark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMark {
    /// Marks compare only when their epochs are equal: the same client, with no output lost in
    /// between (no `%pause`, no silenced output turned back on).
    pub epoch: u64,
    /// Newlines seen.
    pub newlines: u64,
}

type Clients = tokio::sync::Mutex<HashMap<String, Arc<Client>>>;

/// The output clients of one tmux server.
pub struct OutputHub {
    opts: Arc<TmuxOptions>,
    clients: Arc<Clients>,
    /// How many times each workspace's output client had its output turned back on (by a run's
    /// check or by the watchdog); see [`OutputHub::restores`].
    restores: Arc<Mutex<HashMap<String, u64>>>,
}

/// What a client's tasks need of their hub to hand a pane over to another workspace's client,
/// without keeping the hub alive.
#[derive(Clone)]
struct HubRef {
    opts: Arc<TmuxOptions>,
    clients: Weak<Clients>,
    restores: Arc<Mutex<HashMap<String, u64>>>,
}

/// [`HubRef::client`]'s future: boxed, because a client's own tasks may connect another client
/// (a pane that moved), which makes the future's type refer to itself.
type ClientFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Arc<Client>, TmuxError>> + Send + 'a>,
>;

impl HubRef {
    /// The output client of workspace `workspace_id`, connected when there is none (or it died).
    fn client<'a>(&'a self, workspace_id: &'a str) -> ClientFuture<'a> {
        Box::pin(self.client_inner(workspace_id))
    }

    async fn client_inner(&self, workspace_id: &str) -> Result<Arc<Client>, TmuxError> {
        let clients = self
            .clients
            .upgrade()
            .ok_or_else(|| TmuxError::ConnectionLost("the output hub is gone".into()))?;
        let mut clients = clients.lock().await;
        if let Some(c) = clients.get(workspace_id)
            && c.conn.is_alive()
        {
            return Ok(c.clone());
        }
        clients.remove(workspace_id);
        let routes: Arc<Mutex<Routes>> = Arc::new(Mutex::new(Routes::default()));
        let weak: Weak<Mutex<Routes>> = Arc::downgrade(&routes);
        // %pause is handled here, inline, like the output it interrupts: the notification channel
        // can lag during a flood, and a pause missed there would leave the pane paused for good.
        let (paused_tx, mut paused_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let hook = Box::new(move |ev: &Event| {
            let Some(routes) = weak.upgrade() else { return };
            match ev {
                Event::Output { pane, data } | Event::ExtendedOutput { pane, data, .. } => {
                    let Ok(mut r) = routes.lock() else { return };
                    let newlines = data.iter().filter(|b| **b == b'\n').count() as u64;
                    r.lines.entry(*pane).or_default().newlines += newlines;
                    if let Some(taps) = r.taps.get(pane) {
                        for t in taps {
                            t(data);
                        }
                    }
                    if let Some(tx) = r.panes.get(pane) {
                        let _ = tx.send(OutputEvent::Output(data.clone()));
                    }
                }
                Event::Pause { pane } => {
                    // tmux dropped what it held for this client: tell the subscribers, resume.
                    if let Ok(mut r) = routes.lock() {
                        r.lines.entry(*pane).or_default().gaps += 1;
                        if let Some(tx) = r.panes.get(pane) {
                            let _ = tx.send(OutputEvent::Lagged(1));
                        }
                    }
                    let _ = paused_tx.send(*pane);
                }
                Event::Exit { reason } => {
                    close_all(&routes, reason.as_deref().unwrap_or("tmux server exited"));
                }
                _ => {}
            }
        });
        let conn =
            Connection::connect_with(&self.opts, true, Some(workspace_id), Some(hook)).await?;
        let client = Arc::new(Client {
            conn,
            routes,
            workspace_id: workspace_id.to_string(),
            epoch: uuid::Uuid::new_v4().as_u64_pair().0,
        });
        clients.insert(workspace_id.to_string(), client.clone());
        // Watch for panes that go away: a layout change or a closed window may mean a pane died.
        // Weak: the client (and its connection) goes when the hub lets it go, so that it leaves
        // tmux while the process can still do it under the attach gate.
        let watcher = Arc::downgrade(&client);
        let hub = self.clone();
        let mut events = client.conn.subscribe();
        tokio::spawn(async move {
            loop {
                let prune_now = match events.recv().await {
                    Ok(ev) => match ev.as_ref() {
                        Event::LayoutChange { .. }
                        | Event::WindowClose { .. }
                        | Event::UnlinkedWindowClose { .. }
                        | Event::SessionChanged { .. }
                        | Event::SessionsChanged => true,
                        Event::Exit { .. } => break,
                        _ => false,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if prune_now {
                    let Some(watcher) = watcher.upgrade() else {
                        break;
                    };
                    prune(&watcher, &hub).await;
                }
            }
        });
        // Resume paused panes at once (the hook above has told their subscribers).
        let resumer = Arc::downgrade(&client);
        tokio::spawn(async move {
            while let Some(pane) = paused_rx.recv().await {
                let Some(client) = resumer.upgrade() else {
                    break;
                };
                tracing::warn!(
                    pane = %format!("%{pane}"),
                    "tmux paused output: this client fell behind, output was dropped"
                );
                let args = vec![
                    "refresh-client".to_string(),
                    "-A".to_string(),
                    format!("%{pane}:continue"),
                ];
                let _ = client.conn.request_blocks(&args).await;
            }
        });
        // Session logs and monitors have no run to notice silenced output: check it now and then.
        // And panes whose process exited while tmux keeps them (remain-on-exit) send no more
        // output and no notification: their subscribers are told, each second.
        let checker = Arc::downgrade(&client);
        let ws = workspace_id.to_string();
        let restores = self.restores.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DEAD_CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let every = (OUTPUT_CHECK_EVERY.as_millis() / DEAD_CHECK_EVERY.as_millis()).max(1);
            let mut n: u128 = 0;
            let mut unsure = HashMap::new();
            loop {
                tick.tick().await;
                let Some(client) = checker.upgrade() else {
                    break;
                };
                if !client.conn.is_alive() {
                    break;
                }
                n += 1;
                if n.is_multiple_of(every) {
                    let _ = restore(&client.conn, &ws, &restores).await;
                }
                close_dead(&client, &mut unsure).await;
            }
        });
        Ok(client)
    }
}

/// How often an output client looks for dead panes among those it routes.
pub const DEAD_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Tells the subscribers (and taps) of every routed pane whose process has exited, tmux keeping
/// the dead pane (`remain-on-exit`), that its output has ended.
///
/// tmux marks a pane dead when its terminal closes, a moment before it has the exit status:
/// such a pane waits for the next look (three at most) to be reported with its status.
async fn close_dead(client: &Client, unsure: &mut HashMap<u32, u8>) {
    let routed = match client.routes.lock() {
        Ok(r) => !r.panes.is_empty() || !r.taps.is_empty(),
        Err(_) => false,
    };
    if !routed {
        return;
    }
    let args = Cmd::new("list-panes")
        .arg("-s")
        .opt("-t", &client.workspace_id)
        .opt(
            "-F",
            "#{pane_id} #{pane_dead} #{pane_dead_status}#{?pane_dead_signal,signal #{pane_dead_signal},}",
        )
        .into_args();
    let Ok(blocks) = client.conn.request_blocks(&args).await else {
        return;
    };
    let Some((true, body)) = blocks.first() else {
        return;
    };
    for line in body {
        let line = String::from_utf8_lossy(line);
        let mut f = line.split(' ');
        let (Some(id), Some("1")) = (f.next(), f.next()) else {
            continue;
        };
        let Some(p) = id.strip_prefix('%').and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let status = f.collect::<Vec<_>>().join(" ");
        let status = if status.is_empty() {
            let seen = unsure.entry(p).or_insert(0);
            *seen += 1;
            if *seen < 3 {
                continue;
            }
            "unknown".to_string()
        } else {
            status
        };
        unsure.remove(&p);
        let (tx, _taps) = match client.routes.lock() {
            Ok(mut r) => (r.panes.remove(&p), r.taps.remove(&p)),
            Err(_) => return,
        };
        if let Some(tx) = tx {
            let _ = tx.send(OutputEvent::Closed {
                reason: format!(
                    "the process of pane %{p} exited (status {status}); tmux keeps the dead pane (remain-on-exit)"
                ),
            });
        }
    }
}

fn close_all(routes: &Mutex<Routes>, reason: &str) {
    if let Ok(mut r) = routes.lock() {
        for (_, tx) in r.panes.drain() {
            let _ = tx.send(OutputEvent::Closed {
                reason: reason.to_string(),
            });
        }
        r.taps.clear();
    }
}

impl OutputHub {
    /// A hub for the server `opts` names; it connects per workspace on demand.
    pub fn new(opts: Arc<TmuxOptions>) -> Self {
        OutputHub {
            opts,
            clients: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            restores: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn client(&self, workspace_id: &str) -> Result<Arc<Client>, TmuxError> {
        self.hub_ref().client(workspace_id).await
    }

    fn hub_ref(&self) -> HubRef {
        HubRef {
            opts: self.opts.clone(),
            clients: Arc::downgrade(&self.clients),
            restores: self.restores.clone(),
        }
    }

    /// Makes sure the output client of workspace `workspace_id` still receives output, and turns
    /// its output back on when it does not. Returns whether it had to.
    ///
    /// tmux lets any client change another's flags: a `refresh-client -f no-output` sent by
    /// another program's control client before that client is attached lands on tmux's "best"
    /// client, which can be this one (seen with tmux 3.3a). tmux says nothing when that happens;
    /// the output just stops. The client asks about itself (a command from a control client runs
    /// with that client as the current one), so no client name is needed, local or over ssh.
    /// Nothing is done when the workspace has no output client.
    pub async fn restore_output(&self, workspace_id: &str) -> Result<bool, TmuxError> {
        let client = {
            let clients = self.clients.lock().await;
            match clients.get(workspace_id) {
                Some(c) if c.conn.is_alive() => c.clone(),
                _ => return Ok(false),
            }
        };
        restore(&client.conn, workspace_id, &self.restores).await
    }

    /// How many times the output of workspace `workspace_id` was turned back on so far, by
    /// whichever caller noticed first. A waiting run compares it with the count from before it
    /// typed: once it has moved, part of the run's output may be lost, its end mark with it, so
    /// the run consults the shell's state file on every later check.
    pub fn restores(&self, workspace_id: &str) -> u64 {
        self.restores
            .lock()
            .map(|r| r.get(workspace_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Whether the output of workspace `workspace_id` was turned back on since [`restores`]
    /// counted `before` (part of what its panes printed since then may be missing).
    ///
    /// [`restores`]: OutputHub::restores
    pub fn restored_since(&self, workspace_id: &str, before: u64) -> bool {
        self.restores(workspace_id) != before
    }

    /// Subscribes to the output of pane `pane` (`%N`) in workspace `workspace_id` (`$N`).
    pub async fn subscribe(
        &self,
        workspace_id: &str,
        pane: &str,
    ) -> Result<broadcast::Receiver<OutputEvent>, TmuxError> {
        let n = pane_number(pane)?;
        let client = self.client(workspace_id).await?;
        let mut r = client
            .routes
            .lock()
            .map_err(|_| TmuxError::ConnectionLost("output routes poisoned".into()))?;
        r.lines.entry(n).or_default();
        let tx = r
            .panes
            .entry(n)
            .or_insert_with(|| broadcast::channel(PANE_CAPACITY).0);
        Ok(tx.subscribe())
    }

    /// How many lines `pane` has printed while an output client of this process received its
    /// workspace's output; `None` when none does (or the hub is busy connecting one). Cursors
    /// keep a mark to tell, at the next read, how far the pane scrolled in between, which the
    /// text alone cannot tell once the scrollback is full and lines repeat.
    pub fn line_mark(&self, pane: &str) -> Option<LineMark> {
        let n = pane_number(pane).ok()?;
        let clients = self.clients.try_lock().ok()?;
        for c in clients.values().filter(|c| c.conn.is_alive()) {
            let Some(count) = c.routes.lock().ok()?.lines.get(&n).copied() else {
                continue;
            };
            let restores = self.restores(&c.workspace_id);
            let mix = |a: u64, b: u64| (a ^ b).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            return Some(LineMark {
                epoch: mix(mix(c.epoch, count.gaps), restores),
                newlines: count.newlines,
            });
        }
        None
    }

    /// Registers a function that sees every output chunk of `pane`, inline on the reader, when an
    /// output client of this process already receives that pane's output (no workspace needs to
    /// be known, nothing is connected). Returns whether one did.
    pub fn tap_routed(&self, pane: &str, tap: Tap) -> bool {
        let Ok(n) = pane_number(pane) else {
            return false;
        };
        let Ok(clients) = self.clients.try_lock() else {
            return false;
        };
        for c in clients.values().filter(|c| c.conn.is_alive()) {
            let Ok(mut r) = c.routes.lock() else {
                continue;
            };
            if r.lines.contains_key(&n) {
                r.taps.entry(n).or_default().push(tap);
                return true;
            }
        }
        false
    }

    /// Registers a function that sees every output chunk of `pane`, inline on the reader.
    pub async fn tap(&self, workspace_id: &str, pane: &str, tap: Tap) -> Result<(), TmuxError> {
        let n = pane_number(pane)?;
        let client = self.client(workspace_id).await?;
        let mut r = client
            .routes
            .lock()
            .map_err(|_| TmuxError::ConnectionLost("output routes poisoned".into()))?;
        r.lines.entry(n).or_default();
        r.taps.entry(n).or_default().push(tap);
        Ok(())
    }
}

/// How often an output client checks that its output is still on (see
/// [`OutputHub::restore_output`]; a waiting run checks every 500 ms on its own).
pub const OUTPUT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// [`OutputHub::restore_output`] on one client.
async fn restore(
    conn: &Connection,
    workspace_id: &str,
    restores: &Mutex<HashMap<String, u64>>,
) -> Result<bool, TmuxError> {
    let args = ["display-message", "-p", "#{client_flags}"].map(String::from);
    let blocks = conn.request_blocks(&args).await?;
    let flags = blocks
        .first()
        .and_then(|(_, lines)| lines.first())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    if !silenced(&flags) {
        return Ok(false);
    }
    tracing::warn!(
        workspace = workspace_id,
        "another tmux client turned off this output client's output (no-output): turning it back on; what the panes printed meanwhile is not in the stream"
    );
    let args = ["refresh-client", "-f", "!no-output"].map(String::from);
    conn.request_blocks(&args).await?;
    if let Ok(mut r) = restores.lock() {
        *r.entry(workspace_id.to_string()).or_default() += 1;
    }
    Ok(true)
}

/// Whether `#{client_flags}` (`attached,control-mode,no-output,…`) has `no-output`.
fn silenced(flags: &str) -> bool {
    flags.trim_end().split(',').any(|f| f == "no-output")
}

fn pane_number(pane: &str) -> Result<u32, TmuxError> {
    pane.trim_start_matches('%')
        .parse()
        .map_err(|_| TmuxError::Parse {
            line: pane.to_string(),
            field: "pane id".into(),
        })
}

/// The command that tells where pane `%N` lives now (see [`whereabouts`]): `list-panes -t`,
/// which fails for a pane that is gone, where `display-message` would answer for the client's
/// own pane instead.
pub(crate) fn whereabouts_cmd(pane: u32) -> Cmd {
    let sep = crate::format::SEP;
    Cmd::new("list-panes").opt("-t", format!("%{pane}")).opt(
        "-F",
        format!("#{{pane_id}}{sep}#{{session_id}}{sep}#{{session_name}}"),
    )
}

/// The workspace (`$N`) and its name that pane `%N` lives in, from the output of
/// [`whereabouts_cmd`] (a row per pane of its window: only the pane's own counts).
pub(crate) fn whereabouts<'a>(
    pane: u32,
    lines: impl IntoIterator<Item = &'a str>,
) -> Option<(String, String)> {
    let want = format!("%{pane}");
    lines.into_iter().find_map(|l| {
        let mut f = l.trim_end().splitn(3, crate::format::SEP);
        let (p, id, name) = (f.next()?, f.next()?, f.next()?);
        (p == want).then(|| (id.to_string(), name.to_string()))
    })
}

/// Ends the streams of panes that no longer exist in the client's session.
async fn prune(client: &Client, hub: &HubRef) {
    let watched: Vec<u32> = match client.routes.lock() {
        Ok(r) => r.panes.keys().chain(r.taps.keys()).copied().collect(),
        Err(_) => return,
    };
    if watched.is_empty() {
        return;
    }
    let args = vec![
        "list-panes".to_string(),
        "-s".to_string(),
        "-F".to_string(),
        "#{pane_id}".to_string(),
    ];
    let live: Vec<u32> = match client.conn.request_blocks(&args).await {
        Ok(blocks) => blocks
            .iter()
            .filter(|(ok, _)| *ok)
            .flat_map(|(_, body)| body.iter())
            .filter_map(|l| {
                String::from_utf8_lossy(l)
                    .trim()
                    .trim_start_matches('%')
                    .parse()
                    .ok()
            })
            .collect(),
        Err(_) => return,
    };
    let mut gone: Vec<u32> = watched.into_iter().filter(|p| !live.contains(p)).collect();
    gone.sort_unstable();
    gone.dedup();
    for p in gone {
        // A pane that left this workspace may live on in another (swap-pane, join-pane,
        // move-window): its subscribers follow it to that workspace's output client.
        let moved_to = match client
            .conn
            .request_blocks(&whereabouts_cmd(p).into_args())
            .await
        {
            Ok(blocks) => blocks
                .first()
                .filter(|(ok, _)| *ok)
                .and_then(|(_, body)| {
                    let lines: Vec<String> = body
                        .iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect();
                    whereabouts(p, lines.iter().map(String::as_str))
                })
                .filter(|(id, _)| *id != client.workspace_id),
            Err(_) => None,
        };
        let (tx, _taps) = match client.routes.lock() {
            Ok(mut r) => (r.panes.remove(&p), r.taps.remove(&p)),
            Err(_) => return,
        };
        // Taps (a run's tracker) see their pane go: a run finds where it went on its own.
        let Some(tx) = tx else { continue };
        let Some((ws, name)) = moved_to else {
            let _ = tx.send(OutputEvent::Closed {
                reason: format!("pane %{p} closed"),
            });
            continue;
        };
        let followed = match hub.client(&ws).await {
            Ok(to) => match to.routes.lock() {
                Ok(mut r) if !r.panes.contains_key(&p) => {
                    r.lines.entry(p).or_default();
                    // What the pane printed between the move and now is not in the stream.
                    let _ = tx.send(OutputEvent::Lagged(1));
                    r.panes.insert(p, tx.clone());
                    true
                }
                _ => false,
            },
            Err(e) => {
                tracing::debug!(pane = p, workspace = %ws, error = %e, "pane not followed");
                false
            }
        };
        if !followed {
            let _ = tx.send(OutputEvent::Closed {
                reason: format!(
                    "pane %{p} moved to workspace '{name}'; its output is followed no further here (watch it again)"
                ),
            });
        }
    }
}
