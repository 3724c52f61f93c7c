//! Encoding of arbitrary key bytes into one file-name segment, and back
//! (format §5.3; byte-identical to the Go tools' `EncodeSegment`).
//!
//! * Bytes in `[A-Za-z0-9._-]` pass through; every other byte becomes `%HH`
//!   (uppercase hex). `~` is deliberately escaped.
//! * A segment never exceeds [`MAX_SEGMENT_BYTES`]: a key whose encoding would
//!   be longer takes the SHA fallback `hex(sha256)[..32] ‖ "__" ‖ enc(first 64
//!   bytes)`, reversible only through `KEYMAP.jsonl`.
//! * A string key whose plain encoding would look like a fallback name or like
//!   a binary (`b64.`) name is itself forced to the fallback, so the three
//!   forms never collide.
//! * Huge inputs are never expanded in full: the length check comes first.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Longest encoded segment the format allows.
pub const MAX_SEGMENT_BYTES: usize = 240;
/// Hex characters of the SHA-256 prefix in a fallback name.
pub const SHA_PREFIX_HEX_LEN: usize = 32;
/// Separator between the hash prefix and the readable tail.
pub const SHA_SEPARATOR: &str = "__";
/// Raw bytes of the original kept (percent-encoded) after the separator.
pub const SHA_TAIL_RAW_BYTES: usize = 64;
/// Prefix of the binary (base64url) form used for DynamoDB `B` keys.
pub const BINARY_PREFIX: &str = "b64.";

/// Why a segment could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilenameError {
    #[error("invalid encoded segment {segment:?}: {reason}")]
    InvalidEncodedSegment {
        segment: String,
        reason: &'static str,
    },
    #[error("segment {segment:?} is a SHA-256 fallback name; its original is only in KEYMAP.jsonl")]
    ShaFallbackNeedsKeymap { segment: String },
}

/// The base64url alphabet without padding, tolerant of non-zero trailing
/// bits exactly like Go's `base64.RawURLEncoding`.
pub(crate) const B64URL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes bytes as base64url without padding (the format's `b64url`).
pub fn b64url_encode(raw: &[u8]) -> String {
    B64URL.encode(raw)
}

/// Decodes base64url without padding; `None` on any invalid input.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    B64URL.decode(text.as_bytes()).ok()
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

fn encoded_len_within(raw: &[u8], limit: usize) -> bool {
    let mut len = 0usize;
    for &byte in raw {
        len += if is_unreserved(byte) { 1 } else { 3 };
        if len > limit {
            return false;
        }
    }
    true
}

fn percent_encode(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len() * 3);
    for &byte in raw {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out
}

/// Builds the SHA-256 fallback name of `raw` (at most 226 bytes).
pub fn sha_fallback(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let mut out = hex::encode(digest);
    out.truncate(SHA_PREFIX_HEX_LEN);
    out.push_str(SHA_SEPARATOR);
    out.push_str(&percent_encode(&raw[..raw.len().min(SHA_TAIL_RAW_BYTES)]));
    out
}

/// Reports whether `segment` has the shape of a SHA fallback name: 32 hex
/// digits (either case) followed by `__`.
pub fn is_sha_fallback(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() >= SHA_PREFIX_HEX_LEN + SHA_SEPARATOR.len()
        && bytes[..SHA_PREFIX_HEX_LEN]
            .iter()
            .all(u8::is_ascii_hexdigit)
        && &bytes[SHA_PREFIX_HEX_LEN..SHA_PREFIX_HEX_LEN + 2] == SHA_SEPARATOR.as_bytes()
}

/// Encodes a string-typed key (Redis key, table, bucket, queue name) into
/// one segment of at most [`MAX_SEGMENT_BYTES`] bytes.
pub fn encode_segment(raw: &[u8]) -> String {
    if raw.len() > MAX_SEGMENT_BYTES || !encoded_len_within(raw, MAX_SEGMENT_BYTES) {
        return sha_fallback(raw);
    }
    let encoded = percent_encode(raw);
    if is_sha_fallback(&encoded) || encoded.starts_with(BINARY_PREFIX) {
        return sha_fallback(raw);
    }
    encoded
}

/// Encodes a binary-typed key (DynamoDB `B`) as `b64.<base64url>`, or the
/// SHA fallback when that would exceed [`MAX_SEGMENT_BYTES`].
pub fn encode_binary_segment(raw: &[u8]) -> String {
    // base64 without padding: ceil(4n/3) characters.
    let encoded_len = raw.len().div_ceil(3) * 4 - (3 - raw.len() % 3) % 3;
    if encoded_len + BINARY_PREFIX.len() > MAX_SEGMENT_BYTES {
        return sha_fallback(raw);
    }
    format!("{BINARY_PREFIX}{}", b64url_encode(raw))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes a segment back to the key bytes.
///
/// # Errors
/// [`FilenameError::ShaFallbackNeedsKeymap`] for fallback names (the caller
/// must consult `KEYMAP.jsonl`); [`FilenameError::InvalidEncodedSegment`] for
/// anything the encoder cannot have produced in shape.
pub fn decode_segment(segment: &str) -> Result<Vec<u8>, FilenameError> {
    let invalid = |reason| FilenameError::InvalidEncodedSegment {
        segment: segment.chars().take(MAX_SEGMENT_BYTES + 16).collect(),
        reason,
    };
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(invalid("longer than 240 bytes"));
    }
    if is_sha_fallback(segment) {
        return Err(FilenameError::ShaFallbackNeedsKeymap {
            segment: segment.to_owned(),
        });
    }
    if let Some(b64) = segment.strip_prefix(BINARY_PREFIX) {
        return b64url_decode(b64).ok_or_else(|| invalid("invalid base64url after b64."));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err(invalid("truncated percent escape"));
            };
            let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                return Err(invalid("non-hex digit in percent escape"));
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else if is_unreserved(byte) {
            out.push(byte);
            i += 1;
        } else {
            return Err(invalid("raw reserved byte"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unreserved_bytes_pass_through_and_round_trip() {
        for raw in ["", "customer-7421", "a.b_c-D9", ".", ".."] {
            let enc = encode_segment(raw.as_bytes());
            assert_eq!(enc, raw);
            assert_eq!(decode_segment(&enc).unwrap(), raw.as_bytes());
        }
    }

    #[test]
    fn reserved_bytes_are_percent_escaped_with_uppercase_hex() {
        let cases: [(&[u8], &str); 8] = [
            (b"hello world", "hello%20world"),
            (b"a/b", "a%2Fb"),
            (b"key|with|pipe", "key%7Cwith%7Cpipe"),
            (b"session:abc123", "session%3Aabc123"),
            (b"\x00", "%00"),
            (b"\xff", "%FF"),
            (b"\xab\xcd", "%AB%CD"),
            (b"plus+~", "plus%2B%7E"),
        ];
        for (raw, expected) in cases {
            assert_eq!(encode_segment(raw), expected);
            assert_eq!(decode_segment(expected).unwrap(), raw);
        }
    }

    #[test]
    fn long_input_takes_sha_fallback_matching_reference_value() {
        let raw = vec![b'a'; 250];
        let enc = encode_segment(&raw);
        assert_eq!(
            enc,
            format!("3f3e35e0a775d9b1d5ec2eccca06381c__{}", "a".repeat(64))
        );
        assert!(enc.len() <= MAX_SEGMENT_BYTES);
        assert!(matches!(
            decode_segment(&enc),
            Err(FilenameError::ShaFallbackNeedsKeymap { .. })
        ));
    }

    #[test]
    fn short_input_that_expands_past_the_ceiling_takes_fallback() {
        let raw = vec![1u8; 81];
        let enc = encode_segment(&raw);
        assert!(is_sha_fallback(&enc));
        assert!(enc.ends_with(&"%01".repeat(64)));
        let fits = vec![1u8; 80];
        assert_eq!(encode_segment(&fits), "%01".repeat(80));
    }

    #[test]
    fn unreserved_input_of_exactly_the_limit_is_kept_verbatim() {
        let raw = "k".repeat(MAX_SEGMENT_BYTES);
        assert_eq!(encode_segment(raw.as_bytes()), raw);
        assert!(is_sha_fallback(&encode_segment("k".repeat(241).as_bytes())));
    }

    #[test]
    fn encoding_is_deterministic_but_not_idempotent() {
        assert_eq!(encode_segment(b"a b"), encode_segment(b"a b"));
        assert_eq!(encode_segment(encode_segment(b"a b").as_bytes()), "a%2520b");
    }

    #[test]
    fn binary_segments_use_the_b64_prefix_and_round_trip() {
        assert_eq!(encode_binary_segment(&[0, 1, 2]), "b64.AAEC");
        assert_eq!(encode_binary_segment(&[]), "b64.");
        assert_eq!(decode_segment("b64.").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_segment("b64.AAEC").unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn long_binary_input_takes_fallback() {
        let raw: Vec<u8> = (0..200u8).collect();
        assert!(is_sha_fallback(&encode_binary_segment(&raw)));
        // 177 bytes → 236 base64 chars + 4 = 240: still fits.
        assert!(encode_binary_segment(&[7u8; 177]).starts_with(BINARY_PREFIX));
        assert!(is_sha_fallback(&encode_binary_segment(&[7u8; 178])));
    }

    #[test]
    fn near_miss_shapes_are_not_classified_as_fallback() {
        let hex31 = "a".repeat(31);
        let hex32 = "b".repeat(32);
        assert!(!is_sha_fallback(&format!("{hex31}__x")));
        assert!(!is_sha_fallback(&format!("{hex32}_x")));
        assert!(!is_sha_fallback(&format!("{hex31}g__")));
        assert!(is_sha_fallback(&format!("{hex32}__")));
        assert!(is_sha_fallback(&format!(
            "{}__tail",
            "ABCDEF0123456789".repeat(2)
        )));
    }

    #[test]
    fn keys_shaped_like_other_forms_are_promoted_to_fallback() {
        assert!(is_sha_fallback(&encode_segment(b"b64.foo")));
        let fake = format!("{}__x", "0".repeat(32));
        assert!(is_sha_fallback(&encode_segment(fake.as_bytes())));
        assert_ne!(encode_segment(fake.as_bytes()), fake);
    }

    #[test]
    fn decoder_rejects_malformed_segments() {
        for bad in [
            "%", "%1", "abc%2", "%ZZ", "a b", "a/b", "~", "b64.*", "b64.a==",
        ] {
            assert!(
                matches!(
                    decode_segment(bad),
                    Err(FilenameError::InvalidEncodedSegment { .. })
                ),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(decode_segment("%ab").unwrap(), vec![0xAB]);
        let oversized = "k".repeat(MAX_SEGMENT_BYTES + 1);
        assert!(matches!(
            decode_segment(&oversized),
            Err(FilenameError::InvalidEncodedSegment { .. })
        ));
    }

    #[test]
    fn huge_input_goes_straight_to_fallback() {
        let raw = vec![0u8; 8 << 20];
        let enc = encode_segment(&raw);
        assert!(is_sha_fallback(&enc));
        assert!(enc.len() <= MAX_SEGMENT_BYTES);
        assert!(is_sha_fallback(&encode_binary_segment(&raw)));
    }

    #[test]
    fn fallback_embeds_hash_prefix_and_encoded_tail() {
        let mut raw = b"user:".to_vec();
        raw.extend(std::iter::repeat_n(b'z', 300));
        let enc = encode_segment(&raw);
        let digest = hex::encode(Sha256::digest(&raw));
        assert_eq!(&enc[..32], &digest[..32]);
        assert_eq!(&enc[32..34], "__");
        assert_eq!(&enc[34..], percent_encode(&raw[..64]));
    }

    proptest! {
        #[test]
        fn non_fallback_encodings_decode_back(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let enc = encode_segment(&raw);
            prop_assert!(enc.len() <= MAX_SEGMENT_BYTES);
            if is_sha_fallback(&enc) {
                let needs_keymap = matches!(decode_segment(&enc), Err(FilenameError::ShaFallbackNeedsKeymap { .. }));
                prop_assert!(needs_keymap);
            } else {
                prop_assert_eq!(decode_segment(&enc).unwrap(), raw);
            }
        }

        #[test]
        fn binary_encodings_decode_back(raw in proptest::collection::vec(any::<u8>(), 0..260)) {
            let enc = encode_binary_segment(&raw);
            prop_assert!(enc.len() <= MAX_SEGMENT_BYTES);
            if !is_sha_fallback(&enc) {
                prop_assert_eq!(decode_segment(&enc).unwrap(), raw);
            }
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = decode_segment(&text);
        }
    }
}
