//! Incremental RESP request parser (multibulk and inline requests).
//!
//! The parser consumes complete requests from the front of a connection's
//! `BytesMut` and keeps its own state between calls, so a request split over
//! many reads is never re-scanned from the start. Multibulk arguments are
//! split off the buffer without copying (`Bytes` sharing the read buffer);
//! inline arguments are rebuilt because of quoting.
//!
//! Invariants kept:
//! * Limits are checked before anything is allocated for them: a declared
//!   bulk length is never pre-allocated, the argument vector grows as
//!   arguments arrive (capacity capped at [`ARGV_PREALLOC_CAP`]).
//! * Every malformed input yields a [`ProtocolError`] whose text is Redis's
//!   own (`Protocol error: invalid bulk length`, ...); nothing panics.
//! * After an error the parser state is unspecified; the connection must be
//!   closed (Redis closes it after replying with the error).

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use super::reply::Reply;

/// Redis's `PROTO_INLINE_MAX_SIZE`: longest inline request and longest
/// `*`/`$` header line.
pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
/// Redis's default `proto-max-bulk-len` (512 MiB).
pub const DEFAULT_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Most arguments one multibulk request may declare.
pub const DEFAULT_MAX_MULTIBULK_LEN: usize = 1024 * 1024;
/// Largest multibulk count an unauthenticated client may send (Redis: 10).
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: i64 = 10;
/// Largest bulk an unauthenticated client may send (Redis: 16 KiB).
pub const UNAUTHENTICATED_MAX_BULK_LEN: i64 = 16 * 1024;
/// The argument vector is never pre-allocated beyond this many slots.
pub const ARGV_PREALLOC_CAP: usize = 1024;

/// Limits applied while parsing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Largest bulk argument accepted (`proto-max-bulk-len`).
    pub proto_max_bulk_len: usize,
    /// Most arguments in one multibulk request.
    pub max_multibulk_len: usize,
    /// Longest inline request line or header line.
    pub max_inline_len: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            max_multibulk_len: DEFAULT_MAX_MULTIBULK_LEN,
            max_inline_len: DEFAULT_MAX_INLINE_LEN,
        }
    }
}

/// A malformed request; the text is exactly what Redis replies (after `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A bad or oversized `*<n>` count.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A multibulk count above 10 before authentication.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A `*` header line longer than the inline limit.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A bad, negative or oversized `$<n>` length.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A bulk above 16 KiB before authentication.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// A `$` header line longer than the inline limit.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A multibulk element that does not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    /// An inline request with an unterminated or badly closed quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An inline request line longer than the inline limit.
    #[error("Protocol error: too big inline request")]
    TooBigInline,
}

impl ProtocolError {
    /// The error reply Redis sends before closing the connection.
    pub fn to_reply(&self) -> Reply {
        Reply::error(format!("ERR {self}"))
    }
}

/// Parses a decimal integer with Redis's `string2ll` rules: optional `-`,
/// no `+`, no leading zeros, no spaces, must fit in an `i64`.
pub fn parse_redis_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        None => return None,
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [first, ..] if !(b'1'..=b'9').contains(first) => return None,
        _ => {}
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            None
        } else {
            Some((magnitude as i64).wrapping_neg())
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[derive(Debug)]
struct PendingMultibulk {
    remaining: usize,
    args: Vec<Bytes>,
    bulk_len: Option<usize>,
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct RequestParser {
    limits: ParserLimits,
    authenticated: bool,
    pending: Option<PendingMultibulk>,
}

impl RequestParser {
    /// A parser for an authenticated (or auth-free) connection.
    pub fn new(limits: ParserLimits) -> Self {
        RequestParser {
            limits,
            authenticated: true,
            pending: None,
        }
    }

    /// Applies Redis's tighter pre-authentication limits while `false`.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// Whether a multibulk request is partly read.
    pub fn has_partial_request(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes the next complete request off the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Empty requests (an empty
    /// inline line, `*0`, `*-1`) are skipped, so a returned request always
    /// has at least one argument.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.pending.is_none() {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.parse_inline(buf)? {
                        InlineOutcome::NeedMore => return Ok(None),
                        InlineOutcome::Empty => continue,
                        InlineOutcome::Request(args) => return Ok(Some(args)),
                    }
                }
                match self.parse_multibulk_header(buf)? {
                    None => return Ok(None),
                    Some(0) => continue,
                    Some(count) => {
                        self.pending = Some(PendingMultibulk {
                            remaining: count,
                            args: Vec::with_capacity(count.min(ARGV_PREALLOC_CAP)),
                            bulk_len: None,
                        });
                    }
                }
            }
            return self.continue_multibulk(buf);
        }
    }

    fn parse_multibulk_header(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(line_end) = find_byte(buf, b'\r') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigMultibulkCount);
            }
            return Ok(None);
        };
        if line_end + 2 > buf.len() {
            return Ok(None);
        }
        let count =
            parse_redis_int(&buf[1..line_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count > self.limits.max_multibulk_len as i64 {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        if !self.authenticated && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        buf.advance(line_end + 2);
        Ok(Some(count.max(0) as usize))
    }

    fn continue_multibulk(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let limits = self.limits;
        let authenticated = self.authenticated;
        let Some(pending) = self.pending.as_mut() else {
            return Ok(None);
        };
        while pending.remaining > 0 {
            let bulk_len = match pending.bulk_len {
                Some(len) => len,
                None => {
                    let Some(line_end) = find_byte(buf, b'\r') else {
                        if buf.len() > limits.max_inline_len {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    if line_end + 2 > buf.len() {
                        return Ok(None);
                    }
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[0]));
                    }
                    let len = parse_redis_int(&buf[1..line_end])
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if len < 0 || len as u64 > limits.proto_max_bulk_len as u64 {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if !authenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    buf.advance(line_end + 2);
                    let len = len as usize;
                    pending.bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < bulk_len + 2 {
                return Ok(None);
            }
            let arg = buf.split_to(bulk_len).freeze();
            // Like Redis, the two bytes after the payload are skipped
            // unchecked: the declared length alone frames the argument.
            buf.advance(2);
            pending.args.push(arg);
            pending.bulk_len = None;
            pending.remaining -= 1;
        }
        Ok(self.pending.take().map(|pending| pending.args))
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<InlineOutcome, ProtocolError> {
        let Some(newline) = find_byte(buf, b'\n') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(InlineOutcome::NeedMore);
        };
        let line_len = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let args = split_inline_args(&buf[..line_len]);
        buf.advance(newline + 1);
        let args = args.ok_or(ProtocolError::UnbalancedQuotes)?;
        if args.is_empty() {
            Ok(InlineOutcome::Empty)
        } else {
            Ok(InlineOutcome::Request(args))
        }
    }
}

enum InlineOutcome {
    NeedMore,
    Empty,
    Request(Vec<Bytes>),
}

fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// Splits an inline request line with Redis's `sdssplitargs` rules: words
/// separated by whitespace; `"..."` with `\n \r \t \b \a \xHH \\ \"`
/// escapes; `'...'` with only `\'`; a closing quote must be followed by
/// whitespace or the end. Returns `None` for unbalanced quotes. A NUL byte
/// ends the line, as it does for Redis's C string scanner.
pub fn split_inline_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match find_byte(line, 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while pos < line.len() && is_c_space(line[pos]) {
            pos += 1;
        }
        if pos >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let byte = line.get(pos).copied();
            if in_double {
                match byte {
                    None => return None,
                    Some(b'\\')
                        if line.get(pos + 1) == Some(&b'x')
                            && line.get(pos + 2).and_then(|&b| hex_value(b)).is_some()
                            && line.get(pos + 3).and_then(|&b| hex_value(b)).is_some() =>
                    {
                        let high = hex_value(line[pos + 2]).unwrap_or(0);
                        let low = hex_value(line[pos + 3]).unwrap_or(0);
                        current.push(high * 16 + low);
                        pos += 3;
                    }
                    Some(b'\\') if pos + 1 < line.len() => {
                        pos += 1;
                        current.push(match line[pos] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(pos + 1).is_some_and(|next| !is_c_space(*next)) {
                            return None;
                        }
                        pos += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match byte {
                    None => return None,
                    Some(b'\\') if line.get(pos + 1) == Some(&b'\'') => {
                        pos += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(pos + 1).is_some_and(|next| !is_c_space(*next)) {
                            return None;
                        }
                        pos += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match byte {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            pos += 1;
        }
        args.push(Bytes::from(current));
    }
}

/// C's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Encodes `args` as a multibulk request (what clients send).
pub fn encode_request(args: &[impl AsRef<[u8]>]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new(ParserLimits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(request) = parser.next_request(&mut buf)? {
            out.push(request);
        }
        Ok(out)
    }

    fn words(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|item| Bytes::copy_from_slice(item.as_bytes()))
            .collect()
    }

    #[test]
    fn multibulk_and_inline_requests() {
        let parsed = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                words(&["GET", "k"]),
                words(&["PING"]),
                words(&["set", "a", "b c"])
            ]
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(
            parse_all(b"\r\n*0\r\n*-1\r\n\nPING\r\n").unwrap(),
            vec![words(&["PING"])]
        );
    }

    #[test]
    fn incomplete_requests_wait_for_more() {
        let mut parser = RequestParser::new(ParserLimits::default());
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhel"[..]);
        assert_eq!(parser.next_request(&mut buf).unwrap(), None);
        assert!(parser.has_partial_request());
        buf.extend_from_slice(b"lo\r\n");
        assert_eq!(
            parser.next_request(&mut buf).unwrap(),
            Some(words(&["GET", "hello"]))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn protocol_errors_use_redis_words() {
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "Protocol error: invalid multibulk length"),
            (b"*1048577\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (
                b"*1\r\n$600000000\r\n",
                "Protocol error: invalid bulk length",
            ),
            (b"*1\r\n$01\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
            (b"set \"a\n", "Protocol error: unbalanced quotes in request"),
            (
                b"set \"a\"b\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (b"set 'a\n", "Protocol error: unbalanced quotes in request"),
        ];
        for (input, expected) in cases {
            let err = parse_all(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                *expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(err.to_reply(), Reply::error(format!("ERR {expected}")));
        }
    }

    #[test]
    fn oversized_lines_are_rejected_without_newline() {
        let long = vec![b'a'; DEFAULT_MAX_INLINE_LEN + 1];
        assert_eq!(parse_all(&long).unwrap_err(), ProtocolError::TooBigInline);
        let mut star = b"*".to_vec();
        star.extend(vec![b'1'; DEFAULT_MAX_INLINE_LEN + 1]);
        assert_eq!(
            parse_all(&star).unwrap_err(),
            ProtocolError::TooBigMultibulkCount
        );
        let mut dollar = b"*1\r\n$".to_vec();
        dollar.extend(vec![b'1'; DEFAULT_MAX_INLINE_LEN + 1]);
        assert_eq!(
            parse_all(&dollar).unwrap_err(),
            ProtocolError::TooBigBulkCount
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let mut parser = RequestParser::new(ParserLimits::default());
        parser.set_authenticated(false);
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf).unwrap_err(),
            ProtocolError::UnauthenticatedMultibulkLength
        );
        let mut parser = RequestParser::new(ParserLimits::default());
        parser.set_authenticated(false);
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf).unwrap_err(),
            ProtocolError::UnauthenticatedBulkLength
        );
    }

    #[test]
    fn configured_bulk_limit_applies() {
        let limits = ParserLimits {
            proto_max_bulk_len: 4,
            ..ParserLimits::default()
        };
        let mut parser = RequestParser::new(limits);
        let mut ok = BytesMut::from(&b"*1\r\n$4\r\nabcd\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut ok).unwrap(),
            Some(words(&["abcd"]))
        );
        let mut too_big = BytesMut::from(&b"*1\r\n$5\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut too_big).unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
    }

    #[test]
    fn inline_quoting_rules() {
        assert_eq!(
            split_inline_args(br#"a "b\x41\n" 'c\'d' "e\"f" x"y z"w"#),
            None,
            "a closing quote glued to a word is unbalanced"
        );
        assert_eq!(
            split_inline_args(br#"a "b\x41\n" 'c\'d' "e\"f" x"y z""#).unwrap(),
            words(&["a", "bA\n", "c'd", "e\"f", "xy z"])
        );
        assert_eq!(split_inline_args(b"   ").unwrap(), Vec::<Bytes>::new());
        assert_eq!(split_inline_args(b"\"\"").unwrap(), words(&[""]));
        assert_eq!(split_inline_args(br#""\q""#).unwrap(), words(&["q"]));
    }

    #[test]
    fn redis_integers() {
        assert_eq!(parse_redis_int(b"0"), Some(0));
        assert_eq!(parse_redis_int(b"-12"), Some(-12));
        assert_eq!(parse_redis_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_redis_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b"1 ",
            b" 1",
            b"9223372036854775808",
            b"1a",
        ] {
            assert_eq!(
                parse_redis_int(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn arg_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6)
    }

    proptest! {
        #[test]
        fn encoded_requests_round_trip(requests in proptest::collection::vec(arg_strategy(), 1..5)) {
            let mut wire = BytesMut::new();
            for request in &requests {
                wire.extend_from_slice(&encode_request(request));
            }
            let parsed = parse_all(&wire).unwrap();
            let expected: Vec<Vec<Bytes>> = requests
                .iter()
                .map(|request| request.iter().map(|arg| Bytes::copy_from_slice(arg)).collect())
                .collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn every_split_point_parses_the_same(
            requests in proptest::collection::vec(arg_strategy(), 1..4),
            cut_seed in any::<proptest::sample::Index>(),
        ) {
            let mut wire = BytesMut::new();
            for request in &requests {
                wire.extend_from_slice(&encode_request(request));
            }
            wire.extend_from_slice(b"PING 'x y'\r\n");
            let whole = parse_all(&wire).unwrap();
            let cut = cut_seed.index(wire.len() + 1);
            let mut parser = RequestParser::new(ParserLimits::default());
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut pieces = Vec::new();
            while let Some(request) = parser.next_request(&mut buf).unwrap() {
                pieces.push(request);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(request) = parser.next_request(&mut buf).unwrap() {
                pieces.push(request);
            }
            prop_assert_eq!(pieces, whole);
        }

        #[test]
        fn byte_by_byte_feeding_matches(requests in proptest::collection::vec(arg_strategy(), 1..3)) {
            let mut wire = BytesMut::new();
            for request in &requests {
                wire.extend_from_slice(&encode_request(request));
            }
            let whole = parse_all(&wire).unwrap();
            let mut parser = RequestParser::new(ParserLimits::default());
            let mut buf = BytesMut::new();
            let mut pieces = Vec::new();
            for &byte in wire.iter() {
                buf.extend_from_slice(&[byte]);
                while let Some(request) = parser.next_request(&mut buf).unwrap() {
                    pieces.push(request);
                }
            }
            prop_assert_eq!(pieces, whole);
        }

        #[test]
        fn garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..200)) {
            match parse_all(&garbage) {
                Ok(requests) => prop_assert!(requests.iter().all(|request| !request.is_empty())),
                Err(err) => prop_assert!(err.to_string().starts_with("Protocol error: ")),
            }
        }

        #[test]
        fn inline_words_round_trip(words in proptest::collection::vec("[a-zA-Z0-9]{1,8}", 1..6)) {
            let line = words.join(" ");
            let parsed = split_inline_args(line.as_bytes()).unwrap();
            let expected: Vec<Bytes> = words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect();
            prop_assert_eq!(parsed, expected);
        }
    }
}
