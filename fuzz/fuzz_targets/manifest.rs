//! MANIFEST.json parser: any bytes give a manifest or an error; an
//! accepted manifest can always be written back.
#![no_main]

use elastickv::backup::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert!(manifest.to_bytes().is_ok());
    }
});
