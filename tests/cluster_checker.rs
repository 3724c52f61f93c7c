//! Runs the linearizability checker's own tests (they live beside the
//! checker in `support/linearizability.rs`), so the judge is judged before
//! any cluster test relies on it.

mod support;
