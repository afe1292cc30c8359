//! Hand-written protobuf messages for the part of iTerm2's API that termloom speaks.
//!
//! iTerm2's API is proto2 (`package iterm2`): every scalar is `optional`, so every scalar field
//! here is an `Option<T>` and "unset" survives a round trip. Repeated scalars are unpacked, as
//! proto2 wants unless told otherwise. Only the field *numbers* and *names* are taken from the
//! protocol (they were checked one by one against the descriptor shipped in the official PyPI
//! `iterm2` package, and against iTerm2's `proto/api.proto`); the Rust layout and all the
//! documentation are termloom's own.
//!
//! Messages and fields that termloom does not need are left out. Protobuf decoders skip unknown
//! fields, so a reply carrying fields (or whole sub-messages) that are not modelled here still
//! decodes; a request whose `submessage` is not modelled decodes with `submessage: None`.
//!
//! Naming follows `prost-build`: nested messages, enums and oneofs live in a module named after
//! the containing message in snake case (`list_sessions_response::Window`), and enum values lose
//! the prefix that repeats the enum's name (`LineContents.CONTINUATION_HARD_EOL` becomes
//! [`line_contents::Continuation::HardEol`]). Every enum has `as_str_name`/`from_str_name` giving
//! the protocol spelling, which is what error messages show.

// The derive macros expand to code that the lints below would flag; the messages themselves are
// plain data.
#![allow(clippy::derive_partial_eq_without_eq)]
// Oneofs hold their messages inline, as prost-build generates them; boxing would make the
// hand-written types differ from what every prost user expects.
#![allow(clippy::large_enum_variant)]

/// Declares a protobuf enum with prost's `Enumeration` derive plus name helpers.
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($variant:ident = $value:literal => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
        #[repr(i32)]
        pub enum $name {
            $(
                #[doc = concat!("Wire value ", stringify!($value), " (`", $text, "`).")]
                $variant = $value,
            )+
        }

        impl $name {
            /// The value's name as spelled in the protocol definition.
            pub fn as_str_name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Looks a value up by its protocol spelling.
            pub fn from_str_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

/// Name of a raw enum number, falling back to the number itself for values this crate does not
/// know (a newer iTerm2 may add some).
pub fn enum_name<E>(raw: i32) -> String
where
    E: TryFrom<i32> + Copy,
    E: EnumName,
{
    match E::try_from(raw) {
        Ok(e) => e.name().to_owned(),
        Err(_) => format!("UNKNOWN({raw})"),
    }
}

/// Implemented by every enum in this module: its protocol spelling.
pub trait EnumName {
    /// The protocol spelling of this value.
    fn name(self) -> &'static str;
}

macro_rules! impl_enum_name {
    ($($ty:path),+ $(,)?) => {
        $(impl EnumName for $ty {
            fn name(self) -> &'static str {
                self.as_str_name()
            }
        })+
    };
}

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

/// Every frame a client sends: a request id plus exactly one request.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ClientOriginatedMessage {
    /// Chosen by the client; the server copies it into the reply.
    #[prost(int64, optional, tag = "1")]
    pub id: Option<i64>,
    /// The request itself.
    #[prost(
        oneof = "client_originated_message::Submessage",
        tags = "100, 101, 103, 105, 106, 107, 108, 109, 113, 114, 115, 117, 121, 123, 124, 131, 133"
    )]
    pub submessage: Option<client_originated_message::Submessage>,
}

/// Nested types of [`ClientOriginatedMessage`].
pub mod client_originated_message {
    /// The request carried by a [`ClientOriginatedMessage`](super::ClientOriginatedMessage).
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Submessage {
        /// Read screen or scrollback lines.
        #[prost(message, tag = "100")]
        GetBufferRequest(super::GetBufferRequest),
        /// Describe a shell prompt (needs shell integration marks).
        #[prost(message, tag = "101")]
        GetPromptRequest(super::GetPromptRequest),
        /// Subscribe to or unsubscribe from notifications.
        #[prost(message, tag = "103")]
        NotificationRequest(super::NotificationRequest),
        /// Change profile properties of a session.
        #[prost(message, tag = "105")]
        SetProfilePropertyRequest(super::SetProfilePropertyRequest),
        /// List windows, tabs and sessions.
        #[prost(message, tag = "106")]
        ListSessionsRequest(super::ListSessionsRequest),
        /// Type text into a session.
        #[prost(message, tag = "107")]
        SendTextRequest(super::SendTextRequest),
        /// Create a tab, or a window when no window is named.
        #[prost(message, tag = "108")]
        CreateTabRequest(super::CreateTabRequest),
        /// Split a session.
        #[prost(message, tag = "109")]
        SplitPaneRequest(super::SplitPaneRequest),
        /// Feed bytes to sessions as if the program had printed them.
        #[prost(message, tag = "113")]
        InjectRequest(super::InjectRequest),
        /// Bring a window, tab or session forward.
        #[prost(message, tag = "114")]
        ActivateRequest(super::ActivateRequest),
        /// Read or write variables.
        #[prost(message, tag = "115")]
        VariableRequest(super::VariableRequest),
        /// Ask what has keyboard focus.
        #[prost(message, tag = "117")]
        FocusRequest(super::FocusRequest),
        /// Invoke or query a menu item.
        #[prost(message, tag = "121")]
        MenuItemRequest(super::MenuItemRequest),
        /// List broadcast-input domains.
        #[prost(message, tag = "123")]
        GetBroadcastDomainsRequest(super::GetBroadcastDomainsRequest),
        /// tmux integration (`tmux -CC`) operations.
        #[prost(message, tag = "124")]
        TmuxRequest(super::TmuxRequest),
        /// Close sessions, tabs or windows.
        #[prost(message, tag = "131")]
        CloseRequest(super::CloseRequest),
        /// List the ids of a session's prompts.
        #[prost(message, tag = "133")]
        ListPromptsRequest(super::ListPromptsRequest),
    }
}

/// Every frame the server sends: a reply (carrying the request's id) or a notification (no id).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ServerOriginatedMessage {
    /// The id of the request this answers; unset on notifications.
    #[prost(int64, optional, tag = "1")]
    pub id: Option<i64>,
    /// The reply, an error, or a notification.
    #[prost(
        oneof = "server_originated_message::Submessage",
        tags = "2, 100, 101, 103, 105, 106, 107, 108, 109, 113, 114, 115, 117, 121, 123, 124, 131, 133, 1000"
    )]
    pub submessage: Option<server_originated_message::Submessage>,
}

/// Nested types of [`ServerOriginatedMessage`].
pub mod server_originated_message {
    /// The payload of a [`ServerOriginatedMessage`](super::ServerOriginatedMessage). Reply
    /// variants share their tag with the request they answer.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Submessage {
        /// The request could not be understood at all.
        #[prost(string, tag = "2")]
        Error(String),
        /// Reply to a buffer read.
        #[prost(message, tag = "100")]
        GetBufferResponse(super::GetBufferResponse),
        /// Reply to a prompt query.
        #[prost(message, tag = "101")]
        GetPromptResponse(super::GetPromptResponse),
        /// Reply to a (un)subscription.
        #[prost(message, tag = "103")]
        NotificationResponse(super::NotificationResponse),
        /// Reply to a profile property change.
        #[prost(message, tag = "105")]
        SetProfilePropertyResponse(super::SetProfilePropertyResponse),
        /// Reply to a session listing.
        #[prost(message, tag = "106")]
        ListSessionsResponse(super::ListSessionsResponse),
        /// Reply to sending text.
        #[prost(message, tag = "107")]
        SendTextResponse(super::SendTextResponse),
        /// Reply to creating a tab or window.
        #[prost(message, tag = "108")]
        CreateTabResponse(super::CreateTabResponse),
        /// Reply to a split.
        #[prost(message, tag = "109")]
        SplitPaneResponse(super::SplitPaneResponse),
        /// Reply to an injection.
        #[prost(message, tag = "113")]
        InjectResponse(super::InjectResponse),
        /// Reply to an activation.
        #[prost(message, tag = "114")]
        ActivateResponse(super::ActivateResponse),
        /// Reply to a variable read or write.
        #[prost(message, tag = "115")]
        VariableResponse(super::VariableResponse),
        /// Reply to a focus query.
        #[prost(message, tag = "117")]
        FocusResponse(super::FocusResponse),
        /// Reply to a menu item request.
        #[prost(message, tag = "121")]
        MenuItemResponse(super::MenuItemResponse),
        /// Reply to a broadcast domain listing.
        #[prost(message, tag = "123")]
        GetBroadcastDomainsResponse(super::GetBroadcastDomainsResponse),
        /// Reply to a tmux request.
        #[prost(message, tag = "124")]
        TmuxResponse(super::TmuxResponse),
        /// Reply to a close request.
        #[prost(message, tag = "131")]
        CloseResponse(super::CloseResponse),
        /// Reply to a prompt listing.
        #[prost(message, tag = "133")]
        ListPromptsResponse(super::ListPromptsResponse),
        /// A spontaneous event the client subscribed to.
        #[prost(message, tag = "1000")]
        Notification(super::Notification),
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry shared by several messages
// ---------------------------------------------------------------------------------------------

/// A cell position. `y` counts lines from the start of the session's history, including lines
/// that were since dropped from scrollback, so it stays valid as history is trimmed.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Coord {
    /// Column, 0-based.
    #[prost(int32, optional, tag = "1")]
    pub x: Option<i32>,
    /// Absolute line number, 0-based.
    #[prost(int64, optional, tag = "2")]
    pub y: Option<i64>,
}

/// A half-open span of cells from `start` to `end`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CoordRange {
    /// First cell.
    #[prost(message, optional, tag = "1")]
    pub start: Option<Coord>,
    /// One past the last cell.
    #[prost(message, optional, tag = "2")]
    pub end: Option<Coord>,
}

/// A span of integers: `location .. location + length`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Range {
    /// First value.
    #[prost(int64, optional, tag = "1")]
    pub location: Option<i64>,
    /// Number of values.
    #[prost(int64, optional, tag = "2")]
    pub length: Option<i64>,
}

/// A cell range limited to a band of columns.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WindowedCoordRange {
    /// The cells.
    #[prost(message, optional, tag = "1")]
    pub coord_range: Option<CoordRange>,
    /// The columns the range is clipped to.
    #[prost(message, optional, tag = "2")]
    pub columns: Option<Range>,
}

/// A point in screen coordinates (pixels).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Point {
    /// Horizontal.
    #[prost(int32, optional, tag = "1")]
    pub x: Option<i32>,
    /// Vertical.
    #[prost(int32, optional, tag = "2")]
    pub y: Option<i32>,
}

/// A size: pixels for frames, cells for grid sizes.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Size {
    /// Width.
    #[prost(int32, optional, tag = "1")]
    pub width: Option<i32>,
    /// Height.
    #[prost(int32, optional, tag = "2")]
    pub height: Option<i32>,
}

/// A rectangle in pixels.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Frame {
    /// Top-left corner.
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Point>,
    /// Extent.
    #[prost(message, optional, tag = "2")]
    pub size: Option<Size>,
}

/// One profile setting: a key and its value as JSON text.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ProfileProperty {
    /// Profile key, e.g. `"Command"`.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// The value, JSON-encoded (`"\"x\""` for the string `x`).
    #[prost(string, optional, tag = "2")]
    pub json_value: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Sessions, tabs, windows
// ---------------------------------------------------------------------------------------------

/// Asks for every window, tab and session.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListSessionsRequest {}

/// The window → tab → split tree → session hierarchy.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListSessionsResponse {
    /// Terminal windows.
    #[prost(message, repeated, tag = "1")]
    pub windows: Vec<list_sessions_response::Window>,
    /// Sessions that exist but are hidden ("buried").
    #[prost(message, repeated, tag = "2")]
    pub buried_sessions: Vec<SessionSummary>,
}

/// Nested types of [`ListSessionsResponse`].
pub mod list_sessions_response {
    /// One terminal window.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Window {
        /// Its tabs, in display order.
        #[prost(message, repeated, tag = "1")]
        pub tabs: Vec<Tab>,
        /// Window id (a string such as `pty-…`).
        #[prost(string, optional, tag = "2")]
        pub window_id: Option<String>,
        /// Position and size on screen.
        #[prost(message, optional, tag = "3")]
        pub frame: Option<super::Frame>,
        /// The window number shown to the user.
        #[prost(int32, optional, tag = "4")]
        pub number: Option<i32>,
        /// The id of the selected tab.
        #[prost(string, optional, tag = "5")]
        pub selected_tab_id: Option<String>,
    }

    /// One tab.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Tab {
        /// Root of the split-pane tree.
        #[prost(message, optional, tag = "3")]
        pub root: Option<super::SplitTreeNode>,
        /// Tab id (a decimal number as a string).
        #[prost(string, optional, tag = "2")]
        pub tab_id: Option<String>,
        /// tmux window id when the tab shows a `tmux -CC` window.
        #[prost(string, optional, tag = "4")]
        pub tmux_window_id: Option<String>,
        /// tmux connection id when the tab shows a `tmux -CC` window.
        #[prost(string, optional, tag = "5")]
        pub tmux_connection_id: Option<String>,
        /// Sessions minimized out of the split tree.
        #[prost(message, repeated, tag = "6")]
        pub minimized_sessions: Vec<super::SessionSummary>,
        /// The session with focus inside this tab.
        #[prost(string, optional, tag = "7")]
        pub active_session_id: Option<String>,
    }
}

/// A node of a tab's split tree: children laid out side by side or stacked.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SplitTreeNode {
    /// True when the dividers between children are vertical (children side by side).
    #[prost(bool, optional, tag = "1")]
    pub vertical: Option<bool>,
    /// Children in order (left to right, or top to bottom).
    #[prost(message, repeated, tag = "2")]
    pub links: Vec<split_tree_node::SplitTreeLink>,
}

/// Nested types of [`SplitTreeNode`].
pub mod split_tree_node {
    /// One child of a split node.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SplitTreeLink {
        /// A session or a further split.
        #[prost(oneof = "split_tree_link::Child", tags = "1, 2")]
        pub child: Option<split_tree_link::Child>,
    }

    /// Nested types of [`SplitTreeLink`].
    pub mod split_tree_link {
        /// What a split-tree link points at.
        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum Child {
            /// A leaf: a session.
            #[prost(message, tag = "1")]
            Session(super::super::SessionSummary),
            /// A nested split.
            #[prost(message, tag = "2")]
            Node(super::super::SplitTreeNode),
        }
    }
}

/// What a listing says about one session.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionSummary {
    /// Session id (a UUID).
    #[prost(string, optional, tag = "1")]
    pub unique_identifier: Option<String>,
    /// Position within the window, in pixels.
    #[prost(message, optional, tag = "2")]
    pub frame: Option<Frame>,
    /// Size in cells.
    #[prost(message, optional, tag = "3")]
    pub grid_size: Option<Size>,
    /// Title as shown to the user.
    #[prost(string, optional, tag = "4")]
    pub title: Option<String>,
}

/// Creates a tab in a window, or a new window when `window_id` is unset.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CreateTabRequest {
    /// Profile to use; the default profile when unset.
    #[prost(string, optional, tag = "1")]
    pub profile_name: Option<String>,
    /// Window for the new tab; unset makes a new window.
    #[prost(string, optional, tag = "2")]
    pub window_id: Option<String>,
    /// Position among the window's tabs.
    #[prost(uint32, optional, tag = "3")]
    pub tab_index: Option<u32>,
    /// Deprecated command field; prefer the `Command` profile property.
    #[prost(string, optional, tag = "4")]
    pub command: Option<String>,
    /// Profile overrides for the new session.
    #[prost(message, repeated, tag = "5")]
    pub custom_profile_properties: Vec<ProfileProperty>,
    /// Select the new tab (default true in iTerm2).
    #[prost(bool, optional, tag = "6")]
    pub select_tab: Option<bool>,
}

/// Result of [`CreateTabRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CreateTabResponse {
    /// Outcome.
    #[prost(enumeration = "create_tab_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
    /// The window holding the new tab.
    #[prost(string, optional, tag = "2")]
    pub window_id: Option<String>,
    /// The new tab's id. Note: an integer here, a string everywhere else.
    #[prost(int32, optional, tag = "3")]
    pub tab_id: Option<i32>,
    /// The new tab's session.
    #[prost(string, optional, tag = "4")]
    pub session_id: Option<String>,
}

/// Nested types of [`CreateTabResponse`].
pub mod create_tab_response {
    proto_enum! {
        /// Outcome of creating a tab.
        Status {
            Ok = 0 => "OK",
            InvalidProfileName = 1 => "INVALID_PROFILE_NAME",
            InvalidWindowId = 2 => "INVALID_WINDOW_ID",
            InvalidTabIndex = 3 => "INVALID_TAB_INDEX",
            MissingSubstitution = 4 => "MISSING_SUBSTITUTION",
        }
    }
}

/// Splits a session, making a new one beside it.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SplitPaneRequest {
    /// The session to split.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// Orientation of the new divider.
    #[prost(
        enumeration = "split_pane_request::SplitDirection",
        optional,
        tag = "2"
    )]
    pub split_direction: Option<i32>,
    /// Put the new session left of / above the old one.
    #[prost(bool, optional, tag = "3", default = "false")]
    pub before: Option<bool>,
    /// Profile for the new session.
    #[prost(string, optional, tag = "4")]
    pub profile_name: Option<String>,
    /// Profile overrides for the new session.
    #[prost(message, repeated, tag = "5")]
    pub custom_profile_properties: Vec<ProfileProperty>,
}

/// Nested types of [`SplitPaneRequest`].
pub mod split_pane_request {
    proto_enum! {
        /// Orientation of the divider a split creates.
        SplitDirection {
            Vertical = 0 => "VERTICAL",
            Horizontal = 1 => "HORIZONTAL",
        }
    }
}

/// Result of [`SplitPaneRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SplitPaneResponse {
    /// Outcome.
    #[prost(enumeration = "split_pane_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
    /// New session ids (empty for splits inside a tmux window: watch the layout instead).
    #[prost(string, repeated, tag = "2")]
    pub session_id: Vec<String>,
}

/// Nested types of [`SplitPaneResponse`].
pub mod split_pane_response {
    proto_enum! {
        /// Outcome of a split.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            InvalidProfileName = 2 => "INVALID_PROFILE_NAME",
            CannotSplit = 3 => "CANNOT_SPLIT",
            MalformedCustomProfileProperty = 4 => "MALFORMED_CUSTOM_PROFILE_PROPERTY",
        }
    }
}

/// Types text into a session as though the user had.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SendTextRequest {
    /// Target session (or `all` / `active`).
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// The text; `\r` is Enter.
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
    /// Send only to this session even when input is broadcast.
    #[prost(bool, optional, tag = "3")]
    pub suppress_broadcast: Option<bool>,
}

/// Result of [`SendTextRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SendTextResponse {
    /// Outcome.
    #[prost(enumeration = "send_text_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
}

/// Nested types of [`SendTextResponse`].
pub mod send_text_response {
    proto_enum! {
        /// Outcome of sending text.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
        }
    }
}

/// Feeds bytes to sessions as though their program had printed them.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InjectRequest {
    /// Target sessions.
    #[prost(string, repeated, tag = "1")]
    pub session_id: Vec<String>,
    /// Raw bytes.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
}

/// Result of [`InjectRequest`]: one status per requested session.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InjectResponse {
    /// Per-session outcome.
    #[prost(
        enumeration = "inject_response::Status",
        repeated,
        packed = "false",
        tag = "1"
    )]
    pub status: Vec<i32>,
}

/// Nested types of [`InjectResponse`].
pub mod inject_response {
    proto_enum! {
        /// Outcome for one session.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Screen contents
// ---------------------------------------------------------------------------------------------

/// Reads lines of a session's screen and history.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetBufferRequest {
    /// Target session.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// Which lines.
    #[prost(message, optional, tag = "2")]
    pub line_range: Option<LineRange>,
    /// Also return per-cell styles.
    #[prost(bool, optional, tag = "3")]
    pub include_styles: Option<bool>,
}

/// Which lines a [`GetBufferRequest`] wants: set exactly one field.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LineRange {
    /// Just the visible screen.
    #[prost(bool, optional, tag = "1")]
    pub screen_contents_only: Option<bool>,
    /// The last N lines of history plus screen.
    #[prost(int32, optional, tag = "2")]
    pub trailing_lines: Option<i32>,
    /// An explicit range.
    #[prost(message, optional, tag = "3")]
    pub windowed_coord_range: Option<WindowedCoordRange>,
}

/// Lines read by a [`GetBufferRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetBufferResponse {
    /// Outcome.
    #[prost(
        enumeration = "get_buffer_response::Status",
        optional,
        tag = "1",
        default = "Ok"
    )]
    pub status: Option<i32>,
    /// Absolute line numbers covered by `contents`.
    #[prost(message, optional, tag = "2")]
    pub range: Option<Range>,
    /// The lines, top to bottom.
    #[prost(message, repeated, tag = "3")]
    pub contents: Vec<LineContents>,
    /// Cursor position (absolute `y`).
    #[prost(message, optional, tag = "4")]
    pub cursor: Option<Coord>,
    /// Absolute line number of the first screen line (history lines, including dropped ones).
    #[prost(int64, optional, tag = "5")]
    pub num_lines_above_screen: Option<i64>,
    /// The range actually returned, when one was asked for.
    #[prost(message, optional, tag = "6")]
    pub windowed_coord_range: Option<WindowedCoordRange>,
}

/// Nested types of [`GetBufferResponse`].
pub mod get_buffer_response {
    proto_enum! {
        /// Outcome of a buffer read.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            InvalidLineRange = 2 => "INVALID_LINE_RANGE",
            RequestMalformed = 3 => "REQUEST_MALFORMED",
        }
    }
}

/// One line of text.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LineContents {
    /// The characters.
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
    /// Run-length map of code points per cell (for combining marks); absent means one each.
    #[prost(message, repeated, tag = "2")]
    pub code_points_per_cell: Vec<CodePointsPerCell>,
    /// Whether the line ends with a newline or wraps into the next one.
    #[prost(
        enumeration = "line_contents::Continuation",
        optional,
        tag = "3",
        default = "HardEol"
    )]
    pub continuation: Option<i32>,
}

/// Nested types of [`LineContents`].
pub mod line_contents {
    proto_enum! {
        /// How a line ends.
        Continuation {
            HardEol = 1 => "CONTINUATION_HARD_EOL",
            SoftEol = 2 => "CONTINUATION_SOFT_EOL",
        }
    }
}

/// `repeats` consecutive cells holding `num_code_points` code points each.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CodePointsPerCell {
    /// Code points in each cell.
    #[prost(int32, optional, tag = "1", default = "1")]
    pub num_code_points: Option<i32>,
    /// Number of cells in the run.
    #[prost(int32, optional, tag = "2")]
    pub repeats: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Prompts (shell integration)
// ---------------------------------------------------------------------------------------------

/// Describes the latest (or a given) prompt of a session.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetPromptRequest {
    /// Target session.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// A specific prompt; the latest when unset.
    #[prost(string, optional, tag = "2")]
    pub unique_prompt_id: Option<String>,
}

/// A prompt and the command typed at it.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetPromptResponse {
    /// Outcome.
    #[prost(
        enumeration = "get_prompt_response::Status",
        optional,
        tag = "1",
        default = "Ok"
    )]
    pub status: Option<i32>,
    /// Where the prompt text is.
    #[prost(message, optional, tag = "2")]
    pub prompt_range: Option<CoordRange>,
    /// Where the command text is.
    #[prost(message, optional, tag = "3")]
    pub command_range: Option<CoordRange>,
    /// Where the command's output is.
    #[prost(message, optional, tag = "4")]
    pub output_range: Option<CoordRange>,
    /// Working directory at the prompt, when the shell reported it.
    #[prost(string, optional, tag = "5")]
    pub working_directory: Option<String>,
    /// The command, once entered.
    #[prost(string, optional, tag = "6")]
    pub command: Option<String>,
    /// Editing, running or finished.
    #[prost(enumeration = "get_prompt_response::State", optional, tag = "7")]
    pub prompt_state: Option<i32>,
    /// Exit status, once finished.
    #[prost(uint32, optional, tag = "9")]
    pub exit_status: Option<u32>,
    /// Stable id of this prompt.
    #[prost(string, optional, tag = "10")]
    pub unique_prompt_id: Option<String>,
}

/// Nested types of [`GetPromptResponse`].
pub mod get_prompt_response {
    proto_enum! {
        /// Outcome of a prompt query.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            RequestMalformed = 2 => "REQUEST_MALFORMED",
            PromptUnavailable = 3 => "PROMPT_UNAVAILABLE",
        }
    }
    proto_enum! {
        /// Where a prompt is in its life.
        State {
            Editing = 0 => "EDITING",
            Running = 1 => "RUNNING",
            Finished = 2 => "FINISHED",
        }
    }
}

/// Lists prompt ids of a session, oldest first.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListPromptsRequest {
    /// Target session.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// Start after… (inclusive bound).
    #[prost(string, optional, tag = "2")]
    pub first_unique_id: Option<String>,
    /// End at… (inclusive bound).
    #[prost(string, optional, tag = "3")]
    pub last_unique_id: Option<String>,
}

/// Result of [`ListPromptsRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ListPromptsResponse {
    /// Outcome.
    #[prost(
        enumeration = "list_prompts_response::Status",
        optional,
        tag = "1",
        default = "Ok"
    )]
    pub status: Option<i32>,
    /// Prompt ids, oldest first.
    #[prost(string, repeated, tag = "2")]
    pub unique_prompt_id: Vec<String>,
}

/// Nested types of [`ListPromptsResponse`].
pub mod list_prompts_response {
    proto_enum! {
        /// Outcome of a prompt listing.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------------

proto_enum! {
    /// Which kind of object a variable belongs to.
    VariableScope {
        Session = 1 => "SESSION",
        Tab = 2 => "TAB",
        Window = 3 => "WINDOW",
        App = 4 => "APP",
    }
}

/// Reads and/or writes variables of one object. Values are JSON text both ways.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariableRequest {
    /// Variables to write (names must start with `user.`).
    #[prost(message, repeated, tag = "2")]
    pub set: Vec<variable_request::Set>,
    /// Variable names to read.
    #[prost(string, repeated, tag = "3")]
    pub get: Vec<String>,
    /// The object whose variables are meant.
    #[prost(oneof = "variable_request::Scope", tags = "1, 4, 5, 6")]
    pub scope: Option<variable_request::Scope>,
}

/// Nested types of [`VariableRequest`].
pub mod variable_request {
    /// One assignment.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Set {
        /// Variable name.
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        /// New value as JSON text.
        #[prost(string, optional, tag = "2")]
        pub value: Option<String>,
    }

    /// The object a variable request is about.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Scope {
        /// A session (or `all` / `active`).
        #[prost(string, tag = "1")]
        SessionId(String),
        /// A tab.
        #[prost(string, tag = "4")]
        TabId(String),
        /// The application (set it to `true`).
        #[prost(bool, tag = "5")]
        App(bool),
        /// A window.
        #[prost(string, tag = "6")]
        WindowId(String),
    }
}

/// Result of [`VariableRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariableResponse {
    /// Outcome.
    #[prost(enumeration = "variable_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
    /// One JSON value per requested `get`, in order (`null` when unset).
    #[prost(string, repeated, tag = "2")]
    pub values: Vec<String>,
}

/// Nested types of [`VariableResponse`].
pub mod variable_response {
    proto_enum! {
        /// Outcome of a variable request.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            InvalidName = 2 => "INVALID_NAME",
            MissingScope = 3 => "MISSING_SCOPE",
            TabNotFound = 4 => "TAB_NOT_FOUND",
            MultiGetDisallowed = 5 => "MULTI_GET_DISALLOWED",
            WindowNotFound = 6 => "WINDOW_NOT_FOUND",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

proto_enum! {
    /// Kinds of notification a client can subscribe to. The numbers match the field numbers
    /// inside [`Notification`].
    NotificationType {
        NotifyOnKeystroke = 1 => "NOTIFY_ON_KEYSTROKE",
        NotifyOnScreenUpdate = 2 => "NOTIFY_ON_SCREEN_UPDATE",
        NotifyOnPrompt = 3 => "NOTIFY_ON_PROMPT",
        NotifyOnLocationChange = 4 => "NOTIFY_ON_LOCATION_CHANGE",
        NotifyOnCustomEscapeSequence = 5 => "NOTIFY_ON_CUSTOM_ESCAPE_SEQUENCE",
        NotifyOnNewSession = 6 => "NOTIFY_ON_NEW_SESSION",
        NotifyOnTerminateSession = 7 => "NOTIFY_ON_TERMINATE_SESSION",
        NotifyOnLayoutChange = 8 => "NOTIFY_ON_LAYOUT_CHANGE",
        NotifyOnFocusChange = 9 => "NOTIFY_ON_FOCUS_CHANGE",
        NotifyOnServerOriginatedRpc = 10 => "NOTIFY_ON_SERVER_ORIGINATED_RPC",
        NotifyOnBroadcastChange = 11 => "NOTIFY_ON_BROADCAST_CHANGE",
        NotifyOnVariableChange = 12 => "NOTIFY_ON_VARIABLE_CHANGE",
        NotifyOnProfileChange = 13 => "NOTIFY_ON_PROFILE_CHANGE",
        KeystrokeFilter = 14 => "KEYSTROKE_FILTER",
    }
}

proto_enum! {
    /// Which prompt events a prompt subscription wants.
    PromptMonitorMode {
        Prompt = 1 => "PROMPT",
        CommandStart = 2 => "COMMAND_START",
        CommandEnd = 3 => "COMMAND_END",
    }
}

proto_enum! {
    /// Keyboard modifiers.
    Modifiers {
        Control = 1 => "CONTROL",
        Option = 2 => "OPTION",
        Command = 3 => "COMMAND",
        Shift = 4 => "SHIFT",
        Function = 5 => "FUNCTION",
        Numpad = 6 => "NUMPAD",
    }
}

/// Subscribes to (or unsubscribes from) one kind of notification.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NotificationRequest {
    /// Session to watch, or `all`; ignored for app-wide kinds.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// True to subscribe, false to unsubscribe.
    #[prost(bool, optional, tag = "2")]
    pub subscribe: Option<bool>,
    /// The kind.
    #[prost(enumeration = "NotificationType", optional, tag = "3")]
    pub notification_type: Option<i32>,
    /// Extra arguments some kinds need.
    #[prost(oneof = "notification_request::Arguments", tags = "5, 6, 9")]
    pub arguments: Option<notification_request::Arguments>,
}

/// Nested types of [`NotificationRequest`].
pub mod notification_request {
    /// Kind-specific subscription arguments.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Arguments {
        /// For keystroke notifications.
        #[prost(message, tag = "5")]
        KeystrokeMonitorRequest(super::KeystrokeMonitorRequest),
        /// For variable-change notifications: which variable.
        #[prost(message, tag = "6")]
        VariableMonitorRequest(super::VariableMonitorRequest),
        /// For prompt notifications: which events.
        #[prost(message, tag = "9")]
        PromptMonitorRequest(super::PromptMonitorRequest),
    }
}

/// Keystroke subscription options.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeystrokeMonitorRequest {
    /// Keystrokes not to report.
    #[prost(message, repeated, tag = "1")]
    pub patterns_to_ignore: Vec<KeystrokePattern>,
    /// Report key-up and modifier changes too.
    #[prost(bool, optional, tag = "2")]
    pub advanced: Option<bool>,
}

/// Matches keystrokes.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeystrokePattern {
    /// Modifiers that must be down.
    #[prost(enumeration = "Modifiers", repeated, packed = "false", tag = "1")]
    pub required_modifiers: Vec<i32>,
    /// Modifiers that must be up.
    #[prost(enumeration = "Modifiers", repeated, packed = "false", tag = "2")]
    pub forbidden_modifiers: Vec<i32>,
    /// Virtual key codes.
    #[prost(int32, repeated, packed = "false", tag = "3")]
    pub keycodes: Vec<i32>,
    /// Characters produced.
    #[prost(string, repeated, tag = "4")]
    pub characters: Vec<String>,
    /// Characters ignoring modifiers.
    #[prost(string, repeated, tag = "5")]
    pub characters_ignoring_modifiers: Vec<String>,
}

/// Names the variable a variable-change subscription watches.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariableMonitorRequest {
    /// Variable name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Kind of owner.
    #[prost(enumeration = "VariableScope", optional, tag = "2")]
    pub scope: Option<i32>,
    /// Owner id (empty for the app).
    #[prost(string, optional, tag = "3")]
    pub identifier: Option<String>,
}

/// Prompt subscription options.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PromptMonitorRequest {
    /// Events wanted; empty means prompts only.
    #[prost(
        enumeration = "PromptMonitorMode",
        repeated,
        packed = "false",
        tag = "1"
    )]
    pub modes: Vec<i32>,
}

/// Result of [`NotificationRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NotificationResponse {
    /// Outcome.
    #[prost(enumeration = "notification_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
}

/// Nested types of [`NotificationResponse`].
pub mod notification_response {
    proto_enum! {
        /// Outcome of a (un)subscription.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            RequestMalformed = 2 => "REQUEST_MALFORMED",
            NotSubscribed = 3 => "NOT_SUBSCRIBED",
            AlreadySubscribed = 4 => "ALREADY_SUBSCRIBED",
            DuplicateServerOriginatedRpc = 5 => "DUPLICATE_SERVER_ORIGINATED_RPC",
            InvalidIdentifier = 6 => "INVALID_IDENTIFIER",
        }
    }
}

/// A spontaneous event. Exactly one field is set.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Notification {
    /// A key was pressed.
    #[prost(message, optional, tag = "1")]
    pub keystroke_notification: Option<KeystrokeNotification>,
    /// A session's screen changed.
    #[prost(message, optional, tag = "2")]
    pub screen_update_notification: Option<ScreenUpdateNotification>,
    /// Shell integration saw a prompt, command start or command end.
    #[prost(message, optional, tag = "3")]
    pub prompt_notification: Option<PromptNotification>,
    /// A session was created.
    #[prost(message, optional, tag = "6")]
    pub new_session_notification: Option<NewSessionNotification>,
    /// A session ended.
    #[prost(message, optional, tag = "7")]
    pub terminate_session_notification: Option<TerminateSessionNotification>,
    /// Windows, tabs or splits changed.
    #[prost(message, optional, tag = "8")]
    pub layout_changed_notification: Option<LayoutChangedNotification>,
    /// Focus moved.
    #[prost(message, optional, tag = "9")]
    pub focus_changed_notification: Option<FocusChangedNotification>,
    /// Broadcast domains changed.
    #[prost(message, optional, tag = "11")]
    pub broadcast_domains_changed: Option<BroadcastDomainsChangedNotification>,
    /// A watched variable changed.
    #[prost(message, optional, tag = "12")]
    pub variable_changed_notification: Option<VariableChangedNotification>,
}

/// A keystroke.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeystrokeNotification {
    /// Characters produced.
    #[prost(string, optional, tag = "1")]
    pub characters: Option<String>,
    /// Characters ignoring modifiers (protocol name `charactersIgnoringModifiers`).
    #[prost(string, optional, tag = "2")]
    pub characters_ignoring_modifiers: Option<String>,
    /// Modifiers held.
    #[prost(enumeration = "Modifiers", repeated, packed = "false", tag = "3")]
    pub modifiers: Vec<i32>,
    /// Virtual key code (protocol name `keyCode`).
    #[prost(int32, optional, tag = "4")]
    pub key_code: Option<i32>,
    /// Session with focus.
    #[prost(string, optional, tag = "5")]
    pub session: Option<String>,
    /// Down, up or modifier change.
    #[prost(enumeration = "keystroke_notification::Action", optional, tag = "6")]
    pub action: Option<i32>,
}

/// Nested types of [`KeystrokeNotification`].
pub mod keystroke_notification {
    proto_enum! {
        /// What happened to the key.
        Action {
            KeyDown = 0 => "KEY_DOWN",
            KeyUp = 1 => "KEY_UP",
            FlagsChanged = 2 => "FLAGS_CHANGED",
        }
    }
}

/// A session's screen changed.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ScreenUpdateNotification {
    /// The session.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
}

/// A shell-integration event.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PromptNotification {
    /// The session.
    #[prost(string, optional, tag = "1")]
    pub session: Option<String>,
    /// Which event.
    #[prost(oneof = "prompt_notification::Event", tags = "2, 3, 4")]
    pub event: Option<prompt_notification::Event>,
    /// The prompt the event belongs to.
    #[prost(string, optional, tag = "5")]
    pub unique_prompt_id: Option<String>,
}

/// Nested types of [`PromptNotification`].
pub mod prompt_notification {
    /// The event a prompt notification reports.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Event {
        /// A prompt was shown.
        #[prost(message, tag = "2")]
        Prompt(super::PromptNotificationPrompt),
        /// A command was entered.
        #[prost(message, tag = "3")]
        CommandStart(super::PromptNotificationCommandStart),
        /// A command finished.
        #[prost(message, tag = "4")]
        CommandEnd(super::PromptNotificationCommandEnd),
    }
}

/// A prompt appeared.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PromptNotificationPrompt {
    /// Unused placeholder kept by the protocol.
    #[prost(string, optional, tag = "1")]
    pub placeholder: Option<String>,
    /// Details of the prompt.
    #[prost(message, optional, tag = "2")]
    pub prompt: Option<GetPromptResponse>,
}

/// A command started running.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PromptNotificationCommandStart {
    /// The command line.
    #[prost(string, optional, tag = "1")]
    pub command: Option<String>,
}

/// A command finished.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PromptNotificationCommandEnd {
    /// Exit status.
    #[prost(int32, optional, tag = "1")]
    pub status: Option<i32>,
}

/// A session was created.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NewSessionNotification {
    /// The new session.
    #[prost(string, optional, tag = "1")]
    pub session_id: Option<String>,
}

/// A session ended.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TerminateSessionNotification {
    /// The session.
    #[prost(string, optional, tag = "1")]
    pub session_id: Option<String>,
}

/// The whole new layout after a change.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LayoutChangedNotification {
    /// Same shape as a session listing.
    #[prost(message, optional, tag = "1")]
    pub list_sessions_response: Option<ListSessionsResponse>,
}

/// Focus moved. Exactly one field is set.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FocusChangedNotification {
    /// What changed.
    #[prost(oneof = "focus_changed_notification::Event", tags = "1, 2, 3, 4")]
    pub event: Option<focus_changed_notification::Event>,
}

/// Nested types of [`FocusChangedNotification`].
pub mod focus_changed_notification {
    /// A window's focus state.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Window {
        /// What happened to it.
        #[prost(enumeration = "window::WindowStatus", optional, tag = "1")]
        pub window_status: Option<i32>,
        /// The window.
        #[prost(string, optional, tag = "2")]
        pub window_id: Option<String>,
    }

    /// Nested types of [`Window`].
    pub mod window {
        proto_enum! {
            /// A window's focus state.
            WindowStatus {
                TerminalWindowBecameKey = 0 => "TERMINAL_WINDOW_BECAME_KEY",
                TerminalWindowIsCurrent = 1 => "TERMINAL_WINDOW_IS_CURRENT",
                TerminalWindowResignedKey = 2 => "TERMINAL_WINDOW_RESIGNED_KEY",
            }
        }
    }

    /// The focus event.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Event {
        /// The application became active (true) or inactive.
        #[prost(bool, tag = "1")]
        ApplicationActive(bool),
        /// A window gained or lost key status.
        #[prost(message, tag = "2")]
        Window(Window),
        /// The selected tab of its window (tab id).
        #[prost(string, tag = "3")]
        SelectedTab(String),
        /// The active session of its tab (session id).
        #[prost(string, tag = "4")]
        Session(String),
    }
}

/// A watched variable changed.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariableChangedNotification {
    /// Kind of owner.
    #[prost(enumeration = "VariableScope", optional, tag = "1")]
    pub scope: Option<i32>,
    /// Owner id (empty for the app).
    #[prost(string, optional, tag = "2")]
    pub identifier: Option<String>,
    /// Variable name.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// New value as JSON text.
    #[prost(string, optional, tag = "4")]
    pub json_new_value: Option<String>,
}

/// A set of sessions that receive the same keyboard input.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BroadcastDomain {
    /// Member sessions.
    #[prost(string, repeated, tag = "1")]
    pub session_ids: Vec<String>,
}

/// Broadcast domains changed.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BroadcastDomainsChangedNotification {
    /// The new domains.
    #[prost(message, repeated, tag = "1")]
    pub broadcast_domains: Vec<BroadcastDomain>,
}

/// Lists broadcast domains.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetBroadcastDomainsRequest {}

/// Result of [`GetBroadcastDomainsRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetBroadcastDomainsResponse {
    /// The domains.
    #[prost(message, repeated, tag = "1")]
    pub broadcast_domains: Vec<BroadcastDomain>,
}

/// Asks for the complete focus state.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FocusRequest {}

/// The complete focus state, as a list of focus events.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FocusResponse {
    /// One event per fact (app active, key window, selected tabs, active sessions).
    #[prost(message, repeated, tag = "1")]
    pub notifications: Vec<FocusChangedNotification>,
}

// ---------------------------------------------------------------------------------------------
// Activate, close, menu items, profiles
// ---------------------------------------------------------------------------------------------

/// Brings a window, tab or session forward.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ActivateRequest {
    /// Raise the window.
    #[prost(bool, optional, tag = "4")]
    pub order_window_front: Option<bool>,
    /// Select the tab in its window.
    #[prost(bool, optional, tag = "5")]
    pub select_tab: Option<bool>,
    /// Make the session active in its tab.
    #[prost(bool, optional, tag = "6")]
    pub select_session: Option<bool>,
    /// Also activate the application.
    #[prost(message, optional, tag = "7")]
    pub activate_app: Option<activate_request::App>,
    /// What to activate.
    #[prost(oneof = "activate_request::Identifier", tags = "1, 2, 3")]
    pub identifier: Option<activate_request::Identifier>,
}

/// Nested types of [`ActivateRequest`].
pub mod activate_request {
    /// Application activation options.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct App {
        /// Raise every window, not only the key one.
        #[prost(bool, optional, tag = "1")]
        pub raise_all_windows: Option<bool>,
        /// Activate even if another app is active.
        #[prost(bool, optional, tag = "2")]
        pub ignoring_other_apps: Option<bool>,
    }

    /// The object to activate.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Identifier {
        /// A window.
        #[prost(string, tag = "1")]
        WindowId(String),
        /// A tab.
        #[prost(string, tag = "2")]
        TabId(String),
        /// A session.
        #[prost(string, tag = "3")]
        SessionId(String),
    }
}

/// Result of [`ActivateRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ActivateResponse {
    /// Outcome.
    #[prost(enumeration = "activate_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
}

/// Nested types of [`ActivateResponse`].
pub mod activate_response {
    proto_enum! {
        /// Outcome of an activation.
        Status {
            Ok = 0 => "OK",
            BadIdentifier = 1 => "BAD_IDENTIFIER",
            InvalidOption = 2 => "INVALID_OPTION",
        }
    }
}

/// Closes sessions, tabs or windows.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CloseRequest {
    /// Close without asking the user even if something is running.
    #[prost(bool, optional, tag = "4")]
    pub force: Option<bool>,
    /// What to close.
    #[prost(oneof = "close_request::Target", tags = "1, 2, 3")]
    pub target: Option<close_request::Target>,
}

/// Nested types of [`CloseRequest`].
pub mod close_request {
    /// Tabs to close.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CloseTabs {
        /// Tab ids.
        #[prost(string, repeated, tag = "1")]
        pub tab_ids: Vec<String>,
    }

    /// Sessions to close.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CloseSessions {
        /// Session ids.
        #[prost(string, repeated, tag = "1")]
        pub session_ids: Vec<String>,
    }

    /// Windows to close.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CloseWindows {
        /// Window ids.
        #[prost(string, repeated, tag = "1")]
        pub window_ids: Vec<String>,
    }

    /// The objects a close request names.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Target {
        /// Tabs.
        #[prost(message, tag = "1")]
        Tabs(CloseTabs),
        /// Sessions.
        #[prost(message, tag = "2")]
        Sessions(CloseSessions),
        /// Windows.
        #[prost(message, tag = "3")]
        Windows(CloseWindows),
    }
}

/// Result of [`CloseRequest`]: one status per named object, in order.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CloseResponse {
    /// Per-object outcome.
    #[prost(
        enumeration = "close_response::Status",
        repeated,
        packed = "false",
        tag = "1"
    )]
    pub statuses: Vec<i32>,
}

/// Nested types of [`CloseResponse`].
pub mod close_response {
    proto_enum! {
        /// Outcome for one object.
        Status {
            Ok = 0 => "OK",
            NotFound = 1 => "NOT_FOUND",
            UserDeclined = 2 => "USER_DECLINED",
        }
    }
}

/// Invokes (or only queries) a menu item by its identifier, e.g. `tmux.Detach`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MenuItemRequest {
    /// Menu item identifier.
    #[prost(string, optional, tag = "1")]
    pub identifier: Option<String>,
    /// Report its state without invoking it.
    #[prost(bool, optional, tag = "2")]
    pub query_only: Option<bool>,
}

/// Result of [`MenuItemRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MenuItemResponse {
    /// Outcome.
    #[prost(enumeration = "menu_item_response::Status", optional, tag = "1")]
    pub status: Option<i32>,
    /// Whether the item shows a check mark.
    #[prost(bool, optional, tag = "2")]
    pub checked: Option<bool>,
    /// Whether the item can be invoked now.
    #[prost(bool, optional, tag = "3")]
    pub enabled: Option<bool>,
}

/// Nested types of [`MenuItemResponse`].
pub mod menu_item_response {
    proto_enum! {
        /// Outcome of a menu item request.
        Status {
            Ok = 0 => "OK",
            BadIdentifier = 1 => "BAD_IDENTIFIER",
            Disabled = 2 => "DISABLED",
        }
    }
}

/// Changes profile properties of one session (or of saved profiles by GUID).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SetProfilePropertyRequest {
    /// Single property key (with `json_value`).
    #[prost(string, optional, tag = "3")]
    pub key: Option<String>,
    /// Single property value as JSON text.
    #[prost(string, optional, tag = "4")]
    pub json_value: Option<String>,
    /// Several properties at once.
    #[prost(message, repeated, tag = "5")]
    pub assignments: Vec<set_profile_property_request::Assignment>,
    /// Whose profile.
    #[prost(oneof = "set_profile_property_request::Target", tags = "1, 2")]
    pub target: Option<set_profile_property_request::Target>,
}

/// Nested types of [`SetProfilePropertyRequest`].
pub mod set_profile_property_request {
    /// Saved profiles by GUID.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct GuidList {
        /// Profile GUIDs.
        #[prost(string, repeated, tag = "1")]
        pub guids: Vec<String>,
    }

    /// One key/value assignment.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Assignment {
        /// Property key.
        #[prost(string, optional, tag = "1")]
        pub key: Option<String>,
        /// Value as JSON text.
        #[prost(string, optional, tag = "2")]
        pub json_value: Option<String>,
    }

    /// Whose profile a change applies to.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Target {
        /// One session's own copy of its profile.
        #[prost(string, tag = "1")]
        Session(String),
        /// Saved profiles.
        #[prost(message, tag = "2")]
        GuidList(GuidList),
    }
}

/// Result of [`SetProfilePropertyRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SetProfilePropertyResponse {
    /// Outcome.
    #[prost(
        enumeration = "set_profile_property_response::Status",
        optional,
        tag = "1",
        default = "Ok"
    )]
    pub status: Option<i32>,
}

/// Nested types of [`SetProfilePropertyResponse`].
pub mod set_profile_property_response {
    proto_enum! {
        /// Outcome of a profile change.
        Status {
            Ok = 0 => "OK",
            SessionNotFound = 1 => "SESSION_NOT_FOUND",
            RequestMalformed = 2 => "REQUEST_MALFORMED",
            BadGuid = 3 => "BAD_GUID",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tmux integration
// ---------------------------------------------------------------------------------------------

/// An operation on iTerm2's `tmux -CC` integration.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TmuxRequest {
    /// The operation.
    #[prost(oneof = "tmux_request::Payload", tags = "1, 2, 3, 4")]
    pub payload: Option<tmux_request::Payload>,
}

/// Nested types of [`TmuxRequest`].
pub mod tmux_request {
    /// List tmux integration connections.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ListConnections {}

    /// Run a tmux command on a connection.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SendCommand {
        /// Connection id.
        #[prost(string, optional, tag = "1")]
        pub connection_id: Option<String>,
        /// tmux command line.
        #[prost(string, optional, tag = "2")]
        pub command: Option<String>,
    }

    /// Show or hide a tmux window (an iTerm2 tab).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SetWindowVisible {
        /// Connection id.
        #[prost(string, optional, tag = "1")]
        pub connection_id: Option<String>,
        /// tmux window id.
        #[prost(string, optional, tag = "2")]
        pub window_id: Option<String>,
        /// Visible or hidden.
        #[prost(bool, optional, tag = "3")]
        pub visible: Option<bool>,
    }

    /// Create a tmux window.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CreateWindow {
        /// Connection id.
        #[prost(string, optional, tag = "1")]
        pub connection_id: Option<String>,
        /// iTerm2 window id to open the tab in, if any.
        #[prost(string, optional, tag = "2")]
        pub affinity: Option<String>,
    }

    /// The tmux operation.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Payload {
        /// List connections.
        #[prost(message, tag = "1")]
        ListConnections(ListConnections),
        /// Run a command.
        #[prost(message, tag = "2")]
        SendCommand(SendCommand),
        /// Show or hide a window.
        #[prost(message, tag = "3")]
        SetWindowVisible(SetWindowVisible),
        /// Create a window.
        #[prost(message, tag = "4")]
        CreateWindow(CreateWindow),
    }
}

/// Result of [`TmuxRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TmuxResponse {
    /// Outcome.
    #[prost(enumeration = "tmux_response::Status", optional, tag = "4")]
    pub status: Option<i32>,
    /// The operation's result.
    #[prost(oneof = "tmux_response::Payload", tags = "1, 2, 3, 5")]
    pub payload: Option<tmux_response::Payload>,
}

/// Nested types of [`TmuxResponse`].
pub mod tmux_response {
    /// Connections.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ListConnections {
        /// One per `tmux -CC` gateway.
        #[prost(message, repeated, tag = "1")]
        pub connections: Vec<list_connections::Connection>,
    }

    /// Nested types of [`ListConnections`].
    pub mod list_connections {
        /// One tmux integration connection.
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct Connection {
            /// Connection id.
            #[prost(string, optional, tag = "1")]
            pub connection_id: Option<String>,
            /// The session running `tmux -CC` (the gateway).
            #[prost(string, optional, tag = "2")]
            pub owning_session_id: Option<String>,
        }
    }

    /// A command's output.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SendCommand {
        /// Output; unset when the command failed.
        #[prost(string, optional, tag = "1")]
        pub output: Option<String>,
    }

    /// Acknowledges a visibility change.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SetWindowVisible {}

    /// A created tmux window.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CreateWindow {
        /// The iTerm2 tab showing it.
        #[prost(string, optional, tag = "1")]
        pub tab_id: Option<String>,
    }

    /// The tmux operation's result.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Payload {
        /// Connections.
        #[prost(message, tag = "1")]
        ListConnections(ListConnections),
        /// Command output.
        #[prost(message, tag = "2")]
        SendCommand(SendCommand),
        /// Visibility change.
        #[prost(message, tag = "3")]
        SetWindowVisible(SetWindowVisible),
        /// New window.
        #[prost(message, tag = "5")]
        CreateWindow(CreateWindow),
    }

    proto_enum! {
        /// Outcome of a tmux request.
        Status {
            Ok = 0 => "OK",
            InvalidRequest = 1 => "INVALID_REQUEST",
            InvalidConnectionId = 2 => "INVALID_CONNECTION_ID",
            InvalidWindowId = 3 => "INVALID_WINDOW_ID",
        }
    }
}

impl_enum_name!(
    create_tab_response::Status,
    split_pane_request::SplitDirection,
    split_pane_response::Status,
    send_text_response::Status,
    inject_response::Status,
    get_buffer_response::Status,
    line_contents::Continuation,
    get_prompt_response::Status,
    get_prompt_response::State,
    list_prompts_response::Status,
    VariableScope,
    variable_response::Status,
    NotificationType,
    PromptMonitorMode,
    Modifiers,
    notification_response::Status,
    keystroke_notification::Action,
    focus_changed_notification::window::WindowStatus,
    activate_response::Status,
    close_response::Status,
    menu_item_response::Status,
    set_profile_property_response::Status,
    tmux_response::Status,
);

impl ClientOriginatedMessage {
    /// Wraps a request with the given id.
    pub fn request(id: i64, submessage: client_originated_message::Submessage) -> Self {
        Self {
            id: Some(id),
            submessage: Some(submessage),
        }
    }
}

impl client_originated_message::Submessage {
    /// Protocol name of the request, for messages and logs.
    pub fn kind(&self) -> &'static str {
        use client_originated_message::Submessage as S;
        match self {
            S::GetBufferRequest(_) => "GetBuffer",
            S::GetPromptRequest(_) => "GetPrompt",
            S::NotificationRequest(_) => "Notification",
            S::SetProfilePropertyRequest(_) => "SetProfileProperty",
            S::ListSessionsRequest(_) => "ListSessions",
            S::SendTextRequest(_) => "SendText",
            S::CreateTabRequest(_) => "CreateTab",
            S::SplitPaneRequest(_) => "SplitPane",
            S::InjectRequest(_) => "Inject",
            S::ActivateRequest(_) => "Activate",
            S::VariableRequest(_) => "Variable",
            S::FocusRequest(_) => "Focus",
            S::MenuItemRequest(_) => "MenuItem",
            S::GetBroadcastDomainsRequest(_) => "GetBroadcastDomains",
            S::TmuxRequest(_) => "Tmux",
            S::CloseRequest(_) => "Close",
            S::ListPromptsRequest(_) => "ListPrompts",
        }
    }
}

impl server_originated_message::Submessage {
    /// Protocol name of the payload, for messages and logs.
    pub fn kind(&self) -> &'static str {
        use server_originated_message::Submessage as S;
        match self {
            S::Error(_) => "Error",
            S::GetBufferResponse(_) => "GetBuffer",
            S::GetPromptResponse(_) => "GetPrompt",
            S::NotificationResponse(_) => "Notification",
            S::SetProfilePropertyResponse(_) => "SetProfileProperty",
            S::ListSessionsResponse(_) => "ListSessions",
            S::SendTextResponse(_) => "SendText",
            S::CreateTabResponse(_) => "CreateTab",
            S::SplitPaneResponse(_) => "SplitPane",
            S::InjectResponse(_) => "Inject",
            S::ActivateResponse(_) => "Activate",
            S::VariableResponse(_) => "Variable",
            S::FocusResponse(_) => "Focus",
            S::MenuItemResponse(_) => "MenuItem",
            S::GetBroadcastDomainsResponse(_) => "GetBroadcastDomains",
            S::TmuxResponse(_) => "Tmux",
            S::CloseResponse(_) => "Close",
            S::ListPromptsResponse(_) => "ListPrompts",
            S::Notification(_) => "Notification",
        }
    }
}

impl ListSessionsResponse {
    /// Every session id in every window and tab, in tree order (buried sessions excluded).
    pub fn session_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in &self.windows {
            for t in &w.tabs {
                if let Some(root) = &t.root {
                    root.collect_session_ids(&mut out);
                }
            }
        }
        out
    }
}

impl SplitTreeNode {
    /// Appends the ids of every session under this node, in order.
    pub fn collect_session_ids(&self, out: &mut Vec<String>) {
        use split_tree_node::split_tree_link::Child;
        for link in &self.links {
            match &link.child {
                Some(Child::Session(s)) => {
                    if let Some(id) = &s.unique_identifier {
                        out.push(id.clone());
                    }
                }
                Some(Child::Node(n)) => n.collect_session_ids(out),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn unset_optional_survives_round_trip() {
        let m = SendTextRequest {
            session: Some("s".into()),
            text: None,
            suppress_broadcast: Some(false),
        };
        let back = SendTextRequest::decode(m.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, m);
        assert!(back.text.is_none());
        // proto2: an explicitly set `false` is still on the wire.
        assert_eq!(m.encode_to_vec(), vec![0x0a, 1, b's', 0x18, 0]);
    }

    #[test]
    fn defaults_apply_to_getters() {
        let l = LineContents::default();
        assert_eq!(l.continuation(), line_contents::Continuation::HardEol);
        assert_eq!(CodePointsPerCell::default().num_code_points(), 1);
    }

    #[test]
    fn repeated_enums_are_unpacked() {
        let r = CloseResponse {
            statuses: vec![0, 1],
        };
        // field 1, varint wire type, once per element.
        assert_eq!(r.encode_to_vec(), vec![0x08, 0, 0x08, 1]);
        // A packed encoding must still decode.
        let packed = [0x0a, 2, 0, 1];
        assert_eq!(CloseResponse::decode(&packed[..]).unwrap(), r);
    }

    #[test]
    fn notification_envelope_tag_is_1000() {
        let m = ServerOriginatedMessage {
            id: None,
            submessage: Some(server_originated_message::Submessage::Notification(
                Notification::default(),
            )),
        };
        // tag 1000, wire type 2 => (1000 << 3) | 2 = 8002 = varint [0xc2, 0x3e]
        assert_eq!(m.encode_to_vec(), vec![0xc2, 0x3e, 0]);
    }

    #[test]
    fn unknown_fields_and_submessages_are_skipped() {
        // A ListSessions reply whose Window carries an unknown field 99 (string).
        let mut bytes = ServerOriginatedMessage {
            id: Some(7),
            submessage: Some(server_originated_message::Submessage::ListSessionsResponse(
                ListSessionsResponse::default(),
            )),
        }
        .encode_to_vec();
        // Unknown top-level field 500 (varint 1) appended.
        bytes.extend_from_slice(&[0xa0, 0x1f, 0x01]);
        let m = ServerOriginatedMessage::decode(bytes.as_slice()).unwrap();
        assert_eq!(m.id, Some(7));
        assert!(matches!(
            m.submessage,
            Some(server_originated_message::Submessage::ListSessionsResponse(
                _
            ))
        ));
    }

    #[test]
    fn enum_names() {
        assert_eq!(
            enum_name::<send_text_response::Status>(1),
            "SESSION_NOT_FOUND"
        );
        assert_eq!(enum_name::<send_text_response::Status>(42), "UNKNOWN(42)");
        assert_eq!(
            NotificationType::from_str_name("NOTIFY_ON_NEW_SESSION"),
            Some(NotificationType::NotifyOnNewSession)
        );
    }
}
