//! KEYMAP.jsonl reader: any bytes give records or a (sticky) error, and
//! every accepted record has a non-empty name and kind.
#![no_main]

use elastickv::backup::keymap::KeymapReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for record in KeymapReader::new(data) {
        match record {
            Ok(record) => assert!(!record.encoded.is_empty() && !record.kind.is_empty()),
            Err(_) => break,
        }
    }
});
