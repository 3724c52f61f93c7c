//! Redis records of a backup tree → the storage rows the live model would
//! hold for them, and the Redis half of `snapshot-encode`
//! ([`RedisEncoder`], a [`ServiceEncoder`]).
//!
//! Each record becomes exactly what the write path leaves behind for a key
//! holding that value ([`layout`] and [`meta`] are the only encoders used):
//! the META row (type, counts, list bounds, stream bookkeeping; the TTL as
//! the version's `expire_at`), one row per hash field, set member, list item
//! (sequence numbers `0..n`, as RPUSH onto a new list assigns them) and
//! stream entry, and for sorted sets both the member row and the derived
//! score-index row. Stream entry values use [`encode_stream_fields`], the
//! front end's entry encoding (a test in tests/snapshot_encode.rs compares
//! the two byte for byte through XADD).
//!
//! Rules: HLL sketches are Redis strings (the store has no HLL type) and
//! must start with the `HYLL` magic; an expiry at or before the snapshot's
//! commit time means the key is already gone, so it is skipped; an empty
//! hash, list, set or sorted set is skipped (neither Redis nor the model
//! keeps one); only database 0 exists.
//!
//! The self-test decodes the written snapshot with the decoder of
//! `snapshot-decode` ([`read_snapshot_records`]) and compares the result
//! with the tree record by record, holding one key plus a 32-byte digest
//! per key of the tree in memory.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::backup_decode::read_snapshot_records;
use super::layout::{
    TAG_HASH, TAG_LIST, TAG_SET, TAG_STREAM, TAG_ZINDEX, TAG_ZMEMBER, member_key, meta_key,
    sortable_f64, sortable_i64,
};
use super::meta::{Body, StreamMeta};
use crate::backup::encode::{
    EncodeError, LogicalRow, RowSink, SelfTestReport, ServiceEncoder, Skipped, describe_bytes,
};
use crate::backup::redis::{RedisKind, RedisMapping, RedisRecord, RedisValue, SERVICE_NAME};
use crate::backup::service::ServiceMapping;
use crate::backup::tree::TreeReader;
use crate::clock::{LOGICAL_BITS, Timestamp, compose, physical_ms};

/// The only database the store has.
pub const DATABASE: u32 = 0;
/// First bytes of every Redis HyperLogLog string.
pub const HLL_MAGIC: &[u8; 4] = b"HYLL";
/// Self-test differences reported before giving up on listing them.
const MAX_MISMATCHES: usize = 20;

/// The `snapshot-encode` summary name of a record's kind.
pub fn kind_name(kind: RedisKind) -> &'static str {
    match kind {
        RedisKind::String => "string",
        RedisKind::Hll => "hll",
        RedisKind::Hash => "hash",
        RedisKind::List => "list",
        RedisKind::Set => "set",
        RedisKind::ZSet => "zset",
        RedisKind::Stream => "stream",
    }
}

/// A stream entry's stored value: `u32be(item count)` then
/// `u32be(len) ‖ bytes` per item, items being field, value, field, value...
pub fn encode_stream_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    super::stream_entry::encode_pairs(fields)
}

/// Checks that `bytes` are marked as a Redis HyperLogLog. The sketch is
/// otherwise opaque (format §5.9.1): Redis itself validates it on use.
pub fn check_hll(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.starts_with(HLL_MAGIC) {
        Ok(())
    } else {
        Err("HyperLogLog value does not start with the \"HYLL\" magic")
    }
}

/// What one record becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    Rows(Vec<LogicalRow>),
    Skipped(Skipped),
}

/// The storage rows of `record` as of `commit_ms` (the physical part of the
/// commit timestamp the rows will carry).
///
/// # Errors
/// Why the record cannot be stored: the rules of
/// [`RedisRecord::canonical`], an expiry beyond the clock's 48-bit range, an
/// HLL value without its header.
pub fn record_rows(record: &RedisRecord, commit_ms: u64) -> Result<Encoded, String> {
    let record = record.canonical().map_err(str::to_string)?;
    let expire_at = match record.expire_at_ms {
        None => 0,
        Some(ms) if ms >> (64 - LOGICAL_BITS) != 0 => {
            return Err(format!("expire_at_ms {ms} is beyond the clock's range"));
        }
        Some(ms) if ms <= commit_ms => return Ok(Encoded::Skipped(Skipped::Expired)),
        Some(ms) => compose(ms, 0),
    };
    let key = &record.key;
    let meta = |body: Body| LogicalRow {
        user_key: meta_key(key),
        body: body.encode(),
        expire_at,
    };
    let member = |tag: u8, suffix: &[u8], body: Vec<u8>| LogicalRow {
        user_key: member_key(key, tag, suffix),
        body,
        expire_at: 0,
    };
    let count = |n: usize| n as u64;
    let rows = match &record.value {
        RedisValue::String(bytes) => vec![meta(Body::String(bytes.clone()))],
        RedisValue::Hll(bytes) => {
            check_hll(bytes)?;
            vec![meta(Body::String(bytes.clone()))]
        }
        RedisValue::Hash(fields) => {
            if fields.is_empty() {
                return Ok(Encoded::Skipped(Skipped::Empty));
            }
            let mut rows = vec![meta(Body::Hash {
                count: count(fields.len()),
            })];
            rows.extend(
                fields
                    .iter()
                    .map(|(field, value)| member(TAG_HASH, field, value.clone())),
            );
            rows
        }
        RedisValue::Set(members) => {
            if members.is_empty() {
                return Ok(Encoded::Skipped(Skipped::Empty));
            }
            let mut rows = vec![meta(Body::Set {
                count: count(members.len()),
            })];
            rows.extend(members.iter().map(|m| member(TAG_SET, m, Vec::new())));
            rows
        }
        RedisValue::ZSet(members) => {
            if members.is_empty() {
                return Ok(Encoded::Skipped(Skipped::Empty));
            }
            let mut rows = vec![meta(Body::ZSet {
                count: count(members.len()),
            })];
            for (name, score) in members {
                rows.push(member(
                    TAG_ZMEMBER,
                    name,
                    score.to_bits().to_be_bytes().to_vec(),
                ));
                let mut index = sortable_f64(*score).to_vec();
                index.extend_from_slice(name);
                rows.push(member(TAG_ZINDEX, &index, Vec::new()));
            }
            rows
        }
        RedisValue::List(items) => {
            if items.is_empty() {
                return Ok(Encoded::Skipped(Skipped::Empty));
            }
            let tail = i64::try_from(items.len()).map_err(|_| "list too long".to_string())?;
            let mut rows = vec![meta(Body::List { head: 0, tail })];
            rows.extend(
                items
                    .iter()
                    .zip(0i64..)
                    .map(|(item, seq)| member(TAG_LIST, &sortable_i64(seq), item.clone())),
            );
            rows
        }
        RedisValue::Stream { entries, last_id } => {
            let length = count(entries.len());
            let mut rows = vec![meta(Body::Stream(StreamMeta {
                length,
                last_id: (last_id.ms, last_id.seq),
                entries_added: length,
                max_deleted: (0, 0),
            }))];
            for entry in entries {
                let mut id = entry.id.ms.to_be_bytes().to_vec();
                id.extend_from_slice(&entry.id.seq.to_be_bytes());
                rows.push(member(TAG_STREAM, &id, encode_stream_fields(&entry.fields)));
            }
            rows
        }
    };
    Ok(Encoded::Rows(rows))
}

/// The Redis service of `snapshot-encode`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisEncoder;

impl RedisEncoder {
    /// Refuses databases other than 0 and anything else under `redis/`.
    fn check_databases(tree: &TreeReader) -> Result<(), EncodeError> {
        let Some(entries) = tree.list_dir(Path::new(SERVICE_NAME))? else {
            return Ok(());
        };
        for entry in entries {
            let name = entry.name.to_string_lossy().into_owned();
            let path = format!("{SERVICE_NAME}/{name}");
            if name == format!("db_{DATABASE}") && entry.is_dir {
                continue;
            }
            let reason = if name.starts_with("db_") && entry.is_dir {
                "elastickv serves one Redis database (db_0)"
            } else {
                "not a Redis database directory"
            };
            return Err(EncodeError::Unsupported {
                path,
                reason: reason.into(),
            });
        }
        Ok(())
    }
}

fn invalid_record(key: &[u8], reason: impl Into<String>) -> EncodeError {
    EncodeError::InvalidRecord {
        service: SERVICE_NAME,
        key: describe_bytes(key),
        reason: reason.into(),
    }
}

impl ServiceEncoder for RedisEncoder {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn encode(&self, tree: &TreeReader, sink: &mut RowSink<'_>) -> Result<(), EncodeError> {
        Self::check_databases(tree)?;
        let commit_ms = sink.commit_ms();
        for record in (RedisMapping { db: DATABASE }).reader(tree)? {
            let record = record?;
            match record_rows(&record, commit_ms).map_err(|r| invalid_record(&record.key, r))? {
                Encoded::Skipped(why) => sink.note_skipped(why),
                Encoded::Rows(rows) => {
                    for row in rows {
                        sink.push(row)?;
                    }
                    sink.note_record(kind_name(record.value.kind()));
                }
            }
        }
        Ok(())
    }

    fn self_test(
        &self,
        tree: &TreeReader,
        fsm: &Path,
        commit_ts: Timestamp,
    ) -> Result<SelfTestReport, EncodeError> {
        let commit_ms = physical_ms(commit_ts);
        let mut expected: Vec<(Vec<u8>, [u8; 32])> = Vec::new();
        for record in (RedisMapping { db: DATABASE }).reader(tree)? {
            let record = record?;
            if let Ok(Encoded::Rows(_)) = record_rows(&record, commit_ms) {
                expected.push((record.key.clone(), record_digest(&record)));
            }
        }
        expected.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut report = SelfTestReport::default();
        let note = |report: &mut SelfTestReport, line: String| {
            if report.mismatches.len() < MAX_MISMATCHES {
                report.mismatches.push(line);
            }
        };
        let mut wanted = expected.into_iter().peekable();
        let decoded = read_snapshot_records(fsm, |record| {
            while let Some((missing, _)) = wanted.next_if(|(k, _)| *k < record.key) {
                note(
                    &mut report,
                    format!("key {} missing from the snapshot", describe_bytes(&missing)),
                );
            }
            match wanted.next_if(|(k, _)| *k == record.key) {
                Some((_, digest)) if digest == record_digest(&record) => report.compared += 1,
                Some(_) => note(
                    &mut report,
                    format!("key {} differs from the tree", describe_bytes(&record.key)),
                ),
                None => note(
                    &mut report,
                    format!(
                        "key {} is in the snapshot only",
                        describe_bytes(&record.key)
                    ),
                ),
            }
            Ok(())
        });
        let (header, _) = decoded.map_err(|e| {
            EncodeError::SelfTest(format!("the decoder rejected the written snapshot: {e}"))
        })?;
        if header.last_commit_ts != commit_ts {
            note(
                &mut report,
                format!(
                    "header last_commit_ts {} instead of {commit_ts}",
                    header.last_commit_ts
                ),
            );
        }
        for (missing, _) in wanted {
            note(
                &mut report,
                format!("key {} missing from the snapshot", describe_bytes(&missing)),
            );
        }
        Ok(report)
    }
}

/// A digest of a record's meaning: HLL and string values compare by bytes
/// (the store keeps both as strings); collections in canonical order.
pub fn record_digest(record: &RedisRecord) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut put = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    put(&record.key);
    put(&record.expire_at_ms.map_or(0, |ms| ms + 1).to_be_bytes());
    let canonical = record.canonical().unwrap_or_else(|_| record.clone());
    match &canonical.value {
        RedisValue::String(bytes) | RedisValue::Hll(bytes) => {
            put(b"string");
            put(bytes);
        }
        RedisValue::Hash(fields) => {
            put(b"hash");
            for (field, value) in fields {
                put(field);
                put(value);
            }
        }
        RedisValue::List(items) => {
            put(b"list");
            items.iter().for_each(|item| put(item));
        }
        RedisValue::Set(members) => {
            put(b"set");
            members.iter().for_each(|member| put(member));
        }
        RedisValue::ZSet(members) => {
            put(b"zset");
            for (member, score) in members {
                put(member);
                put(&score.to_bits().to_be_bytes());
            }
        }
        RedisValue::Stream { entries, last_id } => {
            put(b"stream");
            put(&last_id.ms.to_be_bytes());
            put(&last_id.seq.to_be_bytes());
            for entry in entries {
                put(&entry.id.ms.to_be_bytes());
                put(&entry.id.seq.to_be_bytes());
                put(&encode_stream_fields(&entry.fields));
            }
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::backup::redis::{StreamEntry, StreamId};
    use crate::backup::visible::VisibleRow;
    use crate::clock::Hlc;
    use crate::fsm::{Group, GroupOptions};
    use crate::model::redis::backup_decode::RedisRowAssembler;
    use crate::model::redis::layout::key_end;
    use crate::model::redis::{Db, End, Kind};
    use crate::storage::{Direction, StoreOptions};
    use crate::txn::{LocalBackend, Txn};

    /// A deadline far in the future (2096), so no generated key expires.
    const FUTURE_MS: u64 = 4_000_000_000_000;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(b'h'), Just(0xFFu8), any::<u8>()],
            0..max,
        )
    }

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("no NaN", |s| !s.is_nan()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            (-1000i32..1000).prop_map(f64::from),
        ]
    }

    fn hll() -> impl Strategy<Value = Vec<u8>> {
        (any::<u64>(), bytes(40)).prop_map(|(card, tail)| {
            let mut sketch = HLL_MAGIC.to_vec();
            sketch.extend_from_slice(&[1, 0, 0, 0]);
            sketch.extend_from_slice(&card.to_le_bytes());
            sketch.extend_from_slice(&tail);
            sketch
        })
    }

    fn stream() -> impl Strategy<Value = RedisValue> {
        (
            prop::collection::btree_set((0u64..50, 0u64..3), 0..5),
            prop::collection::vec(prop::collection::vec((bytes(4), bytes(6)), 1..3), 5),
            0u64..3,
        )
            .prop_map(|(ids, fields, extra)| {
                let entries: Vec<StreamEntry> = ids
                    .into_iter()
                    .zip(fields)
                    .map(|((ms, seq), fields)| StreamEntry {
                        id: StreamId { ms, seq },
                        fields,
                    })
                    .collect();
                let newest = entries.last().map_or(StreamId::default(), |e| e.id);
                RedisValue::Stream {
                    entries,
                    last_id: StreamId {
                        ms: newest.ms + extra,
                        seq: newest.seq,
                    },
                }
            })
    }

    /// Values the model can hold (no empty collections).
    fn value(with_stream: bool) -> impl Strategy<Value = RedisValue> {
        let unique = |v: Vec<Vec<u8>>| {
            let mut v = v;
            v.sort();
            v.dedup();
            v
        };
        let base = prop_oneof![
            bytes(24).prop_map(RedisValue::String),
            hll().prop_map(RedisValue::Hll),
            prop::collection::btree_map(bytes(6), bytes(8), 1..6)
                .prop_map(|m| RedisValue::Hash(m.into_iter().collect())),
            prop::collection::vec(bytes(8), 1..6).prop_map(RedisValue::List),
            prop::collection::vec(bytes(6), 1..6).prop_map(move |v| RedisValue::Set(unique(v))),
            prop::collection::btree_map(bytes(6), score(), 1..6)
                .prop_map(|m| RedisValue::ZSet(m.into_iter().collect())),
        ];
        if with_stream {
            prop_oneof![5 => base, 1 => stream()].boxed()
        } else {
            base.boxed()
        }
    }

    fn record(with_stream: bool) -> impl Strategy<Value = RedisRecord> {
        (
            bytes(8),
            prop::option::of(1u64..1_000_000),
            value(with_stream),
        )
            .prop_map(|(key, ttl, value)| RedisRecord {
                key,
                expire_at_ms: ttl.map(|t| FUTURE_MS + t),
                value,
            })
    }

    fn rows_of(record: &RedisRecord) -> Vec<LogicalRow> {
        match record_rows(record, 1).unwrap() {
            Encoded::Rows(rows) => rows,
            Encoded::Skipped(why) => panic!("skipped: {why:?}"),
        }
    }

    fn backend(dir: &Path) -> LocalBackend {
        let options = GroupOptions {
            group_id: 1,
            store: StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        };
        let group = Group::open(dir, options, Arc::new(Hlc::default())).unwrap();
        LocalBackend::new(Arc::new(group))
    }

    fn refs(items: &[Vec<u8>]) -> Vec<&[u8]> {
        items.iter().map(Vec::as_slice).collect()
    }

    /// Writes `record` the way the Redis commands do, through the model.
    fn write_through_model(db: &mut Db<'_, '_, LocalBackend>, record: &RedisRecord) {
        let key = record.key.as_slice();
        match &record.value {
            RedisValue::String(v) | RedisValue::Hll(v) => {
                db.create(key, &Body::String(v.clone()), 0)
            }
            RedisValue::Hash(fields) => {
                let pairs: Vec<(&[u8], &[u8])> = fields
                    .iter()
                    .map(|(f, v)| (f.as_slice(), v.as_slice()))
                    .collect();
                db.hash_set(key, &pairs, false).unwrap();
            }
            RedisValue::Set(members) => {
                db.set_add(key, &refs(members)).unwrap();
            }
            RedisValue::List(items) => {
                db.list_push(key, &refs(items), End::Right, false).unwrap();
            }
            RedisValue::ZSet(members) => {
                let mut loaded = db.load_counted_for_write(key, Kind::ZSet).unwrap();
                for (member, score) in members {
                    db.zset_put_raw(key, member, None, *score);
                    loaded.count += 1;
                }
                loaded.existed = true;
                db.save_counted(key, Kind::ZSet, &loaded);
            }
            RedisValue::Stream { .. } => unreachable!("streams are written by the front end"),
        }
        if let Some(ms) = record.expire_at_ms {
            let meta = db.meta(key).unwrap().unwrap();
            db.put_meta(key, &meta.body, Db::<LocalBackend>::deadline(ms));
        }
    }

    /// (user key, value, expire_at) of each row.
    type Rows = Vec<(Vec<u8>, Vec<u8>, u64)>;

    /// Every visible row of `key`.
    fn visible_rows(txn: &mut Txn<'_, LocalBackend>, key: &[u8]) -> Rows {
        txn.scan(
            &meta_key(key),
            Some(&key_end(key)),
            usize::MAX,
            Direction::Forward,
        )
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.value, v.expire_at))
        .collect()
    }

    /// Reads `key` back through the model's read path.
    fn read_through_model(db: &mut Db<'_, '_, LocalBackend>, key: &[u8]) -> RedisRecord {
        let meta = db.meta(key).unwrap().expect("key exists");
        let value = match &meta.body {
            Body::String(v) => RedisValue::String(v.clone()),
            Body::Hash { .. } => RedisValue::Hash(db.hash_all(key).unwrap()),
            Body::Set { .. } => RedisValue::Set(db.set_members(key).unwrap()),
            Body::ZSet { .. } => RedisValue::ZSet(db.zset_all(key).unwrap()),
            Body::List { .. } => {
                let list = db.list_meta(key).unwrap();
                RedisValue::List(db.list_all(key, &list).unwrap())
            }
            Body::Stream(_) => unreachable!("not generated"),
        };
        RedisRecord {
            key: key.to_vec(),
            expire_at_ms: (meta.expire_at != 0).then(|| physical_ms(meta.expire_at)),
            value,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// The encoder's rows are byte for byte what the model writes for
        /// the same data, and read back through the model as the record.
        #[test]
        fn rows_match_what_the_model_writes(record in record(false)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (model, encoded) = (backend(dirs.0.path()), backend(dirs.1.path()));
            runtime.block_on(async {
                let mut txn = Txn::begin(&model).await.unwrap();
                write_through_model(&mut Db::new(&mut txn), &record);
                txn.commit().await.unwrap();
                let mut txn = Txn::begin(&encoded).await.unwrap();
                for row in rows_of(&record) {
                    txn.put(row.user_key, row.body, row.expire_at);
                }
                txn.commit().await.unwrap();

                let mut a = Txn::begin(&model).await.unwrap();
                let mut b = Txn::begin(&encoded).await.unwrap();
                prop_assert_eq!(visible_rows(&mut a, &record.key), visible_rows(&mut b, &record.key));
                let back = read_through_model(&mut Db::new(&mut b), &record.key);
                // The model reads scores from the score index, where -0 is
                // stored as +0 (as Redis treats them as equal).
                let mut expected = record.clone();
                if let RedisValue::ZSet(members) = &mut expected.value {
                    for (_, score) in members.iter_mut() {
                        if *score == 0.0 {
                            *score = 0.0;
                        }
                    }
                }
                prop_assert_eq!(record_digest(&back), record_digest(&expected));
                Ok(())
            })?;
        }

        /// The decoder of `snapshot-decode` (which the self-test uses)
        /// inverts the encoder, streams included.
        #[test]
        fn rows_decode_back_to_the_record(record in record(true)) {
            let mut rows = rows_of(&record);
            rows.sort_by(|a, b| a.user_key.cmp(&b.user_key));
            let mut assembler = RedisRowAssembler::new();
            for row in &rows {
                let visible = VisibleRow {
                    user_key: &row.user_key,
                    body: &row.body,
                    expire_at: row.expire_at,
                    commit_ts: 1,
                };
                prop_assert!(assembler.push(&visible).unwrap().is_none());
            }
            let back = assembler.flush().unwrap().unwrap();
            prop_assert_eq!(record_digest(&back), record_digest(&record));
        }
    }

    fn rec(value: RedisValue, ttl: Option<u64>) -> RedisRecord {
        RedisRecord {
            key: b"k".to_vec(),
            expire_at_ms: ttl,
            value,
        }
    }

    #[test]
    fn expired_and_empty_records_are_skipped() {
        let expired = rec(RedisValue::String(b"v".to_vec()), Some(1000));
        assert_eq!(
            record_rows(&expired, 1000).unwrap(),
            Encoded::Skipped(Skipped::Expired)
        );
        assert!(matches!(
            record_rows(&expired, 999).unwrap(),
            Encoded::Rows(_)
        ));
        for empty in [
            RedisValue::Hash(vec![]),
            RedisValue::List(vec![]),
            RedisValue::Set(vec![]),
            RedisValue::ZSet(vec![]),
        ] {
            assert_eq!(
                record_rows(&rec(empty, None), 0).unwrap(),
                Encoded::Skipped(Skipped::Empty)
            );
        }
        // An empty stream is a real Redis value (XADD then XDEL).
        let stream = RedisValue::Stream {
            entries: vec![],
            last_id: StreamId { ms: 5, seq: 1 },
        };
        assert!(matches!(
            record_rows(&rec(stream, None), 0).unwrap(),
            Encoded::Rows(rows) if rows.len() == 1
        ));
    }

    #[test]
    fn invalid_records_are_refused() {
        let beyond = rec(RedisValue::String(vec![]), Some(1 << 48));
        assert!(record_rows(&beyond, 0).unwrap_err().contains("range"));
        let not_hll = rec(RedisValue::Hll(b"HYLX............".to_vec()), None);
        assert!(record_rows(&not_hll, 0).unwrap_err().contains("HYLL"));
        let duplicate = rec(RedisValue::Set(vec![b"a".to_vec(), b"a".to_vec()]), None);
        assert!(record_rows(&duplicate, 0).is_err());
        let nan = rec(RedisValue::ZSet(vec![(b"m".to_vec(), f64::NAN)]), None);
        assert!(record_rows(&nan, 0).is_err());
    }
}
