//! Plain data backends report for projects: a window's live split tree (for freezing) and how to
//! attach a person's terminal to a workspace.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layout::Direction;
use crate::model::{SessionInfo, WindowInfo};

/// A window as it is now: its panes as a split tree with their sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveWindow {
    /// The window.
    pub window: WindowInfo,
    /// Its split tree.
    pub root: LiveCell,
}

/// A cell of a live split tree, sized in character cells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveCell {
    /// One pane and its session.
    Pane {
        /// The session in the pane.
        session: Box<SessionInfo>,
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
    },
    /// An area divided among children.
    Split {
        /// Side by side ([`Direction::Horizontal`]) or stacked.
        direction: Direction,
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
        /// The children, left to right or top to bottom.
        children: Vec<LiveCell>,
    },
}

impl LiveCell {
    /// Columns.
    pub fn width(&self) -> u32 {
        match self {
            LiveCell::Pane { width, .. } | LiveCell::Split { width, .. } => *width,
        }
    }

    /// Rows.
    pub fn height(&self) -> u32 {
        match self {
            LiveCell::Pane { height, .. } | LiveCell::Split { height, .. } => *height,
        }
    }

    /// The sessions of the tree, in layout order.
    pub fn sessions(&self) -> Vec<&SessionInfo> {
        match self {
            LiveCell::Pane { session, .. } => vec![session.as_ref()],
            LiveCell::Split { children, .. } => {
                children.iter().flat_map(LiveCell::sessions).collect()
            }
        }
    }
}

/// How to attach a person's terminal to a workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOpts {
    /// Create the workspace when it does not exist (like `tmux new-session -A`).
    pub create: bool,
    /// The working directory of a workspace created for the attach.
    pub cwd: Option<PathBuf>,
    /// Attach in control mode (`tmux -CC`), for iTerm2's tmux integration.
    pub control_mode: bool,
    /// The host the tmux session lives on, when the attaching terminal runs here and reaches it
    /// over `ssh -t HOST` (iTerm2); a backend that runs tmux on the host itself ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A program to run in the foreground of the person's terminal, inheriting its tty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachCommand {
    /// The program (`tmux`).
    pub program: PathBuf,
    /// Its arguments (never a shell string).
    pub args: Vec<String>,
    /// Environment to add.
    pub env: Vec<(String, String)>,
}

impl AttachCommand {
    /// The whole argv, program first.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// What attaching takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttachPlan {
    /// Run this command in the person's terminal (tmux `attach-session`, or `switch-client` when
    /// the terminal is already a client of the same server).
    Exec(AttachCommand),
    /// The backend showed the workspace itself (an iTerm2 window came to the front).
    Shown {
        /// What happened, for the person.
        message: String,
    },
}
