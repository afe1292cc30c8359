//! Streamable HTTP: the handler at `/mcp`, behind a guard that answers 403 to a browser `Origin` that
//! is not allowed (DNS rebinding) and 401 to a request without the bearer token. Loopback only
//! unless the person asked for remote access.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::TermloomServer;

/// How to serve HTTP.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The bearer token every request must carry.
    pub token: String,
    /// Listen on a non-loopback address and accept any `Host`.
    pub allow_remote: bool,
    /// Browser origins allowed besides loopback ones (`http://localhost:*` and the like), exactly as
    /// browsers send them (`https://app.example.com`).
    pub allowed_origins: Vec<String>,
}

/// Parses `--http`: `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = s
        .strip_prefix("localhost:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err(format!(
        "cannot read '{s}' as an address to listen on (try 127.0.0.1:8765 or :8765)"
    ))
}

/// A fresh random token (244 bits).
pub fn generate_token() -> String {
    format!(
        "tl_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// True for `http(s)://localhost`, `127.x.x.x` and `[::1]` origins, any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => rest,
        }
    };
    if host.contains('/') {
        return false;
    }
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Guard {
    token: String,
    origins: Vec<String>,
}

fn reply(status: StatusCode, msg: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What a browser page at an allowed origin needs to talk to the server: the preflight's
/// answer, and the headers that let the page read replies (the session id above all).
fn allow_origin(r: &mut Response, origin: &HeaderValue) {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("mcp-session-id, mcp-protocol-version, www-authenticate"),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        let ok = origin
            .to_str()
            .is_ok_and(|o| is_loopback_origin(o) || g.origins.iter().any(|a| a == o));
        if !ok {
            tracing::warn!(origin = ?origin, "refused a request from a foreign origin");
            return reply(
                StatusCode::FORBIDDEN,
                "forbidden: this Origin is not allowed",
            );
        }
        // A browser asks before a request that carries a token, and sends no token with the
        // question: an allowed origin is told what it may send.
        if req.method() == axum::http::Method::OPTIONS {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            allow_origin(&mut r, origin);
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(
                    "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id",
                ),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            return r;
        }
    }
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, t)| same(t.trim().as_bytes(), g.token.as_bytes()));
    let mut r = if authorized {
        next.run(req).await
    } else {
        let mut r = reply(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send the token printed at the server's start as 'Authorization: Bearer <token>'",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    if let Some(origin) = &origin {
        allow_origin(&mut r, origin);
    }
    r
}

/// The router: `/mcp` behind the guard. Cancelling `stop` ends every MCP session and its
/// streams (a client's open GET stream would otherwise keep a graceful shutdown waiting forever).
pub fn router(server: TermloomServer, opts: &HttpOptions, stop: CancellationToken) -> axum::Router {
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = stop;
    if opts.allow_remote {
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let g = Arc::new(Guard {
        token: opts.token.clone(),
        origins: opts.allowed_origins.clone(),
    });
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(g, guard))
}

/// How long connections may take to finish after the shutdown signal before they are dropped.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Binds and serves until `shutdown` completes. Refuses a non-loopback address without
/// `allow_remote`. Calls `on_bound` with the address actually bound (port 0 picks one). At
/// `shutdown`, every MCP session ends (calls in flight are cancelled, event streams close), and
/// connections still open [`SHUTDOWN_GRACE`] later are dropped.
pub async fn serve(
    server: TermloomServer,
    opts: HttpOptions,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !opts.allow_remote && !opts.addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to listen on {} (not a loopback address) without --allow-remote",
                opts.addr
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    on_bound(listener.local_addr()?);
    let stop = CancellationToken::new();
    let app = router(server, &opts, stop.clone());
    let stopping = stop.clone();
    let serving = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .into_future();
    tokio::select! {
        r = serving => r,
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after the shutdown signal: dropped");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_are_recognised() {
        for o in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443",
            "http://[::1]:80",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback_origin(o), "{o}");
        }
        for o in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:80",
            "null",
            "file://",
            "http://localhost:80/x",
            "http://[::1].evil",
        ] {
            assert!(!is_loopback_origin(o), "{o}");
        }
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(parse_addr("8765").unwrap().to_string(), "127.0.0.1:8765");
        assert_eq!(parse_addr(":8765").unwrap().to_string(), "127.0.0.1:8765");
        assert_eq!(parse_addr("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert_eq!(
            parse_addr("localhost:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert!(parse_addr("nope").is_err());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert_ne!(generate_token(), generate_token());
    }
}
