//! Wire-level tests of the Redis front end over real sockets: inline and
//! multibulk requests, pipelining, protocol errors and limits, large bulks,
//! HELLO/RESP3 shapes, AUTH and MULTI/EXEC flows, and the exact error words
//! compared byte for byte with a real `redis-server`.

#[path = "support/redis_fake.rs"]
mod redis_fake;

use std::io::Write;
use std::time::{Duration, Instant};

use elastickv::api::redis::RedisConfig;
use redis_fake::{RawClient, RealRedis, TestServer, Wire, bulk, error, simple};

fn server() -> TestServer {
    TestServer::start(RedisConfig::default())
}

#[test]
fn inline_commands_with_quoting() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    client.send_raw(
        b"SET greeting \"hello \\x41 world\"\r\nGET greeting\r\nPING\nECHO 'it\\'s'\r\n\r\n",
    );
    assert_eq!(client.read(), simple("OK"));
    assert_eq!(client.read(), bulk("hello A world"));
    assert_eq!(client.read(), simple("PONG"));
    assert_eq!(client.read(), bulk("it's"));
    client.send_raw(b"SET a \"unterminated\r\n");
    assert_eq!(
        client.read(),
        error("ERR Protocol error: unbalanced quotes in request")
    );
    assert!(
        client.read_to_close().is_empty(),
        "connection closes after a protocol error"
    );
}

#[test]
fn ten_thousand_pipelined_commands() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let key = format!("key:{i}");
        let value = format!("value:{i}");
        batch.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
        batch.extend_from_slice(
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
        );
    }
    client.send_raw(&batch);
    for i in 0..10_000 {
        assert_eq!(client.read(), simple("OK"));
        assert_eq!(client.read(), bulk(&format!("value:{i}")));
    }
    assert_eq!(client.call(&["DBSIZE"]), Wire::Integer(10_000));
    assert!(server.metric("elastickv_redis_commands_total", Some("set")) >= 10_000.0);
}

#[test]
fn oversized_bulk_length_is_a_protocol_error() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    client.send_raw(format!("*2\r\n$3\r\nGET\r\n${}\r\n", 600 * 1024 * 1024).as_bytes());
    assert_eq!(
        client.read(),
        error("ERR Protocol error: invalid bulk length")
    );
    assert!(client.read_to_close().is_empty());
    assert_eq!(
        server.metric(
            "elastickv_redis_server_disconnects_total",
            Some("protocol_error")
        ),
        1.0
    );
}

#[test]
fn a_64_mib_value_round_trips() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    let value: Vec<u8> = (0..64 * 1024 * 1024)
        .map(|i: usize| (i % 251) as u8)
        .collect();
    client.send(&[b"SET", b"big", &value]);
    assert_eq!(client.read(), simple("OK"));
    client.send(&[b"GET", b"big"]);
    assert_eq!(client.read(), Wire::Bulk(value));
}

#[test]
fn query_buffer_limit_disconnects() {
    let config = RedisConfig {
        query_buffer_limit: 1024 * 1024,
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    let mut client = RawClient::connect(server.addr);
    client.send_raw(format!("*2\r\n$3\r\nGET\r\n${}\r\n", 4 * 1024 * 1024).as_bytes());
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    for _ in 0..64 {
        if client.writer_mut().write_all(&chunk).is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        assert!(client.read_to_close().is_empty());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric(
        "elastickv_redis_server_disconnects_total",
        Some("query_buffer_limit"),
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "query buffer limit not enforced");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hello_3_switches_to_resp3() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    let Wire::Map(fields) = client.call(&["HELLO", "3", "SETNAME", "tester"]) else {
        panic!("HELLO 3 must answer a map");
    };
    let keys: Vec<Wire> = fields.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(
        keys,
        [
            "server", "version", "proto", "id", "mode", "role", "modules"
        ]
        .map(bulk)
        .to_vec()
    );
    assert_eq!(fields[0].1, bulk("redis"));
    assert_eq!(fields[2].1, Wire::Integer(3));
    assert_eq!(fields[4].1, bulk("standalone"));
    assert_eq!(fields[6].1, Wire::Array(vec![]));
    assert_eq!(client.call(&["GET", "missing"]), Wire::Null);
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), bulk("tester"));
    let Wire::Verbatim(format, text) = client.call(&["CLIENT", "INFO"]) else {
        panic!("CLIENT INFO is verbatim in RESP3")
    };
    assert_eq!(format, "txt");
    assert!(String::from_utf8(text).unwrap().contains(" name=tester "));
    let Wire::Array(flat) = client.call(&["HELLO", "2"]) else {
        panic!("HELLO 2 answers a flat array")
    };
    assert_eq!(flat.len(), 14);
    assert_eq!(flat[5], Wire::Integer(2));
}

#[test]
fn auth_flows_and_noauth_gating() {
    let config = RedisConfig {
        password: Some("s3cret".into()),
        user: Some("app".into()),
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    let mut client = RawClient::connect(server.addr);
    assert_eq!(
        client.call(&["GET", "k"]),
        error("NOAUTH Authentication required.")
    );
    assert_eq!(
        client.call(&["HELLO", "3"]),
        error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
        )
    );
    assert_eq!(
        client.call(&["AUTH", "wrong"]),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        client.call(&["AUTH", "nobody", "s3cret"]),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(client.call(&["AUTH", "s3cret"]), simple("OK"));
    assert_eq!(client.call(&["SET", "k", "v"]), simple("OK"));
    assert_eq!(client.call(&["RESET"]), simple("RESET"));
    assert_eq!(
        client.call(&["GET", "k"]),
        error("NOAUTH Authentication required.")
    );
    let Wire::Map(_) = client.call(&["HELLO", "3", "AUTH", "app", "s3cret"]) else {
        panic!("HELLO AUTH authenticates")
    };
    assert_eq!(client.call(&["GET", "k"]), bulk("v"));

    // Before authentication, large requests are refused like Redis does.
    let mut stranger = RawClient::connect(server.addr);
    stranger.send_raw(b"*20\r\n");
    assert_eq!(
        stranger.read(),
        error("ERR Protocol error: unauthenticated multibulk length")
    );
}

#[test]
fn multi_exec_queueing_and_watch() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    assert_eq!(client.call(&["EXEC"]), error("ERR EXEC without MULTI"));
    assert_eq!(client.call(&["MULTI"]), simple("OK"));
    assert_eq!(client.call(&["SET", "counter", "1"]), simple("QUEUED"));
    assert_eq!(client.call(&["INCR", "counter"]), simple("QUEUED"));
    assert_eq!(client.call(&["PING"]), simple("QUEUED"));
    assert_eq!(
        client.call(&["MULTI"]),
        error("ERR MULTI calls can not be nested")
    );
    assert_eq!(
        client.call(&["EXEC"]),
        Wire::Array(vec![simple("OK"), Wire::Integer(2), simple("PONG")])
    );

    assert_eq!(client.call(&["MULTI"]), simple("OK"));
    assert_eq!(
        client.call(&["GET"]),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        client.call(&["EXEC"]),
        error("EXECABORT Transaction discarded because of previous errors.")
    );

    let mut other = RawClient::connect(server.addr);
    assert_eq!(client.call(&["WATCH", "counter"]), simple("OK"));
    assert_eq!(other.call(&["SET", "counter", "10"]), simple("OK"));
    assert_eq!(client.call(&["MULTI"]), simple("OK"));
    assert_eq!(
        client.call(&["WATCH", "x"]),
        error("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(client.call(&["INCR", "counter"]), simple("QUEUED"));
    assert_eq!(
        client.call(&["EXEC"]),
        Wire::Null,
        "a changed watched key aborts EXEC"
    );
    assert_eq!(client.call(&["WATCH", "counter"]), simple("OK"));
    assert_eq!(client.call(&["MULTI"]), simple("OK"));
    assert_eq!(client.call(&["INCR", "counter"]), simple("QUEUED"));
    assert_eq!(client.call(&["EXEC"]), Wire::Array(vec![Wire::Integer(11)]));
    assert_eq!(
        client.call(&["DISCARD"]),
        error("ERR DISCARD without MULTI")
    );
}

#[test]
fn client_commands() {
    let server = server();
    let mut client = RawClient::connect(server.addr);
    let Wire::Integer(id) = client.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), Wire::Null);
    assert_eq!(
        client.call(&["CLIENT", "SETNAME", "a b"]),
        error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(client.call(&["CLIENT", "SETNAME", "worker"]), simple("OK"));
    assert_eq!(
        client.call(&["CLIENT", "SETINFO", "LIB-NAME", "raw"]),
        simple("OK")
    );
    assert_eq!(client.call(&["CLIENT", "NO-EVICT", "on"]), simple("OK"));
    let Wire::Bulk(list) = client.call(&["CLIENT", "LIST"]) else {
        panic!()
    };
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains(&format!("id={id} "))
            && list.contains("name=worker")
            && list.contains("lib-name=raw"),
        "{list}"
    );
    let mut victim = RawClient::connect(server.addr);
    let Wire::Integer(victim_id) = victim.call(&["CLIENT", "ID"]) else {
        panic!()
    };
    assert_eq!(
        client.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]),
        Wire::Integer(1)
    );
    assert!(victim.read_to_close().is_empty());
    assert_eq!(
        client.call(&["CLIENT", "KILL", "ID", &id.to_string(), "SKIPME", "no"]),
        Wire::Integer(1)
    );
    assert!(client.read_to_close().is_empty());
}

#[test]
fn idle_clients_are_closed() {
    let config = RedisConfig {
        idle_timeout: Some(Duration::from_millis(200)),
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    let mut client = RawClient::connect(server.addr);
    assert_eq!(client.call(&["PING"]), simple("PONG"));
    let started = Instant::now();
    assert!(client.read_to_close().is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn max_clients_refuses_extra_connections() {
    let config = RedisConfig {
        max_clients: 1,
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    let mut first = RawClient::connect(server.addr);
    assert_eq!(first.call(&["PING"]), simple("PONG"));
    let mut second = RawClient::connect(server.addr);
    assert_eq!(second.read(), error("ERR max number of clients reached"));
}

/// Sends the same raw requests to a real redis-server and to the front end
/// and requires byte-identical replies (for error wording and shapes).
#[test]
fn error_words_match_real_redis() {
    let real = RealRedis::start(&[]);
    let ours = server();
    let requests: &[&[u8]] = &[
        b"NOSUCHCMD a b\r\n",
        b"nosuch\r\n",
        b"GET\r\n",
        b"GET a b\r\n",
        b"CLIENT\r\n",
        b"CLIENT foo\r\n",
        b"CLIENT SETNAME\r\n",
        b"CLIENT SETNAME \"a b\"\r\n",
        b"CLIENT NO-EVICT maybe\r\n",
        b"CLIENT KILL 1.2.3.4:5\r\n",
        b"CLIENT KILL foo bar\r\n",
        b"SELECT x\r\n",
        b"SELECT 0\r\n",
        b"SELECT 99999\r\n",
        b"AUTH x\r\n",
        b"AUTH a b\r\n",
        b"HELLO 4\r\n",
        b"HELLO x\r\n",
        b"HELLO 3 foo\r\n",
        b"HELLO 3 AUTH default\r\n",
        b"EXEC\r\n",
        b"DISCARD\r\n",
        b"PING a b\r\n",
        b"PING hi\r\n",
        b"ECHO\r\n",
        b"MULTI\r\n",
        b"MULTI\r\n",
        b"WATCH x\r\n",
        b"GET\r\n",
        b"EXEC\r\n",
        b"PUBSUB NUMSUB a b\r\n",
        b"PUBSUB NUMPAT\r\n",
        b"PUBSUB foo\r\n",
        b"PUBLISH nobody hello\r\n",
        b"UNSUBSCRIBE\r\n",
        b"SUBSCRIBE a\r\n",
        b"GET x\r\n",
        b"PING\r\n",
        b"PSUBSCRIBE p*\r\n",
        b"UNSUBSCRIBE\r\n",
        b"PUNSUBSCRIBE\r\n",
        b"COMMAND INFO nosuch\r\n",
        b"COMMAND GETKEYS SET k v\r\n",
        b"COMMAND GETKEYS PING\r\n",
        b"*1\r\n$1\r\n",
    ];
    let mut real_client = RawClient::connect(real.addr);
    let mut our_client = RawClient::connect(ours.addr);
    for request in requests {
        real_client.send_raw(request);
        our_client.send_raw(request);
        if request.starts_with(b"*1") {
            continue;
        }
        let expected = real_client.read();
        let actual = our_client.read();
        assert_eq!(
            actual,
            expected,
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }
    for request in [
        &b"*1\r\n$x\r\n"[..],
        b"*x\r\n",
        b"*1\r\nfoo\r\n",
        b"*1\r\n$-5\r\n",
    ] {
        let mut real_client = RawClient::connect(real.addr);
        let mut our_client = RawClient::connect(ours.addr);
        real_client.send_raw(request);
        our_client.send_raw(request);
        assert_eq!(
            our_client.read(),
            real_client.read(),
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }
}
