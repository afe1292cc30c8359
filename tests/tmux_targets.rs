//! Names and targets against real tmux: hostile names round-trip, names are exact, ambiguity is an
//! error that lists the candidates, UUID prefixes work.

use termloom_core::{Error, SendOpts, SessionSpec, Target, Terminal, WindowSel};
use termloom_tests::{TmuxServer, wait_until};

use crate::tmux_backend::{display, everything, loom, new_session, wait_line, wait_prompt};

const HOSTILE_NAMES: &[&str] = &[
    "with space",
    "it's \"quoted\"",
    "$HOME",
    "semi;",
    ";",
    "\\;",
    "new\nline",
    "tab\tname",
    "unit\u{1f}sep",
    "日本 ✓ 🎉",
    "a.b c",
    "-dash",
    "%41 100%",
    "#{pane_id} #(touch pwned-by-name) ##",
    "  padded  ",
];

/// A session named `name` in workspace `w`.
fn named_in_w(name: &str) -> SessionSpec {
    SessionSpec {
        name: Some(name.to_string()),
        workspace: Some("w".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn hostile_session_names_round_trip() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let mut made = Vec::new();
    for name in HOSTILE_NAMES {
        let info = t
            .create_session(&named_in_w(name))
            .await
            .unwrap_or_else(|e| panic!("create {name:?}: {e}"));
        assert_eq!(info.name, *name);
        made.push(info);
    }
    // A name the target grammar would read as a path or another pane's id is refused.
    for name in ["a:b.c", "tmux:%0"] {
        let e = t.create_session(&named_in_w(name)).await.unwrap_err();
        assert!(e.to_string().contains("may not contain ':'"), "{name}: {e}");
    }
    let all = t.list_sessions().await.unwrap();
    assert_eq!(
        all.len(),
        HOSTILE_NAMES.len(),
        "every pane is listed: {all:#?}"
    );
    for (name, info) in HOSTILE_NAMES.iter().zip(&made) {
        let listed = all.iter().find(|s| s.id == info.id).unwrap();
        assert_eq!(listed.name, *name);
        // The title carries the name; control characters are shown escaped (tmux refuses them).
        let shown: String = name
            .replace('\n', "\\n")
            .replace('\t', "\\t")
            .replace('\u{1f}', "\\037");
        assert_eq!(listed.title, shown, "title of {name:?}");
        assert_eq!(listed.window_name, shown, "window of {name:?}");
        // Resolved by name, through every spelling of a name target.
        assert_eq!(
            t.resolve(&Target::Name(name.to_string())).await.unwrap().id,
            info.id
        );
        let parsed: Target = format!("name:{name}").parse().unwrap();
        assert_eq!(t.resolve(&parsed).await.unwrap().id, info.id, "{name:?}");
        // The window is found by its shown name.
        let path = Target::Path {
            workspace: "w".into(),
            window: Some(WindowSel::Name(shown.clone())),
            pane: None,
        };
        assert_eq!(t.resolve(&path).await.unwrap().id, info.id, "{name:?}");
    }
    // And the names are usable to send to the right pane.
    let s = t.session(&Target::Name("semi;".into())).await.unwrap();
    wait_prompt(s.as_ref()).await;
    s.send_text("echo \"to-$((6*7))\"", SendOpts::default())
        .await
        .unwrap();
    wait_line(s.as_ref(), "to-42").await;
    for info in &made {
        if info.name != "semi;" {
            let other = t.open(info).await.unwrap();
            let text = other.capture(&everything()).await.unwrap().text;
            assert!(!text.contains("to-42"), "{:?} got it: {text}", info.name);
        }
    }
    // A name is never expanded as a tmux format (which would run the command in `#(…)`).
    assert!(!srv.home.join("pwned-by-name").exists());
}

#[tokio::test]
async fn hostile_workspace_names_round_trip_through_targets() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    for ws in [
        "my ws",
        "it's \"q\"",
        "日本 ✓",
        "x;y;",
        "#{host} #(id)",
        "b",
    ] {
        let (info, _) = new_session(&t, ws, &format!("in {ws}")).await;
        assert_eq!(info.workspace, ws);
        let path: Target = format!("{ws}:").parse().unwrap();
        assert_eq!(t.resolve(&path).await.unwrap().id, info.id, "{ws:?}");
        let path: Target = format!("{ws}:0.0").parse().unwrap();
        assert_eq!(t.resolve(&path).await.unwrap().id, info.id, "{ws:?}");
        assert_eq!(t.list_windows(Some(ws)).await.unwrap().len(), 1);
        assert_eq!(t.scrollback(ws, None).await.unwrap(), 50_000);
    }
}

#[tokio::test]
async fn a_target_b_never_reaches_a_window_named_bash() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    // A workspace "other" whose windows are named bash and bashful, and a workspace "bash".
    let bash = t
        .create_session(&SessionSpec {
            workspace: Some("other".into()),
            window: Some("bash".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (bashful, _) = new_session(&t, "other", "bashful").await;
    let (bash_ws, _) = new_session(&t, "bash", "in-bash-ws").await;
    // Workspace "b" does not exist yet: nothing named "b" may be reached.
    for target in ["b", "ba", "bas", "b:", "b:0", "b:bash"] {
        match t.resolve(&target.parse().unwrap()).await {
            Err(Error::SessionNotFound { target: named }) => assert_eq!(named, target),
            other => panic!("{target}: {other:?}"),
        }
    }
    for ws in ["b", "ba"] {
        assert!(
            matches!(
                t.list_windows(Some(ws)).await,
                Err(Error::WorkspaceNotFound(_))
            ),
            "{ws}"
        );
        assert!(
            matches!(
                t.scrollback(ws, None).await,
                Err(Error::WorkspaceNotFound(_))
            ),
            "{ws}"
        );
        assert!(
            matches!(
                t.scrollback(ws, Some(5)).await,
                Err(Error::WorkspaceNotFound(_))
            ),
            "{ws}"
        );
        assert!(
            matches!(
                t.destroy_workspace(ws).await,
                Err(Error::WorkspaceNotFound(_))
            ),
            "{ws}"
        );
        assert!(matches!(
            t.select_window(&termloom_core::WindowRef {
                workspace: ws.into(),
                window: WindowSel::Name("bash".into()),
            })
            .await,
            Err(Error::WorkspaceNotFound(_))
        ));
    }
    assert_eq!(display(&srv, "=bash:", "#{history_limit}"), "50000");
    assert_eq!(
        t.list_sessions().await.unwrap().len(),
        3,
        "nothing was destroyed"
    );

    // Creating in workspace "b" makes a new workspace; it does not join "bash".
    let b = t
        .create_session(&SessionSpec {
            workspace: Some("b".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(b.workspace, "b");
    assert_ne!(b.workspace_id, bash_ws.workspace_id);
    for target in ["b", "b:", "b:0", "b:0.0"] {
        assert_eq!(
            t.resolve(&target.parse().unwrap()).await.unwrap().id,
            b.id,
            "{target}"
        );
    }
    assert_eq!(
        t.resolve(&"other:bash".parse().unwrap()).await.unwrap().id,
        bash.id
    );
    assert_eq!(
        t.resolve(&"other:bashful".parse().unwrap())
            .await
            .unwrap()
            .id,
        bashful.id
    );
    // Keys sent to "b" land in b.
    let s = t.session(&"b".parse().unwrap()).await.unwrap();
    wait_prompt(s.as_ref()).await;
    s.send_text("echo \"b-$((1))\"", SendOpts::default())
        .await
        .unwrap();
    wait_line(s.as_ref(), "b-1").await;
    for other in [&bash, &bashful, &bash_ws] {
        let text = t
            .open(other)
            .await
            .unwrap()
            .capture(&everything())
            .await
            .unwrap()
            .text;
        assert!(!text.contains("b-1"), "{}: {text}", other.name);
    }
    // Through the loom (with its registry) too.
    let l = loom(&srv);
    assert_eq!(l.resolve(&"b".parse().unwrap()).await.unwrap().id, b.id);
    assert!(matches!(
        l.resolve(&"ba".parse().unwrap()).await,
        Err(Error::SessionNotFound { .. })
    ));
}

#[tokio::test]
async fn duplicate_names_are_ambiguous_and_list_both() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, _) = new_session(&t, "w", "dup").await;
    let (b, _) = new_session(&t, "w", "other").await;
    // termloom refuses to make a duplicate; someone else may still do it by hand.
    assert!(matches!(
        t.create_session(&SessionSpec {
            name: Some("dup".into()),
            ..Default::default()
        })
        .await,
        Err(Error::InvalidArgument(_))
    ));
    srv.tmux(&[
        "set-option",
        "-p",
        "-t",
        &b.native.id,
        "@termloom_name",
        "dup",
    ]);
    for target in [Target::Name("dup".into()), "dup".parse().unwrap()] {
        match t.resolve(&target).await {
            Err(Error::AmbiguousTarget {
                target: named,
                candidates,
            }) => {
                assert_eq!(named, target.to_string());
                assert_eq!(candidates.len(), 2, "{candidates:?}");
                for id in [a.id, b.id] {
                    assert!(
                        candidates.iter().any(|c| c.contains(&id.to_string())),
                        "{id} in {candidates:?}"
                    );
                }
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    // Two windows with the same name are ambiguous as a path too.
    srv.tmux(&["rename-window", "-t", &a.window_id.clone().unwrap(), "same"]);
    srv.tmux(&["rename-window", "-t", &b.window_id.clone().unwrap(), "same"]);
    assert!(matches!(
        t.resolve(&"w:same".parse().unwrap()).await,
        Err(Error::AmbiguousTarget { .. })
    ));
    // Ids still tell them apart.
    assert_eq!(t.resolve(&a.id.into()).await.unwrap().id, a.id);
}

#[tokio::test]
async fn uuid_prefixes_resolve_and_unknown_targets_are_named() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (a, _) = new_session(&t, "w", "a").await;
    let (b, _) = new_session(&t, "w", "b").await;
    let hex = a.id.as_uuid().simple().to_string();
    let hyphenated = a.id.to_string();
    for target in [
        format!("id:{}", &hex[..4]),
        format!("id:{}", &hex[..8].to_uppercase()),
        hex[..8].to_string(),
        hyphenated[..13].to_string(),
        hyphenated.clone(),
        format!("tmux:{}", a.native.id),
    ] {
        let id = t.resolve(&target.parse().unwrap()).await;
        // A 4-digit prefix may, rarely, be shared with b: then it must say so.
        match id {
            Ok(info) => assert_eq!(info.id, a.id, "{target}"),
            Err(Error::AmbiguousTarget { .. })
                if b.id.as_uuid().simple().to_string()[..4] == hex[..4] => {}
            Err(e) => panic!("{target}: {e}"),
        }
    }
    assert!(matches!(
        "id:abc".parse::<Target>(),
        Err(Error::InvalidTarget { .. })
    ));
    for target in [
        "nosuch",
        "name:nosuch",
        "nosuch:0.0",
        "tmux:%999",
        "id:ffffffff",
    ] {
        match t.resolve(&target.parse().unwrap()).await {
            Err(Error::SessionNotFound { target: named }) => {
                assert_eq!(named, target);
                let msg = Error::SessionNotFound { target: named }.to_string();
                assert!(msg.contains(target), "{msg}");
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    match t.session(&"nosuch".parse().unwrap()).await {
        Err(e) => assert!(e.to_string().contains("nosuch"), "{e}"),
        Ok(_) => panic!("resolved a missing target"),
    }
}

/// A name target takes the quick way (the registry's hint, checked by id and name in the same
/// step as the input) for every hostile name, without listing the server; a name changed behind
/// termloom's back is refused there and left to the listing, which no longer finds it.
#[tokio::test]
async fn names_reach_their_pane_through_the_registry_hint_checked_by_name() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    let mut made = Vec::new();
    for name in HOSTILE_NAMES {
        let info = l
            .create_session(&named_in_w(name))
            .await
            .unwrap_or_else(|e| panic!("create {name:?}: {e}"));
        made.push(info);
    }
    // A pane made behind termloom's back: any listing would tag it with an id.
    let stranger = srv
        .tmux(&["new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "=w"])
        .trim()
        .to_string();
    for (i, (name, info)) in HOSTILE_NAMES.iter().zip(&made).enumerate() {
        for target in [
            Target::Name(name.to_string()),
            Target::Bare(name.to_string()),
        ] {
            let h = l
                .hinted(&target, true)
                .await
                .unwrap_or_else(|| panic!("{target:?}: a hinted handle"));
            assert_eq!(h.id(), info.id, "{target:?}");
            h.send_text(&format!(": n{i}"), SendOpts { enter: false })
                .await
                .unwrap_or_else(|e| panic!("{target:?}: {e}"));
            // Reads check the name too (from display-message, whose format goes through
            // strftime: a stored `%25` must come back as it is).
            h.capture(&everything())
                .await
                .unwrap_or_else(|e| panic!("{target:?}: read: {e}"));
        }
    }
    assert_eq!(
        display(&srv, &stranger, "#{@termloom_id}"),
        "",
        "no listing was made"
    );
    for (i, info) in made.iter().enumerate() {
        let s = l.terminal().open(info).await.unwrap();
        let text = s.capture(&everything()).await.unwrap().text;
        assert!(
            text.contains(&format!(": n{i}: n{i}")),
            "{:?}: {text}",
            info.name
        );
    }
    assert!(!srv.home.join("pwned-by-name").exists());

    // Renamed behind termloom's back: the registry still says "semi;", the pane does not.
    let semi = &made[3];
    assert_eq!(semi.name, "semi;");
    srv.tmux(&[
        "set-option",
        "-p",
        "-t",
        &semi.native.id,
        "@termloom_name",
        "other",
    ]);
    let target = Target::Name("semi;".into());
    let h = l.hinted(&target, true).await.expect("the registry's hint");
    let e = h
        .send_text("never typed", SendOpts { enter: false })
        .await
        .expect_err("the name is checked with the input");
    assert!(termloom_core::Loom::hint_failed(&e), "{e:?}");
    // Every other operation checks the name as well, on a managed-only handle and on one that
    // may write to any session (which has no managed check to catch it first).
    let any = l.hinted(&target, false).await.expect("the registry's hint");
    for h in [&h, &any] {
        let e = h.info().await.expect_err("info checks the name");
        assert!(termloom_core::Loom::hint_failed(&e), "info: {e:?}");
        let e = h.status().await.expect_err("status checks the name");
        assert!(termloom_core::Loom::hint_failed(&e), "status: {e:?}");
        let e = h
            .run(&termloom_core::RunOpts::new("echo never-run"))
            .await
            .expect_err("run checks the name");
        assert!(termloom_core::Loom::hint_failed(&e), "run: {e:?}");
        let e = h
            .wait_run(
                &termloom_core::RunHandle("run-none".into()),
                std::time::Duration::from_millis(10),
            )
            .await
            .expect_err("wait_run checks the name");
        assert!(termloom_core::Loom::hint_failed(&e), "wait_run: {e:?}");
        let e = h
            .install_integration()
            .await
            .expect_err("install_integration checks the name");
        assert!(termloom_core::Loom::hint_failed(&e), "install: {e:?}");
    }
    let e = l
        .session(&target)
        .await
        .err()
        .expect("a fresh listing finds no such name");
    assert!(matches!(e, Error::SessionNotFound { .. }), "{e:?}");
    let s = l.terminal().open(semi).await.unwrap();
    assert!(
        !s.capture(&everything())
            .await
            .unwrap()
            .text
            .contains("never typed")
    );
    assert!(
        !s.capture(&everything())
            .await
            .unwrap()
            .text
            .contains("never-run")
    );
    // A name that could also be an id prefix is left to the listing, which knows both: the
    // registry has a session of that name, and still no hinted handle is offered.
    let hexy = l
        .create_session(&named_in_w("cafe1234"))
        .await
        .expect("create cafe1234");
    let registry = l.registry().expect("a registry");
    assert_eq!(
        registry
            .live_named(&hexy.terminal, "cafe1234")
            .expect("registry")
            .map(|e| e.id),
        Some(hexy.id),
        "the registry knows the name"
    );
    assert!(
        l.hinted(&Target::Bare("cafe1234".into()), true)
            .await
            .is_none()
    );
    let found = l
        .session(&Target::Bare("cafe1234".into()))
        .await
        .expect("the listing finds it by name");
    assert_eq!(found.id(), hexy.id);
    // A session with no name is listed as `workspace:window.pane`; the pane stores no name to
    // check a hinted handle against, so that name is left to the listing too.
    let unnamed = l
        .create_session(&SessionSpec {
            workspace: Some("w".into()),
            ..Default::default()
        })
        .await
        .expect("create unnamed");
    let shown = Target::Name(unnamed.name.clone());
    assert!(l.hinted(&shown, false).await.is_none(), "{shown:?}");
    let found = l.session(&shown).await.expect("the listing finds it");
    assert_eq!(found.id(), unnamed.id);
    found.status().await.expect("status");
}

/// A session's id copied onto another pane (by hand, or inherited from a server or global
/// `@termloom_id`): targets by id or prefix are refused, naming both panes, the registry keeps
/// no hint for it, and nothing is typed into either pane.
#[tokio::test]
async fn an_id_on_two_panes_is_refused_and_reaches_neither() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    let a = l.create_session(&named_in_w("a")).await.unwrap();
    let copy = srv
        .tmux(&["new-session", "-d", "-s", "raw", "-P", "-F", "#{pane_id}"])
        .trim()
        .to_string();
    let id = a.id.to_string();
    srv.tmux(&["set-option", "-p", "-t", &copy, "@termloom_id", &id]);
    let prefix = a.id.as_uuid().simple().to_string()[..8].to_string();
    for target in [Target::Id(a.id), Target::IdPrefix(prefix)] {
        let e = match l.session(&target).await {
            Err(e) => e,
            Ok(s) => panic!("{target:?} opened {}", s.native()),
        };
        assert!(matches!(e, Error::DuplicateId { .. }), "{target:?}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&a.native.to_string()) && msg.contains(&copy),
            "{msg}"
        );
    }
    // The listing above left the registry with no pane to try first for this id.
    assert!(l.entry(a.id).unwrap().unwrap().native.is_empty());
    assert!(l.hinted(&Target::Id(a.id), false).await.is_none());
    // The name still names one pane.
    let by_name = l.session(&Target::Name("a".into())).await.unwrap();
    assert_eq!(by_name.native(), &a.native);
    by_name
        .send_text(": by-name", SendOpts { enter: false })
        .await
        .unwrap();
    wait_until("the text in a's pane", || async {
        let text = srv.tmux(&["capture-pane", "-p", "-t", &a.native.id]);
        text.contains(": by-name").then_some(())
    })
    .await;
    let stranger = srv.tmux(&["capture-pane", "-p", "-t", &copy]);
    assert!(!stranger.contains(": by-name"), "{stranger}");

    // A server-level value, which tmux reads before every pane's own: every pane seems to carry it.
    srv.tmux(&["set-option", "-pu", "-t", &copy, "@termloom_id"]);
    srv.tmux(&["set-option", "-s", "@termloom_id", &id]);
    let e = l.resolve(&Target::Id(a.id)).await.unwrap_err();
    assert!(matches!(e, Error::DuplicateId { .. }), "{e}");
}

/// A pane termloom is creating carries its id in its shell's environment before its creator tags
/// it: a listing made in between tags it with that id, not a new one (which the creator would
/// overwrite, leaving the lister's registry a phantom session).
#[tokio::test]
async fn a_listing_tags_a_pane_being_created_with_its_creators_id() {
    let srv = TmuxServer::start();
    let l = loom(&srv);
    l.create_session(&named_in_w("a")).await.unwrap();
    let id = termloom_core::SessionId::new();
    let env = format!("TERMLOOM_STATE_FILE={}/panes/{id}", srv.dir().display());
    // Started as termloom starts an integrated bash (the rcfile need not exist here).
    let rcfile = format!("{}/shell-integration/v0/termloom.bash", srv.dir().display());
    let window = |args: &[&str]| {
        let mut all = vec![
            "new-window",
            "-d",
            "-t",
            "=w:",
            "-P",
            "-F",
            "#{pane_id}",
            "-e",
            &env,
        ];
        all.extend_from_slice(args);
        srv.tmux(&all).trim().to_string()
    };
    let pane = window(&["bash", "--rcfile", &rcfile]);
    // Its shell started (the environment is the shell's once it is exec'd), not yet tagged.
    let started = |pane: String| {
        let (srv, env) = (&srv, &env);
        async move {
            wait_until("the pane's shell", || async {
                let pid = display(srv, &pane, "#{pane_pid}");
                let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
                String::from_utf8_lossy(&environ)
                    .contains(env.as_str())
                    .then_some(())
            })
            .await
        }
    };
    started(pane.clone()).await;
    assert_eq!(display(&srv, &pane, "#{@termloom_id}"), "");
    let all = l.list_sessions().await.unwrap();
    let listed = all.into_iter().find(|s| s.native.id == pane).unwrap();
    assert_eq!(listed.id, id);
    assert_eq!(display(&srv, &pane, "#{@termloom_id}"), id.to_string());
    // The variable alone (a pane made by hand inherits it from a workspace whose environment
    // has it) names no id: that pane gets a new one.
    let other = window(&["bash", "--norc"]);
    started(other.clone()).await;
    let all = l.list_sessions().await.unwrap();
    let listed = all.into_iter().find(|s| s.native.id == other).unwrap();
    assert_ne!(listed.id, id);
}
