use std::path::Path;

use super::*;

const DEMO: &str = "name: demo
backend: tmux
session: demo
root: ~/src/demo
windows:
  - name: server
    layout: horizontal
    panes:
      - name: web
        command: python3 -m http.server 8000
      - name: logs
        command: tail -f server.log
  - name: shell
    panes:
      - name: sh
";

fn load(text: &str) -> std::result::Result<Project, ProjectFileError> {
    Project::from_yaml(text, Path::new("/p/demo.yaml"))
}

#[test]
fn the_demo_file_loads_as_written() {
    let p = load(DEMO).unwrap();
    assert_eq!(p.name, "demo");
    assert_eq!(p.backend, ProjectBackend::Tmux);
    assert_eq!(p.workspace(), "demo");
    assert_eq!(p.root.as_deref(), Some(Path::new("~/src/demo")));
    let home = etcetera::home_dir().unwrap();
    assert_eq!(p.root_dir(), Some(home.join("src/demo")));
    let w = p.resolve().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].name, "server");
    let names: Vec<&str> = w[0].panes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web", "logs"]);
    assert_eq!(w[0].panes[0].commands, ["python3 -m http.server 8000"]);
    assert_eq!(w[0].panes[0].cwd, Some(home.join("src/demo")));
    assert!(matches!(
        w[0].layout.root,
        LayoutNode::Split {
            direction: Direction::Horizontal,
            ..
        }
    ));
    assert_eq!(w[1].panes[0].name, "sh");
    assert!(w[1].panes[0].commands.is_empty());
    assert!(matches!(w[1].layout.root, LayoutNode::Pane(_)));
    assert_eq!(p.session_name("web"), "demo/web");
}

#[test]
fn a_project_round_trips_through_yaml() {
    let p = load(DEMO).unwrap();
    let text = p.to_yaml().unwrap();
    assert_eq!(load(&text).unwrap(), p, "{text}");
}

fn err(text: &str) -> ProjectFileError {
    load(text).unwrap_err()
}

#[test]
fn errors_name_file_line_and_field() {
    let e =
        err("name: demo\nwindows:\n  - name: a\n    panes:\n      - name: x\n        comand: hi\n");
    assert_eq!(
        (e.line, e.field.as_str()),
        (6, "windows[0].panes[0].comand"),
        "{e}"
    );
    assert!(e.message.contains("unknown field"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/p/demo.yaml:6:9: windows[0].panes[0].comand: "),
        "{shown}"
    );

    let e = err(
        "name: demo\nwindows:\n  - name: a\n    panes:\n      - name: x\n        focus: maybe\n",
    );
    assert_eq!(
        (e.line, e.field.as_str()),
        (6, "windows[0].panes[0].focus"),
        "{e}"
    );

    let e = err("name: demo\nwindows:\n  - panes:\n      - name: x\n");
    assert_eq!((e.line, e.field.as_str()), (3, "windows[0].name"), "{e}");
    assert!(e.message.contains("missing field"), "{e}");

    // Worded for the person editing the file, with no placeholder for a field.
    let e = err("name: demo\nname: again\nwindows:\n  - name: a\n");
    let shown = e.to_string();
    assert!(
        shown.contains("duplicate") && !shown.contains("(yaml)"),
        "{shown}"
    );
    assert!(!shown.contains("DuplicateKeyPolicy"), "{shown}");

    // A window name of digits only would read as a window index once open.
    let e = err("name: demo\nwindows:\n  - name: a\n  - name: \"9\"\n");
    assert_eq!((e.line, e.field.as_str()), (4, "windows[1].name"), "{e}");
    assert!(e.message.contains("only digits"), "{e}");

    let e = err("name: demo\nbackend: screen\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (2, "backend"), "{e}");

    let e = err("name: demo\nwindows:\n  - name: a\n    layout: diagonal\n");
    assert_eq!((e.line, e.field.as_str()), (4, "windows[0].layout"), "{e}");
    assert!(e.message.contains("unknown layout"), "{e}");

    let e = err(
        "name: demo\nwindows:\n  - name: a\n    panes:\n      - name: x\n  - name: b\n    panes:\n      - name: x\n",
    );
    assert_eq!(
        (e.line, e.field.as_str()),
        (8, "windows[1].panes[0].name"),
        "{e}"
    );

    let e = err("name: other\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (1, "name"), "{e}");

    let e =
        err("name: demo\nwindows:\n  - name: a\n    layout: quad\n    panes:\n      - name: x\n");
    assert_eq!((e.line, e.field.as_str()), (4, "windows[0].layout"), "{e}");

    let e = err("name: demo\nsession: a.b\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (2, "session"), "{e}");

    // Passed the check, then every open failed.
    let e = err("name: demo\nsession: cost $5\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (2, "session"), "{e}");

    let e = err("name: demo\nwindows: [\n");
    assert!(e.line >= 2, "{e}");

    let e = err("name: demo\nhooks:\n  on_open:\n    - []\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (4, "hooks.on_open[0]"), "{e}");

    let e = err("name: demo\niterm:\n  size: big\nwindows:\n  - name: a\n");
    assert_eq!((e.line, e.field.as_str()), (3, "iterm.size"), "{e}");
}

#[test]
fn layout_trees_place_named_panes() {
    let p = load(
        "name: demo
windows:
  - name: dev
    layout:
      split: horizontal
      children:
        - pane: editor
          size: 60%
        - split: vertical
          children:
            - pane: web
            - pane: logs
    panes:
      - name: editor
        command: vim
      - name: web
",
    )
    .unwrap();
    let w = &p.resolve().unwrap()[0];
    let names: Vec<&str> = w.layout.panes().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["editor", "web", "logs"]);
    assert_eq!(
        w.pane("logs").unwrap().commands.len(),
        0,
        "an implicit pane"
    );
    let LayoutNode::Split { children, .. } = &w.layout.root else {
        panic!("a split")
    };
    assert_eq!((children[0].percent, children[1].percent), (60, 40));

    let e = err("name: demo
windows:
  - name: dev
    layout:
      split: horizontal
      children:
        - pane: a
    panes:
      - name: a
");
    assert_eq!(e.field, "windows[0].layout", "{e}");
    assert!(e.message.contains("at least 2"), "{e}");

    let e = err("name: demo
windows:
  - name: dev
    layout:
      split: horizontal
      children:
        - pane: a
        - pane: b
    panes:
      - name: a
      - name: c
");
    assert!(e.message.contains("'c' is not placed"), "{e}");
}

#[test]
fn default_names_and_layouts() {
    let p = Project::from_yaml(
        "name: x.y\nwindows:\n  - name: w\n    panes:\n      - command: a\n      - command: b\n      - {}\n  - name: solo\n",
        Path::new("/p/x.y.yaml"),
    )
    .unwrap();
    assert_eq!(p.workspace(), "x_y");
    let w = p.resolve().unwrap();
    let names: Vec<String> = w[0].panes.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["w-1", "w-2", "w-3"]);
    assert_eq!(w[1].panes[0].name, "solo");
    assert_eq!(w[0].layout, Layout::predefined("tiled", &names).unwrap());
    assert_eq!(
        w[1].layout,
        Layout::predefined("single", &["solo".into()]).unwrap()
    );
}

#[test]
fn store_saves_lists_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProjectStore::new(dir.path().join("projects"));
    assert!(store.names().unwrap().is_empty());
    let p = load(DEMO).unwrap();
    let path = store.save(&p, false).unwrap();
    assert_eq!(path, dir.path().join("projects/demo.yaml"));
    assert!(store.save(&p, false).is_err(), "no silent overwrite");
    store.save(&p, true).unwrap();
    assert_eq!(store.names().unwrap(), ["demo"]);
    assert_eq!(store.load("demo").unwrap(), p);
    let e = store.load("nope").unwrap_err().to_string();
    assert!(e.contains("no project named 'nope'"), "{e}");
    assert!(store.load("../x").is_err());
}

#[test]
fn tmuxp_and_tmuxinator_import_as_the_same_project() {
    let tmuxp = "session_name: dev
start_directory: /srv/app
windows:
  - window_name: editor
    layout: main-vertical
    panes:
      - shell_command: [vim]
      - shell_command:
          - cmd: make watch
      - echo hi
  - window_name: logs
    panes:
      - tail -f log.txt
  - window_name: shell
";
    let tmuxinator = "name: dev
root: /srv/app
windows:
  - editor:
      layout: main-vertical
      panes:
        - vim
        - make watch
        - echo hi
  - logs: tail -f log.txt
  - shell:
";
    let a = import_str(tmuxp, Path::new("dev.yaml"), None).unwrap();
    let b = import_str(tmuxinator, Path::new("dev.yml"), None).unwrap();
    assert_eq!(a.format, ImportFormat::Tmuxp);
    assert_eq!(b.format, ImportFormat::Tmuxinator);
    assert_eq!(a.project, b.project);
    let w = a.project.resolve().unwrap();
    let names: Vec<&str> = w[0].panes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["editor-1", "editor-2", "editor-3"]);
    assert_eq!(w[1].panes[0].commands, ["tail -f log.txt"]);
    assert_eq!(w[2].panes[0].name, "shell");

    let json = r#"{"session_name": "dev", "start_directory": "/srv/app", "windows": [
        {"window_name": "editor", "layout": "main-vertical",
         "panes": [{"shell_command": ["vim"]}, {"shell_command": [{"cmd": "make watch"}]}, "echo hi"]},
        {"window_name": "logs", "panes": ["tail -f log.txt"]},
        {"window_name": "shell"}]}"#;
    let c = import_str(json, Path::new("dev.json"), None).unwrap();
    assert_eq!(c.project, a.project);
}

#[test]
fn tmuxp_start_directories_expand_environment_variables() {
    let t = "session_name: envy
start_directory: $HOME/src
windows:
  - window_name: w
    start_directory: ${TERMLOOM_SURELY_UNSET_VAR}/x
    panes:
      - echo
";
    let i = import_str(t, Path::new("t.yaml"), None).unwrap();
    let home = std::env::var("HOME").unwrap();
    assert_eq!(i.project.root, Some(Path::new(&home).join("src")));
    assert_eq!(
        i.project.windows[0].cwd.as_deref(),
        Some(Path::new("${TERMLOOM_SURELY_UNSET_VAR}/x"))
    );
    let notes = i.notes.join("\n");
    assert!(notes.contains("TERMLOOM_SURELY_UNSET_VAR"), "{notes}");
}

#[test]
fn a_tmuxp_command_typed_without_enter_is_left_out_with_a_note() {
    let t = "session_name: typed
windows:
  - window_name: w
    panes:
      - shell_command:
          - cmd: make deploy
            enter: false
          - cmd: ls
";
    let i = import_str(t, Path::new("t.yaml"), None).unwrap();
    let digits = import_str(
        "session_name: d\nwindows:\n  - window_name: \"2\"\n    panes: [ls]\n",
        Path::new("d.yaml"),
        None,
    )
    .unwrap();
    assert_eq!(digits.project.windows[0].name, "window-2");
    assert!(digits.notes.join("\n").contains("digits only"));
    let p = &i.project.windows[0].panes[0];
    let all: Vec<&str> = p
        .command
        .iter()
        .chain(p.commands.iter())
        .map(String::as_str)
        .collect();
    assert!(!all.contains(&"make deploy"), "{all:?}");
    assert!(all.contains(&"ls"), "{all:?}");
    let notes = i.notes.join("\n");
    assert!(
        notes.contains("make deploy") && notes.contains("enter: false"),
        "{notes}"
    );
}

#[test]
fn imports_note_what_they_leave_out() {
    let t = "name: my proj
pre_window: source env.sh
on_project_start: docker compose up -d
tmux_options: -f ~/.tmux.alt
windows:
  - edit:
      layout: 5e3c,80x24,0,0{40x24,0,0,1,39x24,41,0,2}
      panes:
        - vim
        -
";
    let i = import_str(t, Path::new("p.yml"), None).unwrap();
    assert_eq!(i.project.name, "my-proj");
    assert_eq!(i.project.session.as_deref(), Some("my proj"));
    assert_eq!(
        i.project.hooks.on_open,
        [vec![
            "sh".to_string(),
            "-c".into(),
            "docker compose up -d".into()
        ]]
    );
    let w = &i.project.windows[0];
    assert_eq!(w.layout, None);
    assert_eq!(w.panes[0].commands, ["source env.sh", "vim"]);
    assert_eq!(w.panes[1].command.as_deref(), Some("source env.sh"));
    let notes = i.notes.join("\n");
    assert!(notes.contains("tmux_options"), "{notes}");
    assert!(notes.contains("layout"), "{notes}");

    let e = import_str("windows: []\n", Path::new("x.yaml"), None).unwrap_err();
    assert!(e.to_string().contains("x.yaml:1:1"), "{e}");
    let e = import_str(
        "session_name: a\nwindows:\n  - window_name: w\n    panes: 3\n",
        Path::new("x.yaml"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("x.yaml:4:") && e.contains("windows[0].panes"),
        "{e}"
    );
}

#[test]
fn pane_names_that_sessions_cannot_have_are_problems_of_the_file() {
    // A session is named PROJECT/PANE, and session names cannot hold ':' (targets use it): the
    // file says so before anything is opened.
    let e = err("name: demo\nwindows:\n  - name: a\n    panes:\n      - name: x:y\n");
    assert_eq!(e.field, "windows[0].panes[0].name", "{e}");
    assert!(e.message.contains("cannot contain ':'"), "{e}");
    // A window with no panes names its pane after itself.
    let e = err("name: demo\nwindows:\n  - name: a:b\n");
    assert_eq!(e.field, "windows[0].name", "{e}");
    // Also with one pane that has no name, and for '/'.
    let e = err("name: demo\nwindows:\n  - name: a:b\n    panes:\n      - command: ls\n");
    assert_eq!(e.field, "windows[0].name", "{e}");
    assert!(e.message.contains("cannot contain ':'"), "{e}");
    let e = err("name: demo\nwindows:\n  - name: x/y\n");
    assert!(e.message.contains("cannot contain '/'"), "{e}");
    assert!(load("name: demo\nwindows:\n  - name: a:b\n    panes:\n      - name: x\n").is_ok());
}

#[test]
fn directories_that_would_depend_on_where_termloom_runs_are_problems_of_the_file() {
    // A relative root (or a relative cwd with no root above it) would be one directory for the
    // CLI and another for an MCP server started elsewhere.
    let e = err("name: demo\nroot: src/demo\nwindows:\n  - name: a\n");
    assert_eq!(e.field, "root", "{e}");
    assert!(e.message.contains("absolute"), "{e}");
    let e = err("name: demo\nwindows:\n  - name: a\n    cwd: web\n");
    assert_eq!(e.field, "windows[0].cwd", "{e}");
    let e = err("name: demo\nwindows:\n  - name: a\n    panes:\n      - cwd: web\n");
    assert_eq!(e.field, "windows[0].panes[0].cwd", "{e}");
    // Under an absolute or `~` root, relative cwds are fine; so are absolute ones anywhere.
    for ok in [
        "name: demo\nroot: ~/src/demo\nwindows:\n  - name: a\n    cwd: web\n",
        "name: demo\nroot: /srv/demo\nwindows:\n  - name: a\n    panes:\n      - cwd: web\n",
        "name: demo\nwindows:\n  - name: a\n    cwd: /srv\n    panes:\n      - cwd: web\n",
        "name: demo\nwindows:\n  - name: a\n    panes:\n      - cwd: ~/web\n",
    ] {
        assert!(load(ok).is_ok(), "{ok}: {:?}", load(ok).err());
    }
}

#[test]
fn imported_relative_directories_start_at_the_imported_file() {
    let t = "session_name: dev\nstart_directory: ./app\nwindows:\n  - window_name: a\n    start_directory: web\n";
    let i = import_str(t, Path::new("/home/u/proj/.tmuxp.yaml"), None).unwrap();
    assert_eq!(
        i.project.root.as_deref(),
        Some(Path::new("/home/u/proj/app"))
    );
    // Below the root, directories stay relative to it.
    assert_eq!(i.project.windows[0].cwd.as_deref(), Some(Path::new("web")));
    assert!(
        i.notes.iter().any(|n| n.contains("/home/u/proj/app")),
        "{:?}",
        i.notes
    );
    let t = "name: dev\nwindows:\n  - a:\n      root: ../web\n      panes:\n        - ls\n";
    let i = import_str(t, Path::new("/home/u/proj/dev.yml"), None).unwrap();
    assert_eq!(
        i.project.windows[0].cwd.as_deref(),
        Some(Path::new("/home/u/proj/../web"))
    );
}
