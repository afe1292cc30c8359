//! Input and output tools: typing, keys, reading, running, waiting, status.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ProgressNotificationParam, RequestMetaObject};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer, tool, tool_router};
use termloom_core::{
    CaptureOpts, Cursor, Key, Loom, OutputEvent, ReadRange, RunHandle, RunOpts, SearchOpts,
    SendOpts, Session, SessionInfo, SessionSpec, WindowSel, compile_regex,
};

use crate::Scope;
use crate::error::ToolError;
use crate::json::Json;
use crate::server::TermloomServer;
use crate::types::*;

/// Largest text send_text types in one call.
pub const MAX_TEXT: usize = 256 * 1024;
/// Most sessions one call may address.
const MAX_TARGETS: usize = 32;
/// Default wait for run_command and wait_for.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default read size.
const DEFAULT_LINES: usize = 50;
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Progress reporting and cancellation for a long call.
pub(crate) struct Waiter {
    peer: Peer<RoleServer>,
    meta: RequestMetaObject,
    ctx_ct: RequestContext<RoleServer>,
}

impl Waiter {
    fn new(ctx: RequestContext<RoleServer>) -> Self {
        Waiter {
            peer: ctx.peer.clone(),
            meta: ctx.meta.clone(),
            ctx_ct: ctx,
        }
    }

    /// Drives `fut`, reporting progress every 500 ms when the client gave a progress token, and
    /// giving up when the client cancels the request.
    async fn drive<T>(
        &self,
        what: &str,
        total_ms: u64,
        fut: impl Future<Output = Result<T, ToolError>>,
    ) -> Result<T, ToolError> {
        let token = self.meta.get_progress_token();
        let start = Instant::now();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return r,
                _ = self.ctx_ct.ct.cancelled() => {
                    return Err(ToolError::new(format!("cancelled by the client while {what}; the command (if any) keeps running: use read_output or wait_for")));
                }
                _ = tick.tick(), if token.is_some() => {
                    if let Some(t) = &token {
                        let ms = start.elapsed().as_millis() as u64;
                        let p = ProgressNotificationParam::new(t.clone(), ms as f64)
                            .with_total(total_ms as f64)
                            .with_message(format!("{what}: {:.1}s of {:.1}s", ms as f64 / 1000.0, total_ms as f64 / 1000.0));
                        if let Err(e) = self.peer.notify_progress(p).await {
                            tracing::debug!(error = %e, "progress not delivered");
                        }
                    }
                }
            }
        }
    }
}

fn check_targets(
    session: &Option<String>,
    sessions: &Option<Vec<String>>,
) -> Result<(), ToolError> {
    match (session, sessions) {
        (Some(_), Some(_)) => Err(ToolError::new(
            "give either `session` or `sessions`, not both",
        )),
        (None, Some(v)) if v.is_empty() => Err(ToolError::new("sessions is empty")),
        (None, Some(v)) if v.len() > MAX_TARGETS => Err(ToolError::new(format!(
            "at most {MAX_TARGETS} sessions per call"
        ))),
        _ => Ok(()),
    }
}

fn numbered(text: &str, first: u64) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| format!("{}: {l}", first + i as u64))
        .collect::<Vec<_>>()
        .join("\n")
}

impl TermloomServer {
    /// Resolves a session, opens it and checks it may be written to.
    ///
    /// The handle skips `open`'s re-check: `find_writable` resolved the target against a listing
    /// made in this very call, which read the session's id off the pane (see `Loom::session`).
    /// Never hand `open_listed` an info that did not come from such a listing.
    async fn open_writable(
        &self,
        place: &Place,
        target: &str,
    ) -> Result<(SessionInfo, Arc<dyn Session>), ToolError> {
        let (loom, info) = self.find_writable(place, target).await?;
        let s = loom.logged(loom.terminal().open_listed(&info).await?).await;
        Ok((info, s))
    }

    /// Resolves a session and opens it for reading.
    async fn open_readable(
        &self,
        place: &Place,
        target: &str,
    ) -> Result<(Loom, SessionInfo, Arc<dyn Session>), ToolError> {
        // Listed in this call: see open_writable.
        let (loom, info) = self.find(place, target).await?;
        let s = loom.logged(loom.terminal().open_listed(&info).await?).await;
        Ok((loom, info, s))
    }

    /// The quick way to a session named by its full id: a handle from the registry's hint, with no
    /// listing, whose every operation checks the pane in the same step as it acts (and, for a
    /// write under `--scope managed`, that the session is managed). `None` when there is no such
    /// handle, or it is this server's own pane. When an operation on it fails and
    /// [`Loom::hint_failed`] says so, nothing was done: take the listing path for the real answer.
    async fn hinted(&self, place: &Place, target: &str, write: bool) -> Option<Arc<dyn Session>> {
        let loom = self.loom(place).ok()?;
        let t = Self::target(target).ok()?;
        let managed_only = write && self.cfg().scope == Scope::Managed;
        let s = loom.hinted(&t, managed_only).await?;
        if write && self.is_own_native(&loom, s.native()) {
            return None;
        }
        Some(s)
    }

    /// Does `op` to the session `target` names: through its registry hint first ([`Self::hinted`]),
    /// then, when the hint was stale or refused, through a fresh listing and the write checks.
    /// Returns the session's id.
    async fn write_to<F, Fut>(
        &self,
        place: &Place,
        target: &str,
        op: F,
    ) -> Result<termloom_core::SessionId, ToolError>
    where
        F: Fn(Arc<dyn Session>) -> Fut,
        Fut: Future<Output = termloom_core::Result<()>>,
    {
        if let Some(s) = self.hinted(place, target, true).await {
            let id = s.id();
            match op(s).await {
                Ok(()) => return Ok(id),
                Err(e) if Loom::hint_failed(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (info, s) = self.open_writable(place, target).await?;
        op(s).await?;
        Ok(info.id)
    }

    /// The session a run goes to when it names a window instead of a session: the window's active
    /// pane, or a new session in a new window of that name.
    async fn window_session(
        &self,
        place: &Place,
        workspace: Option<String>,
        window: &str,
    ) -> Result<SessionInfo, ToolError> {
        let loom = self.loom(place)?;
        let workspace = match workspace.filter(|w| !w.is_empty()) {
            Some(w) => Some(w),
            None => self.default_workspace(&loom).await,
        };
        // Looked up and created in one turn: two runs naming a new window make it once.
        let changing = loom.changing().await;
        let all = loom.list_sessions().await?;
        // As in targets: digits name the window at that index (or one named so).
        let sel = WindowSel::parse(window);
        let in_window: Vec<&SessionInfo> = all
            .iter()
            .filter(|s| sel.matches(s.window_index, &s.window_name))
            .filter(|s| workspace.as_ref().is_none_or(|w| s.workspace == *w))
            .collect();
        let mut windows: Vec<(String, u32)> = in_window
            .iter()
            .map(|s| (s.workspace.clone(), s.window_index))
            .collect();
        windows.sort();
        windows.dedup();
        let info = match windows.len() {
            0 if matches!(sel, WindowSel::Index(_)) => {
                return Err(ToolError::new(format!(
                    "no window {window}{}; a window named with digits would be taken for an index later, so none is made: give `window` a name, or call list_windows",
                    workspace
                        .as_ref()
                        .map(|w| format!(" in workspace '{w}'"))
                        .unwrap_or_default()
                )));
            }
            0 => {
                loom.create_session_held(
                    &SessionSpec {
                        workspace,
                        window: Some(window.to_string()),
                        ..SessionSpec::default()
                    },
                    &changing,
                )
                .await?
            }
            1 => in_window
                .iter()
                .find(|s| s.active)
                .or(in_window.first())
                .map(|s| (*s).clone())
                .ok_or_else(|| ToolError::new(format!("window '{window}' has no pane")))?,
            _ => {
                return Err(ToolError::new(format!(
                    "window '{window}' exists in several places ({}); give `workspace`",
                    windows
                        .iter()
                        .map(|(w, i)| format!("{w}:{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        self.check_write(&loom, &info)?;
        Ok(info)
    }

    async fn run_one(
        &self,
        place: &Place,
        target: &str,
        opts: &RunOpts,
    ) -> Result<RunOut, ToolError> {
        let (info, s) = self.open_writable(place, target).await?;
        let r = s.run(opts).await?;
        Ok(RunOut::new(info.id.to_string(), r))
    }
}

#[tool_router(router = io_tools, vis = "pub(crate)")]
impl TermloomServer {
    /// Type text into a session exactly as given (quotes, $, ;, newlines and Unicode arrive verbatim;
    /// multi-line text is pasted), then press Enter unless `enter` is false. Typing a command line plus
    /// Enter runs it: prefer run_command to get its exit code and output. `sessions` sends the same
    /// text to several sessions in parallel.
    #[tool(annotations(
        title = "Send text",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn send_text(
        &self,
        Parameters(p): Parameters<SendTextParams>,
    ) -> Result<Json<SendOut>, ToolError> {
        check_targets(&p.session, &p.sessions)?;
        if p.text.len() > MAX_TEXT {
            return Err(ToolError::new(format!(
                "text is {} bytes; send_text takes at most {MAX_TEXT} bytes per call: send it in parts",
                p.text.len()
            )));
        }
        let enter = p.enter.unwrap_or(true);
        let opts = SendOpts { enter };
        if let Some(list) = &p.sessions {
            let results = join_all(list.iter().map(|t| async {
                let text = p.text.as_str();
                let r = self
                    .write_to(
                        &p.place,
                        t,
                        |s| async move { s.send_text(text, opts).await },
                    )
                    .await
                    .map(|id| id.to_string());
                match r {
                    Ok(id) => ItemOut {
                        target: t.clone(),
                        session: Some(id),
                        ok: true,
                        error: None,
                    },
                    Err(e) => ItemOut {
                        target: t.clone(),
                        session: None,
                        ok: false,
                        error: Some(e.0),
                    },
                }
            }))
            .await;
            return Ok(Json(SendOut {
                session: None,
                chars: None,
                enter,
                results: Some(results),
            }));
        }
        let target = p.session.as_deref().ok_or_else(|| {
            ToolError::new("give `session` (or `sessions`); call list_sessions to find one")
        })?;
        let text = p.text.as_str();
        let id = self
            .write_to(&p.place, target, |s| async move {
                s.send_text(text, opts).await
            })
            .await?;
        Ok(Json(SendOut {
            session: Some(id.to_string()),
            chars: Some(p.text.chars().count()),
            enter,
            results: None,
        }))
    }

    /// Press keys in a session, in order: control keys (C-c to interrupt, C-d, C-z), Escape, Enter,
    /// Tab, arrows, PageUp, F1-F12, M-x, or single characters. For text use send_text. Key names:
    /// resource termloom://keys-reference.
    #[tool(annotations(
        title = "Send keys",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn send_keys(
        &self,
        Parameters(p): Parameters<SendKeysParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        if p.keys.is_empty() {
            return Err(ToolError::new(
                "keys is empty; give at least one key, e.g. [\"C-c\"]",
            ));
        }
        if p.keys.len() > 1000 {
            return Err(ToolError::new("at most 1000 keys per call"));
        }
        let keys: Vec<Key> = p
            .keys
            .iter()
            .map(|k| k.parse::<Key>())
            .collect::<Result<_, _>>()?;
        let keys = keys.as_slice();
        let id = self
            .write_to(
                &p.place,
                &p.session,
                |s| async move { s.send_keys(keys).await },
            )
            .await?;
        Ok(Json(DoneOut {
            ok: true,
            session: Some(id.to_string()),
            message: format!(
                "pressed {}",
                keys.iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }))
    }

    /// Read a session's output: the last `lines` (default 50 or the session's max_lines), an absolute
    /// range (`from_line`..`to_line`), what was printed `since` a cursor from an earlier read, or the
    /// `screen`. With `pattern`, search the whole scrollback instead and return each match with
    /// `context_lines` around it. Every read but a search returns a `cursor` for the next `since`. Long output keeps
    /// its head and tail, with a note of what was left out.
    #[tool(annotations(
        title = "Read output",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn read_output(
        &self,
        Parameters(p): Parameters<ReadOutputParams>,
    ) -> Result<Json<ReadOut>, ToolError> {
        let max_chars = p
            .max_chars
            .map(|m| m as usize)
            .unwrap_or(usize::MAX)
            .min(self.cfg().max_chars)
            .max(100);
        let modes = [
            p.lines.is_some(),
            p.from_line.is_some() || p.to_line.is_some(),
            p.since.is_some(),
            p.screen == Some(true),
            p.pattern.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if modes > 1 {
            return Err(ToolError::new(
                "give only one of lines, from_line/to_line, since, screen and pattern",
            ));
        }
        if p.pattern.is_none()
            && let Some(s) = self.hinted(&p.place, &p.session, false).await
        {
            let loom = self.loom(&p.place)?;
            match read_plain(&p, &loom, s.as_ref(), max_chars).await {
                Ok(out) => return Ok(Json(out)),
                Err(e) if Loom::hint_failed(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (loom, info, s) = self.open_readable(&p.place, &p.session).await?;
        let id = info.id.to_string();
        if let Some(pattern) = &p.pattern {
            let re_src = if p.ignore_case == Some(true) {
                format!("(?i){pattern}")
            } else {
                pattern.clone()
            };
            compile_regex(&re_src)?;
            let res = s
                .search(&SearchOpts {
                    pattern: pattern.clone(),
                    context: p.context_lines.unwrap_or(2).min(100) as usize,
                    max_matches: Some(200),
                    ignore_case: p.ignore_case.unwrap_or(false),
                })
                .await?;
            let with_numbers = p.include_line_numbers.unwrap_or(true);
            let line = |n: u64, t: &str, mark: &str| {
                if with_numbers {
                    format!("{n}{mark} {t}")
                } else {
                    t.to_string()
                }
            };
            let blocks: Vec<String> = res
                .blocks()
                .into_iter()
                .map(|b| {
                    b.into_iter()
                        .map(|(n, t, is_match)| line(n, t, if is_match { ">" } else { ":" }))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            let mut text = blocks.join("\n--\n");
            let mut truncated = res.truncated;
            let mut note = res
                .truncated
                .then(|| "more than 200 matches; showing the first 200".to_string());
            if let Some((cut, n)) = crate::cap::cut_text(&text, max_chars) {
                text = cut;
                truncated = true;
                note = Some(n);
            }
            return Ok(Json(ReadOut {
                session: id,
                text,
                // The first line of the text: the first block's first context line.
                first_line: res
                    .blocks()
                    .first()
                    .and_then(|b| b.first())
                    .map(|(n, _, _)| *n)
                    .unwrap_or(0),
                total_lines: res.lines_searched,
                truncated,
                note: note.or_else(|| {
                    res.matches
                        .is_empty()
                        .then(|| format!("no line matches '{pattern}'"))
                }),
                cursor: String::new(),
                matches: Some(res.matches.len()),
                match_lines: Some(res.matches.iter().map(|m| m.line).collect()),
            }));
        }
        Ok(Json(read_plain(&p, &loom, s.as_ref(), max_chars).await?))
    }

    /// Run a shell command in a session and wait for it to finish. Returns its exit code, only its
    /// output (not the prompt or the echoed command), duration_ms and the detection strategy. Give
    /// `session`; or `window` (with `workspace`) to run in that window, created when missing; or
    /// `sessions` to run in several in parallel. After `timeout_ms` (default 30000) the result says
    /// `running: true` with a `handle` for wait_for; `wait: false` returns at once with the handle.
    /// Sends progress notifications while waiting when the client asks for them.
    #[tool(annotations(
        title = "Run command",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn run_command(
        &self,
        Parameters(p): Parameters<RunCommandParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RunCommandOut>, ToolError> {
        check_targets(&p.session, &p.sessions)?;
        if p.command.len() > MAX_TEXT {
            return Err(ToolError::new(format!(
                "command is {} bytes; at most {MAX_TEXT}",
                p.command.len()
            )));
        }
        if p.command.trim().is_empty() {
            return Err(ToolError::new("command is empty"));
        }
        if let Some(prompt) = &p.prompt {
            compile_regex(prompt)?;
        }
        let wait = p.wait.unwrap_or(true);
        let timeout_ms = if wait {
            p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)
        } else {
            0
        };
        let opts = RunOpts {
            command: p.command.clone(),
            timeout: Duration::from_millis(timeout_ms),
            prompt: p.prompt.clone(),
            quiet: p.quiet_ms.map(Duration::from_millis),
            max_lines: None,
            max_bytes: Some(self.cfg().max_chars),
        };
        let waiter = Waiter::new(ctx);
        if let Some(list) = &p.sessions {
            let results = waiter
                .drive("running", timeout_ms, async {
                    Ok(join_all(list.iter().map(|t| async {
                        match self
                            .run_one(&p.place, t, &opts)
                            .await
                            .map(|r| started(r, wait))
                        {
                            Ok(r) => RunItemOut {
                                target: t.clone(),
                                ok: true,
                                result: Some(r),
                                error: None,
                            },
                            Err(e) => RunItemOut {
                                target: t.clone(),
                                ok: false,
                                result: None,
                                error: Some(e.0),
                            },
                        }
                    }))
                    .await)
                })
                .await?;
            return Ok(Json(RunCommandOut {
                session: None,
                exit_code: None,
                output: None,
                timed_out: None,
                running: None,
                strategy: None,
                duration_ms: None,
                handle: None,
                truncated: None,
                note: None,
                results: Some(results),
            }));
        }
        let target = match (&p.session, &p.window) {
            (Some(s), None) => s.clone(),
            (Some(_), Some(_)) => {
                return Err(ToolError::new(
                    "give either `session` or `window`, not both",
                ));
            }
            (None, Some(w)) => {
                let info = self
                    .window_session(&p.place, p.workspace.clone(), w)
                    .await?;
                info.id.to_string()
            }
            (None, None) => {
                return Err(ToolError::new(
                    "give `session` (or `window`, or `sessions`); call list_sessions to find one, or create_session",
                ));
            }
        };
        let out = waiter
            .drive(
                "running",
                timeout_ms,
                self.run_one(&p.place, &target, &opts),
            )
            .await?;
        Ok(Json(started(out, wait).into()))
    }

    /// Wait in a session until a new line of output matches `pattern` (returns the line), until the
    /// session prints nothing for `idle_ms`, or until a run started by run_command finishes (`handle`).
    /// Gives up after `timeout_ms` (default 30000) with timed_out: true. Sends progress notifications
    /// while waiting when the client asks for them.
    #[tool(annotations(
        title = "Wait for output",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn wait_for(
        &self,
        Parameters(p): Parameters<WaitForParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<WaitOut>, ToolError> {
        let n = [p.pattern.is_some(), p.idle_ms.is_some(), p.handle.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            return Err(ToolError::new(
                "give exactly one of pattern (a regex), idle_ms or handle (from run_command)",
            ));
        }
        let timeout_ms = p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let timeout = Duration::from_millis(timeout_ms);
        let re = match &p.pattern {
            Some(pat) => Some(compile_regex(pat)?),
            None => None,
        };
        let (_, info, s) = self.open_readable(&p.place, &p.session).await?;
        let id = info.id.to_string();
        let waiter = Waiter::new(ctx);
        let start = Instant::now();
        let waited = || start.elapsed().as_millis() as u64;
        if let Some(re) = re {
            let line = waiter
                .drive("waiting for a match", timeout_ms, async {
                    Ok(s.wait_for(&re, timeout).await?)
                })
                .await?;
            return Ok(Json(WaitOut {
                session: id,
                matched: line.is_some(),
                timed_out: line.is_none(),
                line,
                waited_ms: waited(),
                run: None,
            }));
        }
        if let Some(h) = &p.handle {
            let r = waiter
                .drive("waiting for the command", timeout_ms, async {
                    Ok(s.wait_run(&RunHandle(h.clone()), timeout).await?)
                })
                .await?;
            let run = RunOut::new(id.clone(), r);
            return Ok(Json(WaitOut {
                session: id,
                matched: !run.timed_out,
                timed_out: run.timed_out,
                line: None,
                waited_ms: waited(),
                run: Some(run),
            }));
        }
        let idle = Duration::from_millis(p.idle_ms.unwrap_or(0).max(1));
        let mut stream = s.subscribe().await?;
        let quiet = waiter
            .drive("waiting for quiet", timeout_ms, async {
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    let now = tokio::time::Instant::now();
                    let until = (now + idle).min(deadline);
                    match tokio::time::timeout_at(until, stream.next()).await {
                        // Quiet until `until`: idle when that was a full `idle` period.
                        Err(_) => return Ok(now + idle <= deadline),
                        Ok(None) => return Ok(true),
                        Ok(Some(OutputEvent::Closed { reason })) => {
                            return Err(ToolError::new(format!(
                                "the session's output ended while waiting: {reason}"
                            )));
                        }
                        Ok(Some(_)) => {}
                    }
                }
            })
            .await?;
        Ok(Json(WaitOut {
            session: id,
            matched: quiet,
            timed_out: !quiet,
            line: None,
            waited_ms: waited(),
            run: None,
        }))
    }

    /// Whether a session is busy or idle, its foreground command, the last exit code (when shell
    /// integration reports it) and its working directory.
    #[tool(annotations(
        title = "Get status",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_status(
        &self,
        Parameters(p): Parameters<SessionParams>,
    ) -> Result<Json<StatusOut>, ToolError> {
        let (_, info, s) = self.open_readable(&p.place, &p.session).await?;
        let st = s.status().await?;
        Ok(Json(StatusOut::new(info.id.to_string(), st)))
    }
}

/// A run started with `wait: false` did not time out: it is `running`, not `timed_out`.
fn started(mut r: RunOut, wait: bool) -> RunOut {
    if !wait && r.running {
        r.timed_out = false;
    }
    r
}

/// A read of lines, a range, a cursor or the screen (every `read_output` but a search).
async fn read_plain(
    p: &ReadOutputParams,
    loom: &Loom,
    s: &dyn Session,
    max_chars: usize,
) -> Result<ReadOut, termloom_core::Error> {
    // The session's own read size (set_max_lines), looked up only when the call gives none.
    let default_lines = || {
        loom.entry(s.id())
            .ok()
            .flatten()
            .and_then(|e| e.max_lines)
            .unwrap_or(DEFAULT_LINES)
    };
    let range = if let Some(c) = &p.since {
        ReadRange::Since(Cursor(c.clone()))
    } else if p.screen == Some(true) {
        ReadRange::Screen
    } else if p.from_line.is_some() || p.to_line.is_some() {
        let from = p.from_line.unwrap_or(0);
        let to = p
            .to_line
            .unwrap_or_else(|| from.saturating_add(default_lines() as u64 - 1));
        ReadRange::Lines { from, to }
    } else {
        ReadRange::Tail(p.lines.map_or_else(default_lines, |n| n as usize))
    };
    let cap = s
        .capture(&CaptureOpts {
            range,
            ansi: p.ansi.unwrap_or(false),
            join_wrapped: false,
            max_lines: None,
            // Room for the cut's own line and note: 200 characters, a quarter of a small cap
            // (a cap of 150 left no room for text at all, and a 103-character text came back
            // cut, longer than itself).
            max_bytes: Some(max_chars - (max_chars / 4).min(200)),
        })
        .await?;
    let mut text = if p.include_line_numbers == Some(true) && !cap.text.is_empty() {
        numbered(&cap.text, cap.first_line)
    } else {
        cap.text
    };
    let mut truncated = cap.truncated;
    let mut note = cap.note;
    if let Some((cut, n)) = crate::cap::cut_text(&text, max_chars) {
        text = cut;
        truncated = true;
        note = Some(note.map(|o| format!("{o}; {n}")).unwrap_or(n));
    }
    Ok(ReadOut {
        session: s.id().to_string(),
        text,
        first_line: cap.first_line,
        total_lines: cap.total_lines,
        truncated,
        note,
        cursor: cap.cursor.0,
        matches: None,
        match_lines: None,
    })
}
