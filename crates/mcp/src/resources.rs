//! Resources: the session list, each session's output and info (as templates), and two reference
//! documents for the model.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use termloom_core::{CaptureOpts, ReadRange};

use crate::error::describe;
use crate::server::TermloomServer;
use crate::types::{GetSessionOut, Place, RecordOut, SessionsOut};

/// The session list.
pub const SESSIONS_URI: &str = "terminal://sessions";
/// Key names.
pub const KEYS_URI: &str = "termloom://keys-reference";
/// Recipes.
pub const PATTERNS_URI: &str = "termloom://common-patterns";

/// Lines the output resource shows when the session sets no default.
const OUTPUT_LINES: usize = 100;

const KEYS_REFERENCE: &str = r#"# Key names for send_keys

send_keys presses keys; send_text types text. Never spell a control key as text ("C-c" sent as text
types the three characters C, -, c).

| key | spellings |
|---|---|
| Ctrl + letter | `C-c`, `^C`, `Ctrl+C`, `ctrl-c` (also `C-d`, `C-z`, `C-l`, `C-r`, `C-a`, `C-e`, `C-u`, `C-w`) |
| Alt / Meta | `M-x`, `Alt+x`, `Meta-x` |
| Shift (non-character keys) | `S-Tab`, `S-Up` |
| Enter | `Enter`, `Return` |
| Escape | `Escape`, `Esc` |
| Tab, Shift-Tab | `Tab`, `BTab` |
| Backspace | `BSpace`, `Backspace` |
| Delete, Insert | `DC`/`Delete`, `IC`/`Insert` |
| Arrows | `Up`, `Down`, `Left`, `Right` (with modifiers: `C-Left`, `M-Up`) |
| Home, End | `Home`, `End` |
| Page up / down | `PageUp`/`PgUp`/`PPage`, `PageDown`/`PgDn`/`NPage` |
| Function keys | `F1` … `F12` |
| Space | `Space` |
| One character | `q`, `y`, `:` (typed as is) |

Names are case-insensitive. Modifiers combine: `C-M-x`.

Common uses: interrupt a command `C-c`; end input / exit a shell `C-d`; suspend `C-z`; clear the screen
`C-l`; quit less or man `q`; leave vim `Escape` then send_text `:q!`; accept a prompt `y` then `Enter`.
"#;

const COMMON_PATTERNS: &str = r#"# Common patterns

**Run a command and get its result.** `run_command {session, command}` returns `exit_code`, `output`
(only that command's output), `duration_ms` and the detection `strategy`. For a long job set
`timeout_ms`; when it returns `running: true`, call `wait_for {session, handle}` later, or
`read_output`.

**Start something long and keep working.** `run_command {…, wait: false}` returns a `handle` at once.

**A session of your own.** `create_session {name: "build", cwd: "/path"}` and use the name (or the
returned `id`) as `session` afterwards. Sessions termloom creates are always writable.

**Several panes at once.** `create_layout {layout: "main-vertical", panes: [{name: "editor"},
{name: "server", command: "npm start"}, {name: "tests"}]}` returns name → id.

**Read only what is new.** Every `read_output` returns a `cursor`; pass it as `since` next time.

**Find something in the scrollback.** `read_output {session, pattern: "error|failed",
context_lines: 3}` returns each match with absolute line numbers; read around one with
`from_line`/`to_line`.

**Interactive programs (REPLs, editors, prompts).** `send_text` types (Enter by default; `enter:
false` to just type), `send_keys` presses keys (`C-c`, `Escape`, `Up`), `read_output {screen: true}`
shows what is visible. `run_command` with `prompt: ">>> "` waits for a REPL's prompt.

**Wait for a server to come up.** `wait_for {session, pattern: "listening on", timeout_ms: 60000}`.

**Wait until a program settles.** `wait_for {session, idle_ms: 2000}`.

**Watch a session.** `start_monitoring {session, filters: ["ERROR", "WARN"]}`, later
`stop_monitoring {monitor_id, keep_running: true}` to collect the matching lines.

**Targets.** The persistent UUID always works; names must match exactly (no prefix matching);
`workspace:window.pane` addresses by position (`work:1.0`, `work:editor`); `tmux:%3` is a native id.
"#;

/// The fixed resources.
pub fn static_resources() -> Vec<Resource> {
    vec![
        Resource::new(SESSIONS_URI, "sessions")
            .with_title("Live terminal sessions")
            .with_description("Every live session with its id, name, place, command and whether it is writable (JSON)")
            .with_mime_type("application/json"),
        Resource::new(KEYS_URI, "keys-reference")
            .with_title("Key names for send_keys")
            .with_description("How to name Ctrl, Alt, arrows, function keys and the rest")
            .with_mime_type("text/markdown"),
        Resource::new(PATTERNS_URI, "common-patterns")
            .with_title("Common patterns")
            .with_description("Recipes: run and wait, read what is new, layouts, REPLs, waiting, monitoring")
            .with_mime_type("text/markdown"),
    ]
}

/// The per-session resources.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("terminal://{session_id}/output", "session-output")
            .with_title("A session's recent output")
            .with_description("The last lines of a session (its max_lines, else 100). Subscribe to be told when a monitored session prints")
            .with_mime_type("text/plain"),
        ResourceTemplate::new("terminal://{session_id}/info", "session-info")
            .with_title("A session's details")
            .with_description("A session's place, command, size and registry record (JSON)")
            .with_mime_type("application/json"),
    ]
}

/// `terminal://{session}/{what}` split into its parts.
fn session_uri(uri: &str) -> Option<(String, &str)> {
    let rest = uri.strip_prefix("terminal://")?;
    let (session, what) = rest.rsplit_once('/')?;
    if session.is_empty() || !(what == "output" || what == "info") {
        return None;
    }
    Some((percent_decode(session), what))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Only output resources can be subscribed to.
pub fn check_subscribable(uri: &str) -> Result<String, McpError> {
    match session_uri(uri) {
        Some((session, "output")) => Ok(session),
        _ => Err(McpError::invalid_params(
            format!("only terminal://{{session_id}}/output can be subscribed to, not '{uri}'"),
            None,
        )),
    }
}

/// Whether `uri` is an output resource named by a session's full id, as notifications name it.
pub fn canonical_output_uri(uri: &str) -> bool {
    check_subscribable(uri)
        .ok()
        .and_then(|s| s.parse::<termloom_core::SessionId>().ok())
        .is_some_and(|id| crate::monitor::output_uri(id) == uri)
}

/// Checks a subscription: an output resource of a live session, named by its id (the URI
/// notifications carry), not by a name or path that could later mean another session.
pub async fn check_subscription(server: &TermloomServer, uri: &str) -> Result<(), McpError> {
    let session = check_subscribable(uri)?;
    let target = TermloomServer::target(&session).map_err(|e| not_found(e.0))?;
    let (_, found) = server.locate(&target).await.map_err(|e| not_found(e.0))?;
    let info = found.map_err(|e| not_found(describe(&e)))?;
    let canonical = crate::monitor::output_uri(info.id);
    if uri != canonical {
        return Err(McpError::invalid_params(
            format!(
                "subscribe by the session's id: {canonical} (notifications name that URI), not '{uri}'"
            ),
            None,
        ));
    }
    Ok(())
}

fn text(body: String, uri: &str, mime: &str) -> ReadResourceResponse {
    ReadResourceResult::new(vec![ResourceContents::text(body, uri).with_mime_type(mime)]).into()
}

fn not_found(msg: String) -> McpError {
    McpError::resource_not_found(msg, None)
}

/// Reads one resource.
pub async fn read(server: &TermloomServer, uri: &str) -> Result<ReadResourceResponse, McpError> {
    let max = server.cfg().max_chars;
    let capped = |s: String| match crate::cap::cut_text(&s, max) {
        Some((c, _)) => c,
        None => s,
    };
    match uri {
        KEYS_URI => return Ok(text(KEYS_REFERENCE.into(), uri, "text/markdown")),
        PATTERNS_URI => return Ok(text(COMMON_PATTERNS.into(), uri, "text/markdown")),
        SESSIONS_URI => {
            let place = Place::default();
            let loom = server.loom(&place).map_err(|e| not_found(e.0))?;
            let all = loom
                .list_sessions()
                .await
                .map_err(|e| McpError::internal_error(describe(&e), None))?;
            let sessions: Vec<_> = all.iter().map(|s| server.out(&loom, s)).collect();
            let mut v = serde_json::to_value(SessionsOut {
                count: sessions.len(),
                sessions,
            })
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            crate::cap::fit(&mut v, max);
            return Ok(text(v.to_string(), uri, "application/json"));
        }
        _ => {}
    }
    let Some((session, what)) = session_uri(uri) else {
        return Err(not_found(format!(
            "no resource '{uri}'; the resources are {SESSIONS_URI}, terminal://{{session_id}}/output, terminal://{{session_id}}/info, {KEYS_URI} and {PATTERNS_URI}"
        )));
    };
    let target = TermloomServer::target(&session).map_err(|e| not_found(e.0))?;
    let (loom, found) = server.locate(&target).await.map_err(|e| not_found(e.0))?;
    match what {
        "info" => {
            let out = match found {
                Ok(info) => {
                    let record = loom
                        .entry(info.id)
                        .ok()
                        .flatten()
                        .map(|e| RecordOut::from(&e));
                    GetSessionOut {
                        id: info.id.to_string(),
                        name: info.name.clone(),
                        alive: true,
                        session: Some(server.out(&loom, &info)),
                        record,
                    }
                }
                Err(termloom_core::Error::SessionDead { id, name }) => {
                    let record = id
                        .parse()
                        .ok()
                        .and_then(|id| loom.entry(id).ok().flatten())
                        .map(|e| RecordOut::from(&e));
                    GetSessionOut {
                        id,
                        name,
                        alive: false,
                        session: None,
                        record,
                    }
                }
                Err(e) => return Err(not_found(describe(&e))),
            };
            let body = serde_json::to_string(&out)
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            Ok(text(body, uri, "application/json"))
        }
        _ => {
            let info = found.map_err(|e| not_found(describe(&e)))?;
            let lines = loom
                .entry(info.id)
                .ok()
                .flatten()
                .and_then(|e| e.max_lines)
                .unwrap_or(OUTPUT_LINES);
            let session = loom
                .terminal()
                .open(&info)
                .await
                .map_err(|e| not_found(describe(&e)))?;
            let cap = session
                .capture(&CaptureOpts {
                    range: ReadRange::Tail(lines),
                    max_bytes: Some(max),
                    ..CaptureOpts::default()
                })
                .await
                .map_err(|e| McpError::internal_error(describe(&e), None))?;
            Ok(text(capped(cap.text), uri, "text/plain"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_uris_parse() {
        assert_eq!(
            session_uri("terminal://abc/output"),
            Some(("abc".to_string(), "output"))
        );
        assert_eq!(
            session_uri("terminal://w%3A1.0/info"),
            Some(("w:1.0".to_string(), "info"))
        );
        assert_eq!(session_uri("terminal://sessions"), None);
        assert_eq!(session_uri("terminal://x/other"), None);
        assert!(check_subscribable("terminal://x/info").is_err());
    }
}
