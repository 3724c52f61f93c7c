//! (routing) — filled in by its issue.
