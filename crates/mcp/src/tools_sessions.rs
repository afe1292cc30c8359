//! Session and layout tools.

use std::path::PathBuf;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use termloom_core::{
    Error, Layout, LayoutPlacement, Loom, ResizeSpec, SessionInfo, SessionSpec, SplitSpec,
};

use crate::error::ToolError;
use crate::json::Json;
use crate::server::TermloomServer;
use crate::types::*;

fn path(p: Option<String>) -> Option<PathBuf> {
    p.filter(|s| !s.is_empty()).map(PathBuf::from)
}

fn named(name: &str, s: &SessionInfo) -> NamedOut {
    NamedOut {
        name: name.to_string(),
        id: s.id.to_string(),
        path: s.path(),
    }
}

fn many(created: &[(String, SessionInfo)], error: Option<String>) -> CreatedManyOut {
    CreatedManyOut {
        sessions: created.iter().map(|(n, s)| named(n, s)).collect(),
        ids: created
            .iter()
            .map(|(n, s)| (n.clone(), s.id.to_string()))
            .collect(),
        error,
    }
}

impl TermloomServer {
    async fn workspace_or_default(&self, loom: &Loom, ws: Option<String>) -> Option<String> {
        match ws.filter(|w| !w.is_empty()) {
            Some(w) => Some(w),
            None => self.default_workspace(loom).await,
        }
    }
}

#[tool_router(router = session_tools, vis = "pub(crate)")]
impl TermloomServer {
    /// List the live terminal sessions (each one pane with a shell): persistent id, name, place
    /// (workspace:window.pane), foreground command, cwd, size, and whether this server may write to it.
    /// Use the `id` (or the exact name) as `session` in other tools.
    #[tool(annotations(
        title = "List sessions",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_sessions(
        &self,
        Parameters(p): Parameters<ListSessionsParams>,
    ) -> Result<Json<SessionsOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let all = loom.list_sessions().await?;
        let sessions: Vec<SessionOut> = all
            .iter()
            .filter(|s| p.workspace.as_ref().is_none_or(|w| s.workspace == *w))
            .map(|s| self.out(&loom, s))
            .collect();
        Ok(Json(SessionsOut {
            count: sessions.len(),
            sessions,
        }))
    }

    /// Describe one session: its live details and what termloom's registry remembers of it. Also works
    /// for a session whose pane is gone (by its persistent id): then `alive` is false and `record` tells
    /// what is known.
    #[tool(annotations(
        title = "Get session",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_session(
        &self,
        Parameters(p): Parameters<SessionParams>,
    ) -> Result<Json<GetSessionOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let target = Self::target(&p.session)?;
        match loom.resolve(&target).await {
            Ok(info) => {
                let record = loom
                    .entry(info.id)
                    .ok()
                    .flatten()
                    .map(|e| RecordOut::from(&e));
                Ok(Json(GetSessionOut {
                    id: info.id.to_string(),
                    name: info.name.clone(),
                    alive: true,
                    session: Some(self.out(&loom, &info)),
                    record,
                }))
            }
            Err(Error::SessionDead { id, name }) => {
                let record = id
                    .parse()
                    .ok()
                    .and_then(|id| loom.entry(id).ok().flatten())
                    .map(|e| RecordOut::from(&e));
                Ok(Json(GetSessionOut {
                    id,
                    name,
                    alive: false,
                    session: None,
                    record,
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// List every session termloom's registry remembers for this terminal, alive or dead, with when it
    /// was created and last seen. Persistent ids survive restarts of termloom and of the client.
    #[tool(annotations(
        title = "List persistent sessions",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_persistent_sessions(
        &self,
        Parameters(p): Parameters<ListPersistentParams>,
    ) -> Result<Json<RecordsOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        // A listing first, so that the registry knows which sessions died.
        let _ = loom.list_sessions().await;
        let mut entries = loom.persistent_sessions()?;
        if !p.include_dead.unwrap_or(true) {
            entries.retain(|e| !e.dead);
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.created));
        let sessions: Vec<RecordOut> = entries.iter().map(RecordOut::from).collect();
        Ok(Json(RecordsOut {
            count: sessions.len(),
            sessions,
        }))
    }

    /// Create a session: a new pane with a shell, in a new window of `workspace` (or a split of
    /// `window` when that window exists). Optionally type `command` into it. Returns the session with
    /// its persistent id. Sessions created here are always writable by this server.
    #[tool(annotations(
        title = "Create session",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_session(
        &self,
        Parameters(p): Parameters<CreateSessionParams>,
    ) -> Result<Json<SessionOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let workspace = self.workspace_or_default(&loom, p.workspace).await;
        let spec = SessionSpec {
            name: p.name.filter(|n| !n.is_empty()),
            workspace,
            window: p.window.filter(|w| !w.is_empty()),
            cwd: path(p.cwd),
            env: p.env.unwrap_or_default().into_iter().collect(),
            command: p.command.filter(|c| !c.is_empty()),
            size: None,
        };
        if let Some(w) = &spec.window {
            // The window by its exact name: when it exists, the new session splits it.
            let sel = termloom_core::WindowSel::Name(w.clone());
            self.check_layout_writable(&loom, spec.workspace.as_deref(), Some(&sel))
                .await?;
        }
        let info = loom.create_session(&spec).await?;
        Ok(Json(self.out(&loom, &info)))
    }

    /// Close a session: kill its pane and whatever runs in it. Cannot be undone.
    #[tool(annotations(
        title = "Close session",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn close_session(
        &self,
        Parameters(p): Parameters<SessionParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let (loom, info) = self.find_writable(&p.place, &p.session).await?;
        loom.logged(loom.terminal().open(&info).await?)
            .await
            .close()
            .await?;
        let _ = loom.list_sessions().await;
        Ok(Json(DoneOut {
            ok: true,
            session: Some(info.id.to_string()),
            message: format!("closed session '{}' ({})", info.name, info.path()),
        }))
    }

    /// Rename a session. Names must be unique; the persistent id does not change.
    #[tool(annotations(
        title = "Rename session",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn rename_session(
        &self,
        Parameters(p): Parameters<RenameSessionParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let (loom, info) = self.find_writable(&p.place, &p.session).await?;
        let changing = loom.changing().await;
        loom.logged(loom.terminal().open(&info).await?)
            .await
            .rename(&p.name)
            .await?;
        drop(changing);
        let _ = loom.list_sessions().await;
        Ok(Json(DoneOut {
            ok: true,
            session: Some(info.id.to_string()),
            message: format!("renamed session '{}' to '{}'", info.name, p.name),
        }))
    }

    /// Make a session the active pane of its window and its window the active one, so a person looking
    /// at the terminal sees it. Only when asked: it changes what the person sees.
    #[tool(annotations(
        title = "Focus session",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn focus_session(
        &self,
        Parameters(p): Parameters<SessionParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let (loom, info) = self.find_writable(&p.place, &p.session).await?;
        loom.terminal().open(&info).await?.focus().await?;
        Ok(Json(DoneOut {
            ok: true,
            session: Some(info.id.to_string()),
            message: format!("focused session '{}' ({})", info.name, info.path()),
        }))
    }

    /// Build several panes at once in a new window: a predefined `layout` (single, horizontal,
    /// vertical, quad, main-vertical, main-horizontal, tiled) or a custom `tree`, with a name and an
    /// optional command per pane. Returns each pane's name with its new session id.
    #[tool(annotations(
        title = "Create layout",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_layout(
        &self,
        Parameters(p): Parameters<CreateLayoutParams>,
    ) -> Result<Json<CreatedManyOut>, ToolError> {
        let loom = self.loom(&p.place)?;
        let panes = p.panes.unwrap_or_default();
        let layout = match p.tree {
            Some(tree) => {
                let mut l: Layout = serde_json::from_value(tree).map_err(|e| {
                    ToolError::new(format!(
                        "invalid layout tree: {e}; a tree is {{\"root\": {{\"split\": {{\"direction\": \"horizontal\", \"children\": [{{\"percent\": 50, \"node\": {{\"pane\": {{\"name\": \"a\"}}}}}}, …]}}}}}}"
                    ))
                })?;
                // Panes given alongside a tree add commands and directories to its panes by name.
                for spec in l.panes_mut() {
                    if let Some(extra) = panes.iter().find(|x| x.name == spec.name) {
                        spec.command = extra.command.clone().or(spec.command.take());
                        spec.cwd = path(extra.cwd.clone()).or(spec.cwd.take());
                        spec.focus |= extra.focus.unwrap_or(false);
                    }
                }
                l
            }
            None => {
                let name = p.layout.map(|l| l.as_str()).unwrap_or(if panes.len() <= 1 {
                    "single"
                } else {
                    "tiled"
                });
                let names: Vec<String> = panes.iter().map(|x| x.name.clone()).collect();
                let mut l = Layout::predefined(name, &names)?;
                for (spec, extra) in l.panes_mut().into_iter().zip(panes.iter()) {
                    spec.command = extra.command.clone().filter(|c| !c.is_empty());
                    spec.cwd = path(extra.cwd.clone());
                    spec.focus = extra.focus.unwrap_or(false);
                }
                l
            }
        };
        layout.validate()?;
        let placement = LayoutPlacement {
            workspace: self.workspace_or_default(&loom, p.workspace).await,
            window: p.window.filter(|w| !w.is_empty()),
            cwd: path(p.cwd),
        };

        let changing = loom.changing().await;
        let created = loom.terminal().apply_layout(&layout, &placement).await?;
        drop(changing);
        let infos: Vec<SessionInfo> = created.iter().map(|(_, s)| s.clone()).collect();
        loom.record(&infos);
        Ok(Json(many(&created, None)))
    }

    /// Create several sessions in one call, in order: each in a new window, or, with `split`, by
    /// splitting the previous session of the list (horizontal = side by side, vertical = stacked).
    /// Returns name → session id. Stops at the first failure: the result is then an error that
    /// still lists what was created (and `error` says what failed).
    #[tool(annotations(
        title = "Create sessions",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_sessions(
        &self,
        Parameters(p): Parameters<CreateSessionsParams>,
    ) -> Result<Json<CreatedManyOut>, ToolError> {
        if p.sessions.is_empty() {
            return Err(ToolError::new(
                "sessions is empty; give at least one {name}",
            ));
        }
        if p.sessions.len() > 64 {
            return Err(ToolError::new("at most 64 sessions per call"));
        }
        if p.sessions[0].split.is_some() {
            return Err(ToolError::new(format!(
                "sessions[0] ('{}') has split, but there is no earlier session in the list to split; drop split from the first entry",
                p.sessions[0].name
            )));
        }
        for (i, s) in p.sessions.iter().enumerate() {
            termloom_core::check_session_name(&s.name).map_err(|e| {
                ToolError::new(format!(
                    "sessions[{i}]: {} (nothing was created)",
                    crate::error::describe(&e)
                ))
            })?;
            if let Some(j) = p.sessions[..i].iter().position(|x| x.name == s.name) {
                return Err(ToolError::new(format!(
                    "sessions[{j}] and sessions[{i}] are both named '{}'; session names must be unique",
                    s.name
                )));
            }
        }
        let loom = self.loom(&p.place)?;
        // A name taken already would stop the batch half way: refused before anything is made.
        let live = loom.list_sessions().await?;
        if let Some((i, s)) = p
            .sessions
            .iter()
            .enumerate()
            .find(|(_, s)| live.iter().any(|l| l.name == s.name))
        {
            return Err(ToolError::new(format!(
                "sessions[{i}]: a session named '{}' exists already; pick another name (nothing was created)",
                s.name
            )));
        }
        let workspace = self.workspace_or_default(&loom, p.workspace).await;
        let mut created: Vec<(String, SessionInfo)> = Vec::new();
        for (i, s) in p.sessions.iter().enumerate() {
            let res = match (s.split, created.last()) {
                (Some(dir), Some((_, prev))) => {
                    let session = loom.terminal().open(prev).await;
                    match session {
                        Ok(session) => {
                            let _changing = loom.changing().await;
                            session
                                .split(&SplitSpec {
                                    direction: dir.into(),
                                    percent: None,
                                    name: Some(s.name.clone()),
                                    before: false,
                                    cwd: path(s.cwd.clone()),
                                    command: s.command.clone().filter(|c| !c.is_empty()),
                                })
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
                _ => {
                    loom.create_session(&SessionSpec {
                        name: Some(s.name.clone()),
                        workspace: workspace.clone(),
                        window: if i == 0 { p.window.clone() } else { None },
                        cwd: path(s.cwd.clone()),
                        command: s.command.clone().filter(|c| !c.is_empty()),
                        ..SessionSpec::default()
                    })
                    .await
                }
            };
            match res {
                Ok(info) => {
                    loom.record(std::slice::from_ref(&info));
                    created.push((s.name.clone(), info));
                }
                Err(e) => {
                    let msg = format!(
                        "session '{}' (#{}) failed: {}",
                        s.name,
                        i + 1,
                        crate::error::describe(&e)
                    );
                    if created.is_empty() {
                        return Err(ToolError::new(msg));
                    }
                    return Ok(Json(many(&created, Some(msg))));
                }
            }
        }
        Ok(Json(many(&created, None)))
    }

    /// Split a session's pane in two and start a new session in the new half: horizontal = side by
    /// side (new pane on the right), vertical = stacked (new pane below). Returns the new session.
    #[tool(annotations(
        title = "Split pane",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn split_pane(
        &self,
        Parameters(p): Parameters<SplitPaneParams>,
    ) -> Result<Json<SessionOut>, ToolError> {
        let (loom, info) = self.find_writable(&p.place, &p.session).await?;
        if let Some(pc) = p.percent
            && !(1..=99).contains(&pc)
        {
            return Err(ToolError::new(format!("percent must be 1-99, got {pc}")));
        }
        let changing = loom.changing().await;
        let new = loom
            .terminal()
            .open(&info)
            .await?
            .split(&SplitSpec {
                direction: p.direction.into(),
                percent: p.percent,
                name: p.name.filter(|n| !n.is_empty()),
                before: p.before.unwrap_or(false),
                cwd: path(p.cwd),
                command: p.command.filter(|c| !c.is_empty()),
            })
            .await?;
        drop(changing);
        loom.record(std::slice::from_ref(&new));
        Ok(Json(self.out(&loom, &new)))
    }

    /// Resize a session's pane to `width` columns and/or `height` rows, or zoom it to fill its window
    /// (`zoom: true`; `false` unzooms).
    #[tool(annotations(
        title = "Resize pane",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn resize_pane(
        &self,
        Parameters(p): Parameters<ResizePaneParams>,
    ) -> Result<Json<DoneOut>, ToolError> {
        let (loom, info) = self.find_writable(&p.place, &p.session).await?;
        loom.terminal()
            .open(&info)
            .await?
            .resize(&ResizeSpec {
                width: p.width,
                height: p.height,
                zoom: p.zoom,
            })
            .await?;
        Ok(Json(DoneOut {
            ok: true,
            session: Some(info.id.to_string()),
            message: format!("resized session '{}'", info.name),
        }))
    }

    /// Set how many lines read_output returns for a session when it is given no `lines` (null
    /// restores the default of 50). Stored in termloom's registry; the terminal is not changed.
    #[tool(annotations(
        title = "Set default read size",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn set_max_lines(
        &self,
        Parameters(p): Parameters<SetMaxLinesParams>,
    ) -> Result<Json<MaxLinesOut>, ToolError> {
        let (loom, info) = self.find(&p.place, &p.session).await?;
        // A setting of the session's, changed like the others: only where this server writes.
        self.check_write(&loom, &info)?;
        let Some(reg) = loom.registry() else {
            return Err(ToolError::new(
                "this server keeps no registry (its state dir is not writable), so it cannot remember a read size",
            ));
        };
        let lines = p.lines.map(|n| n as usize);
        if lines == Some(0) {
            return Err(ToolError::new(
                "lines must be at least 1, or null for the default",
            ));
        }
        if !reg.set_max_lines(info.id, lines)? {
            loom.record(std::slice::from_ref(&info));
            reg.set_max_lines(info.id, lines)?;
        }
        Ok(Json(MaxLinesOut {
            session: info.id.to_string(),
            max_lines: lines,
        }))
    }
}
