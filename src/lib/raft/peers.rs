//! The durable address book of a group: Raft node id → gRPC address of the
//! node. Kept in `raft_state`, carried in conf-change contexts and snapshot
//! tokens so a node that joins late learns every peer's address.
//!
//! Encoding: JSON object `{"<id>": "<addr>", ...}` (ids as decimal strings),
//! stable under round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::raft::error::RaftError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBook {
    pub peers: BTreeMap<u64, String>,
}

impl AddressBook {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, String)>) -> Self {
        AddressBook {
            peers: pairs.into_iter().collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising a map of integers to strings cannot fail.
        serde_json::to_vec(&self.peers).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RaftError> {
        let peers: BTreeMap<u64, String> = serde_json::from_slice(bytes)
            .map_err(|e| RaftError::Storage(format!("corrupt address book: {e}")))?;
        Ok(AddressBook { peers })
    }

    pub fn get(&self, id: u64) -> Option<&String> {
        self.peers.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(pairs in proptest::collection::btree_map(any::<u64>(), ".{0,40}", 0..8)) {
            let book = AddressBook { peers: pairs };
            prop_assert_eq!(AddressBook::decode(&book.encode()).unwrap(), book);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(AddressBook::decode(b"{not json").is_err());
    }
}
