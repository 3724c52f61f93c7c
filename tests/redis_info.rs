//! INFO against a real `elastickv serve` process: the clients section
//! counts the connections actually open and the clients blocked in BLPOP;
//! the memory section reports the process's resident memory.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::cluster::Cluster;

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Sends a command and returns the raw first line plus any bulk body.
    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }

    fn send(&mut self, args: &[&str]) {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&request).unwrap();
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        if let Some(len) = line.strip_prefix('$') {
            let len: i64 = len.trim_end().parse().unwrap();
            if len < 0 {
                return "(nil)".into();
            }
            let mut body = vec![0; len as usize + 2];
            self.reader.read_exact(&mut body).unwrap();
            body.truncate(len as usize);
            return String::from_utf8(body).unwrap();
        }
        if let Some(len) = line.strip_prefix('*') {
            let len: i64 = len.trim_end().parse().unwrap();
            let items: Vec<String> = (0..len.max(0)).map(|_| self.read()).collect();
            return items.join(",");
        }
        line.trim_end().to_string()
    }
}

fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
}

/// Polls INFO until `name` reads `want` (bounded), returning the last INFO.
fn wait_for_field(client: &mut Client, section: &str, name: &str, want: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = client.call(&["INFO", section]);
        if info_field(&info, name) == Some(want) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached {want}:\n{info}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect_when_ready(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            let mut client = Client::connect(addr);
            if client.call(&["PING"]) == "+PONG" {
                return client;
            }
        }
        assert!(Instant::now() < deadline, "redis listener never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_real_clients_and_memory() {
    let cluster = Cluster::start(1).await;
    let addr = cluster.node(1).redis;
    let mut admin = connect_when_ready(addr);
    wait_for_field(&mut admin, "clients", "connected_clients", 1);

    let extra: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    let info = wait_for_field(&mut admin, "clients", "connected_clients", 4);
    assert_eq!(info_field(&info, "blocked_clients"), Some(0));
    assert_eq!(info_field(&info, "maxclients"), Some(10_000));

    let mut blocked = Client::connect(addr);
    blocked.send(&["BLPOP", "queue", "0"]);
    wait_for_field(&mut admin, "clients", "blocked_clients", 1);
    assert_eq!(admin.call(&["RPUSH", "queue", "job"]), ":1");
    assert_eq!(blocked.read(), "queue,job");
    wait_for_field(&mut admin, "clients", "blocked_clients", 0);

    drop(extra);
    drop(blocked);
    wait_for_field(&mut admin, "clients", "connected_clients", 1);

    let memory = admin.call(&["INFO", "memory"]);
    let used = info_field(&memory, "used_memory").unwrap();
    let peak = info_field(&memory, "used_memory_peak").unwrap();
    let total = info_field(&memory, "total_system_memory").unwrap();
    // A running node holds at least its runtime, RocksDB and Raft state.
    assert!(used > 1 << 20, "{memory}");
    assert!(peak >= used, "{memory}");
    assert!(total > used, "{memory}");
    assert!(memory.contains("used_memory_human:"), "{memory}");
    assert_eq!(info_field(&memory, "number_of_cached_scripts"), Some(0));
    admin.call(&["SCRIPT", "LOAD", "return 1"]);
    let memory = admin.call(&["INFO", "memory"]);
    assert_eq!(info_field(&memory, "number_of_cached_scripts"), Some(1));
}
