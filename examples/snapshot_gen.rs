//! Writes a synthetic `.fsm` snapshot of one group holding Redis keys of
//! every type, laid out exactly as the Redis model stores them (META row,
//! member rows, sorted-set score index), with some history: overwritten
//! keys keep an older version, some keys are deleted (tombstones), some
//! carry a TTL in the future. Used by `bench/snapshot_decode.sh`; built by
//! `cargo test` / `cargo build --examples` (release for real runs).
//!
//! Usage: `snapshot_gen OUT.fsm KEYS BYTES_PER_KEY`
//!
//! Deterministic: the same arguments write the same bytes (apart from the
//! header's informational creation time). Memory is one key's rows.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use elastickv::clock::compose;
use elastickv::model::redis::layout::{
    TAG_HASH, TAG_LIST, TAG_SET, TAG_STREAM, TAG_ZINDEX, TAG_ZMEMBER, member_key, meta_key,
    sortable_f64, sortable_i64,
};
use elastickv::model::redis::{Body, StreamMeta};
use elastickv::snapshot::{SnapshotHeader, SnapshotWriter};
use elastickv::storage::Cf;
use elastickv::storage::keys::encode_data_key;
use elastickv::storage::value::{encode_put, encode_tombstone};

/// xorshift64*: deterministic filler, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        // Printable, so JSON files stay strings (the common case).
        (0..len).map(|_| b'a' + (self.next() % 26) as u8).collect()
    }
}

/// A valid sparse HyperLogLog: a few VAL opcodes, XZERO runs for the rest.
fn sparse_hll(rng: &mut Rng) -> Vec<u8> {
    let mut sketch = b"HYLL".to_vec();
    sketch.push(1);
    sketch.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    let mut left: u64 = 16384;
    while left > 0 {
        if rng.next().is_multiple_of(3) {
            sketch.push(0x80 | (((rng.next() % 32) as u8) << 2));
            left -= 1;
        } else {
            let run = (rng.next() % 600 + 1).min(left);
            sketch.push(0x40 | ((run - 1) >> 8) as u8);
            sketch.push(((run - 1) & 0xff) as u8);
            left -= run;
        }
    }
    sketch
}

fn stream_value(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = ((fields.len() * 2) as u32).to_be_bytes().to_vec();
    for (field, value) in fields {
        for item in [field, value] {
            out.extend_from_slice(&(item.len() as u32).to_be_bytes());
            out.extend_from_slice(item);
        }
    }
    out
}

/// The rows of key `i` (user key, body, expire_at), META first.
fn key_rows(i: u64, per_key: usize, rng: &mut Rng, ttl: u64) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let key = format!("key:{i:010}").into_bytes();
    let part = (per_key / 8).max(1);
    let mut rows = Vec::new();
    let body = match i % 8 {
        0 | 1 => Body::String(rng.bytes(per_key)),
        2 => {
            for f in 0..8 {
                rows.push((
                    member_key(&key, TAG_HASH, format!("field{f}").as_bytes()),
                    rng.bytes(part),
                    0,
                ));
            }
            Body::Hash { count: 8 }
        }
        3 => {
            for seq in 0..8i64 {
                rows.push((
                    member_key(&key, TAG_LIST, &sortable_i64(seq - 4)),
                    rng.bytes(part),
                    0,
                ));
            }
            Body::List { head: -4, tail: 4 }
        }
        4 => {
            for _ in 0..8 {
                rows.push((member_key(&key, TAG_SET, &rng.bytes(part)), Vec::new(), 0));
            }
            Body::Set { count: 8 }
        }
        5 => {
            for _ in 0..8 {
                let member = rng.bytes(part);
                let score = (rng.next() % 100_000) as f64 / 7.0;
                rows.push((
                    member_key(&key, TAG_ZMEMBER, &member),
                    score.to_bits().to_be_bytes().to_vec(),
                    0,
                ));
                let mut index = sortable_f64(score).to_vec();
                index.extend_from_slice(&member);
                rows.push((member_key(&key, TAG_ZINDEX, &index), Vec::new(), 0));
            }
            Body::ZSet { count: 8 }
        }
        6 => {
            for e in 0..4u64 {
                let mut id = (1_700_000_000_000 + e).to_be_bytes().to_vec();
                id.extend_from_slice(&0u64.to_be_bytes());
                let fields = vec![
                    (b"f1".to_vec(), rng.bytes(part)),
                    (b"f2".to_vec(), rng.bytes(part)),
                ];
                rows.push((member_key(&key, TAG_STREAM, &id), stream_value(&fields), 0));
            }
            Body::Stream(StreamMeta {
                length: 4,
                last_id: (1_700_000_000_003, 0),
                entries_added: 4,
                max_deleted: (0, 0),
            })
        }
        _ => Body::String(sparse_hll(rng)),
    };
    let expire_at = if i.is_multiple_of(5) { ttl } else { 0 };
    rows.insert(0, (meta_key(&key), body.encode(), expire_at));
    rows
}

fn run(out: PathBuf, keys: u64, per_key: usize) -> Result<u64, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let base = compose(now_ms - 60_000, 0);
    let last_commit_ts = compose(now_ms, 0);
    let ttl = compose(now_ms + 86_400_000, 0);
    let header = SnapshotHeader {
        cluster_id: "bench".to_string(),
        group_id: 1,
        index: keys + 1,
        term: 1,
        last_commit_ts,
        hlc_ceiling_ms: now_ms + 1_000,
        ownership: Vec::new(),
        created_unix_ms: now_ms,
    };
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut writer = SnapshotWriter::new(BufWriter::with_capacity(1 << 20, file), &header)
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for i in 0..keys {
        records.clear();
        let ts = base + i;
        for (user_key, body, expire_at) in key_rows(i, per_key, &mut rng, ttl) {
            // Every 10th key was overwritten: an older version stays behind.
            if i % 10 == 3 {
                records.push((
                    encode_data_key(&user_key, ts - 1),
                    encode_put(b"older", expire_at, ts - 2),
                ));
            }
            // Every 20th key was deleted after being written.
            if i % 20 == 7 {
                records.push((encode_data_key(&user_key, ts + 1), encode_tombstone(ts)));
            }
            records.push((
                encode_data_key(&user_key, ts),
                encode_put(&body, expire_at, ts - 1),
            ));
        }
        records.sort();
        for (key, value) in &records {
            writer
                .write_record(Cf::Data, key, value)
                .map_err(|e| e.to_string())?;
        }
    }
    writer
        .write_record(Cf::Meta, b"bench", b"generated")
        .map_err(|e| e.to_string())?;
    let (_, summary) = writer.finish().map_err(|e| e.to_string())?;
    Ok(summary.total_len)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, out, keys, per_key] => keys
            .parse::<u64>()
            .ok()
            .zip(per_key.parse::<usize>().ok())
            .map(|(keys, per_key)| (PathBuf::from(out), keys, per_key)),
        _ => None,
    };
    let Some((out, keys, per_key)) = parsed else {
        eprintln!("usage: snapshot_gen OUT.fsm KEYS BYTES_PER_KEY");
        return ExitCode::from(2);
    };
    match run(out, keys, per_key) {
        Ok(len) => {
            println!("{len}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("snapshot_gen: {err}");
            ExitCode::FAILURE
        }
    }
}
