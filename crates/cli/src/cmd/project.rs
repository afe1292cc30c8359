//! Projects and attaching: `termloom project ls|show|open|close|kill|import|freeze|edit` and
//! `termloom attach SESSION`.
//!
//! Project files live in `$TERMLOOM_CONFIG_DIR/projects` (default `~/.config/termloom/projects`).
//! Attaching runs tmux in the foreground of this terminal: termloom replaces itself with
//! `tmux attach-session -t =NAME` (or `switch-client` when already inside that server), argv only,
//! inheriting the tty; `--print` prints that argv instead. `attach --iterm` asks iTerm2 instead:
//! it opens a window running `tmux -CC` (through `ssh -t` for `--host`).
//!
//! `iterm` and `iterm-tmux` projects open in iTerm2 whatever `--backend` says (their file names
//! the backend); nothing is attached afterwards, since iTerm2 shows their windows.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use termloom_core::project::{
    self, AttachOpts, AttachPlan, CloseOptions, OpenOptions, OpenReport, Project, ProjectBackend,
    ProjectStore,
};

use super::{Ctx, usage};
use crate::output::{self, Table};

/// `termloom project …`
#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// List project files and whether each is open
    #[command(visible_alias = "list")]
    Ls,
    /// Print a project as loaded (checked), with its file and state
    Show {
        /// The project's name
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Open a project: create its workspace, or complete it (only what is missing is created;
    /// commands run only in panes created now), then attach this terminal to it
    Open(OpenArgs),
    /// Close a project: detach every terminal from its workspace; every process keeps running
    Close {
        /// The project's name
        #[arg(value_name = "NAME")]
        name: String,
        /// Do not run the on_close hooks
        #[arg(long)]
        no_hooks: bool,
    },
    /// Kill a project's workspace and every process in it
    Kill {
        /// The project's name
        #[arg(value_name = "NAME")]
        name: String,
        /// Really kill it
        #[arg(long)]
        yes: bool,
    },
    /// Convert a tmuxp (YAML/JSON) or tmuxinator file into a project file
    Import {
        /// The tmuxp or tmuxinator file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The project's name [default: the file's session_name / name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Replace an existing project file
        #[arg(long)]
        force: bool,
        /// Print the project instead of writing it
        #[arg(long)]
        print: bool,
    },
    /// Write a project file from a live workspace (and mark the workspace as that project's)
    Freeze {
        /// The project's name
        #[arg(value_name = "NAME")]
        name: String,
        /// The workspace to freeze [default: NAME]
        #[arg(short, long, value_name = "WORKSPACE")]
        workspace: Option<String>,
        /// Replace an existing project file
        #[arg(long)]
        force: bool,
        /// Print the project instead of writing it (the workspace is not marked)
        #[arg(long)]
        print: bool,
    },
    /// Edit a project file in $VISUAL / $EDITOR (a new one starts from a template), then check it
    Edit {
        /// The project's name
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `termloom project open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The project's name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Take over an existing workspace of the project's session name that no project opened
    #[arg(long)]
    pub adopt: bool,
    /// Do not run the on_open hooks
    #[arg(long)]
    pub no_hooks: bool,
    /// Attach this terminal afterwards [default: when stdin and stdout are terminals]
    #[arg(long, conflicts_with = "no_attach")]
    pub attach: bool,
    /// Do not attach
    #[arg(long)]
    pub no_attach: bool,
}

/// `termloom attach`
#[derive(Debug, Args)]
#[command(
    after_help = "Like `tmux new-session -A -s SESSION`: attaches this terminal to the tmux \
    session, creating it first unless --no-create. Inside a client of the same tmux server it \
    switches that client instead of nesting. With --iterm, a new iTerm2 window runs \
    `tmux -CC new-session -A -s SESSION` (`attach-session` with --no-create; inside `ssh -t HOST` \
    with --host) and the session shows as native iTerm2 windows."
)]
pub struct AttachArgs {
    /// The workspace (tmux session) name
    #[arg(value_name = "SESSION")]
    pub session: String,
    /// Fail when the session does not exist instead of creating it
    #[arg(long)]
    pub no_create: bool,
    /// Working directory of a session created now
    #[arg(short, long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Print the command that attaches (JSON with --json) instead of running it
    #[arg(long, conflicts_with = "iterm")]
    pub print: bool,
    /// Show the session in a new iTerm2 window through `tmux -CC` (over `ssh -t HOST` with
    /// --host), as native iTerm2 windows and tabs
    #[arg(long)]
    pub iterm: bool,
}

fn store() -> Result<ProjectStore> {
    Ok(ProjectStore::from_env()?)
}

/// The terminal a project lives in: a tmux project's server on the project's `host` unless
/// `--host` names one; iTerm2 for `iterm` and `iterm-tmux` projects (an `iterm-tmux` project
/// reaches its host through `ssh -t` inside its gateway window).
fn loom_for<'a>(ctx: &'a mut Ctx, p: &Project) -> Result<&'a termloom_core::Loom> {
    match p.backend {
        ProjectBackend::Tmux => {
            if ctx.global.host.is_none() {
                ctx.global.host = p.host.clone();
            }
        }
        ProjectBackend::Iterm | ProjectBackend::ItermTmux => {
            ctx.global.backend = "iterm".into();
            ctx.global.host = None;
        }
    }
    ctx.loom()
}

pub async fn run(ctx: &mut Ctx, c: ProjectCmd) -> Result<ExitCode> {
    match c {
        ProjectCmd::Ls => ls(ctx).await,
        ProjectCmd::Show { name } => show(ctx, &name).await,
        ProjectCmd::Open(a) => open(ctx, a).await,
        ProjectCmd::Close { name, no_hooks } => close(ctx, &name, no_hooks).await,
        ProjectCmd::Kill { name, yes } => kill(ctx, &name, yes).await,
        ProjectCmd::Import {
            file,
            name,
            force,
            print,
        } => import(ctx, &file, name.as_deref(), force, print),
        ProjectCmd::Freeze {
            name,
            workspace,
            force,
            print,
        } => freeze(ctx, &name, workspace.as_deref(), force, print).await,
        ProjectCmd::Edit { name } => edit(&name),
    }
}

async fn ls(ctx: &mut Ctx) -> Result<ExitCode> {
    let store = store()?;
    let loom = ctx.loom()?;
    let all = project::list_projects(&store, loom.terminal().as_ref()).await?;
    if ctx.json() {
        output::json(&all)?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        output::note(format!("no projects in {}", store.dir().display()));
    }
    let mut t = Table::new(&["NAME", "BACKEND", "WORKSPACE", "WINDOWS", "STATE"]);
    for p in &all {
        let state = match (&p.error, &p.status) {
            (Some(e), _) => format!("error: {e}"),
            (None, None) => match &p.host {
                Some(h) => format!("- (on {h}: termloom --host {h} project ls)"),
                None => "-".into(),
            },
            (None, Some(s)) if s.open && s.attached => "open, attached".into(),
            (None, Some(s)) if s.open => "open".into(),
            (None, Some(s)) => match &s.conflict {
                Some(c) => format!("closed (workspace taken by {c})"),
                None => "closed".into(),
            },
        };
        t.row(vec![
            p.name.clone(),
            p.backend.map(|b| b.to_string()).unwrap_or_default(),
            p.workspace.clone().unwrap_or_default(),
            p.windows.to_string(),
            state,
        ]);
    }
    t.print()?;
    Ok(ExitCode::SUCCESS)
}

async fn show(ctx: &mut Ctx, name: &str) -> Result<ExitCode> {
    let store = store()?;
    let path = store.path(name)?;
    let p = store.load(name)?;
    let loom = loom_for(ctx, &p)?;
    let status = project::status(loom.terminal().as_ref(), &p).await.ok();
    if ctx.json() {
        output::json(&json!({
            "file": path.display().to_string(),
            "project": p,
            "workspace": p.workspace(),
            "status": status,
        }))?;
    } else {
        output::line(format!("# {}", path.display()))?;
        output::text(&p.to_yaml()?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_open(r: &OpenReport) -> Result<()> {
    output::line(format!(
        "project {}: workspace {} {} ({} pane(s) created, {} found)",
        r.project,
        r.workspace,
        if r.created_workspace {
            "created"
        } else if r.adopted {
            "adopted"
        } else {
            "found"
        },
        r.created,
        r.found
    ))?;
    let mut t = Table::new(&["WINDOW", "PANE", "SESSION", "ID", "STATUS"]);
    for w in &r.windows {
        for p in &w.panes {
            t.row(vec![
                w.name.clone(),
                p.name.clone(),
                p.session.clone(),
                p.id.short(),
                match (p.status, p.matched_by) {
                    (project::ItemStatus::Found, Some(project::MatchedBy::Id)) => {
                        "found (by id)".into()
                    }
                    (project::ItemStatus::Found, Some(project::MatchedBy::Name)) => {
                        "found (by name)".into()
                    }
                    (project::ItemStatus::Created, _) if p.commands_sent > 0 => {
                        format!("created, {} command(s) typed", p.commands_sent)
                    }
                    (project::ItemStatus::Created, _) => "created".into(),
                    (s, _) => format!("{s:?}").to_lowercase(),
                },
            ]);
        }
    }
    t.print()?;
    print_hooks(&r.hooks);
    Ok(())
}

fn print_hooks(hooks: &[project::HookReport]) {
    for h in hooks.iter().filter(|h| !h.ok) {
        output::note(format!(
            "{} hook {:?} failed: {}",
            h.hook,
            h.argv,
            h.error
                .clone()
                .or_else(|| h.exit_code.map(|c| format!("exit code {c}")))
                .unwrap_or_else(|| "killed by a signal".into())
        ));
    }
}

async fn open(ctx: &mut Ctx, a: OpenArgs) -> Result<ExitCode> {
    let store = store()?;
    let p = store.load(&a.name)?;
    let loom = loom_for(ctx, &p)?.clone();
    // Under the state dir's change lock, as the MCP server opens: two opens at once would both
    // fill the same gaps.
    let report = project::open_in(
        &loom,
        &p,
        &OpenOptions {
            adopt: a.adopt,
            run_hooks: !a.no_hooks,
        },
    )
    .await?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // iTerm2 shows an iterm / iterm-tmux project's windows itself: nothing to attach.
    let attach = p.backend == ProjectBackend::Tmux
        && (a.attach || (interactive && !a.no_attach && !ctx.json()));
    if ctx.json() {
        output::json(&report)?;
    } else if !attach {
        print_open(&report)?;
    }
    if attach {
        let plan = loom
            .terminal()
            .attach_plan(&report.workspace, &AttachOpts::default())
            .await?;
        return exec_plan(plan);
    }
    Ok(ExitCode::SUCCESS)
}

async fn close(ctx: &mut Ctx, name: &str, no_hooks: bool) -> Result<ExitCode> {
    let p = store()?.load(name)?;
    let loom = loom_for(ctx, &p)?;
    let r = project::close(
        loom.terminal().as_ref(),
        &p,
        &CloseOptions {
            run_hooks: !no_hooks,
        },
    )
    .await?;
    if ctx.json() {
        output::json(&r)?;
    } else if !r.was_open {
        output::line(format!(
            "project {name} is not open (no workspace {})",
            r.workspace
        ))?;
    } else {
        output::line(format!(
            "project {name}: detached {} client(s) from {}; {} session(s) keep running",
            r.detached, r.workspace, r.sessions
        ))?;
        if let Some(n) = &r.note {
            output::note(n);
        }
        print_hooks(&r.hooks);
    }
    Ok(ExitCode::SUCCESS)
}

async fn kill(ctx: &mut Ctx, name: &str, yes: bool) -> Result<ExitCode> {
    let p = store()?.load(name)?;
    if !yes {
        return Err(usage(format!(
            "`project kill` ends every process of project '{name}' (workspace {}); pass --yes to \
             do it, or use `project close` to detach and keep them running",
            p.workspace()
        )));
    }
    let loom = loom_for(ctx, &p)?;
    let r = project::kill(loom.terminal().as_ref(), &p).await?;
    if ctx.json() {
        output::json(&r)?;
    } else if r.killed {
        output::line(format!(
            "project {name}: killed workspace {} ({} session(s))",
            r.workspace, r.sessions
        ))?;
    } else {
        output::line(format!("project {name} is not open"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    ctx: &mut Ctx,
    file: &Path,
    name: Option<&str>,
    force: bool,
    print: bool,
) -> Result<ExitCode> {
    let imported = project::import(file, name)?;
    for n in &imported.notes {
        output::note(n);
    }
    if print {
        if ctx.json() {
            output::json(&imported)?;
        } else {
            output::text(&imported.project.to_yaml()?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = store()?.save(&imported.project, force)?;
    if ctx.json() {
        output::json(&json!({
            "file": path.display().to_string(),
            "format": imported.format,
            "project": imported.project,
            "notes": imported.notes,
        }))?;
    } else {
        output::line(format!(
            "imported {} as project {} ({})",
            file.display(),
            imported.project.name,
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn freeze(
    ctx: &mut Ctx,
    name: &str,
    workspace: Option<&str>,
    force: bool,
    print: bool,
) -> Result<ExitCode> {
    let ws = workspace.unwrap_or(name);
    let loom = ctx.loom()?.clone();
    let frozen = project::freeze(loom.terminal().as_ref(), ws, name).await?;
    if print {
        if ctx.json() {
            output::json(&frozen.project)?;
        } else {
            output::text(&frozen.project.to_yaml()?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = store()?.save(&frozen.project, force)?;
    let claimed = match frozen.claim(loom.terminal().as_ref()).await {
        Ok(()) => true,
        Err(e) => {
            output::note(format!(
                "workspace {ws} stays as it is ({e}); `project open {name}` will not adopt it"
            ));
            false
        }
    };
    if ctx.json() {
        output::json(&json!({
            "file": path.display().to_string(),
            "project": frozen.project,
            "workspace": ws,
            "claimed": claimed,
        }))?;
    } else {
        output::line(format!(
            "froze workspace {ws} as project {name} ({})",
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

const TEMPLATE: &str = "# termloom project: see `termloom project --help`
windows:
  - name: main
    panes:
      - name: shell
";

fn edit(name: &str) -> Result<ExitCode> {
    let store = store()?;
    let path = store.path(name)?;
    if !path.exists() {
        std::fs::create_dir_all(store.dir())
            .with_context(|| format!("cannot create {}", store.dir().display()))?;
        std::fs::write(&path, format!("name: {name}\n{TEMPLATE}"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut argv = shlex::split(&editor)
        .filter(|a| !a.is_empty())
        .with_context(|| format!("cannot split the editor command {editor:?} into words"))?;
    argv.push(path.display().to_string());
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .with_context(|| format!("cannot run the editor {:?}", argv[0]))?;
    if !status.success() {
        bail!("the editor {:?} exited with {status}", argv[0]);
    }
    match Project::load_file(&path) {
        Ok(p) => {
            output::line(format!(
                "project {} is valid ({} window(s))",
                p.name,
                p.windows.len()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::Error::from(e).context("the file was saved, but it does not load")),
    }
}

/// `termloom attach SESSION`.
pub async fn attach(ctx: &mut Ctx, a: AttachArgs) -> Result<ExitCode> {
    // --iterm: iTerm2 opens the window and runs `tmux -CC` (through ssh for a host) itself.
    let host = if a.iterm {
        ctx.global.backend = "iterm".into();
        ctx.global.host.take()
    } else {
        None
    };
    // Attaching needs this terminal: without one, fail before a workspace is made for nothing.
    if !a.iterm && !a.print && !std::io::stdin().is_terminal() {
        bail!(
            "cannot attach: stdin is not a terminal (run it from a terminal, or add --print for the command that attaches)"
        );
    }
    let loom = ctx.loom()?;
    let plan = loom
        .terminal()
        .attach_plan(
            &a.session,
            &AttachOpts {
                create: !a.no_create,
                cwd: a.cwd.clone(),
                control_mode: a.iterm,
                host,
            },
        )
        .await?;
    if a.iterm && ctx.json() {
        output::json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.print {
        if ctx.json() {
            output::json(&plan)?;
        } else if let AttachPlan::Exec(c) = &plan {
            output::line(shlex::try_join(c.argv().iter().map(String::as_str)).unwrap_or_default())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    exec_plan(plan)
}

/// Runs an attach plan in the foreground of this terminal: replaces this process with it.
fn exec_plan(plan: AttachPlan) -> Result<ExitCode> {
    match plan {
        AttachPlan::Exec(c) => {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "cannot attach: stdin is not a terminal (run `{}` from a terminal)",
                    c.argv().join(" ")
                );
            }
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(&c.program)
                .args(&c.args)
                .envs(c.env.iter().map(|(k, v)| (k, v)))
                .exec();
            Err(anyhow::Error::from(err).context(format!("cannot run {}", c.program.display())))
        }
        AttachPlan::Shown { message } => {
            output::line(message)?;
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("cannot attach: {other:?}"),
    }
}
