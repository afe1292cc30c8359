//! `termloom-mcp`: the MCP server binary. Parses the CLI's global options plus the server's safety
//! flags, builds the backend with `termloom::connect` (lazily: nothing is spawned until a tool needs
//! the terminal), and serves stdio, or streamable HTTP with `--http`. Logs go to stderr only.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use rmcp::ServiceExt;
use termloom::{GlobalOpts, connect_host, connect_with, host_allowed, stderr_line};
use termloom_core::{BackendKind, LogConfig, Loom, NativeId, SessionLogger, TerminalKey};
use termloom_mcp::audit::AUDIT_FILE;
use termloom_mcp::http::{HttpOptions, generate_token, parse_addr};
use termloom_mcp::{Config, Scope, TermloomServer, Tier, stdio};

/// termloom's MCP server: drive terminals (tmux, iTerm2) from an MCP client
#[derive(Debug, Parser)]
#[command(name = "termloom-mcp", version)]
struct Args {
    #[command(flatten)]
    global: GlobalOpts,
    /// Which tools are offered: read-only, write (adds creating and typing) or destructive (adds killing)
    #[arg(
        long,
        env = "TERMLOOM_MCP_TIER",
        default_value = "write",
        value_name = "read-only|write|destructive"
    )]
    tier: Tier,
    /// Which sessions may be written to: managed (created by termloom or tagged with `termloom tag`) or all
    #[arg(
        long,
        env = "TERMLOOM_MCP_SCOPE",
        default_value = "managed",
        value_name = "managed|all"
    )]
    scope: Scope,
    /// Cap on each tool result, in characters; longer results are cut with a note
    #[arg(
        long,
        env = "TERMLOOM_MCP_MAX_CHARS",
        default_value_t = termloom_mcp::DEFAULT_MAX_CHARS,
        value_name = "N"
    )]
    max_chars: usize,
    /// Serve streamable HTTP at ADDR (`127.0.0.1:8765`, `:8765`) instead of stdio; the endpoint is /mcp
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// With --http: allow listening on a non-loopback address and any Host header
    #[arg(long, requires = "http")]
    allow_remote: bool,
    /// With --http: the bearer token clients must send (default: a random one, printed to stderr)
    #[arg(
        long,
        env = "TERMLOOM_MCP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// With --http: a browser Origin to accept besides loopback ones (repeatable)
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Another tmux socket tools may reach with their `socket` parameter (repeatable)
    #[arg(long = "allow-socket", value_name = "PATH")]
    allow_socket: Vec<PathBuf>,
    /// An ssh host (pattern with * and ?) tools may reach with their `host` parameter (repeatable)
    #[arg(long = "allow-host", value_name = "PATTERN")]
    allow_host: Vec<String>,
    /// Keep no audit log (default: every tool call is appended to mcp-audit.jsonl in the state dir)
    #[arg(long)]
    no_audit: bool,
    /// Keep no session logs (default: every session a tool touches gets an append-only log of what
    /// was sent, its output and its lifecycle, plus a snapshot, under logs/ in the state dir)
    #[arg(long)]
    no_log: bool,
}

/// The session this process runs in, when it runs inside the terminal it drives.
fn own_session(loom: &Loom) -> Option<(TerminalKey, NativeId)> {
    let key = loom.terminal().key();
    match key.backend {
        BackendKind::Tmux => {
            let tmux = std::env::var("TMUX").ok()?;
            let pane = std::env::var("TMUX_PANE").ok()?;
            let socket = tmux.split(',').next()?;
            let ours = key.socket.as_deref()?;
            let same = termloom_core::same_socket(socket.as_ref(), ours.as_ref());
            same.then(|| (key.clone(), NativeId::tmux(pane)))
        }
        BackendKind::Iterm => {
            let id = std::env::var("ITERM_SESSION_ID").ok()?;
            let guid = id.split_once(':').map(|(_, g)| g).unwrap_or(&id);
            Some((key.clone(), NativeId::iterm(guid)))
        }
    }
}

/// Like `termloom::connect`, with tmux's control-mode transport on: this process lives long, so one
/// `tmux -C` client per server replaces a spawned `tmux` per command. Nothing starts until the
/// first call (the control client connects lazily), so `initialize` is answered before any tmux
/// process exists.
fn connect_long_lived(g: &GlobalOpts) -> Result<Loom> {
    connect_with(g, true)
}

fn run(args: Args) -> Result<()> {
    // One logger for every terminal: one output task per session however it is reached.
    let logger = if args.no_log {
        None
    } else {
        Some(SessionLogger::new(LogConfig::in_state_dir(
            &args.global.state_dir()?,
        )))
    };
    let logged = {
        let logger = logger.clone();
        move |loom: Loom| match &logger {
            Some(l) => loom.with_logger(l.clone()),
            None => loom,
        }
    };
    let mut looms = vec![logged(connect_long_lived(&args.global)?)];
    for socket in &args.allow_socket {
        let mut g = args.global.clone();
        g.socket = Some(socket.clone());
        g.socket_name = None;
        looms
            .push(logged(connect_long_lived(&g).with_context(|| {
                format!("--allow-socket {}", socket.display())
            })?));
    }
    let host_connector: Option<termloom_mcp::config::HostConnector> = if args.allow_host.is_empty()
    {
        None
    } else {
        let patterns = args.allow_host.clone();
        let global = args.global.clone();
        let logged = logged.clone();
        Some(Arc::new(move |host: &str| {
            if !host_allowed(&patterns, host) {
                return Err(format!(
                    "refused: host '{host}' matches none of the hosts allowed when this server was started ({}); ask the person to restart it with --allow-host",
                    patterns.join(", ")
                ));
            }
            connect_host(&global, Some(host))
                .map(&logged)
                .map_err(|e| format!("cannot reach host '{host}': {e:#}"))
        }))
    };
    let own_session = own_session(&looms[0]);
    let audit_log = if args.no_audit {
        None
    } else {
        Some(args.global.state_dir()?.join(AUDIT_FILE))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Over stdio, a client that stops reading stdout ends the session (see `stdio`).
    let stdout = {
        let _in_runtime = rt.enter();
        termloom::survive_file_size_limit();
        args.http.is_none().then(stdio::StdoutWatch::new)
    };
    let cfg = Config {
        looms,
        tier: args.tier,
        scope: args.scope,
        max_chars: args.max_chars.max(1000),
        own_session,
        audit_log,
        transport: if args.http.is_some() { "http" } else { "stdio" }.into(),
        connect_host: host_connector,
        client_gone: stdout.clone().map(|w| {
            let gone: termloom_mcp::config::ClientGone = Arc::new(move || w.is_gone());
            gone
        }),
    };
    let server = TermloomServer::new(cfg);
    rt.block_on(async move {
        match &args.http {
            None => {
                // A client that stops reading (stdout closed, or a write to it failed) ends the
                // session: calls it can no longer see are not carried out.
                let Some(stdout) = stdout else {
                    anyhow::bail!("stdout is not watched");
                };
                let (reader, writer) = rmcp::transport::io::stdio_pipes();
                let running = server
                    .serve(stdio::StdioTransport::new(
                        reader,
                        stdio::Closing::new(writer, stdout.clone()),
                    ))
                    .await
                    .context("MCP handshake over stdio failed")?;
                let stop = running.cancellation_token();
                let watch = tokio::spawn(async move {
                    stdout.gone().await;
                    tracing::info!("the client closed stdout: ending the MCP session");
                    stop.cancel();
                });
                let ended = running.waiting().await.context("MCP session over stdio");
                watch.abort();
                // The server is gone with the session: let its connections leave cleanly.
                termloom_core::cleanup::settle(std::time::Duration::from_secs(3)).await;
                ended?;
                Ok(())
            }
            Some(addr) => {
                let addr = parse_addr(addr).map_err(anyhow::Error::msg)?;
                // A token read from a file keeps its newline; blanks around it are no part of it,
                // and a blank token is none (a random one is made).
                let given = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
                let (token, generated) = match given.map(str::to_string) {
                    Some(t) => (t, false),
                    None => (generate_token(), true),
                };
                let opts = HttpOptions {
                    addr,
                    token: token.clone(),
                    allow_remote: args.allow_remote,
                    allowed_origins: args.allow_origin.clone(),
                };
                termloom_mcp::http::serve(
                    server,
                    opts,
                    |bound| {
                        stderr_line(format!("termloom-mcp: serving MCP at http://{bound}/mcp"));
                        if generated {
                            stderr_line(format!("termloom-mcp: bearer token: {token}"));
                        } else {
                            stderr_line("termloom-mcp: using the bearer token from --token / TERMLOOM_MCP_TOKEN");
                        }
                    },
                    async {
                        let _ = tokio::signal::ctrl_c().await;
                    },
                )
                .await
                .context("HTTP server")
            }
        }
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // A stderr that cannot be written (closed by the client, over the file-size limit)
        // must not panic the task that logs (the call would never be answered).
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            stderr_line(format!("termloom-mcp: {e:#}"));
            ExitCode::from(2)
        }
    }
}
