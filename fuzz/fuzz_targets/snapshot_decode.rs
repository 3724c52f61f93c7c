//! libFuzzer target: the snapshot decoder. Odd-length inputs are written to
//! a file and decoded as a `.fsm` snapshot into Redis records (the whole
//! path: reader, version selection, assembler). Even-length inputs skip the
//! file framing (whose CRC a fuzzer rarely gets past) and feed the Redis
//! row assembler directly: the bytes are cut into `u8 length ‖ key ‖ u8
//! length ‖ value` data records, sorted as a snapshot would hold them, and
//! selected at a read timestamp. A panic or an abort from an oversized
//! allocation is a finding; errors are expected.

#![no_main]

use elastickv::backup::visible::{VersionSelector, decode_key};
use elastickv::model::redis::backup_decode::{RedisRowAssembler, read_snapshot_records};
use libfuzzer_sys::fuzz_target;

fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len).min(rest.len());
    let (out, rest) = rest.split_at(len);
    *data = rest;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    if data.len() % 2 == 1 {
        let Ok(dir) = tempfile::tempdir() else {
            return;
        };
        let path = dir.path().join("in.fsm");
        if std::fs::write(&path, data).is_ok() {
            let _ = read_snapshot_records(&path, |_| Ok(()));
        }
        return;
    }
    let mut rest = data;
    let mut records = Vec::new();
    while let (Some(key), Some(value)) = (take(&mut rest), take(&mut rest)) {
        records.push((key.to_vec(), value.to_vec()));
    }
    records.sort();
    records.dedup_by(|a, b| a.0 == b.0);
    let mut selector = VersionSelector::new(u64::MAX >> 1);
    let mut assembler = RedisRowAssembler::new();
    for (physical, value) in &records {
        let Ok(key) = decode_key(physical) else {
            continue;
        };
        if key.user_key.first() != Some(&b'r') {
            continue;
        }
        match selector.select(&key, physical, value) {
            Ok(Some(row)) => {
                if assembler.push(&row).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
    let _ = assembler.flush();
});
