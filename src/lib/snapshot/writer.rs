//! Streaming writer of a `.fsm` snapshot into any `Write`.
//!
//! Invariants kept here:
//! - memory is bounded by the previous key (≤ `KEY_CAP`) whatever the file size;
//! - every section (data, lock, meta) is written exactly once, in that order,
//!   even when empty, and keys are strictly ascending inside a section: a
//!   record that would break this is refused before any byte of it is written;
//! - the footer CRC-32C covers exactly the bytes handed to the sink before it;
//! - after an I/O error the writer refuses further use, because the sink may
//!   hold half a record.

use std::io::Write;

use crate::storage::Cf;

use super::error::SnapshotError;
use super::format::{
    END_TAG, FOOTER_LEN, KEY_CAP, RecordCounts, SECTION_TAG, SECTIONS, SnapshotHeader,
    SnapshotSummary, VALUE_CAP, encode_header, key_preview, section_index,
};

pub struct SnapshotWriter<W: Write> {
    out: W,
    crc: u32,
    written: u64,
    header: SnapshotHeader,
    /// How many sections have been opened; the open one is `opened - 1`.
    opened: usize,
    /// Key of the previous record in the open section, when there is one;
    /// the buffer is reused so steady-state writing does not allocate.
    last_key: Vec<u8>,
    have_last_key: bool,
    counts: [u64; 3],
    failed: bool,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header to `out` and returns a writer ready for records.
    /// `out` should be buffered; the file writer uses a 1 MiB `BufWriter`.
    pub fn new(out: W, header: &SnapshotHeader) -> Result<Self, SnapshotError> {
        let header_bytes = encode_header(header)?;
        let mut writer = SnapshotWriter {
            out,
            crc: 0,
            written: 0,
            header: header.clone(),
            opened: 0,
            last_key: Vec::new(),
            have_last_key: false,
            counts: [0; 3],
            failed: false,
        };
        writer.emit(&header_bytes)?;
        Ok(writer)
    }

    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends one record. Records must come grouped by column family in the
    /// order data, lock, meta, with strictly ascending keys in each.
    pub fn write_record(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> Result<(), SnapshotError> {
        if self.failed {
            return Err(SnapshotError::InvalidWrite(
                "the writer failed earlier and cannot continue".to_string(),
            ));
        }
        let Some(section) = section_index(cf) else {
            return Err(SnapshotError::InvalidWrite(format!(
                "column family {} is a replica's own and is not part of a snapshot",
                cf.name()
            )));
        };
        if section + 1 < self.opened {
            return Err(SnapshotError::InvalidWrite(format!(
                "a {} record after {} records: sections are written in the order data, lock, meta",
                cf.name(),
                SECTIONS[self.opened - 1].name()
            )));
        }
        if section + 1 == self.opened && self.have_last_key && key <= self.last_key.as_slice() {
            return Err(SnapshotError::InvalidWrite(format!(
                "{} keys must be strictly ascending: {} does not follow {}",
                cf.name(),
                key_preview(key),
                key_preview(&self.last_key)
            )));
        }
        // Sections not yet opened get a two-byte marker each before the record.
        let markers_due = (section + 1).saturating_sub(self.opened) as u64;
        let record_offset = self.written + 2 * markers_due;
        check_cap("key", key.len(), KEY_CAP, record_offset + 1)?;
        check_cap(
            "value",
            value.len(),
            VALUE_CAP,
            record_offset + 5 + key.len() as u64,
        )?;

        self.open_sections_through(section)?;
        self.emit(&[cf.id()])?;
        self.emit(&(key.len() as u32).to_le_bytes())?;
        self.emit(key)?;
        self.emit(&(value.len() as u32).to_le_bytes())?;
        self.emit(value)?;
        self.counts[section] += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.have_last_key = true;
        Ok(())
    }

    /// Writes the sections not yet opened, the end marker and the footer,
    /// flushes, and hands back the sink with what was written.
    pub fn finish(mut self) -> Result<(W, SnapshotSummary), SnapshotError> {
        if self.failed {
            return Err(SnapshotError::InvalidWrite(
                "the writer failed earlier and cannot be finished".to_string(),
            ));
        }
        self.open_sections_through(SECTIONS.len() - 1)?;
        let mut end = Vec::with_capacity(2 + SECTIONS.len() * 9);
        end.push(END_TAG);
        end.push(SECTIONS.len() as u8);
        for (cf, count) in SECTIONS.iter().zip(self.counts) {
            end.push(cf.id());
            end.extend_from_slice(&count.to_le_bytes());
        }
        self.emit(&end)?;
        let total_len = self.written + FOOTER_LEN;
        self.emit(&total_len.to_le_bytes())?;
        let crc = self.crc;
        self.emit(&crc.to_le_bytes())?;
        if let Err(err) = self.out.flush() {
            return Err(SnapshotError::Io(err));
        }
        let summary = SnapshotSummary {
            header: self.header,
            counts: RecordCounts::from_array(self.counts),
            total_len,
            crc,
        };
        Ok((self.out, summary))
    }

    fn open_sections_through(&mut self, section: usize) -> Result<(), SnapshotError> {
        while self.opened <= section {
            let cf = SECTIONS[self.opened];
            self.emit(&[SECTION_TAG, cf.id()])?;
            self.opened += 1;
            self.have_last_key = false;
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if let Err(err) = self.out.write_all(bytes) {
            self.failed = true;
            return Err(SnapshotError::Io(err));
        }
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

fn check_cap(field: &'static str, len: usize, cap: u64, offset: u64) -> Result<(), SnapshotError> {
    if len as u64 > cap {
        return Err(SnapshotError::CapExceeded {
            field,
            len: len as u64,
            cap,
            offset,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> SnapshotWriter<Vec<u8>> {
        SnapshotWriter::new(Vec::new(), &SnapshotHeader::default()).unwrap()
    }

    #[test]
    fn raft_column_families_are_refused() {
        let mut w = writer();
        for cf in [Cf::RaftLog, Cf::RaftState] {
            let err = w.write_record(cf, b"k", b"v").unwrap_err();
            assert!(matches!(err, SnapshotError::InvalidWrite(_)), "{err}");
        }
    }

    #[test]
    fn sections_must_come_in_order() {
        let mut w = writer();
        w.write_record(Cf::Lock, b"a", b"1").unwrap();
        let err = w.write_record(Cf::Data, b"b", b"2").unwrap_err();
        assert!(err.to_string().contains("order data, lock, meta"), "{err}");
        // The refused record left no bytes behind: the writer still finishes.
        let (_, summary) = w.finish().unwrap();
        assert_eq!(summary.counts.lock, 1);
        assert_eq!(summary.counts.data, 0);
    }

    #[test]
    fn keys_must_be_strictly_ascending_within_a_section() {
        let mut w = writer();
        w.write_record(Cf::Data, b"b", b"").unwrap();
        let before = w.bytes_written();
        assert!(w.write_record(Cf::Data, b"b", b"").is_err());
        assert!(w.write_record(Cf::Data, b"a", b"").is_err());
        assert_eq!(w.bytes_written(), before);
        // A new section starts a new key order.
        w.write_record(Cf::Meta, b"a", b"").unwrap();
        w.write_record(Cf::Meta, b"c", b"").unwrap();
    }

    #[test]
    fn empty_key_is_allowed_once_per_section() {
        let mut w = writer();
        w.write_record(Cf::Data, b"", b"x").unwrap();
        assert!(w.write_record(Cf::Data, b"", b"y").is_err());
        w.write_record(Cf::Data, b"\0", b"y").unwrap();
        w.write_record(Cf::Lock, b"", b"z").unwrap();
    }

    #[test]
    fn oversized_key_names_the_field_and_offset() {
        let mut w = writer();
        let key = vec![0u8; KEY_CAP as usize + 1];
        match w.write_record(Cf::Data, &key, b"") {
            Err(SnapshotError::CapExceeded {
                field,
                len,
                cap,
                offset,
            }) => {
                assert_eq!(field, "key");
                assert_eq!(len, KEY_CAP + 1);
                assert_eq!(cap, KEY_CAP);
                // After the header, the section marker (2 bytes) and the cf id.
                assert_eq!(offset, w.bytes_written() + 3);
            }
            other => panic!("expected CapExceeded, got {other:?}"),
        }
        // A meta record first would follow three section markers.
        match w.write_record(Cf::Meta, &key, b"") {
            Err(SnapshotError::CapExceeded { offset, .. }) => {
                assert_eq!(offset, w.bytes_written() + 7);
            }
            other => panic!("expected CapExceeded, got {other:?}"),
        }
    }

    #[test]
    fn summary_length_matches_the_bytes() {
        let mut w = writer();
        w.write_record(Cf::Data, b"k", b"v").unwrap();
        let (bytes, summary) = w.finish().unwrap();
        assert_eq!(summary.total_len, bytes.len() as u64);
        let body = &bytes[..bytes.len() - 4];
        assert_eq!(summary.crc, crc32c::crc32c(body));
        assert_eq!(&bytes[bytes.len() - 4..], &summary.crc.to_le_bytes());
    }

    /// Accepts `budget` bytes, then fails every write.
    struct FailingSink {
        budget: usize,
    }
    impl Write for FailingSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.budget == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_failure_is_reported_and_poisons_the_writer() {
        let header = SnapshotHeader::default();
        let err = SnapshotWriter::new(FailingSink { budget: 0 }, &header)
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::Io(_)), "{err}");

        let header_len = encode_header(&header).unwrap().len();
        let mut w = SnapshotWriter::new(
            FailingSink {
                budget: header_len + 4,
            },
            &header,
        )
        .unwrap();
        let err = w.write_record(Cf::Data, b"key", b"value").unwrap_err();
        assert!(matches!(err, SnapshotError::Io(_)), "{err}");
        let err = w.write_record(Cf::Data, b"later", b"").unwrap_err();
        assert!(matches!(err, SnapshotError::InvalidWrite(_)), "{err}");
        assert!(w.finish().is_err());
    }
}
