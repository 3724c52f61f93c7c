//! The public vocabulary of the storage layer: what a write batch says, what a
//! scan returns, which column families exist. Kept apart from the RocksDB
//! code so the layers above depend on the contract, not the engine.

use crate::clock::Timestamp;

/// Column families of one group's RocksDB database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// MVCC versions: physical key = encoded user key ‖ inverted commit ts.
    Data,
    /// Transaction locks (two-phase commit, later issues), keyed by encoded user key.
    Lock,
    /// Group metadata: applied index, last commit ts, watermark, pins, and
    /// the state machine's own records (ownership table, HLC ceiling).
    Meta,
    /// Raft log entries, keyed by u64be index.
    RaftLog,
    /// Raft hard state, conf state and snapshot metadata.
    RaftState,
}

impl Cf {
    pub const ALL: [Cf; 5] = [Cf::Data, Cf::Lock, Cf::Meta, Cf::RaftLog, Cf::RaftState];
    /// The column families that make up the replicated state machine (what a
    /// `.fsm` snapshot carries); the Raft CFs are each replica's own.
    pub const STATE_MACHINE: [Cf; 3] = [Cf::Data, Cf::Lock, Cf::Meta];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Data => "data",
            Cf::Lock => "lock",
            Cf::Meta => "meta",
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
        }
    }

    /// Stable one-byte id used in snapshot files.
    pub fn id(self) -> u8 {
        match self {
            Cf::Data => 1,
            Cf::Lock => 2,
            Cf::Meta => 3,
            Cf::RaftLog => 4,
            Cf::RaftState => 5,
        }
    }

    pub fn from_id(id: u8) -> Option<Cf> {
        Cf::ALL.into_iter().find(|cf| cf.id() == id)
    }
}

/// One change inside an atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Write a new version of `key` at the batch's commit ts. `expire_at` is
    /// an HLC timestamp (0 = never); a version is invisible at any read ts
    /// `>= expire_at`.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        expire_at: Timestamp,
    },
    /// Write a tombstone version of `key` at the batch's commit ts.
    Delete {
        key: Vec<u8>,
    },
    /// Tombstone, at the commit ts, every key in `[start, end)` whose version
    /// visible at the commit ts is live. `end = None` means unbounded.
    DeleteRange {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
    /// Physically remove every version (and lock) of every key in
    /// `[start, end)`. For purges of ranges a group no longer owns; history
    /// readers relied on is gone, so callers must own that decision.
    PurgeRange {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
    /// Write a raw record of the state machine's own in the Meta CF, under
    /// the state-machine namespace (never collides with the store's records).
    MetaPut {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove such a record.
    MetaDelete {
        key: Vec<u8>,
    },
    /// Hold back compaction so that reads at `ts` stay possible until
    /// `deadline_ms` (Unix ms; a dead holder's pin lapses by itself).
    /// Re-pinning the same id replaces it.
    Pin {
        id: u64,
        ts: Timestamp,
        deadline_ms: u64,
    },
    Unpin {
        id: u64,
    },
}

/// An atomic, optionally validated write: everything or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteIntent {
    /// Snapshot timestamp the writer read at; recorded in every version and
    /// used for optimistic validation.
    pub start_ts: Timestamp,
    pub commit_ts: Timestamp,
    /// When true, a key in `read_keys` or in a mutation, or any key in a
    /// `read_ranges` range, that has a version newer than `start_ts` makes
    /// the whole write fail with [`Outcome::Conflict`].
    pub validate: bool,
    pub read_keys: Vec<Vec<u8>>,
    /// `[start, end)` ranges the writer scanned; `end = None` is unbounded.
    pub read_ranges: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub mutations: Vec<Mutation>,
    /// The Raft index of the entry carrying this write; persisted in the same
    /// RocksDB batch. An index at or below the durable applied index makes
    /// the write a no-op ([`Outcome::AlreadyApplied`]).
    pub applied_index: Option<u64>,
    /// How this write relates to a write pipelined just before it.
    pub chain: Chain,
}

/// The rules that let a writer read another write's effects before that
/// write is applied (pipelined write rounds of one node: the next round is
/// executed while the previous one is being replicated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// Commit at exactly `commit_ts` or not at all: a strict write whose
    /// commit ts is not above the store's last commit ts conflicts. A strict
    /// write that conflicts still raises the last commit ts to its own, so
    /// no later commit can ever carry that timestamp: a version at exactly
    /// the timestamp of a strict write was written by it.
    pub strict: bool,
    /// The strict write this one was executed after, and read through.
    pub after: Option<ChainAfter>,
}

/// A chained write's predecessor: the strict write stamped `ts`.
///
/// Validation then requires `guard` (a key the predecessor wrote) to have
/// its newest version at exactly `ts` — proof that the predecessor
/// committed and that nothing overwrote it since — and lets versions at
/// exactly `ts` pass for the writer's other keys (it read those writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAfter {
    pub ts: Timestamp,
    pub guard: Vec<u8>,
}

/// What an atomic write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Validation failed on `key`; no data was written, but the applied
    /// index (if any) was still advanced so the Raft entry counts as applied.
    Conflict {
        key: Vec<u8>,
    },
    /// The entry's index was already durably applied; nothing was written.
    AlreadyApplied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// The visible version of a key the caller named (`get`, `multi_get`).
/// It carries no key: the caller has it, and copying it into every answer
/// cost a multi-get about a twentieth of its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointValue {
    pub value: Vec<u8>,
    pub commit_ts: Timestamp,
    pub start_ts: Timestamp,
    pub expire_at: Timestamp,
}

/// One visible key in a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub commit_ts: Timestamp,
    pub start_ts: Timestamp,
    pub expire_at: Timestamp,
}

/// A page of scan results plus where to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    pub rows: Vec<VersionedValue>,
    /// Present when the page stopped at its limit and more keys may follow:
    /// pass it back as `resume` to get the next page.
    pub resume: Option<Vec<u8>>,
}

/// A scan request over user keys `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub read_ts: Timestamp,
    pub limit: usize,
    pub direction: Direction,
    /// Cursor from a previous page (exclusive): forward resumes after it,
    /// reverse resumes before it.
    pub resume: Option<Vec<u8>>,
    /// Return keys with empty values (cheaper for key-only callers).
    pub keys_only: bool,
}

/// An active compaction pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub id: u64,
    pub ts: Timestamp,
    pub deadline_ms: u64,
}

/// Result of one compaction run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub keys_examined: u64,
    pub versions_removed: u64,
    pub batches: u64,
    /// The watermark the run established.
    pub watermark: Timestamp,
}
