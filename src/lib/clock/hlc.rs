//! The hybrid logical clock itself.
//!
//! A timestamp is `physical_ms << 16 | logical`. The clock keeps the last
//! timestamp it issued or observed in one atomic word and advances it with a
//! compare-and-swap loop, so concurrent callers never receive the same value
//! and a wall clock that steps backwards only makes the logical part count up.
//!
//! The *physical ceiling* is a Raft-replicated promise: a leader only issues
//! timestamps whose physical part is at most the ceiling it has replicated,
//! and a new leader (which has applied that ceiling) calls `take_over` to
//! start above it. Fenced allocation (`next_fenced`) refuses to go past the
//! ceiling, so a leader that cannot renew its lease stops issuing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// An HLC timestamp: 48-bit Unix milliseconds ‖ 16-bit logical counter.
pub type Timestamp = u64;

/// Bits of the logical counter.
pub const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;
/// Largest physical millisecond value that fits in 48 bits.
const MAX_PHYSICAL_MS: u64 = (1 << 48) - 1;

/// Errors of fenced allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    /// The wall clock has reached the replicated ceiling (or the ceiling's
    /// logical window is used up): the leader must renew its lease first.
    #[error("hlc physical ceiling {ceiling_ms} ms reached; a new lease must be replicated first")]
    CeilingExpired { ceiling_ms: u64 },
    /// The physical part would not fit in 48 bits.
    #[error("hlc physical time overflow")]
    Overflow,
}

/// Where the clock reads wall time from; tests substitute a controllable one.
pub trait WallClock: Send + Sync {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The operating system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The per-process hybrid logical clock.
pub struct Hlc<W: WallClock = SystemWallClock> {
    last: AtomicU64,
    ceiling_ms: AtomicU64,
    wall: W,
}

impl Default for Hlc<SystemWallClock> {
    fn default() -> Self {
        Self::new(SystemWallClock)
    }
}

impl<W: WallClock> std::fmt::Debug for Hlc<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hlc")
            .field("last", &self.current())
            .field("ceiling_ms", &self.ceiling_ms())
            .finish()
    }
}

/// Builds a timestamp from its parts.
pub fn compose(physical_ms: u64, logical: u64) -> Timestamp {
    (physical_ms << LOGICAL_BITS) | (logical & LOGICAL_MASK)
}

/// The physical (millisecond) part of a timestamp.
pub fn physical_ms(ts: Timestamp) -> u64 {
    ts >> LOGICAL_BITS
}

/// The logical part of a timestamp.
pub fn logical(ts: Timestamp) -> u64 {
    ts & LOGICAL_MASK
}

impl<W: WallClock> Hlc<W> {
    pub fn new(wall: W) -> Self {
        Self {
            last: AtomicU64::new(0),
            ceiling_ms: AtomicU64::new(0),
            wall,
        }
    }

    /// The last timestamp issued or observed, without advancing.
    pub fn current(&self) -> Timestamp {
        self.last.load(Ordering::Acquire)
    }

    /// A timestamp for "now" at logical 0 that does not advance the clock
    /// (for TTL arithmetic and diagnostics).
    pub fn wall_now(&self) -> Timestamp {
        compose(self.wall.now_ms().min(MAX_PHYSICAL_MS), 0)
    }

    /// The replicated physical ceiling in ms (0 = none yet).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling_ms.load(Ordering::Acquire)
    }

    /// Raises the physical ceiling; lower values are ignored.
    pub fn set_ceiling_ms(&self, ceiling_ms: u64) {
        self.ceiling_ms.fetch_max(ceiling_ms, Ordering::AcqRel);
    }

    /// Raises the clock to at least `ts` (never lowers it).
    pub fn observe(&self, ts: Timestamp) {
        self.last.fetch_max(ts, Ordering::AcqRel);
    }

    /// The next timestamp, strictly greater than every timestamp issued or
    /// observed before; never fails. For identifiers and diagnostics only:
    /// persisted timestamps use [`Hlc::next_fenced`].
    pub fn next(&self) -> Timestamp {
        // Unfenced allocation cannot fail except on 48-bit overflow, which a
        // real clock cannot reach; saturate instead of failing.
        self.allocate(1, false).unwrap_or(u64::MAX)
    }

    /// The next timestamp, refusing to exceed the replicated physical
    /// ceiling. While the ceiling lies in the future its value is used as
    /// the physical part, so a successor leader (which starts at or above the
    /// ceiling) can never issue a timestamp this leader might have issued.
    pub fn next_fenced(&self) -> Result<Timestamp, HlcError> {
        self.allocate(1, true)
    }

    /// Reserves `n` consecutive fenced timestamps and returns the first.
    pub fn next_batch_fenced(&self, n: u64) -> Result<Timestamp, HlcError> {
        self.allocate(n.clamp(1, 1 << LOGICAL_BITS), true)
    }

    fn physical_now(&self, fence: bool) -> Result<u64, HlcError> {
        let now = self.wall.now_ms();
        let ceiling = self.ceiling_ms();
        if ceiling == 0 {
            return Ok(now);
        }
        if fence && now >= ceiling {
            return Err(HlcError::CeilingExpired {
                ceiling_ms: ceiling,
            });
        }
        Ok(now)
    }

    /// Called by a node that has just become leader (after applying every
    /// ceiling its predecessor replicated): its next timestamp sorts above
    /// everything the previous leader could have issued under that ceiling.
    /// Steady-state timestamps follow the wall clock; only a takeover can
    /// move the clock ahead of it, by at most one lease window.
    pub fn take_over(&self) {
        let ceiling = self.ceiling_ms();
        if ceiling > 0 {
            self.observe(compose(ceiling, LOGICAL_MASK));
        }
    }

    fn allocate(&self, n: u64, fence: bool) -> Result<Timestamp, HlcError> {
        let mut prev = self.last.load(Ordering::Acquire);
        loop {
            let prev_wall = physical_ms(prev);
            let prev_logical = logical(prev);
            let mut wall = self.physical_now(fence)?;
            let mut first_logical = 0;
            if wall <= prev_wall {
                wall = prev_wall;
                first_logical = prev_logical + 1;
            }
            if first_logical + n - 1 > LOGICAL_MASK {
                wall += 1;
                first_logical = 0;
            }
            if wall > MAX_PHYSICAL_MS {
                return Err(HlcError::Overflow);
            }
            let ceiling = self.ceiling_ms();
            if fence && ceiling > 0 && wall > ceiling {
                return Err(HlcError::CeilingExpired {
                    ceiling_ms: ceiling,
                });
            }
            let first = compose(wall, first_logical);
            let last = first + (n - 1);
            match self
                .last
                .compare_exchange_weak(prev, last, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(first),
                Err(actual) => prev = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// A wall clock a test moves by hand, also backwards.
    #[derive(Default)]
    struct ManualClock(AtomicU64);

    impl WallClock for Arc<ManualClock> {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn manual(start: u64) -> (Arc<ManualClock>, Hlc<Arc<ManualClock>>) {
        let clock = Arc::new(ManualClock(AtomicU64::new(start)));
        let hlc = Hlc::new(clock.clone());
        (clock, hlc)
    }

    #[test]
    fn layout_is_ms_then_logical() {
        let ts = compose(1_700_000_000_000, 7);
        assert_eq!(physical_ms(ts), 1_700_000_000_000);
        assert_eq!(logical(ts), 7);
    }

    #[test]
    fn next_tracks_wall_clock_and_counts_within_a_millisecond() {
        let (_clock, hlc) = manual(1_000);
        assert_eq!(hlc.next(), compose(1_000, 0));
        assert_eq!(hlc.next(), compose(1_000, 1));
        assert_eq!(hlc.next(), compose(1_000, 2));
    }

    #[test]
    fn wall_clock_stepping_back_keeps_timestamps_increasing() {
        let (clock, hlc) = manual(5_000);
        let a = hlc.next();
        clock.0.store(4_000, Ordering::SeqCst);
        let b = hlc.next();
        assert!(b > a);
        assert_eq!(physical_ms(b), 5_000);
    }

    #[test]
    fn logical_overflow_carries_into_physical() {
        let (_clock, hlc) = manual(10);
        hlc.observe(compose(10, LOGICAL_MASK));
        let ts = hlc.next();
        assert_eq!(ts, compose(11, 0));
    }

    #[test]
    fn observe_never_lowers() {
        let (_clock, hlc) = manual(10);
        hlc.observe(compose(50, 3));
        hlc.observe(compose(20, 0));
        assert_eq!(hlc.current(), compose(50, 3));
        assert!(hlc.next() > compose(50, 3));
    }

    #[test]
    fn fenced_allocation_follows_wall_clock_and_fails_past_ceiling() {
        let (clock, hlc) = manual(1_000);
        // Before any ceiling, fencing does not apply.
        assert!(hlc.next_fenced().is_ok());
        hlc.set_ceiling_ms(11_000);
        let ts = hlc.next_fenced().expect("inside the lease");
        assert_eq!(physical_ms(ts), 1_000, "steady state tracks the wall clock");
        clock.0.store(11_000, Ordering::SeqCst);
        assert_eq!(
            hlc.next_fenced(),
            Err(HlcError::CeilingExpired { ceiling_ms: 11_000 })
        );
        // Unfenced allocation still works for diagnostics.
        assert!(hlc.next() > ts);
        // Renewal lifts the fence.
        hlc.set_ceiling_ms(21_000);
        assert!(hlc.next_fenced().is_ok());
    }

    #[test]
    fn ceiling_only_rises() {
        let (_clock, hlc) = manual(1);
        hlc.set_ceiling_ms(100);
        hlc.set_ceiling_ms(50);
        assert_eq!(hlc.ceiling_ms(), 100);
    }

    #[test]
    fn batch_reserves_consecutive_range() {
        let (_clock, hlc) = manual(100);
        let first = hlc.next_batch_fenced(10).expect("no ceiling");
        assert_eq!(hlc.current(), first + 9);
        assert!(hlc.next() > first + 9);
    }

    #[test]
    fn successor_leader_sorts_above_predecessor_window() {
        // The old leader issues timestamps under ceiling C; a new leader that
        // applied C (and a wall clock that lags behind) still starts above.
        let (_old_clock, old) = manual(1_000);
        old.set_ceiling_ms(11_000);
        let mut issued = Vec::new();
        for _ in 0..1000 {
            issued.push(old.next_fenced().expect("in lease"));
        }
        let (_new_clock, new) = manual(900);
        new.set_ceiling_ms(11_000);
        new.take_over();
        new.set_ceiling_ms(21_000);
        let first = new.next_fenced().expect("in lease");
        assert!(issued.iter().all(|ts| *ts < first));
    }

    #[test]
    fn concurrent_callers_get_unique_increasing_values() {
        let hlc = Arc::new(Hlc::default());
        let mut handles = Vec::new();
        for _ in 0..4 {
            let hlc = hlc.clone();
            handles.push(std::thread::spawn(move || {
                let mut out = Vec::with_capacity(20_000);
                let mut last = 0;
                for _ in 0..20_000 {
                    let ts = hlc.next();
                    assert!(ts > last, "per-thread order must be increasing");
                    last = ts;
                    out.push(ts);
                }
                out
            }));
        }
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no timestamp handed out twice");
    }

    proptest! {
        /// Whatever the wall clock does and whatever is observed, every
        /// issued timestamp exceeds everything issued or observed before.
        #[test]
        fn strictly_increasing_under_arbitrary_clock_and_observations(
            steps in proptest::collection::vec((0u64..3, 0u64..100_000, 0u64..200_000), 1..300)
        ) {
            let (clock, hlc) = manual(50_000);
            let mut high = 0u64;
            for (kind, wall, observed) in steps {
                match kind {
                    0 => clock.0.store(wall, Ordering::SeqCst),
                    1 => {
                        let ts = compose(observed, observed % 7);
                        hlc.observe(ts);
                        high = high.max(ts);
                    }
                    _ => {
                        let ts = hlc.next();
                        prop_assert!(ts > high);
                        high = ts;
                    }
                }
            }
        }
    }
}
