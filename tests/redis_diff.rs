//! Differential test: a deterministic corpus of a few thousand commands
//! over every data type, error cases included, run against a real
//! `redis-server` and against elastickv; every reply must match
//! (tests/redis_py/diff.py; the known, documented differences are kept
//! out of the corpus, see docs/redis-compatibility.md).

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
async fn replies_match_real_redis() {
    let real = start_real_redis();
    let ours = harness::TestServer::start().await;
    // Seeds 5 and 6 send the corpus in pipelined runs of 1..=40 commands,
    // which elastickv executes as batches (one transaction per run).
    for (seed, pipeline) in [(1u64, 1), (2, 1), (3, 1), (4, 1), (5, 16), (6, 40)] {
        let out = harness::run_python(
            "diff.py",
            &[
                real.port.to_string(),
                ours.port.to_string(),
                seed.to_string(),
                "1500".to_string(),
                pipeline.to_string(),
            ],
        )
        .await;
        assert!(out.contains("0 mismatches"), "seed {seed}: {out}");
    }
    ours.stop().await;
}
