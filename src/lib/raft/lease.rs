//! The leader read lease of one group.
//!
//! A lease is valid until `start + duration`, where `start` is the monotonic
//! instant at which a round that later confirmed leadership BEGAN (a
//! ReadIndex round, or the proposal of an entry of the current term that
//! then committed). `duration` is the election timeout minus a safety
//! margin, so no other leader can be elected while it is valid (followers
//! that acknowledged the round will not vote before a full election timeout
//! without hearing from us; CheckQuorum makes a cut-off leader step down).
//!
//! Invariants: `invalidate` bumps the generation, and a round started under
//! an older generation never extends the lease (no resurrection after a
//! leadership change or a transfer began); the expiry never moves backwards
//! except to zero on invalidation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Lease {
    duration: Duration,
    expiry: Option<Duration>,
    generation: u64,
}

impl Lease {
    pub fn new(duration: Duration) -> Lease {
        Lease {
            duration,
            expiry: None,
            generation: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Records that a round begun at `start` under `generation` confirmed
    /// leadership.
    pub fn extend(&mut self, start: Duration, generation: u64) {
        if generation != self.generation || self.duration.is_zero() {
            return;
        }
        let until = start + self.duration;
        if self.expiry.is_none_or(|e| until > e) {
            self.expiry = Some(until);
        }
    }

    pub fn invalidate(&mut self) {
        self.expiry = None;
        self.generation += 1;
    }

    pub fn valid(&self, now: Duration) -> bool {
        self.expiry.is_some_and(|e| now < e)
    }

    /// The instant (on the driver's clock) the lease runs out, if held.
    pub fn expiry(&self) -> Option<Duration> {
        self.expiry
    }
}

/// The read lease as callers on other threads see it: the driver publishes
/// the expiry after every round in which it may have changed — and before
/// sending any message of that round, so a leadership transfer (which
/// invalidates the lease before its TimeoutNow leaves) is visible here
/// first. A caller that finds it valid serves a linearizable read from the
/// leader's applied state without a round trip to the driver thread: every
/// acknowledged write was applied on the leader before it was acknowledged,
/// and no other leader can exist before the expiry.
#[derive(Debug)]
pub struct LeaseGate {
    epoch: Instant,
    /// Nanoseconds since `epoch`; 0 = no lease.
    until_nanos: AtomicU64,
    /// The applied index published with it (every write acknowledged so
    /// far is at or below it: acknowledgements follow the publication).
    applied: AtomicU64,
}

impl LeaseGate {
    /// A closed gate on the clock of a driver started at `epoch`.
    pub fn new(epoch: Instant) -> LeaseGate {
        LeaseGate {
            epoch,
            until_nanos: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        }
    }

    /// Publishes the lease expiry (`None`: no lease) and the applied index.
    pub fn publish(&self, until: Option<Duration>, applied: u64) {
        let nanos = until.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.applied.store(applied, Ordering::SeqCst);
        self.until_nanos.store(nanos, Ordering::SeqCst);
    }

    /// The applied index to read at while a published lease has not run
    /// out; `None` outside the lease.
    pub fn read_index(&self) -> Option<u64> {
        let until = self.until_nanos.load(Ordering::SeqCst);
        let applied = self.applied.load(Ordering::SeqCst);
        (until != 0 && (self.epoch.elapsed().as_nanos() as u64) < until).then_some(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn valid_from_round_start_only() {
        let mut l = Lease::new(100 * MS);
        assert!(!l.valid(Duration::ZERO));
        l.extend(10 * MS, l.generation());
        assert!(l.valid(109 * MS));
        assert!(!l.valid(110 * MS));
    }

    #[test]
    fn never_shrinks_and_stale_generation_is_ignored() {
        let mut l = Lease::new(100 * MS);
        let g = l.generation();
        l.extend(50 * MS, g);
        l.extend(10 * MS, g);
        assert!(l.valid(149 * MS));
        l.invalidate();
        assert!(!l.valid(60 * MS));
        l.extend(60 * MS, g);
        assert!(
            !l.valid(61 * MS),
            "a round from before invalidation must not revive the lease"
        );
    }

    #[test]
    fn zero_duration_disables() {
        let mut l = Lease::new(Duration::ZERO);
        l.extend(Duration::ZERO, l.generation());
        assert!(!l.valid(Duration::ZERO));
    }

    #[test]
    fn gate_answers_only_inside_a_published_lease() {
        let epoch = Instant::now();
        let gate = LeaseGate::new(epoch);
        assert_eq!(gate.read_index(), None, "closed until published");
        gate.publish(Some(epoch.elapsed() + Duration::from_secs(60)), 42);
        assert_eq!(gate.read_index(), Some(42));
        gate.publish(Some(Duration::from_nanos(1)), 43);
        assert_eq!(gate.read_index(), None, "an expired lease answers nothing");
        gate.publish(Some(epoch.elapsed() + Duration::from_secs(60)), 44);
        gate.publish(None, 45);
        assert_eq!(gate.read_index(), None, "a withdrawn lease answers nothing");
    }
}
