//! Server commands answered by the executor: INFO, CONFIG, TIME, WAIT.
//!
//! INFO reports measured numbers only: clients come from the listeners'
//! client registries, memory from the process's own accounting in
//! `/proc` (Linux; elsewhere the memory numbers read 0).

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
        let counts = ctx.exec.client_counts();
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\r\n",
            counts.connected, counts.max_clients, counts.blocked
        ));
    }
    if want("memory") {
        text.push_str(&memory_section(
            &ProcessMemory::read(),
            ctx.exec.scripts().len(),
        ));
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

/// The process's memory as the kernel accounts it, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub peak_rss: u64,
    /// Physical memory of the machine (`MemTotal`).
    pub total_system: u64,
}

impl ProcessMemory {
    /// Reads `/proc/self/status` and `/proc/meminfo`; what cannot be read
    /// stays 0.
    pub fn read() -> ProcessMemory {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        ProcessMemory {
            rss: proc_kib_field(&status, "VmRSS:"),
            peak_rss: proc_kib_field(&status, "VmHWM:"),
            total_system: proc_kib_field(&meminfo, "MemTotal:"),
        }
    }
}

/// A `Name:   1234 kB` line of a `/proc` file, in bytes (0 when absent).
pub fn proc_kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib.saturating_mul(1024))
}

/// Redis's `bytesToHuman`: `123B`, `1.50K`, `12.00M`, `1.00G`...
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 10, "K"),
        (1 << 20, "M"),
        (1 << 30, "G"),
        (1 << 40, "T"),
        (1 << 50, "P"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let (scale, unit) = UNITS
        .iter()
        .rev()
        .find(|(scale, _)| n >= *scale)
        .copied()
        .unwrap_or((1 << 10, "K"));
    format!("{:.2}{unit}", n as f64 / scale as f64)
}

/// The `# Memory` section. The data set lives in the storage engine, so
/// `used_memory` is the whole process's resident memory.
fn memory_section(memory: &ProcessMemory, cached_scripts: usize) -> String {
    format!(
        "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{rss_h}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{rss_h}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{peak_h}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{total_h}\r\nnumber_of_cached_scripts:{cached_scripts}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n\r\n",
        rss = memory.rss,
        rss_h = bytes_to_human(memory.rss),
        peak = memory.peak_rss,
        peak_h = bytes_to_human(memory.peak_rss),
        total = memory.total_system,
        total_h = bytes_to_human(memory.total_system),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_follow_redis() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(5 << 20), "5.00M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
    }

    #[test]
    fn proc_fields_parse_in_kib() {
        let status = "Name:\telastickv\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(proc_kib_field(status, "VmRSS:"), 1024 * 1024);
        assert_eq!(proc_kib_field(status, "VmHWM:"), 2048 * 1024);
        assert_eq!(proc_kib_field(status, "VmSwap:"), 0);
        assert_eq!(proc_kib_field("VmRSS: junk kB", "VmRSS:"), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_resident_memory() {
        let memory = ProcessMemory::read();
        assert!(memory.rss > 0);
        assert!(memory.peak_rss >= memory.rss);
        assert!(memory.total_system > memory.rss);
        let section = memory_section(&memory, 2);
        assert!(section.contains(&format!("used_memory:{}\r\n", memory.rss)));
        assert!(section.contains("number_of_cached_scripts:2\r\n"));
    }
}
