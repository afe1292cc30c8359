//! A client for iTerm2's API: protobuf messages over a WebSocket on a unix socket.
//!
//! ```text
//! ~/Library/Application Support/iTerm2/private/socket   (folder name from $IT2_SUITE)
//!   └─ WebSocket to ws://localhost/, subprotocol api.iterm2.com, one binary protobuf per frame
//!        client → ClientOriginatedMessage{id, request}
//!        server → ServerOriginatedMessage{id, reply}  |  ServerOriginatedMessage{notification}
//! ```
//!
//! One [`Connection`] owns one WebSocket. A single reader task decodes every frame: replies are
//! matched to their request by id (a map of oneshot senders), notifications go to a
//! [`tokio::sync::broadcast`] channel that any number of [`Connection::notifications`]
//! receivers read. Every request has a timeout. When the socket drops, every request in flight
//! fails at once with [`ItermError::Closed`], and the next request opens a new connection (and
//! replays the subscriptions made through [`Connection::subscribe`]).
//!
//! Authentication follows the official Python client: the cookie and key come from explicit
//! [`Credentials`], else `ITERM2_COOKIE`/`ITERM2_KEY`, else (on a 401, or when there are none)
//! from `osascript`, which asks iTerm2 for a fresh pair. `osascript` only exists on macOS; on
//! other systems that step fails with a clear [`ItermError::Credentials`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::UnixStream;
use tokio::sync::{Mutex as AsyncMutex, broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

pub use crate::error::ItermError;
use crate::proto::client_originated_message::Submessage as Req;
use crate::proto::server_originated_message::Submessage as Rep;
use crate::proto::{self, EnumName, enum_name};

/// The WebSocket subprotocol iTerm2 requires.
pub const SUBPROTOCOL: &str = "api.iterm2.com";

/// Value of the `x-iterm2-library-version` header.
///
/// iTerm2 rejects the upgrade (HTTP 400) unless this header is exactly two space-separated words,
/// `<language> <version>`, so the library name cannot be a third word; the advisory name
/// (`x-iterm2-advisory-name`) carries "termloom".
pub const LIBRARY_VERSION: &str = concat!("rust ", env!("CARGO_PKG_VERSION"));

/// Default `x-iterm2-advisory-name`, also the app name used when asking for a cookie.
pub const DEFAULT_ADVISORY_NAME: &str = "termloom";

/// Response header carrying the server's protocol version (`major.minor`).
pub const PROTOCOL_VERSION_HEADER: &str = "x-iterm2-protocol-version";

/// Environment variable naming the Application Support folder (default `iTerm2`).
pub const SUITE_ENV: &str = "IT2_SUITE";

/// Environment variable holding the API cookie.
pub const COOKIE_ENV: &str = "ITERM2_COOKIE";

/// Environment variable holding the API key.
pub const KEY_ENV: &str = "ITERM2_KEY";

/// An API cookie and key. Real iTerm2 accepts a cookie once; a reconnect needs a fresh one.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The cookie (`x-iterm2-cookie`).
    pub cookie: String,
    /// The key (`x-iterm2-key`), which names the script in iTerm2's console.
    pub key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cookie", &"<redacted>")
            .field("key", &self.key)
            .finish()
    }
}

/// How to reach and authenticate to iTerm2.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The socket; [`default_socket_path`] when unset.
    pub socket_path: Option<PathBuf>,
    /// Sent as `x-iterm2-advisory-name` and used as the app name in the cookie request.
    pub advisory_name: String,
    /// Credentials to use first; when unset, the environment is read (if
    /// [`use_environment`](Self::use_environment)).
    pub credentials: Option<Credentials>,
    /// Read `ITERM2_COOKIE`/`ITERM2_KEY`.
    pub use_environment: bool,
    /// Ask iTerm2 for a cookie with `osascript` when there is none, or after a 401.
    pub use_osascript: bool,
    /// Deadline for each request's reply.
    pub request_timeout: Duration,
    /// Deadline for connecting and the WebSocket handshake.
    pub connect_timeout: Duration,
    /// Notifications buffered per receiver before a slow receiver starts losing them.
    pub notification_capacity: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            socket_path: None,
            advisory_name: DEFAULT_ADVISORY_NAME.to_owned(),
            credentials: None,
            use_environment: true,
            use_osascript: true,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            notification_capacity: 1024,
        }
    }
}

impl ConnectOptions {
    /// Options for a given socket, with credentials from the environment or `osascript`.
    pub fn with_socket(path: impl Into<PathBuf>) -> Self {
        Self {
            socket_path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Uses these credentials (and nothing else: no environment, no `osascript`).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self.use_environment = false;
        self.use_osascript = false;
        self
    }

    /// Sets the per-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The socket path for a home folder and an optional suite name (the folder under
/// `Library/Application Support`, `iTerm2` by default).
pub fn socket_path_for(home: &Path, suite: Option<&str>) -> PathBuf {
    home.join("Library")
        .join("Application Support")
        .join(suite.filter(|s| !s.is_empty()).unwrap_or("iTerm2"))
        .join("private")
        .join("socket")
}

/// `~/Library/Application Support/$IT2_SUITE/private/socket`, as the official client computes
/// it (`$IT2_SUITE` defaults to `iTerm2`; `~` is `$HOME`).
pub fn default_socket_path() -> Result<PathBuf, ItermError> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ItermError::Connect {
            socket: PathBuf::from("~/Library/Application Support/iTerm2/private/socket"),
            reason: "HOME is not set, so the iTerm2 API socket cannot be located".into(),
        })?;
    let suite = std::env::var(SUITE_ENV).ok();
    Ok(socket_path_for(Path::new(&home), suite.as_deref()))
}

/// `ITERM2_COOKIE` and `ITERM2_KEY`, when the cookie is set (the key may be empty).
pub fn credentials_from_env() -> Option<Credentials> {
    let cookie = std::env::var(COOKIE_ENV).ok().filter(|c| !c.is_empty())?;
    let key = std::env::var(KEY_ENV).unwrap_or_default();
    Some(Credentials { cookie, key })
}

/// Asks iTerm2 for a fresh cookie and key through AppleScript:
/// `osascript -e 'tell application "iTerm2" to request cookie and key for app named "<name>"'`.
///
/// The script is passed as an argument, never through a shell. iTerm2 may show a consent
/// dialog. Fails with [`ItermError::Credentials`] when `osascript` is missing (any system but
/// macOS), fails, or prints something that is not `"<cookie> <key>"`.
pub async fn request_credentials_via_osascript(
    app_name: &str,
    timeout: Duration,
) -> Result<Credentials, ItermError> {
    let safe_name: String = app_name
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    let script = format!(
        "tell application \"iTerm2\" to request cookie and key for app named \"{safe_name}\""
    );
    let mut cmd = tokio::process::Command::new("osascript");
    cmd.arg("-e")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(ItermError::Credentials(format!(
                "osascript did not answer within {timeout:?} (is a consent dialog open?)"
            )));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ItermError::Credentials(
                "osascript is not available (it exists only on macOS); set ITERM2_COOKIE and ITERM2_KEY instead"
                    .into(),
            ));
        }
        Ok(Err(e)) => {
            return Err(ItermError::Credentials(format!(
                "cannot run osascript: {e}"
            )));
        }
        Ok(Ok(o)) => o,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let hint = if stderr.contains("-2740") || stderr.contains("-2741") {
            " (this iTerm2 is too old to hand out API cookies)"
        } else {
            ""
        };
        return Err(ItermError::Credentials(format!(
            "osascript failed ({}): {stderr}{hint}",
            output.status
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(cookie), Some(key), None) => Ok(Credentials {
            cookie: cookie.to_owned(),
            key: key.to_owned(),
        }),
        _ => Err(ItermError::Credentials(format!(
            "unexpected answer from iTerm2: {:?}",
            text.trim()
        ))),
    }
}

/// Whose variables a variable request reads or writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VariableTarget {
    /// A session (also `all` or `active`).
    Session(String),
    /// A tab.
    Tab(String),
    /// A window.
    Window(String),
    /// The application.
    App,
}

impl VariableTarget {
    fn to_scope(&self) -> proto::variable_request::Scope {
        use proto::variable_request::Scope;
        match self {
            Self::Session(s) => Scope::SessionId(s.clone()),
            Self::Tab(t) => Scope::TabId(t.clone()),
            Self::Window(w) => Scope::WindowId(w.clone()),
            Self::App => Scope::App(true),
        }
    }
}

type ReplySender = oneshot::Sender<Result<proto::ServerOriginatedMessage, ItermError>>;

/// Requests in flight on one WebSocket, shared by the caller side and the reader task.
#[derive(Default)]
struct Pending {
    /// Set once the socket is gone; no new request may register after that.
    closed: Option<String>,
    waiting: HashMap<i64, ReplySender>,
}

struct LinkShared {
    pending: StdMutex<Pending>,
}

impl LinkShared {
    fn close(&self, reason: &str) {
        let waiting = {
            let mut p = lock(&self.pending);
            if p.closed.is_none() {
                p.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut p.waiting)
        };
        for (_, tx) in waiting {
            let _ = tx.send(Err(ItermError::Closed(reason.to_owned())));
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.pending).closed.is_some()
    }
}

type WsSink = SplitSink<WebSocketStream<UnixStream>, Message>;

/// One live WebSocket.
struct Link {
    sink: AsyncMutex<WsSink>,
    shared: Arc<LinkShared>,
    reader: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        self.shared.close("connection dropped");
    }
}

struct Inner {
    opts: ConnectOptions,
    socket: PathBuf,
    next_id: AtomicI64,
    generation: AtomicU64,
    notifications: broadcast::Sender<Arc<proto::Notification>>,
    link: AsyncMutex<Option<Arc<Link>>>,
    /// Subscriptions to replay after a reconnect, keyed by (session, type, argument bytes).
    subscriptions: StdMutex<Vec<proto::NotificationRequest>>,
    protocol_version: StdMutex<Option<String>>,
}

/// A connection to iTerm2 (or anything speaking its protocol). Cheap to clone; clones share the
/// socket. Dropping the last clone closes the socket.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.inner.socket)
            .field("generation", &self.inner.generation.load(Ordering::Relaxed))
            .finish()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connection {
    /// Connects now, so that a missing iTerm2, a disabled API or refused credentials are
    /// reported here rather than on the first request.
    pub async fn connect(opts: ConnectOptions) -> Result<Self, ItermError> {
        let socket = match &opts.socket_path {
            Some(p) => p.clone(),
            None => default_socket_path()?,
        };
        let (notifications, _) = broadcast::channel(opts.notification_capacity.max(1));
        let conn = Self {
            inner: Arc::new(Inner {
                opts,
                socket,
                next_id: AtomicI64::new(1),
                generation: AtomicU64::new(0),
                notifications,
                link: AsyncMutex::new(None),
                subscriptions: StdMutex::new(Vec::new()),
                protocol_version: StdMutex::new(None),
            }),
        };
        conn.live_link().await?;
        Ok(conn)
    }

    /// Connects to the default socket with default options.
    pub async fn connect_default() -> Result<Self, ItermError> {
        Self::connect(ConnectOptions::default()).await
    }

    /// The socket this connection uses.
    pub fn socket_path(&self) -> &Path {
        &self.inner.socket
    }

    /// The server's `X-iTerm2-Protocol-Version` from the latest handshake, e.g. `"1.11"`.
    pub fn protocol_version(&self) -> Option<String> {
        lock(&self.inner.protocol_version).clone()
    }

    /// How many times a WebSocket was opened (1 after [`connect`](Self::connect); each
    /// reconnect adds one).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// A new receiver of every notification that arrives from now on. Subscribe with
    /// [`subscribe`](Self::subscribe) to make iTerm2 send them.
    pub fn notifications(&self) -> broadcast::Receiver<Arc<proto::Notification>> {
        self.inner.notifications.subscribe()
    }

    /// True while a WebSocket is open (a request would not need to reconnect).
    pub async fn is_connected(&self) -> bool {
        self.inner
            .link
            .lock()
            .await
            .as_ref()
            .is_some_and(|l| !l.shared.is_closed())
    }

    /// Closes the WebSocket. Requests in flight fail with [`ItermError::Closed`]; a later
    /// request reconnects.
    pub async fn disconnect(&self) {
        let link = self.inner.link.lock().await.take();
        if let Some(link) = link {
            let mut sink = link.sink.lock().await;
            let _ =
                tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
            drop(sink);
            link.shared.close("closed by the client");
        }
    }

    /// Sends one request and waits (at most the request timeout) for its reply. A reply whose
    /// payload is the protocol's `error` string becomes [`ItermError::Rpc`].
    pub async fn call(&self, request: Req) -> Result<Rep, ItermError> {
        self.call_with_timeout(request, self.inner.opts.request_timeout)
            .await
    }

    /// [`call`](Self::call) with an explicit timeout.
    pub async fn call_with_timeout(
        &self,
        request: Req,
        timeout: Duration,
    ) -> Result<Rep, ItermError> {
        let link = self.live_link().await?;
        self.call_on(&link, request, timeout).await
    }

    async fn call_on(
        &self,
        link: &Arc<Link>,
        request: Req,
        timeout: Duration,
    ) -> Result<Rep, ItermError> {
        let kind = request.kind();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&link.shared.pending);
            if let Some(reason) = &p.closed {
                return Err(ItermError::Closed(reason.clone()));
            }
            p.waiting.insert(id, tx);
        }
        let frame = proto::ClientOriginatedMessage::request(id, request).encode_to_vec();
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = tokio::time::timeout_at(deadline, async {
            let mut sink = link.sink.lock().await;
            sink.send(Message::Binary(frame.into())).await
        })
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let reason = format!("sending the {kind} request failed: {e}");
                link.shared.close(&reason);
                return Err(ItermError::Closed(reason));
            }
            Err(_) => {
                lock(&link.shared.pending).waiting.remove(&id);
                return Err(ItermError::Timeout {
                    request: kind,
                    after: timeout,
                });
            }
        }
        let reply = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(ItermError::Closed("the reader task stopped".into())),
            Err(_) => {
                lock(&link.shared.pending).waiting.remove(&id);
                return Err(ItermError::Timeout {
                    request: kind,
                    after: timeout,
                });
            }
        };
        match reply.submessage {
            Some(Rep::Error(text)) => Err(ItermError::Rpc {
                request: kind,
                status: text,
            }),
            Some(payload) => Ok(payload),
            None => Err(ItermError::Decode(format!(
                "the reply to {kind} has no payload (a kind this client does not model?)"
            ))),
        }
    }

    /// The open link, or a new one (replaying subscriptions) when there is none.
    async fn live_link(&self) -> Result<Arc<Link>, ItermError> {
        let mut slot = self.inner.link.lock().await;
        if let Some(link) = slot.as_ref()
            && !link.shared.is_closed()
        {
            return Ok(link.clone());
        }
        *slot = None;
        let link = Arc::new(self.open_link().await?);
        let replay: Vec<_> = lock(&self.inner.subscriptions).clone();
        for req in replay {
            let rep = self
                .call_on(
                    &link,
                    Req::NotificationRequest(req),
                    self.inner.opts.request_timeout,
                )
                .await?;
            if let Rep::NotificationResponse(r) = rep {
                let status =
                    enum_name::<proto::notification_response::Status>(r.status.unwrap_or_default());
                if status != "OK" && status != "ALREADY_SUBSCRIBED" {
                    tracing::warn!(%status, "re-subscribing after reconnect failed");
                }
            }
        }
        *slot = Some(link.clone());
        Ok(link)
    }

    async fn open_link(&self) -> Result<Link, ItermError> {
        let opts = &self.inner.opts;
        let mut creds = opts.credentials.clone();
        let mut source = "explicit credentials";
        if creds.is_none() && opts.use_environment {
            creds = credentials_from_env();
            source = "ITERM2_COOKIE/ITERM2_KEY";
        }
        let mut tried_osascript = false;
        let mut osascript_error = None;
        if creds.is_none() && opts.use_osascript {
            tried_osascript = true;
            match request_credentials_via_osascript(&opts.advisory_name, opts.connect_timeout).await
            {
                Ok(c) => {
                    creds = Some(c);
                    source = "osascript";
                }
                // Without a cookie iTerm2 may still accept us ("allow all apps to connect").
                Err(e) => osascript_error = Some(e.to_string()),
            }
        }
        if creds.is_none() {
            source = "no credentials";
        }
        match self.handshake(creds.as_ref()).await {
            Err(ItermError::AuthRefused { .. }) if opts.use_osascript && !tried_osascript => {
                match request_credentials_via_osascript(&opts.advisory_name, opts.connect_timeout)
                    .await
                {
                    Ok(fresh) => self.handshake(Some(&fresh)).await.map_err(|e| match e {
                        ItermError::AuthRefused { .. } => ItermError::AuthRefused {
                            detail: "a fresh cookie from osascript was refused too".into(),
                        },
                        other => other,
                    }),
                    Err(e) => Err(ItermError::AuthRefused {
                        detail: format!("{source} were refused, and {e}"),
                    }),
                }
            }
            Err(ItermError::AuthRefused { .. }) => Err(ItermError::AuthRefused {
                detail: match osascript_error {
                    Some(e) => format!("{source} were refused ({e})"),
                    None => format!("{source} were refused"),
                },
            }),
            other => other,
        }
    }

    async fn handshake(&self, creds: Option<&Credentials>) -> Result<Link, ItermError> {
        let socket = &self.inner.socket;
        let opts = &self.inner.opts;
        let connect = tokio::time::timeout(opts.connect_timeout, UnixStream::connect(socket));
        let stream = match connect.await {
            Err(_) => {
                return Err(ItermError::Timeout {
                    request: "connect",
                    after: opts.connect_timeout,
                });
            }
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(match e.kind() {
                    std::io::ErrorKind::NotFound => ItermError::NotRunning {
                        socket: socket.clone(),
                    },
                    std::io::ErrorKind::ConnectionRefused => ItermError::ApiDisabled {
                        socket: socket.clone(),
                    },
                    _ => ItermError::Connect {
                        socket: socket.clone(),
                        reason: e.to_string(),
                    },
                });
            }
        };
        let bad_header = |what: &str| ItermError::Connect {
            socket: socket.clone(),
            reason: format!("{what} cannot be sent as an HTTP header"),
        };
        let mut request =
            "ws://localhost/"
                .into_client_request()
                .map_err(|e| ItermError::Connect {
                    socket: socket.clone(),
                    reason: e.to_string(),
                })?;
        let h = request.headers_mut();
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        h.insert("origin", HeaderValue::from_static("ws://localhost/"));
        h.insert(
            "x-iterm2-library-version",
            HeaderValue::from_static(LIBRARY_VERSION),
        );
        h.insert("x-iterm2-disable-auth-ui", HeaderValue::from_static("true"));
        h.insert(
            "x-iterm2-advisory-name",
            HeaderValue::from_str(&opts.advisory_name)
                .map_err(|_| bad_header("the advisory name"))?,
        );
        if let Some(c) = creds {
            h.insert(
                "x-iterm2-cookie",
                HeaderValue::from_str(&c.cookie).map_err(|_| bad_header("the cookie"))?,
            );
            if !c.key.is_empty() {
                h.insert(
                    "x-iterm2-key",
                    HeaderValue::from_str(&c.key).map_err(|_| bad_header("the key"))?,
                );
            }
        }
        let handshake = tokio_tungstenite::client_async(request, stream);
        let (ws, response) = match tokio::time::timeout(opts.connect_timeout, handshake).await {
            Err(_) => {
                return Err(ItermError::Timeout {
                    request: "WebSocket handshake",
                    after: opts.connect_timeout,
                });
            }
            Ok(Ok(pair)) => pair,
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let status = resp.status();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                    .unwrap_or_default();
                return Err(match status.as_u16() {
                    401 => ItermError::AuthRefused {
                        detail: "HTTP 401 Unauthorized".into(),
                    },
                    406 => ItermError::Connect {
                        socket: socket.clone(),
                        reason: format!(
                            "iTerm2 says this client is too old (HTTP 406): {LIBRARY_VERSION}"
                        ),
                    },
                    _ => ItermError::Connect {
                        socket: socket.clone(),
                        reason: format!("WebSocket upgrade refused: HTTP {status} {body}"),
                    },
                });
            }
            Ok(Err(e)) => {
                return Err(ItermError::Connect {
                    socket: socket.clone(),
                    reason: format!("WebSocket handshake failed: {e}"),
                });
            }
        };
        let version = response
            .headers()
            .get(PROTOCOL_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        *lock(&self.inner.protocol_version) = version;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (sink, stream) = ws.split();
        let shared = Arc::new(LinkShared {
            pending: StdMutex::new(Pending::default()),
        });
        let reader = tokio::spawn(read_loop(
            stream,
            shared.clone(),
            self.inner.notifications.clone(),
        ));
        tracing::debug!(socket = %socket.display(), generation, "connected to iTerm2");
        Ok(Link {
            sink: AsyncMutex::new(sink),
            shared,
            reader,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Typed requests
    // -----------------------------------------------------------------------------------------

    /// Every window, tab and session.
    pub async fn list_sessions(&self) -> Result<proto::ListSessionsResponse, ItermError> {
        match self
            .call(Req::ListSessionsRequest(proto::ListSessionsRequest {}))
            .await?
        {
            Rep::ListSessionsResponse(r) => Ok(r),
            other => Err(unexpected("ListSessions", &other)),
        }
    }

    /// Creates a tab (or a window when `request.window_id` is unset).
    pub async fn create_tab(
        &self,
        request: proto::CreateTabRequest,
    ) -> Result<proto::CreateTabResponse, ItermError> {
        match self.call(Req::CreateTabRequest(request)).await? {
            Rep::CreateTabResponse(r) => {
                check::<proto::create_tab_response::Status>("CreateTab", r.status, None)?;
                Ok(r)
            }
            other => Err(unexpected("CreateTab", &other)),
        }
    }

    /// Creates a window with the default profile, optionally running `command` instead of the
    /// login shell (through the `Custom Command`/`Command` profile properties, as the official
    /// client does).
    pub async fn create_window(
        &self,
        command: Option<&str>,
    ) -> Result<proto::CreateTabResponse, ItermError> {
        let mut request = proto::CreateTabRequest {
            select_tab: Some(true),
            ..Default::default()
        };
        if let Some(command) = command {
            request.custom_profile_properties = command_properties(command);
        }
        self.create_tab(request).await
    }

    /// Splits `session`; returns the new session ids. `vertical` puts the new session beside
    /// the old one, `before` puts it left of / above it.
    pub async fn split_pane(
        &self,
        session: &str,
        vertical: bool,
        before: bool,
    ) -> Result<Vec<String>, ItermError> {
        use proto::split_pane_request::SplitDirection;
        let direction = if vertical {
            SplitDirection::Vertical
        } else {
            SplitDirection::Horizontal
        };
        let request = proto::SplitPaneRequest {
            session: Some(session.to_owned()),
            split_direction: Some(direction as i32),
            before: Some(before),
            ..Default::default()
        };
        match self.call(Req::SplitPaneRequest(request)).await? {
            Rep::SplitPaneResponse(r) => {
                check::<proto::split_pane_response::Status>("SplitPane", r.status, Some(session))?;
                Ok(r.session_id)
            }
            other => Err(unexpected("SplitPane", &other)),
        }
    }

    /// Types `text` into `session` (`\r` is Enter), and into no other session: see
    /// [`send_text_request`].
    pub async fn send_text(&self, session: &str, text: &str) -> Result<(), ItermError> {
        let request = send_text_request(session, text);
        match self.call(Req::SendTextRequest(request)).await? {
            Rep::SendTextResponse(r) => {
                check::<proto::send_text_response::Status>("SendText", r.status, Some(session))
            }
            other => Err(unexpected("SendText", &other)),
        }
    }

    /// Feeds `data` to `session` as though its program had printed it.
    pub async fn inject(&self, session: &str, data: &[u8]) -> Result<(), ItermError> {
        let request = proto::InjectRequest {
            session_id: vec![session.to_owned()],
            data: Some(data.to_vec()),
        };
        match self.call(Req::InjectRequest(request)).await? {
            Rep::InjectResponse(r) => {
                for status in r.status {
                    check::<proto::inject_response::Status>("Inject", Some(status), Some(session))?;
                }
                Ok(())
            }
            other => Err(unexpected("Inject", &other)),
        }
    }

    /// Reads lines of `session`.
    pub async fn get_buffer(
        &self,
        session: &str,
        line_range: proto::LineRange,
    ) -> Result<proto::GetBufferResponse, ItermError> {
        let request = proto::GetBufferRequest {
            session: Some(session.to_owned()),
            line_range: Some(line_range),
            include_styles: None,
        };
        match self.call(Req::GetBufferRequest(request)).await? {
            Rep::GetBufferResponse(r) => {
                check::<proto::get_buffer_response::Status>("GetBuffer", r.status, Some(session))?;
                Ok(r)
            }
            other => Err(unexpected("GetBuffer", &other)),
        }
    }

    /// The visible screen of `session`.
    pub async fn get_screen(&self, session: &str) -> Result<proto::GetBufferResponse, ItermError> {
        self.get_buffer(
            session,
            proto::LineRange {
                screen_contents_only: Some(true),
                ..Default::default()
            },
        )
        .await
    }

    /// The last `lines` lines (history and screen) of `session`.
    pub async fn get_trailing_lines(
        &self,
        session: &str,
        lines: i32,
    ) -> Result<proto::GetBufferResponse, ItermError> {
        self.get_buffer(
            session,
            proto::LineRange {
                trailing_lines: Some(lines),
                ..Default::default()
            },
        )
        .await
    }

    /// Reads variables; each value is JSON text (`"null"` when unset).
    pub async fn get_variables(
        &self,
        target: &VariableTarget,
        names: &[&str],
    ) -> Result<Vec<String>, ItermError> {
        let request = proto::VariableRequest {
            set: Vec::new(),
            get: names.iter().map(|n| (*n).to_owned()).collect(),
            scope: Some(target.to_scope()),
        };
        let r = self.variable_request(target, request).await?;
        if r.values.len() != names.len() {
            return Err(ItermError::Decode(format!(
                "asked for {} variables, got {} values",
                names.len(),
                r.values.len()
            )));
        }
        Ok(r.values)
    }

    /// Reads one variable, parsed from JSON (`Value::Null` when unset).
    pub async fn get_variable(
        &self,
        target: &VariableTarget,
        name: &str,
    ) -> Result<serde_json::Value, ItermError> {
        let values = self.get_variables(target, &[name]).await?;
        let text = values.into_iter().next().unwrap_or_default();
        serde_json::from_str(&text)
            .map_err(|e| ItermError::Decode(format!("variable {name} is not JSON ({e}): {text:?}")))
    }

    /// Sets one variable (iTerm2 only lets clients set names starting with `user.`).
    pub async fn set_variable(
        &self,
        target: &VariableTarget,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), ItermError> {
        let request = proto::VariableRequest {
            set: vec![proto::variable_request::Set {
                name: Some(name.to_owned()),
                value: Some(value.to_string()),
            }],
            get: Vec::new(),
            scope: Some(target.to_scope()),
        };
        self.variable_request(target, request).await.map(|_| ())
    }

    async fn variable_request(
        &self,
        target: &VariableTarget,
        request: proto::VariableRequest,
    ) -> Result<proto::VariableResponse, ItermError> {
        match self.call(Req::VariableRequest(request)).await? {
            Rep::VariableResponse(r) => {
                let session = match target {
                    VariableTarget::Session(s) => Some(s.as_str()),
                    _ => None,
                };
                check::<proto::variable_response::Status>("Variable", r.status, session)?;
                Ok(r)
            }
            other => Err(unexpected("Variable", &other)),
        }
    }

    /// Subscribes to a kind of notification (`session`: a session id, or `None` for all).
    /// `ALREADY_SUBSCRIBED` counts as success. The subscription is replayed after a reconnect.
    pub async fn subscribe(
        &self,
        kind: proto::NotificationType,
        session: Option<&str>,
    ) -> Result<(), ItermError> {
        let mut request = proto::NotificationRequest {
            session: Some(session.unwrap_or("all").to_owned()),
            subscribe: Some(true),
            notification_type: Some(kind as i32),
            arguments: None,
        };
        if kind == proto::NotificationType::NotifyOnPrompt {
            use proto::PromptMonitorMode as M;
            request.arguments = Some(
                proto::notification_request::Arguments::PromptMonitorRequest(
                    proto::PromptMonitorRequest {
                        modes: vec![
                            M::Prompt as i32,
                            M::CommandStart as i32,
                            M::CommandEnd as i32,
                        ],
                    },
                ),
            );
        }
        self.subscribe_with(request).await
    }

    /// Sends a fully specified subscription (for variable monitors and the like).
    pub async fn subscribe_with(
        &self,
        request: proto::NotificationRequest,
    ) -> Result<(), ItermError> {
        let session = request.session.clone().filter(|s| s != "all");
        match self.call(Req::NotificationRequest(request.clone())).await? {
            Rep::NotificationResponse(r) => {
                let raw = r.status.unwrap_or_default();
                if raw != proto::notification_response::Status::AlreadySubscribed as i32 {
                    check::<proto::notification_response::Status>(
                        "Notification",
                        Some(raw),
                        session.as_deref(),
                    )?;
                }
                let mut subs = lock(&self.inner.subscriptions);
                if request.subscribe.unwrap_or(false) {
                    if !subs.contains(&request) {
                        subs.push(request);
                    }
                } else {
                    let mut on = request;
                    on.subscribe = Some(true);
                    subs.retain(|s| *s != on);
                }
                Ok(())
            }
            other => Err(unexpected("Notification", &other)),
        }
    }

    /// Undoes [`subscribe`](Self::subscribe).
    pub async fn unsubscribe(
        &self,
        kind: proto::NotificationType,
        session: Option<&str>,
    ) -> Result<(), ItermError> {
        let wanted = |r: &proto::NotificationRequest| {
            r.notification_type == Some(kind as i32)
                && r.session.as_deref() == Some(session.unwrap_or("all"))
        };
        let known: Vec<_> = lock(&self.inner.subscriptions)
            .iter()
            .filter(|r| wanted(r))
            .cloned()
            .collect();
        let requests = if known.is_empty() {
            vec![proto::NotificationRequest {
                session: Some(session.unwrap_or("all").to_owned()),
                subscribe: Some(true),
                notification_type: Some(kind as i32),
                arguments: None,
            }]
        } else {
            known
        };
        for mut r in requests {
            r.subscribe = Some(false);
            self.subscribe_with(r).await?;
        }
        Ok(())
    }

    /// The latest prompt of `session` (or the one with `prompt_id`); `None` when the session has
    /// no shell integration marks (`PROMPT_UNAVAILABLE`).
    pub async fn get_prompt(
        &self,
        session: &str,
        prompt_id: Option<&str>,
    ) -> Result<Option<proto::GetPromptResponse>, ItermError> {
        let request = proto::GetPromptRequest {
            session: Some(session.to_owned()),
            unique_prompt_id: prompt_id.map(str::to_owned),
        };
        match self.call(Req::GetPromptRequest(request)).await? {
            Rep::GetPromptResponse(r) => {
                if r.status == Some(proto::get_prompt_response::Status::PromptUnavailable as i32) {
                    return Ok(None);
                }
                check::<proto::get_prompt_response::Status>("GetPrompt", r.status, Some(session))?;
                Ok(Some(r))
            }
            other => Err(unexpected("GetPrompt", &other)),
        }
    }

    /// Ids of the prompts of `session`, oldest first.
    pub async fn list_prompts(&self, session: &str) -> Result<Vec<String>, ItermError> {
        let request = proto::ListPromptsRequest {
            session: Some(session.to_owned()),
            ..Default::default()
        };
        match self.call(Req::ListPromptsRequest(request)).await? {
            Rep::ListPromptsResponse(r) => {
                check::<proto::list_prompts_response::Status>(
                    "ListPrompts",
                    r.status,
                    Some(session),
                )?;
                Ok(r.unique_prompt_id)
            }
            other => Err(unexpected("ListPrompts", &other)),
        }
    }

    /// Activates a window, tab or session.
    pub async fn activate(&self, request: proto::ActivateRequest) -> Result<(), ItermError> {
        match self.call(Req::ActivateRequest(request)).await? {
            Rep::ActivateResponse(r) => {
                check::<proto::activate_response::Status>("Activate", r.status, None)
            }
            other => Err(unexpected("Activate", &other)),
        }
    }

    /// Makes `session` the active session, selecting its tab and raising its window.
    pub async fn activate_session(&self, session: &str) -> Result<(), ItermError> {
        let request = proto::ActivateRequest {
            order_window_front: Some(true),
            select_tab: Some(true),
            select_session: Some(true),
            activate_app: None,
            identifier: Some(proto::activate_request::Identifier::SessionId(
                session.to_owned(),
            )),
        };
        self.activate(request).await.map_err(|e| match e {
            ItermError::Rpc { status, .. } if status == "BAD_IDENTIFIER" => {
                ItermError::SessionNotFound(session.to_owned())
            }
            other => other,
        })
    }

    /// Closes objects; returns one status per object, in order.
    pub async fn close(
        &self,
        target: proto::close_request::Target,
        force: bool,
    ) -> Result<Vec<proto::close_response::Status>, ItermError> {
        let request = proto::CloseRequest {
            force: Some(force),
            target: Some(target),
        };
        match self.call(Req::CloseRequest(request)).await? {
            Rep::CloseResponse(r) => r
                .statuses
                .iter()
                .map(|s| {
                    proto::close_response::Status::try_from(*s)
                        .map_err(|_| ItermError::Decode(format!("unknown close status {s}")))
                })
                .collect(),
            other => Err(unexpected("Close", &other)),
        }
    }

    /// Closes sessions; an unknown id gives [`ItermError::SessionNotFound`].
    pub async fn close_sessions(&self, sessions: &[&str], force: bool) -> Result<(), ItermError> {
        let target = proto::close_request::Target::Sessions(proto::close_request::CloseSessions {
            session_ids: sessions.iter().map(|s| (*s).to_owned()).collect(),
        });
        let statuses = self.close(target, force).await?;
        for (id, status) in sessions.iter().zip(statuses) {
            match status {
                proto::close_response::Status::Ok => {}
                proto::close_response::Status::NotFound => {
                    return Err(ItermError::SessionNotFound((*id).to_owned()));
                }
                other => {
                    return Err(ItermError::Rpc {
                        request: "Close",
                        status: format!("{} for session {id}", other.as_str_name()),
                    });
                }
            }
        }
        Ok(())
    }

    /// The complete focus state.
    pub async fn focus(&self) -> Result<proto::FocusResponse, ItermError> {
        match self.call(Req::FocusRequest(proto::FocusRequest {})).await? {
            Rep::FocusResponse(r) => Ok(r),
            other => Err(unexpected("Focus", &other)),
        }
    }

    /// Broadcast-input domains.
    pub async fn broadcast_domains(&self) -> Result<Vec<proto::BroadcastDomain>, ItermError> {
        match self
            .call(Req::GetBroadcastDomainsRequest(
                proto::GetBroadcastDomainsRequest {},
            ))
            .await?
        {
            Rep::GetBroadcastDomainsResponse(r) => Ok(r.broadcast_domains),
            other => Err(unexpected("GetBroadcastDomains", &other)),
        }
    }

    /// Invokes (or with `query_only`, just inspects) a menu item such as `tmux.Detach`.
    pub async fn menu_item(
        &self,
        identifier: &str,
        query_only: bool,
    ) -> Result<proto::MenuItemResponse, ItermError> {
        let request = proto::MenuItemRequest {
            identifier: Some(identifier.to_owned()),
            query_only: Some(query_only),
        };
        match self.call(Req::MenuItemRequest(request)).await? {
            Rep::MenuItemResponse(r) => {
                check::<proto::menu_item_response::Status>("MenuItem", r.status, None).map_err(
                    |e| match e {
                        ItermError::Rpc { request, status } => ItermError::Rpc {
                            request,
                            status: format!("{status} ({identifier})"),
                        },
                        other => other,
                    },
                )?;
                Ok(r)
            }
            other => Err(unexpected("MenuItem", &other)),
        }
    }

    /// Sets one profile property of `session` (`json_value` is JSON text).
    pub async fn set_profile_property(
        &self,
        session: &str,
        key: &str,
        json_value: &str,
    ) -> Result<(), ItermError> {
        let request = proto::SetProfilePropertyRequest {
            key: Some(key.to_owned()),
            json_value: Some(json_value.to_owned()),
            assignments: Vec::new(),
            target: Some(proto::set_profile_property_request::Target::Session(
                session.to_owned(),
            )),
        };
        match self.call(Req::SetProfilePropertyRequest(request)).await? {
            Rep::SetProfilePropertyResponse(r) => check::<
                proto::set_profile_property_response::Status,
            >(
                "SetProfileProperty", r.status, Some(session)
            ),
            other => Err(unexpected("SetProfileProperty", &other)),
        }
    }

    async fn tmux(
        &self,
        payload: proto::tmux_request::Payload,
    ) -> Result<proto::TmuxResponse, ItermError> {
        let request = proto::TmuxRequest {
            payload: Some(payload),
        };
        match self.call(Req::TmuxRequest(request)).await? {
            Rep::TmuxResponse(r) => {
                check::<proto::tmux_response::Status>("Tmux", r.status, None)?;
                Ok(r)
            }
            other => Err(unexpected("Tmux", &other)),
        }
    }

    /// tmux integration connections (one per `tmux -CC` gateway session).
    pub async fn tmux_list_connections(
        &self,
    ) -> Result<Vec<proto::tmux_response::list_connections::Connection>, ItermError> {
        let r = self
            .tmux(proto::tmux_request::Payload::ListConnections(
                proto::tmux_request::ListConnections {},
            ))
            .await?;
        match r.payload {
            Some(proto::tmux_response::Payload::ListConnections(l)) => Ok(l.connections),
            None => Ok(Vec::new()),
            Some(_) => Err(ItermError::Decode(
                "tmux list_connections answered with another payload".into(),
            )),
        }
    }

    /// Runs a tmux command on a connection and returns its output.
    pub async fn tmux_send_command(
        &self,
        connection_id: &str,
        command: &str,
    ) -> Result<String, ItermError> {
        let r = self
            .tmux(proto::tmux_request::Payload::SendCommand(
                proto::tmux_request::SendCommand {
                    connection_id: Some(connection_id.to_owned()),
                    command: Some(command.to_owned()),
                },
            ))
            .await?;
        match r.payload {
            Some(proto::tmux_response::Payload::SendCommand(s)) => {
                s.output.ok_or_else(|| ItermError::Rpc {
                    request: "Tmux",
                    status: format!("tmux command failed: {command}"),
                })
            }
            _ => Err(ItermError::Decode(
                "tmux send_command answered without output".into(),
            )),
        }
    }

    /// Creates a tmux window on a connection; returns the iTerm2 tab id showing it.
    pub async fn tmux_create_window(
        &self,
        connection_id: &str,
        affinity: Option<&str>,
    ) -> Result<Option<String>, ItermError> {
        let r = self
            .tmux(proto::tmux_request::Payload::CreateWindow(
                proto::tmux_request::CreateWindow {
                    connection_id: Some(connection_id.to_owned()),
                    affinity: affinity.map(str::to_owned),
                },
            ))
            .await?;
        match r.payload {
            Some(proto::tmux_response::Payload::CreateWindow(c)) => Ok(c.tab_id),
            _ => Ok(None),
        }
    }
}

/// The profile properties that make a new session run `command` (JSON-encoded values).
pub fn command_properties(command: &str) -> Vec<proto::ProfileProperty> {
    vec![
        proto::ProfileProperty {
            key: Some("Custom Command".into()),
            json_value: Some(serde_json::Value::from("Yes").to_string()),
        },
        proto::ProfileProperty {
            key: Some("Command".into()),
            json_value: Some(serde_json::Value::from(command).to_string()),
        },
    ]
}

/// Maps a status to `Ok(())`, [`ItermError::SessionNotFound`] (when a session is known) or
/// [`ItermError::Rpc`]. An unset status is the protocol default, `OK` (0).
fn check<E>(
    request: &'static str,
    raw: Option<i32>,
    session: Option<&str>,
) -> Result<(), ItermError>
where
    E: TryFrom<i32> + Copy + EnumName,
{
    let name = enum_name::<E>(raw.unwrap_or(0));
    match (name.as_str(), session) {
        ("OK", _) => Ok(()),
        ("SESSION_NOT_FOUND", Some(s)) => Err(ItermError::SessionNotFound(s.to_owned())),
        _ => Err(ItermError::Rpc {
            request,
            status: name,
        }),
    }
}

fn unexpected(request: &'static str, got: &Rep) -> ItermError {
    ItermError::Decode(format!(
        "the {request} request was answered with a {} reply",
        got.kind()
    ))
}

async fn read_loop(
    mut stream: SplitStream<WebSocketStream<UnixStream>>,
    shared: Arc<LinkShared>,
    notifications: broadcast::Sender<Arc<proto::Notification>>,
) {
    let reason = loop {
        let frame = match stream.next().await {
            None => break "iTerm2 closed the socket".to_owned(),
            Some(Err(e)) => break format!("reading from iTerm2 failed: {e}"),
            Some(Ok(frame)) => frame,
        };
        let bytes = match frame {
            Message::Binary(b) => b,
            Message::Close(frame) => {
                break match frame {
                    Some(f) if !f.reason.is_empty() => {
                        format!("iTerm2 closed the WebSocket: {}", f.reason)
                    }
                    _ => "iTerm2 closed the WebSocket".to_owned(),
                };
            }
            // tungstenite answers pings itself; text frames are not part of the protocol.
            _ => continue,
        };
        let message = match proto::ServerOriginatedMessage::decode(bytes.as_ref()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable frame from iTerm2 ignored");
                continue;
            }
        };
        if let Some(Rep::Notification(n)) = message.submessage {
            // No receivers is fine: nobody is listening right now.
            let _ = notifications.send(Arc::new(n));
            continue;
        }
        let Some(id) = message.id else {
            tracing::debug!("reply without id ignored");
            continue;
        };
        let waiter = lock(&shared.pending).waiting.remove(&id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(message));
            }
            None => tracing::debug!(id, "reply to a request nobody waits for (timed out?)"),
        }
    };
    tracing::debug!(%reason, "iTerm2 connection reader stopped");
    shared.close(&reason);
}

/// The request that types `text` into `session` only. iTerm2's "broadcast input" (Shell ▸
/// Broadcast Input) would otherwise type it into every session of the tab or window as well:
/// text meant for one session, run in others nobody named. `suppress_broadcast` keeps it to the
/// one session.
pub(crate) fn send_text_request(session: &str, text: &str) -> proto::SendTextRequest {
    proto::SendTextRequest {
        session: Some(session.to_owned()),
        text: Some(text.to_owned()),
        suppress_broadcast: Some(true),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_text_never_goes_to_the_sessions_input_is_broadcast_to() {
        let r = super::send_text_request("S1", "ls\r");
        assert_eq!(r.suppress_broadcast, Some(true));
        assert_eq!(
            (r.session.as_deref(), r.text.as_deref()),
            (Some("S1"), Some("ls\r"))
        );
    }

    use super::*;

    #[test]
    fn socket_path_layout() {
        let p = socket_path_for(Path::new("/h"), None);
        assert_eq!(
            p,
            PathBuf::from("/h/Library/Application Support/iTerm2/private/socket")
        );
        let p = socket_path_for(Path::new("/h"), Some("iTerm2-dev"));
        assert_eq!(
            p,
            PathBuf::from("/h/Library/Application Support/iTerm2-dev/private/socket")
        );
    }

    #[test]
    fn library_version_is_two_words() {
        assert_eq!(LIBRARY_VERSION.split(' ').count(), 2);
        assert!(LIBRARY_VERSION.starts_with("rust "));
    }

    #[test]
    fn status_mapping() {
        use proto::send_text_response::Status;
        assert!(check::<Status>("SendText", None, Some("s")).is_ok());
        assert!(matches!(
            check::<Status>("SendText", Some(1), Some("s")),
            Err(ItermError::SessionNotFound(s)) if s == "s"
        ));
        assert!(matches!(
            check::<proto::variable_response::Status>("Variable", Some(2), None),
            Err(ItermError::Rpc { status, .. }) if status == "INVALID_NAME"
        ));
    }

    #[test]
    fn credentials_debug_hides_cookie() {
        let c = Credentials {
            cookie: "secret".into(),
            key: "k".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
