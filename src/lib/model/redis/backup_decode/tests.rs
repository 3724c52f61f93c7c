//! Rows → records: every type, TTLs, version histories (overwrite, delete,
//! recreate with another type, expiry), HLL detection and corrupt rows.
//! Rows are built with the model's own layout and META encoders, and go
//! through the same version selection as a snapshot decode.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::backup::visible::{VersionSelector, decode_key};
use crate::clock::compose;
use crate::model::redis::layout::{member_key, meta_key, sortable_f64, sortable_i64};
use crate::storage::keys::encode_data_key;
use crate::storage::value::{encode_put, encode_tombstone};

/// A data column family under construction: physical key → encoded version.
#[derive(Default)]
struct Store {
    rows: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Live user keys of each Redis key, to tombstone on overwrite.
    live: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
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

/// The rows the model keeps for `record` (META first, then members and
/// derived index rows), as (user key, body).
fn model_rows(record: &RedisRecord) -> Vec<(Vec<u8>, Vec<u8>)> {
    let key = record.key.as_slice();
    let mut rows = Vec::new();
    let meta = match &record.value {
        RedisValue::String(v) | RedisValue::Hll(v) => Body::String(v.clone()),
        RedisValue::Hash(fields) => {
            for (field, value) in fields {
                rows.push((member_key(key, TAG_HASH, field), value.clone()));
            }
            Body::Hash {
                count: fields.len() as u64,
            }
        }
        RedisValue::Set(members) => {
            for member in members {
                rows.push((member_key(key, TAG_SET, member), Vec::new()));
            }
            Body::Set {
                count: members.len() as u64,
            }
        }
        RedisValue::ZSet(members) => {
            for (member, score) in members {
                rows.push((
                    member_key(key, TAG_ZMEMBER, member),
                    score.to_bits().to_be_bytes().to_vec(),
                ));
                let mut index = sortable_f64(*score).to_vec();
                index.extend_from_slice(member);
                rows.push((member_key(key, TAG_ZINDEX, &index), Vec::new()));
            }
            Body::ZSet {
                count: members.len() as u64,
            }
        }
        RedisValue::List(items) => {
            // Lists pushed on the left start below zero.
            let head = -(items.len() as i64 / 2);
            for (i, item) in items.iter().enumerate() {
                rows.push((
                    member_key(key, TAG_LIST, &sortable_i64(head + i as i64)),
                    item.clone(),
                ));
            }
            Body::List {
                head,
                tail: head + items.len() as i64,
            }
        }
        RedisValue::Stream { entries, last_id } => {
            for entry in entries {
                let mut id = entry.id.ms.to_be_bytes().to_vec();
                id.extend_from_slice(&entry.id.seq.to_be_bytes());
                rows.push((
                    member_key(key, TAG_STREAM, &id),
                    stream_value(&entry.fields),
                ));
            }
            Body::Stream(StreamMeta {
                length: entries.len() as u64,
                last_id: (last_id.ms, last_id.seq),
                entries_added: entries.len() as u64,
                max_deleted: (0, 0),
            })
        }
    };
    rows.insert(0, (meta_key(key), meta.encode()));
    rows
}

impl Store {
    fn put_row(&mut self, user_key: &[u8], ts: u64, body: &[u8], expire_at: u64) {
        self.rows.insert(
            encode_data_key(user_key, ts),
            encode_put(body, expire_at, ts - 1),
        );
    }

    /// Removes every live row of `key` at `ts` (the model's range delete).
    fn delete(&mut self, key: &[u8], ts: u64) {
        for user_key in self.live.remove(key).unwrap_or_default() {
            self.rows
                .insert(encode_data_key(&user_key, ts), encode_tombstone(ts - 1));
        }
    }

    /// Creates `record` afresh at `ts`, as `Db::create` does.
    fn write(&mut self, record: &RedisRecord, ts: u64) {
        self.delete(&record.key, ts);
        let expire_at = record.expire_at_ms.map_or(0, |ms| compose(ms, 0));
        let rows = model_rows(record);
        for (i, (user_key, body)) in rows.iter().enumerate() {
            self.put_row(user_key, ts, body, if i == 0 { expire_at } else { 0 });
        }
        self.live.insert(
            record.key.clone(),
            rows.into_iter().map(|(user_key, _)| user_key).collect(),
        );
    }

    /// Decodes the store as a snapshot at `read_ts` would.
    fn decode(
        &self,
        read_ts: u64,
    ) -> Result<(Vec<RedisRecord>, RedisDecodeCounts), ServiceDecodeError> {
        let mut selector = VersionSelector::new(read_ts);
        let mut assembler = RedisRowAssembler::new();
        let mut out = Vec::new();
        for (phys, value) in &self.rows {
            let key = decode_key(phys).unwrap();
            if let Some(row) = selector.select(&key, phys, value).unwrap() {
                out.extend(assembler.push(&row)?);
            }
        }
        out.extend(assembler.flush()?);
        Ok((out, *assembler.counts()))
    }
}

fn rec(key: &str, ttl: Option<u64>, value: RedisValue) -> RedisRecord {
    RedisRecord {
        key: key.as_bytes().to_vec(),
        expire_at_ms: ttl,
        value,
    }
}

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn dense_hll() -> Vec<u8> {
    let mut sketch = b"HYLL".to_vec();
    sketch.resize(HLL_DENSE_LEN, 0);
    sketch[4] = HLL_DENSE;
    sketch
}

/// A sparse sketch: one VAL opcode then XZERO runs covering the rest.
fn sparse_hll() -> Vec<u8> {
    let mut sketch = b"HYLL".to_vec();
    sketch.push(HLL_SPARSE);
    sketch.extend_from_slice(&[0; 11]);
    sketch.push(0b1_00010_00); // one register of value 3
    let mut left = HLL_REGISTERS - 1;
    while left > 0 {
        let run = left.min(16384);
        sketch.push(0x40 | ((run - 1) >> 8) as u8);
        sketch.push(((run - 1) & 0xff) as u8);
        left -= run;
    }
    sketch
}

fn every_type() -> Vec<RedisRecord> {
    let entry = |ms, fields: &[(&str, &str)]| StreamEntry {
        id: StreamId { ms, seq: 0 },
        fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
    };
    vec![
        rec("a-string", None, RedisValue::String(b("hello"))),
        rec(
            "b-string-ttl",
            Some(1_900_000_000_000),
            RedisValue::String(vec![0, 0xff]),
        ),
        rec("c-hll", None, RedisValue::Hll(dense_hll())),
        rec(
            "d-hll-sparse",
            Some(1_900_000_000_001),
            RedisValue::Hll(sparse_hll()),
        ),
        rec(
            "e-hash",
            None,
            RedisValue::Hash(vec![(b("f1"), b("v1")), (vec![0xff], b("bin"))]),
        ),
        rec(
            "f-list",
            Some(1_900_000_000_002),
            RedisValue::List(vec![b("x"), b("y"), b("z")]),
        ),
        rec("g-set", None, RedisValue::Set(vec![b("m1"), b("m2")])),
        rec(
            "h-zset",
            None,
            RedisValue::ZSet(vec![
                (b("alice"), 1.5),
                (b("bob"), f64::INFINITY),
                (b("carol"), -3.0),
            ]),
        ),
        rec(
            "i-stream",
            None,
            RedisValue::Stream {
                entries: vec![
                    entry(5, &[("f", "v1"), ("f", "v2")]),
                    entry(9, &[("event", "login")]),
                ],
                last_id: StreamId { ms: 12, seq: 3 },
            },
        ),
        rec(
            "k\0with nul",
            None,
            RedisValue::Set(vec![b(""), vec![0], vec![0, 0]]),
        ),
    ]
}

fn canonical(records: &[RedisRecord]) -> Vec<RedisRecord> {
    let mut out: Vec<RedisRecord> = records.iter().map(|r| r.canonical().unwrap()).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[test]
fn every_type_decodes_to_its_record() {
    let mut store = Store::default();
    let records = every_type();
    for (i, record) in records.iter().enumerate() {
        store.write(record, 100 + i as u64);
    }
    let (decoded, counts) = store.decode(compose(1_000, 0)).unwrap();
    assert_eq!(decoded, canonical(&records));
    assert_eq!(counts.keys, [2, 2, 1, 1, 2, 1, 1]);
    assert_eq!(
        counts.derived_rows, 3,
        "one score-index row per zset member"
    );
    assert_eq!(counts.orphan_rows, 0);
    assert_eq!(counts.warnings, 0);
    let summary = counts.to_service_counts();
    assert_eq!(summary.total_keys(), records.len() as u64);
    assert_eq!(summary.keys[0], ("strings", 2));
}

#[test]
fn overwritten_and_deleted_keys_dump_their_newest_state() {
    let mut store = Store::default();
    store.write(&rec("k", None, RedisValue::String(b("v1"))), 10);
    store.write(&rec("k", None, RedisValue::String(b("v2"))), 20);
    store.write(
        &rec("gone", None, RedisValue::Hash(vec![(b("f"), b("v"))])),
        10,
    );
    store.delete(b"gone", 30);
    // Recreated with another type: the hash's field rows are tombstoned,
    // the META row now says string.
    store.write(
        &rec("morph", None, RedisValue::Hash(vec![(b("f"), b("v"))])),
        10,
    );
    store.write(
        &rec("morph", None, RedisValue::String(b("now a string"))),
        40,
    );
    // Deleted and recreated with the same type: no old field comes back.
    store.write(
        &rec("again", None, RedisValue::Set(vec![b("old1"), b("old2")])),
        10,
    );
    store.delete(b"again", 20);
    store.write(&rec("again", None, RedisValue::Set(vec![b("new")])), 30);

    let (decoded, counts) = store.decode(100).unwrap();
    assert_eq!(
        decoded,
        vec![
            rec("again", None, RedisValue::Set(vec![b("new")])),
            rec("k", None, RedisValue::String(b("v2"))),
            rec("morph", None, RedisValue::String(b("now a string"))),
        ]
    );
    assert_eq!(counts.orphan_rows, 0);

    // The same store read at earlier commit points shows earlier states.
    let (at_25, _) = store.decode(25).unwrap();
    let keys: Vec<_> = at_25.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, vec![b("gone"), b("k"), b("morph")]);
    assert_eq!(
        at_25[2],
        rec("morph", None, RedisValue::Hash(vec![(b("f"), b("v"))]))
    );
}

#[test]
fn expired_keys_are_skipped_with_their_member_rows() {
    let mut store = Store::default();
    store.write(
        &rec(
            "h",
            Some(5_000),
            RedisValue::Hash(vec![(b("a"), b("1")), (b("b"), b("2"))]),
        ),
        compose(1_000, 0),
    );
    store.write(
        &rec("s", Some(5_000), RedisValue::String(b("v"))),
        compose(1_000, 1),
    );
    store.write(
        &rec("keep", Some(9_000), RedisValue::String(b("v"))),
        compose(1_000, 2),
    );
    let (before, _) = store.decode(compose(4_999, 7)).unwrap();
    assert_eq!(before.len(), 3);
    assert_eq!(before[0].expire_at_ms, Some(5_000));
    let (after, counts) = store.decode(compose(5_000, 0)).unwrap();
    assert_eq!(
        after,
        vec![rec("keep", Some(9_000), RedisValue::String(b("v")))]
    );
    assert_eq!(counts.orphan_rows, 2, "the expired hash's field rows");
}

#[test]
fn hll_detection_requires_a_structurally_valid_sketch() {
    assert!(is_hll_sketch(&dense_hll()));
    assert!(is_hll_sketch(&sparse_hll()));
    let mut short = dense_hll();
    short.pop();
    assert!(!is_hll_sketch(&short));
    let mut bad_encoding = dense_hll();
    bad_encoding[4] = 2;
    assert!(!is_hll_sketch(&bad_encoding));
    let mut sparse_short = sparse_hll();
    sparse_short.truncate(sparse_short.len() - 2);
    assert!(!is_hll_sketch(&sparse_short), "registers do not add up");
    let mut sparse_cut = sparse_hll();
    sparse_cut.pop();
    assert!(!is_hll_sketch(&sparse_cut), "XZERO without its second byte");
    let mut sparse_long = sparse_hll();
    sparse_long.push(0);
    assert!(!is_hll_sketch(&sparse_long), "more than 16384 registers");
    assert!(!is_hll_sketch(b"HYLL"));
    assert!(!is_hll_sketch(b"hello world, a plain string"));

    let mut store = Store::default();
    store.write(&rec("fake", None, RedisValue::String(short.clone())), 10);
    let (decoded, _) = store.decode(20).unwrap();
    assert_eq!(decoded[0].value, RedisValue::String(short));
}

fn decode_raw(rows: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<RedisRecord>, ServiceDecodeError> {
    let mut store = Store::default();
    for (user_key, body) in rows {
        store.put_row(user_key, 10, body, 0);
    }
    store.decode(20).map(|(records, _)| records)
}

#[test]
fn corrupt_rows_are_errors_naming_the_key() {
    let meta = |body: Body| (meta_key(b"bad"), body.encode());
    let cases: Vec<(Vec<(Vec<u8>, Vec<u8>)>, &str)> = vec![
        (vec![(meta_key(b"bad"), vec![9])], "unknown META type"),
        (
            vec![
                meta(Body::Set { count: 1 }),
                (member_key(b"bad", TAG_SET, b"m"), b("x")),
            ],
            "set member row with a value",
        ),
        (
            vec![
                meta(Body::ZSet { count: 1 }),
                (
                    member_key(b"bad", TAG_ZMEMBER, b"m"),
                    f64::NAN.to_bits().to_be_bytes().to_vec(),
                ),
            ],
            "NaN",
        ),
        (
            vec![
                meta(Body::ZSet { count: 1 }),
                (member_key(b"bad", TAG_ZMEMBER, b"m"), vec![1]),
            ],
            "not 8 bytes",
        ),
        (
            vec![
                meta(Body::Hash { count: 1 }),
                (member_key(b"bad", TAG_SET, b"m"), vec![]),
            ],
            "tag 's' under a hash key",
        ),
        (
            vec![
                meta(Body::String(b("v"))),
                (member_key(b"bad", TAG_HASH, b"f"), vec![]),
            ],
            "under a string key",
        ),
        (
            vec![
                meta(Body::Stream(StreamMeta {
                    length: 1,
                    last_id: (9, 9),
                    ..StreamMeta::default()
                })),
                (
                    member_key(b"bad", TAG_STREAM, &[0; 16]),
                    vec![0, 0, 0, 2, 0, 0, 0, 9],
                ),
            ],
            "truncated",
        ),
        (
            vec![
                meta(Body::Stream(StreamMeta {
                    length: 1,
                    last_id: (9, 9),
                    ..StreamMeta::default()
                })),
                (
                    member_key(b"bad", TAG_STREAM, &[0; 16]),
                    stream_value(&[]).into_iter().chain([7]).collect(),
                ),
            ],
            "stray bytes",
        ),
        (
            vec![
                meta(Body::Stream(StreamMeta {
                    length: 1,
                    last_id: (0, 0),
                    ..StreamMeta::default()
                })),
                (
                    member_key(b"bad", TAG_STREAM, &[[0; 8], 5u64.to_be_bytes()].concat()),
                    stream_value(&[]),
                ),
            ],
            "behind its newest entry",
        ),
        (
            vec![
                meta(Body::List { head: 0, tail: 1 }),
                (member_key(b"bad", TAG_LIST, b"short"), b("x")),
            ],
            "not 8 bytes",
        ),
    ];
    for (rows, expected) in cases {
        let err = decode_raw(&rows).unwrap_err().to_string();
        assert!(err.contains("bad"), "key not named: {err}");
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
}

#[test]
fn count_mismatches_and_stray_list_items_are_warnings() {
    let rows = vec![
        (meta_key(b"h"), Body::Hash { count: 5 }.encode()),
        (member_key(b"h", TAG_HASH, b"f"), b("v")),
        (meta_key(b"l"), Body::List { head: 0, tail: 1 }.encode()),
        (member_key(b"l", TAG_LIST, &sortable_i64(0)), b("in")),
        (member_key(b"l", TAG_LIST, &sortable_i64(7)), b("out")),
    ];
    let mut store = Store::default();
    for (user_key, body) in &rows {
        store.put_row(user_key, 10, body, 0);
    }
    let (records, counts) = store.decode(20).unwrap();
    assert_eq!(
        records,
        vec![
            rec("h", None, RedisValue::Hash(vec![(b("f"), b("v"))])),
            rec("l", None, RedisValue::List(vec![b("in")])),
        ]
    );
    assert_eq!(counts.warnings, 2);
    assert_eq!(counts.stray_items, 1);
}

#[test]
fn rows_outside_a_route_prefix_are_corrupt() {
    let mut selector = VersionSelector::new(20);
    let mut assembler = RedisRowAssembler::new();
    let phys = encode_data_key(b"r-no-terminator", 10);
    let value = encode_put(b"", 0, 9);
    let key = decode_key(&phys).unwrap();
    let row = selector.select(&key, &phys, &value).unwrap().unwrap();
    let err = assembler.push(&row).unwrap_err().to_string();
    assert!(err.contains(&hex::encode(b"r-no-terminator")), "{err}");
}

fn bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(prop_oneof![Just(0u8), Just(0xff), b'a'..=b'c'], 0..max),
        proptest::collection::vec(any::<u8>(), 0..max),
    ]
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::btree_map(bytes_strategy(4), bytes_strategy(4), 0..4)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

fn value_strategy() -> impl Strategy<Value = RedisValue> {
    prop_oneof![
        bytes_strategy(6).prop_map(RedisValue::String),
        Just(RedisValue::Hll(sparse_hll())),
        pairs_strategy().prop_map(RedisValue::Hash),
        proptest::collection::vec(bytes_strategy(4), 1..4).prop_map(RedisValue::List),
        proptest::collection::btree_set(bytes_strategy(4), 1..4)
            .prop_map(|s| RedisValue::Set(s.into_iter().collect())),
        proptest::collection::btree_map(
            bytes_strategy(4),
            prop_oneof![
                any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
                Just(f64::NEG_INFINITY)
            ],
            1..4
        )
        .prop_map(|m| RedisValue::ZSet(m.into_iter().collect())),
        (
            proptest::collection::btree_map((0u64..5, 0u64..3), pairs_strategy(), 0..3),
            0u64..3
        )
            .prop_map(|(entries, extra)| {
                let entries: Vec<StreamEntry> = entries
                    .into_iter()
                    .map(|((ms, seq), fields)| StreamEntry {
                        id: StreamId { ms, seq },
                        fields,
                    })
                    .collect();
                let last = entries.last().map_or(StreamId::default(), |e| e.id);
                RedisValue::Stream {
                    entries,
                    last_id: StreamId {
                        ms: last.ms + extra,
                        seq: last.seq,
                    },
                }
            }),
    ]
}

/// One step of a key's history.
#[derive(Debug, Clone)]
enum Op {
    Write(Option<u64>, RedisValue),
    Delete,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::option::of(1u64..40), value_strategy()).prop_map(|(ttl, v)| Op::Write(ttl, v)),
        1 => Just(Op::Delete),
    ]
}

proptest! {
    /// A random history of writes (of any type, some with TTLs) and
    /// deletes, decoded at any commit point, yields exactly the keys a
    /// reader at that point sees: newest value, nothing deleted or
    /// expired, never an older incarnation's rows.
    #[test]
    fn decode_matches_the_state_at_the_commit_point(
        history in proptest::collection::vec((bytes_strategy(3), op_strategy()), 0..25),
        read_step in 0usize..30,
    ) {
        let mut store = Store::default();
        // Step i commits at physical ms 10*(i+1); TTLs are relative.
        let mut states: Vec<BTreeMap<Vec<u8>, (Option<u64>, RedisValue)>> = vec![BTreeMap::new()];
        for (i, (key, op)) in history.iter().enumerate() {
            let ms = 10 * (i as u64 + 1);
            let ts = compose(ms, 0);
            let mut state = states.last().cloned().unwrap_or_default();
            match op {
                Op::Write(ttl, value) => {
                    let record = RedisRecord {
                        key: key.clone(),
                        expire_at_ms: ttl.map(|t| ms + t),
                        value: value.clone(),
                    };
                    store.write(&record, ts);
                    state.insert(key.clone(), (record.expire_at_ms, value.clone()));
                }
                Op::Delete => {
                    store.delete(key, ts);
                    state.remove(key);
                }
            }
            states.push(state);
        }
        let step = read_step.min(history.len());
        let read_ms = 10 * step as u64 + 5;
        let expected: Vec<RedisRecord> = states[step]
            .iter()
            .filter(|(_, (ttl, _))| ttl.is_none_or(|deadline| deadline > read_ms))
            .map(|(key, (ttl, value))| RedisRecord { key: key.clone(), expire_at_ms: *ttl, value: value.clone() })
            .collect();
        let (decoded, counts) = store.decode(compose(read_ms, 0)).unwrap();
        prop_assert_eq!(decoded, canonical(&expected));
        prop_assert_eq!(counts.warnings, 0);
    }
}

#[test]
fn stream_field_decoding_bounds_its_allocation() {
    // A count claiming four billion items in a short value.
    let err = decode_stream_fields(b"k", &[0xff, 0xff, 0xff, 0xfe]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = decode_stream_fields(b"k", &[0, 0, 0, 3]).unwrap_err();
    assert!(err.to_string().contains("field/value pairs"), "{err}");
    assert_eq!(
        decode_stream_fields(b"k", &stream_value(&[])).unwrap(),
        vec![]
    );
}

#[test]
fn sketches_written_by_real_redis_are_recognised() {
    // GET of `PFADD e` (empty) and of `PFADD s x0 … x49` on redis-server 7.0.
    let empty = hex::decode("48594c4c0100000000000000000000807fff").unwrap();
    let sparse = hex::decode(concat!(
        "48594c4c010000000000000000000080388043389442a384404780148042148040fb90",
        "4088801e8042ca88414384410980409d8440ebb4404390404c8840dd80048407844291",
        "80414080413a8040508842988041fe84405984258441088c40c88441199044908040cb",
        "88405d80412484440d98417f8c446d80409f8842088024842d88407b9444558c410884",
        "2a8443be844126a433844074804050884061"
    ))
    .unwrap();
    assert_eq!(sparse.len(), 158);
    assert!(is_hll_sketch(&empty));
    assert!(is_hll_sketch(&sparse));
}
