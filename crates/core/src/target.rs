//! The target grammar: how a caller names a session.
//!
//! One grammar serves the CLI and the MCP server:
//!
//! | text | meaning |
//! |---|---|
//! | `3f2a9c1e-…` (a full UUID) | that session |
//! | `id:3f2a` | the session whose UUID starts with these hex digits (at least 4) |
//! | `name:my pane` | only the session with exactly this name: no fallback to a UUID prefix or a workspace (names termloom sets never contain `:`, see [`crate::check_session_name`]; one set by hand is reached this way) |
//! | `tmux:%12`, `iterm:<guid>` | a backend-native id (re-verified before use) |
//! | `work:1.2`, `work:editor.0`, `work:editor`, `work:` | workspace `work`, window by index or exact name, pane by index (active window / pane when left out) |
//! | `web` | the session named exactly `web` or, when it is 4+ hex digits, whose UUID starts with it (both at once is ambiguous); else the active pane of the workspace named exactly `web` |
//!
//! A bare name is never matched by prefix: `b` does not match `bash`. When a target matches more than
//! one session, resolution fails with [`Error::AmbiguousTarget`] listing the candidates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{BackendKind, NativeId, SessionId};
use crate::model::SessionInfo;

/// Minimum number of hex digits in a UUID prefix.
pub const MIN_PREFIX_LEN: usize = 4;

/// A window inside a workspace, by index or exact name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSel {
    /// The window's index (tmux's `#{window_index}`).
    Index(u32),
    /// The window's exact name.
    Name(String),
}

impl fmt::Display for WindowSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowSel::Index(i) => write!(f, "{i}"),
            WindowSel::Name(n) => f.write_str(n),
        }
    }
}

impl WindowSel {
    /// Parses a window selector: digits are an index, anything else a name.
    pub fn parse(s: &str) -> WindowSel {
        match s.parse::<u32>() {
            Ok(i) if !s.starts_with('+') => WindowSel::Index(i),
            _ => WindowSel::Name(s.to_string()),
        }
    }

    /// True when this selector names the given window. Digits name the window at that index and
    /// a window named so (a session named `1` gets a window named `1`): when those are two
    /// windows, the selector is ambiguous, never silently the index.
    pub fn matches(&self, index: u32, name: &str) -> bool {
        match self {
            WindowSel::Index(i) => *i == index || name == i.to_string(),
            WindowSel::Name(n) => n == name,
        }
    }
}

/// How a caller names a session. Parse with [`str::parse`]; see the module docs for the grammar.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A full persistent id.
    Id(SessionId),
    /// A UUID prefix of at least [`MIN_PREFIX_LEN`] hex digits (dashes ignored).
    IdPrefix(String),
    /// An exact session name.
    Name(String),
    /// Bare text: an exact session name, or a UUID prefix when it is hex, or a workspace name.
    Bare(String),
    /// Workspace, optional window, optional pane index.
    Path {
        /// The workspace's exact name.
        workspace: String,
        /// The window; the workspace's active window when `None`.
        window: Option<WindowSel>,
        /// The pane index; the window's active pane when `None`.
        pane: Option<u32>,
    },
    /// A backend-native id.
    Native(NativeId),
}

pub(crate) fn is_hex_prefix(s: &str) -> bool {
    let digits: Vec<char> = s.chars().filter(|c| *c != '-').collect();
    digits.len() >= MIN_PREFIX_LEN
        && digits.len() <= 32
        && digits.iter().all(|c| c.is_ascii_hexdigit())
}

fn normalize_prefix(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(input: &str) -> Result<Target> {
        let bad = |reason: &str| Error::InvalidTarget {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("empty target"));
        }
        if input.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if let Ok(id) = uuid::Uuid::parse_str(input) {
            return Ok(Target::Id(SessionId::from_uuid(id)));
        }
        if let Some(rest) = input.strip_prefix("id:") {
            if !is_hex_prefix(rest) {
                return Err(bad("an id prefix needs at least 4 hex digits"));
            }
            return Ok(Target::IdPrefix(normalize_prefix(rest)));
        }
        if let Some(rest) = input.strip_prefix("name:") {
            if rest.is_empty() {
                return Err(bad("empty name"));
            }
            return Ok(Target::Name(rest.to_string()));
        }
        for backend in [BackendKind::Tmux, BackendKind::Iterm] {
            if let Some(rest) = input
                .strip_prefix(backend.as_str())
                .and_then(|r| r.strip_prefix(':'))
            {
                if backend == BackendKind::Tmux {
                    let ok = rest
                        .strip_prefix('%')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                    if !ok {
                        return Err(bad("a tmux native id is a pane id such as %12"));
                    }
                } else if rest.is_empty() {
                    return Err(bad("empty iTerm2 session id"));
                }
                return Ok(Target::Native(NativeId {
                    backend,
                    id: rest.to_string(),
                }));
            }
        }
        if let Some((workspace, rest)) = input.split_once(':') {
            if workspace.is_empty() {
                return Err(bad("empty workspace name before ':'"));
            }
            let (window, pane) = if rest.is_empty() {
                (None, None)
            } else {
                match rest.rsplit_once('.') {
                    Some((w, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        let pane = p.parse::<u32>().map_err(|_| bad("pane index too large"))?;
                        let window = if w.is_empty() {
                            None
                        } else {
                            Some(WindowSel::parse(w))
                        };
                        (window, Some(pane))
                    }
                    _ => (Some(WindowSel::parse(rest)), None),
                }
            };
            return Ok(Target::Path {
                workspace: workspace.to_string(),
                window,
                pane,
            });
        }
        Ok(Target::Bare(input.to_string()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::IdPrefix(p) => write!(f, "id:{p}"),
            Target::Name(n) => write!(f, "name:{n}"),
            Target::Bare(n) => f.write_str(n),
            Target::Path {
                workspace,
                window,
                pane,
            } => {
                write!(f, "{workspace}:")?;
                if let Some(w) = window {
                    write!(f, "{w}")?;
                }
                if let Some(p) = pane {
                    write!(f, ".{p}")?;
                }
                Ok(())
            }
            Target::Native(n) => write!(f, "{n}"),
        }
    }
}

impl From<SessionId> for Target {
    fn from(id: SessionId) -> Self {
        Target::Id(id)
    }
}

fn describe(s: &SessionInfo) -> String {
    format!("'{}' ({}, {})", s.name, s.id, s.path())
}

fn one<'a>(target: &Target, found: Vec<&'a SessionInfo>) -> Result<&'a SessionInfo> {
    let mut found = found;
    // One pane listed twice (a window linked into two workspaces) is one session; two panes
    // with one id are never silently one of them.
    found.sort_by(|a, b| (a.id, &a.native.id).cmp(&(b.id, &b.native.id)));
    found.dedup_by(|a, b| a.id == b.id && a.native == b.native);
    if let Some(e) = duplicate_id(&found) {
        return Err(e);
    }
    match found.len() {
        0 => Err(Error::SessionNotFound {
            target: target.to_string(),
        }),
        1 => Ok(found[0]),
        _ => Err(Error::AmbiguousTarget {
            target: target.to_string(),
            candidates: found.into_iter().map(describe).collect(),
        }),
    }
}

/// [`Error::DuplicateId`] when two of `found` (sorted by id) are different panes with one id.
fn duplicate_id(found: &[&SessionInfo]) -> Option<Error> {
    let pair = found.windows(2).find(|w| w[0].id == w[1].id)?;
    let id = pair[0].id;
    let remedy = match pair[0].native.backend {
        BackendKind::Tmux => {
            "Remove the copy with `tmux set-option -pu -t PANE @termloom_id` (or `set-option -su` / `-gu` / `-wu` for a server, global or window value)"
        }
        BackendKind::Iterm => {
            "Clear the `user.termloomID` variable of the iTerm2 session that should not carry it (iTerm2's Python API: `await session.async_set_variable(\"user.termloomID\", \"\")`); termloom then gives it an id of its own"
        }
    };
    Some(Error::DuplicateId {
        remedy: remedy.to_string(),
        id: id.to_string(),
        panes: found
            .iter()
            .filter(|s| s.id == id)
            .map(|s| format!("{} ({})", s.path(), s.native))
            .collect(),
    })
}

impl Target {
    /// Finds the one session this target names among `sessions` (usually a fresh listing of one
    /// terminal). Names match exactly, never by prefix; more than one match is an error that lists them.
    pub fn resolve<'a>(&self, sessions: &'a [SessionInfo]) -> Result<&'a SessionInfo> {
        match self {
            Target::Id(id) => one(self, sessions.iter().filter(|s| s.id == *id).collect()),
            Target::IdPrefix(p) => one(
                self,
                sessions
                    .iter()
                    .filter(|s| s.id.as_uuid().simple().to_string().starts_with(p.as_str()))
                    .collect(),
            ),
            Target::Name(n) => one(self, sessions.iter().filter(|s| s.name == *n).collect()),
            Target::Native(n) => one(self, sessions.iter().filter(|s| s.native == *n).collect()),
            Target::Path {
                workspace,
                window,
                pane,
            } => {
                let in_ws: Vec<&SessionInfo> = sessions
                    .iter()
                    .filter(|s| s.workspace == *workspace)
                    .collect();
                if in_ws.is_empty() {
                    return Err(Error::SessionNotFound {
                        target: self.to_string(),
                    });
                }
                let in_win: Vec<&SessionInfo> = match window {
                    Some(sel) => in_ws
                        .into_iter()
                        .filter(|s| sel.matches(s.window_index, &s.window_name))
                        .collect(),
                    None => in_ws.into_iter().filter(|s| s.window_active).collect(),
                };
                // Two windows with the same name are ambiguous even when a pane index is given.
                let mut windows: Vec<u32> = in_win.iter().map(|s| s.window_index).collect();
                windows.sort_unstable();
                windows.dedup();
                if windows.len() > 1 {
                    return Err(Error::AmbiguousTarget {
                        target: self.to_string(),
                        candidates: windows
                            .iter()
                            .map(|w| format!("window {workspace}:{w}"))
                            .collect(),
                    });
                }
                let panes: Vec<&SessionInfo> = match pane {
                    Some(p) => in_win.into_iter().filter(|s| s.pane_index == *p).collect(),
                    None => in_win.into_iter().filter(|s| s.active).collect(),
                };
                one(self, panes)
            }
            Target::Bare(text) => {
                let by_name: Vec<&SessionInfo> =
                    sessions.iter().filter(|s| s.name == *text).collect();
                let mut found = by_name;
                if is_hex_prefix(text) {
                    let p = normalize_prefix(text);
                    found.extend(
                        sessions
                            .iter()
                            .filter(|s| s.id.as_uuid().simple().to_string().starts_with(&p)),
                    );
                }
                if found.is_empty() {
                    // A workspace of exactly this name: its active window's active pane.
                    found.extend(
                        sessions
                            .iter()
                            .filter(|s| s.workspace == *text && s.window_active && s.active),
                    );
                }
                one(self, found)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_session;

    #[test]
    fn digits_name_a_window_by_index_or_by_name_and_both_at_once_is_ambiguous() {
        let mut zero = test_session("a", "w", 0, 0);
        zero.window_name = "main".into();
        let mut named = test_session("b", "w", 3, 0);
        named.window_name = "1".into();
        let both = vec![zero.clone(), named.clone()];
        // Only a window named "1": that one.
        let t: Target = "w:1.0".parse().unwrap();
        assert_eq!(t.resolve(&both).unwrap().id, named.id);
        // Index 0 is "main"; a window named "0" elsewhere makes "w:0" ambiguous.
        let mut other = test_session("c", "w", 5, 0);
        other.window_name = "0".into();
        let t: Target = "w:0.0".parse().unwrap();
        assert_eq!(t.resolve(&both).unwrap().id, zero.id);
        let e = t.resolve(&[zero, named, other]).unwrap_err();
        assert!(matches!(e, Error::AmbiguousTarget { .. }), "{e}");
    }

    #[test]
    fn an_id_on_two_panes_says_how_to_remove_the_copy_in_the_backends_terms() {
        let a = test_session("a", "w", 0, 0);
        let mut b = test_session("b", "w", 0, 1);
        b.id = a.id;
        let e = Target::Id(a.id)
            .resolve(&[a.clone(), b.clone()])
            .unwrap_err();
        assert!(e.to_string().contains("tmux set-option -pu"), "{e}");
        let (mut a, mut b) = (a, b);
        a.native = NativeId::iterm("GUID-A");
        b.native = NativeId::iterm("GUID-B");
        let e = Target::Id(a.id).resolve(&[a, b]).unwrap_err();
        assert!(matches!(e, Error::DuplicateId { .. }), "{e}");
        assert!(
            e.to_string().contains("user.termloomID") && !e.to_string().contains("tmux"),
            "{e}"
        );
    }

    #[test]
    fn parses_every_form() {
        let id = SessionId::new();
        assert_eq!(id.to_string().parse::<Target>().unwrap(), Target::Id(id));
        assert_eq!(
            "id:AB-cd".parse::<Target>().unwrap(),
            Target::IdPrefix("abcd".into())
        );
        assert!("id:ab".parse::<Target>().is_err());
        assert_eq!(
            "name:a:b.c".parse::<Target>().unwrap(),
            Target::Name("a:b.c".into())
        );
        assert_eq!(
            "tmux:%12".parse::<Target>().unwrap(),
            Target::Native(NativeId::tmux("%12"))
        );
        assert!("tmux:12".parse::<Target>().is_err());
        assert!("tmux:%1;kill-server".parse::<Target>().is_err());
        assert_eq!(
            "work:1.2".parse::<Target>().unwrap(),
            Target::Path {
                workspace: "work".into(),
                window: Some(WindowSel::Index(1)),
                pane: Some(2)
            }
        );
        assert_eq!(
            "work:my.editor".parse::<Target>().unwrap(),
            Target::Path {
                workspace: "work".into(),
                window: Some(WindowSel::Name("my.editor".into())),
                pane: None
            }
        );
        assert_eq!(
            "work:".parse::<Target>().unwrap(),
            Target::Path {
                workspace: "work".into(),
                window: None,
                pane: None
            }
        );
        assert_eq!("web".parse::<Target>().unwrap(), Target::Bare("web".into()));
        assert!("".parse::<Target>().is_err());
        assert!(":x".parse::<Target>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for t in [
            "id:abcd",
            "name:x y",
            "tmux:%3",
            "iterm:ABC-1",
            "w:1.2",
            "w:ed",
            "w:",
            "plain",
        ] {
            let parsed: Target = t.parse().unwrap();
            assert_eq!(parsed.to_string(), t);
            assert_eq!(parsed.to_string().parse::<Target>().unwrap(), parsed);
        }
    }

    #[test]
    fn bare_name_is_never_a_prefix_match() {
        let mut s1 = test_session("bash", "other", 0, 0);
        s1.window_name = "bash".into();
        let s2 = test_session("b", "b", 0, 0);
        let all = vec![s1, s2.clone()];
        let got = "b".parse::<Target>().unwrap().resolve(&all).unwrap();
        assert_eq!(got.id, s2.id);
        assert!("ba".parse::<Target>().unwrap().resolve(&all).is_err());
    }

    #[test]
    fn bare_name_falls_back_to_the_workspace_active_pane() {
        let mut a = test_session("x", "b", 0, 0);
        a.active = true;
        a.window_active = true;
        let mut other = test_session("bash", "bash", 0, 0);
        other.active = true;
        other.window_active = true;
        let all = vec![a.clone(), other];
        assert_eq!(
            "b".parse::<Target>().unwrap().resolve(&all).unwrap().id,
            a.id
        );
    }

    #[test]
    fn duplicate_names_are_ambiguous_and_list_candidates() {
        let a = test_session("dup", "w", 0, 0);
        let b = test_session("dup", "w", 0, 1);
        let err = "dup"
            .parse::<Target>()
            .unwrap()
            .resolve(&[a.clone(), b])
            .unwrap_err();
        match err {
            Error::AmbiguousTarget { candidates, .. } => assert_eq!(candidates.len(), 2),
            e => panic!("unexpected {e}"),
        }
        let prefix = a.id.as_uuid().simple().to_string()[..6].to_string();
        assert_eq!(
            Target::Bare(prefix)
                .resolve(std::slice::from_ref(&a))
                .unwrap()
                .id,
            a.id
        );
    }

    #[test]
    fn path_resolution_uses_indexes_names_and_active_flags() {
        let mut p0 = test_session("a", "w", 1, 0);
        p0.window_name = "ed".into();
        let mut p1 = test_session("b", "w", 1, 1);
        p1.window_name = "ed".into();
        p1.active = true;
        p1.window_active = true;
        p0.window_active = true;
        let all = vec![p0.clone(), p1.clone()];
        assert_eq!(
            "w:1.0".parse::<Target>().unwrap().resolve(&all).unwrap().id,
            p0.id
        );
        assert_eq!(
            "w:ed".parse::<Target>().unwrap().resolve(&all).unwrap().id,
            p1.id
        );
        assert_eq!(
            "w:".parse::<Target>().unwrap().resolve(&all).unwrap().id,
            p1.id
        );
        assert!("w:2".parse::<Target>().unwrap().resolve(&all).is_err());
        assert!("nope:1".parse::<Target>().unwrap().resolve(&all).is_err());
    }
}
