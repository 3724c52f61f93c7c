//! Shared by the Redis integration tests: an in-process elastickv Redis
//! server (LocalBackend over a temp dir, `api::redis::serve` on
//! 127.0.0.1:0), and a runner for the python scripts beside this file.

#![allow(dead_code)]

#[path = "../support/paths.rs"]
mod paths;

use std::path::PathBuf;
use std::sync::Arc;

use elastickv::api::redis::commands::RedisExecutor;
use elastickv::api::redis::{LocalBroker, RedisConfig, serve};
use elastickv::clock::{Hlc, SystemWallClock};
use elastickv::fsm::{Group, GroupOptions};
use elastickv::storage::StoreOptions;
use elastickv::txn::LocalBackend;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct TestServer {
    pub port: u16,
    pub executor: Arc<RedisExecutor<LocalBackend>>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let hlc = Arc::new(Hlc::new(SystemWallClock));
        let options = GroupOptions {
            group_id: 1,
            store: StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        };
        let group = Group::open(dir.path(), options, hlc).unwrap();
        let backend = Arc::new(LocalBackend::new(Arc::new(group)));
        let executor = RedisExecutor::new(backend);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (shutdown, rx) = watch::channel(false);
        let exec = Arc::clone(&executor);
        let task = tokio::spawn(async move {
            serve(
                listener,
                RedisConfig::default(),
                exec,
                Arc::new(LocalBroker::new()),
                rx,
            )
            .await
            .unwrap();
        });
        TestServer {
            port,
            executor,
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub fn script(name: &str) -> PathBuf {
    paths::repo_root().join("tests/redis_py").join(name)
}

/// Runs `python3 tests/redis_py/<name> <args...>`; panics with its output
/// when it fails.
pub async fn run_python(name: &str, args: &[String]) -> String {
    let output = tokio::process::Command::new("python3")
        .arg(script(name))
        .args(args)
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{name} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// A throwaway `redis-server` on a free loopback port, killed on drop.
pub struct RealRedis {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[path = "../support/ports.rs"]
mod ports;
pub use ports::free_port;

/// Starts `redis-server` (no persistence) and waits until it answers PING.
pub fn start_real_redis() -> RealRedis {
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
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server must be installed (redis-server package)");
    let real = RealRedis { child, port };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            if stream.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 7];
                if stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return real;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
