//! Projects: named, saved workspace definitions that open idempotently and close by detaching.
//!
//! A project file is YAML in the config dir (`~/.config/termloom/projects/NAME.yaml`;
//! `TERMLOOM_CONFIG_DIR` overrides the config dir):
//!
//! ```yaml
//! name: demo                  # optional; the file name without .yaml when left out
//! backend: tmux               # tmux (default) | iterm | iterm-tmux
//! host: user@box              # optional: the host the workspace lives on (over ssh)
//! session: demo               # the tmux session name: the key that makes it persistent (default: name)
//! root: ~/src/demo            # working directory of every pane that names none (`~` is expanded)
//! env: {RUST_LOG: debug}      # environment of every pane
//! iterm: {profile: Dev, size: 200x50}   # iTerm2 only: profile and window size
//! hooks:                      # local programs, as argv lists; never a shell string
//!   on_open: [[make, deps]]
//!   on_close: [[notify-send, "demo closed"]]
//! windows:
//!   - name: server
//!     layout: horizontal      # a predefined layout, or a split tree (see below)
//!     cwd: web                # relative to root
//!     panes:
//!       - name: web
//!         command: python3 -m http.server 8000   # typed into the pane's shell once, at creation
//!       - name: logs
//!         commands: [cd logs, tail -f server.log] # several command lines, typed in order
//!         focus: true
//!   - name: shell             # no panes: one pane named after the window
//! ```
//!
//! A layout is a predefined name (`single`, `horizontal`, `vertical`, `quad`, `main-vertical`,
//! `main-horizontal`, `tiled`; tmux's `even-horizontal`/`even-vertical` are accepted too) that takes
//! the window's panes in order, or a split tree whose leaves name panes (a leaf naming no declared
//! pane is a plain shell):
//!
//! ```yaml
//! layout:
//!   split: horizontal         # horizontal: side by side; vertical: stacked
//!   children:
//!     - {pane: editor, size: 60%}
//!     - split: vertical
//!       children: [{pane: web}, {pane: logs}]
//! ```
//!
//! Without a layout a window with one pane is `single`, with more `tiled`.
//!
//! Every pane becomes a termloom session named `PROJECT/PANE` (pane names are unique within a
//! project; a pane without a name is `WINDOW-N`, or `WINDOW` when it is its window's only pane), so
//! two projects never fight over a name and `demo/web` is a good target.
//!
//! Hooks run on the machine termloom runs on, as argv (program and arguments, no shell), in the
//! project root, with the project's env plus `TERMLOOM_PROJECT`, `TERMLOOM_WORKSPACE` and
//! `TERMLOOM_HOOK`; each has 60 seconds. `on_open` runs after every open (so make it idempotent),
//! `on_close` after every close. A failing hook is reported, never fatal: it never kills or closes
//! anything (a shell line is `[sh, -c, "…"]`, written by you).
//!
//! Loading ([`Project::from_yaml`], [`ProjectStore::load`]) checks everything and reports the first
//! problem as `FILE:LINE:COLUMN: FIELD: message` ([`ProjectFileError`]). Opening and closing are in
//! [`open`](self::open()) / [`close`](self::close()), importing tmuxp and tmuxinator files in
//! [`import`](self::import()), writing a project from a live workspace in [`freeze`](self::freeze()).

mod freeze;
mod host;
mod import;
mod live;
mod open;
mod yaml;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{Direction, Layout, LayoutChild, LayoutNode, PaneSpec};

pub use freeze::{Frozen, freeze, layout_def_from_layout};
pub use host::ProjectHost;
pub use import::{ImportFormat, Imported, import, import_str};
pub use live::{AttachCommand, AttachOpts, AttachPlan, LiveCell, LiveWindow};
pub use open::{
    CloseOptions, CloseReport, HookReport, ItemStatus, KillReport, MatchedBy, OpenOptions,
    OpenReport, PaneReport, ProjectStatus, ProjectSummary, WindowReport, close, close_project,
    kill, list_projects, open, open_in, open_project, reconcile, status,
};

/// The environment variable that overrides the config dir (projects live in its `projects/`).
pub const CONFIG_DIR_ENV: &str = "TERMLOOM_CONFIG_DIR";

/// The workspace tag (tmux: the session option `@termloom_project`) naming the project a workspace
/// belongs to.
pub const TAG_PROJECT: &str = "project";

/// The workspace tag holding the project's pane map (pane name → session id), as JSON.
pub const TAG_PANES: &str = "project_panes";

/// Layout names accepted besides core's predefined ones: tmux's names, mapped to ours.
pub const LAYOUT_ALIASES: &[(&str, &str)] = &[
    ("even-horizontal", "horizontal"),
    ("even-vertical", "vertical"),
];

/// The config dir: `TERMLOOM_CONFIG_DIR`, else the XDG config dir (`~/.config/termloom` on Linux
/// and macOS).
pub fn default_config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    use etcetera::BaseStrategy;
    let base = etcetera::choose_base_strategy().map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot find the config dir (no home directory?): {e}"
        ))
    })?;
    Ok(base.config_dir().join("termloom"))
}

/// Which terminal a project opens in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectBackend {
    /// A tmux session, attached from whatever terminal the person uses.
    #[default]
    Tmux,
    /// Native iTerm2 windows, tabs and split panes.
    Iterm,
    /// iTerm2 windows showing a tmux session through `tmux -CC`.
    ItermTmux,
}

impl ProjectBackend {
    /// The name used in project files.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProjectBackend::Tmux => "tmux",
            ProjectBackend::Iterm => "iterm",
            ProjectBackend::ItermTmux => "iterm-tmux",
        }
    }
}

impl fmt::Display for ProjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A project file: a named workspace definition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The project's name (letters, digits, `.`, `_`, `-`); the file name without `.yaml` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Which terminal it opens in.
    #[serde(default, skip_serializing_if = "is_default")]
    pub backend: ProjectBackend,
    /// The host the workspace lives on, reached over ssh; this machine when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The tmux session name: the key that finds the workspace again. Defaults to the name (with
    /// `.` turned into `_`, which tmux cannot hold in a session name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The working directory of panes that name none (`~` is expanded); relative `cwd`s start here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Environment of every pane (set on the workspace when it is created).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// iTerm2 options (ignored by the tmux backend).
    #[serde(default, skip_serializing_if = "ItermOptions::is_empty")]
    pub iterm: ItermOptions,
    /// Programs run on open and close.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// The windows, in order.
    pub windows: Vec<WindowDef>,
}

/// One window of a project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDef {
    /// The window's name (unique within the project).
    pub name: String,
    /// How its panes are arranged; `single` for one pane, else `tiled`, when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutDef>,
    /// Working directory of its panes (relative to the project root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// iTerm2 options for this window (its profile).
    #[serde(default, skip_serializing_if = "WindowItermOptions::is_empty")]
    pub iterm: WindowItermOptions,
    /// The panes, in layout order; one pane named after the window when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panes: Vec<PaneDef>,
}

/// One pane of a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaneDef {
    /// The pane's name, unique within the project; its session is named `PROJECT/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A command line typed into the pane's shell when the pane is created (never again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Several command lines, typed in order when the pane is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Working directory (relative to the window's cwd, else the project root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Make this the active pane (and its window the active window) when the workspace is created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub focus: bool,
}

impl PaneDef {
    /// The command lines to type, in order.
    pub fn command_lines(&self) -> Vec<&str> {
        self.command
            .iter()
            .map(String::as_str)
            .chain(self.commands.iter().map(String::as_str))
            .collect()
    }
}

/// A window's layout: a predefined name or a split tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LayoutDef {
    /// A predefined layout, filled with the window's panes in order.
    Named(String),
    /// A split tree whose leaves name panes.
    Tree(LayoutNodeDef),
}

impl<'de> Deserialize<'de> for LayoutDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LayoutDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a layout name (such as horizontal) or a split tree (split, children)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<LayoutDef, E> {
                Ok(LayoutDef::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<LayoutDef, A::Error> {
                LayoutNodeDef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(LayoutDef::Tree)
            }
        }
        d.deserialize_any(V)
    }
}

/// A node of a layout tree: a pane leaf (`pane: NAME`) or a split (`split` + `children`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutNodeDef {
    /// A leaf: the pane's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane: Option<String>,
    /// A split: `horizontal` (side by side) or `vertical` (stacked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Direction>,
    /// This node's share of its parent split (`60%` or `60`); the unsized children of a split share
    /// what the sized ones leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Percent>,
    /// A split's children, left to right or top to bottom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<LayoutNodeDef>,
}

/// A share in percent, written `60%` or `60`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Percent(pub u8);

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}%", self.0))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage from 1 to 99, such as 60%")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Percent, E> {
                match u8::try_from(v) {
                    Ok(p) if (1..=99).contains(&p) => Ok(Percent(p)),
                    _ => Err(E::custom(format!("size must be 1-99%, got {v}"))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Percent, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("size must be 1-99%, got {v}"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Percent, E> {
                let digits = v.trim().trim_end_matches('%').trim();
                match digits.parse::<u64>() {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "size must be a percentage such as 60%, got '{v}'"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// iTerm2 options of a project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItermOptions {
    /// The iTerm2 profile of every window (a window's own profile wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The window size, `COLUMNSxROWS` (for iterm-tmux: fixed with `resize-window -A`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<WindowSize>,
}

impl ItermOptions {
    fn is_empty(&self) -> bool {
        self.profile.is_none() && self.size.is_none()
    }
}

/// iTerm2 options of one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowItermOptions {
    /// The iTerm2 profile of this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl WindowItermOptions {
    fn is_empty(&self) -> bool {
        self.profile.is_none()
    }
}

/// A window size in character cells, written `200x50`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowSize {
    /// Columns.
    pub columns: u16,
    /// Rows.
    pub rows: u16,
}

impl fmt::Display for WindowSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.columns, self.rows)
    }
}

impl std::str::FromStr for WindowSize {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("expected COLUMNSxROWS such as 200x50, got '{s}'");
        let (c, r) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let columns: u16 = c.trim().parse().map_err(|_| bad())?;
        let rows: u16 = r.trim().parse().map_err(|_| bad())?;
        if columns < 10 || rows < 2 {
            return Err(format!("window size {s} is too small"));
        }
        Ok(WindowSize { columns, rows })
    }
}

impl Serialize for WindowSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WindowSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Programs run on the local machine when a project opens or closes: each an argv list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Run after every open, once the workspace is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_open: Vec<Vec<String>>,
    /// Run after every close, once the clients are detached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_close: Vec<Vec<String>>,
}

impl Hooks {
    fn is_empty(&self) -> bool {
        self.on_open.is_empty() && self.on_close.is_empty()
    }
}

/// One problem found in a project file, with the path of the field (`windows[0].panes[1].name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field, as a path from the top of the file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A project file that does not load: which file, where, which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}:{line}:{column}: {}{message}{}", file.display(),
    // A field, not a placeholder such as `(yaml)` (the file as a whole), is named.
    if field.starts_with('(') { String::new() } else { format!("{field}: ") },
    if *more > 0 { format!(" (and {more} more problem(s))") } else { String::new() })]
pub struct ProjectFileError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based; 0 when unknown).
    pub line: u64,
    /// The column (1-based; 0 when unknown).
    pub column: u64,
    /// The field, as a path (`windows[0].layout`), or `(yaml)` for a syntax error.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How many more problems the file has.
    pub more: usize,
}

impl From<ProjectFileError> for Error {
    fn from(e: ProjectFileError) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

/// One pane of a window with its name and settings resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPane {
    /// The pane's name within the project.
    pub name: String,
    /// Command lines typed at creation.
    pub commands: Vec<String>,
    /// The working directory (absolute when the project has a root), `None` for the default.
    pub cwd: Option<PathBuf>,
    /// Focus this pane when the workspace is created.
    pub focus: bool,
}

/// A window with its layout and panes resolved: what [`open`](self::open()) builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedWindow {
    /// The window's name.
    pub name: String,
    /// The layout, leaves named by pane name (commands left out: they are in `panes`).
    pub layout: Layout,
    /// The panes, by name.
    pub panes: Vec<ResolvedPane>,
}

impl ResolvedWindow {
    /// A pane by name.
    pub fn pane(&self, name: &str) -> Option<&ResolvedPane> {
        self.panes.iter().find(|p| p.name == name)
    }
}

/// Expands a leading `~` (alone or followed by `/`) to the home directory.
pub fn expand_tilde(p: &Path) -> PathBuf {
    let Some(s) = p.to_str() else {
        return p.to_path_buf();
    };
    let rest = if s == "~" {
        Some("")
    } else {
        s.strip_prefix("~/")
    };
    match (rest, etcetera::home_dir()) {
        (Some(""), Ok(home)) => home,
        (Some(rest), Ok(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

fn check_text(field: &str, what: &str, s: &str, out: &mut Vec<Problem>) {
    if s.is_empty() {
        out.push(Problem::new(field, format!("{what} must not be empty")));
    } else if s.chars().any(char::is_control) {
        out.push(Problem::new(
            field,
            format!("{what} must not contain control characters"),
        ));
    } else if s.chars().count() > 200 {
        out.push(Problem::new(
            field,
            format!("{what} is longer than 200 characters"),
        ));
    }
}

/// Checks a workspace tag key: `[a-z0-9_]+`, at most 64 characters.
pub fn check_tag_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::InvalidArgument(format!(
            "invalid workspace tag key '{key}': use a-z, 0-9 and '_'"
        )));
    }
    Ok(())
}

/// Checks a project name: letters, digits, `.`, `_`, `-`; not starting with `.` or `-`.
pub fn check_project_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid project name '{name}': use letters, digits, '.', '_' and '-' (not first)"
        )))
    }
}

impl Project {
    /// The workspace (tmux session) name: `session`, else the name with `.` turned into `_`.
    pub fn workspace(&self) -> String {
        match &self.session {
            Some(s) => s.clone(),
            None => self.name.replace('.', "_"),
        }
    }

    /// The root dir with `~` expanded.
    pub fn root_dir(&self) -> Option<PathBuf> {
        self.root.as_deref().map(expand_tilde)
    }

    /// The session name of a pane: `PROJECT/PANE`.
    pub fn session_name(&self, pane: &str) -> String {
        format!("{}/{pane}", self.name)
    }

    /// The panes of window `index` with default names filled in, in declaration order; the layout
    /// tree's leaves that name no declared pane are added after them as plain shells.
    fn pane_defs(&self, w: &WindowDef) -> Vec<(String, PaneDef)> {
        let mut out: Vec<(String, PaneDef)> = if w.panes.is_empty() {
            match &w.layout {
                Some(LayoutDef::Tree(_)) => Vec::new(),
                _ => vec![(w.name.clone(), PaneDef::default())],
            }
        } else {
            let single = w.panes.len() == 1;
            w.panes
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let name = match &p.name {
                        Some(n) => n.clone(),
                        None if single => w.name.clone(),
                        None => format!("{}-{}", w.name, i + 1),
                    };
                    (name, p.clone())
                })
                .collect()
        };
        if let Some(LayoutDef::Tree(t)) = &w.layout {
            let mut leaves = Vec::new();
            tree_leaves(t, &mut leaves);
            for leaf in leaves {
                if !out.iter().any(|(n, _)| *n == leaf) {
                    out.push((leaf.clone(), PaneDef::default()));
                }
            }
        }
        out
    }

    /// Every problem in the project, each with its field path. Empty when it is fine.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.name.is_empty() {
            out.push(Problem::new("name", "the project needs a name"));
        } else if let Err(e) = check_project_name(&self.name) {
            out.push(Problem::new("name", strip_invalid(&e)));
        }
        if let Some(s) = &self.session {
            check_text("session", "the session name", s, &mut out);
            if s.contains(['.', ':']) {
                out.push(Problem::new(
                    "session",
                    "a tmux session name cannot contain '.' or ':'",
                ));
            }
            if s.contains(['$', '\\']) {
                out.push(Problem::new(
                    "session",
                    "a session name cannot contain '$' or '\\' (tmux stores them escaped: the workspace could never be found by its name)",
                ));
            }
        }
        if let Some(h) = &self.host {
            check_text("host", "the host", h, &mut out);
            if h.starts_with('-') || h.contains(char::is_whitespace) {
                out.push(Problem::new(
                    "host",
                    "the host must be an ssh destination such as user@box (no spaces, not starting with '-')",
                ));
            }
        }
        for (k, v) in &self.env {
            let f = format!("env.{k}");
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                out.push(Problem::new(f, "invalid environment variable"));
            }
        }
        if let Some(p) = &self.iterm.profile {
            check_text("iterm.profile", "the profile", p, &mut out);
        }
        for (list, hooks) in [
            ("on_open", &self.hooks.on_open),
            ("on_close", &self.hooks.on_close),
        ] {
            for (i, argv) in hooks.iter().enumerate() {
                let f = format!("hooks.{list}[{i}]");
                if argv.is_empty() || argv[0].is_empty() {
                    out.push(Problem::new(
                        f,
                        "a hook is an argv list: program first, such as [make, deps]",
                    ));
                } else if argv.iter().any(|a| a.contains('\0')) {
                    out.push(Problem::new(f, "a hook argument contains a NUL byte"));
                }
            }
        }
        if self.windows.is_empty() {
            out.push(Problem::new(
                "windows",
                "a project needs at least one window",
            ));
        }
        // A relative directory with nothing absolute under it would depend on the directory
        // termloom happens to run in (the CLI's, the MCP server's): refused.
        let relative = |d: &Option<PathBuf>| d.as_deref().is_some_and(|d| !anchored(d));
        if relative(&self.root) {
            out.push(Problem::new(
                "root",
                "the root must be an absolute path or start with ~/ (a relative one would depend on the directory termloom runs in)",
            ));
        }
        let no_base = self.root.is_none();
        let mut window_names = HashSet::new();
        let mut pane_names: BTreeMap<String, String> = BTreeMap::new();
        for (wi, w) in self.windows.iter().enumerate() {
            let wf = format!("windows[{wi}]");
            if no_base && relative(&w.cwd) {
                out.push(Problem::new(
                    format!("{wf}.cwd"),
                    "a relative cwd needs a root to start from: give the project a root, or write the path in full",
                ));
            }
            let pane_base = !no_base || w.cwd.is_some();
            for (pi, p) in w.panes.iter().enumerate() {
                if !pane_base && relative(&p.cwd) {
                    out.push(Problem::new(
                        format!("{wf}.panes[{pi}].cwd"),
                        "a relative cwd needs a root (or the window's cwd) to start from: give the project a root, or write the path in full",
                    ));
                }
            }
            check_text(&format!("{wf}.name"), "a window name", &w.name, &mut out);
            if let Err(Error::InvalidArgument(m)) =
                crate::model::check_window_name_not_index(&w.name)
            {
                out.push(Problem::new(format!("{wf}.name"), m));
            }
            if !window_names.insert(w.name.as_str()) {
                out.push(Problem::new(
                    format!("{wf}.name"),
                    format!("window name '{}' is used twice", w.name),
                ));
            }
            if let Some(p) = &w.iterm.profile {
                check_text(&format!("{wf}.iterm.profile"), "the profile", p, &mut out);
            }
            for (pi, p) in w.panes.iter().enumerate() {
                let pf = format!("{wf}.panes[{pi}]");
                if let Some(n) = &p.name {
                    check_text(&format!("{pf}.name"), "a pane name", n, &mut out);
                    if n.contains('/') {
                        out.push(Problem::new(
                            format!("{pf}.name"),
                            "a pane name cannot contain '/' (sessions are named PROJECT/PANE)",
                        ));
                    }
                    if n.contains(':') {
                        out.push(Problem::new(
                            format!("{pf}.name"),
                            "a pane name cannot contain ':' (session names cannot: targets use it)",
                        ));
                    }
                }
                if p.command.is_some() && !p.commands.is_empty() {
                    out.push(Problem::new(
                        format!("{pf}.commands"),
                        "give either command or commands, not both",
                    ));
                }
                for (ci, c) in p.command_lines().iter().enumerate() {
                    if c.contains('\0') {
                        out.push(Problem::new(
                            format!("{pf}.commands[{ci}]"),
                            "a command contains a NUL byte",
                        ));
                    }
                }
            }
            for (pi, (name, _)) in self.pane_defs(w).iter().enumerate() {
                let field = if pi < w.panes.len() {
                    format!("{wf}.panes[{pi}].name")
                } else {
                    format!("{wf}.layout")
                };
                // A name the file does not spell out (after the window, or a layout's leaf) is
                // checked here; spelled-out pane names are checked above.
                let given = w.panes.get(pi).is_some_and(|p| p.name.is_some());
                if !given {
                    let from = if pi < w.panes.len() || w.panes.is_empty() {
                        format!("{wf}.name")
                    } else {
                        field.clone()
                    };
                    for (c, why) in [
                        (':', "targets use it"),
                        ('/', "sessions are named PROJECT/PANE"),
                    ] {
                        if name.contains(c) {
                            out.push(Problem::new(
                                from.clone(),
                                format!(
                                    "the pane named '{name}' after it cannot contain '{c}' ({why}); give the pane a name"
                                ),
                            ));
                        }
                    }
                }
                if let Some(other) = pane_names.insert(name.clone(), w.name.clone()) {
                    out.push(Problem::new(
                        field,
                        format!(
                            "pane name '{name}' is used twice (also in window '{other}'); pane names are unique within a project"
                        ),
                    ));
                }
            }
            if let Err(p) = self.window_layout(w) {
                out.push(Problem::new(format!("{wf}.{}", p.field), p.message));
            }
        }
        out
    }

    /// Checks the project; the first problem as an error.
    pub fn validate(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(p) => Err(Error::InvalidArgument(format!(
                "project '{}': {}: {}",
                self.name, p.field, p.message
            ))),
        }
    }

    fn window_layout(&self, w: &WindowDef) -> std::result::Result<Layout, Problem> {
        let panes = self.pane_defs(w);
        let names: Vec<String> = panes.iter().map(|(n, _)| n.clone()).collect();
        let layout = match &w.layout {
            None if names.len() == 1 => Layout::predefined("single", &names),
            None => Layout::predefined("tiled", &names),
            Some(LayoutDef::Named(n)) => {
                let n = LAYOUT_ALIASES
                    .iter()
                    .find(|(a, _)| a == n)
                    .map(|(_, to)| *to)
                    .unwrap_or(n);
                Layout::predefined(n, &names)
            }
            Some(LayoutDef::Tree(t)) => {
                let mut leaves = Vec::new();
                tree_leaves(t, &mut leaves);
                let mut seen = HashSet::new();
                for l in &leaves {
                    if !seen.insert(l.as_str()) {
                        return Err(Problem::new(
                            "layout",
                            format!("pane '{l}' appears twice in the layout"),
                        ));
                    }
                }
                if let Some(missing) = names.iter().find(|n| !seen.contains(n.as_str())) {
                    return Err(Problem::new(
                        "layout",
                        format!("pane '{missing}' is not placed in the layout tree"),
                    ));
                }
                let l = Layout {
                    root: tree_to_node(t, "layout")?,
                };
                l.validate().map(|()| l)
            }
        };
        layout.map_err(|e| Problem::new("layout", strip_invalid(&e)))
    }

    /// The windows with layouts and panes resolved (cwd made absolute against the root), checking
    /// the project first.
    pub fn resolve(&self) -> Result<Vec<ResolvedWindow>> {
        self.validate()?;
        let root = self.root_dir();
        let mut out = Vec::new();
        for w in &self.windows {
            let wcwd = join_dir(root.as_deref(), w.cwd.as_deref());
            let mut layout = self
                .window_layout(w)
                .map_err(|p| Error::InvalidArgument(format!("{}: {}", p.field, p.message)))?;
            let defs = self.pane_defs(w);
            let panes: Vec<ResolvedPane> = defs
                .iter()
                .map(|(name, p)| ResolvedPane {
                    name: name.clone(),
                    commands: p.command_lines().iter().map(|s| s.to_string()).collect(),
                    cwd: join_dir(wcwd.as_deref(), p.cwd.as_deref()),
                    focus: p.focus,
                })
                .collect();
            for spec in layout.panes_mut() {
                if let Some(p) = panes.iter().find(|p| p.name == spec.name) {
                    spec.cwd = p.cwd.clone();
                    spec.focus = p.focus;
                }
            }
            out.push(ResolvedWindow {
                name: w.name.clone(),
                layout,
                panes,
            });
        }
        Ok(out)
    }

    /// Parses and checks a project file's text. `file` names the file in errors; its stem is the
    /// project's name when the file gives none (and must match the name when it does).
    pub fn from_yaml(text: &str, file: &Path) -> std::result::Result<Project, ProjectFileError> {
        let map = yaml::SourceMap::parse(text);
        let mut project: Project = match serde_saphyr::from_str(text) {
            Ok(p) => p,
            Err(e) => return Err(yaml::locate_error(&e, map.as_ref(), file)),
        };
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let err_at = |field: &str, message: String, more: usize| {
            let (line, column) = map.as_ref().map(|m| m.locate(field)).unwrap_or((0, 0));
            ProjectFileError {
                file: file.to_path_buf(),
                line,
                column,
                field: field.to_string(),
                message,
                more,
            }
        };
        if project.name.is_empty() {
            project.name = stem.clone();
        } else if !stem.is_empty() && project.name != stem && is_project_file(file) {
            return Err(err_at(
                "name",
                format!(
                    "the name '{}' does not match the file name '{}' (rename one of them)",
                    project.name,
                    file.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
                0,
            ));
        }
        let problems = project.problems();
        if let Some(p) = problems.first() {
            return Err(err_at(&p.field, p.message.clone(), problems.len() - 1));
        }
        Ok(project)
    }

    /// Loads and checks a project file.
    pub fn load_file(path: &Path) -> Result<Project> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read project file {}", path.display()), e))?;
        Ok(Project::from_yaml(&text, path)?)
    }

    /// The project as YAML, in the file format.
    pub fn to_yaml(&self) -> Result<String> {
        serde_saphyr::to_string(self).map_err(|e| {
            Error::InvalidArgument(format!("cannot write project '{}': {e}", self.name))
        })
    }
}

fn is_project_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn strip_invalid(e: &Error) -> String {
    match e {
        Error::InvalidArgument(m) => m.clone(),
        e => e.to_string(),
    }
}

/// Whether a project path names one directory wherever termloom runs: absolute, or under `~`.
pub(crate) fn anchored(p: &Path) -> bool {
    p.is_absolute() || p.starts_with("~")
}

fn join_dir(base: Option<&Path>, rel: Option<&Path>) -> Option<PathBuf> {
    match (base, rel.map(expand_tilde)) {
        (_, Some(r)) if r.is_absolute() => Some(r),
        (Some(b), Some(r)) => Some(b.join(r)),
        (None, Some(r)) => Some(r),
        (b, None) => b.map(Path::to_path_buf),
    }
}

fn tree_leaves(n: &LayoutNodeDef, out: &mut Vec<String>) {
    if let Some(p) = &n.pane {
        out.push(p.clone());
    }
    for c in &n.children {
        tree_leaves(c, out);
    }
}

/// Converts a layout tree to core's split tree, checking its shape. `field` is the node's path.
fn tree_to_node(n: &LayoutNodeDef, field: &str) -> std::result::Result<LayoutNode, Problem> {
    match (&n.pane, n.split) {
        (Some(_), Some(_)) => Err(Problem::new(
            field,
            "a layout node is either a pane or a split, not both",
        )),
        (Some(p), None) => {
            if !n.children.is_empty() {
                return Err(Problem::new(field, "a pane node has no children"));
            }
            Ok(LayoutNode::Pane(PaneSpec {
                name: p.clone(),
                ..PaneSpec::default()
            }))
        }
        (None, None) => Err(Problem::new(
            field,
            "a layout node needs pane: NAME or split: horizontal|vertical",
        )),
        (None, Some(direction)) => {
            if n.children.len() < 2 {
                return Err(Problem::new(field, "a split needs at least 2 children"));
            }
            let given: u32 = n
                .children
                .iter()
                .filter_map(|c| c.size.map(|p| u32::from(p.0)))
                .sum();
            let unsized_count = n.children.iter().filter(|c| c.size.is_none()).count() as u32;
            if given > 100 || (unsized_count == 0 && given != 100) {
                return Err(Problem::new(
                    field,
                    format!("the sizes of a split's children must add up to 100% (got {given}%)"),
                ));
            }
            let left = 100 - given;
            if unsized_count > 0 && left < unsized_count {
                return Err(Problem::new(
                    field,
                    format!("{given}% is given to sized children: nothing left for the others"),
                ));
            }
            let mut k = 0u32;
            let mut children = Vec::new();
            for (i, c) in n.children.iter().enumerate() {
                let percent = match c.size {
                    Some(p) => p.0,
                    None => {
                        let share = left / unsized_count.max(1)
                            + u32::from(k < left % unsized_count.max(1));
                        k += 1;
                        share as u8
                    }
                };
                children.push(LayoutChild {
                    percent,
                    node: tree_to_node(c, &format!("{field}.children[{i}]"))?,
                });
            }
            Ok(LayoutNode::Split {
                direction,
                children,
            })
        }
    }
}

/// The projects directory and the files in it.
#[derive(Clone, Debug)]
pub struct ProjectStore {
    dir: PathBuf,
}

impl ProjectStore {
    /// A store in `dir` (the `projects` folder itself).
    pub fn new(dir: impl Into<PathBuf>) -> ProjectStore {
        ProjectStore { dir: dir.into() }
    }

    /// The store in the default config dir: `$TERMLOOM_CONFIG_DIR/projects`, else
    /// `~/.config/termloom/projects`.
    pub fn from_env() -> Result<ProjectStore> {
        Ok(ProjectStore::new(default_config_dir()?.join("projects")))
    }

    /// The projects directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a project lives in (`NAME.yaml`; an existing `NAME.yml` is found too).
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        check_project_name(name)?;
        let yaml = self.dir.join(format!("{name}.yaml"));
        let yml = self.dir.join(format!("{name}.yml"));
        Ok(if !yaml.exists() && yml.exists() {
            yml
        } else {
            yaml
        })
    }

    /// The names of every project file, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .files()?
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|n| check_project_name(n).is_ok())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The project files whose names are not project names (`my project.yaml`): never opened,
    /// listed so that a person learns why.
    pub fn misnamed(&self) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = self
            .files()?
            .into_iter()
            .filter(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_none_or(|n| check_project_name(n).is_err())
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Every `.yaml`/`.yml` file in the store's directory.
    fn files(&self) -> Result<Vec<PathBuf>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(format!("cannot list {}", self.dir.display()), e));
            }
        };
        Ok(rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_project_file(p))
            .collect())
    }

    /// Loads and checks a project by name.
    pub fn load(&self, name: &str) -> Result<Project> {
        let path = self.path(name)?;
        if !path.exists() {
            return Err(Error::InvalidArgument(format!(
                "no project named '{name}' (no file {})",
                path.display()
            )));
        }
        Project::load_file(&path)
    }

    /// Writes a project (checked first) as `NAME.yaml`, atomically; refuses to replace an existing
    /// file unless `overwrite`. Returns the path.
    pub fn save(&self, project: &Project, overwrite: bool) -> Result<PathBuf> {
        project.validate()?;
        let path = self.dir.join(format!("{}.yaml", project.name));
        check_project_name(&project.name)?;
        if !overwrite && (path.exists() || self.path(&project.name)?.exists()) {
            return Err(Error::InvalidArgument(format!(
                "project '{}' exists already ({}); pass --force to replace it",
                project.name,
                path.display()
            )));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("cannot create {}", self.dir.display()), e))?;
        let text = project.to_yaml()?;
        let tmp = self
            .dir
            .join(format!(".{}.yaml.tmp-{}", project.name, std::process::id()));
        std::fs::write(&tmp, text)
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("cannot write {}", path.display()), e)
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests;
