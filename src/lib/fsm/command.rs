//! The typed Raft command and its versioned protobuf encoding.
//!
//! Every entry payload is a `CommandEnvelope` naming its format version. A
//! payload that does not decode, names an unknown version, or carries an
//! invalid field is a [`CommandError`]; the apply loop turns it into a halt
//! that names the entry index (a replica must never skip a committed entry).

use prost::Message;

use super::proto;
use crate::clock::Timestamp;
use crate::storage::{Chain, ChainAfter, Mutation};

/// The command format version this build writes and understands.
pub const COMMAND_VERSION: u32 = 1;

/// A command of one group's state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Unvalidated writes at one (proposed) commit timestamp.
    Raw {
        commit_ts: Timestamp,
        mutations: Vec<Mutation>,
    },
    /// A single-group transaction validated against commits newer than
    /// `start_ts` (optimistic concurrency).
    Txn {
        start_ts: Timestamp,
        commit_ts: Timestamp,
        read_keys: Vec<Vec<u8>>,
        read_ranges: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        mutations: Vec<Mutation>,
        /// Pipelining rules (default: none).
        chain: Chain,
    },
    /// The leader's physical ceiling for the hybrid logical clock.
    HlcLease { ceiling_ms: u64 },
    /// Set or remove a compaction pin.
    Pin {
        id: u64,
        ts: Timestamp,
        deadline_ms: u64,
        remove: bool,
    },
}

/// Why a payload is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command does not decode as a protobuf envelope: {0}")]
    Decode(String),
    #[error(
        "command format version {found} is not supported (this build understands {COMMAND_VERSION})"
    )]
    UnsupportedVersion { found: u32 },
    #[error("command envelope carries no command")]
    Empty,
    #[error("mutation has unknown op {0}")]
    UnknownOp(i32),
    #[error("range mutation {op} is missing its bounds: {detail}")]
    BadRange { op: &'static str, detail: String },
    #[error("apply result does not decode: {0}")]
    BadResult(String),
    #[error("command field {field} is invalid: {detail}")]
    Invalid { field: &'static str, detail: String },
}

impl Command {
    /// Encodes the command as a versioned envelope.
    pub fn encode(&self) -> Vec<u8> {
        self.clone().into_payload()
    }

    /// [`Command::encode`], moving the keys and values into the envelope
    /// instead of copying them (the proposal path).
    pub fn into_payload(self) -> Vec<u8> {
        let command = match self {
            Command::Raw {
                commit_ts,
                mutations,
            } => proto::command_envelope::Command::Raw(proto::RawBatch {
                commit_ts,
                mutations: mutations
                    .into_iter()
                    .filter_map(mutation_to_proto)
                    .collect(),
            }),
            Command::Txn {
                start_ts,
                commit_ts,
                read_keys,
                read_ranges,
                mutations,
                chain,
            } => proto::command_envelope::Command::Txn(proto::OnePhaseTxn {
                strict: chain.strict,
                after_ts: chain.after.as_ref().map_or(0, |a| a.ts),
                after_guard: chain.after.map(|a| a.guard).unwrap_or_default(),
                start_ts,
                commit_ts,
                read_keys,
                read_ranges: read_ranges
                    .into_iter()
                    .map(|(start, end)| proto::KeyRange { start, end })
                    .collect(),
                mutations: mutations
                    .into_iter()
                    .filter_map(mutation_to_proto)
                    .collect(),
            }),
            Command::HlcLease { ceiling_ms } => {
                proto::command_envelope::Command::HlcLease(proto::HlcLease { ceiling_ms })
            }
            Command::Pin {
                id,
                ts,
                deadline_ms,
                remove,
            } => proto::command_envelope::Command::Pin(proto::PinUpdate {
                id,
                ts,
                deadline_ms,
                remove,
            }),
        };
        proto::CommandEnvelope {
            version: COMMAND_VERSION,
            command: Some(command),
        }
        .encode_to_vec()
    }

    /// Decodes and validates a payload.
    pub fn decode(payload: &[u8]) -> Result<Command, CommandError> {
        let envelope = proto::CommandEnvelope::decode(payload)
            .map_err(|e| CommandError::Decode(e.to_string()))?;
        if envelope.version != COMMAND_VERSION {
            return Err(CommandError::UnsupportedVersion {
                found: envelope.version,
            });
        }
        match envelope.command.ok_or(CommandError::Empty)? {
            proto::command_envelope::Command::Raw(raw) => Ok(Command::Raw {
                commit_ts: nonzero_ts("raw.commit_ts", raw.commit_ts)?,
                mutations: mutations_from_proto(raw.mutations)?,
            }),
            proto::command_envelope::Command::Txn(txn) => {
                let commit_ts = nonzero_ts("txn.commit_ts", txn.commit_ts)?;
                if txn.start_ts >= commit_ts {
                    return Err(CommandError::Invalid {
                        field: "txn.start_ts",
                        detail: format!(
                            "start_ts {} is not below commit_ts {commit_ts}",
                            txn.start_ts
                        ),
                    });
                }
                let after = match txn.after_ts {
                    0 => None,
                    ts if ts <= txn.start_ts || ts >= commit_ts || txn.after_guard.is_empty() => {
                        return Err(CommandError::Invalid {
                            field: "txn.after_ts",
                            detail: format!(
                                "predecessor ts {ts} must lie strictly between start_ts {} \
                                 and commit_ts {commit_ts}, with a guard key",
                                txn.start_ts
                            ),
                        });
                    }
                    ts => Some(ChainAfter {
                        ts,
                        guard: txn.after_guard,
                    }),
                };
                Ok(Command::Txn {
                    chain: Chain {
                        strict: txn.strict,
                        after,
                    },
                    start_ts: txn.start_ts,
                    commit_ts,
                    read_keys: txn.read_keys,
                    read_ranges: txn
                        .read_ranges
                        .into_iter()
                        .map(|r| (r.start, r.end))
                        .collect(),
                    mutations: mutations_from_proto(txn.mutations)?,
                })
            }
            proto::command_envelope::Command::HlcLease(lease) => Ok(Command::HlcLease {
                ceiling_ms: lease.ceiling_ms,
            }),
            proto::command_envelope::Command::Pin(pin) => Ok(Command::Pin {
                id: pin.id,
                ts: pin.ts,
                deadline_ms: pin.deadline_ms,
                remove: pin.remove,
            }),
        }
    }

    /// True for commands whose only effect is in memory on every replica
    /// (besides the record of having been applied).
    pub fn is_volatile_only(&self) -> bool {
        matches!(self, Command::HlcLease { .. })
    }
}

fn nonzero_ts(field: &'static str, ts: Timestamp) -> Result<Timestamp, CommandError> {
    if ts == 0 {
        return Err(CommandError::Invalid {
            field,
            detail: "timestamp must not be 0".into(),
        });
    }
    Ok(ts)
}

/// Pins travel in their own command; everything else maps one to one.
fn mutation_to_proto(m: Mutation) -> Option<proto::Mutation> {
    use proto::mutation::Op;
    let (op, key, value, expire_at, end) = match m {
        Mutation::Put {
            key,
            value,
            expire_at,
        } => (Op::Put, key, value, expire_at, None),
        Mutation::Delete { key } => (Op::Delete, key, Vec::new(), 0, None),
        Mutation::DeleteRange { start, end } => (Op::DeleteRange, start, Vec::new(), 0, end),
        Mutation::PurgeRange { start, end } => (Op::PurgeRange, start, Vec::new(), 0, end),
        Mutation::MetaPut { key, value } => (Op::MetaPut, key, value, 0, None),
        Mutation::MetaDelete { key } => (Op::MetaDelete, key, Vec::new(), 0, None),
        Mutation::Pin { .. } | Mutation::Unpin { .. } => return None,
    };
    Some(proto::Mutation {
        op: op as i32,
        key,
        value,
        expire_at,
        end,
    })
}

fn mutations_from_proto(list: Vec<proto::Mutation>) -> Result<Vec<Mutation>, CommandError> {
    use proto::mutation::Op;
    list.into_iter()
        .map(|m| {
            let op = Op::try_from(m.op).map_err(|_| CommandError::UnknownOp(m.op))?;
            Ok(match op {
                Op::Put => Mutation::Put {
                    key: m.key,
                    value: m.value,
                    expire_at: m.expire_at,
                },
                Op::Delete => Mutation::Delete { key: m.key },
                Op::DeleteRange => {
                    check_range("delete_range", &m.key, m.end.as_deref())?;
                    Mutation::DeleteRange {
                        start: m.key,
                        end: m.end,
                    }
                }
                Op::PurgeRange => {
                    check_range("purge_range", &m.key, m.end.as_deref())?;
                    Mutation::PurgeRange {
                        start: m.key,
                        end: m.end,
                    }
                }
                Op::MetaPut => Mutation::MetaPut {
                    key: m.key,
                    value: m.value,
                },
                Op::MetaDelete => Mutation::MetaDelete { key: m.key },
            })
        })
        .collect()
}

fn check_range(op: &'static str, start: &[u8], end: Option<&[u8]>) -> Result<(), CommandError> {
    if let Some(end) = end
        && end <= start
    {
        return Err(CommandError::BadRange {
            op,
            detail: format!(
                "end {} is not after start {}",
                hex::encode(end),
                hex::encode(start)
            ),
        });
    }
    Ok(())
}

/// What applying a command did, as returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Committed { commit_ts: Timestamp },
    Conflict { key: Vec<u8> },
    Refused { reason: String, key: Vec<u8> },
}

impl ApplyOutcome {
    pub fn encode(&self) -> Vec<u8> {
        use proto::apply_result::Result as R;
        let result = match self {
            ApplyOutcome::Committed { commit_ts } => R::Committed(proto::Committed {
                commit_ts: *commit_ts,
            }),
            ApplyOutcome::Conflict { key } => R::Conflict(proto::Conflict { key: key.clone() }),
            ApplyOutcome::Refused { reason, key } => R::Refused(proto::Refused {
                reason: reason.clone(),
                key: key.clone(),
            }),
        };
        proto::ApplyResult {
            result: Some(result),
        }
        .encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<ApplyOutcome, CommandError> {
        use proto::apply_result::Result as R;
        let result = proto::ApplyResult::decode(bytes)
            .map_err(|e| CommandError::BadResult(e.to_string()))?;
        match result.result {
            Some(R::Committed(c)) => Ok(ApplyOutcome::Committed {
                commit_ts: c.commit_ts,
            }),
            Some(R::Conflict(c)) => Ok(ApplyOutcome::Conflict { key: c.key }),
            Some(R::Refused(r)) => Ok(ApplyOutcome::Refused {
                reason: r.reason,
                key: r.key,
            }),
            None => Err(CommandError::BadResult("empty apply result".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..12)
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (arb_bytes(), arb_bytes(), any::<u64>()).prop_map(|(key, value, expire_at)| {
                Mutation::Put {
                    key,
                    value,
                    expire_at,
                }
            }),
            arb_bytes().prop_map(|key| Mutation::Delete { key }),
            arb_bytes().prop_map(|start| Mutation::DeleteRange { start, end: None }),
            (arb_bytes(), arb_bytes()).prop_map(|(key, value)| Mutation::MetaPut { key, value }),
            arb_bytes().prop_map(|key| Mutation::MetaDelete { key }),
        ]
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (1u64.., proptest::collection::vec(arb_mutation(), 0..6)).prop_map(
                |(commit_ts, mutations)| Command::Raw {
                    commit_ts,
                    mutations
                }
            ),
            (
                0u64..1 << 40,
                2u64..1 << 20,
                proptest::collection::vec(arb_bytes(), 0..4),
                proptest::collection::vec((arb_bytes(), proptest::option::of(arb_bytes())), 0..3),
                proptest::collection::vec(arb_mutation(), 0..6),
                any::<bool>(),
                proptest::option::of((any::<u64>(), proptest::collection::vec(any::<u8>(), 1..8))),
            )
                .prop_map(
                    |(start_ts, delta, read_keys, read_ranges, mutations, strict, after)| {
                        Command::Txn {
                            start_ts,
                            commit_ts: start_ts + delta,
                            read_keys,
                            read_ranges,
                            mutations,
                            chain: Chain {
                                strict,
                                after: after.map(|(offset, guard)| ChainAfter {
                                    ts: start_ts + 1 + offset % (delta - 1),
                                    guard,
                                }),
                            },
                        }
                    }
                ),
            any::<u64>().prop_map(|ceiling_ms| Command::HlcLease { ceiling_ms }),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
                |(id, ts, deadline_ms, remove)| Command::Pin {
                    id,
                    ts,
                    deadline_ms,
                    remove
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn commands_round_trip(cmd in arb_command()) {
            let bytes = cmd.encode();
            prop_assert_eq!(Command::decode(&bytes)?, cmd);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Command::decode(&bytes);
            let _ = ApplyOutcome::decode(&bytes);
        }
    }

    #[test]
    fn unknown_version_is_refused() {
        let bytes = proto::CommandEnvelope {
            version: 2,
            command: Some(proto::command_envelope::Command::HlcLease(
                proto::HlcLease { ceiling_ms: 1 },
            )),
        }
        .encode_to_vec();
        assert_eq!(
            Command::decode(&bytes),
            Err(CommandError::UnsupportedVersion { found: 2 })
        );
    }

    #[test]
    fn empty_envelope_and_garbage_are_errors() {
        let empty = proto::CommandEnvelope {
            version: 1,
            command: None,
        }
        .encode_to_vec();
        assert_eq!(Command::decode(&empty), Err(CommandError::Empty));
        assert!(matches!(
            Command::decode(&[0xff, 0xff, 0xff]),
            Err(CommandError::Decode(_))
        ));
    }

    #[test]
    fn txn_with_commit_not_after_start_is_invalid() {
        let cmd = Command::Txn {
            start_ts: 10,
            commit_ts: 10,
            read_keys: vec![],
            read_ranges: vec![],
            mutations: vec![],
            chain: Chain::default(),
        };
        assert!(matches!(
            Command::decode(&cmd.encode()),
            Err(CommandError::Invalid {
                field: "txn.start_ts",
                ..
            })
        ));
    }

    #[test]
    fn txn_chained_outside_its_own_span_or_without_guard_is_invalid() {
        for (ts, guard) in [(10, b"g".to_vec()), (20, b"g".to_vec()), (15, vec![])] {
            let cmd = Command::Txn {
                start_ts: 10,
                commit_ts: 20,
                read_keys: vec![],
                read_ranges: vec![],
                mutations: vec![],
                chain: Chain {
                    strict: true,
                    after: Some(ChainAfter { ts, guard }),
                },
            };
            assert!(
                matches!(
                    Command::decode(&cmd.encode()),
                    Err(CommandError::Invalid {
                        field: "txn.after_ts",
                        ..
                    })
                ),
                "after ts {ts}"
            );
        }
    }

    #[test]
    fn inverted_range_is_invalid() {
        let cmd = Command::Raw {
            commit_ts: 5,
            mutations: vec![Mutation::DeleteRange {
                start: b"b".to_vec(),
                end: Some(b"a".to_vec()),
            }],
        };
        assert!(matches!(
            Command::decode(&cmd.encode()),
            Err(CommandError::BadRange { .. })
        ));
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in [
            ApplyOutcome::Committed { commit_ts: 42 },
            ApplyOutcome::Conflict { key: b"k".to_vec() },
            ApplyOutcome::Refused {
                reason: "not owned".into(),
                key: b"x".to_vec(),
            },
        ] {
            assert_eq!(ApplyOutcome::decode(&outcome.encode()), Ok(outcome));
        }
    }
}
