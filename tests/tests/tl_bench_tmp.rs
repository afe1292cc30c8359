//! Throwaway latency probe for run("echo X") (not committed).
use std::time::{Duration, Instant};
use termloom_core::{RunOpts, SessionSpec, Strategy, Terminal};
use termloom_tests::TmuxServer;
use termloom_tmux::{TmuxOptions, TmuxTerminal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_echo_latency() {
    let srv = TmuxServer::start();
    let shell = std::env::var("TL_SHELL").unwrap_or_else(|_| "/bin/bash --norc --noprofile".into());
    let t = TmuxTerminal::new(TmuxOptions {
        control: true,
        shell: Some(shell.split(' ').map(String::from).collect()),
        integration: std::env::var("TL_NOINT").is_err(),
        ..srv.options()
    });
    let info = t
        .create_session(&SessionSpec { name: Some("b".into()), workspace: Some("w".into()), ..Default::default() })
        .await
        .unwrap();
    let s = t.open(&info).await.unwrap();
    let n: usize = std::env::var("TL_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut times = Vec::new();
    let mut strategy = None;
    for i in 0..(n + 20) {
        let t0 = Instant::now();
        let r = s.run(&RunOpts { timeout: Duration::from_secs(10), ..RunOpts::new("echo X") }).await.unwrap();
        let d = t0.elapsed();
        assert_eq!(r.output, "X");
        assert_eq!(r.exit_code, Some(0));
        strategy = Some(r.strategy);
        if i >= 20 {
            times.push(d);
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "run(echo X) strategy={:?} n={} p10={:?} p50={:?} p90={:?} p99={:?}",
        strategy.unwrap(), times.len(), p(0.1), p(0.5), p(0.9), p(0.99)
    );
    let _ = Strategy::ShellIntegration;
}
