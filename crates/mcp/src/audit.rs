//! The audit log: one JSON line per tool call (time, transport, tool, arguments, outcome, duration),
//! appended to `mcp-audit.jsonl` in the state dir. The file is opened at the first call, not at start.
//!
//! Cost per call: one `write(2)` of one whole line to a file opened with `O_APPEND`, no buffer, no
//! `fsync`. Unbuffered, because a buffered record would be lost when the server is killed — the
//! moment an audit log is read; one write per line, so several servers appending to the same file
//! never interleave inside a line; no `fsync`, because a written line survives any crash of this
//! process (only a machine crash can lose the last lines), and an fsync would cost more than the
//! whole tool call.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Longest string argument kept whole in the log; longer ones keep their head and their length.
const MAX_ARG_CHARS: usize = 4096;

/// The audit log's file name inside the state dir.
pub const AUDIT_FILE: &str = "mcp-audit.jsonl";

/// An append-only JSON-lines log of tool calls.
pub struct Audit {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
    /// This process's id, written in every record (read once: `getpid` is a system call).
    pid: u32,
}

/// How one call ended.
pub struct Outcome<'a> {
    /// `ok`, `error` or `refused`.
    pub status: &'a str,
    /// The error message, when there is one.
    pub error: Option<&'a str>,
    /// Milliseconds the call took.
    pub duration_ms: f64,
}

impl Audit {
    /// A log written to `path`, or no log at all.
    pub fn new(path: Option<PathBuf>) -> Self {
        Audit {
            path,
            file: Mutex::new(None),
            pid: std::process::id(),
        }
    }

    /// Appends one record. Failures are logged to stderr and never fail the call.
    pub fn record(
        &self,
        transport: &str,
        tool: &str,
        args: Option<&Map<String, Value>>,
        outcome: Outcome<'_>,
    ) {
        let Some(path) = &self.path else { return };
        // Serialized straight from borrowed fields: no copy of the arguments unless one is long.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            ts: String,
            pid: u32,
            transport: &'a str,
            tool: &'a str,
            args: Option<Args<'a>>,
            status: &'a str,
            duration_ms: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a str>,
        }
        struct Args<'a>(&'a Map<String, Value>);
        impl serde::Serialize for Args<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    if needs_shortening(v) {
                        m.serialize_entry(k, &shorten(v))?;
                    } else {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.end()
            }
        }
        let line = Line {
            ts: termloom_core::log::timestamp(),
            pid: self.pid,
            transport,
            tool,
            args: args.map(Args),
            status: outcome.status,
            duration_ms: (outcome.duration_ms * 1000.0).round() / 1000.0,
            error: outcome.error,
        };
        let mut text = match serde_json::to_vec(&line) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode an audit record");
                return;
            }
        };
        text.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            if let Some(dir) = path.parent() {
                let _ = termloom_core::private::create_dir_all(dir);
            }
            match termloom_core::private::options()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open the audit log");
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut()
            && let Err(e) = f.write_all(&text)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// Whether [`shorten`] would change `v`.
fn needs_shortening(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_ARG_CHARS,
        Value::Array(a) => a.iter().any(needs_shortening),
        Value::Object(o) => o.values().any(needs_shortening),
        _ => false,
    }
}

/// Long strings keep their first [`MAX_ARG_CHARS`] characters and say how long they were.
fn shorten(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > MAX_ARG_CHARS => {
            let mut end = MAX_ARG_CHARS;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!("{}[… {} bytes in all]", &s[..end], s.len()))
        }
        Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shorten(v))).collect()),
        v => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_per_call_and_shortens_long_text() {
        let dir = std::env::temp_dir().join(format!("tl-audit-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join(AUDIT_FILE);
        let audit = Audit::new(Some(path.clone()));
        let mut args = Map::new();
        args.insert("text".into(), Value::String("x".repeat(10_000)));
        for _ in 0..2 {
            audit.record(
                "stdio",
                "send_text",
                Some(&args),
                Outcome {
                    status: "ok",
                    error: None,
                    duration_ms: 1.5,
                },
            );
        }
        let body = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["tool"], "send_text");
        assert!(
            v["args"]["text"]
                .as_str()
                .unwrap()
                .ends_with("[… 10000 bytes in all]")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
