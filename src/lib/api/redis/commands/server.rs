//! Server commands answered by the executor: INFO, CONFIG, TIME, WAIT.

use super::ctx::{CmdResult, Ctx};
use crate::api::redis::args::{Command, ERR_SYNTAX, error, parse_i64};
use crate::api::redis::glob::glob_match_with_case;
use crate::api::redis::reply::{Protocol, Reply};
use crate::txn::KvBackend;

/// The read-only configuration subset CONFIG GET reports.
pub const CONFIG: &[(&str, &str)] = &[
    ("appendonly", "no"),
    ("busy-reply-threshold", "5000"),
    ("databases", "1"),
    ("hash-max-listpack-entries", "128"),
    ("hash-max-ziplist-entries", "128"),
    ("list-max-listpack-size", "-2"),
    ("lua-time-limit", "5000"),
    ("maxclients", "10000"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("notify-keyspace-events", ""),
    ("proto-max-bulk-len", "536870912"),
    ("save", ""),
    ("set-max-intset-entries", "512"),
    ("slowlog-log-slower-than", "10000"),
    ("timeout", "0"),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-ziplist-entries", "128"),
];

pub fn config<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let sub = cmd.args[0].to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" => {
            let mut out = Vec::new();
            for (name, value) in CONFIG {
                if cmd.args[1..]
                    .iter()
                    .any(|p| glob_match_with_case(p, name.as_bytes(), true))
                {
                    out.push((Reply::bulk(name), Reply::bulk(value)));
                }
            }
            let _ = ctx.protocol;
            Ok(Reply::Map(out))
        }
        b"SET" => Err(Reply::error(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(cmd.args.get(1).map_or(&b""[..], |a| a.as_ref()))
        ))
        .into()),
        b"RESETSTAT" => Ok(Reply::ok()),
        b"REWRITE" => Err(error("ERR The server is running without a config file").into()),
        b"HELP" => Ok(Reply::Array(
            [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ]
            .into_iter()
            .map(Reply::simple)
            .collect(),
        )),
        _ => Err(error(ERR_SYNTAX).into()),
    }
}

pub fn time() -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
}

pub fn wait(cmd: &Command) -> CmdResult {
    parse_i64(&cmd.args[0])?;
    let timeout = parse_i64(&cmd.args[1])?;
    if timeout < 0 {
        return Err(error("ERR timeout is negative").into());
    }
    // A commit is acknowledged only once replicated by the group's
    // majority; there are no asynchronous replicas to wait for.
    Ok(Reply::Integer(0))
}

pub fn info<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let wanted: Vec<String> = cmd
        .args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let want = |name: &str| all || wanted.iter().any(|w| w == name);
    let mut text = String::new();
    if want("server") {
        let uptime = ctx.exec.uptime().as_secs();
        text.push_str(&format!(
            "# Server\r\nredis_version:7.2.0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:0\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:elastickv\r\nserver_name:elastickv\r\nelastickv_version:{}\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            uptime / 86_400,
            env!("CARGO_PKG_VERSION"),
        ));
    }
    if want("clients") {
        text.push_str("# Clients\r\nblocked_clients:0\r\nmaxclients:10000\r\n\r\n");
    }
    if want("memory") {
        text.push_str("# Memory\r\nused_memory:0\r\nused_memory_human:0B\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n\r\n");
    }
    if want("persistence") {
        text.push_str(
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\naof_enabled:0\r\n\r\n",
        );
    }
    if want("replication") {
        text.push_str(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n\r\n",
        );
    }
    if want("keyspace") {
        // Cost: one seek per key (a full keyspace scan).
        let (entries, _) = ctx.db.scan_keys(None, usize::MAX)?;
        text.push_str("# Keyspace\r\n");
        if !entries.is_empty() {
            let expires = entries.iter().filter(|e| e.meta.expire_at != 0).count();
            text.push_str(&format!(
                "db0:keys={},expires={expires},avg_ttl=0\r\n",
                entries.len()
            ));
        }
        text.push_str("\r\n");
    }
    let text = text.trim_end_matches("\r\n").to_string() + "\r\n";
    Ok(match ctx.protocol {
        Protocol::Resp3 => Reply::Verbatim {
            format: *b"txt",
            text: text.into(),
        },
        Protocol::Resp2 => Reply::bulk(text),
    })
}
