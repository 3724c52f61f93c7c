//! Streaming reader of a `.fsm` snapshot, plus the whole-file checks built on
//! it (`verify_file`, `read_header`).
//!
//! Invariants kept here:
//! - nothing is allocated on the word of a length prefix: caps are checked
//!   first, and even a length under its cap only grows its buffer as the bytes
//!   actually arrive, so a short or hostile input costs memory in proportion
//!   to its real size;
//! - the header CRC is verified before the header is parsed or any record is
//!   read;
//! - `next_record` returns `Ok(None)` only once the end marker's counts, the
//!   footer CRC-32C, the total length and the absence of trailing bytes have
//!   all been verified; a flipped byte anywhere in the file is an error at the
//!   latest there, even if every record parsed;
//! - after an error the reader refuses to continue.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::storage::Cf;

use super::error::SnapshotError;
use super::format::{
    END_TAG, HEADER_CAP, KEY_CAP, MAGIC, PREAMBLE_LEN, RecordCounts, SECTION_TAG, SECTIONS,
    SUPPORTED_VERSION, SnapshotHeader, SnapshotRecord, SnapshotSummary, VALUE_CAP,
    decode_header_body, key_preview, section_index,
};

/// Buffer size of readers over files: large sequential reads.
const FILE_BUFFER: usize = 1 << 20;
/// Buffers for length-prefixed fields start at most this big and then double
/// (never past the declared length) as bytes arrive.
const INITIAL_CHUNK: usize = 64 << 10;

pub struct SnapshotReader<R: Read> {
    src: HashingReader<R>,
    header: SnapshotHeader,
    state: State,
    /// How many sections have been entered; the open one is `opened - 1`.
    opened: usize,
    skip: [bool; 3],
    /// Key of the previous record in the open section (if `have_last_key`)
    /// and a scratch buffer for keys of skipped records; both reused.
    last_key: Vec<u8>,
    have_last_key: bool,
    scratch: Vec<u8>,
    counts: [u64; 3],
    summary: Option<SnapshotSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Records,
    Done,
    Failed,
}

impl SnapshotReader<BufReader<File>> {
    /// Opens the snapshot at `path` and reads and verifies its header.
    pub fn open(path: &Path) -> Result<Self, SnapshotError> {
        let file = File::open(path).map_err(|err| SnapshotError::file(path, err))?;
        SnapshotReader::new(BufReader::with_capacity(FILE_BUFFER, file))
    }
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and verifies the header from `src`. `src` should be buffered.
    pub fn new(src: R) -> Result<Self, SnapshotError> {
        let mut src = HashingReader {
            inner: src,
            crc: 0,
            pos: 0,
        };
        let header = read_header_from(&mut src)?;
        Ok(SnapshotReader {
            src,
            header,
            state: State::Records,
            opened: 0,
            skip: [false; 3],
            last_key: Vec::new(),
            have_last_key: false,
            scratch: Vec::new(),
            counts: [0; 3],
            summary: None,
        })
    }

    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.src.pos
    }

    /// Records of `cf` are still read, checked and hashed, but not returned
    /// and their values never held in memory.
    pub fn skip_cf(&mut self, cf: Cf) {
        if let Some(section) = section_index(cf) {
            self.skip[section] = true;
        }
    }

    /// The summary, once `next_record` has returned `Ok(None)`.
    pub fn summary(&self) -> Option<&SnapshotSummary> {
        self.summary.as_ref()
    }

    /// The next record, or `Ok(None)` after the footer verified. An install
    /// must not commit what it streamed before seeing `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<SnapshotRecord>, SnapshotError> {
        match self.state {
            State::Done => return Ok(None),
            State::Failed => {
                return Err(SnapshotError::Malformed {
                    offset: self.src.pos,
                    what: "the reader stopped at an earlier error".to_string(),
                });
            }
            State::Records => {}
        }
        let result = self.advance();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Reads (and checks) everything left, returning the verified summary.
    pub fn finish(mut self) -> Result<SnapshotSummary, SnapshotError> {
        self.skip = [true; 3];
        while self.next_record()?.is_some() {}
        self.summary.ok_or_else(|| SnapshotError::Malformed {
            offset: self.src.pos,
            what: "the reader ended without a summary".to_string(),
        })
    }

    fn advance(&mut self) -> Result<Option<SnapshotRecord>, SnapshotError> {
        loop {
            let tag_offset = self.src.pos;
            let [tag] = self.src.array::<1>("frame tag")?;
            match tag {
                SECTION_TAG => self.enter_section(tag_offset)?,
                END_TAG => {
                    self.read_end(tag_offset)?;
                    return Ok(None);
                }
                _ => {
                    let Some(section) = Cf::from_id(tag).and_then(section_index) else {
                        return Err(SnapshotError::Malformed {
                            offset: tag_offset,
                            what: format!("unknown frame tag {tag:#04x}"),
                        });
                    };
                    if let Some(record) = self.read_record(section, tag_offset)? {
                        return Ok(Some(record));
                    }
                }
            }
        }
    }

    fn enter_section(&mut self, tag_offset: u64) -> Result<(), SnapshotError> {
        let [id] = self.src.array::<1>("section column family id")?;
        let Some(expected) = SECTIONS.get(self.opened) else {
            return Err(SnapshotError::Malformed {
                offset: tag_offset,
                what: "a section marker after the last (meta) section".to_string(),
            });
        };
        if id != expected.id() {
            return Err(SnapshotError::Malformed {
                offset: tag_offset,
                what: format!(
                    "section marker for column family id {id} where the {} section is due",
                    expected.name()
                ),
            });
        }
        self.opened += 1;
        self.have_last_key = false;
        Ok(())
    }

    /// Reads one record of `section`; `None` when the section is skipped.
    fn read_record(
        &mut self,
        section: usize,
        tag_offset: u64,
    ) -> Result<Option<SnapshotRecord>, SnapshotError> {
        let cf = SECTIONS[section];
        if self.opened == 0 || section != self.opened - 1 {
            return Err(SnapshotError::Malformed {
                offset: tag_offset,
                what: format!("a {} record outside the {} section", cf.name(), cf.name()),
            });
        }
        let key_len = self.src.length("key", KEY_CAP)?;
        let key_offset = self.src.pos;
        self.src.read_into(&mut self.scratch, key_len, "key")?;
        if self.have_last_key && self.scratch <= self.last_key {
            return Err(SnapshotError::Malformed {
                offset: key_offset,
                what: format!(
                    "{} key {} does not follow {} in ascending order",
                    cf.name(),
                    key_preview(&self.scratch),
                    key_preview(&self.last_key)
                ),
            });
        }
        std::mem::swap(&mut self.scratch, &mut self.last_key);
        self.have_last_key = true;
        let value_len = self.src.length("value", VALUE_CAP)?;
        self.counts[section] += 1;
        if self.skip[section] {
            self.src.discard(value_len, "value")?;
            return Ok(None);
        }
        let mut value = Vec::new();
        self.src.read_into(&mut value, value_len, "value")?;
        Ok(Some(SnapshotRecord {
            cf,
            key: self.last_key.clone(),
            value,
        }))
    }

    /// End marker, footer and end of data. The CRC is compared first so a
    /// damaged file is reported as such rather than as a count disagreement.
    fn read_end(&mut self, tag_offset: u64) -> Result<(), SnapshotError> {
        let [listed] = self.src.array::<1>("end marker section count")?;
        if usize::from(listed) != SECTIONS.len() {
            return Err(SnapshotError::Malformed {
                offset: tag_offset + 1,
                what: format!(
                    "end marker lists {listed} sections, the format has {}",
                    SECTIONS.len()
                ),
            });
        }
        let mut listed_counts = [(0u8, 0u64); 3];
        for entry in &mut listed_counts {
            let [id] = self.src.array::<1>("end marker column family id")?;
            let count = u64::from_le_bytes(self.src.array("end marker record count")?);
            *entry = (id, count);
        }
        let total_len_offset = self.src.pos;
        let total_len = u64::from_le_bytes(self.src.array("footer total length")?);
        let actual_crc = self.src.crc;
        let expected_crc = u32::from_le_bytes(self.src.array("footer CRC")?);
        if actual_crc != expected_crc {
            return Err(SnapshotError::ChecksumMismatch {
                expected: expected_crc,
                actual: actual_crc,
            });
        }
        if self.opened != SECTIONS.len() {
            return Err(SnapshotError::Malformed {
                offset: tag_offset,
                what: format!(
                    "end marker after {} of {} sections",
                    self.opened,
                    SECTIONS.len()
                ),
            });
        }
        for ((cf, (id, count)), seen) in SECTIONS.iter().zip(listed_counts).zip(self.counts) {
            if id != cf.id() || count != seen {
                return Err(SnapshotError::Malformed {
                    offset: tag_offset,
                    what: format!(
                        "end marker says {count} records for column family id {id}, the file holds {seen} {} records",
                        cf.name()
                    ),
                });
            }
        }
        if total_len != self.src.pos {
            return Err(SnapshotError::Malformed {
                offset: total_len_offset,
                what: format!(
                    "footer records a total length of {total_len} bytes but the footer ends at {}",
                    self.src.pos
                ),
            });
        }
        let end_offset = self.src.pos;
        let mut probe = [0u8; 1];
        if read_retrying(&mut self.src.inner, &mut probe)? != 0 {
            return Err(SnapshotError::Malformed {
                offset: end_offset,
                what: "bytes after the footer".to_string(),
            });
        }
        self.state = State::Done;
        self.summary = Some(SnapshotSummary {
            header: self.header.clone(),
            counts: RecordCounts::from_array(self.counts),
            total_len,
            crc: expected_crc,
        });
        Ok(())
    }
}

/// Reads the whole file at `path`, checking every structure and the footer
/// CRC without holding any value in memory. The cold-start skip path and an
/// install that must know the file is whole before touching the store use
/// this.
pub fn verify_file(path: &Path) -> Result<SnapshotSummary, SnapshotError> {
    SnapshotReader::open(path)?.finish()
}

/// Reads and verifies only the header of the file at `path` (its own CRC);
/// the rest of the file is not checked.
pub fn read_header(path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let file = File::open(path).map_err(|err| SnapshotError::file(path, err))?;
    let mut src = HashingReader {
        inner: BufReader::with_capacity(INITIAL_CHUNK, file),
        crc: 0,
        pos: 0,
    };
    read_header_from(&mut src)
}

fn read_header_from<R: Read>(src: &mut HashingReader<R>) -> Result<SnapshotHeader, SnapshotError> {
    let mut magic = [0u8; 8];
    let got = src.fill(&mut magic)?;
    if magic[..got] != MAGIC[..got] {
        return Err(SnapshotError::BadMagic {
            found: magic[..got].escape_ascii().to_string(),
        });
    }
    if got < magic.len() {
        return Err(SnapshotError::Truncated {
            offset: got as u64,
            what: "magic",
        });
    }
    let version = u16::from_le_bytes(src.array("format version")?);
    if version != SUPPORTED_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version });
    }
    let body_len = src.length("header", HEADER_CAP)?;
    let mut body = Vec::new();
    src.read_into(&mut body, body_len, "header")?;
    let actual = src.crc;
    let expected = u32::from_le_bytes(src.array("header CRC")?);
    if actual != expected {
        return Err(SnapshotError::HeaderCorrupt { expected, actual });
    }
    decode_header_body(&body, PREAMBLE_LEN)
}

/// A reader that hashes (CRC-32C) and counts every byte it passes on.
struct HashingReader<R: Read> {
    inner: R,
    crc: u32,
    pos: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> HashingReader<R> {
    /// Reads until `buf` is full or the data ends; returns the count.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, SnapshotError> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = read_retrying(self, &mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        if self.fill(&mut out)? < N {
            return Err(SnapshotError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(out)
    }

    /// A u32 length prefix, checked against `cap` before anyone allocates.
    fn length(&mut self, field: &'static str, cap: u64) -> Result<usize, SnapshotError> {
        let offset = self.pos;
        let len = u64::from(u32::from_le_bytes(self.array(field)?));
        if len > cap {
            return Err(SnapshotError::CapExceeded {
                field,
                len,
                cap,
                offset,
            });
        }
        usize::try_from(len).map_err(|_| SnapshotError::CapExceeded {
            field,
            len,
            cap: usize::MAX as u64,
            offset,
        })
    }

    /// Replaces `buf`'s contents with the next `len` bytes. Capacity grows
    /// by at most doubling and never past `len`, and only after the previous
    /// chunk actually arrived.
    fn read_into(
        &mut self,
        buf: &mut Vec<u8>,
        len: usize,
        what: &'static str,
    ) -> Result<(), SnapshotError> {
        buf.clear();
        while buf.len() < len {
            let start = buf.len();
            let step = (len - start).min(start.max(INITIAL_CHUNK));
            buf.reserve_exact(step);
            buf.resize(start + step, 0);
            let got = self.fill(&mut buf[start..])?;
            if got < step {
                buf.truncate(start + got);
                return Err(SnapshotError::Truncated {
                    offset: self.pos,
                    what,
                });
            }
        }
        Ok(())
    }

    /// Consumes (and hashes) `len` bytes without keeping them.
    fn discard(&mut self, len: usize, what: &'static str) -> Result<(), SnapshotError> {
        let copied = io::copy(&mut self.by_ref().take(len as u64), &mut io::sink())?;
        if copied < len as u64 {
            return Err(SnapshotError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(())
    }
}

fn read_retrying(src: &mut impl Read, buf: &mut [u8]) -> Result<usize, SnapshotError> {
    loop {
        match src.read(buf) {
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(SnapshotError::Io(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::writer::SnapshotWriter;

    fn sample() -> Vec<u8> {
        let header = SnapshotHeader {
            cluster_id: "c1".to_string(),
            group_id: 7,
            index: 100,
            term: 3,
            ..SnapshotHeader::default()
        };
        let mut w = SnapshotWriter::new(Vec::new(), &header).unwrap();
        w.write_record(Cf::Data, b"a", b"1").unwrap();
        w.write_record(Cf::Data, b"b", b"22").unwrap();
        w.write_record(Cf::Meta, b"m", b"333").unwrap();
        w.finish().unwrap().0
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<SnapshotRecord>, SnapshotError> {
        let mut reader = SnapshotReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn reads_back_what_was_written() {
        let records = read_all(&sample()).unwrap();
        let keys: Vec<_> = records.iter().map(|r| (r.cf, r.key.clone())).collect();
        assert_eq!(
            keys,
            vec![
                (Cf::Data, b"a".to_vec()),
                (Cf::Data, b"b".to_vec()),
                (Cf::Meta, b"m".to_vec())
            ]
        );
    }

    #[test]
    fn a_foreign_file_is_called_foreign() {
        let err = read_all(b"SQLite format 3\0").err().unwrap();
        match &err {
            SnapshotError::BadMagic { found } => assert_eq!(found, "SQLite f"),
            other => panic!("expected BadMagic, got {other:?}"),
        }
        assert!(
            err.to_string().contains("not an elastickv snapshot"),
            "{err}"
        );
        assert!(matches!(
            read_all(b"x"),
            Err(SnapshotError::BadMagic { .. })
        ));
    }

    #[test]
    fn a_cut_magic_is_truncation_not_foreign() {
        assert!(matches!(
            read_all(b""),
            Err(SnapshotError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            read_all(&MAGIC[..5]),
            Err(SnapshotError::Truncated { offset: 5, .. })
        ));
    }

    #[test]
    fn a_newer_version_is_named() {
        let mut bytes = sample();
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(
            read_all(&bytes),
            Err(SnapshotError::UnsupportedVersion { found: 2 })
        ));
    }

    #[test]
    fn a_huge_header_length_is_refused_before_reading() {
        let mut bytes = sample();
        bytes[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        match read_all(&bytes) {
            Err(SnapshotError::CapExceeded {
                field, offset, len, ..
            }) => {
                assert_eq!(field, "header");
                assert_eq!(offset, 10);
                assert_eq!(len, u64::from(u32::MAX));
            }
            other => panic!("expected CapExceeded, got {other:?}"),
        }
    }

    #[test]
    fn a_flipped_value_byte_fails_at_the_footer_after_records_parsed() {
        let mut bytes = sample();
        let at = bytes.windows(3).position(|w| w == b"333").unwrap();
        bytes[at] = b'4';
        let mut reader = SnapshotReader::new(bytes.as_slice()).unwrap();
        let mut parsed = 0;
        let err = loop {
            match reader.next_record() {
                Ok(Some(_)) => parsed += 1,
                Ok(None) => panic!("corruption went unnoticed"),
                Err(err) => break err,
            }
        };
        assert_eq!(parsed, 3);
        assert!(
            matches!(err, SnapshotError::ChecksumMismatch { .. }),
            "{err}"
        );
        assert!(
            reader.next_record().is_err(),
            "a failed reader must stay failed"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = sample();
        bytes.push(0);
        let err = read_all(&bytes).unwrap_err();
        assert!(err.to_string().contains("after the footer"), "{err}");
    }

    #[test]
    fn skipped_column_families_are_counted_but_not_returned() {
        let bytes = sample();
        let mut reader = SnapshotReader::new(bytes.as_slice()).unwrap();
        reader.skip_cf(Cf::Data);
        let first = reader.next_record().unwrap().unwrap();
        assert_eq!(first.cf, Cf::Meta);
        assert!(reader.next_record().unwrap().is_none());
        assert_eq!(reader.summary().unwrap().counts.data, 2);
    }

    #[test]
    fn growth_never_exceeds_the_declared_length() {
        let data = vec![7u8; 3 * INITIAL_CHUNK + 5];
        let mut src = HashingReader {
            inner: data.as_slice(),
            crc: 0,
            pos: 0,
        };
        let mut buf = Vec::new();
        src.read_into(&mut buf, data.len(), "value").unwrap();
        assert_eq!(buf, data);
        assert!(
            buf.capacity() <= data.len() + 64,
            "capacity {}",
            buf.capacity()
        );
    }
}
