//! Unmodified Redis clients against the front end: redis-cli (plain,
//! `--pipe`, RESP3, AUTH), redis-benchmark and redis-py (RESP2 and RESP3,
//! pipelines, transactions, pub/sub, error classes). The tools must be
//! installed (`apt-get install -y redis-tools`, `pip install redis`).

#[path = "support/redis_fake.rs"]
mod redis_fake;

use std::io::Write;
use std::process::{Command, Stdio};

use elastickv::api::redis::RedisConfig;
use redis_fake::TestServer;

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{program} must be installed (redis-tools / python3): {err}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn cli(server: &TestServer, args: &[&str]) -> String {
    let port = server.addr.port().to_string();
    let mut full = vec!["-h", "127.0.0.1", "-p", &port];
    full.extend_from_slice(args);
    let (ok, stdout, stderr) = run("redis-cli", &full, None);
    assert!(ok, "redis-cli {args:?} failed: {stderr}");
    stdout.trim_end().to_string()
}

#[test]
fn redis_cli_basic_commands() {
    let server = TestServer::start(RedisConfig::default());
    assert_eq!(cli(&server, &["PING"]), "PONG");
    assert_eq!(cli(&server, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&server, &["GET", "greeting"]), "hello world");
    assert_eq!(cli(&server, &["INCR", "n"]), "1");
    assert_eq!(cli(&server, &["GET", "missing"]), "");
    assert_eq!(
        cli(&server, &["NOSUCH", "x"]),
        "ERR unknown command 'NOSUCH', with args beginning with: 'x'"
    );
    let hello = cli(&server, &["-3", "HELLO", "3"]);
    assert!(
        hello.contains("proto") && hello.contains("standalone"),
        "{hello}"
    );
    let count = cli(&server, &["COMMAND", "COUNT"]);
    assert_eq!(
        count.parse::<usize>().unwrap(),
        elastickv::api::redis::command::all_commands().len()
    );
}

#[test]
fn redis_cli_pipe_mode() {
    let server = TestServer::start(RedisConfig::default());
    let mut input = Vec::new();
    for i in 0..5000 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    let port = server.addr.port().to_string();
    let (ok, stdout, stderr) = run(
        "redis-cli",
        &["-h", "127.0.0.1", "-p", &port, "--pipe"],
        Some(&input),
    );
    assert!(ok, "redis-cli --pipe failed: {stdout} {stderr}");
    assert!(stdout.contains("errors: 0, replies: 5000"), "{stdout}");
    assert_eq!(cli(&server, &["DBSIZE"]), "5000");
}

#[test]
fn redis_cli_with_password() {
    let config = RedisConfig {
        password: Some("pw".into()),
        ..RedisConfig::default()
    };
    let server = TestServer::start(config);
    assert_eq!(
        cli(&server, &["GET", "k"]),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        cli(&server, &["-a", "pw", "--no-auth-warning", "SET", "k", "v"]),
        "OK"
    );
    assert_eq!(
        cli(
            &server,
            &[
                "--user",
                "default",
                "--pass",
                "pw",
                "--no-auth-warning",
                "GET",
                "k"
            ]
        ),
        "v"
    );
    let denied = cli(&server, &["-a", "bad", "--no-auth-warning", "GET", "k"]);
    assert!(
        denied.contains("WRONGPASS") || denied.contains("NOAUTH"),
        "{denied}"
    );
}

#[test]
fn redis_benchmark_runs_clean() {
    let server = TestServer::start(RedisConfig::default());
    let port = server.addr.port().to_string();
    let (ok, stdout, stderr) = run(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "set,get",
            "-n",
            "2000",
            "-c",
            "10",
            "-P",
            "16",
            "-q",
        ],
        None,
    );
    assert!(ok, "redis-benchmark failed: {stderr}");
    assert!(
        stdout.contains("SET:") && stdout.contains("GET:"),
        "{stdout}"
    );
    assert!(!stdout.to_lowercase().contains("error"), "{stdout}");
}

const REDIS_PY_SCRIPT: &str = r#"
import sys, time, redis
port = int(sys.argv[1])
for proto in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=proto)
    assert r.ping() is True
    r.set("k", "v")
    assert r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.incr("n%d" % proto) == 1
    try:
        r.execute_command("NOSUCH", "a")
        raise SystemExit("unknown command accepted")
    except redis.ResponseError as e:
        assert str(e).startswith("unknown command 'NOSUCH'"), str(e)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("p%d" % i, i)
    assert all(pipe.execute())
    tx = r.pipeline(transaction=True)
    tx.set("t", "1").incr("t").get("t")
    assert tx.execute() == [True, 2, b"2"], "tx"
    with r.pipeline() as w:
        w.watch("t")
        r.set("t", "changed")
        w.multi()
        w.incr("t")
        try:
            w.execute()
            raise SystemExit("watch did not abort")
        except redis.WatchError:
            pass
    r.client_setname("py%d" % proto)
    assert r.client_getname() == "py%d" % proto or r.client_getname() == b"py%d" % proto
    p = r.pubsub()
    p.subscribe("chan")
    deadline = time.time() + 10
    confirmation = None
    while confirmation is None and time.time() < deadline:
        confirmation = p.get_message(timeout=1)
    assert confirmation["type"] == "subscribe", confirmation
    assert r.publish("chan", "payload") == 1
    message = None
    while message is None and time.time() < deadline:
        message = p.get_message(timeout=1)
    assert message["type"] == "message" and message["data"] == b"payload", message
    p.close()
    r.close()
print("redis-py OK")
"#;

#[test]
fn redis_py_resp2_and_resp3() {
    let server = TestServer::start(RedisConfig::default());
    let port = server.addr.port().to_string();
    let (ok, stdout, stderr) = run("python3", &["-c", REDIS_PY_SCRIPT, &port], None);
    assert!(
        ok,
        "redis-py script failed (pip install redis): {stdout} {stderr}"
    );
    assert!(stdout.contains("redis-py OK"), "{stdout}");
}
