//! `MANIFEST.json` (format §5.6): what a tree is, who produced it, from
//! which snapshot or read timestamp, and the encoding policies in force.
//!
//! Reading follows the Go tools' order: parse as generic JSON, gate on
//! `format_version` first (so a future major with changed field types still
//! reports "unsupported version"), then a typed decode that accepts unknown
//! fields (same-major evolution), refuses trailing bytes, requires the four
//! `exclusions` flags to be present and non-null, and validates.
//! [`Manifest::to_bytes`] refuses a manifest that would not validate.
//!
//! Field order, indentation (two spaces), trailing newline and the absence
//! of HTML escaping match the Go writer.
//!
//! Our addition (ARCHITECTURE §7): `source_groups`, an optional array that
//! records every Raft group whose snapshot (or live scan) fed the tree, with
//! the values taken from each snapshot header. Go readers ignore unknown
//! fields, so trees carrying it stay readable there. When present, the
//! top-level `last_commit_ts` must be the maximum of the groups', and
//! `snapshot_index` is only set when there is exactly one group.

use std::collections::HashSet;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::{self, Layout};
use super::rfc3339;

/// File name at the tree root.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// The only `format_version` this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Largest MANIFEST.json accepted (real ones are a few hundred bytes).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
pub const CHECKSUM_ALGORITHM: &str = "sha256";
pub const CHECKSUM_FORMAT: &str = "sha256sum";
pub const ENCODED_FILENAME_CHARSET: &str = "rfc3986-unreserved-plus-percent";
pub const S3_META_SUFFIX: &str = ".elastickv-meta.json";
pub const S3_COLLISION_STRATEGY: &str = "leaf-data-suffix";
pub const DYNAMODB_LAYOUT_PER_ITEM: &str = "per-item";
pub const DYNAMODB_LAYOUT_JSONL: &str = "jsonl";

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid MANIFEST.json: {0}")]
    Invalid(String),
    #[error(
        "unsupported MANIFEST.json format_version {found} (this build reads {FORMAT_VERSION}; {hint})"
    )]
    UnsupportedFormatVersion { found: u64, hint: &'static str },
}

fn invalid(reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(reason.into())
}

/// How the tree was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Offline decode of FSM snapshot files: per-group crash consistency.
    #[serde(rename = "phase0-snapshot-decode")]
    SnapshotDecode,
    /// Live dump at one pinned, cluster-wide read timestamp.
    #[serde(rename = "phase1-live-pinned")]
    LivePinned,
}

/// `source` of a phase-0 tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub fsm_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fsm_crc32c: String,
}

/// `live` of a phase-1 tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub read_ts: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pin_token_sha256: String,
}

/// One Raft group that fed the tree (our `source_groups` extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceGroup {
    pub group_id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fsm_path: String,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    pub last_commit_ts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamoDbScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Scope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
}

/// Enabled services: an absent key means "excluded", `{}` "in scope".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adapters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb: Option<DynamoDbScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs: Option<SqsScope>,
}

impl Adapters {
    /// Reports whether the service named `name` (`"redis"`, ...) is in scope.
    pub fn is_enabled(&self, name: &str) -> bool {
        match name {
            "dynamodb" => self.dynamodb.is_some(),
            "s3" => self.s3.is_some(),
            "redis" => self.redis.is_some(),
            "sqs" => self.sqs.is_some(),
            _ => false,
        }
    }
}

/// Which internal or optional data the producer included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    pub include_incomplete_uploads: bool,
    pub include_orphans: bool,
    pub preserve_sqs_visibility: bool,
    pub include_sqs_side_records: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rename_s3_collisions: bool,
}

const REQUIRED_EXCLUSIONS: [&str; 4] = [
    "include_incomplete_uploads",
    "include_orphans",
    "preserve_sqs_visibility",
    "include_sqs_side_records",
];

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The manifest, fields in the order the Go tools emit them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub elastickv_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshot_index: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_commit_ts: u64,
    pub wall_time_iso: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_groups: Vec<SourceGroup>,
    pub adapters: Adapters,
    pub exclusions: Exclusions,
    pub checksum_algorithm: String,
    pub checksum_format: String,
    pub encoded_filename_charset: String,
    pub key_segment_max_bytes: u32,
    pub s3_meta_suffix: String,
    pub s3_collision_strategy: String,
    pub dynamodb_layout: String,
}

impl Manifest {
    fn with_defaults(phase: Phase, wall_time: SystemTime) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            phase,
            elastickv_version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_id: String::new(),
            snapshot_index: 0,
            last_commit_ts: 0,
            wall_time_iso: rfc3339::format_utc(wall_time),
            source: None,
            live: None,
            source_groups: Vec::new(),
            adapters: Adapters::default(),
            exclusions: Exclusions::default(),
            checksum_algorithm: CHECKSUM_ALGORITHM.to_owned(),
            checksum_format: CHECKSUM_FORMAT.to_owned(),
            encoded_filename_charset: ENCODED_FILENAME_CHARSET.to_owned(),
            key_segment_max_bytes: super::filename::MAX_SEGMENT_BYTES as u32,
            s3_meta_suffix: S3_META_SUFFIX.to_owned(),
            s3_collision_strategy: S3_COLLISION_STRATEGY.to_owned(),
            dynamodb_layout: DYNAMODB_LAYOUT_PER_ITEM.to_owned(),
        }
    }

    /// A phase-0 (snapshot decode) manifest with every policy field filled
    /// and no adapter enabled yet.
    pub fn new_snapshot_decode(wall_time: SystemTime, fsm_path: impl Into<String>) -> Manifest {
        let mut manifest = Manifest::with_defaults(Phase::SnapshotDecode, wall_time);
        manifest.source = Some(Source {
            fsm_path: fsm_path.into(),
            fsm_crc32c: String::new(),
        });
        manifest
    }

    /// A phase-1 (live, pinned) manifest at `read_ts`.
    pub fn new_live(wall_time: SystemTime, read_ts: u64) -> Manifest {
        let mut manifest = Manifest::with_defaults(Phase::LivePinned, wall_time);
        manifest.live = Some(Live {
            read_ts,
            pin_token_sha256: String::new(),
        });
        manifest
    }

    /// Records the groups that fed the tree and derives the top-level
    /// `last_commit_ts` (their maximum) and `snapshot_index` (only for a
    /// single group) from them.
    pub fn set_source_groups(&mut self, groups: Vec<SourceGroup>) {
        self.last_commit_ts = groups.iter().map(|g| g.last_commit_ts).max().unwrap_or(0);
        self.snapshot_index = match groups.as_slice() {
            [only] => only.snapshot_index,
            _ => 0,
        };
        self.source_groups = groups;
    }

    /// Checks the structural rules (format §5.6.3 step 6, plus ours for
    /// `source_groups`).
    ///
    /// # Errors
    /// [`ManifestError`] naming the first rule broken.
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_version(u64::from(self.format_version))?;
        if self.wall_time_iso.is_empty() || !rfc3339::is_valid(&self.wall_time_iso) {
            return Err(invalid(format!(
                "wall_time_iso {:?} is not RFC 3339",
                self.wall_time_iso
            )));
        }
        for (name, value) in [
            ("checksum_algorithm", &self.checksum_algorithm),
            ("checksum_format", &self.checksum_format),
            ("encoded_filename_charset", &self.encoded_filename_charset),
            ("s3_meta_suffix", &self.s3_meta_suffix),
            ("s3_collision_strategy", &self.s3_collision_strategy),
        ] {
            if value.is_empty() {
                return Err(invalid(format!("{name} is empty")));
            }
        }
        if self.key_segment_max_bytes == 0 {
            return Err(invalid("key_segment_max_bytes is zero"));
        }
        if self.dynamodb_layout != DYNAMODB_LAYOUT_PER_ITEM
            && self.dynamodb_layout != DYNAMODB_LAYOUT_JSONL
        {
            return Err(invalid(format!(
                "unsupported dynamodb_layout {:?}",
                self.dynamodb_layout
            )));
        }
        match self.phase {
            Phase::SnapshotDecode => {
                if self.live.is_some() {
                    return Err(invalid("phase0-snapshot-decode must not carry \"live\""));
                }
            }
            Phase::LivePinned => {
                if self.source.is_some() {
                    return Err(invalid("phase1-live-pinned must not carry \"source\""));
                }
                match &self.live {
                    None => return Err(invalid("phase1-live-pinned requires \"live\"")),
                    Some(live) if live.read_ts == 0 => {
                        return Err(invalid(
                            "phase1-live-pinned requires a non-zero live.read_ts",
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        self.validate_source_groups()
    }

    fn validate_source_groups(&self) -> Result<(), ManifestError> {
        if self.source_groups.is_empty() {
            return Ok(());
        }
        let mut ids = HashSet::new();
        for group in &self.source_groups {
            if !ids.insert(group.group_id) {
                return Err(invalid(format!(
                    "source_groups lists group {} twice",
                    group.group_id
                )));
            }
            if self.phase == Phase::LivePinned && !group.fsm_path.is_empty() {
                return Err(invalid(
                    "phase1-live-pinned source_groups must not carry fsm_path",
                ));
            }
        }
        let max_ts = self
            .source_groups
            .iter()
            .map(|g| g.last_commit_ts)
            .max()
            .unwrap_or(0);
        if self.last_commit_ts != max_ts {
            return Err(invalid(format!(
                "last_commit_ts {} is not the maximum of source_groups ({max_ts})",
                self.last_commit_ts
            )));
        }
        let expected_index = match self.source_groups.as_slice() {
            [only] => only.snapshot_index,
            _ => 0,
        };
        if self.snapshot_index != expected_index {
            return Err(invalid(format!(
                "snapshot_index {} disagrees with source_groups (expected {expected_index})",
                self.snapshot_index
            )));
        }
        Ok(())
    }

    /// Serialises a valid manifest exactly as the Go writer would, with a
    /// trailing newline.
    ///
    /// # Errors
    /// [`ManifestError`] if the manifest does not validate.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let mut out = json::to_vec(self, Layout::Indented, false)
            .map_err(|err| invalid(format!("cannot serialise: {err}")))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses and validates MANIFEST.json bytes (format §5.6.3).
    ///
    /// # Errors
    /// [`ManifestError::UnsupportedFormatVersion`] for a version this build
    /// does not read; [`ManifestError::Invalid`] for everything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value =
            Value::deserialize(&mut de).map_err(|err| invalid(format!("not JSON: {err}")))?;
        de.end()
            .map_err(|_| invalid("trailing bytes after the manifest JSON object"))?;
        let Value::Object(object) = &value else {
            return Err(invalid("not a JSON object"));
        };
        match object.get("format_version") {
            None => return Err(invalid("format_version missing")),
            Some(Value::Null) => return Err(invalid("format_version is null")),
            Some(Value::Number(number)) => match number.as_u64() {
                Some(version) => check_version(version)?,
                None => {
                    return Err(invalid(format!(
                        "format_version {number} is not an unsigned integer"
                    )));
                }
            },
            Some(other) => return Err(invalid(format!("format_version {other} is not a number"))),
        }
        match object.get("exclusions") {
            Some(Value::Object(flags)) => {
                for name in REQUIRED_EXCLUSIONS {
                    if flags.get(name).is_none_or(Value::is_null) {
                        return Err(invalid(format!("exclusions.{name} missing or null")));
                    }
                }
            }
            Some(_) => return Err(invalid("exclusions is not an object")),
            None => return Err(invalid("exclusions missing")),
        }
        if !matches!(object.get("adapters"), Some(Value::Object(_))) {
            return Err(invalid("adapters missing or not an object"));
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|err| invalid(format!("bad field: {err}")))?;
        manifest.validate()?;
        Ok(manifest)
    }
}

fn check_version(version: u64) -> Result<(), ManifestError> {
    match version {
        0 => Err(ManifestError::UnsupportedFormatVersion {
            found: 0,
            hint: "zero is never valid",
        }),
        v if v > u64::from(FORMAT_VERSION) => Err(ManifestError::UnsupportedFormatVersion {
            found: v,
            hint: "written by a newer producer; upgrade",
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn wall() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_777_477_331_094)
    }

    fn phase0() -> Manifest {
        let mut m = Manifest::new_snapshot_decode(wall(), "/data/fsm-snap/0000000000000064.fsm");
        m.elastickv_version = "dev".into();
        m.cluster_id = "ek-prod-us-east-1".into();
        m.snapshot_index = 64;
        m.last_commit_ts = 4_517_352_099_840_000;
        m.adapters = Adapters {
            dynamodb: Some(DynamoDbScope::default()),
            s3: Some(S3Scope::default()),
            redis: Some(RedisScope::default()),
            sqs: Some(SqsScope::default()),
        };
        m
    }

    fn as_value(m: &Manifest) -> Value {
        serde_json::from_slice(&m.to_bytes().unwrap()).unwrap()
    }

    fn from_value(v: &Value) -> Result<Manifest, ManifestError> {
        Manifest::from_bytes(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn phase0_round_trips_and_matches_the_go_example_bytes() {
        let m = phase0();
        let bytes = m.to_bytes().unwrap();
        let expected = r#"{
  "format_version": 1,
  "phase": "phase0-snapshot-decode",
  "elastickv_version": "dev",
  "cluster_id": "ek-prod-us-east-1",
  "snapshot_index": 64,
  "last_commit_ts": 4517352099840000,
  "wall_time_iso": "2026-04-29T15:42:11.094Z",
  "source": {
    "fsm_path": "/data/fsm-snap/0000000000000064.fsm"
  },
  "adapters": {
    "dynamodb": {},
    "s3": {},
    "redis": {},
    "sqs": {}
  },
  "exclusions": {
    "include_incomplete_uploads": false,
    "include_orphans": false,
    "preserve_sqs_visibility": false,
    "include_sqs_side_records": false
  },
  "checksum_algorithm": "sha256",
  "checksum_format": "sha256sum",
  "encoded_filename_charset": "rfc3986-unreserved-plus-percent",
  "key_segment_max_bytes": 240,
  "s3_meta_suffix": ".elastickv-meta.json",
  "s3_collision_strategy": "leaf-data-suffix",
  "dynamodb_layout": "per-item"
}
"#;
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
    }

    #[test]
    fn phase1_rules() {
        let mut m = Manifest::new_live(wall(), 77);
        m.validate().unwrap();
        m.live = None;
        assert!(matches!(m.validate(), Err(ManifestError::Invalid(_))));
        m.live = Some(Live {
            read_ts: 0,
            pin_token_sha256: String::new(),
        });
        assert!(matches!(m.validate(), Err(ManifestError::Invalid(_))));
        m.live = Some(Live {
            read_ts: 5,
            pin_token_sha256: String::new(),
        });
        m.source = Some(Source {
            fsm_path: "x".into(),
            fsm_crc32c: String::new(),
        });
        assert!(matches!(m.validate(), Err(ManifestError::Invalid(_))));
    }

    #[test]
    fn phase0_must_not_set_live() {
        let mut m = phase0();
        m.live = Some(Live {
            read_ts: 1,
            pin_token_sha256: String::new(),
        });
        assert!(matches!(m.to_bytes(), Err(ManifestError::Invalid(_))));
    }

    #[test]
    fn version_gate() {
        let mut v = as_value(&phase0());
        v["format_version"] = 2.into();
        assert!(matches!(
            from_value(&v),
            Err(ManifestError::UnsupportedFormatVersion { found: 2, .. })
        ));
        // A future major with a changed field type still reports the version.
        v["adapters"] = "changed".into();
        assert!(matches!(
            from_value(&v),
            Err(ManifestError::UnsupportedFormatVersion { found: 2, .. })
        ));
        v["format_version"] = 0.into();
        assert!(matches!(
            from_value(&v),
            Err(ManifestError::UnsupportedFormatVersion { found: 0, .. })
        ));
        v["format_version"] = Value::Null;
        assert!(matches!(from_value(&v), Err(ManifestError::Invalid(_))));
        v.as_object_mut().unwrap().remove("format_version");
        assert!(matches!(from_value(&v), Err(ManifestError::Invalid(_))));
    }

    #[test]
    fn writer_refuses_future_version() {
        let mut m = phase0();
        m.format_version = 2;
        assert!(matches!(
            m.to_bytes(),
            Err(ManifestError::UnsupportedFormatVersion { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let mut v = as_value(&phase0());
        v["future_field"] = serde_json::json!({"x": [1, 2]});
        v["adapters"]["redis"]["future"] = true.into();
        assert_eq!(from_value(&v).unwrap(), phase0());
    }

    #[test]
    fn bad_phase_wall_time_and_layout_are_refused() {
        for (field, value) in [
            ("phase", Value::from("phase9")),
            ("wall_time_iso", Value::from("yesterday")),
            ("wall_time_iso", Value::from("")),
            ("dynamodb_layout", Value::from("csv")),
            ("key_segment_max_bytes", Value::from(0)),
            ("checksum_format", Value::from("")),
        ] {
            let mut v = as_value(&phase0());
            v[field] = value;
            assert!(
                matches!(from_value(&v), Err(ManifestError::Invalid(_))),
                "{field}"
            );
        }
    }

    #[test]
    fn constructor_populates_defaults() {
        let m = Manifest::new_snapshot_decode(wall(), "in.fsm");
        assert_eq!(m.format_version, 1);
        assert_eq!(m.phase, Phase::SnapshotDecode);
        assert_eq!(m.key_segment_max_bytes, 240);
        assert_eq!(m.dynamodb_layout, "per-item");
        assert_eq!(m.checksum_algorithm, "sha256");
        assert_eq!(m.encoded_filename_charset, ENCODED_FILENAME_CHARSET);
        m.validate().unwrap();
        let v = as_value(&m);
        assert!(v["adapters"].is_object() && v["exclusions"].is_object());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = phase0().to_bytes().unwrap();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(
            Manifest::from_bytes(&bytes),
            Err(ManifestError::Invalid(_))
        ));
        let mut bytes = phase0().to_bytes().unwrap();
        bytes.extend_from_slice(b"garbage");
        assert!(matches!(
            Manifest::from_bytes(&bytes),
            Err(ManifestError::Invalid(_))
        ));
        let mut bytes = phase0().to_bytes().unwrap();
        bytes.extend_from_slice(b" \n\t");
        Manifest::from_bytes(&bytes).unwrap();
    }

    #[test]
    fn nil_and_empty_adapters_are_distinct_on_disk() {
        let mut m = phase0();
        m.adapters = Adapters {
            redis: Some(RedisScope::default()),
            ..Adapters::default()
        };
        let v = as_value(&m);
        assert_eq!(v["adapters"], serde_json::json!({"redis": {}}));
        let back = from_value(&v).unwrap();
        assert!(back.adapters.redis.is_some() && back.adapters.s3.is_none());
    }

    #[test]
    fn missing_sections_and_flags_are_refused() {
        for section in ["adapters", "exclusions"] {
            let mut v = as_value(&phase0());
            v.as_object_mut().unwrap().remove(section);
            assert!(
                matches!(from_value(&v), Err(ManifestError::Invalid(_))),
                "{section}"
            );
        }
        for flag in REQUIRED_EXCLUSIONS {
            let mut v = as_value(&phase0());
            v["exclusions"].as_object_mut().unwrap().remove(flag);
            assert!(
                matches!(from_value(&v), Err(ManifestError::Invalid(_))),
                "{flag}"
            );
            v["exclusions"][flag] = Value::Null;
            assert!(
                matches!(from_value(&v), Err(ManifestError::Invalid(_))),
                "{flag} null"
            );
        }
    }

    #[test]
    fn rename_s3_collisions_is_written_only_when_true() {
        let mut m = phase0();
        assert!(
            as_value(&m)["exclusions"]
                .get("rename_s3_collisions")
                .is_none()
        );
        m.exclusions.rename_s3_collisions = true;
        assert_eq!(as_value(&m)["exclusions"]["rename_s3_collisions"], true);
    }

    #[test]
    fn source_groups_record_several_snapshots() {
        let mut m = Manifest::new_snapshot_decode(wall(), "g1.fsm");
        m.set_source_groups(vec![
            SourceGroup {
                group_id: 1,
                fsm_path: "g1.fsm".into(),
                snapshot_index: 10,
                snapshot_term: 2,
                last_commit_ts: 500,
            },
            SourceGroup {
                group_id: 2,
                fsm_path: "g2.fsm".into(),
                snapshot_index: 7,
                snapshot_term: 3,
                last_commit_ts: 900,
            },
        ]);
        assert_eq!(m.last_commit_ts, 900);
        assert_eq!(m.snapshot_index, 0);
        let back = Manifest::from_bytes(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(back, m);
        let mut wrong = m.clone();
        wrong.last_commit_ts = 500;
        assert!(wrong.validate().is_err());
        let mut dup = m.clone();
        dup.source_groups[1].group_id = 1;
        assert!(dup.validate().is_err());
    }

    #[test]
    fn go_readers_see_only_known_fields_plus_ours() {
        let mut m = phase0();
        m.set_source_groups(vec![SourceGroup {
            group_id: 1,
            fsm_path: String::new(),
            snapshot_index: 64,
            snapshot_term: 1,
            last_commit_ts: 4_517_352_099_840_000,
        }]);
        let v = as_value(&m);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.contains(&"source_groups"));
        assert_eq!(v["snapshot_index"], 64);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::from_bytes(&bytes);
        }
    }
}
