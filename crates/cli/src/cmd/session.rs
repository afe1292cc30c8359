//! Commands on sessions (panes): ls, sessions, new, send, keys, read, search, split, kill, rename,
//! focus, resize, tag, max-lines.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde_json::json;
use termloom_core::{
    CaptureOpts, Cursor, Direction, Layout, LayoutPlacement, Loom, ReadRange, ResizeSpec,
    SearchOpts, SendOpts, SessionId, SessionInfo, SessionSpec, SplitSpec,
};

use super::{Ctx, command_line};
use crate::args::{
    KeysArgs, MaxLinesArgs, NewArgs, ReadArgs, RenameArgs, ResizeArgs, SearchArgs, SendArgs,
    SplitArgs, TagArgs, TargetArgs,
};
use crate::output::{self, Table};

/// Lines a read returns when neither the caller nor the session's max-lines says otherwise.
pub const DEFAULT_READ_LINES: usize = 50;

fn window_cell(s: &SessionInfo) -> String {
    format!("{}:{}", s.window_index, s.window_name)
}

fn flags(s: &SessionInfo) -> String {
    let mut f = Vec::new();
    if s.active && s.window_active {
        f.push("active");
    }
    if s.managed {
        f.push("managed");
    }
    if s.dead {
        f.push("exited");
    }
    f.join(",")
}

/// Marks sessions dead in the registry right away (the next listing would too).
pub fn mark_dead(loom: &Loom, ids: &[SessionId]) {
    if ids.is_empty() {
        return;
    }
    if let Some(reg) = loom.registry()
        && let Err(e) = reg.update(|d| {
            for id in ids {
                if let Some(e) = d.sessions.get_mut(id) {
                    e.dead = true;
                }
            }
        })
    {
        tracing::warn!(error = %e, "registry not updated");
    }
}

/// Prints a new session: its full UUID, or the whole description with `--json`.
pub fn print_created(ctx: &Ctx, info: &SessionInfo) -> Result<()> {
    if ctx.json() {
        output::json(info)
    } else {
        output::line(info.id.to_string())
    }
}

pub async fn ls(ctx: &mut Ctx) -> Result<ExitCode> {
    let mut all = ctx.loom()?.list_sessions().await?;
    all.sort_by(|a, b| {
        (&a.workspace, a.window_index, a.pane_index).cmp(&(
            &b.workspace,
            b.window_index,
            b.pane_index,
        ))
    });
    if ctx.json() {
        output::json(&all)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "WORKSPACE",
        "WINDOW",
        "PANE",
        "SIZE",
        "COMMAND",
        "FLAGS",
    ]);
    for s in &all {
        t.row(vec![
            s.id.short(),
            s.name.clone(),
            s.workspace.clone(),
            window_cell(s),
            s.pane_index.to_string(),
            format!("{}x{}", s.width, s.height),
            s.command.clone(),
            flags(s),
        ]);
    }
    t.print()?;
    Ok(ExitCode::SUCCESS)
}

pub async fn sessions(ctx: &mut Ctx) -> Result<ExitCode> {
    let loom = ctx.loom()?;
    // A fresh listing first, so the registry's dead/alive marks are current.
    let live = loom.list_sessions().await?;
    if loom.registry().is_none() {
        output::note("no registry (see the warning above): only live sessions are listed");
    }
    let mut entries = loom.persistent_sessions()?;
    entries.sort_by_key(|e| (e.dead, e.created, e.id));
    if ctx.json() {
        output::json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let path: BTreeMap<SessionId, String> = live.iter().map(|s| (s.id, s.path())).collect();
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "WORKSPACE",
        "STATE",
        "WHERE",
        "MANAGED",
        "LAST SEEN",
    ]);
    for e in &entries {
        t.row(vec![
            e.id.short(),
            e.name.clone(),
            e.workspace.clone(),
            if e.dead { "dead" } else { "live" }.to_string(),
            path.get(&e.id).cloned().unwrap_or_else(|| "-".into()),
            if e.managed { "yes" } else { "no" }.to_string(),
            e.last_seen.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    t.print()?;
    Ok(ExitCode::SUCCESS)
}

pub async fn new(ctx: &mut Ctx, a: NewArgs) -> Result<ExitCode> {
    if let Some(layout_name) = &a.layout {
        let layout = Layout::predefined(layout_name, &a.panes)?;
        let placement = LayoutPlacement {
            workspace: a.workspace.clone(),
            window: a.window.clone(),
            cwd: a.cwd.clone(),
        };
        let loom = ctx.loom()?;
        let changing = loom.changing().await;
        let made = loom.terminal().apply_layout(&layout, &placement).await?;
        drop(changing);
        let infos: Vec<SessionInfo> = made.iter().map(|(_, s)| s.clone()).collect();
        loom.record(&infos);
        if ctx.json() {
            let map: serde_json::Map<String, serde_json::Value> = made
                .iter()
                .map(|(name, s)| (name.clone(), json!(s.id)))
                .collect();
            output::json(&map)?;
        } else {
            let mut t = Table::new(&["NAME", "ID"]);
            for (name, s) in &made {
                t.row(vec![name.clone(), s.id.to_string()]);
            }
            t.print()?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let spec = SessionSpec {
        name: a.name,
        workspace: a.workspace,
        window: a.window,
        cwd: a.cwd,
        env: a.env,
        command: command_line(&a.command)?,
        size: None,
    };
    let info = ctx.loom()?.create_session(&spec).await?;
    print_created(ctx, &info)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn send(ctx: &mut Ctx, a: SendArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    let text = if a.text == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read the text from stdin")?;
        String::from_utf8(buf).map_err(|e| {
            anyhow!(
                "the text on stdin is not UTF-8 (bad byte at offset {}); termloom sends text",
                e.utf8_error().valid_up_to()
            )
        })?
    } else {
        a.text
    };
    let enter = !a.no_enter;
    s.send_text(&text, SendOpts { enter }).await?;
    if ctx.json() {
        output::json(&json!({
            "session": info.id,
            "bytes": text.len(),
            "enter": enter,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(ctx: &mut Ctx, a: KeysArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    s.send_keys(&a.keys).await?;
    if ctx.json() {
        let names: Vec<String> = a.keys.iter().map(ToString::to_string).collect();
        output::json(&json!({ "session": info.id, "keys": names }))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ReadOut<'a> {
    session: SessionId,
    text: &'a str,
    first_line: u64,
    total_lines: u64,
    truncated: bool,
    note: Option<&'a str>,
    cursor: &'a Cursor,
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub async fn read(ctx: &mut Ctx, a: ReadArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    let session_default = ctx
        .loom()?
        .entry(info.id)
        .ok()
        .flatten()
        .and_then(|e| e.max_lines);
    let lines = a.lines.map(to_usize);
    let range = if let Some(c) = a.since {
        ReadRange::Since(Cursor(c))
    } else if a.screen {
        ReadRange::Screen
    } else if a.from.is_some() || a.to.is_some() {
        ReadRange::Lines {
            from: a.from.unwrap_or(0),
            to: a.to.unwrap_or(u64::MAX),
        }
    } else {
        ReadRange::Tail(lines.or(session_default).unwrap_or(DEFAULT_READ_LINES))
    };
    let max_lines = match range {
        ReadRange::Tail(_) => None,
        _ => lines.or(session_default),
    };
    let cap = s
        .capture(&CaptureOpts {
            range,
            ansi: a.ansi,
            join_wrapped: a.join,
            max_lines,
            max_bytes: a.max_bytes.map(to_usize),
        })
        .await?;
    if ctx.json() {
        output::json(&ReadOut {
            session: info.id,
            text: &cap.text,
            first_line: cap.first_line,
            total_lines: cap.total_lines,
            truncated: cap.truncated,
            note: cap.note.as_deref(),
            cursor: &cap.cursor,
        })?;
    } else {
        output::text(&cap.text)?;
        if let Some(n) = &cap.note {
            output::note(n);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// grep-style lines: `N: text` for matches, `N- text` for context, `--` between groups that do not
/// touch. Overlapping contexts are printed once; a match inside another's context stays a match.
pub fn grep_lines(result: &termloom_core::SearchResult) -> Vec<String> {
    let blocks = result.blocks();
    let mut out = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            out.push("--".to_string());
        }
        for (n, text, is_match) in block {
            out.push(format!("{n}{} {text}", if *is_match { ':' } else { '-' }));
        }
    }
    out
}

pub async fn search(ctx: &mut Ctx, a: SearchArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    let res = s
        .search(&SearchOpts {
            pattern: a.pattern.clone(),
            context: a.context,
            max_matches: Some(to_usize(a.max)),
            ignore_case: a.ignore_case,
        })
        .await?;
    if ctx.json() {
        output::json(&json!({
            "session": info.id,
            "pattern": a.pattern,
            "matches": res.matches,
            "lines_searched": res.lines_searched,
            "truncated": res.truncated,
        }))?;
    } else {
        let mut text = grep_lines(&res).join("\n");
        text.push('\n');
        if !res.matches.is_empty() {
            output::text(&text)?;
        }
        if res.truncated {
            output::note(format!(
                "stopped after {} matches; raise --max for more",
                res.matches.len()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn split(ctx: &mut Ctx, a: SplitArgs) -> Result<ExitCode> {
    let (_, s) = ctx.open(&a.target).await?;
    let spec = SplitSpec {
        direction: if a.horizontal {
            Direction::Horizontal
        } else {
            Direction::Vertical
        },
        percent: a.percent,
        name: a.name,
        before: a.before,
        cwd: a.cwd,
        command: command_line(&a.command)?,
    };
    let info = {
        // The name is checked against a listing and then given: one process at a time.
        let loom = ctx.loom()?;
        let _changing = loom.changing().await;
        let info = s.split(&spec).await?;
        loom.record(std::slice::from_ref(&info));
        info
    };
    print_created(ctx, &info)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn kill(ctx: &mut Ctx, a: TargetArgs) -> Result<ExitCode> {
    let (info, s) = ctx.open(&a.target).await?;
    s.close().await?;
    mark_dead(ctx.loom()?, &[info.id]);
    if ctx.json() {
        output::json(&json!({ "session": info.id, "name": info.name, "killed": true }))?;
    } else {
        output::line(format!(
            "killed {} ({})",
            info.id,
            output::one_line(&info.name)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a session after a change, recording it in the registry.
async fn print_changed(
    ctx: &mut Ctx,
    s: &dyn termloom_core::Session,
    human: impl FnOnce(&SessionInfo) -> String,
) -> Result<()> {
    let info = s.info().await?;
    ctx.loom()?.record(std::slice::from_ref(&info));
    if ctx.json() {
        output::json(&info)
    } else {
        output::line(human(&info))
    }
}

pub async fn rename(ctx: &mut Ctx, a: RenameArgs) -> Result<ExitCode> {
    let (old, s) = ctx.open(&a.target).await?;
    {
        let loom = ctx.loom()?;
        let _changing = loom.changing().await;
        s.rename(&a.name).await?;
    }
    print_changed(ctx, s.as_ref(), |i| {
        format!(
            "renamed {}: {} -> {}",
            i.id,
            output::one_line(&old.name),
            output::one_line(&i.name)
        )
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn focus(ctx: &mut Ctx, a: TargetArgs) -> Result<ExitCode> {
    let (_, s) = ctx.open(&a.target).await?;
    s.focus().await?;
    print_changed(ctx, s.as_ref(), |i| {
        format!(
            "focused {} ({}) at {}",
            i.id,
            output::one_line(&i.name),
            output::one_line(&i.path())
        )
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn resize(ctx: &mut Ctx, a: ResizeArgs) -> Result<ExitCode> {
    let (_, s) = ctx.open(&a.target).await?;
    let zoom = if a.zoom {
        Some(true)
    } else if a.unzoom {
        Some(false)
    } else {
        None
    };
    s.resize(&ResizeSpec {
        width: a.width,
        height: a.height,
        zoom,
    })
    .await?;
    print_changed(ctx, s.as_ref(), |i| {
        format!("resized {} to {}x{}", i.id, i.width, i.height)
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn tag(ctx: &mut Ctx, a: TagArgs) -> Result<ExitCode> {
    let (_, s) = ctx.open(&a.target).await?;
    s.set_managed(!a.remove).await?;
    print_changed(ctx, s.as_ref(), |i| {
        let what = if i.managed { "managed" } else { "not managed" };
        format!("{} ({}) is {what}", i.id, output::one_line(&i.name))
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn max_lines(ctx: &mut Ctx, a: MaxLinesArgs) -> Result<ExitCode> {
    let (info, _) = ctx.open(&a.target).await?;
    let loom = ctx.loom()?;
    let reg = loom.registry().ok_or_else(|| {
        anyhow!("no session registry (see the warning above), so max-lines cannot be kept")
    })?;
    if a.lines.is_some() || a.unset {
        // The resolve above recorded the session; record again in case that write was lost.
        loom.record(std::slice::from_ref(&info));
        let value = a.lines.map(to_usize);
        if !reg.set_max_lines(info.id, value)? {
            anyhow::bail!("session {} is not in the registry", info.id);
        }
    }
    let current = loom.entry(info.id)?.and_then(|e| e.max_lines);
    if ctx.json() {
        output::json(&json!({
            "session": info.id,
            "max_lines": current,
            "default": DEFAULT_READ_LINES,
        }))?;
    } else {
        match current {
            Some(n) => output::line(n.to_string())?,
            None => output::line(format!("{DEFAULT_READ_LINES} (default)"))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use termloom_core::{NumberedLine, SearchMatch, SearchResult};

    fn nl(line: u64, text: &str) -> NumberedLine {
        NumberedLine {
            line,
            text: text.into(),
        }
    }

    #[test]
    fn grep_output_merges_overlapping_context() {
        let res = SearchResult {
            matches: vec![
                SearchMatch {
                    line: 2,
                    text: "hit a".into(),
                    before: vec![nl(1, "b1")],
                    after: vec![nl(3, "hit b")],
                },
                SearchMatch {
                    line: 3,
                    text: "hit b".into(),
                    before: vec![nl(2, "hit a")],
                    after: vec![nl(4, "a4")],
                },
                SearchMatch {
                    line: 9,
                    text: "hit c".into(),
                    before: vec![],
                    after: vec![],
                },
            ],
            lines_searched: 10,
            truncated: false,
        };
        assert_eq!(
            grep_lines(&res),
            ["1- b1", "2: hit a", "3: hit b", "4- a4", "--", "9: hit c"]
        );
    }
}
