//! termloom-bench: measures termloom against the floors (one spawned `tmux` per operation, one raw
//! `tmux -C` round trip) and against peer MCP servers, on a private tmux server it starts and kills
//! itself. Results print as Markdown (for BENCHMARKS.md) and are saved as JSON under target/bench/.
//!
//! Run: `cargo run --release -p termloom-bench -- all` (see BENCHMARKS.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod mcp;
mod peers;
mod remote;
mod scale;
mod stats;
mod tmux;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "termloom's benchmark harness")]
struct Cli {
    /// Timed iterations per measurement
    #[arg(long, default_value_t = 300, global = true)]
    iterations: usize,
    /// Untimed warm-up iterations
    #[arg(long, default_value_t = 20, global = true)]
    warmup: usize,
    /// The tokio runtime the measurements run on: `current` (one thread, as termloom-mcp and the
    /// CLI run) or `multi` (two workers, as many library users run)
    #[arg(long, default_value = "current", value_parser = ["current", "multi"], global = true)]
    runtime: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Control-mode round trip vs spawn-per-command, send+read, run end to end
    Tmux,
    /// termloom-mcp over stdio: tool-call latency, startup time, RSS
    Mcp,
    /// Peers side by side: termloom-mcp vs tmux-mcp-rs vs the floors (installs the peer into target/peers/)
    Peers,
    /// Scale: list vs pane count, 50 flooding sessions watched, search vs scrollback (SVG curves into docs/)
    Scale,
    /// A remote host over ssh (a real sshd on 127.0.0.1) against local: round trip, send, read, run
    Remote,
    /// Everything
    All,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = if cli.runtime == "multi" {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    let cfg = stats::Config {
        iterations: cli.iterations,
        warmup: cli.warmup,
    };
    rt.block_on(async {
        let mut sections = Vec::new();
        if matches!(cli.what, What::Tmux | What::All) {
            sections.push(tmux::run(&cfg).await?);
        }
        if matches!(cli.what, What::Mcp | What::All) {
            sections.push(mcp::run(&cfg).await?);
        }
        if matches!(cli.what, What::Peers | What::All) {
            sections.push(peers::run(&cfg).await?);
        }
        if matches!(cli.what, What::Scale | What::All) {
            sections.extend(scale::run(&cfg).await?);
        }
        if matches!(cli.what, What::Remote)
            || (matches!(cli.what, What::All) && termloom_tests::ssh::sshd_path().is_some())
        {
            sections.push(remote::run(&cfg).await?);
        } else if matches!(cli.what, What::All) {
            eprintln!(
                "remote section skipped: sshd is not installed (apt-get install openssh-server)"
            );
        }
        println!(
            "{}; tokio runtime: {}",
            stats::machine_note(),
            if cli.runtime == "multi" {
                "multi-thread, 2 workers"
            } else {
                "current-thread"
            }
        );
        for s in &sections {
            println!("{}", s.markdown());
        }
        stats::save(&sections)?;
        anyhow::Ok(())
    })
}
