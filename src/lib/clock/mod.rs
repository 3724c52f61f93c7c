//! Hybrid logical clock (ARCHITECTURE.md §6): 48-bit Unix milliseconds ‖
//! 16-bit logical counter, one clock per process shared by every group.
//!
//! Invariants: `next` is strictly increasing within a process, also under
//! contention and when the wall clock steps back; `observe` never lowers the
//! clock; the physical ceiling only rises.

mod hlc;

pub use hlc::{
    Hlc, HlcError, LOGICAL_BITS, SystemWallClock, Timestamp, WallClock, compose, logical,
    physical_ms,
};
