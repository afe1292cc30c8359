//! Parser for tmux window layout strings.
//!
//! tmux describes the arrangement of the panes of a window with a compact
//! string, e.g. `b25f,80x24,0,0{40x24,0,0,1,39x24,41,0,2}` (see
//! `#{window_layout}`, `%layout-change` and `select-layout`). The grammar, as
//! implemented by `layout_construct()` in tmux's `layout-custom.c`, is:
//!
//! ```text
//! layout   := [checksum ","] cell
//! checksum := 4 hex digits (16-bit rotating checksum of the rest of the string)
//! cell     := W "x" H "," X "," Y ( "," PANE | "{" cells "}" | "[" cells "]" )
//! cells    := cell ( "," cell )*
//! ```
//!
//! `{…}` children are arranged left to right, `[…]` children top to bottom.
//! [`parse_layout`] turns such a string into a [`LayoutCell`] tree.

use thiserror::Error;

/// Maximum nesting depth accepted by [`parse_layout`].
///
/// Real layouts are a handful of levels deep; the limit only exists so that a
/// hostile string such as `"1x1,0,0{" * 100_000` cannot overflow the stack.
pub const MAX_LAYOUT_DEPTH: usize = 128;

/// One cell of a tmux layout tree: a rectangle that is either a single pane or
/// is split into children.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayoutCell {
    /// Width in character cells.
    pub width: u32,
    /// Height in character cells.
    pub height: u32,
    /// Column offset of the left edge, from the left of the window.
    pub x: u32,
    /// Row offset of the top edge, from the top of the window.
    pub y: u32,
    /// What the cell contains.
    pub kind: LayoutKind,
}

/// Contents of a [`LayoutCell`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LayoutKind {
    /// A pane; the number is its pane id without the `%` sigil.
    LeafPane(u32),
    /// Children side by side, left to right (`{…}` in the layout string).
    LeftRight(Vec<LayoutCell>),
    /// Children stacked, top to bottom (`[…]` in the layout string).
    TopBottom(Vec<LayoutCell>),
}

/// Geometry of one pane, as listed by [`LayoutCell::panes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaneGeometry {
    /// Pane id without the `%` sigil.
    pub pane: u32,
    /// Width in character cells.
    pub width: u32,
    /// Height in character cells.
    pub height: u32,
    /// Column offset of the left edge.
    pub x: u32,
    /// Row offset of the top edge.
    pub y: u32,
}

impl LayoutCell {
    /// The pane id if this cell is a single pane.
    #[must_use]
    pub fn pane_id(&self) -> Option<u32> {
        match self.kind {
            LayoutKind::LeafPane(id) => Some(id),
            LayoutKind::LeftRight(_) | LayoutKind::TopBottom(_) => None,
        }
    }

    /// The child cells (empty for a pane).
    #[must_use]
    pub fn children(&self) -> &[LayoutCell] {
        match &self.kind {
            LayoutKind::LeafPane(_) => &[],
            LayoutKind::LeftRight(c) | LayoutKind::TopBottom(c) => c,
        }
    }

    /// All panes of the tree with their geometry, in layout order (depth
    /// first, left to right / top to bottom).
    #[must_use]
    pub fn panes(&self) -> Vec<PaneGeometry> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(cell) = stack.pop() {
            match &cell.kind {
                LayoutKind::LeafPane(pane) => out.push(PaneGeometry {
                    pane: *pane,
                    width: cell.width,
                    height: cell.height,
                    x: cell.x,
                    y: cell.y,
                }),
                LayoutKind::LeftRight(c) | LayoutKind::TopBottom(c) => {
                    stack.extend(c.iter().rev());
                }
            }
        }
        out
    }

    /// The pane ids of the tree, in layout order.
    #[must_use]
    pub fn pane_ids(&self) -> Vec<u32> {
        self.panes().into_iter().map(|p| p.pane).collect()
    }
}

/// Why a layout string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// The input was empty.
    #[error("empty layout string")]
    Empty,
    /// The checksum prefix does not match the rest of the string.
    #[error("layout checksum mismatch: string says {expected:04x}, computed {computed:04x}")]
    ChecksumMismatch {
        /// Checksum written in the layout string.
        expected: u16,
        /// Checksum computed over the cell description.
        computed: u16,
    },
    /// A character other than the one the grammar requires was found.
    #[error("unexpected {found} at byte {pos} of layout, expected {expected}")]
    Unexpected {
        /// Byte offset into the original string.
        pos: usize,
        /// Description of what was found (a quoted character or "end of input").
        found: String,
        /// Description of what the grammar allows there.
        expected: &'static str,
    },
    /// A number did not fit in 32 bits.
    #[error("number too large at byte {pos} of layout")]
    NumberTooLarge {
        /// Byte offset into the original string.
        pos: usize,
    },
    /// A leaf cell has no pane id (the pre-1.8 layout format).
    #[error("cell at byte {pos} of layout has no pane id")]
    MissingPaneId {
        /// Byte offset of the cell.
        pos: usize,
    },
    /// Cells were nested deeper than [`MAX_LAYOUT_DEPTH`].
    #[error("layout nested deeper than {} levels", MAX_LAYOUT_DEPTH)]
    TooDeep,
    /// Input remained after the top-level cell.
    #[error("trailing data at byte {pos} of layout")]
    TrailingData {
        /// Byte offset of the first unexpected byte.
        pos: usize,
    },
}

/// tmux's 16-bit layout checksum (`layout_checksum()` in `layout-custom.c`),
/// computed over the cell description, i.e. the layout string *without* the
/// `xxxx,` checksum prefix.
#[must_use]
pub fn layout_checksum(cells: &str) -> u16 {
    cells.bytes().fold(0u16, |csum, b| {
        let rotated = (csum >> 1) | ((csum & 1) << 15);
        rotated.wrapping_add(u16::from(b))
    })
}

/// The layout string (`select-layout`'s argument, checksum included) that gives a window of
/// `width`×`height` cells the shape of `layout`, its leaves taking `pane_ids` (numbers of `%N`)
/// in [`Layout::leaves`](termloom_core::Layout::leaves) order. Shares are split as the percents
/// say, one cell going to each border; `None` when the ids do not match the leaves or a share
/// would get no cell.
pub fn layout_string(
    layout: &termloom_core::Layout,
    width: u32,
    height: u32,
    pane_ids: &[u32],
) -> Option<String> {
    use termloom_core::layout::{Direction, LayoutNode};
    fn cell(
        node: &LayoutNode,
        (w, h, x, y): (u32, u32, u32, u32),
        ids: &mut std::slice::Iter<'_, u32>,
        out: &mut String,
    ) -> Option<()> {
        use std::fmt::Write;
        let _ = write!(out, "{w}x{h},{x},{y}");
        let LayoutNode::Split {
            direction,
            children,
        } = node
        else {
            let _ = write!(out, ",{}", ids.next()?);
            return Some(());
        };
        let k = u32::try_from(children.len()).ok()?;
        let along = if *direction == Direction::Horizontal {
            w
        } else {
            h
        };
        let room = along.checked_sub(k - 1)?;
        let total: u32 = children.iter().map(|c| u32::from(c.percent)).sum();
        out.push(if *direction == Direction::Horizontal {
            '{'
        } else {
            '['
        });
        let mut at = if *direction == Direction::Horizontal {
            x
        } else {
            y
        };
        let mut left = room;
        for (i, c) in children.iter().enumerate() {
            let size = if i + 1 == children.len() {
                left
            } else {
                (room * u32::from(c.percent) / total.max(1)).max(1)
            };
            if size == 0 || size > left {
                return None;
            }
            left -= size;
            if i > 0 {
                out.push(',');
            }
            let area = if *direction == Direction::Horizontal {
                (size, h, at, y)
            } else {
                (w, size, x, at)
            };
            cell(&c.node, area, ids, out)?;
            at += size + 1;
        }
        out.push(if *direction == Direction::Horizontal {
            '}'
        } else {
            ']'
        });
        Some(())
    }
    if pane_ids.len() != layout.leaves().len() {
        return None;
    }
    let mut body = String::new();
    let mut ids = pane_ids.iter();
    cell(&layout.root, (width, height, 0, 0), &mut ids, &mut body)?;
    Some(format!("{:04x},{body}", layout_checksum(&body)))
}

/// Parses a tmux layout string into a tree of cells.
///
/// The `xxxx,` checksum prefix that tmux always writes is optional here; when
/// present it is verified (as `select-layout` does). Pane ids are required
/// (tmux has written them since 1.8). Never panics; nesting is limited to
/// [`MAX_LAYOUT_DEPTH`].
///
/// # Errors
///
/// A [`LayoutError`] describing the first problem: empty input, checksum
/// mismatch, unexpected character, number overflow, missing pane id, nesting
/// too deep or trailing data.
///
/// ```
/// use termloom_tmux::control::layout::{parse_layout, LayoutKind};
/// let root = parse_layout("020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}").unwrap();
/// assert_eq!((root.width, root.height), (80, 24));
/// assert!(matches!(root.kind, LayoutKind::LeftRight(_)));
/// assert_eq!(root.pane_ids(), vec![1, 2]);
/// ```
pub fn parse_layout(layout: &str) -> Result<LayoutCell, LayoutError> {
    let bytes = layout.as_bytes();
    if bytes.is_empty() {
        return Err(LayoutError::Empty);
    }
    let mut start = 0;
    // A checksum prefix is a run of hex digits followed by a comma. A cell
    // always starts with `WxH`, which contains an `x`, so the two cannot be
    // confused.
    if let Some((prefix, rest)) = layout.split_once(',')
        && !prefix.is_empty()
        && prefix.len() <= 4
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let expected = u16::from_str_radix(prefix, 16).unwrap_or_default();
        let computed = layout_checksum(rest);
        if computed != expected {
            return Err(LayoutError::ChecksumMismatch { expected, computed });
        }
        start = prefix.len() + 1;
    }
    let mut cursor = Cursor { bytes, pos: start };
    let root = cursor.cell(0)?;
    if cursor.pos != bytes.len() {
        return Err(LayoutError::TrailingData { pos: cursor.pos });
    }
    Ok(root)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn unexpected(&self, expected: &'static str) -> LayoutError {
        let found = match self.peek() {
            Some(b) if b.is_ascii_graphic() => format!("'{}'", char::from(b)),
            Some(b) => format!("byte 0x{b:02x}"),
            None => "end of input".to_owned(),
        };
        LayoutError::Unexpected {
            pos: self.pos,
            found,
            expected,
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), LayoutError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn number(&mut self) -> Result<u32, LayoutError> {
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(b - b'0')))
                .ok_or(LayoutError::NumberTooLarge { pos: start })?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a digit"));
        }
        Ok(value)
    }

    /// True if a `,` followed by digits and then `x` starts at the cursor,
    /// i.e. the comma separates sibling cells rather than introducing a pane id.
    fn sibling_follows(&self) -> bool {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let Some((&b',', after)) = rest.split_first() else {
            return false;
        };
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        after.get(digits) == Some(&b'x')
    }

    fn cell(&mut self, depth: usize) -> Result<LayoutCell, LayoutError> {
        if depth > MAX_LAYOUT_DEPTH {
            return Err(LayoutError::TooDeep);
        }
        let cell_start = self.pos;
        let width = self.number()?;
        self.expect(b'x', "'x'")?;
        let height = self.number()?;
        self.expect(b',', "','")?;
        let x = self.number()?;
        self.expect(b',', "','")?;
        let y = self.number()?;
        let kind = match self.peek() {
            Some(b',') if !self.sibling_follows() => {
                self.pos += 1;
                LayoutKind::LeafPane(self.number()?)
            }
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                let mut children = Vec::new();
                loop {
                    self.pos += 1; // the opening bracket or a separating comma
                    children.push(self.cell(depth + 1)?);
                    match self.peek() {
                        Some(b) if b == close => break,
                        Some(b',') => {}
                        _ => {
                            return Err(self.unexpected(if open == b'{' {
                                "',' or '}'"
                            } else {
                                "',' or ']'"
                            }));
                        }
                    }
                }
                self.pos += 1; // the closing bracket
                if open == b'{' {
                    LayoutKind::LeftRight(children)
                } else {
                    LayoutKind::TopBottom(children)
                }
            }
            None | Some(b',' | b'}' | b']') => {
                return Err(LayoutError::MissingPaneId { pos: cell_start });
            }
            Some(_) => return Err(self.unexpected("',', '{' or '['")),
        };
        Ok(LayoutCell {
            width,
            height,
            x,
            y,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(width: u32, height: u32, x: u32, y: u32, pane: u32) -> LayoutCell {
        LayoutCell {
            width,
            height,
            x,
            y,
            kind: LayoutKind::LeafPane(pane),
        }
    }

    // All layouts below were captured from tmux 3.3a (`%layout-change` lines
    // and `display -p '#{window_layout}'`) on a private server.

    #[test]
    fn layout_strings_follow_the_tree_and_parse_back() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let named = |n: &str| termloom_core::Layout::predefined(n, &names).unwrap();
        let s = layout_string(&named("main-vertical"), 80, 24, &[4, 5, 6]).unwrap();
        let root = parse_layout(&s).unwrap();
        assert_eq!((root.width, root.height), (80, 24));
        assert_eq!(root.pane_ids(), vec![4, 5, 6]);
        let g = root.panes();
        // The main pane is the full-height left column; the two others stack on the right.
        assert_eq!((g[0].x, g[0].y, g[0].height), (0, 0, 24));
        assert_eq!((g[1].x, g[2].x), (g[0].width + 1, g[0].width + 1));
        assert_eq!(g[1].height + 1 + g[2].height, 24);
        assert_eq!(g[0].width + 1 + g[1].width, 80);
        // Ids that do not match the leaves, or no room: nothing.
        assert!(layout_string(&named("main-vertical"), 80, 24, &[1, 2]).is_none());
        assert!(layout_string(&named("horizontal"), 2, 24, &[1, 2, 3]).is_none());
    }

    #[test]
    fn single_pane() {
        let root = parse_layout("b25d,80x24,0,0,0").unwrap();
        assert_eq!(root, leaf(80, 24, 0, 0, 0));
        assert_eq!(root.pane_id(), Some(0));
        assert!(root.children().is_empty());
        // Zoomed window: visible layout of `*Z` window showing only %3.
        assert_eq!(
            parse_layout("b260,80x24,0,0,3").unwrap(),
            leaf(80, 24, 0, 0, 3)
        );
    }

    #[test]
    fn left_right_split() {
        let root = parse_layout("020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}").unwrap();
        assert_eq!(
            root,
            LayoutCell {
                width: 80,
                height: 24,
                x: 0,
                y: 0,
                kind: LayoutKind::LeftRight(vec![leaf(40, 24, 0, 0, 1), leaf(39, 24, 41, 0, 2)]),
            }
        );
        assert_eq!(root.pane_id(), None);
    }

    #[test]
    fn top_bottom_split() {
        let root = parse_layout("c195,80x24,0,0[80x12,0,0,0,80x11,0,13,1]").unwrap();
        assert_eq!(
            root.kind,
            LayoutKind::TopBottom(vec![leaf(80, 12, 0, 0, 0), leaf(80, 11, 0, 13, 1)])
        );
    }

    #[test]
    fn nested_two_levels() {
        let root =
            parse_layout("b05b,80x24,0,0[80x12,0,0,0,80x11,0,13{40x11,0,13,1,39x11,41,13,2}]")
                .unwrap();
        assert_eq!(
            root,
            LayoutCell {
                width: 80,
                height: 24,
                x: 0,
                y: 0,
                kind: LayoutKind::TopBottom(vec![
                    leaf(80, 12, 0, 0, 0),
                    LayoutCell {
                        width: 80,
                        height: 11,
                        x: 0,
                        y: 13,
                        kind: LayoutKind::LeftRight(vec![
                            leaf(40, 11, 0, 13, 1),
                            leaf(39, 11, 41, 13, 2)
                        ]),
                    },
                ]),
            }
        );
    }

    #[test]
    fn nested_three_levels() {
        let s = "3dc0,80x24,0,0{40x24,0,0[40x12,0,0,0,40x11,0,13,4],39x24,41,0\
                 [39x12,41,0,1,39x11,41,13{19x11,41,13,2,19x11,61,13,3}]}";
        let root = parse_layout(s).unwrap();
        assert_eq!(root.pane_ids(), vec![0, 4, 1, 2, 3]);
        let panes = root.panes();
        assert_eq!(
            panes[4],
            PaneGeometry {
                pane: 3,
                width: 19,
                height: 11,
                x: 61,
                y: 13
            }
        );
        assert_eq!(
            panes[1],
            PaneGeometry {
                pane: 4,
                width: 40,
                height: 11,
                x: 0,
                y: 13
            }
        );
        let [left, right] = root.children() else {
            panic!("expected two children: {root:?}");
        };
        assert!(matches!(left.kind, LayoutKind::TopBottom(_)));
        assert_eq!(
            (right.width, right.height, right.x, right.y),
            (39, 24, 41, 0)
        );
        let deepest = &right.children()[1];
        assert!(matches!(deepest.kind, LayoutKind::LeftRight(ref c) if c.len() == 2));
    }

    #[test]
    fn checksums_of_real_layouts() {
        for s in [
            "b25d,80x24,0,0,0",
            "020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}",
            "0207,80x24,0,0{40x24,0,0,0,39x24,41,0,4}",
            "419a,80x24,0,0[80x12,0,0,1,80x11,0,13,2]",
            "4196,80x24,0,0[80x12,0,0,0,80x11,0,13,2]",
            "d67e,80x24,0,0{40x24,0,0,0,39x24,41,0[39x12,41,0,1,39x11,41,13,2]}",
            "1558,80x24,0,0{40x24,0,0,0,39x24,41,0[39x12,41,0,1,39x11,41,13{19x11,41,13,2,19x11,61,13,3}]}",
        ] {
            let (sum, rest) = s.split_once(',').unwrap();
            assert_eq!(format!("{:04x}", layout_checksum(rest)), sum, "{s}");
            parse_layout(s).unwrap();
        }
    }

    #[test]
    fn checksum_is_optional_but_verified() {
        assert_eq!(
            parse_layout("80x24,0,0{40x24,0,0,1,39x24,41,0,2}").unwrap(),
            parse_layout("020a,80x24,0,0{40x24,0,0,1,39x24,41,0,2}").unwrap()
        );
        assert_eq!(
            parse_layout("020b,80x24,0,0{40x24,0,0,1,39x24,41,0,2}"),
            Err(LayoutError::ChecksumMismatch {
                expected: 0x020b,
                computed: 0x020a
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse_layout(""), Err(LayoutError::Empty));
        assert!(matches!(
            parse_layout("80x24,0,0"),
            Err(LayoutError::MissingPaneId { pos: 0 })
        ));
        assert!(matches!(
            parse_layout("80x24,0,0{}"),
            Err(LayoutError::Unexpected { pos: 10, .. })
        ));
        assert!(matches!(
            parse_layout("80x24,0,0{40x24,0,0,1"),
            Err(LayoutError::Unexpected { .. })
        ));
        assert!(matches!(
            parse_layout("80x24,0,0{40x24,0,0,1]"),
            Err(LayoutError::Unexpected { pos: 21, .. })
        ));
        assert!(matches!(
            parse_layout("80x24,0,0,1junk"),
            Err(LayoutError::TrailingData { pos: 11 })
        ));
        assert!(matches!(
            parse_layout("99999999999x24,0,0,1"),
            Err(LayoutError::NumberTooLarge { pos: 0 })
        ));
        assert!(matches!(
            parse_layout("80x24,0,0,é"),
            Err(LayoutError::Unexpected { .. })
        ));
        assert!(matches!(
            parse_layout("80y24,0,0,1"),
            Err(LayoutError::Unexpected { pos: 2, .. })
        ));
        // Display of errors mentions position.
        let msg = parse_layout("80x24,0,0{40x24,0,0,1]")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("byte 21"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflowing_the_stack() {
        let mut s = String::new();
        for _ in 0..100_000 {
            s.push_str("1x1,0,0{");
        }
        assert_eq!(parse_layout(&s), Err(LayoutError::TooDeep));
        // Within the limit is fine.
        let depth = 50;
        let mut s = String::new();
        for _ in 0..depth {
            s.push_str("1x1,0,0[");
        }
        s.push_str("1x1,0,0,7");
        s.push_str(&"]".repeat(depth));
        assert_eq!(parse_layout(&s).unwrap().pane_ids(), vec![7]);
    }
}
