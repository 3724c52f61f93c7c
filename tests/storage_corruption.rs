//! Bad bytes in the database: garbage keys and values written straight into
//! the column families must surface as errors naming the column family and
//! the key (hex), never as panics or wrong answers.

use elastickv::storage::{
    Cf, CompactOptions, Direction, GroupStore, Mutation, ScanRequest, StorageError, StoreOptions,
    WriteIntent, encode_data_key,
};

fn store() -> (tempfile::TempDir, GroupStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
    let intent = WriteIntent {
        start_ts: 1,
        commit_ts: 2,
        mutations: vec![
            Mutation::Put {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                expire_at: 0,
            },
            Mutation::Put {
                key: b"z".to_vec(),
                value: b"2".to_vec(),
                expire_at: 0,
            },
        ],
        ..WriteIntent::default()
    };
    store.apply(&intent).unwrap();
    (dir, store)
}

fn scan_all(store: &GroupStore, direction: Direction) -> Result<usize, StorageError> {
    let req = ScanRequest {
        start: Vec::new(),
        end: None,
        read_ts: 10,
        limit: 100,
        direction,
        resume: None,
        keys_only: false,
    };
    store.scan(&req).map(|p| p.rows.len())
}

fn assert_names(err: StorageError, cf: &str, key: &[u8]) {
    let text = err.to_string();
    match &err {
        StorageError::Corrupt {
            cf: got,
            key: hex_key,
            ..
        } => {
            assert_eq!(*got, cf, "{text}");
            assert_eq!(hex_key, &hex::encode(key), "{text}");
        }
        other => panic!("expected a corruption error, got {other}"),
    }
    assert!(text.contains(&hex::encode(key)), "{text}");
}

#[test]
fn short_value_is_reported_by_every_read_path() {
    let (_dir, store) = store();
    let phys = encode_data_key(b"m", 3);
    store
        .db()
        .put_cf(store.cf(Cf::Data).unwrap(), &phys, [0x00, 0x01])
        .unwrap();
    assert_names(store.get(b"m", 5).unwrap_err(), "data", &phys);
    assert_names(
        store
            .multi_get(&[b"a".to_vec(), b"m".to_vec()], 5)
            .unwrap_err(),
        "data",
        &phys,
    );
    assert_names(
        scan_all(&store, Direction::Forward).unwrap_err(),
        "data",
        &phys,
    );
    assert_names(
        scan_all(&store, Direction::Reverse).unwrap_err(),
        "data",
        &phys,
    );
    assert_names(
        store.compact(4, &CompactOptions::at(0)).unwrap_err(),
        "data",
        &phys,
    );
    // Keys away from the damage still read fine.
    assert_eq!(store.get(b"a", 5).unwrap().unwrap().value, b"1");
}

#[test]
fn reserved_flags_are_rejected() {
    let (_dir, store) = store();
    let phys = encode_data_key(b"f", 3);
    let mut value = vec![0x40];
    value.extend_from_slice(&[0; 16]);
    store
        .db()
        .put_cf(store.cf(Cf::Data).unwrap(), &phys, &value)
        .unwrap();
    let err = store.get(b"f", 5).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    assert_names(err, "data", &phys);
}

#[test]
fn malformed_keys_are_reported_by_scans_and_compaction() {
    for bad_key in [
        &b"m"[..],
        b"m\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
        b"m\x00q\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00",
    ] {
        let (_dir, store) = store();
        store
            .db()
            .put_cf(store.cf(Cf::Data).unwrap(), bad_key, b"garbage")
            .unwrap();
        assert_names(
            scan_all(&store, Direction::Forward).unwrap_err(),
            "data",
            bad_key,
        );
        assert_names(
            scan_all(&store, Direction::Reverse).unwrap_err(),
            "data",
            bad_key,
        );
        assert_names(
            store.compact(4, &CompactOptions::at(0)).unwrap_err(),
            "data",
            bad_key,
        );
    }
}

#[test]
fn corrupt_meta_records_fail_open_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .db()
            .put_cf(store.cf(Cf::Meta).unwrap(), [0x01, b'c'], [1, 2, 3])
            .unwrap();
    }
    let err = GroupStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert_names(err, "meta", &[0x01, b'c']);

    let dir = tempfile::tempdir().unwrap();
    let pin_key = [0x01, b'p', 0, 0, 0, 0, 0, 0, 0, 9];
    {
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .db()
            .put_cf(store.cf(Cf::Meta).unwrap(), pin_key, [7; 5])
            .unwrap();
    }
    assert_names(
        GroupStore::open(dir.path(), StoreOptions::default()).unwrap_err(),
        "meta",
        &pin_key,
    );
}

#[test]
fn flipped_applied_index_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.raise_applied_index(1234).unwrap();
        let meta = store.cf(Cf::Meta).unwrap();
        let mut rec = store.db().get_cf(meta, [0x01, b'a']).unwrap().unwrap();
        rec[7] ^= 0x01;
        store.db().put_cf(meta, [0x01, b'a'], rec).unwrap();
    }
    let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.applied_index(), 0, "a corrupt index must not be used");
    assert!(matches!(
        store.read_durable_applied_index(),
        Err(StorageError::CorruptAppliedIndex { .. })
    ));
}

#[test]
fn restore_rejects_a_bad_record_and_stays_marked_incomplete() {
    let (dir, store) = store();
    let bad_key = b"not-a-data-key".to_vec();
    let records = vec![
        Ok((Cf::Data, encode_data_key(b"ok", 1), vec![0; 17])),
        Ok((Cf::Data, bad_key.clone(), vec![0; 17])),
    ];
    let err = store.restore_from(records.into_iter()).unwrap_err();
    assert_names(err, "data", &bad_key);
    assert!(store.restore_incomplete());
    drop(store);
    let reopened = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(
        reopened.restore_incomplete(),
        "the marker must survive a restart"
    );
}
