//! SCAN-family cursors: clients need integers, the store resumes from
//! keys, so each server keeps a bounded table from cursor ids to resume
//! positions.
//!
//! Invariants: ids are never reused within a process (a counter, never 0);
//! the table holds at most `capacity` entries and evicts the oldest; an
//! unknown or evicted cursor, or one issued for another command or key,
//! restarts the iteration from the beginning (Redis tolerates restarts:
//! a full iteration still returns every element present throughout).

use std::collections::{HashMap, VecDeque};

/// Entries kept by default.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// What a cursor iterates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CursorKind {
    Keys,
    Hash,
    Set,
    ZSet,
}

#[derive(Debug)]
struct Entry {
    kind: CursorKind,
    key: Vec<u8>,
    position: Vec<u8>,
}

/// Cursor id → resume position.
#[derive(Debug)]
pub struct CursorTable {
    capacity: usize,
    next_id: u64,
    entries: HashMap<u64, Entry>,
    order: VecDeque<u64>,
}

impl CursorTable {
    pub fn new(capacity: usize) -> Self {
        CursorTable {
            capacity: capacity.max(1),
            next_id: 1,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Where cursor `id` resumes (None: from the beginning).
    pub fn resume(&self, id: u64, kind: CursorKind, key: &[u8]) -> Option<Vec<u8>> {
        if id == 0 {
            return None;
        }
        self.entries
            .get(&id)
            .filter(|e| e.kind == kind && e.key == key)
            .map(|e| e.position.clone())
    }

    /// Stores a resume position and returns its new cursor id.
    pub fn store(&mut self, kind: CursorKind, key: &[u8], position: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        self.entries.insert(
            id,
            Entry {
                kind,
                key: key.to_vec(),
                position,
            },
        );
        self.order.push_back(id);
        id
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_resumes_and_evicts_oldest() {
        let mut table = CursorTable::new(2);
        let a = table.store(CursorKind::Keys, b"", b"a".to_vec());
        let b = table.store(CursorKind::Hash, b"h", b"b".to_vec());
        assert_eq!(table.resume(a, CursorKind::Keys, b""), Some(b"a".to_vec()));
        assert_eq!(
            table.resume(b, CursorKind::Hash, b"other"),
            None,
            "other key restarts"
        );
        let c = table.store(CursorKind::Keys, b"", b"c".to_vec());
        assert_eq!(table.len(), 2);
        assert_eq!(table.resume(a, CursorKind::Keys, b""), None, "evicted");
        assert_eq!(table.resume(c, CursorKind::Keys, b""), Some(b"c".to_vec()));
        assert_eq!(table.resume(0, CursorKind::Keys, b""), None);
        assert!(a != 0 && b != a && c != b);
    }
}
