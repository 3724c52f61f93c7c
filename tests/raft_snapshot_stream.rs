//! The receiving side of snapshot streaming over real gRPC: resumable
//! spool (a broken stream resumes at the spooled offset), size cap, offset
//! and checksum checks, and installation into a joining group.

mod raft_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::raft::eraftpb::{ConfState, Message, MessageType, Snapshot, SnapshotMetadata};
use elastickv::raft::peers::AddressBook;
use elastickv::raft::snapfile::{self, SnapshotToken};
use elastickv::raft::transport::pb;
use elastickv::raft::{Bootstrap, NodeConfig, RaftNode};
use protobuf::Message as _;
use raft_support::{SmProbe, TestSm, open_db, test_config};

type Client = pb::raft_transport_client::RaftTransportClient<tonic::transport::Channel>;

fn snapshot_message(index: u64, term: u64, body: &[u8]) -> Message {
    let token = SnapshotToken {
        index,
        term,
        len: body.len() as u64,
        crc: crc32c::crc32c(body),
        peers: AddressBook::from_pairs([(2, "127.0.0.1:1".to_string())]),
    };
    let meta = SnapshotMetadata {
        index,
        term,
        conf_state: protobuf::SingularPtrField::some(ConfState {
            voters: vec![1, 2],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut snap = Snapshot::default();
    snap.set_metadata(meta);
    snap.data = token.encode().into();
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgSnapshot);
    msg.from = 2;
    msg.to = 1;
    msg.term = term;
    msg.set_snapshot(snap);
    msg
}

fn chunk(msg: Option<&Message>, offset: u64, data: &[u8]) -> pb::SnapshotChunk {
    pb::SnapshotChunk {
        group_id: 1,
        from_node: 2,
        from_addr: String::new(),
        message: msg.map(|m| m.write_to_bytes().unwrap()).unwrap_or_default(),
        offset,
        data: data.to_vec(),
    }
}

async fn send(client: &mut Client, chunks: Vec<pb::SnapshotChunk>) -> Result<(), tonic::Status> {
    client
        .send_snapshot(futures::stream::iter(chunks))
        .await
        .map(|_| ())
}

async fn offset(client: &mut Client, index: u64, term: u64) -> u64 {
    client
        .snapshot_offset(pb::SnapshotProbe {
            group_id: 1,
            index,
            term,
        })
        .await
        .unwrap()
        .into_inner()
        .offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_snapshot_stream_resumes_and_installs() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let node = RaftNode::start(
        NodeConfig {
            node_id: 1,
            advertise_addr: addr.clone(),
            token: None,
        },
        listener,
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();
    let group_dir = tmp.path().join("group");
    let mut cfg = test_config(1, 1, &group_dir);
    cfg.max_snapshot_bytes = 4096;
    let probe = Arc::new(Mutex::new(SmProbe::default()));
    let sm = TestSm::open(&tmp.path().join("sm"), true, probe.clone());
    let group = node
        .start_group(
            cfg,
            open_db(&tmp.path().join("db")),
            Box::new(sm),
            Bootstrap::Join,
        )
        .unwrap();
    let mut client = Client::connect(format!("http://{addr}")).await.unwrap();

    // A valid test-state-machine snapshot body.
    let body = serde_json::to_vec(&serde_json::json!({
        "index": 10, "term": 5, "ceiling": 0,
        "map": {"a": "1", "b": "2"},
        "log": [[9, "set a 1"], [10, "set b 2"]],
    }))
    .unwrap();
    let msg = snapshot_message(10, 5, &body);
    let half = body.len() / 2;

    // Too large for the cap: refused before anything is spooled.
    let big = snapshot_message(11, 5, &vec![b'x'; 5000]);
    let err = send(&mut client, vec![chunk(Some(&big), 0, b"x")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);

    // First attempt breaks off after half the file.
    assert_eq!(offset(&mut client, 10, 5).await, 0);
    let err = send(&mut client, vec![chunk(Some(&msg), 0, &body[..half])])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DataLoss, "{err}");
    let spooled = offset(&mut client, 10, 5).await;
    assert_eq!(spooled, half as u64, "spool did not keep the first half");

    // A chunk that does not continue the spool is refused.
    let err = send(&mut client, vec![chunk(Some(&msg), 0, &body[..4])])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // Resume from the spooled offset: the file is verified and installed.
    send(&mut client, vec![chunk(Some(&msg), spooled, &body[half..])])
        .await
        .unwrap();
    let installed = snapfile::snapshot_path(&group_dir, 10, 5);
    assert!(installed.exists());
    assert!(!snapfile::spool_path(&group_dir, 10, 5).exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while group.status().applied_index < 10 {
        assert!(
            Instant::now() < deadline,
            "snapshot not installed: {:?}",
            group.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(probe.lock().unwrap().restores, 1);
    let state = TestSm::durable_state(&tmp.path().join("sm")).unwrap();
    assert_eq!(state.map.get("b").map(String::as_str), Some("2"));
    let st = group.status();
    assert_eq!(st.snapshot_index, 10);
    assert!(
        st.peers
            .iter()
            .any(|p| p.id == 2 && p.address.as_deref() == Some("127.0.0.1:1"))
    );

    // A corrupted stream is detected by the checksum and its spool dropped.
    let msg2 = snapshot_message(12, 5, &body);
    let mut bad = body.clone();
    bad[0] ^= 0xff;
    let err = send(&mut client, vec![chunk(Some(&msg2), 0, &bad)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DataLoss);
    assert_eq!(offset(&mut client, 12, 5).await, 0);
    assert!(!snapfile::snapshot_path(&group_dir, 12, 5).exists());

    node.shutdown().await;
}
