//! Session logs and snapshots against real tmux in control mode: what was typed survives a killed
//! pane, lifecycle records, rotation, filters, the snapshot, and a 50 MB flood that loses no line.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use regex::Regex;
use termloom_core::log::{LogRecord, RecordKind, read_log, unquote};
use termloom_core::{
    Key, LogConfig, Loom, OutputEvent, SendOpts, SessionId, SessionInfo, SessionSpec, Target,
};
use termloom_tests::{TmuxServer, wait_until};
use termloom_tmux::{TmuxOptions, TmuxTerminal};

/// A loom over a control-mode terminal of `srv`, logging as `cfg` says.
fn logged_loom(srv: &TmuxServer, cfg: LogConfig) -> Loom {
    let t = TmuxTerminal::new(TmuxOptions {
        control: true,
        ..srv.options()
    });
    Loom::new(Arc::new(t), None).with_logging(cfg)
}

async fn create(loom: &Loom, name: &str) -> SessionInfo {
    loom.create_session(&SessionSpec {
        name: Some(name.into()),
        workspace: Some("ws".into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn payloads(records: &[LogRecord], kind: RecordKind) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.payload.clone())
        .collect()
}

/// Polls the log until a record satisfies `f`; returns every record then.
async fn wait_for_record(
    cfg: &LogConfig,
    id: SessionId,
    what: &str,
    f: impl Fn(&LogRecord) -> bool,
) -> Vec<LogRecord> {
    wait_until(what, || {
        let records = read_log(cfg, id).unwrap_or_default();
        let found = records.iter().any(&f);
        async move { found.then_some(records) }
    })
    .await
}

#[tokio::test]
async fn sent_text_and_keys_are_in_the_log_before_the_pane_is_killed() {
    let srv = TmuxServer::start();
    let cfg = LogConfig::in_state_dir(&srv.state);
    let loom = logged_loom(&srv, cfg.clone());
    create(&loom, "keep").await;
    let info = create(&loom, "victim").await;
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    s.send_text("echo typed-before-kill 'a\"b'", SendOpts { enter: false })
        .await
        .unwrap();
    s.send_keys(&["C-c".parse::<Key>().unwrap()]).await.unwrap();
    srv.tmux(&["kill-pane", "-t", &info.native.id]);
    // Read at once: the records were flushed before the text and keys went to tmux.
    let records = read_log(&cfg, info.id).unwrap();
    let sent = payloads(&records, RecordKind::Sent);
    assert_eq!(
        sent.iter().map(|p| unquote(p).unwrap()).collect::<Vec<_>>(),
        [("echo typed-before-kill 'a\"b'".to_string(), "")]
    );
    assert_eq!(payloads(&records, RecordKind::Keys), ["C-c"]);
    // The watcher then records the end of the stream, and ends.
    let records = wait_for_record(&cfg, info.id, "a closed record", |r| {
        r.kind == RecordKind::Closed
    })
    .await;
    assert!(
        payloads(&records, RecordKind::Closed)[0].contains("closed"),
        "{records:?}"
    );
    let logger = loom.logger().unwrap().clone();
    wait_until("the watcher to end", || {
        let done = !logger.is_watching(info.id);
        async move { done.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn the_log_holds_lifecycle_sends_and_output_in_order() {
    let srv = TmuxServer::start();
    let cfg = LogConfig::in_state_dir(&srv.state);
    let loom = logged_loom(&srv, cfg.clone());
    create(&loom, "keep").await;
    let info = create(&loom, "life").await;
    assert!(loom.logger().unwrap().is_watching(info.id));
    // Opening twice still leaves one watcher: the line below is logged once.
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    let again = loom.session(&Target::Name("life".into())).await.unwrap();
    s.send_text("echo once-$((6*7))", SendOpts::default())
        .await
        .unwrap();
    wait_for_record(&cfg, info.id, "the output line", |r| {
        r.kind == RecordKind::Out && r.payload == "once-42"
    })
    .await;
    again.rename("renamed").await.unwrap();
    s.close().await.unwrap();
    let records = wait_for_record(&cfg, info.id, "a closed record", |r| {
        r.kind == RecordKind::Closed
    })
    .await;
    let kinds: Vec<RecordKind> = records
        .iter()
        .map(|r| r.kind)
        .filter(|k| *k != RecordKind::Out)
        .collect();
    assert_eq!(
        kinds,
        [
            RecordKind::Create,
            RecordKind::Sent,
            RecordKind::Rename,
            RecordKind::Close,
            RecordKind::Closed
        ],
        "{records:#?}"
    );
    let create = &payloads(&records, RecordKind::Create)[0];
    assert!(create.contains("name=\"life\""), "{create}");
    assert!(
        create.contains(&format!("native=\"tmux:{}\"", info.native.id)),
        "{create}"
    );
    assert_eq!(payloads(&records, RecordKind::Rename), ["\"renamed\""]);
    let outs = payloads(&records, RecordKind::Out);
    assert_eq!(
        outs.iter().filter(|l| *l == "once-42").count(),
        1,
        "{outs:?}"
    );
    // Time order: the output came after the send, the rename after the output.
    let pos = |k: RecordKind, p: &str| {
        records
            .iter()
            .position(|r| r.kind == k && (p.is_empty() || r.payload == p))
            .unwrap()
    };
    assert!(pos(RecordKind::Sent, "") < pos(RecordKind::Out, "once-42"));
    assert!(pos(RecordKind::Out, "once-42") < pos(RecordKind::Rename, ""));
}

#[tokio::test]
async fn logs_rotate_by_size_and_filters_keep_only_matching_output() {
    let srv = TmuxServer::start();
    let cfg = LogConfig {
        max_file_bytes: 4096,
        keep_files: 3,
        filters: vec![Regex::new("^keep-").unwrap(), Regex::new("^DONE$").unwrap()],
        ..LogConfig::in_state_dir(&srv.state)
    };
    let loom = logged_loom(&srv, cfg.clone());
    let info = create(&loom, "rot").await;
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    s.send_text(
        "for i in $(seq 1 600); do echo keep-$i; echo drop-$i; done; echo DONE",
        SendOpts::default(),
    )
    .await
    .unwrap();
    wait_for_record(&cfg, info.id, "the last line", |r| {
        r.kind == RecordKind::Out && r.payload == "DONE"
    })
    .await;
    // Read again: the poll may have raced a rotation; nothing is logged after DONE.
    let records = read_log(&cfg, info.id).unwrap();
    // Rotated: every file at most the limit, at most 3 old ones kept, the oldest dropped.
    let files = cfg.log_files(info.id);
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(!cfg.rotated_path(info.id, 4).exists());
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 4096, "{} is {len} bytes", f.display());
    }
    // Filtered: only keep- lines (and DONE), the newest ones, none missing in between.
    let outs = payloads(&records, RecordKind::Out);
    assert!(
        outs.iter().all(|l| l.starts_with("keep-") || l == "DONE"),
        "{outs:?}"
    );
    let first: usize = outs[0].trim_start_matches("keep-").parse().unwrap();
    assert!(first > 1, "the oldest records were rotated away");
    let want: Vec<String> = (first..=600)
        .map(|i| format!("keep-{i}"))
        .chain(["DONE".to_string()])
        .collect();
    assert_eq!(outs, want);
    // Sent text is kept whatever the filters say (in the oldest file, rotated away here).
    let t = TmuxTerminal::new(TmuxOptions {
        control: true,
        ..srv.options()
    });
    let small = LogConfig {
        filters: vec![Regex::new("^nothing matches$").unwrap()],
        ..LogConfig::in_state_dir(&srv.dir().join("state2"))
    };
    let loom2 = Loom::new(Arc::new(t), None).with_logging(small.clone());
    let s2 = loom2.session(&Target::Id(info.id)).await.unwrap();
    s2.send_text("echo filtered-out", SendOpts::default())
        .await
        .unwrap();
    let records = read_log(&small, info.id).unwrap();
    assert_eq!(
        payloads(&records, RecordKind::Sent),
        ["\"echo filtered-out\" enter"]
    );
    assert!(payloads(&records, RecordKind::Out).is_empty());
}

#[tokio::test]
async fn the_snapshot_holds_the_latest_lines() {
    let srv = TmuxServer::start();
    let cfg = LogConfig {
        snapshot_lines: 5,
        ..LogConfig::in_state_dir(&srv.state)
    };
    let loom = logged_loom(&srv, cfg.clone());
    let info = create(&loom, "snap").await;
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    s.send_text("seq 1 100", SendOpts::default()).await.unwrap();
    let path = cfg.snapshot_path(info.id);
    // The prompt after 100 is an unfinished line, so the last five lines are the last numbers.
    wait_until("the snapshot", || {
        let snap = std::fs::read_to_string(&path).unwrap_or_default();
        async move { (snap == "96\n97\n98\n99\n100\n").then_some(()) }
    })
    .await;
    s.send_text("seq 200 202", SendOpts::default())
        .await
        .unwrap();
    wait_until("the updated snapshot", || {
        let snap = std::fs::read_to_string(&path).unwrap_or_default();
        async move { snap.ends_with("200\n201\n202\n").then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn output_tmux_paused_is_logged_as_a_gap_and_logging_resumes() {
    let srv = TmuxServer::start();
    let cfg = LogConfig::in_state_dir(&srv.state);
    let loom = logged_loom(&srv, cfg.clone());
    let info = create(&loom, "paused").await;
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    s.send_text("echo before-$((1+1))", SendOpts::default())
        .await
        .unwrap();
    wait_for_record(&cfg, info.id, "output before the pause", |r| {
        r.payload == "before-2"
    })
    .await;
    // Pause the pane for the output client, as tmux does when a client falls behind.
    let clients = srv.tmux(&["list-clients", "-F", "#{client_name} #{client_flags}"]);
    let output_client = clients
        .lines()
        .find(|l| l.contains("pause-after"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no output client in {clients:?}"))
        .to_string();
    let pane = format!("{}:pause", info.native.id);
    srv.tmux(&["refresh-client", "-t", &output_client, "-A", &pane]);
    wait_for_record(&cfg, info.id, "a gap record", |r| r.kind == RecordKind::Gap).await;
    // The hub resumed the pane: later output is logged again.
    s.send_text("echo after-$((2+2))", SendOpts::default())
        .await
        .unwrap();
    wait_for_record(&cfg, info.id, "output after the pause", |r| {
        r.payload == "after-4"
    })
    .await;
}

/// One field of `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The last few kilobytes of a file.
fn tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What follows the number on every line of the flood.
const FLOOD_TEXT: &str = ": the quick brown fox jumps over the lazy dog, again and again and again";

/// A pane printing 50 MB as fast as it can, watched by another subscriber too: the process grows by
/// less than 50 MB and the log has every line, in order.
///
/// The memory measure must see the flood alone, and the other tests of this binary run in the
/// same process at the same time: the flood runs in a process of its own (this test binary,
/// filtered to [`flood_in_its_own_process`]), which must pass.
#[tokio::test]
async fn a_50_mb_flood_loses_no_line_and_keeps_memory_bounded() {
    const CHILD: &str = "logs::flood_in_its_own_process";
    let exe = std::env::current_exe().expect("the test binary");
    let out = tokio::process::Command::new(exe)
        .args([
            CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the flood in a process of its own");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr.lines().find(|l| l.starts_with("flood: "));
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the flood failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{}", summary.unwrap_or("flood: no summary"));
}

/// The body of [`a_50_mb_flood_loses_no_line_and_keeps_memory_bounded`], run in a process of
/// its own by that test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a process of its own by logs::a_50_mb_flood_loses_no_line_and_keeps_memory_bounded"]
async fn flood_in_its_own_process() {
    // 640,000 numbered lines of 72-79 bytes: 50.6 MB.
    const N: u64 = 640_000;
    let srv = TmuxServer::start();
    let cfg = LogConfig {
        max_file_bytes: 32 * 1024 * 1024,
        keep_files: 8,
        ..LogConfig::in_state_dir(&srv.state)
    };
    let loom = logged_loom(&srv, cfg.clone());
    let info = create(&loom, "flood").await;
    let s = loom.session(&Target::Id(info.id)).await.unwrap();
    // The watcher: reads the same stream, counts bytes and lags when it must.
    let mut watch = s.subscribe().await.unwrap();
    let watcher = tokio::spawn(async move {
        let (mut bytes, mut lagged) = (0u64, 0u64);
        while let Some(ev) = watch.next().await {
            match ev {
                OutputEvent::Output(b) => bytes += b.len() as u64,
                OutputEvent::Lagged(n) => lagged += n,
                OutputEvent::Closed { .. } => break,
            }
        }
        (bytes, lagged)
    });
    let rss_before = proc_status_bytes("VmRSS");
    // Reset the peak (VmHWM) so it measures this test, not whatever ran before it.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(proc_status_bytes("VmRSS"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    s.send_text(
        &format!("seq -f '%.0f{FLOOD_TEXT}' 1 {N}; echo FLOOD-$((1+1))"),
        SendOpts::default(),
    )
    .await
    .unwrap();
    let log_path = cfg.log_path(info.id);
    // Generous: the flood takes 13-25 s on a busy 2-core machine (debug build).
    let limit = termloom_tests::timeout() * 12;
    tokio::time::timeout(limit, async {
        while !tail(&log_path).contains(" out FLOOD-2\n") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the flood's end did not reach the log within {limit:?}"));
    let wall = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak_sampled = sampler.await.unwrap();
    let hwm_after = proc_status_bytes("VmHWM");
    let peak = if hwm_reset {
        hwm_after.max(peak_sampled)
    } else {
        peak_sampled
    };
    let growth = peak.saturating_sub(rss_before);
    s.close().await.unwrap();
    let (watched, watcher_lagged) = tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .expect("the watcher ends when the pane closes")
        .unwrap();
    // Every number, in order, once; no gap record.
    let files = cfg.log_files(info.id);
    let check = check_numbered_lines(&files, N);
    let log_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    eprintln!(
        "flood: {N} lines, {watched} bytes watched (watcher lagged {watcher_lagged} chunks), \
         {} log files of {log_bytes} bytes, {:.1} s; RSS before {} MB, peak {} MB \
         (HWM reset: {hwm_reset}), growth {:.1} MB",
        files.len(),
        wall.as_secs_f64(),
        rss_before >> 20,
        peak >> 20,
        growth as f64 / (1 << 20) as f64
    );
    if let Err(e) = check {
        panic!("{e}");
    }
    assert!(
        growth < 50 * 1024 * 1024,
        "memory grew by {growth} bytes during the flood"
    );
}

/// Checks that the flood's `out` records (`<number>FLOOD_TEXT`) in `files` are exactly 1..=n in
/// order, each whole, with no `gap` record; on failure says where, with the records around it.
fn check_numbered_lines(files: &[std::path::PathBuf], n: u64) -> Result<(), String> {
    let mut next = 1u64;
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut line = String::new();
    for f in files {
        let mut reader =
            std::io::BufReader::new(std::fs::File::open(f).map_err(|e| e.to_string())?);
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                break;
            }
            if recent.len() == 8 {
                recent.pop_front();
            }
            recent.push_back(line.clone());
            let Some(r) = LogRecord::parse(&line) else {
                continue;
            };
            let bad = match r.kind {
                RecordKind::Out => {
                    let digits = r.payload.bytes().take_while(u8::is_ascii_digit).count();
                    let (number, rest) = r.payload.split_at(digits);
                    match number.parse::<u64>() {
                        Ok(v) if v == next && rest == FLOOD_TEXT => {
                            next += 1;
                            None
                        }
                        Ok(v) => Some(format!("expected line {next}, found {v}{rest}")),
                        // The command line, the prompt: not the flood's.
                        Err(_) => None,
                    }
                }
                RecordKind::Gap => Some(format!("a gap record before line {next}")),
                _ => None,
            };
            if let Some(bad) = bad {
                let mut after = Vec::new();
                for _ in 0..4 {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 {
                        break;
                    }
                    after.push(l);
                }
                return Err(format!(
                    "{bad} in {}; records around it:\n{}---\n{}",
                    f.display(),
                    recent.iter().map(String::as_str).collect::<String>(),
                    after.concat()
                ));
            }
        }
    }
    if next != n + 1 {
        return Err(format!("lines {next}..={n} missing from the log"));
    }
    Ok(())
}
