//! Publish/subscribe: the broker seam and the in-process [`LocalBroker`].
//!
//! Each subscribing connection owns one [`Mailbox`]: a queue bounded in
//! bytes (Redis's `client-output-buffer-limit pubsub`). Publishing never
//! blocks and never waits for a slow subscriber: a delivery that would push
//! a mailbox past its limit marks it overflowed instead, and its connection
//! is then closed, as Redis disconnects a subscriber that cannot keep up.
//! Delivery order per mailbox is publish order.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::glob::glob_match;

/// Per-message bookkeeping counted against the limit besides payload bytes.
const DELIVERY_OVERHEAD: usize = 64;

/// One message waiting in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The pattern that matched, for pattern subscriptions (`pmessage`).
    pub pattern: Option<Bytes>,
    /// The channel the message was published to.
    pub channel: Bytes,
    /// The message itself.
    pub payload: Bytes,
}

impl Delivery {
    fn cost(&self) -> usize {
        DELIVERY_OVERHEAD
            + self.channel.len()
            + self.payload.len()
            + self.pattern.as_ref().map_or(0, Bytes::len)
    }
}

#[derive(Debug, Default)]
struct MailboxQueue {
    items: VecDeque<Delivery>,
    bytes: usize,
}

/// The outcome of taking a mailbox's pending messages.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Messages in publish order (possibly none).
    Messages(Vec<Delivery>),
    /// The subscriber fell behind by more than its limit; close it.
    Overflowed,
}

/// A subscriber's bounded message queue.
#[derive(Debug)]
pub struct Mailbox {
    id: u64,
    limit_bytes: usize,
    queue: Mutex<MailboxQueue>,
    overflowed: AtomicBool,
    ready: Notify,
    overflow: Notify,
}

impl Mailbox {
    /// A mailbox for connection `id` holding at most `limit_bytes` of messages.
    pub fn new(id: u64, limit_bytes: usize) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            id,
            limit_bytes,
            queue: Mutex::new(MailboxQueue::default()),
            overflowed: AtomicBool::new(false),
            ready: Notify::new(),
            overflow: Notify::new(),
        })
    }

    /// The owning connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a message; returns `false` once the mailbox has overflowed.
    pub fn deliver(&self, delivery: Delivery) -> bool {
        if self.overflowed.load(Ordering::Acquire) {
            return false;
        }
        let cost = delivery.cost();
        {
            let mut queue = self.queue.lock();
            if queue.bytes + cost > self.limit_bytes {
                queue.items.clear();
                queue.bytes = 0;
                self.overflowed.store(true, Ordering::Release);
                self.overflow.notify_one();
            } else {
                queue.bytes += cost;
                queue.items.push_back(delivery);
            }
        }
        self.ready.notify_one();
        !self.overflowed.load(Ordering::Acquire)
    }

    /// Takes everything queued so far.
    pub fn drain(&self) -> Drained {
        if self.overflowed.load(Ordering::Acquire) {
            return Drained::Overflowed;
        }
        let mut queue = self.queue.lock();
        queue.bytes = 0;
        Drained::Messages(queue.items.drain(..).collect())
    }

    /// Whether the mailbox has overflowed.
    pub fn is_overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Completes when a message arrived (or the mailbox overflowed) since
    /// the last wake-up; a wake-up that happens with nobody waiting is kept.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Completes once the mailbox has overflowed.
    pub async fn overflowed(&self) {
        while !self.is_overflowed() {
            self.overflow.notified().await;
        }
    }
}

/// The pub/sub service the front end talks to. The in-process
/// [`LocalBroker`] implements it; a cluster-wide broker wraps one and adds
/// fan-out to other nodes in `publish`.
pub trait PubSubBroker: Send + Sync + 'static {
    /// Publishes `message` on `channel`; resolves to the number of receivers.
    fn publish(&self, channel: Bytes, message: Bytes) -> impl Future<Output = usize> + Send;
    /// Subscribes `mailbox` to `channel` (idempotent).
    fn subscribe(&self, mailbox: &Arc<Mailbox>, channel: Bytes);
    /// Removes the subscription of mailbox `id` to `channel`.
    fn unsubscribe(&self, id: u64, channel: &[u8]);
    /// Subscribes `mailbox` to the glob `pattern` (idempotent).
    fn psubscribe(&self, mailbox: &Arc<Mailbox>, pattern: Bytes);
    /// Removes the subscription of mailbox `id` to `pattern`.
    fn punsubscribe(&self, id: u64, pattern: &[u8]);
    /// Active channels (with at least one subscriber), optionally filtered by a glob.
    fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes>;
    /// Subscriber count of `channel` (pattern subscribers not included, as in Redis).
    fn numsub(&self, channel: &[u8]) -> usize;
    /// Number of distinct patterns subscribed to.
    fn numpat(&self) -> usize;
    /// How many subscriptions on this node a message on `channel` would
    /// reach now (channel subscribers plus matching pattern subscriptions).
    fn local_receivers(&self, channel: &[u8]) -> usize;
}

/// The object-safe view of a broker that the executor keeps for
/// `PUBLISH` inside scripts: the script learns the receiver count at once,
/// and the message leaves only after the script's transaction commits.
pub trait ScriptPublisher: Send + Sync {
    /// [`PubSubBroker::local_receivers`].
    fn receivers_here(&self, channel: &[u8]) -> usize;
    /// [`PubSubBroker::publish`], boxed.
    fn send(
        &self,
        channel: Bytes,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + '_>>;
}

impl<B: PubSubBroker> ScriptPublisher for B {
    fn receivers_here(&self, channel: &[u8]) -> usize {
        self.local_receivers(channel)
    }

    fn send(
        &self,
        channel: Bytes,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        Box::pin(self.publish(channel, message))
    }
}

type Subscribers = HashMap<u64, Arc<Mailbox>>;

/// An in-process broker: channel and pattern tables behind read-write locks.
#[derive(Debug, Default)]
pub struct LocalBroker {
    channels: RwLock<HashMap<Bytes, Subscribers>>,
    patterns: RwLock<HashMap<Bytes, Subscribers>>,
}

impl LocalBroker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers to local subscribers only; returns the number of receivers
    /// (channel subscribers plus matching pattern subscriptions). This is
    /// also the entry point for messages relayed from other nodes.
    pub fn publish_local(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut receivers = 0;
        if let Some(subscribers) = self.channels.read().get(channel) {
            for mailbox in subscribers.values() {
                mailbox.deliver(Delivery {
                    pattern: None,
                    channel: channel.clone(),
                    payload: message.clone(),
                });
                receivers += 1;
            }
        }
        for (pattern, subscribers) in self.patterns.read().iter() {
            if !glob_match(pattern, channel) {
                continue;
            }
            for mailbox in subscribers.values() {
                mailbox.deliver(Delivery {
                    pattern: Some(pattern.clone()),
                    channel: channel.clone(),
                    payload: message.clone(),
                });
                receivers += 1;
            }
        }
        receivers
    }
}

fn remove_subscriber(table: &RwLock<HashMap<Bytes, Subscribers>>, id: u64, name: &[u8]) {
    let mut table = table.write();
    if let Some(subscribers) = table.get_mut(name) {
        subscribers.remove(&id);
        if subscribers.is_empty() {
            table.remove(name);
        }
    }
}

impl PubSubBroker for LocalBroker {
    fn publish(&self, channel: Bytes, message: Bytes) -> impl Future<Output = usize> + Send {
        let receivers = self.publish_local(&channel, &message);
        std::future::ready(receivers)
    }

    fn subscribe(&self, mailbox: &Arc<Mailbox>, channel: Bytes) {
        self.channels
            .write()
            .entry(channel)
            .or_default()
            .insert(mailbox.id(), Arc::clone(mailbox));
    }

    fn unsubscribe(&self, id: u64, channel: &[u8]) {
        remove_subscriber(&self.channels, id, channel);
    }

    fn psubscribe(&self, mailbox: &Arc<Mailbox>, pattern: Bytes) {
        self.patterns
            .write()
            .entry(pattern)
            .or_default()
            .insert(mailbox.id(), Arc::clone(mailbox));
    }

    fn punsubscribe(&self, id: u64, pattern: &[u8]) {
        remove_subscriber(&self.patterns, id, pattern);
    }

    fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut names: Vec<Bytes> = self
            .channels
            .read()
            .keys()
            .filter(|name| pattern.is_none_or(|pattern| glob_match(pattern, name)))
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, HashMap::len)
    }

    fn numpat(&self) -> usize {
        self.patterns.read().len()
    }

    fn local_receivers(&self, channel: &[u8]) -> usize {
        let direct = self.numsub(channel);
        let by_pattern: usize = self
            .patterns
            .read()
            .iter()
            .filter(|(pattern, _)| glob_match(pattern, channel))
            .map(|(_, subscribers)| subscribers.len())
            .sum();
        direct + by_pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn publish_reaches_channel_and_pattern_subscribers() {
        let broker = LocalBroker::new();
        let first = Mailbox::new(1, 1 << 20);
        let second = Mailbox::new(2, 1 << 20);
        broker.subscribe(&first, bytes("news"));
        broker.psubscribe(&second, bytes("n*"));
        assert_eq!(broker.publish(bytes("news"), bytes("hi")).await, 2);
        assert_eq!(broker.publish(bytes("other"), bytes("x")).await, 0);
        first.ready().await;
        assert_eq!(
            first.drain(),
            Drained::Messages(vec![Delivery {
                pattern: None,
                channel: bytes("news"),
                payload: bytes("hi")
            }])
        );
        assert_eq!(
            second.drain(),
            Drained::Messages(vec![Delivery {
                pattern: Some(bytes("n*")),
                channel: bytes("news"),
                payload: bytes("hi")
            }])
        );
        assert_eq!(broker.numsub(b"news"), 1);
        assert_eq!(broker.numpat(), 1);
        assert_eq!(broker.local_receivers(b"news"), 2);
        assert_eq!(broker.local_receivers(b"nope"), 1);
        assert_eq!(broker.local_receivers(b"other"), 0);
        assert_eq!(broker.channels(None), vec![bytes("news")]);
        assert_eq!(broker.channels(Some(b"x*")), Vec::<Bytes>::new());
        broker.unsubscribe(1, b"news");
        broker.punsubscribe(2, b"n*");
        assert_eq!(broker.numsub(b"news"), 0);
        assert_eq!(broker.numpat(), 0);
        assert_eq!(broker.publish(bytes("news"), bytes("again")).await, 0);
    }

    #[test]
    fn a_full_mailbox_overflows_instead_of_growing() {
        let mailbox = Mailbox::new(7, 2 * (DELIVERY_OVERHEAD + 10));
        let message = || Delivery {
            pattern: None,
            channel: bytes("c"),
            payload: Bytes::from(vec![0u8; 9]),
        };
        assert!(mailbox.deliver(message()));
        assert!(mailbox.deliver(message()));
        assert!(!mailbox.deliver(message()));
        assert!(mailbox.is_overflowed());
        assert_eq!(mailbox.drain(), Drained::Overflowed);
    }

    #[test]
    fn draining_frees_room() {
        let mailbox = Mailbox::new(7, DELIVERY_OVERHEAD + 10);
        let message = || Delivery {
            pattern: None,
            channel: bytes("c"),
            payload: Bytes::from(vec![0u8; 9]),
        };
        for _ in 0..5 {
            assert!(mailbox.deliver(message()));
            assert!(matches!(mailbox.drain(), Drained::Messages(items) if items.len() == 1));
        }
    }
}
