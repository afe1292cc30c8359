use std::time::Instant;
use termloom_core::{SessionSpec, Terminal, RunOpts};
use termloom_tests::TmuxServer;
use termloom_tmux::{TmuxOptions, TmuxTerminal};

async fn one(i: usize) {
    let srv = TmuxServer::start();
    let t = TmuxTerminal::new(TmuxOptions { control: true, ..srv.options() });
    let t0 = Instant::now();
    let r = t.create_session(&SessionSpec { name: Some("a".into()), workspace: Some("w".into()), ..Default::default() }).await;
    if let Err(e) = &r {
        let t1 = Instant::now();
        let direct = srv.tmux(&["list-panes", "-a"]);
        eprintln!("{i} FAILED after {:?}: {e}; direct list-panes took {:?}: {direct:?}", t0.elapsed(), t1.elapsed());
        let ps = std::process::Command::new("sh").arg("-c").arg(format!("ps -ef | grep -F '{}' | grep -v grep", srv.socket.display())).output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&ps.stdout));
        panic!("failed");
    }
    let info = r.unwrap();
    let s = t.open(&info).await.unwrap();
    let r = s.run(&RunOpts::new("echo hi")).await.unwrap();
    assert_eq!(r.output, "hi");
}

macro_rules! t { ($($n:ident $i:expr),*) => { $( #[tokio::test] async fn $n() { for k in 0..8 { one($i * 10 + k).await } } )* } }
t!(a 0, b 1, c 2, d 3, e 4, f 5, g 6, h 7);
