//! The command table: every command the Redis front end knows, with its
//! arity, flags, key positions and ACL categories (Redis 7 conventions).
//!
//! The table drives three things and must therefore be the only list of
//! commands: name lookup (unknown commands get Redis's exact error), arity
//! checks (answered before any executor is called) and the `COMMAND` family
//! of replies that clients such as redis-cli and redis-py read on connect.
//!
//! Arity follows Redis: it counts the command name; a positive arity is an
//! exact argument count, a negative one a minimum. Container commands
//! (`CLIENT`, `CONFIG`, ...) carry their subcommands, each with its own arity.

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use super::reply::Reply;

/// Command flag bits, named as `COMMAND INFO` names them.
pub mod flags {
    /// May modify the data set.
    pub const WRITE: u32 = 1 << 0;
    /// Never modifies the data set.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed inside scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading the data set.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Not shown by MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// Not logged by the slow log.
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    /// Constant or logarithmic time.
    pub const FAST: u32 = 1 << 11;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 12;
    /// Key positions depend on the arguments.
    pub const MOVABLEKEYS: u32 = 1 << 13;
    /// May be called with no key even though it takes keys.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 15;

    /// Every flag with its `COMMAND INFO` name, in Redis's output order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (ALLOW_BUSY, "allow_busy"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// ACL category bits, named as `COMMAND INFO` names them.
pub mod categories {
    #![allow(missing_docs)]
    pub const CAT_KEYSPACE: u32 = 1 << 0;
    pub const CAT_READ: u32 = 1 << 1;
    pub const CAT_WRITE: u32 = 1 << 2;
    pub const CAT_SET: u32 = 1 << 3;
    pub const CAT_SORTEDSET: u32 = 1 << 4;
    pub const CAT_LIST: u32 = 1 << 5;
    pub const CAT_HASH: u32 = 1 << 6;
    pub const CAT_STRING: u32 = 1 << 7;
    pub const CAT_HYPERLOGLOG: u32 = 1 << 8;
    pub const CAT_STREAM: u32 = 1 << 9;
    pub const CAT_ADMIN: u32 = 1 << 10;
    pub const CAT_FAST: u32 = 1 << 11;
    pub const CAT_SLOW: u32 = 1 << 12;
    pub const CAT_PUBSUB: u32 = 1 << 13;
    pub const CAT_BLOCKING: u32 = 1 << 14;
    pub const CAT_DANGEROUS: u32 = 1 << 15;
    pub const CAT_CONNECTION: u32 = 1 << 16;
    pub const CAT_TRANSACTION: u32 = 1 << 17;
    pub const CAT_SCRIPTING: u32 = 1 << 18;

    /// Every category with its `@name`, in Redis's output order.
    pub const NAMES: &[(u32, &str)] = &[
        (CAT_KEYSPACE, "@keyspace"),
        (CAT_READ, "@read"),
        (CAT_WRITE, "@write"),
        (CAT_SET, "@set"),
        (CAT_SORTEDSET, "@sortedset"),
        (CAT_LIST, "@list"),
        (CAT_HASH, "@hash"),
        (CAT_STRING, "@string"),
        (CAT_HYPERLOGLOG, "@hyperloglog"),
        (CAT_STREAM, "@stream"),
        (CAT_ADMIN, "@admin"),
        (CAT_FAST, "@fast"),
        (CAT_SLOW, "@slow"),
        (CAT_PUBSUB, "@pubsub"),
        (CAT_BLOCKING, "@blocking"),
        (CAT_DANGEROUS, "@dangerous"),
        (CAT_CONNECTION, "@connection"),
        (CAT_TRANSACTION, "@transaction"),
        (CAT_SCRIPTING, "@scripting"),
    ];

    /// Data-type categories and the `group` each maps to in `COMMAND DOCS`.
    pub const GROUPS: &[(u32, &str)] = &[
        (CAT_STRING, "string"),
        (CAT_LIST, "list"),
        (CAT_HASH, "hash"),
        (CAT_SET, "set"),
        (CAT_SORTEDSET, "sorted-set"),
        (CAT_STREAM, "stream"),
        (CAT_HYPERLOGLOG, "hyperloglog"),
        (CAT_PUBSUB, "pubsub"),
        (CAT_TRANSACTION, "transactions"),
        (CAT_SCRIPTING, "scripting"),
        (CAT_CONNECTION, "connection"),
        (CAT_KEYSPACE, "generic"),
    ];
}

use categories::*;
use flags::*;

/// One command (or subcommand) description.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Upper-case name (`GET`; for a subcommand only its own part, `SETNAME`).
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or minimum if negative.
    pub arity: i32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// Position of the first key (0 = none).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end).
    pub last_key: i32,
    /// Distance between keys.
    pub key_step: i32,
    /// Bits from [`categories`].
    pub categories: u32,
    /// Subcommands of a container command, sorted by name.
    pub subcommands: &'static [CommandSpec],
}

const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    categories: u32,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        categories,
        subcommands: &[],
    }
}

const fn container(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    categories: u32,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        categories,
        subcommands,
    }
}

impl CommandSpec {
    /// Whether every bit of `flag` is set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag == flag
    }

    /// Whether `argc` (arguments including the command name) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Whether the command writes.
    pub fn is_write(&self) -> bool {
        self.has_flag(WRITE)
    }

    /// Whether this command has subcommands.
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Finds a subcommand by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|sub| sub.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// The names of the set flags.
    pub fn flag_names(&self) -> Vec<&'static str> {
        flags::NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    /// The names of the ACL categories.
    pub fn category_names(&self) -> Vec<&'static str> {
        categories::NAMES
            .iter()
            .filter(|(bit, _)| self.categories & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    /// The `COMMAND DOCS` group.
    pub fn group(&self) -> &'static str {
        categories::GROUPS
            .iter()
            .find(|(bit, _)| self.categories & bit != 0)
            .map(|(_, group)| *group)
            .unwrap_or("server")
    }

    /// Indexes into `args` (arguments after the command name) of the keys
    /// given by the fixed first/last/step positions. Commands whose keys
    /// move with their arguments ([`flags::MOVABLEKEYS`]) report only what
    /// the fixed positions say; see [`command_keys`] for the full answer.
    pub fn fixed_key_indexes(&self, args_len: usize) -> Vec<usize> {
        if self.first_key <= 0 || self.key_step <= 0 {
            return Vec::new();
        }
        let argc = args_len as i64 + 1;
        let first = i64::from(self.first_key);
        let last = if self.last_key < 0 {
            argc + i64::from(self.last_key)
        } else {
            i64::from(self.last_key)
        };
        let last = last.min(argc - 1);
        let mut indexes = Vec::new();
        let mut position = first;
        while position <= last {
            indexes.push((position - 1) as usize);
            position += i64::from(self.key_step);
        }
        indexes
    }
}

/// The keys named by a command's arguments (`args` excludes the command
/// name), including the argument-dependent layouts of `EVAL`/`EVALSHA`
/// (and their `_RO` forms)
/// (`numkeys`) and `XREAD` (`STREAMS`). Malformed argument lists yield the
/// keys that can be identified; the command itself reports the error.
pub fn command_keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> Vec<&'a Bytes> {
    match spec.name {
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" => {
            let count = args
                .get(1)
                .and_then(|numkeys| super::resp::parse_redis_int(numkeys))
                .filter(|count| *count >= 0)
                .unwrap_or(0) as usize;
            args.iter().skip(2).take(count).collect()
        }
        "XREAD" => {
            let Some(streams) = args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"STREAMS"))
            else {
                return Vec::new();
            };
            let rest = &args[streams + 1..];
            rest[..rest.len() / 2].iter().collect()
        }
        _ => spec
            .fixed_key_indexes(args.len())
            .into_iter()
            .filter_map(|index| args.get(index))
            .collect(),
    }
}

static BY_NAME: LazyLock<HashMap<&'static str, &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|spec| (spec.name, spec)).collect());

/// Every top-level command, sorted by name.
pub fn all_commands() -> &'static [CommandSpec] {
    COMMANDS
}

/// Finds a top-level command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    let upper = std::str::from_utf8(name).ok()?.to_ascii_uppercase();
    BY_NAME.get(upper.as_str()).copied()
}

/// A request resolved against the table and checked for arity.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The top-level command.
    pub spec: &'static CommandSpec,
    /// The subcommand, for container commands.
    pub subcommand: Option<&'static CommandSpec>,
}

/// Resolves `argv` (name first) to its table entry, answering unknown
/// commands, unknown subcommands and arity violations with Redis's words.
pub fn resolve(argv: &[Bytes]) -> Result<Resolved, Reply> {
    let Some(name) = argv.first() else {
        return Err(Reply::error("ERR empty command"));
    };
    let Some(spec) = lookup(name) else {
        return Err(unknown_command(argv));
    };
    if !spec.arity_ok(argv.len()) {
        return Err(wrong_arity(&spec.name.to_ascii_lowercase()));
    }
    if !spec.is_container() {
        return Ok(Resolved {
            spec,
            subcommand: None,
        });
    }
    let Some(sub_name) = argv.get(1) else {
        return Err(wrong_arity(&spec.name.to_ascii_lowercase()));
    };
    let Some(sub) = spec.subcommand(sub_name) else {
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            truncated_lossy(sub_name, 128),
            spec.name
        )));
    };
    if !sub.arity_ok(argv.len()) {
        return Err(wrong_arity(
            &format!("{}|{}", spec.name, sub.name).to_ascii_lowercase(),
        ));
    }
    Ok(Resolved {
        spec,
        subcommand: Some(sub),
    })
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn wrong_arity(lowercase_name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{lowercase_name}' command"
    ))
}

fn truncated_lossy(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// `ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `,
/// with Redis's 128-byte budget for the quoted arguments.
pub fn unknown_command(argv: &[Bytes]) -> Reply {
    let name = argv
        .first()
        .map(|name| truncated_lossy(name, 128))
        .unwrap_or_default();
    let mut quoted: Vec<u8> = Vec::new();
    for arg in argv.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let budget = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&arg[..arg.len().min(budget)]);
        quoted.extend_from_slice(b"' ");
    }
    Reply::error(format!(
        "ERR unknown command '{name}', with args beginning with: {}",
        String::from_utf8_lossy(&quoted)
    ))
}

fn info_entry(spec: &'static CommandSpec, parent: Option<&CommandSpec>) -> Reply {
    let name = match parent {
        Some(parent) => format!("{}|{}", parent.name, spec.name).to_ascii_lowercase(),
        None => spec.name.to_ascii_lowercase(),
    };
    Reply::Array(vec![
        Reply::bulk(name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(spec.flag_names().into_iter().map(Reply::simple).collect()),
        Reply::Integer(i64::from(spec.first_key)),
        Reply::Integer(i64::from(spec.last_key)),
        Reply::Integer(i64::from(spec.key_step)),
        Reply::Set(
            spec.category_names()
                .into_iter()
                .map(Reply::simple)
                .collect(),
        ),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(
            spec.subcommands
                .iter()
                .map(|sub| info_entry(sub, Some(spec)))
                .collect(),
        ),
    ])
}

/// The `COMMAND INFO` entry of a top-level command.
pub fn command_info(spec: &'static CommandSpec) -> Reply {
    info_entry(spec, None)
}

fn docs_entry(spec: &'static CommandSpec, parent: Option<&CommandSpec>) -> Reply {
    let mut fields = vec![
        (Reply::bulk("summary"), Reply::bulk("")),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (
            Reply::bulk("group"),
            Reply::bulk(parent.unwrap_or(spec).group()),
        ),
    ];
    if spec.is_container() {
        let subs = spec
            .subcommands
            .iter()
            .map(|sub| {
                (
                    Reply::bulk(format!("{}|{}", spec.name, sub.name).to_ascii_lowercase()),
                    docs_entry(sub, Some(spec)),
                )
            })
            .collect();
        fields.push((Reply::bulk("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

/// Answers `COMMAND` and its subcommands from the table (`args` excludes
/// `COMMAND` itself; arity was already checked by [`resolve`]).
pub fn command_reply(args: &[Bytes]) -> Reply {
    let Some(sub) = args.first() else {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    };
    let sub = sub.to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" => Reply::Integer(COMMANDS.len() as i64),
        b"LIST" => {
            if args.len() > 1 {
                return Reply::error("ERR COMMAND LIST FILTERBY is not supported");
            }
            Reply::Array(
                COMMANDS
                    .iter()
                    .map(|spec| Reply::bulk(spec.name.to_ascii_lowercase()))
                    .collect(),
            )
        }
        b"INFO" => {
            let names = &args[1..];
            if names.is_empty() {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(
                names
                    .iter()
                    .map(|name| lookup(name).map(command_info).unwrap_or(Reply::NullArray))
                    .collect(),
            )
        }
        b"DOCS" => {
            let names = &args[1..];
            let selected: Vec<&'static CommandSpec> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(|name| lookup(name)).collect()
            };
            Reply::Map(
                selected
                    .into_iter()
                    .map(|spec| {
                        (
                            Reply::bulk(spec.name.to_ascii_lowercase()),
                            docs_entry(spec, None),
                        )
                    })
                    .collect(),
            )
        }
        b"GETKEYS" | b"GETKEYSANDFLAGS" => {
            let target = &args[1..];
            let Some(spec) = target.first().and_then(|name| lookup(name)) else {
                return Reply::error("ERR Invalid command specified");
            };
            if !spec.arity_ok(target.len()) {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            let keys = command_keys(spec, &target[1..]);
            if keys.is_empty() {
                return Reply::error("ERR The command has no key arguments");
            }
            let with_flags = sub.as_slice() == b"GETKEYSANDFLAGS";
            let access = if spec.is_write() { "RW" } else { "RO" };
            Reply::Array(
                keys.into_iter()
                    .map(|key| {
                        if with_flags {
                            Reply::Array(vec![
                                Reply::Bulk(key.clone()),
                                Reply::Set(vec![Reply::simple(access)]),
                            ])
                        } else {
                            Reply::Bulk(key.clone())
                        }
                    })
                    .collect(),
            )
        }
        b"HELP" => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(Reply::simple)
            .collect(),
        ),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(&args[0])
        )),
    }
}

static COMMANDS: &[CommandSpec] = &[
    spec(
        "APPEND",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "AUTH",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "BLPOP",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW | CAT_BLOCKING,
    ),
    spec(
        "BRPOP",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW | CAT_BLOCKING,
    ),
    spec(
        "BZPOPMIN",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        (1, -2, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST | CAT_BLOCKING,
    ),
    container("CLIENT", -2, 0, (0, 0, 0), CAT_SLOW, CLIENT_SUBCOMMANDS),
    container(
        "COMMAND",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
        COMMAND_SUBCOMMANDS,
    ),
    container("CONFIG", -2, 0, (0, 0, 0), CAT_SLOW, CONFIG_SUBCOMMANDS),
    spec(
        "COPY",
        -3,
        WRITE | DENYOOM,
        (1, 2, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW,
    ),
    spec(
        "DBSIZE",
        1,
        READONLY | FAST,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "DECR",
        2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "DECRBY",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "DEL",
        -2,
        WRITE,
        (1, -1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW,
    ),
    spec(
        "DISCARD",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_TRANSACTION,
    ),
    spec(
        "ECHO",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "ELASTICKV.ZREMFAST",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "EVAL",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "EVALSHA",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "EVALSHA_RO",
        -3,
        READONLY | NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "EVAL_RO",
        -3,
        READONLY | NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "EXEC",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        (0, 0, 0),
        CAT_SLOW | CAT_TRANSACTION,
    ),
    spec(
        "EXISTS",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "EXPIRE",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "EXPIREAT",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "EXPIRETIME",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "FLUSHALL",
        -1,
        WRITE,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "FLUSHDB",
        -1,
        WRITE,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "FLUSHLEGACY",
        1,
        WRITE,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "GET",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_STRING | CAT_FAST,
    ),
    spec(
        "GETDEL",
        2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "GETEX",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "GETRANGE",
        4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "GETSET",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "HDEL",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HELLO",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "HEXISTS",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HGET",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HGETALL",
        2,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_SLOW,
    ),
    spec(
        "HINCRBY",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HINCRBYFLOAT",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HKEYS",
        2,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_SLOW,
    ),
    spec(
        "HLEN",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HMGET",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HMSET",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HSCAN",
        -3,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_SLOW,
    ),
    spec(
        "HSET",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HSETNX",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HSTRLEN",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_FAST,
    ),
    spec(
        "HVALS",
        2,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_HASH | CAT_SLOW,
    ),
    spec(
        "INCR",
        2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "INCRBY",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "INCRBYFLOAT",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "INFO",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "KEYS",
        2,
        READONLY,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "LINDEX",
        3,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "LINSERT",
        5,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "LLEN",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_LIST | CAT_FAST,
    ),
    spec(
        "LMOVE",
        5,
        WRITE | DENYOOM,
        (1, 2, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "LPOP",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "LPOS",
        -3,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "LPUSH",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "LPUSHX",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "LRANGE",
        4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_LIST | CAT_SLOW,
    ),
    spec("LREM", 4, WRITE, (1, 1, 1), CAT_WRITE | CAT_LIST | CAT_SLOW),
    spec(
        "LSET",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "LTRIM",
        4,
        WRITE,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "MGET",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        CAT_READ | CAT_STRING | CAT_FAST,
    ),
    spec(
        "MSET",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "MSETNX",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "MULTI",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_TRANSACTION,
    ),
    container("OBJECT", -2, 0, (0, 0, 0), CAT_SLOW, OBJECT_SUBCOMMANDS),
    spec(
        "PERSIST",
        2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "PEXPIRE",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "PEXPIREAT",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "PEXPIRETIME",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "PFADD",
        -2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_HYPERLOGLOG | CAT_FAST,
    ),
    spec(
        "PFCOUNT",
        -2,
        READONLY,
        (1, -1, 1),
        CAT_READ | CAT_HYPERLOGLOG | CAT_SLOW,
    ),
    spec(
        "PFMERGE",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        CAT_WRITE | CAT_HYPERLOGLOG | CAT_SLOW,
    ),
    spec("PING", -1, FAST, (0, 0, 0), CAT_FAST | CAT_CONNECTION),
    spec(
        "PSETEX",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "PSUBSCRIBE",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec(
        "PTTL",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "PUBLISH",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        CAT_PUBSUB | CAT_FAST,
    ),
    container("PUBSUB", -2, 0, (0, 0, 0), CAT_SLOW, PUBSUB_SUBCOMMANDS),
    spec(
        "PUNSUBSCRIBE",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec(
        "QUIT",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "RENAME",
        3,
        WRITE,
        (1, 2, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_SLOW,
    ),
    spec(
        "RENAMENX",
        3,
        WRITE | FAST,
        (1, 2, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "RESET",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "RPOP",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "RPOPLPUSH",
        3,
        WRITE | DENYOOM,
        (1, 2, 1),
        CAT_WRITE | CAT_LIST | CAT_SLOW,
    ),
    spec(
        "RPUSH",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "RPUSHX",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_LIST | CAT_FAST,
    ),
    spec(
        "SADD",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SET | CAT_FAST,
    ),
    spec(
        "SCAN",
        -2,
        READONLY,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW,
    ),
    spec(
        "SCARD",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_FAST,
    ),
    container("SCRIPT", -2, 0, (0, 0, 0), CAT_SLOW, SCRIPT_SUBCOMMANDS),
    spec(
        "SDIFF",
        -2,
        READONLY,
        (1, -1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SDIFFSTORE",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        CAT_WRITE | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SELECT",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        CAT_FAST | CAT_CONNECTION,
    ),
    spec(
        "SET",
        -3,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "SETEX",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "SETNX",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_FAST,
    ),
    spec(
        "SETRANGE",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        CAT_WRITE | CAT_STRING | CAT_SLOW,
    ),
    spec(
        "SINTER",
        -2,
        READONLY,
        (1, -1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SINTERSTORE",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        CAT_WRITE | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SISMEMBER",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_FAST,
    ),
    spec(
        "SMEMBERS",
        2,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SMISMEMBER",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_FAST,
    ),
    spec(
        "SMOVE",
        4,
        WRITE | FAST,
        (1, 2, 1),
        CAT_WRITE | CAT_SET | CAT_FAST,
    ),
    spec(
        "SPOP",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SET | CAT_FAST,
    ),
    spec(
        "SRANDMEMBER",
        -2,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SREM",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SET | CAT_FAST,
    ),
    spec(
        "SSCAN",
        -3,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "STRLEN",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_STRING | CAT_FAST,
    ),
    spec(
        "SUBSCRIBE",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec(
        "SUNION",
        -2,
        READONLY,
        (1, -1, 1),
        CAT_READ | CAT_SET | CAT_SLOW,
    ),
    spec(
        "SUNIONSTORE",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        CAT_WRITE | CAT_SET | CAT_SLOW,
    ),
    spec("TIME", 1, LOADING | STALE | FAST, (0, 0, 0), CAT_FAST),
    spec(
        "TTL",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "TYPE",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_KEYSPACE | CAT_READ | CAT_FAST,
    ),
    spec(
        "UNLINK",
        -2,
        WRITE | FAST,
        (1, -1, 1),
        CAT_KEYSPACE | CAT_WRITE | CAT_FAST,
    ),
    spec(
        "UNSUBSCRIBE",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec(
        "UNWATCH",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        CAT_FAST | CAT_TRANSACTION,
    ),
    spec("WAIT", 3, NOSCRIPT, (0, 0, 0), CAT_SLOW | CAT_CONNECTION),
    spec(
        "WATCH",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (1, -1, 1),
        CAT_FAST | CAT_TRANSACTION,
    ),
    spec(
        "XADD",
        -5,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STREAM | CAT_FAST,
    ),
    spec(
        "XDEL",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_STREAM | CAT_FAST,
    ),
    spec(
        "XLEN",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_STREAM | CAT_FAST,
    ),
    spec(
        "XRANGE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_STREAM | CAT_SLOW,
    ),
    spec(
        "XREAD",
        -4,
        READONLY | BLOCKING | MOVABLEKEYS,
        (0, 0, 0),
        CAT_READ | CAT_STREAM | CAT_SLOW | CAT_BLOCKING,
    ),
    spec(
        "XREVRANGE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_STREAM | CAT_SLOW,
    ),
    spec(
        "XTRIM",
        -4,
        WRITE,
        (1, 1, 1),
        CAT_WRITE | CAT_STREAM | CAT_SLOW,
    ),
    spec(
        "ZADD",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZCARD",
        2,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZCOUNT",
        4,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZINCRBY",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZMSCORE",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZPOPMAX",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZPOPMIN",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZRANGE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZRANGEBYLEX",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZRANGEBYSCORE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZRANK",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZREM",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZREMRANGEBYRANK",
        4,
        WRITE,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZREMRANGEBYSCORE",
        4,
        WRITE,
        (1, 1, 1),
        CAT_WRITE | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZREVRANGE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZREVRANGEBYSCORE",
        -4,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZREVRANK",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
    spec(
        "ZSCAN",
        -3,
        READONLY,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_SLOW,
    ),
    spec(
        "ZSCORE",
        3,
        READONLY | FAST,
        (1, 1, 1),
        CAT_READ | CAT_SORTEDSET | CAT_FAST,
    ),
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "GETNAME",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "HELP",
        2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "ID",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "INFO",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "KILL",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS | CAT_CONNECTION,
    ),
    spec(
        "LIST",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS | CAT_CONNECTION,
    ),
    spec(
        "NO-EVICT",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS | CAT_CONNECTION,
    ),
    spec(
        "NO-TOUCH",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "SETINFO",
        4,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "SETNAME",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "COUNT",
        2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "DOCS",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "GETKEYS",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "GETKEYSANDFLAGS",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "HELP",
        2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "INFO",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
    spec(
        "LIST",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_CONNECTION,
    ),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "GET",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec("HELP", 2, LOADING | STALE, (0, 0, 0), CAT_SLOW),
    spec(
        "RESETSTAT",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "REWRITE",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS,
    ),
    spec(
        "SET",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        CAT_ADMIN | CAT_SLOW | CAT_DANGEROUS,
    ),
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "ENCODING",
        3,
        READONLY,
        (2, 2, 1),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW,
    ),
    spec(
        "FREQ",
        3,
        READONLY,
        (2, 2, 1),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW,
    ),
    spec(
        "HELP",
        2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_KEYSPACE | CAT_SLOW,
    ),
    spec(
        "IDLETIME",
        3,
        READONLY,
        (2, 2, 1),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW,
    ),
    spec(
        "REFCOUNT",
        3,
        READONLY,
        (2, 2, 1),
        CAT_KEYSPACE | CAT_READ | CAT_SLOW,
    ),
];

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "CHANNELS",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec("HELP", 2, LOADING | STALE, (0, 0, 0), CAT_SLOW),
    spec(
        "NUMPAT",
        2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
    spec(
        "NUMSUB",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        CAT_PUBSUB | CAT_SLOW,
    ),
];

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("EXISTS", -3, NOSCRIPT, (0, 0, 0), CAT_SLOW | CAT_SCRIPTING),
    spec("FLUSH", -2, NOSCRIPT, (0, 0, 0), CAT_SLOW | CAT_SCRIPTING),
    spec(
        "HELP",
        2,
        LOADING | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "KILL",
        2,
        NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
    spec(
        "LOAD",
        3,
        NOSCRIPT | STALE,
        (0, 0, 0),
        CAT_SLOW | CAT_SCRIPTING,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|item| Bytes::copy_from_slice(item.as_bytes()))
            .collect()
    }

    #[test]
    fn table_is_sorted_unique_and_complete() {
        let names: Vec<&str> = COMMANDS.iter().map(|spec| spec.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for required in [
            "GET",
            "SET",
            "MGET",
            "MSET",
            "MSETNX",
            "INCRBYFLOAT",
            "GETEX",
            "HSCAN",
            "LMOVE",
            "BLPOP",
            "SMISMEMBER",
            "ZMSCORE",
            "EXPIRETIME",
            "COPY",
            "WATCH",
            "PSUBSCRIBE",
            "XREAD",
            "TIME",
            "CONFIG",
            "EVALSHA",
            "SCRIPT",
            "OBJECT",
            "WAIT",
            "RESET",
            "HELLO",
            "AUTH",
            "BZPOPMIN",
            "LPOS",
            "ELASTICKV.ZREMFAST",
            "FLUSHLEGACY",
        ] {
            assert!(lookup(required.as_bytes()).is_some(), "{required} missing");
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"gEt").map(|spec| spec.name), Some("GET"));
        assert!(lookup(b"nosuch").is_none());
        assert!(lookup(&[0xff, 0xfe]).is_none());
    }

    #[test]
    fn arity_follows_redis_convention() {
        let get = lookup(b"GET").unwrap();
        assert!(get.arity_ok(2));
        assert!(!get.arity_ok(1) && !get.arity_ok(3));
        let del = lookup(b"DEL").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(10) && !del.arity_ok(1));
    }

    #[test]
    fn resolve_errors_match_redis() {
        assert_eq!(
            resolve(&argv(&["foo", "a", "b"])).unwrap_err(),
            Reply::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
        assert_eq!(
            resolve(&argv(&["foo"])).unwrap_err(),
            Reply::error("ERR unknown command 'foo', with args beginning with: ")
        );
        assert_eq!(
            resolve(&argv(&["GET"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'get' command")
        );
        assert_eq!(
            resolve(&argv(&["client"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'client' command")
        );
        assert_eq!(
            resolve(&argv(&["client", "foo"])).unwrap_err(),
            Reply::error("ERR unknown subcommand 'foo'. Try CLIENT HELP.")
        );
        assert_eq!(
            resolve(&argv(&["client", "setname"])).unwrap_err(),
            Reply::error("ERR wrong number of arguments for 'client|setname' command")
        );
        let resolved = resolve(&argv(&["client", "SetName", "x"])).unwrap();
        assert_eq!(resolved.spec.name, "CLIENT");
        assert_eq!(resolved.subcommand.map(|sub| sub.name), Some("SETNAME"));
    }

    #[test]
    fn unknown_command_arguments_are_cut_at_128_bytes() {
        let long = "x".repeat(200);
        let Reply::Error(text) = unknown_command(&argv(&["FoO", "a b", &long, "more"])) else {
            panic!("not an error");
        };
        let expected = format!(
            "ERR unknown command 'FoO', with args beginning with: 'a b' '{}' ",
            "x".repeat(122)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"MSET").unwrap();
        let args = argv(&["k1", "v1", "k2", "v2"]);
        assert_eq!(command_keys(mset, &args), vec![&args[0], &args[2]]);
        let blpop = lookup(b"BLPOP").unwrap();
        let args = argv(&["a", "b", "0"]);
        assert_eq!(command_keys(blpop, &args), vec![&args[0], &args[1]]);
        let eval = lookup(b"EVAL").unwrap();
        let args = argv(&["return 1", "2", "k1", "k2", "arg"]);
        assert_eq!(command_keys(eval, &args), vec![&args[2], &args[3]]);
        let xread = lookup(b"XREAD").unwrap();
        let args = argv(&["COUNT", "2", "STREAMS", "s1", "s2", "0", "0"]);
        assert_eq!(command_keys(xread, &args), vec![&args[3], &args[4]]);
        assert!(command_keys(lookup(b"PING").unwrap(), &[]).is_empty());
    }

    #[test]
    fn command_replies_are_well_formed() {
        assert_eq!(
            command_reply(&argv(&["COUNT"])),
            Reply::Integer(COMMANDS.len() as i64)
        );
        let Reply::Array(infos) = command_reply(&argv(&["INFO", "get", "nosuch"])) else {
            panic!()
        };
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[1], Reply::NullArray);
        let Reply::Array(get) = &infos[0] else {
            panic!()
        };
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], Reply::bulk("get"));
        assert_eq!(get[1], Reply::Integer(2));
        assert_eq!(
            get[2],
            Reply::Set(vec![Reply::simple("readonly"), Reply::simple("fast")])
        );
        let Reply::Map(docs) = command_reply(&argv(&["DOCS", "get", "client"])) else {
            panic!()
        };
        assert_eq!(docs.len(), 2);
        assert_eq!(
            command_reply(&argv(&["GETKEYS", "SET", "k", "v"])),
            Reply::Array(vec![Reply::bulk("k")])
        );
        assert_eq!(
            command_reply(&argv(&["GETKEYS", "PING"])),
            Reply::error("ERR The command has no key arguments")
        );
    }
}
