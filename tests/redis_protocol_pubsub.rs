//! Pub/sub over real sockets: RESP2 subscriber mode and its command
//! restrictions, pattern subscriptions, RESP3 push messages, PUBSUB
//! introspection, and disconnection of a subscriber that cannot keep up.

#[path = "support/redis_fake.rs"]
mod redis_fake;

use std::time::{Duration, Instant};

use elastickv::api::redis::{PubSubBroker, RedisConfig};
use redis_fake::{RawClient, TestServer, Wire, bulk, error, simple};

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn resp2_subscribe_publish_and_restrictions() {
    let server = TestServer::start(RedisConfig::default());
    let mut subscriber = RawClient::connect(server.addr);
    let mut publisher = RawClient::connect(server.addr);
    assert_eq!(
        subscriber.call(&["SUBSCRIBE", "news", "sport"]),
        Wire::Array(vec![bulk("subscribe"), bulk("news"), Wire::Integer(1)])
    );
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![bulk("subscribe"), bulk("sport"), Wire::Integer(2)])
    );
    subscriber.send(&[b"PSUBSCRIBE", b"n*"]);
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![bulk("psubscribe"), bulk("n*"), Wire::Integer(3)])
    );
    assert_eq!(
        publisher.call(&["PUBLISH", "news", "hello"]),
        Wire::Integer(2)
    );
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![bulk("message"), bulk("news"), bulk("hello")])
    );
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![
            bulk("pmessage"),
            bulk("n*"),
            bulk("news"),
            bulk("hello")
        ])
    );
    assert_eq!(
        subscriber.call(&["GET", "x"]),
        error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    assert_eq!(
        subscriber.call(&["PING"]),
        Wire::Array(vec![bulk("pong"), bulk("")])
    );
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMSUB", "news", "none"]),
        Wire::Array(vec![
            bulk("news"),
            Wire::Integer(1),
            bulk("none"),
            Wire::Integer(0)
        ])
    );
    assert_eq!(publisher.call(&["PUBSUB", "NUMPAT"]), Wire::Integer(1));
    assert_eq!(
        publisher.call(&["PUBSUB", "CHANNELS"]),
        Wire::Array(vec![bulk("news"), bulk("sport")])
    );
    assert_eq!(
        subscriber.call(&["UNSUBSCRIBE"]),
        Wire::Array(vec![bulk("unsubscribe"), bulk("news"), Wire::Integer(2)])
    );
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![bulk("unsubscribe"), bulk("sport"), Wire::Integer(1)])
    );
    assert_eq!(
        subscriber.call(&["PUNSUBSCRIBE"]),
        Wire::Array(vec![bulk("punsubscribe"), bulk("n*"), Wire::Integer(0)])
    );
    assert_eq!(
        subscriber.call(&["GET", "x"]),
        Wire::Null,
        "normal mode again"
    );
    assert_eq!(
        publisher.call(&["PUBLISH", "news", "gone"]),
        Wire::Integer(0)
    );
}

#[test]
fn resp3_messages_are_pushes_and_all_commands_work() {
    let server = TestServer::start(RedisConfig::default());
    let mut subscriber = RawClient::connect(server.addr);
    let Wire::Map(_) = subscriber.call(&["HELLO", "3"]) else {
        panic!("HELLO 3")
    };
    assert_eq!(
        subscriber.call(&["SUBSCRIBE", "c"]),
        Wire::Push(vec![bulk("subscribe"), bulk("c"), Wire::Integer(1)])
    );
    assert_eq!(subscriber.call(&["SET", "k", "v"]), simple("OK"));
    assert_eq!(subscriber.call(&["PING"]), simple("PONG"));
    let mut publisher = RawClient::connect(server.addr);
    assert_eq!(publisher.call(&["PUBLISH", "c", "m"]), Wire::Integer(1));
    assert_eq!(
        subscriber.read(),
        Wire::Push(vec![bulk("message"), bulk("c"), bulk("m")])
    );
    assert_eq!(subscriber.call(&["GET", "k"]), bulk("v"));
}

#[test]
fn messages_from_the_broker_reach_subscribers() {
    let server = TestServer::start(RedisConfig::default());
    let mut subscriber = RawClient::connect(server.addr);
    subscriber.call(&["SUBSCRIBE", "relay"]);
    let broker = server.broker.clone();
    let receivers =
        futures::executor::block_on(broker.publish("relay".into(), "from-elsewhere".into()));
    assert_eq!(receivers, 1);
    assert_eq!(
        subscriber.read(),
        Wire::Array(vec![bulk("message"), bulk("relay"), bulk("from-elsewhere")])
    );
}

#[test]
fn a_slow_subscriber_is_disconnected() {
    let config = RedisConfig {
        pubsub_output_limit: 256 * 1024,
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    let subscriber = RawClient::connect(server.addr);
    let mut subscriber = subscriber;
    subscriber.call(&["SUBSCRIBE", "firehose"]);
    let mut publisher = RawClient::connect(server.addr);
    let payload = "x".repeat(16 * 1024);
    // The subscriber never reads: socket buffers fill, its backlog passes
    // the limit, and the server drops it. Publishing stays fast throughout.
    let started = Instant::now();
    let mut published = 0;
    loop {
        let Wire::Integer(receivers) = publisher.call(&["PUBLISH", "firehose", &payload]) else {
            panic!()
        };
        published += 1;
        if receivers == 0 {
            break;
        }
        assert!(published < 100_000, "subscriber never dropped");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "subscriber never dropped"
        );
    }
    wait_for("disconnect metric", || {
        server.metric(
            "elastickv_redis_server_disconnects_total",
            Some("pubsub_output_limit"),
        ) >= 1.0
    });
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMSUB", "firehose"]),
        Wire::Array(vec![bulk("firehose"), Wire::Integer(0)])
    );
    // What the subscriber still receives ends with a closed connection.
    let _ = subscriber.read_to_close();
}
