//! The key parser (`termloom_core::Key`'s `FromStr`): any UTF-8 string either parses or gives an error,
//! never a panic; a parsed key encodes to bytes without panicking, and its tmux spelling parses back
//! to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use termloom_core::key::Key;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = text.parse::<Key>() {
        let _ = key.to_bytes();
        let shown = key.to_string();
        match shown.parse::<Key>() {
            Ok(again) => assert_eq!(again, key, "{text:?} displays as {shown:?}"),
            Err(e) => panic!("{text:?} displays as {shown:?}, which does not parse: {e}"),
        }
    }
});
