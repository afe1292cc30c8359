//! Writing a project from a live workspace: windows, pane names, working directories, and each
//! window's layout as the nearest predefined layout, else its split tree with sizes.
//!
//! The backend reports each window's split tree ([`Terminal::window_layouts`]); everything else
//! happens here, the same for every backend. Commands are not frozen: a backend sees the running
//! program's name, not the command line that started it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{
    LayoutDef, LayoutNodeDef, LiveCell, PaneDef, Percent, Project, TAG_PANES, TAG_PROJECT,
    WindowDef, check_project_name,
};
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::layout::{Direction, Layout, LayoutChild, LayoutNode, PREDEFINED, PaneSpec};
use crate::terminal::Terminal;

/// Largest difference, in percent, between a live split and a predefined layout's that still
/// counts as that layout.
const TOLERANCE: i32 = 4;

/// Shares of a whole, in percent: each at least 1, adding up to 100 (largest remainder).
fn percents(sizes: &[u32]) -> Vec<u8> {
    let n = sizes.len() as u64;
    let total: u64 = sizes.iter().map(|s| u64::from(*s).max(1)).sum();
    if n == 0 || total == 0 {
        return Vec::new();
    }
    let budget = 100u64.saturating_sub(n); // one percent each up front
    let exact: Vec<(u64, u64)> = sizes
        .iter()
        .map(|s| {
            let v = u64::from(*s).max(1) * budget;
            (v / total, v % total)
        })
        .collect();
    let mut out: Vec<u64> = exact.iter().map(|(q, _)| q + 1).collect();
    let mut left = 100 - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out.into_iter().map(|v| v.min(99) as u8).collect()
}

/// Converts a live split tree to core's layout, naming each leaf with `name_of(session id)`.
fn to_layout(cell: &LiveCell, name_of: &dyn Fn(SessionId) -> String) -> LayoutNode {
    match cell {
        LiveCell::Pane { session, .. } => LayoutNode::Pane(PaneSpec {
            name: name_of(session.id),
            ..PaneSpec::default()
        }),
        LiveCell::Split {
            direction,
            children,
            ..
        } => {
            let sizes: Vec<u32> = children
                .iter()
                .map(|c| match direction {
                    Direction::Horizontal => c.width(),
                    Direction::Vertical => c.height(),
                })
                .collect();
            LayoutNode::Split {
                direction: *direction,
                children: children
                    .iter()
                    .zip(percents(&sizes))
                    .map(|(c, percent)| LayoutChild {
                        percent,
                        node: to_layout(c, name_of),
                    })
                    .collect(),
            }
        }
    }
}

fn same_shape(a: &LayoutNode, b: &LayoutNode) -> bool {
    match (a, b) {
        (LayoutNode::Pane(x), LayoutNode::Pane(y)) => x.name == y.name,
        (
            LayoutNode::Split {
                direction: da,
                children: ca,
            },
            LayoutNode::Split {
                direction: db,
                children: cb,
            },
        ) => {
            da == db
                && ca.len() == cb.len()
                && ca.iter().zip(cb).all(|(x, y)| {
                    (i32::from(x.percent) - i32::from(y.percent)).abs() <= TOLERANCE
                        && same_shape(&x.node, &y.node)
                })
        }
        _ => false,
    }
}

fn to_tree(n: &LayoutNode, size: Option<u8>) -> LayoutNodeDef {
    match n {
        LayoutNode::Pane(p) => LayoutNodeDef {
            pane: Some(p.name.clone()),
            size: size.map(Percent),
            ..LayoutNodeDef::default()
        },
        LayoutNode::Split {
            direction,
            children,
        } => LayoutNodeDef {
            split: Some(*direction),
            size: size.map(Percent),
            children: children
                .iter()
                .map(|c| to_tree(&c.node, Some(c.percent)))
                .collect(),
            ..LayoutNodeDef::default()
        },
    }
}

/// The layout to write for a window: `None` for a single pane, the first predefined layout it is
/// (within a few percent), else its split tree with sizes.
pub fn layout_def_from_layout(layout: &Layout) -> Option<LayoutDef> {
    let names: Vec<String> = layout.panes().iter().map(|p| p.name.clone()).collect();
    if names.len() <= 1 {
        return None;
    }
    for name in PREDEFINED.iter().filter(|n| **n != "single") {
        if let Ok(l) = Layout::predefined(name, &names)
            && same_shape(&l.root, &layout.root)
        {
            return Some(LayoutDef::Named(name.to_string()));
        }
    }
    Some(LayoutDef::Tree(to_tree(&layout.root, None)))
}

/// A project written from a live workspace, and which session is which pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frozen {
    /// The project.
    pub project: Project,
    /// Pane name → the live session it was written from.
    pub panes: BTreeMap<String, SessionId>,
    /// The workspace it was written from.
    pub workspace: String,
}

impl Frozen {
    /// Tags the workspace as this project's, with its pane map, so that opening the project finds
    /// every pane and creates nothing. Refuses a workspace that is another project's.
    pub async fn claim(&self, t: &dyn Terminal) -> Result<()> {
        let tags = t.workspace_tags(&self.workspace).await?;
        if let Some(other) = tags.get(TAG_PROJECT)
            && *other != self.project.name
        {
            return Err(Error::InvalidArgument(format!(
                "workspace '{}' belongs to project '{other}'",
                self.workspace
            )));
        }
        let json = serde_json::to_string(&self.panes)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the pane map: {e}")))?;
        t.set_workspace_tag(&self.workspace, TAG_PROJECT, Some(&self.project.name))
            .await?;
        t.set_workspace_tag(&self.workspace, TAG_PANES, Some(&json))
            .await
    }
}

fn clean(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() || c == '/' { '_' } else { c })
        .collect();
    s.chars().take(100).collect()
}

pub(super) fn unique(name: String, seen: &mut HashSet<String>) -> String {
    if seen.insert(name.clone()) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}-{i}"))
        .find(|n| seen.insert(n.clone()))
        .unwrap_or(name)
}

fn relative(p: &Path, root: Option<&Path>) -> Option<PathBuf> {
    match root {
        Some(r) if p == r => None,
        Some(r) => Some(
            p.strip_prefix(r)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.to_path_buf()),
        ),
        None => Some(p.to_path_buf()),
    }
}

/// Writes a project named `name` from the live workspace `workspace`: its windows (by index),
/// pane names (a session named `PROJECT/PANE` gives `PANE`; an unnamed one `WINDOW-N`), working
/// directories (the first pane's is the root) and layouts.
pub async fn freeze(t: &dyn Terminal, workspace: &str, name: &str) -> Result<Frozen> {
    check_project_name(name)?;
    let mut wins = t.window_layouts(workspace).await?;
    if wins.is_empty() {
        return Err(Error::WorkspaceNotFound(workspace.to_string()));
    }
    wins.sort_by_key(|w| w.window.index);
    let root: Option<PathBuf> = wins
        .first()
        .and_then(|w| w.root.sessions().first().and_then(|s| s.cwd.clone()))
        .map(PathBuf::from);
    let mut pane_names = HashSet::new();
    let mut window_names = HashSet::new();
    let mut panes_map = BTreeMap::new();
    let mut windows = Vec::new();
    for w in &wins {
        let wname = unique(
            {
                let n = clean(&w.window.name);
                if n.is_empty() {
                    format!("window-{}", w.window.index)
                } else if crate::model::check_window_name_not_index(&n).is_err() {
                    // A project's window name of digits only would read as an index.
                    format!("window-{n}")
                } else {
                    n
                }
            },
            &mut window_names,
        );
        let sessions = w.root.sessions();
        let single = sessions.len() == 1;
        let mut names: BTreeMap<SessionId, String> = BTreeMap::new();
        let mut panes = Vec::new();
        for (i, s) in sessions.iter().enumerate() {
            let auto = s.name == s.path() || s.name.contains(':');
            // A pane name becomes a session name, which cannot hold ':' (a window name can).
            let pane_base = wname.replace(':', "_");
            let base = if auto {
                if single {
                    pane_base.clone()
                } else {
                    format!("{pane_base}-{}", i + 1)
                }
            } else {
                clean(s.name.rsplit('/').next().unwrap_or(&s.name)).replace(':', "_")
            };
            let pname = unique(
                if base.is_empty() { pane_base } else { base },
                &mut pane_names,
            );
            names.insert(s.id, pname.clone());
            panes_map.insert(pname.clone(), s.id);
            panes.push(PaneDef {
                name: Some(pname),
                cwd: s
                    .cwd
                    .as_deref()
                    .and_then(|c| relative(Path::new(c), root.as_deref())),
                focus: s.active && s.window_active,
                ..PaneDef::default()
            });
        }
        let layout = Layout {
            root: to_layout(&w.root, &|id| names.get(&id).cloned().unwrap_or_default()),
        };
        windows.push(WindowDef {
            name: wname,
            layout: layout_def_from_layout(&layout),
            panes,
            ..WindowDef::default()
        });
    }
    // One focused pane at most: the active pane of the active window.
    let mut focused = false;
    for p in windows.iter_mut().flat_map(|w| w.panes.iter_mut()) {
        p.focus = p.focus && !focused;
        focused |= p.focus;
    }
    // A root under the home directory is written with `~`, so the file works for the same
    // person on another machine.
    let shown_root = root.as_ref().map(|r| match etcetera::home_dir() {
        Ok(home) if r.starts_with(&home) && home != Path::new("/") => {
            let rest = r.strip_prefix(&home).unwrap_or(r);
            if rest.as_os_str().is_empty() {
                PathBuf::from("~")
            } else {
                Path::new("~").join(rest)
            }
        }
        _ => r.clone(),
    });
    let mut project = Project {
        name: name.to_string(),
        root: shown_root,
        windows,
        ..Project::default()
    };
    if project.workspace() != workspace {
        project.session = Some(workspace.to_string());
    }
    project.validate()?;
    Ok(Frozen {
        project,
        panes: panes_map,
        workspace: workspace.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_add_up() {
        assert_eq!(percents(&[40, 39]), vec![51, 49]);
        assert_eq!(
            percents(&[10, 10, 10])
                .iter()
                .map(|p| u32::from(*p))
                .sum::<u32>(),
            100
        );
        assert_eq!(percents(&[1, 1000]), vec![1, 99]);
    }

    #[test]
    fn predefined_layouts_are_recognised() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        for name in ["horizontal", "vertical", "main-vertical", "main-horizontal"] {
            let l = Layout::predefined(name, &names).unwrap();
            assert_eq!(
                layout_def_from_layout(&l),
                Some(LayoutDef::Named(name.into())),
                "{name}"
            );
        }
        let l = Layout::predefined("tiled", &names).unwrap();
        assert_eq!(
            layout_def_from_layout(&l),
            Some(LayoutDef::Named("tiled".into()))
        );
        let one = Layout::predefined("single", &names[..1]).unwrap();
        assert_eq!(layout_def_from_layout(&one), None);
    }

    #[test]
    fn other_layouts_become_trees() {
        let l = Layout {
            root: LayoutNode::Split {
                direction: Direction::Horizontal,
                children: vec![
                    LayoutChild {
                        percent: 30,
                        node: LayoutNode::Pane(PaneSpec {
                            name: "a".into(),
                            ..PaneSpec::default()
                        }),
                    },
                    LayoutChild {
                        percent: 70,
                        node: LayoutNode::Pane(PaneSpec {
                            name: "b".into(),
                            ..PaneSpec::default()
                        }),
                    },
                ],
            },
        };
        let Some(LayoutDef::Tree(t)) = layout_def_from_layout(&l) else {
            panic!("a tree");
        };
        assert_eq!(t.split, Some(Direction::Horizontal));
        assert_eq!(t.children[0].size, Some(Percent(30)));
        assert_eq!(t.children[1].pane.as_deref(), Some("b"));
    }
}
