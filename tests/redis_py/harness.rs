//! Shared by the Redis integration tests: an in-process elastickv Redis
//! server (LocalBackend over a temp dir, `api::redis::serve` on
//! 127.0.0.1:0), and a runner for the python scripts beside this file.

#![allow(dead_code)]

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
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/redis_py")
        .join(name)
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
