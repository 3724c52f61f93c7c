//! Lua scripting end to end over the executor: EVAL/EVALSHA/SCRIPT, the
//! Lua↔RESP conversion rules, redis.call vs redis.pcall error handling,
//! script atomicity and VM isolation between scripts.

#[path = "redis_py/harness.rs"]
mod harness;

use bytes::Bytes;
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
            .map(|a| Bytes::from(a.to_string()))
            .collect(),
    };
    exec.execute(&client(), command).await
}

fn bulk(text: &str) -> Reply {
    Reply::bulk(text)
}

fn error_text(reply: &Reply) -> String {
    match reply {
        Reply::Error(text) => text.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_converts_values_both_ways() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    assert_eq!(
        call(exec, &["EVAL", "return 3.9", "0"]).await,
        Reply::Integer(3)
    );
    assert_eq!(call(exec, &["EVAL", "return 'hi'", "0"]).await, bulk("hi"));
    assert_eq!(
        call(exec, &["EVAL", "return true", "0"]).await,
        Reply::Integer(1)
    );
    assert_eq!(
        call(exec, &["EVAL", "return false", "0"]).await,
        Reply::NullBulk
    );
    assert_eq!(
        call(exec, &["EVAL", "return nil", "0"]).await,
        Reply::NullBulk
    );
    assert_eq!(
        call(exec, &["EVAL", "return {1, 'a', {2}, nil, 5}", "0"]).await,
        Reply::Array(vec![
            Reply::Integer(1),
            bulk("a"),
            Reply::Array(vec![Reply::Integer(2)])
        ])
    );
    assert_eq!(
        call(exec, &["EVAL", "return redis.status_reply('FINE')", "0"]).await,
        Reply::simple("FINE")
    );
    assert_eq!(
        call(exec, &["EVAL", "return redis.error_reply('MY bad')", "0"]).await,
        Reply::error("MY bad")
    );
    assert_eq!(
        call(
            exec,
            &[
                "EVAL",
                "return {KEYS[1], KEYS[2], ARGV[1]}",
                "2",
                "k1",
                "k2",
                "a1"
            ]
        )
        .await,
        Reply::Array(vec![bulk("k1"), bulk("k2"), bulk("a1")])
    );
    assert_eq!(
        call(exec, &["EVAL", "return redis.sha1hex('')", "0"]).await,
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_call_reads_and_writes_data() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    let script = "redis.call('SET', KEYS[1], ARGV[1]); \
                  redis.call('INCRBY', KEYS[2], 5); \
                  return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), \
                          redis.call('GET', 'missing'), redis.call('SET', 'x', 1)}";
    assert_eq!(
        call(exec, &["EVAL", script, "2", "s", "n", "val"]).await,
        Reply::Array(vec![
            bulk("val"),
            bulk("5"),
            Reply::NullBulk,
            Reply::simple("OK")
        ])
    );
    assert_eq!(call(exec, &["GET", "x"]).await, bulk("1"));
    assert_eq!(
        call(
            exec,
            &[
                "EVAL",
                "return redis.call('HSET', KEYS[1], 'f', 2.5)",
                "1",
                "h"
            ]
        )
        .await,
        Reply::Integer(1)
    );
    assert_eq!(call(exec, &["HGET", "h", "f"]).await, bulk("2.5"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_call_abort_and_pcall_returns_them() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    call(exec, &["SADD", "set", "m"]).await;
    let raised = call(
        exec,
        &[
            "EVAL",
            "redis.call('SET', 'before', 1); return redis.call('GET', 'set')",
            "0",
        ],
    )
    .await;
    assert!(error_text(&raised).starts_with("WRONGTYPE"), "{raised:?}");
    // The failing script's earlier write is still applied, as in Redis
    // (scripts are atomic, not rolled back).
    assert_eq!(call(exec, &["GET", "before"]).await, bulk("1"));
    let caught = call(
        exec,
        &[
            "EVAL",
            "local r = redis.pcall('GET', 'set'); return r.err",
            "0",
        ],
    )
    .await;
    assert!(
        matches!(&caught, Reply::Bulk(b) if b.starts_with(b"WRONGTYPE")),
        "{caught:?}"
    );
    let unknown = call(exec, &["EVAL", "return redis.call('NOPE')", "0"]).await;
    assert_eq!(
        error_text(&unknown),
        "ERR Unknown Redis command called from script"
    );
    let arity = call(exec, &["EVAL", "return redis.call('GET')", "0"]).await;
    assert_eq!(
        error_text(&arity),
        "ERR Wrong number of args calling Redis command from script"
    );
    let denied = call(
        exec,
        &["EVAL", "return redis.call('EVAL', 'return 1', 0)", "0"],
    )
    .await;
    assert_eq!(
        error_text(&denied),
        "ERR This Redis command is not allowed from script"
    );
    let bad_arg = call(exec, &["EVAL", "return redis.call('GET', {})", "0"]).await;
    assert_eq!(
        error_text(&bad_arg),
        "ERR Lua redis lib command arguments must be strings or integers"
    );
    let runtime = call(exec, &["EVAL", "error('boom')", "0"]).await;
    assert!(error_text(&runtime).contains("boom"), "{runtime:?}");
    let compile = call(exec, &["EVAL", "return (", "0"]).await;
    assert!(
        error_text(&compile).starts_with("ERR Error compiling script"),
        "{compile:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evalsha_and_script_subcommands_share_one_cache() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    let body = "return ARGV[1]";
    let sha = match call(exec, &["SCRIPT", "LOAD", body]).await {
        Reply::Bulk(sha) => String::from_utf8(sha.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sha.len(), 40);
    assert_eq!(call(exec, &["EVALSHA", &sha, "0", "x"]).await, bulk("x"));
    assert_eq!(
        call(exec, &["EVALSHA", &sha.to_uppercase(), "0", "y"]).await,
        bulk("y")
    );
    assert_eq!(
        call(
            exec,
            &[
                "SCRIPT",
                "EXISTS",
                &sha,
                "0000000000000000000000000000000000000000"
            ]
        )
        .await,
        Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)])
    );
    assert_eq!(call(exec, &["SCRIPT", "FLUSH"]).await, Reply::ok());
    assert_eq!(
        error_text(&call(exec, &["EVALSHA", &sha, "0"]).await),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    // EVAL fills the cache too.
    assert_eq!(call(exec, &["EVAL", body, "0", "z"]).await, bulk("z"));
    assert_eq!(call(exec, &["EVALSHA", &sha, "0", "w"]).await, bulk("w"));
    assert!(call(exec, &["SCRIPT", "LOAD", "return ("]).await.is_error());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numkeys_is_validated() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    assert_eq!(
        error_text(&call(exec, &["EVAL", "return 1", "2", "k"]).await),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        error_text(&call(exec, &["EVAL", "return 1", "-1"]).await),
        "ERR Number of keys can't be negative"
    );
    assert_eq!(
        error_text(&call(exec, &["EVAL", "return 1", "x"]).await),
        "ERR value is not an integer or out of range"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_cannot_leak_globals_or_reach_the_host() {
    let server = harness::TestServer::start().await;
    let exec = &server.executor;
    let create = call(exec, &["EVAL", "leak = 1; return 1", "0"]).await;
    assert!(
        error_text(&create).contains("Script attempted to create global variable"),
        "{create:?}"
    );
    assert_eq!(
        call(exec, &["EVAL", "return leak", "0"]).await,
        Reply::NullBulk
    );
    assert_eq!(
        call(
            exec,
            &[
                "EVAL",
                "return {type(os), type(io), type(loadstring), type(dofile)}",
                "0"
            ]
        )
        .await,
        Reply::Array(vec![bulk("nil"), bulk("nil"), bulk("nil"), bulk("nil")])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scripts_are_atomic() {
    let server = harness::TestServer::start().await;
    let exec = server.executor.clone();
    let script = "local v = tonumber(redis.call('GET', KEYS[1]) or '0'); \
                  redis.call('SET', KEYS[1], v + 1); return v + 1";
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let exec = exec.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let reply = call(&exec, &["EVAL", script, "1", "counter"]).await;
                assert!(matches!(reply, Reply::Integer(_)), "{reply:?}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(call(&exec, &["GET", "counter"]).await, bulk("40"));
    server.stop().await;
}
