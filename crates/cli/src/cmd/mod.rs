//! What each command does. One function per command, all shaped the same way: take the parsed
//! arguments and a [`Ctx`], call core through [`Loom`], print a table/line or one JSON document.
//!
//! New commands (`run`, `status`, `watch`, `wait`, `integrate`) slot in as a variant of
//! [`Command`](crate::args::Command) and a function here.

mod mcp;
pub mod project;
mod run;
mod session;
mod workspace;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::CommandFactory;
use termloom::GlobalOpts;
use termloom_core::{LogConfig, Loom, Session, SessionInfo, Target};

use crate::args::{Cli, Command};

/// What every command gets: the global options and, once asked for, the terminal.
pub struct Ctx {
    pub global: GlobalOpts,
    /// `--log`: log every session this command touches.
    pub log: bool,
    /// Drive tmux through a long-lived control-mode client (set before the first [`Ctx::loom`]).
    pub control: bool,
    loom: Option<Loom>,
}

impl Ctx {
    fn new(global: GlobalOpts, log: bool) -> Ctx {
        Ctx {
            global,
            log,
            control: false,
            loom: None,
        }
    }

    /// Whether to print JSON.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// The terminal and registry the global options name (built on first use; nothing is spawned).
    pub fn loom(&mut self) -> Result<&Loom> {
        match &mut self.loom {
            Some(loom) => Ok(loom),
            slot => {
                let mut loom = termloom::connect_with(&self.global, self.control)?;
                if self.log {
                    loom = loom.with_logging(LogConfig::in_state_dir(&self.global.state_dir()?));
                }
                Ok(slot.insert(loom))
            }
        }
    }

    /// Resolves a target against a fresh listing and opens the session.
    pub async fn open(&mut self, target: &Target) -> Result<(SessionInfo, Arc<dyn Session>)> {
        let loom = self.loom()?;
        let info = loom.resolve(target).await?;
        let session = loom.terminal().open(&info).await?;
        let session = match loom.logger() {
            Some(logger) => logger.wrap(session).await,
            None => session,
        };
        Ok((info, session))
    }
}

/// A usage error found after parsing (exit code 2, printed the way clap prints its own).
pub fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, msg)
        .into()
}

/// The words after `--` as one line for the pane's shell (`None` when there are none). One word
/// is typed as it is: a command line of its own (`-- 'make && ./run'`). Several are argv words,
/// each quoted for a POSIX shell where it needs it, so that `-- sh -c 'echo a; exit 7'` runs `sh`
/// with those two arguments rather than `sh -c echo a` and then `exit 7` in the pane's shell.
/// Leading `NAME=value` words stay assignments (only the value is quoted), as before a command
/// in a shell: `-- RUST_LOG=debug cargo run`.
pub fn command_line(words: &[String]) -> Result<Option<String>> {
    // A control character inside quotes still reaches the shell's line editor as a key (a tab
    // completes, C-u erases the line): such a word cannot be typed as an argument.
    let quote = |w: &str| {
        if let Some(c) = w.chars().find(|c| c.is_control() && *c != '\n') {
            anyhow::bail!(
                "a word after -- holds the control character {c:?}, which the shell's line editor would act on as a key; put the whole command line in one word and write it with the shell's own escapes (e.g. $'\\t')"
            );
        }
        Ok(shlex::try_quote(w)
            .map_err(|_| anyhow::anyhow!("a word after -- holds a NUL byte"))?
            .into_owned())
    };
    match words {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => {
            let mut out = Vec::with_capacity(many.len());
            let mut leading = true;
            for w in many {
                match w.split_once('=') {
                    Some((name, value)) if leading && is_shell_name(name) => {
                        out.push(format!("{name}={}", quote(value)?));
                    }
                    _ => {
                        leading = false;
                        out.push(quote(w)?);
                    }
                }
            }
            Ok(Some(out.join(" ")))
        }
    }
}

/// A shell variable name: a letter or `_`, then letters, digits and `_`.
fn is_shell_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let mut ctx = Ctx::new(cli.global, cli.log);
    match cli.command {
        Command::Ls(a) => {
            if a.all {
                session::sessions(&mut ctx).await
            } else {
                session::ls(&mut ctx).await
            }
        }
        Command::Sessions => session::sessions(&mut ctx).await,
        Command::New(a) => session::new(&mut ctx, a).await,
        Command::Send(a) => session::send(&mut ctx, a).await,
        Command::Keys(a) => session::keys(&mut ctx, a).await,
        Command::Read(a) => session::read(&mut ctx, a).await,
        Command::Search(a) => session::search(&mut ctx, a).await,
        Command::Split(a) => session::split(&mut ctx, a).await,
        Command::Kill(a) => session::kill(&mut ctx, a).await,
        Command::Rename(a) => session::rename(&mut ctx, a).await,
        Command::Focus(a) => session::focus(&mut ctx, a).await,
        Command::Resize(a) => session::resize(&mut ctx, a).await,
        Command::Tag(a) => session::tag(&mut ctx, a).await,
        Command::MaxLines(a) => session::max_lines(&mut ctx, a).await,
        Command::Workspace(c) => workspace::workspace(&mut ctx, c).await,
        Command::Window(c) => workspace::window(&mut ctx, c).await,
        Command::Scrollback(a) => workspace::scrollback(&mut ctx, a).await,
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "termloom", &mut script);
            crate::output::text(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mcp(c) => mcp::run(&mut ctx, c),
        Command::Project(c) => project::run(&mut ctx, c).await,
        Command::Attach(a) => project::attach(&mut ctx, a).await,
        Command::Run(a) => run::run(&mut ctx, a).await,
        Command::Status(a) => run::status(&mut ctx, a).await,
        Command::Watch(a) => run::watch(&mut ctx, a).await,
        Command::Wait(a) => run::wait(&mut ctx, a).await,
        Command::Integrate(a) => run::integrate(&mut ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> Option<String> {
        command_line(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn words_after_the_separator_become_one_shell_line() {
        assert_eq!(line(&[]), None);
        assert_eq!(line(&["make && ./run"]).as_deref(), Some("make && ./run"));
        assert_eq!(
            line(&["sh", "-c", "echo a; exit 7"]).as_deref(),
            Some("sh -c 'echo a; exit 7'")
        );
        assert_eq!(
            line(&[
                "RUST_LOG=debug",
                "A_1=x y",
                "cargo",
                "run",
                "B=not-an-assignment"
            ])
            .as_deref(),
            Some("RUST_LOG=debug A_1='x y' cargo run 'B=not-an-assignment'")
        );
        assert_eq!(line(&["1X=a", "b"]).as_deref(), Some("'1X=a' b"));
        assert!(command_line(&["a".into(), "b\0".into()]).is_err());
        let tab = command_line(&["cut".into(), "-d".into(), "\t".into()]).unwrap_err();
        assert!(tab.to_string().contains("control character"), "{tab}");
        assert_eq!(
            line(&["printf", "a\nb"]).as_deref(),
            Some("printf 'a\nb'"),
            "a newline inside quotes is typed as part of the word"
        );
    }
}
