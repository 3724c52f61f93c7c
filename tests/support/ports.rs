//! Loopback ports for servers a test starts in another process (elastickv
//! nodes, redis-server), where the port must be chosen before the server
//! binds it.
//!
//! Why not `bind("127.0.0.1:0")`: the kernel hands out such ports from the
//! ephemeral range, the same range every outgoing connection takes its local
//! port from. Between the test releasing the port and the child binding it,
//! any connection on the machine (a Raft peer dialling, a client of a test
//! running in parallel) may take it, and the child dies with "Address
//! already in use". That happened on CI.
//!
//! Invariants: ports come from below the ephemeral range, so no outgoing
//! connection can hold one; within a process no port is handed out twice
//! (a counter walks the range), so a restarted node keeps a port no other
//! test of the same binary is given; processes start their walk at
//! different points (pid and time) so test binaries running side by side
//! rarely meet; every port is checked free by binding it, and all of one
//! request are held together until every one is chosen.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// First port handed out; below it live well-known and registered services.
const LOW: u32 = 20_000;
/// One past the last port: Linux's ephemeral range starts at 32768 by
/// default (`/proc/sys/net/ipv4/ip_local_port_range`).
const HIGH: u32 = 32_000;

fn next_candidate() -> u16 {
    static START: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let span = HIGH - LOW;
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(7919).wrapping_add(nanos) % span
    });
    let step = COUNTER.fetch_add(1, Ordering::Relaxed);
    u16::try_from(LOW + (start + step) % span).expect("port range fits u16")
}

/// `n` distinct loopback addresses no listener holds right now.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut tried = 0u32;
    while held.len() < n {
        tried += 1;
        assert!(
            tried <= HIGH - LOW,
            "no free loopback port in {LOW}..{HIGH}"
        );
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", next_candidate())) {
            held.push(listener);
        }
    }
    held.iter()
        .map(|l| l.local_addr().expect("local addr"))
        .collect()
}

/// One free loopback port.
pub fn free_port() -> u16 {
    free_addrs(1)[0].port()
}
