//! Importing tmuxp (YAML or JSON) and tmuxinator (YAML) files as projects.
//!
//! What maps:
//!
//! | termloom | tmuxp | tmuxinator |
//! |---|---|---|
//! | `name` | `session_name` | `name` (`project_name`) |
//! | `root` | `start_directory` | `root` (`project_root`) |
//! | `env` | `environment` | – |
//! | window `name` | `window_name` | the window's key |
//! | window `layout` | `layout` | `layout` |
//! | window `cwd` | `start_directory` | `root` |
//! | pane `commands` | `shell_command` (string, list, `{cmd: …}`); `shell_command_before` first | the pane's string or list; `pre_window` and the window's `pre` first |
//! | pane `cwd` / `focus` | `start_directory` / `focus` | – |
//! | `hooks.on_open` | `before_script` (split into words, as tmuxp does) | `on_project_start`, `pre` (as `[sh, -c, LINE]`) |
//! | `hooks.on_close` | – | `on_project_stop`, `on_project_exit`, `post` (as `[sh, -c, LINE]`) |
//!
//! tmux's layout names (`even-horizontal`, `main-vertical`, …) map to termloom's; a raw tmux layout
//! string, options and anything else termloom does not do are left out with a note in
//! [`Imported::notes`]. Panes get the default names (`WINDOW-N`, or `WINDOW` for a window's only
//! pane), so the same workspace written for tmuxp or for tmuxinator imports as the same project.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::yaml::SourceMap;
use super::{LayoutDef, PaneDef, Project, ProjectFileError, WindowDef};
use crate::error::{Error, Result};
use crate::layout::PREDEFINED;

/// The formats [`import`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// tmuxp (`session_name`, `windows[].window_name`, `panes[].shell_command`).
    Tmuxp,
    /// tmuxinator (`name`, `root`, `windows: [{NAME: …}]`).
    Tmuxinator,
}

/// An imported project and what could not be carried over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The project.
    pub project: Project,
    /// Which format the file was in.
    pub format: ImportFormat,
    /// What was left out or changed, for the person to check.
    pub notes: Vec<String>,
}

struct Ctx<'a> {
    file: &'a Path,
    map: Option<SourceMap>,
    notes: Vec<String>,
}

impl Ctx<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> Error {
        let (line, column) = self.map.as_ref().map(|m| m.locate(field)).unwrap_or((0, 0));
        ProjectFileError {
            file: self.file.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
            more: 0,
        }
        .into()
    }

    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
}

/// Text of a scalar (numbers and booleans as written); `None` for null, lists and maps.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Command lines from a string, a list of strings, or a list of `{cmd: …}` (tmuxp).
fn commands(ctx: &mut Ctx, v: &Value, field: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(m) => match m.get("cmd").and_then(scalar) {
                        // tmuxp types it and leaves it on the line; termloom's commands run.
                        Some(c) if m.get("enter") == Some(&Value::Bool(false)) => ctx.note(format!(
                            "{field}[{i}]: '{c}' is typed without Enter in tmuxp (enter: false); termloom runs every command it types, so it was left out"
                        )),
                        Some(c) => out.push(c),
                        None => return Err(ctx.err(&format!("{field}[{i}]"), "expected a command")),
                    },
                    Value::Null => {}
                    other => match scalar(other) {
                        Some(c) => out.push(c),
                        None => return Err(ctx.err(&format!("{field}[{i}]"), "expected a command")),
                    },
                }
            }
            Ok(out)
        }
        other => scalar(other)
            .map(|c| vec![c])
            .ok_or_else(|| ctx.err(field, "expected a command or a list of commands")),
    }
}

/// A tmuxp `start_directory`, its environment variables expanded as tmuxp expands them
/// (`$HOME/src`, `${PROJ}`); one that is not set is kept as written, with a note.
fn start_dir(ctx: &mut Ctx, v: Option<&Value>, field: &str) -> Option<PathBuf> {
    let raw = v.and_then(scalar)?;
    match shellexpand::env(&raw) {
        Ok(d) => Some(PathBuf::from(d.as_ref())),
        Err(e) => {
            ctx.note(format!(
                "{field}: '{raw}' names ${}, which is not set here; kept as written",
                e.var_name
            ));
            Some(PathBuf::from(raw))
        }
    }
}

/// A tmux layout name as termloom's; a layout string or unknown name gives a note.
fn layout(ctx: &mut Ctx, v: Option<&Value>, window: &str) -> Option<LayoutDef> {
    let name = v.and_then(scalar)?;
    let mapped = match name.as_str() {
        "even-horizontal" => "horizontal",
        "even-vertical" => "vertical",
        n => n,
    };
    if PREDEFINED.contains(&mapped) {
        Some(LayoutDef::Named(mapped.to_string()))
    } else {
        ctx.note(format!(
            "window '{window}': layout '{name}' is not one termloom knows; using the default (tiled)"
        ));
        None
    }
}

fn project_name(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['.', '-']).to_string();
    if s.is_empty() { "imported".into() } else { s }
}

fn sh(line: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), line.to_string()]
}

fn ignore(ctx: &mut Ctx, m: &Map<String, Value>, known: &[&str], where_: &str) {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            ctx.note(format!("{where_}: '{k}' is not imported"));
        }
    }
}

fn obj<'v>(ctx: &Ctx, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| ctx.err(field, "expected a mapping"))
}

fn tmuxp(ctx: &mut Ctx, top: &Map<String, Value>) -> Result<Project> {
    ignore(
        ctx,
        top,
        &[
            "session_name",
            "start_directory",
            "environment",
            "before_script",
            "shell_command_before",
            "windows",
        ],
        "session",
    );
    let raw = top
        .get("session_name")
        .and_then(scalar)
        .ok_or_else(|| ctx.err("session_name", "a tmuxp file needs session_name"))?;
    let mut p = Project {
        name: project_name(&raw),
        root: start_dir(ctx, top.get("start_directory"), "start_directory"),
        ..Project::default()
    };
    if p.workspace() != raw {
        p.session = Some(raw);
    }
    if let Some(env) = top.get("environment") {
        for (k, v) in obj(ctx, env, "environment")? {
            p.env.insert(k.clone(), scalar(v).unwrap_or_default());
        }
    }
    if let Some(s) = top.get("before_script").and_then(scalar) {
        match shlex::split(&s) {
            Some(argv) if !argv.is_empty() => {
                ctx.note("before_script runs as an on_open hook: after the workspace is built, not before");
                p.hooks.on_open.push(argv);
            }
            _ => return Err(ctx.err("before_script", "cannot split it into words")),
        }
    }
    let before = match top.get("shell_command_before") {
        Some(v) => commands(ctx, v, "shell_command_before")?,
        None => Vec::new(),
    };
    let windows = top
        .get("windows")
        .and_then(Value::as_array)
        .ok_or_else(|| ctx.err("windows", "expected a list of windows"))?;
    for (wi, wv) in windows.iter().enumerate() {
        let wf = format!("windows[{wi}]");
        let w = obj(ctx, wv, &wf)?;
        let name = w
            .get("window_name")
            .and_then(scalar)
            .unwrap_or_else(|| format!("window-{}", wi + 1));
        ignore(
            ctx,
            w,
            &[
                "window_name",
                "layout",
                "start_directory",
                "shell_command_before",
                "panes",
                "focus",
            ],
            &format!("window '{name}'"),
        );
        let mut wbefore = before.clone();
        if let Some(v) = w.get("shell_command_before") {
            wbefore.extend(commands(ctx, v, &format!("{wf}.shell_command_before"))?);
        }
        let mut panes = Vec::new();
        let empty = Vec::new();
        let list = match w.get("panes") {
            None | Some(Value::Null) => &empty,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ctx.err(&format!("{wf}.panes"), "expected a list of panes")),
        };
        for (pi, pv) in list.iter().enumerate() {
            let pf = format!("{wf}.panes[{pi}]");
            let mut pane = PaneDef::default();
            let mut cmds = wbefore.clone();
            match pv {
                Value::Object(m) => {
                    ignore(
                        ctx,
                        m,
                        &["shell_command", "start_directory", "focus"],
                        &format!("window '{name}' pane {}", pi + 1),
                    );
                    if let Some(v) = m.get("shell_command") {
                        cmds.extend(commands(ctx, v, &format!("{pf}.shell_command"))?);
                    }
                    pane.cwd = start_dir(
                        ctx,
                        m.get("start_directory"),
                        &format!("{pf}.start_directory"),
                    );
                    pane.focus = m.get("focus").and_then(Value::as_bool).unwrap_or(false)
                        || m.get("focus").and_then(scalar).as_deref() == Some("true");
                }
                Value::String(s) if s == "blank" || s == "pane" || s.is_empty() => {}
                other => cmds.extend(commands(ctx, other, &pf)?),
            }
            set_commands(&mut pane, cmds);
            panes.push(pane);
        }
        if panes.is_empty() && !wbefore.is_empty() {
            let mut pane = PaneDef::default();
            set_commands(&mut pane, wbefore);
            panes.push(pane);
        }
        let focus = w.get("focus").and_then(Value::as_bool).unwrap_or(false)
            || w.get("focus").and_then(scalar).as_deref() == Some("true");
        if focus && !panes.iter().any(|x| x.focus) {
            match panes.first_mut() {
                Some(first) => first.focus = true,
                None => panes.push(PaneDef {
                    focus: true,
                    ..PaneDef::default()
                }),
            }
        }
        let layout = layout(ctx, w.get("layout"), &name);
        p.windows.push(WindowDef {
            layout,
            cwd: start_dir(
                ctx,
                w.get("start_directory"),
                &format!("{wf}.start_directory"),
            ),
            name,
            panes,
            ..WindowDef::default()
        });
    }
    Ok(p)
}

fn set_commands(pane: &mut PaneDef, cmds: Vec<String>) {
    if cmds.len() == 1 {
        pane.command = cmds.into_iter().next();
    } else {
        pane.commands = cmds;
    }
}

fn tmuxinator(ctx: &mut Ctx, top: &Map<String, Value>) -> Result<Project> {
    ignore(
        ctx,
        top,
        &[
            "name",
            "project_name",
            "root",
            "project_root",
            "windows",
            "tabs",
            "pre_window",
            "pre_tab",
            "pre",
            "post",
            "on_project_start",
            "on_project_first_start",
            "on_project_restart",
            "on_project_stop",
            "on_project_exit",
            "startup_window",
            "startup_pane",
        ],
        "project",
    );
    let raw = top
        .get("name")
        .or_else(|| top.get("project_name"))
        .and_then(scalar)
        .ok_or_else(|| ctx.err("name", "a tmuxinator file needs name"))?;
    let mut p = Project {
        name: project_name(&raw),
        root: top
            .get("root")
            .or_else(|| top.get("project_root"))
            .and_then(scalar)
            .map(PathBuf::from),
        ..Project::default()
    };
    if p.workspace() != raw {
        p.session = Some(raw.clone());
    }
    for (key, open) in [
        ("on_project_start", true),
        ("pre", true),
        ("on_project_stop", false),
        ("on_project_exit", false),
        ("post", false),
    ] {
        if let Some(v) = top.get(key) {
            for line in commands(ctx, v, key)? {
                ctx.note(format!(
                    "{key} runs as an {} hook: [sh, -c, {line:?}]",
                    if open { "on_open" } else { "on_close" }
                ));
                if open {
                    p.hooks.on_open.push(sh(&line));
                } else {
                    p.hooks.on_close.push(sh(&line));
                }
            }
        }
    }
    for key in ["on_project_first_start", "on_project_restart"] {
        if top.contains_key(key) {
            ctx.note(format!(
                "{key} is not imported: termloom has on_open (every open) only"
            ));
        }
    }
    let mut before = Vec::new();
    for key in ["pre_window", "pre_tab"] {
        if let Some(v) = top.get(key) {
            before.extend(commands(ctx, v, key)?);
        }
    }
    let (wkey, windows) = match (top.get("windows"), top.get("tabs")) {
        (Some(Value::Array(a)), _) => ("windows", a),
        (None, Some(Value::Array(a))) => ("tabs", a),
        _ => return Err(ctx.err("windows", "expected a list of windows")),
    };
    for (wi, wv) in windows.iter().enumerate() {
        let wf = format!("{wkey}[{wi}]");
        let w = obj(ctx, wv, &wf)?;
        let (name, body) = match w.iter().next() {
            Some((k, v)) if w.len() == 1 => (k.clone(), v),
            _ => {
                return Err(ctx.err(
                    &wf,
                    "a tmuxinator window is a mapping with one key: its name",
                ));
            }
        };
        let bf = format!("{wf}.{name}");
        let mut win = WindowDef {
            name: name.clone(),
            ..WindowDef::default()
        };
        let mut wbefore = before.clone();
        match body {
            Value::Object(m) => {
                ignore(
                    ctx,
                    m,
                    &["layout", "root", "panes", "pre"],
                    &format!("window '{name}'"),
                );
                win.layout = layout(ctx, m.get("layout"), &name);
                win.cwd = m.get("root").and_then(scalar).map(PathBuf::from);
                if let Some(v) = m.get("pre") {
                    wbefore.extend(commands(ctx, v, &format!("{bf}.pre"))?);
                }
                let empty = Vec::new();
                let list = match m.get("panes") {
                    None | Some(Value::Null) => &empty,
                    Some(Value::Array(a)) => a,
                    Some(_) => {
                        return Err(ctx.err(&format!("{bf}.panes"), "expected a list of panes"));
                    }
                };
                for (pi, pv) in list.iter().enumerate() {
                    let pf = format!("{bf}.panes[{pi}]");
                    let mut pane = PaneDef::default();
                    let mut cmds = wbefore.clone();
                    match pv {
                        Value::Object(pm) if pm.len() == 1 => {
                            if let Some((pname, pcmds)) = pm.iter().next() {
                                pane.name = Some(pname.replace('/', "_"));
                                cmds.extend(commands(ctx, pcmds, &format!("{pf}.{pname}"))?);
                            }
                        }
                        other => cmds.extend(commands(ctx, other, &pf)?),
                    }
                    set_commands(&mut pane, cmds);
                    win.panes.push(pane);
                }
                if win.panes.is_empty() && !wbefore.is_empty() {
                    let mut pane = PaneDef::default();
                    set_commands(&mut pane, wbefore);
                    win.panes.push(pane);
                }
            }
            other => {
                let mut cmds = wbefore;
                cmds.extend(commands(ctx, other, &bf)?);
                if !cmds.is_empty() {
                    let mut pane = PaneDef::default();
                    set_commands(&mut pane, cmds);
                    win.panes.push(pane);
                }
            }
        }
        p.windows.push(win);
    }
    if let Some(sw) = top.get("startup_window").and_then(scalar) {
        let idx = p
            .windows
            .iter()
            .position(|w| w.name == sw)
            .or_else(|| sw.parse::<usize>().ok().filter(|i| *i < p.windows.len()));
        let pane_idx = top
            .get("startup_pane")
            .and_then(scalar)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        if let Some(w) = idx.and_then(|i| p.windows.get_mut(i)) {
            if w.panes.is_empty() {
                w.panes.push(PaneDef::default());
            }
            let n = w.panes.len();
            w.panes[pane_idx.min(n - 1)].focus = true;
        }
    }
    Ok(p)
}

/// Converts the text of a tmuxp or tmuxinator file. `file` names it in errors; a `.json` file is
/// read as JSON. `name` replaces the project name taken from the file.
pub fn import_str(text: &str, file: &Path, name: Option<&str>) -> Result<Imported> {
    let json = file.extension().and_then(|e| e.to_str()) == Some("json");
    let top: Value = if json {
        serde_json::from_str(text).map_err(|e| {
            Error::from(ProjectFileError {
                file: file.to_path_buf(),
                line: e.line() as u64,
                column: e.column() as u64,
                field: "(json)".into(),
                message: e.to_string(),
                more: 0,
            })
        })?
    } else {
        serde_saphyr::from_str(text)
            .map_err(|e| Error::from(super::yaml::locate_error(&e, None, file)))?
    };
    let mut ctx = Ctx {
        file,
        map: SourceMap::parse(text),
        notes: Vec::new(),
    };
    let top = obj(&ctx, &top, "(top)")?;
    let format = if top.contains_key("session_name") {
        ImportFormat::Tmuxp
    } else if top.contains_key("name")
        || top.contains_key("project_name")
        || top.contains_key("tabs")
    {
        ImportFormat::Tmuxinator
    } else {
        return Err(ctx.err(
            "(top)",
            "not a tmuxp file (no session_name) nor a tmuxinator file (no name)",
        ));
    };
    let mut project = match format {
        ImportFormat::Tmuxp => tmuxp(&mut ctx, top)?,
        ImportFormat::Tmuxinator => tmuxinator(&mut ctx, top)?,
    };
    if let Some(n) = name {
        super::check_project_name(n)?;
        let ws = project.workspace();
        project.name = n.to_string();
        if project.session.is_none() {
            project.session = Some(ws);
        }
        if project.session.as_deref() == Some(project.name.replace('.', "_").as_str()) {
            project.session = None;
        }
    }
    anchor_dirs(&mut project, file, &mut ctx.notes);
    // A window name of digits only reads as an index in termloom's targets: renamed as freeze
    // names such a window.
    let mut taken: std::collections::HashSet<String> =
        project.windows.iter().map(|w| w.name.clone()).collect();
    for w in &mut project.windows {
        if crate::model::check_window_name_not_index(&w.name).is_err() {
            let new = super::freeze::unique(format!("window-{}", w.name), &mut taken);
            ctx.notes.push(format!(
                "window '{}': a name of digits only would read as a window index; named '{new}'",
                w.name
            ));
            w.name = new;
        }
    }
    if let Some(p) = project.problems().first() {
        return Err(Error::InvalidArgument(format!(
            "{}: the imported project is not valid: {}: {}",
            file.display(),
            p.field,
            p.message
        )));
    }
    Ok(Imported {
        project,
        format,
        notes: ctx.notes,
    })
}

/// Makes relative directories absolute against the imported file's directory, as tmuxp reads
/// them (tmuxinator reads them against the directory it runs in, which is usually the same): a
/// project's directories may not depend on where termloom runs. Only the outermost relative
/// directory is changed; the ones under it stay relative to it.
fn anchor_dirs(p: &mut Project, file: &Path, notes: &mut Vec<String>) {
    let Some(base) = std::path::absolute(file)
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf))
    else {
        return;
    };
    let mut fix = |d: &mut Option<PathBuf>, what: &str| {
        if let Some(rel) = d.as_ref().filter(|d| !super::anchored(d)) {
            let abs: PathBuf = base
                .components()
                .chain(
                    rel.components()
                        .filter(|c| *c != std::path::Component::CurDir),
                )
                .collect();
            notes.push(format!(
                "{what} {} is relative: made {} (against the imported file's directory)",
                rel.display(),
                abs.display()
            ));
            *d = Some(abs);
        }
    };
    let root_given = p.root.is_some();
    fix(&mut p.root, "root");
    if root_given {
        return;
    }
    for w in &mut p.windows {
        let window_given = w.cwd.is_some();
        fix(&mut w.cwd, &format!("window '{}': cwd", w.name));
        if !window_given {
            for pane in &mut w.panes {
                fix(&mut pane.cwd, &format!("window '{}': a pane's cwd", w.name));
            }
        }
    }
}

/// Reads and converts a tmuxp or tmuxinator file (see the module docs).
pub fn import(file: &Path, name: Option<&str>) -> Result<Imported> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    import_str(&text, file, name)
}
