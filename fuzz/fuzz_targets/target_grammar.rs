//! The target grammar (`termloom_core::Target`'s `FromStr`): any UTF-8 string either parses or gives an
//! error, never a panic; a parsed target displays as text that parses back to the same target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use termloom_core::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(target) = text.parse::<Target>() {
        let shown = target.to_string();
        match shown.parse::<Target>() {
            Ok(again) => assert_eq!(again, target, "{text:?} displays as {shown:?}"),
            Err(e) => panic!("{text:?} displays as {shown:?}, which does not parse: {e}"),
        }
    }
});
