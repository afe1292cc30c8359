//! Where things are in a YAML file: a tree of every key and value with its line and column, used
//! to name the line of a field (`windows[0].layout` → line 7) and the field at a line (an error
//! serde-saphyr reports at 7:9 → `windows[0].panes[0].comand`).

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::ProjectFileError;

/// A YAML node with the position of every key and value below it.
#[derive(Debug)]
enum Node {
    Scalar(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(String::new()))
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(String::new()))
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
                Ok(Node::Scalar(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One position in the file and the field path it belongs to.
#[derive(Debug)]
struct Entry {
    line: u64,
    column: u64,
    path: String,
    /// This entry is a mapping (its position is that of its first key).
    is_map: bool,
    /// This entry is a key (its name is the path's last segment).
    key: Option<String>,
}

/// Every key and value of a YAML document with its position, in document order.
#[derive(Debug)]
pub(crate) struct SourceMap {
    entries: Vec<Entry>,
}

fn pos(l: &Location) -> (u64, u64) {
    (l.line(), l.column())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl SourceMap {
    /// Maps a document; `None` when it is not valid YAML.
    pub(crate) fn parse(text: &str) -> Option<SourceMap> {
        let root: Spanned<Node> = serde_saphyr::from_str(text).ok()?;
        let mut entries = Vec::new();
        walk(&root, "", &mut entries);
        Some(SourceMap { entries })
    }

    /// The line and column of a field path (`windows[0].panes[1].name`), or of its nearest
    /// ancestor that is in the file (a missing field is reported where its parent starts).
    pub(crate) fn locate(&self, field: &str) -> (u64, u64) {
        let mut path = field.to_string();
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == path) {
                return (e.line, e.column);
            }
            let cut = path.rfind(['.', '[']);
            match cut {
                Some(i) => path.truncate(i),
                None => break,
            }
        }
        self.entries
            .first()
            .map(|e| (e.line, e.column))
            .unwrap_or((1, 1))
    }

    /// The field at a position: the last key or value that starts at or before it.
    fn field_at(&self, line: u64, column: u64) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| (e.line, e.column) <= (line, column))
    }

    /// The mapping that starts at a position.
    fn map_at(&self, line: u64, column: u64) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.is_map && (e.line, e.column) == (line, column))
    }

    /// The key of this name at a position.
    fn key_at(&self, line: u64, column: u64, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| (e.line, e.column) == (line, column) && e.key.as_deref() == Some(name))
    }
}

fn walk(node: &Spanned<Node>, path: &str, out: &mut Vec<Entry>) {
    let (line, column) = pos(&node.referenced);
    out.push(Entry {
        line,
        column,
        path: path.to_string(),
        is_map: matches!(node.value, Node::Map(_)),
        key: None,
    });
    match &node.value {
        Node::Scalar(_) => {}
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                let name = match &k.value {
                    Node::Scalar(s) => s.clone(),
                    _ => "?".to_string(),
                };
                let p = join(path, &name);
                let (line, column) = pos(&k.referenced);
                out.push(Entry {
                    line,
                    column,
                    path: p.clone(),
                    is_map: false,
                    key: Some(name),
                });
                walk(v, &p, out);
            }
        }
    }
}

/// Turns a serde-saphyr error into a [`ProjectFileError`] naming the field it is about.
pub(crate) fn locate_error(
    e: &serde_saphyr::Error,
    map: Option<&SourceMap>,
    file: &Path,
) -> ProjectFileError {
    let inner = e.without_snippet();
    let message = {
        use serde_saphyr::MessageFormatter;
        // The wording for people editing the file, not for Rust developers ("use
        // Option<String>", "set DuplicateKeyPolicy").
        serde_saphyr::UserMessageFormatter
            .format_message(inner)
            .into_owned()
    };
    let (line, column) = e.location().map(|l| pos(&l)).unwrap_or((0, 0));
    let field = match (map, inner) {
        (None, _) => "(yaml)".to_string(),
        (Some(m), serde_saphyr::Error::SerdeMissingField { field, .. }) => m
            .map_at(line, column)
            .map(|e| join(&e.path, field))
            .unwrap_or_else(|| field.to_string()),
        (Some(m), serde_saphyr::Error::SerdeUnknownField { field, .. }) => m
            .key_at(line, column, field)
            .or_else(|| m.field_at(line, column))
            .map(|e| e.path.clone())
            .unwrap_or_else(|| field.clone()),
        (Some(m), _) => m
            .field_at(line, column)
            .map(|e| e.path.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "(top)".to_string()),
    };
    ProjectFileError {
        file: file.to_path_buf(),
        line,
        column,
        field,
        message,
        more: 0,
    }
}
