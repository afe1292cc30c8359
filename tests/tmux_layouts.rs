//! tmux layouts: every predefined layout, built for real and measured.
//!
//! Each pane gets its own cwd and a command that writes `$TMUX_PANE` and `$PWD` to a file, so the
//! test sees which pane ran which command, and where.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use termloom_core::{Error, Layout, LayoutPlacement, Terminal};
use termloom_tests::{TmuxServer, wait_until};

use crate::tmux_backend::{Geo, display, geometry, names, new_session};

struct Built {
    /// Keeps the server alive while the test measures.
    _srv: TmuxServer,
    geo: HashMap<String, Geo>,
}

/// Applies a predefined layout with the given pane names in a new workspace and checks what every
/// layout must do: one pane per name, in one new window named `win`, each pane titled and named,
/// each command run in its own pane and cwd.
async fn build(layout: &str, names: &[&str]) -> Built {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut l = Layout::predefined(layout, &names).unwrap();
    let mut dirs = HashMap::new();
    for p in l.panes_mut() {
        let dir = srv.dir().join(format!("cwd {}", p.name));
        std::fs::create_dir_all(&dir).unwrap();
        let out = srv.dir().join(format!("{}.out", p.name));
        p.command = Some(format!("echo \"$TMUX_PANE $PWD\" > '{}'", out.display()));
        p.cwd = Some(dir.clone());
        dirs.insert(p.name.clone(), (std::fs::canonicalize(&dir).unwrap(), out));
    }
    let panes = t
        .apply_layout(
            &l,
            &LayoutPlacement {
                workspace: Some("lay".into()),
                window: Some("win".into()),
                cwd: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{layout}: {e}"));
    let got: Vec<&str> = panes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, names, "{layout}: every pane, in order");
    let window = panes[0].1.window_id.clone();
    let listed = t.list_sessions().await.unwrap();
    assert_eq!(listed.len(), names.len(), "{layout}: {listed:#?}");
    let mut geo = HashMap::new();
    for (name, info) in &panes {
        assert_eq!(&info.name, name);
        assert_eq!(&info.title, name, "{layout}: pane title");
        assert_eq!(info.window_id, window, "{layout}: one window");
        assert_eq!(info.window_name, "win");
        assert!(
            listed.iter().any(|x| x.id == info.id),
            "{layout}: {name} listed"
        );
        assert_eq!(
            display(&srv, &info.native.id, "#{@termloom_id}"),
            info.id.to_string()
        );
        let (dir, out) = &dirs[name];
        let line = wait_until(&format!("{layout}: {name}'s command"), || async {
            let s = std::fs::read_to_string(out).ok()?;
            s.ends_with('\n').then_some(s)
        })
        .await;
        assert_eq!(
            line.trim_end(),
            format!("{} {}", info.native.id, dir.display()),
            "{layout}: {name} ran in its own pane and cwd"
        );
        geo.insert(name.clone(), geometry(&srv, &info.native.id));
    }
    // Panes tile the whole 80x24 window: their areas plus borders cover it exactly once.
    let w = display(
        &srv,
        &panes[0].1.native.id,
        "#{window_width} #{window_height}",
    );
    assert_eq!(w, "80 24", "{layout}");
    Built { _srv: srv, geo }
}

fn near(a: u32, b: u32, slack: u32) -> bool {
    a.abs_diff(b) <= slack
}

#[tokio::test]
async fn single_layout_is_one_full_pane() {
    let b = build("single", &["only"]).await;
    assert_eq!(
        b.geo["only"],
        Geo {
            left: 0,
            top: 0,
            width: 80,
            height: 24
        }
    );
}

#[tokio::test]
async fn horizontal_layout_puts_panes_side_by_side_with_equal_widths() {
    let b = build("horizontal", &["a", "b", "c"]).await;
    let g: Vec<Geo> = ["a", "b", "c"].iter().map(|n| b.geo[*n]).collect();
    assert!(g.iter().all(|x| x.top == 0 && x.height == 24), "{g:?}");
    assert!(
        g[0].left == 0 && g[0].left < g[1].left && g[1].left < g[2].left,
        "{g:?}"
    );
    let widths: Vec<u32> = g.iter().map(|x| x.width).collect();
    let (min, max) = (widths.iter().min().unwrap(), widths.iter().max().unwrap());
    assert!(max - min <= 1, "equal widths ±1: {widths:?}");
    assert_eq!(widths.iter().sum::<u32>() + 2, 80, "{widths:?}");
}

#[tokio::test]
async fn vertical_layout_stacks_panes_with_equal_heights() {
    let b = build("vertical", &["top", "mid", "bottom"]).await;
    let g: Vec<Geo> = ["top", "mid", "bottom"].iter().map(|n| b.geo[*n]).collect();
    assert!(g.iter().all(|x| x.left == 0 && x.width == 80), "{g:?}");
    assert!(
        g[0].top == 0 && g[0].top < g[1].top && g[1].top < g[2].top,
        "{g:?}"
    );
    let heights: Vec<u32> = g.iter().map(|x| x.height).collect();
    let (min, max) = (heights.iter().min().unwrap(), heights.iter().max().unwrap());
    assert!(max - min <= 1, "equal heights ±1: {heights:?}");
    assert_eq!(heights.iter().sum::<u32>() + 2, 24, "{heights:?}");
}

#[tokio::test]
async fn quad_layout_is_two_by_two() {
    let b = build("quad", &["tl", "tr", "bl", "br"]).await;
    let g = &b.geo;
    assert_eq!((g["tl"].left, g["tl"].top), (0, 0));
    assert!(g["tr"].top == 0 && g["tr"].left > 0, "{g:?}");
    assert!(g["bl"].left == 0 && g["bl"].top > 0, "{g:?}");
    assert_eq!((g["br"].left, g["br"].top), (g["tr"].left, g["bl"].top));
    let lefts: BTreeSet<u32> = g.values().map(|x| x.left).collect();
    let tops: BTreeSet<u32> = g.values().map(|x| x.top).collect();
    assert_eq!((lefts.len(), tops.len()), (2, 2), "{g:?}");
    for x in g.values() {
        assert!(near(x.width, 40, 1) && near(x.height, 12, 1), "{g:?}");
    }
}

#[tokio::test]
async fn main_vertical_layout_has_a_wide_main_pane_beside_a_stack() {
    let b = build("main-vertical", &["main", "s1", "s2"]).await;
    let g = &b.geo;
    assert_eq!(
        (g["main"].left, g["main"].top, g["main"].height),
        (0, 0, 24)
    );
    // 60% of 80 columns, ±1 for the border and rounding.
    assert!(near(g["main"].width, 48, 1), "{g:?}");
    for s in ["s1", "s2"] {
        assert_eq!(g[s].left, g["main"].width + 1, "{g:?}");
        assert_eq!(g[s].width, 80 - g["main"].width - 1);
    }
    assert!(g["s1"].top == 0 && g["s2"].top > g["s1"].top, "{g:?}");
    assert!(near(g["s1"].height, g["s2"].height, 1), "{g:?}");
}

#[tokio::test]
async fn main_horizontal_layout_has_a_tall_main_pane_above_a_row() {
    let b = build("main-horizontal", &["main", "s1", "s2"]).await;
    let g = &b.geo;
    assert_eq!((g["main"].left, g["main"].top, g["main"].width), (0, 0, 80));
    // 60% of 24 rows, ±1.
    assert!(near(g["main"].height, 14, 1), "{g:?}");
    for s in ["s1", "s2"] {
        assert_eq!(g[s].top, g["main"].height + 1, "{g:?}");
        assert_eq!(g[s].height, 24 - g["main"].height - 1);
    }
    assert!(g["s1"].left == 0 && g["s2"].left > 0, "{g:?}");
    assert!(near(g["s1"].width, g["s2"].width, 1), "{g:?}");
}

#[tokio::test]
async fn tiled_layout_fills_rows_of_equal_panes() {
    let names = ["p1", "p2", "p3", "p4", "p5"];
    let b = build("tiled", &names).await;
    let g = &b.geo;
    // Five panes: ceil(sqrt(5)) = 3 columns, so a row of 3 above a row of 2.
    let top_row: Vec<&str> = names.iter().copied().filter(|n| g[*n].top == 0).collect();
    assert_eq!(top_row, ["p1", "p2", "p3"], "{g:?}");
    let bottom = g["p4"].top;
    assert!(bottom > 0 && g["p5"].top == bottom, "{g:?}");
    assert!(near(g["p1"].height, g["p4"].height, 1), "{g:?}");
    let w3: Vec<u32> = ["p1", "p2", "p3"].iter().map(|n| g[*n].width).collect();
    assert!(w3.iter().all(|w| near(*w, w3[0], 1)), "{w3:?}");
    assert!(near(g["p4"].width, g["p5"].width, 1), "{g:?}");
    assert!(g["p1"].left < g["p2"].left && g["p2"].left < g["p3"].left);
    assert!(g["p4"].left < g["p5"].left);
}

#[tokio::test]
async fn layouts_go_into_existing_workspaces_in_the_background_and_refuse_taken_names() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    let (first, _) = new_session(&t, "lay", "taken").await;
    let mut l = Layout::predefined("horizontal", &["x".into(), "y".into()]).unwrap();
    l.panes_mut()[1].focus = true;
    let dir: PathBuf = srv.dir().join("default cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let panes = t
        .apply_layout(
            &l,
            &LayoutPlacement {
                workspace: Some("lay".into()),
                window: None,
                cwd: Some(dir.clone()),
            },
        )
        .await
        .unwrap();
    let (x, y) = (&panes[0].1, &panes[1].1);
    assert_eq!(x.workspace_id, first.workspace_id);
    assert_eq!(x.window_index, 1);
    assert_eq!(
        x.window_name, "x",
        "the window is named after its first pane"
    );
    // The layout's window is built in the background; the focused pane is active in it.
    assert_eq!(display(&srv, "=lay:", "#{window_index}"), "0");
    assert_eq!(display(&srv, &y.native.id, "#{pane_active}"), "1");
    assert_eq!(display(&srv, &x.native.id, "#{pane_active}"), "0");
    // Panes with no cwd of their own start in the placement's.
    let want = std::fs::canonicalize(&dir).unwrap();
    wait_until("the panes' cwd", || async {
        let all = t.list_sessions().await.ok()?;
        all.iter()
            .filter(|s| s.id == x.id || s.id == y.id)
            .all(|s| s.cwd.as_deref().map(std::path::Path::new) == Some(want.as_path()))
            .then_some(())
    })
    .await;

    let clash = Layout::predefined("vertical", &["fresh".into(), "taken".into()]).unwrap();
    match t.apply_layout(&clash, &LayoutPlacement::default()).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("taken"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.list_sessions().await.unwrap().len(),
        3,
        "nothing was built"
    );
}

#[tokio::test]
async fn a_layout_that_does_not_fit_leaves_nothing_behind_and_window_names_stay_targets() {
    let srv = TmuxServer::start();
    let t = srv.terminal();
    new_session(&t, "lay", "base").await;
    // 20 stacked panes cannot fit in 24 rows: tmux runs out of room half way.
    let twenty: Vec<String> = (1..=20).map(|i| format!("v{i}")).collect();
    let l = Layout::predefined("vertical", &twenty).unwrap();
    let place = LayoutPlacement {
        workspace: Some("lay".into()),
        window: Some("tall".into()),
        cwd: None,
    };
    match t.apply_layout(&l, &place).await {
        Err(Error::InvalidArgument(m)) => {
            assert!(
                m.contains("do not fit") && m.contains("closed again"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        names(&t).await,
        ["base"],
        "the half-built window was closed"
    );
    assert_eq!(display(&srv, "=lay:", "#{session_windows}"), "1");
    // The same layout in a workspace of its own: that workspace goes with its window.
    let alone = LayoutPlacement {
        workspace: Some("alone".into()),
        ..place.clone()
    };
    assert!(t.apply_layout(&l, &alone).await.is_err());
    assert!(
        !t.list_workspaces()
            .await
            .unwrap()
            .iter()
            .any(|w| w.name == "alone")
    );
    // A smaller one fits, in a window named as asked; asking for that name again is refused
    // (two windows of one name would make every target naming it ambiguous), and so is a name
    // of digits only (targets would read it as an index).
    let small = Layout::predefined("vertical", &["a".into(), "b".into()]).unwrap();
    t.apply_layout(&small, &place).await.unwrap();
    let again = Layout::predefined("vertical", &["c".into(), "d".into()]).unwrap();
    match t.apply_layout(&again, &place).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("already"), "{m}"),
        other => panic!("{other:?}"),
    }
    let digits = LayoutPlacement {
        window: Some("7".into()),
        ..place.clone()
    };
    match t.apply_layout(&again, &digits).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("only digits"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.list_sessions().await.unwrap().len(), 3, "base, a and b");
}
