//! Scale, on a private tmux server: `list_sessions` latency against the pane count (up to 500),
//! 50 sessions watched while each prints as fast as it can (events per second, nothing lost, memory
//! bounded), and a regex search of up to 200,000 lines of scrollback. The two latency curves are
//! written as SVG into `docs/`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::json;
use termloom_core::{OutputEvent, SearchOpts, SessionSpec, Target, Terminal};
use termloom_tmux::{TmuxOptions, TmuxTerminal};
use tokio::sync::Mutex;

use crate::mcp::{RawMcp, rss_mib, termloom_mcp};
use crate::stats::{Config, Row, Section, measure};
use crate::tmux::{PrivateServer, RawControl};

/// Pane counts of the list curve.
const PANE_COUNTS: [usize; 5] = [10, 50, 100, 250, 500];
/// Scrollback sizes (lines) of the search curve.
const SCROLLBACK: [usize; 5] = [10_000, 25_000, 50_000, 100_000, 200_000];
/// Sessions in the watch test, and lines each prints.
const WATCHED: usize = 50;
const LINES_EACH: usize = 20_000;

/// One curve: a name and (x, p50 ms, p95 ms) points.
struct Series {
    name: String,
    points: Vec<(f64, f64, f64)>,
}

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Ends a private tmux server by its pid when dropped, in case `kill-server` did not (seen once
/// with 500 panes: the server outlived its deleted socket directory).
pub struct Reaper(Option<u32>);

impl Reaper {
    /// Reads the server's pid through a spawned `tmux display -p '#{pid}'`.
    pub fn new(srv: &PrivateServer) -> Reaper {
        let pid = srv
            .tmux()
            .args(["display", "-p", "#{pid}"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
        Reaper(pid)
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
        for signal in ["-TERM", "-KILL"] {
            if !alive() {
                return;
            }
            let _ = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
            for _ in 0..50 {
                if !alive() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn self_rss() -> Option<f64> {
    rss_mib(std::process::id())
}

/// Runs all three scale measurements.
pub async fn run(cfg: &Config) -> Result<Vec<Section>> {
    Ok(vec![
        list_curve(cfg).await?,
        watch(cfg).await?,
        search_curve(cfg).await?,
    ])
}

async fn list_curve(cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let term = TmuxTerminal::new(srv.options(true));
    let state = srv.dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    // Panes are made with a raw control client (cheap `cat` panes, 10 windows per session); the
    // first termloom listing after each batch tags them, untimed (measure's warm-up).
    let out = srv
        .tmux()
        .arg("-f")
        .arg(srv.config())
        .args([
            "new-session",
            "-d",
            "-s",
            "w0",
            "-x",
            "80",
            "-y",
            "24",
            "cat",
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "new-session w0");
    let _reaper = Reaper::new(&srv);
    let mut raw = RawControl::attach(&srv.socket, "=w0").await?;
    let (mut mcp, _) = RawMcp::start(&mut termloom_mcp(&srv, &state)?).await?;
    // One session made by termloom and read by its name at every size: a name goes through the
    // registry's hint, checked by id and name at the pane, so its cost does not grow with the
    // server.
    mcp.call(
        "create_session",
        json!({"name": "probe", "workspace": "probe"}),
    )
    .await?;
    let mut have = 2usize;
    let mut rows = Vec::new();
    let (mut s_tl, mut s_raw, mut s_mcp, mut s_name) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let it = Config {
        iterations: (cfg.iterations / 3).max(20),
        warmup: cfg.warmup.max(3),
    };
    let raw = Arc::new(Mutex::new(&mut raw));
    let mcp_c = Arc::new(Mutex::new(&mut mcp));
    for &count in &PANE_COUNTS {
        while have < count {
            let s = have / 10;
            let cmd = if have.is_multiple_of(10) {
                format!("new-session -d -s w{s} -x 80 -y 24 cat")
            } else {
                format!("new-window -d -t =w{s}: cat")
            };
            raw.lock().await.roundtrip(&cmd).await?;
            have += 1;
        }
        let n = term.list_sessions().await?.len();
        anyhow::ensure!(n == count, "expected {count} panes, termloom lists {n}");
        let tl = measure(
            &it,
            &format!("list_sessions, {count} panes: termloom (control mode)"),
            |_| async {
                let v = term.list_sessions().await?;
                anyhow::ensure!(v.len() == count);
                Ok(())
            },
        )
        .await?;
        let fl = {
            let raw = raw.clone();
            measure(&it, &format!("list, {count} panes: raw `tmux -C list-panes -a` (floor)"), move |_| {
                let raw = raw.clone();
                async move {
                    raw.lock()
                        .await
                        .roundtrip("list-panes -a -F '#{pane_id} #{session_name} #{window_index} #{pane_index} #{pane_pid} #{pane_current_command} #{@termloom_id}'")
                        .await?;
                    Ok(())
                }
            })
            .await?
        };
        let mc = {
            let mcp_c = mcp_c.clone();
            measure(
                &it,
                &format!("list_sessions, {count} panes: termloom-mcp"),
                move |_| {
                    let mcp_c = mcp_c.clone();
                    async move {
                        mcp_c.lock().await.call("list_sessions", json!({})).await?;
                        Ok(())
                    }
                },
            )
            .await?
        };
        let by_name = {
            let mcp_c = mcp_c.clone();
            measure(
                &it,
                &format!("read_output (20 lines) by name, {count} panes: termloom-mcp"),
                move |_| {
                    let mcp_c = mcp_c.clone();
                    async move {
                        let r = mcp_c
                            .lock()
                            .await
                            .call("read_output", json!({"session": "probe", "lines": 20}))
                            .await?;
                        anyhow::ensure!(
                            r.get("isError") != Some(&json!(true)),
                            "read_output by name failed: {r}"
                        );
                        Ok(())
                    }
                },
            )
            .await?
        };
        s_tl.push((count as f64, tl.p50_ms, tl.p95_ms));
        s_raw.push((count as f64, fl.p50_ms, fl.p95_ms));
        s_mcp.push((count as f64, mc.p50_ms, mc.p95_ms));
        s_name.push((count as f64, by_name.p50_ms, by_name.p95_ms));
        let mut tl = tl;
        tl.note = format!("{:.2}× the raw floor", tl.p50_ms / fl.p50_ms);
        rows.push(fl);
        rows.push(tl);
        rows.push(mc);
        rows.push(by_name);
    }
    let series = vec![
        Series {
            name: "termloom-mcp list_sessions".into(),
            points: s_mcp,
        },
        Series {
            name: "termloom list_sessions (library, control mode)".into(),
            points: s_tl,
        },
        Series {
            name: "raw tmux -C list-panes -a (floor)".into(),
            points: s_raw,
        },
        Series {
            name: "termloom-mcp read_output (20 lines) by name".into(),
            points: s_name,
        },
    ];
    let file = docs_dir().join("bench-list-vs-panes.svg");
    write_svg(
        &file,
        "list_sessions latency vs pane count (p50; bars: p95)",
        "panes",
        &series,
    )?;
    Ok(Section {
        title: "Scale: list sessions against pane count".into(),
        rows,
        facts: vec![("curve".into(), "docs/bench-list-vs-panes.svg".into())],
    })
}

/// Numbers printed by `seq`, in order, from a pane's raw output (a line that is only a number).
fn numbers(bytes: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(bytes)
        .split(['\n', '\r'])
        // Shell integration puts an OSC 133 mark (ending in BEL) before the first line.
        .filter_map(|l| l.rsplit('\x07').next()?.trim().parse::<u64>().ok())
        .collect()
}

/// Prints where a watched stream went wrong; true the first time.
fn complete_report(got: &[u64], want: &[u64]) -> bool {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if first {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        eprintln!(
            "watch: a stream had {} numbers (want {}); first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
    first
}

async fn watch(_cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let term = TmuxTerminal::new(srv.options(true));
    let mut sessions = Vec::new();
    for i in 0..WATCHED {
        let info = term
            .create_session(&SessionSpec {
                name: Some(format!("flood{i}")),
                workspace: Some(format!("flood{i}")),
                ..Default::default()
            })
            .await?;
        sessions.push(term.session(&Target::Native(info.native.clone())).await?);
    }
    let _reaper = Reaper::new(&srv);
    let rss_before = self_rss();
    let mut streams = Vec::new();
    for s in &sessions {
        streams.push(s.subscribe().await?);
    }
    // The shell prints E1NDND; the echoed command line shows E$((1))NDND, which does not match.
    let end = "E1NDND".to_string();
    let t = Instant::now();
    for s in &sessions {
        s.send_text(
            &format!("seq 1 {LINES_EACH}; echo E$((1))NDND\n"),
            Default::default(),
        )
        .await?;
    }
    // One task per stream: collect bytes until the end marker shows.
    let peak = Arc::new(std::sync::Mutex::new(0f64));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(r) = self_rss()
                    && let Ok(mut p) = peak.lock()
                {
                    *p = p.max(r);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for mut st in streams {
        let end = end.clone();
        tasks.push(tokio::spawn(async move {
            let mut bytes = Vec::new();
            let (mut events, mut lagged) = (0u64, 0u64);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                let ev = tokio::time::timeout_at(deadline, st.next()).await;
                match ev {
                    Ok(Some(OutputEvent::Output(b))) => {
                        events += 1;
                        bytes.extend_from_slice(&b);
                        if String::from_utf8_lossy(
                            &bytes[bytes.len().saturating_sub(b.len() + 16)..],
                        )
                        .contains(&end)
                        {
                            break;
                        }
                    }
                    Ok(Some(OutputEvent::Lagged(n))) => lagged += n,
                    Ok(Some(OutputEvent::Closed { .. })) | Ok(None) | Err(_) => break,
                }
            }
            (bytes, events, lagged, Instant::now())
        }));
    }
    let (mut events, mut lagged, mut bytes_total, mut complete) = (0u64, 0u64, 0usize, 0usize);
    let mut last = t;
    for task in tasks {
        let (bytes, ev, lg, done) = task.await.context("watch task")?;
        events += ev;
        lagged += lg;
        bytes_total += bytes.len();
        last = last.max(done);
        let got = numbers(&bytes);
        let want: Vec<u64> = (1..=LINES_EACH as u64).collect();
        if got == want {
            complete += 1;
        } else if complete_report(&got, &want) {
            let _ = std::fs::write("/tmp/tlb-watch-dump.bin", &bytes);
        }
    }
    sampler.abort();
    let secs = (last - t).as_secs_f64();
    let peak = peak.lock().map(|p| *p).unwrap_or(0.0);
    let rss_after = self_rss();
    drop(sessions);
    let facts = vec![
        (
            "sessions watched, each printing `seq 1 20000` at once".into(),
            format!("{WATCHED}"),
        ),
        (
            "complete and in order (every number 1..20000 seen once, in order)".into(),
            format!("{complete} of {WATCHED}; lagged events {lagged}"),
        ),
        (
            "throughput".into(),
            format!(
                "{events} output events, {:.1} MiB in {secs:.2} s: {:.0} events/s, {:.0} lines/s",
                bytes_total as f64 / 1048576.0,
                events as f64 / secs,
                (WATCHED * LINES_EACH) as f64 / secs
            ),
        ),
        (
            "bench process RSS (watcher side)".into(),
            format!(
                "before {:.1} MiB, peak {peak:.1} MiB, after {:.1} MiB",
                rss_before.unwrap_or(0.0),
                rss_after.unwrap_or(0.0)
            ),
        ),
    ];
    if complete != WATCHED || lagged != 0 {
        eprintln!("watch: output lost ({complete} of {WATCHED} complete, {lagged} lagged)");
    }
    Ok(Section {
        title: "Scale: 50 sessions watched while each prints as fast as it can".into(),
        rows: vec![],
        facts,
    })
}

async fn search_curve(cfg: &Config) -> Result<Section> {
    let srv = PrivateServer::new()?;
    let opts = TmuxOptions {
        history_limit: 250_000,
        ..srv.options(true)
    };
    let term = TmuxTerminal::new(opts);
    let info = term
        .create_session(&SessionSpec {
            name: Some("big".into()),
            workspace: Some("big".into()),
            ..Default::default()
        })
        .await?;
    let _reaper = Reaper::new(&srv);
    let pane = info.native.id.clone();
    let session = term.session(&Target::Native(info.native.clone())).await?;
    let mut raw = RawControl::attach(&srv.socket, "=big").await?;
    let it = Config {
        iterations: (cfg.iterations / 30).max(5),
        warmup: 2,
    };
    let mut printed = 0usize;
    let mut rows: Vec<Row> = Vec::new();
    let (mut s_tl, mut s_raw) = (Vec::new(), Vec::new());
    for &size in &SCROLLBACK {
        let from = printed + 1;
        session
            .send_text(
                &format!("seq {from} {size}; echo F$((1))ILLED{size}\n"),
                Default::default(),
            )
            .await?;
        printed = size;
        let want = format!("F1ILLED{size}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let tail = raw
                .roundtrip(&format!("capture-pane -p -t {pane} -S -5"))
                .await?;
            if tail.iter().any(|l| l.trim_end() == want) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "filling {size} lines timed out");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A number printed early: the whole scrollback is read and scanned.
        let pattern = "^4242$".to_string();
        let tl = measure(&it, &format!("search {size} lines: termloom"), |_| {
            let session = session.clone();
            let pattern = pattern.clone();
            async move {
                let r = session
                    .search(&SearchOpts {
                        pattern,
                        context: 1,
                        max_matches: None,
                        ignore_case: false,
                    })
                    .await?;
                anyhow::ensure!(r.matches.len() == 1, "{} matches", r.matches.len());
                anyhow::ensure!(
                    r.lines_searched as usize >= size,
                    "searched {}",
                    r.lines_searched
                );
                Ok(())
            }
        })
        .await?;
        let fl = {
            let raw = Arc::new(Mutex::new(&mut raw));
            let pane = pane.clone();
            measure(
                &it,
                &format!("capture all {size} lines: raw `tmux -C capture-pane -S -` (floor)"),
                move |_| {
                    let raw = raw.clone();
                    let pane = pane.clone();
                    async move {
                        let lines = raw
                            .lock()
                            .await
                            .roundtrip(&format!("capture-pane -p -t {pane} -S - -E -"))
                            .await?;
                        anyhow::ensure!(lines.len() >= size);
                        Ok(())
                    }
                },
            )
            .await?
        };
        s_tl.push((size as f64, tl.p50_ms, tl.p95_ms));
        s_raw.push((size as f64, fl.p50_ms, fl.p95_ms));
        let mut tl = tl;
        tl.note = format!("{:.2}× the raw capture floor", tl.p50_ms / fl.p50_ms);
        rows.push(fl);
        rows.push(tl);
    }
    let series = vec![
        Series {
            name: "termloom search (capture + regex)".into(),
            points: s_tl,
        },
        Series {
            name: "raw tmux -C capture-pane -S - (floor)".into(),
            points: s_raw,
        },
    ];
    write_svg(
        &docs_dir().join("bench-search-vs-scrollback.svg"),
        "search latency vs scrollback lines (p50; bars: p95)",
        "scrollback lines",
        &series,
    )?;
    Ok(Section {
        title: "Scale: regex search against scrollback size".into(),
        rows,
        facts: vec![("curve".into(), "docs/bench-search-vs-scrollback.svg".into())],
    })
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A small line chart: linear axes, one polyline per series with p50 points and p95 whiskers.
fn write_svg(file: &std::path::Path, title: &str, xlabel: &str, series: &[Series]) -> Result<()> {
    let (w, h) = (720.0f64, 420.0f64);
    let (l, r, t, b) = (70.0, 20.0, 40.0, 110.0);
    let xmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax_raw = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.2))
        .fold(0.001f64, f64::max);
    let ymax = nice_ceiling(ymax_raw);
    let px = |x: f64| l + x / xmax * (w - l - r);
    let py = |y: f64| h - b - y / ymax * (h - t - b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    // Grid and axis labels.
    for i in 0..=5 {
        let y = ymax * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            py(y) + 4.0,
            trim(y),
            py = py(y)
        );
    }
    for &(x, _, _) in series.first().map(|s| s.points.as_slice()).unwrap_or(&[]) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            h - b + 18.0,
            trim(x)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{l}" x2="{}" y1="{}" y2="{}" stroke="#000"/><line x1="{l}" x2="{l}" y1="{t}" y2="{}" stroke="#000"/>"##,
        w - r,
        h - b,
        h - b,
        h - b
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (l + w - r) / 2.0,
        h - b + 36.0,
        esc(xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">ms</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0
    );
    for (k, se) in series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &se.points {
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{c}" stroke-opacity="0.5"/><circle cx="{x:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {} → p50 {:.3} ms, p95 {:.3} ms</title></circle>"#,
                py(p.1),
                py(p.2),
                py(p.1),
                esc(&se.name),
                trim(p.0),
                p.1,
                p.2,
                x = px(p.0)
            );
        }
        let ly = h - b + 58.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{l}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            l + 24.0,
            l + 30.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, s).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn trim(v: f64) -> String {
    if v >= 1000.0 && v.fract() == 0.0 {
        if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
            return format!("{}k", v / 1000.0);
        }
        return format!("{v}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_raw_output() {
        let out = b"$ seq 1 3; echo E$((1))NDND\r\n\x1b[?2004l\r\x1b]133;C\x071\r\n2\r\n3\r\nE1NDND\r\n$ ";
        assert_eq!(numbers(out), vec![1, 2, 3]);
    }

    #[test]
    fn svg_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.svg");
        write_svg(
            &f,
            "t",
            "x",
            &[Series {
                name: "a<b".into(),
                points: vec![(10.0, 1.0, 2.0), (500.0, 3.0, 4.5)],
            }],
        )
        .unwrap();
        let s = std::fs::read_to_string(&f).unwrap();
        assert!(s.starts_with("<svg") && s.contains("a&lt;b") && s.ends_with("</svg>\n"));
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(trim(200000.0), "200k");
    }
}
