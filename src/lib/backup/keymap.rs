//! `KEYMAP.jsonl` (format §5.4): one `{"encoded","original","kind"}` object
//! per line, mapping a file name that cannot be decoded on its own (SHA
//! fallback, S3 renames) back to the original bytes.
//!
//! Invariants: the writer refuses records with an empty `encoded` or `kind`;
//! it never escapes HTML. The reader accepts a line only when all three
//! fields are present and non-null, `encoded`/`kind` are non-empty and
//! `original` is valid base64url — checked when the line is read, not later.
//! Lines are bounded ([`MAX_LINE_BYTES`]), so a hostile file cannot make the
//! reader allocate more than that per record; the first error is sticky.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::filename::{b64url_decode, b64url_encode};
use super::json;

/// Longest accepted line (a 1 MiB key in base64url plus framing fits).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// `kind` of a Redis (or DynamoDB) SHA-256 fallback name.
pub const KIND_SHA_FALLBACK: &str = "sha-fallback";
/// `kind` of an S3 object renamed because a directory needed its path.
pub const KIND_S3_LEAF_DATA: &str = "s3-leaf-data";
/// `kind` of an S3 object renamed because it ended in the sidecar suffix.
pub const KIND_META_SUFFIX_RENAME: &str = "meta-suffix-rename";

/// Why a KEYMAP record or file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("KEYMAP.jsonl line {line}: {reason}")]
    InvalidRecord { line: u64, reason: String },
    #[error("KEYMAP record refused by the writer: {0}")]
    InvalidWrite(&'static str),
    #[error("KEYMAP.jsonl I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("KEYMAP.jsonl: an earlier line was invalid; reading stopped")]
    Poisoned,
}

/// One mapping: the name on disk and the original bytes it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeymapRecord {
    pub encoded: String,
    pub original: Vec<u8>,
    pub kind: String,
}

#[derive(Serialize)]
struct WireOut<'a> {
    encoded: &'a str,
    original: String,
    kind: &'a str,
}

#[derive(Deserialize)]
struct WireIn {
    encoded: Option<String>,
    original: Option<String>,
    kind: Option<String>,
}

/// Serialises one record as a KEYMAP line (with `\n`).
///
/// # Errors
/// [`KeymapError::InvalidWrite`] when `encoded` or `kind` is empty.
pub fn record_line(record: &KeymapRecord) -> Result<Vec<u8>, KeymapError> {
    if record.encoded.is_empty() {
        return Err(KeymapError::InvalidWrite("empty encoded name"));
    }
    if record.kind.is_empty() {
        return Err(KeymapError::InvalidWrite("empty kind"));
    }
    let wire = WireOut {
        encoded: &record.encoded,
        original: b64url_encode(&record.original),
        kind: &record.kind,
    };
    json::to_line(&wire, false).map_err(|_| KeymapError::InvalidWrite("unserialisable record"))
}

/// Appends records to a KEYMAP stream.
pub struct KeymapWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> KeymapWriter<W> {
    pub fn new(out: W) -> Self {
        KeymapWriter { out, count: 0 }
    }

    /// Writes one record.
    ///
    /// # Errors
    /// Invalid records ([`record_line`]) and I/O errors.
    pub fn write(&mut self, record: &KeymapRecord) -> Result<(), KeymapError> {
        let line = record_line(record)?;
        self.out.write_all(&line)?;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Returns the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Parses one KEYMAP line (without its `\n`).
///
/// # Errors
/// [`KeymapError::InvalidRecord`] naming `line_no` and the reason.
pub fn parse_line(bytes: &[u8], line_no: u64) -> Result<KeymapRecord, KeymapError> {
    let invalid = |reason: &str| KeymapError::InvalidRecord {
        line: line_no,
        reason: reason.to_owned(),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("blank line"));
    }
    let wire: WireIn = serde_json::from_slice(bytes)
        .map_err(|err| invalid(&format!("not a JSON record: {err}")))?;
    let encoded = wire
        .encoded
        .ok_or_else(|| invalid("missing or null \"encoded\""))?;
    let original = wire
        .original
        .ok_or_else(|| invalid("missing or null \"original\""))?;
    let kind = wire
        .kind
        .ok_or_else(|| invalid("missing or null \"kind\""))?;
    if encoded.is_empty() {
        return Err(invalid("empty \"encoded\""));
    }
    if kind.is_empty() {
        return Err(invalid("empty \"kind\""));
    }
    let original =
        b64url_decode(&original).ok_or_else(|| invalid("\"original\" is not base64url"))?;
    Ok(KeymapRecord {
        encoded,
        original,
        kind,
    })
}

/// Reads records one line at a time, with bounded line length.
pub struct KeymapReader<R: BufRead> {
    input: R,
    line_no: u64,
    offset: u64,
    poisoned: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> KeymapReader<R> {
    pub fn new(input: R) -> Self {
        KeymapReader {
            input,
            line_no: 0,
            offset: 0,
            poisoned: false,
            buf: Vec::new(),
        }
    }

    /// Byte offset in the stream at which the next line starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record; `Ok(None)` at the end.
    ///
    /// # Errors
    /// The first invalid line or I/O error; every later call returns
    /// [`KeymapError::Poisoned`].
    pub fn next_record(&mut self) -> Result<Option<KeymapRecord>, KeymapError> {
        if self.poisoned {
            return Err(KeymapError::Poisoned);
        }
        let result = self.read_one();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn read_one(&mut self) -> Result<Option<KeymapRecord>, KeymapError> {
        self.line_no += 1;
        let Some(consumed) = read_bounded_line(&mut self.input, &mut self.buf, MAX_LINE_BYTES)?
        else {
            return Err(KeymapError::InvalidRecord {
                line: self.line_no,
                reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
            });
        };
        if consumed == 0 {
            return Ok(None);
        }
        self.offset += consumed as u64;
        let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        parse_line(line, self.line_no).map(Some)
    }
}

impl<R: BufRead> Iterator for KeymapReader<R> {
    type Item = Result<KeymapRecord, KeymapError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(KeymapError::Poisoned) => None,
            Err(err) => Some(Err(err)),
        }
    }
}

/// Reads one `\n`-terminated line into `buf` (replacing its contents),
/// reading at most `max + 1` bytes. Returns the bytes consumed (0 at end),
/// or `None` when the line exceeds `max` bytes before its newline.
///
/// # Errors
/// I/O errors of `input`.
pub(crate) fn read_bounded_line<R: BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut limited = std::io::Read::take(input, max as u64 + 1);
    let consumed = limited.read_until(b'\n', buf)?;
    if buf.len() > max && buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    Ok(Some(consumed))
}

/// Loads a whole KEYMAP into memory, last record winning on a repeated
/// `encoded` (the Redis loader's rule).
///
/// # Errors
/// The first invalid line.
pub fn load_keymap<R: BufRead>(input: R) -> Result<HashMap<String, KeymapRecord>, KeymapError> {
    let mut map = HashMap::new();
    let mut reader = KeymapReader::new(input);
    while let Some(record) = reader.next_record()? {
        map.insert(record.encoded.clone(), record);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(encoded: &str, original: &[u8]) -> KeymapRecord {
        KeymapRecord {
            encoded: encoded.into(),
            original: original.to_vec(),
            kind: KIND_SHA_FALLBACK.into(),
        }
    }

    fn write_all(records: &[KeymapRecord]) -> Vec<u8> {
        let mut writer = KeymapWriter::new(Vec::new());
        for r in records {
            writer.write(r).unwrap();
        }
        writer.into_inner()
    }

    #[test]
    fn writer_output_reads_back_in_order() {
        let records = vec![record("aa__x", b"\x00\xffkey"), record("bb__y", b"")];
        let bytes = write_all(&records);
        let back: Vec<_> = KeymapReader::new(&bytes[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn writer_line_has_go_field_order() {
        let bytes = write_all(&[record("e", b"ab")]);
        assert_eq!(
            bytes,
            b"{\"encoded\":\"e\",\"original\":\"YWI\",\"kind\":\"sha-fallback\"}\n"
        );
    }

    #[test]
    fn writer_refuses_empty_encoded_or_kind() {
        let mut writer = KeymapWriter::new(Vec::new());
        assert!(matches!(
            writer.write(&record("", b"x")),
            Err(KeymapError::InvalidWrite(_))
        ));
        let mut no_kind = record("e", b"x");
        no_kind.kind.clear();
        assert!(matches!(
            writer.write(&no_kind),
            Err(KeymapError::InvalidWrite(_))
        ));
        assert_eq!(writer.count(), 0);
        assert!(writer.into_inner().is_empty());
    }

    #[test]
    fn writer_does_not_escape_html() {
        let bytes = write_all(&[record("<a&b>", b"x")]);
        assert!(bytes.starts_with(b"{\"encoded\":\"<a&b>\""));
    }

    #[test]
    fn malformed_json_is_refused_and_the_error_sticks() {
        let mut reader = KeymapReader::new(
            &b"not json\n{\"encoded\":\"e\",\"original\":\"\",\"kind\":\"k\"}\n"[..],
        );
        assert!(matches!(
            reader.next_record(),
            Err(KeymapError::InvalidRecord { line: 1, .. })
        ));
        assert!(matches!(reader.next_record(), Err(KeymapError::Poisoned)));
    }

    #[test]
    fn missing_null_or_empty_fields_are_refused() {
        for line in [
            r#"{"original":"","kind":"k"}"#,
            r#"{"encoded":"","original":"","kind":"k"}"#,
            r#"{"encoded":"e","original":"","kind":""}"#,
            r#"{"encoded":"e","kind":"k"}"#,
            r#"{"encoded":"e","original":null,"kind":"k"}"#,
            r#"{"encoded":"e","original":"","kind":null}"#,
        ] {
            assert!(
                matches!(
                    parse_line(line.as_bytes(), 1),
                    Err(KeymapError::InvalidRecord { .. })
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn explicit_empty_original_is_accepted() {
        let rec = parse_line(br#"{"encoded":"e","original":"","kind":"k"}"#, 1).unwrap();
        assert!(rec.original.is_empty());
    }

    #[test]
    fn blank_line_in_the_middle_is_refused() {
        let input = b"{\"encoded\":\"e\",\"original\":\"\",\"kind\":\"k\"}\n\n{\"encoded\":\"f\",\"original\":\"\",\"kind\":\"k\"}\n";
        let results: Vec<_> = KeymapReader::new(&input[..]).collect();
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(KeymapError::InvalidRecord { line: 2, .. })
        ));
        assert_eq!(results.len(), 2);
    }

    #[test]
    fn bad_base64_is_refused_when_the_line_is_read() {
        let err = parse_line(br#"{"encoded":"e","original":"!!","kind":"k"}"#, 3).unwrap_err();
        assert!(matches!(err, KeymapError::InvalidRecord { line: 3, .. }));
        assert!(parse_line(br#"{"encoded":"e","original":"YWI=","kind":"k"}"#, 1).is_err());
    }

    #[test]
    fn last_record_wins_on_duplicate_encoded() {
        let bytes = write_all(&[record("e", b"one"), record("e", b"two")]);
        let map = load_keymap(&bytes[..]).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map["e"].original, b"two");
    }

    #[test]
    fn a_maximum_sized_original_round_trips() {
        let original = vec![0xA5u8; 1 << 20];
        let bytes = write_all(&[record("big", &original)]);
        let map = load_keymap(&bytes[..]).unwrap();
        assert_eq!(map["big"].original, original);
    }

    #[test]
    fn overlong_lines_are_refused_without_reading_them_whole() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.push(b'\n');
        let mut reader = KeymapReader::new(&input[..]);
        assert!(matches!(
            reader.next_record(),
            Err(KeymapError::InvalidRecord { line: 1, .. })
        ));
    }

    #[test]
    fn last_line_without_newline_is_accepted() {
        let map = load_keymap(&br#"{"encoded":"e","original":"YQ","kind":"k"}"#[..]).unwrap();
        assert_eq!(map["e"].original, b"a");
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec(("[a-z0-9%_]{1,40}", proptest::collection::vec(any::<u8>(), 0..80), "[a-z-]{1,12}"), 0..20)) {
            let records: Vec<_> = entries.into_iter().map(|(e, o, k)| KeymapRecord { encoded: e, original: o, kind: k }).collect();
            let bytes = write_all(&records);
            let back: Vec<_> = KeymapReader::new(&bytes[..]).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back, records);
        }
    }
}
