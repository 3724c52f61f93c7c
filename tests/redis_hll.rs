//! HyperLogLog against a real `redis-server`: PFADD/PFCOUNT/PFMERGE
//! replies, error replies and the stored HYLL bytes must be identical, and
//! values must count the same after being moved between the two servers
//! (tests/redis_py/hll_diff.py).

#[path = "redis_py/harness.rs"]
mod harness;

use std::process::Stdio;
use std::time::{Duration, Instant};

struct RealRedis {
    child: std::process::Child,
    port: u16,
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_real_redis() -> RealRedis {
    let port = free_port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed for the differential test");
    let real = RealRedis { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            if stream.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 7];
                if stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return real;
                }
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hll_bytes_and_counts_match_real_redis() {
    let real = start_real_redis();
    let ours = harness::TestServer::start().await;
    for seed in [1u64, 2, 3] {
        let out = harness::run_python(
            "hll_diff.py",
            &[
                real.port.to_string(),
                ours.port.to_string(),
                seed.to_string(),
            ],
        )
        .await;
        assert!(out.contains("0 mismatches"), "{out}");
    }
    ours.stop().await;
}
