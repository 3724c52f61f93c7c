//! Helpers shared by the storage unit tests.

use super::api::{Mutation, WriteIntent};
use super::store::GroupStore;

/// Applies `mutations` as one transaction started at `ts - 1` and
/// committed at `ts`.
pub(crate) fn commit_at(store: &GroupStore, ts: u64, mutations: Vec<Mutation>) {
    store
        .apply(&WriteIntent {
            start_ts: ts - 1,
            commit_ts: ts,
            mutations,
            ..Default::default()
        })
        .unwrap();
}
