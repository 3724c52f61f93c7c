//! libFuzzer target: any bytes through the `.fsm` snapshot reader. The
//! input's length parity picks whether records are returned or all skipped (the
//! verify path), so both code paths are explored. A panic or an abort from
//! an oversized allocation is a finding.

#![no_main]

use elastickv::snapshot::SnapshotReader;
use elastickv::storage::Cf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let skip_all = data.len() % 2 == 1;
    let Ok(mut reader) = SnapshotReader::new(data) else {
        return;
    };
    if skip_all {
        for cf in [Cf::Data, Cf::Lock, Cf::Meta] {
            reader.skip_cf(cf);
        }
    }
    while let Ok(Some(_)) = reader.next_record() {}
});
