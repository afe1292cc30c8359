//! Prompts: ready-made instructions that point the model at the right tools.
// The prompt macros generate undocumented helpers.
#![allow(missing_docs)]

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{PromptMessage, Role};
use rmcp::{prompt, prompt_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::server::TermloomServer;

/// Arguments of `monitor_terminal`. A misspelled argument is refused, as tools refuse one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorArgs {
    /// The session to watch (UUID, name, workspace:window.pane or native id).
    pub session: String,
    /// What to look out for, e.g. "errors from the build" (default: anything unusual).
    #[serde(default)]
    pub focus: Option<String>,
}

/// Arguments of `execute_command`. A misspelled argument is refused, as tools refuse one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteArgs {
    /// The command line to run.
    pub command: String,
    /// The session to run it in (default: create one named "work").
    #[serde(default)]
    pub session: Option<String>,
}

#[prompt_router(vis = "pub(crate)")]
impl TermloomServer {
    /// Watch a terminal session and report what happens in it.
    #[prompt(name = "monitor_terminal")]
    async fn monitor_terminal(&self, Parameters(a): Parameters<MonitorArgs>) -> Vec<PromptMessage> {
        let focus = a.focus.filter(|f| !f.trim().is_empty()).unwrap_or_else(|| {
            "errors, warnings, crashes, and anything that needs a person".into()
        });
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Watch the terminal session '{s}' and tell me about {focus}.\n\
                 1. Call get_session with session '{s}' to see what runs there, then read_output (lines: 100) for context; keep the returned cursor.\n\
                 2. Call start_monitoring with session '{s}' and filters for what matters (regexes, case-sensitive: e.g. [\"(?i)error|warn|fail\"]).\n\
                 3. Every so often call stop_monitoring with the monitor_id and keep_running: true, or read_output with since: <cursor> for everything new.\n\
                 4. Report what you found with the exact lines. Do not type into the session unless I ask.",
                s = a.session
            ),
        )]
    }

    /// Run a shell command in a terminal session and report its exit code and output.
    #[prompt(name = "execute_command")]
    async fn execute_command(&self, Parameters(a): Parameters<ExecuteArgs>) -> Vec<PromptMessage> {
        let target = match &a.session {
            Some(s) if !s.trim().is_empty() => format!(
                "in the session '{s}' (call get_session first to check it is writable)"
            ),
            _ => "in a session named 'work' (call create_session with name 'work' if list_sessions does not show one)".into(),
        };
        // Every line of the command indented: one code block however many lines it has.
        let cmd = a.command.trim_end().replace('\n', "\n    ");
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Run this command {target}:\n\n    {cmd}\n\n\
                 Use run_command (it returns exit_code, output and duration_ms). If it comes back with running: true, \
                 call wait_for with its handle. Then tell me the exit code and summarise the output; on failure, \
                 quote the lines that explain it."
            ),
        )]
    }
}
