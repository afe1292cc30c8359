"""Cross-checks termloom's hand-written protobuf structs against the official `iterm2.api_pb2`.

Driven by `crates/iterm-backend/tests/proto_python.rs`:
  stdin:  one line per Rust-encoded message: "<MessageName> <hex>"
  stdout: one JSON line per input: {"name", "unknown", "dict", "hex"} where
          "unknown" counts fields api_pb2 did not recognise (a wrong field number or wire
          type shows up here), "dict" is the decoded message and "hex" its re-encoding;
          then one JSON line per Python-built message: {"py": <label>, "hex": ...}.
"""

from __future__ import annotations

import json
import sys

from google.protobuf.json_format import MessageToDict
from google.protobuf.unknown_fields import UnknownFieldSet
from iterm2 import api_pb2


def count_unknown(message) -> int:
    n = len(UnknownFieldSet(message))
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            n += sum(count_unknown(v) for v in value)
        else:
            n += count_unknown(value)
    return n


def python_built():
    out = []

    m = api_pb2.ServerOriginatedMessage()
    m.id = 0
    tab = m.list_sessions_response.windows.add().tabs.add()
    m.list_sessions_response.windows[0].window_id = "pty-W"
    tab.tab_id = "7"
    tab.root.vertical = True
    leaf = tab.root.links.add().session
    leaf.unique_identifier = "S1"
    leaf.grid_size.width = 39
    nested = tab.root.links.add().node
    nested.vertical = False
    nested.links.add().session.unique_identifier = "S2"
    nested.links.add().session.unique_identifier = "S3"
    out.append(("list_sessions", m))

    m = api_pb2.ServerOriginatedMessage()
    m.notification.prompt_notification.session = "S1"
    m.notification.prompt_notification.command_end.status = 3
    m.notification.prompt_notification.unique_prompt_id = "P1"
    out.append(("prompt_end", m))

    m = api_pb2.ServerOriginatedMessage()
    m.id = 9
    r = m.get_buffer_response
    r.status = api_pb2.GetBufferResponse.OK
    line = r.contents.add()
    line.text = "hello"
    line.continuation = api_pb2.LineContents.CONTINUATION_SOFT_EOL
    r.cursor.x = 2
    r.cursor.y = 12345678901
    r.num_lines_above_screen = 12345678890
    out.append(("buffer", m))

    m = api_pb2.ServerOriginatedMessage()
    m.id = 10
    m.close_response.statuses.extend([0, 1, 2])
    out.append(("close", m))

    m = api_pb2.ServerOriginatedMessage()
    m.id = 11
    m.error = "bad request"
    out.append(("error", m))
    return out


def main() -> None:
    for raw in sys.stdin:
        raw = raw.strip()
        if not raw:
            continue
        name, hexdata = raw.split(" ", 1)
        cls = getattr(api_pb2, name)
        message = cls.FromString(bytes.fromhex(hexdata))
        print(
            json.dumps(
                {
                    "name": name,
                    "unknown": count_unknown(message),
                    "dict": MessageToDict(message, preserving_proto_field_name=True),
                    "hex": message.SerializeToString().hex(),
                }
            )
        )
    for label, message in python_built():
        print(json.dumps({"py": label, "hex": message.SerializeToString().hex()}))


if __name__ == "__main__":
    main()
