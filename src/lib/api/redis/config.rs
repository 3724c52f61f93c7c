//! Configuration of the Redis listener: authentication, protocol limits,
//! connection limits and timeouts. Defaults follow Redis.

use std::time::Duration;

use super::resp::{
    DEFAULT_MAX_INLINE_LEN, DEFAULT_MAX_MULTIBULK_LEN, DEFAULT_PROTO_MAX_BULK_LEN, ParserLimits,
};

/// Redis's default `client-query-buffer-limit` (1 GiB).
pub const DEFAULT_QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;
/// Redis's default hard `client-output-buffer-limit pubsub` (32 MiB).
pub const DEFAULT_PUBSUB_OUTPUT_LIMIT: usize = 32 * 1024 * 1024;
/// Redis's default `maxclients`.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// How long one reply write may stall before the client is dropped.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of one Redis listener.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The password of the `default` user (and of [`RedisConfig::user`]).
    /// `None`: no authentication, and only loopback clients unless
    /// [`RedisConfig::allow_non_loopback`] is set.
    pub password: Option<String>,
    /// An additional user name accepted by `AUTH user password` and
    /// `HELLO ... AUTH user password`, with the same password.
    pub user: Option<String>,
    /// Accept non-loopback clients even without a password.
    pub allow_non_loopback: bool,
    /// Largest bulk argument (`proto-max-bulk-len`).
    pub proto_max_bulk_len: usize,
    /// Most arguments per request.
    pub max_multibulk_len: usize,
    /// Longest inline request.
    pub max_inline_len: usize,
    /// Most simultaneous clients (`maxclients`).
    pub max_clients: usize,
    /// Close clients idle this long (`timeout`; `None` = never, Redis's default).
    /// Subscribers and clients blocked in a command are not idle.
    pub idle_timeout: Option<Duration>,
    /// Largest unprocessed input per client (`client-query-buffer-limit`).
    pub query_buffer_limit: usize,
    /// Largest backlog of undelivered pub/sub messages per subscriber.
    pub pubsub_output_limit: usize,
    /// Longest time one write to a client may stall.
    pub write_timeout: Duration,
    /// The version reported by `HELLO` and `INFO`.
    pub server_version: String,
    /// Where to register metrics, if anywhere.
    pub registry: Option<prometheus::Registry>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            password: None,
            user: None,
            allow_non_loopback: false,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            max_multibulk_len: DEFAULT_MAX_MULTIBULK_LEN,
            max_inline_len: DEFAULT_MAX_INLINE_LEN,
            max_clients: DEFAULT_MAX_CLIENTS,
            idle_timeout: None,
            query_buffer_limit: DEFAULT_QUERY_BUFFER_LIMIT,
            pubsub_output_limit: DEFAULT_PUBSUB_OUTPUT_LIMIT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            server_version: "7.2.0".to_string(),
            registry: None,
        }
    }
}

impl RedisConfig {
    /// The parser limits these settings imply.
    pub fn parser_limits(&self) -> ParserLimits {
        ParserLimits {
            proto_max_bulk_len: self.proto_max_bulk_len,
            max_multibulk_len: self.max_multibulk_len,
            max_inline_len: self.max_inline_len,
        }
    }

    /// Whether `user`/`password` is a valid pair. Without a configured
    /// password the default user (and the configured user) take any password.
    pub fn check_credentials(&self, user: &[u8], password: &[u8]) -> bool {
        let known_user = user == b"default"
            || self
                .user
                .as_deref()
                .is_some_and(|configured| configured.as_bytes() == user);
        if !known_user {
            return false;
        }
        match &self.password {
            None => true,
            Some(expected) => constant_time_eq(expected.as_bytes(), password),
        }
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    expected
        .iter()
        .zip(given)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let open = RedisConfig::default();
        assert!(open.check_credentials(b"default", b"anything"));
        assert!(!open.check_credentials(b"alice", b"anything"));
        let locked = RedisConfig {
            password: Some("s3cret".into()),
            user: Some("alice".into()),
            ..RedisConfig::default()
        };
        assert!(locked.check_credentials(b"default", b"s3cret"));
        assert!(locked.check_credentials(b"alice", b"s3cret"));
        assert!(!locked.check_credentials(b"alice", b"s3cre"));
        assert!(!locked.check_credentials(b"bob", b"s3cret"));
    }
}
