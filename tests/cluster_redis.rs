//! Three real nodes serving Redis: writes through one node, reads through
//! another, the leader SIGKILLed mid-stream. No acknowledged write may be
//! lost and no read may be stale (older than a write acknowledged before the
//! read started).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::cluster::Cluster;

/// A minimal blocking RESP2 client: enough for SET/GET of integers.
struct Resp {
    reader: BufReader<TcpStream>,
}

#[derive(Debug, PartialEq)]
enum Value {
    Ok(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Value>),
}

impl Resp {
    fn connect(addr: SocketAddr) -> std::io::Result<Resp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            reader: BufReader::new(stream),
        })
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&req)
            .map_err(|e| format!("write: {e}"))?;
        self.read_value()
    }

    fn read_value(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let line = line.trim_end();
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Value::Ok(rest.to_string())),
            "-" => Err(rest.to_string()),
            ":" => rest.parse().map(Value::Int).map_err(|e| e.to_string()),
            "$" => {
                let len: i64 = rest
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string())?;
                if len < 0 {
                    return Ok(Value::Bulk(None));
                }
                let mut buf = vec![0; len as usize + 2];
                self.reader
                    .read_exact(&mut buf)
                    .map_err(|e| format!("read: {e}"))?;
                buf.truncate(len as usize);
                Ok(Value::Bulk(Some(buf)))
            }
            "*" => {
                let len: i64 = rest
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string())?;
                (0..len.max(0))
                    .map(|_| self.read_value())
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            other => Err(format!("unexpected reply type {other:?} in {line:?}")),
        }
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_writes_survive_leader_kill_and_reads_are_never_stale() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(1).await;
    let redis: BTreeMap<u64, SocketAddr> = cluster
        .ids()
        .into_iter()
        .map(|id| (id, cluster.node(id).redis))
        .collect();
    let keys = ["a", "b", "c", "d"];
    let mut acked: BTreeMap<&str, i64> = BTreeMap::new();
    let mut attempted: BTreeMap<&str, i64> = BTreeMap::new();
    // Writes whose outcome is unknown (error or timeout): they may still land.
    let mut unknown: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut killed = false;
    let mut acked_after_kill = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i: i64 = 0;
    while (i < 400 || acked_after_kill < 40) && Instant::now() < deadline {
        i += 1;
        let key = keys[(i as usize) % keys.len()];
        let running = cluster.running_ids();
        let writer = running[(i as usize) % running.len()];
        let reader = running[(i as usize + 1) % running.len()];
        attempted.insert(key, i);
        let value = i.to_string();
        let result = tokio::task::block_in_place(|| {
            Resp::connect(redis[&writer])
                .map_err(|e| e.to_string())
                .and_then(|mut c| c.call(&[b"SET", key.as_bytes(), value.as_bytes()]))
        });
        if result != Ok(Value::Ok("OK".into())) {
            unknown.entry(key).or_default().push(i);
        } else {
            acked.insert(key, i);
            if killed {
                acked_after_kill += 1;
            }
            // A read that starts after the ack must see this write or a newer one.
            let read = tokio::task::block_in_place(|| {
                Resp::connect(redis[&reader])
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| c.call(&[b"GET", key.as_bytes()]))
            });
            if let Ok(v) = read {
                let seen = as_int(&v).unwrap_or(-1);
                let late_unknown = unknown.get(key).is_some_and(|u| u.contains(&seen));
                assert!(
                    seen >= i || late_unknown,
                    "stale read of {key} via node {reader}: saw {seen}, write of {i} was acknowledged"
                );
            }
        }
        if i == 150 && !killed {
            cluster.kill9(leader);
            killed = true;
        }
    }
    assert!(killed, "the leader was never killed");
    assert!(
        acked_after_kill >= 40,
        "only {acked_after_kill} writes acknowledged after the leader was killed"
    );
    // Every surviving node converges on the last acknowledged value (or a
    // later attempt whose acknowledgement was lost with the leader).
    for id in cluster.running_ids() {
        for key in keys {
            let want = acked.get(key).copied().unwrap_or(0);
            let limit = attempted.get(key).copied().unwrap_or(0);
            let got = tokio::task::block_in_place(|| {
                Resp::connect(redis[&id])
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| c.call(&[b"GET", key.as_bytes()]))
            })
            .unwrap_or_else(|e| panic!("GET {key} via node {id}: {e}"));
            let got = as_int(&got).unwrap_or(-1);
            let late_unknown = unknown.get(key).is_some_and(|u| u.contains(&got));
            assert!(
                (got >= want && got <= limit) || late_unknown,
                "node {id}: {key} = {got}, last acknowledged {want}, last attempted {limit}"
            );
        }
    }
    cluster.assert_no_crash();
}

/// A client blocked in BLPOP on a follower wakes up when a push made
/// through the leader is applied there: the follower's replicated apply
/// notifies its local waiters (there is no polling to fall back on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_on_a_follower_wakes_for_a_push_through_the_leader() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(1).await;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let follower_redis = cluster.node(follower).redis;
    let leader_redis = cluster.node(leader).redis;
    let waiter = std::thread::spawn(move || {
        let mut client = Resp::connect(follower_redis).map_err(|e| e.to_string())?;
        client.call(&[b"BLPOP", b"queue", b"0"])
    });
    tokio::task::block_in_place(|| {
        let mut probe = Resp::connect(follower_redis).expect("connect to the follower");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = probe.call(&[b"INFO", b"clients"]);
            if let Ok(Value::Bulk(Some(text))) = &info
                && String::from_utf8_lossy(text).contains("blocked_clients:1")
            {
                break;
            }
            assert!(Instant::now() < deadline, "BLPOP never blocked: {info:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut pusher = Resp::connect(leader_redis).expect("connect to the leader");
        assert_eq!(
            pusher.call(&[b"LPUSH", b"queue", b"job"]),
            Ok(Value::Int(1))
        );
    });
    let reply = tokio::task::block_in_place(|| waiter.join().expect("waiter thread"));
    assert_eq!(
        reply,
        Ok(Value::Array(vec![
            Value::Bulk(Some(b"queue".to_vec())),
            Value::Bulk(Some(b"job".to_vec())),
        ]))
    );
}

/// Reads one pushed message of a subscribed connection, as strings.
fn next_message(client: &mut Resp) -> Vec<String> {
    match client.read_value() {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Bulk(Some(data)) => String::from_utf8_lossy(&data).into_owned(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => panic!("expected a pushed message, got {other:?}"),
    }
}

/// PUBLISH on one node reaches channel and pattern subscribers on the
/// others, and so does PUBLISH inside a script, whose message leaves only
/// after the script's writes commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_subscribers_on_other_nodes_also_from_scripts() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(1).await;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let (first, second) = (followers[0], followers[1]);
    let channel_node = cluster.node(first).redis;
    let pattern_node = cluster.node(second).redis;
    let leader_node = cluster.node(leader).redis;
    tokio::task::block_in_place(|| {
        let mut by_channel = Resp::connect(channel_node).expect("connect");
        assert_eq!(
            by_channel.call(&[b"SUBSCRIBE", b"news"]),
            Ok(Value::Array(vec![
                Value::Bulk(Some(b"subscribe".to_vec())),
                Value::Bulk(Some(b"news".to_vec())),
                Value::Int(1),
            ]))
        );
        let mut by_pattern = Resp::connect(pattern_node).expect("connect");
        assert_eq!(
            by_pattern.call(&[b"PSUBSCRIBE", b"n*"]),
            Ok(Value::Array(vec![
                Value::Bulk(Some(b"psubscribe".to_vec())),
                Value::Bulk(Some(b"n*".to_vec())),
                Value::Int(1),
            ]))
        );

        let mut publisher = Resp::connect(leader_node).expect("connect");
        assert_eq!(
            publisher.call(&[b"PUBLISH", b"news", b"hello"]),
            Ok(Value::Int(2))
        );
        assert_eq!(next_message(&mut by_channel), ["message", "news", "hello"]);
        assert_eq!(
            next_message(&mut by_pattern),
            ["pmessage", "n*", "news", "hello"]
        );

        // From a script on a follower: the reply counts that node's own
        // subscriptions (as in Redis Cluster), the message reaches all.
        let mut scripted = Resp::connect(channel_node).expect("connect");
        let script =
            b"redis.call('SET', KEYS[1], ARGV[1]) return redis.call('PUBLISH', 'news', ARGV[1])";
        assert_eq!(
            scripted.call(&[b"EVAL", script, b"1", b"announced", b"v1"]),
            Ok(Value::Int(1))
        );
        assert_eq!(next_message(&mut by_channel), ["message", "news", "v1"]);
        assert_eq!(
            next_message(&mut by_pattern),
            ["pmessage", "n*", "news", "v1"]
        );
        // The write the message announces is visible on every node.
        let mut reader = Resp::connect(pattern_node).expect("connect");
        assert_eq!(
            reader.call(&[b"GET", b"announced"]),
            Ok(Value::Bulk(Some(b"v1".to_vec())))
        );
    });
}
