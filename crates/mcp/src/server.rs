//! [`TermloomServer`]: the rmcp handler. It owns the safety rules (tier, scope, own pane, allowed
//! terminals), wraps every tool call (tier check, argument check, audit log, result cap) and serves
//! resources and prompts. The tools themselves live in `tools_*.rs`, each a `#[tool_router]` block.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::model::SubscriptionFilter;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;
use termloom_core::{Loom, SessionInfo, Target};

use crate::audit::{Audit, Outcome};
use crate::config::{Config, Scope, Tier};
use crate::error::ToolError;
use crate::monitor::Monitors;
use crate::types::{Place, SessionOut};

/// State shared by every connection (each HTTP session gets its own handler clone).
pub(crate) struct Shared {
    pub cfg: Config,
    pub audit: Audit,
    pub monitors: Monitors,
    visible: OnceLock<Vec<Tool>>,
    hosts: Mutex<HashMap<String, Loom>>,
}

/// The MCP handler: cheap to clone, all state behind one `Arc`.
#[derive(Clone)]
pub struct TermloomServer {
    pub(crate) shared: Arc<Shared>,
}

/// The tier a tool needs. Read-only tools change nothing in any terminal; destructive ones kill.
pub fn tier_of(tool: &str) -> Tier {
    match tool {
        "list_sessions"
        | "get_session"
        | "list_persistent_sessions"
        | "list_workspaces"
        | "list_windows"
        | "read_output"
        | "wait_for"
        | "get_status"
        | "start_monitoring"
        | "stop_monitoring"
        | "list_projects" => Tier::ReadOnly,
        "close_session" | "destroy_workspace" | "close_window" => Tier::Destructive,
        _ => Tier::Write,
    }
}

fn router() -> &'static ToolRouter<TermloomServer> {
    static ROUTER: OnceLock<ToolRouter<TermloomServer>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        TermloomServer::session_tools()
            + TermloomServer::window_tools()
            + TermloomServer::io_tools()
            + TermloomServer::monitor_tools()
            + TermloomServer::project_tools()
    })
}

/// Every tool the server knows, whatever the tier (for docs and tests).
pub fn all_tools() -> Vec<Tool> {
    router().list_all()
}

const INSTRUCTIONS: &str = "termloom drives real terminals (tmux panes). A session is one pane with a shell, \
named by its persistent UUID (best), an id prefix (id:3f2a), its exact name, workspace:window.pane, or a \
native id (tmux:%3). Start with list_sessions or create_session. run_command runs a command and returns its \
exit code and only its output; send_text/send_keys type into interactive programs; read_output reads (pass \
the returned cursor as `since` to get only new output). Results are capped; a note says what was left out. \
Resources: termloom://keys-reference (key names), termloom://common-patterns (recipes).";

impl TermloomServer {
    /// A server with this configuration. Nothing is spawned or connected until a tool needs it.
    pub fn new(cfg: Config) -> Self {
        let audit = Audit::new(cfg.audit_log.clone());
        TermloomServer {
            shared: Arc::new(Shared {
                cfg,
                audit,
                monitors: Monitors::default(),
                visible: OnceLock::new(),
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn cfg(&self) -> &Config {
        &self.shared.cfg
    }

    /// The tools offered at this server's tier, with `additionalProperties: false` on their inputs.
    pub fn visible_tools(&self) -> &[Tool] {
        self.shared.visible.get_or_init(|| {
            let tools = self.build_visible();
            release_freed_memory();
            tools
        })
    }

    fn build_visible(&self) -> Vec<Tool> {
        {
            router()
                .list_all()
                .into_iter()
                .filter(|t| tier_of(&t.name) <= self.cfg().tier)
                .map(|mut t| {
                    let mut schema = Value::Object((*t.input_schema).clone());
                    tidy_schema(&mut schema);
                    if let Value::Object(mut o) = schema {
                        o.remove("$schema");
                        o.insert("additionalProperties".into(), Value::Bool(false));
                        t.input_schema = Arc::new(o);
                    }
                    if let Some(out) = &t.output_schema {
                        let mut schema = Value::Object((**out).clone());
                        tidy_schema(&mut schema);
                        if let Value::Object(mut o) = schema {
                            o.remove("$schema");
                            tidy_output(&mut o);
                            t.output_schema = Some(Arc::new(o));
                        }
                    }
                    t.description = t.description.map(|d| Cow::Owned(unwrap_lines(&d)));
                    t
                })
                .collect()
        }
    }

    /// Whether a prompt is offered at this server's tier: `execute_command` asks for tools that
    /// write (create_session, run_command), not offered under read-only.
    fn prompt_offered(&self, name: &str) -> bool {
        name != "execute_command" || self.cfg().tier >= Tier::Write
    }

    pub(crate) fn prompts() -> &'static PromptRouter<TermloomServer> {
        static PROMPTS: OnceLock<PromptRouter<TermloomServer>> = OnceLock::new();
        PROMPTS.get_or_init(TermloomServer::prompt_router)
    }

    // -----------------------------------------------------------------------------------------
    // Terminals, targets and the safety rules
    // -----------------------------------------------------------------------------------------

    /// The terminal a call reaches: the default, one named at start by socket, or an allowed host.
    pub(crate) fn loom(&self, place: &Place) -> Result<Loom, ToolError> {
        let looms = &self.cfg().looms;
        if let Some(host) = place.host.as_deref().filter(|h| !h.is_empty()) {
            if place.socket.is_some() {
                return Err(ToolError::new(
                    "give `host` or `socket`, not both (a host's terminal uses the server's socket options)",
                ));
            }
            if let Some(l) = looms
                .iter()
                .find(|l| l.terminal().key().host.as_deref() == Some(host))
            {
                return Ok(l.clone());
            }
            let mut hosts = self.shared.hosts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = hosts.get(host) {
                return Ok(l.clone());
            }
            let Some(connect) = &self.cfg().connect_host else {
                return Err(ToolError::new(format!(
                    "refused: host '{host}' was not allowed when this server was started (no --allow-host); it only reaches {}. Omit `host` (for a project, it is its file's `host:`), or ask the person to restart the server with --allow-host",
                    self.known_terminals()
                )));
            };
            let loom = connect(host).map_err(ToolError::new)?;
            hosts.insert(host.to_string(), loom.clone());
            return Ok(loom);
        }
        if let Some(socket) = place.socket.as_deref().filter(|s| !s.is_empty()) {
            return looms
                .iter()
                .find(|l| l.terminal().key().socket.as_deref() == Some(socket))
                .cloned()
                .ok_or_else(|| {
                    ToolError::new(format!(
                        "refused: socket '{socket}' was not named when this server was started; it only reaches {}. Omit `socket`, or ask the person to restart the server with --allow-socket",
                        self.known_terminals()
                    ))
                });
        }
        looms
            .first()
            .cloned()
            .ok_or_else(|| ToolError::new("this server has no terminal configured"))
    }

    fn known_terminals(&self) -> String {
        self.cfg()
            .looms
            .iter()
            .map(|l| l.terminal().key().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a target with the core grammar.
    pub(crate) fn target(text: &str) -> Result<Target, ToolError> {
        Ok(text.parse::<Target>()?)
    }

    /// Resolves a session target against a fresh listing.
    pub(crate) async fn find(
        &self,
        place: &Place,
        target: &str,
    ) -> Result<(Loom, SessionInfo), ToolError> {
        let loom = self.loom(place)?;
        let t = Self::target(target)?;
        let info = loom.resolve(&t).await?;
        Ok((loom, info))
    }

    /// The terminal a resource URI's session is on: a full id is looked for on every terminal
    /// this server reaches (ids are unique everywhere; a monitor on `--allow-socket`'s server
    /// hands out such a URI), anything else on the default one.
    pub(crate) async fn locate(
        &self,
        target: &Target,
    ) -> Result<(Loom, termloom_core::Result<SessionInfo>), ToolError> {
        let first = self.loom(&Place::default())?;
        let found = first.resolve(target).await;
        if !matches!(target, Target::Id(_))
            || !matches!(found, Err(termloom_core::Error::SessionNotFound { .. }))
        {
            return Ok((first, found));
        }
        let hosts: Vec<Loom> = self
            .shared
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for loom in self.cfg().looms.iter().skip(1).chain(hosts.iter()) {
            match loom.resolve(target).await {
                Err(termloom_core::Error::SessionNotFound { .. }) => {}
                other => return Ok((loom.clone(), other)),
            }
        }
        Ok((first, found))
    }

    /// True for the pane this server runs in.
    pub(crate) fn is_own(&self, loom: &Loom, info: &SessionInfo) -> bool {
        self.is_own_native(loom, &info.native)
    }

    /// True for the pane this server runs in, by its native id.
    pub(crate) fn is_own_native(&self, loom: &Loom, native: &termloom_core::NativeId) -> bool {
        match &self.cfg().own_session {
            Some((key, own)) => native == own && loom.terminal().key() == *key,
            None => false,
        }
    }

    /// Whether write tools may touch this session.
    pub(crate) fn writable(&self, loom: &Loom, info: &SessionInfo) -> bool {
        !self.is_own(loom, info) && (self.cfg().scope == Scope::All || info.managed)
    }

    /// Refuses writes to the server's own pane and, under `--scope managed`, to unmanaged sessions.
    pub(crate) fn check_write(&self, loom: &Loom, info: &SessionInfo) -> Result<(), ToolError> {
        if self.is_own(loom, info) {
            return Err(ToolError::new(format!(
                "refused: session '{}' ({}) is the pane this MCP server runs in, and the server never types into or changes its own pane; create_session makes another one",
                info.name, info.id
            )));
        }
        if self.cfg().scope == Scope::Managed && !info.managed {
            return Err(ToolError::new(format!(
                "refused: session '{}' ({}) was not created by termloom and nobody tagged it, and this server was started with --scope managed, so it can only read it. Use create_session for a session you may write to, or ask the person to run `termloom tag {}` or to restart the server with --scope all",
                info.name, info.id, info.id
            )));
        }
        Ok(())
    }

    /// Resolves a target and checks that it may be written to.
    pub(crate) async fn find_writable(
        &self,
        place: &Place,
        target: &str,
    ) -> Result<(Loom, SessionInfo), ToolError> {
        let (loom, info) = self.find(place, target).await?;
        self.check_write(&loom, &info)?;
        Ok((loom, info))
    }

    /// The result form of a live session.
    pub(crate) fn out(&self, loom: &Loom, info: &SessionInfo) -> SessionOut {
        SessionOut::new(info, self.writable(loom, info), self.is_own(loom, info))
    }

    /// The workspace new sessions go to when the caller names none: the one this server runs in.
    pub(crate) async fn default_workspace(&self, loom: &Loom) -> Option<String> {
        let (key, native) = self.cfg().own_session.as_ref()?;
        if loom.terminal().key() != *key {
            return None;
        }
        let all = loom.list_sessions().await.ok()?;
        all.into_iter()
            .find(|s| s.native == *native)
            .map(|s| s.workspace)
    }

    /// Every session of a workspace, each checked for writing (for window and workspace changes).
    pub(crate) async fn check_workspace_writable(
        &self,
        loom: &Loom,
        workspace: &str,
        window: Option<&termloom_core::WindowSel>,
    ) -> Result<(), ToolError> {
        let all = loom.list_sessions().await?;
        for s in all.iter().filter(|s| {
            s.workspace == workspace
                && window.is_none_or(|w| w.matches(s.window_index, &s.window_name))
        }) {
            self.check_write(loom, s)?;
        }
        Ok(())
    }

    /// Under `--scope managed`, refuses to change the shape of a window (split it) or switch
    /// the active window of a workspace that holds sessions this server may not write to: the
    /// person's panes would shrink or their view change. Adding a window that is not selected
    /// changes nothing of theirs and is not checked. Under `--scope all` nothing is refused.
    pub(crate) async fn check_layout_writable(
        &self,
        loom: &Loom,
        workspace: Option<&str>,
        window: Option<&termloom_core::WindowSel>,
    ) -> Result<(), ToolError> {
        match workspace {
            Some(ws) if self.cfg().scope == Scope::Managed => {
                self.check_workspace_writable(loom, ws, window).await
            }
            _ => Ok(()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The call wrapper
    // -----------------------------------------------------------------------------------------

    fn refusal(&self, name: &str) -> Option<String> {
        if self.cfg().client_gone.as_ref().is_some_and(|gone| gone()) {
            return Some(format!(
                "refused: the client stopped reading this server's output, so '{name}' was not carried out"
            ));
        }
        if router().get(name).is_none() {
            let offered: Vec<&str> = self
                .visible_tools()
                .iter()
                .map(|t| t.name.as_ref())
                .collect();
            return Some(format!(
                "unknown tool '{name}'; call tools/list to see the {} tools this server offers ({})",
                offered.len(),
                offered.join(", ")
            ));
        }
        let need = tier_of(name);
        if need > self.cfg().tier {
            return Some(format!(
                "refused: tool '{name}' needs --tier {need}, and this server was started with --tier {}; only the person who starts the server can change that",
                self.cfg().tier
            ));
        }
        None
    }

    /// What is wrong with a call's arguments that the tool's schema tells: parameters it does not
    /// have, or numbers outside the ranges it declares (`minimum`, `maximum`), which the schema
    /// promises are refused.
    fn argument_error(&self, name: &str, args: Option<&JsonObject>) -> Option<String> {
        let tool = self.visible_tools().iter().find(|t| t.name == name)?;
        let props = tool.input_schema.get("properties")?.as_object()?;
        let args = args?;
        let unknown: Vec<&String> = args.keys().filter(|k| !props.contains_key(*k)).collect();
        if !unknown.is_empty() {
            return Some(format!(
                "invalid arguments for {name}: unknown parameter(s) {}; its parameters are {}",
                unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                describe_params(&tool.input_schema)
            ));
        }
        args.iter().find_map(|(k, v)| {
            let n = v.as_f64()?;
            let p = props.get(k)?;
            let min = p.get("minimum").and_then(Value::as_f64);
            let max = p.get("maximum").and_then(Value::as_f64);
            if min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m) {
                return None;
            }
            let range = match (p.get("minimum"), p.get("maximum")) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => return None,
            };
            Some(format!(
                "invalid arguments for {name}: '{k}' must be {range}, got {v}"
            ))
        })
    }

    fn finish(&self, name: &str, mut result: CallToolResult) -> CallToolResult {
        let max = self.cfg().max_chars;
        if result.is_error == Some(true) {
            for block in result.content.iter_mut() {
                if let Some(t) = block.as_text()
                    && let Some(msg) = fix_argument_error(name, &t.text, self.visible_tools())
                {
                    *block = ContentBlock::text(msg);
                }
                if let Some(t) = block.as_text()
                    && let Some((cut, _)) = crate::cap::cut_text(&t.text, max)
                {
                    *block = ContentBlock::text(cut);
                }
            }
            return result;
        }
        // A call on several sessions that failed on every one of them is an error (a client
        // that looks only at isError took a refused write for a success).
        if let Some(items) = result
            .structured_content
            .as_ref()
            .and_then(|v| v.get("results"))
            .and_then(|r| r.as_array())
            && !items.is_empty()
            && items
                .iter()
                .all(|i| i.get("error").is_some_and(|e| !e.is_null()))
        {
            result.is_error = Some(true);
        }
        // A call that stopped half way (create_sessions) says why in a top-level `error`, next
        // to what it made: that is an error too.
        if result
            .structured_content
            .as_ref()
            .and_then(|v| v.get("error"))
            .is_some_and(|e| !e.is_null())
        {
            result.is_error = Some(true);
        }
        // rmcp put the serialized JSON in the text content: when that fits (bytes ≥ chars), done.
        let fits = result
            .content
            .first()
            .and_then(|b| b.as_text())
            .is_some_and(|t| t.text.len() <= max);
        if !fits && let Some(v) = result.structured_content.as_mut() {
            crate::cap::fit(v, max);
            result.content = vec![ContentBlock::text(
                serde_json::to_string(v).unwrap_or_default(),
            )];
        }
        result
    }
}

/// Gives the heap's free pages back to the system. Building the tool list (JSON Schema generation)
/// leaves a few MiB of freed temporaries that glibc would otherwise keep for the life of the process.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops what only adds tokens: `"default": null` and Rust's integer `format`s (not JSON Schema's).
fn tidy_schema(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("default") == Some(&Value::Null) {
                o.remove("default");
            }
            if o.get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("int") || f.starts_with("uint"))
            {
                o.remove("format");
            }
            o.values_mut().for_each(tidy_schema);
        }
        Value::Array(a) => a.iter_mut().for_each(tidy_schema),
        _ => {}
    }
}

/// Output schemas keep the descriptions of their top-level fields only, and no bounds: the model
/// reads results, it does not validate them, and every byte of `tools/list` costs context.
fn tidy_output(o: &mut JsonObject) {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("description");
                o.remove("minimum");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    if let Some(Value::Object(defs)) = o.get_mut("$defs") {
        defs.values_mut().for_each(strip);
    }
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        for p in props.values_mut() {
            let desc = p.get("description").cloned();
            strip(p);
            if let (Some(d), Value::Object(po)) = (desc, p) {
                po.insert("description".into(), d);
            }
        }
    }
}

/// Joins the hard-wrapped lines of a doc comment into paragraphs.
fn unwrap_lines(d: &str) -> String {
    d.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `session (string, required), lines (integer), …` from an input schema.
fn describe_params(schema: &JsonObject) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return "none".into();
    };
    if props.is_empty() {
        return "none".into();
    }
    props
        .iter()
        .map(|(k, v)| {
            let ty = v
                .get("type")
                .map(|t| match t {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| *s != "null")
                        .collect::<Vec<_>>()
                        .join("|"),
                    _ => String::new(),
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "value".into());
            if required.contains(&k.as_str()) {
                format!("{k} ({ty}, required)")
            } else {
                format!("{k} ({ty})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// rmcp's "failed to deserialize parameters: …" made actionable.
fn fix_argument_error(name: &str, text: &str, tools: &[Tool]) -> Option<String> {
    let detail = text
        .strip_prefix("failed to deserialize parameters:")?
        .trim();
    let params = tools
        .iter()
        .find(|t| t.name == name)
        .map(|t| describe_params(&t.input_schema))
        .unwrap_or_default();
    Some(format!(
        "invalid arguments for {name}: {detail}; its parameters are {params}"
    ))
}

impl ServerHandler for TermloomServer {
    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        let prompts = Self::prompts()
            .list_all()
            .into_iter()
            .filter(|p| self.prompt_offered(&p.name))
            .collect();
        let cache_hints = context
            .protocol_version()
            .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        Ok(rmcp::model::ListPromptsResult {
            result_type: Some(rmcp::model::ResultType::COMPLETE),
            prompts,
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(rmcp::model::CacheScope::Public),
        })
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        if !self.prompt_offered(&request.name) {
            return Err(McpError::invalid_params(
                format!(
                    "prompt '{}' is not offered at --tier {} (it asks for tools this tier refuses); call prompts/list",
                    request.name,
                    self.cfg().tier
                ),
                None,
            ));
        }
        let ctx = rmcp::handler::server::prompt::PromptContext::new(
            self,
            request.name,
            request.arguments,
            context,
        );
        Self::prompts().get_prompt(ctx).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("termloom", env!("CARGO_PKG_VERSION")).with_title("termloom"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.visible_tools().to_vec(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.visible_tools()
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let start = Instant::now();
        let name: Cow<'static, str> = request.name.clone();
        let args = request.arguments.clone();
        let early = self.refusal(&name).map(|m| ("refused", m)).or_else(|| {
            self.argument_error(&name, args.as_ref())
                .map(|m| ("error", m))
        });
        let response = match early {
            Some((_, ref msg)) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(msg.clone())]).into())
            }
            None => {
                router()
                    .call(ToolCallContext::new(self, request, context))
                    .await
            }
        };
        let response = response.map(|r| match r {
            CallToolResponse::Complete(c) => CallToolResponse::Complete(self.finish(&name, c)),
            other => other,
        });
        let (status, error) = match (&early, &response) {
            (Some((s, m)), _) => (*s, Some(m.clone())),
            (None, Ok(CallToolResponse::Complete(c))) if c.is_error == Some(true) => (
                "error",
                c.content
                    .first()
                    .and_then(|b| b.as_text())
                    .map(|t| t.text.clone()),
            ),
            (None, Ok(_)) => ("ok", None),
            (None, Err(e)) => ("error", Some(e.message.to_string())),
        };
        self.shared.audit.record(
            &self.cfg().transport,
            &name,
            args.as_ref(),
            Outcome {
                status,
                error: error.as_deref(),
                duration_ms: start.elapsed().as_secs_f64() * 1000.0,
            },
        );
        response
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            crate::resources::static_resources(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            crate::resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        crate::resources::read(self, &request.uri).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // 2026-07-28's subscriptions/listen: output resources named by a session's id (the URI
        // notifications carry), as resources/subscribe takes them.
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|u| crate::resources::canonical_output_uri(u))
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let key = self.shared.monitors.listen(uris, context.sink().clone());
        context.cancelled().await;
        self.shared.monitors.unlisten(key);
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        crate::resources::check_subscription(self, &request.uri).await?;
        self.shared.monitors.subscribe(&request.uri, context.peer);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared
            .monitors
            .unsubscribe(&request.uri, &context.peer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_agree_with_tiers() {
        let tools = all_tools();
        assert_eq!(
            tools.len(),
            32,
            "{:?}",
            tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        for t in &tools {
            let a = t.annotations.as_ref().expect("every tool is annotated");
            let ro = a.read_only_hint == Some(true);
            assert_eq!(ro, tier_of(&t.name) == Tier::ReadOnly, "{}", t.name);
            if tier_of(&t.name) == Tier::Destructive {
                assert_eq!(a.destructive_hint, Some(true), "{}", t.name);
            }
            assert!(a.title.is_some(), "{}", t.name);
            assert!(a.open_world_hint.is_some(), "{}", t.name);
            assert!(a.idempotent_hint.is_some(), "{}", t.name);
            assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
            let d = t.description.as_deref().unwrap_or("");
            assert!(d.len() > 40, "{} has a real description", t.name);
        }
    }

    #[test]
    fn params_are_described_for_error_messages() {
        let tools = all_tools();
        let t = tools.iter().find(|t| t.name == "send_keys").unwrap();
        let d = describe_params(&t.input_schema);
        assert!(d.contains("session (string, required)"), "{d}");
        assert!(d.contains("keys (array, required)"), "{d}");
        assert!(d.contains("socket (string)"), "{d}");
    }
}
