//! Persistence and failure: rediscovery without a registry file, stale native ids after a server
//! restart, concurrent creators, a corrupt registry file, dead panes, a server killed mid-test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use termloom_core::{
    Error, Key, Loom, Registry, ResizeSpec, SendOpts, SessionSpec, SplitSpec, Target, Terminal,
};
use termloom_tests::{TmuxServer, wait_until};

use crate::tmux_backend::{drain_sink, loom, new_session, raw_sink, tail, wait_line};

#[tokio::test]
async fn a_fresh_terminal_rediscovers_every_id_and_name_without_the_registry_file() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    let mut made = BTreeMap::new();
    for (ws, name) in [("w1", "alpha"), ("w1", "beta gamma"), ("w2 x", "δ;\"q\"")] {
        let info = l
            .create_session(&SessionSpec {
                name: Some(name.into()),
                workspace: Some(ws.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        made.insert(info.id, info.name.clone());
    }
    // A pane made by hand: tagged by the first listing, with a stable id from then on.
    srv.tmux(&["new-window", "-d", "-t", "=w1:", "/bin/bash", "--norc"]);
    let first = l.list_sessions().await.unwrap();
    assert_eq!(first.len(), 4);
    let by_hand = first
        .iter()
        .find(|s| !made.contains_key(&s.id))
        .unwrap()
        .clone();
    assert!(!by_hand.managed);
    assert_eq!(by_hand.name, by_hand.path());
    made.insert(by_hand.id, by_hand.name.clone());
    let again = l.list_sessions().await.unwrap();
    assert!(again.iter().any(|s| s.id == by_hand.id), "the id is stable");

    std::fs::remove_file(l.registry().unwrap().path()).unwrap();
    // A new process, in effect: a new terminal, a new registry handle, no file.
    let l2 = Loom::new(
        Arc::new(srv.terminal()),
        Some(Registry::open(&srv.state).unwrap()),
    );
    let found: BTreeMap<_, _> = l2
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    assert_eq!(found, made);
    // The registry is rebuilt from the panes.
    let entries = l2.persistent_sessions().unwrap();
    let rebuilt: BTreeMap<_, _> = entries.into_iter().map(|e| (e.id, e.name)).collect();
    assert_eq!(rebuilt, made);
    for (id, name) in &made {
        assert_eq!(&l2.resolve(&(*id).into()).await.unwrap().name, name);
    }
}

#[tokio::test]
async fn after_a_server_restart_old_ids_and_handles_never_reach_the_new_panes() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    let t = l.terminal().clone();
    let spec = |name: &str| SessionSpec {
        name: Some(name.into()),
        workspace: Some("w".into()),
        ..Default::default()
    };
    let a = l.create_session(&spec("a")).await.unwrap();
    let b = l.create_session(&spec("b")).await.unwrap();
    let handle_a = l.session(&a.id.into()).await.unwrap();
    l.list_sessions().await.unwrap();

    srv.kill_server();
    wait_until("the server to go", || async {
        t.list_sessions().await.ok()?.is_empty().then_some(())
    })
    .await;

    // A new server whose panes reuse %0 and %1.
    let c = l.create_session(&spec("c")).await.unwrap();
    let d = l.create_session(&spec("d")).await.unwrap();
    assert_eq!(
        (&c.native, &d.native),
        (&a.native, &b.native),
        "tmux reused the pane ids"
    );
    let sc = t.open(&c).await.unwrap();
    let sink = raw_sink(&srv, sc.as_ref(), "restart").await;

    for old in [&a, &b] {
        match t.open(old).await {
            Err(Error::StaleNativeId { id, native }) => {
                assert_eq!(id, old.id.to_string());
                assert_eq!(native, old.native.to_string());
            }
            Err(Error::SessionDead { .. }) => {}
            Err(e) => panic!("open {}: unexpected {e}", old.name),
            Ok(_) => panic!("opened {} through a reused native id", old.name),
        }
        for target in [Target::Id(old.id), Target::Name(old.name.clone())] {
            match l.resolve(&target).await {
                Err(Error::SessionDead { id, .. }) => assert_eq!(id, old.id.to_string()),
                other => panic!("{target}: expected SessionDead, got {other:?}"),
            }
            assert!(matches!(
                l.session(&target).await,
                Err(Error::SessionDead { .. })
            ));
        }
        assert!(l.entry(old.id).unwrap().unwrap().dead);
    }

    // The handle from before refuses everything rather than acting on the new %0.
    let stale = |r: Result<(), Error>, what: &str| match r {
        Err(Error::StaleNativeId { .. } | Error::SessionDead { .. }) => {}
        other => panic!("{what} through a stale handle: {other:?}"),
    };
    stale(
        handle_a.send_text("LEAK", SendOpts { enter: true }).await,
        "send_text",
    );
    stale(
        handle_a
            .send_text("LEAK\nLEAK", SendOpts { enter: false })
            .await,
        "paste",
    );
    stale(handle_a.send_keys(&[Key::ctrl('c')]).await, "send_keys");
    stale(handle_a.rename("LEAK").await, "rename");
    stale(handle_a.focus().await, "focus");
    stale(
        handle_a
            .resize(&ResizeSpec {
                zoom: Some(true),
                ..Default::default()
            })
            .await,
        "resize",
    );
    stale(handle_a.set_managed(false).await, "set_managed");
    stale(handle_a.subscribe().await.map(|_| ()), "subscribe");
    stale(handle_a.capture(&tail(5)).await.map(|_| ()), "capture");
    stale(handle_a.info().await.map(|_| ()), "info");
    stale(
        handle_a
            .split(&SplitSpec {
                direction: termloom_core::Direction::Vertical,
                percent: None,
                name: None,
                before: false,
                cwd: None,
                command: None,
            })
            .await
            .map(|_| ()),
        "split",
    );
    stale(handle_a.close().await, "close");

    // The new pane received nothing and is untouched.
    let got = drain_sink(sc.as_ref(), &sink, 0, "<<only this>>").await;
    assert_eq!(String::from_utf8_lossy(&got), "");
    let now = t.list_sessions().await.unwrap();
    assert_eq!(now.len(), 2, "{now:#?}");
    let c_now = now.iter().find(|s| s.id == c.id).unwrap();
    assert_eq!(c_now.name, "c");
    assert!(c_now.managed);
    assert_eq!(srv.tmux(&["list-panes", "-a"]).lines().count(), 2);
    assert_eq!(
        crate::tmux_backend::display(&srv, &c.native.id, "#{window_zoomed_flag}"),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_creators_at_once_lose_nothing() {
    let srv = TmuxServer::start();
    let mut tasks = Vec::new();
    for k in 0..2 {
        // Separate terminal, registry handle and loom per task, as two processes would have.
        let l = Loom::new(
            Arc::new(srv.terminal()),
            Some(Registry::open(&srv.state).unwrap()),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let info = l
                    .create_session(&SessionSpec {
                        name: Some(format!("t{k}-{i}")),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("t{k}-{i}: {e}"));
                ids.push(info.id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    let reg = Registry::open(&srv.state).unwrap().load().unwrap();
    assert_eq!(reg.sessions.len(), 100);
    assert!(ids.iter().all(|id| reg.sessions.contains_key(id)));
    let live = srv.terminal().list_sessions().await.unwrap();
    assert_eq!(live.len(), 100);
    assert!(
        live.iter()
            .all(|s| s.workspace == termloom_tmux::DEFAULT_WORKSPACE)
    );
    let names: std::collections::BTreeSet<_> = live.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), 100);
}

#[tokio::test]
async fn a_corrupt_registry_file_is_moved_aside_and_the_listing_still_works() {
    for (label, garbage) in [
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        ("truncated", b"{\"version\":1,\"sessions\":{\"3f2a".to_vec()),
        ("wrong shape", b"[1,2,3]".to_vec()),
    ] {
        let srv = TmuxServer::start();
        let l = loom(&srv);
        let a = l
            .create_session(&SessionSpec {
                name: Some("a".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let path = l.registry().unwrap().path().to_path_buf();
        std::fs::write(&path, &garbage).unwrap();
        let listed = l
            .list_sessions()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(listed.len(), 1, "{label}");
        assert_eq!(listed[0].id, a.id);
        let aside: Vec<_> = std::fs::read_dir(&srv.state)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("registry.json.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{label}: the corrupt file is kept");
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), garbage, "{label}");
        // The registry is rebuilt and readable again.
        let data = Registry::open(&srv.state).unwrap().load().unwrap();
        assert!(data.sessions.contains_key(&a.id), "{label}");
        assert_eq!(l.resolve(&"a".parse().unwrap()).await.unwrap().id, a.id);
    }
}

#[tokio::test]
async fn dead_panes_are_listed_dead_and_refuse_input() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, s) = new_session(&t, "w", "mortal").await;
    // Another pane keeps the server up when the dead one is closed.
    let (keeper, _) = new_session(&t, "w", "keeper").await;
    srv.tmux(&[
        "set-option",
        "-p",
        "-t",
        &a.native.id,
        "remain-on-exit",
        "on",
    ]);
    s.send_text("echo last-$((1)); exit 3", SendOpts::default())
        .await
        .unwrap();
    let dead = wait_until("the pane to die", || async {
        let all = t.list_sessions().await.ok()?;
        all.into_iter().find(|x| x.id == a.id && x.dead)
    })
    .await;
    assert_eq!(dead.name, "mortal");
    // Its output can still be read.
    wait_line(s.as_ref(), "last-1").await;
    // Input is refused with an error that says why, instead of vanishing.
    for r in [
        s.send_text("hello", SendOpts::default()).await,
        s.send_text("multi\nline", SendOpts { enter: false }).await,
        s.send_keys(&[Key::ctrl('c')]).await,
    ] {
        match r {
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("dead") || m.contains("exited"), "{m}");
                assert!(m.contains(&a.id.to_string()), "{m}");
                assert!(e.is_user_error(), "{e:?}");
            }
            Ok(()) => panic!("sent to a dead pane"),
        }
    }
    // It can still be closed.
    s.close().await.unwrap();
    let left = t.list_sessions().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, keeper.id);
}

#[tokio::test]
async fn a_killed_server_gives_clear_errors_without_hanging() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    let t = l.terminal().clone();
    let a = l
        .create_session(&SessionSpec {
            name: Some("a".into()),
            workspace: Some("w".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = t.open(&a).await.unwrap();
    srv.kill_server();
    // Listings are empty, not errors: there is simply nothing running.
    wait_until("an empty listing", || async {
        no_hang("list_sessions", t.list_sessions())
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(t.list_workspaces().await.unwrap().is_empty());
    assert!(t.list_windows(None).await.unwrap().is_empty());
    // Everything aimed at a session says it is gone.
    let r = no_hang("send_text", s.send_text("x", SendOpts::default())).await;
    assert!(matches!(r, Err(Error::SessionDead { .. })), "{r:?}");
    let r = no_hang("capture", s.capture(&tail(5))).await;
    assert!(matches!(r, Err(Error::SessionDead { .. })), "{r:?}");
    assert!(matches!(t.open(&a).await, Err(Error::SessionDead { .. })));
    assert!(matches!(
        l.resolve(&a.id.into()).await,
        Err(Error::SessionDead { .. })
    ));
    assert!(matches!(
        t.resolve(&"a".parse().unwrap()).await,
        Err(Error::SessionNotFound { .. })
    ));
    // Workspace operations name the workspace.
    assert!(matches!(
        t.destroy_workspace("w").await,
        Err(Error::WorkspaceNotFound(_))
    ));
    assert!(matches!(
        t.scrollback("w", None).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    assert!(matches!(
        t.list_windows(Some("w")).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    // And the next create starts a server again.
    let b = l
        .create_session(&SessionSpec {
            name: Some("b".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(t.list_sessions().await.unwrap()[0].id, b.id);
}

/// Awaits `f`, failing the test if it takes longer than 15 s.
async fn no_hang<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(15), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} hung"),
    }
}
