//! Pipelined writes from many connections at once: the front end batches
//! each connection's pipeline and the executor combines the batches of all
//! connections into shared transactions. Whatever the grouping, every reply
//! must be what serial execution would give: counters exact, each
//! connection's INCR replies strictly increasing, a GET after a SET in the
//! same pipeline sees it, and a hot list gets every push exactly once.

#[path = "redis_py/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CLIENTS: usize = 12;
const ROUNDS: usize = 40;

#[derive(Debug, PartialEq)]
enum Value {
    Simple(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Error(String),
}

fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn read_value(reader: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read reply line");
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Value::Simple(rest.to_string()),
        "-" => Value::Error(rest.to_string()),
        ":" => Value::Int(rest.parse().expect("integer reply")),
        "$" => {
            let len: i64 = rest.parse().expect("bulk length");
            if len < 0 {
                return Value::Bulk(None);
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf).expect("bulk body");
            buf.truncate(len as usize);
            Value::Bulk(Some(buf))
        }
        other => panic!("unexpected reply type {other:?} in {line:?}"),
    }
}

/// One connection: ROUNDS pipelines of mixed reads and writes.
fn client(port: u16, id: usize) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut last_hot = 0i64;
    let own = format!("c:{id}");
    for round in 0..ROUNDS {
        let key = format!("k:{id}:{round}");
        let value = format!("v{round}");
        let member = format!("{id}:{round}");
        let mut req = Vec::new();
        encode(&[b"INCR", b"hot"], &mut req);
        encode(&[b"SET", key.as_bytes(), value.as_bytes()], &mut req);
        encode(&[b"GET", key.as_bytes()], &mut req);
        encode(&[b"LPUSH", b"hotlist", member.as_bytes()], &mut req);
        encode(&[b"INCR", own.as_bytes()], &mut req);
        encode(&[b"INCR", key.as_bytes()], &mut req); // WRONGTYPE-free error: not an integer
        encode(&[b"INCR", b"hot"], &mut req);
        encode(&[b"HSET", b"hothash", member.as_bytes(), b"1"], &mut req);
        writer.write_all(&req).expect("send pipeline");

        let Value::Int(first) = read_value(&mut reader) else {
            panic!("INCR hot must answer an integer")
        };
        assert!(first > last_hot, "INCR replies of one connection must rise");
        assert_eq!(read_value(&mut reader), Value::Simple("OK".into()));
        assert_eq!(
            read_value(&mut reader),
            Value::Bulk(Some(value.clone().into_bytes())),
            "GET must see the SET before it in the same pipeline"
        );
        assert!(matches!(read_value(&mut reader), Value::Int(n) if n >= 1));
        assert_eq!(read_value(&mut reader), Value::Int(round as i64 + 1));
        assert_eq!(
            read_value(&mut reader),
            Value::Error("ERR value is not an integer or out of range".into())
        );
        let Value::Int(second) = read_value(&mut reader) else {
            panic!("INCR hot must answer an integer")
        };
        assert!(
            second > first,
            "later INCR in one pipeline sees the earlier"
        );
        last_hot = second;
        assert_eq!(read_value(&mut reader), Value::Int(1));
    }
}

fn call(port: u16, args: &[&[u8]]) -> Value {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut req = Vec::new();
    encode(args, &mut req);
    writer.write_all(&req).expect("send");
    read_value(&mut reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_from_many_connections_combine_without_changing_replies() {
    let server = harness::TestServer::start().await;
    let port = server.port;
    tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..CLIENTS)
            .map(|id| std::thread::spawn(move || client(port, id)))
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
        let total = (CLIENTS * ROUNDS) as i64;
        assert_eq!(
            call(port, &[b"GET", b"hot"]),
            Value::Bulk(Some((2 * total).to_string().into_bytes()))
        );
        assert_eq!(call(port, &[b"LLEN", b"hotlist"]), Value::Int(total));
        assert_eq!(call(port, &[b"HLEN", b"hothash"]), Value::Int(total));
        for id in 0..CLIENTS {
            let own = format!("c:{id}");
            assert_eq!(
                call(port, &[b"GET", own.as_bytes()]),
                Value::Bulk(Some(ROUNDS.to_string().into_bytes()))
            );
        }
    })
    .await
    .expect("clients");
    server.stop().await;
}
