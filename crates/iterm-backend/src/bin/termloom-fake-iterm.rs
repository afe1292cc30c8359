//! `termloom-fake-iterm`: serves a fake iTerm2 API on a unix socket.
//!
//! ```text
//! termloom-fake-iterm [--socket PATH] [--cookie C] [--key K] [--no-auth]
//!                     [--shell "PROGRAM ARGS…"] [--cwd DIR] [--size COLSxROWS]
//!                     [--protocol-version M.m] [--exit-on-stdin-eof]
//! ```
//!
//! Defaults: the socket is where the official client looks (`$HOME/Library/Application
//! Support/$IT2_SUITE/private/socket`), the cookie and key come from `ITERM2_COOKIE` and
//! `ITERM2_KEY` (random ones are made up when unset), sessions run `/bin/bash --norc
//! --noprofile`. Once listening it prints one JSON line to stdout:
//! `{"ready":true,"socket":…,"cookie":…,"key":…,"pid":…}`. It stops on SIGINT or SIGTERM (and,
//! with `--exit-on-stdin-eof`, when stdin closes), killing every session's program.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::path::PathBuf;
use std::process::ExitCode;

use termloom_iterm::connection::{COOKIE_ENV, KEY_ENV, default_socket_path};
use termloom_iterm::fake::{FakeConfig, FakeIterm, default_shell};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    config: FakeConfig,
    exit_on_stdin_eof: bool,
}

fn usage() -> &'static str {
    "usage: termloom-fake-iterm [--socket PATH] [--cookie C] [--key K] [--no-auth] \
     [--shell \"PROGRAM ARGS...\"] [--cwd DIR] [--size COLSxROWS] [--protocol-version M.m] \
     [--exit-on-stdin-eof]"
}

fn parse_args() -> Result<Args, String> {
    let mut socket: Option<PathBuf> = None;
    let mut cookie = std::env::var(COOKIE_ENV).ok().filter(|s| !s.is_empty());
    let mut key = std::env::var(KEY_ENV).ok().filter(|s| !s.is_empty());
    let mut no_auth = false;
    let mut shell = default_shell();
    let mut cwd = None;
    let mut size = (80u16, 24u16);
    let mut protocol_version = termloom_iterm::fake::DEFAULT_PROTOCOL_VERSION.to_owned();
    let mut exit_on_stdin_eof = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--cookie" => cookie = Some(value("--cookie")?),
            "--key" => key = Some(value("--key")?),
            "--no-auth" => no_auth = true,
            "--shell" => {
                shell = value("--shell")?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                if shell.is_empty() {
                    return Err("--shell is empty".into());
                }
            }
            "--cwd" => cwd = Some(PathBuf::from(value("--cwd")?)),
            "--size" => {
                let v = value("--size")?;
                let (c, r) = v
                    .split_once('x')
                    .ok_or_else(|| format!("--size wants COLSxROWS, got {v}"))?;
                let parse = |s: &str| s.parse::<u16>().ok().filter(|n| *n >= 2);
                size = match (parse(c), parse(r)) {
                    (Some(c), Some(r)) => (c, r),
                    _ => return Err(format!("--size wants COLSxROWS, got {v}")),
                };
            }
            "--protocol-version" => protocol_version = value("--protocol-version")?,
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    let socket = match socket {
        Some(s) => s,
        None => default_socket_path().map_err(|e| e.to_string())?,
    };
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let (cookie, key) = if no_auth {
        (None, None)
    } else {
        (
            Some(cookie.unwrap_or_else(random)),
            Some(key.unwrap_or_else(random)),
        )
    };
    Ok(Args {
        config: FakeConfig {
            socket_path: socket,
            cookie,
            key,
            shell,
            env: Vec::new(),
            cwd,
            window_size: size,
            protocol_version,
        },
        exit_on_stdin_eof,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeIterm::start(args.config.clone()).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "termloom-fake-iterm: cannot listen on {}: {e}",
                args.config.socket_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let ready = serde_json::json!({
        "ready": true,
        "socket": fake.socket_path().display().to_string(),
        "cookie": args.config.cookie,
        "key": args.config.key,
        "pid": std::process::id(),
    });
    println!("{ready}");
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("termloom-fake-iterm: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let stdin_closed = async {
        if !args.exit_on_stdin_eof {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = stdin_closed => {}
    }
    fake.shutdown().await;
    // Exit now: a blocking stdin read would otherwise hold the runtime's shutdown.
    std::process::exit(0)
}
