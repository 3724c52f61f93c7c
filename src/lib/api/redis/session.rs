//! One connection's protocol state and the commands the front end answers
//! itself: AUTH, HELLO, PING, ECHO, SELECT, QUIT, RESET, CLIENT, COMMAND,
//! MULTI/EXEC/DISCARD, WATCH/UNWATCH, PUBLISH, PUBSUB and the subscribe
//! family. Everything else goes to the [`CommandExecutor`].
//!
//! Order of checks for each request mirrors Redis: resolve and arity,
//! authentication, subscribe-mode restrictions (RESP2 only), then MULTI
//! queuing. Invariants:
//! * The executor never sees a connection-level command, nor a command from
//!   an unauthenticated client.
//! * Inside MULTI, a rejected command marks the transaction failed and EXEC
//!   answers `EXECABORT`; otherwise the whole queue reaches the executor in
//!   one `exec` call, with the WATCHed keys and their tokens.
//! * Subscriptions held here and in the broker always agree; `close` drops
//!   them all.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use super::args::{Command, ERR_SYNTAX};
use super::clients::{ClientHandle, ServerContext};
use super::command::{self, Resolved, flags};
use super::executor::{ClientInfo, CommandExecutor, WatchedKey};
use super::pubsub::{Delivery, Mailbox, PubSubBroker};
use super::reply::{Protocol, Reply};
use super::resp::parse_redis_int;

/// `NOAUTH Authentication required.`
pub const ERR_NOAUTH: &str = "NOAUTH Authentication required.";
/// AUTH/HELLO with a bad user or password.
pub const ERR_WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// `AUTH <password>` when no password is configured.
pub const ERR_AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// EXEC after a command was rejected inside MULTI.
pub const ERR_EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
const ERR_BAD_CLIENT_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

/// What the connection must do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep serving.
    Continue,
    /// Flush the replies, then close (QUIT, CLIENT KILL of itself).
    Close,
}

/// Most pipelined commands run in one batch.
pub const MAX_BATCH_COMMANDS: usize = 64;
/// Argument bytes above which a batch is closed early (a batch is one Raft
/// entry; huge values go in entries of their own).
pub const MAX_BATCH_BYTES: usize = 256 << 10;

/// What [`Session::prepare`] decided about one request.
enum Prepared {
    /// Already answered (an error, or `QUEUED` inside MULTI).
    Answered(Reply),
    /// A plain data command that may share a transaction with its
    /// pipelined neighbours.
    Batchable(Command),
    /// Runs on its own: connection-level, blocking or scripting commands.
    Alone(Command),
}

#[derive(Debug, Default)]
struct MultiState {
    queue: Vec<Command>,
    failed: bool,
}

/// The per-connection state machine.
pub struct Session<E, B> {
    executor: Arc<E>,
    broker: Arc<B>,
    context: Arc<ServerContext>,
    handle: Arc<ClientHandle>,
    info: ClientInfo,
    authenticated: bool,
    multi: Option<MultiState>,
    watched: Vec<WatchedKey>,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    mailbox: Arc<Mailbox>,
}

fn is_connection_level(name: &str) -> bool {
    matches!(
        name,
        "AUTH"
            | "HELLO"
            | "PING"
            | "ECHO"
            | "SELECT"
            | "QUIT"
            | "RESET"
            | "CLIENT"
            | "COMMAND"
            | "MULTI"
            | "EXEC"
            | "DISCARD"
            | "WATCH"
            | "UNWATCH"
            | "PUBLISH"
            | "PUBSUB"
            | "SUBSCRIBE"
            | "PSUBSCRIBE"
            | "UNSUBSCRIBE"
            | "PUNSUBSCRIBE"
    )
}

fn is_subscribe_family(name: &str) -> bool {
    matches!(
        name,
        "SUBSCRIBE" | "PSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
    )
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

fn full_name(resolved: &Resolved) -> String {
    match resolved.subcommand {
        Some(sub) => format!("{}|{}", resolved.spec.name, sub.name).to_ascii_lowercase(),
        None => resolved.spec.name.to_ascii_lowercase(),
    }
}

impl<E: CommandExecutor, B: PubSubBroker> Session<E, B> {
    /// A session for a freshly accepted connection registered as `handle`.
    pub fn new(
        executor: Arc<E>,
        broker: Arc<B>,
        context: Arc<ServerContext>,
        handle: Arc<ClientHandle>,
    ) -> Self {
        let authenticated = context.config.password.is_none();
        let mailbox = Mailbox::new(handle.id, context.config.pubsub_output_limit);
        let info = ClientInfo {
            id: handle.id,
            peer_addr: handle.peer_addr,
            local_addr: handle.local_addr,
            name: None,
            protocol: Protocol::Resp2,
            user: "default".to_string(),
        };
        Session {
            executor,
            broker,
            context,
            handle,
            info,
            authenticated,
            multi: None,
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            mailbox,
        }
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.info.protocol
    }

    /// Whether the client has authenticated (always true without a password).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the connection holds any subscription.
    pub fn is_subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    /// The connection's pub/sub mailbox.
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// The connection's registry entry.
    pub fn handle(&self) -> &Arc<ClientHandle> {
        &self.handle
    }

    /// The reply shape of one pub/sub message.
    pub fn message_reply(delivery: Delivery) -> Reply {
        match delivery.pattern {
            Some(pattern) => Reply::Push(vec![
                Reply::bulk("pmessage"),
                Reply::Bulk(pattern),
                Reply::Bulk(delivery.channel),
                Reply::Bulk(delivery.payload),
            ]),
            None => Reply::Push(vec![
                Reply::bulk("message"),
                Reply::Bulk(delivery.channel),
                Reply::Bulk(delivery.payload),
            ]),
        }
    }

    /// Handles one request (`argv[0]` is the command name), appending its
    /// replies to `replies` (subscribe commands answer once per channel).
    pub async fn dispatch(&mut self, argv: Vec<Bytes>, replies: &mut Vec<Reply>) -> After {
        match self.prepare(argv) {
            Prepared::Answered(reply) => {
                replies.push(reply);
                After::Continue
            }
            Prepared::Batchable(command) | Prepared::Alone(command) => {
                self.run(command, replies).await
            }
        }
    }

    /// Handles pipelined requests in order, as [`Session::dispatch`] would
    /// one by one, except that each run of consecutive plain data commands
    /// (up to [`MAX_BATCH_COMMANDS`] commands or [`MAX_BATCH_BYTES`] of
    /// arguments) goes to the executor as one batch, so a pipeline of N
    /// writes costs one commit instead of N. Stops after a request that
    /// closes the connection.
    pub async fn dispatch_pipeline(
        &mut self,
        requests: Vec<Vec<Bytes>>,
        replies: &mut Vec<Reply>,
    ) -> After {
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        for argv in requests {
            match self.prepare(argv) {
                Prepared::Batchable(command) => {
                    batch_bytes += command.args.iter().map(Bytes::len).sum::<usize>();
                    batch.push(command);
                    if batch.len() >= MAX_BATCH_COMMANDS || batch_bytes >= MAX_BATCH_BYTES {
                        self.run_batch(&mut batch, replies).await;
                        batch_bytes = 0;
                    }
                }
                Prepared::Answered(reply) => {
                    self.run_batch(&mut batch, replies).await;
                    batch_bytes = 0;
                    replies.push(reply);
                }
                Prepared::Alone(command) => {
                    self.run_batch(&mut batch, replies).await;
                    batch_bytes = 0;
                    if self.run(command, replies).await == After::Close {
                        return After::Close;
                    }
                }
            }
        }
        self.run_batch(&mut batch, replies).await;
        After::Continue
    }

    async fn run_batch(&mut self, batch: &mut Vec<Command>, replies: &mut Vec<Reply>) {
        match batch.len() {
            0 => {}
            1 => {
                if let Some(command) = batch.pop() {
                    replies.push(self.executor.execute(&self.info, command).await);
                }
            }
            _ => {
                let commands = std::mem::take(batch);
                replies.extend(self.executor.execute_batch(&self.info, commands).await);
            }
        }
    }

    /// Runs a prepared command that is not answered yet.
    async fn run(&mut self, command: Command, replies: &mut Vec<Reply>) -> After {
        if is_connection_level(command.spec.name) {
            return self.run_local(command, replies).await;
        }
        replies.push(self.executor.execute(&self.info, command).await);
        After::Continue
    }

    /// Resolves and checks one request: everything that happens before a
    /// command runs (arity, authentication, subscribe mode, MULTI queuing).
    /// Only connection-level commands change the session's state, and they
    /// are never batched, so preparing a request ahead of the batch it
    /// joins sees the same state as preparing it just before it runs.
    fn prepare(&mut self, argv: Vec<Bytes>) -> Prepared {
        let resolved = match command::resolve(&argv) {
            Ok(resolved) => resolved,
            Err(reply) => {
                self.flag_transaction();
                return Prepared::Answered(reply);
            }
        };
        let name = full_name(&resolved);
        self.context.metrics.command(&name);
        {
            let mut state = self.handle.state.lock();
            state.last_command.clone_from(&name);
            state.last_interaction = std::time::Instant::now();
        }
        if !self.authenticated && !resolved.spec.has_flag(flags::NO_AUTH) {
            self.flag_transaction();
            return Prepared::Answered(Reply::error(ERR_NOAUTH));
        }
        let spec_name = resolved.spec.name;
        if self.is_subscribed()
            && self.info.protocol == Protocol::Resp2
            && !is_subscribe_family(spec_name)
            && !matches!(spec_name, "PING" | "QUIT" | "RESET")
        {
            return Prepared::Answered(Reply::error(format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )));
        }
        let command = Command {
            spec: resolved.spec,
            subcommand: resolved.subcommand,
            args: argv.into_iter().skip(1).collect(),
        };
        if self.multi.is_some()
            && !matches!(
                spec_name,
                "EXEC" | "DISCARD" | "MULTI" | "WATCH" | "QUIT" | "RESET"
            )
        {
            if is_subscribe_family(spec_name) {
                self.flag_transaction();
                return Prepared::Answered(Reply::error(
                    "ERR Command not allowed inside a transaction",
                ));
            }
            if let Some(multi) = self.multi.as_mut() {
                multi.queue.push(command);
                self.handle.state.lock().multi = multi.queue.len() as i64;
            }
            return Prepared::Answered(Reply::simple("QUEUED"));
        }
        if is_connection_level(spec_name) || !self.executor.can_batch(&command) {
            Prepared::Alone(command)
        } else {
            Prepared::Batchable(command)
        }
    }

    fn flag_transaction(&mut self) {
        if let Some(multi) = self.multi.as_mut() {
            multi.failed = true;
        }
    }

    async fn run_local(&mut self, command: Command, replies: &mut Vec<Reply>) -> After {
        let args = &command.args;
        match command.spec.name {
            "AUTH" => replies.push(self.auth(args)),
            "HELLO" => replies.push(self.hello(args)),
            "PING" => replies.push(self.ping(args)),
            "ECHO" => replies.push(Reply::Bulk(args[0].clone())),
            "SELECT" => replies.push(
                match parse_redis_int(&args[0]).filter(|n| i32::try_from(*n).is_ok()) {
                    None => Reply::error("ERR value is not an integer or out of range"),
                    Some(0) => Reply::ok(),
                    Some(_) => Reply::error("ERR DB index is out of range"),
                },
            ),
            "QUIT" => {
                replies.push(Reply::ok());
                return After::Close;
            }
            "RESET" => {
                self.reset();
                replies.push(Reply::simple("RESET"));
            }
            "CLIENT" => return self.client(args, replies),
            "COMMAND" => replies.push(command::command_reply(args)),
            "MULTI" => replies.push(if self.multi.is_some() {
                Reply::error("ERR MULTI calls can not be nested")
            } else {
                self.multi = Some(MultiState::default());
                self.handle.state.lock().multi = 0;
                Reply::ok()
            }),
            "DISCARD" => replies.push(if self.multi.take().is_some() {
                self.handle.state.lock().multi = -1;
                self.watched.clear();
                Reply::ok()
            } else {
                Reply::error("ERR DISCARD without MULTI")
            }),
            "EXEC" => replies.push(Box::pin(self.exec()).await),
            "WATCH" => replies.push(self.watch(args).await),
            "UNWATCH" => {
                self.watched.clear();
                replies.push(Reply::ok());
            }
            "PUBLISH" => {
                let receivers = self.broker.publish(args[0].clone(), args[1].clone()).await;
                replies.push(Reply::Integer(receivers as i64));
            }
            "PUBSUB" => replies.push(self.pubsub(args)),
            "SUBSCRIBE" => self.subscribe(args, false, replies),
            "PSUBSCRIBE" => self.subscribe(args, true, replies),
            "UNSUBSCRIBE" => self.unsubscribe(args, false, replies),
            "PUNSUBSCRIBE" => self.unsubscribe(args, true, replies),
            other => replies.push(Reply::error(format!("ERR unknown command '{other}'"))),
        }
        After::Continue
    }

    fn auth(&mut self, args: &[Bytes]) -> Reply {
        if args.len() > 2 {
            return Reply::error(ERR_SYNTAX);
        }
        let (user, password): (&[u8], &[u8]) = match args {
            [password] => {
                if self.context.config.password.is_none() {
                    return Reply::error(ERR_AUTH_NOT_CONFIGURED);
                }
                (b"default", password)
            }
            [user, password] => (user, password),
            _ => return Reply::error(ERR_SYNTAX),
        };
        if self.context.config.check_credentials(user, password) {
            self.set_authenticated(user);
            Reply::ok()
        } else {
            Reply::error(ERR_WRONGPASS)
        }
    }

    fn set_authenticated(&mut self, user: &[u8]) {
        self.authenticated = true;
        self.info.user = String::from_utf8_lossy(user).into_owned();
        self.handle.state.lock().user.clone_from(&self.info.user);
    }

    fn hello(&mut self, args: &[Bytes]) -> Reply {
        let mut version = None;
        let mut rest = args;
        if let Some((first, tail)) = args.split_first() {
            match parse_redis_int(first) {
                None => {
                    return Reply::error("ERR Protocol version is not an integer or out of range");
                }
                Some(2) => version = Some(Protocol::Resp2),
                Some(3) => version = Some(Protocol::Resp3),
                Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            }
            rest = tail;
        }
        let mut credentials = None;
        let mut new_name = None;
        let mut index = 0;
        while index < rest.len() {
            let option = &rest[index];
            let more = rest.len() - index - 1;
            if option.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                credentials = Some((rest[index + 1].clone(), rest[index + 2].clone()));
                index += 3;
            } else if option.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                let name = &rest[index + 1];
                if !valid_client_name(name) {
                    return Reply::error(ERR_BAD_CLIENT_NAME);
                }
                new_name = Some(name.clone());
                index += 2;
            } else {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                ));
            }
        }
        if let Some((user, password)) = credentials {
            if !self.context.config.check_credentials(&user, &password) {
                return Reply::error(ERR_WRONGPASS);
            }
            self.set_authenticated(&user);
        }
        if !self.authenticated {
            return Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = new_name {
            self.set_name(name);
        }
        if let Some(version) = version {
            self.info.protocol = version;
            self.handle.state.lock().protocol = version.number();
        }
        Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (
                Reply::bulk("version"),
                Reply::bulk(&self.context.config.server_version),
            ),
            (
                Reply::bulk("proto"),
                Reply::Integer(self.info.protocol.number()),
            ),
            (Reply::bulk("id"), Reply::Integer(self.info.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(Vec::new())),
        ])
    }

    fn set_name(&mut self, name: Bytes) {
        let name = if name.is_empty() { None } else { Some(name) };
        self.handle.state.lock().name.clone_from(&name);
        self.info.name = name;
    }

    fn ping(&self, args: &[Bytes]) -> Reply {
        if args.len() > 1 {
            return command::wrong_arity("ping");
        }
        if self.is_subscribed() && self.info.protocol == Protocol::Resp2 {
            let payload = args.first().cloned().unwrap_or_default();
            return Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(payload)]);
        }
        match args.first() {
            Some(message) => Reply::Bulk(message.clone()),
            None => Reply::simple("PONG"),
        }
    }

    fn reset(&mut self) {
        self.multi = None;
        self.watched.clear();
        self.drop_subscriptions();
        self.info.protocol = Protocol::Resp2;
        self.info.name = None;
        self.authenticated = self.context.config.password.is_none();
        self.info.user = "default".to_string();
        let mut state = self.handle.state.lock();
        state.multi = -1;
        state.protocol = 2;
        state.name = None;
        state.user.clone_from(&self.info.user);
    }

    fn client(&mut self, args: &[Bytes], replies: &mut Vec<Reply>) -> After {
        let sub = args[0].to_ascii_uppercase();
        let reply = match sub.as_slice() {
            b"ID" => Reply::Integer(self.info.id as i64),
            b"GETNAME" => self.info.name.clone().map_or(Reply::NullBulk, Reply::Bulk),
            b"SETNAME" => {
                if valid_client_name(&args[1]) {
                    self.set_name(args[1].clone());
                    Reply::ok()
                } else {
                    Reply::error(ERR_BAD_CLIENT_NAME)
                }
            }
            b"INFO" => self.text_reply(format!("{}\n", self.handle.describe())),
            b"LIST" => self.client_list(&args[1..]),
            b"SETINFO" => {
                let value = args[2].clone();
                if !valid_client_name(&value) {
                    Reply::error("ERR lib-name cannot contain spaces, newlines or special characters.")
                } else if args[1].eq_ignore_ascii_case(b"LIB-NAME") {
                    self.handle.state.lock().lib_name = Some(value);
                    Reply::ok()
                } else if args[1].eq_ignore_ascii_case(b"LIB-VER") {
                    self.handle.state.lock().lib_ver = Some(value);
                    Reply::ok()
                } else {
                    Reply::error(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(&args[1])))
                }
            }
            b"NO-EVICT" | b"NO-TOUCH" => {
                if args[1].eq_ignore_ascii_case(b"ON") || args[1].eq_ignore_ascii_case(b"OFF") {
                    Reply::ok()
                } else {
                    Reply::error(ERR_SYNTAX)
                }
            }
            b"KILL" => return self.client_kill(&args[1..], replies),
            b"HELP" => Reply::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "ID", "    Return the ID of the current connection.",
                    "GETNAME", "    Return the name of the current connection.",
                    "SETNAME <name>", "    Assign the name <name> to the current connection.",
                    "INFO", "    Return information about the current client connection.",
                    "LIST [TYPE (NORMAL|PUBSUB)] [ID <id> [<id> ...]]", "    Return information about client connections.",
                    "KILL <ip:port> | KILL [ID <id>] [ADDR <ip:port>] [LADDR <ip:port>] [SKIPME (YES|NO)]",
                    "    Kill connections.",
                    "SETINFO <LIB-NAME|LIB-VER> <value>", "    Record the client library name or version.",
                    "NO-EVICT (ON|OFF)", "    Accepted for compatibility.",
                    "NO-TOUCH (ON|OFF)", "    Accepted for compatibility.",
                    "HELP", "    Print this help.",
                ]
                .into_iter()
                .map(Reply::simple)
                .collect(),
            ),
            _ => Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[0])
            )),
        };
        replies.push(reply);
        After::Continue
    }

    fn text_reply(&self, text: String) -> Reply {
        Reply::Verbatim {
            format: *b"txt",
            text: Bytes::from(text),
        }
    }

    fn client_list(&self, filters: &[Bytes]) -> Reply {
        let mut kind = None;
        let mut ids: Option<Vec<u64>> = None;
        let mut index = 0;
        while index < filters.len() {
            if filters[index].eq_ignore_ascii_case(b"TYPE") && index + 1 < filters.len() {
                let value = filters[index + 1].to_ascii_lowercase();
                if !matches!(
                    value.as_slice(),
                    b"normal" | b"pubsub" | b"master" | b"replica" | b"slave"
                ) {
                    return Reply::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&filters[index + 1])
                    ));
                }
                kind = Some(value);
                index += 2;
            } else if filters[index].eq_ignore_ascii_case(b"ID") && index + 1 < filters.len() {
                let mut parsed = Vec::new();
                for raw in &filters[index + 1..] {
                    match parse_redis_int(raw).filter(|id| *id > 0) {
                        Some(id) => parsed.push(id as u64),
                        None => return Reply::error("ERR Invalid client ID"),
                    }
                }
                ids = Some(parsed);
                index = filters.len();
            } else {
                return Reply::error(ERR_SYNTAX);
            }
        }
        let mut text = String::new();
        for handle in self.context.clients.snapshot() {
            if ids.as_ref().is_some_and(|ids| !ids.contains(&handle.id)) {
                continue;
            }
            if let Some(kind) = &kind {
                let state = handle.state.lock();
                let pubsub = state.subscriptions + state.pattern_subscriptions > 0;
                let wanted = match kind.as_slice() {
                    b"normal" => !pubsub,
                    b"pubsub" => pubsub,
                    _ => false,
                };
                if !wanted {
                    continue;
                }
            }
            text.push_str(&handle.describe());
            text.push('\n');
        }
        self.text_reply(text)
    }

    fn client_kill(&self, args: &[Bytes], replies: &mut Vec<Reply>) -> After {
        let clients = self.context.clients.snapshot();
        if let [addr] = args {
            let target = clients
                .iter()
                .find(|handle| handle.peer_addr.to_string().as_bytes() == addr.as_ref());
            return match target {
                Some(handle) => {
                    handle.kill();
                    replies.push(Reply::ok());
                    if handle.id == self.info.id {
                        After::Close
                    } else {
                        After::Continue
                    }
                }
                None => {
                    replies.push(Reply::error("ERR No such client"));
                    After::Continue
                }
            };
        }
        let mut id = None;
        let mut addr = None;
        let mut laddr = None;
        let mut skip_me = true;
        for pair in args.chunks(2) {
            let [option, value] = pair else {
                replies.push(Reply::error(ERR_SYNTAX));
                return After::Continue;
            };
            let option = option.to_ascii_uppercase();
            match option.as_slice() {
                b"ID" => match parse_redis_int(value).filter(|id| *id > 0) {
                    Some(value) => id = Some(value as u64),
                    None => {
                        replies.push(Reply::error("ERR client-id should be greater than 0"));
                        return After::Continue;
                    }
                },
                b"ADDR" => addr = Some(value.clone()),
                b"LADDR" => laddr = Some(value.clone()),
                b"SKIPME" if value.eq_ignore_ascii_case(b"yes") => skip_me = true,
                b"SKIPME" if value.eq_ignore_ascii_case(b"no") => skip_me = false,
                _ => {
                    replies.push(Reply::error(ERR_SYNTAX));
                    return After::Continue;
                }
            }
        }
        let mut killed = 0;
        let mut killed_self = false;
        for handle in clients {
            let matches = id.is_none_or(|id| handle.id == id)
                && addr
                    .as_ref()
                    .is_none_or(|addr| handle.peer_addr.to_string().as_bytes() == addr.as_ref())
                && laddr
                    .as_ref()
                    .is_none_or(|laddr| handle.local_addr.to_string().as_bytes() == laddr.as_ref());
            if !matches || (skip_me && handle.id == self.info.id) {
                continue;
            }
            handle.kill();
            killed += 1;
            killed_self |= handle.id == self.info.id;
        }
        replies.push(Reply::Integer(killed));
        if killed_self {
            After::Close
        } else {
            After::Continue
        }
    }

    async fn exec(&mut self) -> Reply {
        let Some(multi) = self.multi.take() else {
            return Reply::error("ERR EXEC without MULTI");
        };
        self.handle.state.lock().multi = -1;
        let watched = std::mem::take(&mut self.watched);
        if multi.failed {
            return Reply::error(ERR_EXECABORT);
        }
        // Connection-level commands stay here and are answered in queue
        // order once the executor has run the rest atomically.
        let mut plan: Vec<Option<Command>> = Vec::with_capacity(multi.queue.len());
        let mut ordinary = Vec::new();
        for command in multi.queue {
            if is_connection_level(command.spec.name) {
                plan.push(Some(command));
            } else {
                ordinary.push(command);
                plan.push(None);
            }
        }
        let executed = if ordinary.is_empty() && watched.is_empty() {
            Reply::Array(Vec::new())
        } else {
            self.executor.exec(&self.info, watched, ordinary).await
        };
        let Reply::Array(results) = executed else {
            return executed;
        };
        let mut results = results.into_iter();
        let mut merged = Vec::with_capacity(plan.len());
        for slot in plan {
            match slot {
                Some(command) => {
                    let mut replies = Vec::new();
                    Box::pin(self.run_local(command, &mut replies)).await;
                    merged.push(replies.into_iter().next().unwrap_or(Reply::NullBulk));
                }
                None => merged.push(
                    results
                        .next()
                        .unwrap_or_else(|| Reply::error("ERR transaction reply missing")),
                ),
            }
        }
        Reply::Array(merged)
    }

    async fn watch(&mut self, keys: &[Bytes]) -> Reply {
        if self.multi.is_some() {
            return Reply::error("ERR WATCH inside MULTI is not allowed");
        }
        for key in keys {
            if self.watched.iter().any(|watched| watched.key == *key) {
                continue;
            }
            match self.executor.watch_token(key).await {
                Ok(token) => self.watched.push(WatchedKey {
                    key: key.clone(),
                    token,
                }),
                Err(reply) => return reply,
            }
        }
        Reply::ok()
    }

    fn pubsub(&self, args: &[Bytes]) -> Reply {
        let sub = args[0].to_ascii_uppercase();
        match sub.as_slice() {
            b"CHANNELS" => {
                if args.len() > 2 {
                    return command::wrong_arity("pubsub|channels");
                }
                let pattern = args.get(1).map(|pattern| pattern.as_ref());
                Reply::Array(
                    self.broker
                        .channels(pattern)
                        .into_iter()
                        .map(Reply::Bulk)
                        .collect(),
                )
            }
            b"NUMSUB" => Reply::Array(
                args[1..]
                    .iter()
                    .flat_map(|channel| {
                        [
                            Reply::Bulk(channel.clone()),
                            Reply::Integer(self.broker.numsub(channel) as i64),
                        ]
                    })
                    .collect(),
            ),
            b"NUMPAT" => Reply::Integer(self.broker.numpat() as i64),
            b"HELP" => Reply::Array(
                [
                    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "CHANNELS [<pattern>]",
                    "    Return the currently active channels matching a <pattern> (default: '*').",
                    "NUMPAT",
                    "    Return number of subscriptions to patterns.",
                    "NUMSUB [<channel> ...]",
                    "    Return the number of subscribers for the specified channels, excluding",
                    "    pattern subscriptions(default: no channels).",
                    "HELP",
                    "    Print this help.",
                ]
                .into_iter()
                .map(Reply::simple)
                .collect(),
            ),
            _ => Reply::error(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[0])
            )),
        }
    }

    fn subscription_count(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }

    fn sync_subscription_state(&self) {
        let mut state = self.handle.state.lock();
        state.subscriptions = self.channels.len();
        state.pattern_subscriptions = self.patterns.len();
    }

    fn subscribe(&mut self, names: &[Bytes], pattern: bool, replies: &mut Vec<Reply>) {
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        for name in names {
            let added = if pattern {
                self.patterns.insert(name.clone())
            } else {
                self.channels.insert(name.clone())
            };
            if added {
                if pattern {
                    self.broker.psubscribe(&self.mailbox, name.clone());
                } else {
                    self.broker.subscribe(&self.mailbox, name.clone());
                }
            }
            replies.push(Reply::Push(vec![
                Reply::bulk(kind),
                Reply::Bulk(name.clone()),
                Reply::Integer(self.subscription_count()),
            ]));
        }
        self.sync_subscription_state();
    }

    fn unsubscribe(&mut self, names: &[Bytes], pattern: bool, replies: &mut Vec<Reply>) {
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let targets: Vec<Bytes> = if names.is_empty() {
            if pattern {
                self.patterns.iter().cloned().collect()
            } else {
                self.channels.iter().cloned().collect()
            }
        } else {
            names.to_vec()
        };
        if targets.is_empty() {
            replies.push(Reply::Push(vec![
                Reply::bulk(kind),
                Reply::NullBulk,
                Reply::Integer(self.subscription_count()),
            ]));
        }
        for name in targets {
            let removed = if pattern {
                self.patterns.remove(&name)
            } else {
                self.channels.remove(&name)
            };
            if removed {
                if pattern {
                    self.broker.punsubscribe(self.info.id, &name);
                } else {
                    self.broker.unsubscribe(self.info.id, &name);
                }
            }
            replies.push(Reply::Push(vec![
                Reply::bulk(kind),
                Reply::Bulk(name),
                Reply::Integer(self.subscription_count()),
            ]));
        }
        self.sync_subscription_state();
    }

    fn drop_subscriptions(&mut self) {
        for channel in std::mem::take(&mut self.channels) {
            self.broker.unsubscribe(self.info.id, &channel);
        }
        for pattern in std::mem::take(&mut self.patterns) {
            self.broker.punsubscribe(self.info.id, &pattern);
        }
        self.sync_subscription_state();
    }

    /// Releases everything the connection holds (subscriptions, registry entry).
    pub fn close(&mut self) {
        self.drop_subscriptions();
        self.context.clients.unregister(self.info.id);
    }
}
