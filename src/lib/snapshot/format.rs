//! The byte layout of a `.fsm` snapshot file: constants, caps, the header and
//! its encoding, and the value types readers hand out. `docs/snapshot-format.md`
//! is the normative description; this file must agree with it byte for byte.
//!
//! Invariants kept here:
//! - every integer is little-endian and fixed width;
//! - every length cap is checked on the length before anything is allocated;
//! - the header bytes are covered by their own CRC-32C, and the whole file by
//!   the footer CRC-32C, so header corruption is reported before any record is
//!   read and any other flipped byte is reported at the footer.

use crate::storage::Cf;

use super::error::SnapshotError;

/// First eight bytes of every snapshot file. The leading 0x89 byte (high bit
/// set) makes a 7-bit-clean or text-mode copy fail loudly, as in PNG.
pub const MAGIC: [u8; 8] = *b"\x89EKVSNAP";
/// The format version this build writes and the only one it reads.
pub const SUPPORTED_VERSION: u16 = 1;

/// Tag byte opening the section of one column family (followed by its id).
pub const SECTION_TAG: u8 = b'S';
/// Tag byte opening the end marker (record counts per column family).
pub const END_TAG: u8 = b'Z';

/// Cap on a record key: the storage layer's 1 MiB user-key limit plus room
/// for the MVCC encoding around it.
pub const KEY_CAP: u64 = (1 << 20) + 64;
/// Cap on a record value: the 512 MiB value limit plus room for the value
/// header.
pub const VALUE_CAP: u64 = (512 << 20) + 64;
/// Cap on the whole header body (dominated by the ownership table).
pub const HEADER_CAP: u64 = 64 << 20;
/// Cap on the cluster id string.
pub const CLUSTER_ID_CAP: u64 = 255;

/// Magic, version and header length: the bytes before the header body.
pub const PREAMBLE_LEN: u64 = 8 + 2 + 4;
/// Total length u64 and CRC-32C u32 at the very end of the file.
pub const FOOTER_LEN: u64 = 8 + 4;
/// Fixed-width part of the header body (everything but the two strings).
const HEADER_FIXED_LEN: usize = 2 + 6 * 8 + 4;

/// Suffix of the temporary file a snapshot is written to before its rename.
pub const TEMP_SUFFIX: &str = ".fsm-tmp";

/// The column families a snapshot carries, in file order.
pub const SECTIONS: [Cf; 3] = Cf::STATE_MACHINE;

/// The conventional file name of the snapshot at `index` in a group's
/// `snap/` directory: 16 lowercase hex digits, so names sort by index.
pub fn file_name(index: u64) -> String {
    format!("{index:016x}.fsm")
}

/// A key for an error message: hex, cut after 32 bytes.
pub(crate) fn key_preview(key: &[u8]) -> String {
    const SHOWN: usize = 32;
    if key.len() <= SHOWN {
        format!("0x{}", hex::encode(key))
    } else {
        format!("0x{}… ({} bytes)", hex::encode(&key[..SHOWN]), key.len())
    }
}

/// Position of `cf` among the sections, or `None` for a Raft column family,
/// which is each replica's own and never travels in a snapshot.
pub(crate) fn section_index(cf: Cf) -> Option<usize> {
    SECTIONS.iter().position(|c| *c == cf)
}

/// What a snapshot is a copy of. Everything a node needs before it streams the
/// records: which cluster and group, the Raft position, and the state the
/// state machine keeps outside the column families' key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotHeader {
    pub cluster_id: String,
    pub group_id: u64,
    /// Raft index of the last entry the snapshot includes.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// Newest commit timestamp applied (HLC).
    pub last_commit_ts: u64,
    /// HLC physical ceiling in Unix milliseconds.
    pub hlc_ceiling_ms: u64,
    /// The group's ownership table, opaque to this layer; may be empty.
    pub ownership: Vec<u8>,
    /// When the snapshot was taken; informational only.
    pub created_unix_ms: u64,
}

/// One key/value pair of one column family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub cf: Cf,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Records per column family, as written in the end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordCounts {
    pub data: u64,
    pub lock: u64,
    pub meta: u64,
}

impl RecordCounts {
    pub fn get(&self, cf: Cf) -> u64 {
        match section_index(cf) {
            Some(0) => self.data,
            Some(1) => self.lock,
            Some(2) => self.meta,
            _ => 0,
        }
    }

    pub fn total(&self) -> u64 {
        self.data + self.lock + self.meta
    }

    pub(crate) fn from_array(counts: [u64; 3]) -> Self {
        RecordCounts {
            data: counts[0],
            lock: counts[1],
            meta: counts[2],
        }
    }
}

/// What a complete, verified pass over a snapshot established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub header: SnapshotHeader,
    pub counts: RecordCounts,
    /// Length of the whole file in bytes, footer included.
    pub total_len: u64,
    /// The footer CRC-32C (of every byte before it).
    pub crc: u32,
}

/// The preamble, header body and header CRC as they appear at the start of
/// the file. Fails if a field is over its cap.
pub(crate) fn encode_header(header: &SnapshotHeader) -> Result<Vec<u8>, SnapshotError> {
    let cluster = header.cluster_id.as_bytes();
    if cluster.len() as u64 > CLUSTER_ID_CAP {
        return Err(SnapshotError::CapExceeded {
            field: "cluster id",
            len: cluster.len() as u64,
            cap: CLUSTER_ID_CAP,
            offset: PREAMBLE_LEN,
        });
    }
    let body_len = HEADER_FIXED_LEN + cluster.len() + header.ownership.len();
    if body_len as u64 > HEADER_CAP {
        return Err(SnapshotError::CapExceeded {
            field: "header",
            len: body_len as u64,
            cap: HEADER_CAP,
            offset: 10,
        });
    }
    let mut out = Vec::with_capacity(PREAMBLE_LEN as usize + body_len + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SUPPORTED_VERSION.to_le_bytes());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&(cluster.len() as u16).to_le_bytes());
    out.extend_from_slice(cluster);
    for field in [
        header.group_id,
        header.index,
        header.term,
        header.last_commit_ts,
        header.hlc_ceiling_ms,
        header.created_unix_ms,
    ] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(&(header.ownership.len() as u32).to_le_bytes());
    out.extend_from_slice(&header.ownership);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Parses a header body whose CRC has already been checked. `base` is the
/// file offset of `body[0]`, used in error messages.
pub(crate) fn decode_header_body(body: &[u8], base: u64) -> Result<SnapshotHeader, SnapshotError> {
    let mut cursor = SliceCursor { body, pos: 0, base };
    let cluster_len = u64::from(u16::from_le_bytes(cursor.array("cluster id length")?));
    if cluster_len > CLUSTER_ID_CAP {
        return Err(SnapshotError::CapExceeded {
            field: "cluster id",
            len: cluster_len,
            cap: CLUSTER_ID_CAP,
            offset: cursor.offset() - 2,
        });
    }
    let cluster_at = cursor.offset();
    let cluster_id = String::from_utf8(cursor.take(cluster_len as usize, "cluster id")?.to_vec())
        .map_err(|_| SnapshotError::Malformed {
        offset: cluster_at,
        what: "cluster id is not UTF-8".to_string(),
    })?;
    let mut fixed = [0u64; 6];
    for field in &mut fixed {
        *field = u64::from_le_bytes(cursor.array("header integer field")?);
    }
    let [
        group_id,
        index,
        term,
        last_commit_ts,
        hlc_ceiling_ms,
        created_unix_ms,
    ] = fixed;
    let ownership_len = u64::from(u32::from_le_bytes(cursor.array("ownership length")?));
    let remaining = (body.len() - cursor.pos) as u64;
    if ownership_len != remaining {
        return Err(SnapshotError::Malformed {
            offset: cursor.offset() - 4,
            what: format!(
                "ownership table length {ownership_len} does not fill the header's remaining {remaining} bytes"
            ),
        });
    }
    let ownership = cursor
        .take(ownership_len as usize, "ownership table")?
        .to_vec();
    Ok(SnapshotHeader {
        cluster_id,
        group_id,
        index,
        term,
        last_commit_ts,
        hlc_ceiling_ms,
        ownership,
        created_unix_ms,
    })
}

/// Bounds-checked reads from an in-memory header body.
struct SliceCursor<'a> {
    body: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> SliceCursor<'a> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.body.len());
        let Some(end) = end else {
            return Err(SnapshotError::Malformed {
                offset: self.offset(),
                what: format!("header ends inside the {what}"),
            });
        };
        let slice = &self.body[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = SnapshotHeader> {
        (
            "[a-z0-9-]{0,40}",
            any::<[u64; 6]>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(cluster_id, n, ownership)| SnapshotHeader {
                cluster_id,
                group_id: n[0],
                index: n[1],
                term: n[2],
                last_commit_ts: n[3],
                hlc_ceiling_ms: n[4],
                ownership,
                created_unix_ms: n[5],
            })
    }

    proptest! {
        #[test]
        fn header_body_round_trips(header in arb_header()) {
            let bytes = encode_header(&header).unwrap();
            let body_len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
            prop_assert_eq!(bytes.len(), PREAMBLE_LEN as usize + body_len + 4);
            let body = &bytes[PREAMBLE_LEN as usize..PREAMBLE_LEN as usize + body_len];
            prop_assert_eq!(decode_header_body(body, PREAMBLE_LEN).unwrap(), header);
        }

        #[test]
        fn header_body_prefixes_are_rejected(header in arb_header(), cut in 0usize..400) {
            let bytes = encode_header(&header).unwrap();
            let body = &bytes[PREAMBLE_LEN as usize..bytes.len() - 4];
            let cut = cut % body.len();
            prop_assert!(decode_header_body(&body[..cut], PREAMBLE_LEN).is_err());
        }
    }

    #[test]
    fn oversized_cluster_id_is_refused_by_the_encoder() {
        let header = SnapshotHeader {
            cluster_id: "x".repeat(CLUSTER_ID_CAP as usize + 1),
            ..SnapshotHeader::default()
        };
        match encode_header(&header) {
            Err(SnapshotError::CapExceeded { field, len, .. }) => {
                assert_eq!(field, "cluster id");
                assert_eq!(len, CLUSTER_ID_CAP + 1);
            }
            other => panic!("expected CapExceeded, got {other:?}"),
        }
    }

    #[test]
    fn file_names_sort_by_index() {
        assert_eq!(file_name(42), "000000000000002a.fsm");
        assert!(file_name(9) < file_name(10));
        assert!(file_name(0xff) < file_name(0x100));
    }

    #[test]
    fn only_state_machine_column_families_have_sections() {
        assert_eq!(section_index(Cf::Data), Some(0));
        assert_eq!(section_index(Cf::Lock), Some(1));
        assert_eq!(section_index(Cf::Meta), Some(2));
        assert_eq!(section_index(Cf::RaftLog), None);
        assert_eq!(section_index(Cf::RaftState), None);
    }
}
