//! (snapshot) — filled in by its issue.
