//! The JSON conventions of the tree (format §5.2), byte-compatible with Go's
//! `encoding/json`, and the binary-safe value envelope.
//!
//! serde_json does the serialising; [`GoFormatter`] only changes what differs
//! from Go: `<`, `>`, `&`, U+2028 and U+2029 escaping (when HTML escaping is
//! on), `\u0008`/`\u000c` instead of `\b`/`\f`, and float text (shortest
//! round-trip digits; exponent form below 1e-6 and from 1e21, `1e-7`,
//! `1e+21`). Indentation is two spaces, empty containers `[]` / `{}`, as both
//! libraries already agree.
//!
//! Struct field order is declaration order, so each file model declares its
//! fields in the order the Go tools emit them.

use std::io::{self, Write};

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

use super::filename::{b64url_decode, b64url_encode};

/// How a document is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One line, no spaces (Go `Marshal`).
    Compact,
    /// Two-space indentation (Go `MarshalIndent(v, "", "  ")`).
    Indented,
}

/// A serde_json formatter producing the bytes Go's `encoding/json` produces.
pub struct GoFormatter {
    layout: Layout,
    escape_html: bool,
    pretty: PrettyFormatter<'static>,
    compact: CompactFormatter,
}

impl GoFormatter {
    /// Builds a formatter for `layout`, escaping `<`, `>`, `&` when
    /// `escape_html` is set.
    pub fn new(layout: Layout, escape_html: bool) -> Self {
        GoFormatter {
            layout,
            escape_html,
            pretty: PrettyFormatter::with_indent(b"  "),
            compact: CompactFormatter,
        }
    }
}

/// Renders a float as Go's `encoding/json` does for a `float64`.
/// Preconditions: `value` is finite (JSON has no text for NaN or ±Inf).
pub fn format_go_float(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{value:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{value}")
    }
}

macro_rules! delegate {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {
        $(
            fn $name<W: ?Sized + Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> io::Result<()> {
                match self.layout {
                    Layout::Compact => self.compact.$name(writer $(, $arg)*),
                    Layout::Indented => self.pretty.$name(writer $(, $arg)*),
                }
            }
        )*
    };
}

impl Formatter for GoFormatter {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(format_go_float(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        writer.write_all(format_go_float(f64::from(value)).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            let escape = match ch {
                '<' | '>' | '&' if self.escape_html => Some(u32::from(ch)),
                '\u{2028}' | '\u{2029}' => Some(u32::from(ch)),
                _ => None,
            };
            if let Some(code) = escape {
                writer.write_all(&fragment.as_bytes()[start..index])?;
                write!(writer, "\\u{code:04x}")?;
                start = index + ch.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            CharEscape::AsciiControl(byte) => write!(writer, "\\u{byte:04x}"),
            other => self.compact.write_char_escape(writer, other),
        }
    }
}

/// Serialises `value` with Go's conventions. No trailing newline.
///
/// # Errors
/// Only what `value`'s `Serialize` reports (e.g. a NaN score).
pub fn to_vec<T: Serialize + ?Sized>(
    value: &T,
    layout: Layout,
    escape_html: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, GoFormatter::new(layout, escape_html));
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// Serialises `value` as one JSONL line (compact, with `\n`).
///
/// # Errors
/// As [`to_vec`].
pub fn to_line<T: Serialize + ?Sized>(
    value: &T,
    escape_html: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = to_vec(value, Layout::Compact, escape_html)?;
    out.push(b'\n');
    Ok(out)
}

/// Bytes that may or may not be UTF-8, written as a JSON string when they
/// are, else as `{"base64":"<base64url, no padding>"}` (format §5.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BinaryValue(pub Vec<u8>);

impl Serialize for BinaryValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("base64", &b64url_encode(&self.0))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BinaryValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Envelope {
            base64: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Envelope(Envelope),
        }
        match Either::deserialize(deserializer).map_err(|_| {
            de::Error::custom("expected a string or an object {\"base64\": \"...\"}")
        })? {
            Either::Text(text) => Ok(BinaryValue(text.into_bytes())),
            Either::Envelope(envelope) => b64url_decode(&envelope.base64)
                .map(BinaryValue)
                .ok_or_else(|| de::Error::custom("invalid base64url in binary envelope")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn floats_follow_go_formatting() {
        let cases = [
            (100.0, "100"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.0, "0"),
            (1e-7, "1e-7"),
            (1.5e-8, "1.5e-8"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (-2.5e300, "-2.5e+300"),
            (5e-324, "5e-324"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_go_float(value), expected, "{value:e}");
        }
    }

    #[test]
    fn html_escaping_is_switchable() {
        let value = json!({"k": "<a&b>"});
        assert_eq!(
            to_vec(&value, Layout::Compact, true).unwrap(),
            br#"{"k":"\u003ca\u0026b\u003e"}"#
        );
        assert_eq!(
            to_vec(&value, Layout::Compact, false).unwrap(),
            br#"{"k":"<a&b>"}"#
        );
    }

    #[test]
    fn control_characters_use_go_escapes() {
        let value = json!("\u{8}\u{c}\n\r\t\u{1}\u{2028}\"\\");
        assert_eq!(
            to_vec(&value, Layout::Compact, false).unwrap(),
            br#""\u0008\u000c\n\r\t\u0001\u2028\"\\""#
        );
    }

    #[test]
    fn indented_layout_matches_marshal_indent() {
        let value = json!({"a": [], "b": {}, "c": [1, {"d": null}]});
        let text = String::from_utf8(to_vec(&value, Layout::Indented, true).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": null\n    }\n  ]\n}"
        );
    }

    #[test]
    fn binary_envelope_uses_string_for_utf8_and_base64url_otherwise() {
        assert_eq!(
            to_vec(&BinaryValue(b"alice".to_vec()), Layout::Compact, true).unwrap(),
            br#""alice""#
        );
        assert_eq!(
            to_vec(&BinaryValue(vec![0xFF]), Layout::Compact, true).unwrap(),
            br#"{"base64":"_w"}"#
        );
    }

    #[test]
    fn binary_envelope_reader_is_strict() {
        let ok: BinaryValue = serde_json::from_str(r#"{"base64":"_w"}"#).unwrap();
        assert_eq!(ok.0, vec![0xFF]);
        for bad in [
            r#"{"base64":"_w","x":1}"#,
            r#"{}"#,
            r#"{"base64":"*"}"#,
            "12",
            "null",
        ] {
            assert!(serde_json::from_str::<BinaryValue>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn floats_round_trip_through_go_text(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let parsed: f64 = format_go_float(value).parse().unwrap();
            prop_assert_eq!(parsed.to_bits(), value.to_bits());
        }

        #[test]
        fn binary_values_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64), html in any::<bool>()) {
            let text = to_vec(&BinaryValue(bytes.clone()), Layout::Compact, html).unwrap();
            let back: BinaryValue = serde_json::from_slice(&text).unwrap();
            prop_assert_eq!(back.0, bytes);
        }
    }
}
