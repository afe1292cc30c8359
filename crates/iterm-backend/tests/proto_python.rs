//! Encodes every modelled message in Rust, decodes it with the official Python package's
//! `api_pb2` (via `tests/iterm_fake/proto_roundtrip.py`), and checks that nothing was left
//! unrecognised and that Python's re-encoding decodes back to the same value; then decodes
//! Python-built messages in Rust.
//!
//! Needs a Python with the PyPI `iterm2` package: `$TERMLOOM_ITERM_PYTHON`, else `python3`.
//! When neither can `import iterm2` the test says so on stderr and passes without checking
//! (install with `pip install -r tests/iterm_fake/requirements.txt`). Set
//! `TERMLOOM_REQUIRE_ITERM_PYTHON=1` to make a missing package a failure instead.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use prost::Message as _;
use termloom_iterm::proto::client_originated_message::Submessage as Req;
use termloom_iterm::proto::server_originated_message::Submessage as Rep;
use termloom_iterm::proto::{self, *};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/iterm_fake/proto_roundtrip.py")
}

fn python() -> Option<String> {
    let candidate = std::env::var("TERMLOOM_ITERM_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import iterm2.api_pb2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(candidate)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn coord(x: i32, y: i64) -> Option<Coord> {
    Some(Coord {
        x: Some(x),
        y: Some(y),
    })
}

fn range(a: i64, b: i64) -> Option<CoordRange> {
    Some(CoordRange {
        start: coord(1, a),
        end: coord(2, b),
    })
}

fn requests() -> Vec<Req> {
    use proto::notification_request::Arguments;
    vec![
        Req::GetBufferRequest(GetBufferRequest {
            session: s("S"),
            line_range: Some(LineRange {
                screen_contents_only: None,
                trailing_lines: Some(50),
                windowed_coord_range: Some(WindowedCoordRange {
                    coord_range: range(3, 4),
                    columns: Some(Range {
                        location: Some(1),
                        length: Some(2),
                    }),
                }),
            }),
            include_styles: Some(false),
        }),
        Req::GetPromptRequest(GetPromptRequest {
            session: s("S"),
            unique_prompt_id: s("P"),
        }),
        Req::NotificationRequest(NotificationRequest {
            session: s("all"),
            subscribe: Some(true),
            notification_type: Some(NotificationType::NotifyOnPrompt as i32),
            arguments: Some(Arguments::PromptMonitorRequest(PromptMonitorRequest {
                modes: vec![1, 2, 3],
            })),
        }),
        Req::NotificationRequest(NotificationRequest {
            session: None,
            subscribe: Some(false),
            notification_type: Some(NotificationType::NotifyOnVariableChange as i32),
            arguments: Some(Arguments::VariableMonitorRequest(VariableMonitorRequest {
                name: s("user.x"),
                scope: Some(VariableScope::Tab as i32),
                identifier: s("3"),
            })),
        }),
        Req::NotificationRequest(NotificationRequest {
            session: s("S"),
            subscribe: Some(true),
            notification_type: Some(NotificationType::NotifyOnKeystroke as i32),
            arguments: Some(Arguments::KeystrokeMonitorRequest(
                KeystrokeMonitorRequest {
                    patterns_to_ignore: vec![KeystrokePattern {
                        required_modifiers: vec![1, 4],
                        forbidden_modifiers: vec![3],
                        keycodes: vec![36, 48],
                        characters: vec!["a".into()],
                        characters_ignoring_modifiers: vec!["b".into()],
                    }],
                    advanced: Some(true),
                },
            )),
        }),
        Req::SetProfilePropertyRequest(SetProfilePropertyRequest {
            key: s("Name"),
            json_value: s("\"x\""),
            assignments: vec![set_profile_property_request::Assignment {
                key: s("A"),
                json_value: s("1"),
            }],
            target: Some(set_profile_property_request::Target::GuidList(
                set_profile_property_request::GuidList {
                    guids: vec!["G".into()],
                },
            )),
        }),
        Req::ListSessionsRequest(ListSessionsRequest {}),
        Req::SendTextRequest(SendTextRequest {
            session: s("S"),
            text: s("echo hi\r"),
            suppress_broadcast: Some(true),
        }),
        Req::CreateTabRequest(CreateTabRequest {
            profile_name: s("Default"),
            window_id: s("pty-W"),
            tab_index: Some(2),
            command: s("top"),
            custom_profile_properties: vec![ProfileProperty {
                key: s("Command"),
                json_value: s("\"top\""),
            }],
            select_tab: Some(false),
        }),
        Req::SplitPaneRequest(SplitPaneRequest {
            session: s("S"),
            split_direction: Some(split_pane_request::SplitDirection::Horizontal as i32),
            before: Some(true),
            profile_name: s("P"),
            custom_profile_properties: vec![],
        }),
        Req::InjectRequest(InjectRequest {
            session_id: vec!["S".into(), "T".into()],
            data: Some(b"\x1b[1mhi".to_vec()),
        }),
        Req::ActivateRequest(ActivateRequest {
            order_window_front: Some(true),
            select_tab: Some(true),
            select_session: Some(false),
            activate_app: Some(activate_request::App {
                raise_all_windows: Some(true),
                ignoring_other_apps: Some(false),
            }),
            identifier: Some(activate_request::Identifier::TabId("4".into())),
        }),
        Req::VariableRequest(VariableRequest {
            set: vec![variable_request::Set {
                name: s("user.a"),
                value: s("\"b\""),
            }],
            get: vec!["user.a".into(), "id".into()],
            scope: Some(variable_request::Scope::WindowId("pty-W".into())),
        }),
        Req::VariableRequest(VariableRequest {
            set: vec![],
            get: vec!["pid".into()],
            scope: Some(variable_request::Scope::App(true)),
        }),
        Req::FocusRequest(FocusRequest {}),
        Req::MenuItemRequest(MenuItemRequest {
            identifier: s("tmux.Detach"),
            query_only: Some(true),
        }),
        Req::GetBroadcastDomainsRequest(GetBroadcastDomainsRequest {}),
        Req::TmuxRequest(TmuxRequest {
            payload: Some(tmux_request::Payload::SendCommand(
                tmux_request::SendCommand {
                    connection_id: s("C"),
                    command: s("list-windows"),
                },
            )),
        }),
        Req::TmuxRequest(TmuxRequest {
            payload: Some(tmux_request::Payload::CreateWindow(
                tmux_request::CreateWindow {
                    connection_id: s("C"),
                    affinity: s("pty-W"),
                },
            )),
        }),
        Req::TmuxRequest(TmuxRequest {
            payload: Some(tmux_request::Payload::SetWindowVisible(
                tmux_request::SetWindowVisible {
                    connection_id: s("C"),
                    window_id: s("1"),
                    visible: Some(false),
                },
            )),
        }),
        Req::TmuxRequest(TmuxRequest {
            payload: Some(tmux_request::Payload::ListConnections(
                tmux_request::ListConnections {},
            )),
        }),
        Req::CloseRequest(CloseRequest {
            force: Some(true),
            target: Some(close_request::Target::Windows(
                close_request::CloseWindows {
                    window_ids: vec!["pty-W".into()],
                },
            )),
        }),
        Req::ListPromptsRequest(ListPromptsRequest {
            session: s("S"),
            first_unique_id: s("A"),
            last_unique_id: s("B"),
        }),
    ]
}

fn list_sessions() -> ListSessionsResponse {
    use proto::split_tree_node::{SplitTreeLink, split_tree_link::Child};
    let summary = |id: &str| SessionSummary {
        unique_identifier: s(id),
        frame: Some(Frame {
            origin: Some(Point {
                x: Some(0),
                y: Some(8),
            }),
            size: Some(Size {
                width: Some(640),
                height: Some(384),
            }),
        }),
        grid_size: Some(Size {
            width: Some(80),
            height: Some(24),
        }),
        title: s("bash"),
    };
    ListSessionsResponse {
        windows: vec![list_sessions_response::Window {
            tabs: vec![list_sessions_response::Tab {
                root: Some(SplitTreeNode {
                    vertical: Some(true),
                    links: vec![
                        SplitTreeLink {
                            child: Some(Child::Session(summary("S1"))),
                        },
                        SplitTreeLink {
                            child: Some(Child::Node(SplitTreeNode {
                                vertical: Some(false),
                                links: vec![SplitTreeLink {
                                    child: Some(Child::Session(summary("S2"))),
                                }],
                            })),
                        },
                    ],
                }),
                tab_id: s("1"),
                tmux_window_id: s("@1"),
                tmux_connection_id: s("C"),
                minimized_sessions: vec![summary("S3")],
                active_session_id: s("S1"),
            }],
            window_id: s("pty-W"),
            frame: None,
            number: Some(1),
            selected_tab_id: s("1"),
        }],
        buried_sessions: vec![summary("S4")],
    }
}

fn replies() -> Vec<Rep> {
    use proto::focus_changed_notification as fcn;
    vec![
        Rep::Error("malformed".into()),
        Rep::GetBufferResponse(GetBufferResponse {
            status: Some(0),
            range: Some(Range {
                location: Some(10),
                length: Some(2),
            }),
            contents: vec![LineContents {
                text: s("héllo"),
                code_points_per_cell: vec![CodePointsPerCell {
                    num_code_points: Some(2),
                    repeats: Some(1),
                }],
                continuation: Some(2),
            }],
            cursor: coord(3, 11),
            num_lines_above_screen: Some(10),
            windowed_coord_range: None,
        }),
        Rep::GetPromptResponse(GetPromptResponse {
            status: Some(0),
            prompt_range: range(1, 1),
            command_range: range(1, 2),
            output_range: range(2, 5),
            working_directory: s("/tmp"),
            command: s("ls"),
            prompt_state: Some(2),
            exit_status: Some(3),
            unique_prompt_id: s("P"),
        }),
        Rep::NotificationResponse(NotificationResponse { status: Some(4) }),
        Rep::SetProfilePropertyResponse(SetProfilePropertyResponse { status: Some(3) }),
        Rep::ListSessionsResponse(list_sessions()),
        Rep::SendTextResponse(SendTextResponse { status: Some(1) }),
        Rep::CreateTabResponse(CreateTabResponse {
            status: Some(0),
            window_id: s("pty-W"),
            tab_id: Some(3),
            session_id: s("S"),
        }),
        Rep::SplitPaneResponse(SplitPaneResponse {
            status: Some(0),
            session_id: vec!["A".into(), "B".into()],
        }),
        Rep::InjectResponse(InjectResponse { status: vec![0, 1] }),
        Rep::ActivateResponse(ActivateResponse { status: Some(1) }),
        Rep::VariableResponse(VariableResponse {
            status: Some(0),
            values: vec!["\"x\"".into(), "null".into()],
        }),
        Rep::FocusResponse(FocusResponse {
            notifications: vec![
                FocusChangedNotification {
                    event: Some(fcn::Event::ApplicationActive(true)),
                },
                FocusChangedNotification {
                    event: Some(fcn::Event::Window(fcn::Window {
                        window_status: Some(1),
                        window_id: s("pty-W"),
                    })),
                },
                FocusChangedNotification {
                    event: Some(fcn::Event::SelectedTab("1".into())),
                },
                FocusChangedNotification {
                    event: Some(fcn::Event::Session("S".into())),
                },
            ],
        }),
        Rep::MenuItemResponse(MenuItemResponse {
            status: Some(0),
            checked: Some(false),
            enabled: Some(true),
        }),
        Rep::GetBroadcastDomainsResponse(GetBroadcastDomainsResponse {
            broadcast_domains: vec![BroadcastDomain {
                session_ids: vec!["A".into(), "B".into()],
            }],
        }),
        Rep::TmuxResponse(TmuxResponse {
            status: Some(0),
            payload: Some(tmux_response::Payload::ListConnections(
                tmux_response::ListConnections {
                    connections: vec![tmux_response::list_connections::Connection {
                        connection_id: s("C"),
                        owning_session_id: s("S"),
                    }],
                },
            )),
        }),
        Rep::TmuxResponse(TmuxResponse {
            status: Some(0),
            payload: Some(tmux_response::Payload::CreateWindow(
                tmux_response::CreateWindow { tab_id: s("5") },
            )),
        }),
        Rep::TmuxResponse(TmuxResponse {
            status: Some(2),
            payload: Some(tmux_response::Payload::SendCommand(
                tmux_response::SendCommand { output: s("out") },
            )),
        }),
        Rep::CloseResponse(CloseResponse {
            statuses: vec![0, 1, 2],
        }),
        Rep::ListPromptsResponse(ListPromptsResponse {
            status: Some(0),
            unique_prompt_id: vec!["A".into()],
        }),
        Rep::Notification(Notification {
            keystroke_notification: Some(KeystrokeNotification {
                characters: s("a"),
                characters_ignoring_modifiers: s("A"),
                modifiers: vec![1, 4],
                key_code: Some(0),
                session: s("S"),
                action: Some(1),
            }),
            screen_update_notification: Some(ScreenUpdateNotification { session: s("S") }),
            prompt_notification: Some(PromptNotification {
                session: s("S"),
                event: Some(prompt_notification::Event::CommandStart(
                    PromptNotificationCommandStart { command: s("ls") },
                )),
                unique_prompt_id: s("P"),
            }),
            new_session_notification: Some(NewSessionNotification { session_id: s("N") }),
            terminate_session_notification: Some(TerminateSessionNotification {
                session_id: s("T"),
            }),
            layout_changed_notification: Some(LayoutChangedNotification {
                list_sessions_response: Some(list_sessions()),
            }),
            focus_changed_notification: Some(FocusChangedNotification {
                event: Some(fcn::Event::Session("S".into())),
            }),
            broadcast_domains_changed: Some(BroadcastDomainsChangedNotification {
                broadcast_domains: vec![],
            }),
            variable_changed_notification: Some(VariableChangedNotification {
                scope: Some(1),
                identifier: s("S"),
                name: s("user.x"),
                json_new_value: s("1"),
            }),
        }),
        Rep::Notification(Notification {
            prompt_notification: Some(PromptNotification {
                session: s("S"),
                event: Some(prompt_notification::Event::Prompt(
                    PromptNotificationPrompt {
                        placeholder: None,
                        prompt: Some(GetPromptResponse {
                            status: Some(0),
                            prompt_state: Some(0),
                            ..Default::default()
                        }),
                    },
                )),
                unique_prompt_id: s("P"),
            }),
            ..Default::default()
        }),
    ]
}

#[test]
fn rust_and_official_python_agree() -> Result<()> {
    let Some(py) = python() else {
        if std::env::var_os("TERMLOOM_REQUIRE_ITERM_PYTHON").is_some() {
            bail!("no Python with the iterm2 package (set TERMLOOM_ITERM_PYTHON)");
        }
        eprintln!(
            "SKIPPED: no Python with the `iterm2` package; set TERMLOOM_ITERM_PYTHON to a python \
             that has `pip install -r tests/iterm_fake/requirements.txt`"
        );
        return Ok(());
    };
    let mut inputs: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut requests_sent = Vec::new();
    for (i, r) in requests().into_iter().enumerate() {
        let m = ClientOriginatedMessage::request(i as i64, r);
        inputs.push(("ClientOriginatedMessage", m.encode_to_vec()));
        requests_sent.push(m);
    }
    let mut replies_sent = Vec::new();
    for (i, r) in replies().into_iter().enumerate() {
        let notification = matches!(r, Rep::Notification(_));
        let m = ServerOriginatedMessage {
            id: (!notification).then_some(i as i64),
            submessage: Some(r),
        };
        inputs.push(("ServerOriginatedMessage", m.encode_to_vec()));
        replies_sent.push(m);
    }
    let mut child = Command::new(&py)
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start python")?;
    {
        let mut stdin = child.stdin.take().context("stdin")?;
        for (name, bytes) in &inputs {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{name} {hex}")?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("proto_roundtrip.py failed: {}", out.status);
    }
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let unhex = |v: &serde_json::Value| -> Result<Vec<u8>> {
        let h = v.as_str().context("hex")?;
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).context("hex digit"))
            .collect()
    };
    let (echoed, built) = lines.split_at(inputs.len());
    for (i, line) in echoed.iter().enumerate() {
        assert_eq!(
            line["unknown"], 0,
            "api_pb2 did not recognise fields of input {i}: {line}"
        );
        let back = unhex(&line["hex"])?;
        if i < requests_sent.len() {
            assert_eq!(
                ClientOriginatedMessage::decode(back.as_slice())?,
                requests_sent[i],
                "{line}"
            );
        } else {
            let j = i - requests_sent.len();
            assert_eq!(
                ServerOriginatedMessage::decode(back.as_slice())?,
                replies_sent[j],
                "{line}"
            );
        }
    }
    // Spot checks of how Python reads them.
    let create = echoed
        .iter()
        .find(|l| l["dict"].get("create_tab_response").is_some())
        .context("create tab reply")?;
    assert_eq!(create["dict"]["create_tab_response"]["tab_id"], 3);
    let buffer = echoed
        .iter()
        .find(|l| l["dict"].get("get_buffer_response").is_some())
        .context("buffer reply")?;
    assert_eq!(
        buffer["dict"]["get_buffer_response"]["contents"][0]["continuation"],
        "CONTINUATION_SOFT_EOL"
    );
    let send = echoed
        .iter()
        .find(|l| l["dict"].get("send_text_request").is_some())
        .context("send text request")?;
    assert_eq!(
        send["dict"]["send_text_request"]["suppress_broadcast"],
        true
    );

    // Python-built messages decode in Rust.
    let get = |label: &str| -> Result<ServerOriginatedMessage> {
        let line = built
            .iter()
            .find(|l| l["py"] == label)
            .with_context(|| format!("python message {label}"))?;
        Ok(ServerOriginatedMessage::decode(
            unhex(&line["hex"])?.as_slice(),
        )?)
    };
    match get("list_sessions")?.submessage {
        Some(Rep::ListSessionsResponse(l)) => {
            assert_eq!(l.session_ids(), vec!["S1", "S2", "S3"]);
            assert_eq!(l.windows[0].tabs[0].tab_id.as_deref(), Some("7"));
        }
        other => bail!("unexpected {other:?}"),
    }
    let m = get("prompt_end")?;
    assert_eq!(m.id, None);
    match m.submessage {
        Some(Rep::Notification(n)) => {
            let p = n.prompt_notification.context("prompt")?;
            assert_eq!(
                p.event,
                Some(prompt_notification::Event::CommandEnd(
                    PromptNotificationCommandEnd { status: Some(3) }
                ))
            );
        }
        other => bail!("unexpected {other:?}"),
    }
    match get("buffer")?.submessage {
        Some(Rep::GetBufferResponse(b)) => {
            assert_eq!(b.cursor, coord(2, 12_345_678_901));
            assert_eq!(
                b.contents[0].continuation(),
                line_contents::Continuation::SoftEol
            );
        }
        other => bail!("unexpected {other:?}"),
    }
    match get("close")?.submessage {
        Some(Rep::CloseResponse(c)) => assert_eq!(c.statuses, vec![0, 1, 2]),
        other => bail!("unexpected {other:?}"),
    }
    let e = get("error")?;
    assert_eq!(e.id, Some(11));
    assert_eq!(e.submessage, Some(Rep::Error("bad request".into())));
    Ok(())
}
