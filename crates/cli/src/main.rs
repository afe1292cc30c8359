//! `termloom`: drive real terminals from the command line.
//!
//! Thin: parse ([`args`]), run the command on a single-threaded tokio runtime ([`cmd`]), print
//! ([`output`]). Exit codes: 0 success, 1 failure (one line `termloom: <message>` on stderr),
//! 2 usage errors (clap's).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod args;
mod cmd;
mod output;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

fn run(cli: args::Cli) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        termloom::survive_file_size_limit();
        let code = cmd::run(cli).await;
        // What the command's connections leave behind (a control client leaving tmux under the
        // attach gate) finishes before the runtime ends.
        termloom_core::cleanup::settle(std::time::Duration::from_secs(3)).await;
        code
    })
}

fn clap_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// Prints an error as one line and picks the exit code.
fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(ce) = e.downcast_ref::<clap::Error>() {
        return clap_exit(ce);
    }
    // A reader that went away (`termloom ls | head -1`) is not a failure.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    // One line, whatever the message holds (names may contain newlines).
    output::stderr_line(format!("termloom: {}", output::one_line(&format!("{e:#}"))));
    ExitCode::from(1)
}

/// Warnings (a corrupt registry moved aside, a registry that cannot be written) go to stderr.
/// `TERMLOOM_LOG` (an env-filter such as `debug` or `termloom_tmux=trace`) shows more.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("TERMLOOM_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}
