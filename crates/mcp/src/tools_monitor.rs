//! Monitoring tools.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use termloom_core::compile_regex;

use crate::error::ToolError;
use crate::json::Json;
use crate::monitor::output_uri;
use crate::server::TermloomServer;
use crate::types::*;

/// Lines a monitor keeps when not told otherwise.
const DEFAULT_MONITOR_LINES: usize = 1000;

#[tool_router(router = monitor_tools, vis = "pub(crate)")]
impl TermloomServer {
    /// Start watching a session's output in the background, keeping the lines that match any of
    /// `filters` (regexes; all lines when empty). Collect them later with stop_monitoring (use
    /// keep_running: true to keep watching). Clients subscribed to the resource
    /// terminal://{id}/output are told when new lines arrive. Changes nothing in the session.
    #[tool(annotations(
        title = "Start monitoring",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn start_monitoring(
        &self,
        Parameters(p): Parameters<StartMonitoringParams>,
    ) -> Result<Json<MonitorStartOut>, ToolError> {
        let filters_src = p.filters.unwrap_or_default();
        if filters_src.len() > 32 {
            return Err(ToolError::new("at most 32 filters"));
        }
        let filters = filters_src
            .iter()
            .map(|f| compile_regex(f))
            .collect::<Result<Vec<_>, _>>()?;
        let (loom, info) = self.find(&p.place, &p.session).await?;
        let session = loom.logged(loom.terminal().open(&info).await?).await;
        let stream = session.subscribe().await?;
        let id = self
            .shared
            .monitors
            .start(
                info.id,
                stream,
                filters,
                p.max_lines
                    .map(|n| n as usize)
                    .unwrap_or(DEFAULT_MONITOR_LINES),
            )
            .map_err(ToolError::new)?;
        Ok(Json(MonitorStartOut {
            monitor_id: id,
            session: info.id.to_string(),
            filters: filters_src,
            resource: output_uri(info.id),
        }))
    }

    /// Collect the lines a monitor gathered since the last collection and stop it (or keep it running
    /// with keep_running: true). Also says whether the session's output ended and why. Lines that
    /// do not fit in one result wait (`waiting`) for the next call with the same monitor_id, also
    /// after the monitor was stopped.
    #[tool(annotations(
        title = "Stop monitoring",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn stop_monitoring(
        &self,
        Parameters(p): Parameters<StopMonitoringParams>,
    ) -> Result<Json<MonitorStopOut>, ToolError> {
        let keep = p.keep_running.unwrap_or(false);
        // The lines take what the result cap leaves after the other fields and notes.
        let budget = self.cfg().max_chars.saturating_sub(2_000).max(500);
        // A monitor's id is what lets a client read it: other clients' ids are never listed.
        let Some(c) = self.shared.monitors.collect(&p.monitor_id, keep, budget) else {
            return Err(ToolError::new(format!(
                "no monitor '{}' (it was collected and stopped, or never started; {} monitors run on this server); start_monitoring starts one",
                p.monitor_id,
                self.shared.monitors.running()
            )));
        };
        Ok(Json(MonitorStopOut {
            monitor_id: p.monitor_id,
            session: c.session.to_string(),
            lines: c.lines,
            dropped: c.dropped,
            lagged: c.lagged,
            closed: c.closed,
            running: c.running,
            waiting: c.waiting,
            note: (c.waiting > 0).then(|| {
                format!(
                    "{} more lines did not fit in this result; they wait for the next stop_monitoring call with this monitor_id",
                    c.waiting
                )
            }),
        }))
    }
}
