//! Fuzz target for the tmux control-mode parser.
//!
//! Input layout: the first byte selects the chunking seed and the line-length
//! limit; the remaining bytes are the control-mode stream. The stream is fed
//! once in a single chunk and once in pseudo-random chunks (1..=64 bytes, or
//! byte by byte), and the two event sequences must be identical. Any panic
//! (including a failed assertion) is a bug. The same bytes are also run
//! through `decode_output` and, if UTF-8, `parse_layout`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use termloom_tmux::control::layout::parse_layout;
use termloom_tmux::control::parser::{ControlParser, Event, decode_output};

fn run(stream: &[u8], max_line_len: usize, chunking: Option<u64>) -> Vec<Event> {
    let mut parser = ControlParser::with_max_line_len(max_line_len);
    let mut events = Vec::new();
    match chunking {
        None => parser.feed(stream),
        Some(mut state) => {
            let mut rest = stream;
            while !rest.is_empty() {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let size = if state & 0x100 == 0 {
                    1
                } else {
                    1 + (state % 64) as usize
                };
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                parser.feed(chunk);
                // Drain as we go, like a real reader would.
                events.extend(parser.drain_events());
                rest = tail;
            }
        }
    }
    parser.finish();
    events.extend(parser.drain_events());
    events
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    // Low bit set: a tiny line limit (1..=128) to exercise the discard path.
    let max_line_len = if control & 1 == 1 {
        1 + usize::from(control >> 1)
    } else {
        termloom_tmux::control::parser::DEFAULT_MAX_LINE_LEN
    };
    let seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(control);
    let whole = run(stream, max_line_len, None);
    let chunked = run(stream, max_line_len, Some(seed));
    assert_eq!(whole, chunked, "chunking changed the events");

    let _ = decode_output(stream);
    if let Ok(text) = std::str::from_utf8(stream) {
        let _ = parse_layout(text);
    }
});
