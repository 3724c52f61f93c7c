//! (raft) — filled in by its issue.
