//! `termloom mcp install`: point an MCP client at the `termloom-mcp` binary.
//!
//! | client | file (Linux) | file (macOS) | servers key |
//! |---|---|---|---|
//! | claude-desktop | `$XDG_CONFIG_HOME/Claude/claude_desktop_config.json` | `~/Library/Application Support/Claude/claude_desktop_config.json` | `mcpServers` |
//! | cursor | `~/.cursor/mcp.json` | `~/.cursor/mcp.json` | `mcpServers` |
//! | vscode | `$XDG_CONFIG_HOME/Code/User/mcp.json` | `~/Library/Application Support/Code/User/mcp.json` | `servers` (with `"type": "stdio"`) |
//! | claude-code | (its own `claude mcp add` command, printed) | | |
//!
//! An existing file is merged (other servers and keys kept, an entry of the same name replaced) and
//! replaced atomically (temp file in the same directory, then rename; a symlinked file is written
//! through to its target). A file that does not parse as JSON is never touched.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::args::{McpClient, McpCmd, McpInstallArgs};
use crate::output;

pub fn run(ctx: &mut Ctx, c: McpCmd) -> Result<ExitCode> {
    match c {
        McpCmd::Install(a) => install(ctx, a),
    }
}

impl McpClient {
    fn id(self) -> &'static str {
        match self {
            McpClient::ClaudeDesktop => "claude-desktop",
            McpClient::ClaudeCode => "claude-code",
            McpClient::Cursor => "cursor",
            McpClient::Vscode => "vscode",
        }
    }

    /// The top-level key that holds the servers.
    fn servers_key(self) -> &'static str {
        match self {
            McpClient::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    /// The client's user-level config file.
    fn config_path(self) -> Result<PathBuf> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("HOME is not set: pass --config FILE"))?;
        let app_support = || home.join("Library").join("Application Support");
        let config_home = || {
            std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(".config"))
        };
        let appdata = || std::env::var_os("APPDATA").map(PathBuf::from);
        let macos = cfg!(target_os = "macos");
        let windows = cfg!(windows);
        Ok(match self {
            McpClient::ClaudeDesktop => {
                let base = if macos {
                    app_support()
                } else if windows {
                    appdata().ok_or_else(|| anyhow!("APPDATA is not set: pass --config FILE"))?
                } else {
                    config_home()
                };
                base.join("Claude").join("claude_desktop_config.json")
            }
            McpClient::Cursor => home.join(".cursor").join("mcp.json"),
            McpClient::Vscode => {
                let base = if macos {
                    app_support()
                } else if windows {
                    appdata().ok_or_else(|| anyhow!("APPDATA is not set: pass --config FILE"))?
                } else {
                    config_home()
                };
                base.join("Code").join("User").join("mcp.json")
            }
            McpClient::ClaudeCode => bail!(
                "Claude Code keeps its own configuration: run the `claude mcp add` command that `termloom mcp install --client claude-code --print` shows"
            ),
        })
    }

    /// This client's entry for a stdio server.
    fn entry(self, command: &str, args: &[String]) -> Value {
        match self {
            McpClient::Vscode => json!({ "type": "stdio", "command": command, "args": args }),
            _ => json!({ "command": command, "args": args }),
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
}

/// The `termloom-mcp` binary: `--server-path`, else next to this executable, else on PATH.
fn server_path(a: &McpInstallArgs) -> Result<PathBuf> {
    if let Some(p) = &a.server_path {
        return absolute(p);
    }
    let name = format!("termloom-mcp{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok();
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "cannot find {name} next to {} or on PATH: install it (cargo install --path crates/mcp) or pass --server-path",
        exe.map(|e| e.display().to_string())
            .unwrap_or_else(|| "termloom".into())
    )
}

/// The server's arguments: the global options given to this command that pick the terminal and
/// the state dir (`-S`, `-L`, `--state-dir`, `--host`, `--ssh-config`, `--backend`), then `--server-arg`s.
fn server_args(ctx: &Ctx, a: &McpInstallArgs) -> Result<Vec<String>> {
    let g = &ctx.global;
    let mut args = Vec::new();
    if let Some(s) = &g.socket {
        args.push("-S".to_string());
        args.push(absolute(s)?.to_string_lossy().into_owned());
    }
    if let Some(n) = &g.socket_name {
        args.push("-L".to_string());
        args.push(n.clone());
    }
    if let Some(d) = &g.state_dir {
        args.push("--state-dir".to_string());
        args.push(absolute(d)?.to_string_lossy().into_owned());
    }
    if let Some(h) = g.host.as_ref().filter(|h| !h.is_empty()) {
        args.push("--host".to_string());
        args.push(h.clone());
    }
    if let Some(f) = &g.ssh_config {
        args.push("--ssh-config".to_string());
        args.push(absolute(f)?.to_string_lossy().into_owned());
    }
    if g.backend != "tmux" {
        args.push("--backend".to_string());
        args.push(g.backend.clone());
    }
    args.extend(a.server_args.iter().cloned());
    Ok(args)
}

/// Merges `entry` as `servers_key.name` into a config document. Returns the document and whether
/// an entry of that name was replaced. Everything else in the document is kept.
pub fn merge(
    existing: Option<&str>,
    servers_key: &str,
    name: &str,
    entry: Value,
) -> Result<(Value, bool)> {
    let mut doc = match existing {
        Some(text) if !text.trim().is_empty() => serde_json::from_str::<Value>(text)
            .map_err(|e| anyhow!("it is not plain JSON ({e}); nothing was changed"))?,
        _ => Value::Object(Map::new()),
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| anyhow!("its top level is not a JSON object; nothing was changed"))?;
    let servers = obj
        .entry(servers_key)
        .or_insert_with(|| Value::Object(Map::new()));
    if servers.is_null() {
        *servers = Value::Object(Map::new());
    }
    let servers = servers.as_object_mut().ok_or_else(|| {
        anyhow!("its \"{servers_key}\" is not a JSON object; nothing was changed")
    })?;
    // An entry already there keeps what termloom does not write (the person's `env`,
    // `disabled`, …): only the keys of the new entry are replaced.
    let replaced = match (servers.get_mut(name), entry) {
        (Some(Value::Object(old)), Value::Object(new)) => {
            for (k, v) in new {
                old.insert(k, v);
            }
            true
        }
        (_, entry) => servers.insert(name.to_string(), entry).is_some(),
    };
    Ok((doc, replaced))
}

/// Replaces `path` with `body` atomically: a temp file in the same directory, synced, renamed
/// over it. A symlink is followed so the link itself survives; the old file's permissions are kept.
fn write_atomic(path: &Path, body: &[u8]) -> Result<PathBuf> {
    let real = match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("cannot follow the symlink {}", path.display()))?,
        _ => path.to_path_buf(),
    };
    let dir = real
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(
        ".{file_name}.termloom-{}-{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let perms = fs::metadata(&real).ok().map(|m| m.permissions());
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        if let Some(p) = perms {
            fs::set_permissions(&tmp, p)?;
        }
        fs::rename(&tmp, &real)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!(e).context(format!("cannot write {}", real.display())));
    }
    Ok(real)
}

fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| match shlex::try_quote(w) {
            Ok(q) => q.into_owned(),
            // Only a NUL byte makes quoting fail; show it escaped rather than fail the command.
            Err(_) => format!("{w:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn install(ctx: &mut Ctx, a: McpInstallArgs) -> Result<ExitCode> {
    if a.name.is_empty() {
        return Err(super::usage("--name must not be empty"));
    }
    let command = server_path(&a)?.to_string_lossy().into_owned();
    let args = server_args(ctx, &a)?;
    let client = a.client;

    if client == McpClient::ClaudeCode {
        let mut argv: Vec<String> = ["claude", "mcp", "add", a.name.as_str(), "--"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(command.clone());
        argv.extend(args.iter().cloned());
        let line = shell_line(&argv);
        if ctx.json() {
            output::json(&json!({
                "client": client.id(),
                "name": a.name,
                "command": command,
                "args": args,
                "argv": argv,
                "command_line": line,
            }))?;
        } else {
            output::line(&line)?;
            if !a.print {
                output::note(
                    "Claude Code keeps its own configuration: run the command above to add termloom",
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let entry = client.entry(&command, &args);
    let path = match &a.config {
        Some(p) => absolute(p)?,
        None => client.config_path()?,
    };
    let snippet = json!({ client.servers_key(): { a.name.clone(): entry.clone() } });

    if a.print {
        if ctx.json() {
            output::json(&json!({
                "client": client.id(),
                "path": path,
                "name": a.name,
                "config": snippet,
            }))?;
        } else {
            output::json(&snippet)?;
            output::note(format!(
                "merge this into {} (or run without --print to have it done)",
                path.display()
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }

    let existing = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    };
    let created = existing.is_none();
    let (doc, replaced) = match merge(existing.as_deref(), client.servers_key(), &a.name, entry) {
        Ok(x) => x,
        Err(e) => {
            // The entry goes to stderr so the person can add it by hand; stdout stays empty.
            output::stderr_line(serde_json::to_string_pretty(&snippet).unwrap_or_default());
            return Err(e.context(format!(
                "cannot update {} (add the entry printed above by hand)",
                path.display()
            )));
        }
    };
    let mut body = serde_json::to_vec_pretty(&doc)?;
    body.push(b'\n');
    let written = write_atomic(&path, &body)?;
    let action = if created {
        "created"
    } else if replaced {
        "updated"
    } else {
        "added"
    };
    if ctx.json() {
        output::json(&json!({
            "client": client.id(),
            "path": written,
            "name": a.name,
            "action": action,
            "command": command,
            "args": args,
        }))?;
    } else {
        let mut run = vec![command];
        run.extend(args);
        output::line(format!(
            "{action} {}: server '{}' runs {}",
            written.display(),
            output::one_line(&a.name),
            shell_line(&run)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_servers_and_keys() {
        let old = r#"{"theme":"dark","mcpServers":{"other":{"command":"x"},"termloom":{"command":"old"}}}"#;
        let (doc, replaced) = merge(
            Some(old),
            "mcpServers",
            "termloom",
            json!({"command": "new"}),
        )
        .unwrap();
        assert!(replaced);
        assert_eq!(doc["theme"], "dark");
        assert_eq!(doc["mcpServers"]["other"]["command"], "x");
        assert_eq!(doc["mcpServers"]["termloom"]["command"], "new");
        // The person's own keys in the entry stay.
        let old = r#"{"mcpServers":{"termloom":{"command":"old","args":["-x"],"env":{"TERMLOOM_MCP_SCOPE":"all"},"disabled":false}}}"#;
        let (doc, _) = merge(
            Some(old),
            "mcpServers",
            "termloom",
            json!({"command": "new", "args": []}),
        )
        .unwrap();
        let e = &doc["mcpServers"]["termloom"];
        assert_eq!(e["command"], "new");
        assert_eq!(e["args"], json!([]));
        assert_eq!(e["env"]["TERMLOOM_MCP_SCOPE"], "all");
        assert_eq!(e["disabled"], false);
    }

    #[test]
    fn merge_starts_from_nothing_and_refuses_garbage() {
        let (doc, replaced) = merge(None, "servers", "t", json!({"type": "stdio"})).unwrap();
        assert!(!replaced);
        assert_eq!(doc, json!({"servers": {"t": {"type": "stdio"}}}));
        assert!(merge(Some("// comment\n{}"), "servers", "t", json!({})).is_err());
        assert!(merge(Some("[1]"), "servers", "t", json!({})).is_err());
        assert!(merge(Some(r#"{"servers": 3}"#), "servers", "t", json!({})).is_err());
        assert!(merge(Some("  \n"), "servers", "t", json!({})).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_follows_symlinks_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "{}").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"{\"a\":1}\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "{\"a\":1}\n");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                    .unwrap_or(false)
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
