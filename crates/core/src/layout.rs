//! Layouts: plain data describing the panes of one window as a split tree sized in percent.
//!
//! A layout is not a trait and holds no backend state: a backend applies it with
//! [`Terminal::apply_layout`](crate::Terminal::apply_layout), usually by walking [`Layout::plan`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which way a split divides its area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Children side by side, left to right (tmux `split-window -h`, iTerm2's vertical divider).
    Horizontal,
    /// Children stacked, top to bottom (tmux `split-window -v`, iTerm2's horizontal divider).
    Vertical,
}

/// One pane of a layout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaneSpec {
    /// The session's name (also the pane title).
    pub name: String,
    /// A command typed into the pane's shell once it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Give this pane focus after the layout is built.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub focus: bool,
}

/// A node of the split tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutNode {
    /// A leaf: one pane.
    Pane(PaneSpec),
    /// An area divided among children.
    Split {
        /// How the area is divided.
        direction: Direction,
        /// The children in order (left to right, or top to bottom), each with its share.
        children: Vec<LayoutChild>,
    },
}

/// A child of a split with its share of the parent's area.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutChild {
    /// Percent of the parent's area (1–99); the children of a split add up to 100.
    pub percent: u8,
    /// The child.
    pub node: LayoutNode,
}

/// The panes of one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The split tree.
    pub root: LayoutNode,
}

/// Names of the predefined layouts.
pub const PREDEFINED: &[&str] = &[
    "single",
    "horizontal",
    "vertical",
    "quad",
    "main-vertical",
    "main-horizontal",
    "tiled",
];

/// One step of building a layout: split the pane in `slot` so that the new pane takes `percent` of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitStep {
    /// The pane to split (slot 0 is the window's first pane; each step creates the next slot).
    pub slot: usize,
    /// The split's direction; the new pane goes right of, or below, the old one.
    pub direction: Direction,
    /// The new pane's share of the split pane, in percent.
    pub percent: u8,
}

/// The steps that build a layout from a single pane, and which pane spec lands in which slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutPlan {
    /// The splits, in order.
    pub steps: Vec<SplitStep>,
    /// Slot → pane spec, for every leaf.
    pub panes: Vec<(usize, PaneSpec)>,
}

fn equal_split(direction: Direction, nodes: Vec<LayoutNode>) -> LayoutNode {
    if nodes.len() == 1 {
        if let Some(n) = nodes.into_iter().next() {
            return n;
        }
        unreachable_empty()
    } else {
        let n = nodes.len();
        let base = (100 / n) as u8;
        let extra = 100 - base as usize * n;
        LayoutNode::Split {
            direction,
            children: nodes
                .into_iter()
                .enumerate()
                .map(|(i, node)| LayoutChild {
                    percent: base + u8::from(i < extra),
                    node,
                })
                .collect(),
        }
    }
}

// Only reached if a caller passes no nodes, which the predefined constructors never do.
fn unreachable_empty() -> LayoutNode {
    LayoutNode::Pane(PaneSpec::default())
}

impl Layout {
    /// A predefined layout by name, with the given pane names (or `pane-1`, `pane-2`, … when empty).
    ///
    /// `single` takes 1 pane, `quad` 4, `horizontal`, `vertical` and `tiled` 2 or more (default 2, 2 and 4),
    /// `main-vertical` / `main-horizontal` 2 or more (default 3): a main pane of 60% beside (or above) the rest.
    pub fn predefined(name: &str, pane_names: &[String]) -> Result<Layout> {
        let default_count = match name {
            "single" => 1,
            "horizontal" | "vertical" => 2,
            "quad" | "tiled" => 4,
            "main-vertical" | "main-horizontal" => 3,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown layout '{name}' (known: {})",
                    PREDEFINED.join(", ")
                )));
            }
        };
        let names: Vec<String> = if pane_names.is_empty() {
            (1..=default_count).map(|i| format!("pane-{i}")).collect()
        } else {
            pane_names.to_vec()
        };
        let n = names.len();
        let count_err = |want: &str| {
            Err(Error::InvalidArgument(format!(
                "layout '{name}' takes {want} pane(s), got {n}"
            )))
        };
        match name {
            "single" if n != 1 => return count_err("1"),
            "quad" if n != 4 => return count_err("4"),
            "horizontal" | "vertical" | "tiled" | "main-vertical" | "main-horizontal" if n < 2 => {
                return count_err("2 or more");
            }
            _ => {}
        }
        if n > 64 {
            return count_err("at most 64");
        }
        let mut seen = std::collections::HashSet::new();
        for nm in &names {
            if nm.is_empty() {
                return Err(Error::InvalidArgument(
                    "pane names must not be empty".into(),
                ));
            }
            if !seen.insert(nm) {
                return Err(Error::InvalidArgument(format!(
                    "pane name '{nm}' is given twice"
                )));
            }
        }
        let leaves: Vec<LayoutNode> = names
            .into_iter()
            .map(|name| {
                LayoutNode::Pane(PaneSpec {
                    name,
                    ..PaneSpec::default()
                })
            })
            .collect();
        let root = match name {
            "single" | "horizontal" => equal_split(Direction::Horizontal, leaves),
            "vertical" => equal_split(Direction::Vertical, leaves),
            "quad" | "tiled" => {
                let cols = (n as f64).sqrt().ceil() as usize;
                let rows: Vec<LayoutNode> = leaves
                    .chunks(cols)
                    .map(|row| equal_split(Direction::Horizontal, row.to_vec()))
                    .collect();
                equal_split(Direction::Vertical, rows)
            }
            _ => {
                let (outer, inner) = if name == "main-vertical" {
                    (Direction::Horizontal, Direction::Vertical)
                } else {
                    (Direction::Vertical, Direction::Horizontal)
                };
                let mut it = leaves.into_iter();
                let main = it.next().unwrap_or_else(unreachable_empty);
                LayoutNode::Split {
                    direction: outer,
                    children: vec![
                        LayoutChild {
                            percent: 60,
                            node: main,
                        },
                        LayoutChild {
                            percent: 40,
                            node: equal_split(inner, it.collect()),
                        },
                    ],
                }
            }
        };
        Ok(Layout { root })
    }

    /// Every pane spec, in plan order.
    pub fn panes(&self) -> Vec<&PaneSpec> {
        fn walk<'a>(n: &'a LayoutNode, out: &mut Vec<&'a PaneSpec>) {
            match n {
                LayoutNode::Pane(p) => out.push(p),
                LayoutNode::Split { children, .. } => {
                    children.iter().for_each(|c| walk(&c.node, out))
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Mutable access to every pane spec, in plan order.
    pub fn panes_mut(&mut self) -> Vec<&mut PaneSpec> {
        fn walk<'a>(n: &'a mut LayoutNode, out: &mut Vec<&'a mut PaneSpec>) {
            match n {
                LayoutNode::Pane(p) => out.push(p),
                LayoutNode::Split { children, .. } => {
                    children.iter_mut().for_each(|c| walk(&mut c.node, out))
                }
            }
        }
        let mut out = Vec::new();
        walk(&mut self.root, &mut out);
        out
    }

    /// Checks the tree: every split has 2+ children whose shares are 1–99 and add up to 100, and pane
    /// names are non-empty and unique.
    pub fn validate(&self) -> Result<()> {
        fn walk(n: &LayoutNode) -> Result<()> {
            if let LayoutNode::Split { children, .. } = n {
                if children.len() < 2 {
                    return Err(Error::InvalidArgument(
                        "a split needs at least 2 children".into(),
                    ));
                }
                let shares: Vec<String> =
                    children.iter().map(|c| format!("{}%", c.percent)).collect();
                let sum: u32 = children.iter().map(|c| u32::from(c.percent)).sum();
                if sum != 100 || children.iter().any(|c| c.percent == 0 || c.percent > 99) {
                    return Err(Error::InvalidArgument(format!(
                        "a split's children must each take 1-99% and add up to 100% (got {}, {sum}% in all)",
                        shares.join(" + ")
                    )));
                }
                children.iter().try_for_each(|c| walk(&c.node))?;
            }
            Ok(())
        }
        walk(&self.root)?;
        let mut seen = std::collections::HashSet::new();
        for p in self.panes() {
            if p.name.is_empty() {
                return Err(Error::InvalidArgument(
                    "pane names must not be empty".into(),
                ));
            }
            if !seen.insert(&p.name) {
                return Err(Error::InvalidArgument(format!(
                    "pane name '{}' is given twice",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// The panes in the tree's order: depth first, children left to right and top to bottom (the
    /// order a terminal lists the panes of a window built from this layout).
    pub fn leaves(&self) -> Vec<&PaneSpec> {
        fn walk<'a>(node: &'a LayoutNode, out: &mut Vec<&'a PaneSpec>) {
            match node {
                LayoutNode::Pane(p) => out.push(p),
                LayoutNode::Split { children, .. } => {
                    for c in children {
                        walk(&c.node, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// The split steps that build this layout from one pane: siblings are created before their
    /// children are divided, so each split only ever divides the area of one subtree.
    pub fn plan(&self) -> Result<LayoutPlan> {
        self.validate()?;
        fn place(node: &LayoutNode, slot: usize, next: &mut usize, plan: &mut LayoutPlan) {
            match node {
                LayoutNode::Pane(p) => plan.panes.push((slot, p.clone())),
                LayoutNode::Split {
                    direction,
                    children,
                } => {
                    let mut remaining: u32 = children.iter().map(|c| u32::from(c.percent)).sum();
                    let mut slots = vec![slot];
                    let mut cur = slot;
                    for c in &children[..children.len() - 1] {
                        let rest = remaining - u32::from(c.percent);
                        let percent = ((rest * 100 + remaining / 2) / remaining).clamp(1, 99) as u8;
                        plan.steps.push(SplitStep {
                            slot: cur,
                            direction: *direction,
                            percent,
                        });
                        cur = *next;
                        *next += 1;
                        slots.push(cur);
                        remaining = rest;
                    }
                    for (c, s) in children.iter().zip(slots) {
                        place(&c.node, s, next, plan);
                    }
                }
            }
        }
        let mut plan = LayoutPlan {
            steps: Vec::new(),
            panes: Vec::new(),
        };
        let mut next = 1;
        place(&self.root, 0, &mut next, &mut plan);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_predefined_layout_plans() {
        for name in PREDEFINED {
            let l = Layout::predefined(name, &[]).unwrap();
            let plan = l.plan().unwrap();
            assert_eq!(plan.steps.len() + 1, plan.panes.len(), "{name}");
            let mut slots: Vec<usize> = plan.panes.iter().map(|(s, _)| *s).collect();
            slots.sort_unstable();
            assert_eq!(slots, (0..plan.panes.len()).collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn horizontal_three_panes_split_evenly() {
        let l = Layout::predefined("horizontal", &names(&["a", "b", "c"])).unwrap();
        let plan = l.plan().unwrap();
        assert_eq!(
            plan.steps[0],
            SplitStep {
                slot: 0,
                direction: Direction::Horizontal,
                percent: 66
            }
        );
        assert_eq!(
            plan.steps[1],
            SplitStep {
                slot: 1,
                direction: Direction::Horizontal,
                percent: 50
            }
        );
        let order: Vec<&str> = plan.panes.iter().map(|(_, p)| p.name.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn quad_is_two_rows_of_two() {
        let plan = Layout::predefined("quad", &[]).unwrap().plan().unwrap();
        assert_eq!(plan.steps[0].direction, Direction::Vertical);
        assert_eq!(plan.steps[1].direction, Direction::Horizontal);
        assert_eq!(plan.steps[2].direction, Direction::Horizontal);
        assert_eq!(plan.panes.len(), 4);
    }

    #[test]
    fn wrong_pane_counts_and_names_are_rejected() {
        assert!(Layout::predefined("quad", &names(&["a"])).is_err());
        assert!(Layout::predefined("single", &names(&["a", "b"])).is_err());
        assert!(Layout::predefined("horizontal", &names(&["a", "a"])).is_err());
        assert!(Layout::predefined("nope", &[]).is_err());
    }

    #[test]
    fn bad_percentages_are_rejected() {
        let l = Layout {
            root: LayoutNode::Split {
                direction: Direction::Vertical,
                children: vec![
                    LayoutChild {
                        percent: 70,
                        node: LayoutNode::Pane(PaneSpec {
                            name: "a".into(),
                            ..Default::default()
                        }),
                    },
                    LayoutChild {
                        percent: 70,
                        node: LayoutNode::Pane(PaneSpec {
                            name: "b".into(),
                            ..Default::default()
                        }),
                    },
                ],
            },
        };
        assert!(l.plan().is_err());
    }

    #[test]
    fn layouts_round_trip_through_json() {
        let l = Layout::predefined("main-vertical", &[]).unwrap();
        let back: Layout = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
