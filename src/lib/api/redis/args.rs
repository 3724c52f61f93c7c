//! A parsed command and the argument helpers the command handlers share.
//!
//! [`Command`] is what the front end hands to the executor: the table entry
//! (already arity-checked) and the arguments after the command name. The
//! helpers parse integers, floats and options with Redis's exact rules and
//! error words, so every handler answers bad input the way Redis does.

use bytes::Bytes;

use super::command::{CommandSpec, command_keys};
use super::reply::Reply;
use super::resp::parse_redis_int;

/// `ERR syntax error`.
pub const ERR_SYNTAX: &str = "ERR syntax error";
/// The reply for an operation on a key of another type.
pub const ERR_WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// A malformed or out-of-range integer argument.
pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// A malformed float argument.
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
/// INCR/DECR family overflow.
pub const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
/// RENAME and friends on a missing key.
pub const ERR_NO_SUCH_KEY: &str = "ERR no such key";
/// LSET beyond the list.
pub const ERR_INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
/// A range bound that is not a float (ZRANGEBYSCORE, ZCOUNT...).
pub const ERR_MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
/// A lexicographic range bound without `[`, `(`, `-` or `+`.
pub const ERR_MIN_MAX_NOT_LEX: &str = "ERR min or max not valid string range item";
/// A blocking timeout that is not a number.
pub const ERR_TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
/// A negative blocking timeout.
pub const ERR_TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
/// HINCRBY on a field that is not an integer.
pub const ERR_HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
/// HINCRBYFLOAT on a field that is not a float.
pub const ERR_HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
/// INCRBYFLOAT/HINCRBYFLOAT producing NaN or infinity.
pub const ERR_NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
/// ZINCRBY/ZADD INCR producing NaN.
pub const ERR_SCORE_NAN: &str = "ERR resulting score is not a number (NaN)";
/// A SCAN-family cursor that is not an unsigned integer.
pub const ERR_INVALID_CURSOR: &str = "ERR invalid cursor";
/// A count that must be positive.
pub const ERR_MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
/// EVALSHA with an unknown script.
pub const ERR_NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
/// SETRANGE/APPEND results above `proto-max-bulk-len`.
pub const ERR_STRING_TOO_LONG: &str =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// An error reply from one of the constants above.
pub fn error(text: &'static str) -> Reply {
    Reply::error(text)
}

/// `ERR invalid expire time in '<command>' command`.
pub fn invalid_expire_time(lowercase_command: &str) -> Reply {
    Reply::error(format!(
        "ERR invalid expire time in '{lowercase_command}' command"
    ))
}

/// One command ready for execution: resolved, arity-checked, arguments
/// after the name.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The table entry.
    pub spec: &'static CommandSpec,
    /// The subcommand entry for container commands (`CONFIG GET` ...); its
    /// name is also `args[0]`.
    pub subcommand: Option<&'static CommandSpec>,
    /// Arguments after the command name.
    pub args: Vec<Bytes>,
}

impl Command {
    /// The upper-case command name, as in the table (`"GET"`).
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The argument at `index` (0 = first after the name); arity checks
    /// make the mandatory ones present, so a missing one is a syntax error.
    pub fn arg(&self, index: usize) -> Result<&Bytes, Reply> {
        self.args.get(index).ok_or_else(|| error(ERR_SYNTAX))
    }

    /// The keys this command names, from the table's key positions.
    pub fn keys(&self) -> Vec<&Bytes> {
        command_keys(self.spec, &self.args)
    }

    /// Whether argument `index` equals `word`, ignoring ASCII case.
    pub fn arg_is(&self, index: usize, word: &str) -> bool {
        self.args
            .get(index)
            .is_some_and(|arg| arg.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// Parses a signed 64-bit integer with Redis's strict rules.
pub fn parse_i64(arg: &[u8]) -> Result<i64, Reply> {
    parse_redis_int(arg).ok_or_else(|| error(ERR_NOT_INTEGER))
}

/// Parses a non-negative integer (counts, cursors), reporting `error_text`
/// when it is malformed or negative.
pub fn parse_non_negative(arg: &[u8], error_text: &'static str) -> Result<u64, Reply> {
    match parse_redis_int(arg) {
        Some(value) if value >= 0 => Ok(value as u64),
        _ => Err(error(error_text)),
    }
}

/// Parses a SCAN-family cursor (an unsigned 64-bit integer).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let text = std::str::from_utf8(arg).map_err(|_| error(ERR_INVALID_CURSOR))?;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(error(ERR_INVALID_CURSOR));
    }
    text.parse().map_err(|_| error(ERR_INVALID_CURSOR))
}

/// Parses a double the way Redis's `string2d` does: no surrounding spaces,
/// `inf`/`+inf`/`-inf` accepted, NaN and overflow rejected. `None` on error.
pub fn parse_double(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    if value.is_infinite() {
        let lowered = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if lowered != "inf" && lowered != "infinity" {
            return None;
        }
    }
    Some(value)
}

/// Parses a double, answering `ERR value is not a valid float`.
pub fn parse_f64(arg: &[u8]) -> Result<f64, Reply> {
    parse_double(arg).ok_or_else(|| error(ERR_NOT_FLOAT))
}

/// Parses a blocking-command timeout in seconds (BLPOP, BZPOPMIN...).
/// Returns `None` for 0 (block forever).
pub fn parse_timeout_secs(arg: &[u8]) -> Result<Option<std::time::Duration>, Reply> {
    let seconds = parse_double(arg)
        .filter(|value| value.is_finite())
        .ok_or_else(|| error(ERR_TIMEOUT_NOT_FLOAT))?;
    if seconds < 0.0 {
        return Err(error(ERR_TIMEOUT_NEGATIVE));
    }
    if seconds == 0.0 {
        return Ok(None);
    }
    std::time::Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| error(ERR_TIMEOUT_NOT_FLOAT))
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub fn is_word(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::redis::command::lookup;

    #[test]
    fn integers_follow_redis_rules() {
        assert_eq!(parse_i64(b"-5"), Ok(-5));
        assert_eq!(parse_i64(b"+5"), Err(error(ERR_NOT_INTEGER)));
        assert_eq!(parse_i64(b"1.0"), Err(error(ERR_NOT_INTEGER)));
        assert_eq!(
            parse_non_negative(b"-1", ERR_MUST_BE_POSITIVE),
            Err(error(ERR_MUST_BE_POSITIVE))
        );
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"-1"), Err(error(ERR_INVALID_CURSOR)));
    }

    #[test]
    fn doubles_follow_redis_rules() {
        assert_eq!(parse_f64(b"1.5"), Ok(1.5));
        assert_eq!(parse_f64(b"-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Ok(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Ok(1000.0));
        for bad in [&b"nan"[..], b"", b" 1", b"1 ", b"abc", b"1e400"] {
            assert_eq!(
                parse_f64(bad),
                Err(error(ERR_NOT_FLOAT)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout_secs(b"0"), Ok(None));
        assert_eq!(
            parse_timeout_secs(b"0.5"),
            Ok(Some(std::time::Duration::from_millis(500)))
        );
        assert_eq!(parse_timeout_secs(b"-1"), Err(error(ERR_TIMEOUT_NEGATIVE)));
        assert_eq!(parse_timeout_secs(b"x"), Err(error(ERR_TIMEOUT_NOT_FLOAT)));
    }

    #[test]
    fn command_helpers() {
        let command = Command {
            spec: lookup(b"SET").unwrap(),
            subcommand: None,
            args: vec![Bytes::from("k"), Bytes::from("v"), Bytes::from("nx")],
        };
        assert_eq!(command.name(), "SET");
        assert!(command.arg_is(2, "NX"));
        assert_eq!(command.keys(), vec![&Bytes::from("k")]);
        assert_eq!(command.arg(5), Err(error(ERR_SYNTAX)));
        assert_eq!(
            invalid_expire_time("set"),
            Reply::error("ERR invalid expire time in 'set' command")
        );
    }
}
