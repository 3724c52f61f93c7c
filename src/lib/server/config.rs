//! Settings of `elastickv serve`: defaults, the optional TOML file, and the
//! rules that make a configuration valid (checked before anything starts).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything a node needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// Node-to-node and admin gRPC.
    pub listen: String,
    /// Address peers use to reach this node (default: `listen`).
    pub advertise: Option<String>,
    /// Initial voters `(id, address)`, including this node; empty = only this node.
    pub peers: Vec<(u64, String)>,
    /// Start empty and wait to be added to an existing cluster.
    pub join: bool,
    /// Prometheus `/metrics`; empty string disables.
    pub metrics: String,
    /// Redis front end; `None` disables.
    pub redis: Option<String>,
    pub redis_password: Option<String>,
    /// Allow the Redis front end beyond loopback without a password.
    pub redis_allow_unauthenticated_remote: bool,
    /// Required on every node-to-node and admin call when set.
    pub cluster_token: Option<String>,
    pub raft_tick_ms: u64,
    pub raft_heartbeat_ticks: usize,
    pub raft_election_ticks: usize,
    pub snapshot_every: u64,
    /// Fsync every applied batch. Off by default, at no cost in durability:
    /// the Raft log lives in the same RocksDB, so every synced log append
    /// also makes all earlier applied batches durable (one WAL), every
    /// acknowledged write is in the fsynced log, and a crash that loses the
    /// tail of applied batches re-applies them from the log (apply is
    /// deterministic). Snapshots still fsync the applied index first.
    pub sync_writes: bool,
    /// Start a new cluster from this `.fsm` file (`--restore-from`); a
    /// one-time command-line action, never read from the config file.
    #[serde(skip)]
    pub restore_from: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./elastickv-data"),
            node_id: 1,
            listen: "127.0.0.1:50051".into(),
            advertise: None,
            peers: Vec::new(),
            join: false,
            metrics: "127.0.0.1:9090".into(),
            redis: None,
            redis_password: None,
            redis_allow_unauthenticated_remote: false,
            cluster_token: None,
            raft_tick_ms: 10,
            raft_heartbeat_ticks: 20,
            raft_election_ticks: 200,
            snapshot_every: 10_000,
            sync_writes: false,
            restore_from: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid --peers entry {entry:?}: expected ID=HOST:PORT with a non-zero numeric ID")]
    BadPeer { entry: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServeConfig {
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Parses `1=127.0.0.1:50051,2=...`.
    pub fn parse_peers(spec: &str) -> Result<Vec<(u64, String)>, ConfigError> {
        let mut out = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || ConfigError::BadPeer {
                entry: entry.to_string(),
            };
            let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
            let id: u64 = id.trim().parse().map_err(|_| bad())?;
            let addr = addr.trim();
            if id == 0 || addr.is_empty() || !addr.contains(':') {
                return Err(bad());
            }
            out.push((id, addr.to_string()));
        }
        Ok(out)
    }

    /// The Redis listen address and whether it was asked for explicitly:
    /// the single-node default serves Redis on 127.0.0.1:6379; an empty
    /// address disables it.
    pub fn redis_listen(&self) -> Option<(String, bool)> {
        match &self.redis {
            Some(addr) if addr.is_empty() => None,
            Some(addr) => Some((addr.clone(), true)),
            None if self.peers.is_empty() && !self.join => {
                Some(("127.0.0.1:6379".to_string(), false))
            }
            None => None,
        }
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.clone())
    }

    /// The initial voters: the given peers, or this node alone.
    pub fn initial_voters(&self) -> Vec<(u64, String)> {
        if self.peers.is_empty() {
            vec![(self.node_id, self.advertise_addr())]
        } else {
            let mut peers = self.peers.clone();
            peers.sort();
            peers
        }
    }

    /// True when `listen` binds beyond loopback.
    pub fn listens_beyond_loopback(&self) -> bool {
        match self.listen.parse::<SocketAddr>() {
            Ok(addr) => !addr.ip().is_loopback(),
            // A host name: assume it may be reachable from elsewhere.
            Err(_) => !self.listen.starts_with("localhost:"),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(ConfigError::Invalid("--node-id must be non-zero".into()));
        }
        if self.join && self.restore_from.is_some() {
            return Err(ConfigError::Invalid(
                "--join starts an empty node: it cannot --restore-from a snapshot".into(),
            ));
        }
        if self.join && !self.peers.is_empty() {
            return Err(ConfigError::Invalid(
                "--join starts an empty node: it takes no --peers".into(),
            ));
        }
        if !self.peers.is_empty() && !self.peers.iter().any(|(id, _)| *id == self.node_id) {
            return Err(ConfigError::Invalid(format!(
                "--peers must include this node (id {})",
                self.node_id
            )));
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid("--peers lists a node id twice".into()));
        }
        if self.listens_beyond_loopback() && self.cluster_token.is_none() {
            return Err(ConfigError::Invalid(format!(
                "--listen {} is reachable beyond loopback: set --cluster-token (or cluster_token in the config file)",
                self.listen
            )));
        }
        if let Some(token) = &self.cluster_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::Invalid(
                "--cluster-token must be non-empty printable ASCII".into(),
            ));
        }
        if self.raft_tick_ms == 0
            || self.raft_heartbeat_ticks == 0
            || self.raft_election_ticks <= self.raft_heartbeat_ticks
        {
            return Err(ConfigError::Invalid(
                "raft timings: tick > 0, heartbeat > 0 and election > heartbeat ticks".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject_garbage() {
        assert_eq!(
            ServeConfig::parse_peers("1=127.0.0.1:1, 2=h:2").unwrap(),
            vec![(1, "127.0.0.1:1".to_string()), (2, "h:2".to_string())]
        );
        for bad in ["x=1:1", "0=a:1", "1", "1=", "1=nocolon"] {
            assert!(ServeConfig::parse_peers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_listen_requires_a_token() {
        let cfg = ServeConfig {
            listen: "0.0.0.0:5000".into(),
            ..ServeConfig::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = ServeConfig {
            cluster_token: Some("s3cret".into()),
            ..cfg
        };
        assert!(cfg.validate().is_ok());
        assert!(ServeConfig::default().validate().is_ok());
    }

    #[test]
    fn peers_must_include_self_and_be_unique() {
        let cfg = ServeConfig {
            node_id: 3,
            peers: vec![(1, "a:1".into()), (2, "b:1".into())],
            ..ServeConfig::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = ServeConfig {
            node_id: 1,
            peers: vec![(1, "a:1".into()), (1, "b:1".into())],
            ..ServeConfig::default()
        };
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn toml_file_with_unknown_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "node_id = 2\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let cfg = ServeConfig::from_toml_file(&path).unwrap();
        assert_eq!(cfg.node_id, 2);
        std::fs::write(&path, "nodeid = 2\n").unwrap();
        assert!(ServeConfig::from_toml_file(&path).is_err());
    }
}
