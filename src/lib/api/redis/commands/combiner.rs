//! Write combining: the write commands of every connection of this node go
//! through one queue, and a single task runs everything queued as ONE
//! transaction per round, with at most two rounds in flight.
//!
//! Why: a commit costs a Raft round (a log fsync, and a quorum on a
//! cluster), and optimistic transactions on the same key from different
//! connections conflict when they overlap. Each round carries every write
//! that arrived meanwhile, so a hot key (LPUSH to one list, INCR of one
//! counter) and many small writes both cost one commit per round, not per
//! command; while one round waits for its fsync the next one is built.
//!
//! Invariants:
//! * A job is one connection's run of commands, executed in its order;
//!   jobs of one round are serialised in queue order, and all of a round's
//!   effects take place at its commit, between each job's submission and
//!   its replies — a valid linearisation.
//! * Rounds in flight never share a Redis key: a job naming a key that a
//!   round in flight holds waits for a later round (so this node's rounds
//!   do not conflict with each other, and a hot key still commits once per
//!   round). A job with a keyless command (FLUSHALL ...) runs alone, once
//!   nothing is in flight. Anything the key lists miss is still caught by
//!   the transactions' own validation.
//! * A round that fails as a whole (too many conflicts with other nodes'
//!   or MULTI/Lua transactions, a refused key, an unavailable leader) is
//!   re-run job by job, so one job's failure is reported to that job only.
//! * The task holds only a weak reference to the executor and ends when the
//!   executor is dropped (its queue's sender goes with it) and its rounds
//!   are done.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::{RedisExecutor, dispatch};
use crate::api::redis::args::Command;
use crate::api::redis::metrics::RedisMetrics;
use crate::api::redis::reply::{Protocol, Reply};
use crate::txn::KvBackend;

/// Most commands in one round (a round is one Raft entry).
const ROUND_MAX_COMMANDS: usize = 4096;
/// Argument bytes above which a round is closed.
const ROUND_MAX_BYTES: usize = 4 << 20;
/// Rounds committing at once. A second round is built and proposed while
/// the first waits for its log fsync and apply, so the Raft thread always
/// has the next entry at hand.
const ROUNDS_IN_FLIGHT: usize = 2;

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
    /// Where rounds are reported (the first listener's metrics).
    metrics: Arc<OnceLock<RedisMetrics>>,
}

impl<B: KvBackend> Combiner<B> {
    pub(crate) fn new(executor: Weak<RedisExecutor<B>>) -> Self {
        Combiner {
            executor,
            queue: OnceLock::new(),
            metrics: Arc::new(OnceLock::new()),
        }
    }

    /// Reports rounds to `metrics` from now on (the first call wins).
    pub(crate) fn observe_with(&self, metrics: &RedisMetrics) {
        let _ = self.metrics.set(metrics.clone());
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
            tokio::spawn(run_rounds(self.executor.clone(), rx, self.metrics.clone()));
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

/// The Redis keys a job names, or `None` when some command names none
/// (FLUSHALL and the like: treated as touching everything).
fn job_keys(commands: &[Command]) -> Option<Vec<Bytes>> {
    let mut keys = Vec::new();
    for command in commands {
        let named = command.keys();
        if named.is_empty() {
            return None;
        }
        keys.extend(named.into_iter().cloned());
    }
    Some(keys)
}

/// Jobs waiting for a round, with the keys each one names.
struct Waiting {
    job: WriteJob,
    keys: Option<Vec<Bytes>>,
}

/// Keys of the rounds in flight (a key may be in both).
#[derive(Default)]
struct BusyKeys {
    counts: HashMap<Bytes, usize>,
    /// A keyless job's round is in flight: nothing else may start.
    exclusive: bool,
}

impl BusyKeys {
    fn overlaps(&self, keys: &[Bytes]) -> bool {
        self.exclusive || keys.iter().any(|k| self.counts.contains_key(k))
    }

    fn add(&mut self, keys: &[Bytes]) {
        for key in keys {
            *self.counts.entry(key.clone()).or_default() += 1;
        }
    }

    fn release(&mut self, done: RoundKeys) {
        match done {
            RoundKeys::Exclusive => self.exclusive = false,
            RoundKeys::Keys(keys) => {
                for key in keys {
                    if let Some(count) = self.counts.get_mut(&key) {
                        *count -= 1;
                        if *count == 0 {
                            self.counts.remove(&key);
                        }
                    }
                }
            }
        }
    }
}

/// What a finished round held.
enum RoundKeys {
    Exclusive,
    Keys(Vec<Bytes>),
}

async fn run_rounds<B: KvBackend>(
    executor: Weak<RedisExecutor<B>>,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
    metrics: Arc<OnceLock<RedisMetrics>>,
) {
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut busy = BusyKeys::default();
    let mut rounds: JoinSet<RoundKeys> = JoinSet::new();
    let mut open = true;
    loop {
        while open {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(Waiting::new(job)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let round = if rounds.len() < ROUNDS_IN_FLIGHT {
            take_round(&mut waiting, &mut busy, rounds.is_empty())
        } else {
            None
        };
        if let Some((round, keys)) = round {
            let Some(exec) = executor.upgrade() else {
                return;
            };
            let metrics = metrics.get().cloned();
            rounds.spawn(async move {
                let started = std::time::Instant::now();
                let commands = round.iter().map(|job| job.commands.len()).sum::<usize>();
                run_round(&exec, round).await;
                if let Some(metrics) = metrics {
                    metrics.write_round_commands.observe(commands as f64);
                    metrics
                        .write_round_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                keys
            });
            continue;
        }
        // Nothing can start now: wait for a job or for a round to finish.
        tokio::select! {
            job = queue.recv(), if open => match job {
                Some(job) => waiting.push_back(Waiting::new(job)),
                None => open = false,
            },
            Some(done) = rounds.join_next(), if !rounds.is_empty() => match done {
                Ok(keys) => busy.release(keys),
                // A panicking round lost its keys' bookkeeping: start over
                // only once every other round is done.
                Err(_) => {
                    while rounds.join_next().await.is_some() {}
                    busy = BusyKeys::default();
                }
            },
            else => return,
        }
    }
}

impl Waiting {
    fn new(job: WriteJob) -> Self {
        let keys = job_keys(&job.commands);
        Waiting { job, keys }
    }
}

/// The next round: waiting jobs in arrival order whose keys no round in
/// flight holds, up to the round limits. A keyless job runs alone once
/// nothing is in flight, and nothing overtakes it meanwhile.
fn take_round(
    waiting: &mut VecDeque<Waiting>,
    busy: &mut BusyKeys,
    idle: bool,
) -> Option<(Vec<WriteJob>, RoundKeys)> {
    if busy.exclusive {
        return None;
    }
    if let Some(front) = waiting.front()
        && front.keys.is_none()
    {
        if !idle {
            return None;
        }
        let front = waiting.pop_front()?;
        busy.exclusive = true;
        return Some((vec![front.job], RoundKeys::Exclusive));
    }
    let mut round = Vec::new();
    let mut round_keys: Vec<Bytes> = Vec::new();
    let (mut commands, mut bytes) = (0usize, 0usize);
    let mut i = 0;
    while i < waiting.len() && commands < ROUND_MAX_COMMANDS && bytes < ROUND_MAX_BYTES {
        let Some(keys) = waiting[i].keys.as_deref() else {
            // A keyless job further back: later jobs wait behind it.
            break;
        };
        let fits =
            round.is_empty() || commands + waiting[i].job.commands.len() <= ROUND_MAX_COMMANDS;
        if !fits || busy.overlaps(keys) {
            i += 1;
            continue;
        }
        let Some(item) = waiting.remove(i) else {
            break;
        };
        commands += item.job.commands.len();
        bytes += item.job.bytes;
        round_keys.extend(item.keys.unwrap_or_default());
        round.push(item.job);
    }
    if round.is_empty() {
        return None;
    }
    busy.add(&round_keys);
    Some((round, RoundKeys::Keys(round_keys)))
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
        let replies = exec.run_in_one_txn(job.protocol, &job.commands).await;
        let _ = job.reply.send(replies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::redis::command::resolve;

    fn command(words: &[&str]) -> Command {
        let argv: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let resolved = resolve(&argv).unwrap();
        Command {
            spec: resolved.spec,
            subcommand: resolved.subcommand,
            args: argv[1..].to_vec(),
        }
    }

    fn job(commands: &[&[&str]]) -> Waiting {
        let (reply, _) = oneshot::channel();
        Waiting::new(WriteJob {
            protocol: Protocol::Resp2,
            commands: commands.iter().map(|c| command(c)).collect(),
            bytes: 0,
            reply,
        })
    }

    fn first_args(round: &[WriteJob]) -> Vec<String> {
        round
            .iter()
            .map(|j| String::from_utf8_lossy(&j.commands[0].args[0]).into_owned())
            .collect()
    }

    #[test]
    fn rounds_in_flight_never_share_a_key_and_waiting_jobs_keep_their_order() {
        let mut waiting: VecDeque<Waiting> = [
            job(&[&["SET", "a", "1"]]),
            job(&[&["INCR", "b"], &["SET", "c", "1"]]),
            job(&[&["SET", "a", "2"]]),
        ]
        .into_iter()
        .collect();
        let mut busy = BusyKeys::default();
        let (first, first_keys) = take_round(&mut waiting, &mut busy, true).unwrap();
        assert_eq!(
            first_args(&first),
            ["a", "b", "a"],
            "one round may share keys"
        );
        assert!(waiting.is_empty());

        waiting.extend([
            job(&[&["SET", "c", "2"]]),
            job(&[&["SET", "d", "1"]]),
            job(&[&["LPUSH", "a", "x"]]),
            job(&[&["SET", "e", "1"]]),
        ]);
        let (second, second_keys) = take_round(&mut waiting, &mut busy, false).unwrap();
        assert_eq!(first_args(&second), ["d", "e"], "jobs on busy keys wait");
        assert!(take_round(&mut waiting, &mut busy, false).is_none());

        busy.release(first_keys);
        let (third, _) = take_round(&mut waiting, &mut busy, false).unwrap();
        assert_eq!(first_args(&third), ["c", "a"], "in arrival order once free");
        busy.release(second_keys);
    }

    #[test]
    fn a_keyless_job_runs_alone_and_nothing_overtakes_it() {
        let mut waiting: VecDeque<Waiting> = [
            job(&[&["SET", "a", "1"]]),
            job(&[&["FLUSHALL"]]),
            job(&[&["SET", "b", "1"]]),
        ]
        .into_iter()
        .collect();
        let mut busy = BusyKeys::default();
        let (first, first_keys) = take_round(&mut waiting, &mut busy, true).unwrap();
        assert_eq!(first.len(), 1, "stops before the keyless job");
        assert!(
            take_round(&mut waiting, &mut busy, false).is_none(),
            "the keyless job waits for the round in flight, and b behind it"
        );
        busy.release(first_keys);
        let (flush, flush_keys) = take_round(&mut waiting, &mut busy, true).unwrap();
        assert_eq!(flush[0].commands[0].name(), "FLUSHALL");
        assert!(take_round(&mut waiting, &mut busy, false).is_none());
        busy.release(flush_keys);
        let (last, _) = take_round(&mut waiting, &mut busy, true).unwrap();
        assert_eq!(first_args(&last), ["b"]);
    }
}
