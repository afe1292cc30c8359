//! tmux workspaces (tmux sessions), windows and scrollback.

use termloom_core::{
    Error, SendOpts, SessionSpec, Terminal, WindowRef, WindowSel, WindowSpec, WorkspaceSpec,
};
use termloom_tests::{TmuxServer, wait_until};

use crate::tmux_backend::{alive, display, new_session, wait_line};

fn win(ws: &str, sel: WindowSel) -> WindowRef {
    WindowRef {
        workspace: ws.into(),
        window: sel,
    }
}

#[tokio::test]
async fn workspaces_are_listed_created_and_destroyed() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    assert!(
        t.list_workspaces().await.unwrap().is_empty(),
        "no server yet"
    );
    let first = t
        .create_workspace(&WorkspaceSpec {
            name: "proj x".into(),
            window: Some("main".into()),
            session_name: Some("proj shell".into()),
            size: Some((120, 40)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.workspace, "proj x");
    assert_eq!(first.window_name, "main");
    assert_eq!(first.name, "proj shell");
    assert_eq!((first.width, first.height), (120, 40));
    let pwned = srv.dir().join("pwned-ws");
    let injection = format!("#(touch {}) #{{host}}", pwned.display());
    for name in [
        "it's \"quoted\"",
        "日本 ✓",
        "a;x;",
        "-dash",
        injection.as_str(),
    ] {
        let s = t
            .create_workspace(&WorkspaceSpec {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(s.workspace, name);
    }
    let all = t.list_workspaces().await.unwrap();
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(all.len(), 6, "{names:?}");
    for name in [
        "proj x",
        "it's \"quoted\"",
        "日本 ✓",
        "a;x;",
        "-dash",
        injection.as_str(),
    ] {
        assert!(names.contains(&name), "{name:?} in {names:?}");
    }
    let p = all.iter().find(|w| w.name == "proj x").unwrap();
    assert_eq!(Some(p.native.clone()), first.workspace_id);
    assert_eq!(p.windows, 1);
    assert!(!p.attached);
    assert!(p.created > 1_600_000_000, "{}", p.created);

    match t
        .create_workspace(&WorkspaceSpec {
            name: "proj x".into(),
            ..Default::default()
        })
        .await
    {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("proj x"), "{m}"),
        other => panic!("duplicate workspace: {other:?}"),
    }

    t.destroy_workspace("proj x").await.unwrap();
    t.destroy_workspace("-dash").await.unwrap();
    let names: Vec<String> = t
        .list_workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(!names.iter().any(|n| n == "proj x" || n == "-dash"));
    match t.destroy_workspace("proj x").await {
        Err(Error::WorkspaceNotFound(n)) => assert_eq!(n, "proj x"),
        other => panic!("{other:?}"),
    }
    // The name is text: tmux never expanded it as a format (which would run the command).
    assert!(!pwned.exists(), "a workspace name ran a shell command");
}

#[tokio::test]
async fn workspace_names_tmux_cannot_hold_are_refused() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    for bad in [
        "a.b",
        "a:b",
        "new\nline",
        "tab\there",
        "nul\0",
        "",
        "$x",
        "a$HOME",
        "back\\slash",
    ] {
        match t
            .create_workspace(&WorkspaceSpec {
                name: bad.into(),
                ..Default::default()
            })
            .await
        {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("workspace"), "{bad:?}: {m}"),
            other => panic!("{bad:?}: expected InvalidArgument, got {other:?}"),
        }
        // The same check applies when a session names its workspace.
        assert!(
            matches!(
                t.create_session(&SessionSpec {
                    workspace: Some(bad.into()),
                    ..Default::default()
                })
                .await,
                Err(Error::InvalidArgument(_))
            ),
            "{bad:?}"
        );
    }
    assert!(t.list_workspaces().await.unwrap().is_empty());
}

#[tokio::test]
async fn destroying_a_workspace_kills_its_processes() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, s) = new_session(&t, "doomed", "a").await;
    let (_keep, _) = new_session(&t, "kept", "k").await;
    let pidfile = srv.dir().join("child.pid");
    s.send_text(
        &format!("sh -c 'echo $$ > {}; exec sleep 1000'", pidfile.display()),
        SendOpts::default(),
    )
    .await
    .unwrap();
    let child: u32 = wait_until("the child pid", || async {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .await;
    let shell = a.pid.unwrap();
    assert!(alive(child) && alive(shell));
    t.destroy_workspace("doomed").await.unwrap();
    wait_until("the shell and its child to die", || async {
        (!alive(child) && !alive(shell)).then_some(())
    })
    .await;
    let left = t.list_sessions().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].workspace, "kept");
}

#[tokio::test]
async fn windows_are_listed_created_renamed_selected_and_killed() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (first, _) = new_session(&t, "w", "first").await;
    let dir = srv.dir().join("logs dir");
    std::fs::create_dir_all(&dir).unwrap();
    let logs = t
        .create_window(&WindowSpec {
            workspace: "w".into(),
            name: Some("logs".into()),
            session_name: Some("tailer".into()),
            cwd: Some(dir.clone()),
            command: Some("echo \"cwd=$PWD\"".into()),
            select: false,
        })
        .await
        .unwrap();
    assert_eq!(logs.name, "tailer");
    assert_eq!(logs.window_name, "logs");
    assert_eq!(logs.window_index, 1);
    let s = t.open(&logs).await.unwrap();
    wait_line(
        s.as_ref(),
        &format!("cwd={}", std::fs::canonicalize(&dir).unwrap().display()),
    )
    .await;

    let wins = t.list_windows(Some("w")).await.unwrap();
    assert_eq!(wins.len(), 2);
    assert_eq!((wins[0].index, wins[0].name.as_str()), (0, "first"));
    assert_eq!((wins[1].index, wins[1].name.as_str()), (1, "logs"));
    assert!(
        wins[0].active && !wins[1].active,
        "created in the background"
    );
    assert_eq!(Some(wins[1].native.clone()), logs.window_id);
    assert_eq!(wins[1].panes, 1);
    assert!(wins[1].layout.as_deref().is_some_and(|l| !l.is_empty()));
    assert_eq!(t.list_windows(None).await.unwrap().len(), 2);

    let selected = t
        .create_window(&WindowSpec {
            workspace: "w".into(),
            name: Some("front".into()),
            select: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(selected.window_active);

    t.select_window(&win("w", WindowSel::Name("logs".into())))
        .await
        .unwrap();
    assert_eq!(display(&srv, "=w:", "#{window_name}"), "logs");
    t.select_window(&win("w", WindowSel::Index(0)))
        .await
        .unwrap();
    assert_eq!(display(&srv, "=w:", "#{window_index}"), "0");

    // Names are exact: a prefix is no window.
    assert!(matches!(
        t.select_window(&win("w", WindowSel::Name("log".into())))
            .await,
        Err(Error::WindowNotFound(_))
    ));
    assert!(matches!(
        t.kill_window(&win("w", WindowSel::Index(9))).await,
        Err(Error::WindowNotFound(_))
    ));
    assert!(matches!(
        t.list_windows(Some("nope")).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    match t
        .create_window(&WindowSpec {
            workspace: "nope".into(),
            ..Default::default()
        })
        .await
    {
        Err(Error::WorkspaceNotFound(n)) => assert_eq!(n, "nope"),
        other => panic!("{other:?}"),
    }

    // Renames take printable names, a leading dash included, as text (never as a format).
    let pwned = srv.dir().join("pwned-win");
    let injection = format!("#(touch {}) #{{host}} ##", pwned.display());
    for name in ["-d", "it's \"x\" y;", injection.as_str(), "日本"] {
        t.rename_window(&win("w", WindowSel::Index(1)), name)
            .await
            .unwrap_or_else(|e| panic!("rename to {name:?}: {e}"));
        assert_eq!(display(&srv, "=w:1", "#{window_name}"), name);
        assert_eq!(t.resolve(&logs.id.into()).await.unwrap().window_name, name);
    }
    // tmux's rename-window would store these escaped (`\$y`, `\\`): refused, not mangled.
    for name in ["$y", "back\\slash", "new\nline"] {
        assert!(
            matches!(
                t.rename_window(&win("w", WindowSel::Index(1)), name).await,
                Err(Error::InvalidArgument(_))
            ),
            "{name:?}"
        );
    }
    assert_eq!(display(&srv, "=w:1", "#{window_name}"), "日本");
    // A new window takes them as they are.
    let odd = t
        .create_window(&WindowSpec {
            workspace: "w".into(),
            name: Some(format!("$y back\\slash {injection}")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(odd.window_name, format!("$y back\\slash {injection}"));
    t.kill_window(&win("w", WindowSel::Index(odd.window_index)))
        .await
        .unwrap();
    // termloom gives no window a name another window of its workspace has, nor one of digits
    // only (targets would read it as an index)...
    for (name, why) in [
        ("日本", "already"),
        ("0", "only digits"),
        ("12", "only digits"),
    ] {
        match t.rename_window(&win("w", WindowSel::Index(2)), name).await {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{name}: {m}"),
            other => panic!("{name}: {other:?}"),
        }
        match t
            .create_window(&WindowSpec {
                workspace: "w".into(),
                name: Some(name.into()),
                ..Default::default()
            })
            .await
        {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{name}: {m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // ...renaming a window to its own name is no clash...
    t.rename_window(&win("w", WindowSel::Index(1)), "日本")
        .await
        .unwrap();
    assert_eq!(t.list_windows(Some("w")).await.unwrap().len(), 3);
    // ...but a person can: two windows of the same name make the name ambiguous.
    srv.tmux(&["rename-window", "-t", "=w:2", "日本"]);
    match t
        .kill_window(&win("w", WindowSel::Name("日本".into())))
        .await
    {
        Err(Error::AmbiguousTarget { candidates, .. }) => assert_eq!(candidates.len(), 2),
        other => panic!("{other:?}"),
    }

    t.kill_window(&win("w", WindowSel::Index(1))).await.unwrap();
    let wins = t.list_windows(Some("w")).await.unwrap();
    assert_eq!(
        wins.iter().map(|w| w.index).collect::<Vec<_>>(),
        [0, 2],
        "{wins:#?}"
    );
    let ids: Vec<_> = t
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(ids.contains(&first.id) && !ids.contains(&logs.id));
    assert!(!pwned.exists(), "a window name ran a shell command");
}

#[tokio::test]
async fn scrollback_defaults_to_50000_and_a_set_applies_to_new_panes() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, _) = new_session(&t, "w", "a").await;
    assert_eq!(t.scrollback("w", None).await.unwrap(), 50_000);
    assert_eq!(display(&srv, &a.native.id, "#{history_limit}"), "50000");
    // The global default is left alone.
    assert_eq!(srv.tmux(&["show", "-gv", "history-limit"]).trim(), "2000");

    assert_eq!(t.scrollback("w", Some(1234)).await.unwrap(), 1234);
    assert_eq!(t.scrollback("w", None).await.unwrap(), 1234);
    // tmux reads history-limit when it creates a pane: the existing pane keeps its size, new panes
    // (new windows, splits) get the new one.
    assert_eq!(display(&srv, &a.native.id, "#{history_limit}"), "50000");
    let (b, sb) = new_session(&t, "w", "b").await;
    assert_eq!(display(&srv, &b.native.id, "#{history_limit}"), "1234");
    let c = sb
        .split(&termloom_core::SplitSpec {
            direction: termloom_core::Direction::Vertical,
            percent: None,
            name: None,
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    assert_eq!(display(&srv, &c.native.id, "#{history_limit}"), "1234");

    // Another workspace is not affected, and a workspace can be created with its own size.
    let (d, _) = new_session(&t, "other", "d").await;
    assert_eq!(display(&srv, &d.native.id, "#{history_limit}"), "50000");
    let e = t
        .create_workspace(&WorkspaceSpec {
            name: "small".into(),
            history_limit: Some(777),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(display(&srv, &e.native.id, "#{history_limit}"), "777");
    assert_eq!(t.scrollback("small", None).await.unwrap(), 777);
    assert_eq!(srv.tmux(&["show", "-gv", "history-limit"]).trim(), "2000");

    assert!(matches!(
        t.scrollback("w", Some(0)).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        t.scrollback("nope", None).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    assert!(matches!(
        t.scrollback("nope", Some(10)).await,
        Err(Error::WorkspaceNotFound(_))
    ));
}

#[tokio::test]
async fn attached_means_someone_sees_the_workspace_not_termloom_itself() {
    let srv = TmuxServer::start();
    let t = termloom_tmux::TmuxTerminal::new(termloom_tmux::TmuxOptions {
        control: true,
        ..srv.options()
    });
    for ws in ["seen", "unseen"] {
        t.create_workspace(&WorkspaceSpec {
            name: ws.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // termloom's own control clients: its command connection and an output client per watched
    // workspace (here both workspaces are watched).
    for ws in ["seen", "unseen"] {
        let s = t
            .create_session(&SessionSpec {
                workspace: Some(ws.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let _stream = t.open(&s).await.unwrap().subscribe().await.unwrap();
    }
    let attached = |all: Vec<termloom_core::WorkspaceInfo>| {
        let mut v: Vec<(String, bool)> = all.into_iter().map(|w| (w.name, w.attached)).collect();
        v.sort();
        v
    };
    let clients = srv.tmux(&["list-clients", "-F", "#{session_name} #{client_flags}"]);
    assert!(
        clients
            .lines()
            .filter(|l| l.contains("control-mode"))
            .count()
            >= 3,
        "{clients}"
    );
    assert_eq!(
        attached(t.list_workspaces().await.unwrap()),
        [("seen".to_string(), false), ("unseen".to_string(), false)],
        "only termloom's connections are attached: {clients}"
    );
    // A control client that shows the session (as iTerm2's `tmux -CC` does) counts.
    let mut viewer = std::process::Command::new("tmux")
        .arg("-S")
        .arg(&srv.socket)
        .args(["-C", "attach-session", "-t", "=seen"])
        .envs(srv.env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("a viewer");
    wait_until("the viewer attached", || async {
        let all = attached(t.list_workspaces().await.unwrap());
        (all == [("seen".to_string(), true), ("unseen".to_string(), false)]).then_some(())
    })
    .await;
    drop(viewer.stdin.take());
    let _ = viewer.wait();
    wait_until("the viewer gone", || async {
        let all = attached(t.list_workspaces().await.unwrap());
        all.iter().all(|(_, a)| !a).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_server_with_no_sessions_lists_no_workspaces() {
    // A server kept alive with no session (`exit-empty off`, or the moment after the last
    // session went): nothing to list, in either mode, and no error.
    let srv = TmuxServer::start();
    for control in [false, true] {
        let t = termloom_tmux::TmuxTerminal::new(termloom_tmux::TmuxOptions {
            control,
            ..srv.options()
        });
        t.create_workspace(&WorkspaceSpec {
            name: "only".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        srv.tmux(&["set-option", "-g", "exit-empty", "off"]);
        t.destroy_workspace("only").await.unwrap();
        assert_eq!(
            t.list_workspaces().await.unwrap(),
            Vec::new(),
            "control={control}"
        );
    }
}
