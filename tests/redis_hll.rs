//! HyperLogLog against a real `redis-server`: PFADD/PFCOUNT/PFMERGE
//! replies, error replies and the stored HYLL bytes must be identical, and
//! values must count the same after being moved between the two servers
//! (tests/redis_py/hll_diff.py).

#[path = "redis_py/harness.rs"]
mod harness;

use harness::start_real_redis;

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
