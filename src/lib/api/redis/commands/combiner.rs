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
//! Rounds are pipelined even on one hot key: on the leader, a round that
//! shares keys with the round in flight is chained after it — it waits
//! until that round is stamped and queued for replication, then executes
//! reading the store with the predecessor's writes on top, and commits
//! strictly after it (`Txn::chained`; the group refuses it unless the
//! predecessor committed at its stamp and nothing else changed what it
//! read). So the next round executes while the previous one is replicated
//! and applied, instead of after it.
//!
//! Stragglers wait for their cohort: when a round finishes, the clients it
//! answers send their next commands a few hundred microseconds later.
//! Starting a round at once on whatever is queued then (often one late
//! connection's batch) spends a Raft round and its fsync on a handful of
//! commands and holds a round slot while the returning clients queue
//! behind it. So while another round is in flight, a new one starts only
//! once the queue holds at least half as many commands as the round that
//! finished last ([`Returning`]); with nothing in flight it starts at once,
//! so an idle node answers without delay, and a straggler never waits
//! longer than the round in flight.
//!
//! Invariants:
//! * A job is one connection's run of commands, executed in its order;
//!   jobs of one round are serialised in queue order, and all of a round's
//!   effects take place at its commit, between each job's submission and
//!   its replies — a valid linearisation. A chained round commits after
//!   its predecessor, and sees exactly its writes.
//! * Two rounds in flight share a Redis key only when the later one is
//!   chained after the earlier; otherwise a job naming a key that a round
//!   in flight holds waits for a later round. A job with a keyless command
//!   (FLUSHALL ...) runs alone, once nothing is in flight. Anything the key
//!   lists miss is still caught by the transactions' own validation.
//! * A round that fails as a whole (too many conflicts with other nodes'
//!   or MULTI/Lua transactions, a refused key, an unavailable leader) is
//!   re-run job by job, so one job's failure is reported to that job only;
//!   a chained round whose predecessor failed fails its first attempt and
//!   is retried unchained.
//! * The task holds only a weak reference to the executor and ends when the
//!   executor is dropped (its queue's sender goes with it) and its rounds
//!   are done.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{RedisExecutor, RoundChain, dispatch};
use crate::api::redis::args::Command;
use crate::api::redis::metrics::RedisMetrics;
use crate::api::redis::reply::{Protocol, Reply};
use crate::txn::{ChainLink, KvBackend};

/// Most commands in one round (a round is one Raft entry).
const ROUND_MAX_COMMANDS: usize = 4096;
/// Argument bytes above which a round is closed.
const ROUND_MAX_BYTES: usize = 4 << 20;
/// Rounds committing at once. A second round is built and proposed while
/// the first waits for its log fsync and apply, so the Raft thread always
/// has the next entry at hand.
const ROUNDS_IN_FLIGHT: usize = 2;

/// How many commands the clients of the last finished round are expected
/// to send back (see the module doc: stragglers wait for their cohort).
#[derive(Default)]
struct Returning {
    commands: usize,
}

impl Returning {
    /// A round of `commands` commands finished: its clients come back.
    fn round_finished(&mut self, commands: usize) {
        self.commands = commands;
    }

    /// A round started: whatever came back went into it.
    fn round_started(&mut self) {
        self.commands = 0;
    }

    /// Whether a round may start now, with `queued` commands waiting and
    /// `in_flight` rounds committing (at most [`ROUNDS_IN_FLIGHT`]).
    fn may_start(&self, queued: usize, in_flight: usize) -> bool {
        in_flight == 0
            || (in_flight < ROUNDS_IN_FLIGHT && queued.saturating_mul(2) >= self.commands)
    }
}

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
    /// foldhash rather than SipHash: every command's keys go in and out.
    counts: HashMap<Bytes, usize, foldhash::fast::RandomState>,
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

/// How far a round in flight has got, for a round chained after it.
#[derive(Clone)]
enum Progress {
    /// Executing, or not yet stamped.
    Running,
    /// Stamped and queued for replication, with its writes.
    Proposed(Arc<ChainLink>),
    /// Finished, or will never be stamped on this node.
    Done,
}

/// The predecessor's writes once it is stamped; `None` when it finished
/// first (its effects are then in the store, or never will be).
async fn predecessor_link(mut progress: watch::Receiver<Progress>) -> Option<Arc<ChainLink>> {
    loop {
        match &*progress.borrow_and_update() {
            Progress::Running => {}
            Progress::Proposed(link) => return Some(link.clone()),
            Progress::Done => return None,
        }
        if progress.changed().await.is_err() {
            return None;
        }
    }
}

async fn run_rounds<B: KvBackend>(
    executor: Weak<RedisExecutor<B>>,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
    metrics: Arc<OnceLock<RedisMetrics>>,
) {
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut busy = BusyKeys::default();
    let mut rounds: JoinSet<(u64, RoundKeys, usize)> = JoinSet::new();
    // The progress of each round in flight, by round number.
    let mut progress: HashMap<u64, watch::Receiver<Progress>> = HashMap::new();
    let mut next_round = 0u64;
    let mut returning = Returning::default();
    let mut open = true;
    loop {
        while open {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(Waiting::new(job)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let queued = waiting.iter().map(|w| w.job.commands.len()).sum();
        let round = if returning.may_start(queued, rounds.len()) {
            let Some(exec) = executor.upgrade() else {
                return;
            };
            // The one round in flight, if a new round may chain after it.
            let chainable = match (rounds.len(), exec.backend.stamps_locally()) {
                (1, true) => progress.values().next().cloned(),
                _ => None,
            };
            take_round(
                &mut waiting,
                &mut busy,
                rounds.is_empty(),
                chainable.is_some(),
            )
            .map(|(round, keys, shares)| (exec, round, keys, chainable.filter(|_| shares)))
        } else {
            None
        };
        if let Some((exec, round, keys, after)) = round {
            returning.round_started();
            let id = next_round;
            next_round += 1;
            let (tx, rx) = watch::channel(Progress::Running);
            progress.insert(id, rx);
            let metrics = metrics.get().cloned();
            rounds.spawn(async move {
                let started = std::time::Instant::now();
                let commands = round.iter().map(|job| job.commands.len()).sum::<usize>();
                run_round(&exec, round, after, tx).await;
                if let Some(metrics) = metrics {
                    metrics.write_round_commands.observe(commands as f64);
                    metrics
                        .write_round_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                (id, keys, commands)
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
                Ok((id, keys, commands)) => {
                    returning.round_finished(commands);
                    progress.remove(&id);
                    busy.release(keys);
                }
                // A panicking round lost its keys' bookkeeping: start over
                // only once every other round is done.
                Err(_) => {
                    while rounds.join_next().await.is_some() {}
                    busy = BusyKeys::default();
                    progress.clear();
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
/// flight holds (or any keys, when the round may chain after the one round
/// in flight), up to the round limits; also whether it shares a key with a
/// round in flight. A keyless job runs alone once nothing is in flight, and
/// nothing overtakes it meanwhile.
fn take_round(
    waiting: &mut VecDeque<Waiting>,
    busy: &mut BusyKeys,
    idle: bool,
    may_chain: bool,
) -> Option<(Vec<WriteJob>, RoundKeys, bool)> {
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
        return Some((vec![front.job], RoundKeys::Exclusive, false));
    }
    let mut round = Vec::new();
    let mut round_keys: Vec<Bytes> = Vec::new();
    let (mut commands, mut bytes) = (0usize, 0usize);
    let mut shares = false;
    let mut i = 0;
    while i < waiting.len() && commands < ROUND_MAX_COMMANDS && bytes < ROUND_MAX_BYTES {
        let Some(keys) = waiting[i].keys.as_deref() else {
            // A keyless job further back: later jobs wait behind it.
            break;
        };
        let fits =
            round.is_empty() || commands + waiting[i].job.commands.len() <= ROUND_MAX_COMMANDS;
        let overlaps = busy.overlaps(keys);
        if !fits || (overlaps && !may_chain) {
            i += 1;
            continue;
        }
        shares |= overlaps;
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
    Some((round, RoundKeys::Keys(round_keys), shares))
}

/// Runs one round as one transaction, chained after the round whose
/// progress is `after` (if any), publishing its own progress to `progress`.
async fn run_round<B: KvBackend>(
    exec: &Arc<RedisExecutor<B>>,
    round: Vec<WriteJob>,
    after: Option<watch::Receiver<Progress>>,
    progress: watch::Sender<Progress>,
) {
    let progress = Arc::new(progress);
    let chain = RoundChain {
        after: match after {
            Some(after) => predecessor_link(after).await,
            None => None,
        },
        publish: {
            let progress = progress.clone();
            Arc::new(move |link| {
                progress.send_replace(Progress::Proposed(link));
            })
        },
    };
    let reply = exec
        .run_chained_txn(Protocol::Resp2, Some(&chain), |ctx| {
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
    progress.send_replace(Progress::Done);
    let failure = match reply {
        Reply::Array(per_job) if per_job.len() == round.len() => {
            for (job, replies) in round.into_iter().zip(per_job) {
                let replies = match replies {
                    Reply::Array(replies) => replies,
                    other => vec![other; job.commands.len()],
                };
                let _ = job.reply.send(replies);
            }
            return;
        }
        failure => failure,
    };
    if let [job] = round.as_slice() {
        // Nothing to separate: the job's own transaction failed.
        let replies = vec![failure; job.commands.len()];
        if let Some(job) = round.into_iter().next() {
            let _ = job.reply.send(replies);
        }
        return;
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
        let (first, first_keys, _) = take_round(&mut waiting, &mut busy, true, false).unwrap();
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
        let (second, second_keys, _) = take_round(&mut waiting, &mut busy, false, false).unwrap();
        assert_eq!(first_args(&second), ["d", "e"], "jobs on busy keys wait");
        assert!(take_round(&mut waiting, &mut busy, false, false).is_none());

        busy.release(first_keys);
        let (third, _, _) = take_round(&mut waiting, &mut busy, false, false).unwrap();
        assert_eq!(first_args(&third), ["c", "a"], "in arrival order once free");
        busy.release(second_keys);
    }

    #[test]
    fn a_round_that_may_chain_takes_jobs_on_busy_keys_and_says_so() {
        let mut waiting: VecDeque<Waiting> =
            [job(&[&["HSET", "h", "f", "1"]])].into_iter().collect();
        let mut busy = BusyKeys::default();
        let (_, first_keys, shares) = take_round(&mut waiting, &mut busy, true, false).unwrap();
        assert!(!shares);
        waiting.extend([job(&[&["HSET", "h", "g", "2"]]), job(&[&["SET", "x", "1"]])]);
        let (second, _, shares) = take_round(&mut waiting, &mut busy, false, true).unwrap();
        assert_eq!(first_args(&second), ["h", "x"], "the hot key joins at once");
        assert!(shares);
        busy.release(first_keys);
        waiting.extend([job(&[&["SET", "y", "1"]])]);
        let (third, _, shares) = take_round(&mut waiting, &mut busy, false, true).unwrap();
        assert_eq!(first_args(&third), ["y"]);
        assert!(!shares, "no key in common with the round in flight");
    }

    #[test]
    fn a_straggler_waits_for_its_cohort_only_while_another_round_is_in_flight() {
        let mut returning = Returning::default();
        assert!(returning.may_start(1, 0), "an idle node starts at once");
        assert!(
            returning.may_start(1, 1),
            "no round finished yet: nothing to wait for"
        );
        returning.round_finished(400);
        assert!(returning.may_start(16, 0), "nothing in flight: never wait");
        assert!(
            !returning.may_start(16, 1),
            "one late batch does not take a Raft round while the cohort is on its way"
        );
        assert!(returning.may_start(200, 1), "half the cohort is back");
        assert!(
            !returning.may_start(4096, ROUNDS_IN_FLIGHT),
            "never more than ROUNDS_IN_FLIGHT rounds at once"
        );
        returning.round_started();
        assert!(
            returning.may_start(16, 1),
            "the cohort went into that round: the next one owes nothing"
        );
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
        let (first, first_keys, _) = take_round(&mut waiting, &mut busy, true, false).unwrap();
        assert_eq!(first.len(), 1, "stops before the keyless job");
        assert!(
            take_round(&mut waiting, &mut busy, false, false).is_none(),
            "the keyless job waits for the round in flight, and b behind it"
        );
        busy.release(first_keys);
        let (flush, flush_keys, _) = take_round(&mut waiting, &mut busy, true, false).unwrap();
        assert_eq!(flush[0].commands[0].name(), "FLUSHALL");
        assert!(take_round(&mut waiting, &mut busy, false, false).is_none());
        busy.release(flush_keys);
        let (last, _, _) = take_round(&mut waiting, &mut busy, true, false).unwrap();
        assert_eq!(first_args(&last), ["b"]);
    }
}
