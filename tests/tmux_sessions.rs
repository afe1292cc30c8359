//! tmux sessions: listing fields, create (new workspace, existing workspace, existing window),
//! close, rename, focus, resize, split.

use std::path::PathBuf;

use termloom_core::{
    Direction, Error, ResizeSpec, SendOpts, SessionSpec, SplitSpec, Target, Terminal,
};
use termloom_tests::TmuxServer;

use crate::tmux_backend::{display, geometry, new_session, wait_command, wait_line};

fn canon(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).expect("canonicalize")
}

#[tokio::test]
async fn list_sessions_reports_every_field() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let cwd = srv.dir().join("work #dir ##");
    std::fs::create_dir_all(&cwd).unwrap();
    let created = t
        .create_session(&SessionSpec {
            name: Some("alpha".into()),
            workspace: Some("ws one".into()),
            cwd: Some(cwd.clone()),
            env: vec![("TL_FOO".into(), "bar baz;".into())],
            command: Some("echo \"E=$TL_FOO\"; sleep 300".into()),
            size: Some((100, 30)),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = t.open(&created).await.unwrap();
    wait_line(s.as_ref(), "E=bar baz;").await;
    wait_command(&srv, &created.native.id, "sleep").await;

    let all = t.list_sessions().await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    let i = &all[0];
    assert_eq!(i.id, created.id);
    assert_eq!(i.name, "alpha");
    assert_eq!(i.workspace, "ws one");
    assert_eq!(i.window_index, 0);
    assert_eq!(
        i.window_name, "alpha",
        "the window is named after the session"
    );
    assert!(i.window_active);
    assert_eq!(i.pane_index, 0);
    assert_eq!((i.width, i.height), (100, 30));
    assert_eq!(i.title, "alpha");
    assert_eq!(i.command, "sleep");
    assert_eq!(
        canon(std::path::Path::new(i.cwd.as_deref().unwrap())),
        canon(&cwd)
    );
    assert!(i.active);
    assert!(!i.dead);
    assert!(i.managed);
    assert!(i.native.id.starts_with('%'), "{}", i.native);
    assert_eq!(i.terminal, t.key());
    // The pid is the pane's shell: a live bash whose child is the sleep.
    let pid = i.pid.expect("pane pid");
    assert_eq!(display(&srv, &i.native.id, "#{pane_pid}"), pid.to_string());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "bash");
    // The ids tmux reports agree with the listing.
    assert_eq!(
        display(&srv, &i.native.id, "#{session_id} #{window_id}"),
        format!(
            "{} {}",
            i.workspace_id.as_deref().unwrap(),
            i.window_id.as_deref().unwrap()
        )
    );
    // The UUID and name live on the pane.
    assert_eq!(
        display(&srv, &i.native.id, "#{@termloom_id}"),
        i.id.to_string()
    );
    assert_eq!(display(&srv, &i.native.id, "#{@termloom_name}"), "alpha");
}

#[tokio::test]
async fn create_session_in_an_existing_workspace_adds_a_window() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, _) = new_session(&t, "w", "first").await;
    let b = t
        .create_session(&SessionSpec {
            name: Some("second".into()),
            workspace: Some("w".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let c = t
        .create_session(&SessionSpec {
            name: Some("third".into()),
            workspace: Some("w".into()),
            window: Some("editor".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(a.workspace_id, b.workspace_id);
    assert_eq!((a.window_index, b.window_index, c.window_index), (0, 1, 2));
    assert_eq!(c.window_name, "editor");
    assert_eq!(b.pane_index, 0);
    let wins = t.list_windows(Some("w")).await.unwrap();
    assert_eq!(wins.len(), 3);
    assert_eq!(t.list_workspaces().await.unwrap().len(), 1);
    // New windows are created in the background: the first stays active.
    let active: Vec<u32> = wins.iter().filter(|w| w.active).map(|w| w.index).collect();
    assert_eq!(active, [0]);
}

#[tokio::test]
async fn create_session_in_an_existing_window_splits_it() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let a = t
        .create_session(&SessionSpec {
            name: Some("left".into()),
            workspace: Some("w".into()),
            window: Some("ed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = srv.dir().join("b dir");
    std::fs::create_dir_all(&dir).unwrap();
    let b = t
        .create_session(&SessionSpec {
            name: Some("right".into()),
            workspace: Some("w".into()),
            window: Some("ed".into()),
            cwd: Some(dir.clone()),
            env: vec![("TL_X".into(), "x-value".into())],
            command: Some("echo \"in=$PWD $TL_X\"".into()),
            size: None,
        })
        .await
        .unwrap();
    assert_eq!(a.window_id, b.window_id, "same window");
    assert_eq!((a.pane_index, b.pane_index), (0, 1));
    assert_eq!(t.list_windows(Some("w")).await.unwrap().len(), 1);
    let sb = t.open(&b).await.unwrap();
    wait_line(
        sb.as_ref(),
        &format!("in={} x-value", canon(&dir).display()),
    )
    .await;
    // The command ran in the new pane only.
    let sa = t.open(&a).await.unwrap();
    let text = sa
        .capture(&crate::tmux_backend::everything())
        .await
        .unwrap()
        .text;
    assert!(!text.contains("x-value"), "{text}");
}

#[tokio::test]
async fn close_kills_the_pane_and_the_handle_then_fails() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (_keep, _) = new_session(&t, "w", "keep").await;
    let (gone, s) = new_session(&t, "w", "gone").await;
    s.close().await.unwrap();
    let all = t.list_sessions().await.unwrap();
    assert!(all.iter().all(|x| x.id != gone.id), "{all:#?}");
    assert!(
        !srv.tmux(&["list-panes", "-a", "-F", "#{pane_id}"])
            .contains(&gone.native.id)
    );
    match t.open(&gone).await {
        Err(Error::SessionDead { id, .. }) => assert_eq!(id, gone.id.to_string()),
        other => panic!("expected SessionDead, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        s.send_text("x", SendOpts::default()).await,
        Err(Error::SessionDead { .. })
    ));
    assert!(matches!(s.close().await, Err(Error::SessionDead { .. })));
    assert!(matches!(
        t.session(&Target::Name("gone".into())).await,
        Err(Error::SessionNotFound { .. })
    ));
}

#[tokio::test]
async fn rename_sets_the_name_and_the_pane_title() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, s) = new_session(&t, "w", "before").await;
    let (_b, _) = new_session(&t, "w", "taken").await;
    s.rename("after it's \"renamed\"").await.unwrap();
    let i = t
        .resolve(&Target::Name("after it's \"renamed\"".into()))
        .await
        .unwrap();
    assert_eq!(i.id, a.id);
    assert_eq!(i.title, "after it's \"renamed\"");
    assert_eq!(s.info().await.unwrap().name, "after it's \"renamed\"");
    assert!(matches!(
        t.resolve(&Target::Name("before".into())).await,
        Err(Error::SessionNotFound { .. })
    ));
    // Names stay unique.
    match s.rename("taken").await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("taken"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // Renaming to its own name is fine.
    s.rename("after it's \"renamed\"").await.unwrap();
    assert!(matches!(s.rename("").await, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn focus_selects_the_window_and_the_pane() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, _) = new_session(&t, "w", "a").await;
    let (b, sb) = new_session(&t, "w", "b").await;
    let c = sb
        .split(&SplitSpec {
            direction: Direction::Horizontal,
            percent: None,
            name: Some("c".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    // Splits are made in the background: b stays the active pane, window 0 the active window.
    let find =
        |all: &[termloom_core::SessionInfo], id| all.iter().find(|x| x.id == id).cloned().unwrap();
    let all = t.list_sessions().await.unwrap();
    assert!(find(&all, a.id).window_active);
    assert!(!find(&all, c.id).window_active && !find(&all, c.id).active);
    assert!(find(&all, b.id).active);

    t.open(&c).await.unwrap().focus().await.unwrap();
    let all = t.list_sessions().await.unwrap();
    let ci = find(&all, c.id);
    assert!(ci.active && ci.window_active, "{ci:#?}");
    assert!(!find(&all, b.id).active);
    assert!(!find(&all, a.id).window_active);
    assert_eq!(display(&srv, "=w:", "#{pane_id}"), c.native.id);
}

#[tokio::test]
async fn resize_sets_width_height_and_zoom() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, s) = new_session(&t, "w", "main").await;
    let right = s
        .split(&SplitSpec {
            direction: Direction::Horizontal,
            percent: None,
            name: Some("right".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    let below = s
        .split(&SplitSpec {
            direction: Direction::Vertical,
            percent: None,
            name: Some("below".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    s.resize(&ResizeSpec {
        width: Some(30),
        height: Some(8),
        zoom: None,
    })
    .await
    .unwrap();
    let g = geometry(&srv, &a.native.id);
    assert_eq!((g.width, g.height), (30, 8));
    assert_eq!(geometry(&srv, &right.native.id).width, 80 - 30 - 1);
    assert_eq!(geometry(&srv, &below.native.id).height, 24 - 8 - 1);
    let i = s.info().await.unwrap();
    assert_eq!((i.width, i.height), (30, 8));

    s.resize(&ResizeSpec {
        zoom: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(display(&srv, &a.native.id, "#{window_zoomed_flag}"), "1");
    let g = geometry(&srv, &a.native.id);
    assert_eq!((g.width, g.height), (80, 24));
    // Zooming a zoomed pane leaves it zoomed (not a toggle).
    s.resize(&ResizeSpec {
        zoom: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(display(&srv, &a.native.id, "#{window_zoomed_flag}"), "1");
    // Zooming another pane of the zoomed window zooms that pane (tmux's -Z alone would only
    // unzoom the window), and zooming it out shows every pane again.
    let other = t.open(&below).await.unwrap();
    let zoom = |on| ResizeSpec {
        zoom: Some(on),
        ..Default::default()
    };
    other.resize(&zoom(true)).await.unwrap();
    assert_eq!(
        display(&srv, &below.native.id, "#{window_zoomed_flag}"),
        "1"
    );
    assert_eq!(geometry(&srv, &below.native.id).height, 24);
    assert_eq!(display(&srv, &below.native.id, "#{pane_active}"), "1");
    s.resize(&zoom(true)).await.unwrap();
    assert_eq!(geometry(&srv, &a.native.id).height, 24, "back to the first");
    other.resize(&zoom(false)).await.unwrap();
    assert_eq!(display(&srv, &a.native.id, "#{window_zoomed_flag}"), "0");
    s.resize(&zoom(true)).await.unwrap();
    s.resize(&ResizeSpec {
        zoom: Some(false),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(display(&srv, &a.native.id, "#{window_zoomed_flag}"), "0");
    assert_eq!(geometry(&srv, &a.native.id).width, 30);
    assert!(matches!(
        s.resize(&ResizeSpec::default()).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn split_places_sizes_names_and_starts_the_new_pane() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, s) = new_session(&t, "w", "origin").await;
    let dir = srv.dir().join("split #{host} dir");
    std::fs::create_dir_all(&dir).unwrap();
    let right = s
        .split(&SplitSpec {
            direction: Direction::Horizontal,
            percent: Some(30),
            name: Some("right 30".into()),
            before: false,
            cwd: Some(dir.clone()),
            command: Some("echo \"at=$PWD\"".into()),
        })
        .await
        .unwrap();
    let (go, gr) = (
        geometry(&srv, &a.native.id),
        geometry(&srv, &right.native.id),
    );
    assert!(gr.left > go.left && gr.top == go.top, "{go:?} {gr:?}");
    // 30% of the 80 columns the origin had (79 after the border), ±1 for rounding.
    assert!((23..=25).contains(&gr.width), "{gr:?}");
    assert_eq!(right.name, "right 30");
    assert_eq!(right.title, "right 30");
    assert_eq!(right.window_id, a.window_id);
    let sr = t.open(&right).await.unwrap();
    wait_line(sr.as_ref(), &format!("at={}", canon(&dir).display())).await;

    let below = s
        .split(&SplitSpec {
            direction: Direction::Vertical,
            percent: None,
            name: Some("below".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    let (go, gb) = (
        geometry(&srv, &a.native.id),
        geometry(&srv, &below.native.id),
    );
    assert!(gb.top > go.top && gb.left == go.left, "{go:?} {gb:?}");
    assert!(go.height.abs_diff(gb.height) <= 1, "{go:?} {gb:?}");

    let above = s
        .split(&SplitSpec {
            direction: Direction::Vertical,
            percent: None,
            name: Some("above".into()),
            before: true,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    let (go, ga) = (
        geometry(&srv, &a.native.id),
        geometry(&srv, &above.native.id),
    );
    assert!(ga.top < go.top && ga.left == go.left, "{go:?} {ga:?}");

    let left = s
        .split(&SplitSpec {
            direction: Direction::Horizontal,
            percent: None,
            name: None,
            before: true,
            cwd: None,
            command: None,
        })
        .await
        .unwrap();
    let (go, gl) = (
        geometry(&srv, &a.native.id),
        geometry(&srv, &left.native.id),
    );
    assert!(gl.left < go.left && gl.top == go.top, "{go:?} {gl:?}");
    // An unnamed session is named by its path.
    assert_eq!(left.name, left.path());
    // The origin stays the active pane.
    assert_eq!(display(&srv, &a.native.id, "#{pane_active}"), "1");
    assert_eq!(t.list_sessions().await.unwrap().len(), 5);
    // Names stay unique across splits too.
    assert!(matches!(
        s.split(&SplitSpec {
            direction: Direction::Vertical,
            percent: None,
            name: Some("below".into()),
            before: false,
            cwd: None,
            command: None,
        })
        .await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(srv.tmux(&["list-panes", "-a"]).lines().count(), 5);
}

#[tokio::test]
async fn listings_survive_newlines_and_separators_in_paths_and_window_names() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let dir = srv.dir().join("new\nline\u{1f}dir");
    std::fs::create_dir_all(&dir).unwrap();
    let a = t
        .create_session(&SessionSpec {
            name: Some("a".into()),
            workspace: Some("w".into()),
            cwd: Some(dir.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (b, _) = new_session(&t, "w", "b").await;
    // A window someone else made, with a newline and the field separator in its name.
    srv.tmux(&[
        "new-window",
        "-d",
        "-t",
        "=w:",
        "-n",
        "x\u{1f}y\nz",
        "/bin/bash",
        "--norc",
    ]);
    let all = t.list_sessions().await.unwrap();
    assert_eq!(all.len(), 3, "{all:#?}");
    let got_a = all.iter().find(|s| s.id == a.id).unwrap();
    assert_eq!(got_a.cwd.as_deref(), Some(canon(&dir).to_str().unwrap()));
    assert_eq!(got_a.name, "a");
    let got_b = all.iter().find(|s| s.id == b.id).unwrap();
    assert_eq!((got_b.name.as_str(), got_b.window_index), ("b", 1));
    let foreign = all.iter().find(|s| s.window_index == 2).unwrap();
    assert_eq!(foreign.window_name, "x?y\nz");
    assert_eq!(foreign.workspace, "w");
    let wins = t.list_windows(Some("w")).await.unwrap();
    let names: Vec<&str> = wins.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "x\u{1f}y\nz"]);
}
