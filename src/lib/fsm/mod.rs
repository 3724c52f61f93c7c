//! (fsm) — filled in by its issue.
