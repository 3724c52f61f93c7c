//! The socket loop of one connection: read, parse every complete request
//! (pipelining), dispatch them in order, encode the replies and flush once
//! per read batch; deliver pub/sub messages as they arrive.
//!
//! Limits enforced here, each ending in a reply or a logged disconnect
//! rather than unbounded memory: the query buffer limit, the parser's
//! protocol limits (answered with Redis's protocol error, then closed), the
//! idle timeout, the write timeout, the subscriber backlog limit and the
//! output batch size (replies are flushed every [`OUTPUT_FLUSH_THRESHOLD`]
//! bytes even inside one pipeline).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::clients::ServerContext;
use super::executor::CommandExecutor;
use super::pubsub::{Drained, PubSubBroker};
use super::reply::{Protocol, Reply};
use super::resp::RequestParser;
use super::session::{After, Session};

/// Most complete requests taken from the input buffer at once (the session
/// batches runs of plain data commands among them).
const PIPELINE_LOOKAHEAD: usize = 256;
/// Pending reply bytes above which a pipeline's replies are flushed early.
pub const OUTPUT_FLUSH_THRESHOLD: usize = 1024 * 1024;
/// Bytes reserved for each socket read.
const READ_CHUNK: usize = 64 * 1024;

enum Exit {
    ClientClosed,
    Quit,
    ProtocolError,
    QueryBufferLimit,
    Idle,
    WriteFailed,
    SubscriberOverflow,
    Killed,
    Shutdown,
}

impl Exit {
    fn reason(&self) -> Option<&'static str> {
        match self {
            Exit::ClientClosed | Exit::Quit => None,
            Exit::ProtocolError => Some("protocol_error"),
            Exit::QueryBufferLimit => Some("query_buffer_limit"),
            Exit::Idle => Some("idle_timeout"),
            Exit::WriteFailed => Some("write_failed"),
            Exit::SubscriberOverflow => Some("pubsub_output_limit"),
            Exit::Killed => Some("killed"),
            Exit::Shutdown => Some("shutdown"),
        }
    }
}

struct Connection<E, B> {
    stream: TcpStream,
    session: Session<E, B>,
    context: Arc<ServerContext>,
    parser: RequestParser,
    input: BytesMut,
    output: BytesMut,
}

/// Serves one accepted connection until it closes, the client is killed or
/// `shutdown` turns true. Never panics on client input.
pub async fn serve_connection<E: CommandExecutor, B: PubSubBroker>(
    stream: TcpStream,
    session: Session<E, B>,
    context: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
) {
    let mut parser = RequestParser::new(context.config.parser_limits());
    parser.set_authenticated(session.is_authenticated());
    let mut connection = Connection {
        stream,
        session,
        context: Arc::clone(&context),
        parser,
        input: BytesMut::new(),
        output: BytesMut::new(),
    };
    let id = connection.session.handle().id;
    let peer = connection.session.handle().peer_addr;
    let exit = connection.run(shutdown).await;
    connection.session.close();
    if let Some(reason) = exit.reason() {
        context.metrics.disconnect(reason);
        match exit {
            Exit::Shutdown | Exit::Killed | Exit::Idle => {
                debug!(client = id, %peer, reason, "redis client closed")
            }
            _ => warn!(client = id, %peer, reason, "redis client disconnected by the server"),
        }
    }
    let _ = connection.stream.shutdown().await;
}

impl<E: CommandExecutor, B: PubSubBroker> Connection<E, B> {
    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> Exit {
        let idle_timeout = self.context.config.idle_timeout;
        let handle = Arc::clone(self.session.handle());
        let mailbox = Arc::clone(self.session.mailbox());
        loop {
            if let Some(exit) = self.process_input(&mut shutdown).await {
                return exit;
            }
            if let Err(exit) = self.flush().await {
                return exit;
            }
            if *shutdown.borrow() {
                return Exit::Shutdown;
            }
            let reserve = if self.parser.has_partial_request() {
                READ_CHUNK.max(self.input.len())
            } else {
                READ_CHUNK
            };
            self.input.reserve(reserve);
            let subscribed = self.session.is_subscribed();
            let idle = idle_timeout
                .filter(|_| !subscribed)
                .unwrap_or(Duration::MAX);
            tokio::select! {
                read = self.stream.read_buf(&mut self.input) => match read {
                    Ok(0) | Err(_) => return Exit::ClientClosed,
                    Ok(_) => {
                        if self.input.len() > self.context.config.query_buffer_limit {
                            info!(client = handle.id, "closing client that reached max query buffer length");
                            return Exit::QueryBufferLimit;
                        }
                    }
                },
                _ = mailbox.ready(), if subscribed => {
                    if let Err(exit) = self.deliver_messages() {
                        return exit;
                    }
                }
                _ = handle.killed() => return Exit::Killed,
                _ = shutdown.changed() => return Exit::Shutdown,
                _ = tokio::time::sleep(idle), if idle != Duration::MAX => return Exit::Idle,
            }
        }
    }

    /// Runs every complete request in the input buffer.
    async fn process_input(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Exit> {
        let handle = Arc::clone(self.session.handle());
        let mut replies = Vec::new();
        loop {
            // Requests already complete in the buffer are taken together so
            // the session can batch them. Before authentication the parser's
            // limits depend on each request's outcome, so one at a time.
            let mut requests = Vec::new();
            let mut protocol_error = None;
            let ahead = if self.session.is_authenticated() {
                PIPELINE_LOOKAHEAD
            } else {
                1
            };
            while requests.len() < ahead {
                match self.parser.next_request(&mut self.input) {
                    Ok(Some(argv)) => requests.push(argv),
                    Ok(None) => break,
                    Err(err) => {
                        // Requests before the bad one are still answered.
                        protocol_error = Some(err.to_reply());
                        break;
                    }
                }
            }
            if requests.is_empty() && protocol_error.is_none() {
                return None;
            }
            let after = if requests.is_empty() {
                After::Continue
            } else {
                tokio::select! {
                    after = self.session.dispatch_pipeline(requests, &mut replies) => after,
                    _ = handle.killed() => return Some(Exit::Killed),
                    _ = shutdown.changed() => return Some(Exit::Shutdown),
                }
            };
            self.parser
                .set_authenticated(self.session.is_authenticated());
            let protocol = self.session.protocol();
            for reply in replies.drain(..) {
                self.encode(&reply, protocol);
            }
            if after == After::Close {
                let _ = self.flush().await;
                return Some(Exit::Quit);
            }
            if let Some(reply) = protocol_error {
                self.encode(&reply, protocol);
                let _ = self.flush().await;
                return Some(Exit::ProtocolError);
            }
            if self.session.is_subscribed()
                && let Err(exit) = self.deliver_messages()
            {
                return Some(exit);
            }
            if self.output.len() >= OUTPUT_FLUSH_THRESHOLD
                && let Err(exit) = self.flush().await
            {
                return Some(exit);
            }
        }
    }

    fn encode(&mut self, reply: &Reply, protocol: Protocol) {
        if let Some(code) = reply.error_code() {
            self.context.metrics.error(code);
        }
        reply.encode(protocol, &mut self.output);
    }

    fn deliver_messages(&mut self) -> Result<(), Exit> {
        match self.session.mailbox().drain() {
            Drained::Overflowed => Err(Exit::SubscriberOverflow),
            Drained::Messages(messages) => {
                let protocol = self.session.protocol();
                for delivery in messages {
                    let reply = Session::<E, B>::message_reply(delivery);
                    self.encode(&reply, protocol);
                }
                Ok(())
            }
        }
    }

    /// Writes the pending output, bounded by the write timeout and, for a
    /// subscriber, by its backlog limit.
    async fn flush(&mut self) -> Result<(), Exit> {
        while !self.output.is_empty() {
            let pending = self.output.split();
            let write_timeout = self.context.config.write_timeout;
            let mailbox = Arc::clone(self.session.mailbox());
            let subscribed = self.session.is_subscribed();
            tokio::select! {
                written = tokio::time::timeout(write_timeout, self.stream.write_all(&pending)) => match written {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return Err(Exit::WriteFailed),
                },
                _ = mailbox.overflowed(), if subscribed => return Err(Exit::SubscriberOverflow),
            }
            if subscribed {
                self.deliver_messages()?;
            }
        }
        Ok(())
    }
}
