//! Test doubles for the Redis front end: a tiny in-memory executor (GET, SET,
//! DEL, EXISTS, INCR, DBSIZE, FLUSHALL with per-key versions for WATCH), a
//! server harness on 127.0.0.1:0, and a blocking raw-socket RESP client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elastickv::api::redis::args::{ERR_NOT_INTEGER, ERR_OVERFLOW, parse_i64};
use elastickv::api::redis::{
    ClientInfo, Command, CommandExecutor, LocalBroker, RedisConfig, Reply, WatchToken, WatchedKey,
    serve,
};
use parking_lot::Mutex;

#[path = "ports.rs"]
mod ports;
use tokio::sync::watch;

#[derive(Default)]
struct Store {
    values: HashMap<Bytes, Bytes>,
    versions: HashMap<Bytes, u64>,
    clock: u64,
}

impl Store {
    fn touch(&mut self, key: &Bytes) {
        self.clock += 1;
        self.versions.insert(key.clone(), self.clock);
    }

    fn apply(&mut self, command: &Command) -> Reply {
        let args = &command.args;
        match command.name() {
            "GET" => self
                .values
                .get(&args[0])
                .cloned()
                .map_or(Reply::NullBulk, Reply::Bulk),
            "SET" => {
                self.values.insert(args[0].clone(), args[1].clone());
                self.touch(&args[0]);
                Reply::ok()
            }
            "DEL" => {
                let mut removed = 0;
                for key in args {
                    if self.values.remove(key).is_some() {
                        self.touch(key);
                        removed += 1;
                    }
                }
                Reply::Integer(removed)
            }
            "EXISTS" => Reply::Integer(
                args.iter()
                    .filter(|key| self.values.contains_key(*key))
                    .count() as i64,
            ),
            "INCR" | "INCRBY" => {
                let delta = match args.get(1) {
                    None => 1,
                    Some(raw) => match parse_i64(raw) {
                        Ok(delta) => delta,
                        Err(reply) => return reply,
                    },
                };
                let current = match self.values.get(&args[0]) {
                    None => 0,
                    Some(value) => match parse_i64(value) {
                        Ok(value) => value,
                        Err(_) => return Reply::error(ERR_NOT_INTEGER),
                    },
                };
                let Some(next) = current.checked_add(delta) else {
                    return Reply::error(ERR_OVERFLOW);
                };
                self.values
                    .insert(args[0].clone(), Bytes::from(next.to_string()));
                self.touch(&args[0]);
                Reply::Integer(next)
            }
            "DBSIZE" => Reply::Integer(self.values.len() as i64),
            "FLUSHALL" => {
                let keys: Vec<Bytes> = self.values.keys().cloned().collect();
                for key in keys {
                    self.touch(&key);
                }
                self.values.clear();
                Reply::ok()
            }
            other => Reply::error(format!("ERR fake executor does not implement '{other}'")),
        }
    }
}

/// A HashMap-backed executor for transport tests.
#[derive(Default)]
pub struct FakeExecutor {
    store: Mutex<Store>,
}

impl CommandExecutor for FakeExecutor {
    async fn execute(&self, _client: &ClientInfo, command: Command) -> Reply {
        self.store.lock().apply(&command)
    }

    async fn exec(
        &self,
        _client: &ClientInfo,
        watched: Vec<WatchedKey>,
        queue: Vec<Command>,
    ) -> Reply {
        let mut store = self.store.lock();
        let changed = watched.iter().any(|watched| {
            store.versions.get(&watched.key).copied().unwrap_or(0) != watched.token.0
        });
        if changed {
            return Reply::NullArray;
        }
        Reply::Array(queue.iter().map(|command| store.apply(command)).collect())
    }

    async fn watch_token(&self, key: &[u8]) -> Result<WatchToken, Reply> {
        Ok(WatchToken(
            self.store.lock().versions.get(key).copied().unwrap_or(0),
        ))
    }
}

/// A running front end on a free loopback port, on its own runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Arc<LocalBroker>,
    pub registry: prometheus::Registry,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Runtime,
}

impl TestServer {
    pub fn start(mut config: RedisConfig) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let registry = prometheus::Registry::new();
        config.registry = Some(registry.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let broker = Arc::new(LocalBroker::new());
        let (shutdown, receiver) = watch::channel(false);
        let executor = Arc::new(FakeExecutor::default());
        let task_broker = Arc::clone(&broker);
        let task = runtime.spawn(async move {
            serve(listener, config, executor, task_broker, receiver)
                .await
                .unwrap();
        });
        TestServer {
            addr,
            broker,
            registry,
            shutdown,
            task: Some(task),
            runtime,
        }
    }

    /// Value of a counter or gauge sample with the given label value.
    pub fn metric(&self, family: &str, label: Option<&str>) -> f64 {
        for metric_family in self.registry.gather() {
            if metric_family.name() != family {
                continue;
            }
            for metric in metric_family.get_metric() {
                let matches = label.is_none_or(|label| {
                    metric.get_label().iter().any(|pair| pair.value() == label)
                });
                if matches {
                    return metric.get_gauge().get_value() + metric.get_counter().get_value();
                }
            }
        }
        0.0
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if std::thread::panicking() {
            return;
        }
        if let Some(task) = self.task.take() {
            let finished = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            if finished.is_err() {
                eprintln!("server did not shut down within 10 s");
            }
        }
    }
}

/// One decoded reply, as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Wire>),
    Map(Vec<(Wire, Wire)>),
    Set(Vec<Wire>),
    Push(Vec<Wire>),
    Double(String),
    Boolean(bool),
    Verbatim(String, Vec<u8>),
}

/// A blocking RESP client over a raw socket.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        RawClient {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn writer_mut(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.send_raw(&out);
    }

    pub fn call(&mut self, args: &[&str]) -> Wire {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.send(&args);
        self.read()
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        assert!(
            line.ends_with(b"\r\n"),
            "truncated line {:?}",
            String::from_utf8_lossy(&line)
        );
        line.truncate(line.len() - 2);
        String::from_utf8(line).unwrap()
    }

    fn payload(&mut self, len: usize) -> Vec<u8> {
        let mut data = vec![0; len + 2];
        self.reader.read_exact(&mut data).unwrap();
        data.truncate(len);
        data
    }

    fn items(&mut self, count: &str) -> Vec<Wire> {
        (0..count.parse::<usize>().unwrap())
            .map(|_| self.read())
            .collect()
    }

    pub fn read(&mut self) -> Wire {
        let line = self.line();
        let (marker, rest) = line.split_at(1);
        match marker {
            "+" => Wire::Simple(rest.to_string()),
            "-" => Wire::Error(rest.to_string()),
            ":" => Wire::Integer(rest.parse().unwrap()),
            "$" if rest == "-1" => Wire::Null,
            "$" => Wire::Bulk(self.payload(rest.parse().unwrap())),
            "*" if rest == "-1" => Wire::Null,
            "*" => Wire::Array(self.items(rest)),
            "_" => Wire::Null,
            "%" => {
                let count: usize = rest.parse().unwrap();
                Wire::Map((0..count).map(|_| (self.read(), self.read())).collect())
            }
            "~" => Wire::Set(self.items(rest)),
            ">" => Wire::Push(self.items(rest)),
            "," => Wire::Double(rest.to_string()),
            "#" => Wire::Boolean(rest == "t"),
            "=" => {
                let data = self.payload(rest.parse().unwrap());
                Wire::Verbatim(
                    String::from_utf8_lossy(&data[..3]).into_owned(),
                    data[4..].to_vec(),
                )
            }
            other => panic!("unexpected reply marker {other:?} in {line:?}"),
        }
    }

    /// Reads until the server closes the connection; returns what arrived.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }
}

pub fn bulk(text: &str) -> Wire {
    Wire::Bulk(text.as_bytes().to_vec())
}

pub fn simple(text: &str) -> Wire {
    Wire::Simple(text.to_string())
}

pub fn error(text: &str) -> Wire {
    Wire::Error(text.to_string())
}

/// A real `redis-server` on a free port, for wording comparisons.
pub struct RealRedis {
    pub addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl RealRedis {
    /// Starts `redis-server` with `extra` arguments; panics with a clear
    /// message when it is not installed.
    pub fn start(extra: &[&str]) -> RealRedis {
        let port = ports::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.path().to_str().unwrap()])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server) for wording comparisons");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RealRedis {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
