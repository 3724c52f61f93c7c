//! The logical backup format: a directory tree that any tool can read
//! (`cat`, `jq`, `sha256sum -c`), compatible with the trees the Go tools
//! write and read (reference/backup_format.md §5, our docs/backup-format.md).
//!
//! One idea per file:
//!
//! * [`filename`]  — key bytes ⇄ one path segment (percent, `b64.`, SHA fallback)
//! * [`json`]      — the JSON conventions (Go-compatible bytes) and the binary envelope
//! * [`keymap`]    — `KEYMAP.jsonl`, original bytes of names that cannot be reversed
//! * [`checksums`] — `CHECKSUMS` (sha256sum format): writer and verifier
//! * [`manifest`]  — `MANIFEST.json`: model, version gate, validation
//! * [`rfc3339`]   — the `wall_time_iso` timestamp form
//! * [`tree`]      — staged, atomic tree writer and verify-first tree reader
//! * [`service`]   — the trait every service mapping (Redis now) implements
//! * [`encode`]    — tree → `.fsm` (snapshot-encode): sort, spill, write, self-test
//! * [`redis`]     — Redis records ⇄ `redis/db_<n>/`
//! * [`visible`]   — MVCC version selection (the newest visible version)
//! * [`decode`]    — `.fsm` snapshots → one tree, through service decoders
//!
//! Invariants kept by the whole module: a tree that carries `MANIFEST.json`
//! and `CHECKSUMS` is complete (both are written last, and the tree appears
//! at its final path by one rename); a reader yields no record before the
//! manifest and every checksum verified; input bytes never cause a panic.

pub mod checksums;
pub mod decode;
pub mod encode;
pub mod error;
pub mod filename;
pub mod json;
pub mod keymap;
pub mod manifest;
pub mod redis;
pub mod rfc3339;
pub mod service;
pub mod tree;
pub mod visible;

pub use error::BackupError;
