//! Commands on workspaces (tmux sessions) and windows: workspace ls|new|kill, window
//! ls|new|kill|rename|select, scrollback.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use termloom_core::{SessionId, WindowRef, WindowSpec, WorkspaceSpec};

use super::session::{mark_dead, print_created};
use super::{Ctx, command_line};
use crate::args::{ScrollbackArgs, WindowCmd, WorkspaceCmd};
use crate::output::{self, Table};

fn time_cell(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// The sessions living in a workspace (and, when given, one window of it), for the registry.
async fn sessions_in(ctx: &mut Ctx, workspace: &str, window: Option<&WindowRef>) -> Vec<SessionId> {
    let Ok(loom) = ctx.loom() else {
        return Vec::new();
    };
    let Ok(all) = loom.terminal().list_sessions().await else {
        return Vec::new();
    };
    let mut ids: Vec<(u32, SessionId)> = all
        .iter()
        .filter(|s| s.workspace == workspace)
        .filter(|s| window.is_none_or(|w| w.window.matches(s.window_index, &s.window_name)))
        .map(|s| (s.window_index, s.id))
        .collect();
    // A window name shared by two windows is refused by the backend: mark nothing then.
    ids.sort();
    if window.is_some() && ids.first().map(|x| x.0) != ids.last().map(|x| x.0) {
        return Vec::new();
    }
    ids.into_iter().map(|(_, id)| id).collect()
}

pub async fn workspace(ctx: &mut Ctx, c: WorkspaceCmd) -> Result<ExitCode> {
    match c {
        WorkspaceCmd::Ls => {
            let mut all = ctx.loom()?.terminal().list_workspaces().await?;
            all.sort_by(|a, b| a.name.cmp(&b.name));
            if ctx.json() {
                output::json(&all)?;
            } else {
                let mut t = Table::new(&["NAME", "ID", "WINDOWS", "ATTACHED", "CREATED"]);
                for w in &all {
                    t.row(vec![
                        w.name.clone(),
                        w.native.clone(),
                        w.windows.to_string(),
                        if w.attached { "yes" } else { "no" }.into(),
                        time_cell(w.created),
                    ]);
                }
                t.print()?;
            }
        }
        WorkspaceCmd::New {
            name,
            window,
            session,
            cwd,
        } => {
            let info = {
                let loom = ctx.loom()?;
                let _changing = loom.changing().await;
                let info = loom
                    .terminal()
                    .create_workspace(&WorkspaceSpec {
                        name,
                        window,
                        session_name: session,
                        cwd,
                        ..WorkspaceSpec::default()
                    })
                    .await?;
                loom.record(std::slice::from_ref(&info));
                info
            };
            print_created(ctx, &info)?;
        }
        WorkspaceCmd::Kill { name } => {
            let ids = sessions_in(ctx, &name, None).await;
            let loom = ctx.loom()?;
            loom.terminal().destroy_workspace(&name).await?;
            mark_dead(loom, &ids);
            if ctx.json() {
                output::json(&json!({ "workspace": name, "killed": true, "sessions": ids }))?;
            } else {
                output::line(format!(
                    "killed workspace {} ({} session{})",
                    output::one_line(&name),
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn window(ctx: &mut Ctx, c: WindowCmd) -> Result<ExitCode> {
    match c {
        WindowCmd::Ls { workspace } => {
            let mut all = ctx
                .loom()?
                .terminal()
                .list_windows(workspace.as_deref())
                .await?;
            all.sort_by(|a, b| (&a.workspace, a.index).cmp(&(&b.workspace, b.index)));
            if ctx.json() {
                output::json(&all)?;
            } else {
                let mut t = Table::new(&["WORKSPACE", "INDEX", "NAME", "ID", "PANES", "ACTIVE"]);
                for w in &all {
                    t.row(vec![
                        w.workspace.clone(),
                        w.index.to_string(),
                        w.name.clone(),
                        w.native.clone(),
                        w.panes.to_string(),
                        if w.active { "yes" } else { "no" }.into(),
                    ]);
                }
                t.print()?;
            }
        }
        WindowCmd::New {
            workspace,
            name,
            session,
            select,
            cwd,
            command,
        } => {
            let loom = ctx.loom()?;
            let command = command_line(&command)?;
            // Names are looked up, then given: one process at a time (see Loom::changing).
            let changing = loom.changing().await;
            let info = loom
                .terminal()
                .create_window(&WindowSpec {
                    workspace,
                    name,
                    session_name: session,
                    cwd,
                    command,
                    select,
                })
                .await?;
            drop(changing);
            loom.record(std::slice::from_ref(&info));
            print_created(ctx, &info)?;
        }
        WindowCmd::Kill { window } => {
            let ids = sessions_in(ctx, &window.workspace, Some(&window)).await;
            let loom = ctx.loom()?;
            loom.terminal().kill_window(&window).await?;
            mark_dead(loom, &ids);
            if ctx.json() {
                output::json(&json!({
                    "workspace": window.workspace,
                    "window": window.window.to_string(),
                    "killed": true,
                    "sessions": ids,
                }))?;
            } else {
                output::line(format!(
                    "killed window {}",
                    output::one_line(&window.to_string())
                ))?;
            }
        }
        WindowCmd::Rename { window, name } => {
            let loom = ctx.loom()?;
            let changing = loom.changing().await;
            loom.terminal().rename_window(&window, &name).await?;
            drop(changing);
            if ctx.json() {
                output::json(&json!({
                    "workspace": window.workspace,
                    "window": window.window.to_string(),
                    "name": name,
                }))?;
            } else {
                output::line(format!(
                    "renamed window {} to {}",
                    output::one_line(&window.to_string()),
                    output::one_line(&name)
                ))?;
            }
        }
        WindowCmd::Select { window } => {
            ctx.loom()?.terminal().select_window(&window).await?;
            if ctx.json() {
                output::json(&json!({
                    "workspace": window.workspace,
                    "window": window.window.to_string(),
                    "selected": true,
                }))?;
            } else {
                output::line(format!(
                    "selected window {}",
                    output::one_line(&window.to_string())
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn scrollback(ctx: &mut Ctx, a: ScrollbackArgs) -> Result<ExitCode> {
    let lines = ctx
        .loom()?
        .terminal()
        .scrollback(&a.workspace, a.lines)
        .await?;
    if ctx.json() {
        output::json(&json!({ "workspace": a.workspace, "lines": lines }))?;
    } else {
        output::line(lines.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
