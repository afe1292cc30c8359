//! Monitors: a task per `start_monitoring` that reads a session's output stream, keeps the lines
//! matching its filters in a bounded buffer until `stop_monitoring` collects them, and tells clients
//! subscribed to `terminal://{id}/output` that the output changed (at most every 200 ms).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use regex::Regex;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::SubscriptionSink;
use rmcp::{Peer, RoleServer};
use termloom_core::text::{self, LineEvent};
use termloom_core::{OutputStream, SessionId};

/// How often subscribers are told at most.
const NOTIFY_EVERY: Duration = Duration::from_millis(200);

/// Most monitors one server runs at once.
pub const MAX_MONITORS: usize = 64;

/// A monitor nobody started or collected for this long may go to make room for a new one (its
/// client is likely gone: an HTTP client that vanished leaves no other trace).
pub const MONITOR_IDLE: Duration = Duration::from_secs(600);

/// Most finished monitors kept for their last collection.
const MAX_FINISHED: usize = 4 * MAX_MONITORS;

/// The resource whose changes a monitor announces.
pub fn output_uri(session: SessionId) -> String {
    format!("terminal://{session}/output")
}

#[derive(Default)]
struct Buf {
    lines: VecDeque<String>,
    max: usize,
    dropped: u64,
    lagged: u64,
    closed: Option<String>,
}

struct Monitor {
    session: SessionId,
    buf: Arc<Mutex<Buf>>,
    task: tokio::task::JoinHandle<()>,
    /// Stopped by a collection that left lines waiting: forgotten once they are collected.
    stopped: bool,
    /// When it was started or last collected.
    touched: tokio::time::Instant,
}

impl Monitor {
    fn running(&self) -> bool {
        !self.stopped && !self.task.is_finished()
    }

    fn idle(&self, now: tokio::time::Instant) -> bool {
        now.duration_since(self.touched) >= MONITOR_IDLE
    }
}

/// What a collection returns.
pub struct Collected {
    /// The monitored session.
    pub session: SessionId,
    /// Lines since the last collection.
    pub lines: Vec<String>,
    /// Lines dropped for room.
    pub dropped: u64,
    /// Events missed.
    pub lagged: u64,
    /// Why the stream ended.
    pub closed: Option<String>,
    /// Whether the monitor still runs.
    pub running: bool,
    /// Lines left for the next collection: more than one result holds.
    pub waiting: usize,
}

/// About how many characters `line` takes in a JSON list of strings.
fn json_chars(line: &str) -> usize {
    line.chars()
        .map(|c| match c {
            '"' | '\\' => 2,
            c if (c as u32) < 0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
        + 3
}

/// Who is told when an output resource changes: clients that subscribed with
/// `resources/subscribe` (protocols before 2026-07-28), and open `subscriptions/listen` streams
/// (2026-07-28), each by the URIs it listens to.
#[derive(Default)]
struct Subscribers {
    peers: HashMap<String, Vec<Peer<RoleServer>>>,
    streams: Vec<(u64, Vec<String>, SubscriptionSink)>,
    next: u64,
}

/// Every monitor and resource subscription of one server.
#[derive(Default)]
pub struct Monitors {
    monitors: Mutex<HashMap<String, Monitor>>,
    subs: Arc<Mutex<Subscribers>>,
}

/// How many of `monitors` run.
fn count_running(monitors: &HashMap<String, Monitor>) -> usize {
    monitors.values().filter(|m| m.running()).count()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Monitors {
    /// Starts watching `stream` (the output of `session`); returns the monitor's id.
    pub fn start(
        &self,
        session: SessionId,
        stream: OutputStream,
        filters: Vec<Regex>,
        max_lines: usize,
    ) -> Result<String, String> {
        let mut monitors = lock(&self.monitors);
        let now = tokio::time::Instant::now();
        // A finished monitor waits for its collection (which says why its output ended), within
        // bounds; monitors left alone for long make room when room is short.
        let running = count_running(&monitors);
        let finished = monitors.len() - running;
        if running >= MAX_MONITORS || finished >= MAX_FINISHED {
            monitors.retain(|_, m| {
                let drop = m.idle(now) || (finished >= MAX_FINISHED && !m.running());
                if drop {
                    m.task.abort();
                }
                !drop
            });
        }
        if count_running(&monitors) >= MAX_MONITORS {
            return Err(format!(
                "{MAX_MONITORS} monitors are running already; stop one with stop_monitoring first (monitors nobody collected for {} minutes make room)",
                MONITOR_IDLE.as_secs() / 60
            ));
        }
        let id = format!("mon-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let buf = Arc::new(Mutex::new(Buf {
            max: max_lines.max(1),
            ..Buf::default()
        }));
        let subs = self.subs.clone();
        let uri = output_uri(session);
        let task_buf = buf.clone();
        let task = tokio::spawn(async move {
            // Filters look for what programs print: the echo of a typed `grep ERROR log` is no
            // ERROR line (as for wait_for). Without filters every line is kept, commands too.
            let mut lines = if filters.is_empty() {
                Box::pin(text::lines(stream))
                    as std::pin::Pin<Box<dyn futures_util::Stream<Item = LineEvent> + Send>>
            } else {
                Box::pin(text::filter_lines(text::output_lines(stream), filters))
            };
            let mut tick = tokio::time::interval(NOTIFY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut dirty = false;
            loop {
                tokio::select! {
                    ev = lines.next() => {
                        let mut b = lock(&task_buf);
                        match ev {
                            Some(LineEvent::Line(l)) => {
                                if b.lines.len() >= b.max {
                                    b.lines.pop_front();
                                    b.dropped += 1;
                                }
                                b.lines.push_back(l);
                                dirty = true;
                            }
                            Some(LineEvent::Lagged(n)) => b.lagged += n,
                            Some(LineEvent::Closed(reason)) => {
                                b.closed = Some(reason);
                                break;
                            }
                            None => {
                                b.closed.get_or_insert_with(|| "output stream ended".into());
                                break;
                            }
                        }
                    }
                    _ = tick.tick(), if dirty => {
                        dirty = false;
                        notify(&subs, &uri).await;
                    }
                }
            }
            notify(&subs, &uri).await;
        });
        monitors.insert(
            id.clone(),
            Monitor {
                session,
                buf,
                task,
                stopped: false,
                touched: now,
            },
        );
        Ok(id)
    }

    /// Takes the lines collected so far; stops the monitor unless `keep_running`.
    ///
    /// At most `budget` characters of lines (as JSON) are taken, oldest first, and at least one
    /// line; the rest wait for the next collection, also when the monitor is stopped: it is
    /// forgotten once nothing waits.
    pub fn collect(&self, id: &str, keep_running: bool, budget: usize) -> Option<Collected> {
        let mut monitors = lock(&self.monitors);
        let m = monitors.get_mut(id)?;
        m.touched = tokio::time::Instant::now();
        let (lines, waiting, dropped, lagged, closed) = {
            let mut b = lock(&m.buf);
            let mut used = 0;
            let take = b
                .lines
                .iter()
                .take_while(|l| {
                    used += json_chars(l);
                    used <= budget
                })
                .count()
                .max(1)
                .min(b.lines.len());
            let lines: Vec<String> = b.lines.drain(..take).collect();
            let out = (lines, b.lines.len(), b.dropped, b.lagged, b.closed.clone());
            b.dropped = 0;
            b.lagged = 0;
            out
        };
        let session = m.session;
        let mut running = !m.task.is_finished() && !m.stopped;
        if !keep_running || m.stopped {
            m.task.abort();
            m.stopped = true;
            running = false;
            if waiting == 0 {
                monitors.remove(id);
            }
        }
        Some(Collected {
            session,
            lines,
            dropped,
            lagged,
            closed,
            running,
            waiting,
        })
    }

    /// How many monitors run.
    pub fn running(&self) -> usize {
        count_running(&lock(&self.monitors))
    }

    /// Tells `peer` when `uri` changes.
    pub fn subscribe(&self, uri: &str, peer: Peer<RoleServer>) {
        let mut subs = lock(&self.subs);
        let v = subs.peers.entry(uri.to_string()).or_default();
        if !v.iter().any(|p| same_peer(p, &peer)) {
            v.push(peer);
        }
    }

    /// Stops telling `peer` about `uri`.
    pub fn unsubscribe(&self, uri: &str, peer: &Peer<RoleServer>) {
        let mut subs = lock(&self.subs);
        if let Some(v) = subs.peers.get_mut(uri) {
            v.retain(|p| !same_peer(p, peer));
            if v.is_empty() {
                subs.peers.remove(uri);
            }
        }
    }

    /// Tells a `subscriptions/listen` stream when any of `uris` changes, until [`Self::unlisten`]
    /// with the key returned.
    pub fn listen(&self, uris: Vec<String>, sink: SubscriptionSink) -> u64 {
        let mut subs = lock(&self.subs);
        subs.next += 1;
        let key = subs.next;
        subs.streams.push((key, uris, sink));
        key
    }

    /// Forgets the stream [`Self::listen`] returned `key` for.
    pub fn unlisten(&self, key: u64) {
        lock(&self.subs).streams.retain(|(k, _, _)| *k != key);
    }
}

/// Two handles on one connection share its handshake info.
fn same_peer(a: &Peer<RoleServer>, b: &Peer<RoleServer>) -> bool {
    match (a.peer_info(), b.peer_info()) {
        (Some(x), Some(y)) => Arc::ptr_eq(&x, &y),
        _ => false,
    }
}

async fn notify(subs: &Mutex<Subscribers>, uri: &str) {
    let (peers, streams): (Vec<Peer<RoleServer>>, Vec<SubscriptionSink>) = {
        let s = lock(subs);
        (
            s.peers.get(uri).cloned().unwrap_or_default(),
            s.streams
                .iter()
                .filter(|(_, uris, _)| uris.iter().any(|u| u == uri))
                .map(|(_, _, sink)| sink.clone())
                .collect(),
        )
    };
    let mut gone = false;
    for p in &peers {
        if p.is_transport_closed() {
            gone = true;
            continue;
        }
        if let Err(e) = p
            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
            .await
        {
            tracing::debug!(uri, error = %e, "resource update not delivered");
        }
    }
    for sink in &streams {
        if let Err(e) = sink.notify_resource_updated(uri).await {
            tracing::debug!(uri, error = %e, "resource update not delivered to a listen stream");
        }
    }
    if gone {
        let mut s = lock(subs);
        if let Some(v) = s.peers.get_mut(uri) {
            v.retain(|p| !p.is_transport_closed());
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for (_, m) in lock(&self.monitors).drain() {
            m.task.abort();
        }
    }
}
