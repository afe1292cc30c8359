//! The one place core errors become what a model reads: an `isError` tool result whose message says
//! what went wrong and what to call next. Protocol errors are left for requests rmcp cannot route.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use termloom_core::Error;

/// A failed tool call, shown to the model as an `isError` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        ToolError(msg.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(self.0)]).into())
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        ToolError(describe(&e))
    }
}

/// The message for a core error, with the next step to take.
pub fn describe(e: &Error) -> String {
    let hint = match e {
        Error::SessionNotFound { .. } => {
            "; call list_sessions to see the live sessions and their ids"
        }
        Error::AmbiguousTarget { .. } => "; pass one of their ids instead",
        Error::DuplicateId { .. } => {
            "; tell the person: only they can say which pane is the session"
        }
        Error::InvalidTarget { .. } => {
            "; a session is named by its UUID, an id prefix (id:3f2a), its exact name, workspace:window.pane, or a native id such as tmux:%3 (call list_sessions)"
        }
        Error::InvalidKey { .. } => "; read the resource termloom://keys-reference for key names",
        Error::InvalidRegex { .. } => "; fix the pattern (Rust regex syntax, e.g. 'error|failed')",
        Error::WorkspaceNotFound(_) => "; call list_workspaces to see the workspaces",
        Error::WindowNotFound(_) => "; call list_windows to see the windows",
        Error::SessionDead { .. } => {
            "; call get_session for what is known of it, or create_session for a new one"
        }
        Error::StaleNativeId { .. } => "; call list_sessions and use the session's UUID",
        Error::Timeout { .. } => {
            "; the terminal did not answer in time (tmux or iTerm2 stopped or overloaded?): retry the call, and if it keeps timing out, tell the person"
        }
        Error::ConnectionLost { .. } => {
            "; the next call reconnects, so it can be retried (failing the same way again, the server or host is down: tell the person)"
        }
        _ => "",
    };
    format!("{e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_says_what_to_call() {
        let m = describe(&Error::SessionNotFound { target: "x".into() });
        assert_eq!(
            m,
            "no session matches 'x'; call list_sessions to see the live sessions and their ids"
        );
    }
}
