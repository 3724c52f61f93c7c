//! The bytes of each Redis file (format §5.9): collection JSON documents
//! (indented, HTML-escaped, no trailing newline), stream JSONL (one compact
//! entry per line, then exactly one `_meta` line), and TTL sidecar lines.
//!
//! Parsing is strict: one JSON value per file, `format_version` 1 checked
//! before the typed decode, no unknown fields, binary envelopes validated,
//! stream ids canonical and ascending, `_meta` last and consistent with the
//! entries. Errors are plain strings; the reader adds the path and line.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::{RedisValue, StreamEntry, StreamId};
use crate::backup::json::{self, BinaryValue, Layout};

/// The per-file `format_version` written and accepted.
pub const FILE_FORMAT_VERSION: u32 = 1;

/// A sorted-set score: a JSON number, or `"+inf"` / `"-inf"`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Serialize for Score {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == f64::INFINITY {
            serializer.serialize_str("+inf")
        } else if self.0 == f64::NEG_INFINITY {
            serializer.serialize_str("-inf")
        } else if self.0.is_nan() {
            Err(serde::ser::Error::custom("NaN score"))
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_f64()
                .map(Score)
                .ok_or_else(|| de::Error::custom("score out of range")),
            Value::String(s) if s == "+inf" => Ok(Score(f64::INFINITY)),
            Value::String(s) if s == "-inf" => Ok(Score(f64::NEG_INFINITY)),
            other => Err(de::Error::custom(format!(
                "score must be a number, \"+inf\" or \"-inf\", not {other}"
            ))),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    name: BinaryValue,
    value: BinaryValue,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashFile {
    format_version: u32,
    fields: Vec<Pair>,
    #[serde(default)]
    expire_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    format_version: u32,
    items: Vec<BinaryValue>,
    #[serde(default)]
    expire_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    format_version: u32,
    members: Vec<BinaryValue>,
    #[serde(default)]
    expire_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZMember {
    member: BinaryValue,
    score: Score,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZSetFile {
    format_version: u32,
    members: Vec<ZMember>,
    #[serde(default)]
    expire_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    id: String,
    fields: Vec<Pair>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaLine {
    _meta: bool,
    length: u64,
    last_ms: u64,
    last_seq: u64,
    #[serde(default)]
    expire_at_ms: Option<u64>,
}

/// One line of `strings_ttl.jsonl` / `hll_ttl.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlLine {
    pub key: String,
    pub expire_at_ms: u64,
}

fn pairs(list: &[(Vec<u8>, Vec<u8>)]) -> Vec<Pair> {
    list.iter()
        .map(|(n, v)| Pair {
            name: BinaryValue(n.clone()),
            value: BinaryValue(v.clone()),
        })
        .collect()
}

fn unpairs(list: Vec<Pair>) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.into_iter().map(|p| (p.name.0, p.value.0)).collect()
}

fn wrap(list: &[Vec<u8>]) -> Vec<BinaryValue> {
    list.iter().cloned().map(BinaryValue).collect()
}

fn ser_err(err: serde_json::Error) -> String {
    format!("cannot serialise: {err}")
}

/// Renders a TTL sidecar line (compact, no HTML escaping, `\n`).
///
/// # Errors
/// Never in practice; serialisation errors are reported as text.
pub fn ttl_line(key: &str, expire_at_ms: u64) -> Result<Vec<u8>, String> {
    json::to_line(
        &TtlLine {
            key: key.to_owned(),
            expire_at_ms,
        },
        false,
    )
    .map_err(ser_err)
}

/// Renders the file body of a collection or stream value.
/// Preconditions: the value is canonical (see `RedisRecord::canonical`)
/// and not a string or HLL.
///
/// # Errors
/// A description when the value is a string/HLL or not serialisable.
pub fn render_value(value: &RedisValue, expire_at_ms: Option<u64>) -> Result<Vec<u8>, String> {
    match value {
        RedisValue::Hash(fields) => doc(&HashFile {
            format_version: FILE_FORMAT_VERSION,
            fields: pairs(fields),
            expire_at_ms,
        }),
        RedisValue::List(items) => doc(&ListFile {
            format_version: FILE_FORMAT_VERSION,
            items: wrap(items),
            expire_at_ms,
        }),
        RedisValue::Set(members) => doc(&SetFile {
            format_version: FILE_FORMAT_VERSION,
            members: wrap(members),
            expire_at_ms,
        }),
        RedisValue::ZSet(members) => doc(&ZSetFile {
            format_version: FILE_FORMAT_VERSION,
            members: members
                .iter()
                .map(|(m, s)| ZMember {
                    member: BinaryValue(m.clone()),
                    score: Score(*s),
                })
                .collect(),
            expire_at_ms,
        }),
        RedisValue::Stream { entries, last_id } => {
            let mut out = Vec::new();
            for entry in entries {
                let line = EntryLine {
                    id: entry.id.to_string(),
                    fields: pairs(&entry.fields),
                };
                out.extend(json::to_line(&line, true).map_err(ser_err)?);
            }
            let meta = MetaLine {
                _meta: true,
                length: entries.len() as u64,
                last_ms: last_id.ms,
                last_seq: last_id.seq,
                expire_at_ms,
            };
            out.extend(json::to_line(&meta, true).map_err(ser_err)?);
            Ok(out)
        }
        RedisValue::String(_) | RedisValue::Hll(_) => {
            Err("strings and HLLs are raw .bin files".into())
        }
    }
}

fn doc<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    json::to_vec(value, Layout::Indented, true).map_err(ser_err)
}

fn normalise_ttl(expire_at_ms: Option<u64>) -> Option<u64> {
    expire_at_ms.filter(|ms| *ms != 0)
}

/// A parse failure, with the 1-based line for JSONL files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub line: Option<u64>,
    pub reason: String,
}

fn fail(line: Option<u64>, reason: impl Into<String>) -> ParseFailure {
    ParseFailure {
        line,
        reason: reason.into(),
    }
}

fn check_version(value: &Value, line: Option<u64>) -> Result<(), ParseFailure> {
    match value.get("format_version") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(FILE_FORMAT_VERSION)) => Ok(()),
        Some(other) => Err(fail(line, format!("unsupported format_version {other}"))),
        None => Err(fail(line, "format_version missing")),
    }
}

fn typed<T: for<'de> Deserialize<'de>>(value: Value, line: Option<u64>) -> Result<T, ParseFailure> {
    serde_json::from_value(value).map_err(|err| fail(line, err.to_string()))
}

/// Parses a collection JSON file (`hashes/`, `lists/`, `sets/`, `zsets/`).
///
/// # Errors
/// [`ParseFailure`] describing the first problem.
pub fn parse_collection(
    kind: super::RedisKind,
    bytes: &[u8],
) -> Result<(RedisValue, Option<u64>), ParseFailure> {
    use super::RedisKind;
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| fail(None, format!("not one JSON value: {err}")))?;
    check_version(&value, None)?;
    let (value, ttl) = match kind {
        RedisKind::Hash => {
            let file: HashFile = typed(value, None)?;
            (RedisValue::Hash(unpairs(file.fields)), file.expire_at_ms)
        }
        RedisKind::List => {
            let file: ListFile = typed(value, None)?;
            (
                RedisValue::List(file.items.into_iter().map(|b| b.0).collect()),
                file.expire_at_ms,
            )
        }
        RedisKind::Set => {
            let file: SetFile = typed(value, None)?;
            (
                RedisValue::Set(file.members.into_iter().map(|b| b.0).collect()),
                file.expire_at_ms,
            )
        }
        RedisKind::ZSet => {
            let file: ZSetFile = typed(value, None)?;
            (
                RedisValue::ZSet(
                    file.members
                        .into_iter()
                        .map(|m| (m.member.0, m.score.0))
                        .collect(),
                ),
                file.expire_at_ms,
            )
        }
        RedisKind::String | RedisKind::Hll | RedisKind::Stream => {
            return Err(fail(None, "not a collection type"));
        }
    };
    Ok((value, normalise_ttl(ttl)))
}

/// Parses a stream JSONL file.
///
/// # Errors
/// [`ParseFailure`] naming the line at fault.
pub fn parse_stream(bytes: &[u8]) -> Result<(RedisValue, Option<u64>), ParseFailure> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut entries: Vec<StreamEntry> = Vec::new();
    let mut meta: Option<MetaLine> = None;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line_no = Some(index as u64 + 1);
        if meta.is_some() {
            return Err(fail(
                line_no,
                "line after the _meta line (_meta must be last and unique)",
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(fail(line_no, "blank line"));
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|err| fail(line_no, format!("not JSON: {err}")))?;
        if value.get("_meta").is_some() {
            let parsed: MetaLine = typed(value, line_no)?;
            if !parsed._meta {
                return Err(fail(line_no, "_meta must be true"));
            }
            meta = Some(parsed);
            continue;
        }
        let parsed: EntryLine = typed(value, line_no)?;
        let id = StreamId::parse(&parsed.id)
            .ok_or_else(|| fail(line_no, format!("bad stream id {:?}", parsed.id)))?;
        if entries.last().is_some_and(|prev| prev.id >= id) {
            return Err(fail(
                line_no,
                format!("stream id {id} not after the previous entry"),
            ));
        }
        entries.push(StreamEntry {
            id,
            fields: unpairs(parsed.fields),
        });
    }
    let meta = meta.ok_or_else(|| fail(None, "missing _meta line"))?;
    if meta.length != entries.len() as u64 {
        return Err(fail(
            None,
            format!("_meta length {} but {} entries", meta.length, entries.len()),
        ));
    }
    let last_id = StreamId {
        ms: meta.last_ms,
        seq: meta.last_seq,
    };
    if entries.last().is_some_and(|newest| newest.id > last_id) {
        return Err(fail(
            None,
            format!("_meta last id {last_id} behind max entry"),
        ));
    }
    Ok((
        RedisValue::Stream { entries, last_id },
        normalise_ttl(meta.expire_at_ms),
    ))
}

/// Parses one TTL sidecar line.
///
/// # Errors
/// [`ParseFailure`] for a malformed line or a zero expiry.
pub fn parse_ttl_line(line: &[u8], line_no: u64) -> Result<TtlLine, ParseFailure> {
    let parsed: TtlLine = serde_json::from_slice(line)
        .map_err(|err| fail(Some(line_no), format!("bad TTL line: {err}")))?;
    if parsed.expire_at_ms == 0 {
        return Err(fail(Some(line_no), "expire_at_ms is 0"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::RedisKind;
    use super::*;

    #[test]
    fn hash_document_matches_the_format_example() {
        let value = RedisValue::Hash(vec![
            (b"name".to_vec(), b"alice".to_vec()),
            (vec![0xFF], b"binary-name".to_vec()),
        ]);
        let text = String::from_utf8(render_value(&value, None).unwrap()).unwrap();
        let expected = "{\n  \"format_version\": 1,\n  \"fields\": [\n    {\n      \"name\": \"name\",\n      \"value\": \"alice\"\n    },\n    {\n      \"name\": {\n        \"base64\": \"_w\"\n      },\n      \"value\": \"binary-name\"\n    }\n  ],\n  \"expire_at_ms\": null\n}";
        assert_eq!(text, expected);
    }

    #[test]
    fn stream_lines_match_the_format_example() {
        let value = RedisValue::Stream {
            entries: vec![
                StreamEntry {
                    id: StreamId {
                        ms: 1_714_400_000_000,
                        seq: 0,
                    },
                    fields: vec![
                        (b"event".to_vec(), b"login".to_vec()),
                        (b"user".to_vec(), b"alice".to_vec()),
                    ],
                },
                StreamEntry {
                    id: StreamId {
                        ms: 1_714_400_000_001,
                        seq: 0,
                    },
                    fields: vec![
                        (b"f".to_vec(), b"v1".to_vec()),
                        (b"f".to_vec(), b"v2".to_vec()),
                    ],
                },
            ],
            last_id: StreamId {
                ms: 1_714_400_000_001,
                seq: 0,
            },
        };
        let text = String::from_utf8(render_value(&value, None).unwrap()).unwrap();
        assert_eq!(
            text,
            concat!(
                "{\"id\":\"1714400000000-0\",\"fields\":[{\"name\":\"event\",\"value\":\"login\"},{\"name\":\"user\",\"value\":\"alice\"}]}\n",
                "{\"id\":\"1714400000001-0\",\"fields\":[{\"name\":\"f\",\"value\":\"v1\"},{\"name\":\"f\",\"value\":\"v2\"}]}\n",
                "{\"_meta\":true,\"length\":2,\"last_ms\":1714400000001,\"last_seq\":0,\"expire_at_ms\":null}\n",
            )
        );
        assert_eq!(parse_stream(text.as_bytes()).unwrap(), (value, None));
    }

    #[test]
    fn zset_scores_use_go_numbers_and_inf_strings() {
        let value = RedisValue::ZSet(vec![
            (b"alice".to_vec(), 100.0),
            (b"bob".to_vec(), f64::INFINITY),
            (b"c".to_vec(), -1e-7),
        ]);
        let bytes = render_value(&value, Some(5)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\"score\": 100\n")
                && text.contains("\"score\": \"+inf\"")
                && text.contains("\"score\": -1e-7")
        );
        assert_eq!(
            parse_collection(RedisKind::ZSet, &bytes).unwrap(),
            (value, Some(5))
        );
        assert!(render_value(&RedisValue::ZSet(vec![(b"m".to_vec(), f64::NAN)]), None).is_err());
    }

    #[test]
    fn collections_refuse_other_versions_trailing_data_and_unknown_fields() {
        let good = render_value(&RedisValue::Set(vec![b"a".to_vec()]), None).unwrap();
        parse_collection(RedisKind::Set, &good).unwrap();
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"{}");
        assert!(parse_collection(RedisKind::Set, &trailing).is_err());
        let v2 = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"format_version\": 1", "\"format_version\": 2");
        assert!(
            parse_collection(RedisKind::Set, v2.as_bytes())
                .unwrap_err()
                .reason
                .contains("format_version")
        );
        let extra = String::from_utf8(good)
            .unwrap()
            .replace("\"members\"", "\"extra\": 1, \"members\"");
        assert!(parse_collection(RedisKind::Set, extra.as_bytes()).is_err());
    }

    #[test]
    fn collection_ttl_zero_means_none() {
        let doc = br#"{"format_version":1,"items":["a"],"expire_at_ms":0}"#;
        assert_eq!(
            parse_collection(RedisKind::List, doc).unwrap(),
            (RedisValue::List(vec![b"a".to_vec()]), None)
        );
    }

    #[test]
    fn stream_parser_refuses_bad_meta_and_order() {
        let entry = |id: &str| format!("{{\"id\":\"{id}\",\"fields\":[]}}\n");
        let meta = |len: u64, ms: u64| {
            format!(
                "{{\"_meta\":true,\"length\":{len},\"last_ms\":{ms},\"last_seq\":0,\"expire_at_ms\":null}}\n"
            )
        };
        let cases = [
            (entry("1-0"), "missing _meta"),
            (format!("{}{}", meta(0, 0), meta(0, 0)), "after the _meta"),
            (format!("{}{}", entry("1-0"), meta(2, 1)), "length"),
            (
                format!("{}{}", entry("5-0"), meta(1, 4)),
                "behind max entry",
            ),
            (
                format!("{}{}{}", entry("2-0"), entry("1-0"), meta(2, 2)),
                "not after",
            ),
            (
                format!(
                    "{}{}",
                    entry("1-0"),
                    "{\"_meta\":true,\"length\":-1,\"last_ms\":1,\"last_seq\":0}\n"
                ),
                "invalid value",
            ),
            (format!("\n{}", meta(0, 0)), "blank"),
        ];
        for (text, needle) in cases {
            let err = parse_stream(text.as_bytes()).unwrap_err();
            assert!(err.reason.contains(needle), "{text:?}: {err:?}");
        }
        assert!(
            parse_stream(meta(0, 0).as_bytes()).is_ok(),
            "empty stream with meta only"
        );
    }

    #[test]
    fn ttl_lines_round_trip_and_refuse_zero() {
        let line = ttl_line("session%3Aabc123", 1_735_689_600_000).unwrap();
        assert_eq!(
            line,
            b"{\"key\":\"session%3Aabc123\",\"expire_at_ms\":1735689600000}\n"
        );
        assert_eq!(
            parse_ttl_line(&line[..line.len() - 1], 1)
                .unwrap()
                .expire_at_ms,
            1_735_689_600_000
        );
        assert!(parse_ttl_line(br#"{"key":"a","expire_at_ms":0}"#, 1).is_err());
        assert!(parse_ttl_line(br#"{"key":"a"}"#, 1).is_err());
    }
}
