//! Write combining: the write commands of every connection of this node go
//! through one queue, and a single task runs everything queued as ONE
//! transaction per round, one round at a time.
//!
//! Why: a commit costs a Raft round (a log fsync, and a quorum on a
//! cluster), and optimistic transactions on the same key from different
//! connections conflict when they overlap. One round at a time means this
//! node's writes never conflict with each other (each round reads after
//! the previous one applied), and each round carries every write that
//! arrived meanwhile, so a hot key (LPUSH to one list, INCR of one counter)
//! and many small writes both cost one commit per round, not per command.
//!
//! Invariants:
//! * A job is one connection's run of commands, executed in its order;
//!   jobs of one round are serialised in queue order, and all of a round's
//!   effects take place at its commit, between each job's submission and
//!   its replies — a valid linearisation.
//! * A round that fails as a whole (too many conflicts with other nodes'
//!   or MULTI/Lua transactions, a refused key, an unavailable leader) is
//!   re-run job by job, so one job's failure is reported to that job only.
//! * The task holds only a weak reference to the executor and ends when the
//!   executor is dropped (its queue's sender goes with it).

use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::{mpsc, oneshot};

use super::{RedisExecutor, dispatch};
use crate::api::redis::args::Command;
use crate::api::redis::reply::{Protocol, Reply};
use crate::txn::KvBackend;

/// Most commands in one round (a round is one Raft entry).
const ROUND_MAX_COMMANDS: usize = 4096;
/// Argument bytes above which a round is closed.
const ROUND_MAX_BYTES: usize = 4 << 20;

/// One connection's commands waiting for a round.
pub(crate) struct WriteJob {
    protocol: Protocol,
    commands: Vec<Command>,
    bytes: usize,
    reply: oneshot::Sender<Vec<Reply>>,
}

/// The queue in front of the combining task (started on first use, inside
/// the runtime).
pub(crate) struct Combiner<B: KvBackend> {
    executor: Weak<RedisExecutor<B>>,
    queue: OnceLock<mpsc::UnboundedSender<WriteJob>>,
}

impl<B: KvBackend> Combiner<B> {
    pub(crate) fn new(executor: Weak<RedisExecutor<B>>) -> Self {
        Combiner {
            executor,
            queue: OnceLock::new(),
        }
    }

    /// Runs `commands` in the next round; one reply per command.
    pub(crate) async fn submit(&self, protocol: Protocol, commands: Vec<Command>) -> Vec<Reply> {
        let count = commands.len();
        let bytes = commands
            .iter()
            .map(|c| c.args.iter().map(|a| a.len()).sum::<usize>())
            .sum();
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            protocol,
            commands,
            bytes,
            reply,
        };
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_rounds(self.executor.clone(), rx));
            tx
        });
        if queue.send(job).is_err() {
            return vec![Reply::error("TRYAGAIN the write queue is shut down"); count];
        }
        answer
            .await
            .unwrap_or_else(|_| vec![Reply::error("TRYAGAIN the write queue is shut down"); count])
    }
}

async fn run_rounds<B: KvBackend>(
    executor: Weak<RedisExecutor<B>>,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
) {
    let mut carried: Option<WriteJob> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut commands = first.commands.len();
        let mut bytes = first.bytes;
        let mut round = vec![first];
        while commands < ROUND_MAX_COMMANDS && bytes < ROUND_MAX_BYTES {
            match queue.try_recv() {
                Ok(job) => {
                    if commands + job.commands.len() > ROUND_MAX_COMMANDS {
                        carried = Some(job);
                        break;
                    }
                    commands += job.commands.len();
                    bytes += job.bytes;
                    round.push(job);
                }
                Err(_) => break,
            }
        }
        let Some(exec) = executor.upgrade() else {
            return;
        };
        run_round(&exec, round).await;
    }
}

async fn run_round<B: KvBackend>(exec: &Arc<RedisExecutor<B>>, round: Vec<WriteJob>) {
    if round.len() > 1 {
        let reply = exec
            .run_txn(None, |ctx| {
                let mut per_job = Vec::with_capacity(round.len());
                for job in &round {
                    ctx.protocol = job.protocol;
                    let mut replies = Vec::with_capacity(job.commands.len());
                    for command in &job.commands {
                        replies.push(dispatch::run(ctx, command)?);
                    }
                    per_job.push(Reply::Array(replies));
                }
                Ok(Reply::Array(per_job))
            })
            .await;
        if let Reply::Array(per_job) = reply
            && per_job.len() == round.len()
        {
            for (job, replies) in round.into_iter().zip(per_job) {
                let replies = match replies {
                    Reply::Array(replies) => replies,
                    other => vec![other; job.commands.len()],
                };
                let _ = job.reply.send(replies);
            }
            return;
        }
    }
    for job in round {
        let replies = run_job(exec, &job).await;
        let _ = job.reply.send(replies);
    }
}

async fn run_job<B: KvBackend>(exec: &RedisExecutor<B>, job: &WriteJob) -> Vec<Reply> {
    let count = job.commands.len();
    let protocol = job.protocol;
    let reply = exec
        .run_txn_with_protocol(protocol, |ctx| {
            let mut replies = Vec::with_capacity(count);
            for command in &job.commands {
                replies.push(dispatch::run(ctx, command)?);
            }
            Ok(Reply::Array(replies))
        })
        .await;
    match reply {
        Reply::Array(replies) if replies.len() == count => replies,
        failure => vec![failure; count],
    }
}
