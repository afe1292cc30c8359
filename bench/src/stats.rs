//! Timing, percentiles, and the report format.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

/// Benches that type text without Enter erase the shell's command line (untimed) every this
/// many calls: 50 × `: ping` is 300 characters, a long command line but a real one.
pub const CLEAR_EVERY: usize = 50;

/// How many times to measure.
pub struct Config {
    pub iterations: usize,
    pub warmup: usize,
}

/// One measured operation.
#[derive(Serialize, Clone)]
pub struct Row {
    pub name: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub n: usize,
    /// Free text: the ratio against a floor, a goal.
    pub note: String,
}

/// A titled table of rows plus extra facts (startup, RSS).
#[derive(Serialize)]
pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
    pub facts: Vec<(String, String)>,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\n### {}\n\n| operation | p50 ms | p95 ms | p99 ms | n | note |\n|---|---|---|---|---|---|\n",
            self.title
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {:.3} | {:.3} | {:.3} | {} | {} |\n",
                r.name, r.p50_ms, r.p95_ms, r.p99_ms, r.n, r.note
            ));
        }
        for (k, v) in &self.facts {
            s.push_str(&format!("\n- {k}: {v}"));
        }
        s.push('\n');
        s
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Times `f` `cfg.iterations` times after `cfg.warmup` untimed calls.
pub async fn measure<F, Fut>(cfg: &Config, name: &str, mut f: F) -> Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    measure_timed(cfg, name, move |i| {
        let fut = f(i);
        async move {
            let t = Instant::now();
            fut.await?;
            Ok(t.elapsed())
        }
    })
    .await
}

/// Like [`measure`], for an iteration that times itself: `f` returns the time of the measured
/// part, so that it can do untimed work around it (resetting what the operation left behind).
pub async fn measure_timed<F, Fut>(cfg: &Config, name: &str, mut f: F) -> Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Duration>>,
{
    for i in 0..cfg.warmup {
        f(i).await?;
    }
    let mut times = Vec::with_capacity(cfg.iterations);
    for i in 0..cfg.iterations {
        times.push(f(cfg.warmup + i).await?);
    }
    times.sort();
    Ok(Row {
        name: name.to_string(),
        p50_ms: pct(&times, 0.5),
        p95_ms: pct(&times, 0.95),
        p99_ms: pct(&times, 0.99),
        n: times.len(),
        note: String::new(),
    })
}

/// CPU and kernel, for the report.
pub fn machine_note() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let tmux = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "Machine: {cpu}, {cores} cores; {tmux}; measured {}",
        chrono_like_now()
    )
}

fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Writes every section as JSON to target/bench/results.json.
pub fn save(sections: &[Section]) -> Result<()> {
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/results.json",
        serde_json::to_string_pretty(sections)?,
    )?;
    Ok(())
}
