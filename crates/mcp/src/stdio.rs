//! The stdio transport: newline-delimited JSON-RPC on stdin and stdout ([`StdioTransport`]), and
//! the other half of its contract: a server whose client closed its stdout has nobody to answer, so
//! it stops taking calls instead of carrying them out unseen.
//!
//! [`StdioTransport`] frames and answers as rmcp's own `AsyncRwTransport` does, with two
//! differences that only save time: a `tools/call` request (nearly every message a client sends)
//! is read in one pass into its parts instead of through the untagged enum of every message
//! (rmcp tries the request kinds one after another, building an error for each miss), and a
//! response is serialized into one buffer and written at once. Every other line goes through
//! rmcp's own codec, so initialization, notifications, malformed and non-MCP lines behave as rmcp
//! handles them, but for one thing rmcp leaves out: a line that is no JSON is answered with
//! JSON-RPC's parse error (-32700), where rmcp's transport says nothing and the client waits.
//!
//! rmcp logs a failed response write and goes on reading requests; a client that closed only its
//! read end (or crashed half way) would still have panes created and text typed for it.
//! [`StdoutWatch`] knows the client is gone when stdout is a pipe whose reader closed (epoll
//! reports it at once, before any response is due) or when a write to stdout failed ([`Closing`]),
//! whatever stdout is. The server refuses every call from then on, and `termloom-mcp` ends the
//! session.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::FutureExt;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CallToolRequestParams, ClientRequest, ErrorData,
    InputResponses, JsonObject, JsonRpcMessage, JsonRpcRequest, JsonRpcVersion2_0, RequestId,
    RequestMetaObject,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{JsonRpcMessageCodec, JsonRpcMessageCodecError};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, Notify};
use tokio_util::codec::Decoder;

/// Whether the client still reads this process's stdout.
pub struct StdoutWatch {
    /// A second descriptor of stdout's pipe, registered only for errors (`None` when stdout is
    /// not something epoll can watch: a file, say).
    #[cfg(unix)]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    failed: AtomicBool,
    told: Notify,
}

impl StdoutWatch {
    /// Starts watching. Must be called inside the runtime that serves the session.
    pub fn new() -> Arc<Self> {
        #[cfg(unix)]
        let fd = {
            use std::os::fd::AsFd;
            use tokio::io::Interest;
            use tokio::io::unix::AsyncFd;
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .ok()
                // SAFETY: the descriptor is owned by the AsyncFd and stays open while registered.
                .and_then(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::ERROR) }.ok())
        };
        Arc::new(StdoutWatch {
            #[cfg(unix)]
            fd,
            failed: AtomicBool::new(false),
            told: Notify::new(),
        })
    }

    /// True once the client is known to have stopped reading. No system call: it looks at what
    /// the runtime's last poll of its descriptors saw, which comes no later than the request
    /// being handled.
    pub fn is_gone(&self) -> bool {
        if self.failed.load(Ordering::SeqCst) {
            return true;
        }
        #[cfg(unix)]
        if let Some(fd) = &self.fd {
            return fd
                .ready(tokio::io::Interest::ERROR)
                .now_or_never()
                .is_some_and(|r| r.is_ok());
        }
        false
    }

    /// Resolves once the client is gone.
    pub async fn gone(&self) {
        let failed = async {
            while !self.failed.load(Ordering::SeqCst) {
                self.told.notified().await;
            }
        };
        #[cfg(unix)]
        if let Some(fd) = &self.fd {
            tokio::select! {
                _ = failed => {}
                r = fd.ready(tokio::io::Interest::ERROR) => {
                    if r.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
            return;
        }
        failed.await
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.told.notify_waiters();
        self.told.notify_one();
    }
}

/// An `AsyncWrite` that tells its [`StdoutWatch`] when a write or flush fails: the client is no
/// longer reading.
pub struct Closing<W> {
    inner: W,
    watch: Arc<StdoutWatch>,
}

impl<W> Closing<W> {
    /// Wraps `inner`, stdout's writer.
    pub fn new(inner: W, watch: Arc<StdoutWatch>) -> Self {
        Closing { inner, watch }
    }

    fn seen<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(_)) = &r {
            self.watch.fail();
        }
        r
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Closing<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.seen(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.seen(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.seen(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The longest line read as a message (as rmcp's stdio transport): a longer one is skipped.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The server's side of newline-delimited JSON-RPC over a reader and a writer (stdin, stdout).
pub struct StdioTransport<R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    /// `line` holds a whole line, handed out: the next read starts a new one.
    whole: bool,
    /// Error answers being written, each by a task of its own.
    answers: Vec<tokio::task::JoinHandle<()>>,
    discarding: bool,
    codec: JsonRpcMessageCodec<RxJsonRpcMessage<RoleServer>>,
    write: Arc<Mutex<Option<W>>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> StdioTransport<R, W> {
    /// Reads messages from `read` and writes responses and notifications to `write`.
    pub fn new(read: R, write: W) -> Self {
        StdioTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            whole: false,
            answers: Vec::new(),
            discarding: false,
            codec: JsonRpcMessageCodec::default(),
            write: Arc::new(Mutex::new(Some(write))),
        }
    }

    /// Reads up to the next newline into `self.line` (without it). `Ok(false)` at the end of
    /// input; a line over [`MAX_LINE`] is skipped whole, with a log line.
    ///
    /// Cancel-safe: rmcp drops the `receive` future whenever it has something to write, and
    /// picks reading up again later. What was read of a line stays in `self.line` until the
    /// line is whole (`self.whole`); only the next call after a whole line starts afresh.
    async fn next_line(&mut self) -> io::Result<bool> {
        if std::mem::take(&mut self.whole) {
            self.line.clear();
        }
        loop {
            let buf = self.read.fill_buf().await?;
            if buf.is_empty() {
                // The end of input; a last line without its newline is dropped, as rmcp drops it.
                return Ok(false);
            }
            let newline = buf.iter().position(|b| *b == b'\n');
            let take = newline.map_or(buf.len(), |i| i + 1);
            if !self.discarding {
                if self.line.len() + take > MAX_LINE {
                    tracing::error!(
                        max_line_length = MAX_LINE,
                        "Incoming message exceeded the maximum line length, discarding it"
                    );
                    self.line.clear();
                    self.discarding = true;
                } else {
                    self.line
                        .extend_from_slice(&buf[..newline.unwrap_or(buf.len())]);
                }
            }
            self.read.consume(take);
            if newline.is_some() {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                self.whole = true;
                return Ok(true);
            }
        }
    }

    /// Writes `item` as one line and flushes (the future holds no borrow: rmcp may run sends
    /// while the next message is read).
    fn send_line(
        &self,
        item: &TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static + use<R, W>
    where
        W: Send + 'static,
    {
        let bytes = serde_json::to_vec(item).map(|mut b| {
            b.push(b'\n');
            b
        });
        let write = self.write.clone();
        async move {
            let bytes = bytes.map_err(io::Error::other)?;
            let mut guard = write.lock().await;
            let Some(w) = guard.as_mut() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "Transport is closed",
                ));
            };
            w.write_all(&bytes).await?;
            w.flush().await
        }
    }
}

impl<R, W> Transport<RoleServer> for StdioTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.send_line(&item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.next_line().await {
                Ok(true) => {}
                Ok(false) => {
                    // The end of input ends the session, which closes the writer: the answers
                    // still on their way go out first.
                    for h in std::mem::take(&mut self.answers) {
                        let _ = h.await;
                    }
                    return None;
                }
                Err(e) => {
                    tracing::error!("Error reading from stream: {e}");
                    return None;
                }
            }
            let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            if line.is_empty() {
                continue;
            }
            if let Some(call) = tool_call(line) {
                return Some(call);
            }
            let mut framed = tokio_util::bytes::BytesMut::with_capacity(line.len() + 1);
            framed.extend_from_slice(line);
            framed.extend_from_slice(b"\n");
            match self.codec.decode(&mut framed) {
                Ok(Some(msg)) => return Some(msg),
                Ok(None) => {}
                Err(JsonRpcMessageCodecError::Serde(e)) => {
                    // JSON-RPC answers a line that is no JSON with a parse error (rmcp's own
                    // transport says nothing, and a client waits for an answer that never
                    // comes), and JSON that is no message with an invalid request.
                    let error = match e.classify() {
                        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                            tracing::debug!("Unparsable incoming message: {e}");
                            ErrorData::parse_error(format!("Parse error: {e}"), None)
                        }
                        serde_json::error::Category::Data | serde_json::error::Category::Io => {
                            tracing::debug!("Protocol error on incoming message: {e}");
                            ErrorData::invalid_request("Invalid request", None)
                        }
                    };
                    let answer = TxJsonRpcMessage::<RoleServer>::error(error, None);
                    // Written by a task of its own: a `receive` dropped half way would lose
                    // the answer, or write half of it. A failed write tells the stdout watch
                    // (`Closing`), which ends the session.
                    let write = self.send_line(&answer);
                    self.answers.retain(|h| !h.is_finished());
                    self.answers.push(tokio::spawn(async move {
                        if let Err(e) = write.await {
                            tracing::debug!("error answer not written: {e}");
                        }
                    }));
                }
                Err(e) => {
                    tracing::error!("Error reading from stream: {e}");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.write.lock().await.take());
        Ok(())
    }
}

/// Whether a key was there, whatever its value (`"result": null` counts, as rmcp counts it).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

/// A `tools/call` request as it comes, read in one pass.
#[derive(Deserialize)]
struct ToolCallLine {
    #[allow(dead_code)]
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[allow(dead_code)]
    method: CallToolRequestMethod,
    params: ToolCallParams,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

/// The parameters of `tools/call` (rmcp's `CallToolRequestParams`, with `_meta` apart, where
/// rmcp's request parsing puts it: in the request's extensions).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolCallParams {
    #[serde(rename = "_meta")]
    meta: Option<JsonObject>,
    name: String,
    arguments: Option<JsonObject>,
    input_responses: Option<InputResponses>,
    request_state: Option<String>,
}

/// `line` as the message rmcp would make of it, when it is a well-formed `tools/call` request;
/// `None` for anything else, which then goes through rmcp's codec.
fn tool_call(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    let call: ToolCallLine = serde_json::from_slice(line).ok()?;
    if call.result.0 || call.error.0 {
        return None;
    }
    let p = call.params;
    let mut params = CallToolRequestParams::new(p.name);
    params.arguments = p.arguments;
    params.input_responses = p.input_responses;
    params.request_state = p.request_state;
    let mut request = CallToolRequest::new(params);
    if let Some(meta) = p.meta {
        request.extensions.insert(RequestMetaObject::from(meta));
    }
    Some(JsonRpcMessage::Request(JsonRpcRequest::new(
        call.id,
        ClientRequest::CallToolRequest(request),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rmcp's own parsing makes of a line, serialized (rmcp's messages have no `PartialEq`
    /// that sees the extensions; their JSON carries `_meta` back out of them).
    fn rmcp_reads(line: &str) -> Option<serde_json::Value> {
        let msg: RxJsonRpcMessage<RoleServer> = serde_json::from_str(line).ok()?;
        Some(serde_json::to_value(msg).expect("serializes"))
    }

    #[test]
    fn a_tool_call_reads_as_rmcp_reads_it() {
        let lines = [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_output","arguments":{"session":"a","lines":20}}}"#,
            r#"{"method":"tools/call","params":{"arguments":{"x":[1,{"y":null}],"t":"\u00fc\n\"q\""},"name":"send_text","_meta":{"progressToken":"p-1","other":3}},"id":"abc","jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_sessions"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_sessions","arguments":null,"_meta":null,"extra":1},"unknown":true}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","requestState":"s","inputResponses":{"k":{"a":1}}}}"#,
        ];
        for line in lines {
            let ours = tool_call(line.as_bytes()).expect("read as a tool call");
            assert_eq!(
                Some(serde_json::to_value(ours).expect("serializes")),
                rmcp_reads(line),
                "{line}"
            );
        }
    }

    #[test]
    fn anything_but_a_well_formed_tool_call_is_left_to_rmcp() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"result":null}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}",
            "not json",
        ] {
            assert!(tool_call(line.as_bytes()).is_none(), "{line}");
        }
    }

    /// What a transport receives from `input`, then what it answered, as JSON lines.
    async fn drive<T: Transport<RoleServer>>(
        make: impl FnOnce(tokio::io::DuplexStream, tokio::io::DuplexStream) -> T,
        input: &str,
    ) -> (Vec<serde_json::Value>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let mut t = make(server_in, server_out);
        client_in
            .write_all(input.as_bytes())
            .await
            .expect("written");
        drop(client_in);
        let mut got = Vec::new();
        while let Some(msg) = t.receive().await {
            got.push(serde_json::to_value(msg).expect("json"));
        }
        t.close().await.expect("closed");
        drop(t);
        let mut answered = String::new();
        client_out
            .read_to_string(&mut answered)
            .await
            .expect("read");
        (got, answered)
    }

    #[tokio::test]
    async fn a_line_read_in_parts_survives_a_dropped_receive() {
        use tokio::io::AsyncWriteExt;
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, _client_out) = tokio::io::duplex(1 << 16);
        let mut t = StdioTransport::new(server_in, server_out);
        let line = br#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"x"}}"#;
        client_in.write_all(&line[..25]).await.expect("written");
        // rmcp drops `receive` whenever it has something to write: here after one poll, which
        // read the first part of the line.
        assert!(t.receive().now_or_never().is_none());
        client_in.write_all(&line[25..]).await.expect("written");
        client_in.write_all(b"\n").await.expect("written");
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), t.receive())
            .await
            .expect("the request is read, not lost")
            .expect("the whole request");
        assert_eq!(serde_json::to_value(msg).expect("json")["id"], 41);
    }

    #[tokio::test]
    async fn a_bad_last_line_is_answered_before_the_session_ends() {
        for (line, code) in [
            ("{\"jsonrpc\":\"2.0\",\"id\":8}\n", "-32600"),
            ("not json\n", "-32700"),
        ] {
            let (got, answered) = drive(StdioTransport::new, line).await;
            assert!(got.is_empty());
            assert!(answered.contains(code), "{line}: {answered}");
        }
    }

    #[tokio::test]
    async fn lines_are_framed_and_answered_as_rmcp_does() {
        let input = concat!(
            "\n",
            "garbage that is not json\n",
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"no/such\",\"params\":{}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":5}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"},\"result\":1}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":8}\n",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}\n",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n",
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"bom\"}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"_meta\":{\"progressToken\":1}}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}"
        );
        let rmcp = drive(
            rmcp::transport::async_rw::AsyncRwTransport::<RoleServer, _, _>::new,
            input,
        )
        .await;
        let ours = drive(StdioTransport::new, input).await;
        // The same messages read; the same answers, and a parse error for the line that is no
        // JSON, which rmcp's transport leaves unanswered.
        assert_eq!(ours.0, rmcp.0);
        let (parse, rest): (Vec<&str>, Vec<&str>) =
            ours.1.lines().partition(|l| l.contains("-32700"));
        assert_eq!(parse.len(), 1, "{}", ours.1);
        assert_eq!(rest, rmcp.1.lines().collect::<Vec<_>>());
        // The test means something: messages got through, and something was answered.
        assert!(rmcp.0.len() >= 3, "{:?}", rmcp.0);
        assert!(rmcp.1.contains("-32600"), "{}", rmcp.1);
    }

    #[tokio::test]
    async fn a_failed_write_is_told_once_and_still_returned() {
        use tokio::io::AsyncWriteExt;
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let watch = StdoutWatch::new();
        let mut w = Closing::new(a, watch.clone());
        assert!(w.write_all(b"hello").await.is_err());
        assert!(watch.is_gone());
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.gone())
            .await
            .expect("the failure was told");
    }

    #[tokio::test]
    async fn writes_that_succeed_tell_nothing() {
        use tokio::io::AsyncWriteExt;
        let (a, mut b) = tokio::io::duplex(64);
        let watch = StdoutWatch::new();
        let mut w = Closing::new(a, watch.clone());
        w.write_all(b"hello").await.expect("written");
        let mut got = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
            .await
            .expect("read");
        assert_eq!(&got, b"hello");
        assert!(!watch.is_gone(), "nothing failed");
    }
}
