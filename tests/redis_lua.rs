//! Lua scripting against a real `elastickv serve` process over TCP:
//! EVAL/EVALSHA/SCRIPT, the Lua↔RESP conversions, redis.call vs
//! redis.pcall errors, the sandbox, the time limit, and atomicity (many
//! connections running read-modify-write scripts lose no update; a reader
//! never sees half of a script's writes).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::cluster::Cluster;

/// A RESP2 reply, as much of it as these tests look at.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

fn bulk(text: &str) -> Resp {
    Resp::Bulk(Some(text.as_bytes().to_vec()))
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Connects once the node's Redis listener accepts (bounded wait).
    fn connect_when_ready(addr: SocketAddr) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                drop(stream);
                let mut client = Client::connect(addr);
                if client.call(&["PING"]) == Resp::Status("PONG".into()) {
                    return client;
                }
            }
            assert!(Instant::now() < deadline, "redis listener never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn call(&mut self, args: &[&str]) -> Resp {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&request).unwrap();
        self.read()
    }

    fn read(&mut self) -> Resp {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Resp::Status(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Resp::Bulk(None);
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data).unwrap();
                data.truncate(len as usize);
                Resp::Bulk(Some(data))
            }
            "*" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Resp::Array(None);
                }
                Resp::Array(Some((0..len).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected reply type {other:?} in {line:?}"),
        }
    }
}

fn error_text(reply: Resp) -> String {
    match reply {
        Resp::Error(text) => text,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

async fn single_node() -> (Cluster, SocketAddr) {
    let cluster = Cluster::start(1).await;
    let addr = cluster.node(1).redis;
    (cluster, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_over_a_real_server() {
    let (_cluster, addr) = single_node().await;
    let mut c = Client::connect_when_ready(addr);

    // Conversions, Lua → reply.
    assert_eq!(c.call(&["EVAL", "return 3.9", "0"]), Resp::Int(3));
    assert_eq!(c.call(&["EVAL", "return -3.9", "0"]), Resp::Int(-3));
    assert_eq!(c.call(&["EVAL", "return 'hi'", "0"]), bulk("hi"));
    assert_eq!(c.call(&["EVAL", "return true", "0"]), Resp::Int(1));
    assert_eq!(c.call(&["EVAL", "return false", "0"]), Resp::Bulk(None));
    assert_eq!(
        c.call(&["EVAL", "return {1, 'a', {2}, nil, 5}", "0"]),
        Resp::Array(Some(vec![
            Resp::Int(1),
            bulk("a"),
            Resp::Array(Some(vec![Resp::Int(2)]))
        ]))
    );
    assert_eq!(
        c.call(&["EVAL", "return {ok = 'FINE'}", "0"]),
        Resp::Status("FINE".into())
    );
    assert_eq!(
        c.call(&["EVAL", "return redis.error_reply('MY bad')", "0"]),
        Resp::Error("MY bad".into())
    );
    assert_eq!(
        c.call(&["EVAL", "return redis.error_reply('bad')", "0"]),
        Resp::Error("ERR bad".into())
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}",
            "2",
            "k1",
            "k2",
            "a1"
        ]),
        Resp::Array(Some(vec![bulk("k1"), bulk("k2"), bulk("a1"), Resp::Int(1)]))
    );
    assert_eq!(
        c.call(&["EVAL", "return redis.sha1hex('')", "0"]),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );

    // Reply → Lua, and the script reads its own writes.
    let script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCRBY', KEYS[2], 5); \
                  redis.call('RPUSH', 'list', 'a', 'b'); \
                  return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), \
                          redis.call('GET', 'missing') == false and 'nil-is-false' or 'x', \
                          redis.call('SET', 'x', 1)['ok'], redis.call('LRANGE', 'list', 0, -1)}";
    assert_eq!(
        c.call(&["EVAL", script, "2", "s", "n", "val"]),
        Resp::Array(Some(vec![
            bulk("val"),
            bulk("5"),
            bulk("nil-is-false"),
            bulk("OK"),
            Resp::Array(Some(vec![bulk("a"), bulk("b")])),
        ]))
    );
    assert_eq!(c.call(&["GET", "x"]), bulk("1"));

    // Errors: raised by call (with the script line), returned by pcall.
    c.call(&["SADD", "set", "m"]);
    let sha = sha1_hex("redis.call('SET', 'before', 1)\nreturn redis.call('GET', 'set')");
    assert_eq!(
        error_text(c.call(&[
            "EVAL",
            "redis.call('SET', 'before', 1)\nreturn redis.call('GET', 'set')",
            "0"
        ])),
        format!(
            "WRONGTYPE Operation against a key holding the wrong kind of value script: {sha}, on @user_script:2."
        )
    );
    // As in Redis, writes before the error stay.
    assert_eq!(c.call(&["GET", "before"]), bulk("1"));
    assert_eq!(
        c.call(&["EVAL", "return redis.pcall('GET', 'set')", "0"]),
        Resp::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            "local ok, e = pcall(redis.call, 'GET', 'set') return e",
            "0"
        ]),
        bulk("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    for (script, message) in [
        (
            "return redis.call('NOPE')",
            "ERR Unknown Redis command called from script",
        ),
        (
            "return redis.call('GET')",
            "ERR Wrong number of args calling Redis command from script",
        ),
        (
            "return redis.call('EVAL', 'return 1', 0)",
            "ERR This Redis command is not allowed from script",
        ),
        (
            "return redis.call('GET', {})",
            "ERR Lua redis lib command arguments must be strings or integers",
        ),
        (
            "return redis.call()",
            "ERR Please specify at least one argument for this redis lib call",
        ),
    ] {
        assert_eq!(
            error_text(c.call(&["EVAL", script, "0"])),
            format!("{message} script: {}, on @user_script:1.", sha1_hex(script))
        );
    }
    assert_eq!(
        error_text(c.call(&["EVAL", "error('boom')", "0"])),
        format!(
            "ERR user_script:1: boom script: {}, on @user_script:1.",
            sha1_hex("error('boom')")
        )
    );
    assert_eq!(
        error_text(c.call(&["EVAL", "return (", "0"])),
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"
    );
    assert_eq!(
        error_text(c.call(&["EVAL", "return 1", "2", "k"])),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        error_text(c.call(&["EVAL", "return 1", "-1"])),
        "ERR Number of keys can't be negative"
    );
    assert_eq!(
        error_text(c.call(&["EVAL", "return 1", "x"])),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error_text(c.call(&["EVAL_RO", "return redis.call('DEL', 'x')", "0"])),
        format!(
            "ERR Write commands are not allowed from read-only scripts. script: {}, on @user_script:1.",
            sha1_hex("return redis.call('DEL', 'x')")
        )
    );
    assert_eq!(c.call(&["GET", "x"]), bulk("1"));

    // Sandbox: no host access, read-only globals.
    for name in ["os", "io", "require", "loadfile", "dofile"] {
        let script = format!("return type({name})");
        assert!(
            error_text(c.call(&["EVAL", &script, "0"])).contains(&format!(
                "Script attempted to access nonexistent global variable '{name}'"
            )),
            "{name}"
        );
    }
    assert!(
        error_text(c.call(&["EVAL", "leak = 1", "0"]))
            .contains("Attempt to modify a readonly table")
    );

    // EVALSHA, SCRIPT LOAD/EXISTS/FLUSH/KILL.
    let body = "return ARGV[1]";
    let sha = match c.call(&["SCRIPT", "LOAD", body]) {
        Resp::Bulk(Some(sha)) => String::from_utf8(sha).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sha, sha1_hex(body));
    assert_eq!(c.call(&["EVALSHA", &sha, "0", "x"]), bulk("x"));
    assert_eq!(
        c.call(&["EVALSHA", &sha.to_uppercase(), "0", "y"]),
        bulk("y")
    );
    assert_eq!(
        c.call(&["SCRIPT", "EXISTS", &sha, &"0".repeat(40)]),
        Resp::Array(Some(vec![Resp::Int(1), Resp::Int(0)]))
    );
    assert_eq!(c.call(&["SCRIPT", "FLUSH"]), Resp::Status("OK".into()));
    assert_eq!(
        error_text(c.call(&["EVALSHA", &sha, "0"])),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(c.call(&["EVAL", body, "0", "z"]), bulk("z"));
    assert_eq!(c.call(&["EVALSHA", &sha, "0", "w"]), bulk("w"));
    assert!(matches!(
        c.call(&["SCRIPT", "LOAD", "return ("]),
        Resp::Error(_)
    ));
    assert_eq!(
        error_text(c.call(&["SCRIPT", "KILL"])),
        "NOTBUSY No scripts in execution right now."
    );

    // Inside MULTI/EXEC a script joins the EXEC's transaction.
    assert_eq!(c.call(&["MULTI"]), Resp::Status("OK".into()));
    assert_eq!(c.call(&["SET", "m", "1"]), Resp::Status("QUEUED".into()));
    assert_eq!(
        c.call(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "m"]),
        Resp::Status("QUEUED".into())
    );
    assert_eq!(
        c.call(&["EXEC"]),
        Resp::Array(Some(vec![Resp::Status("OK".into()), Resp::Int(2)]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_atomic_across_connections() {
    let (_cluster, addr) = single_node().await;
    Client::connect_when_ready(addr);
    const WRITERS: usize = 6;
    const ROUNDS: usize = 25;
    // A read-modify-write in Lua: only atomic if the whole script is one
    // transaction. It also keeps two keys equal at every commit.
    let increment = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') + 1 \
                     redis.call('SET', KEYS[1], v) redis.call('SET', KEYS[2], v) return v";
    let check = "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}";
    let mut threads = Vec::new();
    for _ in 0..WRITERS {
        threads.push(std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            for _ in 0..ROUNDS {
                let reply = c.call(&["EVAL", increment, "2", "counter", "mirror"]);
                assert!(matches!(reply, Resp::Int(_)), "{reply:?}");
            }
        }));
    }
    let reader = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        let mut observed = 0;
        for _ in 0..200 {
            match c.call(&["EVAL", check, "2", "counter", "mirror"]) {
                Resp::Array(Some(pair)) => {
                    assert_eq!(pair[0], pair[1], "a script's writes were seen half-done");
                    observed += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        observed
    });
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(reader.join().unwrap(), 200);
    let mut c = Client::connect(addr);
    let total = (WRITERS * ROUNDS).to_string();
    assert_eq!(c.call(&["GET", "counter"]), bulk(&total));
    assert_eq!(c.call(&["GET", "mirror"]), bulk(&total));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_script_is_stopped_and_its_writes_discarded() {
    let (_cluster, addr) = single_node().await;
    let mut c = Client::connect_when_ready(addr);
    let started = Instant::now();
    let runaway = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.call(&[
            "EVAL",
            "redis.call('SET', 'partial', 1) while true do end",
            "0",
        ])
    });
    // Other clients are served while the script runs.
    assert_eq!(c.call(&["SET", "other", "v"]), Resp::Status("OK".into()));
    let reply = runaway.join().unwrap();
    let text = error_text(reply);
    assert!(text.contains("was stopped"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(c.call(&["GET", "partial"]), Resp::Bulk(None));
    assert_eq!(c.call(&["GET", "other"]), bulk("v"));
}

/// PUBLISH inside a script reaches subscribers once the script's
/// transaction commits; a script stopped by the time limit keeps nothing,
/// its messages included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_publish_after_commit_and_a_stopped_script_publishes_nothing() {
    let (_cluster, addr) = single_node().await;
    let mut subscriber = Client::connect_when_ready(addr);
    assert_eq!(
        subscriber.call(&["SUBSCRIBE", "events"]),
        Resp::Array(Some(vec![bulk("subscribe"), bulk("events"), Resp::Int(1)]))
    );
    let mut c = Client::connect(addr);
    let script =
        "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('PUBLISH', 'events', ARGV[1])";
    assert_eq!(
        c.call(&["EVAL", script, "1", "job", "started"]),
        Resp::Int(1)
    );
    assert_eq!(
        subscriber.read(),
        Resp::Array(Some(vec![bulk("message"), bulk("events"), bulk("started")]))
    );
    assert_eq!(c.call(&["GET", "job"]), bulk("started"));

    let stopped = c.call(&[
        "EVAL",
        "redis.call('PUBLISH', 'events', 'lost') while true do end",
        "0",
    ]);
    assert!(error_text(stopped).contains("was stopped"));
    assert_eq!(c.call(&["PUBLISH", "events", "marker"]), Resp::Int(1));
    assert_eq!(
        subscriber.read(),
        Resp::Array(Some(vec![bulk("message"), bulk("events"), bulk("marker")]))
    );
}

/// `redis.setresp(3)` gives the script RESP3 shapes; what it returns is
/// downgraded for a RESP2 client as Redis does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setresp_switches_the_shapes_a_script_sees() {
    let (_cluster, addr) = single_node().await;
    let mut c = Client::connect_when_ready(addr);
    assert_eq!(c.call(&["HSET", "h", "f", "v"]), Resp::Int(1));
    assert_eq!(c.call(&["ZADD", "z", "2.5", "m"]), Resp::Int(1));
    let script = "redis.setresp(3) \
        local h = redis.call('HGETALL', 'h') \
        local s = redis.call('ZSCORE', 'z', 'm') \
        local missing = redis.call('GET', 'nothing') \
        return {h.map.f, tostring(s.double), tostring(missing == nil)}";
    assert_eq!(
        c.call(&["EVAL", script, "0"]),
        Resp::Array(Some(vec![bulk("v"), bulk("2.5"), bulk("true")]))
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            "redis.setresp(3) return redis.call('HGETALL', 'h')",
            "0"
        ]),
        Resp::Array(Some(vec![bulk("f"), bulk("v")]))
    );
    assert_eq!(
        c.call(&["EVAL", "redis.setresp(3) return true", "0"]),
        Resp::Int(1)
    );
    assert_eq!(
        c.call(&["EVAL", "redis.setresp(3) return false", "0"]),
        Resp::Int(0)
    );
    assert!(
        error_text(c.call(&["EVAL", "redis.setresp(4)", "0"]))
            .starts_with("ERR RESP version must be 2 or 3.")
    );
}
