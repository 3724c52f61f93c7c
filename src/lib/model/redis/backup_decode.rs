//! Redis rows of a snapshot → logical [`RedisRecord`]s (offline decode,
//! docs/backup-format.md § "Decode").
//!
//! Input: the visible rows (one version per user key, already chosen by
//! [`crate::backup::visible`]) of the Redis namespace of one group, in
//! ascending user-key order. The layout ([`super::layout`]) puts a key's
//! META row first and its member rows right after it, contiguous and never
//! interleaved with another key's, so [`RedisRowAssembler`] holds one key's
//! rows at a time and emits the key's record when the next key starts.
//!
//! Rules:
//! - a key exists iff its META row is visible; member rows without one are
//!   leftovers of an expired or deleted incarnation (active expiry reclaims
//!   them later) and are skipped, as a reader would;
//! - the TTL is the META version's `expire_at`, dumped as its millisecond;
//! - derived rows (the sorted-set score index `'i'`) are never dumped;
//! - a string whose value is a structurally valid Redis HyperLogLog
//!   (`HYLL` header, dense or sparse encoding covering exactly 16384
//!   registers) is dumped as an HLL;
//! - rows that do not decode, or contradict their key's type, are errors
//!   naming the key; counts that disagree with the rows present are
//!   warnings (logged and counted), the rows present are dumped.
//!
//! [`RedisSnapshotDecoder`] plugs the assembler into
//! [`crate::backup::decode`] with a [`RedisTreeWriter`] behind it.

use std::path::Path;

use super::layout::{
    TAG_HASH, TAG_LIST, TAG_SET, TAG_STREAM, TAG_ZINDEX, TAG_ZMEMBER, split_user_key,
    unsortable_i64,
};
use super::meta::{Body, StreamMeta};
use crate::backup::BackupError;
use crate::backup::decode::{
    DecodeError, ServiceCounts, ServiceDecodeError, ServiceDecoder, ServiceRowSink,
    for_each_visible_row,
};
use crate::backup::redis::{
    RedisError, RedisKind, RedisRecord, RedisTreeWriter, RedisValue, SERVICE_NAME, StreamEntry,
    StreamId, describe_key,
};
use crate::backup::tree::TreeWriter;
use crate::backup::visible::VisibleRow;
use crate::clock::{Timestamp, physical_ms};
use crate::snapshot::SnapshotHeader;
use crate::storage::NS_REDIS;

/// Registers of a Redis HyperLogLog.
const HLL_REGISTERS: u64 = 16384;
/// `"HYLL"` ‖ encoding ‖ 3 unused bytes ‖ cached cardinality (8 bytes).
const HLL_HEADER_LEN: usize = 16;
/// Header plus 16384 six-bit registers.
const HLL_DENSE_LEN: usize = HLL_HEADER_LEN + (HLL_REGISTERS as usize * 6).div_ceil(8);
const HLL_DENSE: u8 = 0;
const HLL_SPARSE: u8 = 1;

/// True when `value` is a HyperLogLog Redis itself would accept: the
/// `HYLL` magic, a dense sketch of exactly the dense size, or a sparse one
/// whose opcodes cover exactly the 16384 registers.
pub fn is_hll_sketch(value: &[u8]) -> bool {
    if value.len() < HLL_HEADER_LEN || &value[..4] != b"HYLL" {
        return false;
    }
    match value[4] {
        HLL_DENSE => value.len() == HLL_DENSE_LEN,
        HLL_SPARSE => {
            let mut registers = 0u64;
            let mut ops = value[HLL_HEADER_LEN..].iter();
            while let Some(&op) = ops.next() {
                registers += match op >> 6 {
                    // ZERO: 00xxxxxx, run of xxxxxx+1 zero registers.
                    0 => u64::from(op & 0x3f) + 1,
                    // XZERO: 01xxxxxx yyyyyyyy, run of 14-bit length + 1.
                    1 => match ops.next() {
                        Some(&low) => ((u64::from(op & 0x3f) << 8) | u64::from(low)) + 1,
                        None => return false,
                    },
                    // VAL: 1vvvvvxx, xx+1 registers of value vvvvv+1.
                    _ => u64::from(op & 0x03) + 1,
                };
                if registers > HLL_REGISTERS {
                    return false;
                }
            }
            registers == HLL_REGISTERS
        }
        _ => false,
    }
}

/// What the assembler saw, beyond the records it emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedisDecodeCounts {
    /// Keys emitted, indexed by `RedisKind as usize`.
    pub keys: [u64; 7],
    /// Member rows without a visible META row (expired or deleted keys).
    pub orphan_rows: u64,
    /// Derived rows never dumped (sorted-set score index).
    pub derived_rows: u64,
    /// List items outside the list's `[head, tail)`.
    pub stray_items: u64,
    /// Tolerated inconsistencies (see the module doc).
    pub warnings: u64,
}

impl RedisDecodeCounts {
    /// As the decode summary shows them.
    pub fn to_service_counts(&self) -> ServiceCounts {
        ServiceCounts {
            service: SERVICE_NAME,
            keys: RedisKind::ALL
                .iter()
                .map(|kind| (kind.dir(), self.keys[*kind as usize]))
                .collect(),
            skipped: vec![
                ("orphan_member_rows", self.orphan_rows),
                ("derived_index_rows", self.derived_rows),
                ("stray_list_items", self.stray_items),
            ],
            warnings: self.warnings,
        }
    }
}

/// The rows of one key gathered so far, by the type its META row says.
#[derive(Debug)]
enum Gathered {
    /// No visible META row: member rows are leftovers.
    Orphan,
    String(Vec<u8>),
    Hash {
        count: u64,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Set {
        count: u64,
        members: Vec<Vec<u8>>,
    },
    ZSet {
        count: u64,
        members: Vec<(Vec<u8>, f64)>,
    },
    List {
        head: i64,
        tail: i64,
        items: Vec<Vec<u8>>,
    },
    Stream {
        meta: StreamMeta,
        entries: Vec<StreamEntry>,
    },
}

impl Gathered {
    fn type_name(&self) -> &'static str {
        match self {
            Gathered::Orphan => "absent",
            Gathered::String(_) => "string",
            Gathered::Hash { .. } => "hash",
            Gathered::Set { .. } => "set",
            Gathered::ZSet { .. } => "zset",
            Gathered::List { .. } => "list",
            Gathered::Stream { .. } => "stream",
        }
    }
}

#[derive(Debug)]
struct PendingKey {
    /// The Redis key.
    key: Vec<u8>,
    /// The META row's user key, prefix of every row of the key.
    prefix: Vec<u8>,
    expire_at: Timestamp,
    gathered: Gathered,
}

fn corrupt(key: &[u8], detail: impl Into<String>) -> ServiceDecodeError {
    ServiceDecodeError::Corrupt {
        service: SERVICE_NAME,
        key: describe_key(key),
        detail: detail.into(),
    }
}

fn warn(counts: &mut RedisDecodeCounts, key: &[u8], detail: &str) {
    counts.warnings += 1;
    tracing::warn!(key = %describe_key(key), "redis decode: {detail}");
}

/// A stream entry's field/value pairs.
type StreamFields = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes a stream entry value: `u32be count ‖ (u32be len ‖ bytes)*`,
/// items alternating field and value.
fn decode_stream_fields(key: &[u8], raw: &[u8]) -> Result<StreamFields, ServiceDecodeError> {
    super::stream_entry::decode_pairs(key, raw).map_err(|err| match err {
        super::ModelError::Corrupt { detail, .. } => corrupt(key, detail),
        other => corrupt(key, other.to_string()),
    })
}

/// Turns a group's visible Redis rows into records, one key at a time.
#[derive(Debug, Default)]
pub struct RedisRowAssembler {
    pending: Option<PendingKey>,
    counts: RedisDecodeCounts,
}

impl RedisRowAssembler {
    pub fn new() -> RedisRowAssembler {
        RedisRowAssembler::default()
    }

    /// Counts so far.
    pub fn counts(&self) -> &RedisDecodeCounts {
        &self.counts
    }

    /// Takes one visible row of the Redis namespace. Returns the previous
    /// key's record when this row starts another key.
    ///
    /// # Errors
    /// [`ServiceDecodeError::Corrupt`] naming the key.
    pub fn push(
        &mut self,
        row: &VisibleRow<'_>,
    ) -> Result<Option<RedisRecord>, ServiceDecodeError> {
        if let Some(pending) = &mut self.pending
            && let Some(suffix) = row.user_key.strip_prefix(pending.prefix.as_slice())
            && !suffix.is_empty()
        {
            Self::member(pending, &mut self.counts, suffix, row.body)?;
            return Ok(None);
        }
        let finished = self.flush()?;
        let Some((key, prefix_len)) = split_user_key(row.user_key) else {
            return Err(ServiceDecodeError::Corrupt {
                service: SERVICE_NAME,
                key: format!("0x{}", hex::encode(row.user_key)),
                detail: "a row of the Redis namespace without a valid route prefix".into(),
            });
        };
        let prefix = row.user_key[..prefix_len].to_vec();
        let mut pending = if prefix_len == row.user_key.len() {
            let body = Body::decode(&key, row.body)
                .map_err(|err| corrupt(&key, format!("META row: {err}")))?;
            let gathered = match body {
                Body::String(value) => Gathered::String(value),
                Body::Hash { count } => Gathered::Hash {
                    count,
                    fields: Vec::new(),
                },
                Body::Set { count } => Gathered::Set {
                    count,
                    members: Vec::new(),
                },
                Body::ZSet { count } => Gathered::ZSet {
                    count,
                    members: Vec::new(),
                },
                Body::List { head, tail } => Gathered::List {
                    head,
                    tail,
                    items: Vec::new(),
                },
                Body::Stream(meta) => Gathered::Stream {
                    meta,
                    entries: Vec::new(),
                },
            };
            PendingKey {
                key,
                prefix,
                expire_at: row.expire_at,
                gathered,
            }
        } else {
            PendingKey {
                key,
                prefix,
                expire_at: 0,
                gathered: Gathered::Orphan,
            }
        };
        if prefix_len != row.user_key.len() {
            Self::member(
                &mut pending,
                &mut self.counts,
                &row.user_key[prefix_len..],
                row.body,
            )?;
        }
        self.pending = Some(pending);
        Ok(finished)
    }

    /// Adds one member row (`suffix` = tag ‖ rest) to the pending key.
    fn member(
        pending: &mut PendingKey,
        counts: &mut RedisDecodeCounts,
        suffix: &[u8],
        body: &[u8],
    ) -> Result<(), ServiceDecodeError> {
        let key = pending.key.as_slice();
        let Some((&tag, rest)) = suffix.split_first() else {
            return Err(corrupt(key, "empty member row suffix"));
        };
        match (&mut pending.gathered, tag) {
            (Gathered::Orphan, _) => counts.orphan_rows += 1,
            (Gathered::Hash { fields, .. }, TAG_HASH) => {
                fields.push((rest.to_vec(), body.to_vec()))
            }
            (Gathered::Set { members, .. }, TAG_SET) => {
                if !body.is_empty() {
                    return Err(corrupt(key, "set member row with a value"));
                }
                members.push(rest.to_vec());
            }
            (Gathered::ZSet { members, .. }, TAG_ZMEMBER) => {
                let bits: [u8; 8] = body
                    .try_into()
                    .map_err(|_| corrupt(key, "sorted-set score row is not 8 bytes"))?;
                let score = f64::from_bits(u64::from_be_bytes(bits));
                if score.is_nan() {
                    return Err(corrupt(key, "NaN sorted-set score"));
                }
                members.push((rest.to_vec(), score));
            }
            (Gathered::ZSet { .. }, TAG_ZINDEX) => counts.derived_rows += 1,
            (Gathered::List { head, tail, items }, TAG_LIST) => {
                let seq: [u8; 8] = rest
                    .try_into()
                    .map_err(|_| corrupt(key, "list item row key is not 8 bytes after its tag"))?;
                let seq = unsortable_i64(seq);
                if seq < *head || seq >= *tail {
                    counts.stray_items += 1;
                    warn(
                        counts,
                        key,
                        &format!("list item at seq {seq} outside [{head}, {tail}) skipped"),
                    );
                } else {
                    items.push(body.to_vec());
                }
            }
            (Gathered::Stream { entries, .. }, TAG_STREAM) => {
                let id: [u8; 16] = rest.try_into().map_err(|_| {
                    corrupt(key, "stream entry row key is not 16 bytes after its tag")
                })?;
                let (ms, seq) = id.split_at(8);
                let id = StreamId {
                    ms: u64::from_be_bytes(ms.try_into().unwrap_or_default()),
                    seq: u64::from_be_bytes(seq.try_into().unwrap_or_default()),
                };
                entries.push(StreamEntry {
                    id,
                    fields: decode_stream_fields(key, body)?,
                });
            }
            (gathered, tag) => {
                return Err(corrupt(
                    key,
                    format!(
                        "member row with tag {:?} under a {} key",
                        char::from(tag),
                        gathered.type_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Ends the current key (call at the end of a group's rows); returns
    /// its record, if it exists.
    ///
    /// # Errors
    /// [`ServiceDecodeError::Corrupt`] naming the key.
    pub fn flush(&mut self) -> Result<Option<RedisRecord>, ServiceDecodeError> {
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let PendingKey {
            key,
            expire_at,
            gathered,
            ..
        } = pending;
        let counts = &mut self.counts;
        let mut check_count = |declared: u64, found: usize, what: &str| {
            if declared != found as u64 {
                warn(
                    counts,
                    &key,
                    &format!("META declares {declared} {what}, {found} present"),
                );
            }
        };
        let value = match gathered {
            Gathered::Orphan => return Ok(None),
            Gathered::String(value) if is_hll_sketch(&value) => RedisValue::Hll(value),
            Gathered::String(value) => RedisValue::String(value),
            Gathered::Hash { count, fields } => {
                check_count(count, fields.len(), "fields");
                RedisValue::Hash(fields)
            }
            Gathered::Set { count, members } => {
                check_count(count, members.len(), "members");
                RedisValue::Set(members)
            }
            Gathered::ZSet { count, members } => {
                check_count(count, members.len(), "members");
                RedisValue::ZSet(members)
            }
            Gathered::List { head, tail, items } => {
                check_count(tail.saturating_sub(head) as u64, items.len(), "items");
                RedisValue::List(items)
            }
            Gathered::Stream { meta, entries } => {
                check_count(meta.length, entries.len(), "entries");
                let last_id = StreamId {
                    ms: meta.last_id.0,
                    seq: meta.last_id.1,
                };
                if entries.last().is_some_and(|newest| newest.id > last_id) {
                    return Err(corrupt(
                        &key,
                        format!("stream last id {last_id} is behind its newest entry"),
                    ));
                }
                RedisValue::Stream { entries, last_id }
            }
        };
        let expire_at_ms = match expire_at {
            0 => None,
            deadline => match physical_ms(deadline) {
                0 => return Err(corrupt(&key, "expiry deadline below 1 ms")),
                ms => Some(ms),
            },
        };
        self.counts.keys[value.kind() as usize] += 1;
        Ok(Some(RedisRecord {
            key,
            expire_at_ms,
            value,
        }))
    }
}

/// The Redis decoder for [`crate::backup::decode`] (database 0: the model
/// has one keyspace).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisSnapshotDecoder;

impl ServiceDecoder for RedisSnapshotDecoder {
    fn service(&self) -> &'static str {
        SERVICE_NAME
    }

    fn namespace(&self) -> u8 {
        NS_REDIS
    }

    fn start<'t>(
        &self,
        tree: &'t TreeWriter,
    ) -> Result<Box<dyn ServiceRowSink + 't>, ServiceDecodeError> {
        Ok(Box::new(RedisDecodeSink {
            assembler: RedisRowAssembler::new(),
            writer: RedisTreeWriter::new(tree, 0),
        }))
    }
}

/// Assembler plus tree writer.
struct RedisDecodeSink<'t> {
    assembler: RedisRowAssembler,
    writer: RedisTreeWriter<'t>,
}

impl RedisDecodeSink<'_> {
    fn write(&mut self, record: Option<RedisRecord>) -> Result<(), ServiceDecodeError> {
        let Some(record) = record else {
            return Ok(());
        };
        self.writer.write(&record).map_err(|err| match err {
            RedisError::DuplicateKey { .. } => ServiceDecodeError::DuplicateKey {
                service: SERVICE_NAME,
                key: describe_key(&record.key),
            },
            RedisError::InvalidRecord { reason, .. } => corrupt(&record.key, reason),
            other => ServiceDecodeError::Output(BackupError::Redis(other)),
        })
    }
}

impl ServiceRowSink for RedisDecodeSink<'_> {
    fn push(&mut self, row: &VisibleRow<'_>) -> Result<(), ServiceDecodeError> {
        let finished = self.assembler.push(row)?;
        self.write(finished)
    }

    fn end_group(&mut self) -> Result<(), ServiceDecodeError> {
        let finished = self.assembler.flush()?;
        self.write(finished)
    }

    fn finish(self: Box<Self>) -> Result<ServiceCounts, ServiceDecodeError> {
        let RedisDecodeSink { assembler, writer } = *self;
        writer
            .close()
            .map_err(|err| ServiceDecodeError::Output(BackupError::Redis(err)))?;
        Ok(assembler.counts().to_service_counts())
    }
}

/// Streams the Redis records of one snapshot file to `each`, in key order,
/// without writing a tree (for checks such as the encoder's self-test).
/// The file's footer CRC is only verified at its end: treat what `each`
/// received as provisional until this returns `Ok`.
///
/// # Errors
/// Snapshot errors naming the file, corrupt rows naming the key, and
/// whatever `each` returns.
pub fn read_snapshot_records(
    path: &Path,
    mut each: impl FnMut(RedisRecord) -> Result<(), ServiceDecodeError>,
) -> Result<(SnapshotHeader, RedisDecodeCounts), DecodeError> {
    let mut assembler = RedisRowAssembler::new();
    let header = for_each_visible_row(path, NS_REDIS, &mut |row| {
        match row {
            Some(row) => {
                if let Some(record) = assembler.push(row)? {
                    each(record)?;
                }
            }
            None => {
                if let Some(record) = assembler.flush()? {
                    each(record)?;
                }
            }
        }
        Ok(())
    })?;
    Ok((header, *assembler.counts()))
}

#[cfg(test)]
mod tests;
