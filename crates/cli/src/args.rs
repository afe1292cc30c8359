//! The command line, as clap derive types. Parsing only: what each command does is in `cmd`.
//!
//! Values that have a grammar in core (targets, keys, layouts) are parsed here, so a malformed one
//! is a usage error (exit code 2) before anything touches a terminal.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use termloom::GlobalOpts;
use termloom_core::layout::PREDEFINED;
use termloom_core::{Key, Target, WindowRef, WindowSel};

const TARGET_HELP: &str = "TARGETS name a session (one pane):\n  \
    3f2a9c1e-…        a full UUID\n  \
    3f2a, id:3f2a     a UUID prefix (4+ hex digits)\n  \
    web, name:web     an exact session name (never a prefix; a word that is both a name and\n                    \
    a UUID prefix is ambiguous: say name: or id:)\n  \
    work:1.2          workspace:window.pane (window by index or exact name; active one when left out)\n  \
    tmux:%12          a backend-native pane id";

/// Drive real terminals (tmux, iTerm2) from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "termloom",
    version,
    propagate_version = true,
    after_help = TARGET_HELP,
    max_term_width = 110
)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Global options")]
    pub global: GlobalOpts,
    /// Log every session this command touches (text and keys sent, output, lifecycle) in the state dir's logs
    #[arg(long, global = true, help_heading = "Global options")]
    pub log: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List live sessions (one per pane); with --all, every session the registry remembers
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// List every session the registry remembers, dead ones included (same as `ls --all`)
    Sessions,
    /// Create a session (a pane with a shell), or a whole window from a predefined layout
    New(NewArgs),
    /// Type text into a session, then press Enter
    Send(SendArgs),
    /// Press named keys in a session (C-c, Enter, Escape, Up, F5, …)
    Keys(KeysArgs),
    /// Print a session's output: the last lines, a line range, the screen, or what is new since a cursor
    Read(ReadArgs),
    /// Search a session's whole scrollback with a regex, grep-style
    Search(SearchArgs),
    /// Split a session's pane; the new pane is a new session
    Split(SplitArgs),
    /// Kill a session (its pane and the processes in it)
    #[command(visible_alias = "close")]
    Kill(TargetArgs),
    /// Rename a session
    Rename(RenameArgs),
    /// Make a session the active pane of the active window of its workspace
    Focus(TargetArgs),
    /// Resize or zoom a session's pane
    Resize(ResizeArgs),
    /// Mark a session as managed by termloom (writable under the MCP server's `--scope managed`)
    Tag(TagArgs),
    /// Get or set a session's default read size (lines)
    MaxLines(MaxLinesArgs),
    /// Workspaces (tmux sessions): ls, new, kill
    #[command(subcommand, visible_alias = "ws")]
    Workspace(WorkspaceCmd),
    /// Windows inside workspaces: ls, new, kill, rename, select
    #[command(subcommand)]
    Window(WindowCmd),
    /// Get or set a workspace's scrollback size in lines (a new size applies to panes created from
    /// then on: tmux keeps the size an existing pane was made with)
    Scrollback(ScrollbackArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Set up MCP clients to use the termloom-mcp server
    #[command(subcommand)]
    Mcp(McpCmd),
    /// Projects: saved workspaces that open idempotently and close by detaching
    #[command(subcommand)]
    Project(crate::cmd::project::ProjectCmd),
    /// Attach this terminal to a tmux session, creating it unless --no-create
    Attach(crate::cmd::project::AttachArgs),
    /// Run a command in a session, wait for it to finish, print its output and exit with its code
    Run(RunArgs),
    /// Show whether a session is busy or idle, its command, last exit code and cwd
    Status(TargetArgs),
    /// Print a session's output lines live until its pane closes (or Ctrl-C)
    Watch(WatchArgs),
    /// Wait until a line of a session's output matches a regex; print that line
    Wait(WaitArgs),
    /// Install shell integration (OSC 133 marks) into the bash or zsh running in a session
    Integrate(TargetArgs),
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected seconds (e.g. 30 or 0.5), got '{s}'"))?;
    if !(0.0..=1e9).contains(&v) {
        return Err(format!(
            "expected a non-negative number of seconds, got '{s}'"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

#[derive(Debug, Args)]
#[command(
    after_help = "What follows -- is typed into the session's shell, followed by Enter: one \
    word as it is (a command line: -- 'make && ./run'), several as argv words, each quoted for the \
    shell where it needs it (-- sh -c 'echo a; exit 7' runs sh with two arguments); leading \
    NAME=value words stay assignments. Exit code: the command's own (0 when it finished but its code is \
    unknown, e.g. with --prompt or --quiet-ms); 124 when it was still running at the timeout (the \
    output so far is printed and the run's handle goes to stderr)."
)]
pub struct RunArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Seconds to wait before giving up with "still running"
    #[arg(short, long, value_name = "S", default_value = "30", value_parser = parse_seconds)]
    pub timeout: std::time::Duration,
    /// For REPLs: done when output matches this regex (the prompt)
    #[arg(long, value_name = "REGEX")]
    pub prompt: Option<String>,
    /// For programs without a prompt: done after this many ms without output
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub quiet_ms: Option<u64>,
    /// Cap on output lines (head and tail kept)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_lines: Option<u64>,
    /// The command line
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each --filter is a regex (Rust syntax); a line is printed when it matches \
    any of them (every line without --filter). Exit code 0 when the pane closes (the reason goes to \
    stderr); a subscriber that falls behind is told on stderr how many events it missed."
)]
pub struct WatchArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Print only lines matching this regex (repeatable; any may match)
    #[arg(short, long = "filter", value_name = "REGEX")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Only output printed after `wait` starts counts. Exit code 0 with the \
    matching line on stdout; 1 when the timeout came first."
)]
pub struct WaitArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The regex a line must match (Rust syntax)
    #[arg(value_name = "PATTERN")]
    pub pattern: String,
    /// Seconds to wait
    #[arg(short, long, value_name = "S", default_value = "30", value_parser = parse_seconds)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Also list sessions the registry remembers whose panes are gone
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "What follows -- is typed into the new shell, followed by Enter: one word as \
    it is (a command line of your own: -- 'make && ./run'), several as argv words, each quoted for \
    the shell where it needs it (-- grep 'a b' file searches for 'a b').\n\nLayouts: single, horizontal, \
    vertical, quad, main-vertical, main-horizontal, tiled; --panes names their panes in order."
)]
pub struct NewArgs {
    /// The session's name (unique, no `:`; a good target)
    #[arg(short, long, value_name = "NAME", conflicts_with = "layout")]
    pub name: Option<String>,
    /// The workspace to create it in (created when missing) [default: termloom]
    #[arg(short, long, value_name = "WORKSPACE")]
    pub workspace: Option<String>,
    /// The window to put it in: created when missing, else its active pane is split
    #[arg(long, value_name = "WINDOW")]
    pub window: Option<String>,
    /// Working directory
    #[arg(short, long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Environment variable for the shell (repeatable)
    #[arg(short, long = "env", value_name = "K=V", value_parser = parse_env, conflicts_with = "layout")]
    pub env: Vec<(String, String)>,
    /// Build a predefined layout in a new window instead of one session
    #[arg(long, value_name = "LAYOUT", value_parser = PossibleValuesParser::new(PREDEFINED))]
    pub layout: Option<String>,
    /// The layout's pane names, comma-separated (each becomes a session name; blanks around a
    /// name are dropped)
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', requires = "layout",
          value_parser = trimmed)]
    pub panes: Vec<String>,
    /// A command line typed into the new shell
    #[arg(last = true, value_name = "CMD", conflicts_with = "layout")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The session (see TARGETS in `termloom --help`)
    #[arg(value_name = "TARGET")]
    pub target: Target,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The text is typed exactly as given: quotes, $, ;, backslashes, tabs, \
    newlines and Unicode are not interpreted by termloom (only by whatever runs in the pane). \
    Multi-line or long text is pasted as one bracketed paste. TEXT `-` reads the text from stdin \
    (must be UTF-8; no size limit). Text that starts with '-' goes after `--`."
)]
pub struct SendArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The text, or `-` to read it from stdin
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Do not press Enter after the text
    #[arg(long)]
    pub no_enter: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "KEYS: C-c, ^C, Ctrl+C, M-x, Alt+x, S-Tab, Enter, Escape, Tab, BSpace, \
    Delete, Up, Down, Left, Right, Home, End, PageUp, PageDown, F1-F12, Space, or one character. \
    Names are case-insensitive."
)]
pub struct KeysArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Keys, pressed in order
    #[arg(value_name = "KEY", required = true, num_args = 1.., allow_hyphen_values = true)]
    pub keys: Vec<Key>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Line numbers are absolute: 0 is the oldest line of the scrollback. \
    --json also prints `cursor`; pass it to --since to get only what was printed after this read."
)]
pub struct ReadArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The last N lines [default: the session's max-lines, else 50]; with --from/--to, --screen or
    /// --since: at most N lines, head and tail kept, the rest named in a note [default: the
    /// session's max-lines, else 2000 for --from/--to and --since, the whole screen for --screen]
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lines: Option<u64>,
    /// First absolute line of a range [default: 0]
    #[arg(long, value_name = "LINE", conflicts_with_all = ["screen", "since"])]
    pub from: Option<u64>,
    /// Last absolute line of a range, inclusive [default: the last line]
    #[arg(long, value_name = "LINE", conflicts_with_all = ["screen", "since"])]
    pub to: Option<u64>,
    /// Only what is visible on the screen
    #[arg(long, conflicts_with = "since")]
    pub screen: bool,
    /// Only what was printed after the read that returned CURSOR
    #[arg(long, value_name = "CURSOR")]
    pub since: Option<String>,
    /// Keep ANSI escape sequences (colours)
    #[arg(long)]
    pub ansi: bool,
    /// Join lines the terminal wrapped
    #[arg(long)]
    pub join: bool,
    /// At most N bytes of text (head and tail kept)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Prints `LINE: text` for each match and `LINE- text` for context lines, \
    with `--` between groups; LINE is the absolute line number (0 = oldest scrollback line). \
    Unlike grep, exits 0 when nothing matches (and prints nothing); 1 is kept for errors."
)]
pub struct SearchArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The regex (Rust regex syntax)
    #[arg(value_name = "REGEX")]
    pub pattern: String,
    /// Lines of context before and after each match
    #[arg(short = 'C', long, value_name = "N", default_value_t = 0)]
    pub context: usize,
    /// Match case-insensitively
    #[arg(short, long)]
    pub ignore_case: bool,
    /// At most N matches
    #[arg(short, long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max: u64,
}

#[derive(Debug, Args)]
#[command(
    after_help = "What follows -- is typed into the new shell, followed by Enter: one word as \
    it is (a command line), several as argv words, quoted for the shell where they need it."
)]
pub struct SplitArgs {
    /// The session to split
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Side by side: the new pane goes right of this one
    #[arg(long, conflicts_with = "vertical")]
    pub horizontal: bool,
    /// Stacked: the new pane goes below this one (the default)
    #[arg(long)]
    pub vertical: bool,
    /// The new pane's share in percent [default: 50]
    #[arg(short, long, value_name = "P", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub percent: Option<u8>,
    /// The new session's name
    #[arg(short, long, value_name = "NAME")]
    pub name: Option<String>,
    /// Put the new pane left of / above this one
    #[arg(long)]
    pub before: bool,
    /// Working directory
    #[arg(short, long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// A command line typed into the new shell
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The new name (unique)
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["width", "height", "zoom", "unzoom"])))]
pub struct ResizeArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Width in columns
    #[arg(long, value_name = "COLS", value_parser = clap::value_parser!(u16).range(1..))]
    pub width: Option<u16>,
    /// Height in rows
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u16).range(1..))]
    pub height: Option<u16>,
    /// Zoom the pane to fill its window
    #[arg(long, conflicts_with = "unzoom")]
    pub zoom: bool,
    /// Undo a zoom
    #[arg(long)]
    pub unzoom: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// Remove the mark instead
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
pub struct MaxLinesArgs {
    /// The session
    #[arg(value_name = "TARGET")]
    pub target: Target,
    /// The new default; without it, print the current one
    #[arg(value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lines: Option<u64>,
    /// Go back to the built-in default
    #[arg(long, conflicts_with = "lines")]
    pub unset: bool,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCmd {
    /// List workspaces
    #[command(visible_alias = "list")]
    Ls,
    /// Create a workspace with one session in it
    New {
        /// The workspace's name (no '.' or ':')
        #[arg(value_name = "NAME")]
        name: String,
        /// The first window's name
        #[arg(long, value_name = "WINDOW")]
        window: Option<String>,
        /// The first session's name
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
        /// Working directory
        #[arg(short, long, value_name = "DIR")]
        cwd: Option<PathBuf>,
    },
    /// Kill a workspace and every process in it
    Kill {
        /// The workspace's exact name
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WindowCmd {
    /// List windows, of one workspace or of all
    #[command(visible_alias = "list")]
    Ls {
        /// Only this workspace
        #[arg(value_name = "WORKSPACE")]
        workspace: Option<String>,
    },
    /// Create a window (in the background unless --select) with one session in it
    New {
        /// The workspace (must exist)
        #[arg(value_name = "WORKSPACE")]
        workspace: String,
        /// The window's name
        #[arg(short, long, value_name = "NAME")]
        name: Option<String>,
        /// The first session's name
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
        /// Make it the active window
        #[arg(long)]
        select: bool,
        /// Working directory
        #[arg(short, long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Typed into the new shell: one word as a command line, several as quoted argv words
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Kill a window and its panes
    Kill {
        /// WORKSPACE:WINDOW (window by index or exact name)
        #[arg(value_name = "WS:WIN", value_parser = parse_window_ref)]
        window: WindowRef,
    },
    /// Rename a window
    Rename {
        /// WORKSPACE:WINDOW
        #[arg(value_name = "WS:WIN", value_parser = parse_window_ref)]
        window: WindowRef,
        /// The new name
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Make a window its workspace's active window
    Select {
        /// WORKSPACE:WINDOW
        #[arg(value_name = "WS:WIN", value_parser = parse_window_ref)]
        window: WindowRef,
    },
}

#[derive(Debug, Args)]
pub struct ScrollbackArgs {
    /// The workspace
    #[arg(value_name = "WORKSPACE")]
    pub workspace: String,
    /// The new size; without it, print the current one
    #[arg(value_name = "LINES", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub lines: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    // The id differs from the hidden global `--shell`'s.
    #[arg(id = "completion_shell", value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Debug, Subcommand)]
pub enum McpCmd {
    /// Write (or print) an MCP client's configuration so it starts termloom-mcp
    Install(McpInstallArgs),
}

/// The MCP clients `mcp install` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum McpClient {
    /// Claude Desktop (claude_desktop_config.json)
    ClaudeDesktop,
    /// Claude Code (prints a `claude mcp add` command line)
    ClaudeCode,
    /// Cursor (~/.cursor/mcp.json)
    Cursor,
    /// VS Code (the user profile's mcp.json)
    Vscode,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The server entry runs the termloom-mcp binary found next to this \
    termloom (else on PATH) with the global -S/-L/--state-dir/--host/--ssh-config/--backend given here, then every \
    --server-arg. An existing config file is merged: other servers are kept, an entry of the same \
    name is replaced, and the file is replaced atomically. A file that is not plain JSON (e.g. has \
    comments) is left alone and the entry is printed for you to add."
)]
pub struct McpInstallArgs {
    /// The client to configure
    #[arg(long, value_enum, value_name = "CLIENT")]
    pub client: McpClient,
    /// Print the configuration (or command line) instead of writing it
    #[arg(long)]
    pub print: bool,
    /// An extra argument for the server (repeatable), e.g. --server-arg=--tier --server-arg=read-only
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// The server's name in the client's configuration
    #[arg(long, value_name = "NAME", default_value = "termloom")]
    pub name: String,
    /// The termloom-mcp binary to run [default: next to this termloom, else on PATH]
    #[arg(long, value_name = "PATH")]
    pub server_path: Option<PathBuf>,
    /// The config file to write [default: the client's user config file]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("expected K=V with a non-empty name, got '{s}'")),
    }
}

/// `WORKSPACE:WINDOW`. Split at the first ':' because a workspace name cannot hold one (tmux
/// replaces it) while a window name can.
pub fn parse_window_ref(s: &str) -> Result<WindowRef, String> {
    match s.split_once(':') {
        Some((ws, win)) if !ws.is_empty() && !win.is_empty() => Ok(WindowRef {
            workspace: ws.to_string(),
            window: WindowSel::parse(win),
        }),
        _ => Err(format!(
            "expected WORKSPACE:WINDOW (window by index or exact name), got '{s}'"
        )),
    }
}

/// A value with the blanks around it dropped (`--panes 'a, b'` names `b`, not ` b`).
fn trimmed(s: &str) -> Result<String, String> {
    Ok(s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_watch_and_wait_parse() {
        let cli = Cli::try_parse_from([
            "termloom",
            "--log",
            "run",
            "web",
            "--timeout",
            "2.5",
            "--quiet-ms",
            "300",
            "--",
            "echo",
            "a",
        ])
        .unwrap();
        assert!(cli.log);
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.timeout, std::time::Duration::from_millis(2500));
                assert_eq!(r.quiet_ms, Some(300));
                assert_eq!(r.command, ["echo", "a"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["termloom", "run", "web"]).is_err());
        assert!(Cli::try_parse_from(["termloom", "run", "web", "-t", "-1", "--", "x"]).is_err());
        assert!(Cli::try_parse_from(["termloom", "run", "web", "-t", "NaN", "--", "x"]).is_err());
        let cli =
            Cli::try_parse_from(["termloom", "watch", "web", "-f", "a", "--filter", "b"]).unwrap();
        assert!(matches!(cli.command, Command::Watch(w) if w.filters == ["a", "b"]));
        let cli = Cli::try_parse_from(["termloom", "wait", "web", "x.*y"]).unwrap();
        assert!(matches!(cli.command, Command::Wait(w) if w.timeout.as_secs() == 30));
    }

    #[test]
    fn completions_take_a_shell() {
        let cli = Cli::try_parse_from(["termloom", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Completions(CompletionsArgs { shell: Shell::Zsh })
        ));
    }

    #[test]
    fn window_refs_split_at_the_first_colon() {
        let w = parse_window_ref("ws:a:b").unwrap();
        assert_eq!(w.workspace, "ws");
        assert_eq!(w.window, WindowSel::Name("a:b".into()));
        assert_eq!(
            parse_window_ref("ws:2").unwrap().window,
            WindowSel::Index(2)
        );
        assert!(parse_window_ref("ws:").is_err());
        assert!(parse_window_ref(":1").is_err());
        assert!(parse_window_ref("ws").is_err());
    }

    #[test]
    fn env_pairs_need_a_name() {
        assert_eq!(
            parse_env("A=b=c").unwrap(),
            ("A".to_string(), "b=c".to_string())
        );
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }

    #[test]
    fn targets_and_keys_parse_at_the_command_line() {
        let cli =
            Cli::try_parse_from(["termloom", "keys", "work:1.2", "C-c", "Enter", "-"]).unwrap();
        match cli.command {
            Command::Keys(k) => {
                assert_eq!(k.keys.len(), 3);
                assert!(matches!(k.target, Target::Path { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["termloom", "keys", "x", "NoSuchKey"]).is_err());
        assert!(Cli::try_parse_from(["termloom", "send", "tmux:12", "x"]).is_err());
    }
}
