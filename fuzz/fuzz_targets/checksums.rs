//! CHECKSUMS parser and verifier: any bytes, checked against an empty
//! tree, give an error and never a panic or an escape from the tree.
#![no_main]

use elastickv::backup::checksums::{VerifyOptions, parse_line, validate_rel_path, verify_from_reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if let Ok(parsed) = parse_line(line, 1) {
            let _ = validate_rel_path(&parsed.path, 1);
        }
    }
    if let Ok(dir) = tempfile::tempdir() {
        assert!(verify_from_reader(dir.path(), data, VerifyOptions::default()).is_err());
    }
});
