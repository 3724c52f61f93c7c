//! The Redis front end over the Redis model, end to end: an in-process
//! server driven by redis-py (tests/redis_py/functional.py), plus direct
//! checks of active expiry and key-write notifications.

#[path = "redis_py/harness.rs"]
mod harness;

use std::time::Duration;

use elastickv::api::redis::command::lookup;
use elastickv::api::redis::commands::RedisExecutor;
use elastickv::api::redis::{ClientInfo, Command, CommandExecutor, Protocol, Reply};
use elastickv::txn::LocalBackend;

fn client() -> ClientInfo {
    ClientInfo {
        id: 1,
        peer_addr: "127.0.0.1:1".parse().unwrap(),
        local_addr: "127.0.0.1:2".parse().unwrap(),
        name: None,
        protocol: Protocol::Resp2,
        user: "default".to_string(),
    }
}

async fn call(exec: &RedisExecutor<LocalBackend>, argv: &[&str]) -> Reply {
    let spec = lookup(argv[0].as_bytes()).unwrap();
    let command = Command {
        spec,
        subcommand: argv.get(1).and_then(|s| spec.subcommand(s.as_bytes())),
        args: argv[1..]
            .iter()
            .map(|a| bytes::Bytes::from(a.to_string()))
            .collect(),
    };
    exec.execute(&client(), command).await
}

/// Polls (bounded) until `key` no longer exists.
async fn wait_until_expired(exec: &RedisExecutor<LocalBackend>, key: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while call(exec, &["EXISTS", key]).await != Reply::Integer(0) {
        assert!(std::time::Instant::now() < deadline, "{key} never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_functional_suite() {
    let server = harness::TestServer::start().await;
    let out = harness::run_python("functional.py", &[server.port.to_string()]).await;
    assert!(out.contains("ok"), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_expiry_removes_rows_of_expired_collections() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    assert_eq!(
        call(exec, &["HSET", "h", "a", "1", "b", "2"]).await,
        Reply::Integer(2)
    );
    assert_eq!(call(exec, &["PEXPIRE", "h", "30"]).await, Reply::Integer(1));
    assert_eq!(
        call(exec, &["HSET", "keep", "a", "1"]).await,
        Reply::Integer(1)
    );
    wait_until_expired(exec, "h").await;
    let page = exec.expire_page(None, 100).await.unwrap();
    assert_eq!(page.removed, 1);
    assert_eq!(page.resume, None);
    let again = exec.expire_page(None, 100).await.unwrap();
    assert_eq!(again.removed, 0, "nothing left to purge");
    assert_eq!(call(exec, &["HGET", "keep", "a"]).await, Reply::bulk("1"));
    // A new incarnation of the expired key starts empty.
    assert_eq!(
        call(exec, &["HSET", "h", "z", "9"]).await,
        Reply::Integer(1)
    );
    assert_eq!(call(exec, &["HLEN", "h"]).await, Reply::Integer(1));
    server.stop().await;
}

/// Creating a key skips the range delete of its rows only when its META
/// row never had a version; history compaction can drop the META of an
/// expired key and leave its member rows (they carry no TTL), so once
/// anything was compacted the creation range-deletes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_whose_meta_was_compacted_away_do_not_reappear() {
    use elastickv::storage::CompactOptions;
    use elastickv::txn::KvBackend;

    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    assert_eq!(
        call(exec, &["HSET", "h", "a", "1", "b", "2"]).await,
        Reply::Integer(2)
    );
    assert_eq!(call(exec, &["PEXPIRE", "h", "20"]).await, Reply::Integer(1));
    wait_until_expired(exec, "h").await;
    // No active expiry ran: the field rows are still stored. Compacting
    // history up to now drops the expired META and keeps those rows.
    let backend = exec.backend();
    let target = backend.read_ts().await.unwrap();
    let stats = backend
        .group()
        .store()
        .compact(target, &CompactOptions::at(0))
        .unwrap();
    assert!(stats.watermark >= target);
    assert_eq!(
        call(exec, &["HSET", "h", "z", "9"]).await,
        Reply::Integer(1)
    );
    assert_eq!(call(exec, &["HLEN", "h"]).await, Reply::Integer(1));
    assert_eq!(
        call(exec, &["HGETALL", "h"]).await,
        Reply::Map(vec![(Reply::bulk("z"), Reply::bulk("9"))])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_rows_of_an_expired_key_never_reappear() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    call(exec, &["RPUSH", "l", "a", "b", "c"]).await;
    call(exec, &["PEXPIRE", "l", "20"]).await;
    wait_until_expired(exec, "l").await;
    assert_eq!(call(exec, &["RPUSH", "l", "x"]).await, Reply::Integer(1));
    assert_eq!(
        call(exec, &["LRANGE", "l", "0", "-1"]).await,
        Reply::Array(vec![Reply::bulk("x")])
    );
    assert_eq!(call(exec, &["SET", "l", "s"]).await, Reply::ok());
    assert_eq!(call(exec, &["RENAME", "l", "m"]).await, Reply::ok());
    assert_eq!(call(exec, &["TYPE", "m"]).await, Reply::simple("string"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_pop_wakes_on_external_notification() {
    let server = harness::TestServer::start().await;
    let exec = std::sync::Arc::clone(&server.executor);
    let waiter = {
        let exec = std::sync::Arc::clone(&exec);
        tokio::spawn(async move { call(&exec, &["BRPOP", "q", "5"]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(call(&exec, &["LPUSH", "q", "v"]).await, Reply::Integer(1));
    exec.notify_key_written(b"q");
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Reply::Array(vec![Reply::bulk("q"), Reply::bulk("v")]));
    server.stop().await;
}
