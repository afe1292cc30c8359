//! termloom-mcp over stdio (filled in with the MCP server).

use anyhow::Result;

use crate::stats::{Config, Section};

pub async fn run(_cfg: &Config) -> Result<Section> {
    Ok(Section {
        title: "MCP over stdio (not measured yet)".into(),
        rows: vec![],
        facts: vec![],
    })
}
