//! (backup) — filled in by its issue.
