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

use std::time::Duration;

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
}
