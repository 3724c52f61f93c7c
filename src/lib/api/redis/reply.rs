//! Replies and their wire encoding.
//!
//! [`Reply`] models every RESP3 reply type the server produces. The encoder
//! writes RESP3 natively and downgrades to RESP2 exactly as Redis does: maps
//! and sets become flat arrays, doubles become bulk strings, booleans become
//! integers, big numbers and verbatim strings become bulk strings, pushes
//! become arrays. RESP2 keeps Redis's two null shapes apart (`$-1` for a
//! missing string, `*-1` for a missing array); RESP3 writes `_` for both.
//!
//! Invariant: simple strings and errors never contain CR or LF on the wire
//! (Redis replaces them with spaces), so a reply can never break framing.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version negotiated by a connection (`HELLO 2` / `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, selected with `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The protocol number as reported by `HELLO` and `CLIENT INFO`.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply, in RESP3's type system.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Simple(Cow<'static, str>),
    /// An error line, including its code word (`ERR ...`, `WRONGTYPE ...`).
    Error(Cow<'static, str>),
    /// `:n`.
    Integer(i64),
    /// A binary-safe bulk string.
    Bulk(Bytes),
    /// A missing string: `$-1` in RESP2, `_` in RESP3.
    NullBulk,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// An array of replies.
    Array(Vec<Reply>),
    /// Key/value pairs: `%` in RESP3, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// An unordered collection: `~` in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A double: `,` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    Boolean(bool),
    /// An integer beyond 64 bits, as decimal text: `(` in RESP3, bulk in RESP2.
    BigNumber(String),
    /// Text with a three-letter format (`txt`, `mkd`): `=` in RESP3, bulk in RESP2.
    Verbatim {
        /// The three-byte format tag.
        format: [u8; 3],
        /// The text itself.
        text: Bytes,
    },
    /// An out-of-band message (pub/sub): `>` in RESP3, an array in RESP2.
    Push(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(Cow::Borrowed("OK"))
    }

    /// A status line.
    pub fn simple(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(text.into())
    }

    /// An error line; `text` must start with its code word (`ERR`, `WRONGTYPE`...).
    pub fn error(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(text.into())
    }

    /// A bulk string copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// A bulk string sharing `data`.
    pub fn bulk_bytes(data: Bytes) -> Reply {
        Reply::Bulk(data)
    }

    /// Whether this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The code word of an error reply (`ERR`, `WRONGTYPE`, ...).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(text) => Some(text.split(' ').next().unwrap_or("")),
            _ => None,
        }
    }

    /// Appends the wire form of this reply for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Reply::Simple(text) => write_line(out, b'+', text.as_bytes()),
            Reply::Error(text) => write_line(out, b'-', text.as_bytes()),
            Reply::Integer(n) => write_number(out, b':', *n),
            Reply::Bulk(data) => write_bulk(out, data),
            Reply::NullBulk => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::NullArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                write_number(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp2 => write_number(out, b'*', 2 * pairs.len() as i64),
                    Protocol::Resp3 => write_number(out, b'%', pairs.len() as i64),
                }
                for (key, value) in pairs {
                    key.encode(proto, out);
                    value.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                let marker = match proto {
                    Protocol::Resp2 => b'*',
                    Protocol::Resp3 => b'~',
                };
                write_number(out, marker, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Double(value) => {
                let text = format_double(*value);
                match proto {
                    Protocol::Resp2 => write_bulk(out, text.as_bytes()),
                    Protocol::Resp3 => write_line(out, b',', text.as_bytes()),
                }
            }
            Reply::Boolean(value) => match proto {
                Protocol::Resp2 => write_number(out, b':', i64::from(*value)),
                Protocol::Resp3 => out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
            },
            Reply::BigNumber(digits) => match proto {
                Protocol::Resp2 => write_bulk(out, digits.as_bytes()),
                Protocol::Resp3 => write_line(out, b'(', digits.as_bytes()),
            },
            Reply::Verbatim { format, text } => match proto {
                Protocol::Resp2 => write_bulk(out, text),
                Protocol::Resp3 => {
                    write_number(out, b'=', text.len() as i64 + 4);
                    out.put_slice(format);
                    out.put_u8(b':');
                    out.put_slice(text);
                    out.put_slice(b"\r\n");
                }
            },
            Reply::Push(items) => {
                let marker = match proto {
                    Protocol::Resp2 => b'*',
                    Protocol::Resp3 => b'>',
                };
                write_number(out, marker, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
        }
    }

    /// The wire form of this reply as a fresh buffer (convenient for tests).
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

impl From<i64> for Reply {
    fn from(value: i64) -> Reply {
        Reply::Integer(value)
    }
}

impl From<Bytes> for Reply {
    fn from(value: Bytes) -> Reply {
        Reply::Bulk(value)
    }
}

fn write_line(out: &mut BytesMut, marker: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(marker);
    for &byte in text {
        // Redis turns embedded line breaks into spaces so a status or error
        // line can never split the reply stream.
        out.put_u8(if byte == b'\r' || byte == b'\n' {
            b' '
        } else {
            byte
        });
    }
    out.put_slice(b"\r\n");
}

fn write_number(out: &mut BytesMut, marker: u8, value: i64) {
    out.put_u8(marker);
    out.put_slice(value.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

fn write_bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    write_number(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Formats a double the way Redis does on the wire: `inf`, `-inf`, `nan`,
/// otherwise the shortest text that reads back to the same value, in
/// `%g` style (plain digits for moderate exponents, `1e+21`-style beyond).
///
/// This is Redis 7.2's behaviour (shortest round-trip); Redis 7.0 printed
/// 17 significant digits (`1.1000000000000001`), which clients parse to the
/// same value.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // `{:e}` yields the shortest round-trip digits as `d.ddde<exp>`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = match scientific.split_once('e') {
        Some(parts) => parts,
        None => return scientific,
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    // Moderate exponent: Rust's Display already prints shortest digits
    // positionally without an exponent.
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both(reply: &Reply) -> (Bytes, Bytes) {
        (
            reply.to_bytes(Protocol::Resp2),
            reply.to_bytes(Protocol::Resp3),
        )
    }

    #[test]
    fn scalars_golden_bytes() {
        assert_eq!(
            both(&Reply::ok()),
            (Bytes::from("+OK\r\n"), Bytes::from("+OK\r\n"))
        );
        assert_eq!(
            Reply::error("ERR x").to_bytes(Protocol::Resp2),
            Bytes::from("-ERR x\r\n")
        );
        assert_eq!(
            Reply::Integer(-42).to_bytes(Protocol::Resp3),
            Bytes::from(":-42\r\n")
        );
        assert_eq!(
            Reply::bulk("hello").to_bytes(Protocol::Resp2),
            Bytes::from("$5\r\nhello\r\n")
        );
        assert_eq!(
            Reply::bulk("").to_bytes(Protocol::Resp2),
            Bytes::from("$0\r\n\r\n")
        );
        assert_eq!(
            both(&Reply::NullBulk),
            (Bytes::from("$-1\r\n"), Bytes::from("_\r\n"))
        );
        assert_eq!(
            both(&Reply::NullArray),
            (Bytes::from("*-1\r\n"), Bytes::from("_\r\n"))
        );
        assert_eq!(
            both(&Reply::Boolean(true)),
            (Bytes::from(":1\r\n"), Bytes::from("#t\r\n"))
        );
        assert_eq!(
            both(&Reply::Boolean(false)),
            (Bytes::from(":0\r\n"), Bytes::from("#f\r\n"))
        );
        assert_eq!(
            both(&Reply::Double(1.5)),
            (Bytes::from("$3\r\n1.5\r\n"), Bytes::from(",1.5\r\n"))
        );
        assert_eq!(
            both(&Reply::BigNumber("123456789012345678901234567890".into())),
            (
                Bytes::from("$30\r\n123456789012345678901234567890\r\n"),
                Bytes::from("(123456789012345678901234567890\r\n")
            )
        );
        assert_eq!(
            both(&Reply::Verbatim {
                format: *b"txt",
                text: Bytes::from("Some string")
            }),
            (
                Bytes::from("$11\r\nSome string\r\n"),
                Bytes::from("=15\r\ntxt:Some string\r\n")
            )
        );
    }

    #[test]
    fn aggregates_golden_bytes() {
        let map = Reply::Map(vec![
            (Reply::bulk("first"), Reply::Integer(1)),
            (Reply::bulk("second"), Reply::Array(vec![Reply::Integer(2)])),
        ]);
        assert_eq!(
            both(&map),
            (
                Bytes::from("*4\r\n$5\r\nfirst\r\n:1\r\n$6\r\nsecond\r\n*1\r\n:2\r\n"),
                Bytes::from("%2\r\n$5\r\nfirst\r\n:1\r\n$6\r\nsecond\r\n*1\r\n:2\r\n")
            )
        );
        let set = Reply::Set(vec![Reply::bulk("a")]);
        assert_eq!(
            both(&set),
            (
                Bytes::from("*1\r\n$1\r\na\r\n"),
                Bytes::from("~1\r\n$1\r\na\r\n")
            )
        );
        let push = Reply::Push(vec![
            Reply::bulk("message"),
            Reply::bulk("c"),
            Reply::bulk("m"),
        ]);
        assert_eq!(
            both(&push),
            (
                Bytes::from("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
                Bytes::from(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n")
            )
        );
        assert_eq!(
            Reply::Array(vec![]).to_bytes(Protocol::Resp2),
            Bytes::from("*0\r\n")
        );
    }

    #[test]
    fn line_breaks_in_errors_become_spaces() {
        assert_eq!(
            Reply::error("ERR bad\r\nthing").to_bytes(Protocol::Resp2),
            Bytes::from("-ERR bad  thing\r\n")
        );
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(1.1), "1.1");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(1e-5), "1e-05");
        assert_eq!(format_double(1e21), "1e+21");
        assert_eq!(format_double(123456789.0), "123456789");
    }

    #[test]
    fn error_code_is_the_first_word() {
        assert_eq!(
            Reply::error("WRONGTYPE Operation").error_code(),
            Some("WRONGTYPE")
        );
        assert_eq!(Reply::ok().error_code(), None);
    }

    proptest! {
        #[test]
        fn doubles_round_trip(value in any::<f64>()) {
            let text = format_double(value);
            let parsed: f64 = match text.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other.parse().unwrap(),
            };
            if value.is_nan() {
                prop_assert!(parsed.is_nan());
            } else {
                prop_assert_eq!(parsed, value);
            }
        }

        #[test]
        fn bulk_frames_carry_their_length(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let wire = Reply::bulk(&data).to_bytes(Protocol::Resp2);
            let header = format!("${}\r\n", data.len());
            prop_assert!(wire.starts_with(header.as_bytes()));
            prop_assert_eq!(&wire[header.len()..wire.len() - 2], &data[..]);
            prop_assert!(wire.ends_with(b"\r\n"));
        }
    }
}
