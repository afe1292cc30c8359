//! Commands that follow what a session does: run, status, watch, wait, integrate.
//!
//! `run`, `watch` and `wait` live as long as the command they follow, so they drive tmux through
//! its long-lived control-mode client ([`Ctx::control`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::json;
use termloom_core::text::{LineEvent, filter_lines, lines};
use termloom_core::{BusyState, RunOpts, compile_regex};

use super::{Ctx, command_line};
use crate::args::{RunArgs, TargetArgs, WaitArgs, WatchArgs};
use crate::output;

/// Exit code of a run still going at its timeout (as `timeout(1)`).
pub const EXIT_TIMED_OUT: u8 = 124;

/// Exit code after Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A command's exit code as a process exit code (the low 8 bits, as a shell reports it).
fn exit_code(code: i32) -> u8 {
    u8::try_from(code.rem_euclid(256)).unwrap_or(1)
}

pub async fn run(ctx: &mut Ctx, a: RunArgs) -> Result<ExitCode> {
    if let Some(p) = &a.prompt {
        compile_regex(p)?;
    }
    let command = command_line(&a.command)?.context("no command given after --")?;
    let opts = RunOpts {
        timeout: a.timeout,
        prompt: a.prompt.clone(),
        quiet: a.quiet_ms.map(Duration::from_millis),
        max_lines: a
            .max_lines
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        ..RunOpts::new(command)
    };
    ctx.control = true;
    let (_, s) = ctx.open(&a.target).await?;
    let r = s.run(&opts).await?;
    let code = if r.timed_out {
        EXIT_TIMED_OUT
    } else {
        r.exit_code.map_or(0, exit_code)
    };
    if ctx.json() {
        output::json(&json!({
            "exit_code": r.exit_code,
            "output": r.output,
            "timed_out": r.timed_out,
            "strategy": r.strategy,
            "duration_ms": r.duration_ms,
            "handle": r.handle,
            "truncated": r.truncated,
        }))?;
    } else {
        output::text(&r.output)?;
    }
    if r.timed_out {
        // The run's handle lives in this process only (the JSON still gives it): say what a
        // person can do instead.
        output::stderr_line(format!(
            "termloom: timed out after {}: the command is still running; `termloom status` tells when it ends, `termloom read` shows its output",
            seconds(a.timeout),
        ));
    }
    Ok(ExitCode::from(code))
}

pub async fn status(ctx: &mut Ctx, a: TargetArgs) -> Result<ExitCode> {
    let (_, s) = ctx.open(&a.target).await?;
    let st = s.status().await?;
    if ctx.json() {
        output::json(&json!({
            "state": st.state,
            "command": st.command,
            "last_exit_code": st.last_exit_code,
            "cwd": st.cwd,
            "shell_integration": st.shell_integration,
        }))?;
    } else {
        let state = match st.state {
            BusyState::Busy => "busy",
            BusyState::Idle => "idle",
        };
        let last = st
            .last_exit_code
            .map_or_else(|| "-".to_string(), |c| c.to_string());
        let cwd = st
            .cwd
            .as_deref()
            .map_or_else(|| "-".into(), output::one_line);
        output::text(&format!(
            "state: {state}\ncommand: {}\nlast_exit_code: {last}\ncwd: {cwd}\nshell_integration: {}\n",
            output::one_line(&st.command),
            st.shell_integration
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn watch(ctx: &mut Ctx, a: WatchArgs) -> Result<ExitCode> {
    let filters = a
        .filters
        .iter()
        .map(|f| compile_regex(f))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    ctx.control = true;
    let (_, s) = ctx.open(&a.target).await?;
    let stream = s.subscribe().await?;
    let mut events = Box::pin(filter_lines(lines(stream), filters));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let ev = tokio::select! {
            ev = events.next() => ev,
            _ = &mut interrupted => return Ok(ExitCode::from(EXIT_INTERRUPTED)),
        };
        match ev {
            Some(LineEvent::Line(l)) => output::line(l)?,
            Some(LineEvent::Lagged(n)) => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "termloom: lagged: missed {n} output events"
                );
            }
            Some(LineEvent::Closed(reason)) => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "termloom: stream closed: {}",
                    output::one_line(&reason)
                );
                return Ok(ExitCode::SUCCESS);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "termloom: stream closed");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

pub async fn wait(ctx: &mut Ctx, a: WaitArgs) -> Result<ExitCode> {
    let re = compile_regex(&a.pattern)?;
    ctx.control = true;
    let (_, s) = ctx.open(&a.target).await?;
    match s.wait_for(&re, a.timeout).await? {
        Some(line) => {
            output::line(line)?;
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "timed out after {} waiting for a line matching {:?}",
            seconds(a.timeout),
            a.pattern
        ),
    }
}

pub async fn integrate(ctx: &mut Ctx, a: TargetArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    s.install_integration().await?;
    if ctx.json() {
        output::json(&json!({ "session": info.id, "integrated": true }))?;
    } else {
        output::line(format!(
            "installed shell integration in {} ({})",
            info.id,
            output::one_line(&info.name)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
