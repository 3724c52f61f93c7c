//! Differential test: a deterministic corpus of a few thousand commands
//! over every data type, error cases included, run against a real
//! `redis-server` and against elastickv; every reply must match
//! (tests/redis_py/diff.py; the known, documented differences are kept
//! out of the corpus, see docs/redis-compatibility.md); and random,
//! mostly malformed input through the Lua libraries scripts get
//! (tests/redis_py/lua_libs_diff.py).

#[path = "redis_py/harness.rs"]
mod harness;

use harness::start_real_redis;

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

/// The libraries scripts get (cjson, cmsgpack, struct) on random, mostly
/// malformed input: values and error texts as redis-server gives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_libraries_match_real_redis_on_random_input() {
    let real = start_real_redis();
    let ours = harness::TestServer::start().await;
    for seed in [1u64, 2] {
        let out = harness::run_python(
            "lua_libs_diff.py",
            &[
                real.port.to_string(),
                ours.port.to_string(),
                seed.to_string(),
                "1000".to_string(),
            ],
        )
        .await;
        assert!(out.contains(" 0 mismatches"), "seed {seed}: {out}");
    }
    ours.stop().await;
}
