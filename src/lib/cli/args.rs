//! The command-line grammar (clap derive). Only subcommands that really work
//! are listed; each capability adds its own when it lands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// elastickv: a Raft-replicated, range-sharded MVCC key-value store with a
/// Redis-compatible front end, and the operator toolkit around it.
#[derive(Debug, Parser)]
#[command(name = "elastickv", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node. With no flags: a single-node cluster in ./elastickv-data on loopback.
    Serve(Box<ServeArgs>),
    /// Show the cluster, groups, leaders and indexes as one node sees them.
    Status {
        #[command(flatten)]
        conn: ConnArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// A small key-value client (keys live in their own `k` namespace).
    Kv {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        op: KvOp,
    },
    /// Change a group's membership or leadership.
    Cluster {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        op: ClusterOp,
    },
    /// Snapshots of a group's state machine.
    Snapshot {
        #[command(subcommand)]
        op: SnapshotOp,
    },
    /// Decode .fsm snapshot files into a logical backup tree (offline).
    ///
    /// Dumps the newest version of every key visible at each snapshot's last
    /// commit timestamp; deleted and expired keys, derived indexes and
    /// transaction state are left out. Several groups' snapshots merge into
    /// one tree, which appears at --output complete (MANIFEST.json, CHECKSUMS)
    /// or not at all. A progress bar is shown when stderr is a terminal.
    SnapshotDecode(Box<super::snapshot_decode::SnapshotDecodeArgs>),
    /// Offline: a logical backup tree → a `.fsm` snapshot file that a fresh node
    /// can start from (`serve --restore-from`).
    SnapshotEncode(SnapshotEncodeArgs),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// How to reach a node's admin gRPC service.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// A node's gRPC address (`--listen` of `serve`).
    #[arg(long, global = true, default_value = "127.0.0.1:50051")]
    pub endpoint: String,
    /// The cluster token, when the cluster requires one.
    #[arg(
        long,
        global = true,
        env = "ELASTICKV_CLUSTER_TOKEN",
        hide_env_values = true
    )]
    pub cluster_token: Option<String>,
    /// The Raft group to address.
    #[arg(long, global = true, default_value_t = 1)]
    pub group: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the node keeps its data [default: ./elastickv-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// This node's id, unique in the cluster [default: 1].
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Node-to-node and admin gRPC address [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<String>,
    /// Address other nodes use to reach this one [default: --listen].
    #[arg(long)]
    pub advertise: Option<String>,
    /// Initial voters including this node, as ID=ADDR,... [default: only this node].
    #[arg(long)]
    pub peers: Option<String>,
    /// Start empty and wait to be added to an existing cluster.
    #[arg(long)]
    pub join: bool,
    /// Prometheus /metrics address; "" disables [default: 127.0.0.1:9090].
    #[arg(long)]
    pub metrics: Option<String>,
    /// Redis front end address; "" disables [default: 127.0.0.1:6379 for a
    /// single-node cluster, none otherwise].
    #[arg(long)]
    pub redis: Option<String>,
    /// Password for Redis AUTH (required to serve Redis beyond loopback).
    #[arg(long, env = "ELASTICKV_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Token required on every node-to-node and admin call (mandatory when
    /// gRPC listens beyond loopback).
    #[arg(long, env = "ELASTICKV_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Raft tick in milliseconds [default: 10].
    #[arg(long)]
    pub raft_tick_ms: Option<u64>,
    /// Heartbeat interval in ticks [default: 20].
    #[arg(long)]
    pub raft_heartbeat_ticks: Option<usize>,
    /// Election timeout in ticks [default: 200].
    #[arg(long)]
    pub raft_election_ticks: Option<usize>,
    /// Take a snapshot every this many applied entries [default: 10000].
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Start a new cluster holding exactly the data of this `.fsm` file
    /// (from `snapshot-encode` or `snapshot create`). The data dir must be
    /// absent or empty; with --peers, every initial voter uses the same file.
    #[arg(long, value_name = "FILE", conflicts_with = "join")]
    pub restore_from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SnapshotEncodeArgs {
    /// The backup tree to encode: MANIFEST.json and CHECKSUMS are verified
    /// before any record is read.
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// The `.fsm` file to write; it must not exist. Written to a temporary
    /// file beside it, fsynced, then linked into place.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Cluster id for the snapshot header [default: MANIFEST.cluster_id].
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Raft group id for the snapshot header.
    #[arg(long, default_value_t = 1)]
    pub group: u64,
    /// Decode the written file and compare it with the tree, record by
    /// record, before publishing it; a mismatch fails and writes nothing.
    #[arg(long)]
    pub self_test: bool,
    /// Memory for sorting rows before sorted runs spill to disk beside
    /// the output, in MiB.
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    pub sort_memory_mib: usize,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub output_format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum KvOp {
    /// Print a key's value on stdout; exit 1 when the key is absent.
    Get { key: String },
    /// Write a key; returns once the write is applied.
    Put {
        key: String,
        value: String,
        /// Expire the key after this many milliseconds.
        #[arg(long, default_value_t = 0)]
        ttl_ms: u64,
    },
    /// Delete a key.
    Delete { key: String },
    /// List keys in [--start, --end) as KEY<TAB>VALUE lines.
    Scan {
        #[arg(long, default_value = "")]
        start: String,
        #[arg(long)]
        end: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[arg(long)]
        reverse: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterOp {
    /// Add a node as a non-voting learner.
    AddLearner {
        #[arg(long)]
        node_id: u64,
        /// The new node's gRPC address.
        #[arg(long)]
        address: String,
    },
    /// Make a caught-up learner a voter.
    Promote {
        #[arg(long)]
        node_id: u64,
        /// Required match index (0: the leader's commit index now).
        #[arg(long, default_value_t = 0)]
        min_match: u64,
    },
    /// Remove a node from the group.
    Remove {
        #[arg(long)]
        node_id: u64,
    },
    /// Hand leadership to another voter.
    TransferLeader {
        #[arg(long)]
        node_id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotOp {
    /// Take a snapshot now and print the path of the .fsm file written.
    Create {
        #[command(flatten)]
        conn: ConnArgs,
    },
}
